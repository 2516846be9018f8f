//! A long-poll task: take permits, receive, gather a batch, hand it on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::Message;
use sqs_batch::SqsMessage;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::backoff::{Throttle, pause_after};
use super::batch::RunShared;
use super::executor::BatchExecutor;
use super::idle::Idle;
use crate::aws::records::lambda_record;
use crate::aws::settle::VISIBILITY_ATTEMPTS;
use crate::aws::{Connection, Retries, Sqs, may_have_reached_sqs};
use crate::error::RunnerError;
use crate::observe::Stats;
use crate::template::filter::Filters;

/// One long-poll task and the handles it works with.
pub(crate) struct Poller<E> {
    pub(crate) sqs: Sqs,
    pub(crate) connection: Connection,
    /// One permit per message held: taken before a receive, for a whole batch.
    pub(crate) permits: Arc<Semaphore>,
    /// Messages per batch.
    pub(crate) target: usize,
    pub(crate) long_poll: Duration,
    /// `--exit-when-idle`: no receive may outlast it (see [`Idle::receive_wait`]).
    pub(crate) exit_when_idle: Option<Duration>,
    pub(crate) batching_window: Duration,
    pub(crate) idle: Arc<Idle>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) throttle: Arc<Throttle>,
    pub(crate) stop: CancellationToken,
    pub(crate) batches: Arc<RunShared<E>>,
    pub(crate) filters: Arc<Filters>,
}

/// How often a poller that holds back for a due idle exit looks again: the exit comes within a
/// second, or another poller's messages made the run busy again.
const IDLE_EXIT_RECHECK: Duration = Duration::from_millis(100);

/// Attempts at deleting filtered records.
const FILTERED_DELETE_ATTEMPTS: u32 = 3;

impl<E: BatchExecutor> Poller<E> {
    /// Receives batches and starts them until the run stops.
    ///
    /// Cancellation is only honoured while waiting for permits or backing off, never around a
    /// ReceiveMessage call: once sent, SQS may already have handed messages over, and dropping
    /// the call would leave them invisible until their timeout. What a receive returns after the
    /// stop is released at once instead.
    ///
    /// # Errors
    /// [`RunnerError::QueueNotFound`] when the queue disappears (a restarted LocalStack forgets
    /// its queues): the run ends.
    pub(crate) async fn run(self) -> Result<(), RunnerError> {
        let want_permits = u32::try_from(self.target).unwrap_or(u32::MAX);
        let mut failures: u32 = 0;
        loop {
            if !self.throttle.wait(&self.stop).await {
                break;
            }
            let wait = match self.exit_when_idle {
                None => self.long_poll,
                Some(after) => match self.idle.receive_wait(self.long_poll, after) {
                    Some(wait) => wait,
                    // The idle exit is due: receive nothing more unless the run gets busy again.
                    None => {
                        tokio::select! {
                            () = self.stop.cancelled() => break,
                            () = tokio::time::sleep(IDLE_EXIT_RECHECK) => continue,
                        }
                    }
                },
            };
            let permits = tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                permits = Arc::clone(&self.permits).acquire_many_owned(want_permits) => {
                    permits.expect("the in-flight semaphore is never closed")
                }
            };
            // SQS starts a message's visibility timeout somewhere between this moment and the answer.
            let asked = Instant::now();
            let messages = match self.sqs.receive(self.target, wait).await {
                Ok(messages) => {
                    self.idle.received(messages.len());
                    if failures > 0 {
                        tracing::info!(failed_attempts = failures, "SQS answers again; polling resumed");
                        failures = 0;
                    }
                    messages
                }
                Err(err) => {
                    drop(permits);
                    self.stats.receive_errors.inc();
                    if err.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) {
                        return Err(RunnerError::QueueNotFound {
                            queue: self.sqs.queue().url.clone(),
                            endpoint: self.connection.describe(),
                            region: self.connection.region.clone(),
                        });
                    }
                    failures += 1;
                    let reason = DisplayErrorContext(&err).to_string();
                    if may_have_reached_sqs(&err) {
                        self.cut_off(&reason);
                    } else {
                        self.idle.receive_failed();
                        if failures == 1 {
                            tracing::warn!(%reason, "ReceiveMessage failed; retrying with back-off until SQS answers");
                        }
                    }
                    if failures > 1 {
                        tracing::debug!(%reason, failed_attempts = failures, "ReceiveMessage failed again");
                    }
                    tokio::select! {
                        () = self.stop.cancelled() => break,
                        () = tokio::time::sleep(pause_after(failures)) => continue,
                    }
                }
            };
            let records = self.keep_matching(messages).await;
            if records.is_empty() {
                continue;
            }
            let records = self.gather(records).await;
            if self.stop.is_cancelled() {
                self.release(&records).await;
                break;
            }
            let mut permits = permits;
            drop(permits.split(self.target - records.len())); // give back what this batch did not fill
            self.batches.start(records, asked, permits);
        }
        Ok(())
    }

    /// The received messages as Lambda records, without those no filter matches: those are
    /// deleted at once, as Lambda does, never handled and never retried.
    async fn keep_matching(&self, messages: Vec<Message>) -> Vec<SqsMessage> {
        Stats::add(&self.stats.received, messages.len());
        let records =
            messages.into_iter().map(|m| lambda_record(m, self.sqs.queue(), &self.connection.region));
        if self.filters.is_empty() {
            return records.collect();
        }
        let (keep, drop): (Vec<SqsMessage>, Vec<SqsMessage>) = records.partition(|r| self.filters.matches(r));
        if !drop.is_empty() {
            for record in &drop {
                tracing::debug!(
                    message_id = record.message_id.as_deref(),
                    "filtered out: deleted without being handled"
                );
            }
            let refs: Vec<&SqsMessage> = drop.iter().collect();
            // What is not deleted comes back after its visibility timeout and is filtered again.
            self.sqs.delete(&refs, Retries::times(FILTERED_DELETE_ATTEMPTS)).await;
            Stats::add(&self.stats.filtered, drop.len());
            self.idle.settled(drop.len());
        }
        keep
    }

    /// Lambda's batching window: after the first messages arrive, keep receiving until the batch
    /// holds `target` messages or the window has passed; filtered records do not count. Without a
    /// window, one receive is the batch.
    async fn gather(&self, mut records: Vec<SqsMessage>) -> Vec<SqsMessage> {
        if self.batching_window.is_zero() {
            return records;
        }
        let window_ends = Instant::now() + self.batching_window;
        while records.len() < self.target && !self.stop.is_cancelled() {
            let left = window_ends.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.sqs.receive(self.target - records.len(), left).await {
                Ok(more) => {
                    self.idle.received(more.len());
                    if more.is_empty() && left < Duration::from_secs(1) {
                        break; // a wait under a second is no wait: the window is over
                    }
                    records.extend(self.keep_matching(more).await);
                }
                Err(err) => {
                    // The batch so far is handled; the next receive reports the fault.
                    if may_have_reached_sqs(&err) {
                        self.cut_off(&DisplayErrorContext(&err).to_string());
                    } else {
                        self.idle.receive_failed();
                    }
                    break;
                }
            }
        }
        records
    }

    /// A receive that may have reached SQS got no answer: SQS may have handed it messages that
    /// nobody will read. They come back after the visibility timeout; the run counts the
    /// cut-off, says so once per streak, and is not idle before they are back.
    fn cut_off(&self, reason: &str) {
        self.stats.receives_cut_off.inc();
        let visibility = self.sqs.queue().visibility_timeout;
        if self.idle.receive_cut_off(visibility) {
            tracing::warn!(
                %reason,
                visibility_timeout_secs = visibility.as_secs(),
                "a ReceiveMessage was cut off before SQS answered: messages it may have taken come back after the visibility timeout, {} s; an idle exit waits for them",
                visibility.as_secs()
            );
        }
    }

    /// Makes messages received after a stop visible again at once.
    async fn release(&self, records: &[SqsMessage]) {
        let all: Vec<(&SqsMessage, i32)> = records.iter().map(|r| (r, 0)).collect();
        let released = self.sqs.set_visibility(&all, Retries::times(VISIBILITY_ATTEMPTS)).await;
        Stats::add(&self.stats.released, released);
        self.idle.settled(records.len());
    }
}
