//! The `[health]` table of the policy file: what the integration-health checks cannot learn by
//! API (IAM Identity Center has no API for its external identity provider settings) and their
//! thresholds.
//!
//! ```toml
//! [health]
//! okta_aws_app_id = "0oa1b2c3d4e5AWSidc"   # else found by its OIN name, amazon_aws_sso
//! acs_url = "https://us-east-1.signin.aws/platform/saml/acs/1a2b3c4d-..."   # IdC console
//! issuer = "https://us-east-1.signin.aws/platform/saml/d-1234567890"        # IdC console
//! cert_warn_days = 60
//! cert_fail_days = 14
//! catch_up_lookback = "1h"
//! ```

use chrono::Duration;
use serde::Deserialize;

use crate::policy_file::parse_duration;

/// The checks' settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSettings {
    /// The Okta app of AWS IAM Identity Center (else found by its OIN name).
    pub okta_aws_app_id: Option<String>,
    /// IdC's Assertion Consumer Service URL, exactly as its console shows it.
    pub acs_url: Option<String>,
    /// IdC's issuer URL (the audience / entity id Okta must use), exactly as its console shows it.
    pub issuer: Option<String>,
    /// Warn when the active signing key expires within this many days.
    pub cert_warn_days: i64,
    /// Fail when it expires within this many days.
    pub cert_fail_days: i64,
    /// Alert when it crosses each of these days-left thresholds (once each).
    pub cert_alert_days: Vec<i64>,
    /// How far back the first System Log catch-up reads.
    pub catch_up_lookback: Duration,
    /// At most this many System Log pages per run (1,000 events each).
    pub catch_up_max_pages: usize,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            okta_aws_app_id: None,
            acs_url: None,
            issuer: None,
            cert_warn_days: 60,
            cert_fail_days: 14,
            cert_alert_days: vec![60, 30, 7, 1],
            catch_up_lookback: Duration::hours(1),
            catch_up_max_pages: 20,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    okta_aws_app_id: Option<String>,
    acs_url: Option<String>,
    issuer: Option<String>,
    cert_warn_days: Option<i64>,
    cert_fail_days: Option<i64>,
    cert_alert_days: Option<Vec<i64>>,
    catch_up_lookback: Option<String>,
    catch_up_max_pages: Option<usize>,
}

impl HealthSettings {
    /// Reads the `[health]` table (absent: the defaults). Errors name the key and what is wrong.
    pub fn from_table(table: Option<&toml::Table>) -> Result<Self, String> {
        let mut s = Self::default();
        let Some(table) = table else { return Ok(s) };
        let raw: Raw = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| format!("[health]: {}", e.message()))?;
        s.okta_aws_app_id = raw.okta_aws_app_id.filter(|v| !v.trim().is_empty());
        s.acs_url = raw.acs_url.filter(|v| !v.trim().is_empty());
        s.issuer = raw.issuer.filter(|v| !v.trim().is_empty());
        if let Some(d) = raw.cert_warn_days {
            s.cert_warn_days = d;
        }
        if let Some(d) = raw.cert_fail_days {
            s.cert_fail_days = d;
        }
        if s.cert_fail_days < 0 || s.cert_warn_days < s.cert_fail_days {
            return Err(
                "[health]: cert_fail_days must be at least 0 and at most cert_warn_days".into()
            );
        }
        if let Some(days) = raw.cert_alert_days {
            if days.iter().any(|d| *d < 0) {
                return Err("[health] cert_alert_days: days must not be negative".into());
            }
            s.cert_alert_days = days;
            s.cert_alert_days.sort_unstable_by(|a, b| b.cmp(a));
        }
        if let Some(text) = raw.catch_up_lookback {
            s.catch_up_lookback = parse_duration(&text)
                // No further back than access-sync remembers processed events (7 days): older
                // events would be processed again.
                .filter(|d| *d <= Duration::seconds(crate::records::EVENT_CLAIM_KEEP_SECONDS))
                .ok_or_else(|| {
                    format!("[health] catch_up_lookback {text:?}: a duration such as \"1h\", at most 7 days (how long access-sync remembers the events it processed)")
                })?;
        }
        if let Some(pages) = raw.catch_up_max_pages {
            s.catch_up_max_pages = pages.max(1);
        }
        Ok(s)
    }

    /// Reads `[health]` from a policy file's text.
    pub fn from_policy_text(text: &str) -> Result<Self, String> {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| e.message().to_owned())?;
        Self::from_table(doc.get("health").and_then(|v| v.as_table()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_each_key_and_clear_errors() {
        assert_eq!(HealthSettings::from_policy_text("").unwrap(), HealthSettings::default());
        let s = HealthSettings::from_policy_text(
            "[health]\nacs_url = \"https://x/acs\"\ncert_warn_days = 45\ncert_fail_days = 10\ncert_alert_days = [1, 30]\ncatch_up_lookback = \"2h\"\n",
        )
        .unwrap();
        assert_eq!(s.acs_url.as_deref(), Some("https://x/acs"));
        assert_eq!((s.cert_warn_days, s.cert_fail_days), (45, 10));
        assert_eq!(s.cert_alert_days, [30, 1]);
        assert_eq!(s.catch_up_lookback, Duration::hours(2));
        for bad in [
            "[health]\nunknown = 1\n",
            "[health]\ncert_warn_days = 5\ncert_fail_days = 10\n",
            "[health]\ncatch_up_lookback = \"8d\"\n",
            "[health]\ncert_alert_days = [-1]\n",
        ] {
            let e = HealthSettings::from_policy_text(bad).unwrap_err();
            assert!(e.contains("health"), "{bad}: {e}");
        }
    }
}
