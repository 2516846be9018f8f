//! What a run says while it runs: a stats line every `--stats-interval`, or on a terminal the
//! status line (queue depth left, handled, failed, in flight, rate, elapsed) in its place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{Stats, terminal};
use crate::aws::Sqs;

/// Logs a stats line every `every`, or with `progress` keeps the status line up to date every
/// second (the queue's approximate depth is one GetQueueAttributes a second). The status line
/// stays through the stop (`stopping` cancelled), saying so, and goes when `finished` is.
pub(crate) async fn report(
    stats: Arc<Stats>,
    sqs: Sqs,
    every: Option<Duration>,
    progress: bool,
    stopping: CancellationToken,
    finished: CancellationToken,
) {
    let tick_every = if progress { Duration::from_secs(1) } else { every.unwrap_or(Duration::from_secs(10)) };
    let mut tick = tokio::time::interval(tick_every);
    tick.tick().await;
    if progress {
        terminal::show_status();
        terminal::set_status(format!("{}: waiting for the first receive", sqs.queue().name()));
    }
    let (mut last_at, mut last_handled) = (Instant::now(), 0);
    let mut last_logged = Instant::now();
    loop {
        tokio::select! {
            () = finished.cancelled() => break,
            () = stopping.cancelled(), if !progress => break,
            _ = tick.tick() => {}
        }
        let now = stats.summary();
        let handled = now.succeeded + now.failed;
        let rate = (handled - last_handled) as f64 / last_at.elapsed().as_secs_f64().max(0.001);
        (last_at, last_handled) = (Instant::now(), handled);
        let in_flight = stats.in_flight();
        if progress {
            let depth = sqs.depth().await.map_or_else(|| "?".to_owned(), |d| d.to_string());
            let stopping = if stopping.is_cancelled() { "stopping: " } else { "" };
            terminal::set_status(format!(
                "{stopping}{}: {} ok, {} failed, {in_flight} in flight, ~{depth} left, {rate:.0} msg/s",
                sqs.queue().name(),
                now.succeeded,
                now.failed,
            ));
            continue;
        }
        // Ticks come a hair early or late: allow half a tick of slack.
        if every.is_some_and(|every| last_logged.elapsed() + tick_every / 2 >= every) {
            tracing::info!(
                received = now.received,
                succeeded = now.succeeded,
                failed = now.failed,
                in_flight,
                receives_cut_off = now.receives_cut_off,
                msgs_per_s = (rate * 10.0).round() / 10.0,
                "stats"
            );
            last_logged = Instant::now();
        }
    }
    if progress {
        terminal::clear_status();
    }
}
