//! The command line as clap reads it. Defaults come from the consumer's own constants, so the
//! help text and an embedded run cannot disagree.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::aws::{MAX_RECEIVE, MAX_WAIT_SECONDS};
use crate::consumer::{
    DEFAULT_POLLERS, DEFAULT_RETRY_BACKOFF_MAX_SECS, DEFAULT_RETRY_BACKOFF_SECS,
    DEFAULT_SHUTDOWN_TIMEOUT_SECS, DEFAULT_START_TIMEOUT_SECS, DEFAULT_STATS_INTERVAL_SECS,
};

/// The local endpoint when none is given: LocalStack's port.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4566";
/// The region when none is given.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The template read by `--lambda`, `check` and `up`.
pub const DEFAULT_TEMPLATE: &str = "template.yaml";

/// Long-polls an SQS queue and runs the handler on Lambda-shaped batches: what works here works
/// behind Lambda's SQS event source mapping.
#[derive(Debug, Parser)]
#[command(name = "local-runner", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Other things to do than running.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Queue name or queue URL.
    #[arg(long, env = "SQS_QUEUE")]
    pub queue: Option<String>,

    /// SQS endpoint. Pass an empty string to use AWS's own endpoint for the region.
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = DEFAULT_ENDPOINT)]
    pub endpoint_url: String,

    /// AWS region.
    #[arg(long, env = "AWS_REGION", default_value = DEFAULT_REGION)]
    pub region: String,

    /// Concurrent long-poll tasks.
    #[arg(long, default_value_t = DEFAULT_POLLERS)]
    pub pollers: NonZeroUsize,

    /// Messages per receive (1..=10).
    #[arg(long, default_value_t = MAX_RECEIVE, value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_RECEIVE)))]
    pub batch_size: u8,

    /// Long-poll wait in seconds (0..=20).
    #[arg(long, default_value_t = MAX_WAIT_SECONDS, value_parser = clap::value_parser!(u8).range(0..=i64::from(MAX_WAIT_SECONDS)))]
    pub wait_time_seconds: u8,

    /// Messages being handled at once, across all pollers [default: with the template's function,
    /// BatchSize × MaximumConcurrency (5 when unset), what the deployed function handles at once;
    /// else pollers × batch size].
    #[arg(long)]
    pub max_in_flight: Option<NonZeroUsize>,

    /// Seconds that started messages get to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = DEFAULT_SHUTDOWN_TIMEOUT_SECS, value_name = "SECS")]
    pub shutdown_timeout: u64,

    /// Exit 0 once nothing was received for SECS seconds and nothing is in flight.
    #[arg(long, value_name = "SECS")]
    pub exit_when_idle: Option<u64>,

    /// Log format [default: pretty on a terminal, json otherwise].
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormatArg>,

    /// Run the real Lambda binary behind an emulated event source mapping whose settings come
    /// from the template, instead of the handler in this process. Without BOOTSTRAP, each
    /// function's `BuildProperties.Binary` as cargo built it; without --function, every function
    /// of the template with an SQS event, each on its own queue.
    #[arg(long, value_name = "BOOTSTRAP", num_args = 0..=1)]
    pub lambda: Option<Option<PathBuf>>,

    /// The SAM template whose function runs: its SQS event's settings and filters, its
    /// environment [default: template.yaml, when there is one].
    #[arg(long, value_name = "PATH", conflicts_with = "no_template")]
    pub template: Option<PathBuf>,

    /// Run the handler in process without any template: no function's environment, filters or
    /// settings.
    #[arg(long, conflicts_with = "lambda")]
    pub no_template: bool,

    /// The template's parameters as a deployment sets them (`sam deploy --parameter-overrides`):
    /// KEY=VALUE, given once or several times.
    #[arg(long, value_name = "KEY=VALUE", num_args = 1.., value_parser = parameter)]
    pub parameter_overrides: Vec<(String, String)>,

    /// The function's logical id in the template, when it has several with SQS events.
    #[arg(long, value_name = "LOGICAL_ID")]
    pub function: Option<String>,

    /// Override the template's BatchSize: messages per invocation (with --lambda).
    #[arg(long, value_name = "N")]
    pub esm_batch_size: Option<NonZeroUsize>,

    /// Override the template's MaximumBatchingWindowInSeconds (with --lambda).
    #[arg(long, value_name = "SECS")]
    pub batching_window: Option<u64>,

    /// Override the template's ScalingConfig.MaximumConcurrency: concurrent invocations, one
    /// process each (with --lambda).
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<NonZeroUsize>,

    /// Visibility after a failed message's first receive, doubling with each receive; 0 leaves
    /// failures to the queue's own visibility timeout.
    #[arg(long, default_value_t = DEFAULT_RETRY_BACKOFF_SECS, value_name = "SECS")]
    pub retry_backoff: u64,

    /// The longest visibility the retry back-off sets.
    #[arg(long, default_value_t = DEFAULT_RETRY_BACKOFF_MAX_SECS, value_name = "SECS")]
    pub retry_backoff_max: u64,

    /// Do not extend the visibility of messages whose work outlasts the queue's visibility
    /// timeout.
    #[arg(long)]
    pub no_heartbeat: bool,

    /// How long to wait for the endpoint to answer at start before giving up with exit 1.
    #[arg(long, default_value_t = DEFAULT_START_TIMEOUT_SECS, value_name = "SECS")]
    pub start_timeout: u64,

    /// Log a stats line this often; 0 for never. On a terminal the status line shows the same,
    /// and no stats line is logged.
    #[arg(long, default_value_t = DEFAULT_STATS_INTERVAL_SECS, value_name = "SECS")]
    pub stats_interval: u64,

    /// Serve Prometheus metrics at http://ADDR/metrics while running (e.g. 127.0.0.1:9464).
    #[arg(long, env = "METRICS_ADDR", value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Override the template's function Timeout (with --lambda). Without --lambda: give each
    /// batch Lambda's deadline, so that messages not started before it are reported failed.
    #[arg(long, value_name = "SECS")]
    pub function_timeout: Option<u64>,
}

/// The queue a subcommand works on, and where it is.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Queue name or queue URL.
    #[arg(long, env = "SQS_QUEUE")]
    pub queue: String,
    /// SQS endpoint; an empty string for AWS's own.
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = DEFAULT_ENDPOINT)]
    pub endpoint_url: String,
    /// AWS region.
    #[arg(long, env = "AWS_REGION", default_value = DEFAULT_REGION)]
    pub region: String,
}

/// Where queues go, when a subcommand may create several.
#[derive(Debug, Clone, Args)]
pub struct Place {
    /// Queue name (default: every queue of the template, by its own name).
    #[arg(long, env = "SQS_QUEUE")]
    pub queue: Option<String>,
    /// SQS endpoint; an empty string for AWS's own.
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = DEFAULT_ENDPOINT)]
    pub endpoint_url: String,
    /// AWS region.
    #[arg(long, env = "AWS_REGION", default_value = DEFAULT_REGION)]
    pub region: String,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that the SAM template keeps the rules the handler relies on (visibility timeout,
    /// ReportBatchItemFailures, FIFO limits, a dead-letter queue). Exit 1 when it does not.
    Check {
        /// The template.
        #[arg(long, default_value = DEFAULT_TEMPLATE, value_name = "PATH")]
        template: PathBuf,
        /// The template's parameters as a deployment sets them: KEY=VALUE.
        #[arg(long, value_name = "KEY=VALUE", num_args = 1.., value_parser = parameter)]
        parameter_overrides: Vec<(String, String)>,
    },
    /// Create the queues the template describes: with --queue NAME, NAME and `<NAME>-dlq` with
    /// the settings of the function's queue; without, every queue of the template's SQS events
    /// and their dead-letter queues, named by their QueueName or logical id.
    Up {
        /// Where.
        #[command(flatten)]
        target: Place,
        /// The template to read the queue settings from.
        #[arg(long, default_value = DEFAULT_TEMPLATE, value_name = "PATH")]
        template: PathBuf,
        /// The function whose SQS event names the queue, when the template has several.
        #[arg(long, value_name = "LOGICAL_ID")]
        function: Option<String>,
        /// The template's parameters as a deployment sets them: KEY=VALUE.
        #[arg(long, value_name = "KEY=VALUE", num_args = 1.., value_parser = parameter)]
        parameter_overrides: Vec<(String, String)>,
    },
    /// Send messages: each line of a file (JSON lines), or N numbered copies of a body.
    Send {
        /// Where.
        #[command(flatten)]
        target: Target,
        /// A file with one message body per line.
        #[arg(long, value_name = "PATH", conflicts_with_all = ["count", "body"])]
        file: Option<PathBuf>,
        /// Send this many messages of --body.
        #[arg(long, value_name = "N", required_unless_present = "file", requires = "body")]
        count: Option<usize>,
        /// The body to send --count times; `{i}` becomes each message's number (0, 1, ...).
        #[arg(long, value_name = "TEXT")]
        body: Option<String>,
        /// Message group for a FIFO queue.
        #[arg(long, default_value = "default")]
        group: String,
    },
    /// Show what the queue's dead-letter queue holds: count, ids, receive counts, body starts,
    /// and why each body is there when the handler cannot parse it.
    Dlq {
        /// Where (the source queue; its RedrivePolicy names the DLQ).
        #[command(flatten)]
        target: Target,
        /// Show at most this many messages.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Move every message of the dead-letter queue back to the queue (StartMessageMoveTask).
    Redrive {
        /// Where (the source queue).
        #[command(flatten)]
        target: Target,
        /// How long to wait for the move to finish.
        #[arg(long, default_value_t = 60, value_name = "SECS")]
        timeout: u64,
    },
}

/// A `KEY=VALUE` parameter override.
fn parameter(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Pretty,
    /// One JSON object a line.
    Json,
}
