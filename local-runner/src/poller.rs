//! Long-poll tasks: receive, hand Lambda-shaped batches to the batch core, settle the results.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use handler::{BatchOptions, Handler, NotStarted, Outcome, SqsMessage, process_batch};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::RunnerError;
use crate::config::Config;
use crate::records::lambda_record;
use crate::settle::{Settle, settle};
use crate::sqs::Queue;
use crate::stats::Stats;

/// Longest pause between receive attempts while the endpoint is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Everything the tasks of one run share.
pub(crate) struct Shared<H> {
    pub(crate) client: Client,
    pub(crate) queue: Queue,
    pub(crate) config: Config,
    pub(crate) handler: Arc<H>,
    pub(crate) stats: Stats,
    /// One permit per message being handled: pollers take permits before they receive, so the
    /// runner never holds more messages than it can start at once.
    pub(crate) in_flight: Arc<Semaphore>,
    /// When a message was last received or settled, for `--exit-when-idle`.
    pub(crate) last_activity: Mutex<Instant>,
    /// Cancelled to stop: no new receive, no new message started.
    pub(crate) stop: CancellationToken,
    /// Cancelled when the shutdown timeout has passed: running work is dropped and released.
    pub(crate) abandon: CancellationToken,
    /// The batches being handled.
    pub(crate) batches: TaskTracker,
    /// Why the run must end with an error, if it must.
    pub(crate) fatal: Mutex<Option<RunnerError>>,
}

impl<H> Shared<H> {
    pub(crate) fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    pub(crate) fn idle_for(&self) -> Duration {
        self.last_activity.lock().unwrap_or_else(PoisonError::into_inner).elapsed()
    }

    fn fail(&self, error: RunnerError) {
        self.fatal.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(error);
        self.stop.cancel();
    }

    async fn settle_records(&self, action: Settle, records: &[&SqsMessage]) -> usize {
        let handles: Vec<&str> = records.iter().filter_map(|r| r.receipt_handle.as_deref()).collect();
        if handles.is_empty() {
            return 0;
        }
        settle(&self.client, &self.queue.url, action, &handles).await
    }
}

/// One long-poll task. Returns when the run stops.
///
/// Cancellation is only honoured while waiting for permits or backing off, never around a
/// ReceiveMessage call: once sent, SQS may already have handed messages over, and dropping the
/// call would leave them invisible until their timeout. What a receive returns after the stop is
/// released at once instead.
pub(crate) async fn poll<H: Handler + 'static>(shared: Arc<Shared<H>>) {
    let config = &shared.config;
    let want = usize::from(config.batch_size).min(config.max_in_flight.get());
    let want_permits = u32::try_from(want).expect("at most 10");
    let mut failures: u32 = 0;
    loop {
        let permits = tokio::select! {
            biased;
            () = shared.stop.cancelled() => break,
            permits = shared.in_flight.clone().acquire_many_owned(want_permits) => {
                permits.expect("the in-flight semaphore is never closed")
            }
        };
        let received = shared
            .client
            .receive_message()
            .queue_url(&shared.queue.url)
            .max_number_of_messages(i32::from(u8::try_from(want).expect("at most 10")))
            .wait_time_seconds(i32::try_from(config.wait_time.as_secs()).unwrap_or(20))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        let messages = match received {
            Ok(output) => {
                if failures > 0 {
                    tracing::info!(failed_attempts = failures, "SQS answers again; polling resumed");
                    failures = 0;
                }
                output.messages.unwrap_or_default()
            }
            Err(err) => {
                drop(permits);
                if err.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) {
                    shared.fail(RunnerError::QueueNotFound {
                        queue: shared.queue.url.clone(),
                        endpoint: config.endpoint_url.clone().unwrap_or_else(|| "AWS".into()),
                        region: config.region.clone(),
                    });
                    break;
                }
                failures += 1;
                let reason = DisplayErrorContext(&err).to_string();
                if failures == 1 {
                    tracing::warn!(%reason, "ReceiveMessage failed; retrying with back-off until SQS answers");
                } else {
                    tracing::debug!(%reason, failed_attempts = failures, "ReceiveMessage failed again");
                }
                tokio::select! {
                    () = shared.stop.cancelled() => break,
                    () = tokio::time::sleep(backoff(failures)) => continue,
                }
            }
        };
        if messages.is_empty() {
            continue;
        }
        Stats::add(&shared.stats.received, messages.len());
        shared.touch();
        let records: Vec<SqsMessage> =
            messages.into_iter().map(|m| lambda_record(m, &shared.queue, &config.region)).collect();
        if shared.stop.is_cancelled() {
            let released = shared.settle_records(Settle::Release, &records.iter().collect::<Vec<_>>()).await;
            Stats::add(&shared.stats.released, released);
            break;
        }
        let mut permits = permits;
        drop(permits.split(want - records.len())); // give back what this receive did not fill
        let task = run_batch(Arc::clone(&shared), records, permits);
        shared.batches.spawn(task);
    }
}

/// Handles one received batch and settles it; holds its in-flight permits until it is done.
async fn run_batch<H: Handler + 'static>(
    shared: Arc<Shared<H>>,
    records: Vec<SqsMessage>,
    permits: OwnedSemaphorePermit,
) {
    let all_at_once = NonZeroUsize::new(records.len()).unwrap_or(NonZeroUsize::MIN);
    let options = BatchOptions { max_concurrency: all_at_once };
    let report = tokio::select! {
        report = process_batch(&*shared.handler, &records, options, &shared.stop) => report,
        () = shared.abandon.cancelled() => {
            tracing::warn!(messages = records.len(), "shutdown timeout passed with messages still running; releasing them");
            let released = shared.settle_records(Settle::Release, &records.iter().collect::<Vec<_>>()).await;
            Stats::add(&shared.stats.released, released);
            return;
        }
    };
    let (ok, failed, skipped) = report.counts();
    Stats::add(&shared.stats.succeeded, ok);
    Stats::add(&shared.stats.failed, failed);
    Stats::add(&shared.stats.skipped, skipped);

    let mut to_delete = Vec::with_capacity(ok);
    let mut to_release = Vec::new();
    for (record, outcome) in records.iter().zip(&report.outcomes) {
        match outcome {
            Outcome::Succeeded => to_delete.push(record),
            Outcome::NotStarted(NotStarted::Stopped) => to_release.push(record),
            // Failures and the rest of their FIFO group stay invisible until their timeout, as
            // under Lambda; then SQS redelivers them or moves them to the dead-letter queue.
            Outcome::Failed(_) | Outcome::NotStarted(NotStarted::EarlierInGroupFailed) => {}
        }
    }
    if !to_delete.is_empty() {
        let deleted = shared.settle_records(Settle::Delete, &to_delete).await;
        Stats::add(&shared.stats.deleted, deleted);
        Stats::add(&shared.stats.delete_failed, to_delete.len() - deleted);
    }
    if !to_release.is_empty() {
        let released = shared.settle_records(Settle::Release, &to_release).await;
        Stats::add(&shared.stats.released, released);
    }
    shared.touch();
    drop(permits);
}

/// Exponential back-off from 1 s, capped, with up to a quarter taken off at random so that
/// pollers do not retry in step.
fn backoff(failures: u32) -> Duration {
    let base = Duration::from_secs(1).saturating_mul(1 << failures.saturating_sub(1).min(5)).min(MAX_BACKOFF);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    base - base / 4 * (nanos % 1000) / 1000
}

/// Stops the run once nothing was received or settled for `idle` and nothing is in flight.
pub(crate) async fn exit_when_idle<H>(shared: Arc<Shared<H>>, idle: Duration) {
    let mut tick =
        tokio::time::interval((idle / 4).clamp(Duration::from_millis(10), Duration::from_millis(250)));
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if shared.batches.is_empty() && shared.idle_for() >= idle {
            tracing::info!(idle_secs = idle.as_secs_f64(), "idle with nothing in flight; stopping");
            shared.stop.cancel();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_from_about_a_second_and_stays_under_the_cap() {
        assert!(backoff(1) <= Duration::from_secs(1) && backoff(1) >= Duration::from_millis(750));
        assert!(backoff(3) >= Duration::from_secs(3));
        for failures in 1..100 {
            assert!(backoff(failures) <= MAX_BACKOFF);
        }
    }
}
