//! The consumer: long-poll tasks receive Lambda-shaped batches and hand them to an executor;
//! each batch is kept invisible while it runs and settled with SQS after.
//!
//! A run: resolve the queue; `pollers` tasks receive up to a batch each, but only while fewer
//! than `max_in_flight` messages are held (`poller`); every batch goes to the
//! [`BatchExecutor`]; successes are deleted in batches, failures get their retry back-off
//! (`backoff`) and are left to the queue's redrive policy. On stop: no new receive, running
//! messages finish within the shutdown timeout, anything received but not started (or given up
//! at the timeout) is made visible again at once.

mod backoff;
mod batch;
mod config;
mod executor;
mod heartbeat;
mod idle;
mod poller;

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{
    Config, DEFAULT_POLLERS, DEFAULT_SHUTDOWN_TIMEOUT_SECS, DEFAULT_START_TIMEOUT_SECS,
    DEFAULT_STATS_INTERVAL_SECS, Mode,
};
pub use executor::{BatchExecutor, Execution, InProcess};

use crate::aws::{Sqs, queue};
use crate::error::RunnerError;
use crate::observe::{self, Stats, Summary};
use backoff::Throttle;
use batch::RunShared;
use heartbeat::Housekeeper;
use idle::{Idle, exit_when_idle};
use poller::Poller;

/// Runs batches through `executor` until `shutdown` is cancelled (or, with an idle exit, until
/// idle), then stops gracefully and returns what it did: the one entry point of every mode.
///
/// The executor says how its batches are gathered and settled ([`BatchExecutor::mode`]):
/// [`InProcess`] runs a handler in this process, one receive a batch, with a heartbeat and the
/// runner's back-off; `LambdaExecutor` (in the `lambda` folder) runs the real bootstrap behind
/// an emulated event source mapping (batches of its `BatchSize` within its window, no heartbeat,
/// failures spaced out by the function). The executor is started ([`BatchExecutor::start`]) before anything
/// is received: a function that cannot start stops the run at once.
///
/// # Errors
/// [`RunnerError`] when the executor cannot start, the metrics address is taken, the queue cannot
/// be found or the endpoint cannot be reached at start, or the queue disappears while running.
/// Work in flight is still settled first.
pub async fn run<E: BatchExecutor>(
    config: Config,
    executor: E,
    shutdown: CancellationToken,
) -> Result<Summary, RunnerError> {
    let mode = executor.mode();
    executor.start().await?;
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(observe::metrics::listen(addr).await?),
        None => None,
    };
    let client = config.connection.client(config.long_poll().max(mode.batching_window())).await;
    let queue = tokio::select! {
        queue = queue::resolve_within(&client, &config.queue, &config.connection, config.start_timeout) => queue?,
        () = shutdown.cancelled() => return Ok(Summary::default()),
    };
    let in_flight = config.in_flight_limit(&mode);
    tracing::info!(
        queue_url = %queue.url,
        fifo = queue.fifo,
        pollers = config.pollers.get(),
        batch_size = config.batch_target(&mode),
        max_in_flight = in_flight.get(),
        "polling"
    );
    if queue.redrive.is_none() && mode.retry_backoff().is_some() {
        tracing::warn!(
            queue = %queue.url,
            "the queue has no dead-letter queue: a message that keeps failing comes back at its back-off until the retention period ends, and an idle exit does not wait for it"
        );
    }
    let started = std::time::Instant::now();
    let sqs = Sqs::new(client, queue);
    let heartbeat = if mode.heartbeat() {
        let started = Housekeeper::start(&config.connection, &sqs).await;
        Some(started.map_err(RunnerError::Thread)?)
    } else {
        None
    };
    let stats = Arc::new(Stats::default());
    let idle = Arc::new(Idle::new());
    let throttle = Arc::new(Throttle::default());
    let stop = shutdown.child_token();
    let batches = Arc::new(RunShared {
        executor,
        sqs: sqs.clone(),
        stats: Arc::clone(&stats),
        idle: Arc::clone(&idle),
        heartbeat,
        mode: mode.clone(),
        throttle: Arc::clone(&throttle),
        stop: stop.clone(),
        abandon: CancellationToken::new(),
        tracker: TaskTracker::new(),
        fatal: std::sync::Mutex::new(None),
    });

    let helpers = TaskTracker::new();
    let finished = CancellationToken::new();
    if let Some(listener) = metrics_listener {
        let registry = stats.registry(sqs.queue().name());
        helpers.spawn(observe::metrics::serve(listener, registry, finished.clone()));
    }
    if let Some(after) = config.exit_when_idle {
        helpers.spawn(exit_when_idle(Arc::clone(&idle), after, stop.clone()));
    }
    if config.stats_interval.is_some() || config.progress {
        helpers.spawn(observe::report(
            Arc::clone(&stats),
            sqs.clone(),
            config.stats_interval,
            config.progress,
            stop.clone(),
            finished.clone(),
        ));
    }
    helpers.close();

    let permits = Arc::new(Semaphore::new(in_flight.get()));
    let mut pollers = JoinSet::new();
    for _ in 0..config.pollers.get() {
        pollers.spawn(
            Poller {
                sqs: sqs.clone(),
                connection: config.connection.clone(),
                permits: Arc::clone(&permits),
                target: config.batch_target(&mode),
                long_poll: config.long_poll(),
                exit_when_idle: config.exit_when_idle,
                batching_window: mode.batching_window(),
                idle: Arc::clone(&idle),
                stats: Arc::clone(&stats),
                throttle: Arc::clone(&throttle),
                stop: stop.clone(),
                batches: Arc::clone(&batches),
                filters: Arc::clone(&config.filters),
            }
            .run(),
        );
    }

    // Until told to stop, or a poller cannot go on (it returned an error, or panicked).
    let mut fatal = None;
    while fatal.is_none() {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(joined) = pollers.join_next() => {
                fatal = poller_error(joined);
            }
        }
    }
    stop.cancel();
    tracing::info!(
        shutdown_timeout_secs = config.shutdown_timeout.as_secs(),
        "stopping: no new receives; letting started messages finish"
    );
    // Started messages get the shutdown timeout; then what still runs is given up and released.
    let abandon = batches.abandon.clone();
    let timer = tokio::spawn(async move {
        tokio::time::sleep(config.shutdown_timeout).await;
        abandon.cancel();
    });
    while let Some(joined) = pollers.join_next().await {
        if let Some(error) = poller_error(joined) {
            fatal.get_or_insert(error);
        }
    }
    batches.tracker.close();
    batches.tracker.wait().await;
    if let Some(error) = batches.take_fatal() {
        fatal.get_or_insert(error);
    }
    timer.abort();
    finished.cancel();
    helpers.wait().await;

    let mut summary = stats.summary();
    summary.elapsed = started.elapsed();
    sqs.queue().name().clone_into(&mut summary.queue);
    summary.redrive.clone_from(&sqs.queue().redrive);
    summary.failures = stats.failures.groups(summary.redrive.as_ref());
    summary.event_count_metrics = config.event_count_metrics;
    tracing::info!(
        target: observe::SUMMARY_TARGET,
        received = summary.received,
        invoked = summary.invoked,
        failed_invoke = summary.failed_invoke,
        succeeded = summary.succeeded,
        duplicate = summary.duplicate,
        ignored = summary.ignored,
        failed = summary.failed,
        skipped = summary.skipped,
        abandoned = summary.abandoned,
        filtered = summary.filtered,
        deleted = summary.deleted,
        delete_failed = summary.delete_failed,
        deleted_late = summary.deleted_late,
        released = summary.released,
        receives_cut_off = summary.receives_cut_off,
        metrics = observe::user_metrics::summary_json(&summary.metrics).as_deref(),
        elapsed_ms = u64::try_from(summary.elapsed.as_millis()).unwrap_or(u64::MAX),
        "summary"
    );
    fatal.map_or(Ok(summary), Err)
}

/// Why a poller that ended stops the run: its error, or its panic (a bug, never a success).
fn poller_error(joined: Result<Result<(), RunnerError>, tokio::task::JoinError>) -> Option<RunnerError> {
    match joined {
        Ok(result) => result.err(),
        Err(join) if join.is_panic() => Some(RunnerError::Panicked {
            task: "poller",
            text: sqs_batch::runtime::panic_text(&*join.into_panic()),
        }),
        Err(_) => Some(RunnerError::Panicked { task: "poller", text: "it was cancelled".into() }),
    }
}
