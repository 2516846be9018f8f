//! An Amazon SQS message handler written once and run two ways: as an AWS Lambda function behind
//! an SQS event source mapping (the `bootstrap` binary), and locally by `local-runner`, which
//! long-polls a queue and hands this crate the same Lambda-shaped batches.
//!
//! - [`message`]: the typed message and its validation; [`work`]: what handling it does. These
//!   are the parts a user edits; they know nothing of Lambda or of polling.
//! - [`batch`]: the batch core both runtimes share: bounded concurrency, panics caught, FIFO
//!   groups kept in order and stopped at their first failure, the partial batch response.
//! - [`lambda`]: the Lambda invocation around the batch core.

pub mod batch;
pub mod error;
pub mod lambda;
pub mod message;
pub mod telemetry;
pub mod work;

pub use batch::{BatchOptions, BatchReport, Handler, NotStarted, Outcome, is_fifo, process_batch};
pub use error::HandlerError;
pub use message::Message;
pub use work::ExampleHandler;

/// The SQS record type both runtimes pass in, as Lambda delivers it.
pub use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
