//! The Lambda function: the example handler behind an SQS event source mapping.
//!
//! Environment (read here, at the edge):
//! - `HANDLER_CONCURRENCY`: messages handled at once within one batch (default 10);
//! - `DEADLINE_RESERVE_MS`: with less than this left before the invocation's deadline, no
//!   further message starts; those are reported failed (default 1000);
//! - `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`: log filter (default `info`). Logs are JSON lines.

use std::num::NonZeroUsize;
use std::time::Duration;

use handler::ExampleHandler;
use handler::lambda::{FunctionOptions, handle_sqs_event};
use handler::telemetry::{self, LogFormat};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).ok();
    telemetry::init(LogFormat::Json, filter.as_deref());

    let mut options = FunctionOptions::default();
    if let Ok(value) = std::env::var("HANDLER_CONCURRENCY") {
        options.batch.max_concurrency = value
            .parse::<NonZeroUsize>()
            .map_err(|_| format!("HANDLER_CONCURRENCY must be a whole number above 0, got {value:?}"))?;
    }
    if let Ok(value) = std::env::var("DEADLINE_RESERVE_MS") {
        let ms = value.parse::<u64>().map_err(|_| {
            format!("DEADLINE_RESERVE_MS must be a whole number of milliseconds, got {value:?}")
        })?;
        options.deadline_reserve = Duration::from_millis(ms);
    }

    let handler = ExampleHandler;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| handle_sqs_event(&handler, options, event))).await
}
