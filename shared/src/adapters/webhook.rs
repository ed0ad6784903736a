//! Alerts to a Slack-compatible incoming webhook.

use crate::alert::{Alert, AlertSink};
use crate::error::AwsError;

/// Posts a Slack-compatible message (`{"text": ...}`) to an incoming-webhook URL, which is a
/// secret: it never appears in a log or an error (reqwest's errors are stripped of it).
pub struct WebhookAlertSink {
    client: reqwest::Client,
    url: crate::secret::SecretString,
}

impl WebhookAlertSink {
    /// Posts to `url` (5-second timeout).
    pub fn new(url: crate::secret::SecretString) -> Self {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { client, url }
    }

    fn text(alert: &Alert) -> String {
        format!(
            "*[{}] {}*\n{}\nuser: {} · detector: `{}` · id: `{}`\nRunbook: {}",
            alert.severity.as_str().to_uppercase(),
            alert.title,
            alert.summary,
            alert.user.as_deref().unwrap_or("-"),
            alert.detector,
            alert.id,
            alert.runbook
        )
    }
}

impl std::fmt::Debug for WebhookAlertSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookAlertSink { url: *** }")
    }
}

impl AlertSink for WebhookAlertSink {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
        use crate::secret::ExposeSecret;
        let failed = |message: String| AwsError::Retryable {
            service: "webhook",
            operation: "POST",
            message,
        };
        let response = self
            .client
            .post(self.url.expose_secret())
            .json(&serde_json::json!({ "text": Self::text(alert), "alert": alert }))
            .send()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("the webhook answered {}", response.status().as_u16())));
        }
        Ok(())
    }
}
