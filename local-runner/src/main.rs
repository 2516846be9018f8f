//! `local-runner` as `cargo install local-runner` gives it: no handler compiled in. It runs any
//! Lambda function's `bootstrap` (`--lambda PATH`, written with sqs-batch or not) behind the
//! emulated event source mapping of your `template.yaml`, and `up`/`send`/`dlq`/`redrive`/`check`.
//! The in-process mode needs your handler: a crate of yours with a three-line `main` calling
//! [`local_runner::main`].

fn main() -> std::process::ExitCode {
    local_runner::main_without_handler()
}
