//! Counters of a run, shared by every task, and the summary they add up to. The same counters
//! are what `--metrics-addr` serves, so the summary, the stats line and the metrics never disagree.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::failures::{FailureGroup, Failures};
use super::user_metrics::{Served, UserMetrics};
use crate::aws::queue::Redrive;

/// Live counters; each counter is only ever added to.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) received: Counter,
    pub(crate) succeeded: Counter,
    pub(crate) duplicate: Counter,
    pub(crate) ignored: Counter,
    pub(crate) failed: Counter,
    pub(crate) skipped: Counter,
    pub(crate) abandoned: Counter,
    /// Records no filter matched: deleted without being handled.
    pub(crate) filtered: Counter,
    /// Records handed to an invocation (of the function, or of the handler in process).
    pub(crate) invoked: Counter,
    /// Records of invocations that failed as a whole.
    pub(crate) failed_invoke: Counter,
    pub(crate) deleted: Counter,
    /// DroppedEventCount's series: never added to (an SQS mapping drops nothing; SQS itself
    /// moves failures to the DLQ), there so that a dashboard's query finds it.
    pub(crate) dropped: Counter,
    pub(crate) delete_failed: Counter,
    pub(crate) deleted_late: Counter,
    pub(crate) released: Counter,
    /// Failed messages whose back-off could not be set: they come back after the queue's
    /// visibility timeout instead.
    pub(crate) requeue_failed: Counter,
    /// ReceiveMessage calls that failed (the endpoint down or refusing).
    pub(crate) receive_errors: Counter,
    /// ReceiveMessage calls that may have reached SQS and got no answer.
    pub(crate) receives_cut_off: Counter,
    /// Messages being handled right now.
    pub(crate) in_flight: Gauge,
    /// How long each batch took to run, from its start to its report.
    pub(crate) batch_seconds: Histogram,
    /// Messages per batch.
    pub(crate) batch_size: Histogram,
    /// Age of the last batch's oldest message when it ended, from its `SentTimestamp`.
    pub(crate) oldest_message_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Why messages failed, and where they went.
    pub(crate) failures: Failures,
    /// What the handler recorded ([`sqs_batch::metrics`]).
    pub(crate) user: std::sync::Arc<UserMetrics>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            received: Counter::default(),
            succeeded: Counter::default(),
            duplicate: Counter::default(),
            ignored: Counter::default(),
            failed: Counter::default(),
            skipped: Counter::default(),
            abandoned: Counter::default(),
            filtered: Counter::default(),
            invoked: Counter::default(),
            failed_invoke: Counter::default(),
            deleted: Counter::default(),
            dropped: Counter::default(),
            delete_failed: Counter::default(),
            deleted_late: Counter::default(),
            released: Counter::default(),
            requeue_failed: Counter::default(),
            receive_errors: Counter::default(),
            receives_cut_off: Counter::default(),
            in_flight: Gauge::default(),
            // 1 ms to about 65 s: a no-op batch up to work near a Lambda's longer timeouts.
            batch_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            // 1 to 16,384: a single message up to the event source mapping's largest batch.
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            oldest_message_age: Gauge::default(),
            failures: Failures::default(),
            user: std::sync::Arc::default(),
        }
    }
}

/// What a run did, counted in messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Messages received from SQS (a redelivered message counts each time).
    pub received: u64,
    /// Handled successfully.
    pub succeeded: u64,
    /// Answered as duplicates of messages already handled (an idempotency layer): deleted,
    /// not handled again. Counted in process; under `--lambda` the function's lines say so.
    pub duplicate: u64,
    /// Records that needed no work (S3's test event, `Error::Ignored`): deleted, not handled.
    /// Counted in process; under `--lambda` the function's lines say so.
    pub ignored: u64,
    /// Handled and failed: left on the queue for its redrive policy.
    pub failed: u64,
    /// Not started (FIFO group stopped at an earlier failure, or shutdown).
    pub skipped: u64,
    /// Started but given up when the shutdown timeout ran out: released, delivered again.
    pub abandoned: u64,
    /// Matched no filter of the event source mapping: deleted without being handled, as Lambda
    /// does (counted in `received`, never in `deleted`).
    pub filtered: u64,
    /// Handed to an invocation (of the function, or of the handler in process).
    pub invoked: u64,
    /// Of invocations that failed as a whole (an error, a timeout, a crash).
    pub failed_invoke: u64,
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
    /// Failed messages whose retry back-off could not be set: they come back after the queue's
    /// visibility timeout instead. A delay, never a loss.
    pub requeue_failed: u64,
    /// ReceiveMessage calls that may have reached SQS and got no answer (a timeout, a connection
    /// lost mid-way): SQS may have taken messages for them, which come back after their
    /// visibility timeout. A delay, never a loss.
    pub receives_cut_off: u64,
    /// The queue's name.
    pub queue: String,
    /// From the start of polling to the end of the stop.
    pub elapsed: Duration,
    /// The failures by reason, most first, and where their messages went.
    pub failures: Vec<FailureGroup>,
    /// The queue's redrive policy, which the failures were measured against.
    pub redrive: Option<Redrive>,
    /// The template's mapping asks for its own metrics (`MetricsConfig: {Metrics: [EventCount]}`):
    /// the summary shows these counts by the names CloudWatch gives them.
    pub event_count_metrics: bool,
    /// What the handler recorded ([`sqs_batch::metrics`]): in process from its reports, under
    /// `--lambda` from the function's Embedded Metric Format lines.
    pub metrics: sqs_batch::metrics::Metrics,
}

impl Summary {
    /// The event source mapping's EventCount metrics as CloudWatch names them, from this run's
    /// counts. DroppedEventCount counts records dropped at a mapping's age or retry limits, which
    /// only stream sources have: for SQS it is always 0 (SQS itself moves failures to the DLQ).
    #[must_use]
    pub fn event_counts(&self) -> [(&'static str, u64); 6] {
        [
            ("PolledEventCount", self.received),
            ("InvokedEventCount", self.invoked),
            ("FilteredOutEventCount", self.filtered),
            ("FailedInvokeEventCount", self.failed_invoke),
            ("DeletedEventCount", self.deleted),
            ("DroppedEventCount", 0),
        ]
    }
}

impl Stats {
    pub(crate) fn add(counter: &Counter, n: usize) {
        counter.inc_by(n as u64);
    }

    pub(crate) fn in_flight(&self) -> u64 {
        u64::try_from(self.in_flight.get()).unwrap_or(0)
    }

    pub(crate) fn summary(&self) -> Summary {
        Summary {
            received: self.received.get(),
            succeeded: self.succeeded.get(),
            duplicate: self.duplicate.get(),
            ignored: self.ignored.get(),
            failed: self.failed.get(),
            skipped: self.skipped.get(),
            abandoned: self.abandoned.get(),
            filtered: self.filtered.get(),
            invoked: self.invoked.get(),
            failed_invoke: self.failed_invoke.get(),
            deleted: self.deleted.get(),
            delete_failed: self.delete_failed.get(),
            deleted_late: self.deleted_late.get(),
            released: self.released.get(),
            requeue_failed: self.requeue_failed.get(),
            receives_cut_off: self.receives_cut_off.get(),
            metrics: self.user.snapshot(),
            ..Summary::default()
        }
    }

    /// These counters as Prometheus metrics (`local_runner_*`), labelled with the queue. Where the
    /// event source mapping has a metric of its own (PolledEventCount, FilteredOutEventCount,
    /// InvokedEventCount, FailedInvokeEventCount, DeletedEventCount), the series is named after
    /// it, and the function's own metrics (the bootstrap's Embedded Metric Format line:
    /// MessagesSucceeded, MessagesFailed, MessagesNotStarted, BatchSize, BatchDuration,
    /// OldestMessageAge) by the same names in snake case, so a dashboard built locally carries
    /// over.
    pub(crate) fn registry(&self, queue: &str) -> Registry {
        let label = [(std::borrow::Cow::Borrowed("queue"), std::borrow::Cow::Owned(queue.to_owned()))];
        let mut registry = Registry::with_prefix_and_labels("local_runner", label.into_iter());
        let events = [
            (
                "polled_events",
                "Messages received from SQS (PolledEventCount); a redelivery counts again",
                &self.received,
            ),
            (
                "filtered_out_events",
                "Messages no filter matched, deleted without being handled (FilteredOutEventCount)",
                &self.filtered,
            ),
            ("invoked_events", "Messages handed to an invocation (InvokedEventCount)", &self.invoked),
            (
                "failed_invoke_events",
                "Messages of invocations that failed as a whole (FailedInvokeEventCount)",
                &self.failed_invoke,
            ),
            ("deleted_events", "Messages deleted after success (DeletedEventCount)", &self.deleted),
            (
                "dropped_events",
                "Records dropped at a mapping's age or retry limits (DroppedEventCount): stream sources only, always 0 for SQS",
                &self.dropped,
            ),
        ];
        for (name, help, counter) in events {
            registry.register(name, help, counter.clone());
        }
        let messages = [
            ("succeeded", "Messages handled successfully (MessagesSucceeded)", &self.succeeded),
            (
                "duplicate",
                "Messages answered as duplicates of messages already handled (MessagesDuplicate)",
                &self.duplicate,
            ),
            ("ignored", "Records that needed no work, deleted unhandled (MessagesIgnored)", &self.ignored),
            (
                "failed",
                "Messages handled that failed; left to the queue's redrive policy (MessagesFailed)",
                &self.failed,
            ),
            (
                "not_started",
                "Messages not started: behind a failure in their FIFO group, or at shutdown (MessagesNotStarted)",
                &self.skipped,
            ),
            ("abandoned", "Messages started but given up when the shutdown timeout ran out", &self.abandoned),
            (
                "delete_failed",
                "Messages that succeeded but could not be deleted; SQS delivers them again",
                &self.delete_failed,
            ),
            (
                "deleted_late",
                "Messages deleted only after their visibility timeout had run out",
                &self.deleted_late,
            ),
            (
                "released",
                "Messages made visible again at once: a stop came before they started, or they were given up",
                &self.released,
            ),
            (
                "requeue_failed",
                "Failed messages whose retry back-off could not be set; they come back after the queue's visibility timeout",
                &self.requeue_failed,
            ),
        ];
        for (name, help, counter) in messages {
            registry.register(format!("messages_{name}"), help, counter.clone());
        }
        registry.register("receive_errors", "ReceiveMessage calls that failed", self.receive_errors.clone());
        registry.register(
            "receives_cut_off",
            "ReceiveMessage calls that may have reached SQS and got no answer; their messages come back after the visibility timeout",
            self.receives_cut_off.clone(),
        );
        registry.register("messages_in_flight", "Messages being handled right now", self.in_flight.clone());
        registry.register_with_unit(
            "batch_duration",
            "How long each batch took, from its start to its outcomes (BatchDuration)",
            Unit::Seconds,
            self.batch_seconds.clone(),
        );
        registry.register("batch_size", "Messages per batch (BatchSize)", self.batch_size.clone());
        registry.register_with_unit(
            "oldest_message_age",
            "Age of the last batch's oldest message when it ended, from its SentTimestamp (OldestMessageAge)",
            Unit::Seconds,
            self.oldest_message_age.clone(),
        );
        registry.register_collector(Box::new(Served(std::sync::Arc::clone(&self.user))));
        registry
    }
}
