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
use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use sqs_batch::SqsMessage;

pub(crate) use client::https_client;
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

    /// One ReceiveMessage attempt for up to `max` messages (at most 10) waiting up to `wait`,
    /// every system and message attribute included, as Lambda delivers them.
    ///
    /// The received messages stay hidden for the queue's visibility timeout, said explicitly, so
    /// the runner knows when messages of a receive that never answered come back. The SDK does
    /// not retry this call: a retry would hide an attempt that SQS may have answered into a dead
    /// connection, whose messages are then stranded until that timeout. The caller retries, and
    /// learns of every such attempt ([`may_have_reached_sqs`]).
    ///
    /// # Errors
    /// The SDK's error when the attempt fails.
    pub async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Message>, SdkError<ReceiveMessageError>> {
        let max = i32::try_from(max.min(usize::from(MAX_RECEIVE))).unwrap_or(i32::from(MAX_RECEIVE));
        let wait = i32::try_from(wait.as_secs().min(u64::from(MAX_WAIT_SECONDS))).unwrap_or(0);
        let visibility = i32::try_from(self.queue.visibility_timeout.as_secs()).unwrap_or(i32::MAX);
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue.url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait)
            .visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .customize()
            .config_override(aws_sdk_sqs::config::Config::builder().retry_config(RetryConfig::disabled()))
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

/// Whether a failed request may have reached SQS, and SQS may have acted on it: it was sent and
/// no answer came in time (the attempt timed out), or an answer came and could not be read. A
/// connection that was refused, or could not be made in time, never carried the request.
pub fn may_have_reached_sqs<E, R>(err: &SdkError<E, R>) -> bool
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(failure) => {
            let Some(connector) = failure.as_connector_error() else { return false };
            let chain =
                std::iter::successors(Some(connector as &(dyn std::error::Error + 'static)), |e| e.source());
            let refused = chain.filter_map(|e| e.downcast_ref::<std::io::Error>()).any(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
                )
            });
            // A timeout here is the connect timeout; an attempt that timed out after it was sent
            // is a TimeoutError. A user error is a request that could not be built.
            !refused && !connector.is_timeout() && !connector.is_user()
        }
        _ => false,
    }
}

/// The settle entry of a record, if it has a receipt handle (every received message does).
fn entry(record: &SqsMessage, visibility_secs: i32) -> Option<Entry<'_>> {
    Some(Entry { receipt_handle: record.receipt_handle.as_deref()?, visibility_secs })
}
