//! Payloads too big for SQS, kept in S3 the way the SQS Extended Client keeps them (Java's
//! `amazon-sqs-java-extended-client-lib`, Python's `amazon-sqs-extended-client`, and their
//! ports): the object holds the body, and the message carries a pointer to it,
//!
//! ```text
//! ["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"...","s3Key":"..."}]
//! ```
//!
//! with the body's size in the `ExtendedPayloadSize` message attribute (`SQSLargePayloadSize`
//! in the clients' first versions, whose pointer was the bare object: read too).
//!
//! [`LargePayloads`] is a layer: the handler inside it sees the body from S3 as if SQS had
//! carried it, parses it, and handles it; once the handler succeeded, and never before, the
//! object is deleted (unless told to keep objects). It must be the outermost layer: its
//! handler's message is a [`Payload`], which only it knows how to finish reading.
//!
//! ```no_run
//! use sqs_batch::large_payload::LargePayloads;
//! use sqs_batch::{Context, Error, HandlerExt, handler_fn};
//!
//! #[derive(serde::Deserialize)]
//! struct Report { id: String, rows: Vec<String> }
//!
//! async fn handle(report: Report, _: Context) -> Result<(), Error> {
//!     println!("{}: {} rows", report.id, report.rows.len());
//!     Ok(())
//! }
//!
//! async fn build() -> Result<impl sqs_batch::Handler, sqs_batch::BoxError> {
//!     // Reads pointers to the bucket `PAYLOAD_BUCKET` names (with it unset, none); a bucket
//!     // that does not exist fails here, at start, not message by message.
//!     Ok(handler_fn(handle).layer(LargePayloads::from_env().await?))
//! }
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsMessage, SqsMessageAttribute};
use serde::Deserialize;

use crate::context::Context;
use crate::error::{BoxError, Error};
use crate::handler::Handler;
use crate::layer::Layer;
use crate::runtime::telemetry::clip;

/// The message attribute the Extended Client puts the body's size in.
pub const SIZE_ATTRIBUTE: &str = "ExtendedPayloadSize";
/// The same attribute as the clients' first versions named it.
pub const LEGACY_SIZE_ATTRIBUTE: &str = "SQSLargePayloadSize";
/// The class name the pointer's first element is.
pub const POINTER_CLASS: &str = "software.amazon.payloadoffloading.PayloadS3Pointer";
/// The class name the Java Extended Client 1.x, and Python's with `use_legacy_attribute`, write
/// instead (with [`LEGACY_SIZE_ATTRIBUTE`]): the same pointer by its first name.
pub const LEGACY_POINTER_CLASS: &str = "com.amazon.sqs.javamessaging.MessageS3Pointer";
/// The variable [`LargePayloads::from_env`] reads the bucket from.
pub const BUCKET_VAR: &str = "PAYLOAD_BUCKET";
/// The largest payload read unless told otherwise: a Lambda function's memory holds it, and the
/// message parsed from it, at once.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The most characters of a bucket or key a failure quotes: they are the producer's text.
const MAX_QUOTED: usize = 100;

/// Where a message's body is: an object in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    /// The bucket.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// The body's size in bytes, as the sender gave it in the message's attribute.
    pub size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PointerBody {
    Tagged(String, PointerFields),
    Bare(PointerFields),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PointerFields {
    s3_bucket_name: String,
    s3_key: String,
}

impl Pointer {
    /// The pointer `record` carries: `None` when it carries its body itself (it has no size
    /// attribute).
    ///
    /// # Errors
    /// [`Error::InvalidBody`] when the record says its body is in S3 but the body is not a
    /// pointer.
    pub fn of(record: &SqsMessage) -> Result<Option<Self>, Error> {
        Self::in_body(record.body.as_deref().unwrap_or_default(), &record.message_attributes)
    }

    /// The pointer a record with these message attributes carries in `body`: as [`Pointer::of`],
    /// for a body already taken out of its record.
    fn in_body(body: &str, attributes: &HashMap<String, SqsMessageAttribute>) -> Result<Option<Self>, Error> {
        let Some(size) = attributes.get(SIZE_ATTRIBUTE).or_else(|| attributes.get(LEGACY_SIZE_ATTRIBUTE))
        else {
            return Ok(None);
        };
        let size = size.string_value.as_deref().and_then(|s| s.trim().parse().ok());
        let invalid = |reason: String| Error::invalid_body(None, format!("large payload pointer: {reason}"));
        let fields = match serde_json::from_str::<PointerBody>(body) {
            Ok(PointerBody::Tagged(class, fields))
                if class == POINTER_CLASS || class == LEGACY_POINTER_CLASS =>
            {
                fields
            }
            Ok(PointerBody::Tagged(class, _)) => {
                return Err(invalid(format!("{:?} is not {POINTER_CLASS}", clip(&class, MAX_QUOTED))));
            }
            Ok(PointerBody::Bare(fields)) => fields,
            Err(_) => {
                return Err(invalid(format!(
                    "the record has {SIZE_ATTRIBUTE} but its body is not [\"{POINTER_CLASS}\", {{\"s3BucketName\": ..., \
                     \"s3Key\": ...}}]"
                )));
            }
        };
        Ok(Some(Self { bucket: fields.s3_bucket_name, key: fields.s3_key, size }))
    }

    /// The body the Extended Client sends in the object's stead.
    #[must_use]
    pub fn body(&self) -> String {
        serde_json::json!([POINTER_CLASS, { "s3BucketName": self.bucket, "s3Key": self.key }]).to_string()
    }
}

/// The layer that reads bodies kept in S3; see the [module](self).
#[derive(Debug, Clone, Default)]
pub struct LargePayloads {
    store: Option<Arc<Store>>,
}

#[derive(Debug)]
struct Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    delete: bool,
    max_bytes: u64,
}

impl LargePayloads {
    /// Reads pointers to `bucket` with `client`, deleting each object once its message was
    /// handled successfully.
    #[must_use]
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        let store = Store { client, bucket: bucket.into(), delete: true, max_bytes: DEFAULT_MAX_BYTES };
        Self { store: Some(Arc::new(store)) }
    }

    /// Reads pointers to the bucket `PAYLOAD_BUCKET` names, with a client of the environment's
    /// configuration (a local endpoint, `AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3`, is addressed
    /// path-style: an emulator's host has no per-bucket names), once [`LargePayloads::check`]
    /// found the bucket. Unset or empty, the layer reads no pointer: a message that carries one
    /// fails, saying so.
    ///
    /// # Errors
    /// The bucket is missing or cannot be reached ([`LargePayloads::check`]): called from a
    /// handler's `build()`, the function then fails its init and `local-runner` stops before its
    /// first receive, instead of every large message failing until it reaches the DLQ.
    pub async fn from_env() -> Result<Self, BoxError> {
        let Some(bucket) = std::env::var(BUCKET_VAR).ok().filter(|b| !b.trim().is_empty()) else {
            return Ok(Self::default());
        };
        let config = crate::sdk::defaults().load().await;
        let overridden = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()));
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_secs(20))
            .operation_timeout(Duration::from_secs(60))
            .build();
        let s3 =
            aws_sdk_s3::config::Builder::from(&config).force_path_style(overridden).timeout_config(timeouts);
        let layer = Self::new(aws_sdk_s3::Client::from_conf(s3.build()), bucket.trim());
        layer.check().await?;
        Ok(layer)
    }

    /// Checks once, at start, that the bucket exists and answers: one `HeadBucket` (it needs
    /// `s3:ListBucket`, which SAM's `S3CrudPolicy` and `S3ReadPolicy` allow). A layer without a
    /// bucket has nothing to check.
    ///
    /// # Errors
    /// One line naming the bucket and what to do: it does not exist, or S3 refused or did not
    /// answer the call.
    pub async fn check(&self) -> Result<(), BoxError> {
        let Some(store) = &self.store else { return Ok(()) };
        let bucket = clip(&store.bucket, 63);
        match store.client.head_bucket().bucket(&store.bucket).send().await {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Err(format!(
                "the payload bucket {bucket:?} ({BUCKET_VAR}) does not exist: create it (`local-runner up` creates \
                 the template's bucket locally) or set {BUCKET_VAR} to a bucket that exists"
            )
            .into()),
            Err(err) => Err(format!(
                "cannot use the payload bucket {bucket:?} ({BUCKET_VAR}): {}",
                aws_sdk_s3::error::DisplayErrorContext(&err)
            )
            .into()),
        }
    }

    /// Leaves each object in place after its message succeeded (a bucket lifecycle rule, or the
    /// sender, deletes them).
    #[must_use]
    pub fn keep_objects(self) -> Self {
        self.with_store(|store| store.delete = false)
    }

    /// Fails (permanently) a payload larger than `bytes` instead of reading it into memory.
    #[must_use]
    pub fn max_size(self, bytes: u64) -> Self {
        self.with_store(|store| store.max_bytes = bytes)
    }

    fn with_store(mut self, change: impl FnOnce(&mut Store)) -> Self {
        if let Some(store) = self.store.take() {
            let mut store = Arc::try_unwrap(store).unwrap_or_else(|shared| Store {
                client: shared.client.clone(),
                bucket: shared.bucket.clone(),
                delete: shared.delete,
                max_bytes: shared.max_bytes,
            });
            change(&mut store);
            self.store = Some(Arc::new(store));
        }
        self
    }
}

impl<H: Handler> Layer<H> for LargePayloads {
    type Service = WithLargePayloads<H>;

    fn layer(&self, inner: H) -> WithLargePayloads<H> {
        WithLargePayloads { inner, store: self.store.clone() }
    }
}

/// The handler [`LargePayloads`] makes.
#[derive(Debug)]
pub struct WithLargePayloads<H> {
    inner: H,
    store: Option<Arc<Store>>,
}

/// A message as [`WithLargePayloads`] first reads it: parsed, or still in S3.
#[derive(Debug)]
pub enum Payload<M> {
    /// The body was in the record: parsed already.
    Inline(M),
    /// The body is in S3: fetched and parsed when the message is handled.
    InS3(Pointer),
}

impl<H: Handler> Handler for WithLargePayloads<H> {
    type Message = Payload<H::Message>;

    fn parse(&self, body: String, context: &Context) -> Result<Self::Message, Error> {
        match Pointer::in_body(&body, context.message_attributes())? {
            Some(pointer) => Ok(Payload::InS3(pointer)),
            None => self.inner.parse(body, context).map(Payload::Inline),
        }
    }

    async fn handle(&self, message: Self::Message, context: Context) -> Result<(), Error> {
        match message {
            Payload::Inline(message) => self.inner.handle(message, context).await,
            // Boxed: what a body from S3 needs while its work runs (the pointer, a copy of the
            // record, S3's calls) would otherwise make every message's task that large, inline
            // bodies' included (BENCHMARKS.md, memory at scale).
            Payload::InS3(pointer) => Box::pin(self.handle_in_s3(pointer, context)).await,
        }
    }

    fn log_id<'m>(&self, message: &'m Self::Message) -> Option<&'m str> {
        match message {
            Payload::Inline(message) => self.inner.log_id(message),
            Payload::InS3(_) => None,
        }
    }
}

impl<H: Handler> WithLargePayloads<H> {
    /// Fetches the body `pointer` names, handles it, and deletes the object once it succeeded.
    async fn handle_in_s3(&self, pointer: Pointer, context: Context) -> Result<(), Error> {
        let Some(store) = &self.store else {
            return Err(Error::permanent(format!(
                "the body is in S3 (bucket {:?}) but this handler reads no bucket: set {BUCKET_VAR}",
                clip(&pointer.bucket, MAX_QUOTED)
            )));
        };
        let body = store.fetch(&pointer).await?;
        let message = self.inner.parse(body, &context)?;
        if let Some(id) = self.inner.log_id(&message) {
            context.set_log_id(id);
        }
        self.inner.handle(message, context).await?;
        if store.delete {
            store.delete(&pointer).await;
        }
        Ok(())
    }
}

impl Store {
    /// The object's text. A pointer to another bucket, an object too large or gone, is a
    /// permanent failure (no retry brings it back); S3 failing to answer is transient.
    async fn fetch(&self, pointer: &Pointer) -> Result<String, Error> {
        let quoted = |text: &str| format!("{:?}", clip(text, MAX_QUOTED));
        if pointer.bucket != self.bucket {
            return Err(Error::permanent(format!(
                "the body is in bucket {}, not in {}, the one this handler reads",
                quoted(&pointer.bucket),
                quoted(&self.bucket)
            )));
        }
        let too_large = |size: u64| {
            Error::permanent(format!(
                "the body in S3 is {size} bytes, more than the {} this handler reads (LargePayloads::max_size)",
                self.max_bytes
            ))
        };
        if let Some(size) = pointer.size.filter(|size| *size > self.max_bytes) {
            return Err(too_large(size));
        }
        let object = self.client.get_object().bucket(&pointer.bucket).key(&pointer.key).send().await;
        let object = match object {
            Ok(object) => object,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Err(Error::permanent(format!(
                    "the body's object {} is gone from {}: deleted after an earlier delivery of this message \
                     succeeded, or expired",
                    quoted(&pointer.key),
                    quoted(&pointer.bucket)
                )));
            }
            Err(error) => return Err(Error::transient(error)),
        };
        let size = object.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        if size > self.max_bytes {
            return Err(too_large(size));
        }
        let bytes = object.body.collect().await.map_err(Error::transient)?.into_bytes();
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            Error::invalid_body(None, "the body kept in S3 is not UTF-8 text, as SQS bodies are")
        })
    }

    /// Deletes the object of a message handled successfully. A failure is logged, not returned:
    /// the work is done, and failing the message would do it again.
    async fn delete(&self, pointer: &Pointer) {
        if let Err(error) = self.client.delete_object().bucket(&pointer.bucket).key(&pointer.key).send().await
        {
            tracing::warn!(
                bucket = %clip(&pointer.bucket, MAX_QUOTED),
                key = %clip(&pointer.key, MAX_QUOTED),
                error = %crate::error::chain_text(&error),
                "the message succeeded but its payload object could not be deleted"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::record;

    fn pointing(body: &str) -> SqsMessage {
        record(body).message_attribute(SIZE_ATTRIBUTE, "1048576").build()
    }

    #[test]
    fn the_extended_clients_pointer_is_read_with_its_size() {
        let body =
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"big","s3Key":"k-1"}]"#;
        let pointer = Pointer::of(&pointing(body)).expect("a pointer").expect("present");
        assert_eq!(pointer, Pointer { bucket: "big".into(), key: "k-1".into(), size: Some(1_048_576) });
        assert_eq!(pointer.body(), body);
    }

    #[test]
    fn the_first_clients_bare_pointer_and_legacy_attribute_are_read_too() {
        let record = record(r#"{"s3BucketName":"big","s3Key":"k-2"}"#)
            .message_attribute(LEGACY_SIZE_ATTRIBUTE, "300000");
        let pointer = Pointer::of(&record.build()).expect("a pointer").expect("present");
        assert_eq!(
            (pointer.bucket.as_str(), pointer.key.as_str(), pointer.size),
            ("big", "k-2", Some(300_000))
        );
    }

    #[test]
    fn the_legacy_pointer_class_of_java_1x_and_pythons_legacy_mode_is_read() {
        // What `amazon-sqs-extended-client` sends with `use_legacy_attribute = True`, and the
        // Java Extended Client 1.x always.
        let body =
            r#"["com.amazon.sqs.javamessaging.MessageS3Pointer",{"s3BucketName":"big","s3Key":"k-3"}]"#;
        let record = record(body).message_attribute(LEGACY_SIZE_ATTRIBUTE, "300000");
        let pointer = Pointer::of(&record.build()).expect("a pointer").expect("present");
        assert_eq!(pointer, Pointer { bucket: "big".into(), key: "k-3".into(), size: Some(300_000) });
    }

    #[test]
    fn a_body_without_the_size_attribute_is_its_own_body_whatever_it_looks_like() {
        let body =
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]"#;
        assert_eq!(Pointer::of(&record(body).build()).expect("no error"), None);
    }

    #[test]
    fn a_size_attribute_with_a_body_that_is_no_pointer_is_an_invalid_body_that_says_so() {
        for body in ["{\"id\":1}", "[\"x.Other\",{\"s3BucketName\":\"b\",\"s3Key\":\"k\"}]", "text"] {
            let Err(Error::InvalidBody { reason, .. }) = Pointer::of(&pointing(body)) else {
                panic!("{body}: an invalid body")
            };
            assert!(reason.starts_with("large payload pointer:"), "{reason}");
        }
    }

    #[tokio::test]
    async fn without_a_bucket_a_pointer_fails_permanently_and_an_inline_body_is_handled() {
        use crate::layer::HandlerExt;
        async fn handle(_: serde_json::Value, _: Context) -> Result<(), Error> {
            Ok(())
        }
        let handler = crate::handler::handler_fn(handle).layer(LargePayloads::default());
        let pointer = pointing(
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]"#,
        );
        let report = crate::testing::run(handler, [pointer, record("{}").build()]).await;
        assert_eq!(report.labels(), ["failed", "ok"]);
        let error = report.error(0).expect("failed");
        assert!(!error.is_retryable() && error.to_string().contains("set PAYLOAD_BUCKET"), "{error}");
    }
}
