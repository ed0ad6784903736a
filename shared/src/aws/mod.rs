//! Ports (small traits) over the AWS APIs idc-guard uses, and their SDK-backed adapters.
//!
//! Handlers are generic over these traits. Production and integration tests use the adapters in
//! this module (integration tests point them at the local AWS endpoint); unit tests may use
//! in-memory fakes of the traits.

mod secrets;
mod sqs;

use std::future::Future;
use std::time::Duration;

pub use secrets::SecretsManagerStore;
pub use sqs::SqsQueue;

use crate::error::AwsError;
use crate::secret::SecretString;

/// Secrets Manager staging labels.
pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// Read access to secrets by staging label.
pub trait SecretStore: Send + Sync {
    /// The secret string of the version carrying `stage`, or `None` when no version carries
    /// that label (for example no rotation is in progress, so there is no `AWSPENDING`).
    fn secret_string(
        &self,
        secret_id: &str,
        stage: &str,
    ) -> impl Future<Output = Result<Option<SecretString>, AwsError>> + Send;
}

/// One message for a FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub body: String,
    pub group_id: String,
    pub deduplication_id: String,
    /// String message attributes (name, value).
    pub attributes: Vec<(&'static str, String)>,
}

/// A message the queue did not accept, by its index in the batch given to `send_batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedMessage {
    pub index: usize,
    pub code: String,
    /// True when SQS blames the request (retrying the same message cannot succeed).
    pub sender_fault: bool,
}

/// SQS accepts at most 10 entries per `SendMessageBatch`...
pub const SQS_MAX_BATCH: usize = 10;
/// ... and at most 256 KiB of payload per batch, and so per message.
pub const SQS_MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// A FIFO queue.
pub trait EventQueue: Send + Sync {
    /// Sends up to [`SQS_MAX_BATCH`] messages in one call. `Ok` lists the messages that
    /// were not accepted (empty when all were); `Err` means the call as a whole failed.
    fn send_batch(
        &self,
        messages: &[QueueMessage],
    ) -> impl Future<Output = Result<Vec<RejectedMessage>, AwsError>> + Send;
}

/// Loads the SDK configuration from the environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, the
/// standard credential chain) with timeouts that fit a caller's time budget.
pub async fn load_sdk_config(operation_timeout: Duration) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(operation_timeout.min(Duration::from_secs(1)))
        .operation_attempt_timeout(operation_timeout / 2)
        .operation_timeout(operation_timeout)
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await
}
