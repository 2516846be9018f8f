//! Every event in `events/` through the Lambda entry point, asserting the exact partial batch
//! response on file in `events/responses/` (which `scripts/sam-local.sh` also asks
//! `sam local invoke` for).

use std::sync::Arc;

use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use sqs_batch::lambda::handle_event;
use sqs_batch::{Options, SqsEvent};

async fn invoke(event: &str) -> Value {
    let event: SqsEvent = serde_json::from_str(event).expect("events are valid SQS events");
    let handler = Arc::new(handler::build().await.expect("the order handler builds"));
    let response = handle_event(&handler, &Options::default(), LambdaEvent::new(event, Context::default()))
        .await
        .expect("every record has a messageId");
    serde_json::to_value(response).expect("a response serialises")
}

#[tokio::test]
async fn every_event_gets_the_response_on_file() {
    let events = concat!(env!("CARGO_MANIFEST_DIR"), "/events");
    let mut checked = 0;
    for entry in std::fs::read_dir(events).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{events}/responses/{name}")).unwrap())
                .unwrap();
        assert_eq!(invoke(&std::fs::read_to_string(&path).unwrap()).await, expected, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 2);
}
