//! Settling received messages with SQS: delete what succeeded, release (visibility 0) what was
//! never started. Both go out in batches of ten and retry the entries that failed.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};

/// DeleteMessageBatch and ChangeMessageVisibilityBatch take at most 10 entries.
const MAX_ENTRIES: usize = 10;
/// Attempts for an entry that failed on SQS's side (or with the whole call).
const ATTEMPTS: u32 = 3;
/// Pause before the first retry; doubles each time.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);

/// What to do with a set of receipt handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    /// DeleteMessageBatch: the message was handled.
    Delete,
    /// ChangeMessageVisibilityBatch to 0: the message was not started; let it be received again now.
    Release,
}

impl Settle {
    fn operation(self) -> &'static str {
        match self {
            Self::Delete => "DeleteMessageBatch",
            Self::Release => "ChangeMessageVisibilityBatch",
        }
    }
}

/// Applies `action` to every receipt handle; returns how many it was applied to.
///
/// Entries are identified by their position in `handles`, so one request never carries the same
/// id twice, whatever the messages are. An entry SQS rejects as the caller's fault (an expired
/// receipt handle) is not retried: the message will simply be delivered again.
pub(crate) async fn settle(client: &Client, queue_url: &str, action: Settle, handles: &[&str]) -> usize {
    let mut pending: Vec<usize> = (0..handles.len()).collect();
    let mut given_up = 0;
    let mut delay = FIRST_RETRY_DELAY;
    for attempt in 1..=ATTEMPTS {
        let mut retry = Vec::new();
        for chunk in pending.chunks(MAX_ENTRIES) {
            match send(client, queue_url, action, handles, chunk).await {
                Ok(failed) => {
                    for entry in failed {
                        let index: Option<usize> = entry.id().parse().ok();
                        let Some(index) = index.filter(|i| chunk.contains(i)) else { continue };
                        if entry.sender_fault() || attempt == ATTEMPTS {
                            given_up += 1;
                            tracing::warn!(
                                operation = action.operation(),
                                code = entry.code(),
                                reason = entry.message(),
                                "entry rejected; the message will be delivered again"
                            );
                        } else {
                            retry.push(index);
                        }
                    }
                }
                Err(reason) if attempt < ATTEMPTS => {
                    tracing::debug!(operation = action.operation(), %reason, "batch call failed; retrying");
                    retry.extend_from_slice(chunk);
                }
                Err(reason) => {
                    given_up += chunk.len();
                    tracing::warn!(operation = action.operation(), %reason, entries = chunk.len(), "batch call failed; the messages will be delivered again");
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        pending = retry;
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    handles.len() - given_up
}

async fn send(
    client: &Client,
    queue_url: &str,
    action: Settle,
    handles: &[&str],
    chunk: &[usize],
) -> Result<Vec<BatchResultErrorEntry>, String> {
    match action {
        Settle::Delete => {
            let entries = chunk.iter().map(|&i| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(handles[i]).build()
            });
            let entries = entries.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
            client
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map(|out| out.failed)
                .map_err(|err| DisplayErrorContext(&err).to_string())
        }
        Settle::Release => {
            let entries = chunk.iter().map(|&i| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handles[i])
                    .visibility_timeout(0)
                    .build()
            });
            let entries = entries.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
            client
                .change_message_visibility_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map(|out| out.failed)
                .map_err(|err| DisplayErrorContext(&err).to_string())
        }
    }
}
