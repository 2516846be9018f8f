//! Planning a batch into lanes that may run at once (FIFO: one per message group, in order), and
//! the outcomes the lanes fill in.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use aws_lambda_events::sqs::SqsMessage;

use crate::error::Error;
use crate::options::FifoMode;

use super::{BatchReport, NotStarted, Outcome};

/// Attribute Lambda and SQS set on every FIFO message.
pub(super) const MESSAGE_GROUP_ID: &str = "MessageGroupId";

/// Whether the records come from a FIFO queue, by their source ARN.
#[must_use]
pub fn is_fifo(records: &[SqsMessage]) -> bool {
    records.iter().any(|r| r.event_source_arn.as_deref().is_some_and(|arn| arn.ends_with(".fifo")))
}

/// Every record's outcome as it is known, shared by the lanes while they run.
pub(super) struct Slots {
    /// `None` once the report has been taken: a lane left behind cannot change it any more.
    outcomes: Mutex<Option<Vec<Option<Outcome>>>>,
    started: Box<[AtomicBool]>,
}

impl Slots {
    pub(super) fn new(len: usize) -> Self {
        Self {
            outcomes: Mutex::new(Some(std::iter::repeat_with(|| None).take(len).collect())),
            started: std::iter::repeat_with(AtomicBool::default).take(len).collect(),
        }
    }

    pub(super) fn start(&self, index: usize) {
        self.started[index].store(true, Ordering::Release);
    }

    pub(super) fn set(&self, index: usize, outcome: Outcome) {
        if let Some(outcomes) = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            outcomes[index] = Some(outcome);
        }
    }

    pub(super) fn report(&self, abandoned: bool) -> BatchReport {
        let outcomes =
            self.outcomes.lock().unwrap_or_else(PoisonError::into_inner).take().unwrap_or_default();
        let outcomes = outcomes
            .into_iter()
            .zip(&self.started)
            .map(|(outcome, started)| match outcome {
                Some(outcome) => outcome,
                None if !started.load(Ordering::Acquire) => Outcome::NotStarted(NotStarted::Stopped),
                None if abandoned => Outcome::Abandoned,
                // Every started message of a lane that ran to its end has an outcome; a lane can
                // only end early by panicking outside the handler, which the core does not do.
                None => {
                    Outcome::Failed(Error::Panicked("the message's task ended without an outcome".into()))
                }
            })
            .collect();
        BatchReport::new(outcomes)
    }
}

/// Splits a batch into lanes that may run concurrently: one message each for a standard queue;
/// for a FIFO queue, one message group each (in arrival order) when a failure skips only its
/// group, else the whole batch in one lane.
///
/// Returns record indices reordered so that each lane is a contiguous range of them.
pub(super) fn plan_lanes(records: &[SqsMessage], fifo: FifoMode) -> (Vec<usize>, Vec<Range<usize>>) {
    if !is_fifo(records) {
        return ((0..records.len()).collect(), (0..records.len()).map(|i| i..i + 1).collect());
    }
    if fifo == FifoMode::StopBatch {
        // AWS's rule is one of order across the whole batch: "stop at the first failure and
        // return it and every later message" only means something when they run in turn.
        let whole = 0..records.len();
        return (whole.clone().collect(), std::iter::once(whole).collect());
    }
    // Groups in order of first appearance; a record without a group id is a group of its own.
    let group_of = |i: usize| records[i].attributes.get(MESSAGE_GROUP_ID).map(String::as_str);
    let mut first_seen: Vec<usize> = Vec::new();
    let group_rank: Vec<usize> = (0..records.len())
        .map(|i| {
            let earlier =
                group_of(i).and_then(|group| first_seen.iter().position(|&j| group_of(j) == Some(group)));
            earlier.unwrap_or_else(|| {
                first_seen.push(i);
                first_seen.len() - 1
            })
        })
        .collect();
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by_key(|&i| group_rank[i]); // stable: keeps arrival order within a group
    let mut lanes = Vec::with_capacity(first_seen.len());
    let mut start = 0;
    for end in 1..=order.len() {
        if end == order.len() || group_rank[order[end]] != group_rank[order[start]] {
            lanes.push(start..end);
            start = end;
        }
    }
    (order, lanes)
}
