//! The Lambda function: the handler behind an SQS event source mapping.

#[tokio::main]
async fn main() -> Result<(), sqs_batch::BoxError> {
    sqs_batch::lambda::run(handler::build).await
}
