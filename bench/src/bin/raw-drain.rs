//! The ceiling: drains a queue as fast as the SQS client allows, with no handler, no parsing and
//! no bookkeeping: each task receives 10 and deletes them in one batch, forever.
//!
//! `raw-drain <endpoint> <queue-url> [tasks] [all-attributes]`; the bench harness kills it once
//! the queue is empty. With `all-attributes` it asks for every system and message attribute, as
//! the runner does (Lambda delivers them all), which costs the emulator more per receive.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: raw-drain <endpoint> <queue-url> [tasks]";
    let endpoint = args.next().ok_or(usage)?;
    let queue_url = args.next().ok_or(usage)?;
    let tasks: usize = args.next().map_or(Ok(16), |t| t.parse()).map_err(|_| usage)?;
    let all_attributes = args.next().as_deref() == Some("all-attributes");
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "bench"))
        .build();
    let client = Client::from_conf(config);
    let workers = (0..tasks).map(|_| drain(client.clone(), queue_url.clone(), all_attributes));
    futures::future::join_all(workers).await;
    Ok(())
}

async fn drain(client: Client, queue_url: String, all_attributes: bool) {
    loop {
        let mut receive =
            client.receive_message().queue_url(&queue_url).max_number_of_messages(10).wait_time_seconds(1);
        if all_attributes {
            receive = receive
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All");
        }
        let Ok(output) = receive.send().await else {
            continue;
        };
        let entries: Vec<_> = output
            .messages
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle)
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty() {
            let _ =
                client.delete_message_batch().queue_url(&queue_url).set_entries(Some(entries)).send().await;
        }
    }
}
