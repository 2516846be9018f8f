//! A layer added in the function's `build()` runs in every runtime: in process and under
//! `--lambda` here (the test function's `veto` layer fails `vetoed-` messages before the handler
//! sees them); in the bootstrap under AWS's Runtime Interface Emulator through the `layered`
//! fixture (`lambda_parity.rs`), and in the `sam build` artifact (`scripts/sam-local.sh`).

mod support;

use std::time::Duration;

use support::{RunningRunner, bootstrap_bin, depth, drain_bodies, queue_pair, send, template_path};

/// The outcome line of the message whose producer id is `id`.
fn outcome_of(runner: &RunningRunner, id: &str) -> Option<serde_json::Value> {
    let lines = runner.lines.lock().expect("lines");
    lines.iter().find(|l| l["id"] == id && l["outcome"].is_string()).cloned()
}

/// Drains a queue with `extra` flags; in process, the vetoed message goes on to the dead-letter
/// queue at once (a permanent failure); under `--lambda` it comes back after the visibility
/// timeout, as under the real mapping, so only its outcome line is looked at.
async fn assert_the_layer_ran(extra: &[&str], in_process: bool) {
    let client = support::client().await;
    let queue = queue_pair(&client, "layered", false, 30, 1).await;
    send(&client, &queue.url, &[r#"{"id":"ok-1"}"#.to_owned(), r#"{"id":"vetoed-1"}"#.to_owned()], None)
        .await;
    let mut args = vec!["--queue", queue.url.as_str(), "--wait-time-seconds", "1", "--exit-when-idle", "2"];
    args.extend_from_slice(extra);
    let mut runner = RunningRunner::start(&args);
    let (code, stderr) = runner.exit(Duration::from_secs(90)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(outcome_of(&runner, "ok-1").expect("ok-1 was handled")["outcome"], "ok");
    let vetoed = outcome_of(&runner, "vetoed-1").expect("vetoed-1 was handled");
    assert_eq!(vetoed["outcome"], "failed", "{vetoed}");
    assert!(vetoed["error"].as_str().is_some_and(|e| e.contains("vetoed by the layer")), "{vetoed}");
    if in_process {
        assert_eq!(depth(&client, &queue.url).await, (0, 0));
        assert_eq!(drain_bodies(&client, &queue.dlq_url).await, [r#"{"id":"vetoed-1"}"#]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_added_in_build_runs_in_process() {
    assert_the_layer_ran(&["--no-template"], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_added_in_build_runs_in_the_bootstrap_under_lambda() {
    let bootstrap = bootstrap_bin().display().to_string();
    let template = template_path("standard").display().to_string();
    assert_the_layer_ran(&["--lambda", &bootstrap, "--template", &template, "--batching-window", "0"], false)
        .await;
}
