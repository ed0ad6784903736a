//! The LookupEvents sweep against the real CloudTrail SDK client with `aws-smithy-mocks` (the
//! local AWS stand-in has no LookupEvents).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::operation::lookup_events::{LookupEventsError, LookupEventsOutput};
use aws_sdk_cloudtrail::types::{Event, LookupAttributeKey};
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;
use crate::adapters::CloudTrailLookup;
use crate::adapters::SqliteStateStore;
use crate::alert::Alert;
use crate::geo::Geo;
use crate::signin::engine::Engine;
use crate::signin::ports::NoDirectory;
use crate::signin::settings::SigninSettings;

#[derive(Default)]
struct Collect(Mutex<Vec<Alert>>);

impl AlertSink for Collect {
    async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
        self.0.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

fn temp_store() -> SqliteStateStore {
    SqliteStateStore::in_memory().unwrap()
}

const NOW: &str = "2026-11-24T12:00:00Z";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW).unwrap().to_utc()
}

/// A sign-in by alice (2025 shape) from `ip` at `time`.
fn signin_record(id: &str, ip: &str, time: &str) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../../events/cloudtrail/idc-signin-2025-shape.json"))
            .unwrap();
    v["eventID"] = json!(id);
    v["sourceIPAddress"] = json!(ip);
    v["eventTime"] = json!(time);
    v.to_string()
}

fn portal_record(id: &str, ip: &str, time: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(include_str!(
        "../../../events/cloudtrail/sso-get-role-credentials.json"
    ))
    .unwrap();
    v["eventID"] = json!(id);
    v["sourceIPAddress"] = json!(ip);
    v["eventTime"] = json!(time);
    v.to_string()
}

fn page(records: Vec<String>, next: Option<&str>) -> LookupEventsOutput {
    LookupEventsOutput::builder()
        .set_events(Some(
            records.into_iter().map(|r| Event::builder().cloud_trail_event(r).build()).collect(),
        ))
        .set_next_token(next.map(str::to_owned))
        .build()
}

type Calls = Arc<Mutex<Vec<(tokio::time::Instant, String, Option<String>, i32, DateTime<Utc>)>>>;

/// Two pages per source; the sso source's second page fails while `fail` is set.
fn client(calls: Calls, fail: Arc<AtomicBool>) -> (Client, aws_smithy_mocks::Rule) {
    let rule = mock!(Client::lookup_events).then_compute_response(move |req| {
        let attr = &req.lookup_attributes()[0];
        assert_eq!(attr.attribute_key(), &LookupAttributeKey::EventSource);
        let source = attr.attribute_value().to_owned();
        let token = req.next_token().map(str::to_owned);
        let start = DateTime::from_timestamp_millis(req.start_time().unwrap().to_millis().unwrap())
            .unwrap();
        calls.lock().unwrap().push((
            tokio::time::Instant::now(),
            source.clone(),
            token.clone(),
            req.max_results().unwrap_or_default(),
            start,
        ));
        match (source.as_str(), token.as_deref()) {
            ("signin.amazonaws.com", None) => MockResponse::Output(page(
                vec![signin_record("s1", "5.44.46.10", "2026-11-24T10:50:00Z"), "not json".into()],
                Some("signin-2"),
            )),
            ("signin.amazonaws.com", Some(_)) => MockResponse::Output(page(
                vec![signin_record("s2", "5.44.46.11", "2026-11-24T11:00:00Z")],
                None,
            )),
            (_, None) => MockResponse::Output(page(
                vec![portal_record("p1", "1.0.0.1", "2026-11-24T11:10:00Z")],
                Some("sso-2"),
            )),
            (_, Some(_)) if fail.load(Ordering::SeqCst) => {
                MockResponse::Error(LookupEventsError::InvalidNextTokenException(
                    aws_sdk_cloudtrail::types::error::InvalidNextTokenException::builder()
                        .message("boom")
                        .build(),
                ))
            }
            (_, Some(_)) => MockResponse::Output(page(
                vec![portal_record("p2", "1.0.0.2", "2026-11-24T11:20:00Z")],
                None,
            )),
        }
    });
    let client = mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, [&rule]);
    (client, rule)
}

fn scanner<'a>(store: &'a SqliteStateStore) -> Scanner<'a, SqliteStateStore, NoDirectory> {
    let engine =
        Engine::new(Arc::new(SigninSettings::default()), BTreeSet::new(), Arc::new(Geo::default()));
    Scanner::new(engine, Some(store), &NoDirectory)
}

#[tokio::test(start_paused = true)]
async fn sweep_pages_through_each_source_at_two_requests_a_second() {
    let calls: Calls = Default::default();
    let (client, _rule) = client(calls.clone(), Arc::new(AtomicBool::new(false)));
    let lookup = CloudTrailLookup::new(client);
    let store = temp_store();
    let sink = Collect::default();
    let alerts = Alerts::new(&sink, &store);
    let mut scanner = scanner(&store);
    let reports = sweep(&lookup, &store, &mut scanner, &alerts, &SweepSettings::default(), now())
        .await
        .unwrap();

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2 * SWEEP_SOURCES.len(), "two pages per source");
    assert!(calls.iter().all(|c| c.3 == 50), "50 events a page");
    for pair in calls.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= std::time::Duration::from_millis(500), "≤ 2 requests/s");
    }
    // First run: the window is the last hour before the settle delay.
    assert_eq!(calls[0].4, now() - chrono::Duration::minutes(75));
    assert_eq!(reports[0].records, 3);
    assert_eq!(reports[0].skipped, 1, "the malformed event is counted, not fatal");
    assert_eq!(reports[1].records, 2);
    // Germany then Australia 10 minutes later: impossible travel; the portal session moved
    // networks: token replay.
    let detectors: BTreeSet<String> =
        sink.0.lock().unwrap().iter().map(|a| a.detector.clone()).collect();
    assert!(detectors.contains("impossible-travel"), "{detectors:?}");
    assert!(detectors.contains("token-replay"), "{detectors:?}");
    // Checkpoints moved to the end of the window; the next sweep starts there.
    assert_eq!(
        checkpoint(&store, "sso.amazonaws.com").await,
        Some(now() - chrono::Duration::minutes(15))
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_mid_sweep_keeps_the_checkpoint_and_the_retry_alerts_nothing_twice() {
    let calls: Calls = Default::default();
    let fail = Arc::new(AtomicBool::new(true));
    let (client, _rule) = client(calls.clone(), fail.clone());
    let lookup = CloudTrailLookup::new(client);
    let store = temp_store();
    let sink = Collect::default();
    let alerts = Alerts::new(&sink, &store);

    let err =
        sweep(&lookup, &store, &mut scanner(&store), &alerts, &SweepSettings::default(), now())
            .await
            .unwrap_err();
    assert!(err.to_string().contains("LookupEvents"), "{err}");
    assert!(checkpoint(&store, "signin.amazonaws.com").await.is_some());
    assert_eq!(
        checkpoint(&store, "sso.amazonaws.com").await,
        Some(now() - chrono::Duration::minutes(75)),
        "the failed source's checkpoint stays at its window's start"
    );
    let first: Vec<String> = sink.0.lock().unwrap().iter().map(|a| a.id.clone()).collect();

    // Ten minutes later the page works again: the sso window is repeated from the same start.
    fail.store(false, Ordering::SeqCst);
    calls.lock().unwrap().clear();
    let later = now() + chrono::Duration::minutes(10);
    sweep(&lookup, &store, &mut scanner(&store), &alerts, &SweepSettings::default(), later)
        .await
        .unwrap();
    let calls = calls.lock().unwrap().clone();
    let sso_start = calls.iter().find(|c| c.1 == "sso.amazonaws.com").unwrap().4;
    assert_eq!(sso_start, now() - chrono::Duration::minutes(75));
    let signin_start = calls.iter().find(|c| c.1 == "signin.amazonaws.com").unwrap().4;
    assert_eq!(
        signin_start,
        now() - chrono::Duration::minutes(15),
        "continues from its checkpoint"
    );
    let all: Vec<String> = sink.0.lock().unwrap().iter().map(|a| a.id.clone()).collect();
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no alert id sent twice: {all:?}");
    assert!(all.len() > first.len(), "the repeated window found what the failure hid");
}

#[test]
fn triggers_are_recognised_and_keys_decoded() {
    let read = |p: &str| serde_json::from_str::<serde_json::Value>(p).unwrap();
    assert!(matches!(
        classify(read(include_str!("../../../events/eventbridge/scheduled-signin-sweep.json"))),
        Ok(Trigger::Schedule)
    ));
    let mut console =
        read(include_str!("../../../events/eventbridge/cloudtrail-console-signin.json"));
    assert!(matches!(classify(console.clone()), Ok(Trigger::CloudTrail(_))));
    console["detail-type"] = json!("AWS Console Signin via CloudTrail");
    assert!(matches!(classify(console), Ok(Trigger::CloudTrail(_))), "both spellings");
    match classify(read(include_str!("../../../events/s3/cloudtrail-object-created.json"))) {
        Ok(Trigger::Objects(keys)) => {
            assert_eq!(keys.len(), 2);
            assert!(is_cloudtrail_log(&keys[0].1));
            assert!(!is_cloudtrail_log(&keys[1].1), "digest files are not logs");
        }
        other => panic!("{other:?}"),
    }
    match classify(read(include_str!(
        "../../../events/eventbridge/s3-object-created-cloudtrail.json"
    ))) {
        Ok(Trigger::Objects(keys)) => {
            assert_eq!(keys[0].0, "acme-org-cloudtrail");
            assert!(is_cloudtrail_log(&keys[0].1));
        }
        other => panic!("{other:?}"),
    }
    assert!(classify(json!({"hello": 1})).is_err());
    assert_eq!(decode_key("a+b%2Fc%3D.json.gz"), "a b/c=.json.gz");
    assert_eq!(decode_key("bad%zz%"), "bad%zz%");
}

async fn checkpoint(store: &SqliteStateStore, source: &str) -> Option<DateTime<Utc>> {
    let key = crate::records::Checkpoint::key_of(source);
    crate::records::load::<crate::records::Checkpoint, _>(store, &key)
        .await
        .unwrap()
        .map(|c| c.until)
}

/// The last-use backfill: a day per window over the period asked, paged and paced like the
/// sweep, writing last uses only — no alert, no baseline — and never moving a stored time back.
#[tokio::test(start_paused = true)]
async fn the_backfill_writes_last_uses_only_a_day_at_a_time() {
    let calls: Calls = Default::default();
    let (client, _rule) = client(calls.clone(), Arc::new(AtomicBool::new(false)));
    let lookup = CloudTrailLookup::new(client);
    let store = temp_store();
    // A later use is already stored: the older history must not replace it.
    let later = crate::records::LastUsed {
        user: "94482488-3041-7026-18f3-be45837cd0e4".into(),
        account_id: "111122223333".into(),
        permission_set: "TeamDeveloper".into(),
        activity: Some(now()),
        ..Default::default()
    };
    crate::records::save(&store, &later).await.unwrap();
    let mut engine =
        Engine::new(Arc::new(SigninSettings::default()), BTreeSet::new(), Arc::new(Geo::default()));
    let since = now() - chrono::Duration::days(3);
    let report = backfill_usage(
        &lookup,
        &store,
        &mut engine,
        since,
        now(),
        std::time::Duration::from_millis(500),
    )
    .await
    .unwrap();
    let calls = calls.lock().unwrap().clone();
    assert_eq!((report.pages, calls.len()), (6, 6), "two pages for each of three days");
    assert!(calls.iter().all(|c| c.1 == "sso.amazonaws.com"));
    let starts: BTreeSet<DateTime<Utc>> = calls.iter().map(|c| c.4).collect();
    assert_eq!(starts.len(), 3, "a window per day: {starts:?}");
    assert!(calls.windows(2).all(|w| w[1].0 - w[0].0 >= std::time::Duration::from_millis(500)));
    assert_eq!(report.written, 1);
    let stored: Vec<crate::records::LastUsed> =
        crate::records::load_all(&store, crate::records::LastUsed::PK).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].activity, Some(now()), "kept");
    assert_eq!(
        stored[0].portal.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-11-24T11:20:00+00:00")
    );
    let baselines = store.query("signin-user#94482488-3041-7026-18f3-be45837cd0e4").await.unwrap();
    assert!(baselines.is_empty(), "no baseline moved");
}
