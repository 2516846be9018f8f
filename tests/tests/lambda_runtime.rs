//! The local Lambda runtime: function timeouts kill and restart the process, start-up failures
//! are reported, and the real binary drains a queue with `--lambda`.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use std::num::NonZeroUsize;

use local_runner::lambda::{Bytes, FunctionError, InvokeError, LambdaPool, LambdaSpec};
use serde_json::{Value, json};
use support::{RunningRunner, bootstrap_bin, depth, good_body, queue_pair, send, template_path};
use tokio_util::sync::CancellationToken;

fn event(work_ms: u64) -> String {
    json!({"Records": [{
        "messageId": "m1", "receiptHandle": "h", "body": good_body("x", work_ms),
        "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q", "awsRegion": "us-east-1"
    }]})
    .to_string()
}

/// The test function of the standard test template, running `bootstrap`.
fn function(bootstrap: PathBuf) -> LambdaSpec {
    let (mut spec, _) = support::lambda_spec("standard");
    spec.bootstrap = bootstrap;
    spec
}

/// A pool of one environment for `spec`.
fn pool(spec: LambdaSpec, servers: &CancellationToken) -> LambdaPool {
    LambdaPool::new(spec, NonZeroUsize::MIN, servers.clone())
}

/// Invokes a fresh pool for `spec` once with an event whose message works `work_ms`.
async fn invoke_once(spec: LambdaSpec, work_ms: u64) -> Result<Result<Bytes, FunctionError>, InvokeError> {
    let servers = CancellationToken::new();
    let result = pool(spec, &servers).invoke(event(work_ms).into()).await;
    servers.cancel();
    result
}

/// A stand-in bootstrap: a shell script in a fresh folder.
fn script(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(support::unique_name(name));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("bootstrap");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write the script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("make it executable");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_that_exits_at_start_is_reported_with_its_status_as_a_start_failure() {
    let spec = function(script("exits", "echo 'cannot start' >&2; exit 3"));
    match invoke_once(spec, 0).await {
        Err(error @ InvokeError::Init { .. }) => {
            assert!(error.is_start_failure());
            assert!(error.to_string().contains("exit status: 3"), "{error}");
        }
        other => panic!("expected a start failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_error_posted_to_the_runtime_api_is_reported() {
    let body = r#"curl -s -X POST "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/init/error" \
  -d '{"errorMessage":"missing TABLE_NAME","errorType":"Runtime.InitError"}' >/dev/null; exit 1"#;
    let spec = function(script("init-error", body));
    match invoke_once(spec, 0).await {
        Err(InvokeError::Init { init, .. }) => assert!(init.contains("missing TABLE_NAME"), "{init}"),
        other => panic!("expected an init error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_cannot_take_an_invocation_from_the_runtime_api() {
    // The function's own process and the processes it starts (curl here) are answered; the
    // address is written where this test, a process outside that tree, can read it.
    let body = r#"dir=$(dirname "$0")
echo "$AWS_LAMBDA_RUNTIME_API" > "$dir/api"
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while :; do
  id=$(curl -sS -D - -o /dev/null "$api/invocation/next" | tr -d '\r' | sed -n 's/^lambda-runtime-aws-request-id: //ip')
  curl -sS -X POST "$api/invocation/$id/response" -d '{"batchItemFailures":[]}' >/dev/null
done"#;
    let bootstrap = script("trust", body);
    let api_file = bootstrap.with_file_name("api");
    let servers = CancellationToken::new();
    let pool = pool(function(bootstrap), &servers);
    pool.warm_up().await.expect("the function starts and asks for an invocation");
    let address: std::net::SocketAddr =
        std::fs::read_to_string(&api_file).expect("the address file").trim().parse().expect("an address");

    let next = support::http_get(address, "/2018-06-01/runtime/invocation/next");
    let taken = tokio::time::timeout(Duration::from_secs(10), next).await.expect("refused, not left waiting");
    assert_eq!(taken, None, "another process got an answer from the Runtime API");
    let answer = pool.invoke(event(0).into()).await.expect("the function's own process is answered");
    assert_eq!(answer.expect("a response").as_ref(), br#"{"batchItemFailures":[]}"#);
    servers.cancel();
}

/// The real binary draining `queue_url` through the test bootstrap with the test template's settings,
/// overridden by `esm_flags`; it exits once idle for 3 s.
fn lambda_runner(queue_url: &str, esm_flags: &[&str]) -> RunningRunner {
    let bootstrap = bootstrap_bin().display().to_string();
    let template = template_path("standard").display().to_string();
    let mut args = vec!["--queue", queue_url, "--lambda", &bootstrap, "--template", &template];
    args.extend_from_slice(esm_flags);
    args.extend(["--wait-time-seconds", "1", "--exit-when-idle", "3"]);
    RunningRunner::start(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_drains_a_queue_through_the_real_bootstrap() {
    let client = support::client().await;
    let queue = queue_pair(&client, "lambda-mode", false, 2, 2).await;
    let mut bodies: Vec<String> = (0..30).map(|i| good_body(&format!("m{i}"), 10)).collect();
    bodies.push("not json".into());
    send(&client, &queue.url, &bodies, None).await;

    let mut runner = lambda_runner(&queue.url, &["--batching-window", "0"]);
    let (code, stderr) = runner.exit(Duration::from_secs(90)).await;
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let mut handled = runner.handled_ids();
    handled.sort();
    handled.dedup();
    assert_eq!(handled.len(), 30, "the bootstrap's own log lines show every good message handled");
    assert_eq!(runner.summary().expect("summary")["deleted"], 30);
    assert_eq!(depth(&client, &queue.url).await, (0, 0));
    assert_eq!(support::drain_bodies(&client, &queue.dlq_url).await, ["not json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_being_gathered_is_not_mistaken_for_an_idle_queue() {
    let client = support::client().await;
    let queue = queue_pair(&client, "gathering", false, 30, 5).await;
    let bodies: Vec<String> = (0..3).map(|i| good_body(&format!("m{i}"), 0)).collect();
    send(&client, &queue.url, &bodies, None).await;

    // Two pollers and a batching window far longer than the idle exit: while one poller gathers
    // the three messages (waiting for more, up to BatchSize), the other one's receives come back
    // empty. Holding messages is not idleness: the batch must be invoked, not released.
    let (function, mut mapping) = support::lambda_spec("standard");
    mapping.batching_window = Duration::from_secs(8);
    let config = support::runner_config(&queue.url, 2);
    let executor = support::lambda_executor(function, &mapping);
    let summary = local_runner::run(config, executor, CancellationToken::new()).await.unwrap();
    assert_eq!((summary.deleted, summary.released), (3, 0), "{summary:?}");
    assert_eq!(depth(&client, &queue.url).await, (0, 0));
}

/// Tests whose outcome depends on timing: the nextest configuration runs every test of a
/// `timing` module alone (no other test shares the machine with it), whatever its name.
mod timing {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_function_past_its_timeout_is_killed_and_the_next_invocation_gets_a_new_process() {
        let mut spec = function(bootstrap_bin());
        spec.timeout = Duration::from_secs(1);
        // No reserve: the message starts and runs into the timeout.
        spec.environment.insert("DEADLINE_RESERVE_MS".into(), "0".into());
        let servers = CancellationToken::new();
        let pool = pool(spec, &servers);

        let slow = pool.invoke(event(5_000).into()).await;
        assert!(matches!(slow, Err(InvokeError::Timeout(_))), "{slow:?}");
        let quick =
            pool.invoke(event(0).into()).await.expect("a new process answers").expect("no function error");
        let quick: Value = serde_json::from_slice(&quick).unwrap();
        assert_eq!(quick, json!({"batchItemFailures": []}));
        servers.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_less_time_than_the_reserve_the_bootstrap_reports_the_message_instead_of_timing_out() {
        let mut spec = function(bootstrap_bin());
        spec.timeout = Duration::from_secs(1);
        spec.environment.insert("DEADLINE_RESERVE_MS".into(), "1000".into());
        let answer =
            invoke_once(spec, 5_000).await.expect("an answer, not a timeout").expect("no function error");
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer, json!({"batchItemFailures": [{"itemIdentifier": "m1"}]}));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_gather_within_the_window_and_at_most_max_concurrency_processes_are_reused() {
        let client = support::client().await;
        let queue = queue_pair(&client, "lambda-window", false, 30, 5).await;
        let bodies: Vec<String> = (0..100).map(|i| good_body(&format!("m{i}"), 0)).collect();
        send(&client, &queue.url, &bodies, None).await;

        let mut runner = lambda_runner(
            &queue.url,
            &["--esm-batch-size", "25", "--batching-window", "2", "--max-concurrency", "2"],
        );
        let (code, stderr) = runner.exit(Duration::from_secs(90)).await;
        assert_eq!(code, Some(0), "stderr: {stderr}");
        assert_eq!(depth(&client, &queue.url).await, (0, 0));

        let lines = runner.lines.lock().expect("not poisoned").clone();
        let batch_sizes: Vec<u64> = lines
            .iter()
            .filter(|l| l["message"] == "batch done")
            .filter_map(|l| l["records"].as_u64())
            .collect();
        assert_eq!(batch_sizes.iter().sum::<u64>(), 100, "every message went through an invocation");
        assert!(
            batch_sizes.iter().any(|&n| n > 10),
            "the window gathered several receives into one batch: {batch_sizes:?}"
        );
        assert!(batch_sizes.iter().all(|&n| n <= 25), "no batch above BatchSize: {batch_sizes:?}");
        let cold_starts =
            lines.iter().filter(|l| l["message"] == "function process started (cold start)").count();
        assert!((1..=2).contains(&cold_starts), "at most MaximumConcurrency processes: {cold_starts}");
        assert!(batch_sizes.len() > cold_starts, "processes are reused between invocations");
    }
}
