//! What a run says while it runs: a stats line every `--stats-interval`, and on a terminal a
//! progress line with the queue's depth.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Stats;
use crate::aws::Sqs;

/// Logs a stats line every `every` and, with `progress`, keeps a progress line on stderr with the
/// queue's approximate depth. Returns when `stop` is cancelled.
pub(crate) async fn report(
    stats: Arc<Stats>,
    sqs: Sqs,
    every: Option<Duration>,
    progress: bool,
    stop: CancellationToken,
) {
    let tick_every = if progress { Duration::from_secs(1) } else { every.unwrap_or(Duration::from_secs(10)) };
    let mut tick = tokio::time::interval(tick_every);
    tick.tick().await;
    let (mut last_at, mut last_handled) = (Instant::now(), 0);
    let mut last_logged = Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = stats.summary();
        let handled = now.succeeded + now.failed;
        let rate = (handled - last_handled) as f64 / last_at.elapsed().as_secs_f64().max(0.001);
        (last_at, last_handled) = (Instant::now(), handled);
        let in_flight = stats.in_flight();
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
        if progress {
            let depth = sqs.depth().await.map_or_else(|| "?".to_owned(), |d| d.to_string());
            eprint!(
                "\r\x1b[2Klocal-runner: ~{depth} left in the queue, {handled} handled, {in_flight} in flight, {rate:.0} msg/s"
            );
            let _ = std::io::stderr().flush();
        }
    }
    if progress {
        eprintln!();
    }
}
