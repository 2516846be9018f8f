//! One received batch: kept invisible while it runs, then settled with SQS.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use sqs_batch::runtime::retry::{self, RequeueReason, receive_count};
use sqs_batch::runtime::{BatchReport, Records};
use sqs_batch::{Outcome, SqsMessage};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Mode;
use super::backoff::Throttle;
use super::executor::{BatchExecutor, Execution};
use super::heartbeat::Housekeeper;
use super::idle::Idle;
use crate::aws::settle::VISIBILITY_ATTEMPTS;
use crate::aws::{Retries, Sqs};
use crate::error::RunnerError;
use crate::observe::Stats;

/// Attempts at deleting what succeeded, at the least: a message not deleted is handled again, so
/// deletes go on retrying while the messages are still hidden.
const DELETE_ATTEMPTS: u32 = 5;

/// The state one run shares among its pollers and batches: the executor, the queue, the
/// heartbeat, and the run's counters and signals. One per run, behind an `Arc`.
pub(crate) struct RunShared<E> {
    pub(crate) executor: E,
    pub(crate) sqs: Sqs,
    pub(crate) stats: Arc<Stats>,
    pub(crate) idle: Arc<Idle>,
    pub(crate) heartbeat: Option<Housekeeper>,
    /// How batches are settled: who sets failed messages' visibility, and at what back-off.
    pub(crate) mode: Mode,
    pub(crate) throttle: Arc<Throttle>,
    /// Cancelled to stop: no new message starts.
    pub(crate) stop: CancellationToken,
    /// Cancelled when the shutdown timeout has passed: running work is given up.
    pub(crate) abandon: CancellationToken,
    /// The batches running.
    pub(crate) tracker: TaskTracker,
    /// Why the run cannot go on, once something said so (the function cannot start, a batch's
    /// task panicked): the run stops and returns it.
    pub(crate) fatal: Mutex<Option<RunnerError>>,
}

impl<E: BatchExecutor> RunShared<E> {
    /// Runs `records` in a task of its own; `permits` (one per record) are held until it is
    /// settled. `asked` is when their ReceiveMessage was sent.
    pub(crate) fn start(
        self: &Arc<Self>,
        records: Vec<SqsMessage>,
        asked: Instant,
        permits: OwnedSemaphorePermit,
    ) {
        let batches = Arc::clone(self);
        self.tracker.spawn(async move {
            // A panic here is a bug of the runner, not of a handler (the batch core catches
            // those): it stops the run with an error instead of leaving a batch in flight forever.
            let ran =
                AssertUnwindSafe(batches.run(Records::new(records), asked, permits)).catch_unwind().await;
            if let Err(panic) = ran {
                batches.stop_run(RunnerError::Panicked {
                    task: "batch task",
                    text: sqs_batch::runtime::panic_text(&*panic),
                });
            }
        });
    }

    /// Stops the run with `error` (the first one given wins).
    pub(crate) fn stop_run(&self, error: RunnerError) {
        tracing::error!(%error, "stopping the run");
        self.fatal.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(error);
        self.stop.cancel();
    }

    /// The error that stopped the run, if one did.
    pub(crate) fn take_fatal(&self) -> Option<RunnerError> {
        self.fatal.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Handles one batch and settles it.
    ///
    /// While the batch runs, its messages are kept invisible (heartbeat). Only once the heartbeat
    /// has returned are the results settled: successes deleted, failures given their retry
    /// back-off, messages never started or given up released at once.
    async fn run(&self, batch: Records, asked: Instant, permits: OwnedSemaphorePermit) {
        // The records without their bodies: each body goes to the handler's parse (or into the
        // function's event) and is held there alone.
        let records = Arc::clone(batch.records());
        let gauge = i64::try_from(records.len()).unwrap_or(i64::MAX);
        self.stats.in_flight.inc_by(gauge);
        // SQS starts a message's visibility timeout between the receive's request and its answer.
        let invisible_until = Arc::new(Mutex::new(asked + self.sqs.queue().visibility_timeout));
        let heartbeat = self.heartbeat.as_ref().and_then(|housekeeper| {
            housekeeper.keep_invisible(&self.sqs, &records, asked, Arc::clone(&invisible_until))
        });
        let started = Instant::now();
        Stats::add(&self.stats.invoked, records.len());
        let mut execution = self.executor.execute(batch, &self.stop, &self.abandon).await;
        if let Some(error) = execution.fatal.take() {
            self.stop_run(error);
        }
        if execution.failed_whole {
            Stats::add(&self.stats.failed_invoke, records.len());
        }
        self.stats.batch_seconds.observe(started.elapsed().as_secs_f64());
        self.stats.batch_size.observe(records.len() as f64);
        if let Some(age) = oldest_age(&records) {
            self.stats.oldest_message_age.set(age.as_secs_f64());
        }
        if let Some(heartbeat) = heartbeat {
            // From here on no extension is in flight, so the delete below cannot race one.
            heartbeat.stop().await;
        }
        self.stats.in_flight.dec_by(gauge);
        self.throttle.invocation(execution.failed_whole);
        let hidden_until = *invisible_until.lock().unwrap_or_else(PoisonError::into_inner);
        self.settle(&records, &execution, hidden_until).await;
        self.idle.settled(records.len());
        drop(permits);
    }

    /// Deletes what succeeded, and gives every other message its next visibility by the
    /// framework's [`retry::plan`]: failures their back-off (and the FIFO messages held back
    /// behind them the same), what never started or was given up 0. Under `--lambda` the
    /// function has already set its failures' visibility, as it does when deployed: the runner
    /// only releases what it never handed over.
    async fn settle(&self, records: &[SqsMessage], execution: &Execution, hidden_until: Instant) {
        let report = &execution.report;
        let counts = report.counts();
        Stats::add(&self.stats.succeeded, counts.succeeded);
        Stats::add(&self.stats.duplicate, counts.duplicate);
        Stats::add(&self.stats.ignored, counts.ignored);
        Stats::add(&self.stats.failed, counts.failed);
        Stats::add(&self.stats.skipped, counts.not_started);
        Stats::add(&self.stats.abandoned, counts.abandoned);
        self.stats.user.add(&report.metrics);
        if counts.abandoned > 0 {
            tracing::warn!(
                messages = counts.abandoned,
                "shutdown timeout passed with messages still running; releasing them"
            );
        }

        let mut to_delete = Vec::with_capacity(counts.succeeded + counts.duplicate + counts.ignored);
        for (record, outcome) in records.iter().zip(&report.outcomes) {
            let message_id = record.message_id.as_deref().unwrap_or_default();
            match outcome {
                Outcome::Succeeded | Outcome::Duplicate | Outcome::Ignored(_) => {
                    self.stats.failures.succeeded(message_id, receive_count(record));
                    to_delete.push(record);
                }
                Outcome::Failed(error) => {
                    self.stats.failures.failed(message_id, &format!("{error:#}"), receive_count(record));
                }
                Outcome::NotStarted(_) | Outcome::Abandoned => {}
            }
        }
        let dead_letter = self.sqs.queue().redrive.is_some();
        let by_function = self.mode.requeues_failures();
        let backoff = self.mode.retry_backoff();
        // The function draws its own jitter: the runner counts on the latest it can be.
        let plan = if by_function {
            retry::plan(records, report, backoff.as_ref(), dead_letter, || 1.0)
        } else {
            retry::plan(records, report, backoff.as_ref(), dead_letter, fastrand::f64)
        };
        let mut to_release = Vec::new();
        let mut later: Vec<(&SqsMessage, i32)> = Vec::new();
        for entry in &plan {
            let record = &records[entry.index];
            match entry.reason {
                RequeueReason::Released => to_release.push((record, entry.seconds)),
                RequeueReason::Failed | RequeueReason::HeldBack if !by_function => {
                    later.push((record, entry.seconds))
                }
                RequeueReason::Failed | RequeueReason::HeldBack => {}
            }
        }
        // Under --lambda the function sets its failures' visibility only if it says it did (an
        // `sqs-batch` function's `batch done` line): any other is left to the queue's timeout.
        let to_the_queue = by_function && (execution.failed_whole || !execution.failures_requeued);
        self.expect_back(report, &plan, to_the_queue, hidden_until, dead_letter);

        if !to_delete.is_empty() {
            // Worth retrying for as long as SQS keeps the messages hidden: a delete that lands in
            // that time still prevents the second delivery. A shutdown that runs out cuts it short.
            let retries = Retries::times(DELETE_ATTEMPTS).until(hidden_until, &self.abandon);
            let deleted = self.sqs.delete(&to_delete, retries).await;
            Stats::add(&self.stats.deleted, deleted);
            Stats::add(&self.stats.delete_failed, to_delete.len() - deleted);
            if deleted > 0 && Instant::now() > hidden_until {
                // SQS may have handed these out again before the delete reached it (work longer than
                // the visibility timeout without a heartbeat, or an endpoint that stalled).
                Stats::add(&self.stats.deleted_late, deleted);
                tracing::warn!(
                    messages = deleted,
                    late_ms = u64::try_from(hidden_until.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "deleted only after the visibility timeout had run out: SQS may deliver these again"
                );
            }
        }
        if !to_release.is_empty() {
            let released = self.sqs.set_visibility(&to_release, Retries::times(VISIBILITY_ATTEMPTS)).await;
            Stats::add(&self.stats.released, released);
        }
        if !later.is_empty() {
            let set = self.sqs.set_visibility(&later, Retries::times(VISIBILITY_ATTEMPTS)).await;
            Stats::add(&self.stats.requeue_failed, later.len() - set);
        }
    }

    /// Tells the idle clock when the messages that did not succeed come back: at their planned
    /// visibility, or, when the plan leaves them to the queue (no back-off, an invocation that
    /// failed as a whole under `--lambda`, or a function that did not say it set them), when
    /// their receive's visibility runs out.
    fn expect_back(
        &self,
        report: &BatchReport,
        plan: &[retry::Requeue],
        to_the_queue: bool,
        hidden_until: Instant,
        dead_letter: bool,
    ) {
        let now = Instant::now();
        // The plan has one entry per message that did not succeed, none twice: the latest is the
        // latest planned time, or the receive's own visibility for any message it leaves to the
        // queue. Linear in the batch, which may hold 10,000 messages.
        let failed = report.outcomes.iter().filter(|outcome| !outcome.is_success()).count();
        let latest_planned =
            plan.iter().map(|entry| now + Duration::from_secs(entry.seconds.unsigned_abs().into())).max();
        let latest = match (failed, latest_planned) {
            (0, _) => None,
            (_, Some(planned)) if !to_the_queue && plan.len() >= failed => Some(planned),
            (_, Some(planned)) if !to_the_queue => Some(planned.max(hidden_until)),
            _ => Some(hidden_until),
        };
        if let Some(at) = latest {
            self.idle.due_back(at.max(now), dead_letter);
        }
    }
}

/// How long ago the batch's oldest message was sent, from its `SentTimestamp`.
fn oldest_age(records: &[SqsMessage]) -> Option<std::time::Duration> {
    let sent = records.iter().filter_map(|r| r.attributes.get("SentTimestamp")?.parse::<u64>().ok()).min()?;
    let sent = std::time::UNIX_EPOCH + std::time::Duration::from_millis(sent);
    std::time::SystemTime::now().duration_since(sent).ok()
}
