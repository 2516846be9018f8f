//! Running the real Lambda binary locally: execution environments (processes of the bootstrap,
//! each with its own Runtime API) behind an emulated SQS event source mapping.
//!
//! Lambda's event source mapping does not extend visibility, so [`run`] turns the consumer's
//! heartbeat off; failures are spaced out by the function itself (its retry back-off), as
//! deployed: `local-runner --lambda`, the tests and any embedding program get the same semantics.

mod environment;
mod mapping;
mod peer;
mod pool;
mod runtime_api;
mod scaling;
mod spec;

/// The payload type of [`LambdaPool::invoke`].
pub use axum::body::Bytes;
pub use environment::InvokeError;
pub use mapping::{DEFAULT_MAX_CONCURRENCY, LambdaExecutor, Mapping};
pub use pool::LambdaPool;
pub use runtime_api::FunctionError;
pub use spec::LambdaSpec;
use tokio_util::sync::CancellationToken;

use crate::consumer::{self, Config, Mode};
use crate::error::RunnerError;
use crate::observe::Summary;

/// Runs `function` behind an emulated event source mapping with `mapping`'s settings: batches of
/// `BatchSize` gathered within the batching window, at most `MaximumConcurrency` invocations at
/// once, partial batch responses applied as Lambda does. Until `shutdown` (or idle, with an idle
/// exit).
///
/// Lambda's semantics hold whatever `config.mode` says (it becomes [`Mode::Lambda`]): no
/// heartbeat, and failures come back when the function's own back-off (its `RETRY_BACKOFF_*`
/// variables) says. Unless `config.max_in_flight` is set, the
/// runner holds no more messages than the invocations running at once can take.
///
/// The function's first execution environment is started, and its init awaited, before anything
/// is received: a bootstrap that cannot start stops the run at once.
///
/// # Errors
/// [`RunnerError::FunctionCannotStart`] when the bootstrap cannot start (at first, or later on:
/// then its batch is released unhandled); otherwise as [`consumer::run`].
pub async fn run(
    mut config: Config,
    function: LambdaSpec,
    mapping: Mapping,
    shutdown: CancellationToken,
) -> Result<Summary, RunnerError> {
    // The function's own back-off, which it applies: the runner counts on it for what is due back.
    let retry_backoff = sqs_batch::Options::from_vars(|name| function.environment.get(name).cloned())
        .map_or(None, |options| options.retry);
    config.mode = Mode::Lambda {
        batch_size: mapping.batch_size,
        batching_window: mapping.batching_window,
        retry_backoff,
    };
    config.event_count_metrics = mapping.event_count_metrics;
    if config.max_in_flight.is_none() {
        config.max_in_flight = Some(mapping.batch_size.saturating_mul(mapping.max_concurrency));
    }
    let servers = CancellationToken::new();
    let executor = LambdaExecutor::new(function, &mapping, servers.clone());
    let result = match executor.warm_up().await {
        Ok(()) => consumer::run(config, executor, shutdown).await,
        Err(error) => Err(error),
    };
    servers.cancel();
    result
}
