//! Bodies too large for SQS, the SQS Extended Client's way, on LocalStack's S3: `up` creates the
//! template's payload bucket, `send --payload-bucket` keeps a 1 MiB body there and sends the
//! pointer, and the test function's `LargePayloads` layer reads it whole (the message checks its
//! own length), in process and in the bootstrap under `--lambda`. The object is deleted once its
//! message succeeded, and kept when it failed.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{RunningRunner, bootstrap_bin, depth, drain_bodies, unique_name};

/// The padding that makes a body of about 1 MiB.
const PAD: usize = 1024 * 1024;

fn s3() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(support::endpoint())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "e2e"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let listed = s3.list_objects_v2().bucket(bucket).send().await.expect("ListObjectsV2");
    listed.contents().iter().filter_map(|object| object.key().map(str::to_owned)).collect()
}

fn template() -> String {
    support::template_path("large-payloads").display().to_string()
}

/// `local-runner up` for `queue` and the template's payload bucket named `bucket`: its output.
fn up(queue: &str, bucket: &str) -> String {
    let overrides = format!("PayloadBucketName={bucket}");
    let template = template();
    let endpoint = support::endpoint();
    runner(&[
        "up",
        "--queue",
        queue,
        "--endpoint-url",
        &endpoint,
        "--template",
        &template,
        "--parameter-overrides",
        &overrides,
    ])
}

/// Drains `url` until idle, the payload bucket `bucket`: in process, or under `--lambda` with the
/// template's bucket parameter. Returns the outcome lines.
async fn drain_with_bucket(url: &str, bucket: &str, lambda: bool) -> Vec<Value> {
    let (bootstrap, template) = (bootstrap_bin().display().to_string(), template());
    let overrides = format!("PayloadBucketName={bucket}");
    let mut args = vec!["--queue", url, "--wait-time-seconds", "1", "--exit-when-idle", "2"];
    if lambda {
        args.extend(["--lambda", &bootstrap, "--template", &template, "--parameter-overrides", &overrides]);
        args.extend(["--batching-window", "0"]);
    } else {
        args.push("--no-template");
    }
    let mut runner = RunningRunner::start_with_env(&args, &[("PAYLOAD_BUCKET", bucket)]);
    let (code, stderr) = runner.exit(Duration::from_secs(120)).await;
    assert_eq!(code, Some(0), "{stderr}");
    runner.lines.lock().expect("lines").iter().filter(|l| l["outcome"].is_string()).cloned().collect()
}

/// `local-runner <args>`, which must succeed; its stdout.
fn runner(args: &[&str]) -> String {
    let output =
        std::process::Command::new(support::runner_bin()).args(args).output().expect("run local-runner");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{args:?}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// Creates the queue and the bucket with `up`, sends a large body that succeeds and one that
/// fails with `send --payload-bucket`, and drains the queue, in process or under `--lambda`
/// (the function's `PAYLOAD_BUCKET` from the template's parameter).
async fn a_large_body_arrives_whole(lambda: bool) {
    let client = support::client().await;
    let s3 = s3();
    let (bucket, queue) = (unique_name("payloads").to_lowercase(), unique_name("large"));
    let endpoint = support::endpoint();
    let up = up(&queue, &bucket);
    assert!(up.contains(&format!("bucket {bucket} at")), "{up}");
    assert!(keys(&s3, &bucket).await.is_empty());

    let (ok, failing) = (unique_name("big-ok"), unique_name("big-fail"));
    let pad = "x".repeat(PAD);
    let bodies = [
        json!({ "id": ok, "pad": pad, "pad_len": PAD }).to_string(),
        json!({ "id": failing, "pad": pad, "pad_len": PAD, "fail": "permanent" }).to_string(),
        json!({ "id": unique_name("small") }).to_string(),
    ];
    let file = std::env::temp_dir().join(format!("{}.jsonl", unique_name("large-bodies")));
    std::fs::write(&file, bodies.join("\n")).expect("write the bodies");
    let url = format!("{endpoint}/000000000000/{queue}");
    let sent = runner(&[
        "send",
        "--queue",
        &url,
        "--endpoint-url",
        &endpoint,
        "--file",
        &file.display().to_string(),
        "--payload-bucket",
        &bucket,
    ]);
    let _ = std::fs::remove_file(&file);
    assert!(sent.contains(&format!("sent 3 messages to {url} (2 kept in S3 bucket {bucket})")), "{sent}");
    assert_eq!(keys(&s3, &bucket).await.len(), 2, "one object per large body");

    let lines = drain_with_bucket(&url, &bucket, lambda).await;
    let ok_lines = lines.iter().filter(|l| l["outcome"] == "ok").count();
    assert_eq!(ok_lines, 2, "the large body and the small one: {lines:#?}");
    // A body read from S3 is logged with the handler's id, as any other.
    assert!(lines.iter().any(|l| l["outcome"] == "ok" && l["id"] == ok.as_str()), "{lines:#?}");
    assert!(lines.iter().any(|l| l["outcome"] == "failed" && l["id"] == failing.as_str()), "{lines:#?}");
    let failed: Vec<&Value> = lines.iter().filter(|l| l["outcome"] == "failed").collect();
    assert!(!failed.is_empty(), "{lines:#?}");
    for line in &failed {
        let error = line["error"].as_str().unwrap_or_default();
        assert!(error.contains("can never succeed"), "read whole, then failed as asked: {line}");
        assert!(!error.contains("pad is"), "arrived whole: {line}");
    }
    // The succeeded message's object is gone; the failed one's stays for its redelivery.
    let left = keys(&s3, &bucket).await;
    assert_eq!(left.len(), 1, "{left:?}");
    if !lambda {
        assert_eq!(depth(&client, &url).await, (0, 0));
        let dead = drain_bodies(&client, &format!("{url}-dlq")).await;
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert!(
            dead[0].contains("PayloadS3Pointer") && dead[0].contains(&left[0]),
            "the pointer to the kept object: {dead:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_mib_body_sent_with_send_arrives_whole_in_process_and_only_a_succeeded_ones_object_is_deleted()
{
    a_large_body_arrives_whole(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_mib_body_arrives_whole_in_the_bootstrap_under_lambda_from_the_templates_bucket() {
    a_large_body_arrives_whole(true).await;
}

/// Sends `body` with AWS's SQS Extended Client for Python (`scripts/extended-client.sh` installs
/// it), always through S3: its current pointer, or with `use_legacy_attribute` the Java 1.x class
/// name and `SQSLargePayloadSize`.
fn send_with_pythons_extended_client(queue_url: &str, bucket: &str, body: &str, legacy: bool) {
    let root = support::repo_root();
    let mut command = std::process::Command::new(root.join("scripts/extended-client.sh"));
    // The body on stdin: a large one is longer than an argument may be.
    command.arg(root.join("tests/extended-client/send.py")).args([queue_url, bucket]);
    if legacy {
        command.arg("--legacy");
    }
    let mut child = command
        .env("AWS_ENDPOINT_URL", support::endpoint())
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the Extended Client");
    std::io::Write::write_all(&mut child.stdin.take().expect("piped"), body.as_bytes()).expect("the body");
    let output = child.wait_with_output().expect("the Extended Client ends");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Both pointers AWS's Python client sends (current, and legacy as Java's 1.x client does) are
/// read whole and handled, each outcome line carries the handler's id, and each object is deleted
/// once its message succeeded.
async fn pythons_extended_client_is_read_in_both_modes(lambda: bool) {
    let client = support::client().await;
    let s3 = s3();
    let (bucket, queue) = (unique_name("py-payloads").to_lowercase(), unique_name("py-large"));
    let endpoint = support::endpoint();
    up(&queue, &bucket);
    let url = format!("{endpoint}/000000000000/{queue}");
    let (current, legacy) = (unique_name("py-current"), unique_name("py-legacy"));
    let pad = "y".repeat(300 * 1024);
    for (id, is_legacy) in [(&current, false), (&legacy, true)] {
        let body = json!({ "id": id, "pad": pad, "pad_len": pad.len() }).to_string();
        send_with_pythons_extended_client(&url, &bucket, &body, is_legacy);
    }
    assert_eq!(keys(&s3, &bucket).await.len(), 2, "both bodies are in S3");

    let lines = drain_with_bucket(&url, &bucket, lambda).await;
    for id in [&current, &legacy] {
        let line =
            lines.iter().find(|l| l["id"] == id.as_str()).unwrap_or_else(|| panic!("{id}: {lines:#?}"));
        assert_eq!(line["outcome"], "ok", "{line}");
    }
    assert!(keys(&s3, &bucket).await.is_empty(), "each object deleted after its success");
    assert_eq!(depth(&client, &url).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pythons_extended_client_current_and_legacy_pointers_are_read_in_process() {
    pythons_extended_client_is_read_in_both_modes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pythons_extended_client_current_and_legacy_pointers_are_read_under_lambda() {
    pythons_extended_client_is_read_in_both_modes(true).await;
}
