//! How many invocations an SQS event source mapping runs at once, as AWS documents it
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html>): "When messages are
//! available, Lambda starts processing five batches at a time with five concurrent invocations of
//! your function. If messages are still available, Lambda increases the number of processes that
//! are reading batches by up to 300 more instances per minute", up to the mapping's
//! `MaximumConcurrency`. Here: five at first, then one more every 200 ms while an invocation
//! waits for one, never more than the maximum.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{AcquireError, Semaphore, SemaphorePermit, TryAcquireError};
use tokio::time::Instant;

/// Concurrent invocations a mapping starts with.
pub(crate) const START: usize = 5;
/// One more invocation at once per this much waiting: 300 a minute.
pub(crate) const STEP: Duration = Duration::from_millis(200);

/// The invocations allowed at once, growing under demand.
#[derive(Debug)]
pub(crate) struct Scaling {
    slots: Semaphore,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    granted: usize,
    max: usize,
    last_growth: Instant,
}

impl Scaling {
    /// Five at once (or `max`, when lower), at most `max` in the end.
    pub(crate) fn new(max: usize) -> Self {
        let granted = START.min(max);
        Self {
            slots: Semaphore::new(granted),
            state: Mutex::new(State { granted, max, last_growth: Instant::now() }),
        }
    }

    /// How many invocations may run at once now.
    #[cfg(test)]
    pub(crate) fn granted(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).granted
    }

    /// A slot for one invocation: at once when one is free; else, while waiting, the mapping
    /// grows by a slot each [`STEP`] until one frees or the maximum is reached.
    pub(crate) async fn acquire(&self) -> Result<SemaphorePermit<'_>, AcquireError> {
        loop {
            match self.slots.try_acquire() {
                Ok(permit) => return Ok(permit),
                Err(TryAcquireError::Closed) => return self.slots.acquire().await,
                Err(TryAcquireError::NoPermits) => {}
            }
            let Some(wait) = self.until_growth() else { return self.slots.acquire().await };
            tokio::select! {
                permit = self.slots.acquire() => return permit,
                () = tokio::time::sleep(wait) => self.grow(),
            }
        }
    }

    /// Time until the next slot may be added; `None` at the maximum.
    fn until_growth(&self) -> Option<Duration> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (state.granted < state.max)
            .then(|| (state.last_growth + STEP).saturating_duration_since(Instant::now()))
    }

    fn grow(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.granted < state.max && state.last_growth.elapsed() >= STEP {
            state.granted += 1;
            state.last_growth = Instant::now();
            self.slots.add_permits(1);
            tracing::debug!(concurrency = state.granted, "the event source mapping scales up");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_mapping_starts_with_five_and_grows_by_300_a_minute_under_demand_up_to_its_maximum() {
        let scaling = Arc::new(Scaling::new(20));
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(scaling.slots.try_acquire().expect("five at once"));
        }
        assert_eq!(scaling.granted(), 5);
        // Demand: fifteen invocations waiting, each keeping its slot once it has one.
        let (sender, mut granted_at) = tokio::sync::mpsc::unbounded_channel();
        let start = Instant::now();
        for _ in 0..15 {
            let (scaling, sender) = (Arc::clone(&scaling), sender.clone());
            tokio::spawn(async move {
                let permit = scaling.acquire().await.expect("open");
                sender.send(start.elapsed()).expect("listening");
                std::mem::forget(permit);
            });
        }
        let mut times = Vec::new();
        for _ in 0..15 {
            times.push(granted_at.recv().await.expect("a slot"));
        }
        assert_eq!(scaling.granted(), 20, "the maximum, not more");
        // One more slot per 200 ms: the fifteenth waited three seconds.
        let last = times.iter().max().copied().unwrap_or_default();
        assert!(last >= STEP * 15 && last < STEP * 16, "{times:?}");
        drop(held);
    }

    #[tokio::test(start_paused = true)]
    async fn without_demand_a_mapping_does_not_grow() {
        let scaling = Scaling::new(1000);
        let permit = scaling.acquire().await.expect("a slot");
        drop(permit);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(scaling.granted(), 5);
        assert_eq!(Scaling::new(2).granted(), 2, "a maximum below five is the start");
    }
}
