//! Draining a standard queue: good messages deleted exactly once, bad ones retried until the
//! redrive policy moves them to the dead-letter queue.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use e2e::Recorder;
use support::{depth, drain_bodies, good_body, queue_pair, run_recorded, runner_config, send};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_messages_are_deleted_once_and_bad_ones_reach_the_dead_letter_queue() {
    let client = support::client().await;
    let queue = queue_pair(&client, "drain", false, 1, 2).await;
    let good: Vec<String> = (0..40).map(|i| good_body(&format!("good-{i}"), i % 3)).collect();
    let mut bad = vec![
        "not json".to_owned(),
        r#"{"ms":1}"#.to_owned(),
        r#"{"id":7}"#.to_owned(),
        r#"{"id":"x","ms":"soon"}"#.to_owned(),
    ];
    send(&client, &queue.url, &[good.clone(), bad.clone()].concat(), None).await;

    let recorder = Arc::new(Recorder::default());
    let summary = run_recorded(runner_config(&queue.url, 3), &recorder, CancellationToken::new())
        .await
        .expect("the run ends cleanly when idle");

    let mut handled: HashMap<String, usize> = HashMap::new();
    for id in recorder.handled() {
        *handled.entry(id).or_default() += 1;
    }
    assert_eq!(handled.len(), 40, "every good message is handled");
    assert!(handled.values().all(|&n| n == 1), "no good message is handled twice: {handled:?}");
    assert_eq!(summary.succeeded, 40);
    assert_eq!(summary.deleted, 40);
    assert_eq!(summary.delete_failed, 0);
    // The idle exit asks for nothing it will not handle: no receive is spent on a message only to
    // release it at the exit.
    assert_eq!(summary.released, 0, "{summary:?}");

    let bad_attempts = recorder.attempts().into_iter().filter(|a| !a.ok).count();
    assert_eq!(bad_attempts, bad.len() * 2, "each bad message is tried maxReceiveCount (2) times");
    assert_eq!(depth(&client, &queue.url).await, (0, 0), "the source queue is empty");
    let mut in_dlq = drain_bodies(&client, &queue.dlq_url).await;
    in_dlq.sort();
    bad.sort();
    assert_eq!(in_dlq, bad, "exactly the bad messages are in the dead-letter queue");
}
