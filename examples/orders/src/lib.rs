//! An order handler: what arrives ([`order`]) and what is done with it ([`work`]).
//!
//! [`build`] is the hook both runtimes call once per process: it builds the SQS client that
//! sends confirmations, so every message reuses it.

pub mod order;
pub mod work;

pub use order::{Line, Order};
use sqs_batch::BoxError;
pub use work::Orders;

/// Builds the handler, once per process: reads `CONFIRMATIONS_QUEUE_URL` and builds the client.
///
/// # Errors
/// None today; a handler that needs a setting fails here, and the runtime reports it at start.
pub async fn build() -> Result<Orders, BoxError> {
    Ok(Orders::from_env().await)
}
