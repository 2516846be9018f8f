//! `local-runner`: long-polls an SQS queue with concurrent tasks and drives a handler with the
//! same Lambda-shaped batches an SQS event source mapping would send, in this process or through
//! the real Lambda binary, so what works locally works in Lambda.
//!
//! Generic over any [`sqs_batch::Handler`]: a binary is one line, [`main`] with the handler's
//! builder. A program embeds a run with [`run`]: a [`Config`], what runs the batches
//! ([`InProcess`] or [`lambda::LambdaExecutor`]) and a shutdown token. The folders follow the design, dependencies pointing one way:
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

pub use cli::{main, main_without_handler};
pub use consumer::{Config, InProcess, run};
pub use error::RunnerError;
pub use observe::Summary;
