//! `redrive`: the dead-letter queue moved back to its source queue.

use std::time::Duration;

use aws_sdk_sqs::Client;

use super::{dead_letter_queue, sqs_error};
use crate::aws::{Connection, QueueRef};
use crate::error::RunnerError;

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
        .map_err(|e| sqs_error("StartMessageMoveTask", &dlq.url, e))?;
    let handle = task.task_handle.unwrap_or_default();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let tasks = client
            .list_message_move_tasks()
            .source_arn(&dlq.arn)
            .send()
            .await
            .map_err(|e| sqs_error("ListMessageMoveTasks", &dlq.url, e))?;
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
                    return Err(RunnerError::RedriveFailed {
                        dlq: dlq.url.clone(),
                        failure_reason: current.failure_reason,
                    });
                }
                _ => {}
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(RunnerError::RedriveTimedOut { dlq: dlq.url.clone(), waited: timeout });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
