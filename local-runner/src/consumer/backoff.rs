//! Spacing receives out while the endpoint fails, and after an invocation failed as a whole. (A
//! failed message's next delivery is the framework's [`sqs_batch::runtime::retry`].)

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

/// The longest pause between receive attempts while the endpoint is failing, or after failed
/// invocations.
const MAX_PAUSE: Duration = Duration::from_secs(20);

/// Exponential back-off from 1 s after `failures` failures in a row, capped at 20 s, with up to a
/// quarter taken off at random so that pollers do not retry in step.
pub(crate) fn pause_after(failures: u32) -> Duration {
    let base = Duration::from_secs(1).saturating_mul(1 << failures.saturating_sub(1).min(5)).min(MAX_PAUSE);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    base - base / 4 * (nanos % 1000) / 1000
}

/// Lambda's event source mapping backs off when invocations fail as a whole (a function error,
/// a timeout, a crash, or a batch that failed entirely with `FAIL_ON_FULL_BATCH_FAILURE`). The
/// pollers do the same: after such a failure they wait before the next receive, longer with
/// each failure in a row, until an invocation succeeds.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    state: Mutex<(u32, Option<Instant>)>,
}

impl Throttle {
    /// Records how an invocation ended.
    pub(crate) fn invocation(&self, failed_whole: bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if failed_whole {
            state.0 += 1;
            let pause = pause_after(state.0);
            tracing::warn!(
                failures_in_a_row = state.0,
                pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                "the invocation failed as a whole; backing off before the next receive"
            );
            state.1 = Some(Instant::now() + pause);
        } else {
            *state = (0, None);
        }
    }

    /// Waits out a back-off in force, if any; false if `stop` came first.
    pub(crate) async fn wait(&self, stop: &CancellationToken) -> bool {
        let until = self.state.lock().unwrap_or_else(PoisonError::into_inner).1;
        let Some(until) = until.filter(|until| *until > Instant::now()) else { return true };
        tokio::select! {
            () = stop.cancelled() => false,
            () = tokio::time::sleep_until(until) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_from_about_a_second_and_stay_under_the_cap() {
        assert!(pause_after(1) <= Duration::from_secs(1) && pause_after(1) >= Duration::from_millis(750));
        assert!(pause_after(3) >= Duration::from_secs(3));
        for failures in 1..100 {
            assert!(pause_after(failures) <= MAX_PAUSE);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_invocation_pauses_receives_and_a_success_lifts_the_pause() {
        let throttle = Throttle::default();
        let stop = CancellationToken::new();
        throttle.invocation(true);
        let start = tokio::time::Instant::now();
        assert!(throttle.wait(&stop).await);
        assert!(start.elapsed() >= Duration::from_millis(750), "waited {:?}", start.elapsed());
        throttle.invocation(true);
        throttle.invocation(false);
        let start = tokio::time::Instant::now();
        assert!(throttle.wait(&stop).await);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
