//! Keeping messages invisible while their work runs.
//!
//! The heartbeat runs on a thread of its own, with its own tokio runtime and its own SQS client
//! (and so its own connections): a handler that blocks its thread, or CPU-heavy messages that
//! keep every worker of the main runtime busy, cannot delay an extension. Work that outlasts the
//! visibility timeout is then never handed to a second consumer, whatever the handler does.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqs_batch::SqsMessage;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::backoff::MAX_INVISIBLE;
use crate::aws::{Connection, Retries, Sqs};

/// The heartbeat's thread: a current-thread runtime that runs every batch's extensions.
#[derive(Debug)]
pub(crate) struct Housekeeper {
    runtime: tokio::runtime::Handle,
    /// The queue, through the housekeeper's own client.
    sqs: Sqs,
    /// Ends the thread (and its runtime) when the housekeeper is dropped.
    stop: CancellationToken,
}

impl Housekeeper {
    /// Starts the heartbeat thread with a client of its own for `sqs`'s queue.
    ///
    /// # Errors
    /// When the thread or its runtime cannot be started.
    pub(crate) async fn start(connection: &Connection, sqs: &Sqs) -> std::io::Result<Self> {
        let (ready, started) = tokio::sync::oneshot::channel();
        let stop = CancellationToken::new();
        let (connection, thread_stop) = (connection.clone(), stop.clone());
        std::thread::Builder::new().name("heartbeat".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = ready.send(Err(err));
                    return;
                }
            };
            runtime.block_on(async move {
                // Extensions are short calls: no long poll to wait for.
                let client = connection.client(Duration::ZERO).await;
                let _ = ready.send(Ok((tokio::runtime::Handle::current(), client)));
                thread_stop.cancelled().await;
            });
            // Dropping the runtime drops what is left on it: only heartbeats of batches that are
            // over, since the run waits for its batches before it drops the housekeeper.
        })?;
        let started =
            started.await.map_err(|_| std::io::Error::other("the heartbeat thread ended at start"))?;
        let (runtime, client) = started?;
        Ok(Self { runtime, sqs: sqs.with_client(client), stop })
    }

    /// Starts keeping `records` invisible (see [`keep_invisible`]); the returned task ends once
    /// `done` is cancelled and no extension is in flight.
    pub(crate) fn keep_invisible(
        &self,
        records: Arc<[SqsMessage]>,
        asked: Instant,
        invisible_until: Arc<Mutex<Instant>>,
        done: CancellationToken,
    ) -> JoinHandle<()> {
        let sqs = self.sqs.clone();
        self.runtime
            .spawn(async move { keep_invisible(&sqs, &records, asked, &invisible_until, &done).await })
    }
}

impl Drop for Housekeeper {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Extends the visibility of `records` to the queue's visibility timeout every half of it,
/// counted from `asked` (when their ReceiveMessage was sent), until `done` is cancelled or SQS's
/// 12-hour cap is reached. A receive that waited longer than half the timeout gets its first
/// extension at once.
///
/// `invisible_until` is moved on after each extension that SQS accepted for every message, to
/// the moment the extension was sent plus the time it bought: a lower bound on how long SQS
/// keeps them hidden, which tells a later delete whether it came in time.
///
/// `done` is only looked at between extensions, never during one: once this returns, no
/// extension is in flight, so a delete sent afterwards can never race it (the "ReceiptHandle is
/// invalid" of sqs-consumer #260). A failed extension is logged; the work goes on regardless.
pub(crate) async fn keep_invisible(
    sqs: &Sqs,
    records: &[SqsMessage],
    asked: Instant,
    invisible_until: &Mutex<Instant>,
    done: &CancellationToken,
) {
    let visibility = sqs.queue().visibility_timeout;
    if visibility.is_zero() {
        return;
    }
    let interval = (visibility / 2).max(Duration::from_millis(500));
    let count = records.len();
    let mut failing = false;
    let mut next = asked + interval;
    loop {
        tokio::select! {
            biased;
            () = done.cancelled() => return,
            () = tokio::time::sleep_until(next.into()) => {}
        }
        // SQS counts its cap from the receive, which came after `asked`: this errs early.
        let extend = visibility.min(MAX_INVISIBLE.saturating_sub(asked.elapsed()));
        if extend < Duration::from_secs(1) {
            tracing::warn!(
                messages = count,
                "work has run for 12 hours, SQS's visibility cap: the messages will become visible again"
            );
            return;
        }
        let seconds = i32::try_from(extend.as_secs()).unwrap_or(i32::MAX);
        let sent = Instant::now();
        next = sent + interval;
        let changes: Vec<(&SqsMessage, i32)> = records.iter().map(|r| (r, seconds)).collect();
        let extended = sqs.set_visibility(&changes, Retries::times(1)).await;
        if extended == count {
            *invisible_until.lock().unwrap_or_else(PoisonError::into_inner) = sent + extend;
            failing = false;
            tracing::debug!(messages = extended, visibility_secs = seconds, "visibility extended");
        } else {
            if !failing {
                tracing::warn!(
                    failed = count - extended,
                    "heartbeat could not extend visibility; the work goes on"
                );
            }
            failing = true;
        }
    }
}
