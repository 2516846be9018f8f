//! `local-runner` built with the watched handler.

fn main() -> std::process::ExitCode {
    local_runner::main(e2e_watched::build)
}
