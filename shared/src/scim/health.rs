//! The daily SCIM token health check: age against the rotation policy, expiry, validity of the
//! current token, the previous token still working after a rotation, and Okta's group-push
//! failures. Each reminder is sent once per threshold (stable alert ids, sent once).

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::ScimSecret;
use super::ports::{Probe, ScimProbe};
use crate::alert::{Alert, AlertSink, Alerts, Severity};
use crate::error::AwsError;
use crate::records::{self, GroupPushFailure, ScimRotation};
use crate::secret::SecretString;
use crate::secret::{AWSCURRENT, AWSPREVIOUS, SecretAdmin};
use crate::store::StateStore;

/// The SCIM token is rotated this often.
pub const ROTATE_EVERY_DAYS: i64 = 90;
/// Reminders this many days before rotation is due.
pub const ROTATION_REMINDERS: [i64; 3] = [14, 7, 1];
/// Reminders this many days before the token expires.
pub const EXPIRY_REMINDERS: [i64; 3] = [30, 7, 1];
/// The AWS Health event type of IdC's SCIM token expiry notices.
pub const HEALTH_EXPIRY_EVENT: &str = "AWS_IAMIDENTITYCENTER_SCIM_BEARER_TOKEN_EXPIRY_NOTIFICATION";

/// What `idc-guard scim-token status` shows and the check decides from. Never the token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenStatus {
    /// The AWSCURRENT version.
    pub current_version: Option<String>,
    /// The AWSPENDING version, when a rotation waits.
    pub pending_version: Option<String>,
    /// The AWSPREVIOUS version.
    pub previous_version: Option<String>,
    /// The SCIM endpoint the token belongs to.
    pub scim_endpoint: Option<String>,
    /// When the current token was issued.
    pub issued_at: Option<DateTime<Utc>>,
    /// When it expires (IdC tokens last a year).
    pub expires_at: Option<DateTime<Utc>>,
    /// Its age.
    pub age_days: Option<i64>,
    /// When the next rotation is due.
    pub rotation_due: Option<DateTime<Utc>>,
    /// Secrets Manager rotation is enabled.
    pub rotation_enabled: bool,
    /// The last finished rotation.
    pub last_rotation: Option<ScimRotation>,
    /// What a probe of the endpoint with the token found.
    pub probe: Option<String>,
}

/// The daily SCIM token check (and `idc-guard scim-token status`).
pub struct HealthCheck<'a, Secrets, Prober, Sink, Store> {
    /// The SCIM token secret's store.
    pub secrets: &'a Secrets,
    /// The SCIM endpoint probe.
    pub probe: &'a Prober,
    /// Where alerts go.
    pub sink: &'a Sink,
    /// The state table.
    pub store: &'a Store,
    /// The SCIM token secret.
    pub scim_secret_id: &'a str,
}

/// The most urgent reminder threshold crossed: `Some(0)` when the date has passed.
fn crossed(now: DateTime<Utc>, date: DateTime<Utc>, thresholds: &[i64]) -> Option<i64> {
    if now >= date {
        return Some(0);
    }
    thresholds.iter().copied().filter(|d| now >= date - Duration::days(*d)).min()
}

impl<Secrets: SecretAdmin, Prober: ScimProbe, Sink: AlertSink, Store: StateStore>
    HealthCheck<'_, Secrets, Prober, Sink, Store>
{
    /// The token's state; probes the current token when `probe` is true.
    pub async fn status(
        &self,
        now: DateTime<Utc>,
        probe: bool,
    ) -> Result<(TokenStatus, Option<ScimSecret>), AwsError> {
        let d = self.secrets.describe(self.scim_secret_id).await?;
        let current = self.secrets.secret_string(self.scim_secret_id, AWSCURRENT).await?;
        let parsed = current.as_ref().and_then(|v| ScimSecret::parse(v).ok());
        let probe_result = match (&parsed, probe) {
            (Some(s), true) => {
                Some(self.probe.probe(&s.scim_endpoint, &SecretString::from(s.token.clone())).await)
            }
            _ => None,
        };
        let last_rotation = records::load(self.store, &ScimRotation::key()).await?;
        let issued = parsed.as_ref().and_then(|s| s.issued_at);
        Ok((
            TokenStatus {
                current_version: d.version_with(AWSCURRENT).map(str::to_owned),
                pending_version: d
                    .version_with(crate::secret::AWSPENDING)
                    .filter(|v| Some(*v) != d.version_with(AWSCURRENT))
                    .map(str::to_owned),
                previous_version: d.version_with(AWSPREVIOUS).map(str::to_owned),
                scim_endpoint: parsed.as_ref().map(|s| s.scim_endpoint.clone()),
                issued_at: issued,
                expires_at: parsed.as_ref().and_then(|s| s.expires_at),
                age_days: issued.map(|i| (now - i).num_days()),
                rotation_due: issued.map(|i| i + Duration::days(ROTATE_EVERY_DAYS)),
                rotation_enabled: d.rotation_enabled,
                last_rotation,
                probe: probe_result.map(|p| match p {
                    Probe::Valid => "valid".to_owned(),
                    Probe::Rejected(s) => format!("rejected ({s})"),
                    Probe::Inconclusive(w) => format!("inconclusive: {w}"),
                }),
            },
            parsed,
        ))
    }

    /// Runs every check; returns the alerts sent now (already-sent ids are not repeated).
    pub async fn run(&self, now: DateTime<Utc>) -> Result<Vec<Alert>, AwsError> {
        let mut alerts = Vec::new();
        let (status, current) = self.status(now, true).await?;
        let version = status.current_version.clone().unwrap_or_default();
        let Some(current) = current else {
            alerts.push(Alert::new(
                "scim-token-invalid",
                &format!("unreadable:{version}"),
                now,
                Severity::Critical,
                "The SCIM token secret cannot be read as a token",
                None,
                "The AWSCURRENT value of the SCIM token secret is missing or not the expected JSON.",
                json!({"version": version}),
                vec![],
                "Stage a valid token with `idc-guard scim-token stage` (JSON with token and scim_endpoint).",
            ));
            return self.send(alerts).await;
        };
        if let Some(due) = status.rotation_due
            && let Some(days) = crossed(now, due, &ROTATION_REMINDERS)
        {
            let (severity, title) = if days == 0 {
                (
                    Severity::High,
                    format!("SCIM token rotation is overdue (due {})", due.format("%Y-%m-%d")),
                )
            } else {
                (
                    Severity::Low,
                    format!("SCIM token rotation due in {} day(s)", days_until(now, due)),
                )
            };
            alerts.push(Alert::new(
                "scim-token-rotation-due",
                &format!("{version}:{days}"),
                now,
                severity,
                title,
                None,
                format!("The SCIM token was issued {} days ago; the policy rotates it every {ROTATE_EVERY_DAYS} days.", status.age_days.unwrap_or(0)),
                json!({"version": version, "issued_at": status.issued_at, "due": due, "threshold_days": days}),
                vec![],
                "Generate a new token in the IAM Identity Center console and run `idc-guard scim-token stage`; rotation does the rest.",
            ));
        }
        if let Some(expires) = current.expires_at
            && let Some(days) = crossed(now, expires, &EXPIRY_REMINDERS)
        {
            let (severity, title) = match days {
                0 => (
                    Severity::Critical,
                    "The SCIM token has expired: provisioning has stopped".to_owned(),
                ),
                1 => (Severity::High, "The SCIM token expires within a day".to_owned()),
                _ => (
                    Severity::Medium,
                    format!("The SCIM token expires in {} days", days_until(now, expires)),
                ),
            };
            alerts.push(Alert::new(
                "scim-token-expiring",
                &format!("{version}:{days}"),
                now,
                severity,
                title,
                None,
                format!("IAM Identity Center SCIM tokens last a year; this one expires {}.", expires.format("%Y-%m-%d")),
                json!({"version": version, "expires_at": expires, "threshold_days": days}),
                vec![],
                "Generate a new token in the IAM Identity Center console and run `idc-guard scim-token stage` now.",
            ));
        }
        // Okta's last group-push failure (recorded by access-sync, which alerted on it then).
        let push_failure =
            records::load::<GroupPushFailure, _>(self.store, &GroupPushFailure::key()).await?;
        let rejected = status.probe.as_deref().is_some_and(|p| p.starts_with("rejected"));
        if let Some(p) = status.probe.as_deref().filter(|_| rejected) {
            alerts.push(Alert::new(
                "scim-token-invalid",
                &format!("{version}:{}", now.format("%Y-%m-%d")),
                now,
                Severity::Critical,
                "IAM Identity Center rejects the current SCIM token",
                None,
                format!(
                    "The SCIM endpoint answered {p} to the current token: Okta cannot provision users or groups.{}",
                    if push_failure.is_some() { " This explains Okta's failed group push." } else { "" }
                ),
                json!({"version": version, "endpoint": current.scim_endpoint, "probe": p, "okta_push_failure": push_failure}),
                push_failure.iter().map(|f| f.event_id.clone()).collect(),
                "Generate a new token in the IAM Identity Center console and run `idc-guard scim-token stage`; then check Okta's provisioning settings.",
            ));
        }
        // The previous token should be deleted in IdC within a day of a rotation.
        if let Some(last) = &status.last_rotation
            && now - last.finished_at >= Duration::hours(24)
            && let Some(previous) =
                self.secrets.secret_string(self.scim_secret_id, AWSPREVIOUS).await?
            && let Ok(previous) = ScimSecret::parse(&previous)
            && self
                .probe
                .probe(&previous.scim_endpoint, &SecretString::from(previous.token.clone()))
                .await
                == Probe::Valid
        {
            let prev_version = status.previous_version.clone().unwrap_or_default();
            alerts.push(Alert::new(
                "scim-token-old-still-valid",
                &prev_version,
                now,
                Severity::Medium,
                "The previous SCIM token still works a day after rotation",
                None,
                "IAM Identity Center allows two active tokens; the old one should be deleted once the new one is in use.",
                json!({"previous_version": prev_version, "rotated_at": last.finished_at}),
                vec![],
                "IAM Identity Center console > Settings > Identity source > Automatic provisioning > Manage tokens: delete the older token.",
            ));
        }
        // A group-push failure while the token works: the cause is elsewhere (the app's
        // provisioning settings, the group, a name clash). A rejected token is reported above.
        if let Some(failure) = push_failure.filter(|_| !rejected) {
            let event_id = failure.event_id.clone();
            alerts.push(Alert::new(
                "scim-provisioning-failure",
                &format!("okta-push:{event_id}"),
                now,
                Severity::High,
                "Okta's failed group push is not explained by the SCIM token",
                None,
                format!(
                    "Okta could not push {}: {}. The current token's probe: {}.",
                    failure.group.as_deref().unwrap_or("a group"),
                    failure.reason.as_deref().unwrap_or("no reason"),
                    status.probe.as_deref().unwrap_or("not probed")
                ),
                json!(failure),
                vec![event_id],
                "The token works, so check the Okta app's provisioning settings and the group (a group of the same name in IAM Identity Center, or one used for both assignment and push), then retry the push in Okta.",
            ));
        }
        self.send(alerts).await
    }

    /// An AWS Health event about the SCIM token's expiry.
    pub async fn health_event(&self, event: &Value) -> Result<Vec<Alert>, AwsError> {
        let detail = &event["detail"];
        if detail["eventTypeCode"].as_str() != Some(HEALTH_EXPIRY_EVENT) {
            return Ok(Vec::new());
        }
        let id = event["id"].as_str().unwrap_or_default();
        let description = detail["eventDescription"][0]["latestDescription"]
            .as_str()
            .unwrap_or("IAM Identity Center reports that the SCIM bearer token expires soon.");
        let alert = Alert::new(
            "scim-token-expiring",
            &format!("health:{id}"),
            Utc::now(),
            Severity::High,
            "AWS Health: the IAM Identity Center SCIM token is expiring",
            None,
            description.to_owned(),
            json!({"health_event": detail["eventArn"], "start": detail["startTime"], "region": event["region"]}),
            vec![id.to_owned()],
            "Generate a new token in the IAM Identity Center console and run `idc-guard scim-token stage` before the expiry date.",
        );
        self.send(vec![alert]).await
    }

    async fn send(&self, alerts: Vec<Alert>) -> Result<Vec<Alert>, AwsError> {
        let dispatcher = Alerts::new(self.sink, self.store);
        let mut sent = Vec::new();
        for a in alerts {
            if dispatcher.raise(&a).await? {
                sent.push(a);
            }
        }
        Ok(sent)
    }
}

/// Whole days from `now` until `date`, rounded up.
fn days_until(now: DateTime<Utc>, date: DateTime<Utc>) -> i64 {
    ((date - now).num_minutes() + 24 * 60 - 1).div_euclid(24 * 60)
}

/// Exposed for tests of the thresholds.
pub fn reminder_threshold(
    now: DateTime<Utc>,
    date: DateTime<Utc>,
    thresholds: &[i64],
) -> Option<i64> {
    crossed(now, date, thresholds)
}
