//! Reconciler against an in-process fake of IAM Identity Center that enforces its quotas:
//! 20 requests/s across sso-admin (token bucket; excess → ThrottlingException), at most 10
//! outstanding assignment operations, and 1 s asynchronous completion. Real time, one run each:
//!
//! 1. a no-drift reconcile of 1,000 accounts × 40 managed groups × 3 permission sets;
//! 2. applying 1,200 new assignments (40 groups × 10 accounts × 3 permission sets).
//!
//! The fake is `idc_guard::testing::FakeIdentityCenter`, the one the unit and integration tests
//! use. Run: `cargo bench -p idc-guard-core --features test-support --bench reconcile` (takes about two and a half minutes).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use idc_guard::access::Policy;
use idc_guard::access::reconcile::{Limits, Reconciler, RunOptions, Scope};
use idc_guard::testing::{FakeIdentityCenter, FakeOrganizations};

const ACCOUNTS: usize = 1000;
const GROUPS: usize = 40;
const PERMISSION_SETS: [&str; 3] = ["Dev", "Ops", "ReadOnly"];

/// The shared quota-enforcing fake with 40 team groups and the three permission sets.
fn identity_center() -> (FakeIdentityCenter, Vec<String>) {
    let idc = FakeIdentityCenter::new();
    for name in PERMISSION_SETS {
        idc.add_permission_set(name, &[&format!("arn:aws:iam::aws:policy/{name}Access")]);
    }
    let groups = (0..GROUPS).map(|i| idc.add_group(&format!("aws-team-t{i:02}"))).collect();
    (idc, groups)
}

/// 1,000 accounts in 10 OUs; `tagged_per_team` of them per team carry its tag t00..t39.
fn org(tagged_per_team: usize) -> FakeOrganizations {
    let org = FakeOrganizations::new("000000000000");
    for i in 0..ACCOUNTS {
        let team = format!("t{:02}", i / tagged_per_team);
        let tags: Vec<(&str, &str)> =
            if i / tagged_per_team < GROUPS { vec![("team", team.as_str())] } else { vec![] };
        let id = format!("{:012}", 100_000_000_000u64 + i as u64);
        org.add_account(&id, &format!("acct-{i}"), &format!("ou-bnch-{:08}", i % 10), &tags);
    }
    org
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

/// Every team account already holds its team's three permission sets.
fn prefill(idc: &FakeIdentityCenter, groups: &[String], org: &FakeOrganizations) {
    for a in org.accounts.lock().unwrap().iter() {
        if let Some(team) = a.tags.get("team") {
            let group = &groups[team[1..].parse::<usize>().unwrap()];
            for ps in PERMISSION_SETS {
                idc.assign(group, ps, &a.id);
            }
        }
    }
}

async fn scenario(name: &str, org: FakeOrganizations, prefilled: bool) {
    let policy = Policy::check(POLICY, None).0.expect("bench policy");
    let (fake, groups) = identity_center();
    if prefilled {
        prefill(&fake, &groups, &org);
    }
    let reconciler = Reconciler::new(&fake, &org, Limits::default());
    let options =
        RunOptions { scope: Scope::All, apply: true, previously_managed: BTreeSet::new() };
    let started = std::time::Instant::now();
    let report = reconciler.run(&policy, &options, None).await.expect("reconcile");
    let elapsed = started.elapsed();
    let sso = fake.sso_calls.load(Ordering::Relaxed);
    let identity_store = fake.identity_store_calls.load(Ordering::Relaxed);
    println!("{name}");
    println!("  wall time                 {:.1} s", elapsed.as_secs_f64());
    println!("  assignments created       {} (failures {})", report.created, report.failures.len());
    println!("  managed groups            {}", report.managed_groups.len());
    println!(
        "  sso-admin calls           {sso} ({:.2} per managed group), throttled by the fake: {}",
        sso as f64 / GROUPS as f64,
        fake.throttled.load(Ordering::Relaxed)
    );
    println!("  identitystore calls       {identity_store}");
    println!(
        "  organizations calls       {} (of which {} ListTagsForResource)",
        report.api_calls.saturating_sub(sso + identity_store),
        ACCOUNTS
    );
    println!("  max outstanding ops seen  {}", fake.max_in_flight.load(Ordering::Relaxed));
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
