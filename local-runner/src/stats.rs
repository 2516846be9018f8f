//! Counters of a run, shared by every task, and the summary they add up to.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters; each is only ever added to.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) received: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) deleted: AtomicU64,
    pub(crate) delete_failed: AtomicU64,
    pub(crate) released: AtomicU64,
}

/// What a run did, counted in messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages received from SQS (a redelivered message counts each time).
    pub received: u64,
    /// Handled successfully.
    pub succeeded: u64,
    /// Handled and failed: left on the queue for its redrive policy.
    pub failed: u64,
    /// Not started (FIFO group stopped at an earlier failure, or shutdown).
    pub skipped: u64,
    /// Deleted after success.
    pub deleted: u64,
    /// Succeeded but could not be deleted: SQS will deliver them again.
    pub delete_failed: u64,
    /// Made visible again at once because they were received but not started before a stop.
    pub released: u64,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn summary(&self) -> Summary {
        Summary {
            received: self.received.load(Relaxed),
            succeeded: self.succeeded.load(Relaxed),
            failed: self.failed.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            deleted: self.deleted.load(Relaxed),
            delete_failed: self.delete_failed.load(Relaxed),
            released: self.released.load(Relaxed),
        }
    }
}
