//! Idempotency records in a DynamoDB table, shared by every process and every Lambda instance.
//!
//! The table layout is Powertools' (a string partition key `id`, `expiration` in epoch seconds as
//! its TTL attribute, `status`, `in_progress_expiration` in epoch milliseconds, `validation`), so
//! one table can serve functions written with either; the names are configurable
//! ([`Attributes`]). Each step is one conditional write, so two deliveries claiming one key at
//! once, anywhere, see exactly one of them win.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use crate::error::BoxError;

use super::{Claim, Delivery, Record, Status, Store};

/// The environment variable naming the table, as `template.yaml` sets it for the function.
pub const TABLE_VAR: &str = "IDEMPOTENCY_TABLE";

/// How long one DynamoDB request may take ([`DynamoStore::from_env`]): single-item writes answer in
/// milliseconds.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one store call may take, retries included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The attribute names of the table.
#[derive(Debug, Clone)]
pub struct Attributes {
    /// The partition key (a string): `id`.
    pub key: String,
    /// When the record expires, epoch seconds, the table's TTL attribute: `expiration`.
    pub expiry: String,
    /// `INPROGRESS` or `COMPLETED`: `status`.
    pub status: String,
    /// When an `INPROGRESS` record stops holding its key, epoch milliseconds:
    /// `in_progress_expiration`.
    pub in_progress_expiry: String,
    /// The payload's hash, when payloads are validated: `validation`.
    pub validation: String,
    /// The SQS message id of the delivery holding an `INPROGRESS` record:
    /// `in_progress_message_id` (not in Powertools' layout; it ignores it).
    pub holder_message_id: String,
    /// That delivery's receive count: `in_progress_receive_count`.
    pub holder_receive_count: String,
    /// The claim's random token: `in_progress_attempt`.
    pub holder_attempt: String,
}

impl Default for Attributes {
    fn default() -> Self {
        Self {
            key: "id".into(),
            expiry: "expiration".into(),
            status: "status".into(),
            in_progress_expiry: "in_progress_expiration".into(),
            validation: "validation".into(),
            holder_message_id: "in_progress_message_id".into(),
            holder_receive_count: "in_progress_receive_count".into(),
            holder_attempt: "in_progress_attempt".into(),
        }
    }
}

/// A [`Store`] in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    names: Attributes,
}

impl DynamoStore {
    /// Records in `table`, with Powertools' attribute names.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), names: Attributes::default() }
    }

    /// The store of the table `IDEMPOTENCY_TABLE` names, with a client from the environment (its
    /// region, credentials and endpoint: `AWS_ENDPOINT_URL_DYNAMODB` points it at a local
    /// DynamoDB), once [`DynamoStore::check`] found the table; `None` when the variable is unset
    /// or empty.
    ///
    /// Each call gets [`ATTEMPT_TIMEOUT`], and with the SDK's retries [`CALL_TIMEOUT`] in all: a
    /// store that stops answering fails the message (transiently) in seconds instead of holding
    /// it to the invocation's deadline.
    ///
    /// # Errors
    /// The table is missing or cannot be reached ([`DynamoStore::check`]): called from a
    /// handler's `build()`, the function then fails its init (Lambda's event source mapping backs
    /// off, and no message is received) and `local-runner` stops before its first receive.
    pub async fn from_env() -> Result<Option<Self>, BoxError> {
        let Some(table) = std::env::var(TABLE_VAR).ok().filter(|table| !table.trim().is_empty()) else {
            return Ok(None);
        };
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(CALL_TIMEOUT)
            .build();
        let config = crate::sdk::defaults().timeout_config(timeouts).load().await;
        let store = Self::new(Client::new(&config), table.trim());
        store.check().await?;
        Ok(Some(store))
    }

    /// Checks once, at start, that the table exists and answers: one `DescribeTable` (SAM's
    /// `DynamoDBCrudPolicy` allows it). Without it a missing table would fail every message
    /// transiently until the queue had drained into its dead-letter queue.
    ///
    /// # Errors
    /// One line naming the table and what to do: it does not exist, or DynamoDB refused or did not
    /// answer the call.
    pub async fn check(&self) -> Result<(), BoxError> {
        let table = crate::runtime::telemetry::clip(&self.table, 255);
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Err(format!(
                "the idempotency table {table:?} ({TABLE_VAR}) does not exist: create it (`local-runner up` creates the \
                 template's tables locally) or set {TABLE_VAR} to a table that exists"
            )
            .into()),
            Err(err) => Err(format!(
                "cannot use the idempotency table {table:?} ({TABLE_VAR}): {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&err)
            )
            .into()),
        }
    }

    /// This store with other attribute names.
    #[must_use]
    pub fn attributes(mut self, names: Attributes) -> Self {
        self.names = names;
        self
    }

    /// The table's name.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    fn item(&self, record: &Record) -> HashMap<String, AttributeValue> {
        let names = &self.names;
        let mut item = HashMap::from([
            (names.key.clone(), AttributeValue::S(record.id.clone())),
            (names.status.clone(), AttributeValue::S(record.status.as_str().into())),
            (names.expiry.clone(), AttributeValue::N(secs(record.expires).to_string())),
        ]);
        if let Some(until) = record.in_progress_until {
            item.insert(names.in_progress_expiry.clone(), AttributeValue::N(millis(until).to_string()));
        }
        if let Some(payload) = &record.payload {
            item.insert(names.validation.clone(), AttributeValue::S(payload.clone()));
        }
        if let Some(holder) = &record.holder {
            item.insert(names.holder_message_id.clone(), AttributeValue::S(holder.message_id.clone()));
            item.insert(
                names.holder_receive_count.clone(),
                AttributeValue::N(holder.receive_count.to_string()),
            );
            item.insert(names.holder_attempt.clone(), AttributeValue::S(holder.attempt.clone()));
        }
        item
    }

    /// A stored item as a record; an item this layer did not write is an error, not a guess.
    fn record(&self, item: &HashMap<String, AttributeValue>) -> Result<Record, BoxError> {
        let names = &self.names;
        let text = |name: &str| item.get(name).and_then(|value| value.as_s().ok());
        let number = |name: &str| item.get(name).and_then(|value| value.as_n().ok()?.parse::<u64>().ok());
        let id = text(&names.key).ok_or("an idempotency record without its key")?.clone();
        let status = text(&names.status).and_then(|status| Status::parse(status));
        let status =
            status.ok_or_else(|| format!("idempotency record {id} has no status this layer knows"))?;
        let expires =
            number(&names.expiry).ok_or_else(|| format!("idempotency record {id} has no expiry"))?;
        Ok(Record {
            expires: UNIX_EPOCH + Duration::from_secs(expires),
            in_progress_until: number(&names.in_progress_expiry)
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
            payload: text(&names.validation).cloned(),
            holder: text(&names.holder_message_id).map(|message_id| Delivery {
                message_id: message_id.clone(),
                receive_count: number(&names.holder_receive_count)
                    .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                attempt: text(&names.holder_attempt).cloned().unwrap_or_default(),
            }),
            status,
            id,
        })
    }
}

impl Store for DynamoStore {
    async fn claim(&self, record: &Record, now: SystemTime) -> Result<Claim, BoxError> {
        let names = &self.names;
        // The one rule of Record::is_free_for, said in DynamoDB's words.
        let mut condition = "attribute_not_exists(#id) OR #expiry <= :now OR \
             (#status = :in_progress AND attribute_exists(#hold) AND #hold <= :now_ms)"
            .to_owned();
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(record)))
            .expression_attribute_names("#id", &names.key)
            .expression_attribute_names("#expiry", &names.expiry)
            .expression_attribute_names("#status", &names.status)
            .expression_attribute_names("#hold", &names.in_progress_expiry)
            .expression_attribute_values(":now", AttributeValue::N(secs(now).to_string()))
            .expression_attribute_values(":now_ms", AttributeValue::N(millis(now).to_string()))
            .expression_attribute_values(
                ":in_progress",
                AttributeValue::S(Status::InProgress.as_str().into()),
            );
        if let Some(holder) = record.holder.as_ref().filter(|holder| !holder.message_id.is_empty()) {
            condition.push_str(
                " OR (#status = :in_progress AND #holder = :message_id AND #count < :receive_count)",
            );
            put = put
                .expression_attribute_names("#holder", &names.holder_message_id)
                .expression_attribute_names("#count", &names.holder_receive_count)
                .expression_attribute_values(":message_id", AttributeValue::S(holder.message_id.clone()))
                .expression_attribute_values(
                    ":receive_count",
                    AttributeValue::N(holder.receive_count.to_string()),
                );
        }
        let written = put
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match written {
            Ok(_) => return Ok(Claim::Claimed),
            Err(error) => error,
        };
        let held = match error.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(held)) => held.item().cloned(),
            _ => return Err(error.into()),
        };
        // Some DynamoDB implementations do not return the item that held the key: read it.
        let item = match held {
            Some(item) => item,
            None => {
                let read = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key(&names.key, AttributeValue::S(record.id.clone()))
                    .consistent_read(true)
                    .send()
                    .await?;
                match read.item {
                    Some(item) => item,
                    // Deleted in between: its holder failed; this delivery fails transiently and
                    // claims it on its retry.
                    None => {
                        return Err(format!("idempotency record {} changed while claimed", record.id).into());
                    }
                }
            }
        };
        Ok(Claim::Taken(self.record(&item)?))
    }

    async fn complete(&self, record: &Record) -> Result<(), BoxError> {
        self.client.put_item().table_name(&self.table).set_item(Some(self.item(record))).send().await?;
        Ok(())
    }

    async fn release(&self, claim: &Record) -> Result<(), BoxError> {
        let names = &self.names;
        let mut delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(&names.key, AttributeValue::S(claim.id.clone()));
        if let Some(holder) = &claim.holder {
            delete = delete
                .condition_expression("#attempt = :attempt")
                .expression_attribute_names("#attempt", &names.holder_attempt)
                .expression_attribute_values(":attempt", AttributeValue::S(holder.attempt.clone()));
        }
        match delete.send().await {
            Ok(_) => Ok(()),
            // Another delivery took the key over: the record is its now.
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }
}

fn secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}
