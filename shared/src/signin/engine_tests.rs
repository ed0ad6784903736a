use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::records::{Lifecycle, LifecycleStatus};
use crate::signin::okta::{OktaFact, OktaSignin, fact_of, read_events};
use crate::signin::settings::SigninSettings;
use crate::signin::sources::parse;

// Addresses whose country the embedded table knows (see geo tests).
const DE: &str = "5.44.46.10";
const DE_SAME_NET: &str = "5.44.46.99";
const AT: &str = "46.57.0.10";
const AU: &str = "1.0.0.1";
const US: &str = "5.83.131.10";

const SIGNIN: &str = include_str!("../../../events/cloudtrail/idc-signin-2025-shape.json");
const PORTAL: &str = include_str!("../../../events/cloudtrail/sso-get-role-credentials.json");

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// A successful IdC sign-in by alice from `ip` at `time`.
fn signin(ip: &str, time: &str, id: &str) -> Activity {
    let mut a = parse(SIGNIN.as_bytes()).activities.remove(0);
    a.source_ip = Some(ip.parse().unwrap());
    a.time = at(time);
    a.event_id = id.into();
    a
}

/// Alice's portal GetRoleCredentials for `permission_set`.
fn portal(ip: &str, time: &str, id: &str, permission_set: &str) -> Activity {
    let mut a = parse(PORTAL.as_bytes()).activities.remove(0);
    a.user_name = Some("alice@acme.example".into());
    a.source_ip = Some(ip.parse().unwrap());
    a.time = at(time);
    a.event_id = id.into();
    a.permission_set = Some(permission_set.into());
    if let Kind::Portal { role_name, .. } = &mut a.kind {
        *role_name = Some(permission_set.into());
    }
    a
}

fn engine(settings: SigninSettings) -> Engine {
    let privileged = BTreeSet::from(["AdministratorAccess".to_owned()]);
    Engine::new(Arc::new(settings), privileged, Arc::new(Geo::default()))
}

fn run(e: &mut Engine, activities: Vec<Activity>) -> Vec<Alert> {
    activities.into_iter().flat_map(|a| e.observe(a)).collect()
}

fn detectors(alerts: &[Alert]) -> Vec<&str> {
    alerts.iter().map(|a| a.detector.as_str()).collect()
}

// A weekday inside business hours (Tue 2026-11-24, 10:00 UTC).
const T0: &str = "2026-11-24T10:00:00Z";

#[test]
fn impossible_travel_fires_for_germany_then_australia_within_an_hour() {
    let mut e = engine(SigninSettings::default());
    let alerts = run(
        &mut e,
        vec![signin(DE, T0, "e1"), portal(AU, "2026-11-24T11:00:00Z", "e2", "ReadOnly")],
    );
    let travel: Vec<_> = alerts.iter().filter(|a| a.detector == "impossible-travel").collect();
    assert_eq!(travel.len(), 1, "{alerts:#?}");
    assert_eq!(travel[0].event_ids, ["e1", "e2"]);
    assert!(travel[0].evidence["min_speed_kmh"].as_f64().unwrap() > 900.0);
    assert_eq!(travel[0].evidence["precision"], "country");
}

/// A console sign-in of a session of `role` (ARN) named alice's IdC user name, from `ip`.
fn console_as_alice(role_arn: &str, saml: bool, ip: &str, time: &str, id: &str) -> Activity {
    let mut v: serde_json::Value = serde_json::from_str(include_str!(
        "../../../events/cloudtrail/console-login-assumed-sso-role.json"
    ))
    .unwrap();
    let role = role_arn.rsplit('/').next().unwrap();
    v["userIdentity"]["arn"] = serde_json::json!(format!(
        "arn:aws:sts::111122223333:assumed-role/{role}/alice@acme.example"
    ));
    v["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = serde_json::json!(role_arn);
    v["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] = serde_json::json!(role);
    if saml {
        v["additionalEventData"]["SamlProviderArn"] =
            serde_json::json!("arn:aws:iam::111122223333:saml-provider/Okta");
    }
    v["sourceIPAddress"] = serde_json::json!(ip);
    v["eventTime"] = serde_json::json!(time);
    v["eventID"] = serde_json::json!(id);
    parse(v.to_string().as_bytes()).activities.remove(0)
}

/// The attack: someone who may assume any console-capable role names the session after a
/// person (a custom federation broker does exactly this) and signs in from the other side of the
/// world, to raise findings against that person or to teach their baseline a country.
#[test]
fn a_role_session_named_after_a_person_is_not_that_person() {
    let later = "2026-11-24T11:00:00Z";
    let travel = |login: Activity| {
        let mut e = engine(SigninSettings::default());
        let alerts = run(&mut e, vec![signin(DE, T0, "e1"), login]);
        detectors(&alerts).contains(&"impossible-travel")
    };
    let broker = "arn:aws:iam::111122223333:role/BrokerRole";
    assert!(!travel(console_as_alice(broker, false, AU, later, "forged")));
    // The same role named like a permission set's, outside IdC's path: no better.
    let look_alike = "arn:aws:iam::111122223333:role/AWSReservedSSO_TeamDeveloper_0123456789abcdef";
    assert!(!travel(console_as_alice(look_alike, false, AU, later, "forged-2")));
    // Sessions whose names an identity service set: IdC's own, and a SAML provider's.
    let idc = "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_TeamDeveloper_0123456789abcdef";
    assert!(travel(console_as_alice(idc, false, AU, later, "idc")));
    assert!(travel(console_as_alice(broker, true, AU, later, "saml")));
    // A trimmed export without the session issuer: the role in the session's ARN, by its name.
    let mut trimmed: serde_json::Value = serde_json::from_str(include_str!(
        "../../../events/cloudtrail/console-login-assumed-sso-role.json"
    ))
    .unwrap();
    trimmed["userIdentity"].as_object_mut().unwrap().remove("sessionContext");
    trimmed["sourceIPAddress"] = serde_json::json!(AU);
    trimmed["eventTime"] = serde_json::json!(later);
    let trimmed = parse(trimmed.to_string().as_bytes()).activities.remove(0);
    assert_eq!(trimmed.permission_set.as_deref(), Some("TeamDeveloper"));
    assert!(travel(trimmed));
}

/// After alice's revocation, her name in use in another role's console session is still the
/// revocation's alarm (a way in the deny does not cover), though it is not her activity.
#[test]
fn a_session_named_after_a_revoked_person_is_revoked_session_used() {
    let broker = "arn:aws:iam::111122223333:role/BrokerRole";
    let revoked = || UserContext {
        revoked: Some(Revocation { at: at(T0), user_id: "9067-alice".into() }),
        ..Default::default()
    };
    let mut e = engine(SigninSettings::default());
    e.load("alice@acme.example", revoked());
    let found =
        run(&mut e, vec![console_as_alice(broker, false, AU, "2026-11-24T10:30:00Z", "b1")]);
    assert_eq!(detectors(&found), ["revoked-session-used"]);
    assert_eq!(found[0].evidence["session_named_only"], true);
    assert!(found[0].summary.contains("another role named after them"), "{}", found[0].summary);
    // Look-alikes: the same login with no revocation in force, and within the deny's grace.
    let mut e = engine(SigninSettings::default());
    e.load("alice@acme.example", UserContext::default());
    assert!(
        run(&mut e, vec![console_as_alice(broker, false, AU, "2026-11-24T10:30:00Z", "b2")])
            .is_empty()
    );
    let mut e = engine(SigninSettings::default());
    e.load("alice@acme.example", revoked());
    assert!(
        run(&mut e, vec![console_as_alice(broker, false, AU, "2026-11-24T10:03:00Z", "b3")])
            .is_empty()
    );
}

/// Nome (Alaska) to Anadyr (Chukotka) in 40 minutes: the countries touch at the Bering Strait,
/// so only the city database (`scripts/geo/fetch-city-db.sh`'s layout) shows it is too fast.
#[test]
fn with_the_city_database_alaska_to_chukotka_in_40_minutes_is_impossible_travel() {
    let trip = || {
        vec![
            signin("198.18.0.7", T0, "e1"),
            portal("198.18.1.7", "2026-11-24T10:40:00Z", "e2", "ReadOnly"),
        ]
    };
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/city-test-flat.mmdb");
    let geo = Geo::with_city_db(crate::geo::CityDb::open(&path).unwrap());
    let privileged = BTreeSet::new();
    let mut e = Engine::new(Arc::new(SigninSettings::default()), privileged, Arc::new(geo));
    let alerts = run(&mut e, trip());
    let travel = alerts.iter().find(|a| a.detector == "impossible-travel").expect("US → RU");
    assert_eq!(travel.evidence["precision"], "city");
    assert!(travel.title.contains("Nome, US → Anadyr, RU"), "{}", travel.title);
    // Without it, nothing places these addresses closer than their countries.
    let alerts = run(&mut engine(SigninSettings::default()), trip());
    assert!(!detectors(&alerts).contains(&"impossible-travel"), "{alerts:#?}");
}

#[test]
fn travel_to_a_neighbour_or_at_airliner_speed_stays_quiet() {
    let mut e = engine(SigninSettings::default());
    // Germany → Austria in 10 minutes: neighbouring countries are 0 km apart at country level.
    let near = run(&mut e, vec![signin(DE, T0, "e1"), signin(AT, "2026-11-24T10:10:00Z", "e2")]);
    assert!(!detectors(&near).contains(&"impossible-travel"), "{near:#?}");
    // Germany → Australia in 30 hours: a flight.
    let mut e = engine(SigninSettings::default());
    let flight = run(&mut e, vec![signin(DE, T0, "e1"), signin(AU, "2026-11-25T16:00:00Z", "e2")]);
    assert!(!detectors(&flight).contains(&"impossible-travel"), "{flight:#?}");
}

#[test]
fn allow_listed_networks_are_never_geo_findings() {
    let settings = SigninSettings {
        allow_networks: vec!["1.0.0.0/24".parse().unwrap()],
        ..Default::default()
    };
    let mut e = engine(settings);
    let alerts = run(&mut e, vec![signin(DE, T0, "e1"), signin(AU, "2026-11-24T10:30:00Z", "e2")]);
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn new_country_fires_after_the_baseline_is_seeded() {
    let mut e = engine(SigninSettings::default());
    // First sighting seeds the baseline; the same country again is quiet.
    let first =
        run(&mut e, vec![signin(DE, T0, "e1"), signin(DE_SAME_NET, "2026-11-25T09:00:00Z", "e2")]);
    assert!(first.is_empty(), "{first:#?}");
    let alerts = run(&mut e, vec![signin(US, "2026-11-27T15:00:00Z", "e3")]);
    assert_eq!(detectors(&alerts), ["new-country"]);
    assert_eq!(alerts[0].evidence["country"], "US");
    assert_eq!(alerts[0].evidence["baseline"], serde_json::json!(["DE"]));
    // Now US is known.
    assert!(run(&mut e, vec![signin(US, "2026-11-27T16:00:00Z", "e4")]).is_empty());
}

#[test]
fn new_country_respects_the_allow_list_and_the_thirty_day_window() {
    let allow = SigninSettings {
        allow_countries: [crate::geo::Country::parse("US").unwrap()].into(),
        ..Default::default()
    };
    let mut e = engine(allow);
    assert!(
        run(&mut e, vec![signin(DE, T0, "e1"), signin(US, "2026-11-27T15:00:00Z", "e2")])
            .is_empty()
    );
    // DE seen 40 days ago only: it has left the baseline, so US is new, then DE again is new.
    let mut e = engine(SigninSettings::default());
    run(
        &mut e,
        vec![signin(DE, "2026-10-01T10:00:00Z", "e1"), signin(US, "2026-11-10T10:00:00Z", "e2")],
    );
    let alerts = run(&mut e, vec![signin(DE, "2026-11-24T10:00:00Z", "e3")]);
    assert_eq!(detectors(&alerts), ["new-country"], "{alerts:#?}");
}

#[test]
fn deactivated_user_activity_fires_once_after_deactivation_only() {
    let mut e = engine(SigninSettings::default());
    e.okta(
        "alice@acme.example",
        OktaFact::Lifecycle(Lifecycle {
            login: String::new(),
            status: LifecycleStatus::Deactivated,
            user_id: None,
            at: at(T0),
            event_id: "okta-1".into(),
        }),
    );
    let before = run(&mut e, vec![signin(DE, "2026-11-24T09:50:00Z", "e0")]);
    assert!(before.is_empty(), "{before:#?}");
    let after = run(
        &mut e,
        vec![
            portal(DE, "2026-11-24T10:05:00Z", "e1", "ReadOnly"),
            portal(DE, "2026-11-24T10:06:00Z", "e2", "ReadOnly"),
        ],
    );
    assert_eq!(detectors(&after), ["deactivated-user-activity"]);
    assert_eq!(after[0].event_ids, ["okta-1", "e1"]);
    // Reactivated: quiet.
    let mut e = engine(SigninSettings::default());
    e.okta(
        "alice@acme.example",
        OktaFact::Lifecycle(Lifecycle {
            login: String::new(),
            status: LifecycleStatus::Deactivated,
            user_id: None,
            at: at(T0),
            event_id: "o1".into(),
        }),
    );
    e.okta(
        "alice@acme.example",
        OktaFact::Lifecycle(Lifecycle {
            login: String::new(),
            status: LifecycleStatus::Active,
            user_id: None,
            at: at("2026-11-24T10:01:00Z"),
            event_id: "o2".into(),
        }),
    );
    assert!(run(&mut e, vec![signin(DE, "2026-11-24T10:05:00Z", "e1")]).is_empty());
}

#[test]
fn deactivation_from_the_okta_fixture_applies_to_the_cloudtrail_user() {
    let (events, bad) =
        read_events(include_str!("../../../events/okta/user-lifecycle-deactivate.json"));
    assert_eq!(bad, 0);
    let (login, fact) = fact_of(&events[0]).unwrap();
    let OktaFact::Lifecycle(l) = &fact else { panic!("{fact:?}") };
    assert_eq!(l.status, LifecycleStatus::Deactivated);
    let mut e = engine(SigninSettings::default());
    e.okta(&login, fact.clone());
    let mut a = signin(DE, T0, "e1");
    a.user_name = Some(login.to_uppercase().into()); // the SAML NameID's case does not matter
    a.time = l.at + Duration::minutes(3);
    assert_eq!(detectors(&e.observe(a)), ["deactivated-user-activity"]);
}

fn okta_sso(ip: &str, time: &str, id: &str, success: bool) -> OktaFact {
    OktaFact::Signin(OktaSignin {
        time: at(time),
        event_type: if success { "user.authentication.sso" } else { "user.session.start" }.into(),
        success,
        reason: (!success).then(|| "INVALID_CREDENTIALS".into()),
        ip: Some(ip.parse().unwrap()),
        place: crate::geo::Place {
            country: crate::geo::country_of(ip.parse().unwrap()),
            ..Default::default()
        },
        app: Some("AWS IAM Identity Center".into()),
        app_id: Some("0oa1b2c3d4e5AWSidc".into()),
        event_id: id.into(),
    })
}

#[test]
fn okta_ip_mismatch_fires_when_the_okta_sso_came_from_another_network_and_country() {
    let mut e = engine(SigninSettings::default());
    e.okta("alice@acme.example", okta_sso(DE, "2026-11-24T09:58:00Z", "o1", true));
    let alerts = run(&mut e, vec![signin(AU, T0, "e1")]);
    assert!(detectors(&alerts).contains(&"okta-ip-mismatch"), "{alerts:#?}");
    // Benign: Okta saw the same /24; and with no Okta SSO nearby there is nothing to compare.
    let mut e = engine(SigninSettings::default());
    e.okta("alice@acme.example", okta_sso(DE_SAME_NET, "2026-11-24T09:58:00Z", "o1", true));
    assert!(!detectors(&run(&mut e, vec![signin(DE, T0, "e1")])).contains(&"okta-ip-mismatch"));
    let mut e = engine(SigninSettings::default());
    e.okta("alice@acme.example", okta_sso(DE, "2026-11-24T09:30:00Z", "o1", true));
    assert!(!detectors(&run(&mut e, vec![signin(AU, T0, "e1")])).contains(&"okta-ip-mismatch"));
    // An SSO into another app (not the AWS one) from elsewhere says nothing about this sign-in.
    let only_slack =
        SigninSettings { okta_aws_apps: vec!["0oaSomeOtherApp".into()], ..Default::default() };
    let mut e = engine(only_slack);
    e.okta("alice@acme.example", okta_sso(DE, "2026-11-24T09:58:00Z", "o1", true));
    assert!(!detectors(&run(&mut e, vec![signin(AU, T0, "e1")])).contains(&"okta-ip-mismatch"));
    let by_id =
        SigninSettings { okta_aws_apps: vec!["0oa1b2c3d4e5AWSidc".into()], ..Default::default() };
    let mut e = engine(by_id);
    e.okta("alice@acme.example", okta_sso(DE, "2026-11-24T09:58:00Z", "o1", true));
    assert!(detectors(&run(&mut e, vec![signin(AU, T0, "e1")])).contains(&"okta-ip-mismatch"));
}

#[test]
fn okta_failures_then_success_needs_five_failures_within_thirty_minutes() {
    let failures = |e: &mut Engine, n: usize, start: &str| {
        for i in 0..n {
            let t = (at(start) + Duration::minutes(i as i64)).to_rfc3339();
            e.okta("alice@acme.example", okta_sso(DE, &t, &format!("f{i}"), false));
        }
    };
    let mut e = engine(SigninSettings::default());
    failures(&mut e, 5, "2026-11-24T09:40:00Z");
    let alerts = run(&mut e, vec![signin(DE, T0, "e1")]);
    assert_eq!(detectors(&alerts), ["okta-failures-then-success"]);
    assert_eq!(alerts[0].event_ids.len(), 6);
    let mut e = engine(SigninSettings::default());
    failures(&mut e, 4, "2026-11-24T09:40:00Z");
    assert!(run(&mut e, vec![signin(DE, T0, "e1")]).is_empty());
    let mut e = engine(SigninSettings::default());
    failures(&mut e, 5, "2026-11-24T08:00:00Z");
    assert!(run(&mut e, vec![signin(DE, T0, "e1")]).is_empty());
}

#[test]
fn privileged_off_hours_only_for_privileged_sets_outside_hours() {
    let settings = SigninSettings {
        business_hours: crate::signin::settings::BusinessHours {
            time_zone: "Europe/Berlin".parse().unwrap(),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut e = engine(settings);
    // Saturday 03:00 in Berlin.
    let night = "2026-11-28T02:00:00Z";
    let alerts = run(
        &mut e,
        vec![
            portal(DE, night, "e1", "AdministratorAccess"),
            portal(DE, "2026-11-28T02:05:00Z", "e2", "AdministratorAccess"),
            portal(DE, night, "e3", "ReadOnly"),
        ],
    );
    assert_eq!(detectors(&alerts), ["privileged-off-hours"], "one per user, set and day");
    assert!(alerts[0].summary.contains("Sat 2026-11-28 03:00 CET"), "{}", alerts[0].summary);
    let mut e = engine(SigninSettings::default());
    assert!(run(&mut e, vec![portal(DE, T0, "e1", "AdministratorAccess")]).is_empty());
}

#[test]
fn aws_made_calls_and_failed_attempts_never_move_the_baseline() {
    let mut e = engine(SigninSettings::default());
    run(&mut e, vec![signin(DE, T0, "e1")]);
    let mut saml = parse(
        include_str!("../../../events/cloudtrail/assume-role-with-saml-by-idc.json").as_bytes(),
    )
    .activities
    .remove(0);
    saml.user_name = Some("alice@acme.example".into());
    saml.time = at("2026-11-24T10:01:00Z");
    assert!(e.observe(saml).is_empty());
    let dirty = e.take_dirty();
    assert_eq!(dirty.len(), 1);
    assert_eq!(dirty[0].1.travel.latest().unwrap().event_id, "e1");
}

#[test]
fn a_portal_call_with_only_a_user_id_is_attributed_through_the_sign_in() {
    let mut e = engine(SigninSettings::default());
    let s = signin(DE, T0, "e1");
    let mut p = portal(AU, "2026-11-24T10:20:00Z", "e2", "ReadOnly");
    p.user_name = None;
    p.user_id = s.user_id.clone();
    let alerts = run(&mut e, vec![s, p]);
    let travel = alerts.iter().find(|a| a.detector == "impossible-travel").unwrap();
    assert_eq!(travel.user.as_deref(), Some("alice@acme.example"));
}

#[test]
fn token_replay_needs_two_networks_within_two_hours_even_across_runs() {
    let first = portal(DE, T0, "p1", "ReadOnly");
    let same_network = portal(DE_SAME_NET, "2026-11-24T10:05:00Z", "p2", "ReadOnly");
    let elsewhere = portal(US, "2026-11-24T10:30:00Z", "p3", "ReadOnly");
    let replays = |alerts: &[Alert]| {
        alerts
            .iter()
            .filter(|a| a.detector == "token-replay")
            .map(|a| a.id.clone())
            .collect::<Vec<_>>()
    };
    let mut e = engine(SigninSettings::default());
    assert!(
        replays(&run(&mut e, vec![first.clone(), same_network.clone()])).is_empty(),
        "same /24: one network"
    );
    let found = replays(&run(&mut e, vec![elsewhere.clone()]));
    assert_eq!(found.len(), 1);
    // The same uses split over two runs (the baseline carried over): the same finding.
    let mut one = engine(SigninSettings::default());
    run(&mut one, vec![first.clone()]);
    let (user, baseline) = one.take_dirty().remove(0);
    let mut two = engine(SigninSettings::default());
    two.load(&user, UserContext { baseline, ..Default::default() });
    assert_eq!(replays(&run(&mut two, vec![elsewhere.clone()])), found);
    // Three hours later from elsewhere: a new use of the session, not a replay.
    let mut e = engine(SigninSettings::default());
    let mut late = elsewhere;
    late.time = first.time + Duration::hours(3);
    assert!(replays(&run(&mut e, vec![first, late])).is_empty());
}

/// With ASN data, networks are compared by owner: one carrier's two /24s are one network (no
/// replay), two owners are two (a replay, with the owners in the evidence); the device-code
/// check compares the same way.
#[test]
fn with_asn_data_token_replay_compares_networks_by_owner() {
    let data = "5.44.46.0,5.44.47.255,64500,\"Example Carrier, Inc.\"\n5.83.131.0,5.83.131.255,64501,Other Net\n46.57.0.0,46.57.0.255,64500,\"Example Carrier, Inc.\"\n";
    let asn = crate::geo::AsnDb::parse(&[data]).unwrap();
    let with_asn = || {
        let privileged = BTreeSet::from(["AdministratorAccess".to_owned()]);
        Engine::new(
            Arc::new(SigninSettings::default()),
            privileged,
            Arc::new(Geo::default().with_asn_db(crate::geo::AsnDb::parse(&[data]).unwrap())),
        )
    };
    assert_eq!(asn.lookup(AT.parse().unwrap()).map(|a| a.number), Some(64500));
    let replays = |alerts: Vec<Alert>| -> Vec<Alert> {
        alerts.into_iter().filter(|a| a.detector == "token-replay").collect()
    };
    // DE and AT addresses: other /24s, one owner.
    let first = portal(DE, T0, "p1", "ReadOnly");
    let same_owner = portal(AT, "2026-11-24T10:05:00Z", "p2", "ReadOnly");
    assert_eq!(
        replays(run(
            &mut engine(SigninSettings::default()),
            vec![first.clone(), same_owner.clone()]
        ))
        .len(),
        1,
        "without ASN data: two /24s, a replay"
    );
    assert!(
        replays(run(&mut with_asn(), vec![first.clone(), same_owner])).is_empty(),
        "one owner: one network"
    );
    let other_owner = portal(US, "2026-11-24T10:05:00Z", "p3", "ReadOnly");
    let found = replays(run(&mut with_asn(), vec![first, other_owner]));
    assert_eq!(found.len(), 1);
    let networks = found[0].evidence["networks"].to_string();
    assert!(
        networks.contains("AS64500 Example Carrier, Inc.")
            && networks.contains("AS64501 Other Net"),
        "{networks}"
    );
}

#[test]
fn a_baseline_of_the_previous_release_keeps_its_last_sighting() {
    // The stored shape before this release: countries and one `last` sighting.
    let old: Baseline = serde_json::from_value(serde_json::json!({
        "countries": {"DE": "2026-11-24T10:00:00Z"},
        "last": {"time": "2026-11-24T10:00:00Z", "ip": DE, "place": {"country": "DE"}, "event_id": "e1"},
    }))
    .unwrap();
    let mut e = engine(SigninSettings::default());
    e.load("alice@acme.example", UserContext { baseline: old, ..Default::default() });
    // The old last sighting read again: nothing; Australia 30 minutes later: travel from it.
    assert!(run(&mut e, vec![signin(DE, T0, "e1")]).is_empty());
    let alerts = run(&mut e, vec![signin(AU, "2026-11-24T10:30:00Z", "e2")]);
    let travel: Vec<_> = alerts.iter().filter(|a| a.detector == "impossible-travel").collect();
    assert_eq!(travel.len(), 1, "{alerts:#?}");
    assert_eq!(travel[0].event_ids, ["e1", "e2"]);
    let (_, saved) = e.take_dirty().remove(0);
    let saved = serde_json::to_value(saved).unwrap();
    assert!(saved.get("last").is_none() && saved["travel"]["stays"].is_array(), "{saved}");
}

const SCIM_CALLS: &str =
    include_str!("../../../events/cloudtrail/scim/identitystore-scim-calls.json");
const OKTA_RANGES_TEST: &str = include_str!("../../testdata/okta-ip-ranges-test.json");

fn scim_settings(cells: &[&str]) -> SigninSettings {
    let cells: Vec<String> = cells.iter().map(|c| (*c).to_owned()).collect();
    let networks = crate::signin::settings::okta_ip_ranges(OKTA_RANGES_TEST, &cells).unwrap();
    SigninSettings { okta_networks: Arc::new(networks), okta_cells: cells, ..Default::default() }
}

#[test]
fn the_scim_token_used_from_outside_okta_is_critical_and_okta_s_own_calls_are_quiet() {
    let activities = parse(SCIM_CALLS.as_bytes()).activities;
    assert_eq!(activities.len(), 9);
    assert!(activities.iter().all(|a| matches!(a.kind, Kind::ScimCall { .. })));
    let alerts = run(&mut engine(scim_settings(&["us_cell_1"])), activities.clone());
    let foreign: Vec<&Alert> =
        alerts.iter().filter(|a| a.detector == "scim-token-foreign-use").collect();
    assert_eq!(foreign.len(), 1, "two calls from one network, one agent and one day: one finding");
    assert_eq!(foreign[0].severity, Severity::Critical);
    assert!(foreign[0].summary.contains("203.0.113.50 is outside Okta's published IP ranges"));
    assert!(foreign[0].summary.contains("python-requests"), "{}", foreign[0].summary);
    // The five rejected calls from Okta's own network: a burst, not foreign use.
    let rejected: Vec<&Alert> =
        alerts.iter().filter(|a| a.detector == "scim-token-rejected").collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].event_ids.len(), 5);
    assert_eq!(alerts.len(), 2, "{:?}", detectors(&alerts));

    // Without the ranges, the user agent alone tells; with neither check, nothing.
    let alerts = run(&mut engine(SigninSettings::default()), activities.clone());
    assert_eq!(detectors(&alerts).iter().filter(|d| **d == "scim-token-foreign-use").count(), 1);
    let blind = SigninSettings { scim_user_agents: vec![], ..Default::default() };
    let alerts = run(&mut engine(blind), activities.clone());
    assert!(!detectors(&alerts).contains(&"scim-token-foreign-use"));
    // A cell that does not hold Okta's own network: its calls are foreign too (one finding for
    // its /24, one for the other network).
    let alerts = run(&mut engine(scim_settings(&["emea_cell_1"])), activities);
    assert_eq!(detectors(&alerts).iter().filter(|d| **d == "scim-token-foreign-use").count(), 2);
}

#[test]
fn okta_ip_ranges_files_are_read_strictly() {
    use crate::signin::settings::okta_ip_ranges;
    assert_eq!(okta_ip_ranges(OKTA_RANGES_TEST, &[]).unwrap().len(), 3);
    for (bad, cells) in [
        ("[]", vec![]),
        ("{\"us_cell_1\": {}}", vec![]),
        ("{\"us_cell_1\": {\"ip_ranges\": [\"not-a-net\"]}}", vec![]),
        (OKTA_RANGES_TEST, vec!["apac_cell_9".to_owned()]),
        ("not json", vec![]),
    ] {
        assert!(okta_ip_ranges(bad, &cells).is_err(), "{bad}");
    }
}

#[test]
fn a_successful_call_after_a_revocation_took_effect_is_revoked_session_used_once() {
    // The proof a revocation needs: a call that succeeded after the deny was in place means a
    // way in the deny did not cover (a set not covered, an entitlement, a portal session).
    let revoked_at = at(T0);
    let mut e = engine(SigninSettings::default());
    let ctx = || UserContext {
        revoked: Some(Revocation { at: revoked_at, user_id: "9067-alice".into() }),
        ..Default::default()
    };
    e.load("alice@acme.example", ctx());
    // Within the provisioning grace, and calls the deny refused: quiet.
    let mut denied = portal(DE, "2026-11-24T10:20:00Z", "e2", "ReadOnly");
    denied.error_code = Some("AccessDenied".into());
    let quiet = run(&mut e, vec![portal(DE, "2026-11-24T10:03:00Z", "e1", "ReadOnly"), denied]);
    assert!(quiet.is_empty(), "{quiet:#?}");
    // A success after it: critical, once.
    let found = run(
        &mut e,
        vec![
            portal(DE, "2026-11-24T10:30:00Z", "e3", "ReadOnly"),
            portal(DE, "2026-11-24T10:31:00Z", "e4", "ReadOnly"),
        ],
    );
    assert_eq!(detectors(&found), ["revoked-session-used"]);
    assert_eq!(found[0].severity, crate::alert::Severity::Critical);
    assert_eq!(found[0].event_ids, ["e3"]);
    // Loading the same revocation again (the next batch) does not repeat it.
    e.load("alice@acme.example", ctx());
    assert!(run(&mut e, vec![portal(DE, "2026-11-24T10:40:00Z", "e5", "ReadOnly")]).is_empty());
    // Someone else is not affected.
    let mut bob = portal(DE, "2026-11-24T10:30:00Z", "b1", "ReadOnly");
    bob.user_name = Some("bob@acme.example".into());
    assert!(run(&mut e, vec![bob]).is_empty());
}

#[test]
fn an_idc_sign_in_with_no_okta_sso_behind_it_is_signin_without_okta_where_okta_data_covers_it() {
    // An attacker with another IdP configured (or a forged assertion) signs in as alice: IAM
    // Identity Center records an EXTERNAL_IDP sign-in, Okta has no SSO of alice to the AWS app.
    let mut e = engine(SigninSettings::default());
    // Okta's data covers the morning (bob's SSO at 09:50 and 10:30).
    e.okta("bob@acme.example", okta_sso(DE, "2026-11-24T09:50:00Z", "okta-b1", true));
    e.okta("bob@acme.example", okta_sso(DE, "2026-11-24T10:30:00Z", "okta-b2", true));
    let found = run(&mut e, vec![signin(DE, "2026-11-24T10:05:00Z", "e1")]);
    assert_eq!(detectors(&found), ["signin-without-okta"]);
    assert_eq!(found[0].severity, Severity::High);
    // Look-alike: the same sign-in with alice's Okta SSO two minutes before is quiet.
    let mut e = engine(SigninSettings::default());
    e.okta("bob@acme.example", okta_sso(DE, "2026-11-24T10:30:00Z", "okta-b2", true));
    e.okta("alice@acme.example", okta_sso(DE, "2026-11-24T10:03:00Z", "okta-a1", true));
    assert!(run(&mut e, vec![signin(DE, "2026-11-24T10:05:00Z", "e1")]).is_empty());
    // No Okta data for the period: silent, and counted as not checked.
    let mut e = engine(SigninSettings::default());
    e.okta("bob@acme.example", okta_sso(DE, "2026-11-20T10:30:00Z", "okta-old", true));
    assert!(run(&mut e, vec![signin(DE, "2026-11-24T10:05:00Z", "e1")]).is_empty());
    assert_eq!(e.okta_unchecked, 1);
}

const DEVICE_TOKEN: &str =
    include_str!("../../../events/cloudtrail/idc/sso-oauth-create-token-device-code.json");

/// Alice's device-code token redeemed from `ip` at `time`.
fn device_token(ip: &str, time: &str, id: &str) -> Activity {
    let mut a = parse(DEVICE_TOKEN.as_bytes()).activities.remove(0);
    assert!(matches!(a.kind, Kind::DeviceToken { success: true }), "{:?}", a.kind);
    a.user_name = Some("alice@acme.example".into());
    a.source_ip = Some(ip.parse().unwrap());
    a.time = at(time);
    a.event_id = id.into();
    a
}

#[test]
fn a_device_code_redeemed_away_from_the_approving_browser_is_device_code_phishing() {
    // The attacker starts a device authorization, sends alice the link; she approves it in her
    // browser (her IdC sign-in, from DE); the attacker redeems the code from elsewhere.
    let mut e = engine(SigninSettings::default());
    let found = run(
        &mut e,
        vec![
            signin(DE, "2026-11-24T10:00:00Z", "e1"),
            device_token("185.220.101.33", "2026-11-24T10:05:00Z", "t1"),
        ],
    );
    assert!(detectors(&found).contains(&"device-code-phishing"), "{found:#?}");
    // Look-alikes: her own CLI on the machine that approved it; or an approval long before.
    let mut e = engine(SigninSettings::default());
    let own = run(
        &mut e,
        vec![
            signin(DE, "2026-11-24T10:00:00Z", "e1"),
            device_token(DE, "2026-11-24T10:05:00Z", "t1"),
        ],
    );
    assert!(!detectors(&own).contains(&"device-code-phishing"), "{own:#?}");
    let mut e = engine(SigninSettings::default());
    let stale = run(
        &mut e,
        vec![
            signin(DE, "2026-11-24T07:00:00Z", "e1"),
            device_token("185.220.101.33", "2026-11-24T10:05:00Z", "t1"),
        ],
    );
    assert!(!detectors(&stale).contains(&"device-code-phishing"), "{stale:#?}");
}
