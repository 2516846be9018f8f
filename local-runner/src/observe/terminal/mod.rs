//! What a person sees: compact log lines (local time, coloured outcome, the producer's id, the
//! error), a live status line on a terminal, and a summary at the end.
//!
//! The status line is an indicatif progress bar on stderr. Every log line is written to stdout
//! with the bar suspended (cleared, the line written, the bar drawn again), so a log line and the
//! status never share a row. JSON logs (`--log-format json`) never come here: they are the
//! contract for tools and stay one object a line.

mod format;
mod summary;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::Duration;

use console::Style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use self::format::{Compact, MAX_FUNCTION_LINE_CHARS, function_fields, local_time, paint, render};
pub use self::summary::summary_text;
use super::{SUMMARY_TARGET, printable};

/// The view of this process, once [`init`] has run.
static VIEW: OnceLock<View> = OnceLock::new();

#[derive(Debug)]
struct View {
    /// The status line; hidden until a run shows it.
    bar: ProgressBar,
    /// Whether stderr is a terminal the status line can be drawn on.
    live: bool,
    colour: bool,
}

/// Installs the compact log format for people, writing to stdout, filtered by `directive` (as
/// [`sqs_batch::runtime::telemetry::filter`]). With `live` (stderr is a terminal) a run may show the
/// status line; `colour` colours outcomes and levels. A subscriber installed earlier is kept.
pub fn init(directive: Option<&str>, live: bool, colour: bool) {
    console::set_colors_enabled(colour);
    console::set_colors_enabled_stderr(colour);
    if VIEW.set(View { bar: ProgressBar::hidden(), live, colour }).is_err() {
        return;
    }
    let lines = tracing_subscriber::fmt::layer()
        .event_format(Compact { colour })
        .with_writer(Suspending)
        // The summary event is for tools; people get `summary_text` in its place.
        .with_filter(filter_fn(|metadata| metadata.target() != SUMMARY_TARGET));
    let subscriber =
        tracing_subscriber::registry().with(sqs_batch::runtime::telemetry::filter(directive)).with(lines);
    let installed = sqs_batch::runtime::telemetry::with_exporter(subscriber).try_init();
    // Already installed (a test harness): keep the one there is.
    drop(installed);
}

/// Whether this view is installed: the lines of a function under `--lambda` then come through it
/// too, instead of straight to the terminal.
pub(crate) fn installed() -> bool {
    VIEW.get().is_some()
}

/// Whether log lines are coloured.
pub(crate) fn colour() -> bool {
    VIEW.get().is_some_and(|view| view.colour)
}

/// Shows the status line on stderr, ticking on its own so the elapsed time moves.
pub(crate) fn show_status() {
    let Some(view) = VIEW.get().filter(|view| view.live) else { return };
    // `wide_msg` cuts a long text to the terminal's width: the status stays one row. The
    // template is a constant; should it ever fail to parse, the default spinner does.
    let style = ProgressStyle::with_template("{spinner:.cyan} {elapsed:>4} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    view.bar.set_style(style);
    view.bar.set_draw_target(ProgressDrawTarget::stderr());
    view.bar.enable_steady_tick(Duration::from_millis(200));
}

/// Replaces the status line's text.
pub(crate) fn set_status(text: String) {
    if let Some(view) = VIEW.get() {
        view.bar.set_message(text);
    }
}

/// Removes the status line, leaving the screen as the log lines left it.
pub(crate) fn clear_status() {
    if let Some(view) = VIEW.get() {
        view.bar.finish_and_clear();
    }
}

/// Writes `text` (lines ending in `\n`) to stdout, with the status line out of the way.
pub(crate) fn print(text: &str) {
    let write = || {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    };
    // Nowhere to say that stdout failed: it is where it would be said.
    let _ = match VIEW.get() {
        Some(view) => view.bar.suspend(write),
        None => write(),
    };
}

/// One log line of the function under `--lambda` (its JSON, or any text it printed), shown the
/// way this process shows its own.
pub(crate) fn function_line(line: &str) {
    let colour = colour();
    let text = match function_fields(line) {
        Some((level, fields)) => render(level, &fields, colour),
        None => format!(
            "{} {}",
            paint(colour, &Style::new().dim(), &local_time()),
            printable(line.trim_end(), MAX_FUNCTION_LINE_CHARS)
        ),
    };
    print(&format!("{text}\n"));
}

/// Writes each formatted event with the status line suspended.
struct Suspending;

impl<'a> MakeWriter<'a> for Suspending {
    type Writer = SuspendedStdout;

    fn make_writer(&'a self) -> Self::Writer {
        SuspendedStdout
    }
}

/// tracing-subscriber formats a whole event and writes it with one `write_all`.
struct SuspendedStdout;

impl Write for SuspendedStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let write = || {
            let mut out = io::stdout().lock();
            out.write_all(buf).and_then(|()| out.flush())
        };
        match VIEW.get() {
            Some(view) => view.bar.suspend(write),
            None => write(),
        }?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().flush()
    }
}
