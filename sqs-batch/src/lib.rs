//! Write an Amazon SQS message handler once, run it two ways: as an AWS Lambda function behind an
//! SQS event source mapping ([`lambda::run`]), and locally under `local-runner`, which long-polls a
//! queue and hands the same handler the same Lambda-shaped batches.
//!
//! The smallest handler is one async function; its message type is parsed from the JSON body:
//!
//! ```
//! use sqs_batch::{Context, Error, handler_fn};
//!
//! #[derive(serde::Deserialize)]
//! struct Order { id: String, quantity: u32 }
//!
//! async fn handle(order: Order, context: Context) -> Result<(), Error> {
//!     if order.quantity == 0 {
//!         return Err(Error::permanent("an order of nothing"));
//!     }
//!     tracing::info!(id = %order.id, delivery = context.receive_count(), "stored");
//!     Ok(())
//! }
//!
//! # fn _build() -> impl sqs_batch::Handler {
//! handler_fn(handle).log_id(|order: &Order| order.id.as_str())
//! # }
//! ```
//!
//! - [`Handler`] and [`handler_fn`]: the handler API; [`Context`] is what a handler knows about its
//!   message beside the message (id, receive count, group, attributes, deadline, cancellation);
//!   [`Error`] says what happens to a failed message next.
//! - [`batch`]: the batch core both runtimes share: each message a task, bounded concurrency,
//!   panics caught, FIFO groups kept in order and stopped at their first failure, the deadline
//!   reserve, the partial batch response.
//! - [`lambda`]: the Lambda invocation around the batch core, and the function's `main`.
//! - [`Options`]: the environment variables both runtimes read the same way.

pub mod batch;
mod context;
pub mod emf;
pub mod envelope;
mod error;
mod handler;
pub mod idempotency;
pub mod json;
pub mod lambda;
#[cfg(feature = "s3")]
pub mod large_payload;
pub mod layer;
pub mod metrics;
mod options;
#[cfg(feature = "opentelemetry")]
pub mod otel;
mod requeue;
pub mod retry;
pub mod telemetry;
pub mod testing;
pub mod trace;

pub use batch::{BatchReport, Counts, NotStarted, Outcome, Run, is_fifo, panic_text, process_batch};
pub use context::Context;
pub use envelope::{EventBridge, FromBody, S3, Sns, Text};
pub use error::{BatchError, BoxError, Error, ResultExt};
pub use handler::{Handler, HandlerFn, handler_fn};
pub use layer::{Either, HandlerExt, Layer, Next, from_fn};
pub use options::{
    CONCURRENCY_VAR, DEADLINE_RESERVE_VAR, FAIL_ON_FULL_BATCH_FAILURE_VAR, FIFO_ON_FAILURE_VAR, FifoMode,
    MAX_CONCURRENCY, MAX_DEADLINE_RESERVE_MS, Options, OptionsError,
};
pub use trace::TraceContext;

/// The record and event types both runtimes pass in, as Lambda delivers them.
pub use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
