//! The compact line format: local time, the outcome coloured, the producer's id, the error, the
//! other fields in order, every value made printable once.

use std::fmt::Write as _;

use console::Style;
use sqs_batch::NotStarted;
use sqs_batch::runtime::telemetry::{MAX_LOGGED_ERROR_CHARS, MAX_LOGGED_ID_CHARS, fields};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::observe::printable;

/// The compact event format.
pub(super) struct Compact {
    pub(super) colour: bool,
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
            && let Some(message_id) = sqs_batch::runtime::telemetry::current_message()
                .and_then(|m| m.message_id().map(str::to_owned))
        {
            fields.put(sqs_batch::runtime::telemetry::fields::MESSAGE_ID, message_id);
        }
        writeln!(writer, "{}", render(*event.metadata().level(), &fields, self.colour))
    }
}

/// An event's fields: the ones a line is built around, and the rest in order.
#[derive(Debug, Default)]
pub(super) struct Fields {
    pub(super) message: Option<String>,
    pub(super) outcome: Option<String>,
    pub(super) id: Option<String>,
    pub(super) message_id: Option<String>,
    pub(super) error: Option<String>,
    pub(super) error_kind: Option<String>,
    pub(super) receive_count: Option<String>,
    pub(super) reason: Option<String>,
    pub(super) rest: Vec<(String, String)>,
}

/// The most characters of a field name a line shows (a function's JSON line names its own).
const MAX_FIELD_NAME_CHARS: usize = 64;
/// The most characters of a line a function printed that is not JSON.
pub(super) const MAX_FUNCTION_LINE_CHARS: usize = 2_000;
/// The most characters of a failure reason the summary shows.
pub(super) const MAX_REASON_CHARS: usize = 300;

impl Fields {
    /// Records a field. Every value is made [`printable`] here, once, whatever it came from: the
    /// message's own id, an error quoting the body, a function's line.
    pub(super) fn put(&mut self, name: &str, value: String) {
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
pub(super) fn render(level: Level, fields: &Fields, colour: bool) -> String {
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

pub(super) fn quoted(value: &str) -> String {
    if value.is_empty() || value.contains(char::is_whitespace) {
        format!("{value:?}")
    } else {
        value.to_owned()
    }
}

pub(super) fn local_time() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

pub(super) fn paint(colour: bool, style: &Style, text: &str) -> String {
    if colour { style.apply_to(text).force_styling(true).to_string() } else { text.to_owned() }
}

/// The level and fields of a JSON log line, as the function's tracing writes them.
pub(super) fn function_fields(line: &str) -> Option<(Level, Fields)> {
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
