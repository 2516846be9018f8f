//! The in-memory store: for tests and local development in one process.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use crate::error::BoxError;

use super::{Claim, Record, Store};

/// Records in this process's memory: what tests and a single local process need. Two processes
/// do not share it, and it forgets everything at exit: use a shared store (DynamoDB) when
/// duplicates may reach different processes, as they do in Lambda.
///
/// Expired records are dropped as their keys are claimed again; the map holds at most the keys
/// seen within one expiry period.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, Record>>,
}

impl MemoryStore {
    /// The record of `id`, if any: for tests.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<Record> {
        self.lock().get(id).cloned()
    }

    /// Every record, in no order: for tests.
    #[must_use]
    pub fn records(&self) -> Vec<Record> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // A panic while the lock was held left no half-written record: every change is one insert
        // or one remove.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    async fn claim(&self, record: &Record, now: SystemTime) -> Result<Claim, BoxError> {
        let mut records = self.lock();
        if let Some(existing) = records.get(&record.id).filter(|existing| !existing.is_free_for(record, now))
        {
            return Ok(Claim::Taken(existing.clone()));
        }
        records.insert(record.id.clone(), record.clone());
        Ok(Claim::Claimed)
    }

    async fn complete(&self, record: &Record) -> Result<(), BoxError> {
        self.lock().insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn release(&self, claim: &Record) -> Result<(), BoxError> {
        let mut records = self.lock();
        if records.get(&claim.id).is_some_and(|held| held.holder == claim.holder) {
            records.remove(&claim.id);
        }
        Ok(())
    }
}
