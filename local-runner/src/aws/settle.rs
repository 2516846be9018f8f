//! Settling received messages with SQS: delete what succeeded; change the visibility of the rest
//! (0 to release what was never started, a back-off for failures, an extension while work runs).
//! Both go out in batches of ten and retry the entries that failed on SQS's side.

use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::operation::change_message_visibility_batch::ChangeMessageVisibilityBatchError;
use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchError;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use tokio_util::sync::CancellationToken;

/// DeleteMessageBatch and ChangeMessageVisibilityBatch take at most 10 entries.
const MAX_ENTRIES: usize = 10;
/// Pause before the first retry; doubles each time.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
/// Attempts at changing visibility (releasing, backing off, making peeked messages visible).
pub(crate) const VISIBILITY_ATTEMPTS: u32 = 3;
/// The longest pause between retries.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

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

/// How long `settle` keeps trying the entries that failed.
#[derive(Debug, Clone, Copy)]
pub struct Retries<'a> {
    /// Attempts made in any case.
    attempts: u32,
    /// Further attempts are made while a retry would still start before this moment.
    until: Option<Instant>,
    /// Cancelled: no further retry.
    give_up: Option<&'a CancellationToken>,
}

impl<'a> Retries<'a> {
    /// Exactly `attempts` attempts (at least one).
    #[must_use]
    pub fn times(attempts: u32) -> Self {
        Self { attempts: attempts.max(1), until: None, give_up: None }
    }

    /// After the first attempts, keep retrying until `until`, unless `give_up` is cancelled first.
    #[must_use]
    pub fn until(self, until: Instant, give_up: &'a CancellationToken) -> Self {
        Self { until: Some(until), give_up: Some(give_up), ..self }
    }

    fn another_after(&self, attempt: u32, delay: Duration) -> bool {
        let in_time = self.until.is_some_and(|until| Instant::now() + delay < until);
        let given_up = self.give_up.is_some_and(CancellationToken::is_cancelled);
        attempt < self.attempts || (in_time && !given_up)
    }

    /// Waits `delay`; false if told to give up meanwhile.
    async fn pause(&self, delay: Duration) -> bool {
        match self.give_up {
            Some(give_up) => tokio::select! {
                () = give_up.cancelled() => false,
                () = tokio::time::sleep(delay) => true,
            },
            None => {
                tokio::time::sleep(delay).await;
                true
            }
        }
    }
}

/// Applies `action` to every entry, retrying the entries that fail on SQS's side (or with the
/// whole call) as `retries` allows; returns how many it was applied to. A queue that no longer
/// exists is not retried: the poller ends the run on it.
///
/// Entries are identified by their position in `entries`, so one request never carries the same
/// id twice, whatever the messages are. An entry SQS rejects as the caller's fault (an expired
/// receipt handle) is not retried: the message will simply be delivered again.
pub(crate) async fn settle(
    client: &Client,
    queue_url: &str,
    action: Settle,
    entries: &[Entry<'_>],
    retries: Retries<'_>,
) -> usize {
    let mut pending: Vec<usize> = (0..entries.len()).collect();
    let mut given_up = 0;
    let mut delay = FIRST_RETRY_DELAY;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let last = !retries.another_after(attempt, delay);
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
                Err(CallFailed { error, worth_retrying: true }) if !last => {
                    let reason = DisplayErrorContext(error.as_ref());
                    tracing::debug!(operation = action.operation(), %reason, "batch call failed; retrying");
                    retry.extend_from_slice(chunk);
                }
                Err(CallFailed { error, .. }) => {
                    given_up += chunk.len();
                    let reason = DisplayErrorContext(error.as_ref());
                    tracing::warn!(operation = action.operation(), %reason, entries = chunk.len(), "batch call failed");
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        if !retries.pause(delay).await {
            given_up += retry.len();
            tracing::warn!(
                operation = action.operation(),
                entries = retry.len(),
                "gave up retrying at shutdown"
            );
            break;
        }
        pending = retry;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
    entries.len() - given_up
}

/// Why a whole batch call failed.
struct CallFailed {
    error: sqs_batch::BoxError,
    /// False when trying again cannot help: the queue is gone, or the request could not be built.
    worth_retrying: bool,
}

impl CallFailed {
    fn unbuildable(err: impl Into<sqs_batch::BoxError>) -> Self {
        Self { error: err.into(), worth_retrying: false }
    }

    fn from_sdk<E, R>(err: SdkError<E, R>, queue_gone: impl Fn(&E) -> bool) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let worth_retrying = !err.as_service_error().is_some_and(queue_gone);
        Self { error: Box::new(err), worth_retrying }
    }
}

async fn send(
    client: &Client,
    queue_url: &str,
    action: Settle,
    entries: &[Entry<'_>],
    chunk: &[usize],
) -> Result<Vec<BatchResultErrorEntry>, CallFailed> {
    match action {
        Settle::Delete => {
            let batch = chunk.iter().map(|&i| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(entries[i].receipt_handle)
                    .build()
            });
            let batch = batch.collect::<Result<Vec<_>, _>>().map_err(CallFailed::unbuildable)?;
            client
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(batch))
                .send()
                .await
                .map(|out| out.failed)
                .map_err(|err| CallFailed::from_sdk(err, DeleteMessageBatchError::is_queue_does_not_exist))
        }
        Settle::Visibility => {
            let batch = chunk.iter().map(|&i| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(entries[i].receipt_handle)
                    .visibility_timeout(entries[i].visibility_secs)
                    .build()
            });
            let batch = batch.collect::<Result<Vec<_>, _>>().map_err(CallFailed::unbuildable)?;
            client
                .change_message_visibility_batch()
                .queue_url(queue_url)
                .set_entries(Some(batch))
                .send()
                .await
                .map(|out| out.failed)
                .map_err(|err| {
                    CallFailed::from_sdk(err, ChangeMessageVisibilityBatchError::is_queue_does_not_exist)
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_number_of_attempts_stops_there() {
        let retries = Retries::times(3);
        let more: Vec<bool> = (1..=4).map(|n| retries.another_after(n, Duration::ZERO)).collect();
        assert_eq!(more, [true, true, false, false]);
    }

    #[test]
    fn retries_go_on_while_the_next_one_starts_before_the_deadline() {
        let give_up = CancellationToken::new();
        let retries = Retries::times(2).until(Instant::now() + Duration::from_secs(60), &give_up);
        assert!(retries.another_after(10, Duration::from_secs(5)), "in time");
        assert!(!retries.another_after(10, Duration::from_secs(61)), "the pause would overrun it");
    }

    #[test]
    fn a_passed_deadline_still_leaves_the_first_attempts() {
        let give_up = CancellationToken::new();
        let retries = Retries::times(2).until(Instant::now(), &give_up);
        assert!(retries.another_after(1, Duration::ZERO));
        assert!(!retries.another_after(2, Duration::ZERO));
    }

    #[test]
    fn giving_up_ends_the_retries_the_deadline_would_allow() {
        let give_up = CancellationToken::new();
        let retries = Retries::times(1).until(Instant::now() + Duration::from_secs(60), &give_up);
        give_up.cancel();
        assert!(!retries.another_after(1, Duration::ZERO));
    }
}
