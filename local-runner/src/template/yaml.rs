//! Reading CloudFormation YAML: short-form tags in their long form, and the small readers the
//! model is built with.

use serde_json::{Map, Value};

use super::Finding;

/// YAML to JSON, with CloudFormation's short-form tags in their long form
/// (`!GetAtt Queue.Arn` becomes `{"Fn::GetAtt": ["Queue", "Arn"]}`, `!Ref X` becomes `{"Ref": "X"}`).
pub(super) fn to_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            n.as_u64().map(Value::from).or_else(|| n.as_i64().map(Value::from)).unwrap_or_else(|| {
                n.as_f64().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
            })
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .filter_map(|(k, v)| match k {
                    Y::String(key) => Some((key, to_json(v))),
                    Y::Number(n) => Some((n.to_string(), to_json(v))),
                    Y::Bool(b) => Some((b.to_string(), to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let inner = to_json(tagged.value);
            let (key, inner) = match (tag, inner) {
                ("Ref", inner) => ("Ref".to_owned(), inner),
                ("GetAtt", Value::String(s)) => {
                    let parts = s.splitn(2, '.').map(|p| Value::String(p.to_owned())).collect();
                    ("Fn::GetAtt".to_owned(), Value::Array(parts))
                }
                (other, inner) => (format!("Fn::{other}"), inner),
            };
            Value::Object([(key, inner)].into_iter().collect())
        }
    }
}

/// The template with its parameters put where they are referred to: `!Ref Param` becomes the
/// parameter's value, and `!Sub` text with only parameters in it becomes plain text. A value is
/// the override given for it (as `sam deploy --parameter-overrides` takes them), else its
/// `Default`.
pub(super) fn resolve_parameters(doc: Value, overrides: &[(String, String)]) -> Value {
    let mut defaults: Map<String, Value> = doc["Parameters"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, parameter)| Some((name.clone(), parameter.get("Default")?.clone())))
        .collect();
    for (name, value) in overrides {
        defaults.insert(name.clone(), Value::String(value.clone()));
    }
    if defaults.is_empty() {
        return doc;
    }
    resolve(doc, &defaults)
}

fn resolve(value: Value, defaults: &Map<String, Value>) -> Value {
    match value {
        Value::Object(object) => {
            if object.len() == 1 {
                if let Some(Value::String(name)) = object.get("Ref")
                    && let Some(default) = defaults.get(name)
                {
                    return default.clone();
                }
                if let Some(Value::String(text)) = object.get("Fn::Sub")
                    && let Some(done) = substitute(text, defaults)
                {
                    return Value::String(done);
                }
            }
            Value::Object(object.into_iter().map(|(k, v)| (k, resolve(v, defaults))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|v| resolve(v, defaults)).collect()),
        other => other,
    }
}

/// `text` with every `${Param}` replaced by its default; `None` if anything else is left
/// (`${AWS::Region}`, a resource's attribute).
fn substitute(text: &str, defaults: &Map<String, Value>) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        let name = &rest[start + 2..end];
        out.push_str(&scalar_text(defaults.get(name)?)?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The logical id a `Queue` property points at: `{"Fn::GetAtt": [Id, "Arn"]}` or `{"Ref": Id}`.
/// The entries of a function's `Policies`: one, a list, or none; an `!If [Condition, A, B]`
/// counts as both branches (it grants A when the condition holds).
pub(super) fn policy_entries(policies: &Value) -> Vec<&Value> {
    let entries: Vec<&Value> = match policies {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    };
    entries
        .into_iter()
        .flat_map(|entry| match entry["Fn::If"].as_array() {
            Some(branches) => branches.iter().skip(1).collect(),
            None => vec![entry],
        })
        .collect()
}

/// How many inline statements of a policy entry allow (not deny) an action `allowed` accepts.
pub(super) fn allowing_statements(entry: &Value, allowed: impl Fn(&str) -> bool) -> usize {
    let statements: Vec<&Value> = match &entry["Statement"] {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    };
    statements
        .into_iter()
        .filter(|statement| statement["Effect"] != "Deny")
        .filter(|statement| match &statement["Action"] {
            Value::String(action) => allowed(action),
            Value::Array(actions) => actions.iter().filter_map(Value::as_str).any(&allowed),
            _ => false,
        })
        .count()
}

pub(super) fn logical_ref(value: &Value) -> Option<String> {
    value["Fn::GetAtt"][0].as_str().or_else(|| value["Ref"].as_str()).map(str::to_owned)
}

/// Why a `RedrivePolicy` that is there cannot be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum UnreadableRedrive {
    #[error("it is not JSON ({0})")]
    NotJson(#[source] serde_json::Error),
    #[error("it has no maxReceiveCount")]
    NoCount,
    #[error("its maxReceiveCount {0} is not a number")]
    CountNotANumber(String),
}

/// A queue's `RedrivePolicy`: the dead-letter queue's logical id (when it is one of the
/// template's) and `maxReceiveCount`. `Ok(None)` when there is none; `Err` says why one that is
/// there cannot be read. It may be an object, a JSON string, or a `!Sub` of a JSON string
/// (`{"deadLetterTargetArn": "${Dlq.Arn}", ...}`).
pub(super) fn redrive_policy(value: &Value) -> Result<Option<(Option<String>, u64)>, UnreadableRedrive> {
    if value.is_null() {
        return Ok(None);
    }
    let text: Option<&str> = match value {
        Value::String(text) => Some(text),
        Value::Object(object) if object.len() == 1 => match object.get("Fn::Sub") {
            Some(Value::String(text)) => Some(text),
            // The long form: `[text, {variables}]`.
            Some(Value::Array(parts)) => parts.first().and_then(Value::as_str),
            _ => None,
        },
        _ => None,
    };
    let parsed;
    let policy = match text {
        Some(text) => {
            parsed = serde_json::from_str::<Value>(text).map_err(UnreadableRedrive::NotJson)?;
            &parsed
        }
        None => value,
    };
    let count = match &policy["maxReceiveCount"] {
        Value::Null => return Err(UnreadableRedrive::NoCount),
        count => as_u64(count).ok_or_else(|| UnreadableRedrive::CountNotANumber(shown(count)))?,
    };
    let target = &policy["deadLetterTargetArn"];
    let dlq = logical_ref(target).or_else(|| {
        // `${Dlq.Arn}` in a `!Sub`.
        let inner = target.as_str()?.strip_prefix("${")?.strip_suffix('}')?;
        Some(inner.strip_suffix(".Arn").unwrap_or(inner).to_owned())
    });
    Ok(Some((dlq, count)))
}

/// A number field of the template, checked against the range AWS accepts for it.
pub(super) struct NumberField<'a> {
    /// Where it is, for messages: `Fn.Timeout`.
    pub(super) at: &'a str,
    /// The smallest and largest value AWS accepts.
    pub(super) range: std::ops::RangeInclusive<u64>,
    /// Who sets the limit and in what unit: "Lambda's limit, in seconds".
    pub(super) unit: &'a str,
}

impl NumberField<'_> {
    /// The value, `Ok(None)` when it is not set; `Err`, a finding of the `limit` rule in one line
    /// naming the field, the value and the range, when it is out of range, or not a number at
    /// all (an intrinsic function such as `!If`, or `!Ref` to a parameter the template does not
    /// declare).
    pub(super) fn read(&self, value: &Value) -> Result<Option<u64>, Finding> {
        let (low, high) = (self.range.start(), self.range.end());
        let limit = |message: String| Finding { rule: "limit", message, warning: false };
        match value {
            Value::Null => Ok(None),
            _ => match as_u64(value) {
                Some(n) if self.range.contains(&n) => Ok(Some(n)),
                Some(n) => Err(limit(format!("{} is {n}, outside {low}..={high} ({})", self.at, self.unit))),
                None if value.is_object() => Err(limit(format!(
                    "{} is {}, which cannot be worked out without deploying: give a number from {low} to {high}, \
                     or a parameter with a Default (--parameter-overrides sets it)",
                    self.at,
                    shown(value)
                ))),
                None => Err(limit(format!(
                    "{} is {}, not a whole number from {low} to {high} ({})",
                    self.at,
                    shown(value),
                    self.unit
                ))),
            },
        }
    }
}

/// A value as a message shows it: short, on one line, intrinsic functions in their short form
/// where that is simple (`!Ref X`).
pub(super) fn shown(value: &Value) -> String {
    let text = match value {
        Value::Object(object) if object.len() == 1 => {
            let (key, inner) = object.iter().next().map_or(("", &Value::Null), |(k, v)| (k.as_str(), v));
            let tag = key.strip_prefix("Fn::").unwrap_or(key);
            format!("!{tag} {inner}")
        }
        other => other.to_string(),
    };
    sqs_batch::runtime::telemetry::clip(&text, 80).into_owned()
}

/// The entries of a function's `Policies` that are far broader than an SQS consumer needs.
pub(super) fn broad_policies(policies: &Value) -> Vec<String> {
    let entries: Vec<&Value> = match policies {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    };
    let mut broad = Vec::new();
    for entry in entries {
        if let Some(name) = entry.as_str() {
            if ["FullAccess", "AdministratorAccess", "PowerUserAccess"].iter().any(|b| name.contains(b)) {
                broad.push(name.to_owned());
            }
            continue;
        }
        let statements = match &entry["Statement"] {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            single => vec![single],
        };
        for statement in statements {
            let actions: Vec<&str> = match &statement["Action"] {
                Value::String(action) => vec![action.as_str()],
                Value::Array(actions) => actions.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if statement["Effect"] != "Deny"
                && actions.iter().any(|a| *a == "*" || a.eq_ignore_ascii_case("sqs:*"))
            {
                broad.push(format!("a statement allowing {}", actions.join(", ")));
            }
        }
    }
    broad
}

pub(super) fn as_u64(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

pub(super) fn as_bool(value: &Value) -> Option<bool> {
    value.as_bool().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

pub(super) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
