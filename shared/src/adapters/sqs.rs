use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use aws_lambda_events::sqs::SqsMessage;

use crate::access::ports::RecordDelay;
use crate::error::AwsError;
use crate::okta::ports::{EventQueue, QueueMessage, RejectedMessage};

/// [`EventQueue`] backed by an SQS FIFO queue.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    /// The queue at `queue_url`, with a client from the SDK configuration.
    pub fn new(config: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::from_client(super::sdk_client!(aws_sdk_sqs, config), queue_url)
    }

    /// The queue at `queue_url`, with this client.
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

/// [`RecordDelay`] by `ChangeMessageVisibility` on the record's queue (found from its
/// `eventSourceARN`).
#[derive(Clone, Debug)]
pub struct SqsRequeue {
    client: Client,
}

impl SqsRequeue {
    /// An SQS client from the SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: super::sdk_client!(aws_sdk_sqs, config) }
    }

    async fn change_visibility(&self, record: &SqsMessage, by: Duration) -> Result<(), AwsError> {
        let err = |op, e| AwsError::Permanent { service: "sqs", operation: op, message: e };
        let arn = record
            .event_source_arn
            .as_deref()
            .ok_or_else(|| err("ChangeMessageVisibility", "no eventSourceARN".into()))?;
        let parts: Vec<&str> = arn.split(':').collect();
        let (account, name) = match parts.as_slice() {
            [_, _, "sqs", _, account, name] => (*account, *name),
            _ => return Err(err("ChangeMessageVisibility", format!("not a queue ARN: {arn}"))),
        };
        let url = self
            .client
            .get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sqs", "GetQueueUrl", e))?
            .queue_url
            .unwrap_or_default();
        // SQS allows 0..=43200 seconds.
        let seconds = i32::try_from(by.as_secs().min(43_200)).unwrap_or(43_200);
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(record.receipt_handle.clone().unwrap_or_default())
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sqs", "ChangeMessageVisibility", e))?;
        Ok(())
    }
}

impl RecordDelay for SqsRequeue {
    fn delay<'a>(
        &'a self,
        record: &'a SqsMessage,
        by: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<(), AwsError>> + Send + 'a>> {
        Box::pin(self.change_visibility(record, by))
    }
}
