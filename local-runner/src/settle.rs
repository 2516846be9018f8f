//! Settling received messages with SQS: delete what succeeded; change the visibility of the rest
//! (0 to release what was never started, a back-off for failures, an extension while work runs).
//! Both go out in batches of ten and retry the entries that failed on SQS's side.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};

/// DeleteMessageBatch and ChangeMessageVisibilityBatch take at most 10 entries.
const MAX_ENTRIES: usize = 10;
/// Pause before the first retry; doubles each time.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);

/// What to do with a set of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    /// DeleteMessageBatch: the message was handled.
    Delete,
    /// ChangeMessageVisibilityBatch to each entry's `visibility_secs`.
    Visibility,
}

impl Settle {
    fn operation(self) -> &'static str {
        match self {
            Self::Delete => "DeleteMessageBatch",
            Self::Visibility => "ChangeMessageVisibilityBatch",
        }
    }
}

/// One message to settle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub(crate) receipt_handle: &'a str,
    /// The new visibility timeout, for [`Settle::Visibility`].
    pub(crate) visibility_secs: i32,
}

/// Applies `action` to every entry, making up to `attempts` attempts for the entries that fail
/// on SQS's side (or with the whole call); returns how many it was applied to.
///
/// Entries are identified by their position in `entries`, so one request never carries the same
/// id twice, whatever the messages are. An entry SQS rejects as the caller's fault (an expired
/// receipt handle) is not retried: the message will simply be delivered again.
pub(crate) async fn settle(
    client: &Client,
    queue_url: &str,
    action: Settle,
    entries: &[Entry<'_>],
    attempts: u32,
) -> usize {
    let mut pending: Vec<usize> = (0..entries.len()).collect();
    let mut given_up = 0;
    let mut delay = FIRST_RETRY_DELAY;
    for attempt in 1..=attempts.max(1) {
        let last = attempt >= attempts;
        let mut retry = Vec::new();
        for chunk in pending.chunks(MAX_ENTRIES) {
            match send(client, queue_url, action, entries, chunk).await {
                Ok(failed) => {
                    for entry in failed {
                        let index: Option<usize> = entry.id().parse().ok();
                        let Some(index) = index.filter(|i| chunk.contains(i)) else { continue };
                        if entry.sender_fault() || last {
                            given_up += 1;
                            tracing::warn!(
                                operation = action.operation(),
                                code = entry.code(),
                                reason = entry.message(),
                                "entry rejected"
                            );
                        } else {
                            retry.push(index);
                        }
                    }
                }
                Err(reason) if !last => {
                    tracing::debug!(operation = action.operation(), %reason, "batch call failed; retrying");
                    retry.extend_from_slice(chunk);
                }
                Err(reason) => {
                    given_up += chunk.len();
                    tracing::warn!(operation = action.operation(), %reason, entries = chunk.len(), "batch call failed");
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        pending = retry;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    entries.len() - given_up
}

async fn send(
    client: &Client,
    queue_url: &str,
    action: Settle,
    entries: &[Entry<'_>],
    chunk: &[usize],
) -> Result<Vec<BatchResultErrorEntry>, String> {
    match action {
        Settle::Delete => {
            let batch = chunk.iter().map(|&i| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(entries[i].receipt_handle)
                    .build()
            });
            let batch = batch.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
            client
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(batch))
                .send()
                .await
                .map(|out| out.failed)
                .map_err(|err| DisplayErrorContext(&err).to_string())
        }
        Settle::Visibility => {
            let batch = chunk.iter().map(|&i| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(entries[i].receipt_handle)
                    .visibility_timeout(entries[i].visibility_secs)
                    .build()
            });
            let batch = batch.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
            client
                .change_message_visibility_batch()
                .queue_url(queue_url)
                .set_entries(Some(batch))
                .send()
                .await
                .map(|out| out.failed)
                .map_err(|err| DisplayErrorContext(&err).to_string())
        }
    }
}
