//! What the runner reads from a SAM template: the function behind an SQS event, its event source
//! mapping settings, and the queue it polls; and the rules that template must keep for the code
//! to work as written (`local-runner check`).

use std::collections::BTreeMap;
use std::path::Path;

use std::time::Duration;

use thiserror::Error;

pub use buckets::{BucketSpec, PAYLOAD_BUCKET_VAR};
pub use options::{OptionsProblem, function_options};
pub use tables::{IDEMPOTENCY_KEY, IDEMPOTENCY_TTL, IDEMPOTENCY_VAR, TableRef, TableSpec};

mod buckets;
mod check;
pub mod filter;
mod options;
mod read;
mod tables;
#[cfg(test)]
mod tests;
mod yaml;

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
    /// The table `IDEMPOTENCY_TABLE` names: idempotency on, in that table.
    pub idempotency_table: Option<TableRef>,
    /// The tables `Policies` let the function write to.
    pub dynamodb_grants: Vec<TableRef>,
    /// The buckets `Policies` let the function read and delete from (names, or logical ids of
    /// `!Ref`s; `*` for a statement on any).
    pub s3_grants: Vec<String>,
}

/// The parts of a SAM template the runner uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Functions with SQS events.
    pub functions: Vec<FunctionSpec>,
    /// Queues, by logical id.
    pub queues: BTreeMap<String, QueueSpec>,
    /// DynamoDB tables, by logical id.
    pub tables: BTreeMap<String, TableSpec>,
    /// S3 buckets, by logical id.
    pub buckets: BTreeMap<String, BucketSpec>,
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
        read::template(text, overrides)
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
