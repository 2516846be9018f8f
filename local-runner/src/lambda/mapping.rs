//! The emulated event source mapping's side of an invocation: the batch as an SQS event in, the
//! function's answer applied to the batch as Lambda applies it.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use axum::body::Bytes;
use serde_json::Value;
use sqs_batch::runtime::retry::Backoff;
use sqs_batch::runtime::{BatchReport, Records};
use sqs_batch::{Error, NotStarted, Outcome, SqsMessage};
use tokio_util::sync::CancellationToken;

use super::{FunctionCounts, InvokeError, LambdaPool, LambdaSpec, Logged};
use crate::consumer::{BatchExecutor, Execution, Mode};
use crate::error::RunnerError;
use crate::template::SqsEventSpec;

/// Execution environments when the template sets no `ScalingConfig.MaximumConcurrency`: the
/// five pollers an event source mapping starts with.
pub const DEFAULT_MAX_CONCURRENCY: NonZeroUsize = NonZeroUsize::new(5).expect("5 is not zero");

/// An SQS event source mapping's settings: the function's SQS event in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// `BatchSize`: messages per invocation (up to 10,000 on a standard queue).
    pub batch_size: NonZeroUsize,
    /// `MaximumBatchingWindowInSeconds`: how long to gather a batch.
    pub batching_window: Duration,
    /// `ScalingConfig.MaximumConcurrency`: invocations at once, one environment each.
    pub max_concurrency: NonZeroUsize,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`: delete all but the reported items.
    /// Without it, any error fails the whole batch.
    pub report_batch_item_failures: bool,
    /// `MetricsConfig: {Metrics: [EventCount]}`.
    pub event_count_metrics: bool,
}

impl Mapping {
    /// The mapping of a function's SQS event.
    #[must_use]
    pub fn from_template(event: &SqsEventSpec) -> Self {
        let positive = |n: u64| usize::try_from(n).ok().and_then(NonZeroUsize::new);
        Self {
            batch_size: positive(event.batch_size).unwrap_or(NonZeroUsize::MIN),
            batching_window: event.batching_window,
            max_concurrency: event.max_concurrency.and_then(positive).unwrap_or(DEFAULT_MAX_CONCURRENCY),
            report_batch_item_failures: event.report_batch_item_failures,
            event_count_metrics: event.event_count_metrics,
        }
    }
}

/// Runs batches through the real bootstrap, as an SQS event source mapping does: batches of
/// `BatchSize` gathered within the batching window, at most `MaximumConcurrency` invocations at
/// once, partial batch responses applied as Lambda applies them.
///
/// Lambda's event source mapping does not extend visibility, so its mode has no heartbeat;
/// failures are spaced out by the function itself (its `RETRY_BACKOFF_*` variables), as deployed.
/// The execution environments' processes and servers stop when the executor is dropped.
pub struct LambdaExecutor {
    pool: LambdaPool,
    function: String,
    mode: Mode,
    report_batch_item_failures: bool,
    servers: CancellationToken,
}

impl LambdaExecutor {
    /// An executor for `function` behind `mapping`, whose failures come back after
    /// `retry_backoff`: the back-off the function applies itself, read from its variables once
    /// (`local-runner`'s plan does), which the runner counts on to know when they are due back.
    #[must_use]
    pub fn new(function: LambdaSpec, mapping: &Mapping, retry_backoff: Option<Backoff>) -> Self {
        let mode = Mode::Lambda {
            batch_size: mapping.batch_size,
            batching_window: mapping.batching_window,
            max_concurrency: mapping.max_concurrency,
            retry_backoff,
        };
        let name = function.function_name.clone();
        let servers = CancellationToken::new();
        let pool = LambdaPool::new(function, mapping.max_concurrency, servers.clone());
        Self {
            pool,
            function: name,
            mode,
            report_batch_item_failures: mapping.report_batch_item_failures,
            servers,
        }
    }

    fn cannot_start(&self, error: InvokeError) -> RunnerError {
        RunnerError::FunctionCannotStart { function: self.function.clone(), source: Box::new(error) }
    }
}

impl Drop for LambdaExecutor {
    fn drop(&mut self) {
        self.servers.cancel();
    }
}

impl BatchExecutor for LambdaExecutor {
    fn mode(&self) -> Mode {
        self.mode.clone()
    }

    /// Starts the first execution environment and waits for its init, before any message is
    /// received for it: [`RunnerError::FunctionCannotStart`] when it is not executable, exits at
    /// once or fails its init.
    async fn start(&self) -> Result<(), RunnerError> {
        self.pool.warm_up().await.map_err(|err| self.cannot_start(err))
    }

    /// An invocation cannot be stopped halfway: `stop` is not consulted once it is sent, and
    /// `abandon` gives up the whole invocation (its process is killed).
    async fn execute(
        &self,
        batch: Records,
        _stop: &CancellationToken,
        abandon: &CancellationToken,
    ) -> Execution {
        let records = &Arc::clone(batch.records());
        let mut event = SqsEvent::default();
        event.records = batch.into_whole();
        let body = match serde_json::to_vec(&event) {
            Ok(body) => Bytes::from(body),
            Err(err) => return failed_whole(records, &format!("cannot serialise the event: {err}")),
        };
        let answer = tokio::select! {
            answer = self.pool.invoke_counted(body) => answer,
            () = abandon.cancelled() => {
                let report = BatchReport::new(records.iter().map(|_| Outcome::Abandoned).collect());
                return Execution::ran(report, false);
            }
        };
        match answer {
            Err(err) if err.is_start_failure() => {
                // The function never saw these: released at once, and the run stops.
                let outcomes = records.iter().map(|_| Outcome::NotStarted(NotStarted::Stopped)).collect();
                Execution {
                    report: BatchReport::new(outcomes),
                    failed_whole: false,
                    fatal: Some(self.cannot_start(err)),
                    failures_requeued: false,
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, records = records.len(), "invocation failed; the whole batch returns to the queue");
                failed_whole(records, &format!("invocation failed: {err}"))
            }
            Ok((Err(error), _)) => {
                tracing::warn!(
                    error_type = %error.error_type,
                    error = %error.message,
                    records = records.len(),
                    "the function returned an error; the whole batch returns to the queue"
                );
                failed_whole(records, &format!("function error: {error}"))
            }
            Ok((Ok(response), counts)) if self.report_batch_item_failures => {
                with_counts(partial_report(records, &response), counts)
            }
            Ok((Ok(_), counts)) => with_counts(
                Execution::ran(BatchReport::new(records.iter().map(|_| Outcome::Succeeded).collect()), false),
                counts,
            ),
        }
    }
}

/// The function's own count of duplicates and ignored messages ([`FunctionCounts`], from its
/// `batch done` line), applied to the successes of its answer: a partial batch response cannot
/// say which successes they were, so the first successes are counted so, which is all the
/// summary and the metrics read (each success is deleted alike). Never more than there are.
fn with_counts(mut execution: Execution, logged: Logged) -> Execution {
    execution.report.metrics = logged.metrics;
    let Some(FunctionCounts { mut duplicate, mut ignored, requeued }) = logged.counts else {
        return execution;
    };
    let unsuccessful = execution.report.outcomes.iter().filter(|outcome| !outcome.is_success()).count();
    execution.failures_requeued = requeued >= unsuccessful;
    for outcome in &mut execution.report.outcomes {
        if !matches!(outcome, Outcome::Succeeded) {
            continue;
        }
        if duplicate > 0 {
            *outcome = Outcome::Duplicate;
            duplicate -= 1;
        } else if ignored > 0 {
            *outcome = Outcome::Ignored("counted by the function's batch done line".into());
            ignored -= 1;
        } else {
            break;
        }
    }
    execution
}

/// Every record failed because the invocation did.
fn failed_whole(records: &[SqsMessage], why: &str) -> Execution {
    let outcomes = records.iter().map(|_| Outcome::Failed(Error::transient(why.to_owned()))).collect();
    Execution::ran(BatchReport::new(outcomes), true)
}

/// Applies a partial batch response as Lambda does:
/// - an empty response, `null`, `{}`, or `batchItemFailures` empty or `null`: every record
///   succeeded;
/// - the records listed by `itemIdentifier` failed, the others succeeded;
/// - an `itemIdentifier` that is empty, `null`, missing or not a message of the batch, a list
///   entry that is not an object, or a response that is not valid JSON or not an object: the
///   whole batch failed.
fn partial_report(records: &[SqsMessage], response: &[u8]) -> Execution {
    match failed_items(records, response) {
        Ok(failed) => {
            let outcomes = records
                .iter()
                .map(|record| match record.message_id.as_deref() {
                    Some(id) if failed.contains(&id) => Outcome::Failed(Error::transient(
                        "listed in the function's batchItemFailures (its log says why)",
                    )),
                    _ => Outcome::Succeeded,
                })
                .collect();
            Execution::ran(BatchReport::new(outcomes), false)
        }
        Err(why) => {
            tracing::warn!(%why, "the function's partial batch response fails the whole batch");
            failed_whole(records, why)
        }
    }
}

/// The message ids a partial batch response lists; why the whole batch failed when it cannot
/// be applied.
fn failed_items<'r>(records: &'r [SqsMessage], response: &[u8]) -> Result<Vec<&'r str>, &'static str> {
    let trimmed = response.trim_ascii();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let parsed: Value = serde_json::from_slice(trimmed).map_err(|_| "the response is not valid JSON")?;
    let items = match &parsed {
        Value::Null => return Ok(Vec::new()),
        Value::Object(object) => match object.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err("batchItemFailures is not a list"),
        },
        _ => return Err("the response is not a partial batch response object"),
    };
    items
        .iter()
        .map(|item| {
            let id = match item.get("itemIdentifier") {
                Some(Value::String(id)) if !id.is_empty() => id,
                Some(Value::String(_)) => return Err("an itemIdentifier is empty"),
                Some(Value::Null) => return Err("an itemIdentifier is null"),
                None => return Err("an entry has no itemIdentifier"),
                Some(_) => return Err("an itemIdentifier is not a string"),
            };
            records
                .iter()
                .filter_map(|r| r.message_id.as_deref())
                .find(|known| known == id)
                .ok_or("an itemIdentifier names no message of the batch")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(ids: &[&str]) -> Vec<SqsMessage> {
        ids.iter()
            .map(|id| {
                let mut record = SqsMessage::default();
                record.message_id = Some((*id).to_owned());
                record
            })
            .collect()
    }

    fn successes(execution: &Execution) -> Vec<bool> {
        execution.report.outcomes.iter().map(Outcome::is_success).collect()
    }

    #[test]
    fn listed_items_fail_and_the_rest_succeed() {
        let report =
            partial_report(&records(&["a", "b", "c"]), br#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#);
        assert_eq!(successes(&report), [true, false, true]);
        assert!(!report.failed_whole);
    }

    #[test]
    fn an_empty_or_null_response_or_list_means_all_succeeded() {
        for body in [
            &b""[..],
            b"  ",
            b"null",
            b"{}",
            br#"{"batchItemFailures":[]}"#,
            br#"{"batchItemFailures":null}"#,
        ] {
            assert_eq!(
                successes(&partial_report(&records(&["a", "b"]), body)),
                [true, true],
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn an_item_identifier_that_is_empty_null_missing_or_unknown_fails_the_whole_batch() {
        for body in [
            &br#"{"batchItemFailures":[{"itemIdentifier":"zzz"}]}"#[..],
            br#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            br#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            br#"{"batchItemFailures":[{}]}"#,
            br#"{"batchItemFailures":["a"]}"#,
            br#"{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"zzz"}]}"#,
        ] {
            let report = partial_report(&records(&["a", "b"]), body);
            assert_eq!(successes(&report), [false, false], "{}", String::from_utf8_lossy(body));
            assert!(report.failed_whole);
        }
    }

    #[test]
    fn a_response_that_is_not_a_partial_batch_response_fails_the_whole_batch() {
        for body in [&b"[1,2]"[..], b"not json", br#""ok""#, br#"{"batchItemFailures":"a"}"#] {
            assert_eq!(
                successes(&partial_report(&records(&["a"]), body)),
                [false],
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
