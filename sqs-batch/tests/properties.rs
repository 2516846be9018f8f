//! Properties of the framework's own code over untrusted input: the batch core over random
//! batches, and body parsing over JSON of any shape.

use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sqs_batch::runtime::{Records, Run, process_batch};
use sqs_batch::{BatchError, Context, Error, FifoMode, Handler, NotStarted, Options, Outcome, SqsMessage};

/// Records the order in which it handled records (their index travels in the receipt handle),
/// acting on the body: `ok`, `fail` or `panic`.
#[derive(Default)]
struct Scripted {
    seen: Mutex<Vec<usize>>,
}

impl Handler for Scripted {
    type Message = (usize, String);

    fn parse(&self, body: String, context: &Context) -> Result<(usize, String), Error> {
        let record = context.record();
        let index = record.receipt_handle.as_deref().and_then(|h| h.parse().ok()).unwrap_or(usize::MAX);
        Ok((index, body))
    }

    async fn handle(&self, (index, body): (usize, String), context: Context) -> Result<(), Error> {
        let own = context.record().receipt_handle.as_deref() == Some(index.to_string().as_str());
        assert!(own, "the context is the record's own");
        self.seen.lock().expect("not poisoned").push(index);
        tokio::task::yield_now().await;
        match body.as_str() {
            "fail" => Err(Error::permanent("asked to fail")),
            "panic" => panic!("asked to panic"),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // the fields are what the parser is tested on
struct Order {
    id: u64,
    lines: Vec<Line>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Line {
    sku: String,
    quantity: u32,
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0u64..5).prop_map(Value::from),
        "[a-z]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        let key = prop_oneof![Just("id"), Just("lines"), Just("sku"), Just("quantity"), Just("x")];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// The shape `Order` asks for, written independently of serde.
enum Shape {
    UInt(u64),
    Text,
    List(&'static Shape),
    /// Fields in order: serde takes a struct as a JSON object, or as an array of its fields.
    Struct(&'static [(&'static str, Shape)]),
}

const LINE: Shape = Shape::Struct(&[("sku", Shape::Text), ("quantity", Shape::UInt(u32::MAX as u64))]);
const ORDER: Shape = Shape::Struct(&[("id", Shape::UInt(u64::MAX)), ("lines", Shape::List(&LINE))]);

/// Every path at which `value` breaks `shape`: a wrong value and a missing field alike by their
/// whole path.
fn broken_paths(value: &Value, shape: &Shape, path: &str, broken: &mut Vec<String>) {
    let join = |step: &str| match (path.is_empty(), step.starts_with('[')) {
        (true, _) | (false, true) => format!("{path}{step}"),
        (false, false) => format!("{path}.{step}"),
    };
    match (shape, value) {
        (Shape::UInt(max), v) if v.as_u64().is_some_and(|n| n <= *max) => {}
        (Shape::Text, Value::String(_)) => {}
        (Shape::List(item), Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                broken_paths(v, item, &join(&format!("[{i}]")), broken);
            }
        }
        (Shape::Struct(fields), Value::Object(object)) => {
            for (name, field) in *fields {
                match object.get(*name) {
                    Some(v) => broken_paths(v, field, &join(name), broken),
                    None => broken.push(join(name)),
                }
            }
        }
        (Shape::Struct(fields), Value::Array(items)) => {
            if items.len() != fields.len() {
                broken.push(path.to_owned());
            }
            for (i, (v, (_, field))) in items.iter().zip(*fields).enumerate() {
                broken_paths(v, field, &join(&format!("[{i}]")), broken);
            }
        }
        _ => broken.push(path.to_owned()),
    }
}

proptest! {
    #[test]
    fn a_body_parses_exactly_when_it_has_the_shape_and_otherwise_names_a_broken_field(value in json_value()) {
        let body = value.to_string();
        let mut broken = Vec::new();
        broken_paths(&value, &ORDER, "", &mut broken);
        match sqs_batch::json::parse_str::<Order>(&body) {
            Ok(_) => prop_assert!(broken.is_empty(), "accepted {body}, which breaks {broken:?}"),
            Err(Error::InvalidBody { field, reason }) => {
                prop_assert!(!reason.is_empty());
                let field = field.unwrap_or_default();
                prop_assert!(broken.contains(&field), "rejected {body} naming {field:?}; broken: {broken:?}");
            }
            Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
        }
    }

    #[test]
    fn every_record_gets_exactly_one_outcome_and_fifo_groups_stop_at_their_first_failure(
        plan in prop::collection::vec((0u8..4, 0u8..10, any::<bool>(), any::<bool>()), 0..40),
        fifo in any::<bool>(),
        skip_group in any::<bool>(),
        concurrency in 1usize..12,
    ) {
        // Each record: a group, what the handler does with it (0..=6 ok, 7..=8 fail, 9 panic),
        // whether it has a message id, whether it has a body.
        let records: Vec<SqsMessage> = plan.iter().enumerate().map(|(i, &(group, action, has_id, has_body))| {
            let queue = if fifo { "q.fifo" } else { "q" };
            serde_json::from_value(json!({
                "messageId": (has_id || i % 2 == 0).then(|| format!("m{i}")),
                "receiptHandle": i.to_string(),
                "body": (has_body || i % 3 == 0).then_some(match action { 0..=6 => "ok", 7 | 8 => "fail", _ => "panic" }),
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:000000000000:{queue}"),
                "attributes": Map::from_iter([("MessageGroupId".to_owned(), Value::from(format!("g{group}")))]),
                "messageAttributes": {},
            })).expect("a record")
        }).collect();
        let handler = Arc::new(Scripted::default());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let fifo_mode = if skip_group { FifoMode::SkipGroup } else { FifoMode::StopBatch };
        let options = Options { concurrency: std::num::NonZeroUsize::new(concurrency).unwrap(), fifo: fifo_mode, ..Options::default() };
        let report = runtime.block_on(process_batch(&handler, Records::new(records.clone()), &Run::new(&options)));

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
                let batch_stopped = |o: &Outcome| !skip_group && matches!(o, Outcome::NotStarted(NotStarted::EarlierInBatchFailed));
                for (n, &i) in in_group.iter().enumerate() {
                    match first_failure {
                        Some(f) if n > f && batch_stopped(&report.outcomes[in_group[f]]) => prop_assert!(batch_stopped(&report.outcomes[i])),
                        Some(f) if n > f => prop_assert!(matches!(report.outcomes[i], Outcome::NotStarted(NotStarted::EarlierInGroupFailed))),
                        Some(f) if n == f => prop_assert!(matches!(report.outcomes[i], Outcome::Failed(_)) || batch_stopped(&report.outcomes[i])),
                        _ => prop_assert!(report.outcomes[i].is_success()),
                    }
                }
                let order: Vec<usize> = handled.iter().copied().filter(|i| in_group.contains(i)).collect();
                let mut sorted = order.clone();
                sorted.sort_unstable();
                prop_assert_eq!(order, sorted, "group {} handled in arrival order", group);
            }
        }
        // AWS's rule: nothing after the batch's first failure succeeds, whatever its group.
        if fifo && !skip_group && let Some(first) = report.outcomes.iter().position(|o| !o.is_success()) {
            prop_assert!(report.outcomes[first..].iter().all(|o| !o.is_success()));
        }
        // A message is held back for another group's failure only by AWS's rule, once one failed.
        if report.outcomes.iter().any(|o| matches!(o, Outcome::NotStarted(NotStarted::EarlierInBatchFailed))) {
            prop_assert!(fifo && !skip_group && report.outcomes.iter().any(|o| matches!(o, Outcome::Failed(_))));
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
            Err(BatchError::UnidentifiedRecord { index }) => {
                prop_assert!(!report.outcomes[index].is_success() && records[index].message_id.is_none());
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}
