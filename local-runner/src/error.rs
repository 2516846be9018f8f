//! The runner's one error type: why a run could not go on, and what to do about it.

use thiserror::Error;

/// A run that cannot go on. Each message is one line that says what to do next; every variant
/// exits with status 1 (usage errors exit 2 before a run starts).
#[derive(Debug, Error)]
pub enum RunnerError {
    /// The queue does not exist at this endpoint and region.
    #[error(
        "queue {queue:?} does not exist at {endpoint} ({region}): create it first (scripts/demo.sh shows how) or check --queue, --endpoint-url and --region"
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
        "cannot reach SQS at {endpoint}: {reason}; is LocalStack running? (scripts/localstack.sh start) or check --endpoint-url"
    )]
    EndpointUnreachable {
        /// The endpoint asked.
        endpoint: String,
        /// What the connection attempt said.
        reason: String,
    },

    /// The metrics address cannot be listened on.
    #[error("cannot serve metrics on {addr}: {reason}; choose another --metrics-addr")]
    MetricsAddr {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// What the operating system said.
        reason: String,
    },

    /// SQS answered with an error the runner cannot work around (access denied, bad region).
    #[error("SQS refused {operation} for {queue:?}: {reason}")]
    Sqs {
        /// The API call that failed.
        operation: &'static str,
        /// The queue as given.
        queue: String,
        /// What SQS said.
        reason: String,
    },
}

impl RunnerError {
    /// The process exit status for this error.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        1
    }
}
