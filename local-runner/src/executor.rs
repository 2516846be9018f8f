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
