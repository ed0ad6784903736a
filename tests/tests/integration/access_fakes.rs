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

/// The scheduled ledger export into a real S3 bucket (moto): the day's CSV and JSON lines, the
/// snapshot, and on the next run the diff naming who gained and who lost access.
#[tokio::test]
async fn the_scheduled_ledger_export_writes_the_rows_and_the_next_run_the_diff() {
    use idc_guard::access::ledger::export::LedgerArchive;
    let idc = FakeIdentityCenter::new();
    idc.add_permission_set("Developer", &["arn:aws:iam::aws:policy/PowerUserAccess"]);
    let payments = idc.add_group("aws-team-payments");
    let alice = idc.add_user("alice@acme.example");
    idc.add_member(&payments, &alice);
    let org = FakeOrganizations::new("000000000000");
    org.add_account("100000000001", "pay-1", "ou-fake-pay", &[("team", "payments")]);
    idc.assign(&payments, "Developer", "100000000001");
    let sdk = local_aws::local_aws().await;
    let bucket = local_aws::unique("ledger").to_lowercase();
    let s3 = idc_guard::adapters::s3_client(&sdk);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let archive = idc_guard::adapters::S3LedgerArchive::new(s3.clone(), &bucket);
    let mut sync = handler(idc, org);
    sync.limits.requests_per_second = 1000.0;
    let event = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event",
        "detail": {"job": "ledger"}});

    let first = sync.handle_with_ledger(event.clone(), Some(&archive)).await.unwrap();
    assert_eq!(first["ledger_rows"], 1, "{first}");
    assert_eq!(first["added"], serde_json::Value::Null, "no earlier snapshot: {first}");
    let objects = first["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 4, "{first}");
    let csv_key = objects[0].as_str().unwrap();
    let csv = archive.get(csv_key).await.unwrap().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&csv[..]), &mut text).unwrap();
    assert!(text.starts_with("user,user_id,via,group"), "{text}");
    assert!(text.contains("alice@acme.example") && text.contains("rule "), "{text}");

    // Bob joins; the next day's diff says so.
    let bob = sync.idc.add_user("bob@acme.example");
    sync.idc.add_member(&payments, &bob);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = sync.handle_with_ledger(event.clone(), Some(&archive)).await.unwrap();
    assert_eq!(
        (second["added"].clone(), second["removed"].clone()),
        (1.into(), 0.into()),
        "{second}"
    );
    let diff_key = second["objects"][2].as_str().unwrap();
    let diff: serde_json::Value =
        serde_json::from_slice(&archive.get(diff_key).await.unwrap().unwrap()).unwrap();
    assert!(
        diff["added"][0]
            .as_str()
            .unwrap()
            .starts_with("bob@acme.example via group aws-team-payments"),
        "{diff}"
    );
    // Without a bucket the job is refused, not mistaken for a reconcile.
    assert!(sync.handle_with_ledger(event, None).await.is_err());
}
