//! The ledger against the quota-enforcing fakes: first the ways in a report that reads only
//! the policy or only group assignments would miss, then last use as CloudTrail keys it.

use chrono::{DateTime, Utc};

use super::query::{Index, Via, csv_line, diff};
use super::*;
use crate::access::policy::Policy;
use crate::access::reconcile::Limits;
use crate::adapters::SqliteStateStore;
use crate::records::{self, Grant, GrantStatus, LastUsed};
use crate::testing::{FakeAccountAccess, FakeIdentityCenter, FakeOrganizations};

const PAYMENTS: &str = "111111111111";
const SANDBOX: &str = "222222222222";

const POLICY: &str = r#"
[[permission_set]]
name = "ReadOnly"
managed_policies = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
session_duration = "PT8H"

[[permission_set]]
name = "Admin"
managed_policies = ["arn:aws:iam::aws:policy/AdministratorAccess"]
session_duration = "PT1H"

[[rule]]
name = "core"
groups = "aws-core-readonly"
permission_sets = ["ReadOnly"]
targets = { all_accounts = true }
tier = "core"

[[rule]]
name = "admins"
groups = "aws-admin-payments"
permission_sets = ["Admin"]
targets = { accounts = ["111111111111"] }
tier = "admin"
"#;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

struct World {
    idc: FakeIdentityCenter,
    org: FakeOrganizations,
    access: FakeAccountAccess,
    store: SqliteStateStore,
    policy: Policy,
    alice: String,
    bob: String,
    admin: String,
}

fn world() -> World {
    let idc = FakeIdentityCenter::new();
    idc.add_permission_set("ReadOnly", &["arn:aws:iam::aws:policy/ReadOnlyAccess"]);
    idc.add_permission_set("Admin", &["arn:aws:iam::aws:policy/AdministratorAccess"]);
    idc.add_permission_set("BillingLegacy", &["arn:aws:iam::aws:policy/job-function/Billing"]);
    let core = idc.add_group("aws-core-readonly");
    let admin = idc.add_group("aws-admin-payments");
    let alice = idc.add_user("alice@acme.example");
    let bob = idc.add_user("bob@acme.example");
    idc.add_member(&core, &alice);
    idc.add_member(&core, &bob);
    idc.add_member(&admin, &bob);
    for account in [PAYMENTS, SANDBOX] {
        idc.assign(&core, "ReadOnly", account);
    }
    idc.assign(&admin, "Admin", PAYMENTS);
    let org = FakeOrganizations::new("000000000000");
    org.add_account(PAYMENTS, "payments", "ou-fake-workload", &[]);
    org.add_account(SANDBOX, "sandbox", "ou-fake-workload", &[]);
    let (policy, d) = Policy::check(POLICY, None);
    World {
        idc,
        org,
        access: FakeAccountAccess::default(),
        store: SqliteStateStore::in_memory().unwrap(),
        policy: policy.unwrap_or_else(|| panic!("{d:?}")),
        alice,
        bob,
        admin,
    }
}

/// The ledger as the CLI and the export keep it: read, then through its JSON snapshot.
async fn read(w: &World) -> Result<Ledger, crate::error::AwsError> {
    let built = build_only(w).await?;
    let text = serde_json::to_string(&built).unwrap();
    let stored: Ledger = serde_json::from_str(&text).unwrap();
    assert_eq!(stored, built, "the snapshot keeps everything");
    Ok(stored)
}

async fn build_only(w: &World) -> Result<Ledger, crate::error::AwsError> {
    let limits = Limits { requests_per_second: 0.0, ..Limits::default() };
    build(
        &build::Sources {
            idc: &w.idc,
            org: &w.org,
            account_access: Some(&w.access),
            store: &w.store,
            policy: &w.policy,
            instance_arn: None,
            limits,
        },
        at("2026-12-01T00:00:00Z"),
    )
    .await
}

fn view(rows: &[Row<'_>]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {} [{}]",
                r.user,
                r.via.as_str(),
                r.group.unwrap_or("-"),
                r.permission_set,
                r.account_id,
                r.why
            )
        })
        .collect();
    v.sort();
    v
}

/// The ways in that a report of the policy, or of group assignments alone, would not show: a
/// hand-made group assignment, a direct user assignment of a set the policy does not declare,
/// and an IAM role entitled through the account access manager. Each is in `who` for the
/// account, with why.
#[tokio::test]
async fn who_shows_every_way_into_an_account_not_only_the_policys() {
    let w = world();
    let intern = w.idc.add_user("mallory@acme.example");
    let contractors = w.idc.add_group("contractors");
    w.idc.add_member(&contractors, &w.alice);
    w.idc.assign(&contractors, "Admin", PAYMENTS);
    w.idc.assign_user(&intern, "BillingLegacy", PAYMENTS);
    w.access.entitle(&format!("USER:{intern}"), "BreakGlassOps", PAYMENTS);
    let ledger = read(&w).await.unwrap();
    let index = Index::new(&ledger);
    assert_eq!(
        view(&index.who(PAYMENTS, None)),
        [
            "alice@acme.example group aws-core-readonly ReadOnly 111111111111 [rule core]",
            "alice@acme.example group contractors Admin 111111111111 [hand-made]",
            "bob@acme.example group aws-admin-payments Admin 111111111111 [rule admins]",
            "bob@acme.example group aws-core-readonly ReadOnly 111111111111 [rule core]",
            "mallory@acme.example direct - BillingLegacy 111111111111 [hand-made (direct)]",
            "mallory@acme.example entitlement - arn:aws:iam::111111111111:role/BreakGlassOps 111111111111 [account access manager entitlement]",
        ]
    );
    assert_eq!(
        view(&index.who(PAYMENTS, Some("admin"))),
        [
            "alice@acme.example group contractors Admin 111111111111 [hand-made]",
            "bob@acme.example group aws-admin-payments Admin 111111111111 [rule admins]",
        ]
    );
    let bob = index.user("BOB@acme.example").unwrap();
    let admin = index.what(bob).into_iter().find(|r| r.permission_set == "Admin").unwrap();
    assert_eq!(admin.tier, Some("admin"));
    assert_eq!(admin.session_duration, Some("PT1H"));
    assert_eq!(admin.account_name, "payments");
    assert!(ledger.notes.is_empty(), "{:?}", ledger.notes);
}

/// A ledger that silently lacks an account would say nobody can reach it: a failed read fails
/// the build. The account access manager failing is said in the notes, never hidden.
#[tokio::test]
async fn an_unreadable_account_fails_the_build_and_an_unreadable_access_manager_is_noted() {
    let w = world();
    w.idc.fail_reads_in(SANDBOX);
    assert!(read(&w).await.is_err());
    let w = world();
    w.access.fail.store(true, std::sync::atomic::Ordering::Relaxed);
    let ledger = read(&w).await.unwrap();
    assert!(
        ledger.notes.iter().any(|n| n.contains("account access manager")),
        "{:?}",
        ledger.notes
    );
}

/// Last use joins on the Identity Store id (CloudTrail's 2025 shape) or the user name (older
/// records and role-session calls), whichever is later; `unused` lists what neither shows in
/// the window, never-used included; a grant's end is on the row of its group.
#[tokio::test]
async fn last_use_joins_on_the_user_id_or_name_and_unused_lists_the_rest() {
    let w = world();
    let used =
        |user: &str, account: &str, set: &str, portal: Option<&str>, call: Option<&str>| LastUsed {
            user: user.into(),
            account_id: account.into(),
            permission_set: set.into(),
            portal: portal.map(at),
            activity: call.map(at),
            user_name: None,
        };
    for u in [
        used(&w.bob, PAYMENTS, "Admin", Some("2026-11-28T10:00:00Z"), None),
        used("bob@acme.example", PAYMENTS, "Admin", None, Some("2026-11-29T10:00:00Z")),
        used("alice@acme.example", SANDBOX, "ReadOnly", None, Some("2026-06-01T00:00:00Z")),
        used(&w.alice, PAYMENTS, "ReadOnly", Some("2026-11-30T00:00:00Z"), None),
    ] {
        records::save(&w.store, &u).await.unwrap();
    }
    let grant = Grant {
        id: "g-1".into(),
        login: "Bob@acme.example".into(),
        user_id: "00u-bob".into(),
        group: "aws-admin-payments".into(),
        reason: "INC-1".into(),
        minutes: 60,
        requested_by: "bob@acme.example".into(),
        requester_id: "00u-bob".into(),
        requested_at: at("2026-11-30T23:00:00Z"),
        approved_by: None,
        approvals: Vec::new(),
        denied_by: None,
        break_glass: false,
        reviewed_by: None,
        status: GrantStatus::Active,
        starts_at: Some(at("2026-11-30T23:30:00Z")),
        expires_at: Some(at("2026-12-01T00:30:00Z")),
        ended_at: None,
        sessions_pending: false,
        slack_message: None,
        activity: None,
    };
    records::save(&w.store, &grant).await.unwrap();
    let ledger = read(&w).await.unwrap();
    let index = Index::new(&ledger);
    let bob = index.user(&w.bob).unwrap();
    let admin = index.what(bob).into_iter().find(|r| r.permission_set == "Admin").unwrap();
    assert_eq!(admin.last_used, Some(at("2026-11-29T10:00:00Z")), "the later of id and name");
    assert_eq!(admin.last_portal, Some(at("2026-11-28T10:00:00Z")));
    assert_eq!(admin.grant_expires, Some(at("2026-12-01T00:30:00Z")));
    let unused = index.unused(90, at("2026-12-01T00:00:00Z"));
    assert_eq!(
        view(&unused),
        [
            "alice@acme.example group aws-core-readonly ReadOnly 222222222222 [rule core]",
            "bob@acme.example group aws-core-readonly ReadOnly 111111111111 [rule core]",
            "bob@acme.example group aws-core-readonly ReadOnly 222222222222 [rule core]",
        ]
    );
    let _ = &w.admin;
}

#[tokio::test]
async fn the_diff_names_access_that_appeared_and_went() {
    let w = world();
    let before = read(&w).await.unwrap();
    let carol = w.idc.add_user("carol@acme.example");
    w.idc.add_member(&w.admin, &carol);
    w.idc.remove_member(&w.admin, &w.bob);
    let after = read(&w).await.unwrap();
    let d = diff(&before, &after);
    assert_eq!(
        d.added,
        ["carol@acme.example via group aws-admin-payments → Admin @ 111111111111 (rule admins)"]
    );
    assert_eq!(
        d.removed,
        ["bob@acme.example via group aws-admin-payments → Admin @ 111111111111 (rule admins)"]
    );
    assert!(diff(&after, &after).added.is_empty());
}

#[test]
fn csv_quotes_what_would_break_a_row_or_run_as_a_formula() {
    let row = Row {
        user: "eve,\"x\"@acme.example",
        user_id: "u-1",
        via: Via::Group,
        group: Some("=HYPERLINK(\"http://evil\")"),
        grant_expires: None,
        permission_set: "Admin",
        account_id: PAYMENTS,
        account_name: "pay\nments",
        why: "hand-made",
        tier: None,
        session_duration: Some("PT1H"),
        last_used: None,
        last_portal: None,
    };
    assert_eq!(
        csv_line(&row),
        "\"eve,\"\"x\"\"@acme.example\",u-1,group,\"'=HYPERLINK(\"\"http://evil\"\")\",,Admin,111111111111,\"pay\nments\",hand-made,,PT1H,,"
    );
}

/// On a 500-account organisation, the last use of every row is what the CloudTrail the test
/// planted says: portal requests keyed by Identity Store id (2025 shape) and calls in role
/// sessions keyed by user name, several per row in any order, read as log files by the sign-in
/// scanner into the store, then joined by the ledger; `unused` is every row the plant left
/// older than the window or untouched.
#[tokio::test(start_paused = true)]
async fn last_used_dates_match_the_planted_cloudtrail_on_a_500_account_org() {
    use crate::signin::engine::Engine;
    use crate::signin::ports::NoDirectory;
    use crate::signin::scan::Scanner;
    use crate::signin::settings::SigninSettings;
    use crate::signin::sources::parse;

    let idc = FakeIdentityCenter::new();
    let org = FakeOrganizations::new("000000000000");
    for set in ["ReadOnly", "TeamDeveloper", "Admin"] {
        idc.add_permission_set(set, &["arn:aws:iam::aws:policy/ReadOnlyAccess"]);
    }
    let accounts: Vec<String> =
        (0..500).map(|i| format!("{:012}", 200_000_000_000u64 + i)).collect();
    for (i, a) in accounts.iter().enumerate() {
        org.add_account(a, &format!("acct-{i}"), "ou-fake-workloads", &[]);
    }
    let users: Vec<(String, String)> = (0..400)
        .map(|i| {
            let name = format!("user{i}@acme.example");
            (idc.add_user(&name), name)
        })
        .collect();
    let core = idc.add_group("aws-core-readonly");
    for (id, _) in &users {
        idc.add_member(&core, id);
    }
    for a in &accounts {
        idc.assign(&core, "ReadOnly", a);
    }
    for t in 0..40 {
        let g = idc.add_group(&format!("aws-team-t{t}"));
        for (id, _) in users.iter().skip(t).step_by(40) {
            idc.add_member(&g, id);
        }
        for a in accounts.iter().skip(t).step_by(50) {
            idc.assign(&g, "TeamDeveloper", a);
        }
    }
    let w = World {
        idc,
        org,
        access: FakeAccountAccess::default(),
        store: SqliteStateStore::in_memory().unwrap(),
        policy: Policy::check("", None).0.unwrap(),
        alice: String::new(),
        bob: String::new(),
        admin: String::new(),
    };
    let now = at("2026-12-01T00:00:00Z");
    let before = build_only(&w).await.unwrap();
    // The plant: for 300 rows, 1–3 uses each at random times in the last 200 days.
    let mut rng = fastrand::Rng::with_seed(27);
    let index = Index::new(&before);
    let mut expected: std::collections::BTreeMap<(String, String, String), DateTime<Utc>> =
        Default::default();
    let mut records = Vec::new();
    for n in 0..300 {
        let (id, name) = &users[rng.usize(..users.len())];
        let rows = index.what(index.user(id).unwrap());
        let row = &rows[rng.usize(..rows.len())];
        for k in 0..rng.usize(1..=3) {
            let t = now - chrono::Duration::minutes(rng.i64(1..200 * 24 * 60));
            let key = (id.clone(), row.permission_set.to_owned(), row.account_id.to_owned());
            let latest = expected.entry(key).or_insert(t);
            *latest = (*latest).max(t);
            let time = t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let event_id = format!("00000000-0000-4000-8000-{n:06}{k:06}");
            records.push(if rng.bool() {
                serde_json::json!({"eventVersion": "1.10", "eventTime": time, "eventID": event_id,
                    "eventSource": "sso.amazonaws.com", "eventName": "GetRoleCredentials",
                    "eventType": "AwsServiceEvent", "awsRegion": "us-east-1",
                    "sourceIPAddress": "198.51.100.23", "recipientAccountId": "999999999999",
                    "userIdentity": {"type": "IdentityCenterUser", "accountId": "999999999999",
                        "onBehalfOf": {"userId": id, "identityStoreArn": "arn:aws:identitystore::999999999999:identitystore/d-fake"},
                        "credentialId": format!("portal-{n}")},
                    "serviceEventDetails": {"account_id": row.account_id, "role_name": row.permission_set}})
            } else {
                let role = format!("AWSReservedSSO_{}_0123456789abcdef", row.permission_set);
                serde_json::json!({"eventVersion": "1.09", "eventTime": time, "eventID": event_id,
                    "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances",
                    "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.23",
                    "recipientAccountId": row.account_id,
                    "userIdentity": {"type": "AssumedRole", "principalId": format!("AROAEXAMPLE:{name}"),
                        "arn": format!("arn:aws:sts::{}:assumed-role/{role}/{name}", row.account_id),
                        "accountId": row.account_id,
                        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                            "arn": format!("arn:aws:iam::{}:role/aws-reserved/sso.amazonaws.com/{role}", row.account_id),
                            "accountId": row.account_id, "userName": role}}}})
            });
        }
    }
    rng.shuffle(&mut records);
    // Read as log files of 100 records, each run saving what it saw, as the function does.
    for file in records.chunks(100) {
        let text = serde_json::json!({"Records": file}).to_string();
        let activities = parse(text.as_bytes()).activities;
        let engine = Engine::new(
            std::sync::Arc::new(SigninSettings::default()),
            Default::default(),
            std::sync::Arc::new(crate::geo::Geo::default()),
        );
        let mut scanner = Scanner::new(engine, Some(&w.store), &NoDirectory);
        scanner.process(activities).await.unwrap();
        scanner.save().await.unwrap();
    }
    let after = read(&w).await.unwrap();
    let index = Index::new(&after);
    let mut seen = 0;
    let mut rows_total = 0;
    let mut recent = 0;
    index.each_row(&mut |r| {
        rows_total += 1;
        let key = (r.user_id.to_owned(), r.permission_set.to_owned(), r.account_id.to_owned());
        assert_eq!(r.last_used, expected.get(&key).copied(), "{key:?}");
        seen += usize::from(r.last_used.is_some());
        recent += usize::from(r.last_used.is_some_and(|t| t >= now - chrono::Duration::days(90)));
    });
    // Each planted triple is one row (a set reached through two groups would be two).
    assert!(seen >= expected.len(), "{seen} rows used, {} planted", expected.len());
    assert_eq!(index.unused(90, now).len(), rows_total - recent);
    assert!(rows_total > 200_000, "{rows_total} rows");
}
