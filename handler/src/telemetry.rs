//! Log setup shared by the two binaries, so a message's log line looks the same in Lambda and
//! locally.

use tracing_subscriber::EnvFilter;

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

/// Installs the global tracing subscriber writing to stdout, and a panic hook that logs panics
/// through it.
///
/// `filter` is an `EnvFilter` directive (`info`, `handler=debug,warn`); an invalid one falls back
/// to `info`. The caller reads it from wherever its platform keeps it (`RUST_LOG`,
/// `AWS_LAMBDA_LOG_LEVEL`), so this crate never reads the environment itself.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let mut env_filter =
        filter.and_then(|f| EnvFilter::try_new(f).ok()).unwrap_or_else(|| EnvFilter::new("info"));
    // The AWS SDK's "resolving endpoint" debug line prints the whole identity, access key id
    // included. Keep it out of debug logs unless the SDK runtime is asked for by name.
    if !filter.is_some_and(|f| f.contains("aws_smithy_runtime"))
        && let Ok(quiet) = IDENTITY_PRINTING_MODULE.parse()
    {
        env_filter = env_filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt().with_env_filter(env_filter).with_target(false);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init()
        }
    };
    // A subscriber installed earlier (a test harness, an embedding program) wins: keep it.
    drop(installed);
    // The batch core catches a handler's panic and fails that message; the default hook would
    // still print the panic as loose text on stderr. Log it as one event instead.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
        let text = crate::batch::panic_text(info.payload());
        tracing::error!(panic = %text, location = location.as_deref(), "panic");
    }));
}
