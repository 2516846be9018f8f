//! The field names of the log contract: each message's outcome line, and the correlation fields
//! of every line logged while a message is handled. Tools (and `local-runner`'s terminal view)
//! read lines by these names; a test holds the lines the core writes to them.

/// SQS's message id.
pub const MESSAGE_ID: &str = "message_id";
/// The producer's own id (`Handler::log_id`), when the body parsed.
pub const ID: &str = "id";
/// Which delivery this is.
pub const RECEIVE_COUNT: &str = "receive_count";
/// `ok`, `failed` or `skipped` ([`crate::batch::Outcome::as_str`]).
pub const OUTCOME: &str = "outcome";
/// A failure's kind ([`crate::error::Error::kind`]).
pub const ERROR_KIND: &str = "error_kind";
/// Whether a retry can help.
pub const RETRYABLE: &str = "retryable";
/// A failure's text, with its causes.
pub const ERROR: &str = "error";
/// Why a message was not started ([`crate::batch::NotStarted::as_str`]).
pub const REASON: &str = "reason";
/// The message group (FIFO queues).
pub const GROUP_ID: &str = "group_id";
/// The producer's trace id ([`crate::trace::TraceContext`]).
pub const TRACE_ID: &str = "trace_id";
/// The Lambda invocation's request id.
pub const REQUEST_ID: &str = "request_id";
