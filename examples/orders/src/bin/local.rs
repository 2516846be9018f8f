//! `local-runner` with this crate's handler: the same `build()` the Lambda function runs, driven
//! by batches from a queue you long-poll locally. Built with the `local` feature:
//! `cargo local-runner --queue NAME`.

/// mimalloc: a consumer allocates and frees many small buffers per message (requests, answers,
/// records, log lines). Under glibc's malloc that was a sixth of its CPU; mimalloc handles about
/// an eighth more messages per CPU second, for about 14 MB more resident memory (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    local_runner::main(handler::build)
}
