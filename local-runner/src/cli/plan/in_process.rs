//! The plan of a run in this process: one queue, and the template's function that reads it,
//! whose settings the run follows.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{InProcessRun, TemplateFunction, filters};
use crate::aws::{Connection, QueueRef};
use crate::cli::args::Cli;
use crate::error::RunnerError;
use crate::lambda::DEFAULT_MAX_CONCURRENCY;
use crate::template::{FunctionSpec, Template};

impl Cli {
    /// The handler in this process on `queue`, following the template's function that reads it
    /// (its filters, timeout, concurrency and variables), or its own defaults without one.
    pub(super) fn in_process(
        &self,
        queue: Option<QueueRef>,
        connection: Connection,
        template: Option<(PathBuf, Template)>,
        process_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<InProcessRun, RunnerError> {
        // clap ties these to --lambda, but lets them through beside --no-template (which
        // conflicts with --lambda): they would be accepted and ignored.
        if self.esm_batch_size.is_some() || self.batching_window.is_some() || self.max_concurrency.is_some() {
            return Err(RunnerError::Usage(
                "--esm-batch-size, --batching-window and --max-concurrency set the emulated event source mapping: they need --lambda".into(),
            ));
        }
        let queue = queue.ok_or_else(|| {
            RunnerError::Usage("--queue (or SQS_QUEUE) must name a queue or give its URL".into())
        })?;
        let mut config = self.config(queue.clone(), connection);
        let function_timeout = self.function_timeout.map(Duration::from_secs);
        let function = match &template {
            Some((_, template)) => choose_for_queue(template, self.function.as_deref(), &queue)?,
            None => None,
        };
        let (Some((path, _)), Some(function)) = (&template, function) else {
            return Ok(InProcessRun {
                config,
                function_timeout,
                function: None,
                options: self.function_options("the environment", function_timeout, process_env)?,
                heartbeat: !self.no_heartbeat,
                batch_size: self.batch_size,
            });
        };
        let event = &function.sqs_events[0];
        config.filters = Arc::new(filters(function, event)?);
        config.event_count_metrics = event.event_count_metrics;
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
        // The function's Timeout is each batch's deadline, as when it is deployed.
        let function_timeout = function_timeout.or(Some(function.timeout));
        // Its variables are set in this process for the handler, over the process's own.
        let options = self.function_options(&function.logical_id, function_timeout, |name| {
            function.environment.get(name).cloned().or_else(|| process_env(name))
        })?;
        Ok(InProcessRun {
            config,
            function_timeout,
            function: Some(TemplateFunction {
                name: function.logical_id.clone(),
                template: path.clone(),
                environment: function.environment.clone(),
            }),
            options,
            heartbeat: !self.no_heartbeat,
            batch_size: self.batch_size,
        })
    }
}

/// The function whose settings a run in process on `queue` follows: the one named, the only
/// one, or the one whose SQS event reads a queue of that name. `None` when the template has no
/// function with an SQS event.
pub(super) fn choose_for_queue<'t>(
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
