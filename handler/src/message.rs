//! The typed message and its validation: the part of the handler a user edits first.
//!
//! A body is parsed and validated once, at the edge, into a [`Message`]; the work only ever sees
//! valid values. Every error names the field it is about, so a message in the dead-letter queue
//! explains itself.

use serde::Deserialize;

use crate::HandlerError;

/// The longest simulated work a message may ask for: 15 minutes, Lambda's maximum timeout.
pub const MAX_WORK_MS: u64 = 900_000;

/// The example message.
///
/// Unknown fields are ignored, so producers can add fields before consumers know them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Message {
    /// The producer's id for this message: non-empty.
    pub id: String,
    /// What kind of message this is: non-empty.
    pub kind: String,
    /// Anything the producer wants to carry along.
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    /// Simulated work time in milliseconds (`0..=900000`), for demos, load and visibility tests.
    #[serde(default)]
    pub work_ms: Option<u64>,
}

impl Message {
    /// Parses and validates a message body.
    ///
    /// # Errors
    /// [`HandlerError::InvalidBody`] when the body is not a JSON object of the right shape; the
    /// error names the field (`id`, `kind`, `work_ms`) where there is one.
    pub fn parse(body: &str) -> Result<Self, HandlerError> {
        let mut deserializer = serde_json::Deserializer::from_str(body);
        let message: Self = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            // serde reports a missing field at the parent's path ("."): name the field itself.
            // Broken JSON has no field ("?").
            let known_path = !inner.is_syntax() && !inner.is_eof() && path != "." && path != "?";
            let field = missing_field(&inner).or(known_path.then_some(path));
            HandlerError::InvalidBody { field, reason: describe(&inner) }
        })?;
        deserializer
            .end()
            .map_err(|err| HandlerError::InvalidBody { field: None, reason: describe(&err) })?;
        message.validate()?;
        Ok(message)
    }

    fn validate(&self) -> Result<(), HandlerError> {
        let invalid = |field: &str, reason: &str| HandlerError::InvalidBody {
            field: Some(field.to_owned()),
            reason: reason.to_owned(),
        };
        if self.id.trim().is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        if self.kind.trim().is_empty() {
            return Err(invalid("kind", "must not be empty"));
        }
        if self.work_ms.is_some_and(|ms| ms > MAX_WORK_MS) {
            return Err(invalid("work_ms", "must be at most 900000 (15 minutes)"));
        }
        Ok(())
    }
}

/// serde_json says "missing field `id`" without a path; pull the name out of the message.
fn missing_field(err: &serde_json::Error) -> Option<String> {
    let text = err.to_string();
    let rest = text.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Broken JSON is said to be so, with its position; for JSON of the wrong shape the field name
/// says more than serde's " at line 1 column 9", so the position is dropped.
fn describe(err: &serde_json::Error) -> String {
    let text = err.to_string();
    if err.is_syntax() || err.is_eof() {
        return format!("not valid JSON: {text}");
    }
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> Option<String> {
        match Message::parse(body) {
            Err(HandlerError::InvalidBody { field, .. }) => field,
            other => panic!("expected InvalidBody for {body:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_full_message_parses_into_typed_fields() {
        let message = Message::parse(r#"{"id":"a1","kind":"order","payload":{"n":1},"work_ms":5}"#).unwrap();
        assert_eq!(message.id, "a1");
        assert_eq!(message.kind, "order");
        assert_eq!(message.payload, Some(serde_json::json!({"n": 1})));
        assert_eq!(message.work_ms, Some(5));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let message = Message::parse(r#"{"id":"a","kind":"k","added_later":true}"#).unwrap();
        assert_eq!(message.id, "a");
    }

    #[test]
    fn a_missing_required_field_is_named() {
        assert_eq!(field_of(r#"{"kind":"k"}"#).as_deref(), Some("id"));
        assert_eq!(field_of(r#"{"id":"a"}"#).as_deref(), Some("kind"));
    }

    #[test]
    fn an_empty_required_field_is_named() {
        assert_eq!(field_of(r#"{"id":"","kind":"k"}"#).as_deref(), Some("id"));
        assert_eq!(field_of(r#"{"id":"a","kind":"  "}"#).as_deref(), Some("kind"));
    }

    #[test]
    fn a_wrong_type_is_named_with_its_field() {
        assert_eq!(field_of(r#"{"id":7,"kind":"k"}"#).as_deref(), Some("id"));
        assert_eq!(field_of(r#"{"id":"a","kind":"k","work_ms":"slow"}"#).as_deref(), Some("work_ms"));
        assert_eq!(field_of(r#"{"id":"a","kind":"k","work_ms":-1}"#).as_deref(), Some("work_ms"));
    }

    #[test]
    fn work_ms_above_fifteen_minutes_is_rejected() {
        assert_eq!(field_of(r#"{"id":"a","kind":"k","work_ms":900001}"#).as_deref(), Some("work_ms"));
        assert!(Message::parse(r#"{"id":"a","kind":"k","work_ms":900000}"#).is_ok());
    }

    #[test]
    fn bodies_that_are_not_a_json_object_fail_without_a_field() {
        for body in ["", "not json", "[1,2]", "\"text\"", "{\"id\":\"a\",", "{} {}"] {
            assert!(
                matches!(Message::parse(body), Err(HandlerError::InvalidBody { .. })),
                "{body:?} should be an invalid body"
            );
        }
    }

    #[test]
    fn broken_json_is_called_broken_json() {
        let Err(HandlerError::InvalidBody { reason, .. }) = Message::parse("not json") else {
            panic!("must fail")
        };
        assert!(reason.starts_with("not valid JSON"), "{reason}");
    }

    #[test]
    fn trailing_garbage_after_the_object_is_rejected() {
        assert!(Message::parse(r#"{"id":"a","kind":"k"} x"#).is_err());
    }
}
