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

/// What a run depends on, missing: the table or the bucket.
#[derive(Clone, Copy)]
enum Missing {
    Table,
    Bucket,
}

async fn a_missing_resource_stops_the_run_before_any_receive(missing: Missing, lambda: bool) {
    let client = support::client().await;
    let queue = queue_pair(&client, "startup", false, 30, 2).await;
    send(&client, &queue.url, &[serde_json::json!({ "id": "never-received" }).to_string()], None).await;
    let name = unique_name("no-such-resource").to_lowercase();
    let endpoint = dynamo::endpoint();
    let (template, parameter, variable) = match missing {
        Missing::Table => ("idempotent", "IdempotencyTableName", "IDEMPOTENCY_TABLE"),
        Missing::Bucket => ("large-payloads", "PayloadBucketName", "PAYLOAD_BUCKET"),
    };
    let bootstrap = bootstrap_bin().display().to_string();
    let template = template_path(template).display().to_string();
    let overrides = format!("{parameter}={name}");
    let mut env = dynamo::env(&name, &endpoint).to_vec();
    env.retain(|(key, _)| *key != "IDEMPOTENCY_TABLE");
    let mut args = vec!["--queue", &queue.url, "--wait-time-seconds", "1", "--exit-when-idle", "2"];
    if lambda {
        args.extend(["--lambda", &bootstrap, "--template", &template, "--parameter-overrides", &overrides]);
    } else {
        args.push("--no-template");
        env.push((variable, &name));
    }
    let (code, stderr, handled) = refused(&args, &env).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_one_line_naming(&stderr, &name);
    assert_eq!(handled, 0);
    untouched(&client, &queue.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_idempotency_table_stops_the_run_in_process_before_any_receive() {
    a_missing_resource_stops_the_run_before_any_receive(Missing::Table, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_idempotency_table_fails_the_bootstraps_init_under_lambda_before_any_receive() {
    a_missing_resource_stops_the_run_before_any_receive(Missing::Table, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_payload_bucket_stops_the_run_in_process_before_any_receive() {
    a_missing_resource_stops_the_run_before_any_receive(Missing::Bucket, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_payload_bucket_fails_the_bootstraps_init_under_lambda_before_any_receive() {
    a_missing_resource_stops_the_run_before_any_receive(Missing::Bucket, true).await;
}
