//! The Lambda side of the batch core: an SQS event in, a partial batch response out.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use tokio_util::sync::CancellationToken;

use crate::{BatchOptions, Handler, HandlerError, process_batch};

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
    options: BatchOptions,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, HandlerError> {
    let records = &event.payload.records;
    let report = process_batch(handler, records, options, &CancellationToken::new()).await;
    let (ok, failed, skipped) = report.counts();
    tracing::info!(request_id = %event.context.request_id, records = records.len(), ok, failed, skipped, "batch done");
    report.to_response(records)
}
