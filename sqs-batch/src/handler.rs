//! The handler API: one async function for the short path ([`handler_fn`]), a trait for handlers
//! with state ([`Handler`]).

use std::future::Future;
use std::marker::PhantomData;

use aws_lambda_events::sqs::SqsMessage;
use serde::de::DeserializeOwned;

use crate::{Context, Error, json};

/// What a message handler does, split in two so that reading a record stays apart from the work.
///
/// The batch core calls [`Handler::parse`] and then [`Handler::handle`] for each record, each
/// message in a task of its own inside a tracing span that carries the record's `message_id`.
/// Both may fail or panic; either way only that message fails. One handler value serves every
/// message of the process, so it is where clients and pools built at start-up live.
///
/// ```
/// use sqs_batch::{Context, Error, Handler, SqsMessage};
///
/// #[derive(serde::Deserialize)]
/// struct Order { id: u64 }
///
/// struct Orders { table: String }
///
/// impl Handler for Orders {
///     type Message = Order;
///
///     fn parse(&self, record: &SqsMessage) -> Result<Order, Error> {
///         sqs_batch::json::parse_record(record)
///     }
///
///     async fn handle(&self, order: Order, context: Context) -> Result<(), Error> {
///         println!("order {} into {} (delivery {})", order.id, self.table, context.receive_count());
///         Ok(())
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// The typed, validated message a record turns into.
    type Message: Send + 'static;

    /// Reads one record (usually its body) into a message.
    ///
    /// # Errors
    /// Whatever makes the record unusable, usually [`Error::InvalidBody`]; it fails that message
    /// alone.
    fn parse(&self, record: &SqsMessage) -> Result<Self::Message, Error>;

    /// Does the work for one message.
    fn handle(
        &self,
        message: Self::Message,
        context: Context,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The producer's own id of a message, logged beside the SQS message id as `id`.
    fn log_id<'m>(&self, message: &'m Self::Message) -> Option<&'m str> {
        let _ = message;
        None
    }
}

/// A handler made of one async function: the body is parsed from JSON into the function's
/// message type with serde, and every parse error names its field.
///
/// ```
/// use sqs_batch::{Context, Error, handler_fn};
///
/// #[derive(serde::Deserialize)]
/// struct Order { id: String, quantity: u32 }
///
/// async fn handle(order: Order, context: Context) -> Result<(), Error> {
///     println!("{} x{} (delivery {})", order.id, order.quantity, context.receive_count());
///     Ok(())
/// }
///
/// let handler = handler_fn(handle).log_id(|order: &Order| order.id.as_str());
/// # let _ = handler;
/// ```
pub fn handler_fn<M, F, Fut>(function: F) -> HandlerFn<M, F>
where
    M: DeserializeOwned + Send + 'static,
    F: Fn(M, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send,
{
    HandlerFn { function, log_id: None, message: PhantomData }
}

/// The [`Handler`] that [`handler_fn`] makes.
pub struct HandlerFn<M, F> {
    function: F,
    log_id: Option<fn(&M) -> &str>,
    message: PhantomData<fn() -> M>,
}

impl<M, F> HandlerFn<M, F> {
    /// Logs `id(message)` beside the SQS message id on each message's outcome line.
    #[must_use]
    pub fn log_id(mut self, id: fn(&M) -> &str) -> Self {
        self.log_id = Some(id);
        self
    }
}

impl<M, F> std::fmt::Debug for HandlerFn<M, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerFn").field("message", &std::any::type_name::<M>()).finish_non_exhaustive()
    }
}

impl<M, F, Fut> Handler for HandlerFn<M, F>
where
    M: DeserializeOwned + Send + 'static,
    F: Fn(M, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send,
{
    type Message = M;

    fn parse(&self, record: &SqsMessage) -> Result<M, Error> {
        json::parse_record(record)
    }

    fn handle(&self, message: M, context: Context) -> impl Future<Output = Result<(), Error>> + Send {
        (self.function)(message, context)
    }

    fn log_id<'m>(&self, message: &'m M) -> Option<&'m str> {
        self.log_id.map(|id| id(message))
    }
}
