//! Text from outside, made fit to echo: a message's ids and errors cut to a bounded length, and
//! a caught panic's payload as text. The bottom of the crate: it uses nothing of it, so every
//! module (the batch core, the telemetry, the layers) may use it.

use std::any::Any;

/// The most characters of a message's own id (what [`crate::handler::Handler::log_id`] returns) a log line
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

/// The text a panic was raised with, when it was raised with text: what a caught panic is reported
/// with, here and by a runtime that catches its own tasks' panics.
pub fn panic_text(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned())
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

    #[test]
    fn a_panic_raised_with_text_gives_that_text_and_any_other_says_so() {
        let caught = |f: fn()| std::panic::catch_unwind(f).expect_err("it panics");
        std::panic::set_hook(Box::new(|_| {}));
        let literal = caught(|| panic!("a literal"));
        let formatted = caught(|| panic!("formatted {}", 42));
        let other = caught(|| std::panic::panic_any(7_u8));
        let _ = std::panic::take_hook();
        assert_eq!(panic_text(&*literal), "a literal");
        assert_eq!(panic_text(&*formatted), "formatted 42");
        assert_eq!(panic_text(&*other), "a non-text panic payload");
    }
}
