//! The fault suite: every scenario sends numbered messages and reconciles them afterwards.
//! Nothing may be lost; a duplicate must be explained by a delete that could not be made.
//!
//! `RELIABILITY_LONG=1` runs every scenario at 10× its size.

mod support;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use e2e::Recorder;
use support::accounting::{Ledger, reconcile};
use support::{RunningRunner, good_body, queue_pair, run_recorded, runner_config};
use tokio_util::sync::CancellationToken;

fn scale(n: usize) -> usize {
    if std::env::var("RELIABILITY_LONG").is_ok_and(|v| v == "1") { n * 10 } else { n }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_with_poison_and_panics_reconcile_to_nothing_lost() {
    let client = support::client().await;
    let queue = queue_pair(&client, "mixed-faults", false, 2, 2).await;
    // 10 % poison bodies, 5 % handler panics (on the first delivery).
    let ledger = Ledger::plan(scale(10_000), 10, 20);
    ledger.send(&client, &queue.url).await;

    let mut config = runner_config(&queue.url, 5);
    config.pollers = NonZeroUsize::new(4).unwrap();
    config.max_in_flight = NonZeroUsize::new(100);
    let recorder = Arc::new(Recorder::default());
    let summary = run_recorded(config, &recorder, CancellationToken::new()).await.unwrap();

    let result =
        reconcile("10 % poison, 5 % panics", &client, &queue, &ledger, &recorder.handled(), summary.deleted)
            .await;
    result.assert_balanced((summary.delete_failed + summary.deleted_late) as usize);
    assert_eq!(summary.deleted as usize, result.handled, "every handled message deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_at_random_points_then_a_restart_five_times_loses_nothing_and_repeats_nothing() {
    let client = support::client().await;
    // A visibility timeout longer than the test: anything stranded would show as left behind.
    let queue = queue_pair(&client, "sigterm-loop", false, 300, 5).await;
    let ledger = Ledger::plan(scale(5_000), 0, 0);
    ledger.send(&client, &queue.url).await;

    let args = ["--queue", &queue.url, "--wait-time-seconds", "1", "--max-in-flight", "40"];
    let mut handled = Vec::new();
    let mut deleted = 0;
    for round in 0..5u64 {
        let mut runner = RunningRunner::start(&args);
        support::eventually(Duration::from_secs(30), "the runner to poll", || {
            let polling = runner.lines.lock().unwrap().iter().any(|l| l["message"] == "polling");
            async move { polling.then_some(()) }
        })
        .await;
        // The fault: a stop at a different point each round.
        let nanos = u64::from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos(),
        );
        tokio::time::sleep(Duration::from_millis(100 + (nanos + round * 337) % 900)).await;
        runner.terminate();
        let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
        assert_eq!(code, Some(0), "round {round}: {stderr}");
        let (_, in_flight) = support::depth(&client, &queue.url).await;
        assert_eq!(in_flight, 0, "round {round}: a clean stop leaves nothing invisible");
        handled.extend(runner.handled_ids());
        deleted += runner.summary().and_then(|s| s["deleted"].as_u64()).unwrap_or(0);
    }
    let mut last = RunningRunner::start(&[&args[..], &["--exit-when-idle", "2"]].concat());
    let (code, stderr) = last.exit(Duration::from_secs(180)).await;
    assert_eq!(code, Some(0), "{stderr}");
    handled.extend(last.handled_ids());
    deleted += last.summary().and_then(|s| s["deleted"].as_u64()).unwrap_or(0);

    let result = reconcile("SIGTERM ×5 + restart", &client, &queue, &ledger, &handled, deleted).await;
    result.assert_balanced(0);
    assert_eq!(deleted as usize, result.handled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_fifo_groups_keep_their_order_through_failures() {
    let client = support::client().await;
    let queue = queue_pair(&client, "fifo-twenty", true, 1, 5).await;
    let per_group = scale(10);
    let (flaky_groups, poisoned_groups) = ([2, 5, 9, 13], [7, 17]);
    let mut ledger = Ledger::default();
    for group in 0..20 {
        let mut bodies = Vec::new();
        for position in 0..per_group {
            let (key, body, kind) = if poisoned_groups.contains(&group) && position == per_group - 1 {
                let body = format!("poison-g{group:02}");
                (body.clone(), body, support::accounting::Kind::Poison)
            } else {
                // A transient failure mid-group holds the rest of the group back until it passes.
                let prefix =
                    if flaky_groups.contains(&group) && position == per_group / 2 { "flaky" } else { "msg" };
                let id = format!("{prefix}-g{group:02}-{position:04}");
                (id.clone(), good_body(&id, 0), support::accounting::Kind::Good)
            };
            ledger.kinds.insert(key, kind);
            bodies.push(body);
        }
        support::send(&client, &queue.url, &bodies, Some(&format!("g{group:02}"))).await;
    }

    let recorder = Arc::new(Recorder::default());
    let summary =
        run_recorded(runner_config(&queue.url, 4), &recorder, CancellationToken::new()).await.unwrap();
    let handled = recorder.handled();
    for group in 0..20 {
        let tag = format!("-g{group:02}-");
        let positions: Vec<&str> =
            handled.iter().filter(|id| id.contains(&tag)).map(|id| &id[id.len() - 4..]).collect();
        let mut sorted = positions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(positions, sorted, "group {group}: handled once each, in order");
    }
    let result = reconcile("FIFO, 20 groups", &client, &queue, &ledger, &handled, summary.deleted).await;
    result.assert_balanced((summary.delete_failed + summary.deleted_late) as usize);
}
