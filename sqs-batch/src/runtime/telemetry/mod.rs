//! Log setup shared by the two runtimes, so a message's log line looks the same in Lambda and
//! locally. Nothing here runs unless a `main` calls it.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

pub mod fields;
pub mod function;
mod json;
mod scope;

use scope::Correlated;
pub(crate) use scope::in_message_scope;
pub use scope::{MessageScope, current_message};

/// The SDK module whose debug output includes credentials' key ids.
const IDENTITY_PRINTING_MODULE: &str = "aws_smithy_runtime::client::orchestrator::endpoints=info";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines with colours, for a terminal.
    Pretty,
    /// One JSON object a line, event fields at the top level: for CloudWatch, jq and tests.
    Json,
}

/// The log filter for `filter`, an `EnvFilter` directive (`info`, `handler=debug,warn`); an
/// invalid or missing one falls back to `info`. The caller reads it from wherever its platform
/// keeps it (`RUST_LOG`, `AWS_LAMBDA_LOG_LEVEL`).
///
/// The AWS SDK's "resolving endpoint" debug line prints the whole identity, access key id
/// included: it stays out of debug logs unless the SDK runtime is asked for by name.
#[must_use]
pub fn filter(filter: Option<&str>) -> EnvFilter {
    let mut env_filter =
        filter.and_then(|f| EnvFilter::try_new(f).ok()).unwrap_or_else(|| EnvFilter::new("info"));
    if !filter.is_some_and(|f| f.contains("aws_smithy_runtime"))
        && let Ok(quiet) = IDENTITY_PRINTING_MODULE.parse()
    {
        env_filter = env_filter.add_directive(quiet);
    }
    env_filter
}

/// The log filter directive for Lambda's advanced logging controls' `AWS_LAMBDA_LOG_LEVEL`
/// (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`): tracing has no `FATAL`, so it is `error`.
#[must_use]
pub fn lambda_log_level(level: &str) -> String {
    match level.trim().to_ascii_lowercase().as_str() {
        "fatal" => "error".to_owned(),
        other => other.to_owned(),
    }
}

/// The log format for Lambda's `AWS_LAMBDA_LOG_FORMAT`: `Text` is [`LogFormat::Pretty`] (plain
/// lines, no colours); `JSON`, or nothing set, is [`LogFormat::Json`].
#[must_use]
pub fn lambda_log_format(format: Option<&str>) -> LogFormat {
    match format {
        Some(text) if text.trim().eq_ignore_ascii_case("text") => LogFormat::Pretty,
        _ => LogFormat::Json,
    }
}

/// `subscriber` with OpenTelemetry's exporting layer, when the `opentelemetry` feature is on and
/// an OTLP endpoint is configured ([`crate::otel::layer`]); `subscriber` as it is otherwise. For
/// a runtime that builds its own subscriber (`local-runner`'s terminal view).
#[cfg(feature = "opentelemetry")]
pub fn with_exporter<S>(subscriber: S) -> impl tracing::Subscriber + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    use tracing_subscriber::layer::SubscriberExt;
    let service = std::env::var("OTEL_SERVICE_NAME")
        .or_else(|_| std::env::var("AWS_LAMBDA_FUNCTION_NAME"))
        .unwrap_or_else(|_| "sqs-batch".to_owned());
    subscriber.with(crate::otel::layer(service))
}

/// `subscriber` as it is: the `opentelemetry` feature is off.
#[cfg(not(feature = "opentelemetry"))]
pub fn with_exporter<S: tracing::Subscriber + Send + Sync>(subscriber: S) -> S {
    subscriber
}

/// Exports the spans not sent yet (with the `opentelemetry` feature; nothing otherwise): a
/// runtime calls it before it exits.
pub fn flush() {
    #[cfg(feature = "opentelemetry")]
    crate::otel::flush();
}

/// One JSON object a line, event fields at the top level, with the correlation fields.
fn json_lines() -> json::JsonLines {
    json::JsonLines
}

/// Installs the global tracing subscriber writing to stdout in `format`, filtered by
/// [`filter`]. A subscriber installed earlier (a test harness, an embedding program) is kept.
/// Lines logged while a message is handled carry its correlation fields (`message_id`,
/// `receive_count`, `group_id`, `trace_id`, and Lambda's `request_id`).
pub fn init(format: LogFormat, directive: Option<&str>) {
    init_to(format, directive, std::io::stdout);
}

/// [`init`], writing to `writer` instead of stdout: a long-running consumer hands its lines to a
/// writer thread, so a log line costs the message that logs it no write of its own.
pub fn init_to<W>(format: LogFormat, directive: Option<&str>, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::util::SubscriberInitExt;
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter(directive)).with_target(false).with_writer(writer);
    // Debug sampling switches the filter per invocation: only then is the filter reloadable, which
    // costs every line a lock.
    let sampled = Some("debug").filter(|_| {
        function::sample_rate() > 0.0 && filter(directive).max_level_hint() < Some(LevelFilter::DEBUG)
    });
    let own = directive.map(str::to_owned);
    macro_rules! install {
        ($builder:expr) => {{
            let builder = $builder;
            match sampled {
                Some(sampled) => {
                    let builder = builder.with_filter_reloading();
                    let handle = builder.reload_handle();
                    function::install_sampler(Box::new(move |on| {
                        let _ = handle.reload(filter(if on { Some(sampled) } else { own.as_deref() }));
                    }));
                    with_exporter(builder.finish()).try_init()
                }
                None => with_exporter(builder.finish()).try_init(),
            }
        }};
    }
    let ansi = std::io::stdout().is_terminal();
    let installed = match format {
        LogFormat::Pretty => {
            let format = tracing_subscriber::fmt::format().with_target(false).with_ansi(ansi);
            install!(builder.with_ansi(ansi).event_format(Correlated { inner: format }))
        }
        LogFormat::Json => install!(
            builder.fmt_fields(tracing_subscriber::fmt::format::JsonFields::new()).event_format(json_lines())
        ),
    };
    // Already installed: keep the one there is.
    drop(installed);
}

/// Replaces the process's panic hook with one that logs a panic as one `error` event (text and
/// location) instead of loose text on stderr. The batch core catches a handler's panic and fails
/// that message; this keeps the log readable while it does. For a process's `main` only.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
        let text = crate::text::panic_text(info.payload());
        tracing::error!(panic = %text, location = location.as_deref(), "panic");
    }));
}

pub use crate::text::{MAX_LOGGED_ERROR_CHARS, MAX_LOGGED_ID_CHARS, clip};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Lines written into a shared buffer (the JSON format's tests use it too).
    #[derive(Clone, Default)]
    pub(super) struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        /// What was written, as text.
        pub(super) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }

        fn json(&self) -> Vec<serde_json::Value> {
            self.text().lines().map(|l| serde_json::from_str(l).expect(l)).collect()
        }
    }

    /// The JSON lines `run` logs, through the runtimes' own line format, on one thread.
    fn logged_lines(run: impl std::future::Future<Output = ()>) -> Vec<serde_json::Value> {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json_lines())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run);
        });
        lines.json()
    }

    #[test]
    fn a_handlers_own_lines_and_each_outcome_line_carry_the_messages_correlation_fields() {
        use crate::context::Context;
        use crate::error::Error;
        use crate::handler::handler_fn;
        use crate::testing::{record, run};
        const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        const W3C: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        async fn work(_: serde_json::Value, _: Context) -> Result<(), Error> {
            tracing::info!(step = 1, "own line");
            Ok(())
        }
        let lines = logged_lines(async {
            tracing::info!("outside any message");
            let records = [
                record("{}").id("a").group("g-1").trace_header(XRAY).receive_count(2),
                record("{}").id("b").message_attribute("traceparent", W3C),
            ];
            run(handler_fn(work), records).await;
        });
        let own =
            |id: &str| lines.iter().find(|l| l["message"] == "own line" && l["message_id"] == id).cloned();
        let a = own("a").expect("the handler's line for a carries its message id");
        assert_eq!((a["receive_count"].as_str(), a["group_id"].as_str()), (Some("2"), Some("g-1")));
        assert_eq!(a["trace_id"], "5759e988bd862e3fe1be46a994272793");
        assert_eq!(a["step"], 1, "the line's own fields stay");
        assert_eq!(own("b").expect("b's line")["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        let outcome =
            lines.iter().find(|l| l["outcome"] == "ok" && l["message_id"] == "a").expect("a's outcome line");
        assert_eq!(
            (outcome["trace_id"].as_str(), outcome["group_id"].as_str()),
            (Some("5759e988bd862e3fe1be46a994272793"), Some("g-1"))
        );
        let outside = lines.iter().find(|l| l["message"] == "outside any message").expect("a line outside");
        assert!(outside.get("message_id").is_none(), "{outside}");
    }

    #[test]
    fn the_outcome_lines_the_core_writes_use_the_contracts_field_names() {
        use crate::context::Context;
        use crate::error::Error;
        use crate::handler::handler_fn;
        use crate::testing::{record, run};
        async fn work(id: String, _: Context) -> Result<(), Error> {
            if id == "bad" { Err(Error::permanent("no")) } else { Ok(()) }
        }
        let lines = logged_lines(async {
            let handler = handler_fn(work).log_id(String::as_str);
            let records = [
                record(r#""ok""#).group("g").trace_header("Root=1-5759e988-bd862e3fe1be46a994272793"),
                record(r#""bad""#).group("g"),
                record(r#""later""#).group("g"),
            ];
            run(handler, records).await;
        });
        let keys = |outcome: &str| -> Vec<String> {
            let line = lines.iter().find(|l| l[fields::OUTCOME] == outcome).expect(outcome);
            let mut keys: Vec<String> = line
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| !["timestamp", "level"].contains(&k.as_str()))
                .cloned()
                .collect();
            keys.sort();
            keys
        };
        let sorted = |names: &[&str]| -> Vec<String> {
            let mut names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            names.sort();
            names
        };
        use fields::*;
        assert_eq!(keys("ok"), sorted(&[MESSAGE_ID, ID, RECEIVE_COUNT, GROUP_ID, TRACE_ID, OUTCOME]));
        assert_eq!(
            keys("failed"),
            sorted(&[MESSAGE_ID, ID, RECEIVE_COUNT, GROUP_ID, OUTCOME, ERROR_KIND, RETRYABLE, ERROR])
        );
        assert_eq!(keys("skipped"), sorted(&[MESSAGE_ID, OUTCOME, REASON]));
    }

    #[test]
    fn lambdas_logging_controls_map_to_a_format_and_a_filter() {
        assert_eq!(lambda_log_format(Some("Text")), LogFormat::Pretty);
        assert_eq!(lambda_log_format(Some("JSON")), LogFormat::Json);
        assert_eq!(lambda_log_format(None), LogFormat::Json);
        assert_eq!(lambda_log_level("FATAL"), "error");
        assert_eq!(lambda_log_level("WARN"), "warn");
    }
}
