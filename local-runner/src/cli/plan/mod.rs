//! The command line, validated once at the edge into a typed plan: the consumer's configuration,
//! the template's function (its environment, its event's filters and settings), and how batches
//! run (in this process, or through the real Lambda binary of each function).

mod in_process;
mod lambda;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqs_batch::Options;
use sqs_batch::runtime::telemetry::LogFormat;

use super::args::{Cli, DEFAULT_TEMPLATE, LogFormatArg};
use super::endpoint::connection;
use crate::aws::{Connection, QueueRef};
use crate::consumer::{Config, Mode};
use crate::error::RunnerError;
use crate::lambda::{LambdaSpec, Mapping};
use crate::template::filter::Filters;
use crate::template::{FunctionSpec, OptionsProblem, SqsEventSpec, Template, function_options};
use sqs_batch::runtime::retry;

/// What a run will do.
#[derive(Debug)]
pub enum Plan {
    /// The handler in this process, on one queue.
    InProcess(Box<InProcessRun>),
    /// The real Lambda binaries behind emulated event source mappings: one run per SQS event.
    Lambda(Vec<LambdaRun>),
}

/// The handler in this process, on one queue.
#[derive(Debug)]
pub struct InProcessRun {
    /// The consumer's configuration (the event's filters included).
    pub config: Config,
    /// Lambda's deadline for each batch: `--function-timeout`, else the template function's
    /// `Timeout`; `None` without either (no template function, no flag).
    pub function_timeout: Option<Duration>,
    /// The template's function whose settings apply, if there is one.
    pub function: Option<TemplateFunction>,
    /// The function's options (its variables over the process's, with the flags' overrides),
    /// read once: the runner gives its back-off to failures.
    pub options: Options,
    /// Extend running messages' visibility (not `--no-heartbeat`).
    pub heartbeat: bool,
    /// Messages per receive, which is one batch (`--batch-size`).
    pub batch_size: u8,
}

impl InProcessRun {
    /// The mode its executor will run in: what the consumer's limits are worked out from.
    #[must_use]
    pub fn mode(&self) -> Mode {
        Mode::in_process(self.batch_size, self.options.retry, self.heartbeat)
    }
}

/// The function of a template whose settings a run in process follows.
#[derive(Debug)]
pub struct TemplateFunction {
    /// Its logical id.
    pub name: String,
    /// The template it comes from.
    pub template: PathBuf,
    /// Its `Environment.Variables`: set for the handler, as Lambda sets them.
    pub environment: BTreeMap<String, String>,
}

/// One emulated event source mapping and the function behind it.
#[derive(Debug)]
pub struct LambdaRun {
    /// The consumer's configuration for its queue (the event's filters included).
    pub config: Config,
    /// The function.
    pub function: LambdaSpec,
    /// Its event source mapping.
    pub mapping: Mapping,
    /// The function's options, read once from its variables as its bootstrap reads them: the
    /// mapping counts on its back-off to know when failures are due back.
    pub options: Options,
}

impl Cli {
    /// Validates everything and decides what runs: the template is read here, once, and each
    /// function's options once.
    ///
    /// # Errors
    /// [`RunnerError::Usage`] naming the flag or file and what to do.
    pub fn into_plan(self) -> Result<Plan, RunnerError> {
        self.into_plan_with(&|name| std::env::var(name).ok())
    }

    /// [`Cli::into_plan`] with the process environment read through `process_env`: the handler in
    /// this process reads its options there, below its template function's variables. Tests pass
    /// an empty one, so that what the caller exported cannot change what they see.
    ///
    /// # Errors
    /// As [`Cli::into_plan`].
    pub fn into_plan_with(self, process_env: &dyn Fn(&str) -> Option<String>) -> Result<Plan, RunnerError> {
        let connection = connection(&self.endpoint_url, &self.region)?;
        let queue = self.queue.as_deref().map(QueueRef::parse).transpose()?;
        let template = self.load_template()?;
        match self.lambda.clone() {
            None => self
                .in_process(queue, connection, template, process_env)
                .map(|run| Plan::InProcess(Box::new(run))),
            Some(bootstrap) => {
                self.lambda(bootstrap.as_deref(), queue, &connection, template).map(Plan::Lambda)
            }
        }
    }

    /// A function's options, read once from its variables (`var`) with the flags' overrides, and
    /// checked against its timeout; `whose` names the function in an error.
    ///
    /// # Errors
    /// [`RunnerError::Invalid`] for a variable that does not parse; [`RunnerError::Usage`] for a
    /// timeout inside the deadline reserve.
    fn function_options(
        &self,
        whose: &str,
        timeout: Option<Duration>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Options, RunnerError> {
        let overrides = self.retry_overrides();
        let var = |name: &str| {
            overrides.iter().find(|(n, _)| *n == name).map(|(_, value)| value.clone()).or_else(|| var(name))
        };
        function_options(var, timeout).map_err(|problem| match problem {
            OptionsProblem::Unreadable(error) => RunnerError::invalid(whose, error),
            inside @ OptionsProblem::InsideReserve { .. } => RunnerError::Usage(format!("{whose}: {inside}")),
        })
    }

    /// `--retry-backoff` and `--retry-backoff-max` as the function variables they override.
    fn retry_overrides(&self) -> Vec<(&'static str, String)> {
        let mut overrides = Vec::new();
        if let Some(secs) = self.retry_backoff {
            overrides.push((retry::RETRY_BACKOFF_VAR, secs.to_string()));
        }
        if let Some(secs) = self.retry_backoff_max {
            overrides.push((retry::RETRY_BACKOFF_MAX_VAR, secs.to_string()));
        }
        overrides
    }

    /// The consumer's configuration from the flags that mean the same in both modes, for
    /// `queue`; each mode's own settings go to what runs the batches.
    fn config(&self, queue: QueueRef, connection: Connection) -> Config {
        let exit_when_idle = self.exit_when_idle.map(Duration::from_secs);
        let mut config = Config::new(queue, connection);
        config.pollers = self.pollers;
        config.wait_time = Duration::from_secs(u64::from(self.wait_time_seconds));
        config.max_in_flight = self.max_in_flight;
        config.shutdown_timeout = Duration::from_secs(self.shutdown_timeout);
        config.exit_when_idle = exit_when_idle;
        config.start_timeout = Duration::from_secs(self.start_timeout);
        config.stats_interval = (self.stats_interval > 0).then(|| Duration::from_secs(self.stats_interval));
        config.metrics_addr = self.metrics_addr;
        config.progress = self.log_format() == LogFormat::Pretty && std::io::stderr().is_terminal();
        config
    }

    /// The template a run follows: as given, else `template.yaml` when there is one here, else
    /// none; `--no-template` for none at all.
    fn load_template(&self) -> Result<Option<(PathBuf, Template)>, RunnerError> {
        if self.no_template {
            return Ok(None);
        }
        let path = match &self.template {
            Some(path) => path.clone(),
            None if Path::new(DEFAULT_TEMPLATE).is_file() => PathBuf::from(DEFAULT_TEMPLATE),
            None => return Ok(None),
        };
        let template = Template::load_with(&path, &self.parameter_overrides)
            .and_then(|template| template.usable().map(|()| template))
            .map_err(|e| RunnerError::invalid("--template", e))?;
        Ok(Some((path, template)))
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

/// The event's FilterCriteria, parsed.
fn filters(function: &FunctionSpec, event: &SqsEventSpec) -> Result<Filters, RunnerError> {
    Filters::parse(&event.filters).map_err(|e| {
        RunnerError::invalid(
            &format!("--template: {}.Events.{}: FilterCriteria", function.logical_id, event.name),
            e,
        )
    })
}

#[cfg(test)]
mod tests;
