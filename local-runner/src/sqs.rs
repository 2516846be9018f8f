//! The SQS client and the queue it polls.

use std::net::IpAddr;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region, timeout::TimeoutConfig};
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::RunnerError;
use crate::config::{Config, QueueRef};

/// Connection attempts that take longer than this fail; the SDK then retries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Slack over the long-poll wait before a receive attempt counts as hung.
const RECEIVE_SLACK: Duration = Duration::from_secs(10);

/// The queue being polled.
#[derive(Debug, Clone)]
pub struct Queue {
    /// Its URL, for every API call.
    pub url: String,
    /// Its ARN: Lambda puts it in each record's `eventSourceARN`.
    pub arn: String,
    /// Whether it is a FIFO queue.
    pub fifo: bool,
    /// Its VisibilityTimeout: the heartbeat extends by this much.
    pub visibility_timeout: Duration,
}

/// Whether an endpoint is this machine: only then may dummy credentials be used.
#[must_use]
pub fn is_local_endpoint(url: &str) -> bool {
    let host = url.split("://").nth(1).unwrap_or(url);
    let host = host.split(['/', '?']).next().unwrap_or(host);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Builds the SQS client for a run.
///
/// Against a local endpoint, credentials are [`Config::local_credentials`] when given, and the
/// dummy `test`/`test` otherwise; the full AWS credential chain (profiles,
/// SSO, instance metadata) is used only for remote endpoints, so a local run never reaches out
/// to the network for credentials.
pub async fn client(config: &Config) -> Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(config.wait_time + RECEIVE_SLACK)
        .build();
    let region = Region::new(config.region.clone());
    match config.endpoint_url.as_deref() {
        Some(endpoint) if is_local_endpoint(endpoint) => {
            let credentials = config
                .local_credentials
                .clone()
                .unwrap_or_else(|| Credentials::new("test", "test", None, None, "local-dummy"));
            let sqs = aws_sdk_sqs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(region)
                .endpoint_url(endpoint)
                .credentials_provider(credentials)
                .timeout_config(timeouts)
                .build();
            Client::from_conf(sqs)
        }
        endpoint => {
            let mut loader =
                aws_config::defaults(BehaviorVersion::latest()).region(region).timeout_config(timeouts);
            if let Some(endpoint) = endpoint {
                loader = loader.endpoint_url(endpoint);
            }
            Client::new(&loader.load().await)
        }
    }
}

/// Finds the queue: by name through GetQueueUrl, or checks a given URL; reads its ARN.
///
/// # Errors
/// [`RunnerError::QueueNotFound`] when it does not exist, [`RunnerError::EndpointUnreachable`]
/// when the endpoint does not answer, [`RunnerError::Sqs`] for any other refusal.
pub async fn resolve_queue(client: &Client, config: &Config) -> Result<Queue, RunnerError> {
    let (given, url) = match &config.queue {
        QueueRef::Url(url) => (url.clone(), url.clone()),
        QueueRef::Name(name) => {
            let output = client.get_queue_url().queue_name(name).send().await.map_err(|err| {
                let missing = err.as_service_error().is_some_and(|e| e.is_queue_does_not_exist());
                classify(err, missing, "GetQueueUrl", name, config)
            })?;
            let url = output.queue_url.ok_or_else(|| RunnerError::Sqs {
                operation: "GetQueueUrl",
                queue: name.clone(),
                reason: "the answer had no queue URL".into(),
            })?;
            (name.clone(), url)
        }
    };
    let attributes = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|err| {
            let missing = err.as_service_error().is_some_and(|e| e.is_queue_does_not_exist());
            classify(err, missing, "GetQueueAttributes", &given, config)
        })?;
    let mut attributes = attributes.attributes.unwrap_or_default();
    let visibility_timeout = attributes
        .remove(&QueueAttributeName::VisibilityTimeout)
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(30), Duration::from_secs);
    let arn = attributes.remove(&QueueAttributeName::QueueArn).ok_or_else(|| RunnerError::Sqs {
        operation: "GetQueueAttributes",
        queue: given.clone(),
        reason: "the answer had no QueueArn".into(),
    })?;
    let fifo = arn.ends_with(".fifo");
    Ok(Queue { url, arn, fifo, visibility_timeout })
}

fn classify<E, R>(
    err: SdkError<E, R>,
    missing: bool,
    operation: &'static str,
    queue: &str,
    config: &Config,
) -> RunnerError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let endpoint = config.endpoint_url.clone().unwrap_or_else(|| format!("AWS ({})", config.region));
    if missing {
        return RunnerError::QueueNotFound {
            queue: queue.to_owned(),
            endpoint,
            region: config.region.clone(),
        };
    }
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            RunnerError::EndpointUnreachable { endpoint, reason: root_cause(&err) }
        }
        _ => RunnerError::Sqs {
            operation,
            queue: queue.to_owned(),
            reason: short(&DisplayErrorContext(&err).to_string()),
        },
    }
}

/// The innermost error of a chain: for a connection failure, "Connection refused (os error 111)"
/// says it all.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = cause.to_string();
    if text.is_empty() { short(&DisplayErrorContext(err).to_string()) } else { short(&text) }
}

/// The SDK's error chains repeat themselves; keep a line's worth.
fn short(text: &str) -> String {
    let text = text.replace('\n', " ");
    if text.len() > 300 {
        let cut = (0..=300).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        format!("{}…", &text[..cut])
    } else {
        text
    }
}

/// [`resolve_queue`], retried with back-off while the endpoint does not answer, for up to
/// `config.start_timeout`: LocalStack may still be starting. One warning, not one per attempt.
///
/// # Errors
/// As [`resolve_queue`]; [`RunnerError::EndpointUnreachable`] once the start timeout has passed.
pub async fn resolve_queue_within(client: &Client, config: &Config) -> Result<Queue, RunnerError> {
    let deadline = tokio::time::Instant::now() + config.start_timeout;
    let mut delay = Duration::from_millis(250);
    let mut warned = false;
    loop {
        match resolve_queue(client, config).await {
            Err(RunnerError::EndpointUnreachable { reason, .. })
                if tokio::time::Instant::now() + delay < deadline =>
            {
                if !warned {
                    tracing::warn!(%reason, start_timeout_secs = config.start_timeout.as_secs(), "SQS does not answer yet; waiting for it");
                    warned = true;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            result => {
                if warned && result.is_ok() {
                    tracing::info!("SQS answers; starting");
                }
                return result;
            }
        }
    }
}

/// The queue's approximate depth (visible + in flight), if SQS answers.
pub async fn depth(client: &Client, queue_url: &str) -> Option<u64> {
    let output = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .ok()?;
    let attributes = output.attributes?;
    let count = |name| attributes.get(&name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some(
        count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

#[cfg(test)]
mod tests {
    use super::is_local_endpoint;

    #[test]
    fn loopback_and_localhost_endpoints_are_local() {
        for url in [
            "http://localhost:4566",
            "http://127.0.0.1:4566",
            "http://[::1]:4566/",
            "http://sqs.localhost:1",
            "http://127.5.0.1",
        ] {
            assert!(is_local_endpoint(url), "{url}");
        }
    }

    #[test]
    fn remote_endpoints_are_not_local() {
        for url in [
            "https://sqs.us-east-1.amazonaws.com",
            "http://10.0.0.5:4566",
            "http://localhost.example.com",
            "http://192.168.1.2",
        ] {
            assert!(!is_local_endpoint(url), "{url}");
        }
    }
}
