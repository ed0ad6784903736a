use std::fmt::Debug;

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::adapters::SqliteStateStore;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// Stores the record, reads it back by its key (and through its partition), and compares.
async fn round_trip<R: Record + PartialEq + Debug>(record: R) {
    let store = SqliteStateStore::in_memory().unwrap();
    save(&store, &record).await.unwrap();
    let key = record.key();
    let back: R = load(&store, &key).await.unwrap().expect("stored record reads back");
    assert_eq!(back, record);
    let all: Vec<R> = load_all(&store, &key.pk).await.unwrap();
    assert_eq!(all, vec![record]);
}

fn okta_signin() -> OktaSigninRecord {
    OktaSigninRecord {
        user_id: Some("00u1".into()),
        login: "alice@acme.example".into(),
        time: at("2026-11-02T09:15:00.123Z"),
        event_type: Some("user.authentication.sso".into()),
        outcome: Some("SUCCESS".into()),
        reason: None,
        ip: Some("198.51.100.7".into()),
        country: Some("Germany".into()),
        city: Some("Berlin".into()),
        lat: Some(52.52),
        lon: Some(13.4),
        app: Some("AWS IAM Identity Center".into()),
        app_id: Some("0oa1".into()),
        event_id: "e-1".into(),
    }
}

#[tokio::test]
async fn every_record_round_trips_through_the_store() {
    round_trip(okta_signin()).await;
    round_trip(Lifecycle {
        login: "bob@acme.example".into(),
        status: LifecycleStatus::Suspended,
        at: at("2026-11-02T10:00:00Z"),
        user_id: Some("00u2".into()),
        event_id: "e-2".into(),
    })
    .await;
    round_trip(GroupPushFailure {
        time: Some(at("2026-11-02T11:00:00Z")),
        reason: Some("401 Unauthorized".into()),
        group: Some("aws-team-payments".into()),
        event_id: "e-3".into(),
    })
    .await;
    round_trip(ManagedGroup { group_id: "g-1".into(), display_name: "aws-core-readonly".into() })
        .await;
    round_trip(Review {
        group_id: "g-1".into(),
        at: at("2026-11-03T00:00:00Z"),
        name: "aws-core-readonly".into(),
    })
    .await;
    round_trip(Checkpoint {
        source: "signin.amazonaws.com".into(),
        until: at("2026-11-03T01:00:00Z"),
    })
    .await;
    round_trip(FailedSignin {
        time: at("2026-11-03T01:02:03Z"),
        event_id: "e-1".into(),
        source_ip: Some("203.0.113.9".parse().unwrap()),
        kind: FailureKind::Console,
        step: None,
        root: true,
        iam_user: false,
        user_name: None,
        user_id: None,
        account_id: Some("111122223333".into()),
        identity: 0x0123_4567_89ab_cdef,
    })
    .await;
    round_trip(AlertDelivery {
        id: "signin-impossible-travel:abc".into(),
        detector: "signin-impossible-travel".into(),
        sinks: Some(BTreeMap::from([
            ("sns".to_owned(), SinkState::Sent),
            ("webhook".to_owned(), SinkState::Pending),
        ])),
        alert: json!({"id": "signin-impossible-travel:abc"}),
    })
    .await;
    round_trip(ScimRotation {
        version: "v2".into(),
        previous: Some("v1".into()),
        finished_at: at("2026-11-04T00:00:00Z"),
    })
    .await;
    round_trip(ConfirmedByHand {
        version: "v3".into(),
        at: at("2026-11-04T01:00:00Z"),
        by: "carol".into(),
    })
    .await;
    round_trip(OktaHolds { version: "v9".into(), at: at("2026-11-04T02:00:00Z") }).await;
    // A user name holding `#` still splits back into user, account and permission set.
    round_trip(LastUsed {
        user: "o'brien#ops@acme.example".into(),
        account_id: "111122223333".into(),
        permission_set: "AdministratorAccess".into(),
        portal: Some(at("2026-11-04T03:00:00Z")),
        activity: None,
        user_name: Some("o'brien#ops@acme.example".into()),
    })
    .await;
    round_trip(ReviewDecision {
        id: "rd-1".into(),
        at: at("2026-11-04T04:00:00.123Z"),
        reviewer: "00u-carol".into(),
        reviewer_login: "carol@acme.example".into(),
        decision: "remove".into(),
        user_id: "00u-dave".into(),
        login: "dave@acme.example".into(),
        group: "aws-admin-platform".into(),
        reason: "unused for 90 days".into(),
        outcome: "membership removed".into(),
    })
    .await;
}

#[test]
fn a_last_use_only_moves_forward() {
    let mut stored = LastUsed {
        portal: Some(at("2026-11-04T03:00:00Z")),
        activity: Some(at("2026-11-01T00:00:00Z")),
        ..Default::default()
    };
    stored.merge(&LastUsed {
        portal: Some(at("2026-10-01T00:00:00Z")),
        activity: Some(at("2026-11-05T00:00:00Z")),
        user_name: Some("alice".into()),
        ..Default::default()
    });
    assert_eq!(stored.portal, Some(at("2026-11-04T03:00:00Z")));
    assert_eq!(stored.activity, Some(at("2026-11-05T00:00:00Z")));
    assert_eq!(stored.latest(), Some(at("2026-11-05T00:00:00Z")));
    assert_eq!(stored.user_name.as_deref(), Some("alice"));
}

/// Items as earlier versions wrote them (by hand, under string keys) still read: a deployed
/// table keeps working across the upgrade.
#[test]
fn items_in_the_earlier_layout_still_read() {
    let signin = Item::new(
        "okta-signin#alice@acme.example",
        "2026-11-02T09:15:00.123Z#e-1",
        json!({"user_id": "00u1", "login": "alice@acme.example", "time": "2026-11-02T09:15:00.123Z",
               "event_type": "user.authentication.sso", "outcome": "SUCCESS", "reason": null,
               "ip": "198.51.100.7", "country": "Germany", "city": "Berlin", "lat": 52.52,
               "lon": 13.4, "app": "AWS IAM Identity Center", "app_id": "0oa1", "event_id": "e-1"}),
    );
    assert_eq!(OktaSigninRecord::from_item(&signin), Some(okta_signin()));
    assert_eq!(okta_signin().key(), Key::new(signin.pk, signin.sk));

    let lifecycle = Item::new(
        "okta-user#bob@acme.example",
        "lifecycle",
        json!({"status": "deactivated", "at": "2026-11-02T10:00:00Z", "user_id": "00u2", "event_id": "e-2"}),
    );
    let l = Lifecycle::from_item(&lifecycle).unwrap();
    assert_eq!((l.login.as_str(), l.status), ("bob@acme.example", LifecycleStatus::Deactivated));
    assert!(l.is_inactive());

    let group = Item::new("managed-group", "g-7", json!({"display_name": "aws-admin-root"}));
    assert_eq!(
        ManagedGroup::from_item(&group),
        Some(ManagedGroup { group_id: "g-7".into(), display_name: "aws-admin-root".into() })
    );

    let old_alert = Item::new("alert", "x:1", json!({"detector": "x"}));
    assert_eq!(AlertDelivery::from_item(&old_alert).unwrap().sinks, None);

    let confirmed = Item::new(
        "scim-token",
        "confirmed#v3",
        json!({"at": "2026-11-04T01:00:00Z", "by": "carol"}),
    );
    assert_eq!(ConfirmedByHand::from_item(&confirmed).unwrap().version, "v3");
}

#[test]
fn an_item_that_is_not_its_record_reads_as_absent() {
    let bad = Item::new("okta-user#x", "lifecycle", json!({"status": "asleep", "at": "yesterday"}));
    assert_eq!(Lifecycle::from_item(&bad), None);
    let bad = Item::new("signin-checkpoint", "s", json!({"until": 5}));
    assert_eq!(Checkpoint::from_item(&bad), None);
}

#[test]
fn records_are_built_from_okta_events_once() {
    let event: OktaEvent = serde_json::from_value(json!({
        "uuid": "e-5", "eventType": "user.lifecycle.suspend", "published": "2026-11-02T10:00:00Z",
        "actor": {"id": "00uadmin", "type": "User", "alternateId": "admin@acme.example"},
        "target": [{"id": "00u2", "type": "User", "alternateId": "Bob@Acme.example"}]
    }))
    .unwrap();
    let l = Lifecycle::from_event(&event, "e-5").unwrap();
    assert_eq!(l.login, "bob@acme.example", "the target, lower-cased, not the actor");
    assert_eq!(l.status, LifecycleStatus::Suspended);
    assert_eq!(l.at, Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 0).unwrap());

    let signin: OktaEvent = serde_json::from_value(json!({
        "uuid": "e-6", "eventType": "user.session.start", "published": "2026-11-02T10:00:00Z",
        "actor": {"id": "00u2", "type": "User", "alternateId": "Bob@Acme.example"},
        "outcome": {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"},
        "client": {"ipAddress": "203.0.113.9", "geographicalContext": {"country": "France",
                   "city": "Paris", "geolocation": {"lat": 48.85, "lon": 2.35}}}
    }))
    .unwrap();
    let s = OktaSigninRecord::from_event(&signin, "e-6").unwrap();
    assert_eq!(s.login, "bob@acme.example");
    assert_eq!(
        (s.outcome.as_deref(), s.reason.as_deref()),
        (Some("FAILURE"), Some("INVALID_CREDENTIALS"))
    );
    assert_eq!((s.country.as_deref(), s.lat), (Some("France"), Some(48.85)));
    assert_eq!(Lifecycle::from_event(&signin, "e-6"), None, "not a lifecycle event");
}

#[test]
fn alert_records_live_under_their_writers_partition() {
    // IAM lets each writer write only `alert#<itself>`: a compromised function cannot pre-write
    // another's alert record to silence it.
    assert_eq!(writer(), CLI_WRITER, "a process that never said is the CLI");
    assert_eq!(AlertDelivery::key_of("x").pk, "alert#idc-guard");
    set_writer("signin-anomaly");
    set_writer("access-sync");
    assert_eq!(writer(), "signin-anomaly", "said once, never changed");
    assert_eq!(AlertDelivery::key_of("x").pk, "alert#signin-anomaly");
}
