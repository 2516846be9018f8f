//! The message contract as a property: for any JSON object built from the message's own fields
//! with values of any type, parsing succeeds exactly when the contract says it should, and
//! otherwise names a field that breaks it.

use handler::Message;
use handler::message::MAX_WORK_MS;
use proptest::prelude::*;
use serde_json::{Map, Value};
use sqs_batch::Error;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0..=MAX_WORK_MS + 2).prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![Just(String::new()), Just("  ".to_owned()), ".{1,12}"].prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| prop::collection::vec(inner, 0..3).prop_map(Value::Array))
}

fn message_like() -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![Just("id"), Just("kind"), Just("payload"), Just("work_ms"), Just("extra")];
    prop::collection::btree_map(key, json_value(), 0..5)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// The contract, written independently of the parser: which fields of `object` break it.
fn broken_fields(object: &Map<String, Value>) -> Vec<&'static str> {
    let non_empty = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty());
    let mut broken = Vec::new();
    if !non_empty(object.get("id")) {
        broken.push("id");
    }
    if !non_empty(object.get("kind")) {
        broken.push("kind");
    }
    match object.get("work_ms") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_u64().is_some_and(|ms| ms <= MAX_WORK_MS) => {}
        Some(_) => broken.push("work_ms"),
    }
    broken
}

proptest! {
    #[test]
    fn a_body_parses_exactly_when_it_keeps_the_contract(object in message_like()) {
        let body = Value::Object(object.clone()).to_string();
        let broken = broken_fields(&object);
        match Message::parse(&body) {
            Ok(message) => {
                prop_assert!(broken.is_empty(), "accepted a body that breaks {broken:?}: {body}");
                prop_assert_eq!(Some(message.id.as_str()), object["id"].as_str());
                prop_assert_eq!(message.work_ms, object.get("work_ms").and_then(Value::as_u64));
            }
            Err(Error::InvalidBody { field, reason }) => {
                prop_assert!(!reason.is_empty());
                let field = field.unwrap_or_default();
                prop_assert!(broken.contains(&field.as_str()), "rejected {body} naming {field:?}, but the broken fields are {broken:?}");
            }
            Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
        }
    }
}
