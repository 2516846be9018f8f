//! OpenTelemetry, behind the `opentelemetry` feature: each message's span (the batch core's
//! `message` span, then at info, with its messaging attributes and `otel.kind` consumer) linked to
//! the producer's span its trace context names, and, in Lambda, a child of the invocation's own
//! trace (from the invocation's context, not from `_X_AMZN_TRACE_ID`, which one process shares
//! between invocations). [`layer`] exports the spans over OTLP/HTTP to
//! `OTEL_EXPORTER_OTLP_ENDPOINT`; both runtimes install it when that variable is set.

use std::sync::OnceLock;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::trace::TraceContext;

/// The exporting provider, once installed: flushed after each Lambda invocation, before the
/// environment may be frozen.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// A trace context as OpenTelemetry's remote span context; `None` without a span to point at.
#[must_use]
pub fn span_context(trace: &TraceContext) -> Option<SpanContext> {
    let span = trace.parent_span_id?;
    let flags = if trace.sampled.unwrap_or(false) { TraceFlags::SAMPLED } else { TraceFlags::default() };
    let context = SpanContext::new(
        TraceId::from_bytes(trace.trace_id.to_be_bytes()),
        SpanId::from_bytes(span.to_be_bytes()),
        flags,
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// Links a message's span to its producer's span, and makes it a child of the invocation's trace.
pub(crate) fn connect(
    span: &tracing::Span,
    producer: Option<&TraceContext>,
    invocation: Option<&TraceContext>,
) {
    if let Some(link) = producer.and_then(span_context) {
        span.add_link(link);
    }
    if let Some(parent) = invocation.and_then(span_context) {
        // Refused only when no OpenTelemetry layer is installed: then there is nothing to connect.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
}

/// The tracing layer that exports spans over OTLP/HTTP, when `OTEL_EXPORTER_OTLP_ENDPOINT` is
/// set (the exporter reads it, and the other `OTEL_EXPORTER_OTLP_*` settings, itself); `None`
/// otherwise, or when the exporter cannot be built.
pub fn layer<S>(service: String) -> Option<impl tracing_subscriber::Layer<S>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT")?;
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().build().ok()?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service).build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let tracer = provider.tracer("sqs-batch");
    let _ = PROVIDER.set(provider);
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Exports the spans not sent yet: after each Lambda invocation, and at exit.
pub fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::SpanKind;
    use opentelemetry_sdk::trace::InMemorySpanExporter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::context::Context;
    use crate::error::Error;
    use crate::handler::handler_fn;
    use crate::testing::{record, run};

    const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    const W3C: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn each_message_span_is_exported_linked_to_its_producer_with_the_messaging_attributes() {
        async fn work(_: serde_json::Value, _: Context) -> Result<(), Error> {
            Ok(())
        }
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let records = [
                    record("{}").id("x").trace_header(XRAY).queue("orders"),
                    record("{}").id("w").message_attribute("traceparent", W3C).queue("orders"),
                    record("{}").id("plain").queue("orders"),
                ];
                run(handler_fn(work), records).await;
            });
        });
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        let span = |id: &str| {
            spans
                .iter()
                .find(|s| s.attributes.contains(&KeyValue::new("messaging.message.id", id.to_owned())))
                .unwrap_or_else(|| panic!("no span for {id} among {spans:#?}"))
        };
        for (id, trace, parent) in [
            ("x", "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8"),
            ("w", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
        ] {
            let span = span(id);
            assert_eq!(span.span_kind, SpanKind::Consumer);
            for attribute in [
                KeyValue::new("messaging.system", "aws_sqs"),
                KeyValue::new("messaging.operation.type", "process"),
                KeyValue::new("messaging.destination.name", "orders"),
            ] {
                assert!(span.attributes.contains(&attribute), "{attribute:?} in {:?}", span.attributes);
            }
            let links: Vec<(String, String)> = span
                .links
                .iter()
                .map(|l| (l.span_context.trace_id().to_string(), l.span_context.span_id().to_string()))
                .collect();
            assert_eq!(links, [(trace.to_owned(), parent.to_owned())], "{id}");
        }
        assert!(span("plain").links.is_empty(), "no producer, no link");
    }

    #[test]
    fn a_message_span_in_lambda_is_a_child_of_the_invocations_trace() {
        let invocation = TraceContext::from_xray(
            "Root=1-11111111-222222222222222222222222;Parent=3333333333333333;Sampled=1",
        )
        .unwrap();
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("message");
            connect(&span, None, Some(&invocation));
            drop(span);
        });
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans[0].span_context.trace_id().to_string(), "11111111222222222222222222222222");
        assert_eq!(spans[0].parent_span_id.to_string(), "3333333333333333");
    }
}
