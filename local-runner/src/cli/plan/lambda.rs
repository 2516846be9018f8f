//! The plan of a run through the real Lambda binaries: one emulated event source mapping per SQS
//! event of the template's functions.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{LambdaRun, filters};
use crate::aws::{Connection, QueueRef};
use crate::cli::args::{Cli, DEFAULT_TEMPLATE};
use crate::error::RunnerError;
use crate::lambda::{LambdaSpec, Mapping};
use crate::template::{FunctionSpec, SqsEventSpec, Template};

impl Cli {
    /// A mapping per SQS event of the template's functions (or of the one `--function` names),
    /// each invoking `bootstrap` or the function's built binary.
    pub(super) fn lambda(
        &self,
        bootstrap: Option<&Path>,
        queue: Option<QueueRef>,
        connection: &Connection,
        template: Option<(PathBuf, Template)>,
    ) -> Result<Vec<LambdaRun>, RunnerError> {
        let bootstrap = bootstrap.map(given_binary).transpose()?;
        let Some((path, template)) = template else {
            let path = self.template.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_TEMPLATE));
            return Err(RunnerError::Usage(format!(
                "--lambda needs the template of the function ({} is not there): pass --template PATH",
                path.display()
            )));
        };
        for finding in template.check() {
            tracing::warn!(rule = finding.rule, "{}", finding.message);
        }
        let functions: Vec<&FunctionSpec> = match &self.function {
            Some(name) => {
                vec![template.function(Some(name)).map_err(|e| RunnerError::invalid("--function", e))?]
            }
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
            if let Some(timeout) = self.function_timeout {
                spec.timeout = Duration::from_secs(timeout);
            }
            // The function applies the back-off: the flags reach it as its variables.
            for (name, value) in self.retry_overrides() {
                spec.environment.insert(name.to_owned(), value);
            }
            // The bootstrap reads the same options from the same variables when it starts.
            let options = self.function_options(&function.logical_id, Some(spec.timeout), |name| {
                spec.environment.get(name).cloned()
            })?;
            runs.push(LambdaRun { config, function: spec, mapping, options });
        }
        // One status line on a terminal: the first function's.
        for run in runs.iter_mut().skip(1) {
            run.config.progress = false;
        }
        Ok(runs)
    }
}

/// The limits AWS puts on a mapping's settings together, which the flags can break even where
/// the template keeps them: a FIFO batch of at most 10 and no batching window; a batch above 10
/// only with a window of at least a second.
///
/// # Errors
/// [`RunnerError::Usage`] naming the setting, its value and the limit.
fn mapping_limits(mapping: &Mapping, fifo: bool, function: &str) -> Result<(), RunnerError> {
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
    use std::num::NonZeroUsize;

    use super::*;

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
}
