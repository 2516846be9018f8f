//! What accepting an order does: check its total, and send a confirmation when a queue for them
//! is configured.

use aws_sdk_sqs::config::{BehaviorVersion, Region};
use sqs_batch::{Context, Error, Handler};

use crate::Order;

/// The order handler: one SQS client for every message of the process.
#[derive(Debug, Clone)]
pub struct Orders {
    sqs: aws_sdk_sqs::Client,
    /// Where confirmations go (`CONFIRMATIONS_QUEUE_URL`); none are sent without it.
    confirmations: Option<String>,
}

impl Orders {
    /// The handler as the environment configures it: `CONFIRMATIONS_QUEUE_URL`, and the SDK's
    /// usual variables (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials). Nothing is sent here: the
    /// client connects on its first request.
    pub async fn from_env() -> Self {
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
        let config = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region)).load().await;
        let confirmations =
            std::env::var("CONFIRMATIONS_QUEUE_URL").ok().filter(|url| !url.trim().is_empty());
        Self { sqs: aws_sdk_sqs::Client::new(&config), confirmations }
    }
}

impl Handler for Orders {
    type Message = Order;

    fn parse(&self, body: String, _context: &Context) -> Result<Order, Error> {
        sqs_batch::json::parse_str(&body)
    }

    async fn handle(&self, order: Order, context: Context) -> Result<(), Error> {
        let Some(total) = order.total_cents() else {
            return Err(Error::permanent(format!(
                "order {}: the total does not fit in 64 bits",
                order.order_id
            )));
        };
        if let Some(queue_url) = &self.confirmations {
            let confirmation = serde_json::json!({ "order_id": order.order_id, "total_cents": total });
            // A failed send is transient: the order comes back and is confirmed on a later try.
            self.sqs
                .send_message()
                .queue_url(queue_url)
                .message_body(confirmation.to_string())
                .send()
                .await?;
        }
        tracing::info!(
            order_id = order.order_id,
            total_cents = total,
            delivery = context.receive_count(),
            "order accepted"
        );
        Ok(())
    }
}
