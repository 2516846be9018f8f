//! `local-runner --lambda` serves a function it knows nothing about: one written with
//! `lambda_runtime` and `aws_lambda_events` alone (`tests/plain-function`), which lists its
//! failures in `batchItemFailures` and sets no visibility of its own. Its failures come back when
//! the queue's visibility timeout says, and reach the dead-letter queue after `maxReceiveCount`.
//!
//! The runner is the handler-less `local-runner` command (no handler compiled in): the one
//! `LOCAL_RUNNER_BIN` names when it is set (one `cargo install` gave, say), otherwise this
//! workspace's build of it.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::{RunningRunner, depth, drain_bodies, queue_pair, runner_bin, send};

/// The handler-less `local-runner`: the one `LOCAL_RUNNER_BIN` names, or the workspace's build of it.
fn installed_runner() -> String {
    let runner = std::env::var_os("LOCAL_RUNNER_BIN")
        .map_or_else(|| runner_bin().with_file_name("local-runner"), PathBuf::from);
    assert!(
        runner.exists(),
        "{} is missing: build it with `cargo build --workspace --bins`",
        runner.display()
    );
    runner.display().to_string()
}

/// The plain function's bootstrap, built beside the test binaries.
fn plain_bootstrap() -> PathBuf {
    let bootstrap = runner_bin().with_file_name("plain-bootstrap");
    assert!(
        bootstrap.exists(),
        "{} is missing: build it with `cargo build --workspace --bins`",
        bootstrap.display()
    );
    bootstrap
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_lambda_runtime_function_drains_with_its_failures_in_the_dlq_and_none_left_hidden() {
    let client = support::client().await;
    // The visibility timeout well past the template's RETRY_BACKOFF_SECS (2 s), which this
    // function does not apply: an idle exit that trusted it would leave the failures hidden.
    let queue = queue_pair(&client, "plain", false, 6, 2).await;
    let mut bodies: Vec<String> = (0..6).map(|i| format!("order {i}")).collect();
    bodies.extend(["fail 1".to_owned(), "fail 2".to_owned()]);
    send(&client, &queue.url, &bodies, None).await;

    let mut runner = RunningRunner::start_lambda_with(
        &installed_runner(),
        "standard",
        &queue.url,
        &plain_bootstrap(),
        &["--function-timeout", "3", "--exit-when-idle", "2"],
    );
    let (code, stderr) = runner.exit(Duration::from_secs(120)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(depth(&client, &queue.url).await, (0, 0), "nothing left on the queue, visible or hidden");
    let mut dead = drain_bodies(&client, &queue.dlq_url).await;
    dead.sort();
    assert_eq!(dead, ["fail 1", "fail 2"], "each failure reached the DLQ after maxReceiveCount");
    let summary = runner.summary().expect("a summary line");
    assert_eq!((summary["deleted"].as_u64(), summary["failed"].as_u64()), (Some(6), Some(4)), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_function_behind_filter_criteria_gets_only_the_matching_messages_and_the_rest_are_deleted() {
    let client = support::client().await;
    let queue = queue_pair(&client, "plain-filtered", false, 4, 2).await;
    let bodies: Vec<String> = [
        r#"{"kind":"order","n":1}"#,
        r#"{"kind":"refund","n":2}"#,
        "ping",
        "pong",
        r#"{"kind":"order","note":"fail"}"#,
    ]
    .map(str::to_owned)
    .to_vec();
    send(&client, &queue.url, &bodies, None).await;

    let mut runner = RunningRunner::start_lambda_with(
        &installed_runner(),
        "filtered",
        &queue.url,
        &plain_bootstrap(),
        &["--exit-when-idle", "2"],
    );
    let (code, stderr) = runner.exit(Duration::from_secs(120)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let summary = runner.summary().expect("a summary line");
    assert_eq!(
        summary["filtered"].as_u64(),
        Some(2),
        "the refund and the pong, as AWS drops them: {summary}"
    );
    assert_eq!(
        depth(&client, &queue.url).await,
        (0, 0),
        "filtered messages are deleted, as AWS deletes them"
    );
    assert_eq!(
        drain_bodies(&client, &queue.dlq_url).await,
        [r#"{"kind":"order","note":"fail"}"#],
        "the matching failure reached the DLQ; the filtered ones never did"
    );
}
