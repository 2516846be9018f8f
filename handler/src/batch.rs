//! The batch core shared by both runtimes: SQS records in, per-message outcomes and a partial
//! batch response out.
//!
//! The Lambda function and the local runner both call [`process_batch`], so what a batch does
//! locally is what it does in Lambda:
//! - messages run concurrently, at most [`BatchOptions::max_concurrency`] at once;
//! - a panic in the handler fails that message alone;
//! - FIFO queues (source ARN ending in `.fifo`): the messages of one group run in order, one at
//!   a time; after a group's first failure the rest of that group is not started and is
//!   reported failed, so SQS redelivers it in order; other groups go on;
//! - once `stop` is cancelled (shutdown, or a deadline) no further message starts; those not
//!   started are reported as such, and messages already running finish.

use std::any::Any;
use std::future::Future;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::panic::AssertUnwindSafe;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::HandlerError;

/// Attribute Lambda and SQS set on every FIFO message.
const MESSAGE_GROUP_ID: &str = "MessageGroupId";

/// What a message handler does, split in two so that validation stays apart from the work.
///
/// The batch core calls [`Handler::parse`] and then [`Handler::handle`] for each record, inside a
/// tracing span that carries the record's `message_id`. Both may fail or panic; either way only
/// that message fails.
pub trait Handler: Send + Sync {
    /// The typed, validated message a record turns into.
    type Message: Send;

    /// Parses and validates one record (usually its body).
    ///
    /// # Errors
    /// Whatever makes the record unusable; it fails that message alone.
    fn parse(&self, record: &SqsMessage) -> Result<Self::Message, HandlerError>;

    /// The producer's own id of a parsed message, logged beside the SQS message id as `id`.
    fn log_id<'m>(&self, message: &'m Self::Message) -> Option<&'m str> {
        let _ = message;
        None
    }

    /// Does the work for one valid message.
    fn handle(&self, message: Self::Message) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// How a batch is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// The most messages (FIFO: message groups) handled at once within one batch.
    pub max_concurrency: NonZeroUsize,
}

impl Default for BatchOptions {
    /// Ten at once: a full SQS receive, and the Lambda event source mapping's default batch size.
    fn default() -> Self {
        Self { max_concurrency: NonZeroUsize::new(10).expect("10 is not zero") }
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

/// What happened to one message.
#[derive(Debug)]
pub enum Outcome {
    /// Handled successfully: the transport deletes it.
    Succeeded,
    /// Handled and failed: reported as a batch item failure, retried by SQS.
    Failed(HandlerError),
    /// Never handled: reported as a batch item failure, so SQS delivers it again.
    NotStarted(NotStarted),
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
        }
    }
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
    /// [`HandlerError::UnidentifiedRecord`] when a record that did not succeed has no
    /// `messageId`: it cannot be reported alone, so the whole invocation must fail and every
    /// message of the batch comes back, rather than one being deleted unhandled.
    pub fn to_response(&self, records: &[SqsMessage]) -> Result<SqsBatchResponse, HandlerError> {
        let mut response = SqsBatchResponse::default();
        for (record, outcome) in records.iter().zip(&self.outcomes) {
            if outcome.is_success() {
                continue;
            }
            let id = record.message_id.as_deref().filter(|id| !id.is_empty());
            let id = id.ok_or(HandlerError::UnidentifiedRecord)?;
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.to_owned();
            response.batch_item_failures.push(failure);
        }
        Ok(response)
    }

    /// How many messages succeeded, failed, and were not started.
    #[must_use]
    pub fn counts(&self) -> (usize, usize, usize) {
        self.outcomes.iter().fold((0, 0, 0), |(ok, failed, skipped), outcome| match outcome {
            Outcome::Succeeded => (ok + 1, failed, skipped),
            Outcome::Failed(_) => (ok, failed + 1, skipped),
            Outcome::NotStarted(_) => (ok, failed, skipped + 1),
        })
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
pub async fn process_batch<H: Handler>(
    handler: &H,
    records: &[SqsMessage],
    options: BatchOptions,
    stop: &CancellationToken,
) -> BatchReport {
    let (order, lanes) = plan_lanes(records);
    let mut outcomes: Vec<Option<Outcome>> = std::iter::repeat_with(|| None).take(records.len()).collect();
    let order = &order;

    let mut runs = futures::stream::iter(lanes)
        .map(|lane| run_lane(handler, records, &order[lane], stop))
        .buffer_unordered(options.max_concurrency.get());
    while let Some(lane_outcomes) = runs.next().await {
        for (index, outcome) in lane_outcomes {
            outcomes[index] = Some(outcome);
        }
    }

    let outcomes = outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or(Outcome::NotStarted(NotStarted::Stopped)))
        .collect();
    BatchReport { outcomes }
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

/// Runs one lane's messages one after another, stopping at the first one that does not succeed.
async fn run_lane<H: Handler>(
    handler: &H,
    records: &[SqsMessage],
    lane: &[usize],
    stop: &CancellationToken,
) -> Vec<(usize, Outcome)> {
    let mut outcomes = Vec::with_capacity(lane.len());
    let mut blocked = None;
    for &index in lane {
        let record = &records[index];
        let outcome = if let Some(reason) = blocked {
            Outcome::NotStarted(reason)
        } else if stop.is_cancelled() {
            Outcome::NotStarted(NotStarted::Stopped)
        } else {
            run_one(handler, record).await
        };
        if !outcome.is_success() && blocked.is_none() {
            blocked = Some(match outcome {
                Outcome::NotStarted(NotStarted::Stopped) => NotStarted::Stopped,
                _ => NotStarted::EarlierInGroupFailed,
            });
        }
        if let Outcome::NotStarted(reason) = &outcome {
            tracing::info!(message_id = record.message_id.as_deref(), outcome = "skipped", reason = ?reason);
        }
        outcomes.push((index, outcome));
    }
    outcomes
}

/// Parses and handles one record inside its own span, turning a panic into a failure.
async fn run_one<H: Handler>(handler: &H, record: &SqsMessage) -> Outcome {
    let message_id = record.message_id.as_deref();
    let span = tracing::info_span!("message", message_id);
    let mut id: Option<String> = None;
    let attempt = AssertUnwindSafe(async {
        let message = handler.parse(record)?;
        id = handler.log_id(&message).map(str::to_owned);
        handler.handle(message).await
    })
    .catch_unwind()
    .instrument(span)
    .await;
    let result = attempt.unwrap_or_else(|panic| Err(HandlerError::Panicked(panic_text(&*panic))));
    // The outcome line carries message_id itself, so it is logged outside the span.
    match result {
        Ok(()) => {
            tracing::info!(message_id, id = id.as_deref(), outcome = "ok");
            Outcome::Succeeded
        }
        Err(error) => {
            tracing::warn!(
                message_id,
                id = id.as_deref(),
                outcome = "failed",
                error_kind = error.kind(),
                retryable = error.is_retryable(),
                error = %error,
            );
            Outcome::Failed(error)
        }
    }
}

/// The text a panic was raised with, when it was raised with text.
pub(crate) fn panic_text(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A test handler driven by the body: `ok`, `fail`, `panic`, or `sleep` (10 ms of work).
    #[derive(Default)]
    struct Scripted {
        running: AtomicUsize,
        peak: AtomicUsize,
        handled: Mutex<Vec<String>>,
    }

    impl Handler for Scripted {
        type Message = String;

        fn parse(&self, record: &SqsMessage) -> Result<String, HandlerError> {
            record.body.clone().ok_or(HandlerError::MissingBody)
        }

        async fn handle(&self, body: String) -> Result<(), HandlerError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.handled.lock().unwrap().push(body.clone());
            match body.split(':').next() {
                Some("fail") => Err(HandlerError::Permanent(body)),
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

    async fn run(handler: &Scripted, records: &[SqsMessage], concurrency: usize) -> BatchReport {
        let options = BatchOptions { max_concurrency: NonZeroUsize::new(concurrency).unwrap() };
        process_batch(handler, records, options, &CancellationToken::new()).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_handler_fails_only_its_own_message() {
        let handler = Scripted::default();
        let records = [record("m1", "ok"), record("m2", "panic"), record("m3", "ok")];
        let report = run(&handler, &records, 10).await;
        assert_eq!(failed_ids(&report, &records), ["m2"]);
        assert!(
            matches!(&report.outcomes[1], Outcome::Failed(HandlerError::Panicked(text)) if text == "asked to panic")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_never_exceeds_the_limit_and_reaches_it() {
        let handler = Scripted::default();
        let records: Vec<_> = (0..10).map(|i| record(&format!("m{i}"), "sleep")).collect();
        let report = run(&handler, &records, 3).await;
        assert_eq!(report.counts(), (10, 0, 0));
        assert_eq!(handler.peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_groups_run_in_order_one_message_at_a_time() {
        let handler = Scripted::default();
        let records = [
            fifo_record("a1", "a", "a:1"),
            fifo_record("a2", "a", "a:2"),
            fifo_record("a3", "a", "a:3"),
            fifo_record("a4", "a", "a:4"),
        ];
        let report = run(&handler, &records, 10).await;
        assert_eq!(report.counts(), (4, 0, 0));
        assert_eq!(handler.peak.load(Ordering::SeqCst), 1);
        assert_eq!(*handler.handled.lock().unwrap(), ["a:1", "a:2", "a:3", "a:4"]);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_fifo_failure_the_rest_of_its_group_is_not_started() {
        let handler = Scripted::default();
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
        let handler = Scripted::default();
        let records = [fifo_record("a1", "a", "panic"), fifo_record("a2", "a", "a:2")];
        let report = run(&handler, &records, 10).await;
        assert_eq!(failed_ids(&report, &records), ["a1", "a2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_batch_starts_nothing_and_reports_everything() {
        let handler = Scripted::default();
        let records = [record("m1", "ok"), fifo_record("m2", "g", "ok")];
        let stop = CancellationToken::new();
        stop.cancel();
        let report = process_batch(&handler, &records, BatchOptions::default(), &stop).await;
        assert!(report.outcomes.iter().all(|o| matches!(o, Outcome::NotStarted(NotStarted::Stopped))));
        assert!(handler.handled.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_during_a_fifo_group_leaves_its_later_messages_unstarted() {
        let handler = Scripted::default();
        let records = [fifo_record("a1", "a", "a:1"), fifo_record("a2", "a", "a:2")];
        let stop = CancellationToken::new();
        let batch = process_batch(&handler, &records, BatchOptions::default(), &stop);
        let stopper = async {
            tokio::time::sleep(Duration::from_millis(5)).await; // a1 is running (10 ms of work)
            stop.cancel();
        };
        let (report, ()) = tokio::join!(batch, stopper);
        assert!(report.outcomes[0].is_success(), "a started message finishes");
        assert!(matches!(report.outcomes[1], Outcome::NotStarted(NotStarted::Stopped)));
    }

    #[tokio::test]
    async fn a_failed_record_without_a_message_id_fails_the_whole_batch() {
        let handler = Scripted::default();
        let mut nameless = record("", "fail");
        nameless.message_id = None;
        let records = [record("m1", "ok"), nameless];
        let report = run(&handler, &records, 10).await;
        assert!(matches!(report.to_response(&records), Err(HandlerError::UnidentifiedRecord)));
    }

    #[tokio::test]
    async fn an_empty_batch_has_no_failures() {
        let report = run(&Scripted::default(), &[], 10).await;
        assert!(report.outcomes.is_empty());
        assert!(report.to_response(&[]).unwrap().batch_item_failures.is_empty());
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
