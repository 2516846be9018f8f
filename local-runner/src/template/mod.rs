//! What the runner reads from a SAM template: the function behind an SQS event, its event source
//! mapping settings, and the queue it polls; and the rules that template must keep for the code
//! to work as written (`local-runner check`).

use std::collections::BTreeMap;
use std::path::Path;

use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

mod check;
pub mod filter;
#[cfg(test)]
mod tests;
mod yaml;

use yaml::{
    NumberField, as_bool, broad_policies, logical_ref, redrive_policy, resolve_parameters, scalar_text,
    shown, to_json,
};

/// Lambda's default function timeout when the template sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Lambda's default memory size.
const DEFAULT_MEMORY_MB: u64 = 128;
/// SQS's default visibility timeout.
const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);
/// The event source mapping's default batch size.
const DEFAULT_BATCH_SIZE: u64 = 10;
/// Lambda's longest function timeout, in seconds.
const MAX_TIMEOUT_SECS: u64 = 900;
/// The event source mapping's largest `BatchSize` (standard queues; FIFO: 10, a rule of `check`).
const MAX_BATCH_SIZE: u64 = 10_000;
/// The longest `MaximumBatchingWindowInSeconds`.
const MAX_BATCHING_WINDOW_SECS: u64 = 300;
/// Variables Lambda sets itself and refuses in a function's configuration (AWS's "Defined
/// runtime environment variables", the reserved ones).
const RESERVED_VARIABLES: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "TZ",
];
/// The largest `ScalingConfig.MaximumConcurrency` (the smallest is 2).
const MAX_MAXIMUM_CONCURRENCY: u64 = 1_000;
/// SQS's longest visibility timeout: 12 hours.
const MAX_VISIBILITY_SECS: u64 = 43_200;
/// The largest `maxReceiveCount` a redrive policy may have.
const MAX_RECEIVE_COUNT: u64 = 1_000;
/// The largest template read: CloudFormation takes template bodies up to 1 MB (from S3).
const MAX_TEMPLATE_BYTES: usize = 1024 * 1024;
/// The deepest nesting of `[` and `{` read. Real templates nest a few levels; a hostile file of
/// nested brackets costs the YAML parser time quadratic in its depth before it gives up.
const MAX_NESTING: usize = 64;

/// A template that cannot be used.
#[derive(Debug, Error)]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read the template {path}: {source}; pass --template PATH")]
    Read {
        /// The path given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not YAML (or JSON), or not a template.
    #[error("{path} is not a valid template: {source}")]
    Parse {
        /// The path given.
        path: String,
        /// Why.
        #[source]
        source: ParseError,
    },
    /// No function of that name has an SQS event.
    #[error("no function {name:?} with an SQS event in the template (there is: {})", known.join(", "))]
    NoSuchFunction {
        /// The name asked for.
        name: String,
        /// The functions with an SQS event.
        known: Vec<String>,
    },
    /// No function has an SQS event.
    #[error("the template has no AWS::Serverless::Function with an SQS event")]
    NoFunction,
    /// More than one function has an SQS event, and none was chosen.
    #[error("the template has several functions with SQS events ({}): choose one with --function", known.join(", "))]
    SeveralFunctions {
        /// The functions with an SQS event.
        known: Vec<String>,
    },
    /// A number the template gives is outside what AWS accepts (or only a deployment could
    /// work it out): AWS would refuse the stack.
    #[error("{problem}{}; `local-runner check` lists every problem", if *more > 0 { format!(" (and {more} more)") } else { String::new() })]
    Unusable {
        /// The first problem, one line naming the field, the value and the limit.
        problem: String,
        /// How many more there are.
        more: usize,
    },
    /// The function's SQS event does not point at a queue the template defines.
    #[error(
        "{function}'s SQS event does not point at an AWS::SQS::Queue of the template (use !GetAtt <Queue>.Arn), so its settings are unknown"
    )]
    NoQueue {
        /// The function's logical id.
        function: String,
    },
}

/// Why template text is not a template.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Larger than any template CloudFormation takes.
    #[error(
        "it is {size} bytes; templates are read up to {MAX_TEMPLATE_BYTES} bytes (CloudFormation's limit is 1 MB)"
    )]
    TooLarge {
        /// Its size in bytes.
        size: usize,
    },
    /// Nested deeper than a template ever is: refused before the YAML parser spends minutes.
    #[error("it nests brackets deeper than {MAX_NESTING} levels")]
    TooDeep,
    /// Not YAML (nor JSON).
    #[error("{0}")]
    Yaml(#[from] serde_norway::Error),
    /// YAML without the `Resources` a template has.
    #[error("no Resources section")]
    NoResources,
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
    /// A `RedrivePolicy` is there but cannot be read (one of [`Template::problems`] says why):
    /// not the same as none.
    pub redrive_unreadable: bool,
    /// Encrypted at rest: `SqsManagedSseEnabled: true` or a `KmsMasterKeyId`.
    pub encrypted: bool,
    /// The FIFO settings given as plain values (`ContentBasedDeduplication`,
    /// `DeduplicationScope`, `FifoThroughputLimit`), by attribute name, as text.
    pub fifo_settings: BTreeMap<String, String>,
    /// `QueueName`, when the template gives one.
    pub name: Option<String>,
    /// `MessageRetentionPeriod`, in seconds.
    pub retention_period: Option<u64>,
}

impl QueueSpec {
    /// The queue's name: its `QueueName`, else its logical id (with `.fifo` for a FIFO queue).
    /// CloudFormation makes up a name where the template gives none; locally (`up`, `--lambda`
    /// of a whole template) the logical id stands in for it.
    #[must_use]
    pub fn local_name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None if self.fifo => format!("{}.fifo", self.logical_id),
            None => self.logical_id.clone(),
        }
    }
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
    /// `FilterCriteria.Filters[].Pattern`, each a JSON text (parameters resolved).
    pub filters: Vec<String>,
    /// Some `Pattern` is written as a YAML mapping instead of a string of JSON, which
    /// CloudFormation does not take.
    pub filter_written_as_mapping: bool,
    /// `MetricsConfig: {Metrics: [EventCount]}`: the mapping's own metrics (PolledEventCount and
    /// the rest), which `local-runner` then reports by those names.
    pub event_count_metrics: bool,
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
    /// The variables given as an intrinsic function only a deployment resolves (`!GetAtt`,
    /// `!Sub` of a resource, `!Ref` to a resource), with what they were: not set locally, and
    /// said so.
    pub unresolved_environment: BTreeMap<String, String>,
    /// `LoggingConfig.LogFormat`.
    pub log_format: Option<String>,
    /// `LoggingConfig.ApplicationLogLevel`.
    pub log_level: Option<String>,
    /// Its SQS events.
    pub sqs_events: Vec<SqsEventSpec>,
    /// Entries of `Policies` that grant far more than the function needs (`*FullAccess`,
    /// `AdministratorAccess`, statements allowing `*` or `sqs:*`).
    pub broad_policies: Vec<String>,
    /// `Metadata.BuildProperties.Binary`: the cargo binary that is the function.
    pub binary: Option<String>,
}

/// The parts of a SAM template the runner uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Functions with SQS events.
    pub functions: Vec<FunctionSpec>,
    /// Queues, by logical id.
    pub queues: BTreeMap<String, QueueSpec>,
    /// Numbers outside their AWS range, numbers only a deployment could work out, and redrive
    /// policies that cannot be read: `check` lists them, a run refuses the template.
    pub problems: Vec<Finding>,
}

/// One broken rule, or a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A short stable name for the rule.
    pub rule: &'static str,
    /// What is wrong and what to change.
    pub message: String,
    /// Legal, and working as AWS documents it, but likely not what was meant: reported, not
    /// failed.
    pub warning: bool,
}

impl Template {
    /// Reads and parses a template file.
    ///
    /// # Errors
    /// [`TemplateError::Read`] or [`TemplateError::Parse`].
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        Self::load_with(path, &[])
    }

    /// Reads and parses a template file as it would deploy with these parameter values
    /// (`sam deploy --parameter-overrides`); the others keep their defaults.
    ///
    /// # Errors
    /// [`TemplateError::Read`] or [`TemplateError::Parse`].
    pub fn load_with(path: &Path, overrides: &[(String, String)]) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| TemplateError::Read { path: path.display().to_string(), source })?;
        Self::parse_with(&text, overrides)
            .map_err(|source| TemplateError::Parse { path: path.display().to_string(), source })
    }

    /// Parses template text (YAML with CloudFormation's short-form tags, or JSON).
    ///
    /// # Errors
    /// [`ParseError`]: what is not valid.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        Self::parse_with(text, &[])
    }

    /// [`Template::parse`] with parameter values.
    ///
    /// A number outside the range AWS accepts for its field, or one that cannot be worked out
    /// without deploying (`!If`, `!Ref` to an undeclared parameter), does not fail the parse: it
    /// becomes one of [`Template::problems`] (`check` lists them all; a run refuses the template
    /// with the first, [`Template::usable`]) and its field keeps AWS's default.
    ///
    /// # Errors
    /// [`ParseError`]: what is not valid.
    pub fn parse_with(text: &str, overrides: &[(String, String)]) -> Result<Self, ParseError> {
        hostile_shape(text)?;
        let yaml: serde_norway::Value = serde_norway::from_str(text)?;
        let doc = resolve_parameters(to_json(yaml), overrides);
        let resources = doc.get("Resources").and_then(Value::as_object).ok_or(ParseError::NoResources)?;
        let globals = doc.pointer("/Globals/Function").cloned().unwrap_or(Value::Null);
        let mut problems = Vec::new();
        let mut number = |at: String, value: &Value, range: std::ops::RangeInclusive<u64>, unit: &str| {
            NumberField { at: &at, range, unit }.read(value).unwrap_or_else(|message| {
                problems.push(Finding { rule: "limit", message, warning: false });
                None
            })
        };

        let mut queues = BTreeMap::new();
        let mut unreadable_redrive = Vec::new();
        // Findings other than numbers' (`number` holds `problems` while the resources are read).
        let mut refused = Vec::new();
        for (id, resource) in resources {
            if resource["Type"] == "AWS::SQS::Queue" {
                let props = &resource["Properties"];
                let policy = redrive_policy(&props["RedrivePolicy"]);
                let redrive_unreadable = policy.is_err();
                let redrive = match policy {
                    Ok(Some((dlq, count))) => {
                        let at = format!("{id}.RedrivePolicy.maxReceiveCount");
                        number(at, &Value::from(count), 1..=MAX_RECEIVE_COUNT, "SQS's limit")
                            .map(|n| (dlq, n))
                    }
                    Ok(None) => None,
                    Err(why) => {
                        unreadable_redrive.push(Finding {
                            rule: "redrive-policy",
                            message: format!("{id}.RedrivePolicy cannot be read: {why}"),
                            warning: false,
                        });
                        None
                    }
                };
                let visibility = number(
                    format!("{id}.VisibilityTimeout"),
                    &props["VisibilityTimeout"],
                    0..=MAX_VISIBILITY_SECS,
                    "SQS's limit, in seconds",
                );
                let retention = number(
                    format!("{id}.MessageRetentionPeriod"),
                    &props["MessageRetentionPeriod"],
                    60..=1_209_600,
                    "SQS's limit, in seconds",
                );
                queues.insert(
                    id.clone(),
                    QueueSpec {
                        logical_id: id.clone(),
                        fifo: as_bool(&props["FifoQueue"]).unwrap_or(false),
                        visibility_timeout: visibility.map_or(DEFAULT_VISIBILITY, Duration::from_secs),
                        redrive,
                        redrive_unreadable,
                        encrypted: as_bool(&props["SqsManagedSseEnabled"]).unwrap_or(false)
                            || !props["KmsMasterKeyId"].is_null(),
                        fifo_settings: FIFO_SETTINGS
                            .iter()
                            .filter_map(|&key| Some((key.to_owned(), scalar_text(&props[key])?)))
                            .collect(),
                        name: props["QueueName"].as_str().map(str::to_owned),
                        retention_period: retention,
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
                    let at = format!("{id}.Events.{name}");
                    let responses = ep["FunctionResponseTypes"].as_array();
                    let patterns: Vec<&Value> = ep["FilterCriteria"]["Filters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|f| &f["Pattern"])
                        .collect();
                    let batch_size = number(
                        format!("{at}.BatchSize"),
                        &ep["BatchSize"],
                        1..=MAX_BATCH_SIZE,
                        "Lambda's limit",
                    );
                    let window = number(
                        format!("{at}.MaximumBatchingWindowInSeconds"),
                        &ep["MaximumBatchingWindowInSeconds"],
                        0..=MAX_BATCHING_WINDOW_SECS,
                        "Lambda's limit, in seconds",
                    );
                    let max_concurrency = number(
                        format!("{at}.ScalingConfig.MaximumConcurrency"),
                        &ep["ScalingConfig"]["MaximumConcurrency"],
                        2..=MAX_MAXIMUM_CONCURRENCY,
                        "Lambda's limit",
                    );
                    let metrics = &ep["MetricsConfig"]["Metrics"];
                    let metric_names: Vec<&Value> = metrics.as_array().into_iter().flatten().collect();
                    for name in metric_names.iter().filter(|name| **name != "EventCount") {
                        refused.push(Finding {
                            rule: "limit",
                            message: format!(
                                "{at}.MetricsConfig.Metrics has {}: the only metric group an SQS mapping offers is EventCount",
                                shown(name)
                            ),
                            warning: false,
                        });
                    }
                    sqs_events.push(SqsEventSpec {
                        name: name.clone(),
                        queue: logical_ref(&ep["Queue"]),
                        batch_size: batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
                        batching_window: Duration::from_secs(window.unwrap_or(0)),
                        report_batch_item_failures: responses
                            .is_some_and(|r| r.iter().any(|t| t == "ReportBatchItemFailures")),
                        max_concurrency,
                        filters: patterns
                            .iter()
                            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                            .collect(),
                        filter_written_as_mapping: patterns.iter().any(|p| !p.is_string()),
                        event_count_metrics: metric_names.iter().any(|name| **name == "EventCount"),
                    });
                }
            }
            if sqs_events.is_empty() {
                continue;
            }
            let mut environment = BTreeMap::new();
            let mut unresolved_environment = BTreeMap::new();
            for vars in [&globals["Environment"]["Variables"], &props["Environment"]["Variables"]] {
                for (key, value) in vars.as_object().into_iter().flatten() {
                    match scalar_text(value) {
                        Some(text) => {
                            unresolved_environment.remove(key);
                            environment.insert(key.clone(), text);
                        }
                        None => {
                            environment.remove(key);
                            unresolved_environment.insert(key.clone(), shown(value));
                        }
                    }
                }
            }
            for key in environment.keys().chain(unresolved_environment.keys()) {
                if RESERVED_VARIABLES.contains(&key.as_str()) {
                    refused.push(Finding {
                        rule: "limit",
                        message: format!(
                            "{id}.Environment.Variables.{key} is reserved: Lambda sets it, and refuses a function that sets it; remove it"
                        ),
                        warning: false,
                    });
                }
            }
            let timeout = number(
                format!("{id}.Timeout"),
                &setting("Timeout"),
                1..=MAX_TIMEOUT_SECS,
                "Lambda's limit, in seconds",
            );
            let memory = number(
                format!("{id}.MemorySize"),
                &setting("MemorySize"),
                128..=10_240,
                "Lambda's limit, in MB",
            );
            let logging = setting("LoggingConfig");
            functions.push(FunctionSpec {
                logical_id: id.clone(),
                timeout: timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs),
                memory_mb: memory.unwrap_or(DEFAULT_MEMORY_MB),
                environment,
                unresolved_environment,
                log_format: logging["LogFormat"].as_str().map(str::to_owned),
                log_level: logging["ApplicationLogLevel"].as_str().map(str::to_owned),
                sqs_events,
                broad_policies: broad_policies(&props["Policies"]),
                binary: resource["Metadata"]["BuildProperties"]["Binary"].as_str().map(str::to_owned),
            });
        }
        problems.append(&mut refused);
        // AWS refuses a mapping whose function may run longer than its queue hides a message.
        for function in &functions {
            for event in &function.sqs_events {
                let Some(queue) = event.queue.as_ref().and_then(|q| queues.get(q)) else { continue };
                if function.timeout > queue.visibility_timeout {
                    problems.push(Finding {
                        rule: "limit",
                        message: format!(
                            "{}.Timeout {} s is above {}.VisibilityTimeout {} s: AWS refuses the event source mapping {}; raise the visibility timeout (6 x Timeout is AWS's advice)",
                            function.logical_id,
                            function.timeout.as_secs(),
                            queue.logical_id,
                            queue.visibility_timeout.as_secs(),
                            event.name
                        ),
                        warning: false,
                    });
                }
            }
        }
        problems.extend(unreadable_redrive);
        Ok(Self { functions, queues, problems })
    }

    /// Whether a run can follow this template: a number outside its AWS range (or one only a
    /// deployment could work out) would make AWS refuse the stack, so a local run refuses it too.
    ///
    /// # Errors
    /// [`TemplateError::Unusable`] with the first problem; `check` lists all of them.
    pub fn usable(&self) -> Result<(), TemplateError> {
        match self.problems.first() {
            None => Ok(()),
            Some(problem) => Err(TemplateError::Unusable {
                problem: problem.message.clone(),
                more: self.problems.len() - 1,
            }),
        }
    }

    /// The function to run: the one named, or the only one with an SQS event.
    ///
    /// # Errors
    /// [`TemplateError::NoSuchFunction`], [`TemplateError::NoFunction`] or
    /// [`TemplateError::SeveralFunctions`] when there is none, or several and none was named.
    pub fn function(&self, name: Option<&str>) -> Result<&FunctionSpec, TemplateError> {
        let known = || self.functions.iter().map(|f| f.logical_id.clone()).collect::<Vec<_>>();
        match (name, self.functions.as_slice()) {
            (Some(name), _) => self
                .functions
                .iter()
                .find(|f| f.logical_id == name)
                .ok_or_else(|| TemplateError::NoSuchFunction { name: name.to_owned(), known: known() }),
            (None, [only]) => Ok(only),
            (None, []) => Err(TemplateError::NoFunction),
            (None, _) => Err(TemplateError::SeveralFunctions { known: known() }),
        }
    }

    /// The queue `function`'s (first) SQS event reads from.
    ///
    /// # Errors
    /// [`TemplateError::NoQueue`] when the event does not point at one of the template's queues.
    pub fn event_queue(&self, function: &FunctionSpec) -> Result<&QueueSpec, TemplateError> {
        let queue = function
            .sqs_events
            .first()
            .and_then(|event| event.queue.as_ref())
            .and_then(|id| self.queues.get(id));
        queue.ok_or_else(|| TemplateError::NoQueue { function: function.logical_id.clone() })
    }
}

/// Refuses text whose size or nesting would cost the YAML parser minutes before it fails: a
/// template is read before anything runs, and any file can be passed as one.
fn hostile_shape(text: &str) -> Result<(), ParseError> {
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(ParseError::TooLarge { size: text.len() });
    }
    // Brackets inside quoted text count too: real templates stay far below the limit anyway.
    let mut depth = 0usize;
    for byte in text.bytes() {
        match byte {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(ParseError::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
