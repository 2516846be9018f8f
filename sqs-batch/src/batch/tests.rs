//! The batch core's rules, each on its own.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::SqsMessage;
use tokio_util::sync::CancellationToken;

use super::lanes::{MESSAGE_GROUP_ID, plan_lanes};
use super::*;
use crate::context::Context;
use crate::error::{BatchError, Error};
use crate::handler::Handler;
use crate::options::Options;

/// A test handler driven by the body: `ok`, `fail`, `panic`, `sleep` (10 ms of work) or
/// `forever` (never finishes).
#[derive(Default)]
struct Scripted {
    running: AtomicUsize,
    peak: AtomicUsize,
    handled: Mutex<Vec<String>>,
}

impl Handler for Scripted {
    type Message = String;

    fn parse(&self, body: String, _context: &Context) -> Result<String, Error> {
        Ok(body)
    }

    async fn handle(&self, body: String, _context: Context) -> Result<(), Error> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let work = if body == "forever" { YEAR } else { Duration::from_millis(10) };
        tokio::time::sleep(work).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.handled.lock().unwrap().push(body.clone());
        match body.split(':').next() {
            Some("fail") => Err(Error::permanent(body)),
            Some("panic") => panic!("asked to panic"),
            _ => Ok(()),
        }
    }
}

fn record(id: &str, body: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(id.to_owned());
    record.body = Some(body.to_owned());
    record.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:q".to_owned());
    record
}

fn fifo_record(id: &str, group: &str, body: &str) -> SqsMessage {
    let mut record = record(id, body);
    record.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:q.fifo".to_owned());
    record.attributes.insert(MESSAGE_GROUP_ID.to_owned(), group.to_owned());
    record
}

fn failed_ids(report: &BatchReport, records: &[SqsMessage]) -> Vec<String> {
    let response = report.to_response(records).unwrap();
    response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
}

fn limit(concurrency: usize) -> Run {
    let options = Options { concurrency: NonZeroUsize::new(concurrency).unwrap(), ..Options::default() };
    Run::new(&options)
}

async fn run(handler: &Arc<Scripted>, records: &[SqsMessage], concurrency: usize) -> BatchReport {
    process_batch(handler, Records::new(records.to_vec()), &limit(concurrency)).await
}

/// Keeps what `parse` and `handle` saw of each record: the body parse got, and whether the
/// context's record still had one.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, bool)>>);

impl Handler for Seen {
    type Message = String;

    fn parse(&self, body: String, context: &Context) -> Result<String, Error> {
        self.0.lock().unwrap().push((body.clone(), context.record().body.is_some()));
        Ok(body)
    }

    async fn handle(&self, body: String, context: Context) -> Result<(), Error> {
        self.0.lock().unwrap().push((body, context.record().body.is_some()));
        Ok(())
    }
}

#[tokio::test]
async fn each_body_goes_to_parse_by_value_and_no_record_keeps_a_copy() {
    let handler = Arc::new(Seen::default());
    let records = Records::new(vec![record("m1", "first")]);
    let kept = Arc::clone(records.records());
    let report = process_batch(&handler, records, &limit(1)).await;
    assert!(report.outcomes[0].is_success());
    assert_eq!(*handler.0.lock().unwrap(), [("first".to_owned(), false), ("first".to_owned(), false)]);
    assert!(kept[0].body.is_none(), "the caller's records hold no body either");
    assert_eq!(kept[0].message_id.as_deref(), Some("m1"), "the rest of the record is kept");
}

#[tokio::test]
async fn a_record_without_a_body_fails_as_an_invalid_body_without_reaching_parse() {
    let handler = Arc::new(Seen::default());
    let mut bodiless = record("m1", "");
    bodiless.body = None;
    let report = process_batch(&handler, Records::new(vec![bodiless, record("m2", "")]), &limit(2)).await;
    let Outcome::Failed(Error::InvalidBody { reason, .. }) = &report.outcomes[0] else {
        panic!("an invalid body: {:?}", report.outcomes[0])
    };
    assert_eq!(reason, "the record has no body");
    assert!(report.outcomes[1].is_success(), "an empty body is a body");
    assert_eq!(handler.0.lock().unwrap().len(), 2, "only m2 was parsed and handled");
}

#[test]
fn records_put_back_whole_have_their_bodies_again() {
    let records = Records::new(vec![record("m1", "one"), record("m2", "two")]);
    assert_eq!(records.len(), 2);
    let whole = records.into_whole();
    let bodies: Vec<_> = whole.iter().map(|r| r.body.as_deref()).collect();
    assert_eq!(bodies, [Some("one"), Some("two")]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_fails_only_its_own_message() {
    let handler = Arc::new(Scripted::default());
    let records = [record("m1", "ok"), record("m2", "panic"), record("m3", "ok")];
    let report = run(&handler, &records, 10).await;
    assert_eq!(failed_ids(&report, &records), ["m2"]);
    assert!(
        matches!(&report.outcomes[1], Outcome::Failed(Error::Panicked(text)) if text == "asked to panic")
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_never_exceeds_the_limit_and_reaches_it() {
    let handler = Arc::new(Scripted::default());
    let records: Vec<_> = (0..10).map(|i| record(&format!("m{i}"), "sleep")).collect();
    let report = run(&handler, &records, 3).await;
    assert_eq!(report.counts().succeeded, 10);
    assert_eq!(handler.peak.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn fifo_groups_run_in_order_one_message_at_a_time() {
    let handler = Arc::new(Scripted::default());
    let records = [
        fifo_record("a1", "a", "a:1"),
        fifo_record("a2", "a", "a:2"),
        fifo_record("a3", "a", "a:3"),
        fifo_record("a4", "a", "a:4"),
    ];
    let report = run(&handler, &records, 10).await;
    assert_eq!(report.counts().succeeded, 4);
    assert_eq!(handler.peak.load(Ordering::SeqCst), 1);
    assert_eq!(*handler.handled.lock().unwrap(), ["a:1", "a:2", "a:3", "a:4"]);
}

#[tokio::test(start_paused = true)]
async fn after_a_fifo_failure_the_rest_of_its_group_is_not_started_and_skip_group_lets_the_others_go_on() {
    let handler = Arc::new(Scripted::default());
    let records = [
        fifo_record("a1", "a", "fail:a1"),
        fifo_record("b1", "b", "b:1"),
        fifo_record("a2", "a", "a:2"),
        fifo_record("b2", "b", "b:2"),
    ];
    let skip_group = Run { fifo: crate::options::FifoMode::SkipGroup, ..limit(10) };
    let report = process_batch(&handler, Records::new(records.to_vec()), &skip_group).await;
    assert_eq!(failed_ids(&report, &records), ["a1", "a2"]);
    assert!(matches!(report.outcomes[2], Outcome::NotStarted(NotStarted::EarlierInGroupFailed)));
    assert!(!handler.handled.lock().unwrap().contains(&"a:2".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn by_aws_s_rule_a_fifo_batch_runs_in_order_and_stops_at_its_first_failure() {
    let handler = Arc::new(Scripted::default());
    let records = [
        fifo_record("b1", "b", "b:1"),
        fifo_record("a1", "a", "fail:a1"),
        fifo_record("b2", "b", "b:2"),
        fifo_record("a2", "a", "a:2"),
    ];
    let report = run(&handler, &records, 10).await;
    assert_eq!(failed_ids(&report, &records), ["a1", "b2", "a2"]);
    assert_eq!(*handler.handled.lock().unwrap(), ["b:1", "fail:a1"], "in the batch's order, one at a time");
    assert!(matches!(report.outcomes[2], Outcome::NotStarted(NotStarted::EarlierInBatchFailed)));
    assert!(matches!(report.outcomes[3], Outcome::NotStarted(NotStarted::EarlierInGroupFailed)));
}

#[tokio::test(start_paused = true)]
async fn group_ids_on_a_standard_queue_do_not_make_it_fifo() {
    // A fair queue: a standard queue whose producers set MessageGroupId. No order, no group stop.
    let handler = Arc::new(Scripted::default());
    let mut records = vec![record("a1", "fail:a1"), record("a2", "a:2"), record("b1", "b:1")];
    for (record, group) in records.iter_mut().zip(["a", "a", "b"]) {
        record.attributes.insert(MESSAGE_GROUP_ID.to_owned(), group.to_owned());
    }
    let report = run(&handler, &records, 10).await;
    assert_eq!(failed_ids(&report, &records), ["a1"]);
    assert_eq!(handler.peak.load(Ordering::SeqCst), 3, "a group's messages run at once");
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_a_fifo_group_stops_that_group_too() {
    let handler = Arc::new(Scripted::default());
    let records = [fifo_record("a1", "a", "panic"), fifo_record("a2", "a", "a:2")];
    let report = run(&handler, &records, 10).await;
    assert_eq!(failed_ids(&report, &records), ["a1", "a2"]);
}

#[tokio::test(start_paused = true)]
async fn a_stopped_batch_starts_nothing_and_reports_everything() {
    let handler = Arc::new(Scripted::default());
    let records = [record("m1", "ok"), fifo_record("m2", "g", "ok")];
    let stop = CancellationToken::new();
    stop.cancel();
    let report = process_batch(&handler, Records::new(records.to_vec()), &limit(10).stop_on(stop)).await;
    assert!(report.outcomes.iter().all(|o| matches!(o, Outcome::NotStarted(NotStarted::Stopped))));
    assert!(handler.handled.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_a_fifo_group_leaves_its_later_messages_unstarted() {
    let handler = Arc::new(Scripted::default());
    let records: Arc<[SqsMessage]> =
        Arc::from(vec![fifo_record("a1", "a", "a:1"), fifo_record("a2", "a", "a:2")]);
    let stop = CancellationToken::new();
    let run = limit(10).stop_on(stop.clone());
    let batch = process_batch(&handler, Records::new(records.to_vec()), &run);
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(5)).await; // a1 is running (10 ms of work)
        stop.cancel();
    };
    let (report, ()) = tokio::join!(batch, stopper);
    assert!(report.outcomes[0].is_success(), "a started message finishes");
    assert!(matches!(report.outcomes[1], Outcome::NotStarted(NotStarted::Stopped)));
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_batch_keeps_the_outcomes_of_the_messages_that_finished() {
    let handler = Arc::new(Scripted::default());
    let records: Arc<[SqsMessage]> = Arc::from(vec![
        record("m1", "ok"),
        record("m2", "forever"),
        fifo_record("g1", "g", "g:1"),
        fifo_record("g2", "g", "forever"),
        fifo_record("g3", "g", "g:3"),
    ]);
    // A standard record and a FIFO group whose second message never ends; g3 waits behind it.
    let abandon = CancellationToken::new();
    let run = Run { fifo: crate::options::FifoMode::SkipGroup, ..limit(10) }.abandon_on(abandon.clone());
    let batch = process_batch(&handler, Records::new(records.to_vec()), &run);
    let abandoner = async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        abandon.cancel();
    };
    let (report, ()) = tokio::join!(batch, abandoner);
    let labels: Vec<&str> = report.outcomes.iter().map(Outcome::as_str).collect();
    assert_eq!(labels, ["ok", "abandoned", "ok", "abandoned", "skipped"]);
    assert!(matches!(report.outcomes[4], Outcome::NotStarted(NotStarted::Stopped)));
}

#[tokio::test(start_paused = true)]
async fn messages_not_started_before_the_deadline_reserve_are_reported_failed() {
    // One FIFO group, so one message at a time, 10 ms each: a deadline 1 s away with a
    // 985 ms reserve lets the first start (at 0) and the second (at 10 ms) but not the third.
    let handler = Arc::new(Scripted::default());
    let records: Arc<[SqsMessage]> = Arc::from(vec![
        fifo_record("a1", "a", "a:1"),
        fifo_record("a2", "a", "a:2"),
        fifo_record("a3", "a", "a:3"),
    ]);
    let mut run = limit(10).deadline(SystemTime::now() + Duration::from_secs(1));
    run.deadline_reserve = Duration::from_millis(985);
    let report = process_batch(&handler, Records::new(records.to_vec()), &run).await;
    assert_eq!(failed_ids(&report, &records), ["a3"]);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_already_inside_the_reserve_starts_nothing() {
    let handler = Arc::new(Scripted::default());
    let records: Arc<[SqsMessage]> = Arc::from(vec![record("m1", "ok"), record("m2", "ok")]);
    let run = limit(10).deadline(SystemTime::now() + Duration::from_millis(500));
    let report = process_batch(&handler, Records::new(records.to_vec()), &run).await;
    assert_eq!(report.counts().not_started, 2);
    assert!(handler.handled.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_one_batch_run_in_parallel_on_a_multi_thread_runtime() {
    // Two handlers that each block their thread until the other has started: they can only
    // both finish if they run on two threads at once. The timeout turns a failure into a
    // failed message instead of a hang.
    struct Rendezvous(Mutex<Vec<std::sync::mpsc::Sender<()>>>, Mutex<Vec<std::sync::mpsc::Receiver<()>>>);
    impl Handler for Rendezvous {
        type Message = ();
        fn parse(&self, _body: String, _context: &Context) -> Result<(), Error> {
            Ok(())
        }
        async fn handle(&self, (): (), _context: Context) -> Result<(), Error> {
            let (send, receive) = (self.0.lock().unwrap().pop(), self.1.lock().unwrap().pop());
            send.unwrap().send(()).map_err(|_| Error::transient("the other side is gone"))?;
            receive.unwrap().recv_timeout(Duration::from_secs(10)).map_err(Error::transient)
        }
    }
    let (a_send, a_receive) = std::sync::mpsc::channel();
    let (b_send, b_receive) = std::sync::mpsc::channel();
    let handler =
        Arc::new(Rendezvous(Mutex::new(vec![a_send, b_send]), Mutex::new(vec![a_receive, b_receive])));
    let records: Arc<[SqsMessage]> = Arc::from(vec![record("m1", "x"), record("m2", "x")]);
    let report = process_batch(&handler, Records::new(records.to_vec()), &limit(2)).await;
    assert_eq!(report.counts().succeeded, 2, "{report:?}");
}

#[tokio::test]
async fn a_failed_record_without_a_message_id_fails_the_whole_batch() {
    let handler = Arc::new(Scripted::default());
    let mut nameless = record("", "fail");
    nameless.message_id = None;
    let records = [record("m1", "ok"), nameless];
    let report = run(&handler, &records, 10).await;
    assert!(matches!(report.to_response(&records), Err(BatchError::UnidentifiedRecord { index: 1 })));
}

#[tokio::test]
async fn an_empty_batch_has_no_failures() {
    let report = run(&Arc::new(Scripted::default()), &[], 10).await;
    assert!(report.outcomes.is_empty());
    assert!(report.to_response(&[]).unwrap().batch_item_failures.is_empty());
    assert!(!report.all_failed());
}

#[tokio::test(start_paused = true)]
async fn a_batch_fails_as_a_whole_only_when_nothing_succeeded_and_something_failed() {
    let handler = Arc::new(Scripted::default());
    let all_bad = [fifo_record("a1", "a", "fail:1"), fifo_record("a2", "a", "ok")];
    assert!(run(&handler, &all_bad, 10).await.all_failed());
    let one_good = [record("m1", "fail:1"), record("m2", "ok")];
    assert!(!run(&handler, &one_good, 10).await.all_failed());
}

#[test]
fn fifo_lanes_keep_arrival_order_and_group_records_without_a_group_alone() {
    let mut loose = fifo_record("x", "", "x");
    loose.attributes.clear();
    let records = [fifo_record("a1", "a", ""), fifo_record("b1", "b", ""), loose, fifo_record("a2", "a", "")];
    let (order, lanes) = plan_lanes(&records, crate::options::FifoMode::SkipGroup);
    let lanes: Vec<Vec<usize>> = lanes.into_iter().map(|lane| order[lane].to_vec()).collect();
    assert_eq!(lanes, [vec![0, 3], vec![1], vec![2]]);
}

#[tokio::test(start_paused = true)]
async fn a_message_still_running_at_its_own_timeout_is_stopped_and_fails_as_timed_out() {
    let handler = Arc::new(Scripted::default());
    let records = [record("m1", "ok"), record("m2", "forever")];
    let run = limit(10).timeout(Duration::from_secs(3));
    let started = tokio::time::Instant::now();
    let report = process_batch(&handler, Records::new(records.to_vec()), &run).await;
    assert_eq!(failed_ids(&report, &records), ["m2"]);
    assert!(report.timed_out(), "the batch reports the timeout: {report:?}");
    let Outcome::Failed(Error::Transient(cause)) = &report.outcomes[1] else { panic!("{report:?}") };
    assert_eq!(cause.downcast_ref::<TimedOut>(), Some(&TimedOut { after: Duration::from_secs(3) }));
    assert!(started.elapsed() < Duration::from_secs(4), "the work ended at the deadline, not after it");
    assert_eq!(*handler.handled.lock().unwrap(), ["ok"], "the stopped work never went on to its end");
}

#[tokio::test(start_paused = true)]
async fn a_deadline_given_by_lambda_leaves_running_work_to_lambda() {
    // Lambda stops the process itself: the core only stops starting messages.
    let handler = Arc::new(Scripted::default());
    let records = [record("m1", "forever")];
    let run = limit(10).deadline(SystemTime::now() + Duration::from_secs(3));
    let report = process_batch(&handler, Records::new(records.to_vec()), &run).await;
    assert!(report.outcomes[0].is_success(), "{report:?}");
    assert!(!report.timed_out());
}
