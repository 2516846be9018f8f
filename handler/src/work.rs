//! What handling a valid message does: the part of the handler a user replaces with real work.

use std::time::Duration;

use aws_lambda_events::sqs::SqsMessage;

use crate::{Handler, HandlerError, Message};

/// The example handler: parses the body into a [`Message`], logs it, and simulates `work_ms` of
/// work. Swap [`ExampleHandler::handle`]'s body for real work; the transports stay as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExampleHandler;

impl Handler for ExampleHandler {
    type Message = Message;

    fn parse(&self, record: &SqsMessage) -> Result<Message, HandlerError> {
        Message::parse(record.body.as_deref().ok_or(HandlerError::MissingBody)?)
    }

    fn log_id<'m>(&self, message: &'m Message) -> Option<&'m str> {
        Some(&message.id)
    }

    async fn handle(&self, message: Message) -> Result<(), HandlerError> {
        tracing::debug!(id = %message.id, kind = %message.kind, "handling");
        if let Some(ms) = message.work_ms.filter(|&ms| ms > 0) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(())
    }
}
