//! `local-runner` built with the framework's test handler.

fn main() -> std::process::ExitCode {
    local_runner::main(e2e_function::build)
}
