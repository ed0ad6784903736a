use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::{EventQueue, QueueMessage, RejectedMessage};
use crate::error::AwsError;

/// [`EventQueue`] backed by an SQS FIFO queue.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(config: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::from_client(Client::new(config), queue_url)
    }

    pub fn from_client(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

fn permanent(message: String) -> AwsError {
    AwsError::Permanent { service: "sqs", operation: "SendMessageBatch", message }
}

impl EventQueue for SqsQueue {
    async fn send_batch(
        &self,
        messages: &[QueueMessage],
    ) -> Result<Vec<RejectedMessage>, AwsError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut entries = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&m.body)
                .message_group_id(&m.group_id)
                .message_deduplication_id(&m.deduplication_id);
            for (name, value) in &m.attributes {
                let attr = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map_err(|e| permanent(e.to_string()))?;
                entry = entry.message_attributes(*name, attr);
            }
            entries.push(entry.build().map_err(|e| permanent(e.to_string()))?);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sqs", "SendMessageBatch", e))?;
        let mut rejected = Vec::with_capacity(out.failed.len());
        for f in out.failed {
            let index =
                f.id.parse::<usize>().ok().filter(|i| *i < messages.len()).ok_or_else(|| {
                    permanent(format!("SQS reported an unknown entry id {:?}", f.id))
                })?;
            rejected.push(RejectedMessage { index, code: f.code, sender_fault: f.sender_fault });
        }
        Ok(rejected)
    }
}
