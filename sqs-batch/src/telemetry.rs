//! Log setup shared by the two runtimes, so a message's log line looks the same in Lambda and
//! locally. Nothing here runs unless a `main` calls it.

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

/// Installs the global tracing subscriber writing to stdout in `format`, filtered by
/// [`filter`]. A subscriber installed earlier (a test harness, an embedding program) is kept.
pub fn init(format: LogFormat, directive: Option<&str>) {
    init_to(format, directive, std::io::stdout);
}

/// [`init`], writing to `writer` instead of stdout: a long-running consumer hands its lines to a
/// writer thread, so a log line costs the message that logs it no write of its own.
pub fn init_to<W>(format: LogFormat, directive: Option<&str>, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter(directive)).with_target(false).with_writer(writer);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init()
        }
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
        let text = crate::batch::panic_text(info.payload());
        tracing::error!(panic = %text, location = location.as_deref(), "panic");
    }));
}

/// The most characters of a message's own id (what [`crate::Handler::log_id`] returns) a log line
/// carries: an id is for finding a message, and a producer can make one as long as a body.
pub const MAX_LOGGED_ID_CHARS: usize = 128;
/// The most characters of an error's text a log line carries.
pub const MAX_LOGGED_ERROR_CHARS: usize = 1_000;

/// `text` cut to at most `max` characters (a `…` then stands for the rest): anything a message
/// carries is echoed at a bounded length, however long the producer made it.
#[must_use]
pub fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(text),
        Some(_) => {
            // Room for the ellipsis: `max - 1` characters of the text, then `…`.
            let kept = text.char_indices().nth(max.saturating_sub(1)).map_or(0, |(i, _)| i);
            std::borrow::Cow::Owned(format!("{}…", &text[..kept]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_to_its_limit_at_a_character_boundary() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("exactly10!", 10), "exactly10!");
        let long = "é".repeat(50);
        let cut = clip(&long, 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
        assert_eq!(clip("abc", 0), "…");
    }
}
