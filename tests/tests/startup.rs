//! A misconfiguration fails at start, never message by message: a missing idempotency table or
//! payload bucket stops the runner (in process and under `--lambda`, where the bootstrap fails
//! its init) with one line and exit 1 before any receive, so no message's receive count moves and
//! nothing drains into the dead-letter queue.

mod support;

use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use support::dynamo;
use support::{RunningRunner, bootstrap_bin, queue_pair, send, template_path, unique_name};

/// How a runner that must not start ended: its exit code and stderr, and what it printed.
async fn refused(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, usize) {
    let mut runner = RunningRunner::start_with_env(args, env);
    let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
    let handled =
        runner.lines.lock().expect("not poisoned").iter().filter(|l| l["outcome"].is_string()).count();
    (code, stderr, handled)
}

/// The message the test sent is still waiting, never received: the test's own receive is its
/// first.
async fn untouched(client: &aws_sdk_sqs::Client, url: &str) {
    let received = client
        .receive_message()
        .queue_url(url)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("ReceiveMessage");
    let messages = received.messages();
    assert_eq!(messages.len(), 1, "the message is still on the queue");
    let count =
        messages[0].attributes().and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount));
    assert_eq!(count.map(String::as_str), Some("1"), "no receive was spent before this one");
}

/// The runner's error is one line that names the resource and says what to do.
fn assert_one_line_naming(stderr: &str, what: &str) {
    let line =
        stderr.lines().find(|l| l.starts_with("local-runner: error:")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains(what) && line.contains("does not exist"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

async fn a_missing_table_stops_the_run_before_any_receive(lambda: bool) {
    let client = support::client().await;
    let queue = queue_pair(&client, "startup-table", false, 30, 2).await;
    send(&client, &queue.url, &[serde_json::json!({ "id": "never-received" }).to_string()], None).await;
    let missing = unique_name("no-such-table");
    let endpoint = dynamo::endpoint();
    let bootstrap = bootstrap_bin().display().to_string();
    let template = template_path("idempotent").display().to_string();
    let overrides = format!("IdempotencyTableName={missing}");
    let mut args = vec!["--queue", &queue.url, "--wait-time-seconds", "1", "--exit-when-idle", "2"];
    if lambda {
        args.extend(["--lambda", &bootstrap, "--template", &template, "--parameter-overrides", &overrides]);
    } else {
        args.extend(["--no-template"]);
    }
    let (code, stderr, handled) = refused(&args, &dynamo::env(&missing, &endpoint)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_one_line_naming(&stderr, &missing);
    assert_eq!(handled, 0);
    untouched(&client, &queue.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_idempotency_table_stops_the_run_in_process_before_any_receive() {
    a_missing_table_stops_the_run_before_any_receive(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_idempotency_table_fails_the_bootstraps_init_under_lambda_before_any_receive() {
    a_missing_table_stops_the_run_before_any_receive(true).await;
}

async fn a_missing_bucket_stops_the_run_before_any_receive(lambda: bool) {
    let client = support::client().await;
    let queue = queue_pair(&client, "startup-bucket", false, 30, 2).await;
    send(&client, &queue.url, &[serde_json::json!({ "id": "never-received" }).to_string()], None).await;
    let missing = unique_name("no-such-bucket").to_lowercase();
    let bootstrap = bootstrap_bin().display().to_string();
    let template = template_path("large-payloads").display().to_string();
    let overrides = format!("PayloadBucketName={missing}");
    let mut args = vec!["--queue", &queue.url, "--wait-time-seconds", "1", "--exit-when-idle", "2"];
    let env: Vec<(&str, &str)> = if lambda {
        args.extend(["--lambda", &bootstrap, "--template", &template, "--parameter-overrides", &overrides]);
        Vec::new()
    } else {
        args.extend(["--no-template"]);
        vec![("PAYLOAD_BUCKET", &missing)]
    };
    let (code, stderr, handled) = refused(&args, &env).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_one_line_naming(&stderr, &missing);
    assert_eq!(handled, 0);
    untouched(&client, &queue.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_payload_bucket_stops_the_run_in_process_before_any_receive() {
    a_missing_bucket_stops_the_run_before_any_receive(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_payload_bucket_fails_the_bootstraps_init_under_lambda_before_any_receive() {
    a_missing_bucket_stops_the_run_before_any_receive(true).await;
}
