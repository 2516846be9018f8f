//! The message handler: what arrives ([`message`]) and what is done with it ([`work`]).
//!
//! [`build`] is the one hook both runtimes call, once per process: the Lambda function
//! (`src/bin/bootstrap.rs`) and `local` (`src/bin/local.rs`, run with
//! `cargo local-runner`). Build clients and pools there; the handler it returns serves every
//! message.

pub mod message;
pub mod work;

pub use message::Message;
use sqs_batch::idempotency::{Idempotency, dynamodb::DynamoStore};
use sqs_batch::large_payload::LargePayloads;
use sqs_batch::{BoxError, Handler, HandlerExt, from_fn, handler_fn};

/// Builds the handler, once per process: the work, the producer's id for the log lines, and the
/// layers around it (each one line; the last added runs first).
///
/// Idempotency is on when `IDEMPOTENCY_TABLE` names a DynamoDB table (`template.yaml` sets it):
/// keyed by the producer's `id`, so a re-sent message does its work once, whichever process or
/// Lambda instance gets each copy.
///
/// Large payloads are read when `PAYLOAD_BUCKET` names the bucket the SQS Extended Client keeps
/// them in (`template.yaml` sets it): the body comes from S3, and its object is deleted once the
/// message succeeded. Outermost, so every layer inside sees the whole body.
///
/// # Errors
/// When the table or the bucket named is missing or cannot be reached: the function fails its
/// init (Lambda's event source mapping backs off; no message is taken) and `local-runner` stops
/// with that line before its first receive. A handler's own resources get the same with one call
/// each here (`client.describe_table().table_name(..).send().await?`).
pub async fn build() -> Result<impl Handler, BoxError> {
    let idempotency = DynamoStore::from_env()
        .await?
        .map(|table| Idempotency::new(table).key(|message: &Message| message.id.clone()));
    Ok(handler_fn(work::handle)
        .log_id(|message: &Message| message.id.as_str())
        .layer(from_fn(work::timed))
        .maybe_layer(idempotency)
        .layer(LargePayloads::from_env().await?))
}
