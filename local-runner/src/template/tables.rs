//! The template's DynamoDB tables, and the idempotency rule that uses them: a function whose
//! `IDEMPOTENCY_TABLE` names a table needs that table in the stack and a policy that lets it
//! write there, or every message fails (transiently, for as long as the stack is deployed) on
//! its first store call.

use serde_json::Value;

use super::yaml::{allowing_statements, logical_ref, policy_entries};
use super::{Finding, FunctionSpec, Template};

/// The variable that turns the idempotency layer on in `handler/`'s `build()` (and in
/// `sqs_batch::idempotency::dynamodb::DynamoStore::from_env`).
pub const IDEMPOTENCY_VAR: &str = "IDEMPOTENCY_TABLE";
/// The partition key the layer writes.
pub const IDEMPOTENCY_KEY: &str = "id";
/// The attribute the layer writes its expiry to, in epoch seconds: the table's TTL attribute.
pub const IDEMPOTENCY_TTL: &str = "expiration";
/// The SAM policy templates that let a function read, write and delete items of a table.
const WRITING_POLICIES: [&str; 1] = ["DynamoDBCrudPolicy"];

/// An `AWS::DynamoDB::Table` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Its logical id.
    pub logical_id: String,
    /// `TableName`, when the template gives one (parameters resolved).
    pub name: Option<String>,
    /// The `HASH` key's attribute name and type (`S`, `N`, `B`).
    pub key: Option<(String, String)>,
    /// `TimeToLiveSpecification.AttributeName`, when TTL is enabled.
    pub ttl: Option<String>,
}

impl TableSpec {
    /// The table's name: its `TableName`, else its logical id (as `up` names it locally).
    #[must_use]
    pub fn local_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.logical_id)
    }
}

/// How a function's setting or policy names a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableRef {
    /// By name (a plain value, or a parameter resolved).
    Named(String),
    /// By `!Ref` to a table resource of the template.
    Resource(String),
    /// An inline statement allowing DynamoDB writes, on whatever resources it says.
    Any,
}

/// The longest table name DynamoDB takes; the shortest is 3.
const MAX_TABLE_NAME: usize = 255;
/// The most characters of a refused name a finding quotes.
const MAX_QUOTED_NAME: usize = 64;

/// DynamoDB's rule for a table name (3-255 of `a-z A-Z 0-9 _ - .`), as a finding: `up` would
/// otherwise send (and print) whatever a parameter carries, and an emulator may accept it.
pub(super) fn name_problem(table: &TableSpec) -> Option<Finding> {
    let name = table.name.as_deref()?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if (3..=MAX_TABLE_NAME).contains(&name.len()) && name.chars().all(allowed) {
        return None;
    }
    let quoted: String = name.chars().take(MAX_QUOTED_NAME).collect();
    Some(Finding {
        rule: "limit",
        message: format!(
            "{}.TableName {quoted:?} ({} characters) is not a DynamoDB table name: 3 to {MAX_TABLE_NAME} of \
             a-z, A-Z, 0-9, `_`, `-` and `.`",
            table.logical_id,
            name.chars().count()
        ),
        warning: false,
    })
}

/// An `AWS::DynamoDB::Table`'s properties.
pub(super) fn table(id: &str, props: &Value) -> TableSpec {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let key =
        props["KeySchema"].as_array().into_iter().flatten().find(|k| k["KeyType"] == "HASH").and_then(|k| {
            let name = text(&k["AttributeName"])?;
            let kind = props["AttributeDefinitions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|d| d["AttributeName"] == name.as_str())
                .and_then(|d| text(&d["AttributeType"]))
                .unwrap_or_default();
            Some((name, kind))
        });
    let ttl = &props["TimeToLiveSpecification"];
    let enabled = ttl["Enabled"].as_bool().or_else(|| ttl["Enabled"].as_str().map(|e| e == "true"));
    TableSpec {
        logical_id: id.to_owned(),
        name: text(&props["TableName"]).filter(|name| !name.is_empty()),
        key,
        ttl: text(&ttl["AttributeName"]).filter(|_| enabled == Some(true)),
    }
}

/// The table `IDEMPOTENCY_TABLE` names, the function's own setting over Globals'; `None` when it
/// is unset or empty (idempotency off).
pub(super) fn idempotency_table(layers: [&Value; 2]) -> Option<TableRef> {
    let value = layers.iter().rev().map(|vars| &vars[IDEMPOTENCY_VAR]).find(|value| !value.is_null())?;
    match value.as_str() {
        Some(name) if name.trim().is_empty() => None,
        Some(name) => Some(TableRef::Named(name.trim().to_owned())),
        None => logical_ref(value).map(TableRef::Resource),
    }
}

/// The tables `Policies` let the function write to.
pub(super) fn dynamodb_grants(policies: &Value) -> Vec<TableRef> {
    let mut grants = Vec::new();
    for entry in policy_entries(policies) {
        for policy in WRITING_POLICIES {
            let table = &entry[policy]["TableName"];
            if let Some(name) = table.as_str() {
                grants.push(TableRef::Named(name.to_owned()));
            } else if let Some(id) = logical_ref(table) {
                grants.push(TableRef::Resource(id));
            }
        }
        let writes = |action: &str| {
            let action = action.to_ascii_lowercase();
            action == "*" || action == "dynamodb:*" || action == "dynamodb:putitem"
        };
        grants.extend(std::iter::repeat_n(TableRef::Any, allowing_statements(entry, writes)));
    }
    grants
}

impl Template {
    /// The table `function`'s `IDEMPOTENCY_TABLE` names: `None` when idempotency is off, an error
    /// saying what is missing when the template has no such table.
    ///
    /// # Errors
    /// A [`Finding`] when no table of the template is the one named.
    pub fn idempotency_table(&self, function: &FunctionSpec) -> Option<Result<&TableSpec, Finding>> {
        let wanted = function.idempotency_table.as_ref()?;
        let found = match wanted {
            TableRef::Named(name) => self.tables.values().find(|table| table.name.as_deref() == Some(name)),
            TableRef::Resource(id) => self.tables.get(id),
            TableRef::Any => None,
        };
        let shown = match wanted {
            TableRef::Named(name) => format!("table {name}"),
            TableRef::Resource(id) => format!("!Ref {id}"),
            TableRef::Any => String::new(),
        };
        Some(found.ok_or_else(|| Finding {
            rule: "idempotency",
            message: format!(
                "{}.Environment.Variables.{IDEMPOTENCY_VAR} names {shown}, which the template does not declare: \
                 add an AWS::DynamoDB::Table with it as TableName (key `{IDEMPOTENCY_KEY}` of type S, TTL on \
                 `{IDEMPOTENCY_TTL}`), or unset the variable to turn idempotency off",
                function.logical_id
            ),
            warning: false,
        }))
    }

    /// The idempotency rule for `function`: its table declared with the layer's key, TTL on, and
    /// a policy that lets the function write there.
    pub(super) fn check_idempotency(&self, function: &FunctionSpec, findings: &mut Vec<Finding>) {
        let table = match self.idempotency_table(function) {
            None => return,
            Some(Err(finding)) => return findings.push(finding),
            Some(Ok(table)) => table,
        };
        let id = &function.logical_id;
        let mut found =
            |message: String, warning| findings.push(Finding { rule: "idempotency", message, warning });
        match &table.key {
            Some((name, kind)) if name == IDEMPOTENCY_KEY && kind == "S" => {}
            _ => found(
                format!(
                    "{}: the idempotency layer writes a string partition key `{IDEMPOTENCY_KEY}`; give the table \
                     KeySchema [{{AttributeName: {IDEMPOTENCY_KEY}, KeyType: HASH}}] of AttributeType S",
                    table.logical_id
                ),
                false,
            ),
        }
        if table.ttl.as_deref() != Some(IDEMPOTENCY_TTL) {
            found(
                format!(
                    "{}: without TimeToLiveSpecification {{AttributeName: {IDEMPOTENCY_TTL}, Enabled: true}} \
                     expired idempotency records are never deleted and the table only grows",
                    table.logical_id
                ),
                true,
            );
        }
        let granted = function.dynamodb_grants.iter().any(|grant| match grant {
            TableRef::Any => true,
            TableRef::Resource(resource) => *resource == table.logical_id,
            TableRef::Named(name) => table.name.as_deref() == Some(name.as_str()),
        });
        if !granted {
            found(
                format!(
                    "{id} uses {} for idempotency but no policy lets it write there: add \
                     `- DynamoDBCrudPolicy: {{TableName: ...}}` naming it to {id}.Policies",
                    table.local_name()
                ),
                false,
            );
        }
    }
}
