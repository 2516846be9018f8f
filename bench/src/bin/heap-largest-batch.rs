//! The heap of Lambda's largest batch, counted exactly: where the function's peak goes when one
//! invocation carries 6 MB of records.
//!
//! `heap-largest-batch [records] [body bytes]` (8,500 records of 100-byte bodies by default: the
//! event `bench/harness.py --only bootstrap` serves for its guard, every attribute Lambda's mapping
//! delivers, a 188-character receipt handle) takes the path an invocation takes through the
//! function, stage by stage, with a counting allocator:
//!
//! 1. the event's text, as `lambda_runtime` holds it once read (one buffer of the whole body);
//! 2. the records, deserialized from it the way `lambda_runtime` does (`serde_path_to_error` over
//!    `serde_json`), while the text is still held;
//! 3. the text dropped, as `lambda_runtime` does before it calls the function;
//! 4. the batch run by `sqs_batch::lambda::handle_event` with the default options and a handler
//!    built like `handler/`'s (its message type, the `log_id`, a `from_fn` layer, the
//!    large-payload layer), whose work returns at once;
//! 5. the answer serialized.
//!
//! For each it prints what is held after it and the most held during it. The process's peak RSS
//! (`bench/harness.py --only bootstrap`) is this peak plus the binary's pages, the runtime's and the
//! allocator's own: the difference is what the allocator keeps.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use bench::heap::{Counting, count_and_body_bytes, held, peak, reset_peak, runtime, shaped_like_handler};
use lambda_runtime::LambdaEvent;
use sqs_batch::Options;

#[global_allocator]
static HEAP: Counting = Counting;

/// The harness's body of about `size` bytes: `{"id": …, "kind": "bench", "payload": {…}}`.
fn body(i: usize, size: usize) -> String {
    let text = |note: &str| {
        serde_json::json!({"id": format!("msg-{i:06}"), "kind": "bench", "payload": {"n": i, "note": note}})
            .to_string()
    };
    let short = text(&"x".repeat(44));
    if short.len() >= size { short } else { text(&"x".repeat(44 + size - short.len())) }
}

/// The event of the harness's guard: `records` records as Lambda's mapping delivers them.
fn event(records: usize, body_bytes: usize) -> Vec<u8> {
    let records: Vec<serde_json::Value> = (0..records)
        .map(|i| {
            serde_json::json!({
                "messageId": format!("4f7b9c2e-1d3a-4c5b-9e8f-{i:012}"),
                "receiptHandle": format!("AQEB{i:012}{}", "Z".repeat(172)),
                "body": body(i, body_bytes),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1765000000000",
                    "SenderId": "AROAIWPX5BD2BHG722MW4:sender",
                    "ApproximateFirstReceiveTimestamp": "1765000000123",
                },
                "messageAttributes": {},
                "md5OfBody": "5a6b0c3ffbe1ef1e4e0c8e0d0b7d0c5e",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    let mut text = serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap_or_default();
    // `lambda_runtime` holds the body in one buffer of its exact length.
    text.shrink_to_fit();
    text
}

fn mb(bytes: isize) -> f64 {
    bytes as f64 / 1e6
}

fn main() -> Result<(), String> {
    let (records, body_bytes) =
        count_and_body_bytes("usage: heap-largest-batch [records] [body bytes]", 8500, 100)?;
    let runtime = runtime()?;
    let handler = Arc::new(shaped_like_handler(|_message, _context| async { Ok(()) }));
    let options = Options::default();

    let start = held().0;
    let mut rows = Vec::new();
    let mut stage = |name: &'static str| {
        rows.push((name, held().0 - start, peak() - start));
        reset_peak();
    };
    // Built whole before the count starts: only the text stays.
    let text = event(records, body_bytes);
    let text_bytes = text.len();
    reset_peak();
    stage("the event's text");
    let payload: SqsEvent =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&text))
            .map_err(|e| format!("the event does not deserialize: {e}"))?;
    stage("the records deserialized, the text still held");
    drop(text);
    stage("the text dropped");
    let event = LambdaEvent::new(payload, lambda_runtime::Context::default());
    let answer = runtime
        .block_on(sqs_batch::lambda::handle_event(&handler, &options, event))
        .map_err(|e| format!("the batch failed: {e}"))?;
    stage("the batch run (its records dropped), the answer held");
    let response = serde_json::to_vec(&answer).map_err(|e| format!("the answer does not serialize: {e}"))?;
    stage("the answer serialized");
    if !answer.batch_item_failures.is_empty() {
        return Err(format!("{} of {records} messages failed", answer.batch_item_failures.len()));
    }
    drop(response);

    println!(
        "heap of one invocation: {records} records of {body_bytes}-byte bodies, an event of {:.2} MB",
        mb(text_bytes.cast_signed())
    );
    println!();
    println!("| stage | held after it | most held during it |");
    println!("|---|---:|---:|");
    for (name, after, most) in &rows {
        println!("| {name} | {:.2} MB | {:.2} MB |", mb(*after), mb(*most));
    }
    let highest = rows.iter().map(|row| row.2).max().unwrap_or_default();
    println!();
    println!(
        "the invocation's peak: {:.2} MB ({:.0} bytes a record); a record's struct alone: {} bytes",
        mb(highest),
        highest as f64 / records as f64,
        std::mem::size_of::<aws_lambda_events::sqs::SqsMessage>()
    );
    Ok(())
}
