//! The framework's own test handler, so that the end-to-end suite never depends on the example in
//! `handler/`: a user's edit there cannot break these tests.
//!
//! A message is a JSON object; what the handler does with it is written in it:
//!
//! | field | effect |
//! |---|---|
//! | `id` (string, required) | logged as the message's `id`; prefixes below |
//! | `ms` | sleep this long (async work) |
//! | `block_ms` | block the thread this long (`std::thread::sleep`: a handler that misbehaves) |
//! | `first_ms` | sleep this long on its first delivery only (work a crash interrupts) |
//! | `fail` | `"transient"` or `"permanent"`: fail every time, with that kind |
//! | `gate` | `true`: wait until the test opens the recorder's gate |
//! | `env` | the name of an environment variable: fail (permanently) unless it is set |
//! | `trace` | `true`: log the message's context (receive count, group, deadline) as a `context` line |
//! | `note` | `true`: log a `note` line that names no message (the runtime adds its correlation fields) |
//! | `pad`, `pad_len` | fail (permanently) unless `pad` is `pad_len` bytes: a large body arrived whole |
//!
//! Every message it handles logs a `handling` line at `debug` and records the metric
//! `OrdersStored` (1, counted when it succeeds); a message failed by `fail` records
//! `OrdersRejected` (1, dimension `kind`: `transient` or `permanent`, kept on failure).
//!
//! An `id` starting with `flaky-` fails (transiently) on its first delivery; `panic-` panics on
//! its first delivery; `vetoed-` is failed (permanently) by the [`veto`] layer that [`build`]
//! adds, before the handler sees it. A body that is not such an object is an invalid body: poison.
//!
//! The message may also arrive in an envelope, read with `sqs_batch`'s own ([`arrived`]): an SNS
//! notification whose `Message` is such an object (raw delivery is the object itself), an
//! EventBridge event whose `detail` is one, an S3 event notification (each object's key is the
//! `id`; S3's test event is ignored), or a plain-text `resize IMAGE WxH` line (the image is the
//! `id`).
//!
//! With `IDEMPOTENCY_TABLE` set, [`build`] adds the idempotency layer too, keyed by `id` and
//! recorded in that DynamoDB table: messages with one `id` do their work once.
//!
//! With `PAYLOAD_BUCKET` set, [`build`] reads bodies the SQS Extended Client kept in that S3
//! bucket (`LargePayloads`, the outermost layer).
//!
//! `e2e-bootstrap` (this crate) is a Lambda function built with it; `e2e-runner` (the `e2e`
//! crate) is `local-runner` built with it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sqs_batch::idempotency::{Idempotency, dynamodb::DynamoStore};
use sqs_batch::metrics::{Metric, Unit};
use sqs_batch::{BoxError, Context, Error, Handler, HandlerExt, Next, from_fn};
use tokio::sync::watch;

/// A test message; see the crate documentation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TestMessage {
    /// Its id.
    pub id: String,
    /// Async work.
    #[serde(default)]
    pub ms: u64,
    /// Blocking work.
    #[serde(default)]
    pub block_ms: u64,
    /// Async work on the first delivery only.
    #[serde(default)]
    pub first_ms: u64,
    /// How it fails, if it always does.
    #[serde(default)]
    pub fail: Option<FailKind>,
    /// Wait for the gate.
    #[serde(default)]
    pub gate: bool,
    /// An environment variable it needs.
    #[serde(default)]
    pub env: Option<String>,
    /// Log the context.
    #[serde(default)]
    pub trace: bool,
    /// Log a `note` line of the handler's own, naming no message: the runtime adds the
    /// correlation fields.
    #[serde(default)]
    pub note: bool,
    /// Padding: a large body.
    #[serde(default)]
    pub pad: String,
    /// How long `pad` must be: a large body that arrived whole.
    #[serde(default)]
    pub pad_len: Option<usize>,
}

/// How a message that always fails fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailKind {
    /// [`Error::Transient`].
    Transient,
    /// [`Error::Permanent`].
    Permanent,
}

/// A body for a message with `id` and `ms` of async work.
#[must_use]
pub fn body(id: &str, ms: u64) -> String {
    serde_json::json!({ "id": id, "ms": ms }).to_string()
}

/// One attempt at a message, as the handler saw it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When it was parsed.
    pub at: Instant,
    /// The body's `id`, or the raw body when it did not parse.
    pub id: String,
    /// Its `ApproximateReceiveCount`.
    pub receive_count: u32,
    /// Its message group (FIFO).
    pub group: Option<String>,
    /// Whether the body parsed.
    pub ok: bool,
}

/// What an in-process test sees of the handler: every attempt, every success, how many ran at
/// once, and a gate that `gate` messages wait for.
#[derive(Debug)]
pub struct Recorder {
    attempts: Mutex<Vec<Attempt>>,
    completed: Mutex<Vec<String>>,
    running: AtomicU32,
    peak: AtomicU32,
    gate: watch::Sender<bool>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            attempts: Mutex::default(),
            completed: Mutex::default(),
            running: AtomicU32::default(),
            peak: AtomicU32::default(),
            gate: watch::Sender::new(false),
        }
    }
}

impl Recorder {
    /// Every attempt, in order.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Ids of the messages handled successfully, in completion order.
    pub fn handled(&self) -> Vec<String> {
        self.completed.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Messages in their work right now.
    pub fn running(&self) -> u32 {
        self.running.load(Ordering::SeqCst)
    }

    /// The most messages ever in their work at once.
    pub fn peak(&self) -> u32 {
        self.peak.load(Ordering::SeqCst)
    }

    /// Lets every `gate` message, waiting or to come, go on.
    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }
}

/// The test handler; with a recorder, it records what it does.
#[derive(Debug, Clone, Default)]
pub struct TestHandler {
    recorder: Option<Arc<Recorder>>,
}

impl TestHandler {
    /// A handler that records into `recorder`.
    #[must_use]
    pub fn recording(recorder: Arc<Recorder>) -> Self {
        Self { recorder: Some(recorder) }
    }
}

/// The hook the test binaries hand to the runtimes: the test handler inside the [`veto`] layer,
/// so that every runtime is seen to run a layer added in `build()`; and inside the idempotency
/// layer, keyed by `id`, when `IDEMPOTENCY_TABLE` names a table.
///
/// # Errors
/// When `IDEMPOTENCY_TABLE` or `PAYLOAD_BUCKET` names a table or bucket that is missing.
pub async fn build() -> Result<impl Handler, BoxError> {
    let idempotency = DynamoStore::from_env()
        .await?
        .map(|table| Idempotency::new(table).key(|message: &TestMessage| message.id.clone()));
    Ok(TestHandler::default()
        .layer(from_fn(veto))
        .maybe_layer(idempotency)
        .layer(sqs_batch::large_payload::LargePayloads::from_env().await?))
}

/// Reads a body, in whichever envelope it came: see the crate documentation. The envelope is
/// told by the body's shape (the test function serves every suite with one build); a handler of
/// one source names its envelope in its message type instead (`Sns<Order>`).
///
/// # Errors
/// The envelope's or the message's [`Error::InvalidBody`]; S3's test event is [`Error::Ignored`].
pub fn arrived(body: &str) -> Result<TestMessage, Error> {
    use sqs_batch::{EventBridge, FromBody, S3, Sns};
    if body.starts_with("resize ") {
        let command: Resize = body.parse().map_err(|reason: String| Error::invalid_body(None, reason))?;
        return Ok(TestMessage { id: command.image, ..TestMessage::default() });
    }
    let has = |key: &str| body.contains(key);
    if has("\"TopicArn\"") {
        Sns::<TestMessage>::from_body(body).map(|sns| sns.message)
    } else if has("\"detail-type\"") {
        EventBridge::<TestMessage>::from_body(body).map(|event| event.detail)
    } else if has("\"Records\"") || has("s3:TestEvent") {
        let event = S3::from_body(body)?;
        let keys: Vec<String> = event.records.into_iter().filter_map(|r| r.s3.object.key).collect();
        Ok(TestMessage { id: keys.join(","), ..TestMessage::default() })
    } else {
        TestMessage::from_body(body)
    }
}

/// `resize IMAGE WIDTHxHEIGHT`: the plain-text message.
#[derive(Debug)]
pub struct Resize {
    /// The image: the message's id.
    pub image: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl std::str::FromStr for Resize {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        let (Some("resize"), Some(image), Some(size)) = (words.next(), words.next(), words.next()) else {
            return Err("expected `resize IMAGE WIDTHxHEIGHT`".into());
        };
        let (width, height) = size.split_once('x').ok_or("expected WIDTHxHEIGHT")?;
        let number = |n: &str| n.parse::<u32>().map_err(|e| format!("{n:?}: {e}"));
        Ok(Self { image: image.to_owned(), width: number(width)?, height: number(height)? })
    }
}

/// A layer: a message whose `id` starts with `vetoed-` fails permanently before the handler
/// sees it, with a reason that names the layer.
///
/// # Errors
/// That permanent failure, or the handler's own.
pub async fn veto(message: TestMessage, context: Context, next: Next<TestMessage>) -> Result<(), Error> {
    if message.id.starts_with("vetoed-") {
        return Err(Error::permanent("vetoed by the layer"));
    }
    next.run(message, context).await
}

impl Handler for TestHandler {
    type Message = TestMessage;

    fn parse(&self, body: String, context: &Context) -> Result<TestMessage, Error> {
        let parsed = arrived(&body);
        if let Some(recorder) = &self.recorder {
            let record = context.record();
            let attempt = Attempt {
                at: Instant::now(),
                id: match &parsed {
                    Ok(message) => message.id.clone(),
                    Err(_) => body,
                },
                receive_count: record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
                group: record.attributes.get("MessageGroupId").cloned(),
                ok: parsed.is_ok(),
            };
            recorder.attempts.lock().unwrap_or_else(PoisonError::into_inner).push(attempt);
        }
        parsed
    }

    fn log_id<'m>(&self, message: &'m TestMessage) -> Option<&'m str> {
        Some(&message.id)
    }

    async fn handle(&self, message: TestMessage, context: Context) -> Result<(), Error> {
        let first = context.receive_count() == 1;
        tracing::debug!(id = %message.id, "handling");
        context.add_metric("OrdersStored", Unit::Count, 1.0);
        if let Some(kind) = &message.fail {
            let kind = if matches!(kind, FailKind::Transient) { "transient" } else { "permanent" };
            context.record_metric(
                Metric::new("OrdersRejected", Unit::Count, 1.0).dimension("kind", kind).even_if_failed(),
            );
        }
        if message.note {
            tracing::info!(note_of = %message.id, "note");
        }
        if message.trace {
            let left_ms = context.remaining().map(|left| u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
            tracing::info!(
                id = %message.id,
                message_id = context.message_id(),
                receive_count = context.receive_count(),
                group = context.message_group_id(),
                deadline_left_ms = left_ms,
                "context"
            );
        }
        if message.id.starts_with("flaky-") && first {
            return Err(Error::transient("fails on its first delivery"));
        }
        if message.id.starts_with("panic-") && first {
            panic!("injected panic for {}", message.id);
        }
        if let Some(expected) = message.pad_len.filter(|expected| *expected != message.pad.len()) {
            return Err(Error::permanent(format!("pad is {} bytes, not {expected}", message.pad.len())));
        }
        if let Some(name) = &message.env {
            let value = std::env::var(name).map_err(|_| Error::permanent(format!("{name} is not set")))?;
            tracing::info!(id = %message.id, name = %name, value = %value, "environment");
        }
        let recorder = self.recorder.as_deref();
        if let Some(recorder) = recorder {
            let now = recorder.running.fetch_add(1, Ordering::SeqCst) + 1;
            recorder.peak.fetch_max(now, Ordering::SeqCst);
        }
        if message.gate
            && let Some(recorder) = recorder
        {
            let mut open = recorder.gate.subscribe();
            let _ = open.wait_for(|open| *open).await;
        }
        if message.ms > 0 {
            tokio::time::sleep(Duration::from_millis(message.ms)).await;
        }
        if message.first_ms > 0 && first {
            tokio::time::sleep(Duration::from_millis(message.first_ms)).await;
        }
        if message.block_ms > 0 {
            std::thread::sleep(Duration::from_millis(message.block_ms));
        }
        if let Some(recorder) = recorder {
            recorder.running.fetch_sub(1, Ordering::SeqCst);
        }
        match message.fail {
            Some(FailKind::Transient) => Err(Error::transient(format!("{} always fails", message.id))),
            Some(FailKind::Permanent) => Err(Error::permanent(format!("{} can never succeed", message.id))),
            None => {
                if let Some(recorder) = recorder {
                    recorder.completed.lock().unwrap_or_else(PoisonError::into_inner).push(message.id);
                }
                Ok(())
            }
        }
    }
}
