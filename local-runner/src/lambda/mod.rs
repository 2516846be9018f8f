//! Running the real Lambda binary locally: a pool of execution environments (processes of the
//! bootstrap, each with its own Runtime API) behind an emulated SQS event source mapping.

mod environment;
mod runtime_api;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
/// The payload type of [`LambdaPool::invoke`].
pub use axum::body::Bytes;
use handler::{BatchReport, HandlerError, Outcome};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use environment::Environment;
pub use environment::InvokeError;
use runtime_api::Reply;

use crate::executor::BatchExecutor;
use crate::template::FunctionSpec;

/// The function as Lambda would run it, and how its event source mapping treats its answers.
#[derive(Debug, Clone)]
pub struct LambdaSpec {
    /// The bootstrap binary.
    pub bootstrap: PathBuf,
    /// The function name (the template's logical id).
    pub function_name: String,
    /// `MemorySize`, passed as `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub memory_mb: u64,
    /// `Timeout`: an invocation running longer is killed.
    pub timeout: Duration,
    /// The function's environment variables.
    pub environment: BTreeMap<String, String>,
    /// `LoggingConfig.LogFormat`, as `AWS_LAMBDA_LOG_FORMAT`.
    pub log_format: Option<String>,
    /// `LoggingConfig.ApplicationLogLevel`, as `AWS_LAMBDA_LOG_LEVEL`.
    pub log_level: Option<String>,
    /// The region.
    pub region: String,
    /// The SQS endpoint the runner uses; a local one is passed on as `AWS_ENDPOINT_URL` with
    /// dummy credentials, so the function's own AWS calls reach the same emulator.
    pub endpoint_url: Option<String>,
    /// `ReportBatchItemFailures`: delete all but the reported items. Without it, any error
    /// fails the whole batch.
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency`: execution environments at most.
    pub max_concurrency: usize,
}

impl LambdaSpec {
    /// The function as `template.yaml` describes it (its first SQS event), run from
    /// `bootstrap` against `endpoint_url` in `region`, with at most `max_concurrency`
    /// environments. Fields may be overridden afterwards (the CLI's `--function-timeout`).
    #[must_use]
    pub fn from_template(
        function: &FunctionSpec,
        bootstrap: PathBuf,
        region: String,
        endpoint_url: Option<String>,
        max_concurrency: usize,
    ) -> Self {
        Self {
            bootstrap,
            function_name: function.logical_id.clone(),
            memory_mb: function.memory_mb,
            timeout: function.timeout,
            environment: function.environment.clone(),
            log_format: function.log_format.clone(),
            log_level: function.log_level.clone(),
            region,
            endpoint_url,
            report_batch_item_failures: function
                .sqs_events
                .first()
                .is_some_and(|e| e.report_batch_item_failures),
            max_concurrency,
        }
    }

    fn function_arn(&self) -> String {
        format!("arn:aws:lambda:{}:000000000000:function:{}", self.region, self.function_name)
    }

    /// The environment of a bootstrap process: Lambda's reserved variables, then the function's.
    fn process_environment(&self, index: usize, api: SocketAddr) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", self.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", self.memory_mb.to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.function_name)),
            ("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/[$LATEST]{index:032x}")),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_DEFAULT_REGION", self.region.clone()),
            ("_HANDLER", "bootstrap".to_owned()),
            (
                "LAMBDA_TASK_ROOT",
                self.bootstrap.parent().map(|p| p.display().to_string()).unwrap_or_default(),
            ),
            ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
            ("LANG", "en_US.UTF-8".to_owned()),
            ("TZ", ":UTC".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(format) = &self.log_format {
            env.push(("AWS_LAMBDA_LOG_FORMAT".into(), format.clone()));
        }
        if let Some(level) = &self.log_level {
            env.push(("AWS_LAMBDA_LOG_LEVEL".into(), level.clone()));
        }
        if let Some(endpoint) = self.endpoint_url.as_deref().filter(|e| crate::sqs::is_local_endpoint(e)) {
            env.push(("AWS_ENDPOINT_URL".into(), endpoint.to_owned()));
            env.push(("AWS_ACCESS_KEY_ID".into(), "test".into()));
            env.push(("AWS_SECRET_ACCESS_KEY".into(), "test".into()));
        }
        env.extend(self.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }
}

/// Execution environments, started on first use and reused, at most `max_concurrency`.
pub struct LambdaPool {
    spec: Arc<LambdaSpec>,
    slots: Semaphore,
    idle: Mutex<Vec<Environment>>,
    started: Mutex<usize>,
    shutdown: CancellationToken,
}

impl LambdaPool {
    /// A pool for `spec`; its servers stop when `shutdown` is cancelled.
    #[must_use]
    pub fn new(spec: LambdaSpec, shutdown: CancellationToken) -> Self {
        let slots = Semaphore::new(spec.max_concurrency.max(1));
        Self { spec: Arc::new(spec), slots, idle: Mutex::default(), started: Mutex::new(0), shutdown }
    }

    /// Invokes the function once with `event`, in an idle environment or a new one.
    ///
    /// # Errors
    /// [`InvokeError`] when the function timed out, crashed, or could not start.
    pub async fn invoke(&self, event: Bytes) -> Result<Result<Bytes, String>, InvokeError> {
        let _slot = self.slots.acquire().await.map_err(|_| InvokeError::Spawn {
            path: self.spec.bootstrap.display().to_string(),
            reason: "the pool is closed".into(),
        })?;
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut environment = match idle {
            Some(environment) => environment,
            None => {
                let index = {
                    let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
                    *started += 1;
                    *started
                };
                Environment::start(index, Arc::clone(&self.spec), self.shutdown.clone()).await.map_err(
                    |err| InvokeError::Spawn {
                        path: "the Runtime API listener".into(),
                        reason: err.to_string(),
                    },
                )?
            }
        };
        let result = environment.invoke(event).await;
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(environment);
        result.map(|reply| match reply {
            Reply::Response(body) => Ok(body),
            Reply::Error(error) => Err(error),
        })
    }
}

/// Runs batches through the real bootstrap, as an SQS event source mapping does.
pub struct LambdaExecutor {
    pool: LambdaPool,
    report_batch_item_failures: bool,
}

impl LambdaExecutor {
    /// An executor over a pool for `spec`.
    #[must_use]
    pub fn new(spec: LambdaSpec, shutdown: CancellationToken) -> Self {
        let report_batch_item_failures = spec.report_batch_item_failures;
        Self { pool: LambdaPool::new(spec, shutdown), report_batch_item_failures }
    }
}

impl BatchExecutor for LambdaExecutor {
    /// An invocation cannot be stopped halfway; `stop` is not consulted once it is sent.
    async fn execute(&self, records: &[SqsMessage], _stop: &CancellationToken) -> BatchReport {
        let mut event = SqsEvent::default();
        event.records = records.to_vec();
        let all_failed = |why: String| BatchReport {
            outcomes: records.iter().map(|_| Outcome::Failed(HandlerError::Transient(why.clone()))).collect(),
        };
        let body = match serde_json::to_vec(&event) {
            Ok(body) => Bytes::from(body),
            Err(err) => return all_failed(format!("cannot serialise the event: {err}")),
        };
        match self.pool.invoke(body).await {
            Err(err) => {
                tracing::warn!(error = %err, records = records.len(), "invocation failed; the whole batch returns to the queue");
                all_failed(format!("invocation failed: {err}"))
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, records = records.len(), "the function returned an error; the whole batch returns to the queue");
                all_failed(format!("function error: {error}"))
            }
            Ok(Ok(response)) if self.report_batch_item_failures => partial_report(records, &response),
            Ok(Ok(_)) => BatchReport { outcomes: records.iter().map(|_| Outcome::Succeeded).collect() },
        }
    }
}

/// Applies a partial batch response as Lambda does: listed items failed, the rest succeeded; a
/// response that cannot be parsed, or that names an item not in the batch, fails the whole batch.
fn partial_report(records: &[SqsMessage], response: &[u8]) -> BatchReport {
    let all_failed = |why: &str| BatchReport {
        outcomes: records.iter().map(|_| Outcome::Failed(HandlerError::Transient(why.to_owned()))).collect(),
    };
    // An empty or null response means no failures.
    let trimmed = response.trim_ascii();
    if trimmed.is_empty() || trimmed == b"null" || trimmed == b"{}" {
        return BatchReport { outcomes: records.iter().map(|_| Outcome::Succeeded).collect() };
    }
    let Ok(parsed) = serde_json::from_slice::<SqsBatchResponse>(trimmed) else {
        tracing::warn!("the function's response is not a partial batch response; failing the whole batch");
        return all_failed("invalid partial batch response");
    };
    let failed: Vec<&str> = parsed.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    let known = |id: &&str| records.iter().any(|r| r.message_id.as_deref() == Some(id));
    if failed.iter().any(|id| id.is_empty() || !known(id)) {
        tracing::warn!(
            "the partial batch response names an item that is not in the batch; failing the whole batch"
        );
        return all_failed("partial batch response names an unknown item");
    }
    let outcomes = records
        .iter()
        .map(|record| match record.message_id.as_deref() {
            Some(id) if failed.contains(&id) => {
                Outcome::Failed(HandlerError::Transient("reported in batchItemFailures".into()))
            }
            _ => Outcome::Succeeded,
        })
        .collect();
    BatchReport { outcomes }
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

    fn successes(report: &BatchReport) -> Vec<bool> {
        report.outcomes.iter().map(Outcome::is_success).collect()
    }

    #[test]
    fn listed_items_fail_and_the_rest_succeed() {
        let report =
            partial_report(&records(&["a", "b", "c"]), br#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#);
        assert_eq!(successes(&report), [true, false, true]);
    }

    #[test]
    fn an_empty_or_null_response_means_all_succeeded() {
        for body in [&b""[..], b"null", b"{}", br#"{"batchItemFailures":[]}"#] {
            assert_eq!(successes(&partial_report(&records(&["a", "b"]), body)), [true, true]);
        }
    }

    #[test]
    fn an_unknown_or_empty_item_identifier_fails_the_whole_batch() {
        for body in [
            &br#"{"batchItemFailures":[{"itemIdentifier":"zzz"}]}"#[..],
            br#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
        ] {
            assert_eq!(successes(&partial_report(&records(&["a", "b"]), body)), [false, false]);
        }
    }

    #[test]
    fn a_response_that_is_not_a_partial_batch_response_fails_the_whole_batch() {
        assert_eq!(successes(&partial_report(&records(&["a"]), b"[1,2]")), [false]);
    }
}
