//! The rules a template must keep for the handler to work as written (`local-runner check`).

use super::{Finding, FunctionSpec, SqsEventSpec, Template};

/// FIFO queues: at most 10 messages a batch.
const MAX_FIFO_BATCH: u64 = 10;
/// AWS's guidance: queue visibility timeout at least 6 × the function timeout (+ window).
const VISIBILITY_FACTOR: u32 = 6;

impl Template {
    /// The rules the code relies on, checked for every function's SQS events.
    #[must_use]
    pub fn check(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        if self.functions.is_empty() {
            findings.push(Finding {
                rule: "sqs-function",
                message: "no AWS::Serverless::Function has an SQS event".into(),
            });
        }
        for function in &self.functions {
            for event in &function.sqs_events {
                self.check_event(function, event, &mut findings);
            }
        }
        findings
    }

    fn check_event(&self, function: &FunctionSpec, event: &SqsEventSpec, findings: &mut Vec<Finding>) {
        let at = format!("{}.Events.{}", function.logical_id, event.name);
        let mut found = |rule, message: String| findings.push(Finding { rule, message });
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
        if let Some(concurrency) = event.max_concurrency.filter(|c| !(2..=1000).contains(c)) {
            found(
                "maximum-concurrency",
                format!("{at}: ScalingConfig.MaximumConcurrency is {concurrency}; Lambda accepts 2 to 1000"),
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
        if queue.redrive.is_none() {
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
