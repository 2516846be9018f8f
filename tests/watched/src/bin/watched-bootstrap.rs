//! The Lambda function built with the watched handler.

#[tokio::main]
async fn main() -> Result<(), sqs_batch::BoxError> {
    sqs_batch::lambda::run(e2e_watched::build).await
}
