//! The heap a message holds while it is in flight, counted exactly: a counting allocator, no
//! timing, no noise, so two builds compare to the byte.
//!
//! `heap-per-message [messages] [body bytes]` (1,000 messages of 1 KB by default) takes the path a
//! message takes through `local-runner` in process: an SDK `Message` shaped like LocalStack's
//! answer to a receive with every attribute, turned into its Lambda record by the runner's own
//! `lambda_record`, batches of 10 behind an `Arc` (one receive's worth), each batch run by
//! `process_batch` in a task of its own, and a handler built like `handler/`'s (its message type,
//! the `log_id`, a `from_fn` layer, the idempotency layer off, the large-payload layer), whose
//! work waits until every message has started. It prints what each stage adds per message:
//!
//! - the record: the body, the receipt handle, the attributes, the ARN and region;
//! - while the message runs: the parsed message, its task (the handler's future inside the batch
//!   core's), and its share of its batch's (the batch's task, outcome slots, marks).
//!
//! The same again with a handler whose message is `()` splits the parsed message from the task.
//! RSS is larger than the heap (the allocator's own reserve and size classes): `bench/run.sh
//! --only memory` measures that, through a LocalStack.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use bench::heap::{Counting, Order, count_and_body_bytes, held, runtime, shaped_like_handler};
use local_runner::aws::Queue;
use local_runner::aws::records::lambda_record;
use sqs_batch::runtime::{Records, Run, process_batch};
use sqs_batch::{Context, Error, Handler, Options, SqsMessage};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static HEAP: Counting = Counting;

/// Messages whose work has started, and the signal that ends every work.
struct Gate {
    started: AtomicUsize,
    release: CancellationToken,
}

async fn work<M>(gate: &Gate, _message: M) -> Result<(), Error> {
    gate.started.fetch_add(1, Ordering::SeqCst);
    gate.release.cancelled().await;
    Ok(())
}

/// A handler whose message is nothing: what the core and a task hold without a parsed body.
struct Unparsed(Arc<Gate>);

impl Handler for Unparsed {
    type Message = ();

    fn parse(&self, _body: String, _context: &Context) -> Result<(), Error> {
        Ok(())
    }

    async fn handle(&self, (): (), _context: Context) -> Result<(), Error> {
        work(&self.0, ()).await
    }
}

/// An SDK message as LocalStack answers a receive that asks for every attribute.
fn received(i: usize, body_bytes: usize) -> Message {
    let head = format!(r#"{{"id": "msg-{i:06}", "kind": "bench", "payload": {{"n": {i}, "note": ""#);
    let tail = r#""}, "work_ms": 30000}"#;
    let pad = body_bytes.saturating_sub(head.len() + tail.len());
    // As exact as the SDK's own strings (it copies each out of the answer).
    let mut body = format!("{head}{}{tail}", "x".repeat(pad));
    body.shrink_to_fit();
    let message_id = format!("4f7b9c2e-1d3a-4c5b-9e8f-{i:012}");
    // LocalStack's receipt handle: base64 of a random id, the queue's ARN, the message id and a
    // time stamp.
    let receipt_handle = format!(
        "{:0<188}",
        format!("NmQ2ZTc0ZWQtMjk1Zi00ZjM1LWI3ZjItYjE4YzQ5ZjJlOTk3IGFybjphd3M6c3FzOnVzLWVhc3QtMS{i:08}")
    );
    Message::builder()
        .message_id(message_id)
        .receipt_handle(receipt_handle)
        .md5_of_body("5a6b0c3ffbe1ef1e4e0c8e0d0b7d0c5e")
        .body(body)
        .attributes(MessageSystemAttributeName::SenderId, "000000000000")
        .attributes(MessageSystemAttributeName::SentTimestamp, "1765000000000")
        .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
        .attributes(MessageSystemAttributeName::ApproximateFirstReceiveTimestamp, "1765000000123")
        .build()
}

/// The records of `messages` received messages, in batches of 10, their bodies apart as the
/// runner hands them to the batch core.
fn batches(messages: usize, body_bytes: usize) -> Vec<Records> {
    let queue = Queue {
        url: "http://127.0.0.1:4566/000000000000/bench".into(),
        arn: "arn:aws:sqs:us-east-1:000000000000:bench".into(),
        fifo: false,
        visibility_timeout: std::time::Duration::from_secs(300),
        redrive: None,
    };
    (0..messages)
        .collect::<Vec<_>>()
        .chunks(10)
        .map(|chunk| {
            let records: Vec<SqsMessage> =
                chunk.iter().map(|&i| lambda_record(received(i, body_bytes), &queue, "us-east-1")).collect();
            Records::new(records)
        })
        .collect()
}

/// Runs every batch, each in a task of its own, until every message's work has started; returns
/// what the program holds then, and lets them finish.
async fn in_flight<H: Handler>(
    handler: Arc<H>,
    gate: &Gate,
    batches: Vec<Records>,
    messages: usize,
) -> (isize, isize) {
    let options = Options::default();
    let mut tasks = Vec::with_capacity(batches.len());
    for records in batches {
        let (handler, run) = (Arc::clone(&handler), Run::new(&options));
        tasks.push(tokio::spawn(
            async move { process_batch(&handler, records, &run).await.counts().succeeded },
        ));
    }
    while gate.started.load(Ordering::SeqCst) < messages {
        tokio::task::yield_now().await;
    }
    let holding = held();
    gate.release.cancel();
    let mut succeeded = 0;
    for task in tasks {
        succeeded += task.await.unwrap_or_default();
    }
    assert_eq!(succeeded, messages, "every message succeeds");
    holding
}

fn per(bytes: isize, messages: usize) -> f64 {
    bytes as f64 / messages as f64
}

fn main() -> Result<(), String> {
    let (messages, body_bytes) =
        count_and_body_bytes("usage: heap-per-message [messages] [body bytes]", 1000, 1024)?;
    let runtime = runtime()?;

    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    for parsed in [true, false] {
        let gate = Arc::new(Gate { started: AtomicUsize::new(0), release: CancellationToken::new() });
        let before = held();
        let records = batches(messages, body_bytes);
        let with_records = held();
        let holding = if parsed {
            let g = Arc::clone(&gate);
            let handler = Arc::new(shaped_like_handler(move |message: Order, _context: Context| {
                let g = Arc::clone(&g);
                async move { work(&g, message).await }
            }));
            runtime.block_on(in_flight(handler, &gate, records, messages))
        } else {
            runtime.block_on(in_flight(Arc::new(Unparsed(Arc::clone(&gate))), &gate, records, messages))
        };
        if parsed {
            rows.push((
                "the record (body included)".into(),
                per(with_records.0 - before.0, messages),
                per(with_records.1 - before.1, messages),
            ));
        }
        let name = if parsed {
            "running: parsed message, task, batch share (handler/'s shape)"
        } else {
            "running: task and batch share (message `()`)"
        };
        rows.push((
            name.into(),
            per(holding.0 - with_records.0, messages),
            per(holding.1 - with_records.1, messages),
        ));
    }
    println!("heap per message in flight: {messages} messages, {body_bytes}-byte bodies, batches of 10");
    println!();
    println!("| held | bytes per message | blocks per message |");
    println!("|---|---:|---:|");
    for (name, bytes, blocks) in &rows {
        println!("| {name} | {bytes:.0} | {blocks:.1} |");
    }
    Ok(())
}
