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
    as_bool, as_u64, broad_policies, logical_ref, redrive_policy, resolve_parameters, scalar_text, to_json,
};

/// Lambda's default function timeout when the template sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Lambda's default memory size.
const DEFAULT_MEMORY_MB: u64 = 128;
/// SQS's default visibility timeout.
const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);
/// The event source mapping's default batch size.
const DEFAULT_BATCH_SIZE: u64 = 10;

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
    /// The function's SQS event does not point at a queue the template defines.
    #[error(
        "{function}'s SQS event does not point at an AWS::SQS::Queue of the template (use !GetAtt <Queue>.Arn), so its settings are unknown"
    )]
    NoQueue {
        /// The function's logical id.
        function: String,
    },
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
            .map_err(|reason| TemplateError::Parse { path: path.display().to_string(), reason })
    }

    /// Parses template text (YAML with CloudFormation's short-form tags, or JSON).
    ///
    /// # Errors
    /// A description of what is not valid.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_with(text, &[])
    }

    /// [`Template::parse`] with parameter values.
    ///
    /// # Errors
    /// A description of what is not valid.
    pub fn parse_with(text: &str, overrides: &[(String, String)]) -> Result<Self, String> {
        let yaml: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        let doc = resolve_parameters(to_json(yaml), overrides);
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
                        name: props["QueueName"].as_str().map(str::to_owned),
                        retention_period: as_u64(&props["MessageRetentionPeriod"]),
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
                    let patterns: Vec<&Value> = ep["FilterCriteria"]["Filters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|f| &f["Pattern"])
                        .collect();
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
                        filters: patterns
                            .iter()
                            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                            .collect(),
                        filter_written_as_mapping: patterns.iter().any(|p| !p.is_string()),
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
                binary: resource["Metadata"]["BuildProperties"]["Binary"].as_str().map(str::to_owned),
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
