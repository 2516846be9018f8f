//! One error type for everything that can go wrong with one message, and what happens next.

use thiserror::Error;

/// Why a message was not handled successfully.
///
/// Every variant ends the same way for the transport: the message is reported as a batch item
/// failure, stays on the queue, is retried after its visibility timeout and, once the queue's
/// `maxReceiveCount` is reached, moves to the dead-letter queue. [`HandlerError::is_retryable`]
/// says whether a retry can help, so that logs and metrics can tell poison from bad luck.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The record carries no body at all.
    #[error("the record has no body")]
    MissingBody,

    /// The body is not valid JSON, or is JSON of the wrong shape (a wrong type, a missing or
    /// empty required field, a value out of range). `field` names where, when it is known.
    #[error("invalid body{}: {reason}", field.as_deref().map(|f| format!(" at `{f}`")).unwrap_or_default())]
    InvalidBody {
        /// The JSON path of the offending field (`id`, `payload.items[2]`), if the error has one.
        field: Option<String>,
        /// What is wrong, in words.
        reason: String,
    },

    /// The work itself failed in a way a later attempt may not repeat (a downstream timeout,
    /// a throttled dependency).
    #[error("transient failure: {0}")]
    Transient(String),

    /// The work failed in a way that a retry will repeat.
    #[error("permanent failure: {0}")]
    Permanent(String),

    /// A record that did not succeed has no `messageId`, so it cannot be reported as a batch
    /// item failure on its own. The whole invocation fails instead and SQS redelivers the batch:
    /// nothing is deleted unhandled.
    #[error(
        "a record that did not succeed has no messageId; failing the whole batch so that it is redelivered"
    )]
    UnidentifiedRecord,

    /// The handler panicked. The panic was caught; the process and the rest of the batch go on.
    #[error("handler panicked: {0}")]
    Panicked(String),
}

impl HandlerError {
    /// Whether retrying the same message can succeed.
    ///
    /// Bad bodies and permanent failures will fail again: they are poison and belong in the
    /// dead-letter queue. Transient failures and panics may not recur.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::Panicked(_) | Self::UnidentifiedRecord)
    }

    /// A short, stable name for logs and metrics (`invalid_body`, `panicked`, ...).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingBody => "missing_body",
            Self::InvalidBody { .. } => "invalid_body",
            Self::Transient(_) => "transient",
            Self::Permanent(_) => "permanent",
            Self::Panicked(_) => "panicked",
            Self::UnidentifiedRecord => "unidentified_record",
        }
    }
}

/// Lambda reports a failed invocation with a type and a message; the type is the variant's
/// stable name, so CloudWatch can count failures by cause.
impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        Self { error_type: error.kind().to_owned(), error_message: error.to_string() }
    }
}
