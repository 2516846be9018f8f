//! FilterCriteria of an SQS event source mapping, as Lambda applies them: a record goes to the
//! function only if one of the filters (at most five, ORed) matches it; Lambda deletes the others
//! without invoking anything.
//!
//! Patterns use the EventBridge-style syntax Lambda supports: exact values (strings, numbers,
//! `null`, `""`), several values of a field ORed, nested fields, `$or` across fields, and the
//! operators `prefix`, `suffix`, `equals-ignore-case`, `anything-but` (values, `prefix`, `suffix`,
//! `equals-ignore-case`), `numeric` ranges and `exists`.
//!
//! What a record looks like to a pattern: its Lambda fields (`messageId`, `attributes`,
//! `messageAttributes`, `eventSourceARN`, ...) and its `body`, with Lambda's body rules:
//! - a `body` pattern that is an object matches the body's JSON: a body that is not valid JSON
//!   never matches it;
//! - a `body` pattern that is a list of values matches a plain-text body: a body that is valid
//!   JSON never matches it;
//! - a pattern without `body` does not look at the body.
//!
//! Where AWS leaves a case open, this is what happens here (and `check` says so where it matters):
//! - any valid JSON counts as a JSON body, `42` and `"text"` included;
//! - an exact number matches the same number written the same way (`100` is not `100.0`); use
//!   `numeric` to compare values;
//! - `exists` looks at leaves: a field holding an object, or an empty list, does not exist;
//! - `attributes` and `messageAttributes` values are strings, so `numeric` never matches them.

mod parse;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};
use sqs_batch::SqsMessage;

pub use parse::{PatternProblem, lint};

/// Lambda's quota of filters per event source mapping.
pub const MAX_FILTERS: usize = 5;
/// Lambda's limit on the length of one pattern, in characters.
pub const MAX_PATTERN_LENGTH: usize = 4096;
/// The operators Lambda supports.
const OPERATORS: &[&str] = &["prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists"];

/// The filters of one event source mapping: a record passes if any matches. No filters: every
/// record passes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    patterns: Vec<Pattern>,
}

/// A pattern that cannot be used, and where.
#[derive(Debug, thiserror::Error)]
#[error("filter {index}: {problem}")]
pub struct FilterError {
    /// Which filter (1-based, as a person counts them).
    pub index: usize,
    /// What is wrong, with the position in the pattern where there is one.
    #[source]
    pub problem: PatternProblem,
}

impl Filters {
    /// Parses the patterns of `FilterCriteria.Filters[].Pattern`, each a JSON text.
    ///
    /// # Errors
    /// [`FilterError`] for the first pattern that is not valid JSON (with its line and column),
    /// is not a pattern, uses an operator Lambda does not have, or breaks Lambda's limits (at
    /// most five filters, 4096 characters each).
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, FilterError> {
        if patterns.len() > MAX_FILTERS {
            return Err(FilterError {
                index: MAX_FILTERS + 1,
                problem: PatternProblem::TooManyFilters { count: patterns.len() },
            });
        }
        let parsed = patterns
            .iter()
            .enumerate()
            .map(|(i, text)| {
                Pattern::parse(text.as_ref()).map_err(|problem| FilterError { index: i + 1, problem })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns: parsed })
    }

    /// Whether there are no filters (every record passes).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// How many filters there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether `record` goes to the function.
    #[must_use]
    pub fn matches(&self, record: &SqsMessage) -> bool {
        if self.patterns.is_empty() {
            return true;
        }
        let Ok(Value::Object(mut fields)) = serde_json::to_value(record) else { return false };
        let body = fields.remove("body");
        let body = Body::of(body.as_ref().and_then(Value::as_str));
        self.patterns.iter().any(|pattern| pattern.matches_record(&fields, &body))
    }
}

/// What a pattern may say about a field.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// Nested fields, all of which must match, and `$or` alternatives, one of which must.
    Fields { fields: Vec<(String, Node)>, or: Vec<Vec<(String, Node)>> },
    /// A leaf: any of these must match the value.
    Values(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    /// A string, a number (written the same way), `null`, or a boolean.
    Exact(Value),
    Prefix {
        text: String,
        ignore_case: bool,
    },
    Suffix {
        text: String,
        ignore_case: bool,
    },
    EqualsIgnoreCase(String),
    AnythingBut(Not),
    Numeric(Vec<(Comparison, f64)>),
    Exists(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Not {
    Values(Vec<Value>),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Less,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    Greater,
}

/// A record's body, read once for every pattern.
enum Body {
    Missing,
    Json(Value),
    Text(Value),
}

impl Body {
    fn of(body: Option<&str>) -> Self {
        match body {
            None => Self::Missing,
            Some(text) => match serde_json::from_str(text) {
                Ok(json) => Self::Json(json),
                Err(_) => Self::Text(Value::String(text.to_owned())),
            },
        }
    }
}

/// One filter.
#[derive(Debug, Clone, PartialEq)]
struct Pattern {
    root: Node,
}

impl Pattern {
    fn matches_record(&self, fields: &Map<String, Value>, body: &Body) -> bool {
        let Node::Fields { fields: wanted, or } = &self.root else { return false };
        let each = |set: &Vec<(String, Node)>| {
            set.iter().all(|(name, node)| {
                if name == "body" { body_matches(node, body) } else { node_matches(node, fields.get(name)) }
            })
        };
        each(wanted) && (or.is_empty() || or.iter().any(each))
    }
}

/// Lambda's body rules: an object pattern looks into a JSON body, a list of values at a
/// plain-text body; the other way round never matches.
fn body_matches(node: &Node, body: &Body) -> bool {
    match (node, body) {
        (Node::Fields { .. }, Body::Json(json)) => node_matches(node, Some(json)),
        (Node::Values(_), Body::Text(text)) => node_matches(node, Some(text)),
        (Node::Values(_), Body::Missing) => node_matches(node, None),
        _ => false,
    }
}

fn node_matches(node: &Node, value: Option<&Value>) -> bool {
    match node {
        Node::Fields { fields, or } => match value {
            Some(Value::Object(object)) => {
                let each = |set: &Vec<(String, Node)>| {
                    set.iter().all(|(name, node)| node_matches(node, object.get(name)))
                };
                each(fields) && (or.is_empty() || or.iter().any(each))
            }
            Some(Value::Array(items)) => items.iter().any(|item| node_matches(node, Some(item))),
            _ => false,
        },
        Node::Values(matchers) => {
            let leaves: Vec<&Value> = match value {
                None | Some(Value::Object(_)) => Vec::new(),
                Some(Value::Array(items)) => {
                    items.iter().filter(|v| !v.is_object() && !v.is_array()).collect()
                }
                Some(scalar) => vec![scalar],
            };
            matchers.iter().any(|matcher| match matcher {
                Matcher::Exists(wanted) => *wanted != leaves.is_empty(),
                other => leaves.iter().any(|leaf| other.matches(leaf)),
            })
        }
    }
}

impl Matcher {
    fn matches(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            Self::Exact(wanted) => same(wanted, value),
            Self::Prefix { text: p, ignore_case } => text.is_some_and(|t| starts_with(t, p, *ignore_case)),
            Self::Suffix { text: s, ignore_case } => text.is_some_and(|t| ends_with(t, s, *ignore_case)),
            Self::EqualsIgnoreCase(wanted) => text.is_some_and(|t| t.to_lowercase() == wanted.to_lowercase()),
            Self::AnythingBut(not) => match not {
                Not::Values(values) => {
                    (value.is_string() || value.is_number()) && !values.iter().any(|v| same(v, value))
                }
                Not::Prefix(p) => text.is_some_and(|t| !t.starts_with(p.as_str())),
                Not::Suffix(s) => text.is_some_and(|t| !t.ends_with(s.as_str())),
                Not::EqualsIgnoreCase(values) => {
                    text.is_some_and(|t| !values.iter().any(|v| v.to_lowercase() == t.to_lowercase()))
                }
            },
            Self::Numeric(conditions) => value.as_f64().is_some_and(|n| {
                conditions.iter().all(|(comparison, bound)| match comparison {
                    Comparison::Less => n < *bound,
                    Comparison::LessOrEqual => n <= *bound,
                    Comparison::Equal => (n - bound).abs() <= f64::EPSILON * n.abs().max(1.0),
                    Comparison::GreaterOrEqual => n >= *bound,
                    Comparison::Greater => n > *bound,
                })
            }),
            // Decided on the field as a whole, in `node_matches`.
            Self::Exists(_) => false,
        }
    }
}

/// Exact equality as Lambda's filtering compares: strings to strings, numbers written the same
/// way, `null` to `null`, booleans to booleans.
fn same(wanted: &Value, value: &Value) -> bool {
    match (wanted, value) {
        (Value::Number(a), Value::Number(b)) => a.to_string() == b.to_string(),
        (a, b) => a == b,
    }
}

fn starts_with(text: &str, prefix: &str, ignore_case: bool) -> bool {
    if ignore_case {
        text.to_lowercase().starts_with(&prefix.to_lowercase())
    } else {
        text.starts_with(prefix)
    }
}

fn ends_with(text: &str, suffix: &str, ignore_case: bool) -> bool {
    if ignore_case { text.to_lowercase().ends_with(&suffix.to_lowercase()) } else { text.ends_with(suffix) }
}
