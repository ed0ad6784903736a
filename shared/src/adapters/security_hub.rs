//! Alerts as AWS Security Hub findings (ASFF, `BatchImportFindings`): one finding per alert id,
//! so an alert raised again (a burst grown graver) updates its finding instead of adding one.

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, Recommendation, RecordState, Remediation, Resource,
    Severity as AsffSeverity, SeverityLabel,
};

use crate::alert::{Alert, AlertSink, Severity};
use crate::error::AwsError;

/// ASFF's schema version.
pub const ASFF_SCHEMA_VERSION: &str = "2018-10-08";

/// Imports alerts into the account's Security Hub, as the account's own (`default`) product.
#[derive(Clone, Debug)]
pub struct SecurityHubSink {
    client: aws_sdk_securityhub::Client,
    account_id: String,
    region: String,
}

impl SecurityHubSink {
    /// A sink importing into `account_id`'s Security Hub in `region`.
    pub fn new(
        config: &aws_config::SdkConfig,
        account_id: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            client: super::sdk_client!(aws_sdk_securityhub, config),
            account_id: account_id.into(),
            region: region.into(),
        }
    }

    /// The sink for the account and region of an ARN (the alert topic's).
    pub fn for_arn(config: &aws_config::SdkConfig, arn: &str) -> Option<Self> {
        let mut parts = arn.split(':');
        let (region, account) = (parts.nth(3)?, parts.next()?);
        (!region.is_empty() && account.len() == 12).then(|| Self::new(config, account, region))
    }

    /// The finding Security Hub gets for an alert.
    pub fn finding(&self, alert: &Alert, now: chrono::DateTime<chrono::Utc>) -> AwsSecurityFinding {
        let (account, region) = (&self.account_id, &self.region);
        let label = match alert.severity {
            Severity::Info => SeverityLabel::Informational,
            Severity::Low => SeverityLabel::Low,
            Severity::Medium => SeverityLabel::Medium,
            Severity::High => SeverityLabel::High,
            Severity::Critical => SeverityLabel::Critical,
        };
        let mut description: String = alert.summary.chars().take(1024).collect();
        if description.is_empty() {
            description = alert.title.chars().take(1024).collect();
        }
        let resource = match &alert.user {
            Some(user) => Resource::builder().r#type("Other").id(format!("user/{user}")).build(),
            None => Resource::builder()
                .r#type("AwsAccount")
                .id(format!("AWS::::Account:{account}"))
                .build(),
        };
        AwsSecurityFinding::builder()
            .schema_version(ASFF_SCHEMA_VERSION)
            .id(&alert.id)
            .product_arn(format!(
                "arn:aws:securityhub:{region}:{account}:product/{account}/default"
            ))
            .generator_id(format!("idc-guard/{}", alert.detector))
            .aws_account_id(account)
            .types(format!("Unusual Behaviors/User/{}", alert.detector))
            .created_at(alert.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .updated_at(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .severity(AsffSeverity::builder().label(label).build())
            .title(alert.title.chars().take(256).collect::<String>())
            .description(description)
            .remediation(
                Remediation::builder()
                    .recommendation(
                        Recommendation::builder()
                            .text(alert.runbook.chars().take(512).collect::<String>())
                            .build(),
                    )
                    .build(),
            )
            .resources(resource)
            .product_fields("idc-guard/detector", &alert.detector)
            .build()
    }
}

impl AlertSink for SecurityHubSink {
    fn name(&self) -> &'static str {
        "security-hub"
    }

    async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
        self.import(self.finding(alert, chrono::Utc::now())).await
    }

    /// The same finding, archived (`RecordState ARCHIVED`): its condition has cleared.
    async fn resolve(&self, alert: &Alert) -> Result<(), AwsError> {
        let mut finding = self.finding(alert, chrono::Utc::now());
        finding.record_state = Some(RecordState::Archived);
        self.import(finding).await
    }
}

impl SecurityHubSink {
    async fn import(&self, finding: AwsSecurityFinding) -> Result<(), AwsError> {
        let out = self
            .client
            .batch_import_findings()
            .findings(finding)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("securityhub", "BatchImportFindings", e))?;
        match out.failed_findings().first() {
            None if out.failed_count().unwrap_or(0) == 0 => Ok(()),
            failed => Err(AwsError::Permanent {
                service: "securityhub",
                operation: "BatchImportFindings",
                message: format!(
                    "the finding was refused: {}",
                    failed.and_then(|f| f.error_message()).unwrap_or("no reason given")
                ),
            }),
        }
    }
}
