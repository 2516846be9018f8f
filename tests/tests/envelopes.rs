//! Messages as they really arrive, from LocalStack's own SNS, EventBridge and S3: a topic
//! subscribed to the queue (raw delivery on and off), an EventBridge rule targeting it, a bucket
//! notifying it. The test function reads each through `sqs_batch`'s envelopes (`e2e::arrived`),
//! in process and in the bootstrap under `--lambda`; the fixtures of `tests/events/` run the same
//! envelopes in memory and under AWS's RIE (`lambda_parity.rs`).

mod support;

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use support::{RunningRunner, bootstrap_bin, depth, drain_bodies, queue_pair, template_path, unique_name};

fn sdk_config() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(support::endpoint())
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
            aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "e2e"),
        ))
        .build()
}

/// Feeds `queue_arn` from each source, the way production wires them: two SNS topics (one with
/// raw delivery), an EventBridge rule, an S3 bucket's notification. Returns how many messages
/// that puts on the queue: S3 sends its test event first, then the object's notification.
async fn publish_from_every_source(queue_arn: &str) -> u64 {
    let config = sdk_config();
    let sns = aws_sdk_sns::Client::new(&config);
    let topic = |name: String| {
        let sns = sns.clone();
        async move { sns.create_topic().name(name).send().await.expect("CreateTopic").topic_arn.expect("an ARN") }
    };
    let wrapped = topic(unique_name("envelope-topic")).await;
    let raw = topic(unique_name("envelope-raw")).await;
    sns.subscribe().topic_arn(&wrapped).protocol("sqs").endpoint(queue_arn).send().await.expect("Subscribe");
    sns.subscribe()
        .topic_arn(&raw)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .expect("Subscribe raw");
    let publish = |topic: String, message: &'static str| {
        let sns = sns.clone();
        async move {
            sns.publish()
                .topic_arn(topic)
                .message(message)
                .subject("envelopes")
                .send()
                .await
                .expect("Publish")
        }
    };
    publish(wrapped.clone(), r#"{"id":"sns-1"}"#).await;
    publish(wrapped, "not json").await;
    publish(raw, r#"{"id":"sns-raw-1"}"#).await;

    let events = aws_sdk_eventbridge::Client::new(&config);
    let rule = unique_name("envelope-rule");
    let source = unique_name("com.example.orders");
    events
        .put_rule()
        .name(&rule)
        .event_pattern(json!({ "source": [source] }).to_string())
        .send()
        .await
        .expect("PutRule");
    let target =
        aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().expect("a target");
    events.put_targets().rule(&rule).targets(target).send().await.expect("PutTargets");
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(source)
        .detail_type("OrderPlaced")
        .detail(r#"{"id":"eb-1"}"#)
        .build();
    let put = events.put_events().entries(entry).send().await.expect("PutEvents");
    assert_eq!(put.failed_entry_count, 0, "{put:?}");

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build(),
    );
    let bucket = unique_name("envelopes").to_lowercase();
    s3.create_bucket().bucket(&bucket).send().await.expect("CreateBucket");
    let queue = aws_sdk_s3::types::QueueConfiguration::builder()
        .queue_arn(queue_arn)
        .events(aws_sdk_s3::types::Event::S3ObjectCreated)
        .build()
        .expect("a queue configuration");
    let notification =
        aws_sdk_s3::types::NotificationConfiguration::builder().queue_configurations(queue).build();
    s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(notification)
        .send()
        .await
        .expect("PutBucketNotificationConfiguration");
    s3.put_object()
        .bucket(&bucket)
        .key("s3-1.json")
        .body(b"{}".to_vec().into())
        .send()
        .await
        .expect("PutObject");
    6
}

/// Waits until `n` messages are on the queue: SNS, EventBridge and S3 deliver on their own time.
async fn wait_for_messages(client: &aws_sdk_sqs::Client, url: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (visible, _) = depth(client, url).await;
        if visible >= n {
            return;
        }
        assert!(Instant::now() < deadline, "only {visible} of {n} messages arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn outcome_lines(runner: &RunningRunner) -> Vec<Value> {
    let lines = runner.lines.lock().expect("lines");
    lines.iter().filter(|l| l["outcome"].is_string()).cloned().collect()
}

/// Every source's message reaches the handler typed; the S3 test event is ignored; the SNS
/// message that is not JSON fails, naming the envelope and the field.
async fn assert_every_source_arrives(extra: &[&str], in_process: bool) {
    let client = support::client().await;
    let queue = queue_pair(&client, "envelopes", false, 30, 1).await;
    let arn = support::attribute(&client, &queue.url, QueueAttributeName::QueueArn).await;
    let sent = publish_from_every_source(&arn).await;
    wait_for_messages(&client, &queue.url, sent).await;

    let mut args = vec!["--queue", queue.url.as_str(), "--wait-time-seconds", "1", "--exit-when-idle", "2"];
    args.extend_from_slice(extra);
    let mut runner = RunningRunner::start(&args);
    let (code, stderr) = runner.exit(Duration::from_secs(120)).await;
    assert_eq!(code, Some(0), "{stderr}");

    let lines = outcome_lines(&runner);
    let outcome = |id: &str| lines.iter().find(|l| l["id"] == id).map(|l| l["outcome"].clone());
    for id in ["sns-1", "sns-raw-1", "eb-1", "s3-1.json"] {
        assert_eq!(outcome(id), Some(json!("ok")), "{id}: {lines:#?}");
    }
    let ignored: Vec<&Value> = lines.iter().filter(|l| l["outcome"] == "ignored").collect();
    assert_eq!(ignored.len(), 1, "{lines:#?}");
    assert!(ignored[0]["reason"].as_str().is_some_and(|r| r.contains("s3:TestEvent")), "{ignored:?}");
    let failed: Vec<&Value> = lines.iter().filter(|l| l["outcome"] == "failed").collect();
    assert!(!failed.is_empty(), "{lines:#?}");
    assert!(
        failed.iter().all(|l| l["error"]
            .as_str()
            .is_some_and(|e| e.contains("SNS envelope, in `Message`: not valid JSON"))),
        "{failed:#?}"
    );
    if in_process {
        assert_eq!(depth(&client, &queue.url).await, (0, 0));
        let dead = drain_bodies(&client, &queue.dlq_url).await;
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert!(dead[0].contains("\"Message\"") && dead[0].contains("not json"), "{dead:?}");
    }
    // The same counts in both modes: under --lambda, the function's own `batch done` counts.
    let summary = runner.summary().expect("a summary");
    assert_eq!((summary["ignored"].as_u64(), summary["succeeded"].as_u64()), (Some(1), Some(4)), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_eventbridge_and_s3_deliver_typed_messages_in_process() {
    assert_every_source_arrives(&["--no-template"], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_eventbridge_and_s3_deliver_typed_messages_to_the_bootstrap_under_lambda() {
    let bootstrap = bootstrap_bin().display().to_string();
    let template = template_path("standard").display().to_string();
    assert_every_source_arrives(
        &["--lambda", &bootstrap, "--template", &template, "--batching-window", "0"],
        false,
    )
    .await;
}

/// A FIFO topic's notifications into a FIFO queue (raw delivery off): read as `Sns<T>` in their
/// group's order, none failed. LocalStack's notification is read here whatever it signs; the shape
/// AWS documents (a `SequenceNumber`, no `Signature`) is the unit test
/// `envelope::tests::a_fifo_topics_notification_without_a_signature_is_read_with_its_sequence_number`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_topics_notifications_reach_a_fifo_queue_and_are_handled_in_order() {
    let client = support::client().await;
    let queue = queue_pair(&client, "sns-fifo", true, 30, 2).await;
    let arn = support::attribute(&client, &queue.url, QueueAttributeName::QueueArn).await;
    let sns = aws_sdk_sns::Client::new(&sdk_config());
    let topic = sns
        .create_topic()
        .name(format!("{}.fifo", unique_name("orders")))
        .attributes("FifoTopic", "true")
        .attributes("ContentBasedDeduplication", "true")
        .send()
        .await
        .expect("CreateTopic (FIFO)")
        .topic_arn
        .expect("an ARN");
    sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(&arn).send().await.expect("Subscribe");
    let ids: Vec<String> = (0..3).map(|i| format!("sns-fifo-{i}")).collect();
    for id in &ids {
        sns.publish()
            .topic_arn(&topic)
            .message(json!({ "id": id }).to_string())
            .message_group_id("g")
            .send()
            .await
            .expect("Publish (FIFO)");
    }
    wait_for_messages(&client, &queue.url, 3).await;
    let body = drain_peek(&client, &queue.url).await;
    assert!(body.contains("\"SequenceNumber\""), "a FIFO notification: {body}");

    let mut runner = RunningRunner::start(&[
        "--queue",
        &queue.url,
        "--no-template",
        "--wait-time-seconds",
        "1",
        "--exit-when-idle",
        "2",
    ]);
    let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let handled: Vec<String> = outcome_lines(&runner)
        .iter()
        .filter(|l| l["outcome"] == "ok")
        .filter_map(|l| l["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(handled, ids, "every notification handled, in order");
    assert_eq!(depth(&client, &queue.url).await, (0, 0));
    assert!(drain_bodies(&client, &queue.dlq_url).await.is_empty(), "nothing in the DLQ");
}

/// One message's body, left on the queue (visible again at once).
async fn drain_peek(client: &aws_sdk_sqs::Client, url: &str) -> String {
    let received =
        client.receive_message().queue_url(url).visibility_timeout(0).send().await.expect("Receive");
    received.messages().first().and_then(|m| m.body()).unwrap_or_default().to_owned()
}
