//! Helpers for integration tests against the local AWS stand-in (moto server), which
//! `scripts/test.sh` starts on 127.0.0.1 and announces through `AWS_ENDPOINT_URL`.
#![allow(dead_code)]

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

/// The SDK configuration the functions use, pointed at moto. Refuses to run against anything but
/// a loopback endpoint, so a test can never touch a real AWS account.
pub async fn local_aws() -> SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
        "AWS_ENDPOINT_URL must point at the local AWS stand-in (got {endpoint:?}); run scripts/test.sh"
    );
    idc_guard::aws::load_sdk_config(Duration::from_secs(10)).await
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub async fn create_secret(sdk: &SdkConfig, value: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client
        .create_secret()
        .name(unique("idc-guard/test/hook"))
        .secret_string(value)
        .send()
        .await
        .expect("create secret");
    out.arn.expect("secret arn")
}

/// Stages `value` as AWSPENDING on the secret, as a rotation's createSecret step does.
pub async fn stage_pending(sdk: &SdkConfig, arn: &str, value: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let token = uuid::Uuid::new_v4().to_string();
    client
        .put_secret_value()
        .secret_id(arn)
        .client_request_token(&token)
        .secret_string(value)
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("put pending value");
    token
}

/// Promotes a pending version to AWSCURRENT, as a rotation's finishSecret step does.
pub async fn promote(sdk: &SdkConfig, arn: &str, version: &str) {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let described = client.describe_secret().secret_id(arn).send().await.expect("describe");
    let current = described
        .version_ids_to_stages
        .unwrap_or_default()
        .into_iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(id, _)| id)
        .expect("a current version");
    client
        .update_secret_version_stage()
        .secret_id(arn)
        .version_stage("AWSCURRENT")
        .move_to_version_id(version)
        .remove_from_version_id(current)
        .send()
        .await
        .expect("promote");
    client
        .update_secret_version_stage()
        .secret_id(arn)
        .version_stage("AWSPENDING")
        .remove_from_version_id(version)
        .send()
        .await
        .expect("clear pending");
}

pub async fn create_fifo_queue(sdk: &SdkConfig) -> String {
    let client = aws_sdk_sqs::Client::new(sdk);
    let out = client
        .create_queue()
        .queue_name(format!("{}.fifo", unique("idc-guard-events")))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("create queue");
    out.queue_url.expect("queue url")
}

/// A message as it arrived on the queue.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: String,
    pub group_id: String,
    pub deduplication_id: String,
    pub event_type: Option<String>,
}

/// Receives and deletes every message currently on the queue.
pub async fn drain(sdk: &SdkConfig, queue_url: &str) -> Vec<Received> {
    let client = aws_sdk_sqs::Client::new(sdk);
    let mut out = Vec::new();
    let mut empty_polls = 0;
    while empty_polls < 2 {
        let resp = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        let messages = resp.messages.unwrap_or_default();
        if messages.is_empty() {
            empty_polls += 1;
            continue;
        }
        for m in messages {
            let attrs = m.attributes.clone().unwrap_or_default();
            out.push(Received {
                body: m.body.clone().unwrap_or_default(),
                group_id: attrs
                    .get(&MessageSystemAttributeName::MessageGroupId)
                    .cloned()
                    .unwrap_or_default(),
                deduplication_id: attrs
                    .get(&MessageSystemAttributeName::MessageDeduplicationId)
                    .cloned()
                    .unwrap_or_default(),
                event_type: m
                    .message_attributes
                    .as_ref()
                    .and_then(|a| a.get("okta_event_type"))
                    .and_then(|v| v.string_value.clone()),
            });
            client
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle.unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    out
}

/// Reads a file under `events/`.
pub fn event_file(relative: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
