//! What runs a received batch: a handler in this process, or (implemented one level up, in the
//! `lambda` folder) the real Lambda binary.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqs_batch::{BatchReport, Handler, Options, Run, SqsMessage, process_batch};
use tokio_util::sync::CancellationToken;

use crate::error::RunnerError;

/// How a batch ended.
#[derive(Debug)]
pub struct Execution {
    /// One outcome per record.
    pub report: BatchReport,
    /// The invocation failed as a whole (a function error, a timeout, a crash, or every message
    /// failed with `FAIL_ON_FULL_BATCH_FAILURE`): the pollers back off, as Lambda's event source
    /// mapping does.
    pub failed_whole: bool,
    /// The run cannot go on (the function cannot start): it stops, and this is its error. The
    /// report then holds the batch as not started, so its messages are released at once.
    pub fatal: Option<RunnerError>,
}

impl Execution {
    /// A batch that ran: one outcome per record.
    #[must_use]
    pub fn ran(report: BatchReport, failed_whole: bool) -> Self {
        Self { report, failed_whole, fatal: None }
    }
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

    /// Whether what runs the batch sets its failed messages' visibility itself (the Lambda
    /// function does, as deployed); else the runner does, as it settles the batch.
    fn requeues_failures(&self) -> bool {
        false
    }
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
            // Past what the clock holds there is no deadline to keep.
            if let Some(deadline) = SystemTime::now().checked_add(timeout) {
                run = run.deadline(deadline);
            }
        }
        let report = process_batch(&self.handler, records, &run).await;
        let failed_whole = report.fails_the_invocation(&self.options);
        Execution::ran(report, failed_whole)
    }
}
