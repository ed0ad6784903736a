//! The access ledger at scale, against the fake that enforces IAM Identity Center's quotas:
//! 500 accounts, 300 groups, 5,000 users. Prints the calls the read took beside the naive
//! per-account × per-set read, and the time `who`, `what` and `unused` take from the stored
//! snapshot (read from its file and parsed each time, as the CLI does).
//!
//! `cargo run --release -p idc-guard-core --features test-support --example ledger_scale`

use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{Duration, Utc};
use idc_guard::access::ledger::query::Index;
use idc_guard::access::ledger::{Ledger, build};
use idc_guard::access::policy::Policy;
use idc_guard::access::reconcile::Limits;
use idc_guard::adapters::SqliteStateStore;
use idc_guard::records::{self, LastUsed};
use idc_guard::testing::{FakeAccountAccess, FakeIdentityCenter, FakeOrganizations};

const ACCOUNTS: usize = 500;
const TEAMS: usize = 290;
const USERS: usize = 5_000;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let idc = FakeIdentityCenter::new();
    let org = FakeOrganizations::new("000000000000");
    let store = SqliteStateStore::in_memory().unwrap();
    let sets = [
        "ReadOnly",
        "TeamDeveloper",
        "TeamOperator",
        "Admin",
        "Billing",
        "Network",
        "Security",
        "DataScience",
    ];
    for s in sets {
        idc.add_permission_set(s, &["arn:aws:iam::aws:policy/ReadOnlyAccess"]);
    }
    let accounts: Vec<String> =
        (0..ACCOUNTS).map(|i| format!("{:012}", 100_000_000_000u64 + i as u64)).collect();
    for (i, a) in accounts.iter().enumerate() {
        org.add_account(
            a,
            &format!("acct-{i}"),
            &format!("ou-ab12-{:08}", i % 20),
            &[("team", &format!("t{}", i % TEAMS))],
        );
    }
    let users: Vec<String> =
        (0..USERS).map(|i| idc.add_user(&format!("user{i}@acme.example"))).collect();
    let core = idc.add_group("aws-core-readonly");
    for u in &users {
        idc.add_member(&core, u);
    }
    for a in &accounts {
        idc.assign(&core, "ReadOnly", a);
    }
    for t in 0..TEAMS {
        let g = idc.add_group(&format!("aws-team-t{t}"));
        for u in users.iter().skip(t).step_by(TEAMS).take(20) {
            idc.add_member(&g, u);
        }
        for a in accounts.iter().skip(t).step_by(TEAMS) {
            idc.assign(&g, "TeamDeveloper", a);
            idc.assign(&g, "TeamOperator", a);
        }
    }
    for (n, set) in ["Admin", "Billing", "Network", "Security", "DataScience"].iter().enumerate() {
        let g = idc.add_group(&format!("aws-admin-{}", set.to_lowercase()));
        for u in users.iter().skip(n).step_by(500) {
            idc.add_member(&g, u);
        }
        for a in accounts.iter().take(40) {
            idc.assign(&g, set, a);
        }
    }
    for (i, u) in users.iter().enumerate().take(2_000) {
        let used = LastUsed {
            user: u.clone(),
            account_id: accounts[i % ACCOUNTS].clone(),
            permission_set: "ReadOnly".into(),
            portal: Some(Utc::now() - Duration::days((i % 200) as i64)),
            ..Default::default()
        };
        records::save(&store, &used).await.unwrap();
    }
    let (policy, _) = Policy::check("", None);
    let policy = policy.unwrap();
    let access = FakeAccountAccess::default();
    let started = Instant::now();
    let ledger = build(
        &idc_guard::access::ledger::build::Sources {
            idc: &idc,
            org: &org,
            account_access: Some(&access),
            store: &store,
            policy: &policy,
            instance_arn: None,
            limits: Limits::default(),
        },
        Utc::now(),
    )
    .await
    .unwrap();
    let sso = idc.sso_calls.load(Ordering::Relaxed);
    let ids = idc.identity_store_calls.load(Ordering::Relaxed);
    println!(
        "estate: {ACCOUNTS} accounts, {} groups, {USERS} users, {} sets, {} assignments (built in {:.2?} of CPU, paced time excluded)",
        ledger.groups.len(),
        sets.len(),
        ledger.holdings.len(),
        started.elapsed()
    );
    println!(
        "calls: sso-admin {sso} (throttled {}), identitystore {ids}, account access {}; naive ListAccountAssignments per account x set: {} (+ the same listings)",
        idc.throttled.load(Ordering::Relaxed),
        access.calls.load(Ordering::Relaxed),
        ACCOUNTS * sets.len()
    );
    let path = std::env::temp_dir().join("idc-guard-ledger-scale.json");
    std::fs::write(&path, serde_json::to_vec(&ledger).unwrap()).unwrap();
    println!("snapshot: {:.1} MB", std::fs::metadata(&path).unwrap().len() as f64 / 1e6);
    let load = || -> Ledger { serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap() };
    let time = |what: &str, f: &dyn Fn(&Ledger) -> usize| {
        let t = Instant::now();
        let l = load();
        let loaded = t.elapsed();
        let rows = f(&l);
        println!(
            "{what:<28} {rows:>8} rows  {:>7.0} ms (load {:.0} ms)",
            t.elapsed().as_secs_f64() * 1e3,
            loaded.as_secs_f64() * 1e3
        );
    };
    time("who --account (one)", &|l| Index::new(l).who(&accounts[7], None).len());
    time("what --user (one)", &|l| {
        let i = Index::new(l);
        let u = i.user("user7@acme.example").unwrap();
        i.what(u).len()
    });
    time("unused --days 90", &|l| Index::new(l).unused(90, Utc::now()).len());
    let _ = std::fs::remove_file(path);
}
