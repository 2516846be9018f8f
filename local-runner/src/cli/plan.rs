//! The command line, validated once at the edge into a typed plan: the consumer's configuration
//! and how batches run (in this process, or through the real Lambda binary).

use std::io::IsTerminal;
use std::time::Duration;

use sqs_batch::telemetry::LogFormat;

use super::args::{Cli, LogFormatArg, Target};
use crate::RunnerError;
use crate::aws::{Connection, QueueRef};
use crate::consumer::{Config, RetryBackoff};
use crate::lambda::{LambdaSpec, Mapping};
use crate::template::Template;

/// What a run will do.
#[derive(Debug)]
pub struct Plan {
    /// The consumer's configuration.
    pub config: Config,
    /// How the received batches are run.
    pub mode: Mode,
}

/// How the received batches are run.
#[derive(Debug)]
pub enum Mode {
    /// By the handler in this process; with a function timeout, batches get Lambda's deadline.
    InProcess {
        /// The function timeout to emulate, if any.
        function_timeout: Option<Duration>,
    },
    /// By the real Lambda binary behind an emulated event source mapping.
    Lambda {
        /// The function.
        function: Box<LambdaSpec>,
        /// Its event source mapping.
        mapping: Mapping,
    },
}

impl Cli {
    /// Validates everything and decides the mode: the template is read here, once, for
    /// `--lambda`.
    ///
    /// # Errors
    /// [`RunnerError::Usage`] naming the flag or file and what to do.
    pub fn into_plan(self) -> Result<Plan, RunnerError> {
        let connection = connection(&self.endpoint_url, &self.region)?;
        let queue = QueueRef::parse(self.queue.as_deref().unwrap_or_default())?;
        let exit_when_idle = self.exit_when_idle.map(Duration::from_secs);
        let mut config = Config::new(queue, connection);
        config.pollers = self.pollers;
        config.batch_size = self.batch_size;
        config.wait_time = Duration::from_secs(u64::from(self.wait_time_seconds));
        config.max_in_flight = self.max_in_flight;
        config.shutdown_timeout = Duration::from_secs(self.shutdown_timeout);
        config.exit_when_idle = exit_when_idle;
        config.retry_backoff = (self.retry_backoff > 0).then(|| RetryBackoff {
            base: Duration::from_secs(self.retry_backoff),
            max: Duration::from_secs(self.retry_backoff_max.max(self.retry_backoff)),
        });
        config.heartbeat = !self.no_heartbeat;
        config.start_timeout = Duration::from_secs(self.start_timeout);
        config.stats_interval = (self.stats_interval > 0).then(|| Duration::from_secs(self.stats_interval));
        config.metrics_addr = self.metrics_addr;
        config.progress = exit_when_idle.is_some() && std::io::stderr().is_terminal();

        let function_timeout = self.function_timeout.map(Duration::from_secs);
        let Some(bootstrap) = self.lambda else {
            return Ok(Plan { config, mode: Mode::InProcess { function_timeout } });
        };
        // Absolute, because the process runs in the binary's own folder (LAMBDA_TASK_ROOT).
        let bootstrap = match std::fs::canonicalize(&bootstrap) {
            Ok(path) if path.is_file() => path,
            _ => {
                return Err(RunnerError::Usage(format!(
                    "--lambda {}: no such file; build it first (cargo build -p handler --bin bootstrap)",
                    bootstrap.display()
                )));
            }
        };
        let template =
            Template::load(&self.template).map_err(|e| RunnerError::Usage(format!("--template: {e}")))?;
        for finding in template.check() {
            tracing::warn!(rule = finding.rule, "{}", finding.message);
        }
        let spec = template
            .function(self.function.as_deref())
            .map_err(|e| RunnerError::Usage(format!("--function: {e}")))?;
        let mut mapping = Mapping::from_template(&spec.sqs_events[0]);
        if let Some(batch_size) = self.esm_batch_size {
            mapping.batch_size = batch_size;
        }
        if let Some(window) = self.batching_window {
            mapping.batching_window = Duration::from_secs(window);
        }
        if let Some(concurrency) = self.max_concurrency {
            mapping.max_concurrency = concurrency;
        }
        let mut function = LambdaSpec::from_template(spec, bootstrap, &config.connection);
        if let Some(timeout) = function_timeout {
            function.timeout = timeout;
        }
        Ok(Plan { config, mode: Mode::Lambda { function: Box::new(function), mapping } })
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
}

impl Target {
    /// The queue and where it is, validated as the main command's.
    ///
    /// # Errors
    /// [`RunnerError::Usage`] naming the flag.
    pub fn parse(&self) -> Result<(QueueRef, Connection), RunnerError> {
        Ok((QueueRef::parse(&self.queue)?, connection(&self.endpoint_url, &self.region)?))
    }
}

/// `--endpoint-url` and `--region`: an empty endpoint means AWS's own.
fn connection(endpoint: &str, region: &str) -> Result<Connection, RunnerError> {
    let endpoint = match endpoint.trim() {
        "" => None,
        url if url.starts_with("http://") || url.starts_with("https://") => {
            Some(url.trim_end_matches('/').to_owned())
        }
        url => {
            return Err(RunnerError::Usage(format!(
                "--endpoint-url must start with http:// or https://, got {url:?}"
            )));
        }
    };
    match region.trim() {
        "" => Err(RunnerError::Usage("--region must not be empty (for example us-east-1)".into())),
        region => Ok(Connection::new(endpoint, region)),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from([&["local-runner"], args].concat()).map_err(|e| e.to_string())?;
        cli.into_plan().map(|plan| plan.config).map_err(|e| e.to_string())
    }

    #[test]
    fn a_queue_name_and_the_defaults_make_a_config() {
        let config = parse(&["--queue", "orders"]).unwrap();
        assert_eq!(config.queue, QueueRef::Name("orders".into()));
        assert_eq!(config.connection.endpoint_url.as_deref(), Some("http://localhost:4566"));
        assert_eq!(config.pollers.get(), 2);
        assert_eq!(config.batch_size, 10);
        assert_eq!(config.wait_time, Duration::from_secs(20));
        assert_eq!(config.in_flight_limit().get(), 20);
    }

    #[test]
    fn the_command_lines_defaults_are_the_consumers() {
        let from_flags = parse(&["--queue", "orders"]).unwrap();
        let defaults = Config::new(QueueRef::Name("orders".into()), Connection::new(None, "us-east-1"));
        assert_eq!(format!("{:?}", from_flags.retry_backoff), format!("{:?}", defaults.retry_backoff));
        assert_eq!(
            (
                from_flags.shutdown_timeout,
                from_flags.start_timeout,
                from_flags.stats_interval,
                from_flags.heartbeat
            ),
            (defaults.shutdown_timeout, defaults.start_timeout, defaults.stats_interval, defaults.heartbeat)
        );
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
        assert_eq!(parse(&["--queue", "q", "--endpoint-url", ""]).unwrap().connection.endpoint_url, None);
    }

    #[test]
    fn exit_when_idle_caps_the_long_poll_wait() {
        let config = parse(&["--queue", "q", "--exit-when-idle", "3"]).unwrap();
        assert_eq!(config.long_poll(), Duration::from_secs(3));
    }
}
