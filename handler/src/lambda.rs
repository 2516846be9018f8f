//! The Lambda side of the batch core: an SQS event in, a partial batch response out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use tokio_util::sync::CancellationToken;

use crate::{BatchOptions, Handler, HandlerError, process_batch};

/// How the function runs each invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionOptions {
    /// How a batch is run.
    pub batch: BatchOptions,
    /// Time kept in hand before the invocation's deadline: once less than this remains, no
    /// further message starts, and those not started are reported as batch item failures.
    /// Without it, a slow batch would run into the function timeout, the whole invocation would
    /// fail, and every message of it, finished or not, would come back.
    pub deadline_reserve: Duration,
}

impl Default for FunctionOptions {
    /// Ten messages at once; stop starting new ones with one second left.
    fn default() -> Self {
        Self { batch: BatchOptions::default(), deadline_reserve: Duration::from_secs(1) }
    }
}

/// Handles one Lambda invocation from an SQS event source mapping.
///
/// Returns the partial batch response that `ReportBatchItemFailures` expects: Lambda deletes
/// every message not listed and leaves the listed ones on the queue.
///
/// # Errors
/// [`HandlerError::UnidentifiedRecord`] when a record that failed has no `messageId`: the
/// invocation fails as a whole, so the batch is redelivered rather than partly lost.
pub async fn handle_sqs_event<H: Handler>(
    handler: &H,
    options: FunctionOptions,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, HandlerError> {
    let records = &event.payload.records;
    let stop = CancellationToken::new();
    let batch = process_batch(handler, records, options.batch, &stop);
    let report = match time_to_stop(event.context.deadline, options.deadline_reserve) {
        None => batch.await,
        Some(Duration::ZERO) => {
            tracing::warn!(
                reserve_ms = options.deadline_reserve.as_millis(),
                "invoked inside the deadline reserve: starting nothing"
            );
            stop.cancel();
            batch.await
        }
        Some(stop_after) => {
            tokio::pin!(batch);
            tokio::select! {
                report = &mut batch => report,
                () = tokio::time::sleep(stop_after) => {
                    tracing::warn!(reserve_ms = options.deadline_reserve.as_millis(), "deadline near: starting no further messages");
                    stop.cancel();
                    batch.await
                }
            }
        }
    };
    let (ok, failed, skipped) = report.counts();
    tracing::info!(request_id = %event.context.request_id, records = records.len(), ok, failed, skipped, "batch done");
    report.to_response(records)
}

/// How long until no further message may start, from the invocation's deadline (milliseconds
/// since the Unix epoch, from the Runtime API's `Lambda-Runtime-Deadline-Ms`). A deadline of 0
/// means none was given (a test or a hand-made context): no limit.
fn time_to_stop(deadline_ms: u64, reserve: Duration) -> Option<Duration> {
    if deadline_ms == 0 {
        return None;
    }
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let remaining = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
    Some(remaining.saturating_sub(reserve))
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use aws_lambda_events::sqs::SqsMessage;
    use lambda_runtime::Context;

    use super::*;
    use crate::ExampleHandler;

    fn event(work_ms: &[u64], deadline_in: Duration) -> LambdaEvent<SqsEvent> {
        let mut payload = SqsEvent::default();
        for (i, ms) in work_ms.iter().enumerate() {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("m{i}"));
            record.body = Some(format!(r#"{{"id":"{i}","kind":"k","work_ms":{ms}}}"#));
            payload.records.push(record);
        }
        let mut context = Context::default();
        let deadline = SystemTime::now() + deadline_in;
        context.deadline = u64::try_from(deadline.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
        LambdaEvent::new(payload, context)
    }

    fn one_at_a_time(reserve_ms: u64) -> FunctionOptions {
        FunctionOptions {
            batch: BatchOptions { max_concurrency: NonZeroUsize::MIN },
            deadline_reserve: Duration::from_millis(reserve_ms),
        }
    }

    fn failed(response: &SqsBatchResponse) -> Vec<&str> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn messages_not_started_before_the_reserve_are_reported_failed() {
        // One at a time, 150 ms each; the deadline is 10 s away with a 9.8 s reserve: m0 starts
        // at 0, m1 at 150 ms (before the stop at ~200 ms) and finishes, m2 would start at 300 ms.
        let event = event(&[150, 150, 150], Duration::from_secs(10));
        let response = handle_sqs_event(&ExampleHandler, one_at_a_time(9_800), event).await.unwrap();
        assert_eq!(failed(&response), ["m2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_that_fits_before_the_reserve_succeeds_whole() {
        let event = event(&[10, 10, 10], Duration::from_secs(10));
        let response = handle_sqs_event(&ExampleHandler, one_at_a_time(1_000), event).await.unwrap();
        assert!(failed(&response).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_already_inside_the_reserve_starts_nothing() {
        let event = event(&[0, 0], Duration::from_millis(500));
        let response = handle_sqs_event(&ExampleHandler, one_at_a_time(1_000), event).await.unwrap();
        assert_eq!(failed(&response), ["m0", "m1"]);
    }

    #[test]
    fn no_deadline_means_no_limit() {
        assert_eq!(time_to_stop(0, Duration::from_secs(1)), None);
    }
}
