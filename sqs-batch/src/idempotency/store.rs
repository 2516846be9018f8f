//! Where idempotency records live: the [`Store`] trait and the record it keeps.

use std::future::Future;
use std::time::SystemTime;

use crate::error::BoxError;

/// A key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A delivery claimed the key and may still be running (stored as `INPROGRESS`).
    InProgress,
    /// A delivery finished the work (stored as `COMPLETED`, as Powertools stores it).
    Completed,
}

impl Status {
    /// The stored text: Powertools' values, so one table serves both.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "INPROGRESS",
            Self::Completed => "COMPLETED",
        }
    }

    /// The status a stored text stands for.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "INPROGRESS" => Some(Self::InProgress),
            "COMPLETED" => Some(Self::Completed),
            _ => None,
        }
    }
}

/// One key's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record id: the namespace and a hash of the key.
    pub id: String,
    /// Its state.
    pub status: Status,
    /// When the record stops counting (a completed key runs again after it); DynamoDB's TTL.
    pub expires: SystemTime,
    /// When an `INPROGRESS` record stops holding its key: the invocation's deadline.
    pub in_progress_until: Option<SystemTime>,
    /// A hash of the body it was written for, when payloads are validated.
    pub payload: Option<String>,
    /// The delivery that holds an `INPROGRESS` record.
    pub holder: Option<Delivery>,
}

/// One delivery of an SQS message: which message, and which time it was handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// SQS's message id.
    pub message_id: String,
    /// Its `ApproximateReceiveCount` at this delivery.
    pub receive_count: u32,
    /// A random token of this claim: a record that carries it was written by this very call (an
    /// attempt whose answer was lost, found by the SDK's retry).
    pub attempt: String,
}

impl Record {
    /// Whether the record no longer holds its key at `now`: expired, or `INPROGRESS` past its
    /// invocation's deadline.
    #[must_use]
    pub fn is_free_at(&self, now: SystemTime) -> bool {
        self.expires <= now
            || (self.status == Status::InProgress && self.in_progress_until.is_some_and(|until| until <= now))
    }

    /// Whether `claim` may replace this record at `now`: it is free ([`Record::is_free_at`]), or
    /// it is `INPROGRESS` for an earlier delivery of the same SQS message. SQS hands a message
    /// out again only once its visibility timeout has passed, and Lambda refuses a function whose
    /// timeout is longer than that, so the earlier delivery has ended: it crashed, timed out, or
    /// never heard its store answer (a claim whose answer was lost in an outage is taken over by
    /// the message's next delivery instead of holding the key to its deadline). One rule for
    /// every store: DynamoDB's condition says the same.
    #[must_use]
    pub fn is_free_for(&self, claim: &Record, now: SystemTime) -> bool {
        let earlier_delivery = match (&self.holder, &claim.holder) {
            (Some(held), Some(claiming)) => {
                !held.message_id.is_empty()
                    && held.message_id == claiming.message_id
                    && held.receive_count < claiming.receive_count
            }
            _ => false,
        };
        self.is_free_at(now) || (self.status == Status::InProgress && earlier_delivery)
    }
}

/// What [`Store::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: the record is written, `INPROGRESS`, and this delivery holds it.
    Claimed,
    /// Another record holds the key: completed, or in progress elsewhere.
    Taken(Record),
}

/// Where the idempotency layer keeps its records. Each call is one atomic step: two deliveries
/// claiming one key at once, from two processes, must see one of them win.
///
/// Every error is a store failure, and the layer makes it a transient failure of the message.
pub trait Store: Send + Sync + 'static {
    /// Writes `record` (`INPROGRESS`) unless a record that is not free for it at `now`
    /// ([`Record::is_free_for`]) holds its id, which it then returns.
    fn claim(&self, record: &Record, now: SystemTime)
    -> impl Future<Output = Result<Claim, BoxError>> + Send;

    /// Replaces the record with `record` (`COMPLETED`): the work finished.
    fn complete(&self, record: &Record) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Deletes the `INPROGRESS` record `claim` wrote, if it still holds the key (another delivery
    /// may have taken it over meanwhile): the work failed, and its retry should run.
    fn release(&self, claim: &Record) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// A shared store: a test or a tool keeps a handle on what the layer writes.
impl<S: Store> Store for std::sync::Arc<S> {
    fn claim(
        &self,
        record: &Record,
        now: SystemTime,
    ) -> impl Future<Output = Result<Claim, BoxError>> + Send {
        (**self).claim(record, now)
    }

    fn complete(&self, record: &Record) -> impl Future<Output = Result<(), BoxError>> + Send {
        (**self).complete(record)
    }

    fn release(&self, claim: &Record) -> impl Future<Output = Result<(), BoxError>> + Send {
        (**self).release(claim)
    }
}
