//! When a run may call its queue drained (`--exit-when-idle`): receives have come back empty for
//! long enough, and no message received is still held.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Added to the time stranded messages are due back: SQS's timeouts are whole seconds.
const STRANDED_SLACK: Duration = Duration::from_secs(1);

/// The idle clock, fed by every receive and every settled batch.
#[derive(Debug)]
pub(crate) struct Idle {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Since when receives have come back empty; `None` after one brought messages or failed.
    /// An endpoint that fails or hangs is an outage, not an idle queue.
    empty_since: Option<Instant>,
    /// When a message was last received or settled.
    last_activity: Instant,
    /// Messages received and not yet settled: handled, being gathered into a batch, or waiting
    /// to be released. While any is held, the run is not idle.
    held: usize,
    /// Until when messages taken by a receive that was cut off may still be hidden: the run is
    /// not idle before, since they come back to it.
    stranded_until: Option<Instant>,
    /// A receive was cut off and no receive has been answered since: the endpoint may only now
    /// be acting on it, so its messages' timeout counts from the next answer.
    cut_off_pending: Option<Duration>,
}

impl Idle {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                empty_since: None,
                last_activity: Instant::now(),
                held: 0,
                stranded_until: None,
                cut_off_pending: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receive answered with `messages` messages, which are now held.
    pub(crate) fn received(&self, messages: usize) {
        let mut state = self.state();
        if let Some(visibility) = state.cut_off_pending.take() {
            // SQS answers again: whatever it did with the cut-off receive is done by now, and
            // what that receive took is hidden for at most its visibility timeout from here (and
            // a second, SQS's own rounding).
            let until = Instant::now() + visibility + STRANDED_SLACK;
            state.stranded_until = Some(state.stranded_until.map_or(until, |earlier| earlier.max(until)));
        }
        if messages == 0 {
            state.empty_since.get_or_insert_with(Instant::now);
        } else {
            state.empty_since = None;
            state.held += messages;
            state.last_activity = Instant::now();
        }
    }

    /// A receive failed: whatever the queue holds, this is not idleness.
    pub(crate) fn receive_failed(&self) {
        self.state().empty_since = None;
    }

    /// A receive was cut off after it may have reached SQS: messages it took stay hidden for up
    /// to `visibility` (counted from now, and again from the next answer) and then come back.
    /// Returns whether this starts a streak of cut-offs (no receive answered since the last).
    pub(crate) fn receive_cut_off(&self, visibility: Duration) -> bool {
        let mut state = self.state();
        state.empty_since = None;
        let until = Instant::now() + visibility + STRANDED_SLACK;
        state.stranded_until = Some(state.stranded_until.map_or(until, |earlier| earlier.max(until)));
        state.cut_off_pending.replace(visibility).is_none()
    }

    /// Messages that did not succeed come back at `at`. A run whose failures end (a queue with a
    /// dead-letter queue: each comes back, succeeds or moves there) is not idle before: `wait`.
    /// Without one a failing message comes back forever, so the idle exit does not wait for it;
    /// the summary says where it is.
    pub(crate) fn due_back(&self, at: Instant, wait: bool) {
        if wait {
            let mut state = self.state();
            let until = at + STRANDED_SLACK;
            state.stranded_until = Some(state.stranded_until.map_or(until, |earlier| earlier.max(until)));
        }
    }

    /// `messages` held messages are settled (deleted, released, left to their timeout).
    pub(crate) fn settled(&self, messages: usize) {
        let mut state = self.state();
        state.held = state.held.saturating_sub(messages);
        state.last_activity = Instant::now();
    }

    /// How long the run has been idle: receives answered and empty, nothing held, nothing
    /// settled in that time. Zero while it is not idle.
    pub(crate) fn idle_for(&self) -> Duration {
        self.idle_at(Instant::now())
    }

    /// How long the next receive may wait, for a run that exits once idle for `exit_after`: the
    /// long poll, cut to the whole seconds left before the idle exit (SQS waits whole seconds),
    /// or `None` once less than a second is left. A receive that outlived the exit would bring
    /// messages only to release them, each having spent a receive of its `maxReceiveCount`;
    /// messages not received by then stay on the queue for the next run, unspent.
    pub(crate) fn receive_wait(&self, long_poll: Duration, exit_after: Duration) -> Option<Duration> {
        self.receive_wait_at(Instant::now(), long_poll, exit_after)
    }

    fn receive_wait_at(&self, now: Instant, long_poll: Duration, exit_after: Duration) -> Option<Duration> {
        let idle = self.idle_at(now);
        if idle.is_zero() {
            return Some(long_poll);
        }
        let left = Duration::from_secs(exit_after.saturating_sub(idle).as_secs());
        (!left.is_zero()).then(|| long_poll.min(left))
    }

    /// [`Idle::idle_for`], as of `now`.
    fn idle_at(&self, now: Instant) -> Duration {
        let state = self.state();
        if state.held > 0 || state.cut_off_pending.is_some() {
            return Duration::ZERO;
        }
        // Idle since the last of: receives started coming back empty, a message was last
        // received or settled, stranded messages were due back. Messages due back restart the
        // clock: a whole idle window of empty receives must follow their return.
        let Some(empty_since) = state.empty_since else { return Duration::ZERO };
        let since = empty_since.max(state.last_activity).max(state.stranded_until.unwrap_or(empty_since));
        now.saturating_duration_since(since)
    }
}

/// Cancels `stop` once the run has been idle for `after`. Returns when the run stops.
pub(crate) async fn exit_when_idle(idle: Arc<Idle>, after: Duration, stop: CancellationToken) {
    let mut tick =
        tokio::time::interval((after / 4).clamp(Duration::from_millis(10), Duration::from_millis(250)));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if idle.idle_for() >= after {
            tracing::info!(idle_secs = after.as_secs_f64(), "idle with nothing in flight; stopping");
            stop.cancel();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATER: Duration = Duration::from_secs(60);

    #[test]
    fn receives_wait_no_longer_than_the_idle_exit_and_stop_in_its_last_second() {
        let idle = Idle::new();
        let (poll, exit) = (Duration::from_secs(20), Duration::from_secs(5));
        assert_eq!(idle.receive_wait(poll, exit), Some(poll), "not idle: the whole long poll");
        idle.received(0);
        let now = Instant::now();
        assert_eq!(
            idle.receive_wait_at(now + Duration::from_millis(1_500), poll, exit),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            idle.receive_wait_at(now + Duration::from_millis(4_200), poll, exit),
            None,
            "under a second left"
        );
        assert_eq!(idle.receive_wait_at(now + LATER, poll, exit), None, "past the exit");
        let short = Duration::from_secs(1);
        assert_eq!(idle.receive_wait_at(now + Duration::from_millis(500), short, exit), Some(short));
        idle.received(2);
        assert_eq!(idle.receive_wait_at(now + LATER, poll, exit), Some(poll), "messages held: busy again");
    }

    #[test]
    fn empty_receives_make_a_run_idle() {
        let idle = Idle::new();
        idle.received(0);
        assert!(idle.idle_at(Instant::now() + LATER) >= LATER - Duration::from_secs(1));
    }

    #[test]
    fn held_messages_keep_a_run_busy_whatever_other_receives_say() {
        let idle = Idle::new();
        idle.received(3); // one poller gathers a batch
        idle.received(0); // another one's receives come back empty
        assert_eq!(idle.idle_at(Instant::now() + LATER), Duration::ZERO);
        idle.settled(3);
        assert!(idle.idle_at(Instant::now() + LATER) > Duration::ZERO);
    }

    #[test]
    fn a_failed_receive_restarts_the_clock() {
        let idle = Idle::new();
        idle.received(0);
        idle.receive_failed();
        assert_eq!(idle.idle_at(Instant::now() + LATER), Duration::ZERO);
    }

    #[test]
    fn a_cut_off_receive_keeps_a_run_busy_until_its_messages_are_back() {
        let idle = Idle::new();
        assert!(idle.receive_cut_off(Duration::from_secs(30)), "the first of a streak");
        assert!(!idle.receive_cut_off(Duration::from_secs(30)), "the streak goes on");
        idle.received(0);
        assert_eq!(idle.idle_at(Instant::now() + Duration::from_secs(29)), Duration::ZERO, "still hidden");
        let due = Instant::now() + Duration::from_secs(31);
        assert!(idle.idle_at(due) < Duration::from_secs(1), "the idle window starts when they are due back");
        assert!(idle.idle_at(due + LATER) >= LATER - Duration::from_secs(1), "and runs from there");
        assert!(idle.receive_cut_off(Duration::from_secs(30)), "an answer ended the streak");
    }

    #[test]
    fn failures_due_back_keep_a_run_busy_only_while_their_retries_end() {
        let idle = Idle::new();
        idle.received(0);
        idle.due_back(Instant::now() + Duration::from_secs(30), true);
        assert_eq!(idle.idle_at(Instant::now() + Duration::from_secs(29)), Duration::ZERO, "due back");
        assert!(idle.idle_at(Instant::now() + LATER) >= LATER - Duration::from_secs(32));
        let forever = Idle::new();
        forever.received(0);
        forever.due_back(Instant::now() + Duration::from_secs(30), false);
        assert!(
            forever.idle_at(Instant::now() + Duration::from_secs(29)) > Duration::ZERO,
            "no DLQ: not waited for"
        );
    }

    #[test]
    fn nothing_received_yet_is_not_idle() {
        assert_eq!(Idle::new().idle_at(Instant::now() + LATER), Duration::ZERO);
    }
}
