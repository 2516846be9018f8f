//! Reading a template's text into the model: queues, functions and their SQS events, with every
//! number checked against the range AWS accepts. A number out of range is not a parse error: it
//! becomes a [`Finding`] (the run refuses the template with the first, `check` lists them all)
//! and its field keeps AWS's default.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::buckets::{self, BucketSpec};
use super::tables::{self, TableSpec};
use super::yaml::{
    NumberField, as_bool, broad_policies, logical_ref, redrive_policy, resolve_parameters, scalar_text,
    shown, to_json,
};
use super::{
    Finding, FunctionSpec, MAX_NESTING, MAX_TEMPLATE_BYTES, ParseError, QueueSpec, SqsEventSpec, Template,
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
/// The FIFO queue attributes `up` carries over from the template.
const FIFO_SETTINGS: [&str; 3] = ["ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"];

/// Parses a template's text with parameter values: see [`Template::parse_with`].
pub(super) fn template(text: &str, overrides: &[(String, String)]) -> Result<Template, ParseError> {
    hostile_shape(text)?;
    let yaml: serde_norway::Value = serde_norway::from_str(text)?;
    let doc = resolve_parameters(to_json(yaml), overrides);
    let resources = doc.get("Resources").and_then(Value::as_object).ok_or(ParseError::NoResources)?;
    let globals = doc.pointer("/Globals/Function").cloned().unwrap_or(Value::Null);
    let mut reader = Reader::default();
    let queues: BTreeMap<String, QueueSpec> = resources
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::SQS::Queue")
        .map(|(id, resource)| (id.clone(), reader.queue(id, &resource["Properties"])))
        .collect();
    let tables: BTreeMap<String, TableSpec> = resources
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::DynamoDB::Table")
        .map(|(id, resource)| (id.clone(), tables::table(id, &resource["Properties"])))
        .collect();
    let buckets: BTreeMap<String, BucketSpec> = resources
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::S3::Bucket")
        .map(|(id, resource)| (id.clone(), buckets::bucket(id, &resource["Properties"])))
        .collect();
    let functions: Vec<FunctionSpec> = resources
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::Serverless::Function")
        .filter_map(|(id, resource)| reader.function(id, resource, &globals))
        .collect();
    let Reader { mut problems, mut refused, unreadable_redrive } = reader;
    problems.append(&mut refused);
    problems.extend(functions.iter().flat_map(|function| longer_than_visible(function, &queues)));
    problems.extend(unreadable_redrive);
    problems.extend(tables.values().filter_map(tables::name_problem));
    problems.extend(buckets.values().filter_map(buckets::name_problem));
    Ok(Template { functions, queues, tables, buckets, problems })
}

/// What the reading found wrong, kept apart so they are listed in a stable order: numbers out of
/// range (in reading order), then other refusals, then the timeouts, then unreadable redrive
/// policies.
#[derive(Default)]
struct Reader {
    problems: Vec<Finding>,
    refused: Vec<Finding>,
    unreadable_redrive: Vec<Finding>,
}

impl Reader {
    /// The number at `at`, when it is set and within `range`; else a problem, and `None`.
    fn number(
        &mut self,
        at: String,
        value: &Value,
        range: std::ops::RangeInclusive<u64>,
        unit: &str,
    ) -> Option<u64> {
        NumberField { at: &at, range, unit }.read(value).unwrap_or_else(|finding| {
            self.problems.push(finding);
            None
        })
    }

    /// An `AWS::SQS::Queue`'s properties.
    fn queue(&mut self, id: &str, props: &Value) -> QueueSpec {
        let policy = redrive_policy(&props["RedrivePolicy"]);
        let redrive_unreadable = policy.is_err();
        let redrive = match policy {
            Ok(Some((dlq, count))) => {
                let at = format!("{id}.RedrivePolicy.maxReceiveCount");
                self.number(at, &Value::from(count), 1..=MAX_RECEIVE_COUNT, "SQS's limit").map(|n| (dlq, n))
            }
            Ok(None) => None,
            Err(why) => {
                self.unreadable_redrive.push(Finding {
                    rule: "redrive-policy",
                    message: format!("{id}.RedrivePolicy cannot be read: {why}"),
                    warning: false,
                });
                None
            }
        };
        let visibility = self.number(
            format!("{id}.VisibilityTimeout"),
            &props["VisibilityTimeout"],
            0..=MAX_VISIBILITY_SECS,
            "SQS's limit, in seconds",
        );
        let retention = self.number(
            format!("{id}.MessageRetentionPeriod"),
            &props["MessageRetentionPeriod"],
            60..=1_209_600,
            "SQS's limit, in seconds",
        );
        QueueSpec {
            logical_id: id.to_owned(),
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
        }
    }

    /// An `AWS::Serverless::Function`, with `globals` under its own settings; `None` when it has
    /// no SQS event.
    fn function(&mut self, id: &str, resource: &Value, globals: &Value) -> Option<FunctionSpec> {
        let props = &resource["Properties"];
        let setting = |key: &str| {
            let own = &props[key];
            if own.is_null() { globals[key].clone() } else { own.clone() }
        };
        let sqs_events: Vec<SqsEventSpec> = props["Events"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, event)| event["Type"] == "SQS")
            .map(|(name, event)| self.sqs_event(&format!("{id}.Events.{name}"), name, &event["Properties"]))
            .collect();
        if sqs_events.is_empty() {
            return None;
        }
        let (environment, unresolved_environment) =
            environment([&globals["Environment"]["Variables"], &props["Environment"]["Variables"]]);
        for key in environment.keys().chain(unresolved_environment.keys()) {
            if RESERVED_VARIABLES.contains(&key.as_str()) {
                self.refused.push(Finding {
                    rule: "limit",
                    message: format!(
                        "{id}.Environment.Variables.{key} is reserved: Lambda sets it, and refuses a function that sets it; remove it"
                    ),
                    warning: false,
                });
            }
        }
        let timeout = self.number(
            format!("{id}.Timeout"),
            &setting("Timeout"),
            1..=MAX_TIMEOUT_SECS,
            "Lambda's limit, in seconds",
        );
        let memory = self.number(
            format!("{id}.MemorySize"),
            &setting("MemorySize"),
            128..=10_240,
            "Lambda's limit, in MB",
        );
        let logging = setting("LoggingConfig");
        Some(FunctionSpec {
            logical_id: id.to_owned(),
            timeout: timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs),
            memory_mb: memory.unwrap_or(DEFAULT_MEMORY_MB),
            environment,
            unresolved_environment,
            log_format: logging["LogFormat"].as_str().map(str::to_owned),
            log_level: logging["ApplicationLogLevel"].as_str().map(str::to_owned),
            sqs_events,
            broad_policies: broad_policies(&props["Policies"]),
            binary: resource["Metadata"]["BuildProperties"]["Binary"].as_str().map(str::to_owned),
            idempotency_table: tables::idempotency_table([
                &globals["Environment"]["Variables"],
                &props["Environment"]["Variables"],
            ]),
            dynamodb_grants: tables::dynamodb_grants(&props["Policies"]),
            s3_grants: buckets::s3_grants(&props["Policies"]),
        })
    }

    /// An SQS event's properties `ep`, at `at` (`Fn.Events.Name`).
    fn sqs_event(&mut self, at: &str, name: &str, ep: &Value) -> SqsEventSpec {
        let responses = ep["FunctionResponseTypes"].as_array();
        let patterns: Vec<&Value> =
            ep["FilterCriteria"]["Filters"].as_array().into_iter().flatten().map(|f| &f["Pattern"]).collect();
        let batch_size =
            self.number(format!("{at}.BatchSize"), &ep["BatchSize"], 1..=MAX_BATCH_SIZE, "Lambda's limit");
        let window = self.number(
            format!("{at}.MaximumBatchingWindowInSeconds"),
            &ep["MaximumBatchingWindowInSeconds"],
            0..=MAX_BATCHING_WINDOW_SECS,
            "Lambda's limit, in seconds",
        );
        let max_concurrency = self.number(
            format!("{at}.ScalingConfig.MaximumConcurrency"),
            &ep["ScalingConfig"]["MaximumConcurrency"],
            2..=MAX_MAXIMUM_CONCURRENCY,
            "Lambda's limit",
        );
        let metric_names: Vec<&Value> =
            ep["MetricsConfig"]["Metrics"].as_array().into_iter().flatten().collect();
        for metric in metric_names.iter().filter(|metric| **metric != "EventCount") {
            self.refused.push(Finding {
                rule: "limit",
                message: format!(
                    "{at}.MetricsConfig.Metrics has {}: the only metric group an SQS mapping offers is EventCount",
                    shown(metric)
                ),
                warning: false,
            });
        }
        SqsEventSpec {
            name: name.to_owned(),
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
            event_count_metrics: metric_names.iter().any(|metric| **metric == "EventCount"),
        }
    }
}

/// `Environment.Variables` from Globals then the function (the function's win): the plain values,
/// and those only a deployment resolves, with what they were.
fn environment(layers: [&Value; 2]) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut environment = BTreeMap::new();
    let mut unresolved = BTreeMap::new();
    for (key, value) in layers.into_iter().filter_map(Value::as_object).flat_map(Map::iter) {
        match scalar_text(value) {
            Some(text) => {
                unresolved.remove(key);
                environment.insert(key.clone(), text);
            }
            None => {
                environment.remove(key);
                unresolved.insert(key.clone(), shown(value));
            }
        }
    }
    (environment, unresolved)
}

/// AWS refuses a mapping whose function may run longer than its queue hides a message.
fn longer_than_visible<'a>(
    function: &'a FunctionSpec,
    queues: &'a BTreeMap<String, QueueSpec>,
) -> impl Iterator<Item = Finding> + 'a {
    function.sqs_events.iter().filter_map(move |event| {
        let queue = queues.get(event.queue.as_ref()?)?;
        (function.timeout > queue.visibility_timeout).then(|| Finding {
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
        })
    })
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
