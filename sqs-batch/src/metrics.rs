//! A handler's own metrics: business events counted where they happen, in the namespace of the
//! framework's own metrics.
//!
//! ```
//! use sqs_batch::metrics::{Metric, Unit};
//! use sqs_batch::{Context, Error};
//!
//! async fn handle(order: serde_json::Value, context: Context) -> Result<(), Error> {
//!     // ... store the order ...
//!     context.add_metric("OrdersStored", Unit::Count, 1.0);
//!     context.record_metric(Metric::new("OrderValue", Unit::None, 42.5).dimension("currency", "EUR"));
//!     Ok(())
//! }
//! # let report = tokio::runtime::Runtime::new().unwrap().block_on(
//! #     sqs_batch::testing::run(sqs_batch::handler_fn(handle), [sqs_batch::testing::record("{}")]));
//! # assert_eq!(report.metric("OrdersStored"), Some(1.0));
//! ```
//!
//! What a message records counts only if the message succeeds: a failed message is delivered
//! again, and its retry records it again, so counting both would count the event twice. A metric
//! about the failure itself says so with [`Metric::even_if_failed`].
//!
//! Where they go:
//! - **Lambda**: in the invocation's Embedded Metric Format document ([`crate::runtime::emf`]), one
//!   document per invocation however many messages recorded, beside `BatchSize` and the outcome
//!   counts. Each recorded value is kept, as Powertools keeps them, up to EMF's 100 values per
//!   metric and document: past that, `Count` and `Bytes` values are added into the ones kept (the
//!   sum stays exact), and the others are sampled evenly (their average and percentiles hold).
//!   Only metrics whose dimensions disagree (`tenant` = `a` for one, `b` for another) need a
//!   document each, since a document gives each dimension one value.
//! - **`local-runner`**: the same names in its summary, and in its Prometheus endpoint in snake
//!   case (`OrdersStored` is `local_runner_orders_stored_total`), the dimensions as labels; under
//!   `--lambda` it reads them from the function's EMF lines, so any function that writes EMF
//!   (Powertools' included) shows them.
//! - **The test kit**: [`crate::testing::Report::metric`] and [`crate::testing::Report::metrics`].

use std::collections::BTreeMap;

/// The most values EMF takes for one metric in one document.
pub const MAX_VALUES: usize = 100;
/// The most dimensions a metric may have, the `service` dimension included (EMF's limit).
pub const MAX_DIMENSIONS: usize = 30;
/// The longest metric or dimension name CloudWatch takes.
pub const MAX_NAME_CHARS: usize = 255;
/// The longest dimension value CloudWatch takes.
pub const MAX_VALUE_CHARS: usize = 1_024;

/// A metric's unit, from the list CloudWatch knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Unit {
    /// A number of things: orders stored, retries made.
    Count,
    /// Things per second.
    CountPerSecond,
    /// A duration in seconds.
    Seconds,
    /// A duration in milliseconds.
    Milliseconds,
    /// A duration in microseconds.
    Microseconds,
    /// A size in bytes.
    Bytes,
    /// A size in kilobytes.
    Kilobytes,
    /// A size in megabytes.
    Megabytes,
    /// Bytes per second.
    BytesPerSecond,
    /// A percentage.
    Percent,
    /// No unit: an amount of money, a score.
    None,
}

impl Unit {
    /// The name CloudWatch (and EMF) gives the unit.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::CountPerSecond => "Count/Second",
            Self::Seconds => "Seconds",
            Self::Milliseconds => "Milliseconds",
            Self::Microseconds => "Microseconds",
            Self::Bytes => "Bytes",
            Self::Kilobytes => "Kilobytes",
            Self::Megabytes => "Megabytes",
            Self::BytesPerSecond => "Bytes/Second",
            Self::Percent => "Percent",
            Self::None => "None",
        }
    }

    /// The unit CloudWatch names `name`; `None` for a name it does not know.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Count,
            Self::CountPerSecond,
            Self::Seconds,
            Self::Milliseconds,
            Self::Microseconds,
            Self::Bytes,
            Self::Kilobytes,
            Self::Megabytes,
            Self::BytesPerSecond,
            Self::Percent,
            Self::None,
        ]
        .into_iter()
        .find(|unit| unit.as_str() == name)
    }

    /// Whether values of this unit add up to a meaningful total, so that folding two of them into
    /// their sum loses nothing a dashboard reads from their `Sum`.
    fn is_additive(self) -> bool {
        matches!(self, Self::Count | Self::Bytes | Self::Kilobytes | Self::Megabytes)
    }
}

/// One value of a metric, as a handler records it ([`crate::context::Context::record_metric`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    name: String,
    unit: Unit,
    value: f64,
    dimensions: Vec<(String, String)>,
    even_if_failed: bool,
}

impl Metric {
    /// `value` of the metric `name`, in `unit`.
    #[must_use]
    pub fn new(name: impl Into<String>, unit: Unit, value: f64) -> Self {
        Self { name: name.into(), unit, value, dimensions: Vec::new(), even_if_failed: false }
    }

    /// This metric with the dimension `name` = `value` (beside `service`, which every metric
    /// has): its values are counted apart from those with another value.
    #[must_use]
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.dimensions.retain(|(existing, _)| *existing != name);
        self.dimensions.push((name, value.into()));
        self
    }

    /// This metric, kept even when the message that records it fails (`OrdersRejected`, by
    /// reason): it then counts once per delivery, retries included.
    #[must_use]
    pub fn even_if_failed(mut self) -> Self {
        self.even_if_failed = true;
        self
    }

    /// Whether it is kept when its message fails.
    pub(crate) fn kept_on_failure(&self) -> bool {
        self.even_if_failed
    }

    /// Why it would not be recorded, if it would not: a name taken by the framework's own
    /// fields or metrics, or what CloudWatch refuses (a name or value too long or empty, a value
    /// not finite, too many dimensions).
    #[must_use]
    pub fn problem(&self) -> Option<String> {
        let reserved = |name: &str| RESERVED.contains(&name) || crate::metric_names::ALL.contains(&name);
        if self.name.is_empty() || self.name.chars().count() > MAX_NAME_CHARS {
            return Some(format!("a metric name has 1 to {MAX_NAME_CHARS} characters"));
        }
        // Names and values reach log lines, terminals and Prometheus' text: none may carry a line
        // break or an escape sequence of its own.
        let controls = |text: &str| text.chars().any(char::is_control);
        if controls(&self.name)
            || self.dimensions.iter().any(|(name, value)| controls(name) || controls(value))
        {
            return Some("a metric's name and dimensions hold no control characters".to_owned());
        }
        if reserved(&self.name) {
            return Some(format!("`{}` is a name of the framework's own", self.name));
        }
        if !self.value.is_finite() {
            return Some(format!("metric `{}`: {} is not a number CloudWatch takes", self.name, self.value));
        }
        if self.dimensions.len() >= MAX_DIMENSIONS {
            return Some(format!("metric `{}`: at most {} dimensions", self.name, MAX_DIMENSIONS - 1));
        }
        for (name, value) in &self.dimensions {
            if name.is_empty()
                || name.chars().count() > MAX_NAME_CHARS
                || reserved(name)
                || *name == self.name
            {
                return Some(format!("metric `{}`: `{name}` cannot be a dimension's name", self.name));
            }
            if value.is_empty() || value.chars().count() > MAX_VALUE_CHARS {
                return Some(format!(
                    "metric `{}`: dimension `{name}` needs a value of 1 to {MAX_VALUE_CHARS} characters",
                    self.name
                ));
            }
        }
        None
    }
}

/// Names the EMF document uses for itself: never a user's metric or dimension.
const RESERVED: [&str; 4] = ["_aws", "service", "function_request_id", "ColdStart"];

/// A metric's identity: its name and its dimensions (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The metric's name.
    pub name: String,
    /// Its dimensions beside `service`, as (name, value), sorted by name.
    pub dimensions: Vec<(String, String)>,
}

/// The values one metric (one [`Key`]) took.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The unit of its first value.
    pub unit: Unit,
    /// The sum of every value recorded.
    pub sum: f64,
    /// How many values were recorded.
    pub count: u64,
    /// The values as EMF gets them: every one recorded, up to [`MAX_VALUES`] (see the module's
    /// documentation for what happens past that).
    pub values: Vec<f64>,
}

impl Series {
    fn new(unit: Unit) -> Self {
        Self { unit, sum: 0.0, count: 0, values: Vec::new() }
    }

    fn add(&mut self, value: f64) {
        self.sum += value;
        self.count += 1;
        if self.values.len() < MAX_VALUES {
            self.values.push(value);
        } else if self.unit.is_additive() {
            // Spread over the kept values, so none grows much beyond the others.
            let slot = usize::try_from(self.count % MAX_VALUES as u64).unwrap_or(0);
            self.values[slot] += value;
        } else {
            // Reservoir sampling: each value recorded has the same chance to be among those kept.
            let pick = fastrand::u64(..self.count);
            if let Some(slot) = usize::try_from(pick).ok().filter(|&slot| slot < MAX_VALUES) {
                self.values[slot] = value;
            }
        }
    }

    fn merge(&mut self, other: &Series) {
        let (sum, count) = (self.sum + other.sum, self.count + other.count);
        for value in &other.values {
            self.add(*value);
        }
        // The values of `other` stand for all it counted: the totals are its own, not theirs.
        (self.sum, self.count) = (sum, count);
    }
}

/// Metrics added up: a batch's, an invocation's, a whole run's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    series: BTreeMap<Key, Series>,
}

impl Metrics {
    /// Adds one value. A value in another unit than the metric's first is dropped with a warning:
    /// CloudWatch keeps one unit a metric.
    pub fn add(&mut self, metric: &Metric) {
        let mut dimensions = metric.dimensions.clone();
        dimensions.sort();
        let key = Key { name: metric.name.clone(), dimensions };
        let series = self.series.entry(key).or_insert_with(|| Series::new(metric.unit));
        if series.unit == metric.unit {
            series.add(metric.value);
        } else {
            tracing::warn!(
                metric = %metric.name,
                unit = metric.unit.as_str(),
                first_unit = series.unit.as_str(),
                "a metric keeps the unit of its first value: this value was dropped"
            );
        }
    }

    /// Adds every series of `other` into these.
    pub fn merge(&mut self, other: &Metrics) {
        for (key, series) in &other.series {
            match self.series.get_mut(key) {
                Some(mine) if mine.unit == series.unit => mine.merge(series),
                Some(_) => {}
                None => {
                    self.series.insert(key.clone(), series.clone());
                }
            }
        }
    }

    /// Every metric and its values, by name then dimensions.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Series)> {
        self.series.iter()
    }

    /// The sum of every value of the metric `name`, whatever its dimensions; `None` if nothing
    /// was recorded under that name.
    #[must_use]
    pub fn sum(&self, name: &str) -> Option<f64> {
        let mut found = self.series.iter().filter(|(key, _)| key.name == name).peekable();
        found.peek()?;
        Some(found.map(|(_, series)| series.sum).sum())
    }

    /// Whether nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The series split so that each group gives every dimension one value: what one EMF
    /// document can hold. One group when no two series disagree on a dimension's value.
    pub(crate) fn documents(&self) -> Vec<Vec<(&Key, &Series)>> {
        /// A document being filled: each dimension's one value, and the series in it.
        type Filling<'m> = (BTreeMap<&'m str, &'m str>, Vec<(&'m Key, &'m Series)>);
        let mut documents: Vec<Filling<'_>> = Vec::new();
        for (key, series) in &self.series {
            let fits = |values: &BTreeMap<&str, &str>| {
                key.dimensions
                    .iter()
                    .all(|(name, value)| values.get(name.as_str()).is_none_or(|v| v == value))
            };
            let index = match documents.iter().position(|(values, _)| fits(values)) {
                Some(index) => index,
                None => {
                    documents.push((BTreeMap::new(), Vec::new()));
                    documents.len() - 1
                }
            };
            let (values, members) = &mut documents[index];
            for (name, value) in &key.dimensions {
                values.insert(name, value);
            }
            members.push((key, series));
        }
        documents.into_iter().map(|(_, members)| members).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_one_metric_add_up_by_name_and_dimensions() {
        let mut metrics = Metrics::default();
        metrics.add(&Metric::new("OrdersStored", Unit::Count, 1.0));
        metrics.add(&Metric::new("OrdersStored", Unit::Count, 2.0));
        metrics.add(&Metric::new("OrdersStored", Unit::Count, 4.0).dimension("tenant", "a"));
        assert_eq!(metrics.sum("OrdersStored"), Some(7.0));
        assert_eq!(metrics.sum("Other"), None);
        let series: Vec<_> =
            metrics.iter().map(|(key, series)| (key.dimensions.len(), series.count)).collect();
        assert_eq!(series, [(0, 2), (1, 1)]);
    }

    #[test]
    fn a_value_in_another_unit_is_dropped() {
        let mut metrics = Metrics::default();
        metrics.add(&Metric::new("Took", Unit::Milliseconds, 5.0));
        metrics.add(&Metric::new("Took", Unit::Seconds, 1.0));
        assert_eq!(metrics.sum("Took"), Some(5.0));
    }

    #[test]
    fn past_a_hundred_values_counts_fold_into_their_sum_and_others_are_sampled() {
        let mut metrics = Metrics::default();
        for i in 0..1_000 {
            metrics.add(&Metric::new("Stored", Unit::Count, 1.0));
            metrics.add(&Metric::new("Took", Unit::Milliseconds, f64::from(i)));
        }
        for (key, series) in metrics.iter() {
            assert_eq!((series.values.len(), series.count), (MAX_VALUES, 1_000), "{}", key.name);
        }
        let stored = metrics.iter().find(|(key, _)| key.name == "Stored").unwrap().1;
        assert_eq!(stored.values.iter().sum::<f64>(), 1_000.0, "the EMF values keep the exact sum");
        let took = metrics.iter().find(|(key, _)| key.name == "Took").unwrap().1;
        assert!(took.values.iter().any(|&v| v >= 100.0), "values past the first hundred are sampled too");
        assert_eq!(took.sum, (0..1_000).map(f64::from).sum::<f64>());
    }

    #[test]
    fn merging_keeps_the_totals_of_both() {
        let mut a = Metrics::default();
        let mut b = Metrics::default();
        for _ in 0..150 {
            a.add(&Metric::new("Stored", Unit::Count, 1.0));
            b.add(&Metric::new("Stored", Unit::Count, 1.0));
        }
        b.add(&Metric::new("Rejected", Unit::Count, 1.0));
        a.merge(&b);
        assert_eq!((a.sum("Stored"), a.sum("Rejected")), (Some(300.0), Some(1.0)));
        let stored = a.iter().find(|(key, _)| key.name == "Stored").unwrap().1;
        assert_eq!((stored.count, stored.values.iter().sum::<f64>()), (300, 300.0));
    }

    #[test]
    fn only_metrics_that_disagree_on_a_dimension_need_a_document_each() {
        let mut metrics = Metrics::default();
        metrics.add(&Metric::new("A", Unit::Count, 1.0));
        metrics.add(&Metric::new("B", Unit::Count, 1.0).dimension("tenant", "x"));
        metrics.add(&Metric::new("C", Unit::Count, 1.0).dimension("region", "eu"));
        assert_eq!(metrics.documents().len(), 1);
        metrics.add(&Metric::new("B", Unit::Count, 1.0).dimension("tenant", "y"));
        assert_eq!(metrics.documents().len(), 2);
    }

    #[test]
    fn names_cloudwatch_would_refuse_are_named_as_problems() {
        assert_eq!(Metric::new("OrdersStored", Unit::Count, 1.0).problem(), None);
        for bad in [
            Metric::new("", Unit::Count, 1.0),
            Metric::new("x".repeat(256), Unit::Count, 1.0),
            Metric::new("BatchSize", Unit::Count, 1.0),
            Metric::new("service", Unit::Count, 1.0),
            Metric::new("Nan", Unit::Count, f64::NAN),
            Metric::new("Dim", Unit::Count, 1.0).dimension("service", "x"),
            Metric::new("Dim", Unit::Count, 1.0).dimension("tenant", ""),
            Metric::new("Dim", Unit::Count, 1.0).dimension("Dim", "x"),
            Metric::new("Forged\n# TYPE forged counter", Unit::Count, 1.0),
            Metric::new("Dim", Unit::Count, 1.0).dimension("tenant", "\u{1b}[31mRED"),
            (0..30).fold(Metric::new("Many", Unit::Count, 1.0), |m, i| m.dimension(format!("d{i}"), "v")),
        ] {
            assert!(bad.problem().is_some(), "{bad:?}");
        }
    }

    /// Records `OrdersStored` for every message, `OrdersRejected` (kept on failure) for those it
    /// fails, and a metric CloudWatch would refuse.
    async fn store(body: String, context: crate::context::Context) -> Result<(), crate::error::Error> {
        context.add_metric("OrdersStored", Unit::Count, 1.0);
        context.add_metric("BatchSize", Unit::Count, 1.0);
        if body == "bad" {
            context.record_metric(
                Metric::new("OrdersRejected", Unit::Count, 1.0).dimension("why", "bad").even_if_failed(),
            );
            return Err(crate::error::Error::permanent("bad order"));
        }
        Ok(())
    }

    #[tokio::test]
    async fn the_kit_counts_what_succeeded_messages_recorded_and_what_failed_ones_kept() {
        use crate::testing::{record, run};
        let report = run(
            crate::handler::handler_fn(store),
            [record(r#""ok""#), record(r#""bad""#), record(r#""ok""#)],
        )
        .await;
        assert_eq!(report.metric("OrdersStored"), Some(2.0), "the failed message's value is not counted");
        assert_eq!(report.metric("OrdersRejected"), Some(1.0), "kept because it asked to be");
        assert_eq!(report.metric("BatchSize"), None, "a framework name is refused");
        let (key, _) = report.metrics().iter().find(|(key, _)| key.name == "OrdersRejected").unwrap();
        assert_eq!(key.dimensions, [("why".to_owned(), "bad".to_owned())]);
    }

    #[tokio::test]
    async fn a_message_held_back_in_its_fifo_group_records_nothing() {
        use crate::testing::{record, run};
        let report = run(
            crate::handler::handler_fn(store),
            [record(r#""bad""#).group("g"), record(r#""ok""#).group("g")],
        )
        .await;
        assert_eq!((report.metric("OrdersStored"), report.metric("OrdersRejected")), (None, Some(1.0)));
    }

    #[test]
    fn every_unit_reads_back_from_its_cloudwatch_name() {
        for unit in [Unit::Count, Unit::CountPerSecond, Unit::Milliseconds, Unit::BytesPerSecond, Unit::None]
        {
            assert_eq!(Unit::from_name(unit.as_str()), Some(unit));
        }
        assert_eq!(Unit::from_name("Furlongs"), None);
    }
}
