//! What the runner reads from a SAM template: the function behind an SQS event, its event source
//! mapping settings, and the queue it polls; and the rules that template must keep for the code
//! to work as written (`local-runner check`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

/// Lambda's default function timeout when the template sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Lambda's default memory size.
const DEFAULT_MEMORY_MB: u64 = 128;
/// SQS's default visibility timeout.
const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);
/// The event source mapping's default batch size.
const DEFAULT_BATCH_SIZE: u64 = 10;
/// FIFO queues: at most 10 messages a batch.
const MAX_FIFO_BATCH: u64 = 10;
/// AWS's guidance: queue visibility timeout at least 6 × the function timeout (+ window).
const VISIBILITY_FACTOR: u32 = 6;

/// A template that cannot be used.
#[derive(Debug, Error)]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not YAML (or JSON).
    #[error("{path} is not a valid template: {reason}")]
    Parse {
        /// The path given.
        path: String,
        /// What the parser said.
        reason: String,
    },
    /// No function with an SQS event, or more than one and none chosen.
    #[error("{0}")]
    Function(String),
}

/// An `AWS::SQS::Queue` resource.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// Its logical id.
    pub logical_id: String,
    /// `FifoQueue: true`.
    pub fifo: bool,
    /// `VisibilityTimeout`, or SQS's default.
    pub visibility_timeout: Duration,
    /// `RedrivePolicy`: the DLQ's logical id (when it is one of the template's) and
    /// `maxReceiveCount`.
    pub redrive: Option<(Option<String>, u64)>,
    /// Encrypted at rest: `SqsManagedSseEnabled: true` or a `KmsMasterKeyId`.
    pub encrypted: bool,
    /// The FIFO settings given as plain values (`ContentBasedDeduplication`,
    /// `DeduplicationScope`, `FifoThroughputLimit`), by attribute name, as text.
    pub fifo_settings: BTreeMap<String, String>,
}

/// The FIFO queue attributes `up` carries over from the template.
const FIFO_SETTINGS: [&str; 3] = ["ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"];

/// An `SQS` event of a function: the event source mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsEventSpec {
    /// The event's name.
    pub name: String,
    /// The queue's logical id, when the event points at one of the template's queues.
    pub queue: Option<String>,
    /// `BatchSize`.
    pub batch_size: u64,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// `FunctionResponseTypes` includes `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency`.
    pub max_concurrency: Option<u64>,
}

/// An `AWS::Serverless::Function` with at least one SQS event.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    /// Its logical id.
    pub logical_id: String,
    /// `Timeout` (function or Globals), or Lambda's default.
    pub timeout: Duration,
    /// `MemorySize`.
    pub memory_mb: u64,
    /// `Environment.Variables`, Globals merged under the function's own (plain strings only).
    pub environment: BTreeMap<String, String>,
    /// `LoggingConfig.LogFormat`.
    pub log_format: Option<String>,
    /// `LoggingConfig.ApplicationLogLevel`.
    pub log_level: Option<String>,
    /// Its SQS events.
    pub sqs_events: Vec<SqsEventSpec>,
    /// Entries of `Policies` that grant far more than the function needs (`*FullAccess`,
    /// `AdministratorAccess`, statements allowing `*` or `sqs:*`).
    pub broad_policies: Vec<String>,
}

/// The parts of a SAM template the runner uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Functions with SQS events.
    pub functions: Vec<FunctionSpec>,
    /// Queues, by logical id.
    pub queues: BTreeMap<String, QueueSpec>,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A short stable name for the rule.
    pub rule: &'static str,
    /// What is wrong and what to change.
    pub message: String,
}

impl Template {
    /// Reads and parses a template file.
    ///
    /// # Errors
    /// [`TemplateError::Read`] or [`TemplateError::Parse`].
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| TemplateError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text).map_err(|reason| TemplateError::Parse { path: path.display().to_string(), reason })
    }

    /// Parses template text (YAML with CloudFormation's short-form tags, or JSON).
    ///
    /// # Errors
    /// A description of what is not valid.
    pub fn parse(text: &str) -> Result<Self, String> {
        let yaml: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        let doc = to_json(yaml);
        let resources = doc.get("Resources").and_then(Value::as_object).ok_or("no Resources section")?;
        let globals = doc.pointer("/Globals/Function").cloned().unwrap_or(Value::Null);

        let mut queues = BTreeMap::new();
        for (id, resource) in resources {
            if resource["Type"] == "AWS::SQS::Queue" {
                let props = &resource["Properties"];
                let redrive = redrive_policy(&props["RedrivePolicy"]);
                queues.insert(
                    id.clone(),
                    QueueSpec {
                        logical_id: id.clone(),
                        fifo: as_bool(&props["FifoQueue"]).unwrap_or(false),
                        visibility_timeout: as_u64(&props["VisibilityTimeout"])
                            .map_or(DEFAULT_VISIBILITY, Duration::from_secs),
                        redrive,
                        encrypted: as_bool(&props["SqsManagedSseEnabled"]).unwrap_or(false)
                            || !props["KmsMasterKeyId"].is_null(),
                        fifo_settings: FIFO_SETTINGS
                            .iter()
                            .filter_map(|&key| Some((key.to_owned(), scalar_text(&props[key])?)))
                            .collect(),
                    },
                );
            }
        }

        let mut functions = Vec::new();
        for (id, resource) in resources {
            if resource["Type"] != "AWS::Serverless::Function" {
                continue;
            }
            let props = &resource["Properties"];
            let setting = |key: &str| {
                let own = &props[key];
                if own.is_null() { globals[key].clone() } else { own.clone() }
            };
            let mut sqs_events = Vec::new();
            if let Some(events) = props["Events"].as_object() {
                for (name, event) in events {
                    if event["Type"] != "SQS" {
                        continue;
                    }
                    let ep = &event["Properties"];
                    let responses = ep["FunctionResponseTypes"].as_array();
                    sqs_events.push(SqsEventSpec {
                        name: name.clone(),
                        queue: logical_ref(&ep["Queue"]),
                        batch_size: as_u64(&ep["BatchSize"]).unwrap_or(DEFAULT_BATCH_SIZE),
                        batching_window: Duration::from_secs(
                            as_u64(&ep["MaximumBatchingWindowInSeconds"]).unwrap_or(0),
                        ),
                        report_batch_item_failures: responses
                            .is_some_and(|r| r.iter().any(|t| t == "ReportBatchItemFailures")),
                        max_concurrency: as_u64(&ep["ScalingConfig"]["MaximumConcurrency"]),
                    });
                }
            }
            if sqs_events.is_empty() {
                continue;
            }
            let mut environment = BTreeMap::new();
            for vars in [&globals["Environment"]["Variables"], &props["Environment"]["Variables"]] {
                for (key, value) in vars.as_object().into_iter().flatten() {
                    if let Some(text) = scalar_text(value) {
                        environment.insert(key.clone(), text);
                    }
                }
            }
            let logging = setting("LoggingConfig");
            functions.push(FunctionSpec {
                logical_id: id.clone(),
                timeout: as_u64(&setting("Timeout")).map_or(DEFAULT_TIMEOUT, Duration::from_secs),
                memory_mb: as_u64(&setting("MemorySize")).unwrap_or(DEFAULT_MEMORY_MB),
                environment,
                log_format: logging["LogFormat"].as_str().map(str::to_owned),
                log_level: logging["ApplicationLogLevel"].as_str().map(str::to_owned),
                sqs_events,
                broad_policies: broad_policies(&props["Policies"]),
            });
        }
        Ok(Self { functions, queues })
    }

    /// The function to run: the one named, or the only one with an SQS event.
    ///
    /// # Errors
    /// [`TemplateError::Function`] when there is none, or several and none was named.
    pub fn function(&self, name: Option<&str>) -> Result<&FunctionSpec, TemplateError> {
        let names = || self.functions.iter().map(|f| f.logical_id.as_str()).collect::<Vec<_>>().join(", ");
        match (name, self.functions.as_slice()) {
            (Some(name), _) => self.functions.iter().find(|f| f.logical_id == name).ok_or_else(|| {
                TemplateError::Function(format!(
                    "no function {name:?} with an SQS event in the template (there is: {})",
                    names()
                ))
            }),
            (None, [only]) => Ok(only),
            (None, []) => Err(TemplateError::Function(
                "the template has no AWS::Serverless::Function with an SQS event".into(),
            )),
            (None, _) => Err(TemplateError::Function(format!(
                "the template has several functions with SQS events ({}): choose one with --function",
                names()
            ))),
        }
    }

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

/// YAML to JSON, with CloudFormation's short-form tags in their long form
/// (`!GetAtt Queue.Arn` becomes `{"Fn::GetAtt": ["Queue", "Arn"]}`, `!Ref X` becomes `{"Ref": "X"}`).
fn to_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            n.as_u64().map(Value::from).or_else(|| n.as_i64().map(Value::from)).unwrap_or_else(|| {
                n.as_f64().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
            })
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .filter_map(|(k, v)| match k {
                    Y::String(key) => Some((key, to_json(v))),
                    Y::Number(n) => Some((n.to_string(), to_json(v))),
                    Y::Bool(b) => Some((b.to_string(), to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let inner = to_json(tagged.value);
            let (key, inner) = match (tag, inner) {
                ("Ref", inner) => ("Ref".to_owned(), inner),
                ("GetAtt", Value::String(s)) => {
                    let parts = s.splitn(2, '.').map(|p| Value::String(p.to_owned())).collect();
                    ("Fn::GetAtt".to_owned(), Value::Array(parts))
                }
                (other, inner) => (format!("Fn::{other}"), inner),
            };
            Value::Object([(key, inner)].into_iter().collect())
        }
    }
}

/// The logical id a `Queue` property points at: `{"Fn::GetAtt": [Id, "Arn"]}` or `{"Ref": Id}`.
fn logical_ref(value: &Value) -> Option<String> {
    value["Fn::GetAtt"][0].as_str().or_else(|| value["Ref"].as_str()).map(str::to_owned)
}

fn redrive_policy(value: &Value) -> Option<(Option<String>, u64)> {
    if value.is_null() {
        return None;
    }
    // RedrivePolicy may be an object or a JSON string.
    let parsed;
    let policy = match value {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).ok()?;
            &parsed
        }
        other => other,
    };
    let count = as_u64(&policy["maxReceiveCount"])?;
    Some((logical_ref(&policy["deadLetterTargetArn"]), count))
}

/// The entries of a function's `Policies` that are far broader than an SQS consumer needs.
fn broad_policies(policies: &Value) -> Vec<String> {
    let entries: Vec<&Value> = match policies {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    };
    let mut broad = Vec::new();
    for entry in entries {
        if let Some(name) = entry.as_str() {
            if ["FullAccess", "AdministratorAccess", "PowerUserAccess"].iter().any(|b| name.contains(b)) {
                broad.push(name.to_owned());
            }
            continue;
        }
        let statements = match &entry["Statement"] {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            single => vec![single],
        };
        for statement in statements {
            let actions: Vec<&str> = match &statement["Action"] {
                Value::String(action) => vec![action.as_str()],
                Value::Array(actions) => actions.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if statement["Effect"] != "Deny"
                && actions.iter().any(|a| *a == "*" || a.eq_ignore_ascii_case("sqs:*"))
            {
                broad.push(format!("a statement allowing {}", actions.join(", ")));
            }
        }
    }
    broad
}

fn as_u64(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

fn as_bool(value: &Value) -> Option<bool> {
    value.as_bool().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO_TEMPLATE: &str = include_str!("../../template.yaml");
    const REPO_FIFO_TEMPLATE: &str = include_str!("../../template-fifo.yaml");

    /// A template that keeps every rule; each test breaks one.
    const GOOD: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 30
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            BatchSize: 10
            MaximumBatchingWindowInSeconds: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 5
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 185
      SqsManagedSseEnabled: true
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
        maxReceiveCount: 5
  Dlq:
    Type: AWS::SQS::Queue
    Properties:
      KmsMasterKeyId: alias/aws/sqs
"#;

    fn rules(text: &str) -> Vec<&'static str> {
        Template::parse(text).unwrap().check().into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn the_repository_template_keeps_every_rule() {
        assert_eq!(Template::parse(REPO_TEMPLATE).unwrap().check(), []);
    }

    #[test]
    fn the_fifo_variant_keeps_every_rule_and_is_fifo_end_to_end() {
        let template = Template::parse(REPO_FIFO_TEMPLATE).unwrap();
        assert_eq!(template.check(), []);
        let event = &template.function(None).unwrap().sqs_events[0];
        assert_eq!((event.batch_size, event.batching_window), (10, Duration::ZERO));
        let queue = &template.queues["Queue"];
        assert!(queue.fifo && template.queues["DeadLetterQueue"].fifo);
        let settings: Vec<(&str, &str)> =
            queue.fifo_settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            settings,
            [
                ("ContentBasedDeduplication", "true"),
                ("DeduplicationScope", "messageGroup"),
                ("FifoThroughputLimit", "perMessageGroupId")
            ]
        );
        assert_eq!(queue.visibility_timeout, Duration::from_secs(180));
    }

    #[test]
    fn a_dead_letter_queue_of_the_other_type_is_caught() {
        let fifo_queue = GOOD
            .replace("MaximumBatchingWindowInSeconds: 5", "MaximumBatchingWindowInSeconds: 0")
            .replace("VisibilityTimeout: 185", "VisibilityTimeout: 185\n      FifoQueue: true");
        let both = fifo_queue
            .replace("KmsMasterKeyId: alias/aws/sqs", "KmsMasterKeyId: alias/aws/sqs\n      FifoQueue: true");
        assert_eq!(rules(&both), Vec::<&str>::new(), "a FIFO queue with a FIFO DLQ is fine");
        assert_eq!(rules(&fifo_queue), ["dead-letter-queue-type"]);
        let fifo_dlq = GOOD
            .replace("KmsMasterKeyId: alias/aws/sqs", "KmsMasterKeyId: alias/aws/sqs\n      FifoQueue: true");
        assert_eq!(rules(&fifo_dlq), ["dead-letter-queue-type"]);
    }

    #[test]
    fn the_repository_template_is_read_with_its_tags() {
        let template = Template::parse(REPO_TEMPLATE).unwrap();
        let function = template.function(None).unwrap();
        assert_eq!(function.logical_id, "HandlerFunction");
        assert_eq!(function.timeout, Duration::from_secs(30));
        assert_eq!(function.environment.get("HANDLER_CONCURRENCY").map(String::as_str), Some("10"));
        let event = &function.sqs_events[0];
        assert_eq!(event.queue.as_deref(), Some("Queue"));
        assert_eq!((event.batch_size, event.max_concurrency), (10, Some(5)));
        assert!(event.report_batch_item_failures);
        let queue = &template.queues["Queue"];
        assert_eq!(queue.redrive, Some((Some("DeadLetterQueue".into()), 5)));
    }

    #[test]
    fn a_template_that_keeps_the_rules_has_no_findings() {
        assert_eq!(rules(GOOD), Vec::<&str>::new());
    }

    #[test]
    fn a_visibility_timeout_below_six_times_the_timeout_plus_window_is_caught() {
        // 6 x 30 + 5 = 185: 184 is one second short.
        assert_eq!(
            rules(&GOOD.replace("VisibilityTimeout: 185", "VisibilityTimeout: 184")),
            ["visibility-timeout"]
        );
    }

    #[test]
    fn missing_report_batch_item_failures_is_caught() {
        assert_eq!(
            rules(
                &GOOD
                    .replace("FunctionResponseTypes: [ReportBatchItemFailures]", "FunctionResponseTypes: []")
            ),
            ["report-batch-item-failures"]
        );
    }

    /// [`GOOD`] with a FIFO queue and a FIFO dead-letter queue (the batching window still set).
    fn fifo_good() -> String {
        GOOD.replace("VisibilityTimeout: 185", "VisibilityTimeout: 185\n      FifoQueue: true")
            .replace("KmsMasterKeyId: alias/aws/sqs", "KmsMasterKeyId: alias/aws/sqs\n      FifoQueue: true")
    }

    #[test]
    fn a_fifo_queue_with_a_batch_above_ten_is_caught() {
        let fifo = fifo_good()
            .replace("MaximumBatchingWindowInSeconds: 5", "MaximumBatchingWindowInSeconds: 0")
            .replace("BatchSize: 10", "BatchSize: 11");
        assert_eq!(rules(&fifo), ["fifo-batch-size"]);
    }

    #[test]
    fn a_fifo_queue_with_a_batching_window_is_caught() {
        assert_eq!(rules(&fifo_good()), ["fifo-batching-window"]);
    }

    #[test]
    fn a_queue_without_a_redrive_policy_is_caught() {
        let text = GOOD.replace(
            "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt Dlq.Arn\n        maxReceiveCount: 5\n",
            "",
        );
        assert_eq!(rules(&text), ["redrive-policy"]);
    }

    #[test]
    fn a_batch_above_ten_without_a_window_is_caught() {
        let text = GOOD
            .replace("MaximumBatchingWindowInSeconds: 5", "MaximumBatchingWindowInSeconds: 0")
            .replace("BatchSize: 10", "BatchSize: 100");
        assert_eq!(rules(&text), ["batching-window"]);
    }

    #[test]
    fn a_maximum_concurrency_outside_lambdas_range_is_caught() {
        assert_eq!(
            rules(&GOOD.replace("MaximumConcurrency: 5", "MaximumConcurrency: 1")),
            ["maximum-concurrency"]
        );
    }

    #[test]
    fn a_queue_outside_the_template_is_reported_as_unchecked() {
        let text = GOOD.replace("Queue: !GetAtt Queue.Arn", "Queue: arn:aws:sqs:us-east-1:1:elsewhere");
        assert_eq!(rules(&text), ["queue-in-template"]);
    }

    #[test]
    fn an_unencrypted_queue_or_dead_letter_queue_is_caught() {
        assert_eq!(rules(&GOOD.replace("      SqsManagedSseEnabled: true\n", "")), ["queue-encryption"]);
        assert_eq!(
            rules(&GOOD.replace("      KmsMasterKeyId: alias/aws/sqs\n", "      DelaySeconds: 0\n")),
            ["queue-encryption"]
        );
    }

    #[test]
    fn broad_function_policies_are_caught() {
        let with = |policies: &str| {
            GOOD.replace("      Events:\n", &format!("      Policies:\n{policies}      Events:\n"))
        };
        assert_eq!(rules(&with("        - AmazonSQSFullAccess\n")), ["least-privilege"]);
        assert_eq!(
            rules(&with(
                "        - Statement:\n            - Effect: Allow\n              Action: sqs:*\n              Resource: '*'\n"
            )),
            ["least-privilege"]
        );
        assert_eq!(
            rules(&with("        - SQSPollerPolicy:\n            QueueName: !GetAtt Queue.QueueName\n")),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_redrive_policy_given_as_a_json_string_is_understood() {
        let text = GOOD.replace(
            "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt Dlq.Arn\n        maxReceiveCount: 5\n",
            "      RedrivePolicy: '{\"deadLetterTargetArn\": \"arn:x\", \"maxReceiveCount\": \"4\"}'\n",
        );
        let template = Template::parse(&text).unwrap();
        assert_eq!(template.queues["Queue"].redrive, Some((None, 4)));
    }

    #[test]
    fn several_sqs_functions_need_a_choice() {
        let two = GOOD.replace("  Queue:\n    Type: AWS::SQS::Queue", "  Fn2:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        Q:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt Queue.Arn\n  Queue:\n    Type: AWS::SQS::Queue");
        let template = Template::parse(&two).unwrap();
        assert!(template.function(None).is_err());
        assert_eq!(template.function(Some("Fn2")).unwrap().logical_id, "Fn2");
    }
}
