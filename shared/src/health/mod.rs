//! Integration health: the Okta → IAM Identity Center setup guide's checklist, checked
//! continuously. One set of checks run two ways: `idc-guard doctor` (a person, now) and the
//! `integration-health` function (daily posture, System Log catch-up every few minutes).
//!
//! Each check gives pass / warn / fail, its evidence and the fix. A check that does not pass
//! raises its alert once per state change (the state is part of the alert's key, and a check
//! that passed again starts a new episode), never as a daily repeat.
//!
//! - `saml-trust` ([`saml`]): the AWS app's active signing key and its expiry, signature
//!   algorithm, NameID format, attributes, ACS URL and issuer against the IdC console's values.
//! - `mfa-posture` ([`mfa`]): the app's authentication policy (Identity Engine) or the global
//!   sign-on policy (Classic) requires a second factor in every rule that allows access.
//! - `scim-sync` ([`sync`]): Okta members vs Identity Store members of every managed group,
//!   group-push errors, users Okta failed to sync.
//! - `system-log-catch-up` ([`catchup`]): events the hook missed are queued; provisioning
//!   failures hooks cannot carry are alerted.

pub mod catchup;
pub mod mfa;
pub mod ports;
pub mod saml;
pub mod settings;
pub mod sync;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::access::ports::IdentityCenter;
use crate::alert::{Alert, AlertSink, Alerts, Severity};
use crate::error::AwsError;
use crate::okta::ports::EventQueue;
use crate::records::{self, HealthCheckState};
use crate::store::StateStore;
use ports::OktaReader;
use settings::HealthSettings;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Healthy.
    Pass,
    /// Works, but needs attention soon (or could not be fully checked).
    Warn,
    /// Broken, or about to break.
    Fail,
}

impl Status {
    /// `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// The alert a check raises when it does not pass.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSpec {
    /// The detector name (`saml-cert-expiring`, `mfa-not-required`, …).
    pub detector: &'static str,
    /// How bad.
    pub severity: Severity,
    /// What distinguishes this state from another of the same check (a key id and a
    /// threshold, the failing rules): a new state alerts, the same one does not.
    pub state: String,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable id (`saml-trust`, `mfa-posture`, `scim-sync`, `system-log-catch-up`).
    pub id: &'static str,
    /// What was checked.
    pub title: &'static str,
    /// The verdict.
    pub status: Status,
    /// One line: what was found.
    pub summary: String,
    /// The facts behind it (counts and first names, never thousands of lines).
    pub evidence: Vec<String>,
    /// What to do, in one or two sentences (none when it passes).
    pub fix: Option<String>,
    /// The alert, when it does not pass.
    #[serde(skip)]
    pub alert: Option<AlertSpec>,
    /// It could not be checked (a credential, the network, Okta or AWS failed): its `Warn`
    /// says nothing about the integration itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub could_not_check: bool,
}

impl Check {
    /// A passing check.
    pub fn pass(id: &'static str, title: &'static str, summary: impl Into<String>) -> Self {
        Self {
            id,
            title,
            status: Status::Pass,
            summary: summary.into(),
            evidence: Vec::new(),
            fix: None,
            alert: None,
            could_not_check: false,
        }
    }

    /// A check that could not run (Okta or AWS unreachable, not configured): a warning that
    /// says why, never a pass.
    pub fn unknown(id: &'static str, title: &'static str, why: impl std::fmt::Display) -> Self {
        Self {
            id,
            title,
            status: Status::Warn,
            summary: format!("could not be checked: {why}"),
            evidence: Vec::new(),
            fix: Some("Check the Okta API credential's scopes and the AWS permissions named in the README, then run again.".into()),
            alert: None,
            could_not_check: true,
        }
    }
}

/// How long a check may stay "could not be checked" before it alerts and fails the function
/// (so the function's error alarm fires too).
pub const STALLED_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// The detector of a posture check that stayed "could not be checked" (the catch-up's is
/// [`catchup::STALLED`]).
pub const CHECK_STALLED: &str = "health-check-stalled";

/// Why an integration-health run failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The state store or the alert sinks failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A check has not been checkable for longer than [`STALLED_AFTER`].
    #[error("{check} could not be checked since {since}: {summary}")]
    Stalled {
        /// The check's id.
        check: &'static str,
        /// Since when.
        since: DateTime<Utc>,
        /// Its latest summary.
        summary: String,
    },
}

/// How many names to list before "and N more".
pub const FIRST_NAMES: usize = 5;

/// `a, b, c and 7 more`.
pub fn first_names<S: AsRef<str>>(names: &[S]) -> String {
    let shown: Vec<&str> = names.iter().take(FIRST_NAMES).map(AsRef::as_ref).collect();
    match names.len().saturating_sub(FIRST_NAMES) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// The string at a JSON pointer, if any.
pub fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The Okta AWS IAM Identity Center app: the configured id, else the one active app with the
/// OIN name `amazon_aws_sso`.
pub async fn find_aws_app<Okta: OktaReader>(
    okta: &Okta,
    configured: Option<&str>,
) -> Result<Value, String> {
    if let Some(id) = configured {
        return okta
            .get_json(&format!("/api/v1/apps/{}", urlencode(id)))
            .await
            .map_err(|e| format!("the configured AWS app {id}: {e}"));
    }
    let filter = urlencode("name eq \"amazon_aws_sso\"");
    let apps = okta
        .get_list(&format!("/api/v1/apps?filter={filter}&limit=200"))
        .await
        .map_err(|e| format!("listing Okta apps: {e}"))?;
    let active: Vec<&Value> =
        apps.iter().filter(|a| text(a, "/status") == Some("ACTIVE")).collect();
    match active.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err("no active Okta app named amazon_aws_sso (AWS IAM Identity Center); set [health] okta_aws_app_id".into()),
        many => Err(format!(
            "{} active AWS IAM Identity Center apps ({}); set [health] okta_aws_app_id to the one to check",
            many.len(),
            first_names(&many.iter().filter_map(|a| text(a, "/id")).collect::<Vec<_>>())
        )),
    }
}

/// Percent-encodes a query or path value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What the checks run against.
pub struct Doctor<'a, Okta, Idc, Store, Sink, Queue> {
    /// Okta's Management API.
    pub okta: &'a Okta,
    /// IAM Identity Center (the Identity Store's groups and members).
    pub idc: &'a Idc,
    /// State: managed groups, check states, the catch-up checkpoint, processed events.
    pub store: &'a Store,
    /// Where alerts go.
    pub sink: &'a Sink,
    /// The hook's FIFO queue, for the catch-up (none: report only).
    pub queue: Option<&'a Queue>,
    /// The `[health]` settings.
    pub settings: &'a HealthSettings,
    /// The IdC instance, when configured.
    pub instance_arn: Option<&'a str>,
    /// Look, never touch: no queueing, no alert, no cursor or state written (`idc-guard doctor`
    /// next to the deployed function, whose cursor and alert records it must not move).
    pub report_only: bool,
}

impl<Okta, Idc, Store, Sink, Queue> Doctor<'_, Okta, Idc, Store, Sink, Queue>
where
    Okta: OktaReader,
    Idc: IdentityCenter,
    Store: StateStore,
    Sink: AlertSink,
    Queue: EventQueue,
{
    /// The posture checks: SAML trust, MFA posture, SCIM sync.
    pub async fn posture(&self, now: DateTime<Utc>) -> Vec<Check> {
        let app = find_aws_app(self.okta, self.settings.okta_aws_app_id.as_deref()).await;
        let mut checks = Vec::new();
        match &app {
            Ok(app) => {
                checks.push(saml::check(self.okta, app, self.settings, now).await);
                checks.push(mfa::check(self.okta, app).await);
            }
            Err(why) => {
                checks.push(Check::unknown(saml::ID, saml::TITLE, why));
                checks.push(Check::unknown(mfa::ID, mfa::TITLE, why));
            }
        }
        checks.push(
            sync::check(self.okta, self.idc, self.store, app.as_ref().ok(), self.instance_arn)
                .await,
        );
        checks
    }

    /// The System Log catch-up (every few minutes).
    pub async fn catch_up(&self, now: DateTime<Utc>) -> Check {
        catchup::run(self, now).await
    }

    /// The `integration-health` function: `{"check": "catch-up"}` (every few minutes) runs the
    /// System Log catch-up, anything else (the daily schedule) the posture checks; alerts follow.
    ///
    /// A check that has not been checkable for longer than [`STALLED_AFTER`] fails the run
    /// (after its alert is sent and every state saved), so the function's error alarm fires.
    pub async fn handle(&self, event: &Value, now: DateTime<Utc>) -> Result<Value, HealthError> {
        let catch_up = event["check"] == "catch-up" || event["detail"]["check"] == "catch-up";
        let checks =
            if catch_up { vec![self.catch_up(now).await] } else { self.posture(now).await };
        for c in &checks {
            tracing::info!(check = c.id, status = c.status.as_str(), summary = %c.summary, "health check");
        }
        let outcome = self.alert_and_track(&checks, now).await?;
        if let Some((check, since)) = outcome.stalled.first() {
            let summary = checks.iter().find(|c| c.id == *check).map(|c| c.summary.clone());
            return Err(HealthError::Stalled {
                check,
                since: *since,
                summary: summary.unwrap_or_default(),
            });
        }
        Ok(json!({"checks": checks,
            "alerts_sent": outcome.sent.iter().map(|a| &a.detector).collect::<Vec<_>>()}))
    }

    /// Raises the alert of every check that does not pass, once per state; records each
    /// check's state. Returns the alerts sent now.
    pub async fn alert(
        &self,
        checks: &[Check],
        now: DateTime<Utc>,
    ) -> Result<Vec<Alert>, AwsError> {
        Ok(self.alert_and_track(checks, now).await?.sent)
    }

    async fn alert_and_track(
        &self,
        checks: &[Check],
        now: DateTime<Utc>,
    ) -> Result<Alerted, AwsError> {
        let alerts = Alerts::new(self.sink, self.store);
        let mut sent = Vec::new();
        let mut stalled = Vec::new();
        for check in checks {
            let key = HealthCheckState::key_of(check.id);
            let mut state: HealthCheckState =
                records::load(self.store, &key).await?.unwrap_or_else(|| HealthCheckState {
                    check: check.id.into(),
                    ..Default::default()
                });
            if check.status == Status::Pass && !state.status.is_empty() && state.status != "pass" {
                state.episode += 1;
                // The problem cleared: the sinks that keep findings close its finding.
                if let Some(id) = state.alert_id.take() {
                    alerts.resolve(&id).await?;
                }
            }
            if let Some(spec) = &check.alert {
                let alert = Alert::new(
                    spec.detector,
                    &format!("{}:{}:{}", check.id, state.episode, spec.state),
                    now,
                    spec.severity,
                    format!("{}: {}", check.title, check.status.as_str()),
                    None,
                    check.summary.clone(),
                    json!({"check": check.id, "status": check.status, "evidence": check.evidence}),
                    vec![],
                    check.fix.clone().unwrap_or_default(),
                );
                state.alert_id = Some(alert.id.clone());
                if alerts.raise(&alert).await? {
                    sent.push(alert);
                }
            }
            state.unchecked_since =
                if check.could_not_check { state.unchecked_since.or(Some(now)) } else { None };
            if let Some(since) = state.unchecked_since.filter(|s| now - *s > STALLED_AFTER) {
                let alert = stalled_alert(check, since, now);
                if alerts.raise(&alert).await? {
                    sent.push(alert);
                }
                stalled.push((check.id, since));
            }
            state.check = check.id.into();
            state.status = check.status.as_str().into();
            state.checked_at = Some(now);
            records::save(self.store, &state).await?;
        }
        Ok(Alerted { sent, stalled })
    }
}

/// What [`Doctor::alert_and_track`] did.
struct Alerted {
    sent: Vec<Alert>,
    /// Checks not checkable for longer than [`STALLED_AFTER`], and since when.
    stalled: Vec<(&'static str, DateTime<Utc>)>,
}

/// One alert per stretch of "could not be checked" longer than [`STALLED_AFTER`].
fn stalled_alert(check: &Check, since: DateTime<Utc>, now: DateTime<Utc>) -> Alert {
    let hours = (now - since).num_minutes() as f64 / 60.0;
    let detector = if check.id == catchup::ID { catchup::STALLED } else { CHECK_STALLED };
    Alert::new(
        detector,
        &format!("unchecked:{}:{}", check.id, since.timestamp()),
        now,
        Severity::High,
        format!("{}: could not be checked for {hours:.1} hours", check.title),
        None,
        format!(
            "{} has not run to the end since {since}: {}. Until it does, events the Okta event hook missed are not queued and provisioning failures are not seen.",
            check.title, check.summary
        ),
        json!({"check": check.id, "since": since, "evidence": check.evidence}),
        vec![],
        check.fix.clone().unwrap_or_default(),
    )
}

impl From<HealthError> for lambda_runtime::Diagnostic {
    fn from(e: HealthError) -> Self {
        match e {
            HealthError::Aws(e) => e.into(),
            stalled @ HealthError::Stalled { .. } => lambda_runtime::Diagnostic {
                error_type: "HealthCheckStalled".into(),
                error_message: stalled.to_string(),
            },
        }
    }
}
