//! `local-runner`: long-polls an SQS queue with concurrent tasks and drives a handler with the
//! same Lambda-shaped batches an SQS event source mapping would send, in this process or through
//! the real Lambda binary, so what works locally works in Lambda.
//!
//! Generic over any [`sqs_batch::Handler`]: a binary is one line, [`main`] with the handler's
//! builder. The folders follow the design, dependencies pointing one way:
//! - [`cli`]: the command line into a typed [`cli::Plan`]; subcommands; exit codes.
//! - [`consumer`]: pollers, batches, heartbeat, back-off, idle, shutdown.
//! - [`lambda`]: the local Lambda Runtime API, execution environments, the emulated mapping.
//! - [`tools`]: `up`, `send`, `dlq`, `redrive`.
//! - [`template`]: the SAM template model and the rules `check` applies.
//! - [`observe`]: counters, summary, stats line, metrics.
//! - [`aws`]: the endpoint, the client, the queue, settling messages.

pub mod aws;
pub mod cli;
pub mod consumer;
mod error;
pub mod lambda;
pub mod observe;
pub mod template;
pub mod tools;

use std::sync::Arc;

use sqs_batch::{Handler, Options};
use tokio_util::sync::CancellationToken;

pub use cli::main;
pub use consumer::Config;
pub use error::RunnerError;
pub use observe::Summary;

/// Runs `handler` in this process with `options` until `shutdown` is cancelled (or, with an idle
/// exit, until idle), then stops gracefully and returns what it did: the library form of
/// `local-runner --queue ...`.
///
/// # Errors
/// As [`consumer::run`].
pub async fn run<H: Handler>(
    config: Config,
    handler: Arc<H>,
    options: Options,
    shutdown: CancellationToken,
) -> Result<Summary, RunnerError> {
    consumer::run(config, consumer::InProcess::new(handler, options), shutdown).await
}
