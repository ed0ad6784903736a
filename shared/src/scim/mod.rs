//! The SCIM bearer token and the event-hook secret: Secrets Manager rotation for both, the SCIM
//! endpoint probe, and the daily token health check.
//!
//! IAM Identity Center has no API that creates a SCIM token: a person generates it in
//! the console and stages it (`idc-guard scim-token stage`); every other step is automatic.

pub mod health;
pub mod ports;
pub mod rotation;

use ports::ScimProbe;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::{ExposeSecret, SecretString};

/// The tag that tells the two rotated secrets apart.
pub const KIND_TAG: &str = "idc-guard:kind";
/// The kind tag's value on the SCIM token secret.
pub const KIND_SCIM_TOKEN: &str = "scim-token";
/// The kind tag's value on the event-hook secret.
pub const KIND_EVENT_HOOK: &str = "event-hook";
/// IdC SCIM tokens last one year.
pub const TOKEN_LIFETIME_DAYS: i64 = 365;

/// The SCIM token secret's JSON. `Debug` never shows the token.
#[derive(Clone, Serialize, Deserialize)]
pub struct ScimSecret {
    /// The bearer token IdC issued.
    pub token: String,
    /// The tenant's SCIM endpoint (`https://scim.<region>.amazonaws.com/<tenant>/scim/v2`).
    pub scim_endpoint: String,
    /// When IdC issued the token.
    #[serde(default)]
    pub issued_at: Option<DateTime<Utc>>,
    /// When it expires (a year after issue).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ScimSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimSecret")
            .field("token", &"***")
            .field("scim_endpoint", &self.scim_endpoint)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl ScimSecret {
    /// Parses and checks a secret value (the endpoint must be an IdC SCIM endpoint).
    pub fn parse(value: &SecretString) -> Result<Self, String> {
        let s: ScimSecret = serde_json::from_str(value.expose_secret()).map_err(|e| {
            format!(
                "the SCIM token secret is not the expected JSON (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        if s.token.trim().is_empty() {
            return Err("the SCIM token secret has an empty token".into());
        }
        validate_scim_endpoint(&s.scim_endpoint)?;
        Ok(s)
    }

    /// The JSON form, for Secrets Manager.
    pub fn to_secret(&self) -> SecretString {
        SecretString::from(serde_json::to_string(self).unwrap_or_default())
    }
}

/// `https://scim.<region>.amazonaws.com/<tenant-id>/scim/v2` (plain http on a loopback host, for
/// tests). The URL is parsed and the host compared exactly: the token is sent to it.
pub fn validate_scim_endpoint(url: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "{url:?} is not an IAM Identity Center SCIM endpoint (https://scim.<region>.amazonaws.com/<tenant>/scim/v2)"
        )
    };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| bad())?;
    let aws_host = parsed.scheme() == "https"
        && parsed.port().is_none()
        && parsed
            .host_str()
            .and_then(|h| h.strip_prefix("scim."))
            .and_then(|h| h.strip_suffix(".amazonaws.com"))
            .is_some_and(|region| {
                !region.is_empty()
                    && region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
    let loopback = parsed.scheme() == "http" && crate::okta::org_url::is_loopback_host(&parsed);
    let segments: Vec<&str> =
        parsed.path_segments().map(|s| s.filter(|p| !p.is_empty()).collect()).unwrap_or_default();
    let path_ok = aws_host && matches!(segments.as_slice(), [_tenant, "scim", "v2"])
        || loopback && segments.ends_with(&["scim", "v2"]);
    if !(aws_host || loopback)
        || !path_ok
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(())
}

/// The `scim-token-rotation` function: rotation steps, the daily check, AWS Health events.
pub struct ScimRotationHandler<'a, Secrets, Okta, Prober, Sink, Store> {
    /// The rotation steps.
    pub rotator: rotation::Rotator<'a, Secrets, Okta, Prober, Sink, Store>,
    /// The SCIM token secret.
    pub scim_secret_id: &'a str,
    /// The event-hook secret: scheduled runs set Okta back to its AWSCURRENT value after a
    /// rotation was cancelled past setSecret.
    pub hook_secret_id: Option<&'a str>,
}

impl<Secrets, Okta, Prober, Sink, Store> ScimRotationHandler<'_, Secrets, Okta, Prober, Sink, Store>
where
    Secrets: crate::secret::SecretAdmin,
    Okta: crate::okta::ports::OktaApi,
    Prober: ScimProbe,
    Sink: crate::alert::AlertSink,
    Store: crate::store::StateStore,
{
    /// Handles a rotation step, a scheduled check or an AWS Health event.
    pub async fn handle(
        &self,
        event: serde_json::Value,
    ) -> Result<serde_json::Value, rotation::RotationError> {
        if event.get("Step").is_some() {
            let e: rotation::RotationEvent = serde_json::from_value(event).map_err(|e| {
                rotation::RotationError::BadSecret(format!("not a rotation event: {e}"))
            })?;
            let outcome = self.rotator.rotate(&e).await?;
            return Ok(serde_json::json!({"step": e.step, "outcome": format!("{outcome:?}")}));
        }
        let check = health::HealthCheck {
            secrets: self.rotator.secrets,
            probe: self.rotator.probe,
            sink: self.rotator.sink,
            store: self.rotator.store,
            scim_secret_id: self.scim_secret_id,
        };
        if event["source"] == "aws.events"
            && let Some(hook_secret) = self.hook_secret_id
            && let Some(version) = self.rotator.restore_hook_secret(hook_secret).await?
        {
            tracing::warn!(%version, "Okta's event hook held a cancelled rotation's value: set back to AWSCURRENT");
        }
        if event["detail"]["check"] == "hook-secret" {
            return Ok(serde_json::json!({"checked": "hook-secret"}));
        }
        let sent = match event["source"].as_str() {
            Some("aws.health") => check.health_event(&event).await?,
            Some("aws.events") => check.run(Utc::now()).await?,
            other => {
                return Err(rotation::RotationError::UnknownStep(format!(
                    "unrecognised trigger (source {other:?})"
                )));
            }
        };
        Ok(serde_json::json!({"alerts_sent": sent.iter().map(|a| &a.detector).collect::<Vec<_>>()}))
    }
}

#[cfg(test)]
mod tests {
    use super::validate_scim_endpoint;

    #[test]
    fn scim_endpoints_are_parsed_and_their_host_compared_exactly() {
        for good in [
            "https://scim.us-east-1.amazonaws.com/a1b2c3d4-5678/scim/v2",
            "https://scim.eu-central-1.amazonaws.com/a1b2c3d4-5678/scim/v2/",
            "http://127.0.0.1:8080/tenant/scim/v2",
            "http://localhost:9/scim/v2",
        ] {
            assert!(validate_scim_endpoint(good).is_ok(), "{good} refused");
        }
        for bad in [
            "https://scim.evil.com/.amazonaws.com/scim/v2",
            "https://scim.us-east-1.amazonaws.com.evil.com/t/scim/v2",
            "https://scim.us-east-1.amazonaws.com@evil.com/t/scim/v2",
            "https://scim.us-east-1.amazonaws.com:8443/t/scim/v2",
            "http://scim.us-east-1.amazonaws.com/t/scim/v2",
            "http://localhost.evil.com/scim/v2",
            "http://127.0.0.1.evil.com/scim/v2",
            "https://scim.us-east-1.amazonaws.com/t/scim/v2?x=1",
            "https://scim.us-east-1.amazonaws.com/scim/v2",
            "https://scim.us-east-1.amazonaws.com/a/b/scim/v2",
            "https://scim..amazonaws.com/t/scim/v2",
            "",
        ] {
            assert!(validate_scim_endpoint(bad).is_err(), "{bad} accepted");
        }
    }
}
