//! Rotation steps against an in-memory Secrets Manager that models what the local stand-in
//! cannot: RotateSecret registers the new version id as AWSPENDING with no value yet.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::adapters::SqliteStateStore;
use crate::scim::ports::{Probe, ScimProbe};
use crate::scim::{KIND_EVENT_HOOK, KIND_SCIM_TOKEN};
use crate::secret::ExposeSecret;
use crate::secret::{SecretDescription, SecretStore, SecretVersions};

#[derive(Default)]
struct Versions {
    enabled: bool,
    kind: String,
    /// version → (value, stages)
    versions: BTreeMap<String, (Option<String>, Vec<String>)>,
}

struct FakeSecrets(Mutex<Versions>);

impl FakeSecrets {
    /// A secret with `current`, and a rotation started for version "v2" (AWSPENDING, no value).
    fn rotating(kind: &str, current: &str) -> Self {
        let mut v = Versions { enabled: true, kind: kind.into(), ..Default::default() };
        v.versions.insert("v1".into(), (Some(current.into()), vec![AWSCURRENT.into()]));
        v.versions.insert("v2".into(), (None, vec![AWSPENDING.into()]));
        FakeSecrets(Mutex::new(v))
    }
    fn value(&self, version: &str) -> Option<String> {
        self.0.lock().unwrap().versions.get(version).and_then(|(v, _)| v.clone())
    }
    fn current(&self) -> Option<String> {
        let v = self.0.lock().unwrap();
        v.versions
            .values()
            .find(|(_, s)| s.iter().any(|x| x == AWSCURRENT))
            .and_then(|(v, _)| v.clone())
    }
}

impl SecretStore for FakeSecrets {
    async fn secret_string(&self, _: &str, stage: &str) -> Result<Option<SecretString>, AwsError> {
        let v = self.0.lock().unwrap();
        Ok(v.versions
            .values()
            .find(|(_, s)| s.iter().any(|x| x == stage))
            .and_then(|(v, _)| v.clone())
            .map(SecretString::from))
    }
}

impl SecretVersions for FakeSecrets {
    async fn describe(&self, _: &str) -> Result<SecretDescription, AwsError> {
        let v = self.0.lock().unwrap();
        Ok(SecretDescription {
            arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:s".into(),
            rotation_enabled: v.enabled,
            versions: v.versions.iter().map(|(k, (_, s))| (k.clone(), s.clone())).collect(),
            tags: BTreeMap::from([(KIND_TAG.to_owned(), v.kind.clone())]),
        })
    }
    async fn version_value(
        &self,
        _: &str,
        version: &str,
    ) -> Result<Option<SecretString>, AwsError> {
        Ok(self.value(version).map(SecretString::from))
    }
}

impl SecretAdmin for FakeSecrets {
    async fn put_pending(
        &self,
        _: &str,
        version: &str,
        value: &SecretString,
    ) -> Result<(), AwsError> {
        let mut v = self.0.lock().unwrap();
        let entry = v.versions.entry(version.into()).or_insert((None, vec![]));
        if entry.0.as_deref().is_some_and(|old| old != value.expose_secret()) {
            return Err(AwsError::Permanent {
                service: "secretsmanager",
                operation: "PutSecretValue",
                message: "ResourceExistsException".into(),
            });
        }
        entry.0 = Some(value.expose_secret().to_owned());
        entry.1 = vec![AWSPENDING.into()];
        Ok(())
    }
    async fn promote(&self, _: &str, to: &str, from: Option<&str>) -> Result<(), AwsError> {
        let mut v = self.0.lock().unwrap();
        for (id, (_, stages)) in v.versions.iter_mut() {
            stages.retain(|s| s != AWSPREVIOUS);
            if Some(id.as_str()) == from {
                stages.retain(|s| s != AWSCURRENT);
                stages.push(AWSPREVIOUS.into());
            }
            if id == to {
                stages.retain(|s| s != AWSPENDING);
                stages.push(AWSCURRENT.into());
            }
        }
        Ok(())
    }
    async fn random_password(&self, length: i64) -> Result<SecretString, AwsError> {
        Ok(SecretString::from((0..length).map(|_| fastrand::alphanumeric()).collect::<String>()))
    }
    async fn start_rotation(&self, _: &str, _: &str) -> Result<(), AwsError> {
        Ok(())
    }
}

#[derive(Default)]
struct FakeOkta {
    hook_values: Mutex<Vec<String>>,
    /// What verification answers (default: verified).
    verified: Mutex<Option<bool>>,
}

impl OktaApi for FakeOkta {
    async fn set_event_hook_secret(&self, _: &str, value: &SecretString) -> Result<(), OktaError> {
        self.hook_values.lock().unwrap().push(value.expose_secret().to_owned());
        Ok(())
    }
    async fn verify_event_hook(&self, _: &str) -> Result<bool, OktaError> {
        Ok(self.verified.lock().unwrap().unwrap_or(true))
    }
    async fn set_app_provisioning_token(&self, _: &str, _: &SecretString) -> Result<(), OktaError> {
        Ok(())
    }
}

struct ValidProbe;
impl ScimProbe for ValidProbe {
    async fn probe(&self, _: &str, _: &SecretString) -> Probe {
        Probe::Valid
    }
}

#[derive(Default)]
struct Sink(Mutex<Vec<Alert>>);
impl AlertSink for Sink {
    async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
        self.0.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

fn store() -> SqliteStateStore {
    SqliteStateStore::in_memory().unwrap()
}

/// A rotator over the fakes, with the Okta event hook and AWS app ids both configured.
fn rotator<'a, K: AlertSink>(
    secrets: &'a FakeSecrets,
    okta: &'a FakeOkta,
    sink: &'a K,
    store: &'a SqliteStateStore,
) -> Rotator<'a, FakeSecrets, FakeOkta, ValidProbe, K, SqliteStateStore> {
    Rotator {
        secrets,
        okta,
        probe: &ValidProbe,
        sink,
        store,
        event_hook_id: Some("whk1"),
        okta_app_id: Some("0oa1"),
    }
}

fn event(step: &str, token: &str) -> RotationEvent {
    RotationEvent { step: step.into(), secret_id: "s".into(), token: token.into() }
}

#[tokio::test]
async fn the_event_hook_secret_is_generated_set_tested_and_promoted_each_step_repeatable() {
    let secrets = FakeSecrets::rotating(KIND_EVENT_HOOK, "Bearer old");
    let (okta, sink, store) = (FakeOkta::default(), Sink::default(), store());
    let r = rotator(&secrets, &okta, &sink, &store);
    assert_eq!(r.rotate(&event("createSecret", "v2")).await.unwrap(), StepOutcome::Done);
    let generated = secrets.value("v2").unwrap();
    assert_eq!(generated.len(), 64);
    assert!(generated.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(r.rotate(&event("createSecret", "v2")).await.unwrap(), StepOutcome::AlreadyDone);
    assert_eq!(secrets.value("v2").unwrap(), generated, "a repeated createSecret keeps the value");
    for step in ["setSecret", "setSecret", "testSecret", "testSecret"] {
        assert_eq!(r.rotate(&event(step, "v2")).await.unwrap(), StepOutcome::Done);
        assert_eq!(secrets.current().as_deref(), Some("Bearer old"));
    }
    assert_eq!(okta.hook_values.lock().unwrap().as_slice(), [generated.clone(), generated.clone()]);
    assert_eq!(r.rotate(&event("finishSecret", "v2")).await.unwrap(), StepOutcome::Done);
    assert_eq!(secrets.current(), Some(generated));
    assert_eq!(r.rotate(&event("finishSecret", "v2")).await.unwrap(), StepOutcome::AlreadyCurrent);
    assert!(sink.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_scim_rotation_with_nothing_staged_asks_a_person_once() {
    let secrets = FakeSecrets::rotating(
        KIND_SCIM_TOKEN,
        r#"{"token":"t","scim_endpoint":"https://scim.us-east-1.amazonaws.com/x/scim/v2"}"#,
    );
    let (okta, sink, store) = (FakeOkta::default(), Sink::default(), store());
    let r = rotator(&secrets, &okta, &sink, &store);
    for _ in 0..2 {
        let e = r.rotate(&event("createSecret", "v2")).await.unwrap_err();
        assert!(e.to_string().contains("idc-guard scim-token stage"), "{e}");
    }
    let alerts = sink.0.lock().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].detector, "scim-token-needs-person");
    assert!(secrets.value("v2").is_none(), "nothing invented");
}

#[tokio::test]
async fn the_protocol_preconditions_are_enforced() {
    let secrets = FakeSecrets::rotating(KIND_EVENT_HOOK, "Bearer old");
    let (okta, sink, store) = (FakeOkta::default(), Sink::default(), store());
    let r = rotator(&secrets, &okta, &sink, &store);
    assert!(matches!(
        r.rotate(&event("createSecret", "nope")).await,
        Err(RotationError::UnknownVersion(_))
    ));
    assert!(matches!(r.rotate(&event("setSecret", "v1")).await, Ok(StepOutcome::AlreadyCurrent)));
    secrets
        .0
        .lock()
        .unwrap()
        .versions
        .insert("v0".into(), (Some("x".into()), vec![AWSPREVIOUS.into()]));
    assert!(matches!(r.rotate(&event("setSecret", "v0")).await, Err(RotationError::NotPending(_))));
    assert!(matches!(
        r.rotate(&event("dropSecret", "v2")).await,
        Err(RotationError::UnknownStep(_))
    ));
    assert!(
        matches!(r.rotate(&event("setSecret", "v2")).await, Err(RotationError::BadSecret(_))),
        "set before create"
    );
    secrets.0.lock().unwrap().kind = "something-else".into();
    assert!(matches!(
        r.rotate(&event("createSecret", "v2")).await,
        Err(RotationError::UnknownKind(_))
    ));
    secrets.0.lock().unwrap().enabled = false;
    assert!(matches!(r.rotate(&event("createSecret", "v2")).await, Err(RotationError::NotEnabled)));
    assert_eq!(secrets.current().as_deref(), Some("Bearer old"));
    assert!(sink.0.lock().unwrap().iter().all(|a| a.detector == "secret-rotation-failed"));
}

#[tokio::test]
async fn a_hook_rotation_cancelled_after_set_secret_puts_okta_back_on_awscurrent() {
    // Defect: cancelling after setSecret removed AWSPENDING while Okta held it: every delivery
    // was refused with 401 (Okta never retries a 4xx), and the runbook said to cancel.
    let secrets = FakeSecrets::rotating(KIND_EVENT_HOOK, "Bearer old");
    let (okta, sink, store) = (FakeOkta::default(), Sink::default(), store());
    let r = rotator(&secrets, &okta, &sink, &store);
    r.rotate(&event("createSecret", "v2")).await.unwrap();
    r.rotate(&event("setSecret", "v2")).await.unwrap();
    let pending = secrets.value("v2").unwrap();
    assert_eq!(okta.hook_values.lock().unwrap().last(), Some(&pending));
    assert_eq!(r.restore_hook_secret("s").await.unwrap(), None, "in progress: nothing to do");
    // A person cancels the rotation: v2 loses AWSPENDING while Okta holds its value.
    secrets.0.lock().unwrap().versions.get_mut("v2").unwrap().1.clear();
    assert_eq!(r.restore_hook_secret("s").await.unwrap().as_deref(), Some("v2"));
    assert_eq!(okta.hook_values.lock().unwrap().last().map(String::as_str), Some("Bearer old"));
    assert_eq!(r.restore_hook_secret("s").await.unwrap(), None, "done once");
    let alerts = sink.0.lock().unwrap();
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].title.contains("set back"), "{}", alerts[0].title);
}

#[tokio::test]
async fn a_failed_hook_set_or_test_step_says_to_restore_okta_before_cancelling() {
    let secrets = FakeSecrets::rotating(KIND_EVENT_HOOK, "Bearer old");
    let (okta, sink, store) = (FakeOkta::default(), Sink::default(), store());
    let r = rotator(&secrets, &okta, &sink, &store);
    r.rotate(&event("createSecret", "v2")).await.unwrap();
    r.rotate(&event("setSecret", "v2")).await.unwrap();
    *okta.verified.lock().unwrap() = Some(false);
    assert!(r.rotate(&event("testSecret", "v2")).await.is_err());
    let alerts = sink.0.lock().unwrap();
    assert_eq!(alerts[0].detector, "secret-rotation-failed");
    assert!(
        alerts[0].runbook.contains("back to the secret's AWSCURRENT value first"),
        "{}",
        alerts[0].runbook
    );
}

/// A sink that refuses its first `n` alerts.
struct FailFirst(std::sync::atomic::AtomicUsize, Sink);
impl AlertSink for FailFirst {
    async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
        use std::sync::atomic::Ordering;
        if self.0.load(Ordering::SeqCst) > 0 {
            self.0.fetch_sub(1, Ordering::SeqCst);
            return Err(AwsError::Retryable {
                service: "sns",
                operation: "Publish",
                message: "down".into(),
            });
        }
        self.1.send(alert).await
    }
}

#[tokio::test]
async fn finish_secret_retried_after_a_half_done_promote_completes_its_bookkeeping() {
    // Defect: the promote succeeded, the bookkeeping after it failed (here: the alert sink is
    // down), and the retry saw the version already AWSCURRENT and skipped the bookkeeping: no
    // rotation record for the daily check, no "delete the old token" reminder.
    let secrets = FakeSecrets::rotating(
        KIND_SCIM_TOKEN,
        r#"{"token":"old","scim_endpoint":"https://scim.us-east-1.amazonaws.com/x/scim/v2"}"#,
    );
    let staged =
        r#"{"token":"new","scim_endpoint":"https://scim.us-east-1.amazonaws.com/x/scim/v2"}"#;
    secrets.put_pending("s", "v2", &SecretString::from(staged.to_owned())).await.unwrap();
    let (okta, store) = (FakeOkta::default(), store());
    let sink = FailFirst(std::sync::atomic::AtomicUsize::new(2), Sink::default());
    let r = rotator(&secrets, &okta, &sink, &store);
    assert!(
        r.rotate(&event("finishSecret", "v2")).await.is_err(),
        "the reminder could not be sent"
    );
    assert_eq!(secrets.current().as_deref(), Some(staged), "the promote itself happened");
    assert_eq!(
        r.rotate(&event("finishSecret", "v2")).await.unwrap(),
        StepOutcome::AlreadyDone,
        "the retry finishes the bookkeeping"
    );
    let record: ScimRotation = records::load(&store, &ScimRotation::key()).await.unwrap().unwrap();
    assert_eq!((record.version.as_str(), record.previous.as_deref()), ("v2", Some("v1")));
    let reminders: Vec<_> = sink.1.0.lock().unwrap().iter().map(|a| a.detector.clone()).collect();
    assert_eq!(reminders, ["scim-token-needs-person"]);
    assert_eq!(r.rotate(&event("finishSecret", "v2")).await.unwrap(), StepOutcome::AlreadyCurrent);
    assert_eq!(sink.1.0.lock().unwrap().len(), 1, "sent once");
}

#[test]
fn reminder_thresholds() {
    use crate::scim::health::reminder_threshold;
    let due = chrono::Utc::now() + chrono::Duration::days(10);
    let now = chrono::Utc::now();
    assert_eq!(reminder_threshold(now, due, &[14, 7, 1]), Some(14));
    assert_eq!(reminder_threshold(now + chrono::Duration::days(4), due, &[14, 7, 1]), Some(7));
    assert_eq!(reminder_threshold(now - chrono::Duration::days(5), due, &[14, 7, 1]), None);
    assert_eq!(reminder_threshold(now + chrono::Duration::days(11), due, &[14, 7, 1]), Some(0));
}

const SCIM_OLD: &str =
    r#"{"token":"old","scim_endpoint":"https://scim.us-east-1.amazonaws.com/x/scim/v2"}"#;
const SCIM_NEW: &str =
    r#"{"token":"new","scim_endpoint":"https://scim.us-east-1.amazonaws.com/x/scim/v2"}"#;
const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

/// One rotation of `kind` whose step `faulted` runs with `faults` armed at `arm`; Secrets
/// Manager then retries that step with healthy ports until it succeeds, and the later steps run.
/// Checks after the faulted step that AWSCURRENT still holds a working value and (hook secret)
/// that Okta holds a value the endpoint accepts; returns the final AWSCURRENT, the ids of the
/// alerts sent, the calls the faulted step made and the call that failed.
async fn rotate_with_faults(
    kind: &str,
    faulted: usize,
    faults: &crate::testing::faults::Faults,
    arm: Option<(usize, crate::testing::faults::Fault)>,
) -> (String, String, Vec<String>, usize, Option<(&'static str, crate::testing::faults::Fault)>) {
    use crate::testing::faults::Faulty;
    let old = if kind == KIND_SCIM_TOKEN { SCIM_OLD } else { "Bearer old" };
    let fake = FakeSecrets::rotating(kind, old);
    if kind == KIND_SCIM_TOKEN {
        // A person staged the new token (`idc-guard scim-token stage`).
        fake.put_pending("s", "v2", &SecretString::from(SCIM_NEW.to_owned())).await.unwrap();
    }
    let secrets = Faulty::new(fake, faults);
    let okta = Faulty::new(FakeOkta::default(), faults);
    let probe = Faulty::new(ValidProbe, faults);
    let sink = Faulty::new(Sink::default(), faults);
    let store = Faulty::new(store(), faults);
    let r = Rotator {
        secrets: &secrets,
        okta: &okta,
        probe: &probe,
        sink: &sink,
        store: &store,
        event_hook_id: Some("whk1"),
        okta_app_id: Some("0oa1"),
    };
    let (mut calls, mut hit) = (0, None);
    for (i, step) in STEPS.iter().enumerate() {
        if i != faulted {
            r.rotate(&event(step, "v2")).await.unwrap_or_else(|e| panic!("{step}: {e}"));
            continue;
        }
        match arm {
            Some((n, fault)) => faults.arm(n, fault),
            None => faults.disarm(),
        }
        let first =
            tokio::time::timeout(Duration::from_secs(60), r.rotate(&event(step, "v2"))).await;
        (calls, hit) = (faults.calls(), faults.hit());
        faults.disarm();
        let current = secrets.inner.current().expect("AWSCURRENT always has a value");
        let pending = secrets.inner.value("v2");
        assert!(current == old || Some(&current) == pending.as_ref(), "AWSCURRENT is old or new");
        if kind == KIND_EVENT_HOOK
            && let Some(okta_holds) = okta.inner.hook_values.lock().unwrap().last()
        {
            assert!(
                *okta_holds == current || Some(okta_holds) == pending.as_ref(),
                "Okta holds a value the hook refuses"
            );
        }
        if !matches!(first, Ok(Ok(_))) {
            let mut attempts = 0;
            while let Err(e) = r.rotate(&event(step, "v2")).await {
                attempts += 1;
                assert!(attempts < 3, "{step} still failing after Secrets Manager's retries: {e}");
            }
        }
    }
    let alerts = sink.inner.0.lock().unwrap().iter().map(|a| a.id.clone()).collect();
    let pending = secrets.inner.value("v2").expect("the new version keeps its value");
    (secrets.inner.current().unwrap(), pending, alerts, calls, hit)
}

/// Fault sweep of each rotation step of both kinds: the N-th call of the step fails with each
/// fault, Secrets Manager retries the step with healthy ports, the remaining steps run. AWSCURRENT
/// is never lost, Okta never holds a value the hook refuses, the rotation completes with the new
/// value, and an alert is sent twice only after a lost acceptance.
#[tokio::test(start_paused = true)]
async fn fault_sweep_every_rotation_step_keeps_awscurrent_and_completes_on_retry() {
    use crate::testing::faults::{ALL_FAULTS, Fault, Faults};
    for kind in [KIND_EVENT_HOOK, KIND_SCIM_TOKEN] {
        for (faulted, step) in STEPS.iter().enumerate() {
            let (current, new, alerts, calls, _) =
                rotate_with_faults(kind, faulted, &Faults::default(), None).await;
            assert_eq!(current, new);
            let healthy_alerts = alerts;
            assert!(calls >= 1);
            for n in 1..=calls {
                for fault in ALL_FAULTS {
                    let case = format!("{kind} {step} call {n} {fault:?}");
                    let (current, new, alerts, _, hit) =
                        rotate_with_faults(kind, faulted, &Faults::default(), Some((n, fault)))
                            .await;
                    assert!(hit.is_some(), "{case}: the armed call never happened");
                    assert_eq!(current, new, "{case} ({hit:?}): the rotation completed");
                    for id in &healthy_alerts {
                        assert!(alerts.contains(id), "{case}: alert {id} missed");
                    }
                    let unique: BTreeSet<&String> = alerts.iter().collect();
                    let lost_acceptance = matches!(
                        hit,
                        Some(("send_part", Fault::Timeout) | ("put", Fault::Error | Fault::Drop))
                    );
                    assert!(
                        unique.len() == alerts.len() || lost_acceptance,
                        "{case} ({hit:?}): an alert was sent twice: {alerts:?}"
                    );
                }
            }
        }
    }
}
