//! The runner's one error type: why a run or a subcommand cannot go on, and what to do about it.

use std::net::SocketAddr;

use thiserror::Error;

use crate::template::TemplateError;

/// A run or a subcommand that cannot go on. Each message is one line that says what to do next.
/// [`RunnerError::Usage`] exits with status 2 before anything runs; every other variant with 1.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The command line (or the files it names) cannot be used as given: the message says
    /// what to change.
    #[error("{0}")]
    Usage(String),

    /// A flag, file or variable that cannot be used, named by `what`, and why (its cause).
    #[error("{what}: {source}")]
    Invalid {
        /// The flag, file or setting.
        what: String,
        /// Why it cannot be used.
        #[source]
        source: sqs_batch::BoxError,
    },

    /// The queue does not exist at this endpoint and region.
    #[error(
        "queue {queue:?} does not exist at {endpoint} ({region}): create it first (`local-runner up --queue NAME`) or check --queue, --endpoint-url and --region"
    )]
    QueueNotFound {
        /// The queue as given.
        queue: String,
        /// The endpoint asked.
        endpoint: String,
        /// The region asked.
        region: String,
    },

    /// The endpoint did not answer, even after the SDK's retries.
    #[error(
        "cannot reach SQS at {endpoint}: {}; is LocalStack running? (scripts/localstack.sh start) or check --endpoint-url",
        root_cause(source.as_ref())
    )]
    EndpointUnreachable {
        /// The endpoint asked.
        endpoint: String,
        /// What the connection attempt said: its innermost cause is shown ("Connection refused").
        #[source]
        source: sqs_batch::BoxError,
    },

    /// Something answered at the endpoint, but not as SQS does.
    #[error(
        "{endpoint} answered with {status}, which is not an SQS answer: check --endpoint-url (LocalStack listens on http://localhost:4566)"
    )]
    NotSqs {
        /// The endpoint asked.
        endpoint: String,
        /// What it answered.
        status: String,
    },

    /// SQS answered with an error the runner cannot work around (access denied, a bad region).
    #[error(
        "SQS refused {operation} for {queue:?}: {}; check the queue, the region and the credentials",
        one_line(source.as_ref())
    )]
    Sqs {
        /// The API call that failed.
        operation: &'static str,
        /// The queue as given.
        queue: String,
        /// What SQS (or the SDK) said.
        #[source]
        source: sqs_batch::BoxError,
    },

    /// `up` could not create the template's idempotency table on the local DynamoDB.
    #[error(
        "cannot create the idempotency table {table:?} at {endpoint}: {}; is a local DynamoDB running? (scripts/dynamodb.sh start prints its endpoint: pass it as AWS_ENDPOINT_URL_DYNAMODB)",
        root_cause(source.as_ref())
    )]
    Table {
        /// The table's name.
        table: String,
        /// The DynamoDB endpoint asked.
        endpoint: String,
        /// What DynamoDB (or the SDK) said.
        #[source]
        source: sqs_batch::BoxError,
    },

    /// `up` could not create a bucket, or `send` could not keep a large body in one.
    #[error(
        "S3 {operation} on bucket {bucket:?} at {endpoint} failed: {}; is LocalStack running with s3 among its services? (`local-runner up` creates the template's payload bucket)",
        root_cause(source.as_ref())
    )]
    Bucket {
        /// What was asked.
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// The S3 endpoint asked.
        endpoint: String,
        /// What S3 (or the SDK) said.
        #[source]
        source: sqs_batch::BoxError,
    },

    /// `dlq` or `redrive` on a queue that has no dead-letter queue.
    #[error(
        "{queue:?} has no RedrivePolicy, so it has no dead-letter queue: create both with `local-runner up --queue NAME`"
    )]
    NoDeadLetterQueue {
        /// The queue as given.
        queue: String,
    },

    /// A message move task (redrive) failed: SQS says why.
    #[error("moving the dead-letter queue {dlq:?} back failed: {}", failure_reason.as_deref().unwrap_or("the move task failed"))]
    RedriveFailed {
        /// The dead-letter queue.
        dlq: String,
        /// The move task's `FailureReason`, as SQS gives it.
        failure_reason: Option<String>,
    },

    /// A message move task (redrive) did not finish within `--timeout`.
    #[error(
        "moving the dead-letter queue {dlq:?} back did not finish within {} s; pass a longer --timeout",
        waited.as_secs()
    )]
    RedriveTimedOut {
        /// The dead-letter queue.
        dlq: String,
        /// How long the runner waited.
        waited: std::time::Duration,
    },

    /// `--watch` cannot run cargo, watch the sources or start the run.
    #[error("--watch: {what}: {source}")]
    Watch {
        /// What it could not do.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The template cannot be read or does not describe what the command needs.
    #[error("{0}")]
    Template(#[from] TemplateError),

    /// `check` found broken rules (printed one a line before this).
    #[error("the template breaks {broken} rule(s), one line each above")]
    CheckFailed {
        /// How many.
        broken: usize,
    },

    /// The metrics address cannot be listened on.
    #[error("cannot serve metrics on {addr}: {source}; choose another --metrics-addr")]
    MetricsAddr {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// The handler's options (its environment: `HANDLER_CONCURRENCY`, ...) are unusable.
    #[error("{0}; fix the function's Environment.Variables in the template, or the environment")]
    Options(#[from] sqs_batch::OptionsError),

    /// The handler could not be built at start.
    #[error("the handler could not be built: {0}")]
    Handler(#[source] sqs_batch::BoxError),

    /// A thread of the runner's own (the async runtime's, the heartbeat's) cannot be started.
    #[error("cannot start a thread of the runner: {0}")]
    Thread(#[source] std::io::Error),

    /// The function's bootstrap cannot start (not executable, exits at once, fails its init):
    /// the run stops before it receives anything, or, when it stops starting mid-run, releases
    /// the batch it could not invoke instead of draining the queue into the dead-letter queue.
    #[error(
        "the function {function} cannot start: {source}; fix or rebuild it (cargo build --bin bootstrap) and run again"
    )]
    FunctionCannotStart {
        /// The function's name.
        function: String,
        /// What happened when it was started.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A task of the runner panicked: a bug, never a success. The run stopped; messages it held
    /// come back after their visibility timeout.
    #[error("internal error: the {task} panicked ({text}); the run stopped: please report this with the log")]
    Panicked {
        /// Which task.
        task: &'static str,
        /// The panic's text.
        text: String,
    },

    /// A file the command reads cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// An error and its causes on one line of at most 300 characters, as the SDK chains them
/// (`service error: ... (QueueDoesNotExist)`): what SQS said, fit for a terminal.
fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    short(&aws_sdk_sqs::error::DisplayErrorContext(error).to_string())
}

/// The innermost error of a chain on one line: for a connection failure, "Connection refused
/// (os error 111)" rather than the SDK's "dispatch failure" around it.
pub(crate) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = cause.to_string();
    if text.is_empty() { one_line(err) } else { short(&text) }
}

/// `text` on one line of at most 300 characters (cut at a character boundary, with `…`): the
/// SDK's error chains repeat themselves; a line's worth says what happened.
pub(crate) fn short(text: &str) -> String {
    let text = text.replace('\n', " ");
    if text.len() > 300 {
        let cut = (0..=300).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        format!("{}…", &text[..cut])
    } else {
        text
    }
}

impl RunnerError {
    /// `what` (a flag, a file, a setting) cannot be used, because of `source`.
    pub(crate) fn invalid(what: &str, source: impl Into<sqs_batch::BoxError>) -> Self {
        Self::Invalid { what: what.to_owned(), source: source.into() }
    }

    /// The process exit status for this error: 2 for usage errors, 1 for the rest.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Invalid { .. } => 2,
            _ => 1,
        }
    }
}
