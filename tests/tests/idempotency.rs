//! The idempotency layer end to end: the test function (idempotent by `id` when
//! `IDEMPOTENCY_TABLE` is set) against a real local DynamoDB (moto's server) and LocalStack's SQS,
//! in process and through the real bootstrap (`--lambda`), with duplicates that reach two runners,
//! a runner killed mid-work, and a DynamoDB that stops answering.

mod support;

use std::time::Duration;

use support::dynamo::{self, OwnDynamo};
use support::{
    RunningRunner, bootstrap_bin, depth, eventually, queue_pair, send, template_path, unique_name,
};

/// Outcome lines of the message with body id `id` across `runners`, by outcome.
fn outcomes(runners: &[&RunningRunner], id: &str, outcome: &str) -> Vec<serde_json::Value> {
    runners
        .iter()
        .flat_map(|runner| runner.lines.lock().expect("not poisoned").clone())
        .filter(|line| line["id"] == id && line["outcome"] == outcome)
        .collect()
}

/// `--lambda` with the idempotent test template, its table named by `table`, one message an
/// invocation, two at once.
fn lambda_args(table: &str) -> Vec<String> {
    let bootstrap = bootstrap_bin().display().to_string();
    let template = template_path("idempotent").display().to_string();
    let table = format!("IdempotencyTableName={table}");
    ["--lambda", &bootstrap, "--template", &template, "--parameter-overrides", &table]
        .into_iter()
        .chain(["--esm-batch-size", "1", "--max-concurrency", "2", "--batching-window", "0"])
        .map(str::to_owned)
        .collect()
}

/// The same work sent three times (three message ids, one `id`) to a queue two runners consume at
/// once: the work is done once, the other two end as `duplicate`, nothing is left anywhere. Each
/// runner holds one message at a time and the work takes 3 s, so both get a copy: the one that
/// does not do the work can only learn it was done from the table, never from its own memory.
async fn sent_three_times_to_two_runners(lambda: bool) {
    let (client, dynamodb) = (support::client().await, dynamo::client_at(&dynamo::endpoint()));
    let table = dynamo::table(&dynamodb).await;
    let queue = queue_pair(&client, "idempotent", false, 30, 5).await;
    let id = unique_name("order");
    let body = serde_json::json!({ "id": id, "ms": 3000 }).to_string();
    send(&client, &queue.url, &[body.clone(), body.clone(), body], None).await;

    let endpoint = dynamo::endpoint();
    let env = dynamo::env(&table, &endpoint);
    let mode = if lambda { lambda_args(&table) } else { Vec::new() };
    let mut args = vec![
        "--queue",
        &queue.url,
        "--wait-time-seconds",
        "1",
        "--exit-when-idle",
        "4",
        "--max-in-flight",
        "1",
    ];
    if !lambda {
        args.extend(["--no-template", "--batch-size", "1", "--retry-backoff", "1"]);
    }
    args.extend(mode.iter().map(String::as_str));
    let mut first = RunningRunner::start_with_env(&args, &env);
    let mut second = RunningRunner::start_with_env(&args, &env);
    for runner in [&mut first, &mut second] {
        let (code, stderr) = runner.exit(Duration::from_secs(90)).await;
        assert_eq!(code, Some(0), "{stderr}");
    }
    let runners = [&first, &second];
    for (which, runner) in [("first", &first), ("second", &second)] {
        let copies = outcomes(&[runner], &id, "ok").len() + outcomes(&[runner], &id, "duplicate").len();
        assert!(copies >= 1, "the {which} runner settled a copy too");
    }
    let (ok, duplicate) = (outcomes(&runners, &id, "ok"), outcomes(&runners, &id, "duplicate"));
    assert_eq!(ok.len(), 1, "the work is done once: {ok:#?}\nduplicates: {duplicate:#?}");
    assert_eq!(duplicate.len(), 2, "the other two are duplicates: {duplicate:#?}");
    // The runners' summaries count them as the lines do, under --lambda from the function's own
    // `batch done` lines.
    let summed = |field: &str| -> u64 {
        runners.iter().map(|r| r.summary().expect("a summary")[field].as_u64().expect(field)).sum()
    };
    assert_eq!((summed("succeeded"), summed("duplicate")), (1, 2), "the summaries count what the lines say");
    assert_eq!(dynamo::statuses(&dynamodb, &table).await, ["COMPLETED"]);
    assert_eq!(depth(&client, &queue.url).await, (0, 0));
    assert_eq!(depth(&client, &queue.dlq_url).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_work_sent_three_times_to_two_runners_is_done_once() {
    sent_three_times_to_two_runners(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_work_sent_three_times_to_two_lambda_runners_is_done_once() {
    // The runner's local DynamoDB endpoint reaches the bootstrap; the table comes from the template.
    sent_three_times_to_two_runners(true).await;
}

mod timing {
    use super::*;

    /// A runner killed (SIGKILL) while the work runs leaves the key INPROGRESS until the
    /// invocation's deadline; the next run then does the work, once, and nothing stays INPROGRESS.
    async fn killed_mid_work_then_done_by_the_next_run(lambda: bool) {
        let (client, dynamodb) = (support::client().await, dynamo::client_at(&dynamo::endpoint()));
        let table = dynamo::table(&dynamodb).await;
        // Visible again 6 s after the crash at the latest: after the 5 s deadline its record holds.
        let queue = queue_pair(&client, "idempotent-kill", false, 6, 5).await;
        let id = unique_name("crash");
        send(&client, &queue.url, &[serde_json::json!({ "id": id, "first_ms": 60_000 }).to_string()], None)
            .await;

        let endpoint = dynamo::endpoint();
        let env = dynamo::env(&table, &endpoint);
        let mode = if lambda { lambda_args(&table) } else { Vec::new() };
        // Idle for longer than the crashed delivery stays hidden.
        let mut args = vec!["--queue", &queue.url, "--wait-time-seconds", "1", "--exit-when-idle", "10"];
        if !lambda {
            args.extend(["--no-template", "--function-timeout", "5"]);
        }
        args.extend(mode.iter().map(String::as_str));
        let mut crashed = RunningRunner::start_with_env(&args, &env);
        eventually(Duration::from_secs(30), "the key INPROGRESS", || async {
            (dynamo::statuses(&dynamodb, &table).await == ["INPROGRESS"]).then_some(())
        })
        .await;
        // The whole runner, with the function instances it runs under --lambda, as a crash would.
        let pid = crashed.child.id().to_string();
        let _ = std::process::Command::new("pkill").args(["-KILL", "-P", &pid]).status();
        crashed.child.kill().expect("SIGKILL the runner");
        let _ = crashed.exit(Duration::from_secs(10)).await;
        assert!(outcomes(&[&crashed], &id, "ok").is_empty());

        let mut next = RunningRunner::start_with_env(&args, &env);
        let (code, stderr) = next.exit(Duration::from_secs(90)).await;
        assert_eq!(code, Some(0), "{stderr}");
        let done = outcomes(&[&next], &id, "ok");
        assert_eq!(done.len(), 1, "handled once by the next run");
        assert!(done[0]["receive_count"].as_u64() >= Some(2), "{}", done[0]);
        assert_eq!(dynamo::statuses(&dynamodb, &table).await, ["COMPLETED"], "nothing left INPROGRESS");
        assert_eq!(depth(&client, &queue.url).await, (0, 0));
        assert_eq!(depth(&client, &queue.dlq_url).await, (0, 0));
    }

    /// A job longer than the function's timeout, and its re-send (the same `id`) once the first
    /// copy timed out: the deadline, the template's `Timeout` (5 s) in both modes, stops the first
    /// copy's work where its claim expires, so the re-send does the work alone, once, and the first
    /// copy, back later, is a duplicate. Before the deadline ended the work in process, both copies
    /// ran at once and both reported `ok`.
    async fn a_resend_after_the_deadline_does_the_work_alone(lambda: bool) {
        let (client, dynamodb) = (support::client().await, dynamo::client_at(&dynamo::endpoint()));
        let table = dynamo::table(&dynamodb).await;
        let queue = queue_pair(&client, "idempotent-resend", false, 8, 5).await;
        let id = unique_name("resend");
        // 8 s of work on its first delivery: past the 5 s timeout; a later delivery is quick.
        send(&client, &queue.url, &[serde_json::json!({ "id": id, "first_ms": 8_000 }).to_string()], None)
            .await;

        let endpoint = dynamo::endpoint();
        let env = dynamo::env(&table, &endpoint);
        let template = template_path("idempotent").display().to_string();
        let overrides = format!("IdempotencyTableName={table}");
        let mode = if lambda { lambda_args(&table) } else { Vec::new() };
        let mut args = vec!["--queue", &queue.url, "--wait-time-seconds", "1", "--exit-when-idle", "4"];
        if !lambda {
            // The template's function, its Timeout the batch's deadline: no --function-timeout.
            args.extend(["--template", &template, "--parameter-overrides", &overrides, "--batch-size", "1"]);
        }
        args.extend(mode.iter().map(String::as_str));
        let mut runner = RunningRunner::start_with_env(&args, &env);
        eventually(Duration::from_secs(30), "the first copy to time out at the template's 5 s", || async {
            let lines = runner.lines.lock().expect("not poisoned").clone();
            lines.iter().any(|line| line.to_string().contains("timed out after 5s")).then_some(())
        })
        .await;
        send(&client, &queue.url, &[serde_json::json!({ "id": id }).to_string()], None).await;

        let (code, stderr) = runner.exit(Duration::from_secs(90)).await;
        assert_eq!(code, Some(0), "{stderr}");
        let (ok, duplicate) = (outcomes(&[&runner], &id, "ok"), outcomes(&[&runner], &id, "duplicate"));
        assert_eq!(ok.len(), 1, "the work is done once: {ok:#?}\nduplicates: {duplicate:#?}");
        assert_eq!(duplicate.len(), 1, "the other copy is a duplicate: {duplicate:#?}");
        assert_ne!(ok[0]["message_id"], duplicate[0]["message_id"]);
        assert_eq!(dynamo::statuses(&dynamodb, &table).await, ["COMPLETED"]);
        assert_eq!(depth(&client, &queue.url).await, (0, 0));
        assert_eq!(depth(&client, &queue.dlq_url).await, (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_process_the_deadline_stops_the_work_so_a_resend_does_it_alone_once() {
        a_resend_after_the_deadline_does_the_work_alone(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_lambda_the_deadline_stops_the_work_so_a_resend_does_it_alone_once() {
        a_resend_after_the_deadline_does_the_work_alone(true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_runner_killed_mid_work_leaves_it_to_the_next_run_once_its_record_expires() {
        killed_mid_work_then_done_by_the_next_run(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lambda_runner_killed_mid_work_leaves_it_to_the_next_run_once_its_record_expires() {
        killed_mid_work_then_done_by_the_next_run(true).await;
    }

    /// A DynamoDB that stops answering (frozen: connections open, no answers) fails messages as
    /// transient failures; once it answers again every message is handled once and none is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_outage_fails_messages_transiently_and_loses_none() {
        let client = support::client().await;
        let own = OwnDynamo::start();
        let dynamodb = dynamo::client_at(&own.endpoint);
        let table = dynamo::table(&dynamodb).await;
        let queue = queue_pair(&client, "idempotent-outage", false, 30, 10).await;
        let ids: Vec<String> = (0..3).map(|i| unique_name(&format!("outage{i}"))).collect();
        let bodies: Vec<String> = ids.iter().map(|id| serde_json::json!({ "id": id }).to_string()).collect();

        let env = dynamo::env(&table, &own.endpoint);
        let args = ["--queue", &queue.url, "--no-template", "--wait-time-seconds", "1"];
        let mut runner = RunningRunner::start_with_env(
            &[&args[..], &["--exit-when-idle", "5", "--retry-backoff", "1"]].concat(),
            &env,
        );
        // The store answers the runner's start-up check (its table exists), then stops answering
        // before any message arrives.
        eventually(Duration::from_secs(30), "the runner to poll", || async {
            let lines = runner.lines.lock().expect("not poisoned").clone();
            lines.iter().any(|line| line["message"] == "polling").then_some(())
        })
        .await;
        own.signal("-STOP");
        send(&client, &queue.url, &bodies, None).await;
        eventually(Duration::from_secs(60), "a failure that names the store", || async {
            let lines = runner.lines.lock().expect("not poisoned").clone();
            lines
                .iter()
                .find(|line| {
                    line["outcome"] == "failed"
                        && line["error"].as_str().is_some_and(|e| e.contains("idempotency store failed"))
                })
                .map(|line| assert_eq!(line["retryable"], true, "{line}"))
        })
        .await;
        own.signal("-CONT");

        let (code, stderr) = runner.exit(Duration::from_secs(120)).await;
        assert_eq!(code, Some(0), "{stderr}");
        for id in &ids {
            assert_eq!(outcomes(&[&runner], id, "ok").len(), 1, "{id} handled once");
            assert!(outcomes(&[&runner], id, "duplicate").is_empty(), "{id}");
        }
        assert_eq!(dynamo::statuses(&dynamodb, &table).await, ["COMPLETED"; 3]);
        assert_eq!(depth(&client, &queue.url).await, (0, 0));
        assert_eq!(depth(&client, &queue.dlq_url).await, (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_creates_the_templates_idempotency_table_with_ttl_on_the_local_dynamodb() {
    let dynamodb = dynamo::client_at(&dynamo::endpoint());
    let (table, queue) = (unique_name("up-idempotency"), unique_name("up-idempotent"));
    let template = support::repo_root().join("template.yaml").display().to_string();
    let overrides = format!("IdempotencyTableName={table}");
    let up = || {
        std::process::Command::new(support::runner_bin())
            .args(["up", "--queue", &queue, "--endpoint-url", &support::endpoint(), "--template", &template])
            .args(["--parameter-overrides", &overrides])
            .env("AWS_ENDPOINT_URL_DYNAMODB", dynamo::endpoint())
            .output()
            .expect("run local-runner up")
    };
    let output = up();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&format!("table  {table} at")), "{stdout}");
    let described = dynamodb.describe_table().table_name(&table).send().await.expect("the table exists");
    let key = described.table().map(|t| t.key_schema()).unwrap_or_default();
    assert_eq!(key.iter().map(|k| k.attribute_name()).collect::<Vec<_>>(), ["id"]);
    let ttl = dynamodb.describe_time_to_live().table_name(&table).send().await.expect("its TTL");
    let ttl = ttl.time_to_live_description().and_then(|d| d.attribute_name());
    assert_eq!(ttl, Some("expiration"));
    // Again: what exists is left as it is.
    let again = up();
    assert!(again.status.success() && String::from_utf8_lossy(&again.stdout).contains("(exists)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_templates_table_parameter_turns_idempotency_on_in_process_with_nothing_else_set() {
    let (client, dynamodb) = (support::client().await, dynamo::client_at(&dynamo::endpoint()));
    let table = dynamo::table(&dynamodb).await;
    let queue = queue_pair(&client, "idempotent-template", false, 30, 5).await;
    let id = unique_name("order");
    let body = serde_json::json!({ "id": id }).to_string();
    send(&client, &queue.url, &[body.clone(), body], None).await;
    let template = support::repo_root().join("template.yaml").display().to_string();
    let overrides = format!("IdempotencyTableName={table}");
    let args = ["--queue", &queue.url, "--template", &template, "--parameter-overrides", &overrides];
    // Only the DynamoDB endpoint: the region and the local credentials come from the runner.
    let mut runner = RunningRunner::start_with_env(
        &[&args[..], &["--wait-time-seconds", "1", "--exit-when-idle", "3", "--batch-size", "1"]].concat(),
        &[("AWS_ENDPOINT_URL_DYNAMODB", &dynamo::endpoint())],
    );
    let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(outcomes(&[&runner], &id, "ok").len(), 1);
    assert_eq!(outcomes(&[&runner], &id, "duplicate").len(), 1);
    assert_eq!(dynamo::statuses(&dynamodb, &table).await, ["COMPLETED"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_a_hostile_table_name_is_refused_with_one_escaped_line_before_anything_is_created() {
    let template = support::repo_root().join("template.yaml").display().to_string();
    let hostile = format!("bad\u{1b}[31m{}", "x".repeat(300));
    let output = std::process::Command::new(support::runner_bin())
        .args(["up", "--queue", &unique_name("up-hostile"), "--endpoint-url", &support::endpoint()])
        .args(["--template", &template, "--parameter-overrides", &format!("IdempotencyTableName={hostile}")])
        .env("AWS_ENDPOINT_URL_DYNAMODB", dynamo::endpoint())
        .output()
        .expect("run local-runner up");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(matches!(output.status.code(), Some(1 | 2)), "{stderr}");
    assert!(stderr.contains("is not a DynamoDB table name"), "{stderr}");
    assert!(stdout.is_empty(), "nothing created: {stdout}");
    assert!(!stderr.contains('\u{1b}') && !stderr.contains("panicked") && stderr.len() < 1_000, "{stderr}");
}
