//! The same handler against a local queue, in process: `cargo local-runner --queue Queue`.

fn main() -> std::process::ExitCode {
    local_runner::main(handler::build)
}
