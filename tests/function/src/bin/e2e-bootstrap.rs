//! A Lambda function built with the framework's test handler.

#[tokio::main]
async fn main() -> Result<(), sqs_batch::BoxError> {
    sqs_batch::lambda::run(e2e_function::build).await
}
