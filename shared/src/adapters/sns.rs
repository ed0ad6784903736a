//! Alerts to an SNS topic, and the sink every function sends to (SNS, plus the webhook when
//! configured).

use super::SecurityHubSink;
use super::{SecretsManagerStore, WebhookAlertSink};
use crate::alert::{Alert, AlertSink, FanOut};
use crate::error::AwsError;
use crate::secret::{AWSCURRENT, SecretStore};

/// Publishes the alert JSON to an SNS topic, with `detector` and `severity` as message
/// attributes for subscription filters.
#[derive(Clone, Debug)]
pub struct SnsAlertSink {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsAlertSink {
    /// Publishes to `topic_arn`.
    pub fn new(config: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        Self { client: super::sdk_client!(aws_sdk_sns, config), topic_arn: topic_arn.into() }
    }
}

impl AlertSink for SnsAlertSink {
    fn name(&self) -> &'static str {
        "sns"
    }

    async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
        let attr = |v: &str| {
            aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
        };
        let mut subject: String = format!("[{}] {}", alert.severity.as_str(), alert.title)
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        if subject.is_empty() {
            subject = "idc-guard alert".into();
        }
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(alert.to_json());
        for (name, value) in
            [("detector", alert.detector.as_str()), ("severity", alert.severity.as_str())]
        {
            let value = attr(value).map_err(|e| AwsError::Permanent {
                service: "sns",
                operation: "Publish",
                message: e.to_string(),
            })?;
            request = request.message_attributes(name, value);
        }
        request.send().await.map_err(|e| AwsError::from_sdk("sns", "Publish", e))?;
        Ok(())
    }
}

/// The sink every function sends to: SNS, plus the Slack-compatible webhook when its secret is
/// configured (read once, at cold start).
pub type FunctionSink =
    FanOut<SnsAlertSink, FanOut<Option<WebhookAlertSink>, Option<SecurityHubSink>>>;

/// Why the function's alert sink could not be built at cold start.
#[derive(Debug, thiserror::Error)]
pub enum SinkSetupError {
    /// The webhook secret could not be read.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The webhook secret is empty.
    #[error("the alert webhook secret has no value")]
    EmptyWebhookSecret,
    /// `IDC_GUARD_SECURITY_HUB` is malformed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Security Hub needs the account and region, taken from the alert topic's ARN.
    #[error("the alert topic ARN names no account and region for Security Hub")]
    NoAccount,
}

/// The function's sink: SNS, plus the webhook when `webhook_secret_arn` is set (read now), plus
/// Security Hub (in the topic's account and region) when `IDC_GUARD_SECURITY_HUB` is on.
pub async fn function_sink(
    sdk: &aws_config::SdkConfig,
    topic_arn: &str,
    webhook_secret_arn: Option<&str>,
) -> Result<FunctionSink, SinkSetupError> {
    let security_hub = crate::config::security_hub(&crate::config::Env)?;
    let webhook = match webhook_secret_arn {
        Some(arn) => Some(WebhookAlertSink::new(
            SecretsManagerStore::new(sdk)
                .secret_string(arn, AWSCURRENT)
                .await?
                .ok_or(SinkSetupError::EmptyWebhookSecret)?,
        )),
        None => None,
    };
    let hub = match security_hub {
        true => Some(SecurityHubSink::for_arn(sdk, topic_arn).ok_or(SinkSetupError::NoAccount)?),
        false => None,
    };
    Ok(FanOut {
        primary: SnsAlertSink::new(sdk, topic_arn),
        secondary: Some(FanOut { primary: webhook, secondary: Some(hub) }),
    })
}
