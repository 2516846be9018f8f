//! Dev tooling, one file per subcommand: `up` creates the queues the template describes, `send`
//! sends messages, `dlq` looks into the dead-letter queue, `redrive` moves its messages back.
//! Output is for people: plain lines on stdout.

mod dlq;
mod redrive;
mod send;
mod up;

use crate::error::RunnerError;

pub use dlq::{dead_letter_queue, show_dlq};
pub use redrive::redrive;
pub use send::{Bodies, Offload, send};
pub use up::up;

/// SQS's error for `operation` on `queue`, with the SDK's whole context.
fn sqs_error<E, R>(
    operation: &'static str,
    queue: &str,
    err: aws_sdk_sqs::error::SdkError<E, R>,
) -> RunnerError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    RunnerError::Sqs { operation, queue: queue.to_owned(), source: Box::new(err) }
}

/// A client of the local S3 (`AWS_ENDPOINT_URL_S3`, else the SQS endpoint when it is local),
/// addressed path-style (an emulator's host has no per-bucket names), and its endpoint; `None`
/// when neither is local: dummy credentials are for local endpoints only.
fn s3_client(connection: &crate::aws::Connection) -> Option<(aws_sdk_s3::Client, String)> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
        .or_else(|| connection.endpoint_url.clone())
        .filter(|endpoint| crate::aws::is_local_endpoint(endpoint))?;
    let credentials = connection
        .local_credentials
        .clone()
        .unwrap_or_else(|| aws_sdk_s3::config::Credentials::new("test", "test", None, None, "local-dummy"));
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .http_client(crate::aws::https_client())
        .region(aws_sdk_s3::config::Region::new(connection.region.clone()))
        .endpoint_url(&endpoint)
        .force_path_style(true)
        .credentials_provider(credentials)
        .build();
    Some((aws_sdk_s3::Client::from_conf(config), endpoint))
}
