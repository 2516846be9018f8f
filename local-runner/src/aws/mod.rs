//! Everything that talks to SQS: where it is and the client ([`Connection`]), the queue
//! ([`queue`]), received messages in Lambda's shape ([`records`]), and settling them
//! ([`settle`]). Knows nothing of handlers, polling or Lambda.

mod client;
pub mod queue;
pub mod records;
pub mod settle;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use sqs_batch::SqsMessage;

pub use client::{Connection, is_local_endpoint};
pub use queue::{Queue, QueueRef};
pub use settle::Retries;
use settle::{Entry, Settle, settle};

/// ReceiveMessage returns at most 10 messages per call.
pub const MAX_RECEIVE: u8 = 10;
/// ReceiveMessage long-polls for at most 20 seconds.
pub const MAX_WAIT_SECONDS: u8 = 20;

/// One queue and the client that reaches it: the narrow handle the runner's tasks share.
#[derive(Debug, Clone)]
pub struct Sqs {
    client: Client,
    queue: Arc<Queue>,
}

impl Sqs {
    /// A handle on `queue` through `client`.
    #[must_use]
    pub fn new(client: Client, queue: Queue) -> Self {
        Self { client, queue: Arc::new(queue) }
    }

    /// The queue.
    #[must_use]
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The client.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The same queue through another client (one of another runtime).
    #[must_use]
    pub fn with_client(&self, client: Client) -> Self {
        Self { client, queue: Arc::clone(&self.queue) }
    }

    /// One ReceiveMessage call for up to `max` messages (at most 10) waiting up to `wait`, every
    /// system and message attribute included, as Lambda delivers them.
    ///
    /// # Errors
    /// The SDK's error when the call fails.
    pub async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Message>, SdkError<ReceiveMessageError>> {
        let max = i32::try_from(max.min(usize::from(MAX_RECEIVE))).unwrap_or(i32::from(MAX_RECEIVE));
        let wait = i32::try_from(wait.as_secs().min(u64::from(MAX_WAIT_SECONDS))).unwrap_or(0);
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue.url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?;
        Ok(output.messages.unwrap_or_default())
    }

    /// Deletes `records`, retrying as `retries` allows; returns how many were deleted.
    pub async fn delete(&self, records: &[&SqsMessage], retries: Retries<'_>) -> usize {
        let entries: Vec<Entry<'_>> = records.iter().filter_map(|&r| entry(r, 0)).collect();
        settle(&self.client, &self.queue.url, Settle::Delete, &entries, retries).await
    }

    /// Sets each record's visibility to its number of seconds (0: visible again at once),
    /// retrying as `retries` allows; returns how many were set.
    pub async fn set_visibility(&self, changes: &[(&SqsMessage, i32)], retries: Retries<'_>) -> usize {
        let entries: Vec<Entry<'_>> = changes.iter().filter_map(|&(r, seconds)| entry(r, seconds)).collect();
        settle(&self.client, &self.queue.url, Settle::Visibility, &entries, retries).await
    }

    /// The queue's approximate depth (visible + in flight), if SQS answers.
    pub async fn depth(&self) -> Option<u64> {
        queue::depth(&self.client, &self.queue.url).await
    }
}

/// The settle entry of a record, if it has a receipt handle (every received message does).
fn entry(record: &SqsMessage, visibility_secs: i32) -> Option<Entry<'_>> {
    Some(Entry { receipt_handle: record.receipt_handle.as_deref()?, visibility_secs })
}
