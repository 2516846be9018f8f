//! `local-runner`: long-polls an SQS queue with concurrent tasks and drives the handler crate's
//! batch core with the same Lambda-shaped batches an SQS event source mapping would send, so what
//! works locally works in Lambda.
//!
//! A run: resolve the queue ([`sqs`]); `--pollers` tasks receive up to `--batch-size` messages
//! each, but only while fewer than `--max-in-flight` are being handled ([`poller`]); every batch
//! goes through [`handler::process_batch`]; successes are deleted in batches, failures are left to
//! the queue's redrive policy. On stop: no new receive, running messages finish within
//! `--shutdown-timeout`, anything received but not started is made visible again at once.

pub mod config;
pub mod dev;
pub mod error;
pub mod executor;
pub mod heartbeat;
pub mod lambda;
mod metrics;
mod poller;
pub mod records;
mod settle;
pub mod sqs;
mod stats;
pub mod template;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use handler::Handler;

use executor::{BatchExecutor, InProcess};
use lambda::{LambdaExecutor, LambdaSpec};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Cli, Config, QueueRef};
pub use error::RunnerError;
pub use stats::Summary;

use poller::Shared;
use stats::Stats;

/// Runs `handler` in this process until `shutdown` is cancelled (or, with `--exit-when-idle`,
/// until idle), then stops gracefully and returns what it did.
///
/// # Errors
/// [`RunnerError`] when the queue cannot be found or the endpoint cannot be reached at start, or
/// when the queue disappears while running. In-flight work is still settled first.
pub async fn run<H: Handler + 'static>(
    config: Config,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<Summary, RunnerError> {
    run_with(config, InProcess::new(handler), shutdown).await
}

/// Runs the real Lambda binary of `spec` behind an emulated event source mapping: batches of
/// `config.invoke_batch_size` gathered within `config.batching_window`, at most
/// `spec.max_concurrency` invocations at once, partial batch responses applied as Lambda does.
///
/// # Errors
/// As [`run`].
pub async fn run_lambda(
    config: Config,
    spec: LambdaSpec,
    shutdown: CancellationToken,
) -> Result<Summary, RunnerError> {
    let servers = CancellationToken::new();
    let result = run_with(config, LambdaExecutor::new(spec, servers.clone()), shutdown).await;
    servers.cancel();
    result
}

/// Runs batches through `executor`; the common loop of [`run`] and [`run_lambda`].
///
/// # Errors
/// As [`run`].
pub async fn run_with<E: BatchExecutor>(
    config: Config,
    executor: E,
    shutdown: CancellationToken,
) -> Result<Summary, RunnerError> {
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(metrics::listen(addr).await?),
        None => None,
    };
    let client = sqs::client(&config).await;
    let queue = tokio::select! {
        queue = sqs::resolve_queue_within(&client, &config) => queue?,
        () = shutdown.cancelled() => return Ok(Summary::default()),
    };
    tracing::info!(
        queue_url = %queue.url,
        fifo = queue.fifo,
        pollers = config.pollers.get(),
        batch_size = config.batch_size,
        max_in_flight = config.max_in_flight.get(),
        "polling"
    );

    let shared = Arc::new(Shared {
        client,
        queue,
        in_flight: Arc::new(Semaphore::new(config.max_in_flight.get())),
        executor,
        stats: Stats::default(),
        last_activity: Mutex::new(Instant::now()),
        empty_since: Mutex::new(None),
        stop: shutdown.child_token(),
        abandon: CancellationToken::new(),
        batches: TaskTracker::new(),
        fatal: Mutex::new(None),
        config,
    });

    let metrics_stop = CancellationToken::new();
    let metrics_server = metrics_listener.map(|listener| {
        let name = shared.queue.url.rsplit('/').next().unwrap_or_default();
        let registry = shared.stats.registry(name);
        tokio::spawn(metrics::serve(listener, registry, metrics_stop.clone()))
    });

    let pollers = TaskTracker::new();
    for _ in 0..shared.config.pollers.get() {
        pollers.spawn(poller::poll(Arc::clone(&shared)));
    }
    if let Some(idle) = shared.config.exit_when_idle {
        pollers.spawn(poller::exit_when_idle(Arc::clone(&shared), idle));
    }
    if shared.config.stats_interval.is_some() || shared.config.progress {
        pollers.spawn(stats::report(Arc::clone(&shared)));
    }
    pollers.close();

    shared.stop.cancelled().await;
    tracing::info!(
        shutdown_timeout_secs = shared.config.shutdown_timeout.as_secs(),
        "stopping: no new receives; letting started messages finish"
    );
    let abandon = shared.abandon.clone();
    let deadline = tokio::time::Instant::now() + shared.config.shutdown_timeout;
    let timer = tokio::spawn(async move {
        tokio::time::sleep_until(deadline).await;
        abandon.cancel();
    });
    pollers.wait().await;
    shared.batches.close();
    shared.batches.wait().await;
    timer.abort();
    metrics_stop.cancel();
    if let Some(server) = metrics_server {
        let _ = server.await;
    }

    let summary = shared.stats.summary();
    tracing::info!(
        received = summary.received,
        succeeded = summary.succeeded,
        failed = summary.failed,
        skipped = summary.skipped,
        deleted = summary.deleted,
        delete_failed = summary.delete_failed,
        deleted_late = summary.deleted_late,
        released = summary.released,
        "summary"
    );
    let fatal = shared.fatal.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    fatal.map_or(Ok(summary), Err)
}
