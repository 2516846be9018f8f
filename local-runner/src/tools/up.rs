//! `up`: the queues the template describes, created on the local endpoint.

use std::path::Path;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;

use super::sqs_error;
use crate::aws::{Connection, is_local_endpoint};
use crate::error::RunnerError;
use crate::template::{
    BucketSpec, FunctionSpec, IDEMPOTENCY_KEY, QueueSpec, TableSpec, Template, TemplateError,
};

/// The longest SQS keeps a message: 14 days, for a dead-letter queue whose template says nothing.
const MAX_RETENTION_SECS: u64 = 1_209_600;

/// `up`: creates the queues the template describes, with their visibility timeout, FIFO
/// settings and maxReceiveCount, so local and deployed settings cannot drift. With `name`, the
/// function's queue as `<name>` and its dead-letter queue as `<name>-dlq` (`.fifo` kept at the
/// end); without, every queue of the template's SQS events and their dead-letter queues, by
/// their own names ([`QueueSpec::local_name`]). Creating what already exists with the same
/// settings changes nothing.
///
/// A function whose `IDEMPOTENCY_TABLE` names a table of the template gets that table too, on
/// the local DynamoDB at `AWS_ENDPOINT_URL_DYNAMODB` (else at the SQS endpoint, when it is
/// local), with TTL on.
///
/// A function whose `PAYLOAD_BUCKET` names a bucket of the template gets that bucket, for the
/// bodies `send --payload-bucket` keeps in S3, on `AWS_ENDPOINT_URL_S3` (else the SQS endpoint,
/// when it is local).
///
/// # Errors
/// [`RunnerError`] when the template has no usable queue, SQS refuses, or the table or bucket
/// cannot be created.
pub async fn up(
    connection: &Connection,
    client: &Client,
    name: Option<&str>,
    parsed: &Template,
    template: &Path,
    function: Option<&str>,
) -> Result<(), RunnerError> {
    let functions: Vec<&FunctionSpec> = match function {
        Some(_) => vec![parsed.function(function)?],
        None => parsed.functions.iter().collect(),
    };
    create_queues(client, name, parsed, template, function, &functions).await?;
    // One table may serve several functions: created once.
    let tables: std::collections::BTreeMap<&str, &TableSpec> = functions
        .iter()
        .filter_map(|function| parsed.idempotency_table(function)?.ok())
        .map(|table| (table.logical_id.as_str(), table))
        .collect();
    for table in tables.values() {
        create_table(connection, table).await?;
    }
    let buckets: std::collections::BTreeMap<&str, &BucketSpec> = functions
        .iter()
        .filter_map(|function| parsed.payload_bucket(function)?.ok())
        .map(|bucket| (bucket.logical_id.as_str(), bucket))
        .collect();
    for bucket in buckets.values() {
        let Some(name) = bucket.name.as_deref() else { continue };
        match super::s3_client(connection) {
            Some((client, endpoint)) => create_bucket(&client, &endpoint, name, &bucket.logical_id).await?,
            None => println!(
                "bucket {name}: not created here (no local S3 endpoint); the stack creates it when deployed"
            ),
        }
    }
    Ok(())
}

/// The queues of [`up`], for `functions` (the one `function` names, or all of them).
async fn create_queues(
    client: &Client,
    name: Option<&str>,
    parsed: &Template,
    template: &Path,
    function: Option<&str>,
    functions: &[&FunctionSpec],
) -> Result<(), RunnerError> {
    let dead_letter = |queue: &QueueSpec| {
        queue.redrive.as_ref().and_then(|(dlq, _)| dlq.as_ref()).and_then(|id| parsed.queues.get(id))
    };
    if let Some(name) = name {
        let queue = parsed.event_queue(parsed.function(function)?)?;
        let fifo = queue.fifo || name.ends_with(".fifo");
        let base = name.trim_end_matches(".fifo");
        let suffix = if fifo { ".fifo" } else { "" };
        let names = (format!("{base}{suffix}"), format!("{base}-dlq{suffix}"));
        return create_pair(client, queue, dead_letter(queue), &names, template).await;
    }
    if functions.is_empty() {
        return Err(RunnerError::Template(TemplateError::NoFunction));
    }
    let mut created = std::collections::BTreeSet::new();
    for function in functions {
        let queue = parsed.event_queue(function)?;
        if !created.insert(queue.logical_id.clone()) {
            continue;
        }
        let dlq = dead_letter(queue);
        let queue_name = queue.local_name();
        let dlq_name = dlq.map_or_else(
            || {
                format!(
                    "{}-dlq{}",
                    queue_name.trim_end_matches(".fifo"),
                    if queue.fifo { ".fifo" } else { "" }
                )
            },
            QueueSpec::local_name,
        );
        create_pair(client, queue, dlq, &(queue_name, dlq_name), template).await?;
    }
    Ok(())
}

/// Creates `names.1` as a dead-letter queue (of the template's `dlq` settings, when it has one)
/// and `names.0` with `queue`'s settings and a redrive policy to it.
async fn create_pair(
    client: &Client,
    queue: &QueueSpec,
    dlq: Option<&QueueSpec>,
    (queue_name, dlq_name): &(String, String),
    template: &Path,
) -> Result<(), RunnerError> {
    let fifo = queue.fifo || queue_name.ends_with(".fifo");
    let retention = dlq.and_then(|d| d.retention_period).unwrap_or(MAX_RETENTION_SECS);
    let mut create_dlq = client
        .create_queue()
        .queue_name(dlq_name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, retention.to_string());
    if fifo {
        create_dlq = create_dlq.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let dlq_url = create_dlq
        .send()
        .await
        .map_err(|e| sqs_error("CreateQueue", dlq_name, e))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = queue_arn(client, &dlq_url).await?;

    let mut create = client
        .create_queue()
        .queue_name(queue_name)
        .attributes(QueueAttributeName::VisibilityTimeout, queue.visibility_timeout.as_secs().to_string());
    if let Some((_, max_receive_count)) = queue.redrive {
        let policy =
            serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count });
        create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    if fifo {
        create = create.attributes(QueueAttributeName::FifoQueue, "true");
        for (name, value) in &queue.fifo_settings {
            create = create.attributes(QueueAttributeName::from(name.as_str()), value);
        }
    }
    let url = create
        .send()
        .await
        .map_err(|e| sqs_error("CreateQueue", queue_name, e))?
        .queue_url
        .unwrap_or_default();
    println!("queue  {url}");
    println!(
        "  VisibilityTimeout {} s, FIFO {fifo}, from {} ({})",
        queue.visibility_timeout.as_secs(),
        template.display(),
        queue.logical_id
    );
    match queue.redrive {
        Some((_, count)) => println!("dlq    {dlq_url}\n  after maxReceiveCount {count} receives"),
        None => println!("dlq    {dlq_url}\n  (the template's queue has no RedrivePolicy: not attached)"),
    }
    Ok(())
}

/// The DynamoDB endpoint `up` creates tables at: `AWS_ENDPOINT_URL_DYNAMODB`, else the SQS
/// endpoint; local ones only, where dummy credentials may be used.
fn dynamodb_endpoint(connection: &Connection) -> Option<String> {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
        .or_else(|| connection.endpoint_url.clone())
        .filter(|endpoint| is_local_endpoint(endpoint))
}

/// Creates `table` as the idempotency layer writes it (a string key `id`, TTL on its TTL
/// attribute), on the local DynamoDB. A table that exists already is left as it is.
async fn create_table(connection: &Connection, table: &TableSpec) -> Result<(), RunnerError> {
    use aws_sdk_dynamodb::operation::create_table::CreateTableError;
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };

    let name = table.local_name();
    let Some(endpoint) = dynamodb_endpoint(connection) else {
        println!(
            "table  {name}: not created here (no local DynamoDB endpoint); the stack creates it when deployed"
        );
        return Ok(());
    };
    let failed = |source: sqs_batch::BoxError| RunnerError::Table {
        table: name.to_owned(),
        endpoint: endpoint.clone(),
        source,
    };
    let credentials = connection.local_credentials.clone().unwrap_or_else(|| {
        aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "local-dummy")
    });
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .http_client(crate::aws::https_client())
        .region(aws_sdk_dynamodb::config::Region::new(connection.region.clone()))
        .endpoint_url(&endpoint)
        .credentials_provider(credentials)
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    // Built from constants: the builders fail only when a required field is missing.
    let key = KeySchemaElement::builder().attribute_name(IDEMPOTENCY_KEY).key_type(KeyType::Hash).build();
    let definition = AttributeDefinition::builder()
        .attribute_name(IDEMPOTENCY_KEY)
        .attribute_type(ScalarAttributeType::S)
        .build();
    let (key, definition) = (key.map_err(|e| failed(e.into()))?, definition.map_err(|e| failed(e.into()))?);
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key)
        .attribute_definitions(definition)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(error)
            if matches!(error.as_service_error(), Some(CreateTableError::ResourceInUseException(_))) =>
        {
            println!("table  {name} (exists) at {endpoint}");
            return Ok(());
        }
        Err(error) => return Err(failed(error.into())),
    }
    if let Some(ttl) = &table.ttl {
        let spec = TimeToLiveSpecification::builder().attribute_name(ttl).enabled(true).build();
        let spec = spec.map_err(|e| failed(e.into()))?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| failed(e.into()))?;
    }
    println!("table  {name} at {endpoint}");
    println!(
        "  idempotency records of the template's {} (TTL on {})",
        table.logical_id,
        table.ttl.as_deref().unwrap_or("nothing")
    );
    Ok(())
}

/// Creates `name` on the local S3; one that exists already is left as it is.
async fn create_bucket(
    client: &aws_sdk_s3::Client,
    endpoint: &str,
    name: &str,
    logical_id: &str,
) -> Result<(), RunnerError> {
    let created = client.create_bucket().bucket(name).send().await;
    match created {
        Ok(_) => println!("bucket {name} at {endpoint}\n  large payloads of the template's {logical_id}"),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()) =>
        {
            println!("bucket {name} (exists) at {endpoint}");
        }
        Err(error) => {
            return Err(RunnerError::Bucket {
                operation: "CreateBucket",
                bucket: name.to_owned(),
                endpoint: endpoint.to_owned(),
                source: error.into(),
            });
        }
    }
    Ok(())
}

async fn queue_arn(client: &Client, url: &str) -> Result<String, RunnerError> {
    let output = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sqs_error("GetQueueAttributes", url, e))?;
    Ok(output.attributes.and_then(|mut a| a.remove(&QueueAttributeName::QueueArn)).unwrap_or_default())
}
