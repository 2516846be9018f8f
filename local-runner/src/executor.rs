//! What runs a received batch: the handler in this process, or the real Lambda binary.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use handler::{BatchOptions, BatchReport, Handler, SqsMessage, process_batch};
use tokio_util::sync::CancellationToken;

/// Turns a Lambda-shaped batch into one outcome per record.
pub trait BatchExecutor: Send + Sync + 'static {
    /// Runs the batch. Messages not started once `stop` is cancelled are reported as such.
    fn execute(
        &self,
        records: &[SqsMessage],
        stop: &CancellationToken,
    ) -> impl Future<Output = BatchReport> + Send;
}

/// The handler, run in this process through the batch core.
pub struct InProcess<H> {
    handler: Arc<H>,
    deadline: Option<(Duration, Duration)>,
}

impl<H> InProcess<H> {
    /// Runs `handler` with every message of a batch at once (the runner's in-flight limit
    /// already bounds how many messages it holds).
    pub fn new(handler: Arc<H>) -> Self {
        Self { handler, deadline: None }
    }

    /// Gives each batch Lambda's deadline semantics: `timeout` after the batch starts, minus
    /// `reserve`, no further message starts and those not started are reported failed.
    #[must_use]
    pub fn with_deadline(mut self, timeout: Duration, reserve: Duration) -> Self {
        self.deadline = Some((timeout, reserve));
        self
    }
}

impl<H: Handler + 'static> BatchExecutor for InProcess<H> {
    async fn execute(&self, records: &[SqsMessage], stop: &CancellationToken) -> BatchReport {
        let options =
            BatchOptions { max_concurrency: NonZeroUsize::new(records.len()).unwrap_or(NonZeroUsize::MIN) };
        let Some((timeout, reserve)) = self.deadline else {
            return process_batch(&*self.handler, records, options, stop).await;
        };
        let batch_stop = stop.child_token();
        let batch = process_batch(&*self.handler, records, options, &batch_stop);
        tokio::pin!(batch);
        tokio::select! {
            report = &mut batch => report,
            () = tokio::time::sleep(timeout.saturating_sub(reserve)) => {
                tracing::warn!(timeout_secs = timeout.as_secs(), "batch deadline near: starting no further messages");
                batch_stop.cancel();
                batch.await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use handler::{ExampleHandler, Outcome};

    use super::*;

    fn record(id: &str, work_ms: u64) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.to_owned());
        record.body = Some(format!(r#"{{"id":"{id}","kind":"k","work_ms":{work_ms}}}"#));
        record.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:q.fifo".to_owned());
        record.attributes.insert("MessageGroupId".to_owned(), "g".to_owned());
        record
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_with_a_function_timeout_starts_nothing_after_the_reserve() {
        // One FIFO group, so one message at a time: 400 ms each, a 1 s timeout with 0.5 s
        // reserve. m0 runs 0-400 ms, m1 starts at 400 ms (before 500 ms) and finishes; m2 waits.
        let executor = InProcess::new(Arc::new(ExampleHandler))
            .with_deadline(Duration::from_secs(1), Duration::from_millis(500));
        let records = [record("m0", 400), record("m1", 400), record("m2", 400)];
        let report = executor.execute(&records, &CancellationToken::new()).await;
        let ok: Vec<bool> = report.outcomes.iter().map(Outcome::is_success).collect();
        assert_eq!(ok, [true, true, false]);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_function_timeout_a_long_batch_runs_to_the_end() {
        let executor = InProcess::new(Arc::new(ExampleHandler));
        let records = [record("m0", 400), record("m1", 400), record("m2", 400)];
        let report = executor.execute(&records, &CancellationToken::new()).await;
        assert!(report.outcomes.iter().all(Outcome::is_success));
    }
}
