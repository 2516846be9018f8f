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

use serde_json::{Map, Value};
use sqs_batch::SqsMessage;

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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter {index}: {reason}")]
pub struct FilterError {
    /// Which filter (1-based, as a person counts them).
    pub index: usize,
    /// What is wrong, with the position in the pattern where there is one.
    pub reason: String,
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
                reason: format!(
                    "{} filters; Lambda takes at most {MAX_FILTERS} per event source mapping",
                    patterns.len()
                ),
            });
        }
        let parsed = patterns
            .iter()
            .enumerate()
            .map(|(i, text)| {
                Pattern::parse(text.as_ref()).map_err(|reason| FilterError { index: i + 1, reason })
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
    fn parse(text: &str) -> Result<Self, String> {
        let length = text.chars().count();
        if length > MAX_PATTERN_LENGTH {
            return Err(format!(
                "the pattern has {length} characters; Lambda takes at most {MAX_PATTERN_LENGTH}"
            ));
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|err| format!("not valid JSON: {err} (in {})", excerpt(text)))?;
        let Value::Object(object) = value else {
            return Err(
                "a pattern is a JSON object of fields, like {\"body\": {\"kind\": [\"order\"]}}".into()
            );
        };
        Ok(Self { root: fields(&object, "")? })
    }

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

fn excerpt(text: &str) -> String {
    let short: String = text.chars().take(60).collect();
    if short.len() < text.len() { format!("{short}…") } else { short }
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

/// The fields of a pattern object at `path` (for messages: `body.kind`).
fn fields(object: &Map<String, Value>, path: &str) -> Result<Node, String> {
    let (fields, or) = field_sets(object, path)?;
    Ok(Node::Fields { fields, or })
}

/// A field list and its `$or` alternatives.
type FieldSets = (Vec<(String, Node)>, Vec<Vec<(String, Node)>>);

fn field_sets(object: &Map<String, Value>, path: &str) -> Result<FieldSets, String> {
    let mut wanted = Vec::new();
    let mut or = Vec::new();
    for (name, value) in object {
        let here = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
        if name == "$or" {
            let Value::Array(branches) = value else {
                return Err(format!("{here}: $or takes a list of patterns"));
            };
            if branches.len() < 2 {
                return Err(format!("{here}: $or takes at least two patterns"));
            }
            for branch in branches {
                let Value::Object(branch) = branch else {
                    return Err(format!("{here}: each $or branch is an object"));
                };
                let (set, nested) = field_sets(branch, path)?;
                if !nested.is_empty() {
                    return Err(format!("{here}: $or inside $or is not supported by Lambda"));
                }
                or.push(set);
            }
            continue;
        }
        let node = match value {
            Value::Object(inner) => fields(inner, &here)?,
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(format!("{here}: an empty list matches nothing; give at least one value"));
                }
                Node::Values(items.iter().map(|item| matcher(item, &here)).collect::<Result<_, _>>()?)
            }
            other => return Err(format!("{here}: values go in a list, like [{other}]")),
        };
        wanted.push((name.clone(), node));
    }
    Ok((wanted, or))
}

fn matcher(item: &Value, here: &str) -> Result<Matcher, String> {
    let Value::Object(operator) = item else {
        return match item {
            Value::Array(_) => Err(format!("{here}: a list inside a list of values")),
            scalar => Ok(Matcher::Exact(scalar.clone())),
        };
    };
    let mut entries = operator.iter();
    let (Some((name, argument)), None) = (entries.next(), entries.next()) else {
        return Err(format!("{here}: an operator object has exactly one key, like {{\"prefix\": \"us-\"}}"));
    };
    let text = |what: &str| -> Result<String, String> {
        argument.as_str().map(str::to_owned).ok_or_else(|| format!("{here}: {what} takes a string"))
    };
    match name.as_str() {
        "prefix" | "suffix" => {
            let (text, ignore_case) = match argument {
                Value::String(text) => (text.clone(), false),
                Value::Object(inner)
                    if inner.len() == 1 && inner.get("equals-ignore-case").is_some_and(Value::is_string) =>
                {
                    (inner["equals-ignore-case"].as_str().unwrap_or_default().to_owned(), true)
                }
                _ => return Err(format!("{here}: {name} takes a string")),
            };
            Ok(if name == "prefix" {
                Matcher::Prefix { text, ignore_case }
            } else {
                Matcher::Suffix { text, ignore_case }
            })
        }
        "equals-ignore-case" => Ok(Matcher::EqualsIgnoreCase(text("equals-ignore-case")?)),
        "exists" => argument
            .as_bool()
            .map(Matcher::Exists)
            .ok_or_else(|| format!("{here}: exists takes true or false")),
        "numeric" => numeric(argument, here),
        "anything-but" => anything_but(argument, here),
        unknown => {
            Err(format!("{here}: unknown operator {unknown:?}; Lambda supports {}", OPERATORS.join(", ")))
        }
    }
}

fn numeric(argument: &Value, here: &str) -> Result<Matcher, String> {
    let usage = || format!("{here}: numeric takes comparisons and numbers, like [\">\", 0, \"<=\", 5]");
    let Value::Array(parts) = argument else { return Err(usage()) };
    if parts.is_empty() || parts.len() % 2 != 0 || parts.len() > 4 {
        return Err(usage());
    }
    let mut conditions = Vec::new();
    for pair in parts.chunks(2) {
        let comparison = match pair[0].as_str() {
            Some("<") => Comparison::Less,
            Some("<=") => Comparison::LessOrEqual,
            Some("=") => Comparison::Equal,
            Some(">=") => Comparison::GreaterOrEqual,
            Some(">") => Comparison::Greater,
            _ => return Err(usage()),
        };
        let bound = pair[1].as_f64().ok_or_else(usage)?;
        conditions.push((comparison, bound));
    }
    Ok(Matcher::Numeric(conditions))
}

fn anything_but(argument: &Value, here: &str) -> Result<Matcher, String> {
    let scalar = |v: &Value| v.is_string() || v.is_number();
    let not = match argument {
        v if scalar(v) => Not::Values(vec![v.clone()]),
        Value::Array(values) if !values.is_empty() && values.iter().all(scalar) => {
            Not::Values(values.clone())
        }
        Value::Object(inner) if inner.len() == 1 => {
            let (name, value) =
                inner.iter().next().ok_or_else(|| format!("{here}: anything-but needs a value"))?;
            match (name.as_str(), value) {
                ("prefix", Value::String(p)) => Not::Prefix(p.clone()),
                ("suffix", Value::String(s)) => Not::Suffix(s.clone()),
                ("equals-ignore-case", Value::String(s)) => Not::EqualsIgnoreCase(vec![s.clone()]),
                ("equals-ignore-case", Value::Array(values)) if values.iter().all(Value::is_string) => {
                    Not::EqualsIgnoreCase(
                        values.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                    )
                }
                _ => {
                    return Err(format!(
                        "{here}: anything-but takes values, or one of prefix, suffix, equals-ignore-case"
                    ));
                }
            }
        }
        _ => return Err(format!("{here}: anything-but takes a string, a number, or a list of them")),
    };
    Ok(Matcher::AnythingBut(not))
}

/// What is legal in a pattern but cannot do what it seems to: `check` warns about these.
#[must_use]
pub fn lint(text: &str) -> Vec<String> {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else { return Vec::new() };
    let mut warnings = Vec::new();
    for key in ["attributes", "messageAttributes"] {
        if object.get(key).is_some_and(|v| v.to_string().contains("\"numeric\"")) {
            warnings.push(format!(
                "`numeric` under {key} never matches: SQS gives {key} as strings; compare them as strings (exact, prefix)"
            ));
        }
    }
    if let Some(Value::Array(values)) = object.get("body") {
        for value in values.iter().filter_map(Value::as_str) {
            if serde_json::from_str::<Value>(value).is_ok() {
                warnings.push(format!(
                    "the plain-text body value {value:?} is itself valid JSON, and a body that is valid JSON never matches a plain-text pattern"
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(body: &str) -> SqsMessage {
        serde_json::from_value(json!({
            "messageId": "m-1",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": "g1"},
            "messageAttributes": {"tenant": {"stringValue": "acme", "dataType": "String", "stringListValues": [], "binaryListValues": []}},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
            "awsRegion": "us-east-1"
        }))
        .expect("a record")
    }

    fn passes(pattern: &str, body: &str) -> bool {
        Filters::parse(&[pattern]).unwrap_or_else(|e| panic!("{pattern}: {e}")).matches(&record(body))
    }

    /// AWS's documented comparison operators, each as (pattern, body, match).
    #[test]
    fn the_operators_match_as_awss_examples_say() {
        let table: &[(&str, &str, bool)] = &[
            (r#"{"body": {"UserID": [null]}}"#, r#"{"UserID": null}"#, true),
            (r#"{"body": {"UserID": [null]}}"#, r#"{"UserID": "u1"}"#, false),
            (r#"{"body": {"LastName": [""]}}"#, r#"{"LastName": ""}"#, true),
            (r#"{"body": {"Name": ["Alice"]}}"#, r#"{"Name": "Alice"}"#, true),
            (r#"{"body": {"Name": ["Alice"]}}"#, r#"{"Name": "alice"}"#, false),
            (r#"{"body": {"Name": [{"equals-ignore-case": "alice"}]}}"#, r#"{"Name": "ALICE"}"#, true),
            (
                r#"{"body": {"Location": ["New York"], "Day": ["Monday"]}}"#,
                r#"{"Location": "New York", "Day": "Monday"}"#,
                true,
            ),
            (
                r#"{"body": {"Location": ["New York"], "Day": ["Monday"]}}"#,
                r#"{"Location": "New York", "Day": "Friday"}"#,
                false,
            ),
            (r#"{"body": {"PaymentType": ["Credit", "Debit"]}}"#, r#"{"PaymentType": "Debit"}"#, true),
            (
                r#"{"body": {"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}}"#,
                r#"{"Location": "Boston", "Day": "Monday"}"#,
                true,
            ),
            (r#"{"body": {"Weather": [{"anything-but": ["Raining"]}]}}"#, r#"{"Weather": "Sunny"}"#, true),
            (r#"{"body": {"Weather": [{"anything-but": ["Raining"]}]}}"#, r#"{"Weather": "Raining"}"#, false),
            (r#"{"body": {"Weather": [{"anything-but": ["Raining"]}]}}"#, r#"{"Other": "x"}"#, false),
            (r#"{"body": {"Price": [{"numeric": ["=", 100]}]}}"#, r#"{"Price": 100.0}"#, true),
            (r#"{"body": {"Price": [{"numeric": [">", 10, "<=", 20]}]}}"#, r#"{"Price": 20}"#, true),
            (r#"{"body": {"Price": [{"numeric": [">", 10, "<=", 20]}]}}"#, r#"{"Price": 10}"#, false),
            (r#"{"body": {"Price": [{"numeric": [">", 10, "<=", 20]}]}}"#, r#"{"Price": "15"}"#, false),
            (r#"{"body": {"ProductName": [{"exists": true}]}}"#, r#"{"ProductName": "Cup"}"#, true),
            (r#"{"body": {"ProductName": [{"exists": false}]}}"#, r#"{"Other": 1}"#, true),
            (r#"{"body": {"ProductName": [{"exists": false}]}}"#, r#"{"ProductName": "Cup"}"#, false),
            (r#"{"body": {"Region": [{"prefix": "us-"}]}}"#, r#"{"Region": "us-east-1"}"#, true),
            (r#"{"body": {"Region": [{"prefix": "us-"}]}}"#, r#"{"Region": "eu-west-1"}"#, false),
            (r#"{"body": {"FileName": [{"suffix": ".png"}]}}"#, r#"{"FileName": "cat.png"}"#, true),
            (
                r#"{"body": {"Region": [{"anything-but": {"prefix": "us-"}}]}}"#,
                r#"{"Region": "eu-west-1"}"#,
                true,
            ),
            (
                r#"{"body": {"Region": [{"anything-but": {"prefix": "us-"}}]}}"#,
                r#"{"Region": "us-east-1"}"#,
                false,
            ),
            (r#"{"body": {"count": [100]}}"#, r#"{"count": 100}"#, true),
            (r#"{"body": {"count": [100]}}"#, r#"{"count": "100"}"#, false),
            (r#"{"body": {"count": [100]}}"#, r#"{"count": 100.0}"#, false),
            (
                r#"{"body": {"order": {"lines": {"sku": ["A-1"]}}}}"#,
                r#"{"order": {"lines": [{"sku": "B"}, {"sku": "A-1"}]}}"#,
                true,
            ),
            (r#"{"body": {"tags": ["urgent"]}}"#, r#"{"tags": ["backend", "urgent"]}"#, true),
            (r#"{"body": {"order": [{"exists": true}]}}"#, r#"{"order": {"id": 1}}"#, false),
        ];
        for (pattern, body, expected) in table {
            assert_eq!(passes(pattern, body), *expected, "{pattern} on {body}");
        }
    }

    #[test]
    fn plain_text_bodies_match_only_plain_text_patterns_and_json_bodies_only_json_patterns() {
        let text_pattern = r#"{"body": [{"prefix": "hello"}]}"#;
        let json_pattern = r#"{"body": {"greeting": ["hello"]}}"#;
        assert!(passes(text_pattern, "hello world"));
        assert!(!passes(text_pattern, r#""hello world""#), "a JSON string body is JSON");
        assert!(!passes(json_pattern, "hello world"), "a plain-text body against a JSON pattern is dropped");
        assert!(passes(json_pattern, r#"{"greeting": "hello"}"#));
        assert!(
            !passes(text_pattern, r#"{"greeting": "hello"}"#),
            "a JSON body against a plain-text pattern is dropped"
        );
    }

    #[test]
    fn a_pattern_without_body_looks_only_at_the_metadata() {
        assert!(passes(r#"{"messageAttributes": {"tenant": {"stringValue": ["acme"]}}}"#, "not json at all"));
        assert!(passes(r#"{"attributes": {"MessageGroupId": [{"prefix": "g"}]}}"#, "{}"));
        assert!(!passes(r#"{"attributes": {"ApproximateReceiveCount": [{"numeric": ["=", 1]}]}}"#, "{}"));
        assert!(passes(r#"{"eventSourceARN": [{"suffix": ":orders"}]}"#, "{}"));
    }

    #[test]
    fn filters_are_ored_and_no_filters_let_everything_through() {
        let filters =
            Filters::parse(&[r#"{"body": {"kind": ["a"]}}"#, r#"{"body": {"kind": ["b"]}}"#]).unwrap();
        assert!(filters.matches(&record(r#"{"kind": "b"}"#)));
        assert!(!filters.matches(&record(r#"{"kind": "c"}"#)));
        assert!(Filters::default().matches(&record("anything")));
    }

    #[test]
    fn bad_patterns_say_what_is_wrong_and_where() {
        let error = |pattern: &str| Filters::parse(&[pattern]).unwrap_err().reason;
        assert!(
            error(r#"{"body": {"kind": ["a"]}"#).contains("line 1 column"),
            "{}",
            error(r#"{"body": {"kind": ["a"]}"#)
        );
        assert!(
            error(r#"{"body": {"kind": [{"wildcard": "a*"}]}}"#).contains("unknown operator \"wildcard\"")
        );
        assert!(error(r#"{"body": {"kind": "a"}}"#).contains("body.kind: values go in a list"));
        assert!(error(r#"{"body": {"n": [{"numeric": [">"]}]}}"#).contains("numeric takes"));
        assert!(error(r#"["a"]"#).contains("a pattern is a JSON object"));
        let long = format!(r#"{{"body": {{"k": ["{}"]}}}}"#, "x".repeat(MAX_PATTERN_LENGTH));
        assert!(error(&long).contains("at most 4096"));
        let six = vec![r#"{"body": {"k": ["a"]}}"#; 6];
        assert_eq!(Filters::parse(&six).unwrap_err().index, 6);
    }

    #[test]
    fn legal_patterns_that_cannot_match_are_linted() {
        assert_eq!(lint(r#"{"attributes": {"ApproximateReceiveCount": [{"numeric": [">", 1]}]}}"#).len(), 1);
        assert_eq!(lint(r#"{"body": ["{\"a\": 1}"]}"#).len(), 1);
        assert!(lint(r#"{"body": {"kind": ["a"]}}"#).is_empty());
    }
}
