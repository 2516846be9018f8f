//! The retry back-off inside Lambda: before the partial batch response goes back, each message
//! that did not succeed gets the visibility [`crate::runtime::retry::plan`] gives it, with
//! ChangeMessageVisibilityBatch on its queue (from the record's `eventSourceARN`). The event
//! source mapping then leaves it on the queue, and it comes back at that time rather than after
//! the queue's visibility timeout: the timeline `local-runner` gives it too.
//!
//! Nothing here can lose a message: a change that fails leaves the message to the queue's own
//! timeout. Failed changes are counted and logged. The SDK client is built on the first batch
//! that needs it, so a function whose messages succeed makes no call and pays no start-up for it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, QueueAttributeName};
use tokio::sync::OnceCell;

use crate::batch::{BatchReport, Outcome};
use crate::options::Options;
use crate::runtime::retry::{self, Requeue};

/// ChangeMessageVisibilityBatch takes at most 10 entries.
const MAX_ENTRIES: usize = 10;
/// The most time the changes may take when the invocation has no deadline.
const MAX_TIME: Duration = Duration::from_secs(5);

/// What became of one batch's visibility changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Requeued {
    /// Messages whose visibility was set.
    pub(crate) changed: usize,
    /// Messages left to the queue's own timeout because the change failed.
    pub(crate) failed: usize,
}

/// Sets failed messages' visibility from inside the function; one per process.
#[derive(Debug, Default)]
pub(crate) struct Requeuer {
    client: OnceCell<Client>,
    /// Per queue ARN: whether a redrive policy takes what fails for good.
    dead_letter: Mutex<HashMap<String, bool>>,
}

impl Requeuer {
    /// Applies the plan for `report` within `time`; nothing is called when no message needs a
    /// change.
    pub(crate) async fn apply(
        &self,
        records: &[SqsMessage],
        report: &BatchReport,
        options: &Options,
        time: Duration,
    ) -> Requeued {
        let Some(backoff) = options.retry.as_ref() else { return Requeued::default() };
        let permanent =
            report.outcomes.iter().any(|o| matches!(o, Outcome::Failed(error) if !error.is_retryable()));
        if report.outcomes.iter().all(Outcome::is_success) {
            return Requeued::default();
        }
        let work = async {
            let client = self.client.get_or_init(client).await;
            // A permanent failure comes back at once only if a dead-letter queue will take it.
            let dead_letter = match (permanent, records.first().and_then(|r| r.event_source_arn.as_deref())) {
                (true, Some(arn)) => self.has_dead_letter_queue(client, arn).await,
                _ => true,
            };
            let plan = retry::plan(records, report, Some(backoff), dead_letter, fastrand::f64);
            change(client, records, &plan).await
        };
        let planned = report.outcomes.iter().filter(|o| !o.is_success()).count();
        tokio::time::timeout(time.min(MAX_TIME), work).await.unwrap_or_else(|_| {
            tracing::warn!(
                messages = planned,
                "setting the failed messages' visibility ran out of time: they come back after the queue's visibility timeout"
            );
            Requeued { changed: 0, failed: planned }
        })
    }

    /// Whether the queue of `arn` has a redrive policy; asked once per queue. An answer that
    /// cannot be had counts as none: backing off is safe either way, spinning is not.
    async fn has_dead_letter_queue(&self, client: &Client, arn: &str) -> bool {
        if let Some(&known) = self.dead_letter.lock().unwrap_or_else(PoisonError::into_inner).get(arn) {
            return known;
        }
        let Some(url) = queue_url(arn) else { return false };
        let asked = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await;
        let known = match asked {
            Ok(out) => out.attributes().is_some_and(|a| a.contains_key(&QueueAttributeName::RedrivePolicy)),
            Err(error) => {
                tracing::warn!(
                    error = %DisplayErrorContext(&error),
                    "cannot read the queue's redrive policy: permanent failures back off like the others"
                );
                false
            }
        };
        if !known {
            tracing::warn!(
                queue = arn,
                "the queue has no dead-letter queue: a message that fails for good comes back at its back-off, forever"
            );
        }
        self.dead_letter.lock().unwrap_or_else(PoisonError::into_inner).insert(arn.to_owned(), known);
        known
    }
}

async fn client() -> Client {
    let config = crate::sdk::defaults().load().await;
    Client::new(&config)
}

/// Sends the plan, queue by queue, ten entries a call.
async fn change(client: &Client, records: &[SqsMessage], plan: &[Requeue]) -> Requeued {
    let mut by_queue: HashMap<&str, Vec<&Requeue>> = HashMap::new();
    for entry in plan {
        by_queue
            .entry(records[entry.index].event_source_arn.as_deref().unwrap_or_default())
            .or_default()
            .push(entry);
    }
    let mut requeued = Requeued::default();
    for (arn, entries) in by_queue {
        let Some(url) = queue_url(arn) else {
            requeued.failed += entries.len();
            continue;
        };
        for chunk in entries.chunks(MAX_ENTRIES) {
            let batch: Result<Vec<_>, _> = chunk
                .iter()
                .map(|entry| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(entry.index.to_string())
                        .receipt_handle(records[entry.index].receipt_handle.as_deref().unwrap_or_default())
                        .visibility_timeout(entry.seconds)
                        .build()
                })
                .collect();
            let sent = match batch {
                Ok(batch) => {
                    client
                        .change_message_visibility_batch()
                        .queue_url(&url)
                        .set_entries(Some(batch))
                        .send()
                        .await
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot build the visibility change");
                    requeued.failed += chunk.len();
                    continue;
                }
            };
            match sent {
                Ok(out) => {
                    for failed in out.failed() {
                        tracing::warn!(
                            code = failed.code(),
                            reason = failed.message(),
                            "visibility change rejected"
                        );
                    }
                    requeued.failed += out.failed().len();
                    requeued.changed += chunk.len() - out.failed().len().min(chunk.len());
                }
                Err(error) => {
                    tracing::warn!(
                        error = %DisplayErrorContext(&error),
                        messages = chunk.len(),
                        "ChangeMessageVisibilityBatch failed: these come back after the queue's visibility timeout"
                    );
                    requeued.failed += chunk.len();
                }
            }
        }
    }
    requeued
}

/// The queue URL of an SQS ARN (`arn:PARTITION:sqs:REGION:ACCOUNT:NAME`): on the endpoint the
/// SDK is pointed at (`AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL`: a local emulator), else SQS's
/// own for the region.
fn queue_url(arn: &str) -> Option<String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_SQS").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).ok();
    queue_url_at(arn, endpoint.as_deref())
}

fn queue_url_at(arn: &str, endpoint: Option<&str>) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("sqs"), Some(region), Some(account), Some(name)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if region.is_empty() || account.is_empty() || name.is_empty() {
        return None;
    }
    Some(match endpoint {
        Some(endpoint) => format!("{}/{account}/{name}", endpoint.trim_end_matches('/')),
        None => {
            let domain = if partition == "aws-cn" { "amazonaws.com.cn" } else { "amazonaws.com" };
            format!("https://sqs.{region}.{domain}/{account}/{name}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_arn_gives_its_url_on_sqs_or_on_the_configured_endpoint() {
        let arn = "arn:aws:sqs:eu-west-1:123456789012:orders.fifo";
        assert_eq!(
            queue_url_at(arn, None).unwrap(),
            "https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo"
        );
        assert_eq!(
            queue_url_at(arn, Some("http://127.0.0.1:4566/")).unwrap(),
            "http://127.0.0.1:4566/123456789012/orders.fifo"
        );
        let china = "arn:aws-cn:sqs:cn-north-1:123456789012:q";
        assert_eq!(
            queue_url_at(china, None).unwrap(),
            "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q"
        );
    }

    #[test]
    fn anything_but_a_queue_arn_gives_no_url() {
        for arn in ["", "arn:aws:sns:us-east-1:1:topic", "arn:aws:sqs:us-east-1:1", "arn:aws:sqs::1:q", "q"] {
            assert_eq!(queue_url_at(arn, None), None, "{arn}");
        }
    }
}
