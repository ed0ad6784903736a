//! The exactly-once property of the sign-in checks: a finding is a function of the events, not
//! of the order or the number of times they are read. One trail that makes every kind of
//! finding; any permutation and duplication of it read at once gives the in-order read's ids,
//! a read in two parts (two runs sharing the state) finds the same, and re-reading any subset of
//! it with the same state gives no new id.
//!
//! `PROPTEST_CASES` raises the number of cases (CI runs the default below).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration};
use proptest::prelude::*;

use super::*;
use crate::adapters::SqliteStateStore;
use crate::geo::Geo;
use crate::records::{Lifecycle, LifecycleStatus};
use crate::signin::model::Kind;
use crate::signin::okta::OktaFact;
use crate::signin::ports::NoDirectory;
use crate::signin::settings::SigninSettings;
use crate::signin::sources::parse;

const T0: &str = "2026-11-24T10:00:00Z";

fn fixture(text: &str) -> Activity {
    parse(text.as_bytes()).activities.remove(0)
}

/// One activity of `kind_of` the fixture, by `user` from `ip` at T0 + `minutes`.
fn event(fixture_text: &str, user: Option<&str>, ip: &str, minutes: i64, id: &str) -> Activity {
    let mut a = fixture(fixture_text);
    a.user_name = user.map(Into::into);
    a.user_id = user.map(|u| format!("id-{u}").into());
    a.source_ip = Some(ip.parse().unwrap());
    a.time = DateTime::parse_from_rfc3339(T0).unwrap().to_utc() + Duration::minutes(minutes);
    a.event_id = id.to_owned();
    a
}

const SIGNIN: &str = include_str!("../../../events/cloudtrail/idc-signin-2025-shape.json");
const PORTAL: &str = include_str!("../../../events/cloudtrail/sso-get-role-credentials.json");
const CREDENTIAL_FAILURE: &str =
    include_str!("../../../events/cloudtrail/credential-verification-failure-legacy-shape.json");
const CONSOLE_FAILURE: &str =
    include_str!("../../../events/cloudtrail/console-login-iam-user-failure.json");
const ROOT: &str = include_str!("../../../events/cloudtrail/console-login-root.json");
const SCIM: &str = include_str!("../../../events/cloudtrail/scim/identitystore-scim-calls.json");

const DE: &str = "5.44.46.10";
const AU: &str = "1.0.0.1";
const US: &str = "5.83.131.10";
const GB: &str = "5.133.205.10";
const ATTACKER: &str = "203.0.113.45";

fn portal(user: &str, ip: &str, minutes: i64, id: &str, permission_set: &str) -> Activity {
    let mut a = event(PORTAL, Some(user), ip, minutes, id);
    a.permission_set = Some(permission_set.into());
    a.session_id = Some(format!("session-{user}-{}", minutes / 600).into());
    a
}

/// A trail that makes impossible-travel (three pairs), new-country, brute-force,
/// password-spraying, root-signin(-failed), console-brute-force(-success), token-replay,
/// privileged-off-hours, deactivated-user-activity, scim-token-foreign-use and
/// scim-token-rejected.
fn trail() -> Vec<Activity> {
    let mut t = vec![
        // alice: DE, AU 40 minutes later, DE again, then the US within three hours.
        event(SIGNIN, Some("alice"), DE, 0, "a1"),
        portal("alice", DE, 5, "a2", "ReadOnly"),
        portal("alice", AU, 40, "a3", "ReadOnly"),
        portal("alice", AU, 50, "a4", "ReadOnly"),
        event(SIGNIN, Some("alice"), DE, 90, "a5"),
        portal("alice", US, 180, "a6", "ReadOnly"),
        portal("alice", GB, 1_200, "a7", "ReadOnly"),
        // bob: at home in GB, an administrator at 23:00.
        event(SIGNIN, Some("bob"), GB, 0, "b1"),
        portal("bob", GB, 780, "b2", "AdministratorAccess"),
        // ivy: one portal session from two networks.
        portal("ivy", DE, 0, "i1", "ReadOnly"),
        portal("ivy", "5.44.47.10", 20, "i2", "ReadOnly"),
        // jim: active after Okta deactivated him.
        portal("jim", US, 30, "j1", "ReadOnly"),
        portal("jim", US, 35, "j2", "ReadOnly"),
        // root: failures from two networks, then a success.
        event(ROOT, None, ATTACKER, 60, "r-ok"),
    ];
    // carol: twelve credential failures in three minutes.
    t.extend((0..12).map(|i| {
        let mut a = event(CREDENTIAL_FAILURE, Some("carol"), ATTACKER, 0, &format!("c{i}"));
        a.time += Duration::seconds(15 * i);
        a
    }));
    // Five IAM users failing from one network; deploy-bot eleven times, then succeeding.
    for (i, user) in ["dan", "eve", "fay", "gus", "hal"].iter().enumerate() {
        t.push(event(CONSOLE_FAILURE, Some(user), ATTACKER, 200 + i as i64, &format!("s{i}")));
    }
    for i in 0..11 {
        let mut a = event(CONSOLE_FAILURE, Some("deploy-bot"), GB, 300, &format!("d{i}"));
        a.time += Duration::seconds(20 * i);
        t.push(a);
    }
    let mut ok = event(CONSOLE_FAILURE, Some("deploy-bot"), GB, 305, "d-ok");
    if let Kind::ConsoleLogin { success, mfa_used, .. } = &mut ok.kind {
        (*success, *mfa_used) = (true, true);
    }
    t.push(ok);
    for (i, ip) in [ATTACKER, US, ATTACKER].iter().enumerate() {
        let mut a = event(ROOT, None, ip, 50 + i as i64, &format!("r{i}"));
        if let Kind::ConsoleLogin { success, .. } = &mut a.kind {
            *success = false;
        }
        t.push(a);
    }
    // The SCIM token: twice from a foreign client, then six rejected calls in two minutes.
    for i in 0..2 {
        let mut a = event(SCIM, None, ATTACKER, 400 + i, &format!("sf{i}"));
        a.user_agent = Some("python-requests/2.32.3".into());
        t.push(a);
    }
    for i in 0..6 {
        let mut a = event(SCIM, None, US, 500, &format!("sr{i}"));
        a.time += Duration::seconds(20 * i);
        a.error_code = Some("UnauthorizedException".into());
        if let Kind::ScimCall { success, .. } = &mut a.kind {
            *success = false;
        }
        t.push(a);
    }
    t.sort_by(|a, b| (a.time, &a.event_id).cmp(&(b.time, &b.event_id)));
    t
}

fn engine() -> Engine {
    let privileged = BTreeSet::from(["AdministratorAccess".to_owned()]);
    Engine::new(Arc::new(SigninSettings::default()), privileged, Arc::new(Geo::default()))
}

/// One read as the CLI does it: through a reorder buffer large enough for the input, with the
/// state in `store`; the ids of the findings.
fn read(store: &SqliteStateStore, input: Vec<Activity>) -> BTreeSet<String> {
    let mut scanner = Scanner::new(engine(), Some(store), &NoDirectory);
    scanner.engine.okta(
        "jim",
        OktaFact::Lifecycle(Lifecycle {
            login: "jim".into(),
            status: LifecycleStatus::Deactivated,
            user_id: None,
            at: DateTime::parse_from_rfc3339(T0).unwrap().to_utc(),
            event_id: "okta-deactivate-jim".into(),
        }),
    );
    let mut reorder = Reorder::new(input.len() + 1, Duration::hours(24));
    let mut batches: Vec<Vec<Activity>> = input.into_iter().map(|a| reorder.push(a)).collect();
    batches.push(reorder.finish());
    let run = async {
        let mut ids = BTreeSet::new();
        for batch in batches.into_iter().filter(|b| !b.is_empty()) {
            ids.extend(scanner.process(batch).await.unwrap().into_iter().map(|a| a.id));
        }
        scanner.save().await.unwrap();
        ids
    };
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run)
}

fn store() -> (SqliteStateStore, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("idc-guard-exact-{}.db", fastrand::u64(..)));
    (SqliteStateStore::open(&path).unwrap(), path)
}

fn detectors_of(input: Vec<Activity>) -> BTreeSet<String> {
    let (s, path) = store();
    let mut scanner = Scanner::new(engine(), Some(&s), &NoDirectory);
    let run = scanner.process(input);
    let alerts = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run);
    let _ = std::fs::remove_file(path);
    alerts.unwrap().into_iter().map(|a| a.detector).collect()
}

#[test]
fn the_trail_makes_every_kind_of_finding() {
    let found = detectors_of(trail());
    for d in [
        "impossible-travel",
        "new-country",
        "brute-force",
        "password-spraying",
        "root-signin",
        "root-signin-failed",
        "console-brute-force",
        "console-brute-force-success",
        "token-replay",
        "privileged-off-hours",
        "scim-token-foreign-use",
        "scim-token-rejected",
    ] {
        assert!(found.contains(d), "{d} missing from {found:?}");
    }
}

#[test]
fn a_second_read_of_the_same_trail_with_the_same_state_raises_no_new_id() {
    let (s, path) = store();
    let first = read(&s, trail());
    assert!(first.len() >= 12, "{first:?}");
    let mut backwards = trail();
    backwards.reverse();
    let again = read(&s, backwards);
    assert!(again.is_subset(&first), "new ids: {:?}", again.difference(&first).collect::<Vec<_>>());
    let _ = std::fs::remove_file(path);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_permutation_or_duplication_read_at_once_finds_the_in_order_ids(
        order in Just((0..trail().len()).collect::<Vec<usize>>()).prop_shuffle(),
        twice in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let t = trail();
        let (s1, p1) = store();
        let expected = read(&s1, t.clone());
        let mut input: Vec<Activity> = order.iter().map(|&i| t[i].clone()).collect();
        for i in &twice {
            let a = t[i.index(t.len())].clone();
            input.insert(i.index(input.len()), a);
        }
        let (s2, p2) = store();
        let got = read(&s2, input);
        let _ = (std::fs::remove_file(p1), std::fs::remove_file(p2));
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn re_reading_any_subset_in_any_order_raises_no_new_id(
        keep in proptest::collection::vec(any::<bool>(), trail().len()),
        order in Just((0..trail().len()).collect::<Vec<usize>>()).prop_shuffle(),
        split in 0..trail().len(),
    ) {
        let t = trail();
        let (s, path) = store();
        // The trail read in two in-order parts (two scans, or two invocations) finds what one
        // read finds...
        let mut seen = read(&s, t[..split].to_vec());
        seen.extend(read(&s, t[split..].to_vec()));
        let (whole, whole_path) = store();
        let at_once = read(&whole, t.clone());
        let _ = std::fs::remove_file(whole_path);
        prop_assert_eq!(&seen, &at_once, "split at {}", split);
        // ...then any subset of it again, shuffled.
        let subset: Vec<Activity> =
            order.iter().filter(|&&i| keep[i]).map(|&i| t[i].clone()).collect();
        let again = read(&s, subset);
        let _ = std::fs::remove_file(path);
        let new: Vec<&String> = again.difference(&seen).collect();
        prop_assert!(new.is_empty(), "new ids on re-read: {:?}", new);
    }
}

/// A trip as an organisation trail records it: alice signs in and works from Germany, uses the
/// portal from Australia twenty minutes later (and for an hour), is back in Germany in the
/// afternoon; bob stays in Britain. Each event sits in one of several log files.
fn trip() -> Vec<Activity> {
    let mut t = Vec::new();
    for (i, m) in [0, 7, 12, 18].iter().enumerate() {
        t.push(portal("alice", DE, *m, &format!("de{i}"), "ReadOnly"));
    }
    t.push(event(SIGNIN, Some("alice"), DE, 3, "de-signin"));
    for (i, m) in [40, 44, 52, 70, 95].iter().enumerate() {
        t.push(portal("alice", AU, *m, &format!("au{i}"), "ReadOnly"));
    }
    for (i, m) in [300, 310].iter().enumerate() {
        t.push(portal("alice", DE, *m, &format!("back{i}"), "ReadOnly"));
    }
    for (i, m) in [5, 60, 200].iter().enumerate() {
        t.push(portal("bob", GB, *m, &format!("gb{i}"), "ReadOnly"));
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Log files overlap in time, and the S3 path reads them one at a time: however the events
    /// are spread over files, whatever order the files come in and however the reads are cut,
    /// each travel incident keeps one id (a later, better pair is the same incident), and no
    /// new-country incident of the whole read is lost. (One can be added: when the home
    /// country's morning arrives after the afternoon, the afternoon was new when it was read.)
    #[test]
    fn a_trail_read_file_by_file_raises_the_ids_of_one_whole_read(
        file_of in proptest::collection::vec(0..6usize, trip().len()),
        file_order in Just((0..6usize).collect::<Vec<usize>>()).prop_shuffle(),
        cuts in proptest::collection::btree_set(1..6usize, 0..4),
    ) {
        let t = trip();
        let (whole, whole_path) = store();
        let at_once = read(&whole, t.clone());
        let _ = std::fs::remove_file(whole_path);
        let files: Vec<Vec<Activity>> = file_order
            .iter()
            .map(|&f| t.iter().zip(&file_of).filter(|(_, of)| **of == f).map(|(a, _)| a.clone()).collect())
            .collect();
        let (s, path) = store();
        let mut seen = BTreeSet::new();
        let mut start = 0;
        for end in cuts.iter().copied().chain([files.len()]) {
            seen.extend(read(&s, files[start..end].concat()));
            start = end;
        }
        let _ = std::fs::remove_file(path);
        let of = |ids: &BTreeSet<String>, d: &str| -> BTreeSet<String> {
            ids.iter().filter(|id| id.starts_with(d)).cloned().collect()
        };
        for d in ["impossible-travel", "token-replay"] {
            prop_assert_eq!(of(&seen, d), of(&at_once, d), "{}", d);
        }
        let lost: Vec<String> = of(&at_once, "new-country").difference(&seen).cloned().collect();
        prop_assert!(lost.is_empty(), "new-country lost: {:?}", lost);
        let travel = at_once.iter().filter(|id| id.starts_with("impossible-travel")).count();
        prop_assert_eq!(travel, 2, "DE → AU and AU → DE: {:?}", at_once);
    }
}
