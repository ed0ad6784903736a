//! Reconciler against an in-process fake of IAM Identity Center that enforces its quotas:
//! 20 requests/s across sso-admin (token bucket; excess → ThrottlingException), at most 10
//! outstanding assignment operations, and 1 s asynchronous completion. Real time, one run each:
//!
//! 1. a no-drift reconcile of 1,000 accounts × 40 managed groups × 3 permission sets;
//! 2. applying 1,200 new assignments (40 groups × 10 accounts × 3 permission sets).
//!
//! Run: `cargo bench -p idc-guard-core --bench reconcile` (takes about two and a half minutes).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use idc_guard::access::policy::{CustomerManagedPolicy, PermissionSetSpec, PermissionsBoundary};
use idc_guard::access::ports::{
    ActualAssignment, IdcInstance, IdentityCenter, OperationStatus, OrgSnapshot, Organizations,
    PermissionSetInfo, PermissionSetPolicies,
};
use idc_guard::access::reconcile::{Limits, Reconciler, RunOptions, Scope};
use idc_guard::access::{Account, AccountStatus, Group, Policy};
use idc_guard::error::AwsError;
use tokio::time::Instant;

const ACCOUNTS: usize = 1000;
const GROUPS: usize = 40;
const INSTANCE: &str = "arn:aws:sso:::instance/ssoins-bench";

fn throttled() -> AwsError {
    AwsError::Retryable {
        service: "sso-admin",
        operation: "fake",
        message: "ThrottlingException".into(),
    }
}

/// An assignment operation in flight: (group, ps arn, account, create?, completes at).
type Operation = (String, String, String, bool, Instant);

struct Fake {
    bucket: Mutex<(f64, Instant)>,
    sso_calls: AtomicUsize,
    throttled: AtomicUsize,
    other_calls: AtomicUsize,
    operations: Mutex<HashMap<String, Operation>>,
    assignments: Mutex<BTreeSet<(String, String, String)>>,
    groups: Vec<Group>,
    permission_sets: Vec<PermissionSetInfo>,
    max_outstanding_seen: AtomicUsize,
}

impl Fake {
    fn new(assignments: BTreeSet<(String, String, String)>) -> Self {
        Fake {
            bucket: Mutex::new((20.0, Instant::now())),
            sso_calls: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
            other_calls: AtomicUsize::new(0),
            operations: Mutex::new(HashMap::new()),
            assignments: Mutex::new(assignments),
            groups: (0..GROUPS)
                .map(|i| Group {
                    id: format!("g-{i:02}"),
                    display_name: format!("aws-team-t{i:02}"),
                })
                .collect(),
            permission_sets: ["Dev", "Ops", "ReadOnly"]
                .iter()
                .map(|n| PermissionSetInfo {
                    arn: format!("arn:aws:sso:::permissionSet/ssoins-bench/ps-{n}"),
                    name: (*n).into(),
                    description: None,
                    session_duration: Some("PT1H".into()),
                    relay_state: None,
                })
                .collect(),
            max_outstanding_seen: AtomicUsize::new(0),
        }
    }

    /// One sso-admin request against the 20/s token bucket (burst 20).
    fn quota(&self) -> Result<(), AwsError> {
        self.sso_calls.fetch_add(1, Ordering::Relaxed);
        let mut b = self.bucket.lock().unwrap();
        let now = Instant::now();
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * 20.0).min(20.0);
        b.1 = now;
        if b.0 < 1.0 {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(throttled());
        }
        b.0 -= 1.0;
        Ok(())
    }

    fn settle(&self) -> usize {
        let now = Instant::now();
        let mut ops = self.operations.lock().unwrap();
        let mut done = Vec::new();
        for (id, (g, p, a, create, at)) in ops.iter() {
            if *at <= now {
                done.push((id.clone(), g.clone(), p.clone(), a.clone(), *create));
            }
        }
        let mut assignments = self.assignments.lock().unwrap();
        for (id, g, p, a, create) in done {
            ops.remove(&id);
            if create {
                assignments.insert((g, p, a));
            } else {
                assignments.remove(&(g, p, a));
            }
        }
        ops.len()
    }

    fn start(
        &self,
        g: &str,
        p: &str,
        a: &str,
        create: bool,
    ) -> Result<(String, OperationStatus), AwsError> {
        self.quota()?;
        let outstanding = self.settle();
        if outstanding >= 10 {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(throttled());
        }
        self.max_outstanding_seen.fetch_max(outstanding + 1, Ordering::Relaxed);
        let id = format!("req-{}", fastrand::u64(..));
        let done = Instant::now() + Duration::from_secs(1);
        self.operations
            .lock()
            .unwrap()
            .insert(id.clone(), (g.into(), p.into(), a.into(), create, done));
        Ok((id, OperationStatus::InProgress))
    }
}

impl IdentityCenter for Fake {
    async fn instance(&self, _: Option<&str>) -> Result<IdcInstance, AwsError> {
        self.quota()?;
        Ok(IdcInstance { instance_arn: INSTANCE.into(), identity_store_id: "d-bench".into() })
    }
    async fn list_groups(&self, _: &str) -> Result<Vec<Group>, AwsError> {
        self.other_calls.fetch_add(1, Ordering::Relaxed);
        Ok(self.groups.clone())
    }
    async fn find_group(&self, _: &str, n: &str) -> Result<Option<Group>, AwsError> {
        Ok(self.groups.iter().find(|g| g.display_name == n).cloned())
    }
    async fn describe_group(&self, _: &str, id: &str) -> Result<Option<Group>, AwsError> {
        Ok(self.groups.iter().find(|g| g.id == id).cloned())
    }
    async fn list_group_member_names(&self, _: &str, _: &str) -> Result<Vec<String>, AwsError> {
        Ok(vec![])
    }
    async fn list_permission_sets(&self, _: &str) -> Result<Vec<PermissionSetInfo>, AwsError> {
        self.quota()?;
        for _ in &self.permission_sets {
            self.quota()?;
        }
        Ok(self.permission_sets.clone())
    }
    async fn permission_set_policies(
        &self,
        _: &str,
        arn: &str,
        _: bool,
    ) -> Result<PermissionSetPolicies, AwsError> {
        for _ in 0..3 {
            self.quota()?;
        }
        let name = arn.rsplit("ps-").next().unwrap_or_default();
        Ok(PermissionSetPolicies {
            managed: BTreeSet::from([format!("arn:aws:iam::aws:policy/{name}Access")]),
            ..Default::default()
        })
    }
    async fn create_permission_set(
        &self,
        _: &str,
        _: &PermissionSetSpec,
    ) -> Result<String, AwsError> {
        unreachable!("the bench's permission sets exist")
    }
    async fn update_permission_set(
        &self,
        _: &str,
        _: &str,
        _: &PermissionSetSpec,
    ) -> Result<(), AwsError> {
        unreachable!("no permission set drift in the bench")
    }
    async fn attach_managed_policy(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: bool,
    ) -> Result<(), AwsError> {
        unreachable!()
    }
    async fn attach_customer_managed_policy(
        &self,
        _: &str,
        _: &str,
        _: &CustomerManagedPolicy,
        _: bool,
    ) -> Result<(), AwsError> {
        unreachable!()
    }
    async fn set_inline_policy(&self, _: &str, _: &str, _: Option<&str>) -> Result<(), AwsError> {
        unreachable!()
    }
    async fn set_permissions_boundary(
        &self,
        _: &str,
        _: &str,
        _: &PermissionsBoundary,
    ) -> Result<(), AwsError> {
        unreachable!()
    }
    async fn provision_permission_set(&self, _: &str, _: &str) -> Result<String, AwsError> {
        unreachable!()
    }
    async fn list_group_assignments(
        &self,
        _: &str,
        group: &str,
    ) -> Result<(Vec<ActualAssignment>, usize), AwsError> {
        self.settle();
        let list: Vec<ActualAssignment> = self
            .assignments
            .lock()
            .unwrap()
            .iter()
            .filter(|(g, _, _)| g == group)
            .map(|(_, p, a)| ActualAssignment {
                account_id: a.clone(),
                permission_set_arn: p.clone(),
            })
            .collect();
        // MaxResults 100 per page: the first page was this call, further pages cost quota too.
        let pages = list.len().div_ceil(100).max(1);
        self.quota()?;
        for _ in 1..pages {
            self.quota()?;
        }
        Ok((list, pages))
    }
    async fn create_assignment(
        &self,
        _: &str,
        g: &str,
        p: &str,
        a: &str,
    ) -> Result<(String, OperationStatus), AwsError> {
        self.start(g, p, a, true)
    }
    async fn delete_assignment(
        &self,
        _: &str,
        g: &str,
        p: &str,
        a: &str,
    ) -> Result<(String, OperationStatus), AwsError> {
        self.start(g, p, a, false)
    }
    async fn assignment_status(
        &self,
        _: &str,
        request: &str,
        _: bool,
    ) -> Result<OperationStatus, AwsError> {
        self.quota()?;
        self.settle();
        Ok(if self.operations.lock().unwrap().contains_key(request) {
            OperationStatus::InProgress
        } else {
            OperationStatus::Succeeded
        })
    }
}

/// 1,000 accounts in 10 OUs; `tagged` of them carry a team tag t00..t39.
struct Org {
    accounts: Vec<Account>,
}

impl Organizations for Org {
    async fn snapshot(&self, _with_tags: bool) -> Result<OrgSnapshot, AwsError> {
        // DescribeOrganization + ListRoots + OUs under the root + accounts (20 per page) per OU +
        // one ListTagsForResource per account.
        let calls = 2 + 1 + 10 * (ACCOUNTS / 10).div_ceil(20) + 10 + ACCOUNTS;
        Ok(OrgSnapshot {
            accounts: self.accounts.clone(),
            management_account_id: Some("000000000000".into()),
            organizational_units: Default::default(),
            calls,
        })
    }
}

fn org(tagged_per_team: usize) -> Org {
    let accounts = (0..ACCOUNTS)
        .map(|i| {
            let team = i / tagged_per_team;
            let tags = if team < GROUPS {
                BTreeMap::from([("team".to_string(), format!("t{team:02}"))])
            } else {
                BTreeMap::new()
            };
            Account {
                id: format!("{:012}", 100_000_000_000u64 + i as u64),
                name: format!("acct-{i}"),
                status: AccountStatus::Active,
                ou_path: vec!["r-bench".into(), format!("ou-bnch-{:08}", i % 10)],
                tags,
            }
        })
        .collect();
    Org { accounts }
}

const POLICY: &str = r#"
[[permission_set]]
name = "Dev"
managed_policies = ["arn:aws:iam::aws:policy/DevAccess"]
[[permission_set]]
name = "Ops"
managed_policies = ["arn:aws:iam::aws:policy/OpsAccess"]
[[permission_set]]
name = "ReadOnly"
managed_policies = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
[[rule]]
groups = "aws-team-{team}"
permission_sets = ["Dev", "Ops", "ReadOnly"]
targets = { tags = { team = "{team}" } }
"#;

fn existing(org: &Org, fake_ps: &[PermissionSetInfo]) -> BTreeSet<(String, String, String)> {
    let mut set = BTreeSet::new();
    for a in &org.accounts {
        if let Some(team) = a.tags.get("team") {
            let group = format!("g-{}", &team[1..]);
            for ps in fake_ps {
                set.insert((group.clone(), ps.arn.clone(), a.id.clone()));
            }
        }
    }
    set
}

async fn scenario(name: &str, org: Org, prefilled: bool) {
    let policy = Policy::check(POLICY, None).0.expect("bench policy");
    let mut fake = Fake::new(BTreeSet::new());
    if prefilled {
        fake.assignments = Mutex::new(existing(&org, &fake.permission_sets));
    }
    let reconciler = Reconciler::new(&fake, &org, Limits::default());
    let options =
        RunOptions { scope: Scope::All, apply: true, previously_managed: BTreeSet::new() };
    let started = std::time::Instant::now();
    let report = reconciler.run(&policy, &options, None).await.expect("reconcile");
    let elapsed = started.elapsed();
    let sso = fake.sso_calls.load(Ordering::Relaxed);
    println!("{name}");
    println!("  wall time                 {:.1} s", elapsed.as_secs_f64());
    println!("  assignments created       {} (failures {})", report.created, report.failures.len());
    println!("  managed groups            {}", report.managed_groups.len());
    println!(
        "  sso-admin calls           {sso} ({:.2} per managed group), throttled by the fake: {}",
        sso as f64 / GROUPS as f64,
        fake.throttled.load(Ordering::Relaxed)
    );
    println!("  identitystore calls       {}", fake.other_calls.load(Ordering::Relaxed));
    println!(
        "  organizations calls       {} (of which {} ListTagsForResource)",
        report.api_calls - sso - fake.other_calls.load(Ordering::Relaxed),
        ACCOUNTS
    );
    println!("  max outstanding ops seen  {}", fake.max_outstanding_seen.load(Ordering::Relaxed));
    if report.created > 0 {
        let bound = (2 * report.created) as f64 / 20.0;
        println!(
            "  quota bound (2 calls/op at 20/s) {bound:.0} s → {:.2}× the bound",
            elapsed.as_secs_f64() / bound
        );
    }
    assert!(report.failures.is_empty());
}

fn main() {
    // `cargo test --benches` runs bench targets with --test-ish args; only run on `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        // 25 accounts per team × 3 permission sets = 75 assignments per group, 3,000 in all.
        scenario("no-drift reconcile: 1,000 accounts × 40 groups × 3 permission sets (3,000 assignments)", org(25), true).await;
        // 10 accounts per team × 3 permission sets × 40 groups = 1,200 creates.
        scenario("apply 1,200 new assignments", org(10), false).await;
    });
}
