//! What a handler knows about the message it handles, beside the message itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsMessage, SqsMessageAttribute};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::metrics::{Metric, Unit};

/// The context of one message: its SQS metadata, the invocation's deadline, and a signal to wrap
/// up. It travels beside the typed message, as `lambda_runtime`'s context travels beside the
/// payload, and is the same under Lambda and under `local-runner`.
///
/// Cloning is cheap: the record is shared with the batch, not copied.
#[derive(Debug, Clone)]
pub struct Context {
    records: Arc<[SqsMessage]>,
    index: usize,
    deadline: Option<SystemTime>,
    cancel: CancellationToken,
    /// One mark per record of the batch, shared with the batch core: set by
    /// [`crate::runtime::mark_duplicate`] and `Context::set_log_id`, read when the message's outcome
    /// is logged.
    duplicates: Duplicates,
}

/// What a layer tells the batch core about one record, for its outcome line.
#[derive(Debug, Default)]
pub(crate) struct Mark {
    duplicate: AtomicBool,
    /// The producer's id, for the outcome line: from the parsed message, or from a layer when
    /// only the handling could tell it (a body fetched from S3).
    log_id: std::sync::OnceLock<String>,
    /// What the handler recorded ([`Context::record_metric`]), counted once the outcome is known.
    metrics: std::sync::Mutex<Vec<Metric>>,
    /// The body's hash, when a layer needs it after the body went to `parse` (idempotency's
    /// payload validation).
    body_hash: std::sync::OnceLock<String>,
}

impl Mark {
    pub(crate) fn is_duplicate(&self) -> bool {
        self.duplicate.load(Ordering::Relaxed)
    }

    pub(crate) fn log_id(&self) -> Option<&str> {
        self.log_id.get().map(String::as_str)
    }

    /// The metrics recorded for this record, taken out: those the outcome keeps are added up.
    pub(crate) fn take_metrics(&self) -> Vec<Metric> {
        std::mem::take(&mut *self.metrics.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// The batch's marks, one per record: one allocation per batch, not per message.
pub(crate) type Duplicates = Arc<[Mark]>;

/// `n` marks, none set.
pub(crate) fn duplicates(n: usize) -> Duplicates {
    (0..n).map(|_| Mark::default()).collect()
}

impl Context {
    /// The context of `records[index]`, as the batch core builds it.
    pub(crate) fn of(
        records: Arc<[SqsMessage]>,
        index: usize,
        deadline: Option<SystemTime>,
        cancel: CancellationToken,
        duplicates: Duplicates,
    ) -> Self {
        Self { records, index, deadline, cancel, duplicates }
    }

    /// A context for one record on its own, with no deadline and never cancelled: for unit tests
    /// of a handler. Add a deadline or a token with [`Context::with_deadline`] and
    /// [`Context::with_cancellation`]. As in the batch core, the record keeps no body: that is
    /// the message's (see [`Context::record`]).
    #[must_use]
    pub fn new(mut record: SqsMessage) -> Self {
        record.body = None;
        Self::of(Arc::from(vec![record]), 0, None, CancellationToken::new(), duplicates(1))
    }

    /// This context with `deadline` as the invocation's deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: SystemTime) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// This context, cancelled when `cancel` is.
    #[must_use]
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// The record as Lambda delivers it, but for its body: the batch core hands the body to
    /// [`Handler::parse`](crate::Handler::parse) by value, so a message in flight holds it once,
    /// as the parsed message, and `record().body` is `None`. A handler that needs the text as it
    /// came keeps it in its message (the [`Text`](crate::envelope::Text) envelope is the body as
    /// it is).
    #[must_use]
    pub fn record(&self) -> &SqsMessage {
        &self.records[self.index]
    }

    /// SQS's id of the message (what a partial batch response reports); empty if the record has
    /// none.
    #[must_use]
    pub fn message_id(&self) -> &str {
        self.record().message_id.as_deref().unwrap_or_default()
    }

    /// How many times SQS has handed this message out, this time included: 1 on the first
    /// delivery, more on each redelivery.
    #[must_use]
    pub fn receive_count(&self) -> u32 {
        self.attribute("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1)
    }

    /// When the message was sent to the queue.
    #[must_use]
    pub fn sent_timestamp(&self) -> Option<SystemTime> {
        let millis = self.attribute("SentTimestamp")?.parse().ok()?;
        Some(UNIX_EPOCH + Duration::from_millis(millis))
    }

    /// The message group (FIFO queues).
    #[must_use]
    pub fn message_group_id(&self) -> Option<&str> {
        self.attribute("MessageGroupId")
    }

    /// The deduplication id (FIFO queues).
    #[must_use]
    pub fn deduplication_id(&self) -> Option<&str> {
        self.attribute("MessageDeduplicationId")
    }

    /// The X-Ray trace header the producer's message carried, as text.
    #[must_use]
    pub fn trace_header(&self) -> Option<&str> {
        self.attribute(crate::trace::AWS_TRACE_HEADER)
    }

    /// The producer's trace context, parsed: a W3C `traceparent` message attribute, else the
    /// X-Ray `AWSTraceHeader`. The message's outcome line carries its trace id.
    #[must_use]
    pub fn trace(&self) -> Option<crate::trace::TraceContext> {
        crate::trace::TraceContext::of(self.record())
    }

    /// A system attribute by name (`ApproximateFirstReceiveTimestamp`, `SequenceNumber`, ...).
    #[must_use]
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.record().attributes.get(name).map(String::as_str)
    }

    /// The producer's message attributes, with their data types.
    #[must_use]
    pub fn message_attributes(&self) -> &HashMap<String, SqsMessageAttribute> {
        &self.record().message_attributes
    }

    /// A producer's message attribute of type `String` or `Number`, as text.
    #[must_use]
    pub fn message_attribute(&self, name: &str) -> Option<&str> {
        self.record().message_attributes.get(name)?.string_value.as_deref()
    }

    /// The invocation's deadline: Lambda's, or `local-runner --function-timeout`'s. `None` when the
    /// runtime sets none.
    #[must_use]
    pub fn deadline(&self) -> Option<SystemTime> {
        self.deadline
    }

    /// Time left before the deadline (zero once it has passed); `None` without a deadline.
    #[must_use]
    pub fn remaining(&self) -> Option<Duration> {
        let deadline = self.deadline?;
        Some(deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
    }

    /// Whether the runtime asked the batch to wrap up: a shutdown, or the deadline reserve
    /// reached. A handler that sees it may stop early and fail the message; it is then delivered
    /// again.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the runtime asks the batch to wrap up (see [`Context::is_cancelled`]): for
    /// `tokio::select!` around long work.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// See [`crate::runtime::mark_duplicate`], the one public way to call it.
    pub(crate) fn mark_duplicate(&self) {
        self.duplicates[self.index].duplicate.store(true, Ordering::Relaxed);
    }

    /// Whether [`crate::runtime::mark_duplicate`] was called for this message.
    #[must_use]
    pub fn is_duplicate(&self) -> bool {
        self.duplicates[self.index].is_duplicate()
    }

    /// Records `value` of the metric `name` (`OrdersStored`, `Count`, `1.0`), as Powertools'
    /// `add_metric` does: counted if this message succeeds, in the invocation's EMF document in
    /// Lambda and in `local-runner`'s summary and Prometheus endpoint ([`crate::metrics`]).
    pub fn add_metric(&self, name: impl Into<String>, unit: Unit, value: f64) {
        self.record_metric(Metric::new(name, unit, value));
    }

    /// Records `metric`, with its dimensions, and kept on failure when it says so
    /// ([`Metric::even_if_failed`]). A metric CloudWatch would refuse (a name of the framework's
    /// own, a value that is not finite) is dropped with a warning naming why.
    pub fn record_metric(&self, metric: Metric) {
        if let Some(problem) = metric.problem() {
            tracing::warn!(%problem, "metric dropped");
            return;
        }
        self.duplicates[self.index]
            .metrics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(metric);
    }

    /// Keeps the hash of the body for a layer's `handle`, when the layer's `parse` saw the body
    /// (the first one kept wins).
    pub(crate) fn keep_body_hash(&self, hash: String) {
        let _ = self.duplicates[self.index].body_hash.set(hash);
    }

    /// What [`Context::keep_body_hash`] kept.
    pub(crate) fn body_hash(&self) -> Option<&str> {
        self.duplicates[self.index].body_hash.get().map(String::as_str)
    }

    /// The producer's id of this message, for its outcome line: the batch core sets it once the
    /// body is parsed, and a layer that learns it only while handling sets it then (the
    /// large-payload layer parses the body it fetched from S3). The first one set is kept, cut to
    /// a line's length.
    pub(crate) fn set_log_id(&self, id: &str) {
        let id = crate::text::clip(id, crate::text::MAX_LOGGED_ID_CHARS).into_owned();
        let _ = self.duplicates[self.index].log_id.set(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SqsMessage {
        let json = serde_json::json!({
            "messageId": "m-1",
            "body": "{}",
            "attributes": {
                "ApproximateReceiveCount": "3",
                "SentTimestamp": "1700000000123",
                "MessageGroupId": "g1",
                "MessageDeduplicationId": "d1",
                "AWSTraceHeader": "Root=1-5759e988-bd862e3fe1be46a994272793"
            },
            "messageAttributes": {
                "tenant": {"stringValue": "acme", "dataType": "String", "stringListValues": [], "binaryListValues": []}
            },
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q.fifo"
        });
        serde_json::from_value(json).expect("a record")
    }

    #[test]
    fn the_context_reads_the_records_metadata() {
        let context = Context::new(record());
        assert_eq!(context.message_id(), "m-1");
        assert_eq!(context.receive_count(), 3);
        assert_eq!(context.sent_timestamp(), Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)));
        assert_eq!(context.message_group_id(), Some("g1"));
        assert_eq!(context.deduplication_id(), Some("d1"));
        assert!(context.trace_header().is_some_and(|h| h.starts_with("Root=")));
        assert_eq!(context.message_attribute("tenant"), Some("acme"));
        assert_eq!(context.deadline(), None);
        assert!(!context.is_cancelled());
    }

    #[test]
    fn a_record_without_metadata_is_a_first_delivery_without_a_group() {
        let context = Context::new(SqsMessage::default());
        assert_eq!((context.message_id(), context.receive_count()), ("", 1));
        assert_eq!((context.message_group_id(), context.sent_timestamp()), (None, None));
    }

    #[test]
    fn time_remaining_counts_down_to_the_deadline_and_stops_at_zero() {
        let soon = Context::new(record()).with_deadline(SystemTime::now() + Duration::from_secs(60));
        assert!(soon.remaining().is_some_and(|left| left > Duration::from_secs(50)));
        let past = Context::new(record()).with_deadline(SystemTime::now() - Duration::from_secs(1));
        assert_eq!(past.remaining(), Some(Duration::ZERO));
    }
}
