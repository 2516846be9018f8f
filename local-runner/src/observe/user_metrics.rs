//! The function's own metrics ([`sqs_batch::metrics`]): what its handler recorded, added up over
//! the run. In process they come with each batch's report; under `--lambda` from the function's
//! Embedded Metric Format lines, so any function that writes EMF (Powertools' included) shows
//! them. The summary lists them by their names, and `--metrics-addr` serves them in snake case.

use std::sync::{Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use serde_json::Value;
use sqs_batch::metrics::{Metric, Metrics, Unit};

/// The run's metrics so far, shared by the batches, the function's log readers, the summary and
/// the Prometheus endpoint.
#[derive(Debug, Default)]
pub(crate) struct UserMetrics(Mutex<Metrics>);

impl UserMetrics {
    pub(crate) fn add(&self, metrics: &Metrics) {
        if !metrics.is_empty() {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).merge(metrics);
        }
    }

    pub(crate) fn snapshot(&self) -> Metrics {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The most metric definitions read from one EMF line: a bound on what a line can make the runner
/// keep, far above what a function writes.
const MAX_METRICS_PER_LINE: usize = 200;

/// The handler's metrics in an Embedded Metric Format line, without the framework's own (the
/// runner counts those itself) and without the `service` dimension (one function, one service);
/// `None` for any other line.
pub(crate) fn from_emf(line: &str) -> Option<Metrics> {
    if !line.contains("\"_aws\"") {
        return None;
    }
    let value: Value = serde_json::from_str(line).ok()?;
    let directives = value.get("_aws")?.get("CloudWatchMetrics")?.as_array()?;
    let mut metrics = Metrics::default();
    for directive in directives {
        let dimensions: Vec<(&str, &str)> = directive
            .get("Dimensions")
            .and_then(|sets| sets.get(0))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|name| {
                let name = name.as_str()?;
                Some((name, value.get(name)?.as_str()?))
            })
            .filter(|(name, _)| *name != "service")
            .collect();
        let definitions = directive.get("Metrics").and_then(Value::as_array).into_iter().flatten();
        for definition in definitions.take(MAX_METRICS_PER_LINE) {
            let Some(name) = definition.get("Name").and_then(Value::as_str) else { continue };
            let unit = definition
                .get("Unit")
                .and_then(Value::as_str)
                .and_then(Unit::from_name)
                .unwrap_or(Unit::None);
            let values = match value.get(name) {
                Some(Value::Array(values)) => values.iter().filter_map(Value::as_f64).collect(),
                Some(one) => one.as_f64().into_iter().collect(),
                None => Vec::new(),
            };
            for number in values {
                let metric =
                    dimensions.iter().fold(Metric::new(name, unit, number), |metric, (key, value)| {
                        metric.dimension(*key, *value)
                    });
                // The framework's own names and what CloudWatch would refuse are left out.
                if metric.problem().is_none() {
                    metrics.add(&metric);
                }
            }
        }
    }
    Some(metrics)
}

/// `OrdersStored` as Prometheus names it: `orders_stored`. Anything but letters and digits
/// becomes `_`.
#[must_use]
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let previous = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let after_word = previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
            let ends_acronym = previous.is_some_and(|p| p.is_ascii_uppercase())
                && next.is_some_and(char::is_ascii_lowercase);
            if (after_word || ends_acronym) && !snake.ends_with('_') {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            snake.push(c);
        } else if !snake.ends_with('_') {
            snake.push('_');
        }
    }
    if snake.starts_with(|c: char| c.is_ascii_digit()) {
        snake.insert(0, '_');
    }
    snake
}

/// The runner's own series' names (after `local_runner_`): a handler's metric of the same snake
/// name is served as `user_<name>` instead.
const OWN: [&str; 12] = [
    "polled_events",
    "filtered_out_events",
    "invoked_events",
    "failed_invoke_events",
    "deleted_events",
    "dropped_events",
    "receive_errors",
    "receives_cut_off",
    "messages_in_flight",
    "batch_duration",
    "batch_size",
    "oldest_message_age",
];

/// The Prometheus name of a handler's metric.
pub(crate) fn prometheus_name(name: &str) -> String {
    let snake = snake_case(name);
    if OWN.contains(&snake.as_str()) || snake.starts_with("messages_") {
        format!("user_{snake}")
    } else {
        snake
    }
}

/// The label name of a dimension: `queue` is the runner's own.
fn label_name(dimension: &str) -> String {
    match snake_case(dimension) {
        queue if queue == "queue" => "dimension_queue".to_owned(),
        label => label,
    }
}

/// Served on each scrape: a counter (`_total`) for a `Count` metric, and for any other unit the
/// sum and count of its values (a histogram with only its `+Inf` bucket).
#[derive(Debug)]
pub(crate) struct Served(pub(crate) std::sync::Arc<UserMetrics>);

impl Collector for Served {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metrics = self.0.snapshot();
        let mut by_name: std::collections::BTreeMap<String, Vec<_>> = std::collections::BTreeMap::new();
        for (key, series) in metrics.iter() {
            by_name.entry(prometheus_name(&key.name)).or_default().push((key, series));
        }
        for (name, series) in by_name {
            let counter = series.iter().all(|(_, s)| s.unit == Unit::Count);
            let kind = if counter { MetricType::Counter } else { MetricType::Histogram };
            // Prometheus' text writes the help as it is: the name escaped, whatever recorded it.
            let original = crate::observe::printable(&series[0].0.name, sqs_batch::metrics::MAX_NAME_CHARS);
            let help = format!("The handler's metric {original} ({})", series[0].1.unit.as_str());
            let mut family = encoder.encode_descriptor(&name, &help, None, kind)?;
            for (key, values) in series {
                let labels: Vec<(String, String)> =
                    key.dimensions.iter().map(|(name, value)| (label_name(name), value.clone())).collect();
                let mut metric = family.encode_family(&labels)?;
                if counter {
                    prometheus_client::metrics::counter::ConstCounter::new(values.sum).encode(metric)?;
                } else {
                    metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                        values.sum,
                        values.count,
                        &[(f64::INFINITY, values.count)],
                        None,
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// The metrics for the summary: `name{dimension=value}` and the sum, count and unit of its values.
pub(crate) fn summary_json(metrics: &Metrics) -> Option<String> {
    if metrics.is_empty() {
        return None;
    }
    let mut object = serde_json::Map::new();
    for (key, series) in metrics.iter() {
        object.insert(
            labelled(&key.name, &key.dimensions),
            serde_json::json!({"sum": series.sum, "count": series.count, "unit": series.unit.as_str()}),
        );
    }
    Some(Value::Object(object).to_string())
}

/// `OrderValue{currency=EUR}`: a metric's name and dimensions, as the summary names it.
pub(crate) fn labelled(name: &str, dimensions: &[(String, String)]) -> String {
    if dimensions.is_empty() {
        return name.to_owned();
    }
    let pairs: Vec<String> = dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_snake_case_as_prometheus_writes_them() {
        for (name, snake) in [
            ("OrdersStored", "orders_stored"),
            ("HTTPErrors", "http_errors"),
            ("payment.latency-ms", "payment_latency_ms"),
            ("Orders2Stored", "orders2_stored"),
            ("3DPrints", "_3_d_prints"),
        ] {
            assert_eq!(snake_case(name), snake, "{name}");
        }
        assert_eq!(prometheus_name("MessagesInFlight"), "user_messages_in_flight");
        assert_eq!(prometheus_name("OrdersStored"), "orders_stored");
    }

    #[test]
    fn an_emf_line_gives_the_handlers_metrics_and_leaves_the_frameworks_out() {
        let line = r#"{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[
            {"Namespace":"n","Dimensions":[["service"]],"Metrics":[{"Name":"BatchSize","Unit":"Count"},{"Name":"OrdersStored","Unit":"Count"}]},
            {"Namespace":"n","Dimensions":[["service","currency"]],"Metrics":[{"Name":"OrderValue","Unit":"None"}]}]},
            "service":"fn","currency":"EUR","BatchSize":3,"OrdersStored":[1,1],"OrderValue":9.5}"#
            .replace('\n', "");
        let metrics = from_emf(&line).expect("an EMF line");
        assert_eq!((metrics.sum("OrdersStored"), metrics.sum("BatchSize")), (Some(2.0), None));
        let (key, series) = metrics.iter().find(|(key, _)| key.name == "OrderValue").unwrap();
        assert_eq!((key.dimensions.clone(), series.sum), (vec![("currency".into(), "EUR".into())], 9.5));
        let forged = r#"{"_aws":{"CloudWatchMetrics":[{"Dimensions":[["tenant"]],"Metrics":[{"Name":"A\n# EOF","Unit":"Count"},{"Name":"B","Unit":"Count"}]}]},"tenant":"\u001b[2J","A\n# EOF":1,"B":1}"#;
        assert!(
            from_emf(forged).expect("an EMF line").is_empty(),
            "control characters are refused, not served"
        );
        assert!(from_emf(r#"{"message":"batch done"}"#).is_none());
        assert!(from_emf(r#"{"_aws": 1}"#).is_none());
    }

    #[test]
    fn prometheus_serves_counts_as_counters_and_other_units_as_sum_and_count() {
        let store = std::sync::Arc::new(UserMetrics::default());
        let mut metrics = Metrics::default();
        metrics.add(&Metric::new("OrdersStored", Unit::Count, 2.0));
        metrics.add(&Metric::new("PaymentTime", Unit::Milliseconds, 40.0).dimension("queue", "x"));
        store.add(&metrics);
        let mut registry = prometheus_client::registry::Registry::with_prefix("local_runner");
        registry.register_collector(Box::new(Served(std::sync::Arc::clone(&store))));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("local_runner_orders_stored_total 2"), "{text}");
        assert!(text.contains(r#"local_runner_payment_time_sum{dimension_queue="x"} 40"#), "{text}");
        assert!(text.contains(r#"local_runner_payment_time_count{dimension_queue="x"} 1"#), "{text}");
    }
}
