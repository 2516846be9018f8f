//! The SQS message handler: what arrives ([`Order`]), what is done with it ([`handle`]), and
//! [`build`], the one hook both runtimes call once per process: the Lambda function
//! (`src/bin/bootstrap.rs`) and the local runner (`src/bin/local.rs`, `cargo local-runner`).

use sqs_batch::{BoxError, Context, Error, Handler, handler_fn};

/// One message's body, as JSON. A body that does not parse fails that message alone: it is
/// retried, then reaches the dead-letter queue.
#[derive(Debug, serde::Deserialize)]
pub struct Order {
    /// The producer's id: on every log line of the message, and the idempotency key.
    pub id: String,
    /// How many.
    pub quantity: u32,
}

/// The work for one message: replace it with yours. `Ok` deletes the message; `?` on any error
/// retries it after a back-off; `Error::permanent(..)` sends it to the dead-letter queue at once.
///
/// # Errors
/// An order of nothing, which no retry can fix.
pub async fn handle(order: Order, context: Context) -> Result<(), Error> {
    if order.quantity == 0 {
        return Err(Error::permanent("an order of nothing"));
    }
    tracing::info!(id = %order.id, quantity = order.quantity, delivery = context.receive_count(), "stored");
    Ok(())
}

/// Builds the handler, once per process: build your clients and pools here; the handler it
/// returns serves every message.
///
/// Two features turn on one line each here, and link their AWS client only when on:
/// - `idempotency` (`cargo build --features idempotency`, and `IDEMPOTENCY_TABLE` naming a
///   DynamoDB table): a re-sent order does its work once.
/// - `large-payloads` (and `PAYLOAD_BUCKET`): bodies the SQS Extended Client kept in S3.
///
/// # Errors
/// A table or bucket named but missing: the function fails its init, and the local runner
/// stops with that one line before its first receive.
pub async fn build() -> Result<impl Handler, BoxError> {
    let handler = handler_fn(handle).log_id(|order: &Order| order.id.as_str());
    #[cfg(feature = "idempotency")]
    let handler = {
        use sqs_batch::HandlerExt;
        use sqs_batch::idempotency::{Idempotency, dynamodb::DynamoStore};
        let store = DynamoStore::from_env().await?;
        handler.maybe_layer(store.map(|table| Idempotency::new(table).key(|order: &Order| order.id.clone())))
    };
    #[cfg(feature = "large-payloads")]
    let handler = {
        use sqs_batch::HandlerExt;
        handler.layer(sqs_batch::large_payload::LargePayloads::from_env().await?)
    };
    Ok(handler)
}

#[cfg(test)]
mod tests {
    use sqs_batch::testing::{record, run};

    #[tokio::test]
    async fn a_good_order_succeeds_and_a_bad_one_fails_alone() {
        let handler = super::build().await.expect("the handler builds");
        let report = run(
            handler,
            [
                record(r#"{"id":"o-1","quantity":2}"#),
                record(r#"{"id":"o-2","quantity":0}"#),
                record("not json"),
            ],
        )
        .await;
        assert_eq!(report.labels(), ["ok", "failed", "failed"]);
        assert_eq!(report.failed_ids(), ["m1", "m2"], "only the bad ones come back");
    }
}
