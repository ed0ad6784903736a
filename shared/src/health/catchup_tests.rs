//! The System Log catch-up on its bad days: a large backlog after an outage, a cursor older than
//! access-sync's memory, an Okta that cannot be read for hours, and provisioning failures of
//! other apps when the AWS app's id is not configured.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::*;
use crate::adapters::SqliteStateStore;
use crate::health::settings::HealthSettings;
use crate::health::{Doctor, HealthError};
use crate::okta::ports::OktaError;
use crate::records::{self, HealthCheckState, SystemLogCheckpoint};
use crate::store::{Item, StateStore};
use crate::testing::FakeIdentityCenter;
use crate::testing::faults::{RecordingQueue, RecordingSink};

const AWS_APP: &str = "0oa1b2c3d4e5AWSidc";
const SLACK_APP: &str = "0oa9slack000APPid7";
const DEACTIVATE: &str = include_str!("../../../events/okta/user-lifecycle-deactivate.json");
const PUSH_FAILED: &str =
    include_str!("../../../events/okta/application-provision-group-push-failed.json");

fn now() -> DateTime<Utc> {
    "2026-11-28T06:00:00Z".parse().unwrap()
}

/// The fixture's event with its own uuid and time.
fn event(fixture: &str, uuid: &str, published: DateTime<Utc>) -> Value {
    let envelope: Value = serde_json::from_str(fixture).unwrap();
    let mut e = envelope["data"]["events"][0].clone();
    e["uuid"] = json!(uuid);
    e["published"] = json!(published.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    e
}

/// Okta's System Log in polling mode, pages served in order (`/page/N` links, an empty last
/// page that links to itself), and the apps list; every path asked is recorded.
#[derive(Default)]
struct SystemLog {
    pages: Vec<Vec<Value>>,
    apps: Vec<Value>,
    down: std::sync::atomic::AtomicBool,
    asked: Mutex<Vec<String>>,
}

impl OktaReader for &SystemLog {
    async fn get_json(&self, path: &str) -> Result<Value, OktaError> {
        self.asked.lock().unwrap().push(path.to_owned());
        Err(OktaError::Refused { status: 404, summary: "not found".into() })
    }
    async fn get_list(&self, path: &str) -> Result<Vec<Value>, OktaError> {
        self.asked.lock().unwrap().push(path.to_owned());
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(OktaError::Refused { status: 401, summary: "Invalid token".into() });
        }
        // Okta applies the list's filter: `name eq "amazon_aws_sso"`.
        let by_name = path.contains(&crate::health::urlencode("name eq \"amazon_aws_sso\""));
        Ok(self
            .apps
            .iter()
            .filter(|a| !by_name || a["name"] == "amazon_aws_sso")
            .cloned()
            .collect())
    }
    async fn get_page(&self, path: &str) -> Result<(Vec<Value>, Option<String>), OktaError> {
        self.asked.lock().unwrap().push(path.to_owned());
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(OktaError::Refused { status: 401, summary: "Invalid token".into() });
        }
        let n: usize = path.strip_prefix("/page/").and_then(|n| n.parse().ok()).unwrap_or(0);
        let page = self.pages.get(n).cloned().unwrap_or_default();
        let next = if page.is_empty() { n } else { n + 1 };
        Ok((page, Some(format!("/page/{next}"))))
    }
}

fn aws_app() -> Value {
    json!({"id": AWS_APP, "name": "amazon_aws_sso", "label": "AWS IAM Identity Center", "status": "ACTIVE"})
}

struct Stand {
    store: SqliteStateStore,
    idc: FakeIdentityCenter,
    sink: &'static RecordingSink,
    queue: &'static RecordingQueue,
    settings: HealthSettings,
}

impl Stand {
    fn new() -> Self {
        Self {
            store: SqliteStateStore::in_memory().unwrap(),
            idc: FakeIdentityCenter::new(),
            sink: Box::leak(Box::new(RecordingSink::new("test"))),
            queue: Box::leak(Box::default()),
            settings: HealthSettings {
                okta_aws_app_id: Some(AWS_APP.into()),
                ..HealthSettings::default()
            },
        }
    }

    fn doctor<'a>(
        &'a self,
        okta: &'a &'a SystemLog,
    ) -> Doctor<
        'a,
        &'a SystemLog,
        FakeIdentityCenter,
        SqliteStateStore,
        &'static RecordingSink,
        &'static RecordingQueue,
    > {
        Doctor {
            okta,
            idc: &self.idc,
            store: &self.store,
            sink: &self.sink,
            queue: Some(&self.queue),
            settings: &self.settings,
            instance_arn: None,
            report_only: false,
        }
    }
}

#[tokio::test]
async fn a_2000_event_backlog_is_caught_up_in_order_with_nothing_lost_or_replayed() {
    // Defect: every missed event of a page went into one envelope capped at 1 MiB; a page of
    // a thousand real-sized events exceeded it, the check became "could not be checked" and
    // the cursor never moved again.
    let start = now() - Duration::hours(6);
    let events: Vec<Value> = (0..2_000)
        .map(|i| event(DEACTIVATE, &format!("backlog{i:05}"), start + Duration::seconds(i)))
        .collect();
    let page_bytes: usize = events[..1000].iter().map(|e| e.to_string().len()).sum();
    assert!(page_bytes > 1024 * 1024, "a page is more than one envelope could hold: {page_bytes}");
    let okta = &SystemLog {
        pages: vec![events[..1000].to_vec(), events[1000..].to_vec()],
        ..Default::default()
    };
    let stand = Stand::new();
    // The hook delivered every tenth event and access-sync processed it.
    for e in events.iter().step_by(10) {
        let uuid = e["uuid"].as_str().unwrap();
        stand
            .store
            .put(Item::new(records::EVENT_CLAIM_PK, uuid, json!({"status": "done"})))
            .await
            .unwrap();
    }
    let check = stand.doctor(&okta).catch_up(now()).await;
    assert!(!check.could_not_check, "{check:?}");
    assert_eq!(check.status, Status::Warn);
    assert!(
        check.summary.starts_with("1800 event(s) never reached access-sync"),
        "{}",
        check.summary
    );
    let expected: Vec<String> = events
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 0)
        .map(|(_, e)| e["uuid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stand.queue.ids(), expected, "every missed event, each once, oldest first");
    assert!(stand.queue.accepted.lock().unwrap().iter().all(|m| m.body.len() < 256 * 1024));
    let cursor: SystemLogCheckpoint =
        records::load(&stand.store, &SystemLogCheckpoint::key()).await.unwrap().unwrap();
    assert_eq!(cursor.next, "/page/2");

    // The next run starts at the cursor: nothing is queued again.
    let check = stand.doctor(&okta).catch_up(now() + Duration::minutes(5)).await;
    assert_eq!(check.status, Status::Pass, "{check:?}");
    assert_eq!(stand.queue.ids().len(), expected.len());
}

#[tokio::test]
async fn a_cursor_older_than_the_claim_memory_restarts_and_alerts_the_gap_and_never_replays() {
    // Defect: the 7-day cap applied to the first read only; after a longer pause the old cursor
    // re-queued lifecycle events whose claims had expired, and access-sync applied them again.
    let stand = Stand::new();
    let paused_at = now() - Duration::days(10);
    let stale = SystemLogCheckpoint { next: "/page/0".into(), saved_at: Some(paused_at) };
    records::save(&stand.store, &stale).await.unwrap();
    let old = event(DEACTIVATE, "old-reactivate", now() - Duration::days(9));
    let recent = event(DEACTIVATE, "recent-deactivate", now() - Duration::days(1));
    let okta = &SystemLog { pages: vec![vec![old.clone(), recent.clone()]], ..Default::default() };

    let check = stand.doctor(&okta).catch_up(now()).await;
    let first = okta.asked.lock().unwrap()[0].clone();
    let since = oldest_replayable(now());
    assert!(first.starts_with("/api/v1/logs?since="), "restarted from a first page: {first}");
    assert!(
        first.contains(&crate::health::urlencode(
            &since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )),
        "{first}"
    );
    // Whatever Okta returns, an event older than the claim memory is never queued.
    assert_eq!(stand.queue.ids(), ["recent-deactivate"]);
    assert!(check.evidence.iter().any(|e| e.contains("1 unprocessed event(s) older")), "{check:?}");
    assert!(check.evidence.iter().any(|e| e.contains("restarted")), "{check:?}");
    let gap: Vec<String> = stand.sink.sent();
    assert_eq!(gap.len(), 1, "{gap:?}");
    assert!(gap[0].starts_with(STALLED), "{gap:?}");
    // Saved again, the cursor is fresh: the next run neither restarts nor alerts again.
    stand.doctor(&okta).catch_up(now() + Duration::minutes(5)).await;
    assert_eq!(stand.sink.sent().len(), 1);
}

#[tokio::test]
async fn a_catch_up_that_cannot_read_okta_for_an_hour_alerts_once_and_fails_the_run() {
    // Defect: a revoked Okta credential made the catch-up "could not be checked" (a warning, no
    // alert) every five minutes, the function succeeded, and no alarm ever fired.
    let stand = Stand::new();
    let okta = &SystemLog::default();
    okta.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let doctor = stand.doctor(&okta);
    let run = |minutes: i64| {
        let doctor = &doctor;
        async move {
            doctor.handle(&json!({"check": "catch-up"}), now() + Duration::minutes(minutes)).await
        }
    };
    for minutes in [0, 30, 60] {
        assert!(run(minutes).await.is_ok(), "within the hour: a warning, not an error");
    }
    assert!(stand.sink.sent().is_empty());
    let err = run(65).await.unwrap_err();
    assert!(matches!(err, HealthError::Stalled { check: ID, .. }), "{err}");
    let diagnostic: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "HealthCheckStalled");
    assert_eq!(stand.sink.sent().len(), 1, "alerted once");
    assert!(stand.sink.sent()[0].starts_with(STALLED));
    assert!(run(70).await.is_err(), "still failing the run for the alarm");
    assert_eq!(stand.sink.sent().len(), 1, "not alerted again");

    // Okta answers again: the run succeeds and the stretch is over.
    okta.down.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(run(75).await.is_ok());
    let state: HealthCheckState =
        records::load(&stand.store, &HealthCheckState::key_of(ID)).await.unwrap().unwrap();
    assert_eq!(state.unchecked_since, None);
}

#[tokio::test]
async fn without_the_app_id_only_the_aws_apps_provisioning_failures_are_alerted() {
    // Defect (held-out org): without `okta_aws_app_id`, failures of Slack and Google Workspace
    // provisioning were alerted as the AWS app's.
    let mut stand = Stand::new();
    stand.settings.okta_aws_app_id = None;
    let mut ours = event(PUSH_FAILED, "push-failed-aws", now() - Duration::minutes(30));
    let mut theirs = event(PUSH_FAILED, "push-failed-slack", now() - Duration::minutes(20));
    for (e, app, label) in
        [(&mut ours, AWS_APP, "AWS IAM Identity Center"), (&mut theirs, SLACK_APP, "Slack")]
    {
        e["target"] =
            json!([{"id": app, "type": "AppInstance", "alternateId": label, "displayName": label}]);
    }
    let expected = provisioning_alert(&ours, "push-failed-aws", now()).id;
    let okta = &SystemLog {
        pages: vec![vec![ours, theirs]],
        apps: vec![aws_app(), json!({"id": SLACK_APP, "name": "slack", "status": "ACTIVE"})],
        ..Default::default()
    };
    let check = stand.doctor(&okta).catch_up(now()).await;
    assert_eq!(stand.sink.sent().len(), 1, "{check:?}");
    assert_eq!(stand.sink.sent(), [expected]);
    assert!(
        check.evidence.iter().any(|e| e.contains("1 provisioning failure(s) of other Okta apps"))
    );

    // No AWS app to be found: nothing is attributed, the check says why, events still queue.
    let okta = &SystemLog {
        pages: vec![vec![event(DEACTIVATE, "still-queued", now() - Duration::minutes(5))]],
        apps: vec![],
        ..Default::default()
    };
    let stand = Stand { settings: stand.settings.clone(), ..Stand::new() };
    let check = stand.doctor(&okta).catch_up(now()).await;
    assert_eq!(stand.queue.ids(), ["still-queued"]);
    assert!(check.evidence.iter().any(|e| e.contains("cannot be attributed")), "{check:?}");
}

#[tokio::test]
async fn a_check_that_passes_again_closes_its_alerts_finding() {
    // Sinks that keep findings (Security Hub) are told when the condition clears.
    let stand = Stand::new();
    let okta = &SystemLog::default();
    let doctor = stand.doctor(&okta);
    let mut failing = crate::health::Check::pass("mfa-posture", "MFA posture", "");
    failing.status = Status::Fail;
    failing.alert = Some(crate::health::AlertSpec {
        detector: "mfa-not-required",
        severity: crate::alert::Severity::High,
        state: "rule-1".into(),
    });
    let sent = doctor.alert(std::slice::from_ref(&failing), now()).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert!(stand.sink.resolved.lock().unwrap().is_empty());
    let passing =
        crate::health::Check::pass("mfa-posture", "MFA posture", "every rule asks for two factors");
    doctor.alert(std::slice::from_ref(&passing), now() + Duration::days(1)).await.unwrap();
    assert_eq!(*stand.sink.resolved.lock().unwrap(), [sent[0].id.clone()]);
    // Passing again: nothing more to close.
    doctor.alert(std::slice::from_ref(&passing), now() + Duration::days(2)).await.unwrap();
    assert_eq!(stand.sink.resolved.lock().unwrap().len(), 1);
}
