//! The Lambda function: the example handler behind an SQS event source mapping.
//!
//! Environment (read here, at the edge):
//! - `HANDLER_CONCURRENCY`: messages handled at once within one batch (default 10);
//! - `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`: log filter (default `info`). Logs are JSON lines.

use std::num::NonZeroUsize;

use handler::telemetry::{self, LogFormat};
use handler::{BatchOptions, ExampleHandler, lambda::handle_sqs_event};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).ok();
    telemetry::init(LogFormat::Json, filter.as_deref());

    let mut options = BatchOptions::default();
    if let Ok(value) = std::env::var("HANDLER_CONCURRENCY") {
        options.max_concurrency = value
            .parse::<NonZeroUsize>()
            .map_err(|_| format!("HANDLER_CONCURRENCY must be a whole number above 0, got {value:?}"))?;
    }

    let handler = ExampleHandler;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| handle_sqs_event(&handler, options, event))).await
}
