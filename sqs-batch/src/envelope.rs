//! Messages as they really arrive: the body a handler's message is read from, picked by the
//! message's type.
//!
//! A queue behind an SNS topic receives SNS notifications, one behind an EventBridge rule
//! receives events, one an S3 bucket notifies receives S3 event notifications; some carry plain
//! text. The handler says which in its message type, and [`handler_fn`](crate::handler::handler_fn) reads
//! the body accordingly:
//!
//! | the handler takes | the body is | the handler gets |
//! |---|---|---|
//! | `T: Deserialize` | JSON | `T` |
//! | [`Sns<T>`] | an SNS notification (or, under raw delivery, the message itself) | `T` from its `Message`, the topic, subject and attributes |
//! | [`EventBridge<T>`] | an EventBridge event | `T` from its `detail`, the source and detail type |
//! | [`S3`] | an S3 event notification | its records; S3's test event is [ignored](Error::Ignored) |
//! | [`Text`] | text | the body as it is |
//!
//! Envelopes nest: a topic that fans S3 notifications out to queues is `Sns<S3>`, plain text
//! through SNS is `Sns<Text>`. Any other format is a [`FromBody`] of your own, or a function
//! given to [`HandlerFn::parse_with`](crate::handler::HandlerFn::parse_with), which needs no trait:
//!
//! ```
//! use sqs_batch::{Context, Error, handler_fn};
//!
//! /// `resize img-42 640x480`
//! struct Resize { image: String, width: u32, height: u32 }
//!
//! impl std::str::FromStr for Resize {
//!     type Err = String;
//!     fn from_str(line: &str) -> Result<Self, String> {
//!         let mut words = line.split_whitespace();
//!         let (Some("resize"), Some(image), Some(size)) = (words.next(), words.next(), words.next()) else {
//!             return Err("expected `resize IMAGE WIDTHxHEIGHT`".into());
//!         };
//!         let (width, height) = size.split_once('x').ok_or("expected WIDTHxHEIGHT")?;
//!         let number = |n: &str| n.parse::<u32>().map_err(|e| format!("{n:?}: {e}"));
//!         Ok(Resize { image: image.to_owned(), width: number(width)?, height: number(height)? })
//!     }
//! }
//!
//! async fn resize(command: Resize, _: Context) -> Result<(), Error> {
//!     println!("{} to {}x{}", command.image, command.width, command.height);
//!     Ok(())
//! }
//!
//! let handler = handler_fn(resize).parse_with(str::parse);
//! # let _ = handler;
//! ```
//!
//! A body that does not fit its envelope fails that message alone, as an
//! [`Error::InvalidBody`] whose reason names the envelope and the field
//! (`SNS envelope: missing field `Message``): it is retried, then reaches the dead-letter queue.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::chain_text;
use crate::error::{BoxError, Error};
use crate::json;

pub use aws_lambda_events::s3::{S3Bucket, S3Entity, S3EventRecord, S3Object};
/// A message attribute of an SNS notification ([`SnsNotification::message_attributes`]).
pub use aws_lambda_events::sns::MessageAttribute as SnsMessageAttribute;

/// A message type read from a body (the whole body, or what an envelope carries inside it).
///
/// Every `Deserialize` type is one, read as JSON; the envelopes of this module are the others.
/// Implement it for a format of your own, or give a function to
/// [`HandlerFn::parse_with`](crate::handler::HandlerFn::parse_with) instead.
pub trait FromBody: Sized {
    /// Reads `body` into a message.
    ///
    /// # Errors
    /// Usually [`Error::InvalidBody`], naming the field where there is one: it fails that message
    /// alone. [`Error::Ignored`] for a body that needs no work.
    fn from_body(body: &str) -> Result<Self, Error>;
}

/// JSON, parsed with serde; every error names its field.
impl<T: DeserializeOwned> FromBody for T {
    fn from_body(body: &str) -> Result<Self, Error> {
        json::parse_str(body)
    }
}

/// How [`HandlerFn`](crate::handler::HandlerFn) turns a body into its message: the message type's own
/// [`FromBody`] ([`ByMessageType`], the default), or a function ([`ParseWith`]).
pub trait Parse<M>: Send + Sync + 'static {
    /// Reads one body into a message.
    ///
    /// # Errors
    /// As [`FromBody::from_body`].
    fn parse(&self, body: String) -> Result<M, Error>;
}

/// The message type says how its body is read: its [`FromBody`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ByMessageType;

impl<M: FromBody> Parse<M> for ByMessageType {
    fn parse(&self, body: String) -> Result<M, Error> {
        M::from_body(&body)
    }
}

/// A function of the body reads it: see [`HandlerFn::parse_with`](crate::handler::HandlerFn::parse_with).
#[derive(Debug, Clone, Copy)]
pub struct ParseWith<G>(pub(crate) G);

impl<M, E, G> Parse<M> for ParseWith<G>
where
    G: Fn(&str) -> Result<M, E> + Send + Sync + 'static,
    E: IntoParseError,
{
    fn parse(&self, body: String) -> Result<M, Error> {
        (self.0)(&body).map_err(IntoParseError::into_parse_error)
    }
}

/// What a parse function may fail with: this crate's [`Error`] as it is (to say
/// [`Error::ignore`], say), any other error or text as an [`Error::InvalidBody`] giving it as the
/// reason.
pub trait IntoParseError {
    /// The message's failure.
    fn into_parse_error(self) -> Error;
}

impl IntoParseError for Error {
    fn into_parse_error(self) -> Error {
        self
    }
}

impl<E: Into<BoxError>> IntoParseError for E {
    fn into_parse_error(self) -> Error {
        Error::invalid_body(None, chain_text(&*self.into()))
    }
}

/// `error`, said to be about what an envelope carries: its reason starts with `place` (`SNS
/// envelope`, `SNS envelope, in `Message``).
fn in_envelope(place: &str, error: Error) -> Error {
    match error {
        Error::InvalidBody { field, reason } => {
            Error::invalid_body(field.as_deref(), format!("{place}: {reason}"))
        }
        other => other,
    }
}

/// The body as it is, for a handler of plain text (`resize img-42 640x480`). No body at all is
/// an [`Error::InvalidBody`]; an empty one is the empty text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(pub String);

impl Text {
    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromBody for Text {
    fn from_body(body: &str) -> Result<Self, Error> {
        Ok(Self(body.to_owned()))
    }
}

/// A message published to an SNS topic the queue subscribes to: `T` read from the
/// notification's `Message`, beside the notification itself.
///
/// Raw message delivery on or off, the same handler works: a body that is not an SNS
/// notification (it has no `Type` and `TopicArn`) is the message itself, as raw delivery sends
/// it, and `notification` is `None`; SNS then passes its message attributes as the record's
/// ([`Context::message_attribute`](crate::context::Context::message_attribute)). SNS's subscription
/// confirmations are [ignored](Error::Ignored): SQS subscriptions in one account need none, and
/// one from another account is confirmed by its owner, not by a message handler.
///
/// Every type it hands out is named through `sqs_batch` alone, with no `aws_lambda_events` of
/// your own:
///
/// ```
/// use sqs_batch::envelope::{S3EventRecord, Sns, SnsMessageAttribute, SnsNotification};
/// use sqs_batch::{Context, Error, S3, handler_fn};
///
/// fn tenant(order: &Sns<serde_json::Value>) -> Option<&SnsMessageAttribute> {
///     order.message_attributes()?.get("tenant")
/// }
///
/// async fn handle(uploads: Sns<S3>, _: Context) -> Result<(), Error> {
///     let notification: Option<&SnsNotification> = uploads.notification.as_ref();
///     let records: &[S3EventRecord] = &uploads.message.records;
///     println!("{} uploads, sequence {:?}", records.len(), notification.and_then(|n| n.sequence_number.as_deref()));
///     Ok(())
/// }
/// # let _ = (tenant, handler_fn(handle));
/// ```
#[derive(Debug, Clone)]
pub struct Sns<T> {
    /// The message, read from the notification's `Message` (or from the body, under raw
    /// delivery).
    pub message: T,
    /// The notification as SNS sent it: topic, subject, message id, timestamp, attributes; its
    /// `message` is the text `message` was read from. `None` under raw delivery.
    pub notification: Option<SnsNotification>,
}

/// An SNS notification as SNS delivers it to an SQS queue (raw delivery off), standard or FIFO.
///
/// A FIFO topic's notifications carry a `SequenceNumber` and no signature (`Signature`,
/// `SignatureVersion`, `SigningCertURL`): those are optional here, which `aws_lambda_events`'
/// `SnsMessage` does not allow (every FIFO notification would fail to parse and end in the
/// dead-letter queue, as it did in Powertools' parser before its fix).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsNotification {
    /// `Notification`.
    #[serde(rename = "Type")]
    pub message_type: String,
    /// SNS's id of the published message (kept when SNS retries a delivery).
    pub message_id: String,
    /// The topic it was published to.
    pub topic_arn: String,
    /// The subject it was published with, if any.
    #[serde(default)]
    pub subject: Option<String>,
    /// The message as published: the text [`Sns::message`] was read from.
    pub message: String,
    /// When it was published (ISO 8601, UTC), as SNS wrote it.
    pub timestamp: String,
    /// Its place in a FIFO topic's order; `None` from a standard topic.
    #[serde(default)]
    pub sequence_number: Option<String>,
    /// The signature's version; `None` from a FIFO topic, which signs nothing it sends to SQS.
    #[serde(default)]
    pub signature_version: Option<String>,
    /// The signature; `None` from a FIFO topic.
    #[serde(default)]
    pub signature: Option<String>,
    /// The certificate the signature was made with; `None` from a FIFO topic.
    #[serde(default, rename = "SigningCertURL", alias = "SigningCertUrl")]
    pub signing_cert_url: Option<String>,
    /// Where the subscription can be ended.
    #[serde(default, rename = "UnsubscribeURL", alias = "UnsubscribeUrl")]
    pub unsubscribe_url: Option<String>,
    /// The attributes the publisher set (SNS sends `null` for none).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub message_attributes: HashMap<String, SnsMessageAttribute>,
}

/// `null` as an empty map: SNS writes `"MessageAttributes": null` for a message without any.
fn null_as_empty<'de, D, V>(deserializer: D) -> Result<HashMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    Ok(Option::<HashMap<String, V>>::deserialize(deserializer)?.unwrap_or_default())
}

impl<T> Sns<T> {
    /// The topic the message was published to; `None` under raw delivery.
    #[must_use]
    pub fn topic_arn(&self) -> Option<&str> {
        Some(&self.notification.as_ref()?.topic_arn)
    }

    /// The subject it was published with, if any.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.notification.as_ref()?.subject.as_deref()
    }

    /// Its place in a FIFO topic's order (`SequenceNumber`); `None` from a standard topic or
    /// under raw delivery (where SQS's own sequence number is the record's).
    #[must_use]
    pub fn sequence_number(&self) -> Option<&str> {
        self.notification.as_ref()?.sequence_number.as_deref()
    }

    /// The notification's message attributes (empty under raw delivery: there they are the
    /// record's).
    #[must_use]
    pub fn message_attributes(&self) -> Option<&HashMap<String, SnsMessageAttribute>> {
        Some(&self.notification.as_ref()?.message_attributes)
    }

    /// A message attribute the publisher set, as text.
    #[must_use]
    pub fn message_attribute(&self, name: &str) -> Option<&str> {
        Some(&self.message_attributes()?.get(name)?.value)
    }

    /// The publisher's W3C trace context, when it passed one as a `traceparent` message
    /// attribute. (An X-Ray trace header reaches the record itself, as SQS's `AWSTraceHeader`,
    /// and [`Context::trace`](crate::context::Context::trace) reads it.)
    #[must_use]
    pub fn trace(&self) -> Option<crate::trace::TraceContext> {
        crate::trace::TraceContext::from_traceparent(self.message_attribute(crate::trace::TRACEPARENT)?)
    }
}

/// The two fields that tell an SNS envelope from a raw message, read without reading the rest.
#[derive(Deserialize)]
struct SnsProbe<'a> {
    #[serde(rename = "Type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "TopicArn", default)]
    topic_arn: Option<IgnoredAny>,
}

impl<T: FromBody> FromBody for Sns<T> {
    fn from_body(body: &str) -> Result<Self, Error> {
        let probe = serde_json::from_str::<SnsProbe<'_>>(body).ok();
        let Some(SnsProbe { kind: Some(kind), topic_arn: Some(_) }) = probe else {
            return Ok(Self { message: T::from_body(body)?, notification: None });
        };
        if kind != "Notification" {
            return Err(Error::ignore(format!(
                "SNS envelope: a {} message, not a notification",
                clip_word(&kind)
            )));
        }
        let notification: SnsNotification =
            json::parse_str(body).map_err(|error| in_envelope("SNS envelope", error))?;
        let message = T::from_body(&notification.message)
            .map_err(|error| in_envelope("SNS envelope, in `Message`", error))?;
        Ok(Self { message, notification: Some(notification) })
    }
}

/// At most a word's worth of what a message says its type is: it is the sender's text.
fn clip_word(text: &str) -> String {
    format!("{:?}", crate::runtime::telemetry::clip(text, 40))
}

/// An event an EventBridge rule sent to the queue: `T` read from its `detail`, beside the fields
/// a rule matches on.
///
/// (`aws_lambda_events`' `EventBridgeEvent` asks its detail type to be `Serialize` too; this
/// asks only what reading it needs.)
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EventBridge<T> {
    /// The event's payload.
    pub detail: T,
    /// Who sent it (`com.example.orders`, `aws.s3`).
    pub source: String,
    /// What kind of event it is (`OrderPlaced`, `Object Created`).
    pub detail_type: String,
    /// The event's id, unique per event.
    pub id: Option<String>,
    /// When it happened, as EventBridge gives it (RFC 3339).
    pub time: Option<String>,
    /// The account it came from.
    pub account: Option<String>,
    /// The region it came from.
    pub region: Option<String>,
    /// The resources it concerns (ARNs).
    pub resources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct EventBridgeBody<T> {
    detail: T,
    source: String,
    detail_type: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
}

impl<T: DeserializeOwned> FromBody for EventBridge<T> {
    fn from_body(body: &str) -> Result<Self, Error> {
        let event: EventBridgeBody<T> =
            json::parse_str(body).map_err(|error| in_envelope("EventBridge envelope", error))?;
        let EventBridgeBody { detail, source, detail_type, id, time, account, region, resources } = event;
        Ok(Self { detail, source, detail_type, id, time, account, region, resources })
    }
}

/// An S3 event notification: the records of what happened to which objects. The test event S3
/// sends when a notification is configured (`s3:TestEvent`) is [ignored](Error::Ignored): deleted,
/// counted as `ignored`, never handed to the handler.
///
/// Object keys arrive URL-encoded (a space as `+`), as S3 sends them.
#[derive(Debug, Clone)]
pub struct S3 {
    /// What happened, one record per object.
    pub records: Vec<S3EventRecord>,
}

#[derive(Deserialize)]
struct S3Probe<'a> {
    #[serde(rename = "Event", borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(rename = "Bucket", borrow, default)]
    bucket: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct S3Body {
    #[serde(rename = "Records")]
    records: Vec<S3EventRecord>,
}

impl FromBody for S3 {
    fn from_body(body: &str) -> Result<Self, Error> {
        if let Ok(S3Probe { event: Some(event), bucket }) = serde_json::from_str::<S3Probe<'_>>(body)
            && event == "s3:TestEvent"
        {
            let bucket = bucket.as_deref().map(clip_word).unwrap_or_default();
            return Err(Error::ignore(
                format!("S3 test event (s3:TestEvent) {bucket}").trim_end().to_owned(),
            ));
        }
        let S3Body { records } = json::parse_str(body).map_err(|error| in_envelope("S3 envelope", error))?;
        Ok(Self { records })
    }
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
