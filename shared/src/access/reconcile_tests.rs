//! Each reconciler phase on its own, against the shared quota-enforcing fake of IdC
//! (`crate::testing`). Paused tokio time: the fake's 1 s operations and the pacer cost nothing.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;
use crate::access::plan::AccountStatus;
use crate::testing::{FakeIdentityCenter, FakeOrganizations, MAX_OUTSTANDING_OPERATIONS};

const MANAGEMENT: &str = "000000000000";
const PAYMENTS: &str = "111111111111";
const SANDBOX: &str = "222222222222";
const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

const POLICY: &str = r#"
[settings]
max_deletions = 5

[[permission_set]]
name = "ReadOnly"
managed_policies = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]

[[permission_set]]
name = "Admin"
managed_policies = ["arn:aws:iam::aws:policy/AdministratorAccess"]

[[rule]]
groups = "aws-core-readonly"
permission_sets = ["ReadOnly"]
targets = { all_accounts = true }
tier = "core"

[[rule]]
groups = "aws-admin-payments"
permission_sets = ["Admin"]
targets = { accounts = ["111111111111"] }
tier = "admin"
"#;

fn policy(text: &str) -> Policy {
    let (p, d) = Policy::check(text, None);
    p.unwrap_or_else(|| panic!("{d:?}"))
}

struct World {
    idc: FakeIdentityCenter,
    org: FakeOrganizations,
    core: String,
    admin: String,
}

fn world() -> World {
    let idc = FakeIdentityCenter::new();
    idc.add_permission_set("ReadOnly", &[READ_ONLY]);
    idc.add_permission_set("Admin", &[ADMIN]);
    let core = idc.add_group("aws-core-readonly");
    let admin = idc.add_group("aws-admin-payments");
    idc.add_group("engineering"); // no rule matches it
    let org = FakeOrganizations::new(MANAGEMENT);
    org.add_account(MANAGEMENT, "management", "r-fake", &[]);
    org.add_account(PAYMENTS, "payments", "ou-fake-workload", &[]);
    org.add_account(SANDBOX, "sandbox", "ou-fake-workload", &[]);
    World { idc, org, core, admin }
}

fn options(scope: Scope, previously_managed: &[&str]) -> RunOptions {
    RunOptions {
        scope,
        apply: true,
        previously_managed: previously_managed.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn key(group: &str, ps: &str, account: &str) -> (String, String, String) {
    (group.to_owned(), ps.to_owned(), account.to_owned())
}

// ---- read -------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn read_finds_permission_set_drift_and_policy_errors() {
    let w = world();
    let text = POLICY.replace(
        r#"managed_policies = ["arn:aws:iam::aws:policy/AdministratorAccess"]"#,
        r#"managed_policies = ["arn:aws:iam::aws:policy/PowerUserAccess"]"#,
    ) + "\n[[permission_set]]\nname = \"Billing\"\nmanaged = false\n";
    let r = Reconciler::new(&w.idc, &w.org, Limits::default());
    let estate = r.read_estate(&policy(&text)).await.unwrap();
    assert!(
        estate.permission_set_changes.iter().any(|c| c.contains("PowerUserAccess")),
        "{:?}",
        estate.permission_set_changes
    );
    assert_eq!(estate.policy_errors.len(), 1, "Billing is declared unmanaged but is missing");
    assert_eq!(estate.ps_arns.len(), 2);
    assert_eq!(estate.inventory.accounts.len(), 3);
    assert_eq!(w.idc.policies_of("Admin").unwrap().managed.len(), 1, "reading changed nothing");
}

#[tokio::test(start_paused = true)]
async fn read_stops_when_the_accounts_cannot_be_read() {
    let w = world();
    w.org.fail.store(true, Ordering::Relaxed);
    let r = Reconciler::new(&w.idc, &w.org, Limits::default());
    let err = r.read_estate(&policy(POLICY)).await.unwrap_err();
    assert!(err.to_string().contains("AWS Organizations"), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn read_reports_an_unreadable_group_and_keeps_only_the_policys_permission_sets() {
    let w = world();
    w.idc.assign(&w.core, "ReadOnly", PAYMENTS);
    let other = w.idc.add_permission_set("NotInPolicy", &[]);
    w.idc.assign(&w.core, "NotInPolicy", SANDBOX);
    w.idc.fail_reads_of_group(&w.admin);
    let ps_names =
        BTreeMap::from([(w.idc.permission_set_arn("ReadOnly").unwrap(), "ReadOnly".into())]);
    let r = Reconciler::new(&w.idc, &w.org, Limits::default());
    let groups = BTreeSet::from([w.core.clone(), w.admin.clone()]);
    let read = r.read_assignments(crate::testing::INSTANCE_ARN, &groups, &ps_names).await;
    assert_eq!(
        read.actual,
        BTreeSet::from([Assignment {
            group_id: w.core.clone(),
            permission_set: "ReadOnly".into(),
            account_id: PAYMENTS.into()
        }]),
        "{other} is not the policy's"
    );
    assert_eq!(read.unreadable, BTreeSet::from([w.admin.clone()]));
    assert_eq!(read.errors.len(), 1);
}

// ---- plan -------------------------------------------------------------------------------------

fn assignment(group: &str, ps: &str, account: &str) -> Assignment {
    Assignment { group_id: group.into(), permission_set: ps.into(), account_id: account.into() }
}

#[test]
fn plan_holds_deletions_in_protected_accounts_and_ignores_what_it_may_not_look_at() {
    let w = world();
    let p = policy(POLICY);
    let mut inventory = Inventory {
        groups: vec![crate::access::Group {
            id: w.core.clone(),
            display_name: "aws-core-readonly".into(),
        }],
        accounts: w.org.accounts.lock().unwrap().clone(),
        management_account_id: Some(MANAGEMENT.into()),
        organizational_units: BTreeSet::new(),
    };
    inventory.accounts.iter_mut().find(|a| a.id == SANDBOX).unwrap().status =
        AccountStatus::Suspended;
    let desired = BTreeSet::from([assignment(&w.core, "ReadOnly", PAYMENTS)]);
    let actual = BTreeSet::from([
        assignment(&w.core, "Admin", MANAGEMENT), // management account, no rule names it
        assignment(&w.core, "Admin", SANDBOX),    // suspended account
        assignment(&w.core, "Admin", PAYMENTS),   // deletable
        assignment(&w.admin, "ReadOnly", PAYMENTS), // a deleted group
        assignment("g-unreadable", "ReadOnly", PAYMENTS),
    ]);
    let managed = BTreeSet::from([w.core.clone(), w.admin.clone(), "g-unreadable".to_owned()]);
    let unreadable = BTreeSet::from(["g-unreadable".to_owned()]);
    let considered = Considered { managed: &managed, unreadable: &unreadable, scope: &Scope::All };
    let c = plan_changes(&p, &inventory, &desired, &actual, &considered);
    assert_eq!(c.creates.len(), 1);
    assert_eq!(c.creates[0].account, "payments");
    let deletes: Vec<(&str, &str)> =
        c.deletes.iter().map(|d| (d.group.as_str(), d.account_id.as_str())).collect();
    let deleted_group = format!("(deleted group {})", w.admin);
    assert_eq!(deletes, [("aws-core-readonly", PAYMENTS), (deleted_group.as_str(), PAYMENTS)]);
    let held: Vec<(&str, &str)> =
        c.held.iter().map(|h| (h.change.account_id.as_str(), h.reason.as_str())).collect();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held[0].1.contains("management account"), "{held:?}");
    assert!(held[1].1.contains("SUSPENDED"), "{held:?}");
    assert!(c.current.iter().all(|x| x.group_id != "g-unreadable"), "never planned for");

    // A rule naming the management account by id lets that permission set be removed there.
    let named = POLICY.replace(r#"accounts = ["111111111111"]"#, r#"accounts = ["000000000000"]"#);
    let c = plan_changes(&policy(&named), &inventory, &desired, &actual, &considered);
    assert!(c.deletes.iter().any(|d| d.account_id == MANAGEMENT), "{:?}", c.deletes);

    // An account scope limits the plan to that account.
    let scope = Scope::Account(SANDBOX.into());
    let considered = Considered { managed: &managed, unreadable: &unreadable, scope: &scope };
    let c = plan_changes(&p, &inventory, &desired, &actual, &considered);
    assert!(c.creates.is_empty() && c.deletes.is_empty());
    assert_eq!(c.held.len(), 1);
}

#[test]
fn a_group_scope_reads_only_those_groups() {
    let managed_now = BTreeMap::from([("g-1".to_owned(), ManagedGroup::default())]);
    let before = BTreeSet::from(["g-2".to_owned(), "g-3".to_owned()]);
    let all = groups_to_read(&managed_now, &before, &Scope::All);
    assert_eq!(all.len(), 3);
    let some =
        groups_to_read(&managed_now, &before, &Scope::Groups(BTreeSet::from(["g-3".into()])));
    assert_eq!(some, BTreeSet::from(["g-3".to_owned()]));
}

// ---- guard ------------------------------------------------------------------------------------

fn change(n: usize) -> Change {
    Change {
        group_id: format!("g-{n}"),
        group: "x".into(),
        permission_set: "ReadOnly".into(),
        account_id: PAYMENTS.into(),
        account: "payments".into(),
    }
}

#[test]
fn the_guard_blocks_deletions_for_each_reason_and_only_then() {
    let p = policy(POLICY);
    let with = |f: &dyn Fn(&mut Report)| {
        let mut r = Report { deletes: vec![change(1)], ..Report::default() };
        f(&mut r);
        guard(&p, &mut r);
        r
    };
    assert_eq!(with(&|_| {}).deletions_blocked, None);
    let r = with(&|r| r.read_errors.push("assignments of group g: denied".into()));
    assert!(r.deletions_blocked.unwrap().contains("read(s) failed"));
    assert!(!r.deletion_guard_tripped);
    let r = with(&|r| r.policy_errors.push("missing".into()));
    assert!(r.deletions_blocked.unwrap().contains("policy cannot be applied"));
    let r = with(&|r| r.deletes = (0..6).map(change).collect());
    assert!(r.deletion_guard_tripped, "6 > max_deletions = 5");
    let r = with(&|r| r.deletes = (0..5).map(change).collect());
    assert_eq!(r.deletions_blocked, None, "5 is allowed");
    let no_prune = policy(&POLICY.replace("max_deletions = 5", "max_deletions = 5\nprune = false"));
    let mut r = Report { deletes: vec![change(1)], ..Report::default() };
    guard(&no_prune, &mut r);
    assert!(r.deletions_blocked.unwrap().contains("prune = false"));
}

// ---- apply ------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn apply_stays_within_the_quotas_and_makes_exactly_the_plan() {
    let w = world();
    // 30 more accounts: 32 ReadOnly creates for the core group (not in the management
    // account), 1 Admin create.
    for i in 0..30 {
        w.org.add_account(
            &format!("3000000000{i:02}"),
            &format!("team-{i}"),
            "ou-fake-workload",
            &[],
        );
    }
    let p = policy(POLICY);
    let r = Reconciler::new(&w.idc, &w.org, Limits::default());
    let prepared = r.prepare(&p, &options(Scope::All, &[])).await.unwrap();
    assert_eq!(prepared.report.creates.len(), 33);
    assert!(w.idc.assignments().is_empty(), "prepare changes nothing");
    let report = r.apply(&p, prepared, None).await;
    assert_eq!((report.created, report.failures.len()), (33, 0), "{:?}", report.failures);
    assert!(w.idc.max_in_flight.load(Ordering::Relaxed) <= MAX_OUTSTANDING_OPERATIONS);
    let now = w.idc.assignments();
    assert_eq!(now.len(), 33);
    assert!(now.contains(&key(&w.admin, "Admin", PAYMENTS)));
    assert!(
        !now.contains(&key(&w.core, "ReadOnly", MANAGEMENT)),
        "all_accounts leaves out the management account"
    );
    // A second run finds nothing to do.
    let again = r.prepare(&p, &options(Scope::All, &[])).await.unwrap();
    assert!(!again.report.has_changes(), "{:?}", again.report.creates);
}

#[tokio::test(start_paused = true)]
async fn apply_reports_failed_operations_and_makes_no_blocked_deletion() {
    let w = world();
    w.idc.assign(&w.core, "Admin", SANDBOX); // drift, to delete
    w.idc.fail_operations_in(PAYMENTS);
    w.idc.fail_reads_of_group(&w.admin);
    let p = policy(POLICY);
    let r = Reconciler::new(&w.idc, &w.org, Limits::default());
    let prepared = r.prepare(&p, &options(Scope::All, &[])).await.unwrap();
    assert_eq!(prepared.report.deletes.len(), 1);
    assert!(prepared.report.deletions_blocked.is_some(), "a read failed");
    let report = r.apply(&p, prepared, None).await;
    assert!(w.idc.assignments().contains(&key(&w.core, "Admin", SANDBOX)), "not deleted");
    assert_eq!(report.deleted, 0);
    let failed: Vec<&str> = report.failures.iter().map(|f| f.change.account_id.as_str()).collect();
    assert_eq!(failed, [PAYMENTS], "{:?}", report.failures);
    assert!(report.failures[0].reason.contains("failed in account"));
    assert_eq!(report.created, 1, "ReadOnly in the sandbox account");
}

#[tokio::test(start_paused = true)]
async fn apply_creates_missing_permission_sets_first() {
    let w = FakeIdentityCenter::new();
    let core = w.add_group("aws-core-readonly");
    let org = FakeOrganizations::new(MANAGEMENT);
    org.add_account(PAYMENTS, "payments", "ou-fake-workload", &[]);
    let p = policy(POLICY);
    let r = Reconciler::new(&w, &org, Limits::default());
    let prepared = r.prepare(&p, &options(Scope::All, &[])).await.unwrap();
    assert_eq!(prepared.report.permission_set_changes.len(), 2, "both to create");
    let report = r.apply(&p, prepared, None).await;
    assert_eq!(w.policies_of("ReadOnly").unwrap().managed, BTreeSet::from([READ_ONLY.to_owned()]));
    assert!(w.assignments().contains(&key(&core, "ReadOnly", PAYMENTS)));
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}

// ---- remember ---------------------------------------------------------------------------------

#[test]
fn remember_keeps_groups_that_still_hold_access_or_were_not_looked_at() {
    let now = BTreeMap::from([("g-now".to_owned(), ManagedGroup::default())]);
    let before: BTreeSet<String> =
        ["g-holding", "g-empty", "g-unreadable", "g-elsewhere"].map(String::from).into();
    let unreadable = BTreeSet::from(["g-unreadable".to_owned()]);
    let actual = BTreeSet::from([assignment("g-holding", "ReadOnly", PAYMENTS)]);
    let all = remember(&now, &before, &Scope::All, &unreadable, &actual);
    assert_eq!(all, ["g-holding", "g-now", "g-unreadable"].map(String::from).into());
    let scoped = Scope::Groups(BTreeSet::from(["g-empty".to_owned(), "g-holding".to_owned()]));
    let some = remember(&now, &before, &scoped, &unreadable, &actual);
    assert!(some.contains("g-elsewhere"), "outside the scope: kept");
    assert!(!some.contains("g-empty"), "looked at, holds nothing: forgotten");
}

#[tokio::test(start_paused = true)]
async fn a_reconciler_that_outruns_the_quotas_is_throttled_and_retries_to_the_same_result() {
    let w = world();
    for i in 0..40 {
        w.org.add_account(
            &format!("4000000000{i:02}"),
            &format!("team-{i}"),
            "ou-fake-workload",
            &[],
        );
    }
    let eager = Limits { requests_per_second: 200.0, max_outstanding: 25, ..Limits::default() };
    let p = policy(POLICY);
    let r = Reconciler::new(&w.idc, &w.org, eager);
    let report = r.run(&p, &options(Scope::All, &[]), None).await.unwrap();
    assert!(w.idc.throttled.load(Ordering::Relaxed) > 0, "the fake enforced its quotas");
    assert!(report.retries > 0);
    assert_eq!((report.created, report.failures.len()), (43, 0), "{:?}", report.failures);
    assert!(w.idc.max_in_flight.load(Ordering::Relaxed) <= MAX_OUTSTANDING_OPERATIONS);
}

// ---- fault sweep ------------------------------------------------------------------------------

/// The sweep's estate: one assignment to keep, one stale one to delete, one to create in each
/// other account, a permission set whose declared policy is missing (attach and re-provision),
/// and a rule naming an account the organisation lacks (an `unknown-target` alert every run).
fn sweep_policy() -> Policy {
    let text = POLICY.replace(
        r#"targets = { accounts = ["111111111111"] }"#,
        r#"targets = { accounts = ["111111111111", "333333333333"] }"#,
    );
    assert_ne!(text, POLICY);
    policy(&text)
}

/// What one reconcile under a fault left, and what the healthy run after it made of it.
struct SweepRun {
    after_fault: BTreeSet<(String, String, String)>,
    end: BTreeSet<(String, String, String)>,
    kept: (String, String, String),
    admin_policies: usize,
    managed_groups: usize,
    alerts: Vec<String>,
    calls: usize,
    hit: Option<(&'static str, crate::testing::faults::Fault)>,
}

async fn reconcile_with_faults(
    faults: &crate::testing::faults::Faults,
    arm: Option<(usize, crate::testing::faults::Fault)>,
) -> SweepRun {
    use crate::access::sync::AccessSyncHandler;
    use crate::testing::faults::{Faulty, RecordingSink};
    let idc = FakeIdentityCenter::new();
    idc.add_permission_set("ReadOnly", &[READ_ONLY]);
    idc.add_permission_set("Admin", &[]); // drift: the declared policy is missing
    let core = idc.add_group("aws-core-readonly");
    let admin = idc.add_group("aws-admin-payments");
    idc.assign(&core, "ReadOnly", PAYMENTS); // kept
    idc.assign(&admin, "Admin", SANDBOX); // stale: deleted
    let kept = key(&core, "ReadOnly", PAYMENTS);
    let org = FakeOrganizations::new(MANAGEMENT);
    org.add_account(MANAGEMENT, "management", "r-fake", &[]);
    org.add_account(PAYMENTS, "payments", "ou-fake-workload", &[]);
    org.add_account(SANDBOX, "sandbox", "ou-fake-workload", &[]);
    let sns = RecordingSink::new("sns");
    let sync = AccessSyncHandler {
        idc: Faulty::new(idc, faults),
        org: Faulty::new(org, faults),
        store: Faulty::new(crate::adapters::SqliteStateStore::in_memory().unwrap(), faults),
        sink: Faulty::new(&sns, faults),
        system_log: None::<crate::okta::ports::NoSystemLog>,
        policy: sweep_policy(),
        instance_arn: None,
        limits: Limits::default(),
        requeue: None,
        account_access: None,
    };
    if let Some((n, fault)) = arm {
        faults.arm(n, fault);
    }
    let first = tokio::time::timeout(Duration::from_secs(3600), sync.reconcile(Scope::All)).await;
    let (calls, hit) = (faults.calls(), faults.hit());
    faults.disarm();
    let after_fault = sync.idc.inner.assignments();
    if !matches!(&first, Ok(Ok(r)) if r.failures.is_empty() && r.deletions_blocked.is_none()) {
        // The next run (the schedule, a redelivered event), with healthy ports.
        let r = sync.reconcile(Scope::All).await.expect("a healthy run succeeds");
        assert!(r.failures.is_empty() && r.deletions_blocked.is_none(), "{r:?}");
    }
    let again = sync.reconcile(Scope::All).await.unwrap();
    assert!(!again.has_changes(), "converged: {again:?}");
    SweepRun {
        after_fault,
        end: sync.idc.inner.assignments(),
        kept,
        admin_policies: sync.idc.inner.policies_of("Admin").unwrap().managed.len(),
        managed_groups: crate::records::ManagedGroup::load_map(&sync.store.inner)
            .await
            .unwrap()
            .len(),
        alerts: sns.sent(),
        calls,
        hit,
    }
}

/// Fault sweep of one reconcile: the N-th port call (IdC, Organizations, the state table or the
/// alert sink) fails with each fault, then the next run has healthy ports. An assignment the
/// policy keeps is never deleted, not even by the faulted run (no deletion after a failed read);
/// the end state is the healthy run's; every alert of the healthy run arrives, and twice only
/// after a lost acceptance.
#[tokio::test(start_paused = true)]
async fn fault_sweep_a_reconcile_never_deletes_what_the_policy_keeps_and_converges() {
    use crate::testing::faults::{ALL_FAULTS, Fault, Faults};
    let healthy = reconcile_with_faults(&Faults::default(), None).await;
    // ReadOnly everywhere but the management account (a rule must name it), Admin in payments
    // only: the stale Admin in sandbox is gone.
    let accounts: BTreeSet<(&str, &str)> =
        healthy.end.iter().map(|(_, ps, a)| (ps.as_str(), a.as_str())).collect();
    assert_eq!(
        accounts,
        BTreeSet::from([("ReadOnly", PAYMENTS), ("ReadOnly", SANDBOX), ("Admin", PAYMENTS)])
    );
    assert_eq!(healthy.admin_policies, 1);
    assert_eq!(healthy.alerts.len(), 1, "unknown-target: {:?}", healthy.alerts);
    assert!(healthy.calls > 10, "{}", healthy.calls);
    for n in 1..=healthy.calls {
        for fault in ALL_FAULTS {
            let run = reconcile_with_faults(&Faults::default(), Some((n, fault))).await;
            let case = format!("call {n} {fault:?} {:?}", run.hit);
            assert!(run.hit.is_some(), "{case}: the armed call never happened");
            assert!(run.after_fault.contains(&run.kept), "{case}: a kept assignment was deleted");
            assert_eq!(run.end, healthy.end, "{case}");
            assert_eq!(run.admin_policies, 1, "{case}");
            assert_eq!(run.managed_groups, healthy.managed_groups, "{case}");
            for id in &healthy.alerts {
                assert!(run.alerts.contains(id), "{case}: alert {id} missed");
            }
            let unique: BTreeSet<&String> = run.alerts.iter().collect();
            let lost_acceptance = matches!(
                run.hit,
                Some(("send_part", Fault::Timeout) | ("put", Fault::Error | Fault::Drop))
            );
            assert!(
                unique.len() == run.alerts.len() || lost_acceptance,
                "{case}: an alert was sent twice: {:?}",
                run.alerts
            );
        }
    }
}
