//! `local-runner` with a handler that takes any JSON body and does nothing with it: the runner's
//! own command-line tests run it (`local-runner/tests/cli.rs`), since the runner with a real
//! handler is the user's crate's binary (`handler/src/bin/local.rs`), and nothing here may
//! depend on that crate.

use sqs_batch::{BoxError, Context, Error, Handler, handler_fn};

async fn build() -> Result<impl Handler<Message = serde_json::Value>, BoxError> {
    Ok(handler_fn(|_body: serde_json::Value, _context: Context| async { Ok::<(), Error>(()) }))
}

fn main() -> std::process::ExitCode {
    local_runner::main(build)
}
