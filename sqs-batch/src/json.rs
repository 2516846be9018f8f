//! Message bodies as JSON: parsed with serde into the handler's type, every error naming the
//! field it is about, so that a message in the dead-letter queue explains itself.

use aws_lambda_events::sqs::SqsMessage;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Parses a whole record's body as JSON into `T`: for a record you hold with its body (a test, a
/// tool). [`Handler::parse`](crate::Handler::parse) gets the body itself: use [`parse_str`].
///
/// # Errors
/// [`Error::InvalidBody`]: the record has no body, the body is not valid JSON, or it is JSON of
/// the wrong shape (the error names the field: `id`, `items[2].price`). Validation written as
/// serde attributes (`deserialize_with`, `try_from`) is reported the same way.
pub fn parse_record<T: DeserializeOwned>(record: &SqsMessage) -> Result<T, Error> {
    let body = record.body.as_deref().ok_or_else(|| Error::invalid_body(None, "the record has no body"))?;
    parse_str(body)
}

/// Parses a body as JSON into `T`; see [`parse_record`].
///
/// # Errors
/// [`Error::InvalidBody`], naming the field where there is one.
pub fn parse_str<T: DeserializeOwned>(body: &str) -> Result<T, Error> {
    // The path is tracked only to explain a failure: a body that parses takes serde_json's own
    // path, and one that does not is parsed again, tracked. Parsing is deterministic, so the
    // second pass fails where the first did. Tracking every body took a third of the parse's
    // CPU (BENCHMARKS.md, "The defaults' CPU per message").
    serde_json::from_str(body).or_else(|_| parse_tracked(body))
}

/// [`parse_str`] with the path to the failing field tracked.
fn parse_tracked<T: DeserializeOwned>(body: &str) -> Result<T, Error> {
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        // serde reports a missing field at its parent's path ("." at the top): the whole path is
        // the parent's and the field's, as a wrong type's is. Broken JSON has no field ("?").
        let known_path = !inner.is_syntax() && !inner.is_eof() && path != "." && path != "?";
        let field = match missing_field(&inner) {
            Some(name) if known_path => Some(format!("{path}.{name}")),
            Some(name) => Some(name),
            None => known_path.then_some(path),
        };
        Error::InvalidBody { field, reason: describe(&inner) }
    })?;
    deserializer.end().map_err(|err| Error::InvalidBody { field: None, reason: describe(&err) })?;
    Ok(value)
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
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)] // the fields are what the parser is tested on
    struct Order {
        id: u64,
        lines: Vec<Line>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        quantity: u32,
    }

    fn field_of(body: &str) -> Option<String> {
        match parse_str::<Order>(body) {
            Err(Error::InvalidBody { field, .. }) => field,
            other => panic!("expected InvalidBody for {body:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_wrong_type_deep_inside_is_named_by_its_path() {
        assert_eq!(
            field_of(r#"{"id":1,"lines":[{"sku":"a","quantity":"two"}]}"#).as_deref(),
            Some("lines[0].quantity")
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        assert_eq!(field_of(r#"{"lines":[]}"#).as_deref(), Some("id"));
    }

    #[test]
    fn a_missing_field_deep_inside_is_named_by_its_whole_path_as_a_wrong_type_is() {
        assert_eq!(
            field_of(r#"{"id":1,"lines":[{"sku":"a","quantity":1},{"sku":"b"}]}"#).as_deref(),
            Some("lines[1].quantity")
        );
        assert_eq!(
            field_of(r#"{"id":1,"lines":[{"sku":"a","quantity":1},{"sku":"b","quantity":"x"}]}"#).as_deref(),
            Some("lines[1].quantity")
        );
    }

    #[test]
    fn broken_json_has_no_field_and_says_so() {
        let Err(Error::InvalidBody { field, reason }) = parse_str::<Order>("not json") else {
            panic!("must fail")
        };
        assert_eq!(field, None);
        assert!(reason.starts_with("not valid JSON"), "{reason}");
    }

    #[test]
    fn trailing_text_after_the_value_is_rejected() {
        assert!(parse_str::<Order>(r#"{"id":1,"lines":[]} x"#).is_err());
        assert!(parse_str::<Order>(r#"{"id":1,"lines":[]}"#).is_ok());
    }

    #[test]
    fn a_record_without_a_body_is_an_invalid_body() {
        assert!(matches!(parse_record::<Order>(&SqsMessage::default()), Err(Error::InvalidBody { .. })));
    }
}
