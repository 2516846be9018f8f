//! `send`: bodies from a file or a numbered template, in batches of ten; a body too large for SQS
//! kept in S3 with a pointer sent in its stead, as the SQS Extended Client does.

use std::path::Path;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use sqs_batch::large_payload::{Pointer, SIZE_ATTRIBUTE};

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

/// Where `send` keeps bodies larger than `threshold` bytes.
#[derive(Debug, Clone)]
pub struct Offload {
    /// The bucket, on the local S3.
    pub bucket: String,
    /// Bodies above this many bytes go there.
    pub threshold: u64,
}

/// `send`: sends bodies in batches of ten (FIFO queues: all under `group`); with `offload`, each
/// body larger than its threshold goes to its bucket first, and the message is the Extended
/// Client's pointer with the body's size in `ExtendedPayloadSize`.
///
/// # Errors
/// [`RunnerError`] when the queue cannot be found, a batch is refused, or a body cannot be kept
/// in S3.
pub async fn send(
    client: &Client,
    connection: &Connection,
    queue: &QueueRef,
    bodies: Bodies,
    group: &str,
    offload: Option<&Offload>,
) -> Result<usize, RunnerError> {
    let queue = resolve(client, queue, connection).await?;
    let mut bodies: Vec<(String, Option<u64>)> =
        bodies.into_vec().into_iter().map(|body| (body, None)).collect();
    if let Some(offload) = offload {
        offload_large(connection, offload, &mut bodies).await?;
    }
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for (chunk_index, chunk) in bodies.chunks(SEND_BATCH).enumerate() {
        let entries = chunk.iter().enumerate().map(|(i, (body, kept))| {
            let mut entry = SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body);
            if let Some(size) = kept {
                let attribute =
                    MessageAttributeValue::builder().data_type("Number").string_value(size.to_string());
                // A Number attribute with a value: the builder refuses only a missing data type.
                if let Ok(attribute) = attribute.build() {
                    entry = entry.message_attributes(SIZE_ATTRIBUTE, attribute);
                }
            }
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
    let kept = bodies.iter().filter(|(_, kept)| kept.is_some()).count();
    match offload {
        Some(offload) if kept > 0 => {
            println!(
                "sent {} messages to {} ({kept} kept in S3 bucket {})",
                bodies.len(),
                queue.url,
                offload.bucket
            );
        }
        _ => println!("sent {} messages to {}", bodies.len(), queue.url),
    }
    Ok(bodies.len())
}

/// Puts each body larger than the threshold into the bucket under a fresh key, and puts the
/// pointer to it (and its size) in its place.
async fn offload_large(
    connection: &Connection,
    offload: &Offload,
    bodies: &mut [(String, Option<u64>)],
) -> Result<(), RunnerError> {
    let large = |body: &str| u64::try_from(body.len()).map_or(true, |len| len > offload.threshold);
    if !bodies.iter().any(|(body, _)| large(body)) {
        return Ok(());
    }
    let Some((s3, endpoint)) = super::s3_client(connection) else {
        return Err(RunnerError::Usage(
            "send --payload-bucket: no local S3 endpoint (set AWS_ENDPOINT_URL_S3, or --endpoint-url to LocalStack)"
                .into(),
        ));
    };
    for (body, kept) in bodies.iter_mut().filter(|(body, _)| large(body)) {
        let key = format!("{:032x}", fastrand::u128(..));
        let size = u64::try_from(body.len()).unwrap_or(u64::MAX);
        let put = s3
            .put_object()
            .bucket(&offload.bucket)
            .key(&key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await;
        put.map_err(|error| RunnerError::Bucket {
            operation: "PutObject",
            bucket: offload.bucket.clone(),
            endpoint: endpoint.clone(),
            source: error.into(),
        })?;
        *body = Pointer { bucket: offload.bucket.clone(), key, size: Some(size) }.body();
        *kept = Some(size);
    }
    Ok(())
}
