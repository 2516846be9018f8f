//! Every event in `handler/events/` through the Lambda entry point, asserting the exact partial
//! batch response Lambda would act on. `events/responses/` holds the same answers for
//! `scripts/sam-local.sh`, which asks `sam local invoke` for them.

use std::sync::Arc;

use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use sqs_batch::lambda::handle_event;
use sqs_batch::{Options, SqsEvent};

async fn invoke(fixture: &str) -> Value {
    let event: SqsEvent = serde_json::from_str(fixture).expect("fixtures are valid SQS events");
    let handler = Arc::new(handler::build().await.expect("the example handler builds"));
    let response = handle_event(&handler, &Options::default(), LambdaEvent::new(event, Context::default()))
        .await
        .expect("every fixture record has a messageId");
    serde_json::to_value(response).expect("a response serialises")
}

fn failures(ids: &[&str]) -> Value {
    let items: Vec<Value> = ids.iter().map(|id| json!({ "itemIdentifier": id })).collect();
    json!({ "batchItemFailures": items })
}

#[tokio::test]
async fn the_sam_generated_event_fails_its_plain_text_body() {
    let response = invoke(include_str!("../events/sqs-receive-message.json")).await;
    assert_eq!(response, failures(&["19dd0b57-b21e-4ac1-bd88-01bbb068cb78"]));
}

#[tokio::test]
async fn a_valid_message_yields_an_empty_failure_list() {
    let response = invoke(include_str!("../events/sqs-valid-message.json")).await;
    assert_eq!(response, failures(&[]));
}

#[tokio::test]
async fn a_mixed_batch_reports_only_its_bad_messages() {
    let response = invoke(include_str!("../events/mixed-batch.json")).await;
    assert_eq!(
        response,
        failures(&["11111111-0000-4000-8000-000000000002", "11111111-0000-4000-8000-000000000004"])
    );
}

#[tokio::test]
async fn a_fifo_group_stops_at_its_first_failure_and_other_groups_go_on() {
    let response = invoke(include_str!("../events/fifo-groups.json")).await;
    // group-a: a1 ok, a2 invalid, a3 not started. group-b: all ok. group-c: c1 invalid, c2 not started.
    assert_eq!(
        response,
        failures(&[
            "22222222-0000-4000-8000-0000000000a2",
            "22222222-0000-4000-8000-0000000000c1",
            "22222222-0000-4000-8000-0000000000a3",
            "22222222-0000-4000-8000-0000000000c2",
        ])
    );
}

#[tokio::test]
async fn every_kind_of_bad_body_fails_alone_and_unknown_fields_pass() {
    let response = invoke(include_str!("../events/bad-bodies.json")).await;
    let bad: Vec<String> =
        [1, 2, 3, 4, 5, 6, 7, 8, 10].iter().map(|n| format!("33333333-0000-4000-8000-{n:012}")).collect();
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    assert_eq!(response, failures(&bad));
}

#[tokio::test]
async fn every_event_has_its_expected_response_on_file() {
    let events = concat!(env!("CARGO_MANIFEST_DIR"), "/events");
    let mut checked = 0;
    for entry in std::fs::read_dir(events).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let expected = std::fs::read_to_string(format!("{events}/responses/{name}"))
            .unwrap_or_else(|_| panic!("events/responses/{name} is missing"));
        let expected: Value = serde_json::from_str(&expected).unwrap();
        let response = invoke(&std::fs::read_to_string(&path).unwrap()).await;
        assert_eq!(response, expected, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 5);
}
