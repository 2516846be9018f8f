//! `local-runner` built with this workspace's handler (`handler::build`).

fn main() -> std::process::ExitCode {
    local_runner::main(handler::build)
}
