//! Session revocation against the fake IdC that enforces what moto cannot (asynchronous
//! provisioning with its status, the 32,768-character inline policy limit). Paused time.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use super::revoke_policy::{REVOKE_SID, revoked_ids};
use super::*;
use crate::access::Policy;
use crate::access::reconcile::{Limits, Scope};
use crate::access::sync::AccessSyncHandler;
use crate::adapters::SqliteStateStore;
use crate::okta::ports::NoSystemLog;
use crate::records::{self, Lifecycle, LifecycleStatus, RevokedSessions};
use crate::testing::faults::RecordingSink;
use crate::testing::{FakeIdentityCenter, FakeOrganizations};

const PAYMENTS: &str = "111111111111";
const SANDBOX: &str = "222222222222";

fn policy_text(readonly_inline: Option<&str>, keep: bool) -> String {
    let inline = readonly_inline.map(|i| format!("inline_policy = '{i}'\n")).unwrap_or_default();
    format!(
        r#"
[settings]
keep_revoked_while_deactivated = {keep}

[[permission_set]]
name = "ReadOnly"
session_duration = "PT1H"
managed_policies = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
{inline}
[[permission_set]]
name = "Admin"
session_duration = "PT1H"
managed_policies = ["arn:aws:iam::aws:policy/AdministratorAccess"]

[[rule]]
groups = "aws-core-readonly"
permission_sets = ["ReadOnly"]
targets = {{ accounts = ["111111111111", "222222222222"] }}
tier = "core"

[[rule]]
groups = "aws-admin-payments"
permission_sets = ["Admin"]
targets = {{ accounts = ["111111111111"] }}
tier = "admin"
"#
    )
}

struct World<'a> {
    sync: AccessSyncHandler<
        FakeIdentityCenter,
        FakeOrganizations,
        SqliteStateStore,
        &'a RecordingSink,
        NoSystemLog,
    >,
    alice: String,
}

fn world<'a>(sink: &'a RecordingSink, text: &str) -> World<'a> {
    let idc = FakeIdentityCenter::new();
    idc.add_permission_set("ReadOnly", &["arn:aws:iam::aws:policy/ReadOnlyAccess"]);
    idc.add_permission_set("Admin", &["arn:aws:iam::aws:policy/AdministratorAccess"]);
    idc.add_permission_set("NotInPolicy", &[]);
    let core = idc.add_group("aws-core-readonly");
    let admin = idc.add_group("aws-admin-payments");
    let other = idc.add_group("engineering");
    idc.assign(&core, "ReadOnly", PAYMENTS);
    idc.assign(&core, "ReadOnly", SANDBOX);
    idc.assign(&admin, "Admin", PAYMENTS);
    idc.assign(&other, "NotInPolicy", SANDBOX);
    let alice = idc.add_user("alice@acme.example");
    let bob = idc.add_user("bob@acme.example");
    for g in [&core, &admin, &other] {
        idc.add_member(g, &alice);
    }
    idc.add_member(&core, &bob);
    let org = FakeOrganizations::new("000000000000");
    org.add_account(PAYMENTS, "payments", "ou-fake", &[]);
    org.add_account(SANDBOX, "sandbox", "ou-fake", &[]);
    let (policy, d) = Policy::check(text, None);
    let sync = AccessSyncHandler {
        idc,
        org,
        store: SqliteStateStore::in_memory().unwrap(),
        sink,
        system_log: None::<NoSystemLog>,
        policy: policy.unwrap_or_else(|| panic!("{d:?}")),
        instance_arn: None,
        limits: Limits::default(),
        requeue: None,
    };
    World { sync, alice }
}

fn now() -> DateTime<Utc> {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

fn denied(w: &World<'_>, permission_set: &str) -> BTreeSet<String> {
    revoked_ids(w.sync.idc.inline_policy_of(permission_set).as_deref())
}

#[tokio::test(start_paused = true)]
async fn a_revocation_denies_every_permission_set_the_user_could_use_once_and_is_idempotent() {
    let sink = RecordingSink::new("sns");
    let w = world(&sink, &policy_text(None, false));
    let report = w
        .sync
        .revoke_sessions("alice@acme.example", "Okta user.lifecycle.deactivate", false, now())
        .await
        .unwrap();
    assert_eq!(report.user_id.as_deref(), Some(w.alice.as_str()));
    let names: Vec<&str> = report.covered.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ReadOnly", "Admin"], "NotInPolicy is not the policy's");
    assert!(report.applied && report.not_covered.is_empty());
    assert_eq!(denied(&w, "ReadOnly"), BTreeSet::from([w.alice.clone()]));
    assert_eq!(denied(&w, "Admin"), BTreeSet::from([w.alice.clone()]));
    assert!(w.sync.idc.inline_policy_of("NotInPolicy").is_none());
    // The longest session (1 h) plus the margin.
    assert_eq!(report.release_after, Some(now() + Duration::minutes(75)));
    let record: RevokedSessions =
        records::load(&w.sync.store, &RevokedSessions::key_of(&w.alice)).await.unwrap().unwrap();
    assert_eq!(record.accounts, [PAYMENTS, SANDBOX]);
    assert_eq!(sink.sent().len(), 1, "sessions-revoked");

    // Again (Okta redelivers, a person runs `idc-guard revoke`): nothing changes, no new alert.
    let again = w
        .sync
        .revoke_sessions("alice@acme.example", "idc-guard revoke", false, now())
        .await
        .unwrap();
    assert!(again.applied);
    assert_eq!(denied(&w, "ReadOnly").len(), 1);
    assert_eq!(w.sync.idc.inline_policy_of("ReadOnly").unwrap().matches(REVOKE_SID).count(), 1);
    assert_eq!(sink.sent().len(), 1, "the same revocation is alerted once");
    // An unknown user: nothing to revoke, no error.
    let nobody = w.sync.revoke_sessions("nobody@acme.example", "t", false, now()).await.unwrap();
    assert!(nobody.user_id.is_none() && !nobody.applied);
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_changes_nothing() {
    let sink = RecordingSink::new("sns");
    let w = world(&sink, &policy_text(None, false));
    let report = w.sync.revoke_sessions("alice@acme.example", "t", true, now()).await.unwrap();
    assert_eq!(report.covered.len(), 2);
    assert!(!report.applied);
    assert!(w.sync.idc.inline_policy_of("ReadOnly").is_none());
    assert!(sink.sent().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_deny_survives_a_change_of_the_permission_sets_inline_policy_and_a_reconcile() {
    let sink = RecordingSink::new("sns");
    let w = world(&sink, &policy_text(None, false));
    w.sync.revoke_sessions("alice@acme.example", "t", false, now()).await.unwrap();
    // A reconcile with the same policy: the deny is idc-guard's own, not drift.
    let report = w.sync.reconcile(Scope::All).await.unwrap();
    assert!(report.permission_set_changes.iter().all(|c| !c.contains("inline")), "{report:?}");
    assert_eq!(denied(&w, "ReadOnly"), BTreeSet::from([w.alice.clone()]));
    // The policy now gives ReadOnly an inline policy: written with the deny kept.
    let extra = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    let mut changed = world(&sink, &policy_text(Some(extra), false));
    changed.sync.idc = w.sync.idc;
    changed.sync.store = w.sync.store;
    let report = changed.sync.reconcile(Scope::All).await.unwrap();
    assert!(report.permission_set_changes.iter().any(|c| c == "put inline policy of ReadOnly"));
    let inline = changed.sync.idc.inline_policy_of("ReadOnly").unwrap();
    assert!(inline.contains("s3:GetObject"), "{inline}");
    assert_eq!(revoked_ids(Some(&inline)), BTreeSet::from([w.alice.clone()]));
    assert!(!changed.sync.reconcile(Scope::All).await.unwrap().has_changes(), "converged");
}

/// A deactivation during a reconcile: the reconcile read ReadOnly's inline policy before the
/// deny was added and wrote it back after, without it (a CLI `apply` next to the function). The
/// next reconcile puts the recorded deny back; so does the revocation's own check.
#[tokio::test(start_paused = true)]
async fn a_deny_lost_to_a_stale_write_is_put_back() {
    use crate::access::ports::IdentityCenter;
    let sink = RecordingSink::new("sns");
    let extra = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    let w = world(&sink, &policy_text(Some(extra), false));
    assert!(w.sync.reconcile(Scope::All).await.unwrap().has_changes());
    let stale = w.sync.idc.inline_policy_of("ReadOnly").unwrap();
    w.sync.revoke_sessions("alice@acme.example", "t", false, now()).await.unwrap();
    let arn = w.sync.idc.permission_set_arn("ReadOnly").unwrap();
    // (The fake's request rate refills: a person's write, not the reconciler's burst.)
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    w.sync.idc.set_inline_policy("i", &arn, Some(&stale)).await.unwrap();
    assert!(denied(&w, "ReadOnly").is_empty(), "the stale write dropped it");
    let report = w.sync.reconcile(Scope::All).await.unwrap();
    assert!(
        report.permission_set_changes.iter().any(|c| c == "update the session deny in ReadOnly"),
        "{report:?}"
    );
    assert_eq!(denied(&w, "ReadOnly"), BTreeSet::from([w.alice.clone()]));
    assert!(w.sync.idc.inline_policy_of("ReadOnly").unwrap().contains("s3:GetObject"));
    assert!(!w.sync.reconcile(Scope::All).await.unwrap().has_changes(), "converged");
    // The same loss repaired by running the revocation again.
    // (The fake's request rate refills: a person's write, not the reconciler's burst.)
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    w.sync.idc.set_inline_policy("i", &arn, Some(&stale)).await.unwrap();
    w.sync.revoke_sessions("alice@acme.example", "t", false, now()).await.unwrap();
    assert_eq!(denied(&w, "ReadOnly"), BTreeSet::from([w.alice.clone()]));
}

#[tokio::test(start_paused = true)]
async fn the_deny_is_released_after_the_sessions_end_or_kept_while_deactivated_when_asked() {
    let sink = RecordingSink::new("sns");
    let w = world(&sink, &policy_text(None, false));
    w.sync.revoke_sessions("alice@acme.example", "t", false, now()).await.unwrap();
    w.sync.revoke_sessions("bob@acme.example", "t", false, now()).await.unwrap();
    assert_eq!(denied(&w, "ReadOnly").len(), 2);
    assert!(w.sync.release_due(now() + Duration::minutes(30)).await.unwrap().is_empty());
    let released = w.sync.release_due(now() + Duration::minutes(76)).await.unwrap();
    assert_eq!(released.len(), 2);
    assert!(denied(&w, "ReadOnly").is_empty() && denied(&w, "Admin").is_empty());
    assert!(w.sync.store.query(RevokedSessions::PK).await.unwrap().is_empty());

    // With keep_revoked_while_deactivated, a user still deactivated in Okta stays denied.
    let w = world(&sink, &policy_text(None, true));
    w.sync.revoke_sessions("alice@acme.example", "t", false, now()).await.unwrap();
    let lifecycle = Lifecycle {
        login: "alice@acme.example".into(),
        status: LifecycleStatus::Deactivated,
        at: now(),
        user_id: None,
        event_id: "e".into(),
    };
    records::save(&w.sync.store, &lifecycle).await.unwrap();
    assert!(w.sync.release_due(now() + Duration::hours(5)).await.unwrap().is_empty());
    assert_eq!(denied(&w, "ReadOnly"), BTreeSet::from([w.alice.clone()]));
    // Reactivated in Okta: released at once.
    assert!(w.sync.release_sessions(&w.alice).await.unwrap());
    assert!(denied(&w, "ReadOnly").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_full_inline_policy_is_named_in_a_critical_alert_and_the_rest_is_covered() {
    let sink = RecordingSink::new("sns");
    let w = world(&sink, &policy_text(None, false));
    // Admin's inline policy is all but full: no room for the deny.
    use crate::access::ports::IdentityCenter;
    let arn = w.sync.idc.permission_set_arn("Admin").unwrap();
    let shell = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Pad","Effect":"Deny","Action":"x:","Resource":"*"}]}"#;
    let full = shell.replace("x:", &format!("x:{}", "a".repeat(32_740 - shell.len())));
    w.sync.idc.set_inline_policy("i", &arn, Some(&full)).await.unwrap();
    let report = w.sync.revoke_sessions("alice@acme.example", "t", false, now()).await.unwrap();
    assert_eq!(report.not_covered.len(), 1, "{report:?}");
    assert!(report.not_covered[0].starts_with("Admin"));
    assert_eq!(report.covered.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["ReadOnly"]);
    assert_eq!(denied(&w, "ReadOnly"), BTreeSet::from([w.alice.clone()]));
}

/// A deny without a revocation record (its release ran while a stale writer put it back) is
/// removed by the next reconcile: the records are the truth.
#[tokio::test(start_paused = true)]
async fn a_deny_whose_revocation_was_released_is_removed_by_the_reconcile() {
    use crate::store::StateStore;
    let sink = RecordingSink::new("sns");
    let w = world(&sink, &policy_text(None, false));
    w.sync.revoke_sessions("alice@acme.example", "t", false, now()).await.unwrap();
    w.sync.store.delete(RevokedSessions::PK, &w.alice).await.unwrap();
    let report = w.sync.reconcile(Scope::All).await.unwrap();
    assert!(
        report.permission_set_changes.iter().any(|c| c == "update the session deny in ReadOnly"),
        "{report:?}"
    );
    assert!(denied(&w, "ReadOnly").is_empty() && denied(&w, "Admin").is_empty());
    assert!(!w.sync.reconcile(Scope::All).await.unwrap().has_changes(), "converged");
}
