//! What a failure does next, on LocalStack: failures of a queue without a dead-letter queue back
//! off instead of spinning, an idle exit waits for every failure that is due back, and a FIFO
//! failure stops the batch (AWS's rule) or only its group (`FIFO_ON_FAILURE=skip-group`); a
//! standard queue whose messages carry group ids is not FIFO.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use support::{RunningRunner, bootstrap_bin, depth, drain_bodies, good_body, queue_pair, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_on_a_queue_without_a_dead_letter_queue_backs_off_and_the_idle_exit_still_comes() {
    let client = support::client().await;
    let name = support::unique_name("no-dlq");
    let url = client
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue URL");
    send(&client, &url, &["not json".to_owned(), "{not json either".to_owned()], None).await;

    let started = std::time::Instant::now();
    let mut runner = RunningRunner::start(&[
        "--queue",
        &url,
        "--no-template",
        "--retry-backoff",
        "1",
        "--wait-time-seconds",
        "1",
        "--exit-when-idle",
        "3",
    ]);
    let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(code, Some(0), "the idle exit came: {stderr}");
    let lines = runner.lines.lock().expect("not poisoned").clone();
    let failures = lines.iter().filter(|l| l["outcome"] == "failed").count();
    // Receives 1 s, 2 s, 4 s ... apart: within `elapsed` seconds at most 1 + log2(elapsed + 1)
    // each. Visible again at once, they were received thousands of times and never went idle.
    let per_message = 1.0 + (elapsed + 1.0).log2();
    assert!(
        failures >= 2 && failures as f64 <= 2.0 * per_message.ceil(),
        "{failures} failures in {elapsed:.1} s"
    );
    let warnings = lines
        .iter()
        .filter(|l| l["message"].as_str().is_some_and(|m| m.contains("no dead-letter queue")))
        .count();
    assert_eq!(warnings, 1, "the run says once that the queue has no DLQ");
    let summary = runner.summary().expect("a summary");
    assert_eq!(summary["deleted"].as_u64(), Some(0), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_lambda_an_idle_exit_waits_for_every_failure_due_back() {
    let client = support::client().await;
    // Failures left to the queue's timeout (8 s, longer than the 3 s idle exit), and a DLQ after
    // 2 receives: the run ends only once both failures have spent them.
    let queue = queue_pair(&client, "idle-due", false, 8, 2).await;
    let failing = serde_json::json!({ "id": "doomed", "fail": "transient" }).to_string();
    let bodies = [good_body("fine", 0), failing.clone(), "not json".to_owned()];
    send(&client, &queue.url, &bodies, None).await;
    let mut runner = RunningRunner::start_lambda(
        &queue.url,
        &bootstrap_bin(),
        &["--retry-backoff", "0", "--exit-when-idle", "3"],
    );
    let (code, stderr) = runner.exit(Duration::from_secs(90)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(depth(&client, &queue.url).await, (0, 0), "nothing left hidden on the queue");
    let mut dead = drain_bodies(&client, &queue.dlq_url).await;
    dead.sort();
    let mut expected = vec![failing, "not json".to_owned()];
    expected.sort();
    assert_eq!(dead, expected, "every failure reached the DLQ before the run ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_lambda_failures_back_off_and_a_drain_ends_with_each_message_handled_or_dead_lettered() {
    let client = support::client().await;
    // The queue's timeout is 30 s and the idle exit 5 s: the function's back-off (2 s, from the
    // template) brings the failures back within the run, and the run waits for them.
    let queue = queue_pair(&client, "lambda-drain", false, 30, 3).await;
    let mut bodies: Vec<String> = (0..20).map(|i| good_body(&format!("ok-{i}"), 0)).collect();
    let failing: Vec<String> = (0..5)
        .map(|i| serde_json::json!({ "id": format!("bad-{i}"), "fail": "transient" }).to_string())
        .collect();
    bodies.extend(failing.iter().cloned());
    send(&client, &queue.url, &bodies, None).await;
    let started = std::time::Instant::now();
    let mut runner = RunningRunner::start_lambda(&queue.url, &bootstrap_bin(), &["--exit-when-idle", "5"]);
    let (code, stderr) = runner.exit(Duration::from_secs(120)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "back-off, not the 30 s timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(depth(&client, &queue.url).await, (0, 0), "nothing left on the queue");
    let mut dead = drain_bodies(&client, &queue.dlq_url).await;
    dead.sort();
    let mut expected = failing;
    expected.sort();
    assert_eq!(dead, expected);
    assert_eq!(runner.handled_ids().len(), 20);
}

/// Drains a FIFO queue holding group a (flaky-a1 fails on its first delivery, a2) and group b
/// (b1, b2), which one receive brings together, in process with `FIFO_ON_FAILURE=fifo_mode`.
/// Returns each body id's outcomes, the ids handled in order, and the dead letters.
async fn fifo_drain(fifo_mode: &str) -> (HashMap<String, Vec<(String, String, u64)>>, Vec<String>, usize) {
    let client = support::client().await;
    let queue = queue_pair(&client, "fifo-mode", true, 30, 5).await;
    let messages = [
        (good_body("flaky-a1", 0), "a"),
        (good_body("a2", 0), "a"),
        (good_body("b1", 0), "b"),
        (good_body("b2", 0), "b"),
    ];
    let pairs: Vec<(&str, Option<&str>)> = messages.iter().map(|(b, g)| (b.as_str(), Some(*g))).collect();
    let ids = support::send_each(&client, &queue.url, &pairs).await;
    let names: HashMap<String, &str> = ids.into_iter().zip(["flaky-a1", "a2", "b1", "b2"]).collect();
    let mut runner =
        RunningRunner::start_with_env(&one_poller_drain(&queue.url), &[("FIFO_ON_FAILURE", fifo_mode)]);
    let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(depth(&client, &queue.url).await, (0, 0));
    let mut by_id: HashMap<String, Vec<(String, String, u64)>> = HashMap::new();
    for line in runner.lines.lock().expect("not poisoned").iter() {
        let (Some(outcome), Some(id)) = (line["outcome"].as_str(), line["message_id"].as_str()) else {
            continue;
        };
        let Some(name) = names.get(id) else { continue };
        by_id.entry((*name).to_owned()).or_default().push((
            outcome.to_owned(),
            line["reason"].as_str().unwrap_or_default().to_owned(),
            line["receive_count"].as_u64().unwrap_or(0),
        ));
    }
    let dead = drain_bodies(&client, &queue.dlq_url).await.len();
    (by_id, runner.handled_ids(), dead)
}

/// A drain of `url` in process with one poller, so messages come in the order SQS gives them,
/// that ends 3 s after the queue goes idle.
fn one_poller_drain(url: &str) -> [&str; 9] {
    ["--queue", url, "--no-template", "--pollers", "1", "--wait-time-seconds", "1", "--exit-when-idle", "3"]
}

fn in_order(handled: &[String], first: &str, then: &str) -> bool {
    let at = |id: &str| handled.iter().position(|h| h == id);
    matches!((at(first), at(then)), (Some(a), Some(b)) if a < b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_failure_stops_the_batch_by_aws_s_rule_or_only_its_group_with_skip_group() {
    let ((stop_batch, stop_handled, stop_dead), (skip_group, skip_handled, skip_dead)) =
        tokio::join!(fifo_drain("stop-batch"), fifo_drain("skip-group"));
    // Both ways: every message handled once in the end, each group in order, nothing dead.
    for (handled, dead) in [(&stop_handled, stop_dead), (&skip_handled, skip_dead)] {
        let mut sorted = handled.clone();
        sorted.sort();
        assert_eq!(sorted, ["a2", "b1", "b2", "flaky-a1"], "{handled:?}");
        assert!(in_order(handled, "flaky-a1", "a2") && in_order(handled, "b1", "b2"), "{handled:?}");
        assert_eq!(dead, 0);
    }
    let batch_stopped = |runs: &[(String, String, u64)]| {
        runs.iter().any(|(o, reason, _)| o == "skipped" && reason == "earlier_in_batch_failed")
    };
    // AWS's rule: group b, received with flaky-a1 and after it, was not started; it came back.
    assert!(batch_stopped(&stop_batch["b1"]), "{stop_batch:?}");
    // skip-group: group b went on in the first batch; only a2 waited behind flaky-a1.
    assert_eq!(skip_group["b1"], [("ok".to_owned(), String::new(), 1)], "{skip_group:?}");
    assert!(!skip_group.values().flatten().any(|(_, reason, _)| reason == "earlier_in_batch_failed"));
    for runs in [&stop_batch, &skip_group] {
        assert!(
            runs["a2"].iter().any(|(o, reason, _)| o == "skipped" && reason == "earlier_in_group_failed"),
            "{runs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_ids_on_a_standard_queue_neither_order_nor_stop_its_messages() {
    // A fair queue: a standard queue whose producers set MessageGroupId.
    let client = support::client().await;
    let queue = queue_pair(&client, "fair", false, 30, 2).await;
    let messages = [
        (serde_json::json!({ "id": "g1", "fail": "permanent" }).to_string(), "tenant"),
        (good_body("g2", 0), "tenant"),
        (good_body("g3", 0), "tenant"),
    ];
    for (body, group) in &messages {
        // A group id and no deduplication id: what a standard queue takes.
        client
            .send_message()
            .queue_url(&queue.url)
            .message_body(body)
            .message_group_id(*group)
            .send()
            .await
            .expect("send");
    }
    let mut runner = RunningRunner::start(&one_poller_drain(&queue.url));
    let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let lines = runner.lines.lock().expect("not poisoned").clone();
    assert!(lines.iter().all(|l| l["outcome"] != "skipped"), "nothing held back behind g1");
    for id in ["g2", "g3"] {
        let first = lines.iter().find(|l| l["id"] == id).expect("handled");
        assert_eq!(
            (first["outcome"].as_str(), first["receive_count"].as_u64()),
            (Some("ok"), Some(1)),
            "{id}"
        );
    }
    assert_eq!(drain_bodies(&client, &queue.dlq_url).await.len(), 1, "g1 in the DLQ");
}
