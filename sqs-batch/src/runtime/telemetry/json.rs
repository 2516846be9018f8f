//! The JSON line format: one object a line, the event's fields at the top level, then the
//! current message's correlation fields and the function's.
//!
//! The lines are those tracing-subscriber's own JSON format writes (`flatten_event`, no target,
//! no spans), byte for byte up to the event's last field (a test holds the two side by side). They
//! are written straight into the line, in one pass with the correlation fields, rather than
//! through serde's serializer, whose adaptor checks every piece it writes for UTF-8 again. A
//! consumer writes one line a message, so the line's cost is paid per message (BENCHMARKS.md,
//! "The defaults' CPU per message").

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::scope::current_message;
use super::{fields, function};

/// One JSON object a line, with the correlation fields of the message being handled (unless the
/// event names its message itself) and, in Lambda, the function's fields.
pub(super) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(event.metadata().level().as_str())?;
        writer.write_char('"')?;
        let mut fields = FieldWriter { writer: &mut writer, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        let names_its_message = event.fields().any(|field| field.name() == fields::MESSAGE_ID);
        if !names_its_message && let Some(scope) = current_message() {
            for (name, value) in scope.fields() {
                writer.write_str(",\"")?;
                write_escaped(&mut writer, name)?;
                writer.write_str("\":\"")?;
                write_escaped(&mut writer, &value)?;
                writer.write_char('"')?;
            }
        }
        function::write_json_fields(&mut writer)?;
        writer.write_str("}\n")
    }
}

/// Writes each field as `,"name":value`, as serde_json writes the value: numbers and booleans
/// as they are, strings and `Debug` values as strings.
struct FieldWriter<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl FieldWriter<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.writer.write_str(",\"")?;
            write_escaped(self.writer, field.name())?;
            self.writer.write_str("\":")?;
            value(self.writer)
        })();
    }
}

impl Visit for FieldWriter<'_, '_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's own text for a float (shortest round trip, `null` when not finite); rare
        // enough in a log line not to need a faster path.
        self.field(field, |w| w.write_str(&serde_json::to_string(&value).map_err(|_| fmt::Error)?));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| {
            w.write_char('"')?;
            write_escaped(w, value)?;
            w.write_char('"')
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| {
            w.write_char('"')?;
            write!(Escaping(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// A writer that escapes what is written into it as the inside of a JSON string.
struct Escaping<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        write_escaped(self.0, text)
    }
}

/// Writes `text` as the inside of a JSON string, escaped as serde_json escapes it: `"`, `\` and
/// the control characters below U+0020, nothing else.
fn write_escaped<W: fmt::Write + ?Sized>(writer: &mut W, text: &str) -> fmt::Result {
    let mut start = 0;
    for (at, &byte) in text.as_bytes().iter().enumerate() {
        let short = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `at` is an ASCII byte's position, so a character boundary.
        writer.write_str(&text[start..at])?;
        if short.is_empty() {
            write!(writer, "\\u{byte:04x}")?;
        } else {
            writer.write_str(short)?;
        }
        start = at + 1;
    }
    writer.write_str(&text[start..])
}

#[cfg(test)]
mod tests {
    use super::super::tests::Lines;
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)] // printed with Debug, which is what is tested
    struct Shape {
        name: &'static str,
        tabs: &'static str,
    }

    /// Every kind of field, with text that needs escaping.
    fn events() {
        let text = "quote \" backslash \\ newline \n tab \t bell \u{7} nul \u{0} del \u{7f} é ✓";
        let shape = Shape { name: "a\"b", tabs: "\t\r\u{8}\u{c}" };
        let error: &(dyn std::error::Error + 'static) = &std::fmt::Error;
        tracing::info!("a message with {} in it", text);
        tracing::warn!(text, count = 3_u64, delta = -7_i64, ok = true, "fields");
        tracing::error!(ratio = 0.1_f64, big = 1e300_f64, nan = f64::NAN, whole = 2.0_f64, "floats");
        tracing::info!(shape = ?shape, display = %text, error, wide = 1_u128 << 100, "debug");
        tracing::info!(message_id = "m-1", outcome = "ok", "messaging.system" = "aws_sqs");
        tracing::debug!(nothing = tracing::field::Empty, some = Some(5_u64), none = None::<u64>);
    }

    fn lines_of(
        format: impl FormatEvent<tracing_subscriber::Registry, tracing_subscriber::fmt::format::JsonFields>
        + Send
        + Sync
        + 'static,
    ) -> Vec<String> {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, events);
        lines.text().lines().map(str::to_owned).collect()
    }

    /// The line without its timestamp, which differs between two runs.
    fn untimed(line: &str) -> String {
        let (head, rest) = line.split_once("\",\"level\"").expect(line);
        assert!(head.starts_with("{\"timestamp\":\"20"), "{line}");
        rest.to_owned()
    }

    #[test]
    fn lines_are_those_of_tracing_subscribers_json_format_byte_for_byte() {
        let theirs = tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false);
        let (ours, theirs) = (lines_of(JsonLines), lines_of(theirs));
        assert_eq!(ours.len(), 6);
        assert_eq!(
            ours.iter().map(|l| untimed(l)).collect::<Vec<_>>(),
            theirs.iter().map(|l| untimed(l)).collect::<Vec<_>>()
        );
        for line in &ours {
            let parsed: serde_json::Value = serde_json::from_str(line).expect(line);
            assert!(parsed["timestamp"].is_string(), "{line}");
        }
    }

    #[test]
    fn control_characters_are_escaped_as_serde_json_escapes_them() {
        let text = "\"\\\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f} ü";
        let mut ours = String::new();
        write_escaped(&mut ours, text).unwrap();
        assert_eq!(format!("\"{ours}\""), serde_json::to_string(text).unwrap());
    }
}
