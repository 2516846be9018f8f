//! The command line, validated once at the edge into a typed plan: the consumer's configuration,
//! the template's function (its environment, its event's filters and settings), and how batches
//! run (in this process, or through the real Lambda binary of each function).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqs_batch::Options;
use sqs_batch::runtime::DEADLINE_RESERVE_VAR;
use sqs_batch::runtime::telemetry::LogFormat;

use super::args::{Cli, DEFAULT_TEMPLATE, LogFormatArg};
use super::endpoint::connection;
use crate::aws::{Connection, QueueRef};
use crate::consumer::{Config, Mode};
use crate::error::RunnerError;
use crate::lambda::{DEFAULT_MAX_CONCURRENCY, LambdaSpec, Mapping};
use crate::template::filter::Filters;
use crate::template::{FunctionSpec, SqsEventSpec, Template};
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
    /// The function's back-off with the flags' overrides: the runner gives it to failures.
    pub retry_backoff: Option<retry::Backoff>,
    /// Extend running messages' visibility (not `--no-heartbeat`).
    pub heartbeat: bool,
    /// Messages per receive, which is one batch (`--batch-size`).
    pub batch_size: u8,
}

impl InProcessRun {
    /// The mode its executor will run in: what the consumer's limits are worked out from.
    #[must_use]
    pub fn mode(&self) -> Mode {
        Mode::InProcess {
            batch_size: NonZeroUsize::new(usize::from(self.batch_size)).unwrap_or(NonZeroUsize::MIN),
            retry_backoff: self.retry_backoff,
            heartbeat: self.heartbeat,
        }
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
}

impl Cli {
    /// Validates everything and decides what runs: the template is read here, once.
    ///
    /// # Errors
    /// [`RunnerError::Usage`] naming the flag or file and what to do.
    pub fn into_plan(self) -> Result<Plan, RunnerError> {
        let connection = connection(&self.endpoint_url, &self.region)?;
        let queue = self.queue.as_deref().map(QueueRef::parse).transpose()?;
        let template = self.load_template()?;
        let function_timeout = self.function_timeout.map(Duration::from_secs);
        match self.lambda.clone() {
            // clap ties these to --lambda, but lets them through beside --no-template (which
            // conflicts with --lambda): they would be accepted and ignored.
            None if self.esm_batch_size.is_some() || self.batching_window.is_some() || self.max_concurrency.is_some() => {
                Err(RunnerError::Usage(
                    "--esm-batch-size, --batching-window and --max-concurrency set the emulated event source mapping: they need --lambda".into(),
                ))
            }
            None => {
                let queue = queue.ok_or_else(|| {
                    RunnerError::Usage("--queue (or SQS_QUEUE) must name a queue or give its URL".into())
                })?;
                let mut config = self.config(queue.clone(), connection);
                let process_env = |name: &str| std::env::var(name).ok();
                let function = match &template {
                    Some((_, template)) => choose_for_queue(template, self.function.as_deref(), &queue)?,
                    None => None,
                };
                let (Some((path, _)), Some(function)) = (&template, function) else {
                    return Ok(Plan::InProcess(Box::new(InProcessRun {
                        config,
                        function_timeout,
                        function: None,
                        retry_backoff: self.retry_backoff("the environment", process_env)?,
                        heartbeat: !self.no_heartbeat,
                        batch_size: self.batch_size,
                    })));
                };
                let event = &function.sqs_events[0];
                config.filters = Arc::new(filters(function, event)?);
                config.event_count_metrics = event.event_count_metrics;
                // The function's back-off, as the deployed function reads it.
                let retry_backoff = self.retry_backoff(&function.logical_id, |name| {
                    function.environment.get(name).cloned().or_else(|| process_env(name))
                })?;
                if config.max_in_flight.is_none() {
                    // As many at once as the deployed function would handle.
                    let concurrency = event.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY.get() as u64);
                    config.max_in_flight = usize::try_from(event.batch_size.saturating_mul(concurrency))
                        .ok()
                        .and_then(NonZeroUsize::new);
                }
                for (name, value) in &function.unresolved_environment {
                    tracing::warn!(
                        function = %function.logical_id,
                        variable = %name,
                        "{name} is {value} in the template, which only a deployment resolves: it is not set for this run"
                    );
                }
                let function_spec_timeout = function.timeout;
                let function = TemplateFunction {
                    name: function.logical_id.clone(),
                    template: path.clone(),
                    environment: function.environment.clone(),
                };
                // The function's Timeout is each batch's deadline, as when it is deployed.
                let function_timeout = function_timeout.or(Some(function_spec_timeout));
                Ok(Plan::InProcess(Box::new(InProcessRun {
                    config,
                    function_timeout,
                    function: Some(function),
                    retry_backoff,
                    heartbeat: !self.no_heartbeat,
                    batch_size: self.batch_size,
                })))
            }
            Some(bootstrap) => {
                let bootstrap = bootstrap.as_deref().map(given_binary).transpose()?;
                let Some((path, template)) = template else {
                    let path = self.template.unwrap_or_else(|| PathBuf::from(DEFAULT_TEMPLATE));
                    return Err(RunnerError::Usage(format!(
                        "--lambda needs the template of the function ({} is not there): pass --template PATH",
                        path.display()
                    )));
                };
                for finding in template.check() {
                    tracing::warn!(rule = finding.rule, "{}", finding.message);
                }
                let functions: Vec<&FunctionSpec> = match &self.function {
                    Some(name) => vec![
                        template
                            .function(Some(name))
                            .map_err(|e| RunnerError::invalid("--function", e))?,
                    ],
                    None => template.functions.iter().collect(),
                };
                let events: Vec<(&FunctionSpec, &SqsEventSpec)> =
                    functions.iter().flat_map(|f| f.sqs_events.iter().map(move |e| (*f, e))).collect();
                if events.is_empty() {
                    return Err(RunnerError::Usage(format!(
                        "--lambda: {} has no function with an SQS event",
                        path.display()
                    )));
                }
                if events.len() > 1 && (bootstrap.is_some() || queue.is_some()) {
                    return Err(RunnerError::Usage(
                        "--lambda BOOTSTRAP and --queue run one function's mapping: choose it with --function".into(),
                    ));
                }
                let mut runs = Vec::new();
                for (function, event) in events {
                    let binary = match &bootstrap {
                        Some(path) => path.clone(),
                        None => built_binary(function.binary.as_deref().unwrap_or("bootstrap"))?,
                    };
                    let queue = match &queue {
                        Some(queue) => queue.clone(),
                        None => QueueRef::Name(template.event_queue(function).map(|q| q.local_name())?),
                    };
                    let mut config = self.config(queue, connection.clone());
                    config.filters = Arc::new(filters(function, event)?);
                    config.event_count_metrics = event.event_count_metrics;
                    let mut mapping = Mapping::from_template(event);
                    if let Some(batch_size) = self.esm_batch_size {
                        mapping.batch_size = batch_size;
                    }
                    if let Some(window) = self.batching_window {
                        mapping.batching_window = Duration::from_secs(window);
                    }
                    if let Some(concurrency) = self.max_concurrency {
                        mapping.max_concurrency = concurrency;
                    }
                    let fifo = template.event_queue(function).is_ok_and(|q| q.fifo);
                    mapping_limits(&mapping, fifo, &function.logical_id)?;
                    let mut spec = LambdaSpec::from_template(function, binary, &config.connection);
                    if let Some(timeout) = function_timeout {
                        spec.timeout = timeout;
                    }
                    // The function applies the back-off: the flags reach it as its variables.
                    for (name, value) in self.retry_overrides() {
                        spec.environment.insert(name.to_owned(), value);
                    }
                    // The bootstrap reads its options from the function's environment: a timeout
                    // inside its deadline reserve would have it start no message, ever.
                    let options = Options::from_vars(|name| spec.environment.get(name).cloned())
                        .map_err(|e| RunnerError::invalid(&function.logical_id, e))?;
                    outlasts_reserve(spec.timeout, &options, &function.logical_id)?;
                    runs.push(LambdaRun { config, function: spec, mapping });
                }
                // One status line on a terminal: the first function's.
                for run in runs.iter_mut().skip(1) {
                    run.config.progress = false;
                }
                Ok(Plan::Lambda(runs))
            }
        }
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

    /// The retry back-off of the function whose variables `var` looks up (named `whose` in an
    /// error), with the flags' overrides.
    fn retry_backoff(
        &self,
        whose: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<retry::Backoff>, RunnerError> {
        let overrides = self.retry_overrides();
        let var = |name: &str| {
            overrides.iter().find(|(n, _)| *n == name).map(|(_, value)| value.clone()).or_else(|| var(name))
        };
        Options::from_vars(var).map(|options| options.retry).map_err(|e| RunnerError::invalid(whose, e))
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

/// The limits AWS puts on a mapping's settings together, which the flags can break even where
/// the template keeps them: a FIFO batch of at most 10 and no batching window; a batch above 10
/// only with a window of at least a second.
///
/// # Errors
/// [`RunnerError::Usage`] naming the setting, its value and the limit.
pub(crate) fn mapping_limits(mapping: &Mapping, fifo: bool, function: &str) -> Result<(), RunnerError> {
    let batch = mapping.batch_size.get();
    let problem = if fifo && batch > 10 {
        Some(format!("BatchSize {batch} on a FIFO queue: AWS allows at most 10 (--esm-batch-size)"))
    } else if fifo && !mapping.batching_window.is_zero() {
        Some("a batching window on a FIFO queue: AWS allows none (--batching-window 0)".to_owned())
    } else if batch > 10 && mapping.batching_window.is_zero() {
        Some(format!(
            "BatchSize {batch} above 10 needs a batching window of at least 1 s: AWS refuses the mapping (--batching-window)"
        ))
    } else {
        None
    };
    problem.map_or(Ok(()), |problem| Err(RunnerError::Usage(format!("{function}: {problem}"))))
}

/// A function timeout must leave time after the deadline reserve, or every batch would start
/// nothing and its messages would spend their receives on the way to the dead-letter queue.
///
/// # Errors
/// [`RunnerError::Usage`] naming both settings.
pub(crate) fn outlasts_reserve(
    timeout: Duration,
    options: &Options,
    function: &str,
) -> Result<(), RunnerError> {
    if timeout > options.deadline_reserve {
        return Ok(());
    }
    Err(RunnerError::Usage(format!(
        "{function}: the function timeout ({} ms) does not exceed its deadline reserve {DEADLINE_RESERVE_VAR} ({} ms), \
         so no message could ever start: raise --function-timeout (or Timeout), or lower {DEADLINE_RESERVE_VAR}",
        timeout.as_millis(),
        options.deadline_reserve.as_millis()
    )))
}

/// The function whose settings a run in process on `queue` follows: the one named, the only
/// one, or the one whose SQS event reads a queue of that name. `None` when the template has no
/// function with an SQS event.
fn choose_for_queue<'t>(
    template: &'t Template,
    name: Option<&str>,
    queue: &QueueRef,
) -> Result<Option<&'t FunctionSpec>, RunnerError> {
    if let Some(name) = name {
        return template.function(Some(name)).map(Some).map_err(|e| RunnerError::invalid("--function", e));
    }
    match template.functions.as_slice() {
        [] => Ok(None),
        [only] => Ok(Some(only)),
        several => {
            let queue_name = queue.as_str().rsplit('/').next().unwrap_or_default();
            let reading: Vec<&FunctionSpec> = several
                .iter()
                .filter(|f| template.event_queue(f).is_ok_and(|q| q.local_name() == queue_name))
                .collect();
            match reading.as_slice() {
                [one] => Ok(Some(one)),
                [_, _, ..] => Err(RunnerError::Usage(format!(
                    "several functions of the template read {queue_name:?} ({}): choose one with --function",
                    reading.iter().map(|f| f.logical_id.as_str()).collect::<Vec<_>>().join(", ")
                ))),
                [] => Err(RunnerError::Usage(format!(
                    "the template has several functions with SQS events ({}) and none reads {queue_name:?}: choose one with --function, or pass --no-template",
                    several.iter().map(|f| f.logical_id.as_str()).collect::<Vec<_>>().join(", ")
                ))),
            }
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

/// A bootstrap given on the command line, as an absolute path: the process runs in the binary's
/// own folder (LAMBDA_TASK_ROOT).
fn given_binary(path: &Path) -> Result<PathBuf, RunnerError> {
    match std::fs::canonicalize(path) {
        Ok(path) if path.is_file() => Ok(path),
        _ => Err(RunnerError::Usage(format!(
            "--lambda {}: no such file; build it first (cargo build -p handler --bin bootstrap)",
            path.display()
        ))),
    }
}

/// A function's binary as cargo built it: beside this runner (the same build), else in
/// `$CARGO_TARGET_DIR/debug` or `target/debug`.
fn built_binary(name: &str) -> Result<PathBuf, RunnerError> {
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join(name)));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let found = [beside, Some(target.join("debug").join(name))].into_iter().flatten().find(|p| p.is_file());
    found.and_then(|p| std::fs::canonicalize(p).ok()).ok_or_else(|| {
        RunnerError::Usage(format!(
            "--lambda: the function's binary {name:?} is not built: build it first (cargo build --bin {name}), or pass its path"
        ))
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<InProcessRun, String> {
        let cli = Cli::try_parse_from([&["local-runner", "--no-template"], args].concat())
            .map_err(|e| e.to_string())?;
        match cli.into_plan().map_err(|e| e.to_string())? {
            Plan::InProcess(run) => Ok(*run),
            Plan::Lambda(_) => Err("not in process".into()),
        }
    }

    #[test]
    fn a_queue_name_and_the_defaults_make_a_config() {
        let run = parse(&["--queue", "orders"]).unwrap();
        let config = &run.config;
        assert_eq!(config.queue, QueueRef::Name("orders".into()));
        assert_eq!(config.connection.endpoint_url.as_deref(), Some("http://localhost:4566"));
        assert_eq!(config.pollers.get(), 2);
        assert_eq!(run.batch_size, 10);
        assert_eq!(config.wait_time, Duration::from_secs(20));
        assert_eq!(config.in_flight_limit(&run.mode()).get(), 20);
    }

    #[test]
    fn the_command_lines_defaults_are_the_consumers() {
        let run = parse(&["--queue", "orders"]).unwrap();
        assert_eq!(
            run.mode(),
            Mode::InProcess {
                batch_size: NonZeroUsize::new(10).unwrap(),
                retry_backoff: Some(retry::Backoff::default()),
                heartbeat: true
            }
        );
        let from_flags = run.config;
        let defaults = Config::new(QueueRef::Name("orders".into()), Connection::new(None, "us-east-1"));
        assert_eq!(
            (from_flags.shutdown_timeout, from_flags.start_timeout, from_flags.stats_interval),
            (defaults.shutdown_timeout, defaults.start_timeout, defaults.stats_interval)
        );
    }

    #[test]
    fn mapping_settings_aws_refuses_together_are_refused_naming_the_flag() {
        let mapping = |batch: usize, window: u64| Mapping {
            batch_size: NonZeroUsize::new(batch).unwrap(),
            batching_window: Duration::from_secs(window),
            max_concurrency: NonZeroUsize::new(5).unwrap(),
            report_batch_item_failures: true,
            event_count_metrics: false,
        };
        assert!(mapping_limits(&mapping(10, 0), true, "Fn").is_ok());
        assert!(mapping_limits(&mapping(100, 1), false, "Fn").is_ok());
        for (batch, window, fifo, says) in [
            (11, 0, true, "--esm-batch-size"),
            (10, 5, true, "--batching-window 0"),
            (100, 0, false, "at least 1 s"),
        ] {
            let error = mapping_limits(&mapping(batch, window), fifo, "Fn").unwrap_err().to_string();
            assert!(error.contains("Fn") && error.contains(says), "{error}");
        }
    }

    #[test]
    fn the_retry_back_off_is_the_function_s_and_the_flags_override_it() {
        let path = std::env::temp_dir().join(format!("backoff-{}.yaml", std::process::id()));
        std::fs::write(
            &path,
            r#"
Resources:
  Queue: {Type: AWS::SQS::Queue}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables: {RETRY_BACKOFF_SECS: "5", RETRY_BACKOFF_MULTIPLIER: "3", RETRY_BACKOFF_JITTER: full}
      Events:
        Q: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
"#,
        )
        .unwrap();
        let template = path.display().to_string();
        let backoff = |extra: &[&str]| {
            let cli = Cli::try_parse_from(
                [&["local-runner", "--queue", "Queue", "--template", &template], extra].concat(),
            )
            .unwrap();
            match cli.into_plan() {
                Ok(Plan::InProcess(run)) => Ok(run.retry_backoff),
                Ok(Plan::Lambda(_)) => Err("not in process".to_owned()),
                Err(error) => Err(error.to_string()),
            }
        };
        let from_template = backoff(&[]).unwrap().unwrap();
        assert_eq!(
            (from_template.initial, from_template.multiplier, from_template.jitter),
            (Duration::from_secs(5), 3.0, retry::Jitter::Full)
        );
        let overridden = backoff(&["--retry-backoff", "1", "--retry-backoff-max", "10"]).unwrap().unwrap();
        assert_eq!(
            (overridden.initial, overridden.max, overridden.multiplier),
            (Duration::from_secs(1), Duration::from_secs(10), 3.0)
        );
        assert_eq!(backoff(&["--retry-backoff", "0"]).unwrap(), None, "0: the queue's timeout");
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replace("full", "lots")).unwrap();
        let error = backoff(&[]).unwrap_err();
        assert!(error.contains("Fn") && error.contains("RETRY_BACKOFF_JITTER"), "{error}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn in_process_holds_as_many_messages_as_the_deployed_function_handles_unless_told() {
        let path = std::env::temp_dir().join(format!("in-flight-{}.yaml", std::process::id()));
        std::fs::write(
            &path,
            r#"
Resources:
  Queue: {Type: AWS::SQS::Queue}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Q:
          Type: SQS
          Properties: {Queue: !GetAtt Queue.Arn, BatchSize: 10, ScalingConfig: {MaximumConcurrency: 7}}
"#,
        )
        .unwrap();
        let template = path.display().to_string();
        let in_process = |extra: &[&str]| {
            let cli = Cli::try_parse_from(
                [&["local-runner", "--queue", "Queue", "--template", &template], extra].concat(),
            )
            .unwrap();
            match cli.into_plan().unwrap() {
                Plan::InProcess(run) => run.config.in_flight_limit(&run.mode()).get(),
                Plan::Lambda(_) => 0,
            }
        };
        assert_eq!(in_process(&[]), 70, "BatchSize × MaximumConcurrency");
        assert_eq!(in_process(&["--max-in-flight", "15"]), 15, "the flag wins");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn in_process_the_templates_timeout_is_each_batchs_deadline_unless_the_flag_says_otherwise() {
        let path = std::env::temp_dir().join(format!("timeout-{}.yaml", std::process::id()));
        std::fs::write(
            &path,
            r#"
Resources:
  Queue: {Type: AWS::SQS::Queue, Properties: {VisibilityTimeout: 120}}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 17
      Events:
        Q: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
"#,
        )
        .unwrap();
        let template = path.display().to_string();
        let timeout = |extra: &[&str]| {
            let cli = Cli::try_parse_from([&["local-runner", "--queue", "Queue"], extra].concat()).unwrap();
            match cli.into_plan().unwrap() {
                Plan::InProcess(run) => run.function_timeout,
                Plan::Lambda(_) => None,
            }
        };
        assert_eq!(
            timeout(&["--template", &template]),
            Some(Duration::from_secs(17)),
            "the template's Timeout"
        );
        assert_eq!(
            timeout(&["--template", &template, "--function-timeout", "9"]),
            Some(Duration::from_secs(9))
        );
        assert_eq!(timeout(&["--no-template"]), None, "no function, no deadline");
        assert_eq!(timeout(&["--no-template", "--function-timeout", "9"]), Some(Duration::from_secs(9)));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_queue_url_is_used_as_it_is() {
        let config = parse(&["--queue", "http://127.0.0.1:4566/000000000000/orders"]).unwrap().config;
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
    fn an_endpoint_that_cannot_be_one_is_a_usage_error() {
        for endpoint in [
            "http://",
            "https://",
            "http:// 127.0.0.1:4566",
            "http://127.0.0.1:99999",
            "http://a b",
            "http://:4566",
        ] {
            let error = parse(&["--queue", "q", "--endpoint-url", endpoint]).unwrap_err();
            assert!(error.contains("--endpoint-url"), "{endpoint}: {error}");
        }
        for endpoint in ["http://localhost:4566", "https://sqs.us-east-1.amazonaws.com/", "http://[::1]:4566"]
        {
            assert!(parse(&["--queue", "q", "--endpoint-url", endpoint]).is_ok(), "{endpoint}");
        }
    }

    #[test]
    fn an_endpoint_without_a_scheme_is_rejected_and_an_empty_one_means_aws() {
        assert!(parse(&["--queue", "q", "--endpoint-url", "localhost:4566"]).is_err());
        assert_eq!(
            parse(&["--queue", "q", "--endpoint-url", ""]).unwrap().config.connection.endpoint_url,
            None
        );
    }

    #[test]
    fn exit_when_idle_caps_the_long_poll_wait() {
        let config = parse(&["--queue", "q", "--exit-when-idle", "3"]).unwrap().config;
        assert_eq!(config.long_poll(), Duration::from_secs(3));
    }

    #[test]
    fn with_several_functions_the_one_reading_the_queue_is_chosen() {
        let template = Template::parse(
            r#"
Resources:
  A:
    Type: AWS::Serverless::Function
    Properties:
      Events: {Q: {Type: SQS, Properties: {Queue: !GetAtt QueueA.Arn}}}
  B:
    Type: AWS::Serverless::Function
    Properties:
      Events: {Q: {Type: SQS, Properties: {Queue: !GetAtt QueueB.Arn}}}
  QueueA: {Type: AWS::SQS::Queue, Properties: {QueueName: orders}}
  QueueB: {Type: AWS::SQS::Queue}
"#,
        )
        .unwrap();
        let chosen = |queue: &str| {
            choose_for_queue(&template, None, &QueueRef::parse(queue).unwrap())
                .map(|f| f.map(|f| f.logical_id.clone()))
        };
        assert_eq!(chosen("orders").unwrap().as_deref(), Some("A"));
        assert_eq!(chosen("http://127.0.0.1:4566/000000000000/QueueB").unwrap().as_deref(), Some("B"));
        assert!(matches!(chosen("other"), Err(RunnerError::Usage(_))));
    }
}
