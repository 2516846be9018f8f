//! Testing a handler in memory, with no Lambda, no queue and no network: build records, run the
//! handler (its layers included) through the same batch core both runtimes use, and read what
//! happened to each message and the partial batch response Lambda would act on.
//!
//! ```
//! use sqs_batch::testing::{record, run};
//! use sqs_batch::{Context, Error, handler_fn};
//!
//! #[derive(serde::Deserialize)]
//! struct Order { id: String }
//!
//! async fn handle(order: Order, _: Context) -> Result<(), Error> {
//!     if order.id.is_empty() { Err(Error::permanent("no id")) } else { Ok(()) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let report = run(handler_fn(handle), [
//!     record(r#"{"id":"o-1"}"#),
//!     record(r#"{"id":""}"#).receive_count(3),
//!     record("not json"),
//! ]).await;
//! assert_eq!(report.labels(), ["ok", "failed", "failed"]);
//! assert_eq!(report.failed_ids(), ["m1", "m2"]);
//! # }
//! ```

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};

use crate::batch::{BatchReport, Outcome, Records, Run, process_batch};
use crate::error::{BatchError, Error};
use crate::handler::Handler;
use crate::options::Options;

/// The source ARN the test kit's records come from, unless told otherwise.
const TEST_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:000000000000:test-queue";

/// A record with `body`, as Lambda would deliver it from a standard queue on its first receive.
/// Records without an id get `m0`, `m1`, ... by their position when they are run.
#[must_use]
pub fn record(body: impl Into<String>) -> RecordBuilder {
    let mut record = SqsMessage::default();
    record.body = Some(body.into());
    record.event_source = Some("aws:sqs".into());
    record.event_source_arn = Some(TEST_QUEUE_ARN.into());
    record.aws_region = Some("us-east-1".into());
    record.attributes.insert("ApproximateReceiveCount".into(), "1".into());
    RecordBuilder { record }
}

/// A record being built; see [`record`].
#[derive(Debug, Clone)]
pub struct RecordBuilder {
    record: SqsMessage,
}

impl RecordBuilder {
    /// Its `messageId`.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.record.message_id = Some(id.into());
        self
    }

    /// A FIFO record of message group `group` (the queue becomes `test-queue.fifo`).
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.record.attributes.insert("MessageGroupId".into(), group.into());
        self.record.event_source_arn = Some(format!("{TEST_QUEUE_ARN}.fifo"));
        self
    }

    /// Its `ApproximateReceiveCount`: which delivery this is.
    #[must_use]
    pub fn receive_count(self, count: u32) -> Self {
        self.attribute("ApproximateReceiveCount", count.to_string())
    }

    /// A system attribute (`SentTimestamp`, `MessageDeduplicationId`, ...).
    #[must_use]
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.record.attributes.insert(name.into(), value.into());
        self
    }

    /// A string message attribute, as the producer set it.
    #[must_use]
    pub fn message_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let mut attribute = SqsMessageAttribute::default();
        attribute.string_value = Some(value.into());
        attribute.data_type = Some("String".into());
        self.record.message_attributes.insert(name.into(), attribute);
        self
    }

    /// The X-Ray trace header SQS carries as the `AWSTraceHeader` system attribute.
    #[must_use]
    pub fn trace_header(self, header: impl Into<String>) -> Self {
        self.attribute("AWSTraceHeader", header)
    }

    /// The queue it came from, by name (`orders`, `orders.fifo`).
    #[must_use]
    pub fn queue(mut self, name: &str) -> Self {
        self.record.event_source_arn = Some(format!("arn:aws:sqs:us-east-1:000000000000:{name}"));
        self
    }

    /// The record.
    #[must_use]
    pub fn build(self) -> SqsMessage {
        self.record
    }
}

impl From<RecordBuilder> for SqsMessage {
    fn from(builder: RecordBuilder) -> Self {
        builder.build()
    }
}

/// The records of a Lambda SQS event (a fixture file's text).
///
/// # Errors
/// When the text is not an SQS event.
pub fn records_of_event(json: &str) -> Result<Vec<SqsMessage>, serde_json::Error> {
    serde_json::from_str::<SqsEvent>(json).map(|event| event.records)
}

/// Runs `handler` over `records` with the default [`Options`], as one invocation would.
pub async fn run<H, R>(handler: H, records: impl IntoIterator<Item = R>) -> Report
where
    H: Handler,
    R: Into<SqsMessage>,
{
    run_with(handler, &Options::default(), records).await
}

/// [`run`] with `options` (concurrency, full-batch failure).
pub async fn run_with<H, R>(handler: H, options: &Options, records: impl IntoIterator<Item = R>) -> Report
where
    H: Handler,
    R: Into<SqsMessage>,
{
    let batch = Records::new(
        records
            .into_iter()
            .enumerate()
            .map(|(index, record)| {
                let mut record = record.into();
                record.message_id.get_or_insert_with(|| format!("m{index}"));
                record
            })
            .collect(),
    );
    let records = Arc::clone(batch.records());
    let report = process_batch(&Arc::new(handler), batch, &Run::new(options)).await;
    let response = report.respond(&records, options);
    Report { records, report, response }
}

/// What a run did: each message's outcome, in record order, and the invocation's answer.
#[derive(Debug)]
pub struct Report {
    records: Arc<[SqsMessage]>,
    report: BatchReport,
    response: Result<SqsBatchResponse, BatchError>,
}

impl Report {
    /// Each message's outcome, in record order.
    #[must_use]
    pub fn outcomes(&self) -> &[Outcome] {
        &self.report.outcomes
    }

    /// The outcome of the message with `message_id`.
    #[must_use]
    pub fn outcome(&self, message_id: &str) -> Option<&Outcome> {
        let index = self.records.iter().position(|r| r.message_id.as_deref() == Some(message_id))?;
        self.report.outcomes.get(index)
    }

    /// The error the message at `index` (in record order) failed with, if it failed.
    #[must_use]
    pub fn error(&self, index: usize) -> Option<&Error> {
        match self.report.outcomes.get(index)? {
            Outcome::Failed(error) => Some(error),
            _ => None,
        }
    }

    /// Why the message at `index` (in record order) was ignored, as its log line says, if it was.
    #[must_use]
    pub fn ignored_reason(&self, index: usize) -> Option<&str> {
        match self.report.outcomes.get(index)? {
            Outcome::Ignored(reason) => Some(reason),
            _ => None,
        }
    }

    /// How many messages ended each way.
    #[must_use]
    pub fn counts(&self) -> crate::batch::Counts {
        self.report.counts()
    }

    /// Each message's outcome as its log line says it: `ok`, `duplicate`, `ignored`, `failed`,
    /// `skipped`, `abandoned`.
    #[must_use]
    pub fn labels(&self) -> Vec<&'static str> {
        self.report.outcomes.iter().map(Outcome::as_str).collect()
    }

    /// Each message's error as its log line says it, `None` for those that did not fail.
    #[must_use]
    pub fn errors(&self) -> Vec<Option<String>> {
        let text = |outcome: &Outcome| match outcome {
            Outcome::Failed(error) => Some(format!("{error:#}")),
            _ => None,
        };
        self.report.outcomes.iter().map(text).collect()
    }

    /// The ids Lambda would be told failed (`batchItemFailures`), in the order it would be told;
    /// empty when the invocation failed as a whole (see [`Report::response`]).
    #[must_use]
    pub fn failed_ids(&self) -> Vec<&str> {
        self.response.as_ref().map_or_else(
            |_| Vec::new(),
            |response| response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect(),
        )
    }

    /// The invocation's answer: the partial batch response, or the error that fails the whole
    /// invocation.
    ///
    /// # Errors
    /// [`BatchError`] when the invocation fails as a whole.
    pub fn response(&self) -> Result<&SqsBatchResponse, &BatchError> {
        self.response.as_ref()
    }

    /// The partial batch response as the JSON Lambda receives, to compare with a fixture's
    /// expected response; `{"errorType": ...}` when the invocation fails as a whole.
    #[must_use]
    pub fn response_json(&self) -> serde_json::Value {
        match &self.response {
            Ok(response) => serde_json::to_value(response).unwrap_or_default(),
            Err(error) => serde_json::json!({ "errorType": error.kind(), "errorMessage": error.to_string() }),
        }
    }

    /// The sum of what the handler recorded as the metric `name` ([`crate::context::Context::add_metric`])
    /// for the messages that count: those that succeeded, and what failed ones kept
    /// ([`crate::metrics::Metric::even_if_failed`]). `None` when nothing was.
    #[must_use]
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.report.metrics.sum(name)
    }

    /// Every metric recorded, with its dimensions and values, as the invocation's EMF document
    /// gets them.
    #[must_use]
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.report.metrics
    }

    /// The records as they were run (with the ids given to those that had none).
    #[must_use]
    pub fn records(&self) -> &[SqsMessage] {
        &self.records
    }
}
