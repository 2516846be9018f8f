//! Patterns read from their JSON text into [`Node`]s, with the position of what is wrong; and
//! what `check` warns about in a pattern that parses.

use serde_json::{Map, Value};

use super::{Comparison, MAX_FILTERS, MAX_PATTERN_LENGTH, Matcher, Node, Not, OPERATORS, Pattern};

/// What is wrong with a pattern; `at` is the field's path in it (`body.kind`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatternProblem {
    /// More filters than a mapping takes.
    #[error("{count} filters; Lambda takes at most {MAX_FILTERS} per event source mapping")]
    TooManyFilters {
        /// How many there are.
        count: usize,
    },
    /// A pattern longer than Lambda takes.
    #[error("the pattern has {length} characters; Lambda takes at most {MAX_PATTERN_LENGTH}")]
    TooLong {
        /// Its length in characters.
        length: usize,
    },
    /// Not JSON: the parser's error says where.
    #[error("not valid JSON: {source} (in {excerpt})")]
    NotJson {
        /// What the JSON parser said, with the line and column.
        source: serde_json::Error,
        /// The pattern's start.
        excerpt: String,
    },
    /// JSON, but not an object of fields.
    #[error("a pattern is a JSON object of fields, like {{\"body\": {{\"kind\": [\"order\"]}}}}")]
    NotAnObject,
    /// `$or` with something other than a list of two or more objects, or within another `$or`.
    #[error("{at}: {problem}")]
    Or {
        /// Where.
        at: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// `"field": []`.
    #[error("{at}: an empty list matches nothing; give at least one value")]
    EmptyList {
        /// Where.
        at: String,
    },
    /// `"field": "value"` instead of `["value"]`.
    #[error("{at}: values go in a list, like [{value}]")]
    NotAList {
        /// Where.
        at: String,
        /// The value given.
        value: Value,
    },
    /// `[["a"]]`.
    #[error("{at}: a list inside a list of values")]
    ListInList {
        /// Where.
        at: String,
    },
    /// `{}` or `{"prefix": "a", "suffix": "b"}` as a value.
    #[error("{at}: an operator object has exactly one key, like {{\"prefix\": \"us-\"}}")]
    OperatorKeys {
        /// Where.
        at: String,
    },
    /// An operator not in Lambda's list.
    #[error("{at}: unknown operator {name:?}; Lambda supports {}", OPERATORS.join(", "))]
    UnknownOperator {
        /// Where.
        at: String,
        /// The operator given.
        name: String,
    },
    /// A known operator with an argument it does not take.
    #[error("{at}: {operator} takes {takes}")]
    Argument {
        /// Where.
        at: String,
        /// The operator.
        operator: &'static str,
        /// What it takes.
        takes: &'static str,
    },
}

impl Pattern {
    pub(super) fn parse(text: &str) -> Result<Self, PatternProblem> {
        let length = text.chars().count();
        if length > MAX_PATTERN_LENGTH {
            return Err(PatternProblem::TooLong { length });
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|source| PatternProblem::NotJson { source, excerpt: excerpt(text) })?;
        let Value::Object(object) = value else {
            return Err(PatternProblem::NotAnObject);
        };
        Ok(Self { root: fields(&object, "")? })
    }
}

fn excerpt(text: &str) -> String {
    let short: String = text.chars().take(60).collect();
    if short.len() < text.len() { format!("{short}…") } else { short }
}

/// The fields of a pattern object at `path` (for messages: `body.kind`).
fn fields(object: &Map<String, Value>, path: &str) -> Result<Node, PatternProblem> {
    let (fields, or) = field_sets(object, path)?;
    Ok(Node::Fields { fields, or })
}

/// A field list and its `$or` alternatives.
type FieldSets = (Vec<(String, Node)>, Vec<Vec<(String, Node)>>);

fn field_sets(object: &Map<String, Value>, path: &str) -> Result<FieldSets, PatternProblem> {
    let mut wanted = Vec::new();
    let mut or = Vec::new();
    for (name, value) in object {
        let here = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
        if name == "$or" {
            let Value::Array(branches) = value else {
                return Err(PatternProblem::Or { at: here, problem: "$or takes a list of patterns" });
            };
            if branches.len() < 2 {
                return Err(PatternProblem::Or { at: here, problem: "$or takes at least two patterns" });
            }
            for branch in branches {
                let Value::Object(branch) = branch else {
                    return Err(PatternProblem::Or { at: here, problem: "each $or branch is an object" });
                };
                let (set, nested) = field_sets(branch, path)?;
                if !nested.is_empty() {
                    return Err(PatternProblem::Or {
                        at: here,
                        problem: "$or inside $or is not supported by Lambda",
                    });
                }
                or.push(set);
            }
            continue;
        }
        let node = match value {
            Value::Object(inner) => fields(inner, &here)?,
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(PatternProblem::EmptyList { at: here });
                }
                Node::Values(items.iter().map(|item| matcher(item, &here)).collect::<Result<_, _>>()?)
            }
            other => return Err(PatternProblem::NotAList { at: here, value: other.clone() }),
        };
        wanted.push((name.clone(), node));
    }
    Ok((wanted, or))
}

fn matcher(item: &Value, here: &str) -> Result<Matcher, PatternProblem> {
    let Value::Object(operator) = item else {
        return match item {
            Value::Array(_) => Err(PatternProblem::ListInList { at: here.to_owned() }),
            scalar => Ok(Matcher::Exact(scalar.clone())),
        };
    };
    let mut entries = operator.iter();
    let (Some((name, argument)), None) = (entries.next(), entries.next()) else {
        return Err(PatternProblem::OperatorKeys { at: here.to_owned() });
    };
    let takes = |operator: &'static str, takes: &'static str| PatternProblem::Argument {
        at: here.to_owned(),
        operator,
        takes,
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
                _ if name == "prefix" => return Err(takes("prefix", "a string")),
                _ => return Err(takes("suffix", "a string")),
            };
            Ok(if name == "prefix" {
                Matcher::Prefix { text, ignore_case }
            } else {
                Matcher::Suffix { text, ignore_case }
            })
        }
        "equals-ignore-case" => argument
            .as_str()
            .map(|text| Matcher::EqualsIgnoreCase(text.to_owned()))
            .ok_or_else(|| takes("equals-ignore-case", "a string")),
        "exists" => argument.as_bool().map(Matcher::Exists).ok_or_else(|| takes("exists", "true or false")),
        "numeric" => numeric(argument, here),
        "anything-but" => anything_but(argument, here),
        unknown => Err(PatternProblem::UnknownOperator { at: here.to_owned(), name: unknown.to_owned() }),
    }
}

fn numeric(argument: &Value, here: &str) -> Result<Matcher, PatternProblem> {
    let usage = || PatternProblem::Argument {
        at: here.to_owned(),
        operator: "numeric",
        takes: "comparisons and numbers, like [\">\", 0, \"<=\", 5]",
    };
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

fn anything_but(argument: &Value, here: &str) -> Result<Matcher, PatternProblem> {
    let scalar = |v: &Value| v.is_string() || v.is_number();
    let takes = |takes: &'static str| PatternProblem::Argument {
        at: here.to_owned(),
        operator: "anything-but",
        takes,
    };
    let not = match argument {
        v if scalar(v) => Not::Values(vec![v.clone()]),
        Value::Array(values) if !values.is_empty() && values.iter().all(scalar) => {
            Not::Values(values.clone())
        }
        Value::Object(inner) if inner.len() == 1 => {
            let (name, value) = inner.iter().next().ok_or_else(|| takes("a value"))?;
            match (name.as_str(), value) {
                ("prefix", Value::String(p)) => Not::Prefix(p.clone()),
                ("suffix", Value::String(s)) => Not::Suffix(s.clone()),
                ("equals-ignore-case", Value::String(s)) => Not::EqualsIgnoreCase(vec![s.clone()]),
                ("equals-ignore-case", Value::Array(values)) if values.iter().all(Value::is_string) => {
                    Not::EqualsIgnoreCase(
                        values.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                    )
                }
                _ => return Err(takes("values, or one of prefix, suffix, equals-ignore-case")),
            }
        }
        _ => return Err(takes("a string, a number, or a list of them")),
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
