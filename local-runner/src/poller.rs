//! Long-poll tasks: receive, hand Lambda-shaped batches to the batch core, settle the results.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use handler::{NotStarted, Outcome, SqsMessage};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::RunnerError;
use crate::config::{Config, MAX_BATCH_SIZE};
use crate::executor::BatchExecutor;
use crate::heartbeat::{keep_invisible, receive_count};
use crate::records::lambda_record;
use crate::settle::{Entry, Retries, Settle, VISIBILITY_ATTEMPTS, settle};
use crate::sqs::Queue;
use crate::stats::Stats;

/// Attempts at deleting what succeeded, at the least: a message not deleted is handled again, so
/// deletes go on retrying while the messages are still hidden.
const DELETE_ATTEMPTS: u32 = 5;
/// Longest pause between receive attempts while the endpoint is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Everything the tasks of one run share.
pub(crate) struct Shared<E> {
    pub(crate) client: Client,
    pub(crate) queue: Queue,
    pub(crate) config: Config,
    pub(crate) executor: E,
    pub(crate) stats: Stats,
    /// One permit per message being handled: pollers take permits before they receive, so the
    /// runner never holds more messages than it can start at once.
    pub(crate) in_flight: Arc<Semaphore>,
    /// When a message was last received or settled, for `--exit-when-idle`.
    pub(crate) last_activity: Mutex<Instant>,
    /// Since when receives have come back empty; `None` after a receive brought messages or
    /// failed. An endpoint that fails or hangs is an outage, not an idle queue.
    pub(crate) empty_since: Mutex<Option<Instant>>,
    /// Cancelled to stop: no new receive, no new message started.
    pub(crate) stop: CancellationToken,
    /// Cancelled when the shutdown timeout has passed: running work is dropped and released.
    pub(crate) abandon: CancellationToken,
    /// The batches being handled.
    pub(crate) batches: TaskTracker,
    /// Why the run must end with an error, if it must.
    pub(crate) fatal: Mutex<Option<RunnerError>>,
}

impl<E> Shared<E> {
    pub(crate) fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// How long the queue has been idle: receives answered, empty, and nothing settled since.
    pub(crate) fn idle_for(&self) -> Duration {
        let empty = self
            .empty_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map_or(Duration::ZERO, |t| t.elapsed());
        let quiet = self.last_activity.lock().unwrap_or_else(PoisonError::into_inner).elapsed();
        empty.min(quiet)
    }

    /// Records what a receive came back with, for the idle clock.
    fn saw_receive(&self, brought_messages: Option<bool>) {
        let mut empty_since = self.empty_since.lock().unwrap_or_else(PoisonError::into_inner);
        match brought_messages {
            Some(false) => {
                empty_since.get_or_insert_with(Instant::now);
            }
            // Messages, or a failure: not idle.
            Some(true) | None => *empty_since = None,
        }
    }

    fn fail(&self, error: RunnerError) {
        self.fatal.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(error);
        self.stop.cancel();
    }

    /// Makes messages visible again at once (never started, or abandoned) and counts them.
    async fn release(&self, records: &[&SqsMessage]) {
        let released = self.set_visibility(records, |_| 0).await;
        Stats::add(&self.stats.released, released);
    }

    /// Sets each message's visibility; returns how many were set.
    async fn set_visibility(
        &self,
        records: &[&SqsMessage],
        visibility: impl Fn(&SqsMessage) -> i32,
    ) -> usize {
        let entries = entries(records, visibility);
        settle(
            &self.client,
            &self.queue.url,
            Settle::Visibility,
            &entries,
            Retries::times(VISIBILITY_ATTEMPTS),
        )
        .await
    }
}

/// One long-poll task. Returns when the run stops.
///
/// Cancellation is only honoured while waiting for permits or backing off, never around a
/// ReceiveMessage call: once sent, SQS may already have handed messages over, and dropping the
/// call would leave them invisible until their timeout. What a receive returns after the stop is
/// released at once instead.
pub(crate) async fn poll<E: BatchExecutor>(shared: Arc<Shared<E>>) {
    let config = &shared.config;
    // Lambda's BatchSize when emulating an event source mapping, else one receive's worth.
    let want = config.invoke_batch_size.map_or(usize::from(config.batch_size), NonZeroUsize::get);
    let want = want.min(config.max_in_flight.get());
    let want_permits = u32::try_from(want).unwrap_or(u32::MAX);
    let wait_secs = i32::try_from(config.wait_time.as_secs()).unwrap_or(20);
    let mut failures: u32 = 0;
    loop {
        let permits = tokio::select! {
            biased;
            () = shared.stop.cancelled() => break,
            permits = shared.in_flight.clone().acquire_many_owned(want_permits) => {
                permits.expect("the in-flight semaphore is never closed")
            }
        };
        // SQS starts a message's visibility timeout somewhere between this moment and the answer.
        let asked = Instant::now();
        let received = receive(&shared, want, wait_secs).await;
        let messages = match received {
            Ok(messages) => {
                shared.saw_receive(Some(!messages.is_empty()));
                if failures > 0 {
                    tracing::info!(failed_attempts = failures, "SQS answers again; polling resumed");
                    failures = 0;
                }
                messages
            }
            Err(err) => {
                drop(permits);
                shared.saw_receive(None);
                shared.stats.receive_errors.inc();
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
        let messages = gather(&shared, messages, want).await;
        Stats::add(&shared.stats.received, messages.len());
        shared.touch();
        let records: Vec<SqsMessage> =
            messages.into_iter().map(|m| lambda_record(m, &shared.queue, &config.region)).collect();
        if shared.stop.is_cancelled() {
            shared.release(&records.iter().collect::<Vec<_>>()).await;
            break;
        }
        let mut permits = permits;
        drop(permits.split(want - records.len())); // give back what this receive did not fill
        let task = run_batch(Arc::clone(&shared), records, asked, permits);
        shared.batches.spawn(task);
    }
}

/// One ReceiveMessage call for up to `want` messages (at most 10), all attributes included.
async fn receive<E>(
    shared: &Shared<E>,
    want: usize,
    wait_secs: i32,
) -> Result<Vec<aws_sdk_sqs::types::Message>, aws_sdk_sqs::error::SdkError<ReceiveMessageError>> {
    let max = i32::try_from(want.min(usize::from(MAX_BATCH_SIZE))).unwrap_or(10);
    let output = shared
        .client
        .receive_message()
        .queue_url(&shared.queue.url)
        .max_number_of_messages(max)
        .wait_time_seconds(wait_secs)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await?;
    Ok(output.messages.unwrap_or_default())
}

/// Lambda's batching window: after the first messages arrive, keep receiving until the batch
/// holds `want` messages or the window has passed. Without a window, one receive is the batch.
async fn gather<E>(
    shared: &Shared<E>,
    mut messages: Vec<aws_sdk_sqs::types::Message>,
    want: usize,
) -> Vec<aws_sdk_sqs::types::Message> {
    let window = shared.config.batching_window;
    if window.is_zero() {
        return messages;
    }
    let window_ends = Instant::now() + window;
    while messages.len() < want && !shared.stop.is_cancelled() {
        let left = window_ends.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let wait_secs = i32::try_from(left.as_secs().min(20)).unwrap_or(20);
        match receive(shared, want - messages.len(), wait_secs).await {
            Ok(more) if more.is_empty() && wait_secs == 0 => break,
            Ok(more) => messages.extend(more),
            // The batch so far is handled; the next receive reports the fault.
            Err(_) => break,
        }
    }
    messages
}

/// Handles one received batch and settles it; holds its in-flight permits until it is done.
///
/// While the batch runs, its messages are kept invisible (heartbeat). Only once the heartbeat has
/// returned are the results settled: successes deleted, failures given their retry back-off,
/// messages never started released at once.
async fn run_batch<E: BatchExecutor>(
    shared: Arc<Shared<E>>,
    records: Vec<SqsMessage>,
    asked: Instant,
    permits: OwnedSemaphorePermit,
) {
    let in_flight = i64::try_from(records.len()).unwrap_or(i64::MAX);
    shared.stats.in_flight.inc_by(in_flight);
    let done = CancellationToken::new();
    let invisible_until = Mutex::new(asked + shared.queue.visibility_timeout);
    let heartbeat = async {
        if shared.config.heartbeat {
            let visibility = shared.queue.visibility_timeout;
            let (client, url) = (&shared.client, &shared.queue.url);
            keep_invisible(client, url, &records, visibility, asked, &invisible_until, &done).await;
        }
    };
    let work = async {
        let started = Instant::now();
        let report = tokio::select! {
            report = shared.executor.execute(&records, &shared.stop) => Some(report),
            () = shared.abandon.cancelled() => None,
        };
        shared.stats.batch_seconds.observe(started.elapsed().as_secs_f64());
        done.cancel();
        report
    };
    let (report, ()) = tokio::join!(work, heartbeat);
    shared.stats.in_flight.dec_by(in_flight);

    let Some(report) = report else {
        tracing::warn!(
            messages = records.len(),
            "shutdown timeout passed with messages still running; releasing them"
        );
        shared.release(&records.iter().collect::<Vec<_>>()).await;
        return;
    };
    let (ok, failed, skipped) = report.counts();
    Stats::add(&shared.stats.succeeded, ok);
    Stats::add(&shared.stats.failed, failed);
    Stats::add(&shared.stats.skipped, skipped);

    let mut to_delete = Vec::with_capacity(ok);
    let mut to_release = Vec::new();
    let mut to_back_off = Vec::new();
    for (record, outcome) in records.iter().zip(&report.outcomes) {
        match outcome {
            Outcome::Succeeded => to_delete.push(record),
            Outcome::NotStarted(NotStarted::Stopped) => to_release.push(record),
            Outcome::Failed(_) => to_back_off.push(record),
            // The rest of a failed FIFO group waits behind the failed message anyway.
            Outcome::NotStarted(NotStarted::EarlierInGroupFailed) => {}
        }
    }
    if !to_delete.is_empty() {
        let entries = entries(&to_delete, |_| 0);
        // Worth retrying for as long as SQS keeps the messages hidden: a delete that lands in
        // that time still prevents the second delivery. A shutdown that runs out cuts it short.
        let hidden_until = *invisible_until.lock().unwrap_or_else(PoisonError::into_inner);
        let retries = Retries::times(DELETE_ATTEMPTS).until(hidden_until, &shared.abandon);
        let deleted = settle(&shared.client, &shared.queue.url, Settle::Delete, &entries, retries).await;
        Stats::add(&shared.stats.deleted, deleted);
        Stats::add(&shared.stats.delete_failed, entries.len() - deleted);
        if deleted > 0 && Instant::now() > hidden_until {
            // SQS may have handed these out again before the delete reached it (work longer than
            // the visibility timeout without a heartbeat, or an endpoint that stalled).
            Stats::add(&shared.stats.deleted_late, deleted);
            tracing::warn!(
                messages = deleted,
                late_ms = u64::try_from(hidden_until.elapsed().as_millis()).unwrap_or(u64::MAX),
                "deleted only after the visibility timeout had run out: SQS may deliver these again"
            );
        }
    }
    if !to_release.is_empty() {
        shared.release(&to_release).await;
    }
    // Without a back-off, a failure stays invisible for the queue's own timeout, as under Lambda.
    if let Some(backoff) = shared.config.retry_backoff.filter(|_| !to_back_off.is_empty()) {
        shared
            .set_visibility(&to_back_off, |record| {
                i32::try_from(backoff.visibility(receive_count(record)).as_secs()).unwrap_or(i32::MAX)
            })
            .await;
    }
    shared.touch();
    drop(permits);
}

fn entries<'a>(records: &[&'a SqsMessage], visibility: impl Fn(&SqsMessage) -> i32) -> Vec<Entry<'a>> {
    records
        .iter()
        .filter_map(|r| {
            Some(Entry { receipt_handle: r.receipt_handle.as_deref()?, visibility_secs: visibility(r) })
        })
        .collect()
}

/// Exponential back-off from 1 s, capped, with up to a quarter taken off at random so that
/// pollers do not retry in step.
fn backoff(failures: u32) -> Duration {
    let base = Duration::from_secs(1).saturating_mul(1 << failures.saturating_sub(1).min(5)).min(MAX_BACKOFF);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    base - base / 4 * (nanos % 1000) / 1000
}

/// Stops the run once receives have come back empty for `idle`, nothing was settled in that
/// time, and nothing is in flight. A failing or hanging endpoint does not count as idle.
pub(crate) async fn exit_when_idle<E>(shared: Arc<Shared<E>>, idle: Duration) {
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
