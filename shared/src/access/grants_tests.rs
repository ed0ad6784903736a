//! Time-boxed grants against an in-memory Okta (groups, users, memberships) and the fake IdC.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::access::Policy;
use crate::access::reconcile::Limits;
use crate::access::revoke_policy::revoked_ids;
use crate::adapters::SqliteStateStore;
use crate::okta::OktaEvent;
use crate::testing::faults::RecordingSink;
use crate::testing::{FakeIdentityCenter, FakeOrganizations};

/// Okta's groups and users; memberships change through the port only.
#[derive(Default)]
struct FakeOkta {
    groups: BTreeMap<String, String>,
    users: BTreeMap<String, String>,
    members: Mutex<BTreeSet<(String, String)>>,
    /// A grant another person's `approve` activates while a removal is under way: written to
    /// the state database at this path, with its membership, during the next removal.
    approve_during_remove: Mutex<Option<(std::path::PathBuf, Grant)>>,
}

impl FakeOkta {
    fn new() -> Self {
        let mut o = Self::default();
        o.groups.insert("aws-admin-platform".into(), "00g-admin".into());
        o.users.insert("alice@acme.example".into(), "00u-alice".into());
        o.users.insert("bob@acme.example".into(), "00u-bob".into());
        o
    }
    fn is_member(&self, login: &str) -> bool {
        let user = self.users[login].clone();
        self.members.lock().unwrap().contains(&("00g-admin".to_owned(), user))
    }
}

impl SystemLog for FakeOkta {
    async fn event_by_uuid(
        &self,
        _: &str,
        _: Option<DateTime<Utc>>,
    ) -> Result<Option<OktaEvent>, OktaError> {
        Ok(None)
    }
}

impl OktaGroups for FakeOkta {
    async fn group_id(&self, name: &str) -> Result<Option<String>, OktaError> {
        Ok(self.groups.get(name).cloned())
    }
    async fn user_id(&self, login: &str) -> Result<Option<String>, OktaError> {
        Ok(self.users.get(login).cloned())
    }
    async fn add_member(&self, g: &str, u: &str) -> Result<(), OktaError> {
        self.members.lock().unwrap().insert((g.to_owned(), u.to_owned()));
        Ok(())
    }
    async fn remove_member(&self, g: &str, u: &str) -> Result<(), OktaError> {
        self.members.lock().unwrap().remove(&(g.to_owned(), u.to_owned()));
        let concurrent = self.approve_during_remove.lock().unwrap().take();
        if let Some((path, grant)) = concurrent {
            let store = SqliteStateStore::open(&path).unwrap();
            records::save(&store, &grant).await.unwrap();
            self.members.lock().unwrap().insert((g.to_owned(), u.to_owned()));
        }
        Ok(())
    }
    async fn member_logins(&self, g: &str) -> Result<Vec<String>, OktaError> {
        let m = self.members.lock().unwrap();
        Ok(self
            .users
            .iter()
            .filter(|(_, id)| m.contains(&(g.to_owned(), (*id).clone())))
            .map(|(login, _)| login.clone())
            .collect())
    }
}

const POLICY: &str = r#"
[settings]
remove_unexplained_members = REMOVE

[[permission_set]]
name = "Admin"
session_duration = "PT1H"
managed_policies = ["arn:aws:iam::aws:policy/AdministratorAccess"]

[[rule]]
groups = "aws-admin-platform"
permission_sets = ["Admin"]
targets = { accounts = ["111111111111"] }
tier = "admin"

[[grantable]]
group = "aws-admin-platform"
max_duration = "4h"
approval = APPROVAL
"#;

type Handler<'a> = AccessSyncHandler<
    FakeIdentityCenter,
    FakeOrganizations,
    SqliteStateStore,
    &'a RecordingSink,
    FakeOkta,
>;

fn handler(sink: &RecordingSink, approval: bool, remove: bool) -> Handler<'_> {
    let idc = FakeIdentityCenter::new();
    idc.add_permission_set("Admin", &["arn:aws:iam::aws:policy/AdministratorAccess"]);
    let admin = idc.add_group("aws-admin-platform");
    idc.assign(&admin, "Admin", "111111111111");
    let alice = idc.add_user("alice@acme.example");
    idc.add_member(&admin, &alice);
    let org = FakeOrganizations::new("000000000000");
    org.add_account("111111111111", "platform", "ou-fake", &[]);
    let text =
        POLICY.replace("APPROVAL", &approval.to_string()).replace("REMOVE", &remove.to_string());
    let (policy, d) = Policy::check(&text, None);
    AccessSyncHandler {
        idc,
        org,
        store: SqliteStateStore::in_memory().unwrap(),
        sink,
        system_log: Some(FakeOkta::new()),
        policy: policy.unwrap_or_else(|| panic!("{d:?}")),
        instance_arn: None,
        limits: Limits::default(),
        requeue: None,
        account_access: None,
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

fn okta<'h>(h: &'h Handler<'_>) -> &'h FakeOkta {
    h.system_log.as_ref().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_grant_is_approved_by_another_person_added_in_okta_and_ends_on_time() {
    let sink = RecordingSink::new("sns");
    let h = handler(&sink, true, false);
    let g = h
        .grant_request(
            "alice@acme.example",
            "aws-admin-platform",
            Duration::hours(2),
            "INC-123",
            "arn:aws:sts::1:assumed-role/oncall/alice",
            now(),
        )
        .await
        .unwrap();
    assert_eq!(g.status, GrantStatus::Pending);
    assert!(!okta(&h).is_member("alice@acme.example"), "nothing before approval");
    let e = h.grant_approve(&g.id, "arn:aws:sts::1:assumed-role/oncall/alice", now()).await;
    assert!(matches!(e, Err(SyncError::Grant(m)) if m.contains("self-approval")));
    let g = h.grant_approve(&g.id, "arn:aws:sts::1:assumed-role/oncall/bob", now()).await.unwrap();
    assert_eq!(g.status, GrantStatus::Active);
    assert_eq!(g.expires_at, Some(now() + Duration::hours(2)));
    assert!(okta(&h).is_member("alice@acme.example"));
    assert!(h.grant_approve(&g.id, "someone-else", now()).await.is_err(), "not pending any more");

    // Not yet due: nothing ends.
    assert!(h.expire_grants(now() + Duration::minutes(119)).await.unwrap().is_empty());
    let ended = h.expire_grants(now() + Duration::hours(2)).await.unwrap();
    assert_eq!(ended.len(), 1);
    assert!(!okta(&h).is_member("alice@acme.example"), "membership removed at expiry");
    // Her live sessions on the group's permission set are denied.
    let alice_id = h.idc.find_user_id("d", "alice@acme.example").await.unwrap().unwrap();
    assert_eq!(revoked_ids(h.idc.inline_policy_of("Admin").as_deref()), BTreeSet::from([alice_id]));
    let detectors: Vec<String> = sink.sent();
    assert_eq!(detectors.len(), 4, "requested, approved, sessions revoked, expired: {detectors:?}");
    let all = h.grants().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, GrantStatus::Expired);
    assert_eq!(all[0].approved_by.as_deref(), Some("arn:aws:sts::1:assumed-role/oncall/bob"));
}

#[tokio::test(start_paused = true)]
async fn requests_outside_the_policy_are_refused_and_a_group_without_approval_is_granted_at_once() {
    let sink = RecordingSink::new("sns");
    let h = handler(&sink, false, false);
    for (group, duration, reason) in [
        ("aws-core-readers", Duration::hours(1), "x"),
        ("aws-admin-platform", Duration::hours(5), "x"),
        ("aws-admin-platform", Duration::hours(1), "  "),
    ] {
        let e = h.grant_request("alice@acme.example", group, duration, reason, "me", now()).await;
        assert!(matches!(e, Err(SyncError::Grant(_))), "{group} {duration} {reason:?}");
    }
    assert!(h.grants().await.unwrap().is_empty());
    let g = h
        .grant_request(
            "alice@acme.example",
            "aws-admin-platform",
            Duration::hours(1),
            "INC-9",
            "me",
            now(),
        )
        .await
        .unwrap();
    assert_eq!(g.status, GrantStatus::Active);
    assert!(okta(&h).is_member("alice@acme.example"));
}

#[tokio::test(start_paused = true)]
async fn overlapping_grants_end_at_the_latest_expiry() {
    let sink = RecordingSink::new("sns");
    let h = handler(&sink, false, false);
    let who = "alice@acme.example";
    h.grant_request(who, "aws-admin-platform", Duration::hours(2), "INC-1", "me", now())
        .await
        .unwrap();
    h.grant_request(
        who,
        "aws-admin-platform",
        Duration::hours(3),
        "INC-2",
        "me",
        now() + Duration::hours(1),
    )
    .await
    .unwrap();
    // The first ends at +2h: the second (until +4h) keeps the membership, and no session is cut.
    assert_eq!(h.expire_grants(now() + Duration::hours(2)).await.unwrap().len(), 1);
    assert!(okta(&h).is_member(who), "an earlier expiry never cuts a later grant short");
    assert!(h.idc.inline_policy_of("Admin").is_none());
    assert_eq!(h.expire_grants(now() + Duration::hours(4)).await.unwrap().len(), 1);
    assert!(!okta(&h).is_member(who));
}

#[tokio::test(start_paused = true)]
async fn a_membership_no_grant_explains_is_reported_or_removed() {
    let sink = RecordingSink::new("sns");
    let h = handler(&sink, false, false);
    okta(&h).add_member("00g-admin", "00u-bob").await.unwrap();
    let found = h.unexplained_members(now()).await.unwrap();
    assert_eq!(found, [("aws-admin-platform".to_owned(), "bob@acme.example".to_owned())]);
    assert!(okta(&h).is_member("bob@acme.example"), "reported only");
    assert_eq!(sink.sent().len(), 1);
    // Reported once.
    h.unexplained_members(now()).await.unwrap();
    assert_eq!(sink.sent().len(), 1);

    let sink = RecordingSink::new("sns");
    let h = handler(&sink, false, true);
    okta(&h).add_member("00g-admin", "00u-bob").await.unwrap();
    h.grant_request(
        "alice@acme.example",
        "aws-admin-platform",
        Duration::hours(1),
        "INC-3",
        "me",
        now(),
    )
    .await
    .unwrap();
    let found = h.unexplained_members(now()).await.unwrap();
    assert_eq!(found.len(), 1, "alice's membership is explained by her grant");
    assert!(!okta(&h).is_member("bob@acme.example"), "removed, as the policy says");
    assert!(okta(&h).is_member("alice@acme.example"));
}

/// A grant expiring while another is approved: the approval lands between the expiry's check
/// and its removal of the membership. The expiry sees the new grant and puts the membership
/// back; no session is denied.
#[tokio::test(start_paused = true)]
async fn a_grant_approved_while_another_ends_keeps_its_membership() {
    let sink = RecordingSink::new("sns");
    let mut h = handler(&sink, false, false);
    let path = std::env::temp_dir().join(format!("idc-guard-grants-{}.db", fastrand::u64(..)));
    h.store = SqliteStateStore::open(&path).unwrap();
    let who = "alice@acme.example";
    let first = h
        .grant_request(who, "aws-admin-platform", Duration::hours(1), "INC-1", "me", now())
        .await
        .unwrap();
    let mut second = first.clone();
    second.id = "g-approved-meanwhile".into();
    second.reason = "INC-2".into();
    second.approved_by = Some("bob".into());
    second.expires_at = Some(now() + Duration::hours(3));
    *okta(&h).approve_during_remove.lock().unwrap() = Some((path.clone(), second));
    let ended = h.expire_grants(now() + Duration::hours(1)).await.unwrap();
    assert_eq!(ended.len(), 1);
    assert!(okta(&h).is_member(who), "the later grant keeps the membership");
    assert!(h.idc.inline_policy_of("Admin").is_none(), "no session of the later grant is cut");
    let statuses: Vec<(String, GrantStatus)> =
        h.grants().await.unwrap().into_iter().map(|g| (g.id, g.status)).collect();
    assert!(
        statuses.contains(&("g-approved-meanwhile".into(), GrantStatus::Active)),
        "{statuses:?}"
    );
    let _ = std::fs::remove_file(path);
}

#[tokio::test(start_paused = true)]
async fn a_grant_of_a_user_okta_no_longer_has_ends_without_failing_the_run() {
    let sink = RecordingSink::new("sns");
    let mut h = handler(&sink, false, false);
    h.grant_request(
        "alice@acme.example",
        "aws-admin-platform",
        Duration::hours(1),
        "INC-4",
        "me",
        now(),
    )
    .await
    .unwrap();
    h.system_log.as_mut().unwrap().users.remove("alice@acme.example");
    let ended = h.expire_grants(now() + Duration::hours(1)).await.unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(h.grants().await.unwrap()[0].status, GrantStatus::Expired);
}
