//! The example handler in memory, with the test kit (`sqs_batch::testing`): every event in
//! `handler/events/` gets the partial batch response on file in `events/responses/` (the same
//! files `scripts/sam-local.sh` checks through `sam local invoke`), and a few records built by
//! hand show the rules the example keeps. No LocalStack, no Lambda, no network.
//!
//! These tests are yours to rewrite with your handler: add an event to `events/` and its
//! expected response to `events/responses/` (same file name), and the first test checks it.

use sqs_batch::testing::{record, records_of_event, run, run_with};
use sqs_batch::{FifoMode, Options};

#[tokio::test]
async fn every_event_gets_the_response_on_file() {
    let events = concat!(env!("CARGO_MANIFEST_DIR"), "/events");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(events).expect("handler/events/") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).expect("a file name").to_owned();
        let on_file = std::fs::read_to_string(format!("{events}/responses/{name}")).unwrap_or_else(|_| {
            panic!("events/{name} has no expected response: add events/responses/{name} with the batchItemFailures it should get")
        });
        let expected: serde_json::Value = serde_json::from_str(&on_file).expect("a response is JSON");
        let event = std::fs::read_to_string(&path).expect("an event file");
        let records =
            records_of_event(&event).unwrap_or_else(|e| panic!("events/{name} is not an SQS event: {e}"));
        let handler = handler::build().await.expect("the handler builds");
        assert_eq!(run(handler, records).await.response_json(), expected, "events/{name}");
        checked.push(name);
    }
    assert!(!checked.is_empty(), "handler/events/ has no event to check");
}

#[tokio::test]
async fn a_valid_message_succeeds_and_a_bad_body_fails_alone_naming_its_field() {
    let handler = handler::build().await.expect("the handler builds");
    let report = run(
        handler,
        [
            record(r#"{"id":"o-1","kind":"order","work_ms":1}"#),
            record(r#"{"id":"","kind":"order"}"#).receive_count(2),
            record("plain text"),
            record(r#"{"id":"o-4","kind":"order","added_later":true}"#),
        ],
    )
    .await;
    assert_eq!(report.labels(), ["ok", "failed", "failed", "ok"]);
    assert_eq!(report.failed_ids(), ["m1", "m2"]);
    assert_eq!(report.metric("OrdersStored"), Some(2.0), "counted for the two that succeeded");
    let errors = report.errors();
    assert!(
        errors[1].as_deref().is_some_and(|e| e.contains("`id`") && e.contains("must not be empty")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn a_fifo_batch_stops_at_its_first_failure_or_with_skip_group_only_that_group_does() {
    let batch = || {
        [
            record(r#"{"id":"a1","kind":"k"}"#).group("a"),
            record("not json").group("a"),
            record(r#"{"id":"a3","kind":"k"}"#).group("a"),
            record(r#"{"id":"b1","kind":"k"}"#).group("b"),
        ]
    };
    // AWS's rule (FIFO_ON_FAILURE=stop-batch, the default): nothing after the first failure.
    let report = run(handler::build().await.expect("the handler builds"), batch()).await;
    assert_eq!(report.labels(), ["ok", "failed", "skipped", "skipped"]);
    assert_eq!(report.failed_ids(), ["m1", "m2", "m3"]);
    // FIFO_ON_FAILURE=skip-group: group b goes on.
    let skip_group = Options { fifo: FifoMode::SkipGroup, ..Options::default() };
    let report = run_with(handler::build().await.expect("the handler builds"), &skip_group, batch()).await;
    assert_eq!(report.labels(), ["ok", "failed", "skipped", "ok"]);
    assert_eq!(report.failed_ids(), ["m1", "m2"]);
}
