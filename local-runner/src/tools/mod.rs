//! Dev tooling: create the queues the template describes, send messages, look into the
//! dead-letter queue, and move its messages back. Output is for people: plain lines on stdout.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};

use crate::RunnerError;
use crate::aws::queue::resolve;
use crate::aws::settle::VISIBILITY_ATTEMPTS;
use crate::aws::{Connection, Queue, QueueRef, Retries, Sqs};
use crate::observe::printable;
use crate::template::{FunctionSpec, QueueSpec, Template, TemplateError};

/// SendMessageBatch takes at most 10 entries.
const SEND_BATCH: usize = 10;
/// The longest SQS keeps a message: 14 days, for a dead-letter queue whose template says nothing.
const MAX_RETENTION_SECS: u64 = 1_209_600;

fn sqs_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    operation: &'static str,
    queue: &str,
    err: &aws_sdk_sqs::error::SdkError<E, R>,
) -> RunnerError {
    RunnerError::Sqs { operation, queue: queue.to_owned(), reason: DisplayErrorContext(err).to_string() }
}

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
        return Err(RunnerError::Template(TemplateError::Function(
            "the template has no AWS::Serverless::Function with an SQS event".into(),
        )));
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
        .map_err(|e| sqs_error("CreateQueue", dlq_name, &e))?
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
        .map_err(|e| sqs_error("CreateQueue", queue_name, &e))?
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
        .map_err(|e| sqs_error("GetQueueAttributes", url, &e))?;
    Ok(output.attributes.and_then(|mut a| a.remove(&QueueAttributeName::QueueArn)).unwrap_or_default())
}

/// What `send` sends.
#[derive(Debug, Clone)]
pub enum Bodies {
    /// Each non-empty line of a file, as it is.
    Lines(Vec<String>),
    /// `count` bodies from a template whose `{i}` becomes each message's number (0, 1, ...).
    Numbered {
        /// How many.
        count: usize,
        /// The body, with `{i}` where the number goes.
        template: String,
    },
}

impl Bodies {
    /// The non-empty lines of `path`.
    ///
    /// # Errors
    /// [`RunnerError::Read`] when the file cannot be read.
    pub fn from_file(path: &Path) -> Result<Self, RunnerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| RunnerError::Read { path: path.display().to_string(), reason: err.to_string() })?;
        Ok(Self::Lines(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()))
    }

    fn into_vec(self) -> Vec<String> {
        match self {
            Self::Lines(lines) => lines,
            Self::Numbered { count, template } => {
                (0..count).map(|i| template.replace("{i}", &i.to_string())).collect()
            }
        }
    }
}

/// `send`: sends bodies in batches of ten (FIFO queues: all under `group`).
///
/// # Errors
/// [`RunnerError`] when the queue cannot be found or a batch is refused.
pub async fn send(
    client: &Client,
    connection: &Connection,
    queue: &QueueRef,
    bodies: Bodies,
    group: &str,
) -> Result<usize, RunnerError> {
    let queue = resolve(client, queue, connection).await?;
    let bodies = bodies.into_vec();
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for (chunk_index, chunk) in bodies.chunks(SEND_BATCH).enumerate() {
        let entries = chunk.iter().enumerate().map(|(i, body)| {
            let entry = SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body);
            let entry = if queue.fifo {
                entry.message_group_id(group).message_deduplication_id(format!("{stamp:x}-{chunk_index}-{i}"))
            } else {
                entry
            };
            entry.build()
        });
        let entries = entries.collect::<Result<Vec<_>, _>>().map_err(|e| RunnerError::Sqs {
            operation: "SendMessageBatch",
            queue: queue.url.clone(),
            reason: e.to_string(),
        })?;
        let output = client
            .send_message_batch()
            .queue_url(&queue.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs_error("SendMessageBatch", &queue.url, &e))?;
        if let Some(failed) = output.failed.first() {
            return Err(RunnerError::Sqs {
                operation: "SendMessageBatch",
                queue: queue.url.clone(),
                reason: format!("{}: {}", failed.code(), failed.message().unwrap_or_default()),
            });
        }
    }
    println!("sent {} messages to {}", bodies.len(), queue.url);
    Ok(bodies.len())
}

/// The dead-letter queue of a queue, from its RedrivePolicy.
///
/// # Errors
/// [`RunnerError`] when the queue has no redrive policy or the DLQ cannot be found.
pub async fn dead_letter_queue(
    client: &Client,
    connection: &Connection,
    queue: &QueueRef,
) -> Result<(Queue, Queue), RunnerError> {
    let given = queue;
    let queue = resolve(client, given, connection).await?;
    let name = queue
        .redrive
        .as_ref()
        .map(|r| r.dead_letter_queue.clone())
        .ok_or_else(|| RunnerError::NoDeadLetterQueue { queue: given.as_str().to_owned() })?;
    let dlq = resolve(client, &QueueRef::Name(name), connection).await?;
    Ok((queue, dlq))
}

/// `dlq`: how many messages the dead-letter queue holds, and the first `limit` of them: id,
/// receive count, the start of the body, and why it is there when `explain` can tell (the
/// handler's parse error; `Some(None)` for a body that parses, which failed in the handling).
/// They are looked at, not taken: each is made visible again right after.
///
/// # Errors
/// As [`dead_letter_queue`].
pub async fn show_dlq(
    client: &Client,
    connection: &Connection,
    queue: &QueueRef,
    limit: usize,
    explain: &dyn Fn(&str) -> Option<Option<String>>,
) -> Result<(), RunnerError> {
    let (source, dlq) = dead_letter_queue(client, connection, queue).await?;
    let depth = crate::aws::queue::depth(client, &dlq.url).await.unwrap_or(0);
    let after = source
        .redrive
        .as_ref()
        .map_or_else(String::new, |r| format!(" after {} receives", r.max_receive_count));
    println!("{}: {depth} messages, moved from {}{after}", dlq.name(), source.name());
    let mut seen = Vec::new();
    while seen.len() < limit {
        let want = i32::try_from((limit - seen.len()).min(10)).unwrap_or(10);
        let output = client
            .receive_message()
            .queue_url(&dlq.url)
            .max_number_of_messages(want)
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sqs_error("ReceiveMessage", &dlq.url, &e))?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        seen.extend(messages);
    }
    for message in &seen {
        let count = message
            .attributes
            .as_ref()
            .and_then(|a: &HashMap<_, _>| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .map_or("?", String::as_str);
        let body = message.body.as_deref().unwrap_or_default();
        // A body is the producer's text: shown escaped, so it cannot forge lines of this listing.
        let start = printable(body, 80);
        let id = printable(message.message_id.as_deref().unwrap_or("?"), 8);
        println!("  {id}  receives {count:>2}  {start}");
        match explain(body) {
            Some(Some(reason)) => println!("            why: {}", printable(&reason, 300)),
            Some(None) => {
                println!("            why: the body is valid; handling it failed (the run's log says how)")
            }
            None => {}
        }
    }
    let shown = seen.len() as u64;
    if depth > shown {
        println!("  ... and about {} more (--limit {depth} shows them)", depth - shown);
    }
    // Looked at, not taken: each is visible again at once.
    let records: Vec<sqs_batch::SqsMessage> = seen
        .into_iter()
        .map(|m| {
            let mut record = sqs_batch::SqsMessage::default();
            record.receipt_handle = m.receipt_handle;
            record
        })
        .collect();
    let changes: Vec<(&sqs_batch::SqsMessage, i32)> = records.iter().map(|r| (r, 0)).collect();
    Sqs::new(client.clone(), dlq).set_visibility(&changes, Retries::times(VISIBILITY_ATTEMPTS)).await;
    Ok(())
}

/// `redrive`: moves every message of the dead-letter queue back to its source queue
/// (StartMessageMoveTask) and waits until the move is done.
///
/// # Errors
/// As [`dead_letter_queue`], or when the move task fails or does not finish in `timeout`.
pub async fn redrive(
    client: &Client,
    connection: &Connection,
    queue: &QueueRef,
    timeout: Duration,
) -> Result<(), RunnerError> {
    let (queue, dlq) = dead_letter_queue(client, connection, queue).await?;
    let task = client
        .start_message_move_task()
        .source_arn(&dlq.arn)
        .destination_arn(&queue.arn)
        .send()
        .await
        .map_err(|e| sqs_error("StartMessageMoveTask", &dlq.url, &e))?;
    let handle = task.task_handle.unwrap_or_default();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let tasks = client
            .list_message_move_tasks()
            .source_arn(&dlq.arn)
            .send()
            .await
            .map_err(|e| sqs_error("ListMessageMoveTasks", &dlq.url, &e))?;
        let current = tasks
            .results
            .unwrap_or_default()
            .into_iter()
            .find(|t| t.task_handle.as_deref() == Some(&handle) || t.task_handle.is_none());
        if let Some(current) = current {
            match current.status.as_deref() {
                Some("COMPLETED") => {
                    println!(
                        "moved {} messages from {} back to {}",
                        current.approximate_number_of_messages_moved, dlq.url, queue.url
                    );
                    return Ok(());
                }
                Some("FAILED" | "CANCELLED") => {
                    return Err(RunnerError::Redrive {
                        dlq: dlq.url.clone(),
                        reason: current.failure_reason.unwrap_or_else(|| "the move task failed".into()),
                    });
                }
                _ => {}
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(RunnerError::Redrive {
                dlq: dlq.url.clone(),
                reason: format!(
                    "the move did not finish within {} s; pass a longer --timeout",
                    timeout.as_secs()
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
