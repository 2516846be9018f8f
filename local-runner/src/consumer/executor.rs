//! What runs a received batch: a handler in this process, or (implemented one level up, in the
//! `lambda` folder) the real Lambda binary.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqs_batch::{BatchReport, Handler, Options, Run, SqsMessage, process_batch};
use tokio_util::sync::CancellationToken;

/// How a batch ended.
#[derive(Debug)]
pub struct Execution {
    /// One outcome per record.
    pub report: BatchReport,
    /// The invocation failed as a whole (a function error, a timeout, a crash, or every message
    /// failed with `FAIL_ON_FULL_BATCH_FAILURE`): the pollers back off, as Lambda's event source
    /// mapping does.
    pub failed_whole: bool,
}

/// Turns a Lambda-shaped batch into one outcome per record.
pub trait BatchExecutor: Send + Sync + 'static {
    /// Runs the batch. Once `stop` is cancelled no further message starts; once `abandon` is,
    /// messages still running are given up and reported as such.
    fn execute(
        &self,
        records: &Arc<[SqsMessage]>,
        stop: &CancellationToken,
        abandon: &CancellationToken,
    ) -> impl Future<Output = Execution> + Send;
}

/// A handler run in this process through the batch core, with the function's options.
#[derive(Debug)]
pub struct InProcess<H> {
    handler: Arc<H>,
    options: Options,
    function_timeout: Option<Duration>,
}

impl<H> InProcess<H> {
    /// Runs `handler` with `options` (concurrency, deadline reserve, full-batch failures).
    pub fn new(handler: Arc<H>, options: Options) -> Self {
        Self { handler, options, function_timeout: None }
    }

    /// Gives each batch Lambda's deadline: `timeout` after the batch starts. Messages not started
    /// before the deadline reserve are reported failed, and handlers see the deadline.
    #[must_use]
    pub fn with_function_timeout(mut self, timeout: Duration) -> Self {
        self.function_timeout = Some(timeout);
        self
    }
}

impl<H: Handler> BatchExecutor for InProcess<H> {
    async fn execute(
        &self,
        records: &Arc<[SqsMessage]>,
        stop: &CancellationToken,
        abandon: &CancellationToken,
    ) -> Execution {
        let mut run = Run::new(&self.options).stop_on(stop.clone()).abandon_on(abandon.clone());
        if let Some(timeout) = self.function_timeout {
            run = run.deadline(SystemTime::now() + timeout);
        }
        let report = process_batch(&self.handler, records, &run).await;
        let failed_whole = self.options.fail_on_full_batch_failure && report.all_failed();
        Execution { report, failed_whole }
    }
}
