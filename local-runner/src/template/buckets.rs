//! The template's S3 buckets, and the large-payload rule that uses them: a function whose
//! `PAYLOAD_BUCKET` names a bucket reads the bodies the SQS Extended Client keeps there, so the
//! stack needs that bucket and a policy that lets the function read (and delete) its objects,
//! or every such message fails on its first `GetObject`.

use serde_json::Value;

use super::yaml::{allowing_statements, logical_ref, policy_entries};
use super::{Finding, FunctionSpec, Template};

/// The variable that names the bucket (`sqs_batch::large_payload::LargePayloads::from_env`).
pub const PAYLOAD_BUCKET_VAR: &str = "PAYLOAD_BUCKET";
/// The SAM policy templates that let a function read and delete a bucket's objects.
const READING_POLICIES: [&str; 2] = ["S3CrudPolicy", "S3FullAccessPolicy"];
/// S3's bounds on a bucket name's length.
const BUCKET_NAME_LENGTH: std::ops::RangeInclusive<usize> = 3..=63;
/// The most characters of a refused name a finding quotes.
const MAX_QUOTED_NAME: usize = 64;

/// An `AWS::S3::Bucket` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSpec {
    /// Its logical id.
    pub logical_id: String,
    /// `BucketName`, when the template gives one (parameters resolved).
    pub name: Option<String>,
}

/// An `AWS::S3::Bucket`'s properties.
pub(super) fn bucket(id: &str, props: &Value) -> BucketSpec {
    let name = props["BucketName"].as_str().filter(|name| !name.is_empty()).map(str::to_owned);
    BucketSpec { logical_id: id.to_owned(), name }
}

/// S3's rule for a bucket name (3-63 of `a-z 0-9 . -`, starting and ending with a letter or
/// digit), as a finding: `up` would otherwise send (and print) whatever a parameter carries.
pub(super) fn name_problem(bucket: &BucketSpec) -> Option<Finding> {
    let name = bucket.name.as_deref()?;
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let inner = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-');
    if BUCKET_NAME_LENGTH.contains(&name.len())
        && name.chars().all(inner)
        && edge(name.chars().next())
        && edge(name.chars().last())
    {
        return None;
    }
    let quoted: String = name.chars().take(MAX_QUOTED_NAME).collect();
    Some(Finding {
        rule: "limit",
        message: format!(
            "{}.BucketName {quoted:?} ({} characters) is not an S3 bucket name: 3 to 63 of a-z, 0-9, `.` and \
             `-`, starting and ending with a letter or digit",
            bucket.logical_id,
            name.chars().count()
        ),
        warning: false,
    })
}

/// The buckets `Policies` let the function read and delete from: names, or logical ids of
/// `!Ref`s; `"*"` for an inline statement allowing `s3:GetObject`.
pub(super) fn s3_grants(policies: &Value) -> Vec<String> {
    let mut grants = Vec::new();
    for entry in policy_entries(policies) {
        for policy in READING_POLICIES {
            let bucket = &entry[policy]["BucketName"];
            if let Some(name) = bucket.as_str().map(str::to_owned).or_else(|| logical_ref(bucket)) {
                grants.push(name);
            }
        }
        let reads =
            |action: &str| matches!(action.to_ascii_lowercase().as_str(), "*" | "s3:*" | "s3:getobject");
        grants.extend(std::iter::repeat_n("*".to_owned(), allowing_statements(entry, reads)));
    }
    grants
}

impl Template {
    /// The bucket `function`'s `PAYLOAD_BUCKET` names: `None` when it is unset or empty (large
    /// payloads off).
    ///
    /// # Errors
    /// A [`Finding`] when the template declares no bucket of that name.
    pub fn payload_bucket(&self, function: &FunctionSpec) -> Option<Result<&BucketSpec, Finding>> {
        let wanted =
            function.environment.get(PAYLOAD_BUCKET_VAR).map(|name| name.trim()).filter(|n| !n.is_empty())?;
        let found = self.buckets.values().find(|bucket| bucket.name.as_deref() == Some(wanted));
        Some(found.ok_or_else(|| Finding {
            rule: "payload",
            message: format!(
                "{}.Environment.Variables.{PAYLOAD_BUCKET_VAR} names bucket {:?}, which the template does not \
                 declare: add an AWS::S3::Bucket with it as BucketName, or unset the variable",
                function.logical_id,
                wanted.chars().take(MAX_QUOTED_NAME).collect::<String>()
            ),
            warning: false,
        }))
    }

    /// The large-payload rule for `function`: its bucket declared, and a policy that lets the
    /// function read and delete there.
    pub(super) fn check_payload_bucket(&self, function: &FunctionSpec, findings: &mut Vec<Finding>) {
        let bucket = match self.payload_bucket(function) {
            None => return,
            Some(Err(finding)) => return findings.push(finding),
            Some(Ok(bucket)) => bucket,
        };
        let granted = function.s3_grants.iter().any(|grant| {
            grant == "*" || *grant == bucket.logical_id || bucket.name.as_deref() == Some(grant.as_str())
        });
        if !granted {
            let id = &function.logical_id;
            findings.push(Finding {
                rule: "payload",
                message: format!(
                    "{id} reads large payloads from {} but no policy lets it read and delete there: add \
                     `- S3CrudPolicy: {{BucketName: ...}}` naming it to {id}.Policies",
                    bucket.name.as_deref().unwrap_or(&bucket.logical_id)
                ),
                warning: false,
            });
        }
    }
}
