//! The batch core shared by both runtimes: SQS records in, per-message outcomes and a partial
//! batch response out.
//!
//! The Lambda adapter and `local-runner` both call [`process_batch`], so what a batch does locally
//! is what it does in Lambda:
//! - each message runs in a task of its own, at most [`Run::concurrency`] at once, so a
//!   CPU-heavy handler uses every core of a multi-thread runtime;
//! - a panic in the handler fails that message alone;
//! - FIFO queues (source ARN ending in `.fifo`; a standard "fair" queue's group ids do not make
//!   it one): the messages of one group run in order, one at a time; after a group's first
//!   failure the rest of that group is not started and is reported failed, so SQS redelivers it
//!   in order. By AWS's rule ([`crate::options::FifoMode::StopBatch`], the default) the batch runs in its
//!   order, one message at a time, and nothing starts after the first failure; with
//!   [`crate::options::FifoMode::SkipGroup`] the groups run at once and only the failed group stops;
//! - once [`Run::stop`] is cancelled, or the deadline reserve is reached, no further message
//!   starts and every handler's [`Context`](crate::context::Context) says so; messages already running finish;
//! - with [`Run::timeout`] (a runtime that enforces Lambda's timeout itself), a message still
//!   running at the deadline is stopped there and fails as [`TimedOut`];
//! - once [`Run::abandon`] is cancelled, running messages are given up: what finished keeps its
//!   outcome, what did not is reported [`Outcome::Abandoned`].

mod lane;
mod lanes;
mod report;
mod settings;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::SqsMessage;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::handler::Handler;

pub use crate::text::panic_text;
use lane::{Batch, Lane};
pub use lanes::is_fifo;
use lanes::{Slots, plan_lanes};
pub use report::{BatchReport, Counts, NotStarted, Outcome};
pub use settings::Run;

/// A batch's records, their bodies apart, as [`process_batch`] takes them: the core hands each
/// body to the handler's [`parse`](Handler::parse) by value, so a message in flight holds its
/// body once, as the parsed message, rather than in its record and again in its message.
#[derive(Debug, Default)]
pub struct Records {
    records: Arc<[SqsMessage]>,
    bodies: Vec<Option<String>>,
}

impl Records {
    /// `records`, each body taken out of its record.
    #[must_use]
    pub fn new(mut records: Vec<SqsMessage>) -> Self {
        let bodies = records.iter_mut().map(|record| record.body.take()).collect();
        Self { records: records.into(), bodies }
    }

    /// The records without their bodies: what a runtime keeps for after the batch (the message
    /// ids of a partial batch response, the receipt handles of a delete).
    #[must_use]
    pub fn records(&self) -> &Arc<[SqsMessage]> {
        &self.records
    }

    /// How many records there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, each with its body again: for a runtime that hands the batch on whole (to a
    /// Lambda function's process, as an event).
    #[must_use]
    pub fn into_whole(self) -> Vec<SqsMessage> {
        let mut records = self.records.to_vec();
        for (record, body) in records.iter_mut().zip(self.bodies) {
            record.body = body;
        }
        records
    }
}

impl From<Vec<SqsMessage>> for Records {
    fn from(records: Vec<SqsMessage>) -> Self {
        Self::new(records)
    }
}

/// Handles a batch of records and reports what happened to each.
///
/// Never fails and never panics because of a record: every record gets exactly one outcome.
/// Must be called inside a tokio runtime: each lane of the batch is a task of its own.
pub async fn process_batch<H: Handler>(handler: &Arc<H>, records: Records, run: &Run) -> BatchReport {
    let Records { records, bodies } = records;
    let stop = run.stop.child_token();
    let stop_at = run.deadline.and_then(|deadline| start_limit(deadline, run.deadline_reserve));
    if stop_at.is_some_and(|at| at <= Instant::now()) {
        tracing::warn!(
            reserve_ms = run.deadline_reserve.as_millis(),
            "invoked inside the deadline reserve: starting nothing"
        );
        stop.cancel();
    }

    // Where running work is cut off, when this run enforces its timeout itself.
    let cut_off = run
        .timeout
        .zip(run.deadline)
        .and_then(|(timeout, deadline)| Some((start_limit(deadline, Duration::ZERO)?, timeout)));

    let (order, lanes) = plan_lanes(&records, run.fifo);
    let count = records.len();
    let batch = Arc::new(Batch {
        handler: Arc::clone(handler),
        bodies: bodies.into_iter().map(std::sync::Mutex::new).collect(),
        records,
        order: order.into(),
        deadline: run.deadline,
        cut_off,
        request_id: run.request_id.clone(),
        invocation_trace: run.invocation_trace,
        stop: stop.clone(),
        slots: Slots::new(count),
        duplicates: crate::context::duplicates(count),
    });
    let lane = |range: Range<usize>| Lane { batch: Arc::clone(&batch), range };
    let mut waiting = lanes.into_iter();
    let mut running = JoinSet::new();
    for range in waiting.by_ref().take(run.concurrency.get()) {
        running.spawn(lane(range).run());
    }

    // A year away stands for "never": the branch is disabled without a deadline anyway.
    let reserve_reached = tokio::time::sleep_until(stop_at.unwrap_or_else(|| Instant::now() + YEAR));
    tokio::pin!(reserve_reached);
    let mut deadline_armed = stop_at.is_some() && !stop.is_cancelled();
    loop {
        tokio::select! {
            biased;
            () = run.abandon.cancelled() => {
                stop.cancel();
                // A handler stuck in blocking code cannot be interrupted: leave it behind rather
                // than wait for it. What it reports afterwards is ignored.
                running.abort_all();
                running.detach_all();
                break;
            }
            () = &mut reserve_reached, if deadline_armed => {
                deadline_armed = false;
                tracing::warn!(reserve_ms = run.deadline_reserve.as_millis(), "deadline near: starting no further messages");
                stop.cancel();
            }
            joined = running.join_next() => match joined {
                None => break,
                Some(_) => {
                    if let Some(range) = waiting.next() {
                        running.spawn(lane(range).run());
                    }
                }
            }
        }
    }
    let mut report = batch.slots.report(run.abandon.is_cancelled());
    for (mark, outcome) in batch.duplicates.iter().zip(&report.outcomes) {
        for metric in mark.take_metrics() {
            // A failed message comes back and records again: only what it asked to keep counts.
            if outcome.is_success() || metric.kept_on_failure() {
                report.metrics.add(&metric);
            }
        }
    }
    report
}

/// Why a message failed when its batch's own timeout ([`Run::timeout`]) cut its work off: the
/// source of that [`crate::error::Error::Transient`], worded as the runner words a Lambda timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "timed out after {after:?}: the function's deadline passed while the message ran, and its work was stopped"
)]
pub struct TimedOut {
    /// The function timeout.
    pub after: Duration,
}

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// When the last message may start: the deadline minus the reserve, on tokio's clock; `None` for a
/// deadline too far away for the clock to hold (no limit in practice), never an overflow.
fn start_limit(deadline: SystemTime, reserve: Duration) -> Option<Instant> {
    let remaining = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
    Instant::now().checked_add(remaining.saturating_sub(reserve))
}
