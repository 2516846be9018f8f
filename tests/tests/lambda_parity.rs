//! Parity: the handler in process, the real `bootstrap` behind our Runtime API, and the same
//! `bootstrap` behind AWS's own Runtime Interface Emulator (the oracle) give the same answers;
//! a queue drained in process and through the bootstrap ends in the same state.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use local_runner::InProcess;
use local_runner::lambda::LambdaPool;
use serde_json::Value;
use sqs_batch::lambda::handle_event;
use sqs_batch::{Options, SqsEvent};
use support::{
    bootstrap_bin, depth, drain_bodies, free_port, good_body, lambda_spec, queue_pair, repo_root,
    runner_config, send,
};
use tokio_util::sync::CancellationToken;

/// AWS's Runtime Interface Emulator, as the SAM CLI ships it (scripts/test.sh installs it and
/// sets `LAMBDA_RIE`).
fn rie_path() -> PathBuf {
    if let Ok(path) = std::env::var("LAMBDA_RIE") {
        return PathBuf::from(path);
    }
    let site = repo_root().join(".venv/sam/lib");
    let found = std::fs::read_dir(&site).ok().into_iter().flatten().flatten().find_map(|python| {
        let rie = python.path().join("site-packages/samcli/local/rapid/aws-lambda-rie-x86_64");
        rie.exists().then_some(rie)
    });
    found.unwrap_or_else(|| panic!("AWS's Runtime Interface Emulator is missing: run scripts/test.sh (it installs the SAM CLI, which ships it) or set LAMBDA_RIE"))
}

/// The bootstrap running under the RIE, on free ports; killed on drop.
struct Rie {
    child: Child,
    invoke_url: String,
}

impl Rie {
    /// The bootstrap under the RIE with `env` added to the function's environment.
    fn start(bootstrap: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_to(bootstrap, env, Stdio::null())
    }

    /// [`Rie::start`], the emulator's output (the function's lines among it) written to `log`.
    fn start_logged(bootstrap: &Path, env: &[(&str, &str)], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("create the RIE's log");
        Self::start_to(bootstrap, env, Stdio::from(file))
    }

    fn start_to(bootstrap: &Path, env: &[(&str, &str)], stdout: Stdio) -> Self {
        let port = free_port();
        let child = Command::new(rie_path())
            .envs(env.iter().copied())
            .args(["--runtime-interface-emulator-address", &format!("127.0.0.1:{port}")])
            .args(["--runtime-api-address", &format!("127.0.0.1:{}", free_port())])
            .arg(bootstrap)
            .env("AWS_LAMBDA_FUNCTION_NAME", "HandlerFunction")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_TIMEOUT", "30")
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("start the RIE");
        Self {
            child,
            invoke_url: format!("http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"),
        }
    }

    /// POSTs an event and returns the HTTP status and body, whatever they are; retries while the
    /// emulator is not listening yet.
    async fn invoke_raw(&self, event: &str) -> (u16, String) {
        support::eventually(Duration::from_secs(20), "the RIE to listen", || {
            let output = Command::new("curl")
                .args(["-s", "-X", "POST", "-w", "\n%{http_code}", "--data-binary", event, &self.invoke_url])
                .output();
            let answer = output.ok().filter(|o| o.status.success()).and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                let (body, status) = text.rsplit_once('\n')?;
                Some((status.parse().ok()?, body.to_owned()))
            });
            async move { answer }
        })
        .await
    }

    /// POSTs an event; retries while the emulator is still starting.
    async fn invoke(&self, event: &str) -> Value {
        support::eventually(Duration::from_secs(20), "the RIE to answer", || {
            let output = Command::new("curl")
                .args(["-s", "-f", "-X", "POST", "--data-binary", "@-", &self.invoke_url])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .and_then(|mut curl| {
                    use std::io::Write;
                    curl.stdin.take().expect("piped").write_all(event.as_bytes())?;
                    curl.wait_with_output()
                });
            let answer = output
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| serde_json::from_slice(&o.stdout).ok());
            async move { answer }
        })
        .await
    }
}

impl Drop for Rie {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The function's options for a fixture: a `*skip-group.json` event runs with
/// `FIFO_ON_FAILURE=skip-group`, the rest with the defaults.
fn fixture_env(fixture: &Path) -> &'static [(&'static str, &'static str)] {
    let skip_group = fixture.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains("skip-group"));
    if skip_group { &[("FIFO_ON_FAILURE", "skip-group")] } else { &[] }
}

async fn in_process(event: &str, env: &[(&str, &str)]) -> Value {
    let event: SqsEvent = serde_json::from_str(event).expect("a valid SQS event");
    let options =
        Options::from_vars(|name| env.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()))
            .expect("the fixture's options");
    let response = handle_event(
        &Arc::new(e2e::build().await.expect("the test function builds")),
        &options,
        LambdaEvent::new(event, Context::default()),
    )
    .await
    .expect("fixtures have message ids");
    serde_json::to_value(response).expect("serialises")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_gets_the_same_answer_in_process_from_our_runtime_api_and_from_aws_rie() {
    let bootstrap = bootstrap_bin();
    let servers = CancellationToken::new();
    // The fixtures' queues are not real: the bootstraps set no visibility (RETRY_BACKOFF_SECS=0).
    // What the back-off does is checked on real queues below.
    let start = |extra: &[(&str, &str)]| {
        let (mut spec, mapping) = lambda_spec("standard");
        let mut env = vec![("RETRY_BACKOFF_SECS", "0")];
        env.extend_from_slice(extra);
        for (name, value) in &env {
            spec.environment.insert((*name).to_owned(), (*value).to_owned());
        }
        (LambdaPool::new(spec, mapping.max_concurrency, servers.clone()), Rie::start(&bootstrap, &env))
    };

    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(repo_root().join("tests/events"))
        .expect("tests/events/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 6, "the fixtures are there");
    for fixture in fixtures {
        let env = fixture_env(&fixture);
        let (pool, rie) = start(env);
        let event = std::fs::read_to_string(&fixture).expect("readable");
        let expected = in_process(&event, env).await;
        let ours = pool.invoke(event.clone().into()).await.expect("invoked").expect("no function error");
        let ours: Value = serde_json::from_slice(&ours).expect("JSON answer");
        let aws = rie.invoke(&event).await;
        assert_eq!(ours, expected, "{}: our Runtime API vs in process", fixture.display());
        assert_eq!(aws, expected, "{}: AWS's RIE vs in process", fixture.display());
    }
    servers.cancel();
}

#[tokio::test]
async fn every_fixture_has_its_expected_response_on_file() {
    // tests/events/responses/ is what scripts/sam-local.sh asks of the sam-built test function.
    let events = repo_root().join("tests/events");
    let mut checked = 0;
    for entry in std::fs::read_dir(&events).expect("tests/events/") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).expect("a name").to_owned();
        let expected = std::fs::read_to_string(events.join("responses").join(&name))
            .unwrap_or_else(|_| panic!("tests/events/responses/{name} is missing"));
        let expected: Value = serde_json::from_str(&expected).expect("JSON");
        let event = std::fs::read_to_string(&path).expect("readable");
        assert_eq!(in_process(&event, fixture_env(&path)).await, expected, "{name}");
        checked += 1;
    }
    assert!(checked >= 5, "the fixtures are there: {checked}");
}

/// Drains the same messages from two fresh queue pairs, one in process and one through the
/// bootstrap; returns (deleted, DLQ bodies) of each, after checking both source queues are empty.
async fn drain_both_ways(
    fifo: bool,
    groups: &[(&str, Vec<String>)],
    max_receive: u32,
) -> [(u64, Vec<String>); 2] {
    let client = support::client().await;
    let local = queue_pair(&client, "parity-local", fifo, 1, max_receive).await;
    let lambda = queue_pair(&client, "parity-lambda", fifo, 1, max_receive).await;
    for (group, bodies) in groups {
        let group = fifo.then_some(*group);
        send(&client, &local.url, bodies, group).await;
        send(&client, &lambda.url, bodies, group).await;
    }
    // Each kind of queue through the function of its own stack, as `--lambda --batching-window 0`
    // runs it (a window only slows this drain down).
    let (spec, mut mapping) = lambda_spec(if fifo { "fifo" } else { "standard" });
    mapping.batching_window = std::time::Duration::ZERO;
    let handler = Arc::new(e2e::build().await.expect("the test function builds"));
    let (in_process, through_bootstrap) = tokio::join!(
        local_runner::run(
            runner_config(&local.url, 3),
            InProcess::new(handler, Options::default()),
            CancellationToken::new()
        ),
        local_runner::run(
            runner_config(&lambda.url, 3),
            support::lambda_executor(spec, &mapping),
            CancellationToken::new()
        ),
    );
    let mut ends = Vec::new();
    for (summary, queue) in [(in_process, &local), (through_bootstrap, &lambda)] {
        let summary = summary.expect("a clean idle exit");
        assert_eq!(depth(&client, &queue.url).await, (0, 0), "{} is empty", queue.name);
        let mut dlq = drain_bodies(&client, &queue.dlq_url).await;
        dlq.sort();
        ends.push((summary.deleted, dlq));
    }
    [ends.remove(0), ends.remove(0)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_queue_ends_the_same_in_process_and_through_the_bootstrap() {
    let mut bodies: Vec<String> = (0..25).map(|i| good_body(&format!("m{i}"), 0)).collect();
    bodies.extend([
        "not json".to_owned(),
        r#"{"id":""#.to_owned(),
        r#"{"ms":1}"#.to_owned(),
        r#"{"id":"doomed","fail":"permanent"}"#.to_owned(),
    ]);
    let [local, lambda] = drain_both_ways(false, &[("", bodies)], 2).await;
    assert_eq!(local, lambda);
    assert_eq!(local.0, 25, "every good message deleted");
    assert_eq!(local.1.len(), 4, "every bad message in the DLQ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_queue_with_a_poisoned_group_ends_the_same_in_process_and_through_the_bootstrap() {
    let steady: Vec<String> = (1..=4).map(|i| good_body(&format!("a{i}"), 0)).collect();
    let mut poisoned: Vec<String> = (1..=2).map(|i| good_body(&format!("p{i}"), 0)).collect();
    poisoned.push("poison".to_owned());
    let [local, lambda] = drain_both_ways(true, &[("a", steady), ("p", poisoned)], 2).await;
    assert_eq!(local, lambda);
    assert_eq!(local, (6, vec!["poison".to_owned()]));
}

/// The retry back-off's timeline, measured in seconds: run alone (see .config/nextest.toml).
/// A table the function's `build()` depends on is checked at start: under AWS's RIE a missing one
/// fails the function's init with its `init/error` (Lambda's event source mapping then backs off
/// and no message is received), never message by message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_idempotency_table_fails_the_bootstraps_init_under_aws_rie() {
    let endpoint = support::dynamo::endpoint();
    let missing = support::unique_name("no-such-table");
    let rie = Rie::start(&bootstrap_bin(), &support::dynamo::env(&missing, &endpoint));
    let (status, body) = rie.invoke_raw(r#"{"Records":[]}"#).await;
    assert_eq!(status, 502, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("an error object: {body}"));
    assert_eq!(error["errorType"], "Runtime.HandlerBuildFailed", "{body}");
    let message = error["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains(&missing) && message.contains("does not exist"), "{body}");
}

/// An SQS event of records with these ids and bodies, from a standard queue.
fn sqs_event(records: &[(&str, &str)]) -> String {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            serde_json::json!({
                "messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders", "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

/// The JSON lines the RIE's log holds once `done` says they are all there.
async fn rie_lines(log: &Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    support::eventually(Duration::from_secs(20), "the function's lines in the RIE's log", || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let ready = done(&lines).then_some(lines);
        async move { ready }
    })
    .await
}

/// Powertools' variables, and what the runtime adds to every line, under AWS's own emulator: the
/// handler's metric in one EMF document per invocation (namespace, service, a dimension of its
/// own, `ColdStart` in the first only); the function's fields on every log line; debug lines in a
/// sampled invocation; and `AWS_LAMBDA_LOG_LEVEL` over `POWERTOOLS_LOG_LEVEL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_aws_rie_metrics_are_one_emf_document_per_invocation_and_sampled_invocations_log_debug() {
    let dir = std::env::temp_dir().join(support::unique_name("rie-logs"));
    std::fs::create_dir_all(&dir).expect("a directory for the RIE's logs");
    let log = dir.join("sampled.log");
    let env = [
        ("POWERTOOLS_LOGGER_SAMPLE_RATE", "1"),
        ("POWERTOOLS_LOG_LEVEL", "INFO"),
        ("POWERTOOLS_METRICS_NAMESPACE", "shop"),
        ("POWERTOOLS_SERVICE_NAME", "orders"),
        ("RETRY_BACKOFF_SECS", "0"),
    ];
    let rie = Rie::start_logged(&bootstrap_bin(), &env, &log);
    let ok = |id: &str| format!(r#"{{"id":"{id}"}}"#);
    let bad = r#"{"id":"r-1","fail":"permanent"}"#;
    for invocation in 0..2 {
        let a = format!("a{invocation}");
        let b = format!("b{invocation}");
        let event = sqs_event(&[(&a, &ok(&a)), (&b, &ok(&b)), (&format!("r{invocation}"), bad)]);
        let answer = rie.invoke(&event).await;
        assert_eq!(answer["batchItemFailures"].as_array().map(Vec::len), Some(1), "{answer}");
    }
    let lines = rie_lines(&log, |lines| lines.iter().filter(|l| l.get("_aws").is_some()).count() >= 2).await;
    let documents: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(documents.len(), 2, "one EMF document per invocation");
    for (index, document) in documents.iter().enumerate() {
        let directives = document["_aws"]["CloudWatchMetrics"].as_array().expect("directives");
        assert!(directives.iter().all(|d| d["Namespace"] == "shop"), "{document}");
        assert_eq!(document["service"], "orders");
        let stored: f64 = document["OrdersStored"]
            .as_array()
            .expect("a value a message")
            .iter()
            .filter_map(Value::as_f64)
            .sum();
        assert_eq!(stored, 2.0, "the two that succeeded, not the one that failed: {document}");
        assert_eq!(
            (document["OrdersRejected"].as_f64(), document["kind"].as_str()),
            (Some(1.0), Some("permanent"))
        );
        let rejected =
            directives.iter().find(|d| d["Metrics"][0]["Name"] == "OrdersRejected").expect("its directive");
        assert_eq!(rejected["Dimensions"], serde_json::json!([["service", "kind"]]));
        assert_eq!(document["ColdStart"].as_f64(), (index == 0).then_some(1.0), "{document}");
    }
    let logged: Vec<&Value> = lines.iter().filter(|l| l.get("level").is_some()).collect();
    assert!(logged.iter().any(|l| l["message"] == "handling"), "sampled: debug lines at INFO");
    for line in &logged {
        assert_eq!(
            (
                line["function_name"].as_str(),
                line["function_memory_size"].as_u64(),
                line["function_version"].as_str()
            ),
            (Some("HandlerFunction"), Some(128), Some("$LATEST")),
            "{line}"
        );
        assert_eq!(line["sampling_rate"].as_f64(), Some(1.0), "{line}");
    }
    let cold: Vec<bool> = logged
        .iter()
        .filter(|l| l["message"] == "batch done")
        .map(|l| l["cold_start"].as_bool().expect("a cold_start flag"))
        .collect();
    assert_eq!(cold, [true, false]);
    drop(rie);

    // Powertools' level works alone; Lambda's advanced logging controls win over it.
    for (aws_level, debug_logged) in [(None, true), (Some("INFO"), false)] {
        let log = dir.join(format!("levels-{debug_logged}.log"));
        let mut env = vec![("POWERTOOLS_LOG_LEVEL", "DEBUG"), ("RETRY_BACKOFF_SECS", "0")];
        env.extend(aws_level.map(|level| ("AWS_LAMBDA_LOG_LEVEL", level)));
        let rie = Rie::start_logged(&bootstrap_bin(), &env, &log);
        rie.invoke(&sqs_event(&[("m", &ok("m"))])).await;
        let lines = rie_lines(&log, |lines| lines.iter().any(|l| l["message"] == "batch done")).await;
        assert_eq!(
            lines.iter().any(|l| l["message"] == "handling"),
            debug_logged,
            "AWS_LAMBDA_LOG_LEVEL={aws_level:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A debug sampling rate that cannot be read fails the init in one line naming the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_sampling_rate_fails_the_bootstraps_init_under_aws_rie() {
    let rie = Rie::start(&bootstrap_bin(), &[("POWERTOOLS_LOGGER_SAMPLE_RATE", "often")]);
    let (status, body) = rie.invoke_raw(r#"{"Records":[]}"#).await;
    assert_eq!(status, 502, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("an error object: {body}"));
    assert_eq!(error["errorType"], "Runtime.InvalidOptions", "{body}");
    assert!(
        error["errorMessage"].as_str().is_some_and(|m| m.starts_with("POWERTOOLS_LOGGER_SAMPLE_RATE=often")),
        "{body}"
    );
}

mod timing {
    use super::*;

    /// A message that fails every time, and its attempts' (end time, receive count) one way.
    type Attempts = Vec<(Duration, u64)>;

    /// Checks one way's timeline: receives 1 to 4 (maxReceiveCount 4), 1 s, 2 s and 4 s apart
    /// (RETRY_BACKOFF_SECS=1, doubling), each gap give or take a receive's latency. The queue's own
    /// timeout is 30 s: a way that left the failure to it would see one attempt in the test's time.
    fn assert_backoff_timeline(way: &str, attempts: &Attempts) {
        let counts: Vec<u64> = attempts.iter().map(|(_, count)| *count).collect();
        assert_eq!(counts, [1, 2, 3, 4], "{way}: one attempt per receive ({attempts:?})");
        let gaps: Vec<f64> = attempts.windows(2).map(|w| (w[1].0 - w[0].0).as_secs_f64()).collect();
        for (gap, expected) in gaps.iter().zip([1.0, 2.0, 4.0]) {
            assert!(*gap >= expected * 0.9 && *gap < expected + 3.0, "{way}: gaps {gaps:?}");
        }
    }

    /// The event source mapping played by hand around AWS's RIE: receive, invoke, delete what the
    /// response does not list; the function sets the failures' visibility itself. Until the message
    /// reached the dead-letter queue.
    async fn through_aws_rie(client: &aws_sdk_sqs::Client, queue: &support::QueuePair) -> Attempts {
        let endpoint = support::endpoint();
        let rie = Rie::start(
            &bootstrap_bin(),
            &[
                ("AWS_ENDPOINT_URL", &endpoint),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", "us-east-1"),
                ("RETRY_BACKOFF_SECS", "1"),
            ],
        );
        let connection = local_runner::aws::Connection::new(Some(endpoint.clone()), "us-east-1");
        let resolved = local_runner::aws::queue::resolve(
            client,
            &local_runner::aws::QueueRef::Url(queue.url.clone()),
            &connection,
        )
        .await
        .expect("the queue");
        let started = std::time::Instant::now();
        let mut attempts = Vec::new();
        while started.elapsed() < Duration::from_secs(45) && depth(client, &queue.dlq_url).await == (0, 0) {
            let received = client
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .expect("ReceiveMessage");
            let records: Vec<sqs_batch::SqsMessage> = received
                .messages
                .unwrap_or_default()
                .into_iter()
                .map(|m| local_runner::aws::records::lambda_record(m, &resolved, "us-east-1"))
                .collect();
            if records.is_empty() {
                continue;
            }
            let mut event = SqsEvent::default();
            event.records.clone_from(&records);
            let response = rie.invoke(&serde_json::to_string(&event).expect("an event")).await;
            let failed: Vec<&str> = response["batchItemFailures"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["itemIdentifier"].as_str())
                .collect();
            for record in &records {
                let count = sqs_batch::runtime::retry::receive_count(record);
                attempts.push((started.elapsed(), u64::from(count)));
                if !failed.contains(&record.message_id.as_deref().unwrap_or_default()) {
                    let handle = record.receipt_handle.as_deref().unwrap_or_default();
                    client
                        .delete_message()
                        .queue_url(&queue.url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete");
                }
            }
        }
        attempts
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_message_has_the_same_timeline_in_process_under_lambda_and_under_aws_rie() {
        let client = support::client().await;
        let body = serde_json::json!({ "id": "timeline", "fail": "transient" }).to_string();
        let mut queues = Vec::new();
        for way in ["timeline-local", "timeline-lambda", "timeline-rie"] {
            let queue = queue_pair(&client, way, false, 30, 4).await;
            send(&client, &queue.url, std::slice::from_ref(&body), None).await;
            queues.push(queue);
        }
        // The same setting both ways: the flag overrides the template's RETRY_BACKOFF_SECS, and under
        // --lambda reaches the function as that variable. The idle exit waits for what is due back.
        // (start_lambda adds the 1 s long polls itself.)
        let common = ["--retry-backoff", "1", "--exit-when-idle", "3"];
        let mut local = support::RunningRunner::start(
            &[&["--queue", &queues[0].url, "--no-template", "--wait-time-seconds", "1"][..], &common]
                .concat(),
        );
        let mut lambda = support::RunningRunner::start_lambda(&queues[1].url, &bootstrap_bin(), &common);
        let rie = through_aws_rie(&client, &queues[2]).await;
        let ((local_code, local_err), (lambda_code, lambda_err)) =
            tokio::join!(local.exit(Duration::from_secs(90)), lambda.exit(Duration::from_secs(90)));
        assert_eq!(local_code, Some(0), "{local_err}");
        assert_eq!(lambda_code, Some(0), "{lambda_err}");
        assert_backoff_timeline("in process", &local.attempts("timeline"));
        assert_backoff_timeline("--lambda", &lambda.attempts("timeline"));
        assert_backoff_timeline("AWS's RIE", &rie);
        for queue in &queues {
            assert_eq!(depth(&client, &queue.url).await, (0, 0), "{}: nothing left behind", queue.name);
            let dead = drain_bodies(&client, &queue.dlq_url).await;
            assert_eq!(dead, std::slice::from_ref(&body), "{}: in the DLQ", queue.name);
        }
    }
}
