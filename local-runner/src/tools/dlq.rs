//! `dlq`: what the dead-letter queue holds, and why, looked at without taking it.

use std::collections::HashMap;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageSystemAttributeName;

use super::sqs_error;
use crate::aws::queue::resolve;
use crate::aws::settle::VISIBILITY_ATTEMPTS;
use crate::aws::{Connection, Queue, QueueRef, Retries, Sqs};
use crate::error::RunnerError;
use crate::observe::printable;

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
            .map_err(|e| sqs_error("ReceiveMessage", &dlq.url, e))?;
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
