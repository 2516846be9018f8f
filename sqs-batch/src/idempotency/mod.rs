//! Idempotency: a message delivered twice does its work once.
//!
//! SQS and its Lambda event source mapping deliver at least once: a visibility timeout that runs
//! out, a delete that fails, a crash after the work and before the delete, and a producer that
//! retries its send all hand the same work over again. [`Idempotency`] is a layer that records
//! each message's key in a [`Store`] before the handler runs, and answers a key it has seen
//! complete as a success without running the handler again (its outcome is `duplicate`, not
//! `ok`). One line in `build()` turns it on, and it runs the same in Lambda, in `local-runner` and
//! under `local-runner --lambda`:
//!
//! ```
//! use sqs_batch::{Context, Error, HandlerExt, handler_fn};
//! use sqs_batch::idempotency::{Idempotency, MemoryStore};
//!
//! #[derive(serde::Deserialize)]
//! struct Order { id: String }
//!
//! async fn handle(order: Order, _: Context) -> Result<(), Error> { Ok(()) }
//!
//! // Keyed by the order's id, so a producer's re-send (a new SQS message id) is caught too.
//! let handler = handler_fn(handle)
//!     .layer(Idempotency::new(MemoryStore::default()).key(|order: &Order| order.id.clone()));
//! # let _ = handler;
//! ```
//!
//! Each key's record moves through the states Powertools' idempotency utility uses, with its
//! DynamoDB table layout ([`DynamoStore`](dynamodb::DynamoStore), feature `dynamodb`):
//!
//! | the store holds | what a delivery does |
//! |---|---|
//! | nothing, or an expired record | claims the key (`INPROGRESS`), runs the handler; on success the record becomes `COMPLETED` for [`Idempotency::expires_after`] (1 hour by default); on a failure (an error or a panic) the record is deleted, so the retry runs |
//! | `COMPLETED` | a success without running the handler: outcome `duplicate`, deleted, and a FIFO group goes on past it |
//! | `COMPLETED`, another payload ([`Idempotency::validate_payload`]) | a permanent failure that says so: to the dead-letter queue |
//! | `INPROGRESS`, not expired | a transient failure: another delivery is running it; this one comes back after the retry back-off and is then skipped (or run, if that attempt failed) |
//! | `INPROGRESS`, expired | claims the key: the attempt that held it died (a crash, a timeout) |
//! | `INPROGRESS` for an earlier delivery of this same SQS message | claims the key: SQS redelivers only after the visibility timeout, which Lambda's timeout may not exceed, so that delivery ended (a crash, a timeout, a store answer lost in an outage) |
//!
//! An `INPROGRESS` record expires with the invocation that wrote it: at the Lambda deadline, or
//! at `local-runner --function-timeout`; without a deadline, after
//! [`Idempotency::in_progress_for`] (15 minutes, Lambda's longest timeout, by default). A crashed
//! attempt therefore holds its key no longer than it could have run.
//!
//! A store that cannot be reached fails the message as a transient failure: it is retried, never
//! lost, and nothing is marked complete whose work did not finish. Once the work has finished,
//! a store that fails to record it is logged and the message still succeeds: the work is done, so
//! it must not be done again because a bookkeeping write failed.

mod cache;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
mod memory;
mod store;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use sha2::{Digest, Sha256};
use thiserror::Error as ThisError;
use tower_layer::Layer;

use crate::layer::{Around, Wrap};

use crate::context::Context;
use crate::error::{BoxError, Error};
use crate::handler::Handler;
use crate::runtime::telemetry::clip;

use cache::Cache;
pub use memory::MemoryStore;
pub use store::{Claim, Delivery, Record, Status, Store};

/// How long a completed key is remembered by default: Powertools' default too.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(60 * 60);
/// How long an `INPROGRESS` record holds its key when the invocation has no deadline: Lambda's
/// longest timeout.
pub const DEFAULT_IN_PROGRESS: Duration = Duration::from_secs(15 * 60);
/// The most characters of a key an error message quotes: keys come from messages.
const MAX_QUOTED_KEY_CHARS: usize = 100;

/// Why the idempotency layer failed a message, inside the [`Error`] it answers with.
#[derive(Debug, ThisError)]
#[non_exhaustive]
pub enum IdempotencyError {
    /// Another delivery holds the key and may still be running: a transient failure, retried
    /// after the back-off, when it is skipped or (if that delivery failed) run.
    #[error("another delivery of key `{key}` is in progress; retried later")]
    InProgress {
        /// The key, as derived from the message (clipped).
        key: String,
    },
    /// The key completed with another payload: a permanent failure, since every retry sees the
    /// same mismatch. Either the key function maps different messages to one key, or a producer
    /// reused a key for new content.
    #[error("key `{key}` was already handled with a different payload")]
    PayloadMismatch {
        /// The key, as derived from the message (clipped).
        key: String,
    },
    /// The store could not be read or written: a transient failure.
    #[error("the idempotency store failed")]
    Store(#[source] BoxError),
}

/// What a message's key is: the SQS message id, or one derived from the typed message.
pub trait KeyOf<M>: Send + Sync + 'static {
    /// The key of `message`, delivered with `context`.
    fn key_of(&self, message: &M, context: &Context) -> String;
}

/// The default key: SQS's message id, which catches redeliveries of one send (a visibility
/// timeout that ran out, a delete that failed) but not a producer's second send.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessageId;

impl<M> KeyOf<M> for MessageId {
    fn key_of(&self, _: &M, context: &Context) -> String {
        context.message_id().to_owned()
    }
}

/// A key derived from the typed message by a function (see [`Idempotency::key`]).
#[derive(Clone, Copy)]
pub struct KeyFn<F>(F);

impl<F> std::fmt::Debug for KeyFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyFn")
    }
}

impl<M, F> KeyOf<M> for KeyFn<F>
where
    F: Fn(&M) -> String + Send + Sync + 'static,
{
    fn key_of(&self, message: &M, _: &Context) -> String {
        (self.0)(message)
    }
}

/// The idempotency layer: see the [module](self) for what it does. Clones share the store.
#[derive(Debug)]
pub struct Idempotency<S, K = MessageId> {
    store: Arc<S>,
    key: Arc<K>,
    settings: Settings,
}

impl<S, K> Clone for Idempotency<S, K> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store), key: Arc::clone(&self.key), settings: self.settings.clone() }
    }
}

#[derive(Debug, Clone)]
struct Settings {
    namespace: Option<String>,
    expires_after: Duration,
    in_progress_for: Duration,
    validate_payload: bool,
    cache: Option<usize>,
    /// One clock for every handler this layer wraps.
    clock: Clock,
}

impl<S: Store> Idempotency<S> {
    /// Idempotency recorded in `store`, keyed by the SQS message id.
    pub fn new(store: S) -> Self {
        Self {
            store: Arc::new(store),
            key: Arc::new(MessageId),
            settings: Settings {
                namespace: None,
                expires_after: DEFAULT_EXPIRY,
                in_progress_for: DEFAULT_IN_PROGRESS,
                validate_payload: false,
                cache: None,
                clock: Clock::new(),
            },
        }
    }
}

impl<S: Store, K> Idempotency<S, K> {
    /// Keys each message by `key(&message)` instead of its SQS message id: the producer's id of
    /// the work (an order id), so a second send of the same work is caught too.
    #[must_use]
    pub fn key<M, F>(self, key: F) -> Idempotency<S, KeyFn<F>>
    where
        F: Fn(&M) -> String + Send + Sync + 'static,
    {
        Idempotency { store: self.store, key: Arc::new(KeyFn(key)), settings: self.settings }
    }

    /// Prefixes every key with `namespace`: two handlers sharing a table keep apart.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.settings.namespace = Some(namespace.into());
        self
    }

    /// How long a completed key is remembered (1 hour by default): a duplicate arriving later
    /// runs again. With DynamoDB, the record's TTL attribute says when it may be deleted.
    #[must_use]
    pub fn expires_after(mut self, expiry: Duration) -> Self {
        self.settings.expires_after = expiry;
        self
    }

    /// How long an `INPROGRESS` record holds its key when the invocation has no deadline (15
    /// minutes by default). With a deadline (Lambda's, or `--function-timeout`) the deadline is
    /// used.
    #[must_use]
    pub fn in_progress_for(mut self, hold: Duration) -> Self {
        self.settings.in_progress_for = hold;
        self
    }

    /// Records a hash of each message's body with its key, and fails a later message with the
    /// same key and another body permanently ([`IdempotencyError::PayloadMismatch`]) instead of
    /// skipping it.
    #[must_use]
    pub fn validate_payload(mut self) -> Self {
        self.settings.validate_payload = true;
        self
    }

    /// Keeps up to `keys` completed keys in this process too, so a duplicate of a key this
    /// process completed is answered without a store call. The store stays the truth: a key
    /// completed elsewhere is found there.
    #[must_use]
    pub fn cache(mut self, keys: usize) -> Self {
        self.settings.cache = (keys > 0).then_some(keys);
        self
    }
}

impl<H, S, K> Layer<H> for Idempotency<S, K>
where
    H: Handler,
    S: Store,
    K: KeyOf<H::Message>,
{
    type Service = Idempotent<H, S, K>;

    fn layer(&self, inner: H) -> Self::Service {
        let claims = Claims {
            store: Arc::clone(&self.store),
            key: Arc::clone(&self.key),
            cache: self.settings.cache.map(Cache::new),
            settings: self.settings.clone(),
        };
        Around::new(claims, inner)
    }
}

/// A handler inside an [`Idempotency`] layer.
pub type Idempotent<H, S, K> = Around<Claims<S, K>, H>;

/// What an [`Idempotency`] layer does around the handler inside it: claims each message's key in
/// its store before the work, and records or releases it after.
pub struct Claims<S, K> {
    store: Arc<S>,
    key: Arc<K>,
    cache: Option<Cache>,
    settings: Settings,
}

impl<S, K> std::fmt::Debug for Claims<S, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl<H, S, K> Wrap<H> for Claims<S, K>
where
    H: Handler,
    S: Store,
    K: KeyOf<H::Message>,
{
    /// Hashes the body on its way to `inner` when the payload is validated: the record keeps no
    /// body once it is parsed.
    fn parse(&self, inner: &H, body: String, context: &Context) -> Result<H::Message, Error> {
        if self.settings.validate_payload {
            context.keep_body_hash(hash(&body));
        }
        inner.parse(body, context)
    }

    /// Boxed: what this layer keeps while the work runs (the claim, its key and the store's
    /// calls) is kilobytes, and inline it would make every message's task that large, also in a
    /// handler built with `maybe_layer(None)` (BENCHMARKS.md, memory at scale). One allocation per
    /// message beside a call to the store.
    fn handle(
        &self,
        inner: &H,
        message: H::Message,
        context: Context,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        Box::pin(self.claimed_and_handled(inner, message, context))
    }
}

impl<S: Store, K> Claims<S, K> {
    /// Claims the message's key, runs the inner handler, and records or releases the key.
    async fn claimed_and_handled<H>(
        &self,
        inner: &H,
        message: H::Message,
        context: Context,
    ) -> Result<(), Error>
    where
        H: Handler,
        K: KeyOf<H::Message>,
    {
        let key = self.key.key_of(&message, &context);
        let id = self.record_id(&key);
        // Hashed by `parse`, on the body's way to the inner handler: the record keeps no body.
        let payload = context.body_hash().filter(|_| self.settings.validate_payload).map(str::to_owned);
        let now = self.settings.clock.now();
        if let Some(known) = self.cache.as_ref().and_then(|cache| cache.get(&id, now)) {
            return seen(&known, payload.as_deref(), &key, &context);
        }
        let hold_until =
            context.deadline().or_else(|| now.checked_add(self.settings.in_progress_for)).unwrap_or(now);
        let claim = Record {
            id: id.clone(),
            status: Status::InProgress,
            expires: now.checked_add(self.settings.expires_after).unwrap_or(now),
            in_progress_until: Some(hold_until),
            payload: payload.clone(),
            holder: Some(Delivery {
                message_id: context.message_id().to_owned(),
                receive_count: context.receive_count(),
                attempt: format!("{:016x}", fastrand::u64(..)),
            }),
        };
        // The store's calls are boxed too: an SDK call's future is kilobytes, and inline it would
        // make this layer's own box that large for the whole time the work runs (BENCHMARKS.md,
        // memory at scale).
        match Box::pin(self.store.claim(&claim, now)).await {
            Ok(Claim::Claimed) => {}
            // This very call holds it: an attempt of it landed, its answer was lost, and the SDK's
            // retry found its record.
            Ok(Claim::Taken(existing))
                if existing.status == Status::InProgress && existing.holder == claim.holder => {}
            Ok(Claim::Taken(existing)) => {
                if let Some(cache) = &self.cache {
                    // Only a completed record is kept.
                    cache.insert(&existing);
                }
                return seen(&existing, payload.as_deref(), &key, &context);
            }
            Err(error) => return Err(Error::transient(IdempotencyError::Store(error))),
        }
        // A panic is caught here as well as by the batch core, so that the key is released and
        // the retry runs at once rather than after the record's expiry.
        let result = AssertUnwindSafe(inner.handle(message, context))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(Error::Panicked(crate::text::panic_text(&*panic))));
        if result.is_ok() {
            let done = self.settings.clock.now();
            let completed = Record {
                status: Status::Completed,
                expires: done.checked_add(self.settings.expires_after).unwrap_or(done),
                in_progress_until: None,
                holder: None,
                ..claim.clone()
            };
            match Box::pin(self.store.complete(&completed)).await {
                Ok(()) => {
                    if let Some(cache) = &self.cache {
                        cache.insert(&completed);
                    }
                }
                Err(error) => tracing::warn!(
                    error = %crate::error::chain_text(&*error),
                    "the work is done but the idempotency store did not record it: a duplicate \
                     arriving before its INPROGRESS record expires is retried, after it runs again"
                ),
            }
        } else if let Err(error) = Box::pin(self.store.release(&claim)).await {
            tracing::warn!(
                error = %crate::error::chain_text(&*error),
                "the idempotency store kept the failed message's key: its retry waits for the \
                 INPROGRESS record to expire"
            );
        }
        result
    }
}

impl<S, K> Claims<S, K> {
    /// The record's id: the namespace and a SHA-256 of the key, so that the id has a fixed size
    /// whatever the message carries (DynamoDB keys are at most 2 KB) and holds none of its text.
    fn record_id(&self, key: &str) -> String {
        let digest = hash(key);
        match &self.settings.namespace {
            Some(namespace) => format!("{namespace}#{digest}"),
            None => digest,
        }
    }
}

/// What a delivery does with a key that another delivery holds or completed.
fn seen(record: &Record, payload: Option<&str>, key: &str, context: &Context) -> Result<(), Error> {
    let key = clip(key, MAX_QUOTED_KEY_CHARS).into_owned();
    match record.status {
        Status::InProgress => Err(Error::transient(IdempotencyError::InProgress { key })),
        Status::Completed => match (payload, record.payload.as_deref()) {
            (Some(now), Some(then)) if now != then => {
                Err(Error::permanent(IdempotencyError::PayloadMismatch { key }))
            }
            _ => {
                context.mark_duplicate();
                Ok(())
            }
        },
    }
}

/// SHA-256 of `text`, in lower-case hex.
fn hash(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest.iter() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Wall-clock time that follows tokio's clock: the same as `SystemTime::now()` in production,
/// and paused and advanced with tokio's test clock, so expiry is testable without waiting.
#[derive(Debug, Clone, Copy)]
struct Clock {
    system: SystemTime,
    instant: tokio::time::Instant,
}

impl Clock {
    fn new() -> Self {
        Self { system: SystemTime::now(), instant: tokio::time::Instant::now() }
    }

    fn now(&self) -> SystemTime {
        self.system + self.instant.elapsed()
    }
}

/// The record ids the layer uses for `key` with no namespace: for tools that look records up.
#[must_use]
pub fn record_id(key: &str) -> String {
    hash(key)
}

#[cfg(test)]
mod tests;
