//! Endpoint faults, each on a LocalStack of the test's own: frozen mid-run, not yet up at start,
//! killed mid-run, unreachable for a while.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use e2e::Recorder;
use local_runner::aws::Connection;
use support::{OwnLocalStack, RunningRunner, good_body, run_recorded, runner_config};
use tokio_util::sync::CancellationToken;

async fn queue_on(ls: &OwnLocalStack, name: &str, visibility: u32) -> String {
    let client = ls.client().await;
    client
        .create_queue()
        .queue_name(support::unique_name(name))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, visibility.to_string())
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("url")
}

/// A queue on `ls` (`visibility` seconds) holding `count` messages of `ms` of work each.
async fn queue_of(ls: &OwnLocalStack, name: &str, visibility: u32, count: usize, ms: u64) -> String {
    let url = queue_on(ls, name, visibility).await;
    let bodies: Vec<String> = (0..count).map(|i| good_body(&format!("m{i}"), ms)).collect();
    support::send(&ls.client().await, &url, &bodies, None).await;
    url
}

/// The runner's configuration for `url` through `endpoint` (LocalStack's own, or a proxy to it),
/// idle after `idle_secs`.
fn config_through(url: &str, endpoint: String, idle_secs: u64) -> local_runner::Config {
    let mut config = runner_config(url, idle_secs);
    config.connection = Connection::new(Some(endpoint), "us-east-1");
    config
}

/// The runner's command on `url` of `ls`, one-second long polls, with `extra` flags.
fn runner_on(ls: &OwnLocalStack, url: &str, extra: &[&str]) -> RunningRunner {
    let args =
        [&["--queue", url, "--endpoint-url", &ls.endpoint, "--wait-time-seconds", "1"], extra].concat();
    RunningRunner::start(&args)
}

/// Waits (60 s at most) until `runner` has handled `count` messages.
async fn until_handled(runner: &RunningRunner, count: usize) {
    support::eventually(Duration::from_secs(60), &format!("{count} messages handled"), || {
        let n = runner.handled_ids().len();
        async move { (n >= count).then_some(()) }
    })
    .await;
}

/// Messages handled more than once, as many times more as they were.
fn duplicates<'a>(handled: impl IntoIterator<Item = &'a String>) -> u64 {
    let mut times: HashMap<&str, u64> = HashMap::new();
    for id in handled {
        *times.entry(id.as_str()).or_default() += 1;
    }
    times.values().map(|n| n - 1).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_localstack_frozen_twice_is_ridden_out_and_nothing_is_lost() {
    let ls = OwnLocalStack::start(0);
    // Receives cut off by the client timeout during the freeze strand what SQS had handed them
    // until the visibility timeout (4 s) expires; the idle exit (8 s) waits that out.
    let url = queue_of(&ls, "frozen", 4, 300, 20).await;
    let config = config_through(&url, ls.endpoint.clone(), 8);
    let recorder = Arc::new(Recorder::default());
    let run = tokio::spawn(run_recorded(config, &recorder, CancellationToken::new()));
    for (freeze, after) in [(1, 50), (2, 150)] {
        support::eventually(Duration::from_secs(60), "messages handled before the freeze", || {
            let n = recorder.handled().len();
            async move { (n >= after).then_some(()) }
        })
        .await;
        ls.signal("-STOP");
        // The fault itself: frozen for longer than the client's attempt timeout (wait + 10 s).
        tokio::time::sleep(Duration::from_secs(15)).await;
        ls.signal("-CONT");
        println!("freeze {freeze} over");
    }
    let summary = run.await.unwrap().expect("the run rides out the freeze and ends when idle");
    println!("{summary:?}");

    let handled = recorder.handled();
    let distinct: std::collections::HashSet<&String> = handled.iter().collect();
    assert_eq!(distinct.len(), 300, "every message handled: nothing lost");
    let duplicates = duplicates(&handled);
    // A batch handled just before a freeze is deleted only after it: by then its 4 s may have run
    // out and SQS handed it out again. The runner counts those deletes as late.
    assert!(
        duplicates <= summary.delete_failed + summary.deleted_late,
        "duplicates ({duplicates}) only where a delete failed or came late: {summary:?}"
    );
    assert_eq!(support::depth(&ls.client().await, &url).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_localstack_not_yet_up_at_start_is_waited_for_and_then_used() {
    // The runner is pointed at a port where nothing listens yet.
    let port = support::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let name = support::unique_name("late");
    let mut runner = RunningRunner::start(&[
        "--queue",
        &name,
        "--endpoint-url",
        &endpoint,
        "--start-timeout",
        "90",
        "--wait-time-seconds",
        "1",
        "--exit-when-idle",
        "2",
    ]);
    // Meanwhile LocalStack comes up (elsewhere), gets the queue and messages, and only then is
    // it reachable where the runner looks: nothing can race the queue's creation.
    let ls = OwnLocalStack::start(0);
    let client = ls.client().await;
    let url = client.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let bodies: Vec<String> = (0..20).map(|i| good_body(&format!("m{i}"), 0)).collect();
    support::send(&client, &url, &bodies, None).await;
    let proxy = support::Proxy::open(port, ls.port).await;

    let (code, stderr) = runner.exit(Duration::from_secs(120)).await;
    proxy.close().await;
    assert_eq!(code, Some(0), "{stderr}");
    let mut handled = runner.handled_ids();
    handled.sort();
    assert_eq!(handled.len(), 20);
    let lines = runner.lines.lock().unwrap().clone();
    let waiting = lines.iter().filter(|l| l["message"] == "SQS does not answer yet; waiting for it").count();
    assert_eq!(waiting, 1, "one warning for the outage, not one per attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_localstack_killed_mid_run_ends_the_run_with_one_clear_error() {
    let ls = OwnLocalStack::start(0);
    let url = queue_of(&ls, "killed", 30, 300, 20).await;

    let mut runner = runner_on(&ls, &url, &["--max-in-flight", "10"]);
    until_handled(&runner, 30).await;
    ls.signal("-KILL");
    // Back on the same port, without persistence: the queue is gone.
    let port = ls.port;
    let restarted = OwnLocalStack::start(port);
    let (code, stderr) = runner.exit(Duration::from_secs(90)).await;
    drop(restarted);
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains("does not exist"), "{stderr}");
    let logged = runner.lines.lock().unwrap().clone();
    let outage_warnings = logged
        .iter()
        .filter(|l| {
            l["level"] == "WARN"
                && l["message"].as_str().is_some_and(|m| m.starts_with("ReceiveMessage failed"))
        })
        .count();
    assert!(outage_warnings <= 2, "at most one warning per poller, no spin: {outage_warnings}");
    let summary = runner.summary().expect("summary");
    assert!(
        summary["deleted"].as_u64() <= Some(runner.handled_ids().len() as u64),
        "nothing deleted unhandled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_not_mistaken_for_an_idle_queue() {
    let ls = OwnLocalStack::start(0);
    let url = queue_of(&ls, "outage-not-idle", 30, 400, 20).await;

    // The runner reaches LocalStack through a proxy; closing it refuses every connection.
    let port = support::free_port();
    let mut proxy = support::Proxy::open(port, ls.port).await;
    // Idle after 3 s; the outage lasts 15 s, long after every delete has given up.
    let config = config_through(&url, format!("http://127.0.0.1:{port}"), 3);
    let recorder = Arc::new(Recorder::default());
    let run = tokio::spawn(run_recorded(config, &recorder, CancellationToken::new()));
    support::eventually(Duration::from_secs(30), "messages flowing", || {
        let n = recorder.handled().len();
        async move { (n >= 30).then_some(()) }
    })
    .await;
    proxy.close().await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(!run.is_finished(), "the run must not take an outage for an idle queue");
    proxy = support::Proxy::open(port, ls.port).await;
    let summary = run.await.unwrap().expect("a clean idle exit once the queue is really empty");
    println!("{summary:?}");
    proxy.close().await;
    let mut handled = recorder.handled();
    handled.sort();
    handled.dedup();
    assert_eq!(handled.len(), 400, "everything handled after the outage");
    // Deletes that gave up during the outage leave their messages on the queue, invisible until
    // their visibility timeout and visible after: delayed, never lost.
    let (visible, hidden) = support::depth(&ls.client().await, &url).await;
    assert_eq!(visible + hidden, summary.delete_failed, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_cut_off_by_an_outage_is_retried_while_the_message_is_still_hidden() {
    let ls = OwnLocalStack::start(0);
    // Hidden for 30 s: longer than the outage, so a delete that keeps trying lands in time.
    let url = queue_on(&ls, "delete-outage", 30).await;
    support::send(&ls.client().await, &url, &[good_body("slow", 1_000)], None).await;

    let port = support::free_port();
    let mut proxy = support::Proxy::open(port, ls.port).await;
    let config = config_through(&url, format!("http://127.0.0.1:{port}"), 2);
    let recorder = Arc::new(Recorder::default());
    let run = tokio::spawn(run_recorded(config, &recorder, CancellationToken::new()));
    support::eventually(Duration::from_secs(30), "the message started", || {
        let started = !recorder.attempts().is_empty();
        async move { started.then_some(()) }
    })
    .await;
    // The work ends 1 s into a 15 s outage: its delete meets dropped and refused connections for
    // 14 s, longer than its first five attempts can last (3 s of pauses plus at most 3 s of the
    // SDK's own retries in each). The receive in flight when the connections drop may have
    // reached SQS: the run waits the visibility timeout before it may call itself idle.
    proxy.close().await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(!run.is_finished(), "the outage is not an idle queue");
    proxy = support::Proxy::open(port, ls.port).await;
    let summary = run.await.unwrap().expect("an idle exit after the outage");
    proxy.close().await;

    assert_eq!(recorder.handled(), ["slow"], "handled once: the delete came in time");
    assert_eq!((summary.deleted, summary.delete_failed, summary.deleted_late), (1, 0, 0), "{summary:?}");
    assert_eq!(support::depth(&ls.client().await, &url).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_cut_off_by_a_frozen_localstack_delays_its_messages_and_the_drain_still_completes() {
    let ls = OwnLocalStack::start(0);
    // The idle window (3 s) is shorter than the visibility timeout (10 s): an idle exit that did
    // not know of the cut-off receives would stop while their messages are still hidden.
    let url = queue_of(&ls, "cut-off", 10, 300, 20).await;

    // Room to spare, so that both pollers are receiving (not waiting for permits) when the freeze
    // comes.
    let mut runner = runner_on(&ls, &url, &["--exit-when-idle", "3", "--max-in-flight", "100"]);
    until_handled(&runner, 50).await;
    ls.signal("-STOP");
    // The fault: frozen for longer than a receive's attempt timeout (1 s wait + 10 s), so the
    // receives in flight are cut off, and LocalStack answers them into dead connections when it
    // resumes.
    tokio::time::sleep(Duration::from_secs(13)).await;
    ls.signal("-CONT");

    let (code, stderr) = runner.exit(Duration::from_secs(120)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let summary = runner.summary().expect("a summary");
    println!("{summary}");
    let handled = runner.handled_ids();
    let distinct: std::collections::HashSet<&String> = handled.iter().collect();
    assert_eq!(distinct.len(), 300, "every message handled in this one run: {summary}");
    let duplicates = duplicates(&handled);
    let explained =
        summary["delete_failed"].as_u64().unwrap_or(0) + summary["deleted_late"].as_u64().unwrap_or(0);
    assert!(
        duplicates <= explained,
        "duplicates ({duplicates}) only where a delete failed or came late: {summary}"
    );
    assert!(summary["receives_cut_off"].as_u64() >= Some(1), "the cut-off receives are counted: {summary}");
    let lines = runner.lines.lock().unwrap().clone();
    let warnings = lines
        .iter()
        .filter(|l| l["level"] == "WARN" && l["message"].as_str().is_some_and(|m| m.contains("was cut off")))
        .count();
    assert_eq!(warnings, 1, "one warning for the streak");
    assert_eq!(support::depth(&ls.client().await, &url).await, (0, 0), "nothing left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_or_a_visibility_change_sent_twice_is_harmless() {
    // What a cut-off DeleteMessageBatch or ChangeMessageVisibilityBatch looks like to SQS when
    // it is retried: the same request twice. Both are idempotent, unlike a receive.
    use local_runner::aws::{Connection, QueueRef, Retries, Sqs, queue};
    let client = support::client().await;
    let pair = support::queue_pair(&client, "twice", false, 30, 5).await;
    support::send(&client, &pair.url, &[good_body("once", 0)], None).await;
    let connection = Connection::new(Some(support::endpoint()), "us-east-1");
    let found = queue::resolve(&client, &QueueRef::Url(pair.url.clone()), &connection).await.unwrap();
    let sqs = Sqs::new(client.clone(), found);
    let received = sqs.receive(10, Duration::from_secs(1)).await.unwrap();
    let queue = sqs.queue().clone();
    let records: Vec<_> = received
        .into_iter()
        .map(|m| local_runner::aws::records::lambda_record(m, &queue, "us-east-1"))
        .collect();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    for attempt in 1..=2 {
        assert_eq!(
            sqs.set_visibility(&[(record, 60)], Retries::times(1)).await,
            1,
            "visibility change {attempt}"
        );
    }
    for attempt in 1..=2 {
        assert_eq!(sqs.delete(&[record], Retries::times(1)).await, 1, "delete {attempt}");
    }
    assert_eq!(support::depth(&client, &pair.url).await, (0, 0));
}
