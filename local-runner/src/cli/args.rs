//! The command line as clap reads it. Defaults come from the consumer's own constants, so the
//! help text and an embedded run cannot disagree.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::aws::{MAX_RECEIVE, MAX_WAIT_SECONDS};
use crate::consumer::{
    DEFAULT_POLLERS, DEFAULT_SHUTDOWN_TIMEOUT_SECS, DEFAULT_START_TIMEOUT_SECS, DEFAULT_STATS_INTERVAL_SECS,
};

/// The local endpoint when none is given: LocalStack's port.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4566";
/// The region when none is given.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The template read by `--lambda`, `check` and `up`.
pub const DEFAULT_TEMPLATE: &str = "template.yaml";

/// Every numeric flag has a range, checked by clap before anything runs: a number past it is a
/// usage error (exit 2) that names the range, never an overflow later on. Each bound is what SQS
/// or Lambda allows, or the most a local run can use.
pub mod limits {
    /// Long-poll tasks: each holds a connection and a receive; past this they only queue up at
    /// the endpoint.
    pub const MAX_POLLERS: u64 = 1_000;
    /// Messages in flight: SQS's own limit of in-flight messages for a standard queue.
    pub const MAX_IN_FLIGHT: u64 = 120_000;
    /// Any time in seconds that keeps messages waiting (shutdown, idle exit, back-off, stats):
    /// 12 hours, SQS's longest visibility timeout.
    pub const MAX_SECS: u64 = 43_200;
    /// Waiting for the endpoint at start: one hour.
    pub const MAX_START_SECS: u64 = 3_600;
    /// Lambda's longest function timeout, 15 minutes.
    pub const MAX_FUNCTION_TIMEOUT_SECS: u64 = 900;
    /// The event source mapping's largest `BatchSize` (standard queues).
    pub const MAX_ESM_BATCH_SIZE: u64 = 10_000;
    /// The event source mapping's longest `MaximumBatchingWindowInSeconds`.
    pub const MAX_BATCHING_WINDOW_SECS: u64 = 300;
    /// `ScalingConfig.MaximumConcurrency`'s upper bound (AWS's lower bound is 2; locally 1 runs a
    /// single execution environment, which helps when debugging).
    pub const MAX_CONCURRENCY: u64 = 1_000;
    /// `send --count`: a million messages.
    pub const MAX_SEND_COUNT: u64 = 1_000_000;
    /// `dlq --limit`.
    pub const MAX_DLQ_LIMIT: u64 = 10_000;
    /// `send --payload-threshold`: SQS's largest message, 1 MiB.
    pub const MAX_PAYLOAD_THRESHOLD: u64 = 1_048_576;
    /// The SQS Extended Client's threshold: bodies above 256 KiB go to S3.
    pub const DEFAULT_PAYLOAD_THRESHOLD: u64 = 262_144;
}

/// A whole number in `1..=max`, as a `NonZeroUsize`.
fn positive(max: u64) -> impl TypedValueParser<Value = NonZeroUsize> {
    // The range starts at 1, so the fallback is never taken.
    clap::value_parser!(u64)
        .range(1..=max)
        .map(|n| usize::try_from(n).ok().and_then(NonZeroUsize::new).unwrap_or(NonZeroUsize::MIN))
}

/// Seconds in `0..=max`.
fn seconds(max: u64) -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(0..=max)
}

/// Long-polls an SQS queue and runs the handler on Lambda-shaped batches: what works here works
/// behind Lambda's SQS event source mapping.
#[derive(Debug, Parser)]
// Negative numbers are read as values, so `--pollers -1` is refused for its range rather than
// mistaken for a flag.
#[command(
    name = "local-runner",
    version,
    about,
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true
)]
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

    /// Concurrent long-poll tasks (1..=1000).
    #[arg(long, default_value_t = DEFAULT_POLLERS, value_parser = positive(limits::MAX_POLLERS))]
    pub pollers: NonZeroUsize,

    /// Messages per receive, which in process is one batch (1..=10). Under --lambda the
    /// mapping's BatchSize decides (--esm-batch-size).
    #[arg(long, default_value_t = MAX_RECEIVE, conflicts_with = "lambda", value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_RECEIVE)))]
    pub batch_size: u8,

    /// Long-poll wait in seconds (0..=20).
    #[arg(long, default_value_t = MAX_WAIT_SECONDS, value_parser = clap::value_parser!(u8).range(0..=i64::from(MAX_WAIT_SECONDS)))]
    pub wait_time_seconds: u8,

    /// Messages being handled at once, across all pollers [default: with the template's function,
    /// BatchSize × MaximumConcurrency (5 when unset), what the deployed function handles at once;
    /// else pollers × batch size] (1..=120000, SQS's in-flight limit).
    #[arg(long, value_parser = positive(limits::MAX_IN_FLIGHT))]
    pub max_in_flight: Option<NonZeroUsize>,

    /// Seconds that started messages get to finish after SIGINT/SIGTERM (0..=43200).
    #[arg(long, default_value_t = DEFAULT_SHUTDOWN_TIMEOUT_SECS, value_name = "SECS", value_parser = seconds(limits::MAX_SECS))]
    pub shutdown_timeout: u64,

    /// Exit 0 once nothing was received for SECS seconds and nothing is in flight (0..=43200).
    #[arg(long, value_name = "SECS", value_parser = seconds(limits::MAX_SECS))]
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
    /// settings (not with --lambda, which runs a template's function).
    #[arg(long, conflicts_with = "lambda")]
    pub no_template: bool,

    /// The template's parameters as a deployment sets them (`sam deploy --parameter-overrides`):
    /// KEY=VALUE, given once or several times.
    #[arg(long, value_name = "KEY=VALUE", num_args = 1.., value_parser = parameter)]
    pub parameter_overrides: Vec<(String, String)>,

    /// The function's logical id in the template, when it has several with SQS events.
    #[arg(long, value_name = "LOGICAL_ID")]
    pub function: Option<String>,

    /// Override the template's BatchSize: messages per invocation (with --lambda; 1..=10000).
    #[arg(long, value_name = "N", requires = "lambda", value_parser = positive(limits::MAX_ESM_BATCH_SIZE))]
    pub esm_batch_size: Option<NonZeroUsize>,

    /// Override the template's MaximumBatchingWindowInSeconds (with --lambda; 0..=300).
    #[arg(long, value_name = "SECS", requires = "lambda", value_parser = seconds(limits::MAX_BATCHING_WINDOW_SECS))]
    pub batching_window: Option<u64>,

    /// Override the template's ScalingConfig.MaximumConcurrency: concurrent invocations, one
    /// process each (with --lambda; 1..=1000).
    #[arg(long, value_name = "N", requires = "lambda", value_parser = positive(limits::MAX_CONCURRENCY))]
    pub max_concurrency: Option<NonZeroUsize>,

    /// Override the function's RETRY_BACKOFF_SECS: a failed message's visibility after its
    /// first receive, multiplied with each receive (default 2); 0 leaves failures to the queue's
    /// visibility timeout (0..=43200). With --lambda the function gets it too.
    #[arg(long, value_name = "SECS", value_parser = seconds(limits::MAX_SECS))]
    pub retry_backoff: Option<u64>,

    /// Override the function's RETRY_BACKOFF_MAX_SECS: the longest visibility the retry back-off
    /// sets (default 900; 0..=43200).
    #[arg(long, value_name = "SECS", value_parser = seconds(limits::MAX_SECS))]
    pub retry_backoff_max: Option<u64>,

    /// Do not extend the visibility of messages whose work outlasts the queue's visibility
    /// timeout (not with --lambda, which has no heartbeat, as Lambda has none).
    #[arg(long, conflicts_with = "lambda")]
    pub no_heartbeat: bool,

    /// How long to wait for the endpoint to answer at start before giving up with exit 1
    /// (1..=3600).
    #[arg(long, default_value_t = DEFAULT_START_TIMEOUT_SECS, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=limits::MAX_START_SECS))]
    pub start_timeout: u64,

    /// Log a stats line this often; 0 for never. On a terminal the status line shows the same,
    /// and no stats line is logged (0..=43200).
    #[arg(long, default_value_t = DEFAULT_STATS_INTERVAL_SECS, value_name = "SECS", value_parser = seconds(limits::MAX_SECS))]
    pub stats_interval: u64,

    /// Serve Prometheus metrics at http://ADDR/metrics while running (e.g. 127.0.0.1:9464).
    #[arg(long, env = "METRICS_ADDR", value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Rebuild with cargo when a source file of the workspace changes, and restart the run with
    /// the new build; nothing received is lost or handled twice by a restart. Run it from the
    /// workspace.
    #[arg(long)]
    pub watch: bool,

    /// What --watch builds, as cargo arguments (e.g. "--workspace --bins") [default: this
    /// binary's package and bin with the features it requires, and the --lambda binaries beside
    /// it, in this binary's profile].
    #[arg(long, value_name = "ARGS", requires = "watch", allow_hyphen_values = true)]
    pub watch_cargo_args: Option<String>,

    /// Each batch's deadline, as Lambda's function timeout [default: the template function's
    /// Timeout; in process without a template function, none]. With --lambda an invocation is
    /// killed there; in process its running messages are stopped and fail as timed out, and
    /// none starts inside the deadline reserve (1..=900, above the function's
    /// DEADLINE_RESERVE_MS).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=limits::MAX_FUNCTION_TIMEOUT_SECS))]
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
        /// Send this many messages of --body (1..=1000000).
        #[arg(long, value_name = "N", required_unless_present = "file", requires = "body", value_parser = positive(limits::MAX_SEND_COUNT))]
        count: Option<NonZeroUsize>,
        /// The body to send --count times; `{i}` becomes each message's number (0, 1, ...).
        #[arg(long, value_name = "TEXT")]
        body: Option<String>,
        /// Message group for a FIFO queue.
        #[arg(long, default_value = "default")]
        group: String,
        /// Keep each body larger than --payload-threshold in this bucket (on the local S3) and
        /// send a pointer to it, as the SQS Extended Client does (`up` creates the template's).
        #[arg(long, value_name = "BUCKET")]
        payload_bucket: Option<String>,
        /// The size in bytes above which a body goes to --payload-bucket (0..=1048576).
        #[arg(long, value_name = "BYTES", default_value_t = limits::DEFAULT_PAYLOAD_THRESHOLD, requires = "payload_bucket", value_parser = clap::value_parser!(u64).range(0..=limits::MAX_PAYLOAD_THRESHOLD))]
        payload_threshold: u64,
    },
    /// Show what the queue's dead-letter queue holds: count, ids, receive counts, body starts,
    /// and why each body is there when the handler cannot parse it.
    Dlq {
        /// Where (the source queue; its RedrivePolicy names the DLQ).
        #[command(flatten)]
        target: Target,
        /// Show at most this many messages (1..=10000).
        #[arg(long, default_value = "20", value_parser = positive(limits::MAX_DLQ_LIMIT))]
        limit: NonZeroUsize,
    },
    /// Move every message of the dead-letter queue back to the queue (StartMessageMoveTask).
    Redrive {
        /// Where (the source queue).
        #[command(flatten)]
        target: Target,
        /// How long to wait for the move to finish (1..=43200).
        #[arg(long, default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=limits::MAX_SECS))]
        timeout: u64,
    },
}

/// A `KEY=VALUE` parameter override.
fn parameter(text: &str) -> Result<(String, String), NotKeyValue> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.to_owned())),
        _ => Err(NotKeyValue(text.to_owned())),
    }
}

/// A parameter override that is not `KEY=VALUE`.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not KEY=VALUE")]
struct NotKeyValue(String);

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Pretty,
    /// One JSON object a line.
    Json,
}
