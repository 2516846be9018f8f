//! Per-message overhead of the batch core with a handler that does nothing (each message a task
//! of its own), on a current-thread and on a two-worker runtime; and the Lambda event round trip
//! (parse, run, respond) for a 10-record event.

use std::hint::black_box;
use std::sync::Arc;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use criterion::{BatchSize, Bencher, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sqs_batch::runtime::{Records, Run, process_batch};
use sqs_batch::{Context, Error, Handler, HandlerExt, Next, Options, from_fn};

/// Accepts everything and does nothing: what is left is the batch core's own cost.
struct Noop;

impl Handler for Noop {
    type Message = ();

    fn parse(&self, _body: String, _context: &Context) -> Result<(), Error> {
        Ok(())
    }

    async fn handle(&self, (): (), _context: Context) -> Result<(), Error> {
        Ok(())
    }
}

fn records(n: usize, fifo: bool) -> Vec<SqsMessage> {
    (0..n)
        .map(|i| {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("00000000-0000-4000-8000-{i:012}"));
            record.body = Some(format!(r#"{{"id":"m{i}","kind":"bench"}}"#));
            let queue = if fifo { "q.fifo" } else { "q" };
            record.event_source_arn = Some(format!("arn:aws:sqs:us-east-1:000000000000:{queue}"));
            if fifo {
                record.attributes.insert("MessageGroupId".into(), format!("g{}", i % 10));
            }
            record
        })
        .collect()
}

/// Times `handler` over `batch`, one batch per iteration, each inside a task of `runtime` as a
/// consumer runs it: its lanes are spawned from a worker, not injected from outside. The records
/// are the caller's, as a runtime's are (deserialised, received): made outside the timing, their
/// bodies freed inside it, as a runtime frees them.
fn in_tasks<H: Handler>(
    b: &mut Bencher<'_>,
    runtime: &tokio::runtime::Runtime,
    handler: &Arc<H>,
    batch: &[SqsMessage],
    run: &Run,
) {
    b.to_async(runtime).iter_batched(
        || Records::new(batch.to_vec()),
        |batch| {
            let (handler, run) = (Arc::clone(handler), run.clone());
            async move {
                let task = tokio::spawn(async move {
                    let records = Arc::clone(batch.records());
                    let report = process_batch(&handler, black_box(batch), &run).await;
                    black_box(report.to_response(&records).expect("ids present"))
                });
                task.await.expect("the batch task")
            }
        },
        BatchSize::SmallInput,
    );
}

fn batch_core(c: &mut Criterion) {
    let runtimes = [
        (
            "current_thread",
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime"),
        ),
        (
            "multi_thread_2",
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime"),
        ),
    ];
    let handler = Arc::new(Noop);
    let run = Run::new(&Options::default());
    for (flavour, runtime) in &runtimes {
        let mut group = c.benchmark_group(format!("batch_core_noop/{flavour}"));
        for fifo in [false, true] {
            for n in [1, 10, 100] {
                let batch = records(n, fifo);
                group.throughput(Throughput::Elements(n as u64));
                let id = BenchmarkId::new(if fifo { "fifo" } else { "standard" }, n);
                group.bench_with_input(id, &batch, |b, batch| {
                    in_tasks(b, runtime, &handler, batch, &run);
                });
            }
        }
        group.finish();
    }
}

/// A layer that only hands the message on: what the composition seam itself costs per message.
async fn pass(message: (), context: Context, next: Next<()>) -> Result<(), Error> {
    next.run(message, context).await
}

fn batch_core_layered(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let handler = Arc::new(Noop.layer(from_fn(pass)));
    let run = Run::new(&Options::default());
    let mut group = c.benchmark_group("batch_core_one_layer/current_thread");
    for n in [10, 100] {
        let batch = records(n, false);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("standard", n), &batch, |b, batch| {
            in_tasks(b, &runtime, &handler, batch, &run);
        });
    }
    group.finish();
}

fn lambda_round_trip(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let handler = Arc::new(Noop);
    let run = Run::new(&Options::default());
    let mut event = SqsEvent::default();
    event.records = records(10, false);
    let json = serde_json::to_string(&event).expect("serialises");
    c.bench_function("lambda_event_10_parse_run_respond", |b| {
        b.to_async(&runtime).iter(|| async {
            let event: SqsEvent = serde_json::from_str(black_box(&json)).expect("parses");
            let batch = Records::new(event.records);
            let records = Arc::clone(batch.records());
            let report = process_batch(&handler, batch, &run).await;
            let response = report.to_response(&records).expect("ids present");
            black_box(serde_json::to_vec(&response).expect("serialises"))
        });
    });
}

/// The idempotency layer with the in-memory store, side by side with the bare handler in one
/// group: `first` deliveries (a claim, the work, a completion: two store calls and a SHA-256 of
/// the key), and `duplicate` ones (a claim that finds the key completed). `first` cycles through
/// 10,000 keys whose records expire at once, so the store stays bounded while every claim wins.
fn batch_core_idempotent(c: &mut Criterion) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use sqs_batch::idempotency::{Idempotency, MemoryStore};

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let bare = Arc::new(Noop);
    let next = AtomicU64::new(0);
    let first = Arc::new(
        Noop.layer(
            Idempotency::new(MemoryStore::default())
                .key(move |(): &()| (next.fetch_add(1, Ordering::Relaxed) % 10_000).to_string())
                .expires_after(Duration::ZERO),
        ),
    );
    let duplicate = Arc::new(Noop.layer(Idempotency::new(MemoryStore::default())));
    let run = Run::new(&Options::default());
    let mut group = c.benchmark_group("batch_core_idempotent/current_thread");
    for n in [10, 100] {
        let batch = records(n, false);
        group.throughput(Throughput::Elements(n as u64));
        macro_rules! bench {
            ($name:expr, $handler:expr) => {
                group.bench_with_input(BenchmarkId::new($name, n), &batch, |b, batch| {
                    in_tasks(b, &runtime, &$handler, batch, &run);
                });
            };
        }
        bench!("bare", bare);
        bench!("first", first);
        bench!("duplicate", duplicate);
    }
    group.finish();
}

criterion_group!(benches, batch_core, batch_core_layered, batch_core_idempotent, lambda_round_trip);
criterion_main!(benches);
