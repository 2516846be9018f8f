//! Keeping messages invisible while their work runs.
//!
//! The heartbeat runs on a thread of its own, with its own tokio runtime and its own SQS client
//! (and so its own connections): a handler that blocks its thread, or CPU-heavy messages that
//! keep every worker of the main runtime busy, cannot delay an extension. Work that outlasts the
//! visibility timeout is then never handed to a second consumer, whatever the handler does.
//!
//! A batch is registered by adding it to a list and ended by marking it done: neither wakes the
//! heartbeat thread, which looks at the list every [`TICK`] and extends what is due. Most
//! batches end long before their first extension and so cost that thread nothing; handing each
//! batch over as a task would cost four thread switches per batch.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use sqs_batch::SqsMessage;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::aws::{Connection, Retries, Sqs};
use sqs_batch::runtime::retry::MAX_VISIBILITY as MAX_INVISIBLE;

/// How often the heartbeat thread looks for batches due an extension: how late an extension may
/// come, against a visibility timeout of which half is still left when it is due.
const TICK: Duration = Duration::from_millis(100);
/// The shortest time between two extensions of a batch.
const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// The heartbeat's thread: a current-thread runtime that extends every batch that is due.
#[derive(Debug)]
pub(crate) struct Housekeeper {
    batches: Arc<Mutex<Vec<Arc<Watched>>>>,
    /// Ends the thread (and its runtime) when the housekeeper is dropped.
    stop: CancellationToken,
}

/// One batch the heartbeat keeps invisible.
#[derive(Debug)]
struct Watched {
    /// Weak: the batch's task keeps the records and frees them on its own thread. Were the
    /// heartbeat's reference the last, every finished batch's records would be freed here, a
    /// tick later, each free crossing threads in the allocator (1.7 % of a consumer's CPU on the
    /// stub, BENCHMARKS.md). The batch holds them until [`Heartbeat::stop`] has returned, so an
    /// extension always finds them.
    records: Weak<[SqsMessage]>,
    asked: Instant,
    invisible_until: Arc<Mutex<Instant>>,
    state: Mutex<WatchState>,
    /// Told when an extension of this batch has come back.
    extended: Notify,
}

#[derive(Debug)]
struct WatchState {
    next: Instant,
    extending: bool,
    done: bool,
    failing: bool,
}

/// A batch under the heartbeat; [`Heartbeat::stop`] ends it.
#[derive(Debug)]
pub(crate) struct Heartbeat(Arc<Watched>);

impl Housekeeper {
    /// Starts the heartbeat thread with a client of its own for `sqs`'s queue.
    ///
    /// # Errors
    /// When the thread or its runtime cannot be started.
    pub(crate) async fn start(connection: &Connection, sqs: &Sqs) -> std::io::Result<Self> {
        let (ready, started) = tokio::sync::oneshot::channel();
        let stop = CancellationToken::new();
        let batches: Arc<Mutex<Vec<Arc<Watched>>>> = Arc::default();
        let (connection, thread_stop, watched, sqs) =
            (connection.clone(), stop.clone(), Arc::clone(&batches), sqs.clone());
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
                let sqs = sqs.with_client(connection.client(Duration::ZERO).await);
                let _ = ready.send(Ok(()));
                let mut tick = tokio::time::interval(TICK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = thread_stop.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    for batch in due(&watched, Instant::now()) {
                        let sqs = sqs.clone();
                        tokio::spawn(async move { extend(&sqs, &batch).await });
                    }
                }
            });
            // Dropping the runtime drops what is left on it: only extensions of batches that are
            // over, since the run waits for its batches before it drops the housekeeper.
        })?;
        started.await.map_err(|_| std::io::Error::other("the heartbeat thread ended at start"))??;
        Ok(Self { batches, stop })
    }

    /// Keeps `records` invisible until [`Heartbeat::stop`]: extended to the queue's visibility
    /// timeout every half of it, counted from `asked` (when their ReceiveMessage was sent), so a
    /// receive that waited longer than half the timeout gets its first extension at once.
    /// `invisible_until` is moved on after each extension that SQS accepted for every message, to
    /// when it was sent plus the time it bought: a lower bound on how long SQS keeps them hidden,
    /// which tells a later delete whether it came in time.
    pub(crate) fn keep_invisible(
        &self,
        sqs: &Sqs,
        records: &Arc<[SqsMessage]>,
        asked: Instant,
        invisible_until: Arc<Mutex<Instant>>,
    ) -> Option<Heartbeat> {
        let visibility = sqs.queue().visibility_timeout;
        if visibility.is_zero() {
            return None;
        }
        let watched = Arc::new(Watched {
            records: Arc::downgrade(records),
            asked,
            invisible_until,
            state: Mutex::new(WatchState {
                next: asked + interval(visibility),
                extending: false,
                done: false,
                failing: false,
            }),
            extended: Notify::new(),
        });
        self.batches.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::clone(&watched));
        Some(Heartbeat(watched))
    }
}

impl Heartbeat {
    /// Ends the heartbeat of this batch. Once this returns no extension of it is in flight, so a
    /// delete sent afterwards can never race one (the "ReceiptHandle is invalid" of sqs-consumer
    /// #260); only an extension already sent is waited for.
    pub(crate) async fn stop(self) {
        loop {
            {
                let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
                if !state.extending {
                    state.done = true;
                    return;
                }
            }
            // `notify_one` keeps a permit: an extension that ends between the look above and
            // this wait is not missed.
            self.0.extended.notified().await;
        }
    }
}

impl Drop for Housekeeper {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn interval(visibility: Duration) -> Duration {
    (visibility / 2).max(MIN_INTERVAL)
}

/// The batches due an extension now, marked as being extended; finished ones are forgotten.
fn due(batches: &Mutex<Vec<Arc<Watched>>>, now: Instant) -> Vec<Arc<Watched>> {
    let mut batches = batches.lock().unwrap_or_else(PoisonError::into_inner);
    batches.retain(|batch| !batch.state.lock().unwrap_or_else(PoisonError::into_inner).done);
    batches
        .iter()
        .filter(|batch| {
            let mut state = batch.state.lock().unwrap_or_else(PoisonError::into_inner);
            // A batch stopped since the `retain` above is not extended: its delete may be on its way.
            let due = !state.done && !state.extending && state.next <= now;
            state.extending |= due;
            due
        })
        .cloned()
        .collect()
}

/// One extension of a batch to the queue's visibility timeout, or, at SQS's 12-hour cap, the end
/// of its heartbeat. A failed extension is logged (once per streak); the work goes on.
async fn extend(sqs: &Sqs, batch: &Watched) {
    let visibility = sqs.queue().visibility_timeout;
    // The batch holds its records until its heartbeat is stopped, which waits for this extension.
    let Some(records) = batch.records.upgrade() else {
        let mut state = batch.state.lock().unwrap_or_else(PoisonError::into_inner);
        (state.extending, state.done) = (false, true);
        return;
    };
    let count = records.len();
    // SQS counts its cap from the receive, which came after `asked`: this errs early.
    let extend = visibility.min(MAX_INVISIBLE.saturating_sub(batch.asked.elapsed()));
    let sent = Instant::now();
    let extended = if extend < Duration::from_secs(1) {
        tracing::warn!(
            messages = count,
            "work has run for 12 hours, SQS's visibility cap: the messages will become visible again"
        );
        None
    } else {
        let seconds = i32::try_from(extend.as_secs()).unwrap_or(i32::MAX);
        let changes: Vec<(&SqsMessage, i32)> = records.iter().map(|r| (r, seconds)).collect();
        Some((sqs.set_visibility(&changes, Retries::times(1)).await, seconds))
    };
    // Given back before the batch can learn that the extension is over: the batch frees them.
    drop(records);
    {
        let mut state = batch.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.extending = false;
        match extended {
            None => state.done = true,
            Some((extended, seconds)) if extended == count => {
                *batch.invisible_until.lock().unwrap_or_else(PoisonError::into_inner) = sent + extend;
                state.failing = false;
                tracing::debug!(messages = extended, visibility_secs = seconds, "visibility extended");
            }
            Some((extended, _)) => {
                if !state.failing {
                    tracing::warn!(
                        failed = count - extended,
                        "heartbeat could not extend visibility; the work goes on"
                    );
                }
                state.failing = true;
            }
        }
        state.next = sent + interval(visibility);
    }
    batch.extended.notify_one();
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::config::{BehaviorVersion, Region};

    use super::*;
    use crate::aws::Queue;

    fn sqs() -> Sqs {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        let queue = Queue {
            url: "http://127.0.0.1:1/000000000000/q".into(),
            arn: "arn:aws:sqs:us-east-1:000000000000:q".into(),
            fifo: false,
            visibility_timeout: Duration::from_secs(30),
            redrive: None,
        };
        Sqs::new(aws_sdk_sqs::Client::from_conf(config), queue)
    }

    fn housekeeper() -> Housekeeper {
        Housekeeper { batches: Arc::default(), stop: CancellationToken::new() }
    }

    #[test]
    fn a_watched_batchs_records_are_held_by_its_task_alone() {
        let records: Arc<[SqsMessage]> = vec![SqsMessage::default(); 3].into();
        let asked = Instant::now();
        let heartbeat = housekeeper().keep_invisible(&sqs(), &records, asked, Arc::new(Mutex::new(asked)));
        assert!(heartbeat.is_some());
        assert_eq!(Arc::strong_count(&records), 1, "the heartbeat must not be the one to free them");
    }

    #[tokio::test]
    async fn a_stopped_batch_is_never_due_an_extension() {
        let records: Arc<[SqsMessage]> = vec![SqsMessage::default()].into();
        let (house, asked) = (housekeeper(), Instant::now());
        let watched = house.keep_invisible(&sqs(), &records, asked, Arc::new(Mutex::new(asked))).unwrap();
        let later = asked + Duration::from_secs(60);
        let running = house.keep_invisible(&sqs(), &records, asked, Arc::new(Mutex::new(asked))).unwrap();
        watched.stop().await;
        let due = due(&house.batches, later);
        assert_eq!(due.len(), 1, "only the batch still running is extended");
        assert!(Arc::ptr_eq(&due[0], &running.0));
    }
}
