//! A handler whose one line of behaviour, [`VERSION`], the `--watch` test rewrites while a run
//! drains a queue: each message logs a `handled` line with the version that handled it, so the
//! test sees when the new build went live and that no message was handled twice.
//!
//! `watched-runner` is `local-runner` built with it; `watched-bootstrap` is its Lambda function.

mod version;

use serde::Deserialize;
use sqs_batch::{BoxError, Context, Error, Handler, handler_fn};

pub use version::VERSION;

/// A test message: its id, and how long its work takes.
#[derive(Debug, Deserialize)]
pub struct Watched {
    /// Its id, logged with the version that handled it.
    pub id: String,
    /// Async work.
    #[serde(default)]
    pub ms: u64,
}

/// The handler both mains run.
///
/// # Errors
/// None: it builds nothing.
pub async fn build() -> Result<impl Handler<Message = Watched>, BoxError> {
    Ok(handler_fn(handle).log_id(id))
}

fn id(message: &Watched) -> &str {
    &message.id
}

async fn handle(message: Watched, _context: Context) -> Result<(), Error> {
    tokio::time::sleep(std::time::Duration::from_millis(message.ms)).await;
    tracing::info!(id = %message.id, version = VERSION, "handled");
    Ok(())
}
