//! Time-boxed grants against an in-memory Okta (users, groups, memberships), the fake IdC and a
//! fake Slack. The first tests are the attacks: each one got around the controls of the CLI-side
//! grants this module replaced.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::slack::SlackApi;
use super::*;
use crate::access::Policy;
use crate::access::reconcile::Limits;
use crate::access::revoke_policy::revoked_ids;
use crate::adapters::SqliteStateStore;
use crate::okta::OktaEvent;
use crate::okta::ports::OktaUser;
use crate::records::Door;
use crate::secret::SecretString;
use crate::testing::faults::RecordingSink;
use crate::testing::{FakeIdentityCenter, FakeOrganizations};

/// Okta's users and groups; memberships change through the port only.
#[derive(Default)]
pub(super) struct FakeOkta {
    /// name → id
    groups: BTreeMap<String, String>,
    /// login → user
    pub(super) users: Mutex<BTreeMap<String, OktaUser>>,
    /// (group id, user id)
    members: Mutex<BTreeSet<(String, String)>>,
    /// Adding or removing a member of these users fails (an Okta outage for them).
    pub(super) failing_users: Mutex<BTreeSet<String>>,
    /// A grant another person's approval activates while a removal is under way: written to
    /// the state database at this path, with its membership, during the next removal.
    approve_during_remove: Mutex<Option<(std::path::PathBuf, Grant)>>,
}

pub(super) const ADMIN: &str = "aws-admin-platform";

impl FakeOkta {
    pub(super) fn new() -> Self {
        let o = Self::default();
        let mut o = o;
        for (name, id) in [
            (ADMIN, "00g-admin"),
            ("oncall", "00g-oncall"),
            ("aws-approvers", "00g-approvers"),
            ("aws-core", "00g-core"),
        ] {
            o.groups.insert(name.into(), id.into());
        }
        for (name, groups) in [
            ("alice", &["oncall"][..]),
            ("bob", &["oncall"][..]),
            ("carol", &["aws-approvers"][..]),
            ("dave", &["aws-approvers"][..]),
            ("erin", &[][..]),
            ("mallory", &["aws-approvers", "oncall"][..]),
        ] {
            let login = format!("{name}@acme.example");
            let id = format!("00u-{name}");
            o.users.lock().unwrap().insert(
                login.clone(),
                OktaUser {
                    id: id.clone(),
                    login: login.clone(),
                    email: login.clone(),
                    status: "ACTIVE".into(),
                },
            );
            for g in groups {
                o.members.lock().unwrap().insert((o.groups[*g].clone(), id.clone()));
            }
        }
        o
    }

    pub(super) fn is_member(&self, who: &str) -> bool {
        self.members.lock().unwrap().contains(&("00g-admin".to_owned(), format!("00u-{who}")))
    }

    fn fails(&self, user: &str) -> Result<(), OktaError> {
        if self.failing_users.lock().unwrap().contains(user) {
            return Err(OktaError::Server { status: 503 });
        }
        Ok(())
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
        Ok(self.users.lock().unwrap().get(login).map(|u| u.id.clone()))
    }
    async fn add_member(&self, g: &str, u: &str) -> Result<(), OktaError> {
        self.fails(u)?;
        self.members.lock().unwrap().insert((g.to_owned(), u.to_owned()));
        Ok(())
    }
    async fn remove_member(&self, g: &str, u: &str) -> Result<(), OktaError> {
        self.fails(u)?;
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
            .lock()
            .unwrap()
            .values()
            .filter(|u| m.contains(&(g.to_owned(), u.id.clone())))
            .map(|u| u.login.clone())
            .collect())
    }
    async fn user(&self, id_or_login: &str) -> Result<Option<OktaUser>, OktaError> {
        Ok(self
            .users
            .lock()
            .unwrap()
            .values()
            .find(|u| u.id == id_or_login || u.login == id_or_login)
            .cloned())
    }
    async fn users_by_email(&self, email: &str) -> Result<Vec<OktaUser>, OktaError> {
        Ok(self
            .users
            .lock()
            .unwrap()
            .values()
            .filter(|u| u.email.eq_ignore_ascii_case(email))
            .cloned()
            .collect())
    }
    async fn user_group_names(&self, user_id: &str) -> Result<Vec<String>, OktaError> {
        let m = self.members.lock().unwrap();
        Ok(self
            .groups
            .iter()
            .filter(|(_, id)| m.contains(&((*id).clone(), user_id.to_owned())))
            .map(|(n, _)| n.clone())
            .collect())
    }
}

/// Slack's Web API: users by id with e-mails, messages posted and updated, answers given.
#[derive(Default)]
pub(super) struct FakeSlack {
    pub(super) emails: BTreeMap<String, String>,
    pub(super) posted: Mutex<Vec<(String, Value)>>,
    pub(super) updated: Mutex<Vec<String>>,
    pub(super) answers: Mutex<Vec<String>>,
}

pub(super) const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

impl FakeSlack {
    pub(super) fn new() -> Self {
        let mut s = Self::default();
        s.emails.insert("U0CAROL01".into(), "carol@acme.example".into());
        s.emails.insert("U0ERIN001".into(), "erin@acme.example".into());
        s.emails.insert("U0ALICE01".into(), "alice@acme.example".into());
        s.emails.insert("U0STRANGR".into(), "stranger@elsewhere.example".into());
        s
    }
}

use super::slack::SlackFuture as Fut;

impl SlackApi for &'static FakeSlack {
    fn signing_secret(&self) -> Fut<'_, SecretString> {
        Box::pin(async { Ok(SecretString::from(SIGNING_SECRET.to_owned())) })
    }
    fn post<'a>(
        &'a self,
        channel: &'a str,
        text: &'a str,
        blocks: &'a Value,
    ) -> Fut<'a, (String, String)> {
        Box::pin(async move {
            self.posted.lock().unwrap().push((text.to_owned(), blocks.clone()));
            Ok((channel.to_owned(), "1764842400.000100".to_owned()))
        })
    }
    fn update<'a>(&'a self, _: &'a str, _: &'a str, text: &'a str, _: &'a Value) -> Fut<'a, ()> {
        Box::pin(async move {
            self.updated.lock().unwrap().push(text.to_owned());
            Ok(())
        })
    }
    fn user_email<'a>(&'a self, user_id: &'a str) -> Fut<'a, Option<String>> {
        Box::pin(async move { Ok(self.emails.get(user_id).cloned()) })
    }
    fn respond<'a>(&'a self, _: &'a str, text: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            self.answers.lock().unwrap().push(text.to_owned());
            Ok(())
        })
    }
}

/// CloudTrail `LookupEvents` by user name, from a list of records.
pub(super) struct FakeTrail(pub(super) Vec<String>);

impl activity::UserActivity for FakeTrail {
    fn events<'a>(
        &'a self,
        user: &'a str,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> futures::future::BoxFuture<'a, Result<Vec<String>, crate::error::AwsError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .filter(|r| r.contains(&format!("\"userName\":\"{user}\"")) || r.contains(user))
                .cloned()
                .collect())
        })
    }
}

const POLICY: &str = r#"
[settings]
remove_unexplained_members = REMOVE_MEMBERS

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
approval = NEED_APPROVAL
approvers = ["aws-approvers"]
approvals = NEEDED
requesters = ["oncall", "aws-approvers"]
break_glass = true
break_glass_max_duration = "30m"
slack_channel = "C0APPROVALS"
"#;

pub(super) type Handler = GrantsHandler<(
    FakeIdentityCenter,
    FakeOrganizations,
    SqliteStateStore,
    &'static RecordingSink,
    FakeOkta,
)>;

pub(super) struct Setup {
    approval: bool,
    approvals: usize,
    remove: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self { approval: true, approvals: 1, remove: false }
    }
}

pub(super) fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

pub(super) fn handler_with(sink: &'static RecordingSink, s: Setup) -> Handler {
    let idc = FakeIdentityCenter::new();
    idc.add_permission_set("Admin", &["arn:aws:iam::aws:policy/AdministratorAccess"]);
    let admin = idc.add_group(ADMIN);
    idc.assign(&admin, "Admin", "111111111111");
    for name in ["alice", "bob", "carol", "mallory"] {
        let id = idc.add_user(&format!("{name}@acme.example"));
        idc.add_member(&admin, &id);
    }
    let org = FakeOrganizations::new("000000000000");
    org.add_account("111111111111", "platform", "ou-fake", &[]);
    let text = POLICY
        .replace("NEEDED", &s.approvals.to_string())
        .replace("NEED_APPROVAL", &s.approval.to_string())
        .replace("REMOVE_MEMBERS", &s.remove.to_string());
    let (policy, d) = Policy::check(&text, None);
    GrantsHandler {
        access: AccessSyncHandler {
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
        },
        slack: None,
        activity: None,
        id_tokens: None,
    }
}

pub(super) fn handler(sink: &'static RecordingSink) -> Handler {
    handler_with(sink, Setup::default())
}

pub(super) fn now() -> DateTime<Utc> {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

pub(super) fn okta(h: &Handler) -> &FakeOkta {
    h.access.system_log.as_ref().unwrap()
}

pub(super) async fn person(h: &Handler, name: &str) -> Person {
    h.person_by_id(&format!("00u-{name}"), Door::Okta).await.unwrap()
}

pub(super) fn ask(group: &str, minutes: i64) -> GrantRequest {
    GrantRequest {
        user: None,
        group: group.into(),
        duration: Duration::minutes(minutes),
        reason: "INC-123".into(),
        break_glass: false,
    }
}

fn refusal(r: Result<Grant, SyncError>) -> String {
    match r {
        Err(SyncError::Grant(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn detectors(sink: &RecordingSink) -> Vec<String> {
    sink.sent()
        .iter()
        .map(|id| id.rsplit_once('-').map_or(id.clone(), |(d, _)| d.to_owned()))
        .collect()
}

fn sink() -> &'static RecordingSink {
    leak(RecordingSink::new("sns"))
}

// ---- the attacks ----------------------------------------------------------------------------

/// Alice asks with one role and approves with another: the person is her Okta user, whatever
/// the door or role, so the approval is refused.
#[tokio::test(start_paused = true)]
async fn the_same_person_through_another_door_cannot_approve_their_request() {
    let h = handler(sink());
    let mallory = person(&h, "mallory").await;
    let g = h.request(&mallory, &ask(ADMIN, 60), now()).await.unwrap();
    let same_person_via_slack = h.person_by_email("mallory@acme.example").await.unwrap();
    assert_eq!(same_person_via_slack.door, Door::Slack);
    let m = refusal(h.approve(&same_person_via_slack, &g.id, None, now()).await);
    assert!(m.contains("self-approval"), "{m}");
    let m = refusal(h.approve(&mallory, &g.id, None, now()).await);
    assert!(m.contains("self-approval"), "{m}");
    assert!(!okta(&h).is_member("mallory"));
}

/// Alice asks for Mallory (an approver); Mallory approves her own elevation: refused.
#[tokio::test(start_paused = true)]
async fn the_beneficiary_cannot_approve_a_grant_asked_for_them() {
    let h = handler(sink());
    let alice = person(&h, "alice").await;
    let req = GrantRequest { user: Some("mallory@acme.example".into()), ..ask(ADMIN, 60) };
    let g = h.request(&alice, &req, now()).await.unwrap();
    assert_eq!(
        (g.login.as_str(), g.user_id.as_str(), g.requester_id.as_str()),
        ("mallory@acme.example", "00u-mallory", "00u-alice")
    );
    let m = refusal(h.approve(&person(&h, "mallory").await, &g.id, None, now()).await);
    assert!(m.contains("cannot approve their own grant"), "{m}");
    assert!(!okta(&h).is_member("mallory"));
    // Another approver can.
    let g = h.approve(&person(&h, "carol").await, &g.id, None, now()).await.unwrap();
    assert_eq!(g.status, GrantStatus::Active);
    assert!(okta(&h).is_member("mallory"));
}

/// Nobody outside `approvers` approves, and nobody outside `requesters` asks or is granted.
#[tokio::test(start_paused = true)]
async fn only_approvers_approve_and_only_requesters_ask_or_receive() {
    let h = handler(sink());
    let alice = person(&h, "alice").await;
    let g = h.request(&alice, &ask(ADMIN, 60), now()).await.unwrap();
    let m = refusal(h.approve(&person(&h, "bob").await, &g.id, None, now()).await);
    assert!(m.contains("not in any of aws-admin-platform's approvers"), "{m}");
    let erin = person(&h, "erin").await;
    let m = refusal(h.request(&erin, &ask(ADMIN, 60), now()).await);
    assert!(m.contains("requester erin@acme.example"), "{m}");
    let for_erin = GrantRequest { user: Some("erin@acme.example".into()), ..ask(ADMIN, 60) };
    let m = refusal(h.request(&alice, &for_erin, now()).await);
    assert!(m.contains("beneficiary erin@acme.example"), "{m}");
}

/// A record written straight into the table (by someone with write access) is re-checked at
/// approval against today's policy and Okta: it grants nothing they do not allow.
#[tokio::test(start_paused = true)]
async fn a_forged_record_grants_nothing_the_policy_does_not_allow() {
    let h = handler(sink());
    let alice = person(&h, "alice").await;
    let real = h.request(&alice, &ask(ADMIN, 60), now()).await.unwrap();
    let carol = person(&h, "carol").await;
    let forge = |id: &str, f: &dyn Fn(&mut Grant)| {
        let mut g = real.clone();
        g.id = id.into();
        f(&mut g);
        g
    };
    let forged = [
        forge("g-too-long", &|g| g.minutes = 24 * 60),
        forge("g-no-time", &|g| g.minutes = 0),
        forge("g-other-group", &|g| g.group = "aws-core".into()),
        forge("g-outsider", &|g| {
            g.user_id = "00u-erin".into();
            g.login = "erin@acme.example".into();
        }),
        forge("g-outsider-asked", &|g| g.requester_id = "00u-erin".into()),
        forge("g-no-person", &|g| g.requester_id = String::new()),
        forge("g-approver-asked", &|g| g.requester_id = "00u-carol".into()),
    ];
    for g in &forged {
        records::save(&h.access.store, g).await.unwrap();
        let r = h.approve(&carol, &g.id, None, now()).await;
        assert!(matches!(r, Err(SyncError::Grant(_))), "{}: {r:?}", g.id);
    }
    assert!(!okta(&h).is_member("alice") && !okta(&h).is_member("erin"));
    // What the approver was shown must be what is approved.
    let shown = Expected { login: "alice@acme.example".into(), group: ADMIN.into(), minutes: 30 };
    let m = refusal(h.approve(&carol, &real.id, Some(&shown), now()).await);
    assert!(m.contains("changed since it was shown"), "{m}");
    let shown = Expected { minutes: 60, ..shown };
    assert_eq!(
        h.approve(&carol, &real.id, Some(&shown), now()).await.unwrap().status,
        GrantStatus::Active
    );
}

/// The group stopped being grantable after the request: the approval is refused, and grants
/// of it that run end at the next five-minute run.
#[tokio::test(start_paused = true)]
async fn a_group_that_stopped_being_grantable_is_not_approved_and_its_grants_end() {
    let mut h = handler(sink());
    let alice = person(&h, "alice").await;
    let carol = person(&h, "carol").await;
    let running = h.request(&alice, &ask(ADMIN, 240), now()).await.unwrap();
    h.approve(&carol, &running.id, None, now()).await.unwrap();
    let pending = h.request(&person(&h, "bob").await, &ask(ADMIN, 60), now()).await.unwrap();
    h.access.policy.grantable.clear();
    let m = refusal(h.approve(&carol, &pending.id, None, now()).await);
    assert!(m.contains("no longer a grantable group"), "{m}");
    let report = h.run_schedule(now() + Duration::minutes(5)).await.unwrap();
    assert_eq!(report.ended, std::slice::from_ref(&running.id));
    assert!(!okta(&h).is_member("alice"), "ended hours early: its group is no longer grantable");
    assert!(!okta(&h).is_member("bob"));
}

/// Grants end on their own schedule, whatever else fails: with IAM Identity Center refusing
/// every call (access-sync's reconcile would fail the same way), memberships still end on time,
/// the failure is alerted, the session deny follows once IdC answers, and a grant whose Okta
/// call fails does not keep any other alive.
#[tokio::test(start_paused = true)]
async fn grants_end_on_time_while_identity_center_fails() {
    let sink = sink();
    let h = handler_with(sink, Setup { approval: false, ..Setup::default() });
    for who in ["alice", "bob", "mallory"] {
        h.request(&person(&h, who).await, &ask(ADMIN, 60), now()).await.unwrap();
    }
    okta(&h).failing_users.lock().unwrap().insert("00u-bob".into());
    h.access.idc.down.store(true, Ordering::Relaxed);
    let due = now() + Duration::minutes(60);
    let e = h.run_schedule(due).await.unwrap_err();
    assert!(e.to_string().contains("could not be ended"), "{e}");
    assert!(!okta(&h).is_member("alice") && !okta(&h).is_member("mallory"), "ended on time");
    assert!(okta(&h).is_member("bob"), "bob's Okta call failed: retried");
    assert!(
        detectors(sink).iter().filter(|d| *d == "grant-end-failed").count() >= 2,
        "{:?}",
        detectors(sink)
    );
    let all = h.grants().await.unwrap();
    let alice = all.iter().find(|g| g.login.starts_with("alice")).unwrap();
    assert_eq!((alice.status, alice.sessions_pending), (GrantStatus::Expired, true));
    // IdC and Okta answer again: the next run denies the sessions and ends bob's grant.
    h.access.idc.down.store(false, Ordering::Relaxed);
    okta(&h).failing_users.lock().unwrap().clear();
    let report = h.run_schedule(due + Duration::minutes(5)).await.unwrap();
    assert_eq!(report.ended.len(), 1);
    assert_eq!(report.sessions_retried.len(), 2);
    assert!(!okta(&h).is_member("bob"));
    let denied = revoked_ids(h.access.idc.inline_policy_of("Admin").as_deref());
    assert_eq!(denied.len(), 3, "{denied:?}");
}

// ---- the lifecycle -------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_grant_is_approved_added_in_okta_and_ends_to_the_second() {
    let sink = sink();
    let h = handler(sink);
    let alice = person(&h, "alice").await;
    let g = h.request(&alice, &ask(ADMIN, 120), now()).await.unwrap();
    assert_eq!(g.status, GrantStatus::Pending);
    assert!(!okta(&h).is_member("alice"), "nothing before approval");
    let g = h.approve(&person(&h, "carol").await, &g.id, None, now()).await.unwrap();
    assert_eq!(g.status, GrantStatus::Active);
    assert_eq!(g.expires_at, Some(now() + Duration::hours(2)));
    assert_eq!(g.approved_by.as_deref(), Some("carol@acme.example"));
    assert!(okta(&h).is_member("alice"));
    let m = refusal(h.approve(&person(&h, "dave").await, &g.id, None, now()).await);
    assert!(m.contains("not pending"), "{m}");

    let end = now() + Duration::hours(2);
    assert!(h.run_schedule(end - Duration::seconds(1)).await.unwrap().ended.is_empty());
    assert!(okta(&h).is_member("alice"));
    assert_eq!(h.run_schedule(end).await.unwrap().ended, std::slice::from_ref(&g.id));
    assert!(!okta(&h).is_member("alice"), "membership removed at expiry");
    let alice_idc = h.access.idc.find_user_id("d", "alice@acme.example").await.unwrap().unwrap();
    assert_eq!(
        revoked_ids(h.access.idc.inline_policy_of("Admin").as_deref()),
        BTreeSet::from([alice_idc])
    );
    assert_eq!(
        detectors(sink),
        ["grant-requested", "grant-approved", "grant-expired", "sessions-revoked"],
    );
    let g = h.load(&g.id).await.unwrap();
    assert_eq!(
        (g.status, g.ended_at, g.sessions_pending),
        (GrantStatus::Expired, Some(end), false)
    );
    let next = h.run_schedule(end + Duration::minutes(5)).await.unwrap();
    assert!(next.ended.is_empty() && next.sessions_retried.is_empty(), "ended once: {next:?}");
}

#[tokio::test(start_paused = true)]
async fn durations_have_a_one_minute_floor_and_the_policy_maximum() {
    let h = handler(sink());
    let alice = person(&h, "alice").await;
    let seconds = |s| GrantRequest { duration: Duration::seconds(s), ..ask(ADMIN, 0) };
    for r in
        [seconds(30), seconds(0), seconds(-60), seconds(90), ask(ADMIN, 241), ask("aws-core", 60)]
    {
        assert!(matches!(h.request(&alice, &r, now()).await, Err(SyncError::Grant(_))), "{r:?}");
    }
    let no_reason = GrantRequest { reason: "  ".into(), ..ask(ADMIN, 60) };
    assert!(h.request(&alice, &no_reason, now()).await.is_err());
    assert!(h.grants().await.unwrap().is_empty());
    let shortest = h.request(&alice, &ask(ADMIN, 1), now()).await.unwrap();
    let longest = h.request(&alice, &ask(ADMIN, 240), now()).await.unwrap();
    // Approved at both ends of the range, as asked.
    let carol = person(&h, "carol").await;
    assert_eq!(
        h.approve(&carol, &shortest.id, None, now()).await.unwrap().expires_at,
        Some(now() + Duration::minutes(1))
    );
    assert_eq!(
        h.approve(&carol, &longest.id, None, now()).await.unwrap().expires_at,
        Some(now() + Duration::hours(4))
    );
}

/// A forgotten request (an old Slack button, a stale terminal) never grants access days later.
#[tokio::test(start_paused = true)]
async fn a_request_waits_a_day_for_approval_and_no_longer() {
    let h = handler(sink());
    let g = h.request(&person(&h, "alice").await, &ask(ADMIN, 60), now()).await.unwrap();
    let carol = person(&h, "carol").await;
    let late = now() + Duration::hours(24);
    let m = refusal(h.approve(&carol, &g.id, None, late).await);
    assert!(m.contains("more than 24 hours ago"), "{m}");
    let g = h.approve(&carol, &g.id, None, late - Duration::seconds(1)).await.unwrap();
    assert_eq!(g.status, GrantStatus::Active);
}

#[tokio::test(start_paused = true)]
async fn two_approvals_take_two_distinct_approvers() {
    let h = handler_with(sink(), Setup { approvals: 2, ..Setup::default() });
    let g = h.request(&person(&h, "alice").await, &ask(ADMIN, 60), now()).await.unwrap();
    let carol = person(&h, "carol").await;
    let g1 = h.approve(&carol, &g.id, None, now()).await.unwrap();
    assert_eq!((g1.status, g1.approvals.len()), (GrantStatus::Pending, 1));
    assert!(!okta(&h).is_member("alice"));
    let m = refusal(
        h.approve(&h.person_by_email("carol@acme.example").await.unwrap(), &g.id, None, now())
            .await,
    );
    assert!(m.contains("approved already"), "{m}");
    let g2 = h.approve(&person(&h, "dave").await, &g.id, None, now()).await.unwrap();
    assert_eq!(g2.status, GrantStatus::Active);
    assert_eq!(g2.approved_by.as_deref(), Some("carol@acme.example, dave@acme.example"));
}

#[tokio::test(start_paused = true)]
async fn break_glass_is_self_approved_shorter_alerted_and_reviewed_by_another() {
    let sink = sink();
    let h = handler(sink);
    let alice = person(&h, "alice").await;
    let glass = |minutes| GrantRequest { break_glass: true, ..ask(ADMIN, minutes) };
    let m = refusal(h.request(&alice, &glass(31), now()).await);
    assert!(m.contains("1 to 30 minutes under break-glass"), "{m}");
    let for_bob = GrantRequest { user: Some("bob@acme.example".into()), ..glass(30) };
    assert!(refusal(h.request(&alice, &for_bob, now()).await).contains("for oneself"));
    let g = h.request(&alice, &glass(30), now()).await.unwrap();
    assert_eq!((g.status, g.break_glass), (GrantStatus::Active, true));
    assert!(okta(&h).is_member("alice"));
    assert!(detectors(sink).contains(&"grant-break-glass".to_owned()), "{:?}", detectors(sink));
    assert!(refusal(h.approve(&alice, &g.id, None, now()).await).contains("another person"));
    assert!(
        refusal(h.approve(&person(&h, "bob").await, &g.id, None, now()).await)
            .contains("not an approver")
    );
    // A break-glass record someone forged to name another requester: neither person reviews it.
    let mut forged = g.clone();
    forged.id = "g-forged-glass".into();
    forged.requester_id = "00u-mallory".into();
    records::save(&h.access.store, &forged).await.unwrap();
    let m = refusal(h.approve(&person(&h, "mallory").await, &forged.id, None, now()).await);
    assert!(m.contains("another person"), "{m}");
    let g = h.approve(&person(&h, "carol").await, &g.id, None, now()).await.unwrap();
    assert_eq!(g.reviewed_by.map(|r| r.login), Some("carol@acme.example".into()));
    assert!(
        refusal(h.approve(&person(&h, "dave").await, &g.id, None, now()).await)
            .contains("reviewed already")
    );
}

#[tokio::test(start_paused = true)]
async fn approvers_deny_and_requesters_withdraw_nobody_else() {
    let sink = sink();
    let h = handler(sink);
    let alice = person(&h, "alice").await;
    let g = h.request(&alice, &ask(ADMIN, 60), now()).await.unwrap();
    assert!(
        refusal(h.deny(&person(&h, "bob").await, &g.id, now()).await).contains("not an approver")
    );
    let g = h.deny(&person(&h, "carol").await, &g.id, now()).await.unwrap();
    assert_eq!(
        (g.status, g.denied_by.map(|d| d.person_id)),
        (GrantStatus::Denied, Some("00u-carol".into()))
    );
    assert!(
        refusal(h.approve(&person(&h, "dave").await, &g.id, None, now()).await)
            .contains("not pending")
    );
    let g = h.request(&alice, &ask(ADMIN, 60), now()).await.unwrap();
    assert_eq!(h.deny(&alice, &g.id, now()).await.unwrap().status, GrantStatus::Denied);
    // Asked by alice for bob: either of them may withdraw it, each on their own.
    let for_bob = GrantRequest { user: Some("bob@acme.example".into()), ..ask(ADMIN, 60) };
    let g = h.request(&alice, &for_bob, now()).await.unwrap();
    assert_eq!(h.deny(&alice, &g.id, now()).await.unwrap().status, GrantStatus::Denied);
    let g = h.request(&alice, &for_bob, now()).await.unwrap();
    let bob = person(&h, "bob").await;
    assert_eq!(
        h.deny(&bob, &g.id, now()).await.unwrap().denied_by.map(|d| d.person_id),
        Some("00u-bob".into())
    );
    assert!(detectors(sink).contains(&"grant-denied".to_owned()));
    assert!(!okta(&h).is_member("alice"));
}

/// Write-ahead: the Okta call fails after `activating` is recorded; the next run finishes it.
/// One that is already due by then is ended instead.
#[tokio::test(start_paused = true)]
async fn an_activation_cut_short_is_finished_or_ended_by_the_next_run() {
    let h = handler_with(sink(), Setup { approval: false, ..Setup::default() });
    okta(&h).failing_users.lock().unwrap().insert("00u-alice".into());
    let r = h.request(&person(&h, "alice").await, &ask(ADMIN, 60), now()).await;
    assert!(matches!(r, Err(SyncError::Okta(_))), "{r:?}");
    let g = h.grants().await.unwrap().remove(0);
    assert_eq!(g.status, GrantStatus::Activating);
    assert_eq!(g.expires_at, Some(now() + Duration::hours(1)), "the clock started at approval");
    okta(&h).failing_users.lock().unwrap().clear();
    let report = h.run_schedule(now() + Duration::minutes(5)).await.unwrap();
    assert_eq!(report.activated, std::slice::from_ref(&g.id));
    assert!(okta(&h).is_member("alice"));
    assert_eq!(h.load(&g.id).await.unwrap().status, GrantStatus::Active);

    // Due while still activating: ended, membership or not.
    okta(&h).failing_users.lock().unwrap().insert("00u-bob".into());
    let _ = h.request(&person(&h, "bob").await, &ask(ADMIN, 1), now()).await;
    okta(&h).failing_users.lock().unwrap().clear();
    okta(&h).add_member("00g-admin", "00u-bob").await.unwrap();
    let report = h.run_schedule(now() + Duration::minutes(2)).await.unwrap();
    assert_eq!(report.ended.len(), 1);
    assert!(!okta(&h).is_member("bob"));
}

/// A grant's end denies the person's live sessions for hours; a new grant of theirs lifts that
/// deny, but never one written for a deactivation or an incident.
#[tokio::test(start_paused = true)]
async fn a_regrant_lifts_the_previous_grants_deny_but_not_an_incidents() {
    let h = handler_with(sink(), Setup { approval: false, ..Setup::default() });
    let alice = person(&h, "alice").await;
    h.request(&alice, &ask(ADMIN, 30), now()).await.unwrap();
    h.run_schedule(now() + Duration::minutes(30)).await.unwrap();
    assert_eq!(revoked_ids(h.access.idc.inline_policy_of("Admin").as_deref()).len(), 1);
    let g = h.request(&alice, &ask(ADMIN, 30), now() + Duration::minutes(40)).await.unwrap();
    assert_eq!(g.status, GrantStatus::Active);
    assert!(revoked_ids(h.access.idc.inline_policy_of("Admin").as_deref()).is_empty(), "lifted");

    h.access.revoke_sessions("bob@acme.example", "incident INC-9", false, now()).await.unwrap();
    let m = refusal(h.request(&person(&h, "bob").await, &ask(ADMIN, 30), now()).await);
    assert!(m.contains("sessions are revoked (incident INC-9)"), "{m}");
    assert!(!okta(&h).is_member("bob"));
    assert_eq!(revoked_ids(h.access.idc.inline_policy_of("Admin").as_deref()).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn overlapping_grants_of_one_person_end_at_the_latest_expiry_and_others_do_not_count() {
    let h = handler_with(sink(), Setup { approval: false, ..Setup::default() });
    let alice = person(&h, "alice").await;
    h.request(&alice, &ask(ADMIN, 120), now()).await.unwrap();
    h.request(&alice, &ask(ADMIN, 180), now() + Duration::hours(1)).await.unwrap();
    // Bob's grant of the same group runs longer still: it must not keep Alice's membership.
    h.request(&person(&h, "bob").await, &ask(ADMIN, 240), now()).await.unwrap();
    assert_eq!(h.run_schedule(now() + Duration::hours(2)).await.unwrap().ended.len(), 1);
    assert!(okta(&h).is_member("alice"), "an earlier expiry never cuts a later grant short");
    assert!(h.access.idc.inline_policy_of("Admin").is_none());
    assert_eq!(h.run_schedule(now() + Duration::hours(4)).await.unwrap().ended.len(), 2);
    assert!(!okta(&h).is_member("alice"), "bob's grant is not alice's lease");
    assert!(!okta(&h).is_member("bob"));
}

/// A grant approved while another ends: the approval lands between the end's check and its
/// removal. The end sees the new grant and puts the membership back; no session is denied.
#[tokio::test(start_paused = true)]
async fn a_grant_approved_while_another_ends_keeps_its_membership() {
    let mut h = handler_with(sink(), Setup { approval: false, ..Setup::default() });
    let path = std::env::temp_dir().join(format!("idc-guard-grants-{}.db", fastrand::u64(..)));
    h.access.store = SqliteStateStore::open(&path).unwrap();
    let first = h.request(&person(&h, "alice").await, &ask(ADMIN, 60), now()).await.unwrap();
    let mut second = first.clone();
    second.id = "g-approved-meanwhile".into();
    second.expires_at = Some(now() + Duration::hours(3));
    *okta(&h).approve_during_remove.lock().unwrap() = Some((path.clone(), second));
    assert_eq!(h.run_schedule(now() + Duration::hours(1)).await.unwrap().ended.len(), 1);
    assert!(okta(&h).is_member("alice"), "the later grant keeps the membership");
    assert!(
        h.access.idc.inline_policy_of("Admin").is_none(),
        "no session of the later grant is cut"
    );
    assert_eq!(h.load("g-approved-meanwhile").await.unwrap().status, GrantStatus::Active);
    let _ = std::fs::remove_file(path);
}

#[tokio::test(start_paused = true)]
async fn a_membership_no_grant_explains_is_reported_or_removed() {
    let sink1 = sink();
    let h = handler_with(sink1, Setup { approval: false, ..Setup::default() });
    okta(&h).add_member("00g-admin", "00u-bob").await.unwrap();
    assert_eq!(
        h.run_schedule(now()).await.unwrap().unexplained,
        1,
        "the five-minute run reports it"
    );
    assert_eq!(
        h.unexplained_members(now()).await.unwrap(),
        [(ADMIN.to_owned(), "bob@acme.example".to_owned())]
    );
    assert!(okta(&h).is_member("bob"), "reported only");
    h.unexplained_members(now()).await.unwrap();
    assert_eq!(sink1.sent().len(), 1, "reported once");

    let h = handler_with(sink(), Setup { approval: false, remove: true, ..Setup::default() });
    okta(&h).add_member("00g-admin", "00u-bob").await.unwrap();
    h.request(&person(&h, "alice").await, &ask(ADMIN, 60), now()).await.unwrap();
    assert_eq!(h.unexplained_members(now()).await.unwrap().len(), 1, "alice's grant explains hers");
    assert!(!okta(&h).is_member("bob"), "removed, as the policy says");
    assert!(okta(&h).is_member("alice"));
}

#[tokio::test(start_paused = true)]
async fn inactive_and_unknown_people_are_refused() {
    let h = handler(sink());
    okta(&h).users.lock().unwrap().get_mut("bob@acme.example").unwrap().status = "SUSPENDED".into();
    assert!(
        refusal(h.person_by_id("00u-bob", Door::Okta).await.map(|_| unreachable!()))
            .contains("SUSPENDED")
    );
    assert!(h.person_by_id("00u-nobody", Door::Okta).await.is_err());
    assert!(h.person_by_email("stranger@elsewhere.example").await.is_err());
    let alice = person(&h, "alice").await;
    let g = h.request(&alice, &ask(ADMIN, 60), now()).await.unwrap();
    okta(&h).users.lock().unwrap().get_mut("alice@acme.example").unwrap().status =
        "DEPROVISIONED".into();
    let m = refusal(h.approve(&person(&h, "carol").await, &g.id, None, now()).await);
    assert!(m.contains("DEPROVISIONED"), "{m}");
}

/// The membership is removed by the person's Okta id, which outlives a change of login.
#[tokio::test(start_paused = true)]
async fn a_grant_ends_by_okta_user_id_after_the_login_changed() {
    let h = handler_with(sink(), Setup { approval: false, ..Setup::default() });
    h.request(&person(&h, "alice").await, &ask(ADMIN, 60), now()).await.unwrap();
    let mut user = okta(&h).users.lock().unwrap().remove("alice@acme.example").unwrap();
    user.login = "alice.liddell@acme.example".into();
    okta(&h).users.lock().unwrap().insert(user.login.clone(), user);
    assert_eq!(h.run_schedule(now() + Duration::hours(1)).await.unwrap().ended.len(), 1);
    assert!(!okta(&h).is_member("alice"));
}

/// At its end, what the person did with the granted permission sets, from CloudTrail.
#[tokio::test(start_paused = true)]
async fn an_ended_grant_carries_an_activity_summary() {
    let sink = sink();
    let mut h = handler_with(sink, Setup { approval: false, ..Setup::default() });
    let record = |time: &str, source: &str, name: &str, read_only: bool, role: &str| {
        serde_json::json!({"eventTime": time, "eventSource": source, "eventName": name, "readOnly": read_only,
            "recipientAccountId": "111111111111",
            "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::111111111111:assumed-role/{role}/alice@acme.example")}})
        .to_string()
    };
    let admin = "AWSReservedSSO_Admin_0123456789abcdef";
    let forged = |text: String| {
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["userIdentity"]["sessionContext"] = serde_json::json!({"sessionIssuer": {"type": "Role",
            "userName": admin, "arn": format!("arn:aws:iam::111111111111:role/{admin}")}});
        v.to_string()
    };
    h.activity = Some(Box::new(FakeTrail(vec![
        record("2026-11-28T10:05:00Z", "ec2.amazonaws.com", "DescribeInstances", true, admin),
        record("2026-11-28T10:06:00Z", "ec2.amazonaws.com", "DescribeInstances", true, admin),
        record("2026-11-28T10:07:00Z", "iam.amazonaws.com", "CreateAccessKey", false, admin),
        record(
            "2026-11-28T10:08:00Z",
            "s3.amazonaws.com",
            "ListBuckets",
            true,
            "AWSReservedSSO_ReadOnly_0123456789abcdef",
        ),
        record("2026-11-28T12:00:00Z", "iam.amazonaws.com", "DeleteUser", false, admin),
        // A role named like the permission set's outside IdC's path, assumed as alice: not hers.
        forged(record("2026-11-28T10:09:00Z", "iam.amazonaws.com", "CreateUser", false, admin)),
    ])));
    let g = h.request(&person(&h, "alice").await, &ask(ADMIN, 60), now()).await.unwrap();
    h.run_schedule(now() + Duration::hours(1)).await.unwrap();
    let a = h.load(&g.id).await.unwrap().activity.unwrap();
    assert_eq!(a.total, 3, "another set's call and a call after the end do not count: {a:?}");
    assert_eq!(a.calls[0], ("ec2:DescribeInstances".to_owned(), 2));
    assert_eq!(a.writes, ["2026-11-28T10:07:00Z iam:CreateAccessKey 111111111111"]);
    assert!(a.headline().contains("3 calls, 1 writes"), "{}", a.headline());
}

// ---- Slack ---------------------------------------------------------------------------------

fn click(user: &str, action: &str, grant: &str) -> Vec<u8> {
    let mut payload: Value =
        serde_json::from_str(include_str!("../../../../events/slack/block-actions-approve.json"))
            .unwrap();
    payload["user"]["id"] = user.into();
    payload["actions"][0]["action_id"] = action.into();
    payload["actions"][0]["value"] = grant.into();
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    body.into_bytes()
}

fn slack_handler() -> (Handler, &'static FakeSlack) {
    let slack = leak(FakeSlack::new());
    let mut h = handler(sink());
    h.slack = Some(Box::new(slack));
    (h, slack)
}

async fn post_click(h: &Handler, body: &[u8], at: DateTime<Utc>, signed_at: i64) -> u16 {
    let secret = SecretString::from(SIGNING_SECRET.to_owned());
    let signature = slack::sign(&secret, signed_at, body);
    h.slack_interaction(Some(&signed_at.to_string()), Some(&signature), body, at).await.0
}

#[tokio::test(start_paused = true)]
async fn a_request_is_posted_to_slack_and_a_signed_click_by_an_approver_approves_it() {
    let (h, slack) = slack_handler();
    let g = h.request(&person(&h, "alice").await, &ask(ADMIN, 60), now()).await.unwrap();
    let (text, blocks) = slack.posted.lock().unwrap()[0].clone();
    assert!(text.contains("waiting for approval") && text.contains(&g.id), "{text}");
    assert_eq!(blocks[1]["elements"][0]["action_id"], "grant-approve");
    assert_eq!(blocks[1]["elements"][0]["value"], g.id.as_str());
    assert_eq!(
        h.load(&g.id).await.unwrap().slack_message,
        Some(("C0APPROVALS".into(), "1764842400.000100".into()))
    );

    let t = now().timestamp();
    assert_eq!(post_click(&h, &click("U0CAROL01", slack::APPROVE, &g.id), now(), t).await, 200);
    assert!(okta(&h).is_member("alice"));
    let g = h.load(&g.id).await.unwrap();
    assert_eq!((g.status, g.approvals[0].door), (GrantStatus::Active, Door::Slack));
    assert!(slack.updated.lock().unwrap().last().unwrap().contains("*active*"));
    assert!(
        slack.answers.lock().unwrap()[0].contains("active"),
        "{:?}",
        slack.answers.lock().unwrap()
    );
}

#[tokio::test(start_paused = true)]
async fn slack_clicks_that_are_unsigned_stale_tampered_or_from_the_wrong_person_decide_nothing() {
    let (h, slack) = slack_handler();
    let g = h.request(&person(&h, "alice").await, &ask(ADMIN, 60), now()).await.unwrap();
    let t = now().timestamp();
    let body = click("U0CAROL01", slack::APPROVE, &g.id);
    // Signed more than five minutes before (a replay), or after.
    assert_eq!(post_click(&h, &body, now(), t - 301).await, 401);
    assert_eq!(post_click(&h, &body, now(), t + 301).await, 401);
    // Signed with another secret, tampered, or not signed.
    let other = slack::sign(&SecretString::from("another-secret".to_owned()), t, &body);
    assert_eq!(h.slack_interaction(Some(&t.to_string()), Some(&other), &body, now()).await.0, 401);
    let good = slack::sign(&SecretString::from(SIGNING_SECRET.to_owned()), t, &body);
    let tampered = click("U0CAROL01", slack::APPROVE, "g-another");
    assert_eq!(
        h.slack_interaction(Some(&t.to_string()), Some(&good), &tampered, now()).await.0,
        401
    );
    assert_eq!(h.slack_interaction(None, Some(&good), &body, now()).await.0, 401);
    assert_eq!(h.slack_interaction(Some(&t.to_string()), None, &body, now()).await.0, 401);
    assert_eq!(h.slack_interaction(Some(&t.to_string()), Some("v0=zz"), &body, now()).await.0, 401);
    assert!(slack.answers.lock().unwrap().is_empty(), "nothing was read");
    // Signed, but the Slack user is nobody in Okta, or not an approver, or the requester.
    for (user, why) in [
        ("U0STRANGR", "no active Okta user"),
        ("U0ERIN001", "not in any"),
        ("U0ALICE01", "self-approval"),
        ("U0UNKNOWN", "no e-mail"),
    ] {
        assert_eq!(post_click(&h, &click(user, slack::APPROVE, &g.id), now(), t).await, 200);
        let answer = slack.answers.lock().unwrap().last().cloned().unwrap();
        assert!(answer.contains(why), "{user}: {answer}");
    }
    assert!(!okta(&h).is_member("alice"));
    assert_eq!(h.load(&g.id).await.unwrap().status, GrantStatus::Pending);
    // A valid click, replayed inside the window, decides once.
    assert_eq!(post_click(&h, &click("U0CAROL01", slack::DENY, &g.id), now(), t).await, 200);
    assert_eq!(post_click(&h, &click("U0CAROL01", slack::DENY, &g.id), now(), t).await, 200);
    assert!(slack.answers.lock().unwrap().last().unwrap().contains("not pending"));
    assert_eq!(h.load(&g.id).await.unwrap().status, GrantStatus::Denied);
}

#[tokio::test(start_paused = true)]
async fn a_malformed_interaction_is_a_clear_400() {
    let (h, _) = slack_handler();
    let t = now().timestamp();
    for body in [
        &b"payload=not-json"[..],
        b"nothing=here",
        b"payload=%7B%22type%22%3A%22view_submission%22%7D",
        b"\xff\xfe",
    ] {
        assert_eq!(post_click(&h, body, now(), t).await, 400, "{}", String::from_utf8_lossy(body));
    }
}
