//! What handling a valid message does: replace this with the real work.

use std::time::Duration;

use sqs_batch::{Context, Error};

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
    Ok(())
}
