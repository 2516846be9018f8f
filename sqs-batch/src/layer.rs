//! Composing handlers: layers wrap a [`Handler`] in another, the way tower's layers wrap a
//! service, so timing, metrics, rate limits or idempotency are added in one line and run the
//! same under Lambda, in `local-runner` and under `local-runner --lambda`: they are part of the
//! handler value `build()` returns.
//!
//! The trait is tower's own [`Layer`] (from `tower-layer`), with a [`Handler`] as the thing it
//! wraps: a layer written for this crate is an ordinary tower layer, and [`Stack`] and
//! [`Identity`] compose them. [`from_fn`] makes one from an async function, for the common case
//! of work around `handle`:
//!
//! ```
//! use sqs_batch::{Context, Error, HandlerExt, Next, handler_fn, from_fn};
//!
//! #[derive(serde::Deserialize)]
//! struct Order { id: String }
//!
//! async fn handle(order: Order, _: Context) -> Result<(), Error> { Ok(()) }
//!
//! async fn timed(order: Order, context: Context, next: Next<Order>) -> Result<(), Error> {
//!     let started = std::time::Instant::now();
//!     let result = next.run(order, context).await;
//!     tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "handled");
//!     result
//! }
//!
//! let handler = handler_fn(handle).layer(from_fn(timed));
//! # let _ = handler;
//! ```
//!
//! A layer of its own type implements [`Layer`] for any `H: Handler`. When it changes how each
//! message is handled, it returns [`Around`] with a [`Wrap`] of its own, whose `handle` is all
//! it writes (the inner handler reads and names the messages). One that changes more (the record
//! before it is parsed, as large payloads do) returns a [`Handler`] of its own that calls the
//! inner one.
//!
//! Layers run outermost first: in `handler.layer(a).layer(b)`, `b` sees each message first and
//! `a` next, then the handler (tower's order: the last layer added is the outermost).
//! The batch core keeps what must hold whatever a layer does, outside every layer: each
//! message's span, its panic caught as that message's failure, and its outcome line.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use tower_layer::{Identity, Layer, Stack};

use crate::context::Context;
use crate::error::Error;
use crate::handler::Handler;

/// [`HandlerExt::layer`] for every handler.
pub trait HandlerExt: Handler + Sized {
    /// This handler inside `layer`: the layer's handler sees each message first.
    #[must_use]
    fn layer<L>(self, layer: L) -> L::Service
    where
        L: Layer<Self>,
        L::Service: Handler,
    {
        layer.layer(self)
    }

    /// This handler inside `layer` when there is one, as it is otherwise: a layer that a setting
    /// turns on (idempotency when its table is configured) in one line.
    #[must_use]
    fn maybe_layer<L>(self, layer: Option<L>) -> Either<L::Service, Self>
    where
        L: Layer<Self>,
        L::Service: Handler<Message = Self::Message>,
    {
        match layer {
            Some(layer) => Either::Layered(layer.layer(self)),
            None => Either::Plain(self),
        }
    }
}

impl<H: Handler> HandlerExt for H {}

/// The handler [`HandlerExt::maybe_layer`] makes: inside the layer, or not.
#[derive(Debug)]
pub enum Either<L, H> {
    /// The handler inside the layer.
    Layered(L),
    /// The handler alone.
    Plain(H),
}

impl<L, H> Handler for Either<L, H>
where
    L: Handler,
    H: Handler<Message = L::Message>,
{
    type Message = L::Message;

    fn parse(&self, body: String, context: &Context) -> Result<L::Message, Error> {
        match self {
            Self::Layered(handler) => handler.parse(body, context),
            Self::Plain(handler) => handler.parse(body, context),
        }
    }

    async fn handle(&self, message: L::Message, context: Context) -> Result<(), Error> {
        match self {
            Self::Layered(handler) => handler.handle(message, context).await,
            Self::Plain(handler) => handler.handle(message, context).await,
        }
    }

    fn log_id<'m>(&self, message: &'m L::Message) -> Option<&'m str> {
        match self {
            Self::Layered(handler) => handler.log_id(message),
            Self::Plain(handler) => handler.log_id(message),
        }
    }
}

/// What a layer does to each message on its way to the handler inside it, and only that: the
/// handler it makes ([`Around`]) reads records and names messages as the inner one does, so a
/// layer that changes how a message is handled writes `handle` alone, no forwarding of `parse`
/// or `log_id`.
///
/// ```
/// use sqs_batch::layer::{Around, Layer, Wrap};
/// use sqs_batch::{Context, Error, Handler, HandlerExt, handler_fn};
///
/// /// Fails a message whose deadline is too near for the work to finish.
/// struct EnoughTime(std::time::Duration);
/// struct Checked(std::time::Duration);
///
/// impl<H: Handler> Layer<H> for EnoughTime {
///     type Service = Around<Checked, H>;
///     fn layer(&self, inner: H) -> Self::Service {
///         Around::new(Checked(self.0), inner)
///     }
/// }
///
/// impl<H: Handler> Wrap<H> for Checked {
///     async fn handle(&self, inner: &H, message: H::Message, context: Context) -> Result<(), Error> {
///         match context.remaining() {
///             Some(left) if left < self.0 => Err(Error::transient("too little time left")),
///             _ => inner.handle(message, context).await,
///         }
///     }
/// }
///
/// async fn work(_: String, _: Context) -> Result<(), Error> { Ok(()) }
/// let handler = handler_fn(work).layer(EnoughTime(std::time::Duration::from_secs(2)));
/// # let _ = handler;
/// ```
pub trait Wrap<H: Handler>: Send + Sync + 'static {
    /// Reads `body` into `inner`'s message: by default `inner` reads it. A layer that must see
    /// the body itself (idempotency hashes it to validate the payload) reads it here, on its way.
    ///
    /// # Errors
    /// As [`Handler::parse`].
    fn parse(&self, inner: &H, body: String, context: &Context) -> Result<H::Message, Error> {
        inner.parse(body, context)
    }

    /// Handles `message`: calls `inner` (or answers without it), with work before and after.
    fn handle(
        &self,
        inner: &H,
        message: H::Message,
        context: Context,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The handler a layer made of a [`Wrap`] `W` makes of `H`: `H`'s messages, read and named by
/// `H`, each handled through `W`.
pub struct Around<W, H> {
    wrap: W,
    inner: H,
}

impl<W, H> Around<W, H> {
    /// `inner` handled through `wrap`.
    pub fn new(wrap: W, inner: H) -> Self {
        Self { wrap, inner }
    }
}

impl<W: std::fmt::Debug, H> std::fmt::Debug for Around<W, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Around").field("wrap", &self.wrap).finish_non_exhaustive()
    }
}

impl<W: Wrap<H>, H: Handler> Handler for Around<W, H> {
    type Message = H::Message;

    fn parse(&self, body: String, context: &Context) -> Result<H::Message, Error> {
        self.wrap.parse(&self.inner, body, context)
    }

    fn handle(
        &self,
        message: H::Message,
        context: Context,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.wrap.handle(&self.inner, message, context)
    }

    fn log_id<'m>(&self, message: &'m H::Message) -> Option<&'m str> {
        self.inner.log_id(message)
    }
}

/// A layer made of an async function `f(message, context, next)` that may do work before and
/// after `next.run(message, context)`, or answer without calling it.
pub fn from_fn<F>(function: F) -> FromFnLayer<F> {
    FromFnLayer { function }
}

/// The [`Layer`] [`from_fn`] makes.
#[derive(Debug, Clone, Copy)]
pub struct FromFnLayer<F> {
    function: F,
}

impl<H, F, Fut> Layer<H> for FromFnLayer<F>
where
    H: Handler,
    F: Fn(H::Message, Context, Next<H::Message>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send,
{
    type Service = FromFn<F, H>;

    fn layer(&self, inner: H) -> Self::Service {
        Around::new(CallsNext { function: self.function.clone() }, Arc::new(inner))
    }
}

/// A handler inside a [`from_fn`] layer.
pub type FromFn<F, H> = Around<CallsNext<F>, Arc<H>>;

/// The [`Wrap`] of a [`from_fn`] layer: its function, handed the rest of the chain as [`Next`].
pub struct CallsNext<F> {
    function: F,
}

impl<F> std::fmt::Debug for CallsNext<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallsNext").finish_non_exhaustive()
    }
}

impl<H, F, Fut> Wrap<Arc<H>> for CallsNext<F>
where
    H: Handler,
    F: Fn(H::Message, Context, Next<H::Message>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send,
{
    fn handle(
        &self,
        inner: &Arc<H>,
        message: H::Message,
        context: Context,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let next = Next { inner: Arc::clone(inner) as Arc<dyn Handle<H::Message>> };
        (self.function)(message, context, next)
    }
}

/// The rest of the chain, for a [`from_fn`] layer to call (or not).
pub struct Next<M> {
    inner: Arc<dyn Handle<M>>,
}

impl<M> std::fmt::Debug for Next<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next").finish_non_exhaustive()
    }
}

impl<M: Send + 'static> Next<M> {
    /// Hands the message on to the inner handler.
    ///
    /// # Errors
    /// Whatever the inner handler fails with.
    pub async fn run(self, message: M, context: Context) -> Result<(), Error> {
        self.inner.handle_boxed(message, context).await
    }
}

type BoxFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// `Handler::handle` with its future boxed: what [`Next`] calls, whatever the inner handler is.
trait Handle<M>: Send + Sync {
    fn handle_boxed(&self, message: M, context: Context) -> BoxFuture<'_>;
}

impl<H: Handler> Handle<H::Message> for H {
    fn handle_boxed(&self, message: H::Message, context: Context) -> BoxFuture<'_> {
        Box::pin(self.handle(message, context))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::handler::handler_fn;
    use crate::testing::{record, run};

    #[derive(Debug, serde::Deserialize)]
    struct Job {
        id: String,
    }

    async fn work(job: Job, _: Context) -> Result<(), Error> {
        if job.id == "boom" { Err(Error::transient("the work failed")) } else { Ok(()) }
    }

    async fn veto(job: Job, context: Context, next: Next<Job>) -> Result<(), Error> {
        if job.id == "vetoed" {
            return Err(Error::permanent("vetoed by the layer"));
        }
        next.run(job, context).await
    }

    #[tokio::test]
    async fn a_from_fn_layer_sees_each_message_first_and_may_answer_alone() {
        let handler = handler_fn(work).log_id(|job: &Job| job.id.as_str()).layer(from_fn(veto));
        let report = run(
            handler,
            [
                record(r#"{"id":"ok"}"#),
                record(r#"{"id":"vetoed"}"#),
                record(r#"{"id":"boom"}"#),
                record("not json"),
            ],
        )
        .await;
        assert_eq!(report.labels(), ["ok", "failed", "failed", "failed"]);
        assert!(report.errors()[1].as_deref().is_some_and(|e| e.contains("vetoed by the layer")));
        assert!(report.errors()[2].as_deref().is_some_and(|e| e.contains("the work failed")));
        assert!(
            report.errors()[3].as_deref().is_some_and(|e| e.starts_with("invalid body")),
            "parse is the inner handler's"
        );
    }

    /// A wrap that writes `handle` alone.
    struct Vetoes;

    impl<H: Handler<Message = Job>> Wrap<H> for Vetoes {
        async fn handle(&self, inner: &H, job: Job, context: Context) -> Result<(), Error> {
            if job.id == "vetoed" {
                return Err(Error::permanent("vetoed by the wrap"));
            }
            inner.handle(job, context).await
        }
    }

    #[tokio::test]
    async fn an_around_handler_runs_its_wrap_and_reads_and_names_messages_as_the_inner_one() {
        let handler = Around::new(Vetoes, handler_fn(work).log_id(|job: &Job| job.id.as_str()));
        let context = Context::new(record("").build());
        let parsed = handler.parse(r#"{"id":"a1"}"#.to_owned(), &context).expect("the inner parse");
        assert_eq!(handler.log_id(&parsed), Some("a1"), "the inner handler's log id");
        let report =
            run(handler, [record(r#"{"id":"ok"}"#), record(r#"{"id":"vetoed"}"#), record("not json")]).await;
        assert_eq!(report.labels(), ["ok", "failed", "failed"]);
        assert!(report.errors()[1].as_deref().is_some_and(|e| e.contains("vetoed by the wrap")));
        assert!(report.errors()[2].as_deref().is_some_and(|e| e.starts_with("invalid body")));
    }

    #[tokio::test]
    async fn layers_stack_outermost_last_and_each_runs_once_per_message() {
        static OUTER: AtomicUsize = AtomicUsize::new(0);
        static INNER: AtomicUsize = AtomicUsize::new(0);
        async fn outer(job: Job, context: Context, next: Next<Job>) -> Result<(), Error> {
            assert_eq!(INNER.load(Ordering::SeqCst), OUTER.fetch_add(1, Ordering::SeqCst), "outer first");
            next.run(job, context).await
        }
        async fn inner(job: Job, context: Context, next: Next<Job>) -> Result<(), Error> {
            INNER.fetch_add(1, Ordering::SeqCst);
            next.run(job, context).await
        }
        let handler = handler_fn(work).layer(from_fn(inner)).layer(from_fn(outer));
        let report = run(handler, (0..5).map(|i| record(format!(r#"{{"id":"m{i}"}}"#)))).await;
        assert!(report.failed_ids().is_empty());
        assert_eq!((OUTER.load(Ordering::SeqCst), INNER.load(Ordering::SeqCst)), (5, 5));
    }

    #[tokio::test]
    async fn a_layer_that_panics_fails_its_message_alone() {
        async fn panics(job: Job, context: Context, next: Next<Job>) -> Result<(), Error> {
            assert!(job.id != "panic", "a layer with a bug");
            next.run(job, context).await
        }
        let handler = handler_fn(work).layer(from_fn(panics));
        let report = run(handler, [record(r#"{"id":"a"}"#), record(r#"{"id":"panic"}"#)]).await;
        assert_eq!(report.labels(), ["ok", "failed"]);
        assert!(report.errors()[1].as_deref().is_some_and(|e| e.starts_with("handler panicked")));
    }

    #[tokio::test]
    async fn a_maybe_layer_wraps_the_handler_only_when_there_is_a_layer() {
        let vetoing = |layer: Option<FromFnLayer<_>>| handler_fn(work).maybe_layer(layer);
        let body = [record(r#"{"id":"vetoed"}"#)];
        assert_eq!(run(vetoing(Some(from_fn(veto))), body.clone()).await.labels(), ["failed"]);
        assert_eq!(run(vetoing(None), body).await.labels(), ["ok"]);
    }
}
