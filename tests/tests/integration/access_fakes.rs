//! The access-sync handler against the quota-enforcing fakes of IdC and Organizations
//! (`idc_guard::testing`) and a real SQLite state store: what moto cannot show — IdC's quotas
//! and asynchronous operations — across handler runs.

use std::sync::atomic::Ordering;

use idc_guard::access::Policy;
use idc_guard::access::reconcile::{Limits, Scope};
use idc_guard::access::sync::AccessSyncHandler;
use idc_guard::adapters::SqliteStateStore;
use idc_guard::alert::LogAlertSink;
use idc_guard::records::ManagedGroup;
use idc_guard::testing::{FakeIdentityCenter, FakeOrganizations, MAX_OUTSTANDING_OPERATIONS};

const POLICY: &str = r#"
[[permission_set]]
name = "Developer"
managed_policies = ["arn:aws:iam::aws:policy/PowerUserAccess"]

[[rule]]
groups = "aws-team-{team}"
permission_sets = ["Developer"]
targets = { tags = { team = "{team}" } }
tier = "team"
"#;

fn handler(
    idc: FakeIdentityCenter,
    org: FakeOrganizations,
) -> AccessSyncHandler<FakeIdentityCenter, FakeOrganizations, SqliteStateStore, LogAlertSink> {
    AccessSyncHandler {
        idc,
        org,
        store: SqliteStateStore::in_memory().unwrap(),
        sink: LogAlertSink,
        system_log: None,
        policy: Policy::check(POLICY, None).0.unwrap(),
        instance_arn: None,
        limits: Limits::default(),
        requeue: None,
        account_access: None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_group_renamed_out_of_every_rule_loses_its_access_on_the_next_run() {
    let idc = FakeIdentityCenter::new();
    let payments = idc.add_group("aws-team-payments");
    let org = FakeOrganizations::new("000000000000");
    for i in 0..15 {
        org.add_account(
            &format!("1000000000{i:02}"),
            &format!("pay-{i}"),
            "ou-fake-pay",
            &[("team", "payments")],
        );
    }
    let sync = handler(idc, org);

    let first = sync.reconcile(Scope::All).await.unwrap();
    assert_eq!((first.created, first.failures.len()), (15, 0), "{:?}", first.failures);
    assert!(sync.idc.max_in_flight.load(Ordering::Relaxed) <= MAX_OUTSTANDING_OPERATIONS);
    assert_eq!(
        ManagedGroup::load_map(&sync.store).await.unwrap().get(&payments).map(String::as_str),
        Some("aws-team-payments"),
        "remembered by id"
    );

    // Okta renames the group (SCIM pushes the new name): no rule matches it any more, but
    // idc-guard managed it, so its access is removed — and then it is forgotten.
    sync.idc.rename_group(&payments, "payments-alumni");
    let second = sync.reconcile(Scope::All).await.unwrap();
    assert_eq!((second.deleted, second.failures.len()), (15, 0), "{:?}", second.failures);
    assert!(sync.idc.assignments().is_empty());
    assert!(
        !ManagedGroup::load_map(&sync.store).await.unwrap().contains_key(&payments),
        "holds nothing any more: forgotten"
    );
    let third = sync.reconcile(Scope::All).await.unwrap();
    assert!(!third.has_changes());
}
