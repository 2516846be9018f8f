//! Queues and messages: a queue with its dead-letter queue, sending, depth, draining.

use super::*;

/// A queue with its dead-letter queue.
pub struct QueuePair {
    pub name: String,
    pub url: String,
    pub dlq_url: String,
}

/// A name no other test (or earlier run) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{}-{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Creates a queue and its DLQ, with a redrive policy after `max_receive_count` receives.
pub async fn queue_pair(
    client: &Client,
    prefix: &str,
    fifo: bool,
    visibility_secs: u32,
    max_receive_count: u32,
) -> QueuePair {
    let suffix = if fifo { ".fifo" } else { "" };
    let name = unique_name(prefix);
    let fifo_attribute =
        |request: aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder| {
            if fifo { request.attributes(QueueAttributeName::FifoQueue, "true") } else { request }
        };
    let dlq_url = fifo_attribute(client.create_queue().queue_name(format!("{name}-dlq{suffix}")))
        .send()
        .await
        .expect("create DLQ")
        .queue_url
        .expect("DLQ URL");
    let dlq_arn = attribute(client, &dlq_url, QueueAttributeName::QueueArn).await;
    let policy = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count });
    let url = fifo_attribute(client.create_queue().queue_name(format!("{name}{suffix}")))
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_secs.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue URL");
    QueuePair { name: format!("{name}{suffix}"), url, dlq_url }
}

/// One attribute of a queue.
pub async fn attribute(client: &Client, url: &str, name: QueueAttributeName) -> String {
    let output = client.get_queue_attributes().queue_url(url).attribute_names(name.clone()).send().await;
    output
        .expect("GetQueueAttributes")
        .attributes
        .and_then(|mut a| a.remove(&name))
        .expect("attribute present")
}

/// (visible, in flight) message counts of a queue.
pub async fn depth(client: &Client, url: &str) -> (u64, u64) {
    let visible = attribute(client, url, QueueAttributeName::ApproximateNumberOfMessages).await;
    let hidden = attribute(client, url, QueueAttributeName::ApproximateNumberOfMessagesNotVisible).await;
    (visible.parse().expect("a count"), hidden.parse().expect("a count"))
}

/// Sends bodies in batches of ten; with `group`, to a FIFO queue under that message group.
pub async fn send(client: &Client, url: &str, bodies: &[String], group: Option<&str>) {
    let messages: Vec<(&str, Option<&str>)> = bodies.iter().map(|body| (body.as_str(), group)).collect();
    send_each(client, url, &messages).await;
}

/// Sends `(body, FIFO group)` pairs in order, in batches of ten; returns their message ids, in
/// the same order.
pub async fn send_each(client: &Client, url: &str, messages: &[(&str, Option<&str>)]) -> Vec<String> {
    let mut ids = Vec::with_capacity(messages.len());
    for (chunk_index, chunk) in messages.chunks(10).enumerate() {
        let entries = chunk.iter().enumerate().map(|(i, (body, group))| {
            let entry = SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(*body);
            let entry = match group {
                Some(group) => entry
                    .message_group_id(*group)
                    .message_deduplication_id(format!("{group}-{chunk_index}-{i}-{}", unique_name("d"))),
                None => entry,
            };
            entry.build().expect("entry has id and body")
        });
        let output = client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries.collect()))
            .send()
            .await
            .expect("SendMessageBatch");
        assert!(output.failed.is_empty(), "send failed: {:?}", output.failed);
        let mut sent: Vec<(usize, String)> =
            output.successful.into_iter().map(|s| (s.id.parse().expect("an index"), s.message_id)).collect();
        sent.sort();
        ids.extend(sent.into_iter().map(|(_, id)| id));
    }
    ids
}

/// The URL of the queue called `name`, which must exist.
pub async fn queue_url(client: &Client, name: impl Into<String>) -> String {
    client.get_queue_url().queue_name(name).send().await.expect("the queue exists").queue_url.expect("a URL")
}

/// A valid test message body: `id`, and `ms` of work.
pub fn good_body(id: &str, ms: u64) -> String {
    e2e::body(id, ms)
}

/// Receives (and so hides for the queue's visibility timeout) everything in a queue; returns the
/// bodies. For dead-letter queues at the end of a test.
pub async fn drain_bodies(client: &Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let output = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        bodies.extend(messages.into_iter().filter_map(|m| m.body));
    }
}
