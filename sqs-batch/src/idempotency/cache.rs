//! The optional in-process cache of completed keys, in front of the store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use super::{Record, Status};

/// Up to `capacity` completed records, the oldest inserted dropped first. Only completed records
/// are kept: an in-progress one changes elsewhere, a completed one only expires.
#[derive(Debug)]
pub(super) struct Cache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<String, Record>,
    order: VecDeque<String>,
}

impl Cache {
    pub(super) fn new(capacity: usize) -> Self {
        Self { capacity, inner: Mutex::new(Inner::default()) }
    }

    /// The completed record of `id`, unless it expired by `now`.
    pub(super) fn get(&self, id: &str, now: SystemTime) -> Option<Record> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.records.get(id).filter(|record| !record.is_free_at(now)).cloned()
    }

    pub(super) fn insert(&self, record: &Record) {
        if record.status != Status::Completed {
            return;
        }
        // Each change below leaves the map and the queue consistent before the next: a poisoned
        // lock holds nothing half-done.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.records.insert(record.id.clone(), record.clone()).is_none() {
            inner.order.push_back(record.id.clone());
        }
        while inner.order.len() > self.capacity {
            if let Some(oldest) = inner.order.pop_front() {
                inner.records.remove(&oldest);
            }
        }
    }
}
