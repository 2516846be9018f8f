//! The partial batch response, applied exactly as Lambda applies it, each case through the
//! Runtime API: a stand-in bootstrap answers a canned response and the emulated event source
//! mapping decides what succeeded.

mod support;

use std::os::unix::fs::PermissionsExt;

use local_runner::consumer::{BatchExecutor, Execution};
use sqs_batch::SqsMessage;
use sqs_batch::runtime::Records;
use tokio_util::sync::CancellationToken;

/// A bootstrap that answers every invocation by posting `ANSWER` to `ENDPOINT` (`response` or
/// `error`) through the Runtime API.
const BOOTSTRAP: &str = r#"#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while true; do
  id=$(curl -s -D - -o /dev/null "$api/invocation/next" | tr -d '\r' | sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: //p')
  printf '%s' "$ANSWER" | curl -s -X POST --data-binary @- "$api/invocation/$id/$ENDPOINT" >/dev/null
done
"#;

/// Runs a batch of the messages `a` and `b` through a function that answers `answer` to
/// `endpoint`; returns which records succeeded and whether the batch failed as a whole.
async fn answered(endpoint: &str, answer: &str) -> (Vec<bool>, bool) {
    let dir = std::env::temp_dir().join(support::unique_name("answers"));
    std::fs::create_dir_all(&dir).expect("a folder");
    let bootstrap = dir.join("bootstrap");
    std::fs::write(&bootstrap, BOOTSTRAP).expect("the script");
    std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).expect("executable");
    let (mut function, mapping) = support::lambda_spec("standard");
    function.bootstrap = bootstrap;
    function.environment.insert("ANSWER".into(), answer.into());
    function.environment.insert("ENDPOINT".into(), endpoint.into());
    let executor = support::lambda_executor(function, &mapping);
    let records: Vec<SqsMessage> = ["a", "b"]
        .iter()
        .map(|id| {
            serde_json::from_value(serde_json::json!({"messageId": id, "body": "{}"})).expect("a record")
        })
        .collect();
    let Execution { report, failed_whole, .. } =
        executor.execute(Records::new(records), &CancellationToken::new(), &CancellationToken::new()).await;
    (report.outcomes.iter().map(sqs_batch::Outcome::is_success).collect(), failed_whole)
}

const ALL_SUCCEEDED: (&[bool], bool) = (&[true, true], false);
const WHOLE_BATCH_FAILED: (&[bool], bool) = (&[false, false], true);

async fn assert_answer(endpoint: &str, answer: &str, expected: (&[bool], bool)) {
    let (outcomes, failed_whole) = answered(endpoint, answer).await;
    assert_eq!((outcomes.as_slice(), failed_whole), expected, "{endpoint}: {answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_item_fails_alone() {
    assert_answer("response", r#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#, (&[true, false], false))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_list_of_failures_is_success() {
    assert_answer("response", r#"{"batchItemFailures":[]}"#, ALL_SUCCEEDED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_list_of_failures_is_success() {
    assert_answer("response", r#"{"batchItemFailures":null}"#, ALL_SUCCEEDED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_response_is_success() {
    assert_answer("response", "null", ALL_SUCCEEDED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_response_is_success() {
    assert_answer("response", "", ALL_SUCCEEDED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_item_identifier_fails_the_whole_batch() {
    assert_answer("response", r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#, WHOLE_BATCH_FAILED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_item_identifier_fails_the_whole_batch() {
    assert_answer("response", r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#, WHOLE_BATCH_FAILED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_item_identifier_fails_the_whole_batch() {
    assert_answer("response", r#"{"batchItemFailures":[{}]}"#, WHOLE_BATCH_FAILED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_identifier_not_in_the_batch_fails_the_whole_batch() {
    assert_answer("response", r#"{"batchItemFailures":[{"itemIdentifier":"zzz"}]}"#, WHOLE_BATCH_FAILED)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_that_is_not_json_fails_the_whole_batch() {
    assert_answer("response", "all good", WHOLE_BATCH_FAILED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_error_fails_the_whole_batch() {
    assert_answer("error", r#"{"errorMessage":"boom","errorType":"Handled"}"#, WHOLE_BATCH_FAILED).await;
}
