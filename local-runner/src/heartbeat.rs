//! Keeping messages invisible while their work runs, and spacing out the retries of failures.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use handler::SqsMessage;
use tokio_util::sync::CancellationToken;

use crate::settle::{Entry, Retries, Settle, settle};

/// SQS keeps a message invisible for at most 12 hours after it was received.
pub(crate) const MAX_INVISIBLE: Duration = Duration::from_secs(12 * 60 * 60);

/// Extends the visibility of `records` to `visibility` every half of it, counted from `asked`
/// (when their ReceiveMessage was sent), until `done` is cancelled or SQS's 12-hour cap is
/// reached. A receive that waited longer than half the timeout gets its first extension at once.
///
/// `invisible_until` is moved on after each extension that SQS accepted for every message, to
/// the moment the extension was sent plus the time it bought: a lower bound on how long SQS
/// keeps them hidden, which tells a later delete whether it came in time.
///
/// `done` is only looked at between extensions, never during one: once this returns, no
/// extension is in flight, so a delete sent afterwards can never race it (the "ReceiptHandle is
/// invalid" of sqs-consumer #260). A failed extension is logged; the work goes on regardless.
pub(crate) async fn keep_invisible(
    client: &Client,
    queue_url: &str,
    records: &[SqsMessage],
    visibility: Duration,
    asked: Instant,
    invisible_until: &Mutex<Instant>,
    done: &CancellationToken,
) {
    if visibility.is_zero() {
        return;
    }
    let interval = (visibility / 2).max(Duration::from_millis(500));
    let handles: Vec<&str> = records.iter().filter_map(|r| r.receipt_handle.as_deref()).collect();
    let mut failing = false;
    let mut next = asked + interval;
    loop {
        tokio::select! {
            biased;
            () = done.cancelled() => return,
            () = tokio::time::sleep_until(next.into()) => {}
        }
        // SQS counts its cap from the receive, which came after `asked`: this errs early.
        let extend = visibility.min(MAX_INVISIBLE.saturating_sub(asked.elapsed()));
        if extend < Duration::from_secs(1) {
            tracing::warn!(
                messages = handles.len(),
                "work has run for 12 hours, SQS's visibility cap: the messages will become visible again"
            );
            return;
        }
        let seconds = i32::try_from(extend.as_secs()).unwrap_or(i32::MAX);
        let entries: Vec<Entry<'_>> =
            handles.iter().map(|&h| Entry { receipt_handle: h, visibility_secs: seconds }).collect();
        let sent = Instant::now();
        next = sent + interval;
        let extended = settle(client, queue_url, Settle::Visibility, &entries, Retries::times(1)).await;
        if extended == entries.len() {
            *invisible_until.lock().unwrap_or_else(PoisonError::into_inner) = sent + extend;
        }
        if extended < entries.len() {
            if !failing {
                tracing::warn!(
                    failed = entries.len() - extended,
                    "heartbeat could not extend visibility; the work goes on"
                );
            }
            failing = true;
        } else {
            failing = false;
            tracing::debug!(messages = extended, visibility_secs = seconds, "visibility extended");
        }
    }
}

/// How failed messages are spaced out: `base × 2^(receives - 1)`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    /// The visibility after the first failed receive.
    pub base: Duration,
    /// The longest visibility it sets.
    pub max: Duration,
}

impl RetryBackoff {
    /// The visibility timeout for a message that failed on its `receive_count`-th receive.
    #[must_use]
    pub fn visibility(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << doublings).min(self.max).min(MAX_INVISIBLE)
    }
}

/// A record's `ApproximateReceiveCount`, 1 when missing.
pub(crate) fn receive_count(record: &SqsMessage) -> u32 {
    record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_each_receive_up_to_its_max() {
        let backoff = RetryBackoff { base: Duration::from_secs(2), max: Duration::from_secs(60) };
        let seconds: Vec<u64> = (1..=7).map(|n| backoff.visibility(n).as_secs()).collect();
        assert_eq!(seconds, [2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn backoff_never_exceeds_the_twelve_hour_cap() {
        let backoff = RetryBackoff { base: Duration::from_secs(3600), max: Duration::from_secs(100 * 3600) };
        assert_eq!(backoff.visibility(50), MAX_INVISIBLE);
    }
}
