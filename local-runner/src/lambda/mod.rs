//! Running the real Lambda binary locally: execution environments (processes of the bootstrap,
//! each with its own Runtime API) behind an emulated SQS event source mapping.
//!
//! Lambda's event source mapping neither extends visibility nor spaces out retries, so [`run`]
//! turns the consumer's heartbeat and retry back-off off: `local-runner --lambda`, the tests and
//! any embedding program get the same semantics.

mod environment;
mod mapping;
mod pool;
mod runtime_api;
mod spec;

/// The payload type of [`LambdaPool::invoke`].
pub use axum::body::Bytes;
pub use environment::InvokeError;
pub use mapping::{DEFAULT_MAX_CONCURRENCY, LambdaExecutor, Mapping};
pub use pool::LambdaPool;
pub use spec::LambdaSpec;
use tokio_util::sync::CancellationToken;

use crate::RunnerError;
use crate::consumer::{self, Config};
use crate::observe::Summary;

/// Runs `function` behind an emulated event source mapping with `mapping`'s settings: batches of
/// `BatchSize` gathered within the batching window, at most `MaximumConcurrency` invocations at
/// once, partial batch responses applied as Lambda does. Until `shutdown` (or idle, with an idle
/// exit).
///
/// Lambda's semantics hold whatever `config` says: no heartbeat, no retry back-off (failures
/// come back after the queue's visibility timeout). Unless `config.max_in_flight` is set, the
/// runner holds no more messages than the invocations running at once can take.
///
/// # Errors
/// As [`consumer::run`].
pub async fn run(
    mut config: Config,
    function: LambdaSpec,
    mapping: Mapping,
    shutdown: CancellationToken,
) -> Result<Summary, RunnerError> {
    config.heartbeat = false;
    config.retry_backoff = None;
    config.invoke_batch_size = Some(mapping.batch_size);
    config.batching_window = mapping.batching_window;
    if config.max_in_flight.is_none() {
        config.max_in_flight = Some(mapping.batch_size.saturating_mul(mapping.max_concurrency));
    }
    let servers = CancellationToken::new();
    let result =
        consumer::run(config, LambdaExecutor::new(function, &mapping, servers.clone()), shutdown).await;
    servers.cancel();
    result
}
