use aws_lambda_events::sqs::SqsMessage;
use serde::Deserialize;

use super::*;
use crate::context::Context;
use crate::handler::handler_fn;
use crate::testing::{record, records_of_event, run};

/// The fixtures' messages: an `id`, and `fail` to fail permanently.
#[derive(Debug, Deserialize)]
struct Order {
    id: String,
    #[serde(default)]
    fail: Option<String>,
}

impl Order {
    fn work(&self) -> Result<(), Error> {
        match &self.fail {
            Some(kind) => Err(Error::permanent(format!("asked to fail ({kind})"))),
            None if self.id.starts_with("vetoed-") => Err(Error::permanent("vetoed")),
            None => Ok(()),
        }
    }
}

/// `resize IMAGE WIDTHxHEIGHT`, the plain-text fixture's commands.
#[derive(Debug)]
struct Resize {
    image: String,
    width: u32,
    height: u32,
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

fn fixture(name: &str) -> (Vec<SqsMessage>, serde_json::Value) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/events");
    let event = std::fs::read_to_string(format!("{root}/{name}")).expect("the fixture");
    let response = std::fs::read_to_string(format!("{root}/responses/{name}")).expect("its response");
    (records_of_event(&event).expect("an SQS event"), serde_json::from_str(&response).expect("JSON"))
}

fn reason(report: &crate::testing::Report, index: usize) -> String {
    report.errors()[index].clone().unwrap_or_default()
}

#[tokio::test]
async fn the_sns_fixture_gets_its_response_notifications_raw_deliveries_and_confirmations_apart() {
    async fn handle(order: Sns<Order>, _: Context) -> Result<(), Error> {
        order.message.work()
    }
    let (records, expected) = fixture("sns.json");
    let report = run(handler_fn(handle), records).await;
    assert_eq!(report.response_json(), expected);
    assert_eq!(report.labels(), ["ok", "ok", "failed", "failed", "ignored", "failed"]);
    assert!(reason(&report, 2).contains("SNS envelope: missing field `Message`"), "{}", reason(&report, 2));
    assert!(
        reason(&report, 3).contains("SNS envelope, in `Message`: not valid JSON"),
        "{}",
        reason(&report, 3)
    );
}

#[tokio::test]
async fn an_sns_notification_gives_the_handler_its_topic_subject_attributes_and_trace() {
    let (records, _) = fixture("sns.json");
    let notification = Sns::<Order>::from_body(records[0].body.as_deref().expect("a body")).expect("parses");
    assert_eq!(notification.message.id, "sns-1");
    assert_eq!(notification.topic_arn(), Some("arn:aws:sns:us-east-1:123456789012:orders-topic"));
    assert_eq!(notification.subject(), Some("order placed"));
    assert_eq!(notification.message_attribute("tenant"), Some("acme"));
    let trace = notification.trace().expect("the traceparent attribute");
    assert_eq!(trace.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");

    let raw = Sns::<Order>::from_body(r#"{"id":"sns-raw-1"}"#).expect("a raw delivery parses");
    assert_eq!((raw.message.id.as_str(), raw.topic_arn(), raw.trace()), ("sns-raw-1", None, None));
}

/// A FIFO topic's notification as AWS documents it ("Amazon SNS message and JSON formats"): a
/// `SequenceNumber`, and no `Signature`, `SignatureVersion` or `SigningCertURL`.
const FIFO_NOTIFICATION: &str = r#"{
  "Type" : "Notification",
  "MessageId" : "e3c4e17a-819b-5d95-a0e8-b306c25afda0",
  "SequenceNumber" : "10000000000000003000",
  "TopicArn" : "arn:aws:sns:us-east-2:123456789012:MyTopic.fifo",
  "Subject" : "My First Message",
  "Message" : "{\"id\":\"fifo-1\"}",
  "Timestamp" : "2012-05-02T00:54:06.655Z",
  "UnsubscribeURL" : "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-2:123456789012:MyTopic.fifo:c9135db0-26c4-47ec-8998-413945fb5a96"
}"#;

#[tokio::test]
async fn a_fifo_topics_notification_without_a_signature_is_read_with_its_sequence_number() {
    let read = Sns::<Order>::from_body(FIFO_NOTIFICATION).expect("a FIFO notification parses");
    assert_eq!(read.message.id, "fifo-1");
    assert_eq!(read.sequence_number(), Some("10000000000000003000"));
    assert_eq!(read.topic_arn(), Some("arn:aws:sns:us-east-2:123456789012:MyTopic.fifo"));
    let notification = read.notification.as_ref().expect("the notification");
    assert_eq!((notification.signature.as_deref(), notification.signature_version.as_deref()), (None, None));
    assert!(read.message_attributes().is_some_and(HashMap::is_empty));

    // Through the test kit, as a handler sees it: handled, not failed.
    async fn handle(order: Sns<Order>, _: Context) -> Result<(), Error> {
        assert_eq!(order.sequence_number(), Some("10000000000000003000"));
        order.message.work()
    }
    let report = run(handler_fn(handle), [record(FIFO_NOTIFICATION)]).await;
    assert_eq!(report.labels(), ["ok"], "{:?}", report.errors());

    let (records, _) = fixture("sns.json");
    let standard = Sns::<Order>::from_body(records[0].body.as_deref().expect("a body")).expect("parses");
    assert_eq!(standard.sequence_number(), None, "a standard topic's notification has none");
}

#[tokio::test]
async fn the_eventbridge_fixture_gets_its_response_and_names_the_field_in_the_detail() {
    async fn handle(event: EventBridge<Order>, _: Context) -> Result<(), Error> {
        assert_eq!(
            (event.source.as_str(), event.detail_type.as_str()),
            ("com.example.orders", "OrderPlaced")
        );
        event.detail.work()
    }
    let (records, expected) = fixture("eventbridge.json");
    let report = run(handler_fn(handle), records).await;
    assert_eq!(report.response_json(), expected);
    assert!(
        reason(&report, 1).contains("EventBridge envelope: missing field `detail`"),
        "{}",
        reason(&report, 1)
    );
    assert!(
        reason(&report, 2).starts_with("invalid body at `detail.id`: EventBridge envelope:"),
        "{}",
        reason(&report, 2)
    );
    assert!(reason(&report, 3).contains("missing field `source`"), "{}", reason(&report, 3));
}

#[test]
fn a_missing_field_and_a_wrong_type_inside_an_envelope_name_the_same_whole_path() {
    let event = |detail: &str| {
        format!(
            r#"{{"version":"0","id":"e-1","detail-type":"OrderPlaced","source":"s","account":"1","time":"t","region":"r","resources":[],"detail":{detail}}}"#
        )
    };
    for detail in [r#"{}"#, r#"{"id":5}"#] {
        let Err(Error::InvalidBody { field, .. }) = EventBridge::<Order>::from_body(&event(detail)) else {
            panic!("{detail}: an invalid body")
        };
        assert_eq!(field.as_deref(), Some("detail.id"), "{detail}");
    }
}

#[tokio::test]
async fn the_s3_fixture_gets_its_response_and_the_test_event_never_reaches_the_handler() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keys = std::sync::Arc::clone(&seen);
    let handle = move |event: S3, _: Context| {
        let keys = std::sync::Arc::clone(&keys);
        async move {
            for record in event.records {
                keys.lock().expect("not poisoned").push(record.s3.object.key.unwrap_or_default());
            }
            Ok(())
        }
    };
    let (records, expected) = fixture("s3.json");
    let report = run(handler_fn(handle), records).await;
    assert_eq!(report.response_json(), expected);
    assert_eq!(report.labels(), ["ok", "ignored", "failed", "failed"]);
    assert_eq!(*seen.lock().expect("not poisoned"), ["uploads/s3-1.json"]);
    assert_eq!(report.counts().ignored, 1);
    let why = report.ignored_reason(1).expect("ignored, with its reason");
    assert!(why.contains("s3:TestEvent"), "{why}");
    assert_eq!(report.ignored_reason(0), None, "handled, not ignored");
    assert!(reason(&report, 2).contains("S3 envelope: missing field `eventTime`"), "{}", reason(&report, 2));
    assert!(
        reason(&report, 3).starts_with("invalid body at `Records`: S3 envelope:"),
        "{}",
        reason(&report, 3)
    );
}

#[tokio::test]
async fn the_text_fixture_gets_its_response_through_a_from_str_parse_and_says_why_a_line_is_wrong() {
    async fn handle(command: Resize, _: Context) -> Result<(), Error> {
        assert!(command.width > 0 && command.height > 0);
        if command.image.starts_with("vetoed-") { Err(Error::permanent("vetoed")) } else { Ok(()) }
    }
    let (records, expected) = fixture("text.json");
    let report = run(handler_fn(handle).parse_with(str::parse), records).await;
    assert_eq!(report.response_json(), expected);
    assert_eq!(reason(&report, 1), "invalid body: expected `resize IMAGE WIDTHxHEIGHT`");
    assert!(reason(&report, 2).contains("\"abc\": invalid digit"), "{}", reason(&report, 2));
}

#[tokio::test]
async fn text_is_the_body_as_it_is_and_nests_inside_sns() {
    async fn handle(line: Text, _: Context) -> Result<(), Error> {
        if line.as_str() == "  spaced \u{1b}[31m " { Ok(()) } else { Err(Error::permanent("changed")) }
    }
    let report = run(handler_fn(handle), [record("  spaced \u{1b}[31m ")]).await;
    assert_eq!(report.labels(), ["ok"]);

    let (records, _) = fixture("sns.json");
    let body = records[0].body.as_deref().expect("a body");
    let nested = Sns::<Text>::from_body(body).expect("text inside SNS");
    assert_eq!(nested.message.as_str(), r#"{"id": "sns-1"}"#);
}

#[tokio::test]
async fn a_parse_function_may_ignore_a_body_or_fail_it_with_its_own_error_kind() {
    async fn handle(_: String, _: Context) -> Result<(), Error> {
        Ok(())
    }
    let parse = |body: &str| match body {
        "# comment" => Err(Error::ignore("a comment line")),
        "later" => Err(Error::transient("not yet")),
        _ => Ok(body.to_owned()),
    };
    let report =
        run(handler_fn(handle).parse_with(parse), [record("# comment"), record("later"), record("go")]).await;
    assert_eq!(report.labels(), ["ignored", "failed", "ok"]);
    assert!(report.error(1).is_some_and(Error::is_retryable));
}

#[test]
fn an_s3_record_inside_an_sns_notification_is_read_through_both_envelopes() {
    let (records, _) = fixture("s3.json");
    let s3 = records[0].body.clone().expect("a body");
    let notification = serde_json::json!({
        "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": s3,
        "Timestamp": "2026-11-30T12:00:00.000Z", "SignatureVersion": "1", "Signature": "x",
        "SigningCertURL": "https://x", "UnsubscribeURL": "https://x"
    });
    let read = Sns::<S3>::from_body(&notification.to_string()).expect("parses");
    assert_eq!(read.message.records[0].s3.object.key.as_deref(), Some("uploads/s3-1.json"));
}

#[test]
fn hostile_envelope_types_are_quoted_and_cut_in_the_reason() {
    let long = format!("\u{1b}[2J{}", "x".repeat(500));
    let body = serde_json::json!({"Type": long, "TopicArn": "t"}).to_string();
    let Err(Error::Ignored(reason)) = Sns::<Order>::from_body(&body) else { panic!("ignored") };
    assert!(reason.contains("\\u{1b}"), "{reason}");
    assert!(reason.len() < 120, "{reason}");
}
