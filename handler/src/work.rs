//! What handling a valid message does: replace this with the real work.

use std::time::Duration;

use sqs_batch::metrics::Unit;
use sqs_batch::{Context, Error, Next};

use crate::Message;

/// Handles one message: logs it and simulates `work_ms` of work. Return `Err` to fail the message
/// alone: `?` on any error is a transient failure (retried after a back-off); say
/// `Error::permanent(..)` (or `.permanent()?`) when no retry can help, and the message goes to the
/// dead-letter queue without waiting.
///
/// # Errors
/// None for the example: every valid message succeeds.
pub async fn handle(message: Message, context: Context) -> Result<(), Error> {
    tracing::debug!(id = %message.id, kind = %message.kind, delivery = context.receive_count(), "handling");
    if let Some(ms) = message.work_ms.filter(|&ms| ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    // A business metric: counted once the message succeeds, in Lambda's EMF document and in
    // local-runner's summary and Prometheus endpoint.
    context.add_metric("OrdersStored", Unit::Count, 1.0);
    Ok(())
}

/// A layer around [`handle`] (added in one line in `build()`, and run the same in Lambda and
/// locally): how long each message's work took, on a debug line of its own. Replace it with
/// what runs around every message: metrics, a rate limit, idempotency.
///
/// # Errors
/// Whatever the work fails with.
pub async fn timed(message: Message, context: Context, next: Next<Message>) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let result = next.run(message, context).await;
    tracing::debug!(work_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX), "work done");
    result
}
