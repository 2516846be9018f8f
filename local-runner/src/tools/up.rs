//! `up`: the queues the template describes, created on the local endpoint.

use std::path::Path;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;

use super::sqs_error;
use crate::error::RunnerError;
use crate::template::{FunctionSpec, QueueSpec, Template, TemplateError};

/// The longest SQS keeps a message: 14 days, for a dead-letter queue whose template says nothing.
const MAX_RETENTION_SECS: u64 = 1_209_600;

/// `up`: creates the queues the template describes, with their visibility timeout, FIFO
/// settings and maxReceiveCount, so local and deployed settings cannot drift. With `name`, the
/// function's queue as `<name>` and its dead-letter queue as `<name>-dlq` (`.fifo` kept at the
/// end); without, every queue of the template's SQS events and their dead-letter queues, by
/// their own names ([`QueueSpec::local_name`]). Creating what already exists with the same
/// settings changes nothing.
///
/// # Errors
/// [`RunnerError`] when the template has no usable queue or SQS refuses.
pub async fn up(
    client: &Client,
    name: Option<&str>,
    parsed: &Template,
    template: &Path,
    function: Option<&str>,
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
    let functions: Vec<&FunctionSpec> = match function {
        Some(_) => vec![parsed.function(function)?],
        None => parsed.functions.iter().collect(),
    };
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
