//! What the process is set up with before anything runs: its log writer, and the environment the
//! handler in this process reads, as Lambda sets it for the function.

use std::io::IsTerminal;

use sqs_batch::runtime::telemetry;
use sqs_batch::runtime::telemetry::LogFormat;
use tracing_appender::non_blocking::WorkerGuard;

use super::InProcessRun;
use crate::observe::terminal;

/// Starts logging: for people (`human`), lines on the terminal; for tools, JSON lines. Keep the
/// guard until `main` returns: dropping it writes the lines still waiting.
pub(super) fn init_logs(human: bool) -> Option<WorkerGuard> {
    let directive = std::env::var("RUST_LOG").ok();
    if human {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        terminal::init(directive.as_deref(), std::io::stderr().is_terminal(), colour);
    }
    // For tools: JSON lines through a writer thread that writes them in batches (flushed as soon
    // as no line is waiting), so that a message's log line costs its handling no write(2). It
    // never drops a line while running (a full queue makes the logger wait); when `main` returns,
    // the guard waits for the thread to write what is left, up to tracing-appender's fixed
    // second.
    (!human).then(|| {
        let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            // Bounds the lines waiting (and the memory they take); a consumer that logs faster
            // than stdout takes them waits.
            .buffered_lines_limit(4096)
            .thread_name("log-writer")
            .finish(stdout);
        telemetry::init_to(LogFormat::Json, directive.as_deref(), writer);
        guard
    })
}

/// Sets the environment of the template function `run` follows, with the defaults `--lambda`
/// gives a function, for the handler in this process.
pub(super) fn set_handler_environment(run: &InProcessRun) {
    let mut environment = run.function.as_ref().map(|f| f.environment.clone()).unwrap_or_default();
    // What `--lambda` gives the function, for the handler's own clients (a DynamoDB store's,
    // an SDK client built in `build()`): the region, and against a local endpoint that
    // endpoint with dummy credentials; whatever the environment sets already wins.
    let connection = &run.config.connection;
    let mut defaults = vec![("AWS_REGION", connection.region.clone())];
    if let Some(endpoint) = connection.endpoint_url.as_ref().filter(|_| connection.is_local()) {
        defaults.push(("AWS_ENDPOINT_URL", endpoint.clone()));
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none() {
            defaults.extend([("AWS_ACCESS_KEY_ID", "test".into()), ("AWS_SECRET_ACCESS_KEY", "test".into())]);
        }
    }
    for (name, value) in defaults {
        if std::env::var_os(name).is_none() {
            environment.entry(name.into()).or_insert(value);
        }
    }
    set_environment(&environment);
}

/// Sets the template function's environment for the handler in this process, as Lambda sets it
/// for the function: the handler reads it as it would there (`std::env::var`).
#[allow(unsafe_code)]
fn set_environment(environment: &std::collections::BTreeMap<String, String>) {
    for (name, value) in environment {
        // SAFETY: called from `main` before the tokio runtime starts. One other thread exists by
        // then: the JSON log writer (tracing-appender's worker), which only writes lines to stdout
        // and never reads the environment; nothing else of this process runs yet, so nothing can
        // read the environment while it changes.
        unsafe { std::env::set_var(name, value) };
    }
}
