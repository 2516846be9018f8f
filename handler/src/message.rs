//! The message this function handles, and its validation: change this first.
//!
//! A body is parsed and validated once, at the edge, into a [`Message`]; the work only ever sees
//! valid values. Validation is written as serde attributes, so every error names the field it is
//! about (`invalid body at `id`: must not be empty`) and a message in the dead-letter queue
//! explains itself.

use serde::{Deserialize, Deserializer};

/// The longest simulated work a message may ask for: 15 minutes, Lambda's maximum timeout.
pub const MAX_WORK_MS: u64 = 900_000;

/// The example message.
///
/// Unknown fields are ignored, so producers can add fields before consumers know them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Message {
    /// The producer's id for this message: non-empty.
    #[serde(deserialize_with = "non_empty")]
    pub id: String,
    /// What kind of message this is: non-empty.
    #[serde(deserialize_with = "non_empty")]
    pub kind: String,
    /// Anything the producer wants to carry along.
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    /// Simulated work time in milliseconds (`0..=900000`), for demos, load and visibility tests.
    #[serde(default, deserialize_with = "work_time")]
    pub work_ms: Option<u64>,
}

impl Message {
    /// Parses and validates a message body exactly as the runtime does with each record's body
    /// (`handler_fn` parses with the same [`sqs_batch::json`]): for tests and tools that start
    /// from a body rather than a record.
    ///
    /// # Errors
    /// [`sqs_batch::Error::InvalidBody`] naming the field, when the body is not a JSON object of
    /// the right shape.
    pub fn parse(body: &str) -> Result<Self, sqs_batch::Error> {
        sqs_batch::json::parse_str(body)
    }
}

fn non_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.trim().is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(text)
}

fn work_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let ms = Option::<u64>::deserialize(deserializer)?;
    if ms.is_some_and(|ms| ms > MAX_WORK_MS) {
        return Err(serde::de::Error::custom("must be at most 900000 (15 minutes)"));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use sqs_batch::Error;

    use super::*;

    fn field_of(body: &str) -> Option<String> {
        match Message::parse(body) {
            Err(Error::InvalidBody { field, .. }) => field,
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
    fn an_empty_required_field_is_named_and_says_why() {
        assert_eq!(field_of(r#"{"id":"","kind":"k"}"#).as_deref(), Some("id"));
        assert_eq!(field_of(r#"{"id":"a","kind":"  "}"#).as_deref(), Some("kind"));
        let error = Message::parse(r#"{"id":"","kind":"k"}"#).unwrap_err();
        assert_eq!(error.to_string(), "invalid body at `id`: must not be empty");
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
        assert!(Message::parse(r#"{"id":"a","kind":"k","work_ms":null}"#).is_ok());
    }

    #[test]
    fn bodies_that_are_not_a_json_object_fail_without_a_field() {
        for body in ["", "not json", "[1,2]", "\"text\"", "{\"id\":\"a\",", "{} {}"] {
            assert!(
                matches!(Message::parse(body), Err(Error::InvalidBody { .. })),
                "{body:?} should be an invalid body"
            );
        }
    }

    #[test]
    fn broken_json_is_called_broken_json() {
        let Err(Error::InvalidBody { reason, .. }) = Message::parse("not json") else { panic!("must fail") };
        assert!(reason.starts_with("not valid JSON"), "{reason}");
    }
}
