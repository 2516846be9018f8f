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
use crate::metrics::Metrics;

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
    pub use crate::metric_names::*;
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

    /// The EMF document of one invocation: its counts, how long it took, its oldest message's
    /// age, `ColdStart` in an environment's first invocation, and what the handler recorded
    /// ([`crate::metrics`]). One line, unless the handler's metrics disagree on a dimension's
    /// value: those that do not fit the first document go in one more each.
    #[must_use]
    pub fn lines(&self, invocation: &Invocation<'_>) -> Vec<String> {
        let now = SystemTime::now();
        let oldest = invocation
            .records
            .iter()
            .filter_map(|r| r.attributes.get("SentTimestamp")?.parse::<u64>().ok())
            .min()
            .and_then(|sent| now.duration_since(UNIX_EPOCH + Duration::from_millis(sent)).ok());
        let counts = invocation.counts;
        let mut values: Vec<(&str, &str, f64)> = vec![
            (names::BATCH_SIZE, "Count", invocation.records.len() as f64),
            (names::SUCCEEDED, "Count", counts.succeeded as f64),
            (names::DUPLICATE, "Count", counts.duplicate as f64),
            (names::IGNORED, "Count", counts.ignored as f64),
            (names::FAILED, "Count", counts.failed as f64),
            (names::NOT_STARTED, "Count", counts.not_started as f64),
            (names::DURATION, "Milliseconds", invocation.took.as_secs_f64() * 1000.0),
        ];
        if let Some(age) = oldest {
            values.push((names::OLDEST_AGE, "Milliseconds", age.as_secs_f64() * 1000.0));
        }
        if invocation.cold_start {
            values.push((names::COLD_START, "Count", 1.0));
        }
        let timestamp =
            now.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let own: Vec<Value> =
            values.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect();
        let mut documents = invocation.metrics.documents();
        if documents.is_empty() {
            documents.push(Vec::new());
        }
        let mut lines = Vec::with_capacity(documents.len());
        for (index, members) in documents.into_iter().enumerate() {
            let mut line = Map::new();
            let mut directives = Vec::new();
            if index == 0 {
                directives.push(self.directive(&["service"], own.clone()));
                for (name, _, value) in &values {
                    line.insert((*name).into(), json!(value));
                }
            }
            // One directive per set of dimension names, the user's metrics of that set in it.
            let mut by_dimensions: std::collections::BTreeMap<Vec<&str>, Vec<Value>> = Default::default();
            for (key, series) in members {
                let mut dimensions = vec!["service"];
                dimensions.extend(key.dimensions.iter().map(|(name, _)| name.as_str()));
                by_dimensions
                    .entry(dimensions)
                    .or_default()
                    .push(json!({"Name": key.name, "Unit": series.unit.as_str()}));
                for (name, value) in &key.dimensions {
                    line.insert(name.clone(), Value::String(value.clone()));
                }
                let value = match series.values.as_slice() {
                    [one] => json!(one),
                    many => json!(many),
                };
                line.insert(key.name.clone(), value);
            }
            for (dimensions, metrics) in by_dimensions {
                directives.push(self.directive(&dimensions, metrics));
            }
            line.insert("_aws".into(), json!({"Timestamp": timestamp, "CloudWatchMetrics": directives}));
            line.insert("service".into(), Value::String(self.service.clone()));
            // A property, not a dimension: it finds the invocation's log lines, at no metric cost.
            line.insert("function_request_id".into(), Value::String(invocation.request_id.to_owned()));
            lines.push(Value::Object(line).to_string());
        }
        lines
    }

    fn directive(&self, dimensions: &[&str], metrics: Vec<Value>) -> Value {
        json!({"Namespace": self.namespace, "Dimensions": [dimensions], "Metrics": metrics})
    }
}

/// What one invocation's metrics are made of.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// The batch.
    pub records: &'a [SqsMessage],
    /// How its messages ended.
    pub counts: Counts,
    /// How long it took.
    pub took: Duration,
    /// Lambda's request id.
    pub request_id: &'a str,
    /// Whether it is the first of its execution environment.
    pub cold_start: bool,
    /// What the handler recorded for the messages that count ([`crate::metrics`]).
    pub metrics: &'a Metrics,
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
                let values =
                    value[name].as_array().map_or_else(|| vec![&value[name]], |v| v.iter().collect());
                assert!((1..=100).contains(&values.len()), "metric {name}: 1 to 100 values");
                assert!(values.iter().all(|v| v.is_number()), "metric {name} is a number member");
                let unit = metric["Unit"].as_str().unwrap_or("None");
                assert!(crate::metrics::Unit::from_name(unit).is_some(), "{unit}");
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
        let metrics = Metrics::default();
        let invocation = Invocation {
            records: &records,
            counts,
            took: Duration::from_millis(12),
            request_id: "req-1",
            cold_start: false,
            metrics: &metrics,
        };
        let lines = emf.lines(&invocation);
        assert_eq!(lines.len(), 1);
        let value = assert_emf(&lines[0]);
        assert!(value.get("ColdStart").is_none(), "a warm invocation has no ColdStart");
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
    fn a_handlers_metrics_join_the_invocations_one_document_with_their_dimensions() {
        use crate::metrics::{Metric, Unit};
        let emf = Emf { namespace: "shop".into(), service: "orders".into() };
        let mut metrics = Metrics::default();
        for _ in 0..3 {
            metrics.add(&Metric::new("OrdersStored", Unit::Count, 1.0));
        }
        metrics.add(&Metric::new("OrderValue", Unit::None, 9.5).dimension("currency", "EUR"));
        let records = [record("{}").build()];
        let invocation = Invocation {
            records: &records,
            counts: Counts { succeeded: 1, ..Counts::default() },
            took: Duration::from_millis(3),
            request_id: "req-2",
            cold_start: true,
            metrics: &metrics,
        };
        let lines = emf.lines(&invocation);
        assert_eq!(lines.len(), 1, "one document per invocation: {lines:?}");
        let value = assert_emf(&lines[0]);
        assert_eq!(value["OrdersStored"], json!([1.0, 1.0, 1.0]));
        assert_eq!((value["OrderValue"].as_f64(), value["currency"].as_str()), (Some(9.5), Some("EUR")));
        assert_eq!(value["ColdStart"].as_f64(), Some(1.0));
        let directives = value["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        let dimensions: Vec<&Value> = directives.iter().map(|d| &d["Dimensions"][0]).collect();
        assert_eq!(dimensions, [&json!(["service"]), &json!(["service"]), &json!(["service", "currency"])]);
        assert!(directives.iter().all(|d| d["Namespace"] == "shop"));

        let mut more = metrics.clone();
        more.add(&Metric::new("OrderValue", Unit::None, 3.0).dimension("currency", "USD"));
        let invocation = Invocation { metrics: &more, ..invocation };
        let lines = emf.lines(&invocation);
        assert_eq!(lines.len(), 2, "a dimension with two values needs a second document");
        let second = assert_emf(&lines[1]);
        assert!(second.get("BatchSize").is_none(), "the invocation's own counts are in the first only");
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
