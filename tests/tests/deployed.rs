//! The deployed path (scripts/deploy-localstack.sh runs this, after `sam deploy` of template.yaml
//! and template-fifo.yaml to a LocalStack that runs the function with its own event source
//! mapping): the stacks hold what the templates describe, and each scenario ends the same under
//! LocalStack's mapping and under `local-runner --lambda` with the same function binary and the
//! same settings. Each scenario writes its row of the parity table.
//!
//! The messages are the user's own: the bodies of `handler/events/`, whose expected responses in
//! `handler/events/responses/` say which ones fail. So the check follows whatever handler/ holds.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use support::{RunningRunner, depth, drain_bodies, repo_root, runner_bin, unique_name};

/// A deployed stack, as scripts/deploy-localstack.sh describes it.
struct Stack {
    template: String,
    parameters: Vec<String>,
    queue_url: String,
    dlq_url: String,
    function: String,
    bootstrap: PathBuf,
}

fn stack(variant: &str) -> Stack {
    let path = std::env::var("DEPLOYED_STACKS").unwrap_or_else(|_| {
        panic!("DEPLOYED_STACKS is not set: run scripts/deploy-localstack.sh, which deploys the stacks")
    });
    let stacks: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the stacks file")).expect("JSON");
    let stack = &stacks[variant];
    let text = |key: &str| stack[key].as_str().unwrap_or_else(|| panic!("{variant}.{key}")).to_owned();
    Stack {
        template: text("template"),
        parameters: stack["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect(),
        queue_url: text("queue_url"),
        dlq_url: text("dlq_url"),
        function: text("function"),
        bootstrap: PathBuf::from(text("bootstrap")),
    }
}

fn endpoint() -> String {
    std::env::var("DEPLOYED_ENDPOINT").expect("DEPLOYED_ENDPOINT: run scripts/deploy-localstack.sh")
}

/// One request to `service`'s API on LocalStack, by hand (LocalStack routes by the credential
/// scope's service and does not check signatures): the JSON answer.
async fn aws(service: &str, method: &str, path: &str, target: Option<&str>, body: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = endpoint();
    let authority = endpoint.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.expect("LocalStack answers");
    let target = target
        .map(|t| format!("X-Amz-Target: {t}\r\nContent-Type: application/x-amz-json-1.1\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n{target}Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("a request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("an answer");
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    // A chunked answer: the JSON is between the chunk sizes.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body.split("\r\n").enumerate().filter(|(i, _)| i % 2 == 1).map(|(_, c)| c).collect::<String>()
    } else {
        body.to_owned()
    };
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("{method} {path}: {head}\n{body}"))
}

/// The deployed function's log lines, from CloudWatch Logs, in order.
async fn function_logs(function: &str) -> Vec<Value> {
    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = serde_json::json!({ "logGroupName": format!("/aws/lambda/{function}") });
        if let Some(token) = &token {
            request["nextToken"] = Value::from(token.clone());
        }
        let page =
            aws("logs", "POST", "/", Some("Logs_20140328.FilterLogEvents"), &request.to_string()).await;
        for event in page["events"].as_array().into_iter().flatten() {
            lines.extend(
                event["message"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok()),
            );
        }
        match page["nextToken"].as_str() {
            Some(next) if Some(next) != token.as_deref() => token = Some(next.to_owned()),
            _ => return lines,
        }
    }
}

/// A message of the user's events: its body, its group (FIFO), and whether its response lists it.
#[derive(Debug, Clone)]
struct Sample {
    body: String,
    group: Option<String>,
    listed: bool,
}

/// The bodies of `handler/events/` (of FIFO events, or of the others), in order. Records SQS
/// could not carry (no body, or an empty one) are left out.
fn samples(fifo: bool) -> Vec<Sample> {
    let events = repo_root().join("handler/events");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&events)
        .expect("handler/events/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut samples = Vec::new();
    for file in files {
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("an event")).expect("JSON");
        let response: Value = serde_json::from_str(
            &std::fs::read_to_string(events.join("responses").join(file.file_name().expect("a name")))
                .expect("a response"),
        )
        .expect("JSON");
        let listed: Vec<&str> = response["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["itemIdentifier"].as_str())
            .collect();
        for record in event["Records"].as_array().into_iter().flatten() {
            let is_fifo = record["eventSourceARN"].as_str().is_some_and(|a| a.ends_with(".fifo"));
            let Some(body) = record["body"].as_str().filter(|b| !b.is_empty()) else { continue };
            if is_fifo == fifo {
                samples.push(Sample {
                    body: body.to_owned(),
                    group: record["attributes"]["MessageGroupId"].as_str().map(str::to_owned),
                    listed: record["messageId"].as_str().is_some_and(|id| listed.contains(&id)),
                });
            }
        }
    }
    assert!(
        !samples.is_empty(),
        "handler/events/ has {} events to send",
        if fifo { "FIFO" } else { "standard" }
    );
    samples
}

/// Sends the samples in order; returns each message id's body.
async fn send(client: &Client, url: &str, samples: &[Sample]) -> HashMap<String, String> {
    let messages: Vec<(&str, Option<&str>)> =
        samples.iter().map(|s| (s.body.as_str(), s.group.as_deref())).collect();
    let ids = support::send_each(client, url, &messages).await;
    ids.into_iter().zip(samples).map(|(id, sample)| (id, sample.body.clone())).collect()
}

/// Each message's outcomes (`ok`, `failed`, `skipped`), in the order the log lines say, grouped
/// by body: the same body may be sent more than once.
fn outcomes(lines: &[Value], bodies: &HashMap<String, String>) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut by_message: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for line in lines {
        let (Some(id), Some(outcome)) = (line["message_id"].as_str(), line["outcome"].as_str()) else {
            continue;
        };
        if bodies.contains_key(id) {
            by_message.entry(id).or_default().push(outcome.to_owned());
        }
    }
    let mut by_body: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for (id, outcomes) in by_message {
        by_body.entry(bodies[id].clone()).or_default().push(outcomes);
    }
    for messages in by_body.values_mut() {
        messages.sort();
    }
    by_body
}

/// How many messages ended handled successfully.
fn finished(outcomes: &BTreeMap<String, Vec<Vec<String>>>) -> usize {
    outcomes.values().flatten().filter(|o| o.iter().any(|x| x == "ok")).count()
}

/// The bodies handled successfully, in log order, by group.
fn ok_order(
    lines: &[Value],
    bodies: &HashMap<String, String>,
    samples: &[Sample],
) -> BTreeMap<String, Vec<String>> {
    let group_of: HashMap<&str, &str> =
        samples.iter().filter_map(|s| Some((s.body.as_str(), s.group.as_deref()?))).collect();
    let mut order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines.iter().filter(|l| l["outcome"] == "ok") {
        let Some(body) = line["message_id"].as_str().and_then(|id| bodies.get(id)) else { continue };
        let group = group_of.get(body.as_str()).copied().unwrap_or_default();
        order.entry(group.to_owned()).or_default().push(body.clone());
    }
    order
}

/// Waits until the queue holds nothing, visible or hidden.
async fn drained(client: &Client, url: &str, what: &str) {
    support::eventually(Duration::from_secs(150), what, || {
        let (client, url) = (client.clone(), url.to_owned());
        async move { (depth(&client, &url).await == (0, 0)).then_some(()) }
    })
    .await;
}

/// How a scenario ended, one way.
#[derive(Debug, PartialEq)]
struct Ending {
    outcomes: BTreeMap<String, Vec<Vec<String>>>,
    dead_letters: Vec<String>,
    ok_order: BTreeMap<String, Vec<String>>,
    /// Seconds between one failed attempt at a message and the next, from the function's own
    /// log lines: the function's retry back-off, or the queue's visibility timeout.
    retry_gaps: Vec<f64>,
}

/// The gaps between consecutive failed attempts at each message, by the lines' timestamps.
fn retry_gaps(lines: &[Value], bodies: &HashMap<String, String>) -> Vec<f64> {
    let mut failed_at: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for line in lines.iter().filter(|l| l["outcome"] == "failed") {
        let Some(id) = line["message_id"].as_str().filter(|id| bodies.contains_key(*id)) else { continue };
        let Some(at) = line["timestamp"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        failed_at.entry(id).or_default().push(at.timestamp_millis() as f64 / 1000.0);
    }
    let mut gaps = Vec::new();
    for times in failed_at.values_mut() {
        times.sort_by(f64::total_cmp);
        gaps.extend(times.windows(2).map(|w| w[1] - w[0]));
    }
    gaps
}

/// The scenario through `local-runner --lambda`: the same function binary, template and
/// parameters as the deployed stack, on queues of its own made by `up`.
async fn through_local_runner(client: &Client, stack: &Stack, samples: &[Sample]) -> (Ending, Vec<u64>) {
    let template = repo_root().join(&stack.template).display().to_string();
    let name = unique_name("parity");
    let mut up = std::process::Command::new(runner_bin());
    up.args([
        "up",
        "--queue",
        &name,
        "--template",
        &template,
        "--endpoint-url",
        &endpoint(),
        "--parameter-overrides",
    ]);
    let output = up.args(&stack.parameters).output().expect("run up");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let fifo = stack.template.contains("fifo");
    let queue_name = if fifo { format!("{name}.fifo") } else { name.clone() };
    let dlq_name = if fifo { format!("{name}-dlq.fifo") } else { format!("{name}-dlq") };
    let (url, dlq_url) =
        (support::queue_url(client, &queue_name).await, support::queue_url(client, &dlq_name).await);
    let bodies = send(client, &url, samples).await;
    let bootstrap = stack.bootstrap.display().to_string();
    let endpoint = endpoint();
    let mut args = vec![
        "--queue",
        &url,
        "--endpoint-url",
        &endpoint,
        "--lambda",
        &bootstrap,
        "--template",
        &template,
        "--wait-time-seconds",
        "1",
        "--exit-when-idle",
        "6",
        "--parameter-overrides",
    ];
    args.extend(stack.parameters.iter().map(String::as_str));
    let mut runner = RunningRunner::start(&args);
    let (code, stderr) = runner.exit(Duration::from_secs(180)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let lines = runner.lines.lock().expect("not poisoned").clone();
    assert_eq!(depth(client, &url).await, (0, 0), "local-runner drained its queue");
    ending(&lines, &bodies, samples, drain_bodies(client, &dlq_url).await)
}

/// The scenario through the deployed stack and LocalStack's own event source mapping.
async fn deployed(
    client: &Client,
    stack: &Stack,
    samples: &[Sample],
    expected_dead: usize,
) -> (Ending, Vec<u64>) {
    let bodies = send(client, &stack.queue_url, samples).await;
    drained(client, &stack.queue_url, "the deployed queue to be drained").await;
    support::eventually(Duration::from_secs(60), "the dead letters of the deployed queue", || {
        let (client, url) = (client.clone(), stack.dlq_url.clone());
        async move {
            let (visible, hidden) = depth(&client, &url).await;
            (visible + hidden >= expected_dead as u64).then_some(())
        }
    })
    .await;
    // The last invocation's log lines reach CloudWatch Logs just after its answer.
    let lines = support::eventually(Duration::from_secs(30), "the function's last log lines", || async {
        let lines = function_logs(&stack.function).await;
        (finished(&outcomes(&lines, &bodies)) >= samples.len() - expected_dead).then_some(lines)
    })
    .await;
    ending(&lines, &bodies, samples, drain_bodies(client, &stack.dlq_url).await)
}

/// How a scenario ended, from the function's log lines and the dead letters; and the records of
/// each invocation.
fn ending(
    lines: &[Value],
    bodies: &HashMap<String, String>,
    samples: &[Sample],
    mut dead_letters: Vec<String>,
) -> (Ending, Vec<u64>) {
    dead_letters.sort();
    let batches =
        lines.iter().filter(|l| l["message"] == "batch done").filter_map(|l| l["records"].as_u64()).collect();
    let ending = Ending {
        outcomes: outcomes(lines, bodies),
        dead_letters,
        ok_order: ok_order(lines, bodies, samples),
        retry_gaps: retry_gaps(lines, bodies),
    };
    (ending, batches)
}

/// Writes one row of the parity table for scripts/deploy-localstack.sh to print.
fn report(scenario: &str, local: &str, deployed: &str, verdict: &str) {
    let Ok(path) = std::env::var("DEPLOYED_REPORT") else { return };
    let row = format!("| {scenario} | {local} | {deployed} | {verdict} |\n");
    let path = format!("{path}.{}", scenario.split_whitespace().next().unwrap_or("row"));
    std::fs::write(path, row).expect("write the report row");
}

fn same(equal: bool) -> &'static str {
    if equal { "same" } else { "DIFFERENT" }
}

fn summary(ending: &Ending) -> String {
    let ok = finished(&ending.outcomes);
    let mut attempts: Vec<String> = ending
        .outcomes
        .values()
        .flatten()
        .filter(|o| o.iter().all(|x| x != "ok"))
        .map(|o| o.len().to_string())
        .collect();
    attempts.dedup();
    format!(
        "{ok} handled and deleted, {} in the DLQ (failures tried {} times)",
        ending.dead_letters.len(),
        attempts.join("/")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployed_stacks_hold_what_the_templates_describe() {
    let client = support::client().await;
    for variant in ["standard", "fifo"] {
        let stack = stack(variant);
        let overrides: Vec<(String, String)> = stack
            .parameters
            .iter()
            .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        let template =
            local_runner::template::Template::load_with(&repo_root().join(&stack.template), &overrides)
                .expect("the template");
        let function = template.function(None).expect("one function");
        let event = &function.sqs_events[0];
        let queue = template.event_queue(function).expect("its queue");

        let attributes = client
            .get_queue_attributes()
            .queue_url(&stack.queue_url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .expect("the queue")
            .attributes
            .expect("attributes");
        assert_eq!(
            attributes[&QueueAttributeName::VisibilityTimeout],
            queue.visibility_timeout.as_secs().to_string(),
            "{variant}"
        );
        let redrive: Value =
            serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).expect("a redrive policy");
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            queue.redrive.as_ref().expect("redrive").1.to_string()
        );
        let dlq_arn = client
            .get_queue_attributes()
            .queue_url(&stack.dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("the DLQ")
            .attributes
            .expect("attributes")[&QueueAttributeName::QueueArn]
            .clone();
        assert_eq!(
            redrive["deadLetterTargetArn"],
            dlq_arn.as_str(),
            "{variant}: the queue's DLQ is the stack's"
        );
        assert_eq!(
            attributes.get(&QueueAttributeName::FifoQueue).map(String::as_str) == Some("true"),
            queue.fifo,
            "{variant}"
        );

        let configuration = aws(
            "lambda",
            "GET",
            &format!("/2015-03-31/functions/{}/configuration", stack.function),
            None,
            "",
        )
        .await;
        assert_eq!(configuration["Runtime"], "provided.al2023");
        assert_eq!(configuration["Timeout"].as_u64(), Some(function.timeout.as_secs()), "{variant}");
        assert_eq!(configuration["MemorySize"].as_u64(), Some(function.memory_mb), "{variant}");
        for (name, value) in &function.environment {
            assert_eq!(configuration["Environment"]["Variables"][name], value.as_str(), "{variant}: {name}");
        }

        let mappings = aws(
            "lambda",
            "GET",
            &format!("/2015-03-31/event-source-mappings/?FunctionName={}", stack.function),
            None,
            "",
        )
        .await;
        let mappings = mappings["EventSourceMappings"].as_array().expect("mappings");
        assert_eq!(mappings.len(), 1, "{variant}: {mappings:?}");
        let mapping = &mappings[0];
        assert_eq!(
            mapping["EventSourceArn"],
            attributes[&QueueAttributeName::QueueArn].as_str(),
            "{variant}"
        );
        assert_eq!(mapping["BatchSize"].as_u64(), Some(event.batch_size), "{variant}");
        assert_eq!(
            mapping["MaximumBatchingWindowInSeconds"].as_u64().unwrap_or(0),
            event.batching_window.as_secs(),
            "{variant}"
        );
        assert_eq!(
            mapping["ScalingConfig"]["MaximumConcurrency"].as_u64(),
            event.max_concurrency,
            "{variant}"
        );
        let reports = mapping["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures"));
        assert_eq!(reports, event.report_batch_item_failures, "{variant}");
        assert_eq!(mapping["State"], "Enabled", "{variant}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_messages_are_deleted_and_bad_ones_reach_the_dlq_the_same_deployed_and_locally() {
    let client = support::client().await;
    let stack = stack("standard");
    let samples = samples(false);
    let bad = samples.iter().filter(|s| s.listed).count();
    let ((local, local_batches), (cloud, cloud_batches)) = tokio::join!(
        through_local_runner(&client, &stack, &samples),
        deployed(&client, &stack, &samples, bad)
    );
    let mut expected_dead: Vec<String> =
        samples.iter().filter(|s| s.listed).map(|s| s.body.clone()).collect();
    expected_dead.sort();
    report(
        "standard queue: every message of handler/events",
        &summary(&local),
        &summary(&cloud),
        same(local.outcomes == cloud.outcomes && local.dead_letters == cloud.dead_letters),
    );
    // AWS waits out the batching window before it invokes with less than a full batch, and so
    // does local-runner: every message, sent before it starts, is in its first invocation.
    // LocalStack's mapping invokes with whatever one receive returned: reported, not asserted.
    report(
        "batching window of the template (5 s): records per invocation",
        &format!("{local_batches:?}"),
        &format!("{cloud_batches:?}"),
        if local_batches == cloud_batches {
            "same"
        } else {
            "differs: LocalStack does not wait out the window"
        },
    );
    let sent = u64::try_from(samples.len().min(10)).expect("a small count");
    assert_eq!(
        local_batches.first(),
        Some(&sent),
        "local-runner --lambda gathers the whole batch within the window: {local_batches:?}"
    );
    assert_eq!(
        local.dead_letters, expected_dead,
        "local-runner --lambda: exactly the listed messages in the DLQ"
    );
    assert_eq!(
        cloud.dead_letters, expected_dead,
        "LocalStack's mapping: exactly the listed messages in the DLQ"
    );
    assert_eq!(local.outcomes, cloud.outcomes, "each message ends the same way, attempt for attempt");
    // The function sets its failures' visibility before it answers (the user's events fail for
    // good, and the queue has a DLQ: at once; a transient failure: its back-off), so a failure is
    // back within seconds, not after the queue's 30 s visibility timeout: deployed (the function
    // reaching LocalStack's SQS from its container) as under --lambda.
    let longest = |ending: &Ending| ending.retry_gaps.iter().copied().fold(0.0, f64::max);
    report(
        "a failure's next attempt, set by the function (the queue's visibility timeout: 30 s): longest gap",
        &format!("{:.1} s", longest(&local)),
        &format!("{:.1} s", longest(&cloud)),
        if longest(&local) < 15.0 && longest(&cloud) < 15.0 { "same: the function's" } else { "DIFFERENT" },
    );
    for (way, ending) in [("local-runner --lambda", &local), ("LocalStack's mapping", &cloud)] {
        assert!(!ending.retry_gaps.is_empty(), "{way}: failures were retried");
        assert!(
            longest(ending) < 15.0,
            "{way}: the back-off, not the visibility timeout: {:?}",
            ending.retry_gaps
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_stack_keeps_per_group_order_the_same_deployed_and_locally() {
    let client = support::client().await;
    let stack = stack("fifo");
    let samples = samples(true);
    // A message that fails on its own reaches the DLQ; the rest of its group follows it in order.
    let (local, _) = through_local_runner(&client, &stack, &samples).await;
    let (cloud, _) = deployed(&client, &stack, &samples, local.dead_letters.len()).await;
    for (group, handled) in &local.ok_order {
        let sent: Vec<&String> = samples
            .iter()
            .filter(|s| s.group.as_deref() == Some(group.as_str()) && handled.contains(&s.body))
            .map(|s| &s.body)
            .collect();
        assert_eq!(handled.iter().collect::<Vec<_>>(), sent, "group {group}: handled in the order sent");
    }
    let order = |ending: &Ending| {
        ending.ok_order.iter().map(|(g, b)| format!("{g}: {}", b.len())).collect::<Vec<_>>().join(", ")
    };
    report(
        "FIFO queue: every FIFO message of handler/events",
        &format!("{}; handled per group in order ({})", summary(&local), order(&local)),
        &format!("{}; handled per group in order ({})", summary(&cloud), order(&cloud)),
        same(local.ok_order == cloud.ok_order && local.dead_letters == cloud.dead_letters),
    );
    assert_eq!(local.ok_order, cloud.ok_order, "the same order per group");
    assert_eq!(local.dead_letters, cloud.dead_letters, "the same dead letters");
}
