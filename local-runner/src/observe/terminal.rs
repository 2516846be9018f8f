//! What a person sees: compact log lines (local time, coloured outcome, the producer's id, the
//! error), a live status line on a terminal, and a summary at the end.
//!
//! The status line is an indicatif progress bar on stderr. Every log line is written to stdout
//! with the bar suspended (cleared, the line written, the bar drawn again), so a log line and the
//! status never share a row. JSON logs (`--log-format json`) never come here: they are the
//! contract for tools and stay one object a line.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::Duration;

use console::Style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use sqs_batch::NotStarted;
use sqs_batch::telemetry::{MAX_LOGGED_ERROR_CHARS, MAX_LOGGED_ID_CHARS, fields};

use super::{FailureGroup, SUMMARY_TARGET, Summary, printable};

/// Failure reasons the summary lists before it sums up the rest.
const REASONS_SHOWN: usize = 8;

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
/// [`sqs_batch::telemetry::filter`]). With `live` (stderr is a terminal) a run may show the
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
    let subscriber = tracing_subscriber::registry().with(sqs_batch::telemetry::filter(directive)).with(lines);
    let installed = sqs_batch::telemetry::with_exporter(subscriber).try_init();
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

/// The level and fields of a JSON log line, as the function's tracing writes them.
fn function_fields(line: &str) -> Option<(Level, Fields)> {
    let serde_json::Value::Object(object) = serde_json::from_str(line).ok()? else { return None };
    let level = object.get("level").and_then(|l| l.as_str()).and_then(|l| l.parse().ok());
    let mut fields = Fields::default();
    for (name, value) in &object {
        if !matches!(name.as_str(), "level" | "timestamp" | "target" | "span" | "spans") {
            fields.put(name, value.as_str().map_or_else(|| value.to_string(), str::to_owned));
        }
    }
    Some((level.unwrap_or(Level::INFO), fields))
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

/// The compact event format.
struct Compact {
    colour: bool,
}

impl<S, N> FormatEvent<S, N> for Compact
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // A handler's own line, logged while it handles a message, names that message.
        if fields.message_id.is_none()
            && let Some(message_id) =
                sqs_batch::telemetry::current_message().and_then(|m| m.message_id().map(str::to_owned))
        {
            fields.put(sqs_batch::telemetry::fields::MESSAGE_ID, message_id);
        }
        writeln!(writer, "{}", render(*event.metadata().level(), &fields, self.colour))
    }
}

/// An event's fields: the ones a line is built around, and the rest in order.
#[derive(Debug, Default)]
struct Fields {
    message: Option<String>,
    outcome: Option<String>,
    id: Option<String>,
    message_id: Option<String>,
    error: Option<String>,
    error_kind: Option<String>,
    receive_count: Option<String>,
    reason: Option<String>,
    rest: Vec<(String, String)>,
}

/// The most characters of a field name a line shows (a function's JSON line names its own).
const MAX_FIELD_NAME_CHARS: usize = 64;
/// The most characters of a line a function printed that is not JSON.
const MAX_FUNCTION_LINE_CHARS: usize = 2_000;
/// The most characters of a failure reason the summary shows.
const MAX_REASON_CHARS: usize = 300;

impl Fields {
    /// Records a field. Every value is made [`printable`] here, once, whatever it came from: the
    /// message's own id, an error quoting the body, a function's line.
    fn put(&mut self, name: &str, value: String) {
        let limit = if name == fields::ID { MAX_LOGGED_ID_CHARS } else { MAX_LOGGED_ERROR_CHARS };
        let value = printable(&value, limit);
        let slot = match name {
            "message" => &mut self.message,
            fields::OUTCOME => &mut self.outcome,
            fields::ID => &mut self.id,
            fields::MESSAGE_ID => &mut self.message_id,
            fields::ERROR => &mut self.error,
            fields::ERROR_KIND => &mut self.error_kind,
            fields::RECEIVE_COUNT => &mut self.receive_count,
            fields::REASON => &mut self.reason,
            // Said by the outcome and the error's kind already; the trace and request ids are for
            // tools (the JSON lines), too long for a line a person reads.
            fields::RETRYABLE | fields::TRACE_ID | fields::REQUEST_ID => return,
            _ => {
                self.rest.push((printable(name, MAX_FIELD_NAME_CHARS), value));
                return;
            }
        };
        *slot = Some(value);
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field.name(), format!("{value:?}"));
    }
}

/// One line for an event: `12:04:05 FAILED order-17  invalid body at `id`: ...  receive 2 ·9e5b12ab`
/// for a message's outcome, `12:04:05 WARN  what happened  key=value` for the rest.
fn render(level: Level, fields: &Fields, colour: bool) -> String {
    let dim = Style::new().dim();
    let mut line = paint(colour, &dim, &local_time());
    line.push(' ');
    if let Some(outcome) = &fields.outcome {
        let (word, style) = match outcome.as_str() {
            "ok" => ("ok", Style::new().green()),
            "failed" => ("FAILED", Style::new().red().bold()),
            "skipped" => ("skipped", Style::new().yellow()),
            other => (other, Style::new()),
        };
        let _ = write!(line, "{} ", paint(colour, &style, &format!("{word:<7}")));
        let short_id = fields.message_id.as_deref().map(|id| id.chars().take(8).collect::<String>());
        let who = fields.id.clone().or_else(|| short_id.clone()).unwrap_or_else(|| "?".to_owned());
        let _ = write!(line, "{who:<12}");
        if let Some(error) = &fields.error {
            let _ = write!(line, "  {}", paint(colour, &Style::new().red(), error));
        }
        if let Some(reason) = &fields.reason {
            let said = match reason.as_str() {
                reason if reason == NotStarted::EarlierInGroupFailed.as_str() => {
                    "held back: an earlier message of its group failed"
                }
                reason if reason == NotStarted::Stopped.as_str() => "not started: stopping",
                other => other,
            };
            let _ = write!(line, "  {said}");
        }
        let mut tail = Vec::new();
        if outcome == "failed" {
            tail.extend(fields.error_kind.clone());
            tail.extend(fields.receive_count.as_ref().map(|n| format!("receive {n}")));
        }
        if fields.id.is_some() {
            tail.extend(short_id);
        }
        tail.extend(fields.rest.iter().map(|(k, v)| format!("{k}={v}")));
        if !tail.is_empty() {
            let _ = write!(line, "  {}", paint(colour, &dim, &tail.join(" ")));
        }
        return line;
    }
    let (word, style) = match level {
        Level::ERROR => ("ERROR", Style::new().red().bold()),
        Level::WARN => ("WARN", Style::new().yellow().bold()),
        Level::INFO => ("info", Style::new().dim()),
        Level::DEBUG => ("debug", Style::new().blue()),
        Level::TRACE => ("trace", Style::new().magenta()),
    };
    let _ = write!(line, "{} ", paint(colour, &style, &format!("{word:<5}")));
    if let Some(message) = &fields.message {
        let message_style = if level <= Level::WARN { Style::new().bold() } else { Style::new() };
        line.push_str(&paint(colour, &message_style, message));
    }
    let mut rest: Vec<String> = Vec::new();
    for (name, value) in [("id", &fields.id), ("message_id", &fields.message_id), ("error", &fields.error)] {
        if let Some(value) = value {
            rest.push(format!("{name}={}", quoted(value)));
        }
    }
    rest.extend(fields.rest.iter().map(|(name, value)| format!("{name}={}", quoted(value))));
    if !rest.is_empty() {
        let _ = write!(line, "  {}", paint(colour, &dim, &rest.join(" ")));
    }
    line
}

fn quoted(value: &str) -> String {
    if value.is_empty() || value.contains(char::is_whitespace) {
        format!("{value:?}")
    } else {
        value.to_owned()
    }
}

fn local_time() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

fn paint(colour: bool, style: &Style, text: &str) -> String {
    if colour { style.apply_to(text).force_styling(true).to_string() } else { text.to_owned() }
}

/// The end of a run for people: counts, time and rate, and the failures by reason with where
/// their messages went.
#[must_use]
pub fn summary_text(summary: &Summary, colour: bool) -> String {
    let queue = printable(&summary.queue, MAX_REASON_CHARS);
    let bold = Style::new().bold();
    let secs = summary.elapsed.as_secs_f64();
    let handled = summary.succeeded + summary.failed;
    let rate = if secs > 0.0 { handled as f64 / secs } else { 0.0 };
    let mut text = format!(
        "\n{} {queue}: {} received in {secs:.1} s, {rate:.0} handled/s\n",
        paint(colour, &bold, "summary"),
        summary.received
    );
    let ok = paint(colour, &Style::new().green(), &format!("{:>7}", summary.succeeded));
    let _ = writeln!(text, "{ok} ok, {} deleted", summary.deleted);
    let failed_style = if summary.failed > 0 { Style::new().red().bold() } else { Style::new() };
    let failed = paint(colour, &failed_style, &format!("{:>7}", summary.failed));
    if summary.failed == 0 {
        let _ = writeln!(text, "{failed} failed");
    } else {
        let _ = writeln!(text, "{failed} failed, by reason:");
        for group in summary.failures.iter().take(REASONS_SHOWN) {
            let times = if group.failures == 1 {
                "1 failure".to_owned()
            } else {
                format!("{} failures", group.failures)
            };
            let messages = if group.messages == 1 {
                "1 message".to_owned()
            } else {
                format!("{} messages", group.messages)
            };
            let _ = writeln!(
                text,
                "          {}  ({times}, {messages})",
                paint(colour, &Style::new().red(), &printable(&group.reason, MAX_REASON_CHARS))
            );
            let _ = writeln!(text, "            -> {}", destinations(group, summary));
        }
        let more = &summary.failures[summary.failures.len().min(REASONS_SHOWN)..];
        if !more.is_empty() {
            let failures: u64 = more.iter().map(|g| g.failures).sum();
            let _ = writeln!(text, "          ... and {} more reasons ({failures} failures)", more.len());
        }
    }
    let others = [
        (
            summary.skipped,
            "skipped: held back behind a failure in their FIFO group, or not started at a stop",
        ),
        (summary.filtered, "filtered out: no filter matched; deleted without being handled"),
        (summary.released, "released at the stop: visible again at once"),
        (summary.requeue_failed, "back-off not set: these come back after the queue's visibility timeout"),
        (summary.abandoned, "abandoned: still running when the shutdown timeout ran out; delivered again"),
        (summary.delete_failed, "succeeded but not deleted: SQS delivers them again"),
        (summary.deleted_late, "deleted after their visibility timeout: SQS may have delivered them again"),
        (summary.receives_cut_off, "receives cut off: their messages come back after the visibility timeout"),
    ];
    for (count, what) in others.into_iter().filter(|(count, _)| *count > 0) {
        let _ = writeln!(text, "{count:>7} {what}");
    }
    if summary.event_count_metrics {
        let counts: Vec<String> =
            summary.event_counts().iter().map(|(name, n)| format!("{name} {n}")).collect();
        let _ = writeln!(text, "        event source mapping: {}", counts.join(", "));
    }
    text
}

/// Where a group's messages went: `2 to the DLQ orders-dlq (after 5 receives); 1 succeeded later`.
fn destinations(group: &FailureGroup, summary: &Summary) -> String {
    let mut went = Vec::new();
    if group.dead_lettered > 0 {
        let (dlq, after) = summary
            .redrive
            .as_ref()
            .map_or(("?", 0), |r| (r.dead_letter_queue.as_str(), r.max_receive_count));
        went.push(format!("{} to the DLQ {dlq} (after {after} receives)", group.dead_lettered));
    }
    if group.retrying > 0 {
        let next = group.last_receive.saturating_add(1);
        went.push(match &summary.redrive {
            Some(redrive) => format!(
                "{} back on the queue for receive {next} (the DLQ after {})",
                group.retrying, redrive.max_receive_count
            ),
            None => format!(
                "{} back on the queue (no DLQ: retried until the retention period ends)",
                group.retrying
            ),
        });
    }
    if group.recovered > 0 {
        went.push(format!("{} succeeded on a later receive", group.recovered));
    }
    if group.unfollowed > 0 {
        went.push(format!("{} not followed (too many failing at once)", group.unfollowed));
    }
    went.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::queue::Redrive;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        let mut fields = Fields::default();
        for (name, value) in pairs {
            fields.put(name, (*value).to_owned());
        }
        fields
    }

    #[test]
    fn an_outcome_line_leads_with_the_outcome_and_the_producers_id_and_ends_with_the_short_message_id() {
        let ok = render(
            Level::INFO,
            &fields(&[("message_id", "9e5b12ab-0000"), ("id", "order-1"), ("outcome", "ok")]),
            false,
        );
        let (_time, rest) = ok.split_once(' ').unwrap();
        assert_eq!(rest, "ok      order-1       9e5b12ab");
        let failed = render(
            Level::ERROR,
            &fields(&[
                ("message_id", "4c1d0000-1"),
                ("outcome", "failed"),
                ("error_kind", "invalid_body"),
                ("receive_count", "2"),
                ("retryable", "false"),
                ("error", "invalid body at `id`: must not be empty"),
            ]),
            false,
        );
        assert!(
            failed.ends_with(
                "FAILED  4c1d0000      invalid body at `id`: must not be empty  invalid_body receive 2"
            ),
            "{failed}"
        );
    }

    #[test]
    fn other_lines_carry_level_message_and_fields_with_spaces_quoted() {
        let line = render(
            Level::WARN,
            &fields(&[("message", "receive failed"), ("error", "connection refused")]),
            false,
        );
        assert!(line.ends_with(r#"WARN  receive failed  error="connection refused""#), "{line}");
    }

    #[test]
    fn a_producers_escape_sequences_and_line_breaks_cannot_forge_a_line() {
        let forged = "\u{1b}[31mRED\u{1b}[0m\r\n12:00:00 ok      FORGED";
        for line in [
            render(Level::INFO, &fields(&[("outcome", "ok"), ("id", forged)]), true),
            render(Level::ERROR, &fields(&[("outcome", "failed"), ("error", forged)]), false),
            render(Level::WARN, &fields(&[("message", "x"), (forged, forged)]), false),
        ] {
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
            assert!(!line.contains("\u{1b}[31m") && line.contains(r"\x1b[31mRED"), "{line:?}");
        }
        let summary = Summary {
            queue: "q".into(),
            failed: 1,
            failures: vec![FailureGroup {
                reason: forged.into(),
                failures: 1,
                messages: 1,
                ..FailureGroup::default()
            }],
            ..Summary::default()
        };
        let text = summary_text(&summary, false);
        assert!(
            !text.contains('\u{1b}') && !text.contains("\nFORGED") && text.contains(r"\r\n12:00:00"),
            "{text}"
        );
    }

    #[test]
    fn a_huge_id_or_error_is_echoed_only_in_part() {
        let huge = "i".repeat(200_000);
        let line =
            render(Level::ERROR, &fields(&[("outcome", "failed"), ("id", &huge), ("error", &huge)]), false);
        assert!(line.len() < 2_000, "{} bytes", line.len());
    }

    #[test]
    fn colour_is_only_there_when_asked_for() {
        let plain = render(Level::INFO, &fields(&[("outcome", "ok"), ("id", "a")]), false);
        let coloured = render(Level::INFO, &fields(&[("outcome", "ok"), ("id", "a")]), true);
        assert!(!plain.contains('\x1b'));
        assert!(coloured.contains("\x1b[32m"), "{coloured:?}");
    }

    #[test]
    fn with_the_mapping_s_event_count_metrics_the_summary_names_them_as_cloudwatch_does() {
        let summary = Summary {
            received: 12,
            invoked: 10,
            filtered: 2,
            failed_invoke: 1,
            deleted: 9,
            event_count_metrics: true,
            ..Summary::default()
        };
        let text = summary_text(&summary, false);
        assert!(
            text.contains(
                "event source mapping: PolledEventCount 12, InvokedEventCount 10, FilteredOutEventCount 2, \
                 FailedInvokeEventCount 1, DeletedEventCount 9, DroppedEventCount 0"
            ),
            "{text}"
        );
        let off = summary_text(&Summary { event_count_metrics: false, ..summary }, false);
        assert!(!off.contains("PolledEventCount"), "only when the template asks for them");
    }

    #[test]
    fn the_summary_groups_failures_by_reason_and_says_where_they_went() {
        let summary = Summary {
            received: 230,
            succeeded: 190,
            failed: 40,
            deleted: 190,
            elapsed: Duration::from_secs(10),
            redrive: Some(Redrive { dead_letter_queue: "orders-dlq".into(), max_receive_count: 3 }),
            failures: vec![
                FailureGroup {
                    reason: "invalid body at `id`: missing field `id`".into(),
                    failures: 30,
                    messages: 10,
                    dead_lettered: 10,
                    last_receive: 3,
                    ..FailureGroup::default()
                },
                FailureGroup {
                    reason: "gateway timed out".into(),
                    failures: 10,
                    messages: 6,
                    recovered: 5,
                    retrying: 1,
                    last_receive: 2,
                    ..FailureGroup::default()
                },
            ],
            ..Summary::default()
        };
        let text = summary_text(&Summary { queue: "orders".into(), ..summary }, false);
        assert!(text.contains("orders: 230 received in 10.0 s, 23 handled/s"), "{text}");
        assert!(text.contains("    190 ok, 190 deleted"), "{text}");
        assert!(
            text.contains("invalid body at `id`: missing field `id`  (30 failures, 10 messages)"),
            "{text}"
        );
        assert!(text.contains("-> 10 to the DLQ orders-dlq (after 3 receives)"), "{text}");
        assert!(
            text.contains(
                "-> 1 back on the queue for receive 3 (the DLQ after 3); 5 succeeded on a later receive"
            ),
            "{text}"
        );
        assert!(!text.contains("skipped"), "counts that are zero are left out: {text}");
    }

    #[test]
    fn a_json_line_of_the_function_is_shown_like_one_of_ours_and_other_text_is_not_parsed() {
        let line = r#"{"timestamp":"2026-11-28T10:00:00Z","level":"WARN","message_id":"abcdef123","id":"o-1","outcome":"failed","error":"boom","receive_count":2}"#;
        let (level, fields) = function_fields(line).unwrap();
        assert_eq!(level, Level::WARN);
        assert!(render(level, &fields, false).ends_with("FAILED  o-1           boom  receive 2 abcdef12"));
        assert!(function_fields("thread 'main' panicked").is_none());
        assert!(function_fields("[1, 2]").is_none());
    }
}
