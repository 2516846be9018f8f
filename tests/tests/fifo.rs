//! FIFO queues: order within each message group, a failure stops only its own group, and the
//! rest of that group comes back in order after the failed message is dealt with.

mod support;

use std::sync::Arc;

use e2e::Recorder;
use support::{depth, drain_bodies, good_body, queue_pair, run_recorded, runner_config, send};
use tokio_util::sync::CancellationToken;

fn group(name: &str, ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| good_body(&format!("{name}-{id}"), 0)).collect()
}

/// `flaky-f-3` is message 3 of group f.
fn plain(id: &str) -> &str {
    id.strip_prefix("flaky-").unwrap_or(id)
}

/// Tests whose outcome depends on timing: the nextest configuration runs every test of a
/// `timing` module alone (no other test shares the machine with it), whatever its name.
mod timing {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn order_holds_per_group_and_a_failing_group_does_not_block_the_others() {
        let client = support::client().await;
        // maxReceiveCount 5, as AWS advises for FIFO: the messages received behind a failed one are
        // received again with it, and each receive counts toward their own limit.
        let queue = queue_pair(&client, "fifo", true, 1, 5).await;
        let steady_a = group("a", &["1", "2", "3", "4", "5"]);
        let steady_b = group("b", &["1", "2", "3", "4", "5"]);
        // f-3 fails on its first delivery; f-4 and f-5 must wait for it.
        let mut flaky = group("f", &["1", "2"]);
        flaky.push(good_body("flaky-f-3", 0));
        flaky.extend(group("f", &["4", "5"]));
        // p ends with a poison message: it goes to the DLQ after five deliveries.
        let mut poisoned = group("p", &["1", "2"]);
        poisoned.push("poison: not json".to_owned());
        for (name, bodies) in [("a", &steady_a), ("f", &flaky), ("b", &steady_b), ("p", &poisoned)] {
            send(&client, &queue.url, bodies, Some(name)).await;
        }

        let recorder = Arc::new(Recorder::default());
        let summary = run_recorded(runner_config(&queue.url, 3), &recorder, CancellationToken::new())
            .await
            .expect("the run ends cleanly when idle");

        let handled = recorder.handled();
        let in_group = |prefix: &str| -> Vec<String> {
            handled
                .iter()
                .map(|id| plain(id))
                .filter(|id| id.starts_with(prefix))
                .map(str::to_owned)
                .collect()
        };
        let expected =
            |name: &str, n: usize| -> Vec<String> { (1..=n).map(|i| format!("{name}-{i}")).collect() };
        assert_eq!(in_group("a-"), expected("a", 5), "group a: each once, in order");
        assert_eq!(in_group("b-"), expected("b", 5), "group b: each once, in order");
        assert_eq!(in_group("f-"), expected("f", 5), "group f: in order once f-3 succeeded");
        assert_eq!(in_group("p-"), expected("p", 2), "group p: in order up to the poison message");

        let attempts = recorder.attempts();
        let position =
            |id: &str, receive: u32| attempts.iter().position(|a| a.id == id && a.receive_count == receive);
        let f3_retry = position("flaky-f-3", 2).expect("f-3 is delivered a second time");
        assert!(position("flaky-f-3", 1).is_some_and(|first| first < f3_retry));
        for later in ["f-4", "f-5"] {
            let first_try = attempts.iter().position(|a| a.id == later).expect("handled");
            assert!(first_try > f3_retry, "{later} is not handled before f-3 succeeds");
        }
        for other in ["a-5", "b-5"] {
            let done = attempts.iter().position(|a| a.id == other).expect("handled");
            assert!(done < f3_retry, "{other}'s group finished while group f waited on f-3");
        }

        let poison_attempts = attempts.iter().filter(|a| a.id.starts_with("poison")).count();
        assert_eq!(poison_attempts, 5, "the poison message is tried maxReceiveCount times");
        assert_eq!(summary.succeeded, 17);
        assert_eq!(summary.deleted, 17);
        assert_eq!(depth(&client, &queue.url).await, (0, 0), "the source queue is empty");
        assert_eq!(drain_bodies(&client, &queue.dlq_url).await, ["poison: not json"]);
    }
}
