//! The rules a template must keep for the handler to work as written (`local-runner check`).

use super::filter::{Filters, lint};
use super::{Finding, FunctionSpec, SqsEventSpec, Template};

/// FIFO queues: at most 10 messages a batch.
const MAX_FIFO_BATCH: u64 = 10;
/// AWS's guidance: queue visibility timeout at least 6 × the function timeout (+ window).
const VISIBILITY_FACTOR: u32 = 6;

impl Template {
    /// The rules the code relies on, checked for every function's SQS events.
    #[must_use]
    pub fn check(&self) -> Vec<Finding> {
        let mut findings = self.problems.clone();
        if self.functions.is_empty() {
            findings.push(Finding {
                rule: "sqs-function",
                message: "no AWS::Serverless::Function has an SQS event".into(),
                warning: false,
            });
        }
        for function in &self.functions {
            Self::check_function(function, &mut findings);
            self.check_idempotency(function, &mut findings);
            self.check_payload_bucket(function, &mut findings);
            for event in &function.sqs_events {
                self.check_event(function, event, &mut findings);
            }
        }
        self.check_shared_queues(&mut findings);
        findings
    }

    /// Two event source mappings on one queue split its messages between them; with a filter
    /// on either, each deletes the messages meant for the other.
    fn check_shared_queues(&self, findings: &mut Vec<Finding>) {
        let mut by_queue: std::collections::BTreeMap<&str, Vec<(&FunctionSpec, &SqsEventSpec)>> =
            Default::default();
        for function in &self.functions {
            for event in &function.sqs_events {
                if let Some(queue) = &event.queue {
                    by_queue.entry(queue).or_default().push((function, event));
                }
            }
        }
        for (queue, mappings) in by_queue {
            if mappings.len() > 1 && mappings.iter().all(|(_, event)| event.filters.is_empty()) {
                let names: Vec<String> =
                    mappings.iter().map(|(f, e)| format!("{}.Events.{}", f.logical_id, e.name)).collect();
                findings.push(Finding {
                    rule: "shared-queue",
                    message: format!(
                        "{queue} feeds {}: each message goes to one of them, whichever polls first; a local run \
                         on {queue} must choose one with --function",
                        names.join(" and ")
                    ),
                    warning: true,
                });
            }
            if mappings.len() > 1 && mappings.iter().any(|(_, event)| !event.filters.is_empty()) {
                let names: Vec<String> =
                    mappings.iter().map(|(f, e)| format!("{}.Events.{}", f.logical_id, e.name)).collect();
                findings.push(Finding {
                    rule: "filter-shared-queue",
                    message: format!(
                        "{queue} feeds {}, and one of them filters: each mapping deletes the messages its filters \
                         do not match, including those the other would handle; give each function its own queue",
                        names.join(" and ")
                    ),
                    warning: false,
                });
            }
        }
    }

    fn check_filters(&self, at: &str, event: &SqsEventSpec, findings: &mut Vec<Finding>) {
        if event.filters.is_empty() {
            return;
        }
        let mut found = |rule, message: String, warning| findings.push(Finding { rule, message, warning });
        if event.filter_written_as_mapping {
            found(
                "filter-pattern",
                format!(
                    "{at}: FilterCriteria Pattern is a YAML mapping; CloudFormation takes a string of JSON (quote it)"
                ),
                false,
            );
        }
        if let Err(error) = Filters::parse(&event.filters) {
            found("filter-pattern", format!("{at}: FilterCriteria {error}"), false);
        }
        for (index, pattern) in event.filters.iter().enumerate() {
            for problem in lint(pattern) {
                found(
                    "filter-never-matches",
                    format!("{at}: FilterCriteria filter {}: {problem}", index + 1),
                    false,
                );
            }
        }
        let fifo = event.queue.as_ref().and_then(|q| self.queues.get(q)).is_some_and(|q| q.fifo);
        if fifo {
            found(
                "filter-fifo",
                format!(
                    "{at}: filters on a FIFO queue: the messages they do not match are deleted, so a group keeps \
                     its order only among the messages that match"
                ),
                true,
            );
        }
    }

    /// What holds for the function whatever its events: its environment as a local run gets it,
    /// and its options against its timeout.
    fn check_function(function: &FunctionSpec, findings: &mut Vec<Finding>) {
        for (name, value) in &function.unresolved_environment {
            findings.push(Finding {
                rule: "environment-unresolved",
                message: format!(
                    "{}.Environment.Variables.{name} is {value}, which only a deployment resolves: a local run \
                     leaves it unset (give a plain value or a parameter, or set it in the environment)",
                    function.logical_id
                ),
                warning: true,
            });
        }
        let mut found = |rule, message: String| findings.push(Finding { rule, message, warning: false });
        let var = |name: &str| function.environment.get(name).cloned();
        match super::function_options(var, Some(function.timeout)) {
            Err(error @ super::OptionsProblem::Unreadable(_)) => {
                found("handler-options", format!("{}.Environment.Variables: {error}", function.logical_id));
            }
            Err(error @ super::OptionsProblem::InsideReserve { .. }) => {
                found("deadline-reserve", format!("{}: {error}", function.logical_id));
            }
            Ok(_) => {}
        }
    }

    fn check_event(&self, function: &FunctionSpec, event: &SqsEventSpec, findings: &mut Vec<Finding>) {
        let at = format!("{}.Events.{}", function.logical_id, event.name);
        self.check_filters(&at, event, findings);
        let mut found = |rule, message: String| findings.push(Finding { rule, message, warning: false });
        for policy in &function.broad_policies {
            found(
                "least-privilege",
                format!(
                    "{}.Policies: {policy} grants far more than polling one queue; use SQSPollerPolicy \
                     with the queue's name",
                    function.logical_id
                ),
            );
        }
        if !event.report_batch_item_failures {
            found(
                "report-batch-item-failures",
                format!(
                    "{at}: FunctionResponseTypes lacks ReportBatchItemFailures; the handler returns \
                     partial batch responses, and without it one failed message fails and retries the \
                     whole batch"
                ),
            );
        }
        let Some(queue) = event.queue.as_ref().and_then(|q| self.queues.get(q)) else {
            found(
                "queue-in-template",
                format!(
                    "{at}: Queue does not point at an AWS::SQS::Queue of this template (use !GetAtt \
                     <Queue>.Arn), so its settings cannot be checked"
                ),
            );
            return;
        };
        let window = event.batching_window;
        let needed = function.timeout * VISIBILITY_FACTOR + window;
        if queue.visibility_timeout < needed {
            found(
                "visibility-timeout",
                format!(
                    "{}: VisibilityTimeout {} s is below 6 x the function's Timeout ({} s) + \
                     MaximumBatchingWindowInSeconds ({} s) = {} s; messages could be delivered again \
                     while a batch is still running",
                    queue.logical_id,
                    queue.visibility_timeout.as_secs(),
                    function.timeout.as_secs(),
                    window.as_secs(),
                    needed.as_secs()
                ),
            );
        }
        if queue.fifo && event.batch_size > MAX_FIFO_BATCH {
            found(
                "fifo-batch-size",
                format!(
                    "{at}: BatchSize {} on FIFO queue {}; FIFO allows at most 10",
                    event.batch_size, queue.logical_id
                ),
            );
        }
        if queue.fifo && !window.is_zero() {
            found(
                "fifo-batching-window",
                format!(
                    "{at}: MaximumBatchingWindowInSeconds is set on FIFO queue {}; FIFO event sources \
                     do not support a batching window",
                    queue.logical_id
                ),
            );
        }
        if !queue.fifo && event.batch_size > 10 && window.is_zero() {
            found(
                "batching-window",
                format!(
                    "{at}: BatchSize {} above 10 needs MaximumBatchingWindowInSeconds of at least 1",
                    event.batch_size
                ),
            );
        }
        let dlq = queue.redrive.as_ref().and_then(|(dlq, _)| dlq.as_ref()).and_then(|id| self.queues.get(id));
        if let Some(dlq) = dlq.filter(|dlq| dlq.fifo != queue.fifo) {
            let kind = |fifo| if fifo { "a FIFO queue" } else { "a standard queue" };
            found(
                "dead-letter-queue-type",
                format!(
                    "{}: its dead-letter queue {} is {} but the queue is {}; SQS requires both to be \
                     of the same type",
                    queue.logical_id,
                    dlq.logical_id,
                    kind(dlq.fifo),
                    kind(queue.fifo)
                ),
            );
        }
        for unencrypted in [Some(queue), dlq].into_iter().flatten().filter(|q| !q.encrypted) {
            found(
                "queue-encryption",
                format!(
                    "{}: not encrypted at rest; set SqsManagedSseEnabled: true (or a KmsMasterKeyId)",
                    unencrypted.logical_id
                ),
            );
        }
        if queue.redrive.is_none() && !queue.redrive_unreadable {
            found(
                "redrive-policy",
                format!(
                    "{}: no RedrivePolicy; a message that always fails would be retried until it \
                     expires instead of moving to a dead-letter queue",
                    queue.logical_id
                ),
            );
        }
    }
}
