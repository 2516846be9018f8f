//! Received SQS messages in the shape Lambda delivers them, so the batch core cannot tell a local
//! run from a Lambda invocation.

use std::collections::HashMap;

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::sqs::{SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{Message, MessageAttributeValue};

use super::Queue;

/// The record Lambda would build for this message: the same camelCase fields, system attributes
/// (`ApproximateReceiveCount`, `SentTimestamp`, `MessageGroupId`, ...) under `attributes`,
/// message attributes with their data types, `eventSource` `aws:sqs`, the queue's ARN and region.
#[must_use]
pub fn lambda_record(message: Message, queue: &Queue, region: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = message.message_id;
    record.receipt_handle = message.receipt_handle;
    record.body = message.body;
    record.md5_of_body = message.md5_of_body;
    record.md5_of_message_attributes = message.md5_of_message_attributes;
    record.attributes = message
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name.as_str().to_owned(), value))
        .collect();
    record.message_attributes = message
        .message_attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name, lambda_attribute(value)))
        .collect::<HashMap<_, _>>();
    record.event_source = Some("aws:sqs".to_owned());
    record.event_source_arn = Some(queue.arn.clone());
    record.aws_region = Some(region.to_owned());
    record
}

fn lambda_attribute(value: MessageAttributeValue) -> SqsMessageAttribute {
    let mut attribute = SqsMessageAttribute::default();
    attribute.string_value = value.string_value;
    attribute.binary_value = value.binary_value.map(base64_data);
    attribute.string_list_values = value.string_list_values.unwrap_or_default();
    attribute.binary_list_values =
        value.binary_list_values.unwrap_or_default().into_iter().map(base64_data).collect();
    attribute.data_type = Some(value.data_type);
    attribute
}

fn base64_data(blob: Blob) -> Base64Data {
    let mut data = Base64Data::default();
    *data = blob.into_inner();
    data
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::types::MessageSystemAttributeName;

    use super::*;

    #[test]
    fn a_received_message_serialises_like_a_lambda_record() {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body(r#"{"id":"a","kind":"k"}"#)
            .md5_of_body("abc")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .attributes(MessageSystemAttributeName::MessageGroupId, "g1")
            .message_attributes(
                "bin",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(Blob::new(b"hi".to_vec()))
                    .build()
                    .unwrap(),
            )
            .build();
        let queue = Queue {
            url: "u".into(),
            arn: "arn:aws:sqs:us-east-1:000000000000:q.fifo".into(),
            fifo: true,
            visibility_timeout: std::time::Duration::from_secs(30),
            redrive: None,
        };
        let json = serde_json::to_value(lambda_record(message, &queue, "us-east-1")).unwrap();
        assert_eq!(json["messageId"], "m-1");
        assert_eq!(json["receiptHandle"], "rh-1");
        assert_eq!(json["md5OfBody"], "abc");
        assert_eq!(json["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(json["attributes"]["MessageGroupId"], "g1");
        assert_eq!(json["messageAttributes"]["bin"]["binaryValue"], "aGk=");
        assert_eq!(json["messageAttributes"]["bin"]["dataType"], "Binary");
        assert_eq!(json["eventSource"], "aws:sqs");
        assert_eq!(json["eventSourceARN"], "arn:aws:sqs:us-east-1:000000000000:q.fifo");
        assert_eq!(json["awsRegion"], "us-east-1");
    }
}
