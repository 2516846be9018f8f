//! Finding the queue, and reading its depth.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::QueueAttributeName;

use super::Connection;
use crate::error::{RunnerError, root_cause};

/// How long one try at finding the queue may take while starting: an answer from a local
/// endpoint takes milliseconds, and a hung one is tried again (and said) after this.
const START_TRY_TIMEOUT: Duration = Duration::from_secs(5);
/// What the try made at the start timeout's deadline gets.
const LAST_TRY_TIMEOUT: Duration = Duration::from_secs(1);

/// SQS's default visibility timeout, for a queue whose attributes do not say.
const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);

/// Where the queue is, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueRef {
    /// A queue name, resolved with GetQueueUrl.
    Name(String),
    /// A full queue URL, used as it is.
    Url(String),
}

impl QueueRef {
    /// A name or a URL (`http://` or `https://`), as the user gave it.
    ///
    /// # Errors
    /// [`RunnerError::Usage`] for an empty one.
    pub fn parse(queue: &str) -> Result<Self, RunnerError> {
        let queue = queue.trim();
        if queue.is_empty() {
            Err(RunnerError::Usage("--queue (or SQS_QUEUE) must name a queue or give its URL".into()))
        } else if queue.starts_with("http://") || queue.starts_with("https://") {
            Ok(Self::Url(queue.to_owned()))
        } else {
            Ok(Self::Name(queue.to_owned()))
        }
    }

    /// The queue as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Name(text) | Self::Url(text) => text,
        }
    }
}

/// A queue that exists, and what the runner needs to know of it.
#[derive(Debug, Clone)]
pub struct Queue {
    /// Its URL, for every API call.
    pub url: String,
    /// Its ARN: Lambda puts it in each record's `eventSourceARN`.
    pub arn: String,
    /// Whether it is a FIFO queue.
    pub fifo: bool,
    /// Its VisibilityTimeout: how long a received message stays hidden.
    pub visibility_timeout: Duration,
    /// Its RedrivePolicy, if it has one: where a message goes after how many receives.
    pub redrive: Option<Redrive>,
}

/// A queue's redrive policy: the end-of-run summary says which failures reached the DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    /// The dead-letter queue's name (the last part of `deadLetterTargetArn`).
    pub dead_letter_queue: String,
    /// `maxReceiveCount`: a message received this many times goes there on its next receive.
    pub max_receive_count: u32,
}

impl Redrive {
    /// From the `RedrivePolicy` attribute's JSON; `None` when it is not one.
    #[must_use]
    pub fn parse(policy: &str) -> Option<Self> {
        let policy: serde_json::Value = serde_json::from_str(policy).ok()?;
        let arn = policy["deadLetterTargetArn"].as_str()?;
        // SQS writes the count as a number; some tools write it as a string.
        let count = &policy["maxReceiveCount"];
        let max_receive_count = count.as_u64().or_else(|| count.as_str()?.parse().ok())?;
        Some(Self {
            dead_letter_queue: arn.rsplit(':').next().unwrap_or_default().to_owned(),
            max_receive_count: u32::try_from(max_receive_count).ok()?,
        })
    }
}

impl Queue {
    /// The queue's name, the last part of its URL.
    #[must_use]
    pub fn name(&self) -> &str {
        self.url.rsplit('/').next().unwrap_or_default()
    }
}

/// Finds the queue: by name through GetQueueUrl, or checks a given URL; reads its ARN and
/// visibility timeout.
///
/// # Errors
/// [`RunnerError::QueueNotFound`] when it does not exist, [`RunnerError::EndpointUnreachable`]
/// when the endpoint does not answer, [`RunnerError::Sqs`] for any other refusal.
pub async fn resolve(
    client: &Client,
    queue: &QueueRef,
    connection: &Connection,
) -> Result<Queue, RunnerError> {
    let given = queue.as_str();
    let url = match queue {
        QueueRef::Url(url) => url.clone(),
        QueueRef::Name(name) => {
            let output = client.get_queue_url().queue_name(name).send().await.map_err(|err| {
                let missing = err.as_service_error().is_some_and(|e| e.is_queue_does_not_exist());
                classify(err, missing, "GetQueueUrl", given, connection)
            })?;
            output.queue_url.ok_or_else(|| RunnerError::Sqs {
                operation: "GetQueueUrl",
                queue: given.to_owned(),
                source: "the answer had no queue URL".into(),
            })?
        }
    };
    let attributes = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|err| {
            let missing = err.as_service_error().is_some_and(|e| e.is_queue_does_not_exist());
            classify(err, missing, "GetQueueAttributes", given, connection)
        })?;
    let mut attributes = attributes.attributes.unwrap_or_default();
    let visibility_timeout = attributes
        .remove(&QueueAttributeName::VisibilityTimeout)
        .and_then(|v| v.parse().ok())
        .map_or(DEFAULT_VISIBILITY, Duration::from_secs);
    let arn = attributes.remove(&QueueAttributeName::QueueArn).ok_or_else(|| RunnerError::Sqs {
        operation: "GetQueueAttributes",
        queue: given.to_owned(),
        source: "the answer had no QueueArn".into(),
    })?;
    let fifo = arn.ends_with(".fifo");
    let redrive = attributes.remove(&QueueAttributeName::RedrivePolicy).and_then(|p| Redrive::parse(&p));
    Ok(Queue { url, arn, fifo, visibility_timeout, redrive })
}

/// [`resolve`], retried with back-off while the endpoint does not answer, for up to
/// `start_timeout`: LocalStack may still be starting. One warning, not one per attempt.
///
/// # Errors
/// As [`resolve`]; [`RunnerError::EndpointUnreachable`] once the start timeout has passed.
pub async fn resolve_within(
    client: &Client,
    queue: &QueueRef,
    connection: &Connection,
    start_timeout: Duration,
) -> Result<Queue, RunnerError> {
    let deadline = tokio::time::Instant::now() + start_timeout;
    let mut delay = Duration::from_millis(250);
    let mut warned = false;
    loop {
        // An endpoint that takes the connection and never answers would hold one attempt for
        // the SDK's whole attempt timeout, three times over: each try gets a few seconds, and the
        // whole wait no more than the start timeout. The try made at the deadline still gets a
        // moment, so a refused connection is reported as refused, not as silence.
        let now = tokio::time::Instant::now();
        let try_for = deadline.saturating_duration_since(now).clamp(LAST_TRY_TIMEOUT, START_TRY_TIMEOUT);
        let attempt = match tokio::time::timeout(try_for, resolve(client, queue, connection)).await {
            Ok(result) => result,
            Err(_) => Err(RunnerError::EndpointUnreachable {
                endpoint: connection.describe(),
                source: Box::new(NoAnswer(try_for)),
            }),
        };
        match attempt {
            // Given up only once the whole start timeout has passed: the last wait is cut to
            // end at the deadline, and one more try is made there.
            Err(RunnerError::EndpointUnreachable { source, .. })
                if tokio::time::Instant::now() < deadline =>
            {
                if !warned {
                    let reason = root_cause(source.as_ref());
                    tracing::warn!(%reason, start_timeout_secs = start_timeout.as_secs(), "SQS does not answer yet; waiting for it");
                    warned = true;
                }
                tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + delay)).await;
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

/// An endpoint that took the connection and did not answer in time.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {} s", .0.as_secs())]
struct NoAnswer(Duration);

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

/// Turns an SDK error of a call about `queue` into what the user should do.
pub(crate) fn classify<E>(
    err: SdkError<E, HttpResponse>,
    missing: bool,
    operation: &'static str,
    queue: &str,
    connection: &Connection,
) -> RunnerError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let endpoint = connection.describe();
    if missing {
        return RunnerError::QueueNotFound {
            queue: queue.to_owned(),
            endpoint,
            region: connection.region.clone(),
        };
    }
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            RunnerError::EndpointUnreachable { endpoint, source: Box::new(err) }
        }
        // An answer without an AWS error code: something else listens there (a web server, a
        // proxy's error page).
        SdkError::ServiceError(_) | SdkError::ResponseError(_) if err.code().is_none() => {
            RunnerError::NotSqs {
                endpoint,
                status: err
                    .raw_response()
                    .map_or_else(|| "an answer".to_owned(), |r| format!("HTTP {}", r.status())),
            }
        }
        _ => RunnerError::Sqs { operation, queue: queue.to_owned(), source: Box::new(err) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_is_a_name_or_a_url_and_never_empty() {
        assert_eq!(QueueRef::parse(" orders ").unwrap(), QueueRef::Name("orders".into()));
        let url = "http://127.0.0.1:4566/000000000000/orders";
        assert_eq!(QueueRef::parse(url).unwrap(), QueueRef::Url(url.into()));
        assert!(matches!(QueueRef::parse("  "), Err(RunnerError::Usage(_))));
    }

    #[test]
    fn a_redrive_policy_gives_the_dead_letter_queue_and_its_count_written_either_way() {
        let arn = "arn:aws:sqs:us-east-1:000000000000:orders-dlq";
        let expected = Some(Redrive { dead_letter_queue: "orders-dlq".into(), max_receive_count: 5 });
        assert_eq!(
            Redrive::parse(&format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":5}}"#)),
            expected
        );
        assert_eq!(
            Redrive::parse(&format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"5"}}"#)),
            expected
        );
        assert_eq!(Redrive::parse(r#"{"maxReceiveCount":5}"#), None);
        assert_eq!(Redrive::parse("not json"), None);
    }

    #[test]
    fn long_error_text_is_cut_to_a_line() {
        let long = "é".repeat(400);
        let cut = crate::error::short(&format!("a\nb{long}"));
        assert!(cut.starts_with("a b") && cut.ends_with('…') && cut.len() <= 304);
    }
}
