//! The dev subcommands: `up` from a template, `send`, `dlq`, `redrive`.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use support::{RunningRunner, depth, runner_bin, template_path};

fn tool(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(runner_bin())
        .args(args)
        .args(["--endpoint-url", &support::endpoint()])
        .output()
        .expect("run");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The URL and every attribute of the queue called `name`.
async fn queue_attributes(
    client: &aws_sdk_sqs::Client,
    name: &str,
) -> (String, HashMap<QueueAttributeName, String>) {
    let url = client.get_queue_url().queue_name(name).send().await.expect("the queue exists").queue_url;
    let url = url.expect("GetQueueUrl answers with a URL");
    let output =
        client.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await;
    (url, output.expect("GetQueueAttributes").attributes.expect("attributes"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_creates_the_queue_and_dlq_that_the_template_describes() {
    let client = support::client().await;
    let name = support::unique_name("up");
    let template = template_path("standard").display().to_string();
    let (code, stdout, stderr) = tool(&["up", "--queue", &name, "--template", &template]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    let (url, attributes) = queue_attributes(&client, &name).await;
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "190", "the template's VisibilityTimeout");
    let policy: serde_json::Value =
        serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(
        policy["maxReceiveCount"].to_string().trim_matches('"'),
        "5",
        "the template's maxReceiveCount"
    );
    assert!(policy["deadLetterTargetArn"].as_str().unwrap().ends_with(&format!("{name}-dlq")));

    let (code, _, stderr) = tool(&["up", "--queue", &name, "--template", &template]);
    assert_eq!(code, Some(0), "running up again succeeds: {stderr}");
    let (again_url, again) = queue_attributes(&client, &name).await;
    let settings = |a: &std::collections::HashMap<QueueAttributeName, String>| {
        [
            QueueAttributeName::VisibilityTimeout,
            QueueAttributeName::RedrivePolicy,
            QueueAttributeName::QueueArn,
        ]
        .map(|name| a.get(&name).cloned())
    };
    assert_eq!(
        (again_url, settings(&again)),
        (url, settings(&attributes)),
        "running up again changes nothing"
    );
    let queues = client.list_queues().queue_name_prefix(&name).send().await.expect("ListQueues").queue_urls;
    assert_eq!(queues.unwrap_or_default().len(), 2, "the queue and its DLQ, no other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_the_fifo_template_creates_a_fifo_queue_and_a_fifo_dlq() {
    let client = support::client().await;
    let name = support::unique_name("up-fifo");
    let template = template_path("fifo").display().to_string();
    let (code, stdout, stderr) = tool(&["up", "--queue", &name, "--template", &template]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    let (url, queue) = queue_attributes(&client, &format!("{name}.fifo")).await;
    assert_eq!(queue[&QueueAttributeName::FifoQueue], "true");
    assert_eq!(queue[&QueueAttributeName::VisibilityTimeout], "180", "the FIFO template's timeout");
    assert_eq!(queue[&QueueAttributeName::ContentBasedDeduplication], "true");
    let policy: serde_json::Value = serde_json::from_str(&queue[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert!(policy["deadLetterTargetArn"].as_str().unwrap().ends_with(&format!("{name}-dlq.fifo")));
    let (_, dlq) = queue_attributes(&client, &format!("{name}-dlq.fifo")).await;
    assert_eq!(dlq[&QueueAttributeName::FifoQueue], "true");

    // Content-based deduplication: a message needs no deduplication id, and the same body sent
    // twice within five minutes is one message.
    for _ in 0..2 {
        client
            .send_message()
            .queue_url(&url)
            .message_group_id("g")
            .message_body("same")
            .send()
            .await
            .unwrap();
    }
    assert_eq!(support::depth(&client, &url).await, (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_brings_dead_letters_back_and_they_are_then_handled() {
    let client = support::client().await;
    let name = support::unique_name("redrive");
    let template = template_path("standard").display().to_string();
    assert_eq!(tool(&["up", "--queue", &name, "--template", &template]).0, Some(0));
    let dlq = format!("{name}-dlq");

    // Dead letters, as if they had failed five times (sent straight to the DLQ).
    let (code, stdout, _) =
        tool(&["send", "--queue", &dlq, "--count", "5", "--body", r#"{"id":"example-{i}"}"#]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("sent 5 messages"), "{stdout}");
    let (code, _, _) = tool(&["send", "--queue", &dlq, "--count", "1", "--body", "not json"]);
    assert_eq!(code, Some(0));

    let (code, stdout, stderr) = tool(&["dlq", "--queue", &name]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(&format!("{dlq}: 6 messages, moved from {name} after")), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("  ") && l.contains(" receives ")).count(),
        6,
        "{stdout}"
    );
    assert!(stdout.contains("example-"), "the start of each body: {stdout}");
    // Why each is there, as far as the handler can tell from the body alone.
    assert_eq!(stdout.matches("why: the body is valid; handling it failed").count(), 5, "{stdout}");
    assert!(stdout.contains("why: invalid body: not valid JSON"), "{stdout}");

    let (code, stdout, stderr) = tool(&["redrive", "--queue", &name]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("moved 6 messages"), "{stdout}");
    let dlq_url = client.get_queue_url().queue_name(&dlq).send().await.unwrap().queue_url.unwrap();
    assert_eq!(depth(&client, &dlq_url).await, (0, 0));

    let mut runner =
        RunningRunner::start(&["--queue", &name, "--wait-time-seconds", "1", "--exit-when-idle", "2"]);
    let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let mut handled = runner.handled_ids();
    handled.sort();
    assert_eq!(handled, ["example-0", "example-1", "example-2", "example-3", "example-4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_takes_one_message_per_line_of_a_file() {
    let client = support::client().await;
    let name = support::unique_name("send-file");
    let url = client.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let path = std::env::temp_dir().join(format!("{name}.jsonl"));
    std::fs::write(&path, "{\"id\":\"a\",\"kind\":\"k\"}\n\n{\"id\":\"b\",\"kind\":\"k\"}\nnot json\n")
        .unwrap();
    let (code, stdout, stderr) = tool(&["send", "--queue", &name, "--file", path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("sent 3 messages"),
        "blank lines are skipped, bad ones sent as they are: {stdout}"
    );
    assert_eq!(depth(&client, &url).await, (3, 0));
}
