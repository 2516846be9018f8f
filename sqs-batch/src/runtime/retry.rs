//! When a message that did not succeed comes back: one plan for both runtimes.
//!
//! A failed message's next delivery is set from its receive count (`initial × multiplier^(n − 1)`,
//! capped, with Spring Cloud AWS's jitter) by changing its visibility before the batch is
//! settled: `local-runner` does it as it settles a batch, the Lambda adapter before it returns the
//! partial batch response. Both call [`plan`] with the same [`Backoff`], read from the function's
//! environment, so a failing message has the same timeline in process, under `--lambda` and in
//! the deployed function. Without a back-off (`RETRY_BACKOFF_SECS=0`) failures keep the queue's
//! own visibility timeout, which is all Lambda's event source mapping does by itself.

use std::collections::HashMap;

use aws_lambda_events::sqs::SqsMessage;

use crate::batch::{BatchReport, NotStarted, Outcome};

pub use crate::backoff::{
    Backoff, Jitter, MAX_MULTIPLIER, MAX_VISIBILITY, RETRY_BACKOFF_JITTER_VAR, RETRY_BACKOFF_MAX_VAR,
    RETRY_BACKOFF_MULTIPLIER_VAR, RETRY_BACKOFF_VAR,
};

/// A message whose visibility is to change before the batch is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requeue {
    /// Its position in the batch.
    pub index: usize,
    /// The visibility to set: 0 makes it visible at once.
    pub seconds: i32,
    /// Why: what the runtimes count.
    pub reason: RequeueReason,
}

/// Why a message is given a new visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequeueReason {
    /// It failed: the back-off step of its receive count (0 for a permanent failure on a queue
    /// with a dead-letter queue, which spends its receives at once).
    Failed,
    /// It waits behind its FIFO group's failure, and comes back with it.
    HeldBack,
    /// It never started (a stop, the deadline reserve, an earlier failure of the FIFO batch) or
    /// was given up: it did not fail, so it comes back at once.
    Released,
}

/// The visibility each message that did not succeed gets.
///
/// - A failure: its back-off step (`backoff`); without a back-off it keeps the queue's own
///   timeout and is not listed. A failure no retry can fix comes back at once while
///   `dead_letter` says a redrive policy will take it; without one it would come back forever,
///   so it follows the back-off like any other failure. On a FIFO queue it follows the back-off
///   too: visible again at once it would head the next batches and, by AWS's rule, stop each of
///   them (every message behind it spending a receive, good ones into the DLQ at last); its own
///   group waits behind it either way.
/// - A message of a FIFO group held back behind its group's failure: the same visibility as that
///   failure, so the group comes back in order.
/// - A message never started, or given up: at once.
///
/// `chance` draws each failure's jitter (a number from 0.0 to 1.0).
#[must_use]
pub fn plan(
    records: &[SqsMessage],
    report: &BatchReport,
    backoff: Option<&Backoff>,
    dead_letter: bool,
    mut chance: impl FnMut() -> f64,
) -> Vec<Requeue> {
    let at_once = dead_letter && !crate::batch::is_fifo(records);
    let mut plan = Vec::new();
    let mut held_back = Vec::new();
    let mut group_seconds: HashMap<Option<&str>, i32> = HashMap::new();
    for (index, (record, outcome)) in records.iter().zip(&report.outcomes).enumerate() {
        match outcome {
            Outcome::Succeeded | Outcome::Duplicate | Outcome::Ignored(_) => {}
            Outcome::Failed(error) => {
                let seconds = match backoff {
                    _ if !error.is_retryable() && at_once => 0,
                    Some(backoff) => backoff.visibility_secs(receive_count(record), chance()),
                    None => continue,
                };
                group_seconds.insert(group_of(record), seconds);
                plan.push(Requeue { index, seconds, reason: RequeueReason::Failed });
            }
            Outcome::NotStarted(NotStarted::EarlierInGroupFailed) => held_back.push(index),
            Outcome::NotStarted(_) | Outcome::Abandoned => {
                plan.push(Requeue { index, seconds: 0, reason: RequeueReason::Released });
            }
        }
    }
    for index in held_back {
        if let Some(&seconds) = group_seconds.get(&group_of(&records[index])) {
            plan.push(Requeue { index, seconds, reason: RequeueReason::HeldBack });
        }
    }
    plan
}

/// A record's `ApproximateReceiveCount`, 1 when missing.
#[must_use]
pub fn receive_count(record: &SqsMessage) -> u32 {
    record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1)
}

fn group_of(record: &SqsMessage) -> Option<&str> {
    record.attributes.get("MessageGroupId").map(String::as_str)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::Error;

    fn backoff(initial: u64, multiplier: f64, max: u64, jitter: Jitter) -> Backoff {
        Backoff { initial: Duration::from_secs(initial), multiplier, max: Duration::from_secs(max), jitter }
    }

    #[test]
    fn the_step_grows_by_the_multiplier_up_to_its_max() {
        let doubling = backoff(2, 2.0, 60, Jitter::None);
        let steps: Vec<i32> = (1..=7).map(|n| doubling.visibility_secs(n, 0.5)).collect();
        assert_eq!(steps, [2, 4, 8, 16, 32, 60, 60]);
        let fixed = backoff(5, 1.0, 60, Jitter::None);
        assert_eq!((1..=3).map(|n| fixed.visibility_secs(n, 0.5)).collect::<Vec<_>>(), [5, 5, 5]);
        let gentle = backoff(10, 1.5, 900, Jitter::None);
        assert_eq!((1..=3).map(|n| gentle.visibility_secs(n, 0.5)).collect::<Vec<_>>(), [10, 15, 23]);
    }

    #[test]
    fn no_receive_count_or_setting_goes_past_twelve_hours() {
        let huge = backoff(43_200, MAX_MULTIPLIER, u64::MAX / 2, Jitter::None);
        for receive_count in [1, 2, 50, u32::MAX] {
            assert_eq!(huge.visibility_secs(receive_count, 1.0), 43_200);
        }
    }

    #[test]
    fn jitter_stays_within_spring_s_bounds() {
        let full = backoff(8, 2.0, 900, Jitter::Full);
        let half = backoff(8, 2.0, 900, Jitter::Half);
        assert_eq!((full.visibility_secs(2, 0.0), full.visibility_secs(2, 1.0)), (0, 16));
        assert_eq!((half.visibility_secs(2, 0.0), half.visibility_secs(2, 1.0)), (8, 16));
        assert_eq!(half.visibility_secs(2, 0.5), 12);
    }

    fn record(id: &str, receive_count: u32, group: Option<&str>) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.into());
        record.attributes.insert("ApproximateReceiveCount".into(), receive_count.to_string());
        if let Some(group) = group {
            record.attributes.insert("MessageGroupId".into(), group.into());
        }
        record
    }

    fn report(outcomes: Vec<Outcome>) -> BatchReport {
        BatchReport::new(outcomes)
    }

    #[test]
    fn failures_get_their_step_and_what_never_ran_comes_back_at_once() {
        let records = [record("ok", 1, None), record("retry", 3, None), record("stopped", 1, None)];
        let outcomes = report(vec![
            Outcome::Succeeded,
            Outcome::Failed(Error::transient("busy")),
            Outcome::NotStarted(NotStarted::Stopped),
        ]);
        let plan = plan(&records, &outcomes, Some(&Backoff::default()), true, || 0.5);
        assert_eq!(
            plan,
            [
                Requeue { index: 1, seconds: 8, reason: RequeueReason::Failed },
                Requeue { index: 2, seconds: 0, reason: RequeueReason::Released },
            ]
        );
    }

    #[test]
    fn a_permanent_failure_comes_back_at_once_only_when_a_dead_letter_queue_takes_it() {
        let records = [record("poison", 2, None)];
        let outcomes = report(vec![Outcome::Failed(Error::permanent("not JSON"))]);
        let with_dlq = plan(&records, &outcomes, Some(&Backoff::default()), true, || 0.5);
        assert_eq!(with_dlq[0].seconds, 0);
        let without = plan(&records, &outcomes, Some(&Backoff::default()), false, || 0.5);
        assert_eq!(without[0].seconds, 4, "it would spin: it backs off like any failure");
        let off = plan(&records, &outcomes, None, false, || 0.5);
        assert!(off.is_empty(), "no back-off: the queue's own timeout");
    }

    #[test]
    fn on_a_fifo_queue_a_permanent_failure_backs_off_instead_of_heading_the_next_batch() {
        let mut poison = record("poison", 1, Some("a"));
        poison.event_source_arn = Some("arn:aws:sqs:us-east-1:1:q.fifo".into());
        let outcomes = report(vec![Outcome::Failed(Error::permanent("not JSON"))]);
        let plan = plan(&[poison], &outcomes, Some(&Backoff::default()), true, || 0.5);
        assert_eq!(plan[0].seconds, 2);
    }

    #[test]
    fn a_fifo_group_held_back_comes_back_with_its_failure() {
        let records = [record("a1", 1, Some("a")), record("b1", 1, Some("b")), record("a2", 1, Some("a"))];
        let outcomes = report(vec![
            Outcome::Failed(Error::transient("busy")),
            Outcome::Succeeded,
            Outcome::NotStarted(NotStarted::EarlierInGroupFailed),
        ]);
        let plan = plan(&records, &outcomes, Some(&Backoff::default()), true, || 0.5);
        assert_eq!(plan[1], Requeue { index: 2, seconds: 2, reason: RequeueReason::HeldBack });
    }
}
