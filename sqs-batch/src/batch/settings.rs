//! How one batch is run: its limits, its deadline, and the signals that end it early.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::trace::TraceContext;

use crate::options::{FifoMode, Options};

/// How one batch is run: its limits, and the signals that end it early.
#[derive(Debug, Clone)]
pub struct Run {
    /// The most messages (FIFO: message groups) running at once.
    pub concurrency: NonZeroUsize,
    /// The invocation's deadline, if it has one.
    pub deadline: Option<SystemTime>,
    /// Time kept in hand before the deadline: no message starts after `deadline - reserve`.
    pub deadline_reserve: Duration,
    /// The function timeout this run enforces itself ([`Run::timeout`]): at the deadline, the
    /// messages still running are stopped and fail as [`super::TimedOut`]. `None` under Lambda,
    /// which stops the whole process there instead.
    pub timeout: Option<Duration>,
    /// Cancelled: start no further message (a shutdown). Running messages finish.
    pub stop: CancellationToken,
    /// Cancelled: stop waiting for running messages (a shutdown whose time ran out).
    pub abandon: CancellationToken,
    /// The Lambda invocation's request id: a correlation field of every line logged while one
    /// of its messages is handled.
    pub request_id: Option<Arc<str>>,
    /// The Lambda invocation's own trace (its context's X-Ray trace id), if it has one.
    pub invocation_trace: Option<TraceContext>,
    /// What a failure in a FIFO batch stops.
    pub fifo: FifoMode,
}

impl Run {
    /// A run with the function's options, no deadline, and signals that never fire.
    #[must_use]
    pub fn new(options: &Options) -> Self {
        Self {
            concurrency: options.concurrency,
            deadline: None,
            deadline_reserve: options.deadline_reserve,
            timeout: None,
            stop: CancellationToken::new(),
            abandon: CancellationToken::new(),
            request_id: None,
            invocation_trace: None,
            fifo: options.fifo,
        }
    }

    /// This run as part of the trace `trace`: the invocation's own.
    #[must_use]
    pub fn invocation_trace(mut self, trace: Option<TraceContext>) -> Self {
        self.invocation_trace = trace;
        self
    }

    /// This run as the Lambda invocation `request_id`.
    #[must_use]
    pub fn request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(Arc::from(request_id));
        self
    }

    /// This run with an invocation deadline.
    #[must_use]
    pub fn deadline(mut self, deadline: SystemTime) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// This run with Lambda's function timeout, enforced as Lambda enforces it: the deadline is
    /// `timeout` from now, no message starts inside the reserve, and a message still running at
    /// the deadline is stopped there (its future is dropped) and fails as [`super::TimedOut`].
    /// For a runtime Lambda does not stop: without it, work would run on past a deadline that
    /// other things count on (an idempotency claim expires there, so a re-sent copy could run
    /// beside it). A timeout too long for the clock to hold sets no deadline.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if let Some(deadline) = SystemTime::now().checked_add(timeout) {
            self.deadline = Some(deadline);
            self.timeout = Some(timeout);
        }
        self
    }

    /// This run, stopped (nothing new starts) when `stop` is cancelled.
    #[must_use]
    pub fn stop_on(mut self, stop: CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    /// This run, giving up on running messages when `abandon` is cancelled.
    #[must_use]
    pub fn abandon_on(mut self, abandon: CancellationToken) -> Self {
        self.abandon = abandon;
        self
    }
}
