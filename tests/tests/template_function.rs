//! The template's function, in process as under `--lambda`: its FilterCriteria (non-matching
//! messages deleted, never handled, never in the DLQ; Lambda's body rules), its environment, and
//! every SQS function of a template run at once, each on its own queue.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{RunningRunner, depth, drain_bodies, queue_pair, send, template_path};

/// Drains `queue_url` with the real binary following `template` (in process, or through the test
/// function with `--lambda`); returns the runner once it has exited 0.
async fn drain(queue_url: &str, template: &str, lambda: bool) -> RunningRunner {
    let template = template_path(template).display().to_string();
    let mut args = vec![
        "--queue",
        queue_url,
        "--template",
        &template,
        "--wait-time-seconds",
        "1",
        "--exit-when-idle",
        "3",
    ];
    if lambda {
        args.extend(["--lambda", "--batching-window", "0"]);
    } else {
        args.extend(["--retry-backoff", "0"]);
    }
    let mut runner = RunningRunner::start(&args);
    let (code, stderr) = runner.exit(Duration::from_secs(120)).await;
    assert_eq!(code, Some(0), "{stderr}");
    runner
}

/// The `environment` lines the test handler logged: (message id, value of the variable).
fn environment_lines(runner: &RunningRunner) -> Vec<(String, String)> {
    let lines = runner.lines.lock().expect("not poisoned").clone();
    lines
        .iter()
        .filter(|l| l["message"] == "environment")
        .filter_map(|l| Some((l["id"].as_str()?.to_owned(), l["value"].as_str()?.to_owned())))
        .collect()
}

async fn filters_hold(lambda: bool) {
    let client = support::client().await;
    // Visibility 1 s, two receives to the DLQ: the plain-text message that passes the filter and
    // fails in the handler (it is not JSON) gets there within the run.
    let queue = queue_pair(&client, "filtered", false, 1, 2).await;
    let bodies = [
        json!({"id": "o1", "kind": "order"}).to_string(), // the JSON pattern matches
        json!({"id": "r1", "kind": "refund"}).to_string(), // no pattern matches
        json!({"id": "p1", "kind": "ping"}).to_string(),  // JSON: the plain-text pattern does not apply
        "ping from a plain-text producer".to_owned(),     // plain text matching the plain-text pattern
        "pong".to_owned(),                                // plain text matching nothing
    ];
    send(&client, &queue.url, &bodies, None).await;
    let runner = drain(&queue.url, "filtered", lambda).await;

    let mode = if lambda { "--lambda" } else { "in process" };
    assert_eq!(runner.handled_ids(), ["o1"], "{mode}: only the matching JSON message is handled");
    let summary = runner.summary().expect("a summary");
    assert_eq!(summary["filtered"], 3, "{mode}: {summary}");
    assert_eq!(depth(&client, &queue.url).await, (0, 0), "{mode}: filtered messages are deleted");
    assert_eq!(
        drain_bodies(&client, &queue.dlq_url).await,
        ["ping from a plain-text producer"],
        "{mode}: the plain-text message reached the handler (and failed there); nothing filtered is in the DLQ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_criteria_hold_in_process() {
    filters_hold(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_criteria_hold_under_lambda() {
    filters_hold(true).await;
}

async fn environment_reaches_the_handler(lambda: bool) {
    let client = support::client().await;
    let queue = queue_pair(&client, "environment", false, 30, 2).await;
    send(&client, &queue.url, &[json!({"id": "e1", "kind": "order", "env": "ROUTE"}).to_string()], None)
        .await;
    let runner = drain(&queue.url, "filtered", lambda).await;
    assert_eq!(runner.handled_ids(), ["e1"], "the handler found ROUTE");
    assert_eq!(environment_lines(&runner), [("e1".to_owned(), "from-template".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_reads_the_templates_environment_in_process() {
    environment_reaches_the_handler(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_reads_the_templates_environment_under_lambda() {
    environment_reaches_the_handler(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sqs_function_of_a_template_runs_at_once_on_its_own_queue() {
    let client = support::client().await;
    let prefix = support::unique_name("two");
    let text = std::fs::read_to_string(template_path("two-functions")).expect("the template");
    let path = std::env::temp_dir().join(format!("{prefix}.yaml"));
    std::fs::write(&path, text.replace("QUEUE_PREFIX", &prefix)).expect("write the template");
    let template = path.display().to_string();

    // `up` without --queue creates every queue the template describes.
    let output = std::process::Command::new(support::runner_bin())
        .args(["up", "--template", &template, "--endpoint-url", &support::endpoint()])
        .output()
        .expect("run up");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let url_of = |suffix: &str| support::queue_url(&client, format!("{prefix}{suffix}"));
    let (queue_a, queue_b) = (url_of("-a").await, url_of("-b").await);
    url_of("-a-dlq").await;
    url_of("-b-dlq").await;
    for (queue, route) in [(&queue_a, "a"), (&queue_b, "b")] {
        let bodies: Vec<String> =
            (0..3).map(|i| json!({"id": format!("{route}-{i}"), "env": "ROUTE"}).to_string()).collect();
        send(&client, queue, &bodies, None).await;
    }

    let mut runner = RunningRunner::start(&[
        "--lambda",
        "--template",
        &template,
        "--wait-time-seconds",
        "1",
        "--exit-when-idle",
        "3",
    ]);
    let (code, stderr) = runner.exit(Duration::from_secs(120)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let mut routes = environment_lines(&runner);
    routes.sort();
    let expected: Vec<(String, String)> =
        ["a", "b"].iter().flat_map(|r| (0..3).map(move |i| (format!("{r}-{i}"), (*r).to_owned()))).collect();
    assert_eq!(routes, expected, "each queue drained by its own function");
    let mappings: Vec<Value> = runner
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l["message"] == "event source mapping")
        .cloned()
        .collect();
    assert_eq!(mappings.len(), 2, "{mappings:?}");
    assert_eq!((depth(&client, &queue_a).await, depth(&client, &queue_b).await), ((0, 0), (0, 0)));
}
