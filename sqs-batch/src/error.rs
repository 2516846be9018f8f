//! What can go wrong with one message, and what happens to it next; and what can go wrong with a
//! whole batch.

use std::fmt;

use thiserror::Error as ThisError;

use crate::text::clip;

/// Any error, boxed: what [`Error::Transient`] and [`Error::Permanent`] carry as their cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why one message was not handled successfully.
///
/// Every variant but [`Ignored`](Error::Ignored) fails that message alone: it is reported as a
/// batch item failure, stays on the queue and, once the queue's `maxReceiveCount` is reached,
/// moves to the dead-letter queue. What differs is whether waiting before the next attempt can
/// help ([`Error::is_retryable`]):
///
/// | variant | retry may help | Lambda | `local-runner` |
/// |---|---|---|---|
/// | [`Transient`](Error::Transient) | yes | batch item failure | visible again after the retry back-off |
/// | [`Panicked`](Error::Panicked) | yes | batch item failure | visible again after the retry back-off |
/// | [`Permanent`](Error::Permanent) | no | batch item failure | visible again at once: no back-off wasted |
/// | [`InvalidBody`](Error::InvalidBody) | no | batch item failure | visible again at once: no back-off wasted |
/// | [`Ignored`](Error::Ignored) | not a failure | deleted | deleted |
///
/// `?` works on any [`std::error::Error`]: it becomes [`Error::Transient`], with the error kept
/// as its cause. Say otherwise with [`ResultExt::permanent`] or [`Error::permanent`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The record's body cannot become the message (not valid JSON, a wrong type, a missing or
    /// invalid field): the same body fails the same way every time. `field` names where, when
    /// it is known (`id`, `items[2].price`).
    InvalidBody {
        /// The JSON path of the offending field, if the error has one.
        field: Option<String>,
        /// What is wrong, in words.
        reason: String,
    },

    /// The work failed in a way a later attempt may not repeat: a timeout, a throttled
    /// dependency, a connection reset.
    Transient(BoxError),

    /// The work failed in a way every attempt will repeat: the message belongs in the
    /// dead-letter queue, and waiting between attempts only delays it getting there.
    Permanent(BoxError),

    /// The handler panicked. The panic was caught; the rest of the batch and the process go on.
    Panicked(String),

    /// Not a failure: the record needs no work (S3's `s3:TestEvent`, a command the handler does
    /// not take). It is deleted like a success and counted apart, as `ignored`, with this reason.
    /// A parse returns it to keep such a record from the handler.
    Ignored(String),
}

/// The most characters of a body's field path an [`Error::InvalidBody`] keeps.
const MAX_FIELD_CHARS: usize = 100;
/// The most characters of the reason an [`Error::InvalidBody`] keeps.
const MAX_REASON_CHARS: usize = 300;

impl Error {
    /// A failure worth retrying after a pause, from an error or a message.
    pub fn transient(cause: impl Into<BoxError>) -> Self {
        Self::Transient(cause.into())
    }

    /// A failure no retry can fix, from an error or a message.
    pub fn permanent(cause: impl Into<BoxError>) -> Self {
        Self::Permanent(cause.into())
    }

    /// A record that needs no work, and why: deleted, counted as `ignored` (see [`Error::Ignored`]).
    pub fn ignore(reason: impl Into<String>) -> Self {
        Self::Ignored(reason.into())
    }

    /// A body that cannot become the message, naming the field when there is one. Both are cut
    /// to a line's length: a parser's reason quotes the body (serde's "invalid type: string
    /// \"...\"" quotes a whole value), and the body is the producer's to make as long as it likes.
    pub fn invalid_body(field: Option<&str>, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let reason = match clip(&reason, MAX_REASON_CHARS) {
            std::borrow::Cow::Borrowed(_) => reason,
            std::borrow::Cow::Owned(cut) => cut,
        };
        Self::InvalidBody { field: field.map(|f| clip(f, MAX_FIELD_CHARS).into_owned()), reason }
    }

    /// Whether waiting and trying the same message again can succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::Panicked(_))
    }

    /// A short, stable name for logs and metrics (`invalid_body`, `transient`, ...).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidBody { .. } => "invalid_body",
            Self::Transient(_) => "transient",
            Self::Permanent(_) => "permanent",
            Self::Panicked(_) => "panicked",
            Self::Ignored(_) => "ignored",
        }
    }

    /// The cause and each error it came from, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
        let first: Option<&(dyn std::error::Error + 'static)> = match self {
            Self::Transient(cause) | Self::Permanent(cause) => Some(cause.as_ref()),
            Self::InvalidBody { .. } | Self::Panicked(_) | Self::Ignored(_) => None,
        };
        std::iter::successors(first, |error| error.source())
    }
}

/// An error and each error it came from, outermost first, separated by `: `: for a log line.
pub(crate) fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `{}` gives the failure and its immediate cause; `{:#}` adds every deeper cause, separated by
/// `: `, which is what the log line carries.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidBody { field: Some(field), reason } => {
                write!(f, "invalid body at `{field}`: {reason}")?
            }
            Self::InvalidBody { field: None, reason } => write!(f, "invalid body: {reason}")?,
            Self::Transient(cause) => write!(f, "transient failure: {cause}")?,
            Self::Permanent(cause) => write!(f, "permanent failure: {cause}")?,
            Self::Panicked(text) => write!(f, "handler panicked: {text}")?,
            Self::Ignored(reason) => write!(f, "ignored: {reason}")?,
        }
        if f.alternate() {
            for cause in self.chain().skip(1) {
                write!(f, ": {cause}")?;
            }
        }
        Ok(())
    }
}

/// `?` on any error in a handler: a transient failure that keeps the error as its cause.
impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        Self::Transient(Box::new(error))
    }
}

/// Says what a failed result means for the message: `client.send().await.permanent()?`.
pub trait ResultExt<T> {
    /// An error here is permanent: the message goes to the dead-letter queue without waiting.
    ///
    /// # Errors
    /// [`Error::Permanent`] with the error as its cause.
    fn permanent(self) -> Result<T, Error>;

    /// An error here is transient (what `?` gives anyway; this says so explicitly, and also takes
    /// errors that are only strings).
    ///
    /// # Errors
    /// [`Error::Transient`] with the error as its cause.
    fn transient(self) -> Result<T, Error>;
}

impl<T, E: Into<BoxError>> ResultExt<T> for Result<T, E> {
    fn permanent(self) -> Result<T, Error> {
        self.map_err(Error::permanent)
    }

    fn transient(self) -> Result<T, Error> {
        self.map_err(Error::transient)
    }
}

/// Why a whole batch fails: the invocation reports an error and Lambda redelivers every
/// message of it (and its event source mapping backs off).
#[derive(Debug, ThisError)]
#[non_exhaustive]
pub enum BatchError {
    /// A record that did not succeed has no `messageId`, so it cannot be reported as a batch item
    /// failure on its own; failing the whole batch is the only way not to lose it.
    #[error(
        "record {index} did not succeed and has no messageId; failing the whole batch so that it is redelivered"
    )]
    UnidentifiedRecord {
        /// Its position in the batch.
        index: usize,
    },

    /// Every message of the batch failed, and the function asked for that to fail the invocation
    /// (`FAIL_ON_FULL_BATCH_FAILURE`), so that the event source mapping backs off.
    #[error("no message of the batch succeeded: {failed} failed, {not_started} not started")]
    AllFailed {
        /// Messages that failed.
        failed: usize,
        /// Messages not started (held back behind a failure of their FIFO group, or past the
        /// deadline reserve): they did not fail themselves, but none succeeded either.
        not_started: usize,
    },
}

impl BatchError {
    /// A short, stable name: Lambda's `errorType`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnidentifiedRecord { .. } => "UnidentifiedRecord",
            Self::AllFailed { .. } => "FullBatchFailure",
        }
    }
}

/// Lambda reports a failed invocation with a type and a message; the type is the variant's
/// stable name, so CloudWatch can count failures by cause.
impl From<BatchError> for lambda_runtime::Diagnostic {
    fn from(error: BatchError) -> Self {
        Self { error_type: error.kind().to_owned(), error_message: error.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, ThisError)]
    #[error("connection reset")]
    struct Reset;

    #[derive(Debug, ThisError)]
    #[error("could not store the order")]
    struct Store(#[source] Reset);

    fn store() -> Result<(), Store> {
        Err(Store(Reset))
    }

    fn work() -> Result<(), Error> {
        store()?;
        Ok(())
    }

    #[test]
    fn question_mark_on_any_error_is_a_transient_failure_that_keeps_its_source() {
        let error = work().unwrap_err();
        assert!(matches!(error, Error::Transient(_)));
        assert!(error.is_retryable());
        let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
        assert_eq!(chain, ["could not store the order", "connection reset"]);
        assert_eq!(error.to_string(), "transient failure: could not store the order");
        assert_eq!(format!("{error:#}"), "transient failure: could not store the order: connection reset");
    }

    #[test]
    fn permanent_says_no_retry_helps_and_takes_errors_or_words() {
        let error = store().permanent().unwrap_err();
        assert_eq!((error.kind(), error.is_retryable()), ("permanent", false));
        let words: Result<(), &str> = Err("order 7 names an unknown product");
        assert_eq!(
            words.permanent().unwrap_err().to_string(),
            "permanent failure: order 7 names an unknown product"
        );
    }

    #[test]
    fn an_invalid_body_names_its_field() {
        let error = Error::invalid_body(Some("id"), "must not be empty");
        assert_eq!(error.to_string(), "invalid body at `id`: must not be empty");
        assert!(!error.is_retryable());
        assert_eq!(Error::invalid_body(None, "not valid JSON").to_string(), "invalid body: not valid JSON");
    }

    #[test]
    fn an_invalid_body_echoes_a_huge_value_or_field_name_only_in_part() {
        let value = "x".repeat(200_000);
        let error = Error::invalid_body(Some(&"k".repeat(5_000)), format!("invalid type: string {value:?}"));
        let text = error.to_string();
        assert!(text.len() < 1_000, "{} bytes", text.len());
        assert!(text.contains('…'));
    }
}
