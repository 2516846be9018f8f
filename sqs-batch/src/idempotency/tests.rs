//! The idempotency state machine with the in-memory store, on tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use super::*;
use crate::handler::handler_fn;
use crate::layer::HandlerExt;
use crate::testing::{record, run};

#[derive(Debug, serde::Deserialize)]
struct Order {
    id: String,
    #[serde(default)]
    fail: bool,
    #[serde(default)]
    work_ms: u64,
}

/// A handler that counts the work it does: the side effect idempotency must not repeat.
fn counted(runs: &Arc<AtomicUsize>) -> impl Handler<Message = Order> {
    let runs = Arc::clone(runs);
    handler_fn(move |order: Order, _: Context| {
        let runs = Arc::clone(&runs);
        async move {
            tokio::time::sleep(Duration::from_millis(order.work_ms)).await;
            if order.fail {
                return Err(Error::transient("the work failed"));
            }
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    })
}

fn by_order_id<S: Store>(
    store: S,
) -> Idempotency<S, KeyFn<impl Fn(&Order) -> String + Send + Sync + 'static>> {
    Idempotency::new(store).key(|order: &Order| order.id.clone())
}

fn order(id: &str) -> String {
    format!(r#"{{"id":"{id}"}}"#)
}

#[tokio::test(start_paused = true)]
async fn the_same_order_sent_three_times_is_worked_once_and_then_answered_as_duplicate() {
    let (store, runs) = (Arc::new(MemoryStore::default()), Arc::new(AtomicUsize::new(0)));
    let mut labels = Vec::new();
    for message_id in ["m1", "m2", "m3"] {
        let handler = counted(&runs).layer(by_order_id(Arc::clone(&store)));
        let report = run(handler, [record(order("o-1")).id(message_id)]).await;
        labels.extend(report.labels());
    }
    assert_eq!(labels, ["ok", "duplicate", "duplicate"]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let stored = store.get(&record_id("o-1")).expect("the key's record");
    assert_eq!((stored.status, stored.in_progress_until), (Status::Completed, None));
}

#[tokio::test(start_paused = true)]
async fn keyed_by_message_id_a_redelivery_is_a_duplicate_and_a_new_send_is_not() {
    let (store, runs) = (Arc::new(MemoryStore::default()), Arc::new(AtomicUsize::new(0)));
    let handler = || counted(&runs).layer(Idempotency::new(Arc::clone(&store)));
    assert_eq!(run(handler(), [record(order("o-1")).id("m1")]).await.labels(), ["ok"]);
    assert_eq!(
        run(handler(), [record(order("o-1")).id("m1").receive_count(2)]).await.labels(),
        ["duplicate"]
    );
    assert_eq!(run(handler(), [record(order("o-1")).id("m2")]).await.labels(), ["ok"]);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_concurrent_duplicate_fails_transiently_and_is_a_duplicate_when_it_comes_back() {
    let (store, runs) = (Arc::new(MemoryStore::default()), Arc::new(AtomicUsize::new(0)));
    let slow = r#"{"id":"o-1","work_ms":1000}"#;
    let handler = counted(&runs).layer(by_order_id(Arc::clone(&store)));
    let report = run(handler, [record(slow).id("m1"), record(slow).id("m2")]).await;
    assert_eq!(report.labels(), ["ok", "failed"]);
    let failure = format!("{:#}", report.error(1).expect("the duplicate's error"));
    assert!(failure.contains("in progress"), "{failure}");
    assert!(report.error(1).is_some_and(Error::is_retryable));

    let handler = counted(&runs).layer(by_order_id(Arc::clone(&store)));
    assert_eq!(run(handler, [record(slow).id("m2").receive_count(2)]).await.labels(), ["duplicate"]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_crashed_attempt_holds_its_key_until_its_deadline_and_then_the_next_one_runs() {
    let (store, runs) = (Arc::new(MemoryStore::default()), Arc::new(AtomicUsize::new(0)));
    let handler = counted(&runs).layer(by_order_id(Arc::clone(&store)));
    let deadline = SystemTime::now() + Duration::from_secs(30);
    let context = |id: &str| Context::new(record(order("o-1")).id(id).build());
    let stuck = Order { id: "o-1".into(), fail: false, work_ms: 3_600_000 };
    // The attempt dies mid-work (its future dropped, as a killed process's is): INPROGRESS stays.
    let crashed = tokio::time::timeout(
        Duration::from_secs(1),
        handler.handle(stuck, context("m1").with_deadline(deadline)),
    );
    assert!(crashed.await.is_err());
    assert_eq!(store.get(&record_id("o-1")).map(|r| r.status), Some(Status::InProgress));

    let again = || Order { id: "o-1".into(), fail: false, work_ms: 0 };
    let early = handler.handle(again(), context("m1")).await;
    assert!(early.as_ref().is_err_and(Error::is_retryable), "{early:?}");

    tokio::time::advance(Duration::from_secs(30)).await;
    let context = context("m1");
    handler.handle(again(), context.clone()).await.expect("the key is free after the deadline");
    assert!(!context.is_duplicate());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(store.records().iter().all(|r| r.status == Status::Completed));
}

#[tokio::test(start_paused = true)]
async fn without_a_deadline_an_in_progress_key_is_held_for_the_configured_time() {
    let store = Arc::new(MemoryStore::default());
    let handler = counted(&Arc::new(AtomicUsize::new(0)))
        .layer(by_order_id(Arc::clone(&store)).in_progress_for(Duration::from_secs(60)));
    let stuck = Order { id: "o-1".into(), fail: false, work_ms: 3_600_000 };
    let context = Context::new(record(order("o-1")).build());
    assert!(tokio::time::timeout(Duration::from_secs(1), handler.handle(stuck, context)).await.is_err());
    let held = store.get(&record_id("o-1")).and_then(|r| r.in_progress_until).expect("a hold");
    let now = SystemTime::now();
    assert!(held > now + Duration::from_secs(50) && held < now + Duration::from_secs(70), "{held:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_or_panicking_handler_releases_its_key_so_the_retry_runs_at_once() {
    let (store, runs) = (Arc::new(MemoryStore::default()), Arc::new(AtomicUsize::new(0)));
    let handler = || counted(&runs).layer(by_order_id(Arc::clone(&store)));
    let failing = r#"{"id":"o-1","fail":true}"#;
    assert_eq!(run(handler(), [record(failing)]).await.labels(), ["failed"]);
    assert!(store.records().is_empty(), "{:?}", store.records());

    let panicking = handler_fn(|_: Order, _: Context| async { panic!("boom") });
    let report = run(panicking.layer(by_order_id(Arc::clone(&store))), [record(order("o-1"))]).await;
    assert_eq!(report.labels(), ["failed"]);
    assert!(store.records().is_empty(), "{:?}", store.records());

    assert_eq!(run(handler(), [record(order("o-1")).receive_count(3)]).await.labels(), ["ok"]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_completed_key_runs_again_once_its_record_expires() {
    let (store, runs) = (Arc::new(MemoryStore::default()), Arc::new(AtomicUsize::new(0)));
    let layer = by_order_id(Arc::clone(&store)).expires_after(Duration::from_secs(600));
    let handler = || counted(&runs).layer(layer.clone());
    assert_eq!(run(handler(), [record(order("o-1"))]).await.labels(), ["ok"]);
    tokio::time::advance(Duration::from_secs(599)).await;
    assert_eq!(run(handler(), [record(order("o-1"))]).await.labels(), ["duplicate"]);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(run(handler(), [record(order("o-1"))]).await.labels(), ["ok"]);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn the_same_key_with_another_payload_fails_permanently_and_says_so() {
    let (store, runs) = (Arc::new(MemoryStore::default()), Arc::new(AtomicUsize::new(0)));
    let handler = || counted(&runs).layer(by_order_id(Arc::clone(&store)).validate_payload());
    assert_eq!(run(handler(), [record(order("o-1"))]).await.labels(), ["ok"]);
    assert_eq!(run(handler(), [record(order("o-1"))]).await.labels(), ["duplicate"]);
    let report = run(handler(), [record(r#"{"id":"o-1","work_ms":1}"#)]).await;
    assert_eq!(report.labels(), ["failed"]);
    let error = report.error(0).expect("the mismatch");
    assert!(!error.is_retryable());
    assert!(format!("{error:#}").contains("different payload"), "{error:#}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// The in-memory store behind a switch: off, every call fails as a store outage would.
#[derive(Default)]
struct Flaky {
    store: MemoryStore,
    down: AtomicBool,
    calls: AtomicUsize,
}

impl Flaky {
    fn up(&self) -> Result<(), BoxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) { Err("connection refused".into()) } else { Ok(()) }
    }
}

impl Store for Flaky {
    async fn claim(&self, record: &Record, now: SystemTime) -> Result<Claim, BoxError> {
        self.up()?;
        self.store.claim(record, now).await
    }

    async fn complete(&self, record: &Record) -> Result<(), BoxError> {
        self.up()?;
        self.store.complete(record).await
    }

    async fn release(&self, claim: &Record) -> Result<(), BoxError> {
        self.up()?;
        self.store.release(claim).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_outage_fails_messages_transiently_and_marks_nothing_complete() {
    let (store, runs) = (Arc::new(Flaky::default()), Arc::new(AtomicUsize::new(0)));
    store.down.store(true, Ordering::SeqCst);
    let handler = || counted(&runs).layer(by_order_id(Arc::clone(&store)));
    let report = run(handler(), [record(order("o-1")), record(order("o-2"))]).await;
    assert_eq!(report.labels(), ["failed", "failed"]);
    assert!(report.error(0).is_some_and(Error::is_retryable));
    assert!(format!("{:#}", report.error(0).expect("an error")).contains("connection refused"));
    assert_eq!((runs.load(Ordering::SeqCst), store.store.records().len()), (0, 0));

    store.down.store(false, Ordering::SeqCst);
    let report = run(handler(), [record(order("o-1")), record(order("o-2"))]).await;
    assert_eq!(report.labels(), ["ok", "ok"]);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn the_cache_answers_a_duplicate_this_process_completed_without_the_store() {
    let (store, runs) = (Arc::new(Flaky::default()), Arc::new(AtomicUsize::new(0)));
    let handler = counted(&runs).layer(by_order_id(Arc::clone(&store)).cache(100));
    let context = |id: &str| Context::new(record(order("o-1")).id(id).build());
    let message = || Order { id: "o-1".into(), fail: false, work_ms: 0 };
    handler.handle(message(), context("m1")).await.expect("the first delivery");
    let calls = store.calls.load(Ordering::SeqCst);
    store.down.store(true, Ordering::SeqCst);
    let second = context("m2");
    handler.handle(message(), second.clone()).await.expect("answered from the cache");
    assert!(second.is_duplicate());
    assert_eq!(store.calls.load(Ordering::SeqCst), calls);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn the_cache_keeps_at_most_its_capacity_dropping_the_oldest() {
    let cache = cache::Cache::new(2);
    let now = SystemTime::now();
    let completed = |id: &str| Record {
        id: id.into(),
        status: Status::Completed,
        expires: now + Duration::from_secs(60),
        in_progress_until: None,
        payload: None,
        holder: None,
    };
    for id in ["a", "b", "c"] {
        cache.insert(&completed(id));
    }
    assert!(cache.get("a", now).is_none());
    assert!(cache.get("b", now).is_some() && cache.get("c", now).is_some());
    assert!(cache.get("c", now + Duration::from_secs(61)).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_in_a_fifo_group_is_a_success_and_does_not_stop_its_group() {
    let (store, runs) = (Arc::new(MemoryStore::default()), Arc::new(AtomicUsize::new(0)));
    let handler = || counted(&runs).layer(by_order_id(Arc::clone(&store)));
    let fifo = |body: String, id: &str| record(body).id(id).group("g").queue("orders.fifo");
    assert_eq!(run(handler(), [fifo(order("o-1"), "m1")]).await.labels(), ["ok"]);
    let report = run(handler(), [fifo(order("o-1"), "m2"), fifo(order("o-2"), "m3")]).await;
    assert_eq!(report.labels(), ["duplicate", "ok"]);
    assert!(report.failed_ids().is_empty());
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn a_record_id_is_a_fixed_size_hash_that_holds_none_of_the_keys_text() {
    let id = record_id("\u{1b}[31morder 1");
    assert_eq!(id.len(), 64);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(id, record_id("\u{1b}[31morder 1"));
    assert_ne!(id, record_id("order 1"));
}

#[tokio::test(start_paused = true)]
async fn a_key_held_by_an_earlier_delivery_of_the_same_message_is_taken_over_by_its_redelivery() {
    let (store, runs) = (Arc::new(MemoryStore::default()), Arc::new(AtomicUsize::new(0)));
    // What a claim whose answer was lost leaves behind: INPROGRESS, held for a long time.
    let lost = Record {
        id: record_id("o-1"),
        status: Status::InProgress,
        expires: SystemTime::now() + Duration::from_secs(3600),
        in_progress_until: Some(SystemTime::now() + Duration::from_secs(900)),
        payload: None,
        holder: Some(Delivery { message_id: "m1".into(), receive_count: 1, attempt: "lost".into() }),
    };
    store.complete(&lost).await.expect("stored");
    let handler = || counted(&runs).layer(by_order_id(Arc::clone(&store)));
    let other_message = run(handler(), [record(order("o-1")).id("m2")]).await;
    assert_eq!(other_message.labels(), ["failed"], "another message's duplicate waits");
    let same_again = run(handler(), [record(order("o-1")).id("m1").receive_count(1)]).await;
    assert_eq!(same_again.labels(), ["failed"], "the same delivery count is not an earlier delivery");
    let redelivered = run(handler(), [record(order("o-1")).id("m1").receive_count(2)]).await;
    assert_eq!(redelivered.labels(), ["ok"]);
    assert_eq!(
        run(handler(), [record(order("o-1")).id("m2").receive_count(2)]).await.labels(),
        ["duplicate"]
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
