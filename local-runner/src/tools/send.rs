//! `send`: bodies from a file or a numbered template, in batches of ten.

use std::path::Path;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::sqs_error;
use crate::aws::queue::resolve;
use crate::aws::{Connection, QueueRef};
use crate::error::RunnerError;

/// SendMessageBatch takes at most 10 entries.
const SEND_BATCH: usize = 10;

/// What `send` sends.
#[derive(Debug, Clone)]
pub enum Bodies {
    /// Each non-empty line of a file, as it is.
    Lines(Vec<String>),
    /// `count` bodies from a template whose `{i}` becomes each message's number (0, 1, ...).
    Numbered {
        /// How many.
        count: usize,
        /// The body, with `{i}` where the number goes.
        template: String,
    },
}

impl Bodies {
    /// The non-empty lines of `path`.
    ///
    /// # Errors
    /// [`RunnerError::Read`] when the file cannot be read.
    pub fn from_file(path: &Path) -> Result<Self, RunnerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| RunnerError::Read { path: path.display().to_string(), source })?;
        Ok(Self::Lines(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()))
    }

    fn into_vec(self) -> Vec<String> {
        match self {
            Self::Lines(lines) => lines,
            Self::Numbered { count, template } => {
                (0..count).map(|i| template.replace("{i}", &i.to_string())).collect()
            }
        }
    }
}

/// `send`: sends bodies in batches of ten (FIFO queues: all under `group`).
///
/// # Errors
/// [`RunnerError`] when the queue cannot be found or a batch is refused.
pub async fn send(
    client: &Client,
    connection: &Connection,
    queue: &QueueRef,
    bodies: Bodies,
    group: &str,
) -> Result<usize, RunnerError> {
    let queue = resolve(client, queue, connection).await?;
    let bodies = bodies.into_vec();
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for (chunk_index, chunk) in bodies.chunks(SEND_BATCH).enumerate() {
        let entries = chunk.iter().enumerate().map(|(i, body)| {
            let entry = SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body);
            let entry = if queue.fifo {
                entry.message_group_id(group).message_deduplication_id(format!("{stamp:x}-{chunk_index}-{i}"))
            } else {
                entry
            };
            entry.build()
        });
        let entries = entries.collect::<Result<Vec<_>, _>>().map_err(|e| RunnerError::Sqs {
            operation: "SendMessageBatch",
            queue: queue.url.clone(),
            source: Box::new(e),
        })?;
        let output = client
            .send_message_batch()
            .queue_url(&queue.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs_error("SendMessageBatch", &queue.url, e))?;
        if let Some(failed) = output.failed.first() {
            return Err(RunnerError::Sqs {
                operation: "SendMessageBatch",
                queue: queue.url.clone(),
                source: format!("{}: {}", failed.code(), failed.message().unwrap_or_default()).into(),
            });
        }
    }
    println!("sent {} messages to {}", bodies.len(), queue.url);
    Ok(bodies.len())
}
