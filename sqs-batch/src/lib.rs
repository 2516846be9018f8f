//! Write an Amazon SQS message handler once, run it two ways: as an AWS Lambda function behind an
//! SQS event source mapping, and locally under `local-runner`, which long-polls a queue and hands
//! the same handler the same Lambda-shaped batches.
//!
//! ```no_run
//! use sqs_batch::{Context, Error, handler_fn};
//!
//! #[derive(serde::Deserialize)]
//! struct Order { id: String, quantity: u32 }
//!
//! async fn handle(order: Order, context: Context) -> Result<(), Error> {
//!     if order.quantity == 0 {
//!         return Err(Error::permanent("an order of nothing")); // to the DLQ, no retry
//!     }
//!     tracing::info!(id = %order.id, delivery = context.receive_count(), "stored");
//!     Ok(()) // deleted; `?` on any other error retries it after a back-off
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), sqs_batch::BoxError> {
//!     sqs_batch::lambda::run(|| async { Ok(handler_fn(handle)) }).await
//! }
//! ```
//!
//! One message failing fails that message alone: the function answers with a partial batch
//! response, and each failure comes back after its back-off, or goes to the dead-letter queue.
//!
//! # What a handler author uses
//!
//! - **The handler**: [`handler_fn`] (or the [`Handler`] trait), [`Context`] (the message's id,
//!   receive count, group, attributes, deadline, a cancellation signal), [`Error`] (what happens
//!   to a failed message next), [`lambda::run`] (the function's `main`).
//! - **Layers** ([`layer`]): what runs around every message, one line each in `build()`, with
//!   [`from_fn`] or a [`Layer`] of your own.
//! - **Idempotency** ([`idempotency`]): a message's work done once, however often it arrives:
//!   `.layer(Idempotency::new(store).key(|m: &Order| m.id.clone()))`, in memory or in DynamoDB
//!   (feature `dynamodb`).
//! - **Envelopes** ([`envelope`]): SNS notifications, EventBridge events, S3 notifications and
//!   plain text, read by the message's type: `handler_fn(|n: Sns<Order>, _| ..)`.
//! - **Large payloads** ([`large_payload`], feature `s3`): bodies the SQS Extended Client kept in
//!   S3, read whole: `.layer(LargePayloads::from_env().await?)`.
//! - **Telemetry**: every log line of a message carries its correlation fields; your own metrics
//!   ([`metrics`], `context.add_metric("OrdersStored", Unit::Count, 1.0)`) join the invocation's
//!   Embedded Metric Format document; OpenTelemetry spans with the feature `opentelemetry`.
//! - **Testing** ([`testing`]): a handler run on records in memory, its outcomes, answer and
//!   metrics read back, with no queue and no Lambda.
//!
//! ```
//! use sqs_batch::testing::{record, run};
//! # use sqs_batch::{Context, Error, handler_fn};
//! # #[derive(serde::Deserialize)] struct Order { id: String, quantity: u32 }
//! # async fn handle(order: Order, _: Context) -> Result<(), Error> {
//! #     if order.quantity == 0 { return Err(Error::permanent("an order of nothing")); } Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let report = run(handler_fn(handle), [
//!     record(r#"{"id":"a","quantity":2}"#),
//!     record(r#"{"id":"b","quantity":0}"#),
//! ]).await;
//! assert_eq!(report.labels(), ["ok", "failed"]);
//! assert_eq!(report.failed_ids(), ["m1"]);
//! # });
//! ```
//!
//! [`Options`] are the environment variables both runtimes read the same way (concurrency, the
//! deadline reserve, the back-off, FIFO's rule). What only a runtime needs (the batch core, the
//! retry plan, the log setup) is in [`runtime`].
//!
//! # Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `dynamodb` | [`idempotency::dynamodb::DynamoStore`]: idempotency records in DynamoDB |
//! | `s3` | [`large_payload`]: bodies kept in S3 by the SQS Extended Client |
//! | `opentelemetry` | each message's span exported over OTLP/HTTP |
//!
//! With none of them, a function links the SQS client alone (for the back-off).

mod backoff;
mod batch;
mod context;
pub mod envelope;
mod error;
mod handler;
pub mod idempotency;
pub mod json;
pub mod lambda;
#[cfg(feature = "s3")]
pub mod large_payload;
pub mod layer;
mod metric_names;
pub mod metrics;
mod options;
#[cfg(feature = "opentelemetry")]
pub mod otel;
mod requeue;
pub mod runtime;
mod sdk;
pub mod testing;
mod text;
pub mod trace;

pub use batch::{Counts, NotStarted, Outcome};
pub use context::Context;
pub use envelope::{EventBridge, FromBody, S3, Sns, Text};
pub use error::{BatchError, BoxError, Error, ResultExt};
pub use handler::{Handler, HandlerFn, handler_fn};
pub use layer::{Either, HandlerExt, Layer, Next, from_fn};
pub use options::{FifoMode, Options, OptionsError};
pub use trace::TraceContext;

/// The record and event types both runtimes pass in, as Lambda delivers them.
pub use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
