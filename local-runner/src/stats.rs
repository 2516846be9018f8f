//! Counters of a run, shared by every task, and the summary they add up to.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters; each is only ever added to.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) received: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) deleted: AtomicU64,
    pub(crate) delete_failed: AtomicU64,
    pub(crate) deleted_late: AtomicU64,
    pub(crate) released: AtomicU64,
    /// Messages being handled right now.
    pub(crate) in_flight: AtomicU64,
}

/// What a run did, counted in messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages received from SQS (a redelivered message counts each time).
    pub received: u64,
    /// Handled successfully.
    pub succeeded: u64,
    /// Handled and failed: left on the queue for its redrive policy.
    pub failed: u64,
    /// Not started (FIFO group stopped at an earlier failure, or shutdown).
    pub skipped: u64,
    /// Deleted after success.
    pub deleted: u64,
    /// Succeeded but could not be deleted: SQS will deliver them again.
    pub delete_failed: u64,
    /// Deleted (and counted in `deleted`), but only after their visibility timeout had run out,
    /// so SQS may have delivered them again meanwhile: the work outlasted the timeout without a
    /// heartbeat, or SQS stalled. At-least-once delivery's duplicates come from here and from
    /// `delete_failed`.
    pub deleted_late: u64,
    /// Made visible again at once because they were received but not started before a stop.
    pub released: u64,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn summary(&self) -> Summary {
        Summary {
            received: self.received.load(Relaxed),
            succeeded: self.succeeded.load(Relaxed),
            failed: self.failed.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            deleted: self.deleted.load(Relaxed),
            delete_failed: self.delete_failed.load(Relaxed),
            deleted_late: self.deleted_late.load(Relaxed),
            released: self.released.load(Relaxed),
        }
    }
}

/// Logs a stats line every `stats_interval` and, when draining on a terminal, keeps a progress
/// line on stderr with the queue's approximate depth. Returns when the run stops.
pub(crate) async fn report<E>(shared: std::sync::Arc<crate::poller::Shared<E>>) {
    use std::io::Write;
    use std::time::{Duration, Instant};

    let config = &shared.config;
    let every = config.stats_interval;
    let tick_every =
        if config.progress { Duration::from_secs(1) } else { every.unwrap_or(Duration::from_secs(10)) };
    let mut tick = tokio::time::interval(tick_every);
    tick.tick().await;
    let (mut last_at, mut last_handled) = (Instant::now(), 0);
    let mut last_logged = Instant::now();
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = shared.stats.summary();
        let handled = now.succeeded + now.failed;
        let rate = (handled - last_handled) as f64 / last_at.elapsed().as_secs_f64().max(0.001);
        (last_at, last_handled) = (Instant::now(), handled);
        let in_flight = shared.stats.in_flight.load(Relaxed);
        // Ticks come a hair early or late: allow half a tick of slack.
        if every.is_some_and(|every| last_logged.elapsed() + tick_every / 2 >= every) {
            tracing::info!(
                received = now.received,
                succeeded = now.succeeded,
                failed = now.failed,
                in_flight,
                msgs_per_s = (rate * 10.0).round() / 10.0,
                "stats"
            );
            last_logged = Instant::now();
        }
        if config.progress {
            let depth = crate::sqs::depth(&shared.client, &shared.queue.url).await;
            let depth = depth.map_or_else(|| "?".to_owned(), |d| d.to_string());
            eprint!(
                "\r\x1b[2Klocal-runner: ~{depth} left in the queue, {handled} handled, {in_flight} in flight, {rate:.0} msg/s"
            );
            let _ = std::io::stderr().flush();
        }
    }
    if config.progress {
        eprintln!();
    }
}
