//! The consumer's own ground: more in flight than one receive, long work kept invisible, retries
//! spaced out (and permanent failures not), a stats line and metrics while running.

mod support;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use e2e::Recorder;
use sqs_batch::runtime::retry::Backoff;
use support::{RunningRunner, depth, drain_bodies, good_body, queue_pair, run_recorded, runner_config, send};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_messages_are_in_flight_at_once_with_a_batch_size_of_ten() {
    let client = support::client().await;
    let queue = queue_pair(&client, "in-flight", false, 60, 5).await;
    // Every message waits at the gate: the runner holds as many as it may, and no more.
    let bodies: Vec<String> =
        (0..300).map(|i| serde_json::json!({ "id": format!("m{i}"), "gate": true }).to_string()).collect();
    send(&client, &queue.url, &bodies, None).await;

    let mut config = runner_config(&queue.url, 2);
    config.pollers = NonZeroUsize::new(4).unwrap();
    config.max_in_flight = NonZeroUsize::new(200);
    let recorder = Arc::new(Recorder::default());
    let run = tokio::spawn(run_recorded(config, &recorder, CancellationToken::new()));
    support::eventually(Duration::from_secs(60), "200 messages held at the gate", || {
        let running = recorder.running();
        async move { (running >= 200).then_some(()) }
    })
    .await;
    recorder.open_gate();
    let summary = run.await.unwrap().unwrap();
    assert_eq!(recorder.peak(), 200, "exactly the cap is reached, never more");
    assert_eq!(summary.deleted, 300);
    assert_eq!(depth(&client, &queue.url).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_that_outlasts_the_visibility_timeout_without_a_heartbeat_is_reported_as_deleted_late() {
    let client = support::client().await;
    let queue = queue_pair(&client, "no-heartbeat", false, 1, 5).await;
    send(&client, &queue.url, &[good_body("slow", 2_500)], None).await;

    let config = runner_config(&queue.url, 2);
    let recorder = Arc::new(Recorder::default());
    let executor = support::recorded(&recorder, None).without_heartbeat();
    let summary = local_runner::run(config, executor, CancellationToken::new()).await.unwrap();
    let attempts = recorder.attempts().iter().filter(|a| a.id == "slow").count();
    assert!(attempts >= 2, "the message came back while its first delivery still ran: {attempts}");
    assert!(
        summary.deleted_late >= 1 && attempts as u64 - 1 <= summary.delete_failed + summary.deleted_late,
        "every second delivery is accounted for: {attempts} attempts, {summary:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_and_a_bad_body_reach_the_dead_letter_queue_without_a_back_off() {
    let client = support::client().await;
    // Queue timeout 120 s and a back-off from 30 s: a failure that waited for either would not
    // be received again within this test.
    let queue = queue_pair(&client, "permanent", false, 120, 3).await;
    let doomed = serde_json::json!({ "id": "doomed", "fail": "permanent" }).to_string();
    send(&client, &queue.url, &[doomed.clone(), "not json".to_owned()], None).await;

    let config = runner_config(&queue.url, 3);
    let recorder = Arc::new(Recorder::default());
    let backoff =
        Backoff { initial: Duration::from_secs(30), max: Duration::from_secs(60), ..Backoff::default() };
    let executor = support::recorded(&recorder, Some(backoff));
    let summary = local_runner::run(config, executor, CancellationToken::new()).await.unwrap();

    let attempts = recorder.attempts();
    for id in ["doomed", "not json"] {
        let counts: Vec<u32> = attempts.iter().filter(|a| a.id == id).map(|a| a.receive_count).collect();
        assert_eq!(counts, [1, 2, 3], "{id}: tried maxReceiveCount times at once");
    }
    assert_eq!(summary.failed, 6);
    let mut dead = drain_bodies(&client, &queue.dlq_url).await;
    dead.sort();
    let mut expected = [doomed, "not json".to_owned()];
    expected.sort();
    assert_eq!(dead, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stats_line_is_logged_while_running() {
    let client = support::client().await;
    let queue = queue_pair(&client, "stats", false, 30, 5).await;
    // 60 messages of 500 ms, 10 at a time: about 3 s of work.
    let bodies: Vec<String> = (0..60).map(|i| good_body(&format!("m{i}"), 500)).collect();
    send(&client, &queue.url, &bodies, None).await;

    let mut runner = RunningRunner::start(&[
        "--queue",
        &queue.url,
        "--stats-interval",
        "1",
        "--max-in-flight",
        "10",
        "--wait-time-seconds",
        "1",
        "--exit-when-idle",
        "2",
    ]);
    let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let lines = runner.lines.lock().unwrap().clone();
    let stats: Vec<_> = lines.iter().filter(|l| l["message"] == "stats").collect();
    assert!(!stats.is_empty(), "a stats line within the run");
    for field in ["received", "succeeded", "failed", "in_flight", "msgs_per_s"] {
        assert!(stats[0][field].is_number(), "stats line has {field}: {}", stats[0]);
    }
    assert!(stats.iter().any(|l| l["in_flight"].as_u64().is_some_and(|n| n > 0 && n <= 10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_while_running_and_agree_with_the_summary() {
    let client = support::client().await;
    let queue = queue_pair(&client, "metrics", false, 30, 5).await;
    let mut bodies: Vec<String> = (0..30).map(|i| good_body(&format!("m{i}"), 10)).collect();
    bodies.extend(["poison".to_owned(), "poison".to_owned()]);
    send(&client, &queue.url, &bodies, None).await;

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], support::free_port()));
    let mut config = runner_config(&queue.url, 2);
    config.exit_when_idle = None;
    config.metrics_addr = Some(addr);
    let recorder = Arc::new(Recorder::default());
    let stop = CancellationToken::new();
    let run = tokio::spawn(run_recorded(config, &recorder, stop.clone()));

    let metric = |text: &str, name: &str| -> Option<f64> {
        text.lines().find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key.split('{').next() == Some(name)).then(|| value.parse().ok())?
        })
    };
    // Every good message deleted, both poison messages failed once, and nothing in flight, as one
    // scrape sees it. A poison message comes back at its retry back-off and is in flight again
    // for a moment: the scrape that shows the drain is one taken outside those moments.
    let text = support::eventually(Duration::from_secs(30), "metrics that show the drain", || async move {
        let (status, text) = support::http_get(addr, "/metrics").await?;
        let done = metric(&text, "local_runner_deleted_events_total") == Some(30.0)
            && metric(&text, "local_runner_messages_failed_total") >= Some(2.0)
            && metric(&text, "local_runner_messages_in_flight") == Some(0.0);
        (status == 200 && done).then_some(text)
    })
    .await;
    assert!(text.contains(&format!("queue=\"{}\"", queue.name)), "labelled with the queue: {text}");
    assert!(metric(&text, "local_runner_batch_duration_seconds_count") >= Some(1.0), "{text}");
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text");
    // The handler's own metric, by its name in snake case: the successes only.
    assert_eq!(metric(&text, "local_runner_orders_stored_total"), Some(30.0), "{text}");

    stop.cancel();
    let summary = run.await.unwrap().unwrap();
    assert_eq!(summary.deleted, 30);
    assert_eq!(summary.metrics.sum("OrdersStored"), Some(30.0));
    assert_eq!(Some(summary.failed as f64), metric(&text, "local_runner_messages_failed_total"));
    assert!(support::http_get(addr, "/metrics").await.is_none(), "the server stops with the run");
}

/// Tests whose outcome depends on timing: the nextest configuration runs every test of a
/// `timing` module alone (no other test shares the machine with it), whatever its name.
mod timing {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_three_times_longer_than_the_visibility_timeout_is_handled_once_and_deleted_once() {
        let client = support::client().await;
        let queue = queue_pair(&client, "heartbeat", false, 2, 5).await;
        send(&client, &queue.url, &[good_body("slow", 6_000)], None).await;

        let recorder = Arc::new(Recorder::default());
        let summary =
            run_recorded(runner_config(&queue.url, 2), &recorder, CancellationToken::new()).await.unwrap();
        let attempts = recorder.attempts().iter().filter(|a| a.id == "slow").count();
        assert_eq!(attempts, 1, "the heartbeat kept it invisible: no second delivery");
        assert_eq!((summary.deleted, summary.delete_failed), (1, 0), "deleted once, no stale receipt handle");
        assert_eq!(summary.deleted_late, 0, "deleted while the heartbeat still kept it hidden");
        assert_eq!(depth(&client, &queue.url).await, (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handler_that_blocks_its_thread_cannot_starve_the_heartbeat() {
        let client = support::client().await;
        let queue = queue_pair(&client, "blocking", false, 2, 5).await;
        // Blocks a thread of the runtime for 3 x the visibility timeout, never yielding: a heartbeat
        // that shared its task or its runtime's threads would not get to extend the visibility.
        let body = serde_json::json!({ "id": "blocker", "block_ms": 6_000 }).to_string();
        send(&client, &queue.url, &[body], None).await;

        let recorder = Arc::new(Recorder::default());
        let summary =
            run_recorded(runner_config(&queue.url, 2), &recorder, CancellationToken::new()).await.unwrap();
        let attempts = recorder.attempts().iter().filter(|a| a.id == "blocker").count();
        assert_eq!(attempts, 1, "no second delivery while the first one blocked: {summary:?}");
        assert_eq!((summary.deleted, summary.deleted_late), (1, 0), "{summary:?}");
        assert_eq!(depth(&client, &queue.url).await, (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delete_in_time_after_a_long_poll_that_waited_is_not_reported_as_late() {
        let client = support::client().await;
        let queue = queue_pair(&client, "waited", false, 4, 5).await;
        let mut runner =
            RunningRunner::start(&["--queue", &queue.url, "--pollers", "1", "--wait-time-seconds", "5"]);
        // Precondition: the poller is in its first long poll before the message is sent.
        support::eventually(Duration::from_secs(30), "the runner to poll", || {
            let polling = runner.lines.lock().unwrap().iter().any(|l| l["message"] == "polling");
            async move { polling.then_some(()) }
        })
        .await;
        // The scenario: the message arrives 3 s into the 5 s long poll, more than half the 4 s
        // timeout, so only a heartbeat counted from the receive's start keeps the runner's own
        // bound ahead of the 1.5 s of work.
        tokio::time::sleep(Duration::from_secs(3)).await;
        send(&client, &queue.url, &[good_body("waited", 1_500)], None).await;
        support::eventually(Duration::from_secs(30), "the message handled", || {
            let handled = !runner.handled_ids().is_empty();
            async move { handled.then_some(()) }
        })
        .await;
        runner.terminate();
        let (code, stderr) = runner.exit(Duration::from_secs(30)).await;
        assert_eq!(code, Some(0), "{stderr}");
        let summary = runner.summary().expect("a summary");
        assert_eq!(runner.handled_ids(), ["waited"]);
        assert_eq!(
            (summary["deleted"].as_u64(), summary["deleted_late"].as_u64()),
            (Some(1), Some(0)),
            "{summary}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transient_failures_visibility_grows_with_its_receive_count() {
        let client = support::client().await;
        // The queue's own timeout is 30 s: every retry below comes from the back-off.
        let queue = queue_pair(&client, "backoff", false, 30, 4).await;
        let body = serde_json::json!({ "id": "unlucky", "fail": "transient" }).to_string();
        send(&client, &queue.url, &[body], None).await;

        // Idle for longer than the longest gap expected (4 s), so the run sees every attempt.
        let config = runner_config(&queue.url, 6);
        let recorder = Arc::new(Recorder::default());
        let backoff =
            Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60), ..Backoff::default() };
        let executor = support::recorded(&recorder, Some(backoff));
        local_runner::run(config, executor, CancellationToken::new()).await.unwrap();

        let attempts = recorder.attempts();
        let counts: Vec<u32> = attempts.iter().map(|a| a.receive_count).collect();
        assert_eq!(counts, [1, 2, 3, 4], "one attempt per receive");
        let gaps: Vec<f64> = attempts.windows(2).map(|w| (w[1].at - w[0].at).as_secs_f64()).collect();
        // 1 s, 2 s, 4 s, each plus a receive's latency (generous: shared machines stall). A fixed
        // delay fails the lower bounds; the queue's own 30 s fails the counts above.
        for (gap, expected) in gaps.iter().zip([1.0, 2.0, 4.0]) {
            assert!(*gap >= expected * 0.9 && *gap < expected + 3.0, "gaps {gaps:?}");
        }
    }
}
