//! The message a task is handling, and the log format that adds its correlation fields to every
//! line logged meanwhile, the handler's own included.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsMessage;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::fields;
use crate::trace::TraceContext;

tokio::task_local! {
    static MESSAGE: MessageScope;
}

/// The message a task is handling, for the correlation fields of the lines logged meanwhile:
/// the batch core sets it around a message's parse and handling, in both runtimes.
#[derive(Debug, Clone)]
pub struct MessageScope {
    records: Arc<[SqsMessage]>,
    index: usize,
    request_id: Option<Arc<str>>,
}

impl MessageScope {
    pub(crate) fn new(records: Arc<[SqsMessage]>, index: usize, request_id: Option<Arc<str>>) -> Self {
        Self { records, index, request_id }
    }

    fn record(&self) -> &SqsMessage {
        &self.records[self.index]
    }

    /// SQS's id of the message.
    #[must_use]
    pub fn message_id(&self) -> Option<&str> {
        self.record().message_id.as_deref()
    }

    /// Which delivery this is, as SQS counts it.
    #[must_use]
    pub fn receive_count(&self) -> Option<&str> {
        self.record().attributes.get("ApproximateReceiveCount").map(String::as_str)
    }

    /// The message group (FIFO queues).
    #[must_use]
    pub fn group_id(&self) -> Option<&str> {
        self.record().attributes.get("MessageGroupId").map(String::as_str)
    }

    /// The producer's trace context.
    #[must_use]
    pub fn trace(&self) -> Option<TraceContext> {
        TraceContext::of(self.record())
    }

    /// The Lambda invocation's request id (none locally in process).
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The queue's name, the last part of the record's source ARN.
    #[must_use]
    pub fn queue_name(&self) -> Option<&str> {
        self.record().event_source_arn.as_deref().and_then(|arn| arn.rsplit(':').next())
    }

    /// The correlation fields, as (name, text) pairs, the ones the message has.
    #[must_use]
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = Vec::with_capacity(5);
        let mut put = |name, value: Option<String>| {
            if let Some(value) = value {
                fields.push((name, value));
            }
        };
        put(fields::MESSAGE_ID, self.message_id().map(str::to_owned));
        put(fields::RECEIVE_COUNT, self.receive_count().map(str::to_owned));
        put(fields::GROUP_ID, self.group_id().map(str::to_owned));
        put(fields::TRACE_ID, self.trace().map(|t| t.to_string()));
        put(fields::REQUEST_ID, self.request_id().map(str::to_owned));
        fields
    }
}

/// Runs `future` as the handling of the message `scope` names.
///
/// A plain function, not an `async fn`: an `async fn` would keep its argument `future` beside the
/// scope's own copy of it, doubling what every message's task holds while it runs.
pub(crate) fn in_message_scope<F: std::future::Future>(
    scope: MessageScope,
    future: F,
) -> impl std::future::Future<Output = F::Output> {
    MESSAGE.scope(scope, future)
}

/// The message the current task is handling, if it is handling one.
#[must_use]
pub fn current_message() -> Option<MessageScope> {
    MESSAGE.try_with(Clone::clone).ok()
}

/// An event format that adds the current message's correlation fields to every text line logged
/// while it is handled (the handler's own lines included), as `key=value` at the end, unless the
/// line names its message itself. JSON lines get them from [`super::json::JsonLines`].
pub(super) struct Correlated<F> {
    pub(super) inner: F,
}

impl<S, N, F> FormatEvent<S, N> for Correlated<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let names_its_message = event.fields().any(|field| field.name() == fields::MESSAGE_ID);
        let Some(scope) = current_message().filter(|_| !names_its_message) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(line.trim_end())?;
        for (name, value) in scope.fields() {
            write!(writer, " {name}={value}")?;
        }
        writer.write_str("\n")
    }
}
