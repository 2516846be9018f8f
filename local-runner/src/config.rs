//! The command line, parsed and validated once at the edge into a typed [`Config`].

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use aws_sdk_sqs::config::Credentials;

use crate::heartbeat::RetryBackoff;
use crate::lambda::LambdaSpec;
use crate::template::Template;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use handler::telemetry::LogFormat;

/// ReceiveMessage returns at most 10 messages per call.
pub const MAX_BATCH_SIZE: u8 = 10;
/// ReceiveMessage long-polls for at most 20 seconds.
pub const MAX_WAIT_TIME_SECONDS: u8 = 20;

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
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = "http://localhost:4566")]
    pub endpoint_url: String,

    /// AWS region.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,

    /// Concurrent long-poll tasks.
    #[arg(long, default_value_t = NonZeroUsize::new(2).expect("2 is not zero"))]
    pub pollers: NonZeroUsize,

    /// Messages per receive (1..=10).
    #[arg(long, default_value_t = MAX_BATCH_SIZE, value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_BATCH_SIZE)))]
    pub batch_size: u8,

    /// Long-poll wait in seconds (0..=20).
    #[arg(long, default_value_t = MAX_WAIT_TIME_SECONDS, value_parser = clap::value_parser!(u8).range(0..=i64::from(MAX_WAIT_TIME_SECONDS)))]
    pub wait_time_seconds: u8,

    /// Messages being handled at once, across all pollers [default: pollers × batch size].
    #[arg(long)]
    pub max_in_flight: Option<NonZeroUsize>,

    /// Seconds that started messages get to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub shutdown_timeout: u64,

    /// Exit 0 once nothing was received for SECS seconds and nothing is in flight.
    #[arg(long, value_name = "SECS")]
    pub exit_when_idle: Option<u64>,

    /// Log format [default: pretty on a terminal, json otherwise].
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormatArg>,

    /// Run this Lambda binary (a built `bootstrap`) behind an emulated event source mapping
    /// whose settings come from --template, instead of the handler in this process.
    #[arg(long, value_name = "BOOTSTRAP")]
    pub lambda: Option<PathBuf>,

    /// The SAM template that holds the function and its SQS event (with --lambda).
    #[arg(long, default_value = "template.yaml", value_name = "PATH")]
    pub template: PathBuf,

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
    #[arg(long, default_value_t = 2, value_name = "SECS")]
    pub retry_backoff: u64,

    /// The longest visibility the retry back-off sets.
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    pub retry_backoff_max: u64,

    /// Do not extend the visibility of messages whose work outlasts the queue's visibility
    /// timeout.
    #[arg(long)]
    pub no_heartbeat: bool,

    /// How long to wait for the endpoint to answer at start before giving up with exit 1.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub start_timeout: u64,

    /// Log a stats line this often; 0 for never.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
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
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = "http://localhost:4566")]
    pub endpoint_url: String,
    /// AWS region.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
}

impl Target {
    /// A run configuration for this target, validated as the main command's.
    ///
    /// # Errors
    /// A sentence naming the flag.
    pub fn into_config(self) -> Result<Config, String> {
        let mut config = Config::new(parse_queue(&self.queue)?, parse_endpoint(&self.endpoint_url)?);
        config.region = parse_region(&self.region)?;
        Ok(config)
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that the SAM template keeps the rules the handler relies on (visibility timeout,
    /// ReportBatchItemFailures, FIFO limits, a dead-letter queue). Exit 1 when it does not.
    Check {
        /// The template.
        #[arg(long, default_value = "template.yaml", value_name = "PATH")]
        template: PathBuf,
    },
    /// Create the queue and its dead-letter queue (`<name>-dlq`) with the visibility timeout,
    /// FIFO setting and maxReceiveCount of the template's queue.
    Up {
        /// Where.
        #[command(flatten)]
        target: Target,
        /// The template to read the queue settings from.
        #[arg(long, default_value = "template.yaml", value_name = "PATH")]
        template: PathBuf,
        /// The function whose SQS event names the queue, when the template has several.
        #[arg(long, value_name = "LOGICAL_ID")]
        function: Option<String>,
    },
    /// Send messages: each line of a file (JSON lines), or N generated example messages.
    Send {
        /// Where.
        #[command(flatten)]
        target: Target,
        /// A file with one message body per line.
        #[arg(long, value_name = "PATH", conflicts_with = "count")]
        file: Option<PathBuf>,
        /// Generate this many example messages.
        #[arg(long, value_name = "N", required_unless_present = "file")]
        count: Option<usize>,
        /// Simulated work per generated message.
        #[arg(long, default_value_t = 0, value_name = "MS")]
        work_ms: u64,
        /// Message group for a FIFO queue.
        #[arg(long, default_value = "default")]
        group: String,
    },
    /// Show what the queue's dead-letter queue holds: count, ids, receive counts, body starts.
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

fn parse_queue(queue: &str) -> Result<QueueRef, String> {
    let queue = queue.trim();
    if queue.is_empty() {
        Err("--queue (or SQS_QUEUE) must name a queue or give its URL".into())
    } else if queue.starts_with("http://") || queue.starts_with("https://") {
        Ok(QueueRef::Url(queue.to_owned()))
    } else {
        Ok(QueueRef::Name(queue.to_owned()))
    }
}

fn parse_endpoint(endpoint: &str) -> Result<Option<String>, String> {
    match endpoint.trim() {
        "" => Ok(None),
        url if url.starts_with("http://") || url.starts_with("https://") => {
            Ok(Some(url.trim_end_matches('/').to_owned()))
        }
        url => Err(format!("--endpoint-url must start with http:// or https://, got {url:?}")),
    }
}

fn parse_region(region: &str) -> Result<String, String> {
    match region.trim() {
        "" => Err("--region must not be empty (for example us-east-1)".into()),
        region => Ok(region.to_owned()),
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

/// Where the queue is, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueRef {
    /// A queue name, resolved with GetQueueUrl.
    Name(String),
    /// A full queue URL, used as it is.
    Url(String),
}

/// The validated configuration of a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The queue to poll.
    pub queue: QueueRef,
    /// The SQS endpoint; `None` means AWS's own.
    pub endpoint_url: Option<String>,
    /// AWS region.
    pub region: String,
    /// Concurrent long-poll tasks.
    pub pollers: NonZeroUsize,
    /// Messages per receive, 1..=10.
    pub batch_size: u8,
    /// Long-poll wait.
    pub wait_time: Duration,
    /// Messages handled at once, across pollers.
    pub max_in_flight: NonZeroUsize,
    /// Time that started messages get to finish after a stop signal.
    pub shutdown_timeout: Duration,
    /// Exit once idle this long.
    pub exit_when_idle: Option<Duration>,
    /// Messages per batch when emulating an event source mapping (`BatchSize`, may exceed 10);
    /// `None`: one receive is one batch.
    pub invoke_batch_size: Option<NonZeroUsize>,
    /// `MaximumBatchingWindowInSeconds`: how long to keep gathering a batch.
    pub batching_window: Duration,
    /// Failed messages' visibility from their receive count; `None` leaves the queue's timeout.
    pub retry_backoff: Option<RetryBackoff>,
    /// Extend the visibility of running messages before it runs out.
    pub heartbeat: bool,
    /// How long the endpoint may take to answer at start.
    pub start_timeout: Duration,
    /// How often to log a stats line.
    pub stats_interval: Option<Duration>,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// Show a progress line with the queue's depth on stderr (a terminal, draining).
    pub progress: bool,
    /// Credentials for a local endpoint (its `Debug` hides the secret). `None` there means the
    /// dummy `test`/`test`; remote endpoints always use the AWS credential chain.
    pub local_credentials: Option<Credentials>,
}

/// How the received batches are run.
#[derive(Debug, Clone)]
pub enum Mode {
    /// By the handler in this process; with a deadline, batches get Lambda's deadline semantics.
    InProcess {
        /// The function timeout to emulate, if any.
        function_timeout: Option<Duration>,
    },
    /// By the real Lambda binary behind an emulated event source mapping.
    Lambda(LambdaSpec),
}

/// Concurrent invocations when the template sets no ScalingConfig.MaximumConcurrency: the
/// five pollers an event source mapping starts with.
const DEFAULT_LAMBDA_CONCURRENCY: u64 = 5;

impl Cli {
    /// Validates everything and decides the mode: the template is read here, once, for
    /// `--lambda`.
    ///
    /// # Errors
    /// A sentence naming the flag or file and what to do.
    pub fn into_run(mut self) -> Result<(Config, Mode), String> {
        let lambda = self.lambda.take();
        let template_path = self.template.clone();
        let function = self.function.take();
        let (esm_batch_size, batching_window, max_concurrency, function_timeout) =
            (self.esm_batch_size, self.batching_window, self.max_concurrency, self.function_timeout);
        let explicit_in_flight = self.max_in_flight.is_some();
        let mut config = self.into_config()?;
        let function_timeout = function_timeout.map(Duration::from_secs);
        let Some(bootstrap) = lambda else {
            return Ok((config, Mode::InProcess { function_timeout }));
        };
        // Absolute, because the process runs in the binary's own folder (LAMBDA_TASK_ROOT).
        let bootstrap = match std::fs::canonicalize(&bootstrap) {
            Ok(path) if path.is_file() => path,
            _ => {
                return Err(format!(
                    "--lambda {}: no such file; build it first (cargo build -p handler --bin bootstrap)",
                    bootstrap.display()
                ));
            }
        };
        let template = Template::load(&template_path).map_err(|e| format!("--template: {e}"))?;
        for finding in template.check() {
            tracing::warn!(rule = finding.rule, "{}", finding.message);
        }
        let spec = template.function(function.as_deref()).map_err(|e| format!("--function: {e}"))?;
        let event = &spec.sqs_events[0];
        let batch_size = esm_batch_size
            .or_else(|| usize::try_from(event.batch_size).ok().and_then(NonZeroUsize::new))
            .unwrap_or(NonZeroUsize::MIN);
        let concurrency = max_concurrency
            .map_or(event.max_concurrency.unwrap_or(DEFAULT_LAMBDA_CONCURRENCY), |c| c.get() as u64);
        let concurrency = usize::try_from(concurrency.max(1)).unwrap_or(usize::MAX);
        config.invoke_batch_size = Some(batch_size);
        // Lambda's event source mapping neither extends visibility nor spaces out retries.
        config.heartbeat = false;
        config.retry_backoff = None;
        config.batching_window = batching_window.map_or(event.batching_window, Duration::from_secs);
        if !explicit_in_flight {
            // Hold no more messages than the invocations running at once can take.
            config.max_in_flight =
                batch_size.saturating_mul(NonZeroUsize::new(concurrency).unwrap_or(NonZeroUsize::MIN));
        }
        let mut spec = LambdaSpec::from_template(
            spec,
            bootstrap,
            config.region.clone(),
            config.endpoint_url.clone(),
            concurrency,
        );
        if let Some(timeout) = function_timeout {
            spec.timeout = timeout;
        }
        Ok((config, Mode::Lambda(spec)))
    }

    /// The log format: as asked, or pretty on a terminal and JSON elsewhere.
    #[must_use]
    pub fn log_format(&self) -> LogFormat {
        match self.log_format {
            Some(LogFormatArg::Json) => LogFormat::Json,
            Some(LogFormatArg::Pretty) => LogFormat::Pretty,
            None if std::io::stdout().is_terminal() => LogFormat::Pretty,
            None => LogFormat::Json,
        }
    }

    /// Validates what clap cannot check alone.
    ///
    /// # Errors
    /// A sentence naming the flag and what to pass instead.
    pub fn into_config(self) -> Result<Config, String> {
        let queue = parse_queue(self.queue.as_deref().unwrap_or_default())?;
        let endpoint_url = parse_endpoint(&self.endpoint_url)?;
        let region = parse_region(&self.region)?;
        let default_in_flight = self.pollers.saturating_mul(
            NonZeroUsize::new(usize::from(self.batch_size)).expect("clap keeps batch size in 1..=10"),
        );
        let wait_time = Duration::from_secs(u64::from(self.wait_time_seconds));
        let exit_when_idle = self.exit_when_idle.map(Duration::from_secs);
        Ok(Config {
            queue,
            endpoint_url,
            region,
            pollers: self.pollers,
            batch_size: self.batch_size,
            // An idle exit should not wait out a longer long poll first.
            wait_time: exit_when_idle.map_or(wait_time, |idle| wait_time.min(idle)),
            max_in_flight: self.max_in_flight.unwrap_or(default_in_flight),
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
            exit_when_idle,
            invoke_batch_size: None,
            batching_window: Duration::ZERO,
            retry_backoff: (self.retry_backoff > 0).then(|| RetryBackoff {
                base: Duration::from_secs(self.retry_backoff),
                max: Duration::from_secs(self.retry_backoff_max.max(self.retry_backoff)),
            }),
            heartbeat: !self.no_heartbeat,
            start_timeout: Duration::from_secs(self.start_timeout),
            stats_interval: (self.stats_interval > 0).then(|| Duration::from_secs(self.stats_interval)),
            metrics_addr: self.metrics_addr,
            progress: exit_when_idle.is_some() && std::io::stderr().is_terminal(),
            local_credentials: None,
        })
    }
}

impl Config {
    /// A configuration with the CLI's defaults, for embedding `run` (tests, other binaries).
    #[must_use]
    pub fn new(queue: QueueRef, endpoint_url: Option<String>) -> Self {
        Self {
            queue,
            endpoint_url,
            region: "us-east-1".into(),
            pollers: NonZeroUsize::new(2).expect("2 is not zero"),
            batch_size: MAX_BATCH_SIZE,
            wait_time: Duration::from_secs(u64::from(MAX_WAIT_TIME_SECONDS)),
            max_in_flight: NonZeroUsize::new(20).expect("20 is not zero"),
            shutdown_timeout: Duration::from_secs(30),
            exit_when_idle: None,
            invoke_batch_size: None,
            batching_window: Duration::ZERO,
            retry_backoff: Some(RetryBackoff { base: Duration::from_secs(2), max: Duration::from_secs(900) }),
            heartbeat: true,
            start_timeout: Duration::from_secs(30),
            stats_interval: None,
            metrics_addr: None,
            progress: false,
            local_credentials: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from([&["local-runner"], args].concat()).map_err(|e| e.to_string())?;
        cli.into_config()
    }

    #[test]
    fn a_queue_name_and_the_defaults_make_a_config() {
        let config = parse(&["--queue", "orders"]).unwrap();
        assert_eq!(config.queue, QueueRef::Name("orders".into()));
        assert_eq!(config.endpoint_url.as_deref(), Some("http://localhost:4566"));
        assert_eq!(config.pollers.get(), 2);
        assert_eq!(config.batch_size, 10);
        assert_eq!(config.wait_time, Duration::from_secs(20));
        assert_eq!(config.max_in_flight.get(), 20);
    }

    #[test]
    fn a_queue_url_is_used_as_it_is() {
        let config = parse(&["--queue", "http://127.0.0.1:4566/000000000000/orders"]).unwrap();
        assert_eq!(config.queue, QueueRef::Url("http://127.0.0.1:4566/000000000000/orders".into()));
    }

    #[test]
    fn batch_size_and_wait_time_outside_sqs_limits_are_usage_errors() {
        assert!(parse(&["--queue", "q", "--batch-size", "11"]).is_err());
        assert!(parse(&["--queue", "q", "--batch-size", "0"]).is_err());
        assert!(parse(&["--queue", "q", "--wait-time-seconds", "21"]).is_err());
        assert!(parse(&["--queue", "q", "--pollers", "0"]).is_err());
    }

    #[test]
    fn an_endpoint_without_a_scheme_is_rejected_and_an_empty_one_means_aws() {
        assert!(parse(&["--queue", "q", "--endpoint-url", "localhost:4566"]).is_err());
        assert_eq!(parse(&["--queue", "q", "--endpoint-url", ""]).unwrap().endpoint_url, None);
    }

    #[test]
    fn exit_when_idle_caps_the_long_poll_wait() {
        let config = parse(&["--queue", "q", "--exit-when-idle", "3"]).unwrap();
        assert_eq!(config.wait_time, Duration::from_secs(3));
    }
}
