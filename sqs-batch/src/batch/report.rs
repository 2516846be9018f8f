//! What happened to each message of a batch, and what the invocation answers.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};

use crate::error::{BatchError, Error};
use crate::metrics::Metrics;
use crate::options::Options;

/// Why a message was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStarted {
    /// An earlier message of the same FIFO group failed (or was not started); handling this one
    /// would break the group's order.
    EarlierInGroupFailed,
    /// A message of another group of the FIFO batch failed first: AWS's rule for FIFO batches
    /// ([`crate::options::FifoMode::StopBatch`]) stops the whole batch there.
    EarlierInBatchFailed,
    /// The batch was told to stop before this message started (shutdown or deadline).
    Stopped,
}

impl NotStarted {
    /// The `reason` field of a skipped message's log line: stable, for tools and the terminal.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EarlierInGroupFailed => "earlier_in_group_failed",
            Self::EarlierInBatchFailed => "earlier_in_batch_failed",
            Self::Stopped => "stopped",
        }
    }
}

/// What happened to one message.
#[derive(Debug)]
pub enum Outcome {
    /// Handled successfully: the runtime deletes it.
    Succeeded,
    /// A duplicate of a message already handled, answered without handling it again (see
    /// [`crate::runtime::mark_duplicate`]): a success, deleted like one, counted apart.
    Duplicate,
    /// A record that needs no work ([`Error::Ignored`], S3's test event): a success, deleted like
    /// one, counted apart; the handler's work did not run. The reason is the one its log line
    /// gives (cut to a line's length).
    Ignored(String),
    /// Handled and failed: reported as a batch item failure; SQS delivers it again.
    Failed(Error),
    /// Never handled: reported as a batch item failure, so SQS delivers it again.
    NotStarted(NotStarted),
    /// Started, then given up on before it finished (a shutdown whose time ran out): whether its
    /// work happened is unknown, so it is delivered again.
    Abandoned,
}

impl Outcome {
    /// Whether the message was handled successfully and may be deleted.
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Duplicate | Self::Ignored(_))
    }

    /// The `outcome` field of the per-message log line.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Succeeded => "ok",
            Self::Duplicate => "duplicate",
            Self::Ignored(_) => "ignored",
            Self::Failed(_) => "failed",
            Self::NotStarted(_) => "skipped",
            Self::Abandoned => "abandoned",
        }
    }
}

/// How many messages of a batch ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// [`Outcome::Succeeded`].
    pub succeeded: usize,
    /// [`Outcome::Duplicate`].
    pub duplicate: usize,
    /// [`Outcome::Ignored`].
    pub ignored: usize,
    /// [`Outcome::Failed`].
    pub failed: usize,
    /// [`Outcome::NotStarted`].
    pub not_started: usize,
    /// [`Outcome::Abandoned`].
    pub abandoned: usize,
}

/// The outcome of every record of a batch, in the order the records came.
#[derive(Debug)]
pub struct BatchReport {
    /// `outcomes[i]` belongs to `records[i]` of the batch that was processed.
    pub outcomes: Vec<Outcome>,
    /// What the handler recorded for the messages that succeeded, and what it asked to keep of
    /// those that did not ([`crate::metrics`]).
    pub metrics: Metrics,
}

impl BatchReport {
    /// A report of `outcomes`, with no metrics recorded.
    #[must_use]
    pub fn new(outcomes: Vec<Outcome>) -> Self {
        Self { outcomes, metrics: Metrics::default() }
    }

    /// The partial batch response for Lambda's `ReportBatchItemFailures`: every message that did
    /// not succeed, by `messageId`, in record order.
    ///
    /// # Errors
    /// [`BatchError::UnidentifiedRecord`] when a record that did not succeed has no `messageId`:
    /// it cannot be reported alone, so the whole invocation must fail and every message of the
    /// batch comes back, rather than one being deleted unhandled.
    pub fn to_response(&self, records: &[SqsMessage]) -> Result<SqsBatchResponse, BatchError> {
        let mut response = SqsBatchResponse::default();
        for (index, (record, outcome)) in records.iter().zip(&self.outcomes).enumerate() {
            if outcome.is_success() {
                continue;
            }
            let id = record.message_id.as_deref().filter(|id| !id.is_empty());
            let id = id.ok_or(BatchError::UnidentifiedRecord { index })?;
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.to_owned();
            response.batch_item_failures.push(failure);
        }
        Ok(response)
    }

    /// What the invocation answers: the partial batch response, or, when every message failed
    /// and `options` ask for it (`FAIL_ON_FULL_BATCH_FAILURE`), a failed invocation, so that the
    /// event source mapping backs off. The one place this policy lives: the Lambda adapter and
    /// the test kit both answer through it.
    ///
    /// # Errors
    /// [`BatchError::AllFailed`], and as [`BatchReport::to_response`].
    pub fn respond(&self, records: &[SqsMessage], options: &Options) -> Result<SqsBatchResponse, BatchError> {
        if self.fails_the_invocation(options) {
            let counts = self.counts();
            return Err(BatchError::AllFailed { failed: counts.failed, not_started: counts.not_started });
        }
        self.to_response(records)
    }

    /// Whether the invocation fails as a whole rather than answer (see [`BatchReport::respond`]):
    /// every message failed and `options` ask for it. `local-runner` in process asks this too, so
    /// that it backs off as the event source mapping would.
    #[must_use]
    pub fn fails_the_invocation(&self, options: &Options) -> bool {
        options.fail_on_full_batch_failure && self.all_failed()
    }

    /// Whether a message was stopped at the batch's own timeout ([`super::Run::timeout`]): under
    /// Lambda the invocation would have timed out, a failure of the invocation as a whole.
    #[must_use]
    pub fn timed_out(&self) -> bool {
        self.outcomes.iter().any(|outcome| {
            matches!(outcome, Outcome::Failed(Error::Transient(cause)) if cause.is::<super::TimedOut>())
        })
    }

    /// How many messages ended each way.
    #[must_use]
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for outcome in &self.outcomes {
            match outcome {
                Outcome::Succeeded => counts.succeeded += 1,
                Outcome::Duplicate => counts.duplicate += 1,
                Outcome::Ignored(_) => counts.ignored += 1,
                Outcome::Failed(_) => counts.failed += 1,
                Outcome::NotStarted(_) => counts.not_started += 1,
                Outcome::Abandoned => counts.abandoned += 1,
            }
        }
        counts
    }

    /// Whether the batch failed as a whole: no message succeeded, and at least one was handled
    /// and failed (the rest held back behind failures). A batch stopped before anything started is
    /// not a failed batch.
    #[must_use]
    pub fn all_failed(&self) -> bool {
        let counts = self.counts();
        counts.succeeded == 0
            && counts.duplicate == 0
            && counts.ignored == 0
            && counts.failed > 0
            && counts.abandoned == 0
    }
}
