//! The filter matcher over untrusted input: a pattern is parsed or refused with one line that
//! says why, no pattern and no body makes it panic, and a pattern built from a body's own values
//! always lets that body through.

use local_runner::template::filter::Filters;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sqs_batch::SqsMessage;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z\"{}]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        let key = prop_oneof![
            Just("body".to_owned()),
            Just("$or".to_owned()),
            Just("prefix".to_owned()),
            Just("anything-but".to_owned()),
            Just("numeric".to_owned()),
            Just("exists".to_owned()),
            Just("equals-ignore-case".to_owned()),
            "[a-z]{1,3}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn record(body: &str) -> SqsMessage {
    serde_json::from_value(
        json!({"messageId": "m", "body": body, "attributes": {"ApproximateReceiveCount": "1"}}),
    )
    .expect("a record")
}

proptest! {
    #[test]
    fn any_pattern_is_parsed_or_refused_in_one_line_and_matching_any_body_never_panics(
        pattern in json_value(),
        body in json_value(),
        text in ".{0,40}",
    ) {
        match Filters::parse(&[pattern.to_string()]) {
            Ok(filters) => {
                // The same record gets the same answer: matching keeps no state.
                for record in [record(&body.to_string()), record(&text)] {
                    prop_assert_eq!(filters.matches(&record), filters.matches(&record));
                }
            }
            Err(error) => {
                let error = error.to_string();
                prop_assert!(!error.is_empty() && !error.contains('\n'), "one line that says why: {:?}", error);
            }
        }
    }

    #[test]
    fn a_pattern_of_a_bodys_own_value_lets_it_through(
        fields in prop::collection::btree_map("[a-z]{1,4}", "[a-z]{0,4}", 1..5),
        pick in any::<prop::sample::Index>(),
    ) {
        let body: Map<String, Value> = fields.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect();
        let (key, value) = fields.iter().nth(pick.index(fields.len())).expect("a field");
        let pattern = json!({"body": {key: [value]}}).to_string();
        let filters = Filters::parse(std::slice::from_ref(&pattern)).expect("a valid pattern");
        prop_assert!(filters.matches(&record(&Value::Object(body).to_string())), "{}", pattern);
    }
}
