//! Filters as Lambda applies them, and patterns Lambda would refuse.

use serde_json::json;

use super::*;

fn record(body: &str) -> SqsMessage {
    serde_json::from_value(json!({
        "messageId": "m-1",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": "g1"},
        "messageAttributes": {"tenant": {"stringValue": "acme", "dataType": "String", "stringListValues": [], "binaryListValues": []}},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
        "awsRegion": "us-east-1"
    }))
    .expect("a record")
}

fn passes(pattern: &str, body: &str) -> bool {
    Filters::parse(&[pattern]).unwrap_or_else(|e| panic!("{pattern}: {e}")).matches(&record(body))
}

/// AWS's documented comparison operators, each as (pattern, body, match).
#[test]
fn the_operators_match_as_awss_examples_say() {
    let table: &[(&str, &str, bool)] = &[
        (r#"{"body": {"UserID": [null]}}"#, r#"{"UserID": null}"#, true),
        (r#"{"body": {"UserID": [null]}}"#, r#"{"UserID": "u1"}"#, false),
        (r#"{"body": {"LastName": [""]}}"#, r#"{"LastName": ""}"#, true),
        (r#"{"body": {"Name": ["Alice"]}}"#, r#"{"Name": "Alice"}"#, true),
        (r#"{"body": {"Name": ["Alice"]}}"#, r#"{"Name": "alice"}"#, false),
        (r#"{"body": {"Name": [{"equals-ignore-case": "alice"}]}}"#, r#"{"Name": "ALICE"}"#, true),
        (
            r#"{"body": {"Location": ["New York"], "Day": ["Monday"]}}"#,
            r#"{"Location": "New York", "Day": "Monday"}"#,
            true,
        ),
        (
            r#"{"body": {"Location": ["New York"], "Day": ["Monday"]}}"#,
            r#"{"Location": "New York", "Day": "Friday"}"#,
            false,
        ),
        (r#"{"body": {"PaymentType": ["Credit", "Debit"]}}"#, r#"{"PaymentType": "Debit"}"#, true),
        (
            r#"{"body": {"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}}"#,
            r#"{"Location": "Boston", "Day": "Monday"}"#,
            true,
        ),
        (r#"{"body": {"Weather": [{"anything-but": ["Raining"]}]}}"#, r#"{"Weather": "Sunny"}"#, true),
        (r#"{"body": {"Weather": [{"anything-but": ["Raining"]}]}}"#, r#"{"Weather": "Raining"}"#, false),
        (r#"{"body": {"Weather": [{"anything-but": ["Raining"]}]}}"#, r#"{"Other": "x"}"#, false),
        (r#"{"body": {"Price": [{"numeric": ["=", 100]}]}}"#, r#"{"Price": 100.0}"#, true),
        (r#"{"body": {"Price": [{"numeric": [">", 10, "<=", 20]}]}}"#, r#"{"Price": 20}"#, true),
        (r#"{"body": {"Price": [{"numeric": [">", 10, "<=", 20]}]}}"#, r#"{"Price": 10}"#, false),
        (r#"{"body": {"Price": [{"numeric": [">", 10, "<=", 20]}]}}"#, r#"{"Price": "15"}"#, false),
        (r#"{"body": {"ProductName": [{"exists": true}]}}"#, r#"{"ProductName": "Cup"}"#, true),
        (r#"{"body": {"ProductName": [{"exists": false}]}}"#, r#"{"Other": 1}"#, true),
        (r#"{"body": {"ProductName": [{"exists": false}]}}"#, r#"{"ProductName": "Cup"}"#, false),
        (r#"{"body": {"Region": [{"prefix": "us-"}]}}"#, r#"{"Region": "us-east-1"}"#, true),
        (r#"{"body": {"Region": [{"prefix": "us-"}]}}"#, r#"{"Region": "eu-west-1"}"#, false),
        (r#"{"body": {"FileName": [{"suffix": ".png"}]}}"#, r#"{"FileName": "cat.png"}"#, true),
        (
            r#"{"body": {"Region": [{"anything-but": {"prefix": "us-"}}]}}"#,
            r#"{"Region": "eu-west-1"}"#,
            true,
        ),
        (
            r#"{"body": {"Region": [{"anything-but": {"prefix": "us-"}}]}}"#,
            r#"{"Region": "us-east-1"}"#,
            false,
        ),
        (r#"{"body": {"count": [100]}}"#, r#"{"count": 100}"#, true),
        (r#"{"body": {"count": [100]}}"#, r#"{"count": "100"}"#, false),
        (r#"{"body": {"count": [100]}}"#, r#"{"count": 100.0}"#, false),
        (
            r#"{"body": {"order": {"lines": {"sku": ["A-1"]}}}}"#,
            r#"{"order": {"lines": [{"sku": "B"}, {"sku": "A-1"}]}}"#,
            true,
        ),
        (r#"{"body": {"tags": ["urgent"]}}"#, r#"{"tags": ["backend", "urgent"]}"#, true),
        (r#"{"body": {"order": [{"exists": true}]}}"#, r#"{"order": {"id": 1}}"#, false),
    ];
    for (pattern, body, expected) in table {
        assert_eq!(passes(pattern, body), *expected, "{pattern} on {body}");
    }
}

#[test]
fn plain_text_bodies_match_only_plain_text_patterns_and_json_bodies_only_json_patterns() {
    let text_pattern = r#"{"body": [{"prefix": "hello"}]}"#;
    let json_pattern = r#"{"body": {"greeting": ["hello"]}}"#;
    assert!(passes(text_pattern, "hello world"));
    assert!(!passes(text_pattern, r#""hello world""#), "a JSON string body is JSON");
    assert!(!passes(json_pattern, "hello world"), "a plain-text body against a JSON pattern is dropped");
    assert!(passes(json_pattern, r#"{"greeting": "hello"}"#));
    assert!(
        !passes(text_pattern, r#"{"greeting": "hello"}"#),
        "a JSON body against a plain-text pattern is dropped"
    );
}

#[test]
fn a_pattern_without_body_looks_only_at_the_metadata() {
    assert!(passes(r#"{"messageAttributes": {"tenant": {"stringValue": ["acme"]}}}"#, "not json at all"));
    assert!(passes(r#"{"attributes": {"MessageGroupId": [{"prefix": "g"}]}}"#, "{}"));
    assert!(!passes(r#"{"attributes": {"ApproximateReceiveCount": [{"numeric": ["=", 1]}]}}"#, "{}"));
    assert!(passes(r#"{"eventSourceARN": [{"suffix": ":orders"}]}"#, "{}"));
}

#[test]
fn filters_are_ored_and_no_filters_let_everything_through() {
    let filters = Filters::parse(&[r#"{"body": {"kind": ["a"]}}"#, r#"{"body": {"kind": ["b"]}}"#]).unwrap();
    assert!(filters.matches(&record(r#"{"kind": "b"}"#)));
    assert!(!filters.matches(&record(r#"{"kind": "c"}"#)));
    assert!(Filters::default().matches(&record("anything")));
}

#[test]
fn bad_patterns_say_what_is_wrong_and_where() {
    let error = |pattern: &str| Filters::parse(&[pattern]).unwrap_err().problem.to_string();
    assert!(
        error(r#"{"body": {"kind": ["a"]}"#).contains("line 1 column"),
        "{}",
        error(r#"{"body": {"kind": ["a"]}"#)
    );
    assert!(error(r#"{"body": {"kind": [{"wildcard": "a*"}]}}"#).contains("unknown operator \"wildcard\""));
    assert!(error(r#"{"body": {"kind": "a"}}"#).contains("body.kind: values go in a list"));
    assert!(error(r#"{"body": {"n": [{"numeric": [">"]}]}}"#).contains("numeric takes"));
    assert!(error(r#"["a"]"#).contains("a pattern is a JSON object"));
    let long = format!(r#"{{"body": {{"k": ["{}"]}}}}"#, "x".repeat(MAX_PATTERN_LENGTH));
    assert!(error(&long).contains("at most 4096"));
    let six = vec![r#"{"body": {"k": ["a"]}}"#; 6];
    let too_many = Filters::parse(&six).unwrap_err();
    assert_eq!(too_many.index, 6);
    assert!(matches!(too_many.problem, PatternProblem::TooManyFilters { count: 6 }));
    let unknown = Filters::parse(&[r#"{"body": {"kind": [{"wildcard": "a*"}]}}"#]).unwrap_err().problem;
    assert!(
        matches!(&unknown, PatternProblem::UnknownOperator { at, name } if at == "body.kind" && name == "wildcard"),
        "the problem is typed, with where it is: {unknown:?}"
    );
    let not_json = Filters::parse(&["{"]).unwrap_err();
    assert!(
        std::error::Error::source(&not_json).is_some_and(|problem| problem.source().is_some()),
        "the JSON error is kept as the cause"
    );
}

#[test]
fn legal_patterns_that_cannot_match_are_linted() {
    assert_eq!(lint(r#"{"attributes": {"ApproximateReceiveCount": [{"numeric": [">", 1]}]}}"#).len(), 1);
    assert_eq!(lint(r#"{"body": ["{\"a\": 1}"]}"#).len(), 1);
    assert!(lint(r#"{"body": {"kind": ["a"]}}"#).is_empty());
}
