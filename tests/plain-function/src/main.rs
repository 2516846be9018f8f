//! An SQS function as the Lambda Rust runtime's own examples write one: each record's body is
//! looked at, and the records that fail are listed in `batchItemFailures`. It sets no visibility
//! of its own, so a failure comes back when the queue's visibility timeout runs out. A body that
//! contains `fail` fails.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

async fn handle(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for record in event.payload.records {
        if record.body.as_deref().is_some_and(|body| body.contains("fail")) {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
