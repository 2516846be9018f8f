//! Dev tooling, one file per subcommand: `up` creates the queues the template describes, `send`
//! sends messages, `dlq` looks into the dead-letter queue, `redrive` moves its messages back.
//! Output is for people: plain lines on stdout.

mod dlq;
mod redrive;
mod send;
mod up;

use crate::error::RunnerError;

pub use dlq::{dead_letter_queue, show_dlq};
pub use redrive::redrive;
pub use send::{Bodies, send};
pub use up::up;

/// SQS's error for `operation` on `queue`, with the SDK's whole context.
fn sqs_error<E, R>(
    operation: &'static str,
    queue: &str,
    err: aws_sdk_sqs::error::SdkError<E, R>,
) -> RunnerError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    RunnerError::Sqs { operation, queue: queue.to_owned(), source: Box::new(err) }
}
