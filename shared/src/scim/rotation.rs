//! The Secrets Manager rotation protocol (createSecret, setSecret, testSecret, finishSecret) for
//! the event-hook secret (fully automatic) and the SCIM token (one human step). Every step starts
//! by describing the secret; a step for a version that is already AWSCURRENT does nothing; a step
//! for a version that is not AWSPENDING fails. AWSCURRENT moves only in finishSecret, so any
//! failure leaves the working credential in place.

use crate::telemetry::metrics::{Metric, count};
use chrono::Utc;
use lambda_runtime::Diagnostic;
use serde::Deserialize;
use serde_json::json;

use super::ports::{Probe, ScimProbe};
use super::{KIND_EVENT_HOOK, KIND_SCIM_TOKEN, KIND_TAG, ScimSecret};
use crate::alert::{Alert, AlertSink, Alerts, Severity};
use crate::error::AwsError;
use crate::okta::ports::{OktaApi, OktaError};
use crate::records::{self, ConfirmedByHand, OktaHolds, ScimRotation};
use crate::secret::SecretString;
use crate::secret::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, SecretAdmin};
use crate::store::StateStore;

/// What Secrets Manager sends the rotation function.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RotationEvent {
    /// `createSecret`, `setSecret`, `testSecret` or `finishSecret`.
    #[serde(rename = "Step")]
    pub step: String,
    /// The secret's ARN.
    #[serde(rename = "SecretId")]
    pub secret_id: String,
    /// The version being rotated (`ClientRequestToken`).
    #[serde(rename = "ClientRequestToken")]
    pub token: String,
}

/// Why a rotation step failed (Secrets Manager retries the step).
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// Rotation is not enabled on the secret.
    #[error("rotation is not enabled on the secret")]
    NotEnabled,
    /// The token names no version of the secret.
    #[error("version {0} is not a version of the secret")]
    UnknownVersion(String),
    /// The version is not the pending one.
    #[error("version {0} is not staged AWSPENDING")]
    NotPending(String),
    /// The secret's kind tag is missing or unknown.
    #[error("the secret's tag {KIND_TAG} is missing or unknown ({0:?})")]
    UnknownKind(Option<String>),
    /// A step Secrets Manager does not define.
    #[error("unknown rotation step {0:?}")]
    UnknownStep(String),
    /// A person must act first (e.g. enter a SCIM token in Okta by hand).
    #[error("a person must act: {0}")]
    NeedsPerson(String),
    /// `testSecret` found the new value does not work.
    #[error("{0}")]
    Test(String),
    /// The secret's value is not what its kind needs.
    #[error("{0}")]
    BadSecret(String),
    /// The function's configuration lacks what the step needs.
    #[error("configuration: {0}")]
    Config(&'static str),
    /// An Okta API call failed.
    #[error(transparent)]
    Okta(#[from] OktaError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl From<RotationError> for Diagnostic {
    fn from(e: RotationError) -> Self {
        let error_type = match &e {
            RotationError::NeedsPerson(_) => "NeedsPerson",
            RotationError::Test(_) => "TestFailed",
            RotationError::Okta(_) => "OktaError",
            RotationError::Aws(_) => "AwsError",
            _ => "RotationError",
        };
        Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The version is already AWSCURRENT: nothing to do.
    AlreadyCurrent,
    /// The step's work was already done (e.g. the pending value exists).
    AlreadyDone,
    /// The step's work was done now.
    Done,
}

/// Runs Secrets Manager's four rotation steps for the hook secret and the SCIM token.
pub struct Rotator<'a, Secrets, Okta, Prober, Sink, Store> {
    /// The secrets being rotated.
    pub secrets: &'a Secrets,
    /// Okta's Management API.
    pub okta: &'a Okta,
    /// The SCIM endpoint probe.
    pub probe: &'a Prober,
    /// Where alerts go.
    pub sink: &'a Sink,
    /// The state table (rotation records, Okta's held version).
    pub store: &'a Store,
    /// The Okta event hook whose `Authorization` value is the hook secret.
    pub event_hook_id: Option<&'a str>,
    /// The Okta app whose provisioning token is the SCIM token (if Okta may set it by API).
    pub okta_app_id: Option<&'a str>,
}

const HOOK_SECRET_LENGTH: i64 = 64; // letters and digits: ~380 bits

impl<Secrets: SecretAdmin, Okta: OktaApi, Prober: ScimProbe, Sink: AlertSink, Store: StateStore>
    Rotator<'_, Secrets, Okta, Prober, Sink, Store>
{
    /// Runs one step; a step already done reports so and changes nothing.
    pub async fn rotate(&self, event: &RotationEvent) -> Result<StepOutcome, RotationError> {
        let result = self.step(event).await;
        let outcome = match &result {
            Ok(StepOutcome::AlreadyCurrent) => "already-current",
            Ok(StepOutcome::AlreadyDone) => "already-done",
            Ok(StepOutcome::Done) => "done",
            Err(RotationError::NeedsPerson(_)) => "needs-person",
            Err(_) => "failed",
        };
        count(Metric::RotationSteps, &[&event.step, outcome], 1);
        match &result {
            Ok(outcome) => {
                tracing::info!(step = %event.step, version = %event.token, ?outcome, "rotation step")
            }
            Err(e) => {
                tracing::error!(step = %event.step, version = %event.token, error = %e, "rotation step failed; AWSCURRENT is unchanged");
                if !matches!(e, RotationError::NeedsPerson(_)) {
                    let alert = Alert::new(
                        "secret-rotation-failed",
                        &format!("{}:{}:{}", event.secret_id, event.token, event.step),
                        Utc::now(),
                        Severity::High,
                        format!("Secret rotation failed at {}", event.step),
                        None,
                        format!(
                            "{e}. The current credential still works; Secrets Manager retries the step."
                        ),
                        json!({"secret": event.secret_id, "version": event.token, "step": event.step}),
                        vec![],
                        rotation_runbook(&event.step),
                    );
                    if let Err(alert_error) = Alerts::new(self.sink, self.store).raise(&alert).await
                    {
                        tracing::error!(error = %alert_error, "could not raise the rotation alert");
                    }
                }
            }
        }
        result
    }

    async fn step(&self, event: &RotationEvent) -> Result<StepOutcome, RotationError> {
        let d = self.secrets.describe(&event.secret_id).await?;
        if !d.rotation_enabled {
            return Err(RotationError::NotEnabled);
        }
        let stages = d
            .versions
            .get(&event.token)
            .ok_or_else(|| RotationError::UnknownVersion(event.token.clone()))?;
        let kind = d.tags.get(KIND_TAG).map(String::as_str);
        if stages.iter().any(|s| s == AWSCURRENT) {
            // A finishSecret retried after its promote but before its bookkeeping finished (a
            // crash or a failed write): finish the bookkeeping, which is idempotent.
            if event.step == "finishSecret"
                && kind == Some(KIND_SCIM_TOKEN)
                && self.finish_scim_bookkeeping(&event.token, d.version_with(AWSPREVIOUS)).await?
            {
                return Ok(StepOutcome::AlreadyDone);
            }
            return Ok(StepOutcome::AlreadyCurrent);
        }
        if !stages.iter().any(|s| s == AWSPENDING) {
            return Err(RotationError::NotPending(event.token.clone()));
        }
        let id = d.arn.as_str();
        match (kind, event.step.as_str()) {
            (Some(KIND_EVENT_HOOK), "createSecret") => {
                if self.pending_value(id, &event.token).await?.is_some() {
                    return Ok(StepOutcome::AlreadyDone);
                }
                let value = self.secrets.random_password(HOOK_SECRET_LENGTH).await?;
                self.secrets.put_pending(id, &event.token, &value).await?;
                Ok(StepOutcome::Done)
            }
            (Some(KIND_EVENT_HOOK), "setSecret") => {
                let hook = self
                    .event_hook_id
                    .ok_or(RotationError::Config("IDC_GUARD_OKTA_EVENT_HOOK_ID is not set"))?;
                let value = self.required_pending(id, &event.token).await?;
                self.okta.set_event_hook_secret(hook, &value).await?;
                self.okta_holds(&event.token).await?;
                Ok(StepOutcome::Done)
            }
            (Some(KIND_EVENT_HOOK), "testSecret") => {
                let hook = self
                    .event_hook_id
                    .ok_or(RotationError::Config("IDC_GUARD_OKTA_EVENT_HOOK_ID is not set"))?;
                // Okta calls the hook with the pending value, which the hook accepts (AWSPENDING).
                if self.okta.verify_event_hook(hook).await? {
                    Ok(StepOutcome::Done)
                } else {
                    Err(RotationError::Test(
                        "Okta did not verify the event hook with the pending value".into(),
                    ))
                }
            }
            (Some(KIND_SCIM_TOKEN), "createSecret") => {
                match self.pending_value(id, &event.token).await? {
                    Some(v) => {
                        ScimSecret::parse(&v).map_err(RotationError::BadSecret)?;
                        Ok(StepOutcome::AlreadyDone)
                    }
                    None => {
                        let message = "no SCIM token was staged for this rotation. Generate a token in the IAM Identity Center console (Settings > Identity source > Automatic provisioning > Generate token) and run `idc-guard scim-token stage`.";
                        self.needs_person(&event.token, "stage", message).await?;
                        Err(RotationError::NeedsPerson(message.into()))
                    }
                }
            }
            (Some(KIND_SCIM_TOKEN), "setSecret") => {
                let app = self
                    .okta_app_id
                    .ok_or(RotationError::Config("IDC_GUARD_OKTA_AWS_APP_ID is not set"))?;
                let pending = ScimSecret::parse(&self.required_pending(id, &event.token).await?)
                    .map_err(RotationError::BadSecret)?;
                // The token reaches Okta only once the SCIM endpoint has accepted it: a bad
                // token handed to Okta would stop provisioning, and Okta's 400 for it would
                // read as "use the console".
                self.probe_pending(&pending).await?;
                let token = SecretString::from(pending.token.clone());
                match self.okta.set_app_provisioning_token(app, &token).await {
                    Ok(()) => Ok(StepOutcome::Done),
                    Err(OktaError::Refused { status: 400 | 403 | 404 | 405 | 501, .. }) => {
                        let confirmed = ConfirmedByHand::key_of(&event.token);
                        if records::load::<ConfirmedByHand, _>(self.store, &confirmed)
                            .await?
                            .is_some()
                        {
                            return Ok(StepOutcome::AlreadyDone);
                        }
                        let message = "Okta does not accept the SCIM token through its API for this app. In the Okta Admin Console open Applications > AWS IAM Identity Center > Provisioning > Integration > Edit, paste the new token, Test API Credentials, Save; then run `idc-guard scim-token confirm`.";
                        self.needs_person(&event.token, "okta", message).await?;
                        Err(RotationError::NeedsPerson(message.into()))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            (Some(KIND_SCIM_TOKEN), "testSecret") => {
                let pending = ScimSecret::parse(&self.required_pending(id, &event.token).await?)
                    .map_err(RotationError::BadSecret)?;
                self.probe_pending(&pending).await?;
                Ok(StepOutcome::Done)
            }
            (Some(kind @ (KIND_EVENT_HOOK | KIND_SCIM_TOKEN)), "finishSecret") => {
                let previous = d.version_with(AWSCURRENT).map(str::to_owned);
                self.secrets.promote(id, &event.token, previous.as_deref()).await?;
                if kind == KIND_EVENT_HOOK {
                    self.okta_holds(&event.token).await?;
                }
                if kind == KIND_SCIM_TOKEN {
                    self.finish_scim_bookkeeping(&event.token, previous.as_deref()).await?;
                }
                Ok(StepOutcome::Done)
            }
            (None | Some(_), step)
                if !matches!(
                    step,
                    "createSecret" | "setSecret" | "testSecret" | "finishSecret"
                ) =>
            {
                Err(RotationError::UnknownStep(step.to_owned()))
            }
            (kind, _) => Err(RotationError::UnknownKind(kind.map(str::to_owned))),
        }
    }

    /// Sets Okta's event hook back to the hook secret's AWSCURRENT value when Okta was last
    /// given a version that is neither AWSCURRENT nor AWSPENDING (a rotation cancelled after
    /// setSecret): until then the hook refuses every delivery with 401 and Okta does not retry.
    /// Returns the version Okta held when it restored, `None` when nothing was wrong.
    pub async fn restore_hook_secret(
        &self,
        secret_id: &str,
    ) -> Result<Option<String>, RotationError> {
        let Some(holds) = records::load::<OktaHolds, _>(self.store, &OktaHolds::key()).await?
        else {
            return Ok(None);
        };
        let d = self.secrets.describe(secret_id).await?;
        let stages = d.versions.get(&holds.version);
        let live = stages.is_some_and(|s| s.iter().any(|l| l == AWSCURRENT || l == AWSPENDING));
        if live {
            return Ok(None);
        }
        let hook = self
            .event_hook_id
            .ok_or(RotationError::Config("IDC_GUARD_OKTA_EVENT_HOOK_ID is not set"))?;
        let current_version = d
            .version_with(AWSCURRENT)
            .ok_or_else(|| RotationError::BadSecret("the hook secret has no AWSCURRENT".into()))?
            .to_owned();
        let current = self
            .secrets
            .secret_string(&d.arn, AWSCURRENT)
            .await?
            .ok_or_else(|| RotationError::BadSecret("the hook secret has no value".into()))?;
        self.okta.set_event_hook_secret(hook, &current).await?;
        self.okta_holds(&current_version).await?;
        let alert = Alert::new(
            "secret-rotation-failed",
            &format!("restored:{}", holds.version),
            Utc::now(),
            Severity::High,
            "Okta's event hook was set back to the current hook secret",
            None,
            format!(
                "A hook-secret rotation was cancelled after Okta received version {} (now neither AWSCURRENT nor AWSPENDING). Okta held a value the hook no longer accepts, so deliveries since then were refused with 401 and are only in Okta's System Log. Okta now has AWSCURRENT again.",
                holds.version
            ),
            json!({"secret": d.arn, "okta_held_version": holds.version, "restored_version": current_version, "okta_held_since": holds.at}),
            vec![],
            "Check Okta's System Log for events between the cancel and now (deliveries refused with 401 are not retried) and re-run what they should have triggered: `idc-guard plan`/`apply` reconciles access. Next time, let a failed rotation be retried, or set Okta back to AWSCURRENT before cancelling.",
        );
        Alerts::new(self.sink, self.store).raise(&alert).await?;
        Ok(Some(holds.version))
    }

    /// Records that Okta now holds `version` of the hook secret.
    async fn okta_holds(&self, version: &str) -> Result<(), AwsError> {
        records::save(self.store, &OktaHolds { version: version.to_owned(), at: Utc::now() }).await
    }

    /// After a SCIM token became AWSCURRENT: the rotation record the daily check reads, and the
    /// reminder to delete the old token. Idempotent; `true` when it had anything left to do.
    async fn finish_scim_bookkeeping(
        &self,
        version: &str,
        previous: Option<&str>,
    ) -> Result<bool, RotationError> {
        let recorded: Option<ScimRotation> =
            records::load(self.store, &ScimRotation::key()).await?;
        let record_done = recorded.as_ref().is_some_and(|r| r.version == version);
        let previous = match recorded {
            Some(r) if record_done => r.previous,
            _ => {
                let previous = previous.map(str::to_owned);
                let record = ScimRotation {
                    version: version.to_owned(),
                    previous: previous.clone(),
                    finished_at: Utc::now(),
                };
                records::save(self.store, &record).await?;
                previous
            }
        };
        let alert = Alert::new(
            "scim-token-needs-person",
            &format!("delete-old:{version}"),
            Utc::now(),
            Severity::Info,
            "SCIM token rotated: delete the old token in IAM Identity Center",
            None,
            "The new SCIM token is current and provisioning uses it. IAM Identity Center allows two tokens: delete the previous one now.",
            json!({"version": version, "previous_version": previous}),
            vec![],
            "IAM Identity Center console > Settings > Identity source > Automatic provisioning > Manage tokens: delete the older token. The daily check alerts if it still works after 24 hours.",
        );
        let sent = Alerts::new(self.sink, self.store).raise(&alert).await?;
        Ok(!record_done || sent)
    }

    /// The staged token against the SCIM endpoint: anything but an accepted probe is an error.
    async fn probe_pending(&self, pending: &ScimSecret) -> Result<(), RotationError> {
        match self
            .probe
            .probe(&pending.scim_endpoint, &SecretString::from(pending.token.clone()))
            .await
        {
            Probe::Valid => Ok(()),
            Probe::Rejected(status) => Err(RotationError::Test(format!(
                "the SCIM endpoint rejected the pending token ({status}): stage a token generated in the IAM Identity Center console"
            ))),
            Probe::Inconclusive(why) => {
                Err(RotationError::Test(format!("the SCIM endpoint could not be probed: {why}")))
            }
        }
    }

    async fn pending_value(
        &self,
        id: &str,
        token: &str,
    ) -> Result<Option<SecretString>, RotationError> {
        use crate::secret::ExposeSecret;
        Ok(self.secrets.version_value(id, token).await?.filter(|v| !v.expose_secret().is_empty()))
    }

    async fn required_pending(&self, id: &str, token: &str) -> Result<SecretString, RotationError> {
        self.pending_value(id, token).await?.ok_or_else(|| {
            RotationError::BadSecret(
                "the pending version has no value: createSecret has not completed".into(),
            )
        })
    }

    async fn needs_person(
        &self,
        token: &str,
        what: &str,
        message: &str,
    ) -> Result<(), RotationError> {
        let alert = Alert::new(
            "scim-token-needs-person",
            &format!("{what}:{token}"),
            Utc::now(),
            Severity::High,
            "SCIM token rotation is waiting for a person",
            None,
            message,
            json!({"version": token, "waiting_for": what}),
            vec![],
            message,
        );
        Alerts::new(self.sink, self.store).raise(&alert).await?;
        Ok(())
    }
}

/// The state key `idc-guard scim-token confirm` writes for a pending version.
/// What a person does when a rotation step failed. For the hook secret after setSecret Okta
/// already holds the pending value: cancelling first would make the hook refuse Okta.
fn rotation_runbook(step: &str) -> &'static str {
    match step {
        "setSecret" | "testSecret" => {
            "Read the rotation function's log for the step and fix the cause (Okta API token, hook or app id, SCIM endpoint); Secrets Manager retries the step. Do not cancel an event-hook rotation while Okta may hold the pending value: set the Okta event hook's Authorization value back to the secret's AWSCURRENT value first (Workflow > Event Hooks > edit), then `aws secretsmanager cancel-rotate-secret`. The function also does this by itself within 15 minutes of a cancel."
        }
        _ => {
            "Read the rotation function's log for the step. Fix the cause (Okta API token, hook or app id, SCIM endpoint); Secrets Manager retries the step. Cancelling is safe before setSecret: `aws secretsmanager cancel-rotate-secret`."
        }
    }
}

#[cfg(test)]
#[path = "rotation_tests.rs"]
mod tests;
