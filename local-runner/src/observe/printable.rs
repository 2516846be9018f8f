//! Text that came from a message, made safe to show a person: whoever can send to the queue
//! chooses it, and a terminal obeys what it is sent.

use std::fmt::Write as _;

/// `text` with every character a terminal would act on written as an escape, and cut to `max`
/// characters: control characters (ESC and the rest of C0, DEL, C1) as `\x1b`, `\u{9b}`, line
/// breaks and tabs as `\n`, `\r`, `\t`, and the invisible characters that reorder or hide text
/// (bidirectional overrides and isolates, marks) as `\u{202e}`. A producer's body can then never
/// change colours, move the cursor, or forge a line of its own.
#[must_use]
pub fn printable(text: &str, max: usize) -> String {
    let text = sqs_batch::runtime::telemetry::clip(text, max);
    if !text.chars().any(needs_escape) {
        return text.into_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Control characters, and the format characters that change how the text around them shows.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_line_breaks_are_shown_not_obeyed() {
        let forged = "\u{1b}[31mRED\u{1b}[0m\r\n12:00:00 ok      FORGED";
        let shown = printable(forged, 200);
        assert_eq!(shown, r"\x1b[31mRED\x1b[0m\r\n12:00:00 ok      FORGED");
        assert!(!shown.chars().any(char::is_control));
    }

    #[test]
    fn c1_controls_and_bidirectional_overrides_are_escaped_and_plain_text_is_untouched() {
        assert_eq!(printable("a\u{9b}31mb", 50), r"a\u{9b}31mb");
        assert_eq!(printable("evil\u{202e}txt.exe", 50), r"evil\u{202e}txt.exe");
        assert_eq!(printable("order-17 ünïcode ✓", 50), "order-17 ünïcode ✓");
    }

    #[test]
    fn long_text_is_cut_before_it_is_escaped() {
        let shown = printable(&"\u{1b}".repeat(100_000), 10);
        assert!(shown.len() < 60, "{shown}");
    }
}
