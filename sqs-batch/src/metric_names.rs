//! The metric names, in both runtimes (`local-runner` serves them as Prometheus metrics in
//! snake case).
//!
//! A module of its own at the bottom of the crate: the metrics a handler records may take none
//! of these names, and the EMF line writes them.

/// Messages in the invocation's batch.
pub const BATCH_SIZE: &str = "BatchSize";
/// Messages handled successfully.
pub const SUCCEEDED: &str = "MessagesSucceeded";
/// Messages answered as duplicates of messages already handled (an idempotency layer).
pub const DUPLICATE: &str = "MessagesDuplicate";
/// Records that needed no work (S3's test event, [`crate::error::Error::Ignored`]): deleted.
pub const IGNORED: &str = "MessagesIgnored";
/// Messages that failed.
pub const FAILED: &str = "MessagesFailed";
/// Messages not started (held back behind a FIFO failure, or past the deadline reserve).
pub const NOT_STARTED: &str = "MessagesNotStarted";
/// How long the batch took, in milliseconds.
pub const DURATION: &str = "BatchDuration";
/// Age of the batch's oldest message when the batch ended, from its `SentTimestamp`.
pub const OLDEST_AGE: &str = "OldestMessageAge";
/// 1 in the first invocation of an execution environment, as Powertools counts cold starts.
pub const COLD_START: &str = "ColdStart";
/// Every name above: a handler's own metric takes none of them.
pub const ALL: [&str; 9] =
    [BATCH_SIZE, SUCCEEDED, DUPLICATE, IGNORED, FAILED, NOT_STARTED, DURATION, OLDEST_AGE, COLD_START];
