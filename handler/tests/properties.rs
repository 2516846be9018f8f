//! Property tests (proptest) over untrusted input: message validation, the Lambda event parser,
//! and the batch core's FIFO grouping. Nothing panics; every record gets exactly one outcome.

use std::sync::Mutex;

use handler::{
    BatchOptions, Handler, HandlerError, Message, NotStarted, Outcome, SqsEvent, SqsMessage, process_batch,
};
use proptest::prelude::*;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects whose keys are often the message's own fields, with values of any type.
fn message_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("id".to_owned()),
        Just("kind".to_owned()),
        Just("payload".to_owned()),
        Just("work_ms".to_owned()),
        "[a-z_]{1,8}"
    ];
    prop::collection::btree_map(key, json_value(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()).to_string())
}

proptest! {
    #[test]
    fn any_text_body_parses_or_is_an_invalid_body(body in ".{0,200}") {
        check_parse(&body)?;
    }

    #[test]
    fn any_message_shaped_json_parses_or_names_what_is_wrong(body in message_like()) {
        check_parse(&body)?;
    }

    #[test]
    fn any_text_as_a_lambda_event_is_parsed_or_rejected_without_a_panic(text in ".{0,300}") {
        let _ = serde_json::from_str::<SqsEvent>(&text);
    }

    #[test]
    fn every_record_gets_exactly_one_outcome_and_fifo_groups_stop_at_their_first_failure(
        plan in prop::collection::vec((0u8..4, 0u8..10, any::<bool>(), any::<bool>()), 0..40),
        fifo in any::<bool>(),
        concurrency in 1usize..12,
    ) {
        // Each record: a group, what the handler does with it (0..=6 ok, 7..=8 fail, 9 panic),
        // whether it has a message id, whether it has a body.
        let records: Vec<SqsMessage> = plan.iter().enumerate().map(|(i, &(group, action, has_id, has_body))| {
            let mut record = SqsMessage::default();
            record.message_id = (has_id || i % 2 == 0).then(|| format!("m{i}"));
            record.receipt_handle = Some(i.to_string());
            record.body = (has_body || i % 3 == 0).then(|| match action { 0..=6 => "ok", 7 | 8 => "fail", _ => "panic" }.to_owned());
            let queue = if fifo { "q.fifo" } else { "q" };
            record.event_source_arn = Some(format!("arn:aws:sqs:us-east-1:000000000000:{queue}"));
            record.attributes.insert("MessageGroupId".into(), format!("g{group}"));
            record
        }).collect();
        let handler = Scripted::default();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let options = BatchOptions { max_concurrency: std::num::NonZeroUsize::new(concurrency).unwrap() };
        let report = runtime.block_on(process_batch(&handler, &records, options, &CancellationToken::new()));

        prop_assert_eq!(report.outcomes.len(), records.len());
        let handled = handler.seen.lock().unwrap().clone();
        // Handled: every record that was started and had a body to parse, each exactly once.
        let started_with_body = records.iter().zip(&report.outcomes)
            .filter(|(r, o)| r.body.is_some() && !matches!(o, Outcome::NotStarted(_)))
            .count();
        prop_assert_eq!(handled.len(), started_with_body);
        let mut unique = handled.clone();
        unique.sort_unstable();
        unique.dedup();
        prop_assert_eq!(unique.len(), handled.len());
        if fifo {
            for group in 0..4u8 {
                let key = format!("g{group}");
                let in_group: Vec<usize> = (0..records.len()).filter(|&i| records[i].attributes["MessageGroupId"] == key).collect();
                let first_failure = in_group.iter().position(|&i| !report.outcomes[i].is_success());
                for (n, &i) in in_group.iter().enumerate() {
                    match first_failure {
                        Some(f) if n > f => prop_assert!(matches!(report.outcomes[i], Outcome::NotStarted(NotStarted::EarlierInGroupFailed))),
                        Some(f) if n == f => prop_assert!(matches!(report.outcomes[i], Outcome::Failed(_))),
                        _ => prop_assert!(report.outcomes[i].is_success()),
                    }
                }
                let order: Vec<usize> = handled.iter().copied().filter(|i| in_group.contains(i)).collect();
                let mut sorted = order.clone();
                sorted.sort_unstable();
                prop_assert_eq!(order, sorted, "group {} handled in arrival order", group);
            }
        }
        match report.to_response(&records) {
            Ok(response) => {
                let failed: Vec<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
                let expected: Vec<String> = records.iter().zip(&report.outcomes)
                    .filter(|(_, o)| !o.is_success())
                    .map(|(r, _)| r.message_id.clone().unwrap())
                    .collect();
                prop_assert_eq!(failed, expected);
            }
            Err(HandlerError::UnidentifiedRecord) => {
                let nameless_failure = records.iter().zip(&report.outcomes).any(|(r, o)| !o.is_success() && r.message_id.is_none());
                prop_assert!(nameless_failure);
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}

fn check_parse(body: &str) -> Result<(), TestCaseError> {
    match Message::parse(body) {
        Ok(message) => {
            prop_assert!(!message.id.trim().is_empty() && !message.kind.trim().is_empty());
            prop_assert!(message.work_ms.is_none_or(|ms| ms <= handler::message::MAX_WORK_MS));
        }
        Err(HandlerError::InvalidBody { reason, .. }) => prop_assert!(!reason.is_empty()),
        Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
    }
    Ok(())
}

/// Records the order in which it handled records (their index travels in the receipt handle),
/// acting on the body: `ok`, `fail` or `panic`.
#[derive(Default)]
struct Scripted {
    seen: Mutex<Vec<usize>>,
}

impl Handler for Scripted {
    type Message = (usize, String);

    fn parse(&self, record: &SqsMessage) -> Result<(usize, String), HandlerError> {
        let body = record.body.clone().ok_or(HandlerError::MissingBody)?;
        let index = record.receipt_handle.as_deref().and_then(|h| h.parse().ok()).unwrap_or(usize::MAX);
        Ok((index, body))
    }

    async fn handle(&self, (index, body): (usize, String)) -> Result<(), HandlerError> {
        self.seen.lock().expect("not poisoned").push(index);
        tokio::task::yield_now().await;
        match body.as_str() {
            "fail" => Err(HandlerError::Permanent("asked to fail".into())),
            "panic" => panic!("asked to panic"),
            _ => Ok(()),
        }
    }
}

#[test]
fn the_scripted_handler_is_fed_record_indices() {
    // Guard for the property above: indices travel in the receipt handle.
    let mut record = SqsMessage::default();
    record.receipt_handle = Some("7".into());
    record.body = Some("ok".into());
    assert_eq!(Scripted::default().parse(&record).unwrap(), (7, "ok".to_owned()));
}
