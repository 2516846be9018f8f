//! Graceful shutdown of the real binary: SIGTERM mid-drain exits 0 and leaves nothing invisible;
//! a restart finishes the rest, every message handled exactly once.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::{RunningRunner, depth, good_body, queue_pair, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_drain_exits_zero_and_a_restart_finishes_the_rest_with_nothing_lost() {
    let client = support::client().await;
    // A long visibility timeout: a message the runner stranded would stay invisible for the whole
    // test, and the depth check below would see it.
    let queue = queue_pair(&client, "shutdown", false, 120, 5).await;
    // Enough that the stop always comes mid-drain, whatever the machine's speed.
    let ids: Vec<String> = (0..1000).map(|i| format!("msg-{i}")).collect();
    let bodies: Vec<String> = ids.iter().map(|id| good_body(id, 20)).collect();
    send(&client, &queue.url, &bodies, None).await;

    let args = ["--queue", &queue.name, "--wait-time-seconds", "1", "--shutdown-timeout", "20"];
    let mut first = RunningRunner::start(&args);
    support::eventually(Duration::from_secs(30), "the first run to handle 40 messages", || {
        let n = first.handled_ids().len();
        async move { (n >= 40).then_some(()) }
    })
    .await;
    first.terminate();
    let (code, stderr) = first.exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "SIGTERM mid-drain exits 0; stderr: {stderr}");
    let first_ids = first.handled_ids();
    assert!(first_ids.len() < ids.len(), "the stop came mid-drain");
    let summary = first.summary().expect("a summary line on exit");
    assert_eq!(summary["deleted"], first_ids.len(), "every message handled before the stop was deleted");

    let (visible, in_flight) = depth(&client, &queue.url).await;
    assert_eq!(in_flight, 0, "after a clean stop nothing is left invisible");
    assert_eq!(visible as usize, ids.len() - first_ids.len(), "the rest is waiting, visible");

    let mut second = RunningRunner::start(&[&args[..], &["--exit-when-idle", "2"]].concat());
    let (code, stderr) = second.exit(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "an idle exit is a clean exit; stderr: {stderr}");

    let all: Vec<String> = [first_ids, second.handled_ids()].concat();
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), ids.len(), "every message was handled");
    assert_eq!(all.len(), ids.len(), "no message was handled twice");
    assert_eq!(depth(&client, &queue.url).await, (0, 0), "the queue is empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_timeout_deletes_what_finished_and_releases_only_what_did_not() {
    let client = support::client().await;
    let queue = queue_pair(&client, "abandon", false, 60, 5).await;
    // One batch: four quick messages and one that outlasts the shutdown timeout.
    let mut bodies: Vec<String> = (0..4).map(|i| good_body(&format!("quick-{i}"), 0)).collect();
    bodies.push(good_body("slow", 30_000));
    send(&client, &queue.url, &bodies, None).await;

    let mut config = support::runner_config(&queue.url, 2);
    config.exit_when_idle = None;
    config.pollers = std::num::NonZeroUsize::MIN;
    config.shutdown_timeout = Duration::from_secs(2);
    let recorder = std::sync::Arc::new(e2e::Recorder::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(support::run_recorded(config, &recorder, stop.clone()));
    support::eventually(Duration::from_secs(30), "the quick messages done, the slow one started", || {
        let (done, started) = (recorder.handled().len(), recorder.attempts().len());
        async move { (done == 4 && started == 5).then_some(()) }
    })
    .await;
    stop.cancel();
    let summary = run.await.unwrap().unwrap();
    assert_eq!((summary.deleted, summary.abandoned, summary.released), (4, 1, 1), "{summary:?}");
    assert_eq!(depth(&client, &queue.url).await, (1, 0), "only the unfinished message is back, at once");
}
