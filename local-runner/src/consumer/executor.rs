//! What runs a received batch: a handler in this process, or (implemented one level up, in the
//! `lambda` folder) the real Lambda binary.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqs_batch::runtime::{BatchReport, Records, Run, process_batch};
use sqs_batch::{Handler, Options};
use tokio_util::sync::CancellationToken;

use super::Mode;
use crate::aws::MAX_RECEIVE;
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
    /// The function set the visibility of every message it did not succeed with (its back-off),
    /// as its log said: those come back when it said. Otherwise the runner does not assume it
    /// did, and they come back when the visibility timeout of their receive runs out.
    pub failures_requeued: bool,
}

impl Execution {
    /// A batch that ran: one outcome per record.
    #[must_use]
    pub fn ran(report: BatchReport, failed_whole: bool) -> Self {
        Self { report, failed_whole, fatal: None, failures_requeued: false }
    }
}

/// Turns a Lambda-shaped batch into one outcome per record. What runs the batches also says how
/// they are gathered and settled ([`BatchExecutor::mode`]): the consumer asks it, so one
/// [`super::run`] serves every mode.
pub trait BatchExecutor: Send + Sync + 'static {
    /// Runs the batch: its records, their bodies apart (the consumer keeps the records, without
    /// bodies, to settle them). Once `stop` is cancelled no further message starts; once `abandon`
    /// is, messages still running are given up and reported as such.
    fn execute(
        &self,
        records: Records,
        stop: &CancellationToken,
        abandon: &CancellationToken,
    ) -> impl Future<Output = Execution> + Send;

    /// How batches are gathered and settled for this executor. By default as in process, with
    /// neither a heartbeat nor a back-off: one receive is one batch, and failures come back at
    /// the queue's visibility timeout.
    fn mode(&self) -> Mode {
        Mode::in_process(MAX_RECEIVE, None, false)
    }

    /// Gets ready before anything is received: an executor that cannot run a batch stops the run
    /// at once instead of taking messages from the queue. Ready at once by default.
    fn start(&self) -> impl Future<Output = Result<(), RunnerError>> + Send {
        std::future::ready(Ok(()))
    }
}

/// A handler run in this process through the batch core, with the function's options.
#[derive(Debug)]
pub struct InProcess<H> {
    handler: Arc<H>,
    options: Options,
    function_timeout: Option<Duration>,
    heartbeat: bool,
    batch_size: u8,
}

impl<H> InProcess<H> {
    /// Runs `handler` with `options` (concurrency, deadline reserve, full-batch failures, and
    /// the retry back-off the runner gives failures), with a heartbeat, in batches of up to 10
    /// (one receive's worth).
    pub fn new(handler: Arc<H>, options: Options) -> Self {
        Self { handler, options, function_timeout: None, heartbeat: true, batch_size: MAX_RECEIVE }
    }

    /// Batches of up to `messages`: one receive's worth, so 1..=10 (a value outside is brought
    /// into that range).
    #[must_use]
    pub fn with_batch_size(mut self, messages: u8) -> Self {
        self.batch_size = messages;
        self
    }

    /// Leaves running messages' visibility alone, as Lambda's event source mapping does: one that
    /// outlasts the queue's visibility timeout is delivered again while it runs.
    #[must_use]
    pub fn without_heartbeat(mut self) -> Self {
        self.heartbeat = false;
        self
    }

    /// Gives each batch Lambda's function timeout, enforced as Lambda enforces it
    /// ([`sqs_batch::runtime::Run::timeout`]): messages not started before the deadline reserve are
    /// reported failed, handlers see the deadline, and a message still running at the deadline
    /// is stopped there and fails as timed out (the batch then counts as a failed invocation, so
    /// the pollers back off as the event source mapping does after a timeout).
    #[must_use]
    pub fn with_function_timeout(mut self, timeout: Duration) -> Self {
        self.function_timeout = Some(timeout);
        self
    }
}

impl<H: Handler> BatchExecutor for InProcess<H> {
    fn mode(&self) -> Mode {
        Mode::in_process(self.batch_size, self.options.retry, self.heartbeat)
    }

    async fn execute(
        &self,
        records: Records,
        stop: &CancellationToken,
        abandon: &CancellationToken,
    ) -> Execution {
        let mut run = Run::new(&self.options).stop_on(stop.clone()).abandon_on(abandon.clone());
        if let Some(timeout) = self.function_timeout {
            run = run.timeout(timeout);
        }
        let report = process_batch(&self.handler, records, &run).await;
        let failed_whole = report.fails_the_invocation(&self.options) || report.timed_out();
        Execution::ran(report, failed_whole)
    }
}
