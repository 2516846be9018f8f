//! The handler API: one async function for the short path ([`handler_fn`]), a trait for handlers
//! with state ([`Handler`]).

use std::future::Future;
use std::marker::PhantomData;

use crate::context::Context;
use crate::envelope::{ByMessageType, IntoParseError, Parse, ParseWith};
use crate::error::Error;

/// What a message handler does, split in two so that reading a record stays apart from the work.
///
/// The batch core calls [`Handler::parse`] and then [`Handler::handle`] for each record, each
/// message in a task of its own inside a tracing span that carries the record's `message_id`.
/// `parse` gets the body by value, so while the work runs the message holds it once, as the
/// parsed message (the record in [`Context::record`] keeps the rest).
/// Both may fail or panic; either way only that message fails. One handler value serves every
/// message of the process, so it is where clients and pools built at start-up live.
///
/// ```
/// use sqs_batch::{Context, Error, Handler};
///
/// #[derive(serde::Deserialize)]
/// struct Order { id: u64 }
///
/// struct Orders { table: String }
///
/// impl Handler for Orders {
///     type Message = Order;
///
///     fn parse(&self, body: String, _context: &Context) -> Result<Order, Error> {
///         sqs_batch::json::parse_str(&body)
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

    /// Reads one record's body into a message; `context` has the rest of the record (its
    /// attributes, [`Context::record`]). A record without a body (SQS sends none) fails as an
    /// [`Error::InvalidBody`] before this is called.
    ///
    /// # Errors
    /// Whatever makes the body unusable, usually [`Error::InvalidBody`]; it fails that message
    /// alone.
    fn parse(&self, body: String, context: &Context) -> Result<Self::Message, Error>;

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

/// A shared handler is a handler: what a layer keeps of the handler inside it when its work
/// outlives the call (a [`from_fn`](crate::layer::from_fn) layer's `next`).
impl<H: Handler> Handler for std::sync::Arc<H> {
    type Message = H::Message;

    fn parse(&self, body: String, context: &Context) -> Result<H::Message, Error> {
        (**self).parse(body, context)
    }

    fn handle(
        &self,
        message: H::Message,
        context: Context,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        (**self).handle(message, context)
    }

    fn log_id<'m>(&self, message: &'m H::Message) -> Option<&'m str> {
        (**self).log_id(message)
    }
}

/// A handler made of one async function. The function's message type says how the body is read
/// ([`FromBody`](crate::envelope::FromBody)): JSON into any `Deserialize` type, every parse error naming its field; an
/// envelope of [`envelope`](crate::envelope) (`Sns<T>`, `EventBridge<T>`, `S3`, `Text`). A format
/// of your own is one function away, [`HandlerFn::parse_with`].
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
    M: Send + 'static,
    F: Fn(M, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send,
{
    HandlerFn { function, log_id: None, parse: ByMessageType, message: PhantomData }
}

/// The [`Handler`] that [`handler_fn`] makes; `P` reads each record into the message.
pub struct HandlerFn<M, F, P = ByMessageType> {
    function: F,
    log_id: Option<fn(&M) -> &str>,
    parse: P,
    message: PhantomData<fn() -> M>,
}

impl<M, F, P> HandlerFn<M, F, P> {
    /// Logs `id(message)` beside the SQS message id on each message's outcome line.
    #[must_use]
    pub fn log_id(mut self, id: fn(&M) -> &str) -> Self {
        self.log_id = Some(id);
        self
    }

    /// Reads each body with `parse` instead of the message type's [`FromBody`](crate::envelope::FromBody): plain text, a
    /// line format, anything. `str::parse` takes any [`FromStr`](std::str::FromStr) type (a
    /// `String` is the body as it is). A failure fails that message alone: an error or text
    /// becomes an [`Error::InvalidBody`] with it as the reason, and an [`Error`] is kept as it
    /// is ([`Error::ignore`] for a body that needs no work).
    ///
    /// ```
    /// use sqs_batch::{Context, Error, handler_fn};
    ///
    /// async fn greet(name: String, _: Context) -> Result<(), Error> {
    ///     println!("hello, {name}");
    ///     Ok(())
    /// }
    ///
    /// let handler = handler_fn(greet).parse_with(str::parse);
    /// # let _ = handler;
    /// ```
    #[must_use]
    pub fn parse_with<G, E>(self, parse: G) -> HandlerFn<M, F, ParseWith<G>>
    where
        G: Fn(&str) -> Result<M, E> + Send + Sync + 'static,
        E: IntoParseError,
    {
        let Self { function, log_id, parse: _, message } = self;
        HandlerFn { function, log_id, parse: ParseWith(parse), message }
    }
}

impl<M, F, P> std::fmt::Debug for HandlerFn<M, F, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerFn").field("message", &std::any::type_name::<M>()).finish_non_exhaustive()
    }
}

impl<M, F, Fut, P> Handler for HandlerFn<M, F, P>
where
    M: Send + 'static,
    F: Fn(M, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send,
    P: Parse<M>,
{
    type Message = M;

    fn parse(&self, body: String, _context: &Context) -> Result<M, Error> {
        self.parse.parse(body)
    }

    fn handle(&self, message: M, context: Context) -> impl Future<Output = Result<(), Error>> + Send {
        (self.function)(message, context)
    }

    fn log_id<'m>(&self, message: &'m M) -> Option<&'m str> {
        self.log_id.map(|id| id(message))
    }
}
