//! The function's own counts, read from its log. A partial batch response lists failures only;
//! the `batch done` line an `sqs-batch` function writes for each invocation also says how many of
//! its successes were duplicates or ignored. The runner takes those into its summary and metrics,
//! so that a drain reads the same under `--lambda` as in process. A function that writes no such
//! line (one not built on `sqs-batch`, or logging above `info`) counts every success as `ok`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// How long an invocation's answer waits for its `batch done` line when the function is known
/// to write one: the line is written before the answer is posted, so it is in the pipe already,
/// and only the reader task's turn is awaited.
const LOGGED_WAIT: Duration = Duration::from_secs(5);
/// How long the first invocation of a process waits, while it is not known yet whether the
/// function writes the line at all: paid once by a function that does not.
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// Lines nobody took (their invocation had stopped waiting) kept at most: a bound, not a cache.
const MAX_UNTAKEN: usize = 1_000;

/// Successes of one invocation that were not plain `ok`, by the function's own count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionCounts {
    /// Answered as duplicates (idempotency), without their work running again.
    pub duplicate: usize,
    /// Ignored: they needed no work.
    pub ignored: usize,
    /// Messages whose visibility the function set itself before it answered (its back-off):
    /// when these are all it did not succeed with, they come back when it said, not at the end
    /// of the queue's visibility timeout.
    pub requeued: usize,
}

/// What the function's log said about one invocation.
#[derive(Debug, Default)]
pub struct Logged {
    /// Its `batch done` line's counts, when it wrote one.
    pub counts: Option<FunctionCounts>,
    /// The handler's metrics from the Embedded Metric Format lines it wrote meanwhile
    /// ([`sqs_batch::metrics`]): an environment runs one invocation at a time, so the lines read
    /// between two answers are the invocation's. An `sqs-batch` function writes its EMF line
    /// before its `batch done` line, so it is in by the time the counts are.
    pub metrics: sqs_batch::metrics::Metrics,
}

/// What one execution environment's log said, shared by its reader task and its invocations.
#[derive(Debug, Default)]
pub(crate) struct LoggedCounts {
    by_request: Mutex<HashMap<String, FunctionCounts>>,
    /// The handler's metrics read since the last invocation took them.
    metrics: Mutex<sqs_batch::metrics::Metrics>,
    arrived: Notify,
    /// `None` until known; then whether the function writes `batch done` lines.
    writes_them: Mutex<Option<bool>>,
}

impl LoggedCounts {
    fn writes_them(&self) -> std::sync::MutexGuard<'_, Option<bool>> {
        self.writes_them.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove(&self, request_id: &str) -> Option<FunctionCounts> {
        self.by_request.lock().unwrap_or_else(PoisonError::into_inner).remove(request_id)
    }

    /// A `batch done` line was read.
    pub(crate) fn record(&self, request_id: String, counts: FunctionCounts) {
        {
            let mut by_request = self.by_request.lock().unwrap_or_else(PoisonError::into_inner);
            if by_request.len() >= MAX_UNTAKEN {
                by_request.clear();
            }
            by_request.insert(request_id, counts);
        }
        *self.writes_them() = Some(true);
        self.arrived.notify_waiters();
    }

    /// An Embedded Metric Format line was read.
    pub(crate) fn record_metrics(&self, metrics: &sqs_batch::metrics::Metrics) {
        self.metrics.lock().unwrap_or_else(PoisonError::into_inner).merge(metrics);
    }

    /// What the log said about the invocation `request_id`, once it was answered (see
    /// [`LoggedCounts::take`]).
    pub(crate) async fn take_logged(&self, request_id: &str) -> Logged {
        let counts = self.take(request_id).await;
        let metrics = std::mem::take(&mut *self.metrics.lock().unwrap_or_else(PoisonError::into_inner));
        Logged { counts, metrics }
    }

    /// The counts of the invocation `request_id`, once it was answered: waits for its line while
    /// the function may write one.
    pub(crate) async fn take(&self, request_id: &str) -> Option<FunctionCounts> {
        let wait = match *self.writes_them() {
            Some(true) => LOGGED_WAIT,
            None => FIRST_WAIT,
            Some(false) => return self.remove(request_id),
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(counts) = self.remove(request_id) {
                return Some(counts);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let mut writes_them = self.writes_them();
                if writes_them.is_none() {
                    *writes_them = Some(false);
                } else {
                    tracing::debug!(request_id, "no batch done line from the function for this invocation");
                }
                return None;
            }
        }
    }
}

/// The request id and counts of a `batch done` line of an `sqs-batch` function (its JSON log
/// format, Lambda's default for it); `None` for any other line.
pub(crate) fn batch_done(line: &str) -> Option<(String, FunctionCounts)> {
    if !line.contains("\"batch done\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields").unwrap_or(&value);
    if value.get("message").or_else(|| fields.get("message"))?.as_str()? != "batch done" {
        return None;
    }
    let request_id = fields.get("request_id")?.as_str()?.to_owned();
    let count = |name: &str| fields.get(name).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let counts = FunctionCounts {
        duplicate: usize::try_from(count("duplicate")).unwrap_or(usize::MAX),
        ignored: usize::try_from(count("ignored")).unwrap_or(usize::MAX),
        requeued: usize::try_from(count("requeued")).unwrap_or(usize::MAX),
    };
    Some((request_id, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_done_line_gives_its_request_and_counts_and_other_lines_nothing() {
        let line = r#"{"timestamp":"t","level":"INFO","message":"batch done","request_id":"r-1","records":10,"ok":6,"duplicate":2,"ignored":1,"failed":1,"requeued":1}"#;
        assert_eq!(
            batch_done(line),
            Some(("r-1".into(), FunctionCounts { duplicate: 2, ignored: 1, requeued: 1 }))
        );
        let nested = r#"{"fields":{"message":"batch done","request_id":"r-2","duplicate":3}}"#;
        assert_eq!(
            batch_done(nested),
            Some(("r-2".into(), FunctionCounts { duplicate: 3, ..FunctionCounts::default() }))
        );
        for other in [
            r#"{"message":"handled","outcome":"ok","id":"batch done"}"#,
            r#"{"message":"batch done"}"#,
            "batch done request_id=r-3 duplicate=1",
            r#"{"message":"batch done","request_id":"#,
            "",
        ] {
            assert_eq!(batch_done(other), None, "{other}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_invocation_takes_the_counts_of_its_own_line_once() {
        let logged = LoggedCounts::default();
        let counts = FunctionCounts { duplicate: 1, ..FunctionCounts::default() };
        logged.record("a".into(), counts);
        assert_eq!(logged.take("a").await, Some(counts));
        let started = tokio::time::Instant::now();
        assert_eq!(logged.take("a").await, None, "taken once");
        assert_eq!(started.elapsed(), LOGGED_WAIT, "a function that writes them is waited for");
    }

    #[tokio::test(start_paused = true)]
    async fn a_function_that_writes_no_line_is_waited_for_once() {
        let logged = LoggedCounts::default();
        let started = tokio::time::Instant::now();
        assert_eq!(logged.take("a").await, None);
        assert_eq!(started.elapsed(), FIRST_WAIT);
        assert_eq!(logged.take("b").await, None);
        assert_eq!(started.elapsed(), FIRST_WAIT, "not again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_line_read_after_the_answer_is_still_taken() {
        let logged = std::sync::Arc::new(LoggedCounts::default());
        let later = std::sync::Arc::clone(&logged);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            later.record("a".into(), FunctionCounts { ignored: 4, ..FunctionCounts::default() });
        });
        assert_eq!(logged.take("a").await, Some(FunctionCounts { ignored: 4, ..FunctionCounts::default() }));
    }
}
