//! Alerts into AWS Security Hub (ASFF) through the real SDK client against the local AWS
//! stand-in: one finding per alert id, updated rather than duplicated when the alert is raised
//! again graver.

use idc_guard::adapters::{SecurityHubSink, SqliteStateStore};
use idc_guard::alert::{Alert, Alerts, Severity};
use local_aws::*;

fn alert(severity: Severity) -> Alert {
    Alert::new(
        "root-signin-failed",
        "burst-1",
        "2026-11-21T02:14:09Z".parse().unwrap(),
        severity,
        "Failed root console sign-in to account 123456789012",
        Some("root".into()),
        "A root console sign-in failed from 203.0.113.45 (3 failure(s) from 1 network(s) in the last hour).",
        serde_json::json!({"source_ip": "203.0.113.45"}),
        vec!["e1".into()],
        "Confirm with the account owner.",
    )
}

#[tokio::test]
async fn an_alert_is_one_security_hub_finding_updated_not_duplicated() {
    let (sdk, account) = isolated_account().await;
    let hub = aws_sdk_securityhub::Client::new(&sdk);
    let _ = hub.enable_security_hub().send().await;
    let sink = SecurityHubSink::new(&sdk, &account, "us-east-1");
    let store = SqliteStateStore::in_memory().unwrap();
    let alerts = Alerts::new(&sink, &store);
    let medium = alert(Severity::Medium);
    assert!(alerts.raise(&medium).await.unwrap());
    assert!(!alerts.raise(&medium).await.unwrap(), "the same alert: imported once");
    assert!(alerts.raise(&alert(Severity::High)).await.unwrap(), "graver: an update");

    let found = hub.get_findings().send().await.unwrap();
    let ours: Vec<_> =
        found.findings().iter().filter(|f| f.id() == Some(medium.id.as_str())).collect();
    assert_eq!(ours.len(), 1, "one finding per alert id: {:?}", found.findings());
    let f = ours[0];
    assert_eq!(f.generator_id(), Some("idc-guard/root-signin-failed"));
    assert_eq!(f.aws_account_id(), Some(account.as_str()));
    assert_eq!(
        f.product_arn(),
        Some(format!("arn:aws:securityhub:us-east-1:{account}:product/{account}/default").as_str())
    );
    assert_eq!(f.severity().and_then(|s| s.label()).map(|l| l.as_str()), Some("HIGH"));

    // The condition cleared: the finding is archived, still one.
    assert!(alerts.resolve(&medium.id).await.unwrap());
    let found = hub.get_findings().send().await.unwrap();
    let ours: Vec<_> =
        found.findings().iter().filter(|f| f.id() == Some(medium.id.as_str())).collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].record_state().map(|r| r.as_str()), Some("ARCHIVED"));
}
