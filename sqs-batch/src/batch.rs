//! The batch core shared by both runtimes: SQS records in, per-message outcomes and a partial
//! batch response out.
//!
//! The Lambda adapter and `local-runner` both call [`process_batch`], so what a batch does locally
//! is what it does in Lambda:
//! - each message runs in a task of its own, at most [`Run::concurrency`] at once, so a
//!   CPU-heavy handler uses every core of a multi-thread runtime;
//! - a panic in the handler fails that message alone;
//! - FIFO queues (source ARN ending in `.fifo`): the messages of one group run in order, one at
//!   a time; after a group's first failure the rest of that group is not started and is
//!   reported failed, so SQS redelivers it in order; other groups go on;
//! - once [`Run::stop`] is cancelled, or the deadline reserve is reached, no further message
//!   starts and every handler's [`Context`] says so; messages already running finish;
//! - once [`Run::abandon`] is cancelled, running messages are given up: what finished keeps its
//!   outcome, what did not is reported [`Outcome::Abandoned`].

use std::any::Any;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use futures::FutureExt;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::telemetry::{self, MAX_LOGGED_ERROR_CHARS, MAX_LOGGED_ID_CHARS, MessageScope, clip};
use crate::trace::TraceContext;

use crate::{BatchError, Context, Error, Handler, Options};

/// Attribute Lambda and SQS set on every FIFO message.
const MESSAGE_GROUP_ID: &str = "MessageGroupId";

/// How one batch is run: its limits, and the signals that end it early.
#[derive(Debug, Clone)]
pub struct Run {
    /// The most messages (FIFO: message groups) running at once.
    pub concurrency: NonZeroUsize,
    /// The invocation's deadline, if it has one.
    pub deadline: Option<SystemTime>,
    /// Time kept in hand before the deadline: no message starts after `deadline - reserve`.
    pub deadline_reserve: Duration,
    /// Cancelled: start no further message (a shutdown). Running messages finish.
    pub stop: CancellationToken,
    /// Cancelled: stop waiting for running messages (a shutdown whose time ran out).
    pub abandon: CancellationToken,
    /// The Lambda invocation's request id: a correlation field of every line logged while one
    /// of its messages is handled.
    pub request_id: Option<Arc<str>>,
}

impl Run {
    /// A run with the function's options, no deadline, and signals that never fire.
    #[must_use]
    pub fn new(options: &Options) -> Self {
        Self {
            concurrency: options.concurrency,
            deadline: None,
            deadline_reserve: options.deadline_reserve,
            stop: CancellationToken::new(),
            abandon: CancellationToken::new(),
            request_id: None,
        }
    }

    /// This run as the Lambda invocation `request_id`.
    #[must_use]
    pub fn request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(Arc::from(request_id));
        self
    }

    /// This run with an invocation deadline.
    #[must_use]
    pub fn deadline(mut self, deadline: SystemTime) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// This run, stopped (nothing new starts) when `stop` is cancelled.
    #[must_use]
    pub fn stop_on(mut self, stop: CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    /// This run, giving up on running messages when `abandon` is cancelled.
    #[must_use]
    pub fn abandon_on(mut self, abandon: CancellationToken) -> Self {
        self.abandon = abandon;
        self
    }
}

/// Why a message was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStarted {
    /// An earlier message of the same FIFO group failed (or was not started); handling this one
    /// would break the group's order.
    EarlierInGroupFailed,
    /// The batch was told to stop before this message started (shutdown or deadline).
    Stopped,
}

impl NotStarted {
    /// The `reason` field of a skipped message's log line: stable, for tools and the terminal.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EarlierInGroupFailed => "earlier_in_group_failed",
            Self::Stopped => "stopped",
        }
    }
}

/// What happened to one message.
#[derive(Debug)]
pub enum Outcome {
    /// Handled successfully: the runtime deletes it.
    Succeeded,
    /// Handled and failed: reported as a batch item failure; SQS delivers it again.
    Failed(Error),
    /// Never handled: reported as a batch item failure, so SQS delivers it again.
    NotStarted(NotStarted),
    /// Started, then given up on before it finished (a shutdown whose time ran out): whether its
    /// work happened is unknown, so it is delivered again.
    Abandoned,
}

impl Outcome {
    /// Whether the message was handled successfully and may be deleted.
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded)
    }

    /// The `outcome` field of the per-message log line.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Succeeded => "ok",
            Self::Failed(_) => "failed",
            Self::NotStarted(_) => "skipped",
            Self::Abandoned => "abandoned",
        }
    }
}

/// How many messages of a batch ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// [`Outcome::Succeeded`].
    pub succeeded: usize,
    /// [`Outcome::Failed`].
    pub failed: usize,
    /// [`Outcome::NotStarted`].
    pub not_started: usize,
    /// [`Outcome::Abandoned`].
    pub abandoned: usize,
}

/// The outcome of every record of a batch, in the order the records came.
#[derive(Debug)]
pub struct BatchReport {
    /// `outcomes[i]` belongs to `records[i]` of the batch that was processed.
    pub outcomes: Vec<Outcome>,
}

impl BatchReport {
    /// The partial batch response for Lambda's `ReportBatchItemFailures`: every message that did
    /// not succeed, by `messageId`, in record order.
    ///
    /// # Errors
    /// [`BatchError::UnidentifiedRecord`] when a record that did not succeed has no `messageId`:
    /// it cannot be reported alone, so the whole invocation must fail and every message of the
    /// batch comes back, rather than one being deleted unhandled.
    pub fn to_response(&self, records: &[SqsMessage]) -> Result<SqsBatchResponse, BatchError> {
        let mut response = SqsBatchResponse::default();
        for (index, (record, outcome)) in records.iter().zip(&self.outcomes).enumerate() {
            if outcome.is_success() {
                continue;
            }
            let id = record.message_id.as_deref().filter(|id| !id.is_empty());
            let id = id.ok_or(BatchError::UnidentifiedRecord { index })?;
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.to_owned();
            response.batch_item_failures.push(failure);
        }
        Ok(response)
    }

    /// What the invocation answers: the partial batch response, or, when every message failed
    /// and `options` ask for it (`FAIL_ON_FULL_BATCH_FAILURE`), a failed invocation, so that the
    /// event source mapping backs off. The one place this policy lives: the Lambda adapter and
    /// the test kit both answer through it.
    ///
    /// # Errors
    /// [`BatchError::AllFailed`], and as [`BatchReport::to_response`].
    pub fn respond(&self, records: &[SqsMessage], options: &Options) -> Result<SqsBatchResponse, BatchError> {
        if options.fail_on_full_batch_failure && self.all_failed() {
            let counts = self.counts();
            return Err(BatchError::AllFailed { failed: counts.failed, not_started: counts.not_started });
        }
        self.to_response(records)
    }

    /// How many messages ended each way.
    #[must_use]
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for outcome in &self.outcomes {
            match outcome {
                Outcome::Succeeded => counts.succeeded += 1,
                Outcome::Failed(_) => counts.failed += 1,
                Outcome::NotStarted(_) => counts.not_started += 1,
                Outcome::Abandoned => counts.abandoned += 1,
            }
        }
        counts
    }

    /// Whether the batch failed as a whole: no message succeeded, and at least one was handled
    /// and failed (the rest held back behind failures). A batch stopped before anything started is
    /// not a failed batch.
    #[must_use]
    pub fn all_failed(&self) -> bool {
        let counts = self.counts();
        counts.succeeded == 0 && counts.failed > 0 && counts.abandoned == 0
    }
}

/// Whether the records come from a FIFO queue, by their source ARN.
#[must_use]
pub fn is_fifo(records: &[SqsMessage]) -> bool {
    records.iter().any(|r| r.event_source_arn.as_deref().is_some_and(|arn| arn.ends_with(".fifo")))
}

/// Handles a batch of records and reports what happened to each.
///
/// Never fails and never panics because of a record: every record gets exactly one outcome.
/// Must be called inside a tokio runtime: each lane of the batch is a task of its own.
pub async fn process_batch<H: Handler>(
    handler: &Arc<H>,
    records: &Arc<[SqsMessage]>,
    run: &Run,
) -> BatchReport {
    let slots = Arc::new(Slots::new(records.len()));
    let stop = run.stop.child_token();
    let stop_at = run.deadline.and_then(|deadline| start_limit(deadline, run.deadline_reserve));
    if stop_at.is_some_and(|at| at <= Instant::now()) {
        tracing::warn!(
            reserve_ms = run.deadline_reserve.as_millis(),
            "invoked inside the deadline reserve: starting nothing"
        );
        stop.cancel();
    }

    let (order, lanes) = plan_lanes(records);
    let order: Arc<[usize]> = order.into();
    let lane = |range: Range<usize>| Lane {
        handler: Arc::clone(handler),
        records: Arc::clone(records),
        order: Arc::clone(&order),
        range,
        deadline: run.deadline,
        request_id: run.request_id.clone(),
        stop: stop.clone(),
        slots: Arc::clone(&slots),
    };
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
    slots.report(run.abandon.is_cancelled())
}

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// When the last message may start: the deadline minus the reserve, on tokio's clock; `None` for a
/// deadline too far away for the clock to hold (no limit in practice), never an overflow.
fn start_limit(deadline: SystemTime, reserve: Duration) -> Option<Instant> {
    let remaining = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
    Instant::now().checked_add(remaining.saturating_sub(reserve))
}

/// Every record's outcome as it is known, shared by the lanes while they run.
struct Slots {
    /// `None` once the report has been taken: a lane left behind cannot change it any more.
    outcomes: Mutex<Option<Vec<Option<Outcome>>>>,
    started: Box<[AtomicBool]>,
}

impl Slots {
    fn new(len: usize) -> Self {
        Self {
            outcomes: Mutex::new(Some(std::iter::repeat_with(|| None).take(len).collect())),
            started: std::iter::repeat_with(AtomicBool::default).take(len).collect(),
        }
    }

    fn start(&self, index: usize) {
        self.started[index].store(true, Ordering::Release);
    }

    fn set(&self, index: usize, outcome: Outcome) {
        if let Some(outcomes) = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            outcomes[index] = Some(outcome);
        }
    }

    fn report(&self, abandoned: bool) -> BatchReport {
        let outcomes =
            self.outcomes.lock().unwrap_or_else(PoisonError::into_inner).take().unwrap_or_default();
        let outcomes = outcomes
            .into_iter()
            .zip(&self.started)
            .map(|(outcome, started)| match outcome {
                Some(outcome) => outcome,
                None if !started.load(Ordering::Acquire) => Outcome::NotStarted(NotStarted::Stopped),
                None if abandoned => Outcome::Abandoned,
                // Every started message of a lane that ran to its end has an outcome; a lane can
                // only end early by panicking outside the handler, which the core does not do.
                None => {
                    Outcome::Failed(Error::Panicked("the message's task ended without an outcome".into()))
                }
            })
            .collect();
        BatchReport { outcomes }
    }
}

/// Splits a batch into lanes that may run concurrently: one message each for a standard queue;
/// one message group each (in arrival order) for a FIFO queue.
///
/// Returns record indices reordered so that each lane is a contiguous range of them.
fn plan_lanes(records: &[SqsMessage]) -> (Vec<usize>, Vec<Range<usize>>) {
    if !is_fifo(records) {
        return ((0..records.len()).collect(), (0..records.len()).map(|i| i..i + 1).collect());
    }
    // Groups in order of first appearance; a record without a group id is a group of its own.
    let group_of = |i: usize| records[i].attributes.get(MESSAGE_GROUP_ID).map(String::as_str);
    let mut first_seen: Vec<usize> = Vec::new();
    let group_rank: Vec<usize> = (0..records.len())
        .map(|i| {
            let earlier =
                group_of(i).and_then(|group| first_seen.iter().position(|&j| group_of(j) == Some(group)));
            earlier.unwrap_or_else(|| {
                first_seen.push(i);
                first_seen.len() - 1
            })
        })
        .collect();
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by_key(|&i| group_rank[i]); // stable: keeps arrival order within a group
    let mut lanes = Vec::with_capacity(first_seen.len());
    let mut start = 0;
    for end in 1..=order.len() {
        if end == order.len() || group_rank[order[end]] != group_rank[order[start]] {
            lanes.push(start..end);
            start = end;
        }
    }
    (order, lanes)
}

/// One lane of a batch, owned by its task.
struct Lane<H> {
    handler: Arc<H>,
    records: Arc<[SqsMessage]>,
    order: Arc<[usize]>,
    range: Range<usize>,
    deadline: Option<SystemTime>,
    request_id: Option<Arc<str>>,
    stop: CancellationToken,
    slots: Arc<Slots>,
}

impl<H: Handler> Lane<H> {
    /// Runs the lane's messages one after another, stopping at the first one that does not
    /// succeed; records each outcome as soon as it is known.
    async fn run(self) {
        let mut blocked = None;
        for &index in &self.order[self.range.clone()] {
            let outcome = if let Some(reason) = blocked {
                Outcome::NotStarted(reason)
            } else if self.stop.is_cancelled() {
                Outcome::NotStarted(NotStarted::Stopped)
            } else {
                self.slots.start(index);
                self.run_one(index).await
            };
            if !outcome.is_success() && blocked.is_none() {
                blocked = Some(match outcome {
                    Outcome::NotStarted(NotStarted::Stopped) => NotStarted::Stopped,
                    _ => NotStarted::EarlierInGroupFailed,
                });
            }
            if let Outcome::NotStarted(reason) = &outcome {
                tracing::info!(
                    message_id = self.records[index].message_id.as_deref(),
                    outcome = outcome.label(),
                    reason = reason.as_str()
                );
            }
            self.slots.set(index, outcome);
        }
    }

    /// One message through the core's own layers, outermost first: its span, its outcome line,
    /// its panic caught. The handler and every layer the user added run inside them, so whatever
    /// a layer does, or however it fails, the message gets its span, one outcome and one line.
    async fn run_one(&self, index: usize) -> Outcome {
        let record = &self.records[index];
        let message_id = record.message_id.as_deref();
        // A debug span: the outcome line carries the message id itself, and the JSON and
        // terminal formats show no spans; at info, a span per message would cost a fifth of a
        // consumer's CPU (measured in BENCHMARKS.md) for nothing printed.
        let scope = MessageScope::new(Arc::clone(&self.records), index, self.request_id.clone());
        let trace = scope.trace();
        let span = tracing::debug_span!(
            "message",
            message_id,
            "messaging.system" = "aws_sqs",
            "messaging.operation.type" = "process",
            "messaging.destination.name" = scope.queue_name(),
            "messaging.message.id" = message_id,
            "messaging.message.group_id" = scope.group_id(),
            trace_id = trace.map(tracing::field::display),
        );
        let context = Context::of(Arc::clone(&self.records), index, self.deadline, self.stop.clone());
        // Which delivery this is: a failure's log line says how close it is to the DLQ.
        let receive_count = context.receive_count();
        let handled = caught(&*self.handler, record, context).instrument(span);
        // Lines the handler logs meanwhile carry the message's correlation fields.
        let (result, id) = telemetry::in_message_scope(scope.clone(), handled).await;
        // The outcome line carries message_id itself, so it is logged outside the span.
        let line = OutcomeLine {
            message_id,
            id: id.as_deref(),
            receive_count,
            group_id: scope.group_id(),
            trace_id: trace,
            request_id: self.request_id.as_deref(),
        };
        logged(result, &line)
    }
}

/// Parses and handles one record, a panic in either (or in a layer) caught as that message's
/// failure. Returns what happened, and the producer's id when the body parsed.
async fn caught<H: Handler>(
    handler: &H,
    record: &SqsMessage,
    context: Context,
) -> (Result<(), Error>, Option<String>) {
    let mut id: Option<String> = None;
    let attempt = AssertUnwindSafe(async {
        let message = handler.parse(record)?;
        id = handler.log_id(&message).map(|id| clip(id, MAX_LOGGED_ID_CHARS).into_owned());
        handler.handle(message, context).await
    })
    .catch_unwind()
    .await;
    (attempt.unwrap_or_else(|panic| Err(Error::Panicked(panic_text(&*panic)))), id)
}

/// The fields of a message's outcome line.
#[derive(Clone, Copy)]
struct OutcomeLine<'a> {
    message_id: Option<&'a str>,
    id: Option<&'a str>,
    receive_count: u32,
    group_id: Option<&'a str>,
    trace_id: Option<TraceContext>,
    request_id: Option<&'a str>,
}

/// The message's outcome line, at the level its outcome deserves (a transient failure is expected
/// to pass; the others are bugs or poison), and its outcome.
fn logged(result: Result<(), Error>, line: &OutcomeLine<'_>) -> Outcome {
    let OutcomeLine { message_id, id, receive_count, group_id, trace_id, request_id } = *line;
    let trace_id = trace_id.map(tracing::field::display);
    let error = match result {
        Ok(()) => {
            tracing::info!(message_id, id, receive_count, group_id, trace_id, request_id, outcome = "ok");
            return Outcome::Succeeded;
        }
        Err(error) => error,
    };
    let (kind, retryable) = (error.kind(), error.is_retryable());
    let text = format!("{error:#}");
    let text = &*clip(&text, MAX_LOGGED_ERROR_CHARS);
    if matches!(error, Error::Transient(_)) {
        tracing::warn!(
            message_id,
            id,
            receive_count,
            group_id,
            trace_id,
            request_id,
            outcome = "failed",
            error_kind = kind,
            retryable,
            error = text
        );
    } else {
        tracing::error!(
            message_id,
            id,
            receive_count,
            group_id,
            trace_id,
            request_id,
            outcome = "failed",
            error_kind = kind,
            retryable,
            error = text
        );
    }
    Outcome::Failed(error)
}

/// The text a panic was raised with, when it was raised with text: what a caught panic is reported
/// with, here and by a runtime that catches its own tasks' panics.
pub fn panic_text(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A test handler driven by the body: `ok`, `fail`, `panic`, `sleep` (10 ms of work) or
    /// `forever` (never finishes).
    #[derive(Default)]
    struct Scripted {
        running: AtomicUsize,
        peak: AtomicUsize,
        handled: Mutex<Vec<String>>,
    }

    impl Handler for Scripted {
        type Message = String;

        fn parse(&self, record: &SqsMessage) -> Result<String, Error> {
            record.body.clone().ok_or_else(|| Error::invalid_body(None, "no body"))
        }

        async fn handle(&self, body: String, _context: Context) -> Result<(), Error> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            let work = if body == "forever" { YEAR } else { Duration::from_millis(10) };
            tokio::time::sleep(work).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.handled.lock().unwrap().push(body.clone());
            match body.split(':').next() {
                Some("fail") => Err(Error::permanent(body)),
                Some("panic") => panic!("asked to panic"),
                _ => Ok(()),
            }
        }
    }

    fn record(id: &str, body: &str) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.to_owned());
        record.body = Some(body.to_owned());
        record.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:q".to_owned());
        record
    }

    fn fifo_record(id: &str, group: &str, body: &str) -> SqsMessage {
        let mut record = record(id, body);
        record.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:q.fifo".to_owned());
        record.attributes.insert(MESSAGE_GROUP_ID.to_owned(), group.to_owned());
        record
    }

    fn failed_ids(report: &BatchReport, records: &[SqsMessage]) -> Vec<String> {
        let response = report.to_response(records).unwrap();
        response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    }

    fn limit(concurrency: usize) -> Run {
        let options = Options { concurrency: NonZeroUsize::new(concurrency).unwrap(), ..Options::default() };
        Run::new(&options)
    }

    async fn run(handler: &Arc<Scripted>, records: &[SqsMessage], concurrency: usize) -> BatchReport {
        process_batch(handler, &Arc::from(records), &limit(concurrency)).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_handler_fails_only_its_own_message() {
        let handler = Arc::new(Scripted::default());
        let records = [record("m1", "ok"), record("m2", "panic"), record("m3", "ok")];
        let report = run(&handler, &records, 10).await;
        assert_eq!(failed_ids(&report, &records), ["m2"]);
        assert!(
            matches!(&report.outcomes[1], Outcome::Failed(Error::Panicked(text)) if text == "asked to panic")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_never_exceeds_the_limit_and_reaches_it() {
        let handler = Arc::new(Scripted::default());
        let records: Vec<_> = (0..10).map(|i| record(&format!("m{i}"), "sleep")).collect();
        let report = run(&handler, &records, 3).await;
        assert_eq!(report.counts().succeeded, 10);
        assert_eq!(handler.peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_groups_run_in_order_one_message_at_a_time() {
        let handler = Arc::new(Scripted::default());
        let records = [
            fifo_record("a1", "a", "a:1"),
            fifo_record("a2", "a", "a:2"),
            fifo_record("a3", "a", "a:3"),
            fifo_record("a4", "a", "a:4"),
        ];
        let report = run(&handler, &records, 10).await;
        assert_eq!(report.counts().succeeded, 4);
        assert_eq!(handler.peak.load(Ordering::SeqCst), 1);
        assert_eq!(*handler.handled.lock().unwrap(), ["a:1", "a:2", "a:3", "a:4"]);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_fifo_failure_the_rest_of_its_group_is_not_started() {
        let handler = Arc::new(Scripted::default());
        let records = [
            fifo_record("a1", "a", "fail:a1"),
            fifo_record("b1", "b", "b:1"),
            fifo_record("a2", "a", "a:2"),
            fifo_record("b2", "b", "b:2"),
        ];
        let report = run(&handler, &records, 10).await;
        assert_eq!(failed_ids(&report, &records), ["a1", "a2"]);
        assert!(matches!(report.outcomes[2], Outcome::NotStarted(NotStarted::EarlierInGroupFailed)));
        assert!(!handler.handled.lock().unwrap().contains(&"a:2".to_owned()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_in_a_fifo_group_stops_that_group_too() {
        let handler = Arc::new(Scripted::default());
        let records = [fifo_record("a1", "a", "panic"), fifo_record("a2", "a", "a:2")];
        let report = run(&handler, &records, 10).await;
        assert_eq!(failed_ids(&report, &records), ["a1", "a2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_batch_starts_nothing_and_reports_everything() {
        let handler = Arc::new(Scripted::default());
        let records = [record("m1", "ok"), fifo_record("m2", "g", "ok")];
        let stop = CancellationToken::new();
        stop.cancel();
        let report = process_batch(&handler, &Arc::from(&records[..]), &limit(10).stop_on(stop)).await;
        assert!(report.outcomes.iter().all(|o| matches!(o, Outcome::NotStarted(NotStarted::Stopped))));
        assert!(handler.handled.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_during_a_fifo_group_leaves_its_later_messages_unstarted() {
        let handler = Arc::new(Scripted::default());
        let records: Arc<[SqsMessage]> =
            Arc::from(vec![fifo_record("a1", "a", "a:1"), fifo_record("a2", "a", "a:2")]);
        let stop = CancellationToken::new();
        let run = limit(10).stop_on(stop.clone());
        let batch = process_batch(&handler, &records, &run);
        let stopper = async {
            tokio::time::sleep(Duration::from_millis(5)).await; // a1 is running (10 ms of work)
            stop.cancel();
        };
        let (report, ()) = tokio::join!(batch, stopper);
        assert!(report.outcomes[0].is_success(), "a started message finishes");
        assert!(matches!(report.outcomes[1], Outcome::NotStarted(NotStarted::Stopped)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_batch_keeps_the_outcomes_of_the_messages_that_finished() {
        let handler = Arc::new(Scripted::default());
        let records: Arc<[SqsMessage]> = Arc::from(vec![
            record("m1", "ok"),
            record("m2", "forever"),
            fifo_record("g1", "g", "g:1"),
            fifo_record("g2", "g", "forever"),
            fifo_record("g3", "g", "g:3"),
        ]);
        // A standard record and a FIFO group whose second message never ends; g3 waits behind it.
        let abandon = CancellationToken::new();
        let run = limit(10).abandon_on(abandon.clone());
        let batch = process_batch(&handler, &records, &run);
        let abandoner = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            abandon.cancel();
        };
        let (report, ()) = tokio::join!(batch, abandoner);
        let labels: Vec<&str> = report.outcomes.iter().map(Outcome::label).collect();
        assert_eq!(labels, ["ok", "abandoned", "ok", "abandoned", "skipped"]);
        assert!(matches!(report.outcomes[4], Outcome::NotStarted(NotStarted::Stopped)));
    }

    #[tokio::test(start_paused = true)]
    async fn messages_not_started_before_the_deadline_reserve_are_reported_failed() {
        // One FIFO group, so one message at a time, 10 ms each: a deadline 1 s away with a
        // 985 ms reserve lets the first start (at 0) and the second (at 10 ms) but not the third.
        let handler = Arc::new(Scripted::default());
        let records: Arc<[SqsMessage]> = Arc::from(vec![
            fifo_record("a1", "a", "a:1"),
            fifo_record("a2", "a", "a:2"),
            fifo_record("a3", "a", "a:3"),
        ]);
        let mut run = limit(10).deadline(SystemTime::now() + Duration::from_secs(1));
        run.deadline_reserve = Duration::from_millis(985);
        let report = process_batch(&handler, &records, &run).await;
        assert_eq!(failed_ids(&report, &records), ["a3"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_already_inside_the_reserve_starts_nothing() {
        let handler = Arc::new(Scripted::default());
        let records: Arc<[SqsMessage]> = Arc::from(vec![record("m1", "ok"), record("m2", "ok")]);
        let run = limit(10).deadline(SystemTime::now() + Duration::from_millis(500));
        let report = process_batch(&handler, &records, &run).await;
        assert_eq!(report.counts().not_started, 2);
        assert!(handler.handled.lock().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_of_one_batch_run_in_parallel_on_a_multi_thread_runtime() {
        // Two handlers that each block their thread until the other has started: they can only
        // both finish if they run on two threads at once. The timeout turns a failure into a
        // failed message instead of a hang.
        struct Rendezvous(Mutex<Vec<std::sync::mpsc::Sender<()>>>, Mutex<Vec<std::sync::mpsc::Receiver<()>>>);
        impl Handler for Rendezvous {
            type Message = ();
            fn parse(&self, _record: &SqsMessage) -> Result<(), Error> {
                Ok(())
            }
            async fn handle(&self, (): (), _context: Context) -> Result<(), Error> {
                let (send, receive) = (self.0.lock().unwrap().pop(), self.1.lock().unwrap().pop());
                send.unwrap().send(()).map_err(|_| Error::transient("the other side is gone"))?;
                receive.unwrap().recv_timeout(Duration::from_secs(10)).map_err(Error::transient)
            }
        }
        let (a_send, a_receive) = std::sync::mpsc::channel();
        let (b_send, b_receive) = std::sync::mpsc::channel();
        let handler =
            Arc::new(Rendezvous(Mutex::new(vec![a_send, b_send]), Mutex::new(vec![a_receive, b_receive])));
        let records: Arc<[SqsMessage]> = Arc::from(vec![record("m1", "x"), record("m2", "x")]);
        let report = process_batch(&handler, &records, &limit(2)).await;
        assert_eq!(report.counts().succeeded, 2, "{report:?}");
    }

    #[tokio::test]
    async fn a_failed_record_without_a_message_id_fails_the_whole_batch() {
        let handler = Arc::new(Scripted::default());
        let mut nameless = record("", "fail");
        nameless.message_id = None;
        let records = [record("m1", "ok"), nameless];
        let report = run(&handler, &records, 10).await;
        assert!(matches!(report.to_response(&records), Err(BatchError::UnidentifiedRecord { index: 1 })));
    }

    #[tokio::test]
    async fn an_empty_batch_has_no_failures() {
        let report = run(&Arc::new(Scripted::default()), &[], 10).await;
        assert!(report.outcomes.is_empty());
        assert!(report.to_response(&[]).unwrap().batch_item_failures.is_empty());
        assert!(!report.all_failed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_fails_as_a_whole_only_when_nothing_succeeded_and_something_failed() {
        let handler = Arc::new(Scripted::default());
        let all_bad = [fifo_record("a1", "a", "fail:1"), fifo_record("a2", "a", "ok")];
        assert!(run(&handler, &all_bad, 10).await.all_failed());
        let one_good = [record("m1", "fail:1"), record("m2", "ok")];
        assert!(!run(&handler, &one_good, 10).await.all_failed());
    }

    #[test]
    fn fifo_lanes_keep_arrival_order_and_group_records_without_a_group_alone() {
        let mut loose = fifo_record("x", "", "x");
        loose.attributes.clear();
        let records =
            [fifo_record("a1", "a", ""), fifo_record("b1", "b", ""), loose, fifo_record("a2", "a", "")];
        let (order, lanes) = plan_lanes(&records);
        let lanes: Vec<Vec<usize>> = lanes.into_iter().map(|lane| order[lane].to_vec()).collect();
        assert_eq!(lanes, [vec![0, 3], vec![1], vec![2]]);
    }
}
