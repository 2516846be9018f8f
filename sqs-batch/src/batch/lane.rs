//! One lane of a batch, and one message through the core's own layers: its span, its panic
//! caught, its outcome line.

use crate::text::panic_text;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use aws_lambda_events::sqs::SqsMessage;
use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::context::Context;
use crate::context::Duplicates;
use crate::error::Error;
use crate::handler::Handler;
use crate::runtime::telemetry::{self, MAX_LOGGED_ERROR_CHARS, MessageScope, clip};
use crate::trace::TraceContext;

use super::lanes::{MESSAGE_GROUP_ID, Slots};
use super::{NotStarted, Outcome};

/// What every lane of a batch shares: one allocation per batch rather than a copy in each lane's
/// task, which for a standard queue is one task per message in flight.
pub(super) struct Batch<H> {
    pub(super) handler: Arc<H>,
    pub(super) records: Arc<[SqsMessage]>,
    /// Each record's body, taken by its lane and handed to `parse`: held once, by the message.
    pub(super) bodies: Box<[Mutex<Option<String>>]>,
    pub(super) order: Arc<[usize]>,
    pub(super) deadline: Option<SystemTime>,
    /// When running work is stopped, and the timeout that set it (see [`super::Run::timeout`]).
    pub(super) cut_off: Option<(tokio::time::Instant, std::time::Duration)>,
    pub(super) request_id: Option<Arc<str>>,
    /// The Lambda invocation's own trace: with OpenTelemetry, each message's span is its child.
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(super) invocation_trace: Option<TraceContext>,
    pub(super) stop: CancellationToken,
    pub(super) slots: Slots,
    pub(super) duplicates: Duplicates,
}

/// One lane of a batch, owned by its task: the records `order[range]` of `batch`.
pub(super) struct Lane<H> {
    pub(super) batch: Arc<Batch<H>>,
    pub(super) range: Range<usize>,
}

impl<H: Handler> Lane<H> {
    /// Runs the lane's messages one after another, stopping at the first one that does not
    /// succeed; records each outcome as soon as it is known. A lane holds one FIFO group, or a
    /// whole FIFO batch run by AWS's rule: then what follows a failure is held back with it when
    /// it is of a group that failed, and released otherwise.
    pub(super) async fn run(self) {
        let mut blocked = None;
        let mut failed_groups: Vec<Option<&str>> = Vec::new();
        for &index in &self.batch.order[self.range.clone()] {
            let group = self.batch.records[index].attributes.get(MESSAGE_GROUP_ID).map(String::as_str);
            let outcome = match blocked {
                Some(NotStarted::EarlierInGroupFailed) if !failed_groups.contains(&group) => {
                    Outcome::NotStarted(NotStarted::EarlierInBatchFailed)
                }
                Some(reason) => Outcome::NotStarted(reason),
                None if self.batch.stop.is_cancelled() => Outcome::NotStarted(NotStarted::Stopped),
                None => {
                    self.batch.slots.start(index);
                    self.run_one(index).await
                }
            };
            if matches!(outcome, Outcome::Failed(_) | Outcome::Abandoned) {
                failed_groups.push(group);
            }
            if !outcome.is_success() && blocked.is_none() {
                blocked = Some(match outcome {
                    Outcome::NotStarted(NotStarted::Stopped) => NotStarted::Stopped,
                    _ => NotStarted::EarlierInGroupFailed,
                });
            }
            if let Outcome::NotStarted(reason) = &outcome {
                tracing::info!(
                    message_id = self.batch.records[index].message_id.as_deref(),
                    outcome = outcome.as_str(),
                    reason = reason.as_str()
                );
            }
            self.batch.slots.set(index, outcome);
        }
    }

    /// One message through the core's own layers, outermost first: its span, its outcome line,
    /// its panic caught. The handler and every layer the user added run inside them, so whatever
    /// a layer does, or however it fails, the message gets its span, one outcome and one line.
    async fn run_one(&self, index: usize) -> Outcome {
        let record = &self.batch.records[index];
        let message_id = record.message_id.as_deref();
        // A debug span (info with the `opentelemetry` feature, which exports it): the outcome line
        // carries the message id itself, and the JSON and terminal formats show no spans; at
        // info, a span per message would cost a fifth of a consumer's CPU (measured in
        // BENCHMARKS.md) for nothing printed.
        let scope = MessageScope::new(Arc::clone(&self.batch.records), index, self.batch.request_id.clone());
        let trace = scope.trace();
        let group_id = record.attributes.get(MESSAGE_GROUP_ID).map(String::as_str);
        let span = tracing::span!(
            SPAN_LEVEL,
            "message",
            "otel.kind" = "consumer",
            message_id,
            "messaging.system" = "aws_sqs",
            "messaging.operation.type" = "process",
            "messaging.destination.name" = scope.queue_name(),
            "messaging.message.id" = message_id,
            "messaging.message.group_id" = group_id,
            trace_id = trace.map(tracing::field::display),
        );
        #[cfg(feature = "opentelemetry")]
        crate::otel::connect(&span, trace.as_ref(), self.batch.invocation_trace.as_ref());
        let context = Context::of(
            Arc::clone(&self.batch.records),
            index,
            self.batch.deadline,
            self.batch.stop.clone(),
            Arc::clone(&self.batch.duplicates),
        );
        // Which delivery this is: a failure's log line says how close it is to the DLQ.
        let receive_count = context.receive_count();
        // Lines the handler logs meanwhile carry the message's correlation fields. The futures are
        // nested in one expression: a future bound to a variable, then moved into a wrapper, is
        // stored twice in this one's state (rustc keeps the moved-from slot), which doubled the
        // memory each message in flight holds.
        let body = self.batch.bodies[index].lock().unwrap_or_else(PoisonError::into_inner).take();
        let result = telemetry::in_message_scope(
            scope,
            caught(&*self.batch.handler, body, context, self.batch.cut_off).instrument(span),
        )
        .await;
        let mark = &self.batch.duplicates[index];
        // The outcome line carries message_id itself, so it is logged outside the span.
        let line = OutcomeLine {
            message_id,
            id: mark.log_id(),
            receive_count,
            group_id,
            trace_id: trace,
            request_id: self.batch.request_id.as_deref(),
        };
        let duplicate = mark.is_duplicate();
        logged(result, duplicate, &line)
    }
}

/// The per-message span's level: exported spans need it enabled at the usual `info` filter.
#[cfg(feature = "opentelemetry")]
const SPAN_LEVEL: tracing::Level = tracing::Level::INFO;
#[cfg(not(feature = "opentelemetry"))]
const SPAN_LEVEL: tracing::Level = tracing::Level::DEBUG;

/// Parses and handles one record's body, a panic in either (or in a layer) caught as that
/// message's failure, the work stopped at `cut_off` when given. The producer's id, once the body
/// parsed, goes to the context's mark for the outcome line.
///
/// One future, not an `async fn` around an inner block: the inner block would hold a second
/// copy of the body, the context and the cut-off in every message's task.
fn caught<H: Handler>(
    handler: &H,
    body: Option<String>,
    context: Context,
    cut_off: Option<(tokio::time::Instant, std::time::Duration)>,
) -> impl Future<Output = Result<(), Error>> + Send + '_ {
    AssertUnwindSafe(async move {
        // SQS sends no message without a body; a hand-made event may.
        let body = body.ok_or_else(|| Error::invalid_body(None, "the record has no body"))?;
        let message = handler.parse(body, &context)?;
        if let Some(id) = handler.log_id(&message) {
            context.set_log_id(id);
        }
        // The handler's future is made where it is awaited, not bound first (see `run_one`).
        match cut_off {
            // Dropping the work's future is what Lambda's kill does to it: it ends at its next
            // await, and whatever it holds (an idempotency claim) is left to its own expiry.
            // Boxed: the timer is only there when the batch enforces its timeout itself, and
            // inline it would take its room in every message's task.
            Some((at, after)) => Box::pin(tokio::time::timeout_at(at, handler.handle(message, context)))
                .await
                .unwrap_or_else(|_| Err(Error::transient(super::TimedOut { after }))),
            None => handler.handle(message, context).await,
        }
    })
    .catch_unwind()
    .map(|attempt| attempt.unwrap_or_else(|panic| Err(Error::Panicked(panic_text(&*panic)))))
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
fn logged(result: Result<(), Error>, duplicate: bool, line: &OutcomeLine<'_>) -> Outcome {
    let OutcomeLine { message_id, id, receive_count, group_id, trace_id, request_id } = *line;
    let trace_id = trace_id.map(tracing::field::display);
    // Every outcome line carries the same correlation fields, then its own. A macro, not a
    // function: tracing fixes each callsite's level and fields when it is compiled.
    macro_rules! outcome_line {
        ($level:expr, $($fields:tt)*) => {
            tracing::event!($level, message_id, id, receive_count, group_id, trace_id, request_id, $($fields)*)
        };
    }
    let error = match result {
        Ok(()) if duplicate => {
            outcome_line!(tracing::Level::INFO, outcome = "duplicate");
            return Outcome::Duplicate;
        }
        Ok(()) => {
            outcome_line!(tracing::Level::INFO, outcome = "ok");
            return Outcome::Succeeded;
        }
        Err(Error::Ignored(reason)) => {
            let reason = match clip(&reason, MAX_LOGGED_ERROR_CHARS) {
                std::borrow::Cow::Borrowed(_) => reason,
                std::borrow::Cow::Owned(cut) => cut,
            };
            outcome_line!(tracing::Level::INFO, outcome = "ignored", reason = reason.as_str());
            return Outcome::Ignored(reason);
        }
        Err(error) => error,
    };
    let (kind, retryable) = (error.kind(), error.is_retryable());
    let text = format!("{error:#}");
    let text = &*clip(&text, MAX_LOGGED_ERROR_CHARS);
    if matches!(error, Error::Transient(_)) {
        outcome_line!(tracing::Level::WARN, outcome = "failed", error_kind = kind, retryable, error = text);
    } else {
        outcome_line!(tracing::Level::ERROR, outcome = "failed", error_kind = kind, retryable, error = text);
    }
    Outcome::Failed(error)
}
