//! Metrics inside Lambda, as CloudWatch Embedded Metric Format (EMF): one JSON line per
//! invocation on stdout, which CloudWatch Logs turns into metrics with no agent and no API call.
//! The names and settings follow Powertools for AWS Lambda, so dashboards and habits carry over:
//! `POWERTOOLS_METRICS_NAMESPACE` names the namespace, `POWERTOOLS_SERVICE_NAME` the `service`
//! dimension, and `POWERTOOLS_METRICS_DISABLED=true` turns the line off. `local-runner` serves
//! the same counts, by the same names, as Prometheus metrics.
//!
//! Written here rather than through a metrics crate: one line per invocation with a fixed set of
//! metrics is a few lines of `serde_json`, where the EMF crates want a process-wide metrics
//! recorder, which a batch's own counts do not need.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::SqsMessage;
use serde_json::{Map, Value, json};

use crate::batch::Counts;

/// The namespace variable, as Powertools names it.
pub const NAMESPACE_VAR: &str = "POWERTOOLS_METRICS_NAMESPACE";
/// The service variable, as Powertools names it: the metrics' one dimension.
pub const SERVICE_VAR: &str = "POWERTOOLS_SERVICE_NAME";
/// `true` turns the metrics line off, as in Powertools.
pub const DISABLED_VAR: &str = "POWERTOOLS_METRICS_DISABLED";
/// The namespace when none is set.
pub const DEFAULT_NAMESPACE: &str = "sqs-batch";

/// The metric names, in both runtimes (`local-runner` serves them as Prometheus metrics in
/// snake case).
pub mod names {
    /// Messages in the invocation's batch.
    pub const BATCH_SIZE: &str = "BatchSize";
    /// Messages handled successfully.
    pub const SUCCEEDED: &str = "MessagesSucceeded";
    /// Messages answered as duplicates of messages already handled (an idempotency layer).
    pub const DUPLICATE: &str = "MessagesDuplicate";
    /// Records that needed no work (S3's test event, [`crate::Error::Ignored`]): deleted.
    pub const IGNORED: &str = "MessagesIgnored";
    /// Messages that failed.
    pub const FAILED: &str = "MessagesFailed";
    /// Messages not started (held back behind a FIFO failure, or past the deadline reserve).
    pub const NOT_STARTED: &str = "MessagesNotStarted";
    /// How long the batch took, in milliseconds.
    pub const DURATION: &str = "BatchDuration";
    /// Age of the batch's oldest message when the batch ended, from its `SentTimestamp`.
    pub const OLDEST_AGE: &str = "OldestMessageAge";
}

/// Where the metrics go: the namespace and the `service` dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emf {
    /// The CloudWatch namespace.
    pub namespace: String,
    /// The `service` dimension.
    pub service: String,
}

impl Emf {
    /// From variables looked up with `var` (Powertools' names); `function_name` is the service
    /// when none is named. `None` when the metrics are turned off.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, function_name: &str) -> Option<Self> {
        if var(DISABLED_VAR).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return None;
        }
        let set = |name| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Some(Self {
            namespace: set(NAMESPACE_VAR).unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            service: set(SERVICE_VAR).unwrap_or_else(|| function_name.to_owned()),
        })
    }

    /// The EMF line of one invocation: its counts, how long it took, and its oldest message's age.
    #[must_use]
    pub fn line(&self, records: &[SqsMessage], counts: Counts, took: Duration, request_id: &str) -> String {
        let now = SystemTime::now();
        let oldest = records
            .iter()
            .filter_map(|r| r.attributes.get("SentTimestamp")?.parse::<u64>().ok())
            .min()
            .and_then(|sent| now.duration_since(UNIX_EPOCH + Duration::from_millis(sent)).ok());
        let mut values: Vec<(&str, &str, f64)> = vec![
            (names::BATCH_SIZE, "Count", records.len() as f64),
            (names::SUCCEEDED, "Count", counts.succeeded as f64),
            (names::DUPLICATE, "Count", counts.duplicate as f64),
            (names::IGNORED, "Count", counts.ignored as f64),
            (names::FAILED, "Count", counts.failed as f64),
            (names::NOT_STARTED, "Count", counts.not_started as f64),
            (names::DURATION, "Milliseconds", took.as_secs_f64() * 1000.0),
        ];
        if let Some(age) = oldest {
            values.push((names::OLDEST_AGE, "Milliseconds", age.as_secs_f64() * 1000.0));
        }
        let definitions: Vec<Value> =
            values.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect();
        let timestamp =
            now.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut line = Map::new();
        line.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["service"]],
                    "Metrics": definitions,
                }],
            }),
        );
        line.insert("service".into(), Value::String(self.service.clone()));
        for (name, _, value) in values {
            line.insert(name.into(), json!(value));
        }
        // A property, not a dimension: it finds the invocation's log lines, at no metric cost.
        line.insert("function_request_id".into(), Value::String(request_id.to_owned()));
        Value::Object(line).to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::record;

    /// The EMF specification's required structure: `_aws` with a millisecond `Timestamp` and
    /// `CloudWatchMetrics` directives, each with a `Namespace`, `Dimensions` (arrays of at most 30
    /// names, each a top-level string member) and `Metrics` (each `Name` a top-level number, a
    /// `Unit` from the list CloudWatch knows). Panics naming what is missing.
    pub(crate) fn assert_emf(line: &str) -> Value {
        let value: Value = serde_json::from_str(line).expect("an EMF line is one JSON object");
        let aws = value["_aws"].as_object().expect("_aws is an object");
        assert!(aws["Timestamp"].as_u64().is_some_and(|t| t > 1_600_000_000_000), "Timestamp in ms");
        let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics is an array");
        assert!(!directives.is_empty());
        for directive in directives {
            let namespace = directive["Namespace"].as_str().expect("a Namespace");
            assert!((1..=1024).contains(&namespace.len()));
            for set in directive["Dimensions"].as_array().expect("Dimensions") {
                let set = set.as_array().expect("a dimension set is an array");
                assert!(set.len() <= 30);
                for name in set {
                    assert!(
                        value[name.as_str().expect("a name")].is_string(),
                        "dimension {name} is a string member"
                    );
                }
            }
            for metric in directive["Metrics"].as_array().expect("Metrics") {
                let name = metric["Name"].as_str().expect("a Name");
                assert!(value[name].is_number(), "metric {name} is a number member");
                let unit = metric["Unit"].as_str().unwrap_or("None");
                assert!(["Count", "Milliseconds", "Seconds", "None", "Bytes"].contains(&unit), "{unit}");
            }
        }
        value
    }

    #[test]
    fn an_invocations_line_keeps_the_emf_structure_and_carries_its_counts() {
        let emf = Emf { namespace: "orders".into(), service: "orders-fn".into() };
        let sent = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() - 5_000;
        let records =
            [record("{}").attribute("SentTimestamp", sent.to_string()).build(), record("{}").build()];
        let counts =
            Counts { succeeded: 1, duplicate: 1, ignored: 1, failed: 1, not_started: 0, abandoned: 0 };
        let value = assert_emf(&emf.line(&records, counts, Duration::from_millis(12), "req-1"));
        assert_eq!(value["_aws"]["CloudWatchMetrics"][0]["Namespace"], "orders");
        assert_eq!(
            (value["service"].as_str(), value["function_request_id"].as_str()),
            (Some("orders-fn"), Some("req-1"))
        );
        assert_eq!(
            (
                value["BatchSize"].as_f64(),
                value["MessagesSucceeded"].as_f64(),
                value["MessagesDuplicate"].as_f64(),
                value["MessagesFailed"].as_f64()
            ),
            (Some(2.0), Some(1.0), Some(1.0), Some(1.0))
        );
        assert!(value["OldestMessageAge"].as_f64().is_some_and(|age| (5_000.0..60_000.0).contains(&age)));
    }

    #[test]
    fn powertools_variables_name_the_namespace_and_service_or_turn_the_line_off() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(
            Emf::from_vars(vars(&[(NAMESPACE_VAR, "shop"), (SERVICE_VAR, "orders")]), "fn"),
            Some(Emf { namespace: "shop".into(), service: "orders".into() })
        );
        assert_eq!(
            Emf::from_vars(vars(&[]), "fn"),
            Some(Emf { namespace: DEFAULT_NAMESPACE.into(), service: "fn".into() })
        );
        assert_eq!(Emf::from_vars(vars(&[(DISABLED_VAR, "TRUE")]), "fn"), None);
    }
}
