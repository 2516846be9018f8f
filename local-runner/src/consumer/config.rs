//! What a run is asked to do, with the defaults the command line shows: one source for both.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use std::sync::Arc;

use crate::aws::{Connection, MAX_RECEIVE, MAX_WAIT_SECONDS, QueueRef};
use crate::template::filter::Filters;
use sqs_batch::runtime::retry::Backoff;

/// Concurrent long-poll tasks.
pub const DEFAULT_POLLERS: NonZeroUsize = NonZeroUsize::new(2).expect("2 is not zero");
/// Seconds that started messages get to finish after a stop signal.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 30;
/// How long the endpoint may take to answer at start, in seconds.
pub const DEFAULT_START_TIMEOUT_SECS: u64 = 30;
/// Seconds between stats lines.
pub const DEFAULT_STATS_INTERVAL_SECS: u64 = 10;

/// Who handles the batches, as the executor describes itself ([`super::BatchExecutor::mode`]).
/// Each mode holds what means something in it alone, so a setting of one mode cannot be set, and
/// silently ignored, in the other; and it comes from what runs the batches, so it cannot
/// disagree with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The handler in this process: one receive is one batch, and the runner settles it.
    InProcess {
        /// Messages per batch: one receive's worth, 1..=10.
        batch_size: NonZeroUsize,
        /// Failed messages' visibility from their receive count (the function's
        /// `RETRY_BACKOFF_*` variables), which the runner sets; `None` leaves the queue's
        /// timeout.
        retry_backoff: Option<Backoff>,
        /// Extend the visibility of running messages before it runs out.
        heartbeat: bool,
    },
    /// An emulated event source mapping in front of the function's own process.
    Lambda {
        /// Messages per invocation (`BatchSize`, may exceed 10).
        batch_size: NonZeroUsize,
        /// `MaximumBatchingWindowInSeconds`: how long to keep gathering a batch.
        batching_window: Duration,
        /// `ScalingConfig.MaximumConcurrency`: invocations at once.
        max_concurrency: NonZeroUsize,
        /// The function's back-off, which the function applies: the runner only counts on it
        /// to know when failures are due back.
        retry_backoff: Option<Backoff>,
    },
}

impl Mode {
    /// The handler in this process in batches of `batch_size` messages (one receive's worth, so
    /// a value outside 1..=10 is brought into that range), its failures given `retry_backoff`.
    #[must_use]
    pub fn in_process(batch_size: u8, retry_backoff: Option<Backoff>, heartbeat: bool) -> Self {
        let batch_size =
            NonZeroUsize::new(usize::from(batch_size.clamp(1, MAX_RECEIVE))).unwrap_or(NonZeroUsize::MIN);
        Self::InProcess { batch_size, retry_backoff, heartbeat }
    }

    /// The retry back-off failures follow, whoever applies it.
    #[must_use]
    pub fn retry_backoff(&self) -> Option<Backoff> {
        match self {
            Self::InProcess { retry_backoff, .. } | Self::Lambda { retry_backoff, .. } => *retry_backoff,
        }
    }

    /// Messages a batch is made of, at most: one receive's worth in process, the mapping's
    /// `BatchSize` under Lambda.
    #[must_use]
    pub fn batch_size(&self) -> NonZeroUsize {
        match self {
            Self::InProcess { batch_size, .. } | Self::Lambda { batch_size, .. } => *batch_size,
        }
    }

    /// How long a poller keeps gathering one batch: a mapping's window, else none.
    #[must_use]
    pub fn batching_window(&self) -> Duration {
        match self {
            Self::InProcess { .. } => Duration::ZERO,
            Self::Lambda { batching_window, .. } => *batching_window,
        }
    }

    /// Whether what runs the batch sets its failed messages' visibility itself: the Lambda
    /// function does, as deployed; in process the runner does, as it settles the batch.
    #[must_use]
    pub fn requeues_failures(&self) -> bool {
        matches!(self, Self::Lambda { .. })
    }

    /// Whether running messages' visibility is extended: never under Lambda, whose event source
    /// mapping does not.
    #[must_use]
    pub fn heartbeat(&self) -> bool {
        matches!(self, Self::InProcess { heartbeat: true, .. })
    }
}

/// The validated configuration of a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The queue to poll.
    pub queue: QueueRef,
    /// Where SQS is.
    pub connection: Connection,
    /// Concurrent long-poll tasks.
    pub pollers: NonZeroUsize,
    /// Long-poll wait, at most 20 s.
    pub wait_time: Duration,
    /// Messages held at once, across pollers; `None`: [`Config::in_flight_limit`]'s default for
    /// the mode.
    pub max_in_flight: Option<NonZeroUsize>,
    /// Time that started messages get to finish after a stop signal.
    pub shutdown_timeout: Duration,
    /// Exit once idle this long.
    pub exit_when_idle: Option<Duration>,
    /// How long the endpoint may take to answer at start.
    pub start_timeout: Duration,
    /// How often to log a stats line.
    pub stats_interval: Option<Duration>,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// Show the status line (queue depth, counts, rate) on stderr: a terminal with the compact
    /// view installed ([`crate::observe::terminal`]). It replaces the stats line.
    pub progress: bool,
    /// The mapping's `MetricsConfig: {Metrics: [EventCount]}`: the summary shows its metrics by
    /// their CloudWatch names.
    pub event_count_metrics: bool,
    /// The event source mapping's FilterCriteria: a record no filter matches is deleted without
    /// being handled. Empty: every record is handled.
    pub filters: Arc<Filters>,
}

impl Config {
    /// The command line's defaults for `queue` at `connection`.
    #[must_use]
    pub fn new(queue: QueueRef, connection: Connection) -> Self {
        Self {
            queue,
            connection,
            pollers: DEFAULT_POLLERS,
            wait_time: Duration::from_secs(u64::from(MAX_WAIT_SECONDS)),
            max_in_flight: None,
            shutdown_timeout: Duration::from_secs(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
            exit_when_idle: None,
            start_timeout: Duration::from_secs(DEFAULT_START_TIMEOUT_SECS),
            stats_interval: Some(Duration::from_secs(DEFAULT_STATS_INTERVAL_SECS)),
            metrics_addr: None,
            progress: false,
            filters: Arc::default(),
            event_count_metrics: false,
        }
    }

    /// Messages held at once: as asked; else in process one full batch per poller, and under
    /// Lambda as many as the invocations running at once can take.
    #[must_use]
    pub fn in_flight_limit(&self, mode: &Mode) -> NonZeroUsize {
        self.max_in_flight.unwrap_or_else(|| match mode {
            Mode::InProcess { batch_size, .. } => self.pollers.saturating_mul(*batch_size),
            Mode::Lambda { batch_size, max_concurrency, .. } => batch_size.saturating_mul(*max_concurrency),
        })
    }

    /// Messages a poller gathers for one batch: the event source mapping's `BatchSize` when
    /// emulating one, else one receive's worth; never more than may be held at once.
    #[must_use]
    pub fn batch_target(&self, mode: &Mode) -> usize {
        mode.batch_size().get().min(self.in_flight_limit(mode).get())
    }

    /// The long-poll wait: an idle exit should not wait out a longer long poll first.
    #[must_use]
    pub fn long_poll(&self) -> Duration {
        self.exit_when_idle.map_or(self.wait_time, |idle| self.wait_time.min(idle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(QueueRef::Name("q".into()), Connection::new(None, "us-east-1"))
    }

    #[test]
    fn in_flight_defaults_to_a_full_batch_per_poller_or_per_invocation_at_once() {
        let mut config = config();
        let ten = NonZeroUsize::new(10).expect("not zero");
        let in_process = Mode::InProcess { batch_size: ten, retry_backoff: None, heartbeat: true };
        assert_eq!(config.in_flight_limit(&in_process).get(), 20);
        let lambda = Mode::Lambda {
            batch_size: NonZeroUsize::new(100).expect("not zero"),
            batching_window: Duration::ZERO,
            max_concurrency: NonZeroUsize::new(3).expect("not zero"),
            retry_backoff: None,
        };
        assert_eq!((config.in_flight_limit(&lambda).get(), config.batch_target(&lambda)), (300, 100));
        config.max_in_flight = NonZeroUsize::new(30);
        assert_eq!(config.batch_target(&lambda), 30, "never gather more than may be held");
        assert_eq!(config.in_flight_limit(&in_process).get(), 30, "as asked");
    }

    #[test]
    fn an_idle_exit_caps_the_long_poll_wait() {
        let mut config = config();
        assert_eq!(config.long_poll(), Duration::from_secs(20));
        config.exit_when_idle = Some(Duration::from_secs(3));
        assert_eq!(config.long_poll(), Duration::from_secs(3));
    }
}
