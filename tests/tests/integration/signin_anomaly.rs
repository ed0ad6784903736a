//! signin-anomaly end to end against the local AWS stand-in: CloudTrail log objects from moto S3
//! (gzip), EventBridge CloudTrail events, baselines in DynamoDB, alerts on SNS, user ids
//! resolved through identitystore — all through the real SDK adapters the function uses.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;

use idc_guard::adapters::DynamoStateStore;
use idc_guard::adapters::SnsAlertSink;
use idc_guard::adapters::{CloudTrailLookup, IdentityStoreDirectory, S3LogObjects, s3_client};
use idc_guard::geo::Geo;
use idc_guard::signin::function::SigninAnomalyHandler;
use idc_guard::signin::lookup::SweepSettings;
use idc_guard::signin::settings::SigninSettings;
use idc_guard::store::StateStore;
use local_aws::*;
use serde_json::{Value, json};

type Function = SigninAnomalyHandler<
    CloudTrailLookup,
    S3LogObjects,
    DynamoStateStore,
    IdentityStoreDirectory,
    SnsAlertSink,
>;

struct World {
    sdk: aws_config::SdkConfig,
    function: Function,
    alert_queue: String,
    table: String,
}

async fn world() -> World {
    let (sdk, _account) = isolated_account().await;
    let table = create_state_table(&sdk).await;
    let (topic, alert_queue) = alert_topic(&sdk).await;
    let function = SigninAnomalyHandler {
        lookup: CloudTrailLookup::new(aws_sdk_cloudtrail::Client::new(&sdk)),
        objects: S3LogObjects::new(s3_client(&sdk)),
        store: DynamoStateStore::new(&sdk, table.clone()),
        directory: IdentityStoreDirectory::new(aws_sdk_identitystore::Client::new(&sdk)),
        sink: SnsAlertSink::new(&sdk, topic),
        settings: Arc::new(SigninSettings::default()),
        privileged: BTreeSet::from(["AdministratorAccess".to_owned()]),
        geo: Arc::new(Geo::default()),
        sweep: SweepSettings::default(),
    };
    World { sdk, function, alert_queue, table }
}

fn record(fixture: &str, id: &str, ip: &str, time: &str) -> Value {
    let mut v: Value = serde_json::from_str(&event_file(fixture)).unwrap();
    v["eventID"] = json!(id);
    v["sourceIPAddress"] = json!(ip);
    v["eventTime"] = json!(time);
    v
}

fn gzip(v: &Value) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(v.to_string().as_bytes()).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn s3_log_objects_are_read_and_findings_alerted_once() {
    let w = world().await;
    let idc = Idc::open(&w.sdk).await;
    // A portal call in the 2025 shape carries only the user id: identitystore names the user.
    let user_id = idc
        .ids
        .create_user()
        .identity_store_id(&idc.store_id)
        .user_name("carol@acme.example")
        .display_name("Carol")
        .name(
            aws_sdk_identitystore::types::Name::builder()
                .given_name("Carol")
                .family_name("Example")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .user_id;
    let mut signin =
        record("cloudtrail/idc-signin-2025-shape.json", "e1", "5.44.46.10", "2026-11-24T10:00:00Z");
    signin["additionalEventData"]["UserName"] = json!("carol@acme.example");
    signin["userIdentity"]["onBehalfOf"]["userId"] = json!("some-other-id");
    let mut portal =
        record("cloudtrail/sso-get-role-credentials.json", "e2", "1.0.0.1", "2026-11-24T10:20:00Z");
    portal["userIdentity"] = json!({
        "type": "IdentityCenterUser",
        "accountId": "123456789012",
        "onBehalfOf": {"userId": user_id, "identityStoreArn": format!("arn:aws:identitystore::123456789012:identitystore/{}", idc.store_id)},
        "credentialId": "portal-session-1"
    });
    let log = json!({"Records": [signin, portal, {"eventName": "broken"}]});

    let mut notification: Value =
        serde_json::from_str(&event_file("s3/cloudtrail-object-created.json")).unwrap();
    let bucket = unique("trail").to_lowercase();
    let s3 = s3_client(&w.sdk);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    for r in notification["Records"].as_array_mut().unwrap() {
        r["s3"]["bucket"]["name"] = json!(bucket);
        let key = r["s3"]["object"]["key"].as_str().unwrap().to_owned();
        s3.put_object().bucket(&bucket).key(&key).body(gzip(&log).into()).send().await.unwrap();
    }

    let summary = w.function.handle(notification.clone()).await.unwrap();
    assert_eq!(summary["records"], 3, "the digest object is not read: {summary}");
    assert_eq!(summary["skipped"], 1, "the malformed record is counted: {summary}");
    let alerts = alerts(&w.sdk, &w.alert_queue).await;
    let travel: Vec<&Value> =
        alerts.iter().filter(|a| a["detector"] == "impossible-travel").collect();
    assert_eq!(travel.len(), 1, "{alerts:#?}");
    assert_eq!(travel[0]["user"], "carol@acme.example", "resolved through identitystore");

    // The baseline is in DynamoDB.
    let baseline =
        w.function.store.get("signin-user#carol@acme.example", "baseline").await.unwrap().unwrap();
    let stays = baseline.data["travel"]["stays"].as_array().unwrap();
    assert_eq!(stays.last().unwrap()["last"]["event_id"], "e2");
    assert!(baseline.data["countries"].get("AU").is_some());
    assert!(!w.table.is_empty());

    // The same notification again (S3 delivers at least once): nothing new.
    let again = w.function.handle(notification).await.unwrap();
    assert_eq!(again["alerts"], 0, "{again}");
    assert!(alerts_after(&w).await.is_empty());

    // The EventBridge route for a new log object (a root console sign-in).
    let mut created: Value =
        serde_json::from_str(&event_file("eventbridge/s3-object-created-cloudtrail.json")).unwrap();
    created["detail"]["bucket"]["name"] = json!(bucket);
    created["detail"]["object"]["key"] =
        json!("AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/24/root.json.gz");
    let root =
        record("cloudtrail/console-login-root.json", "r1", "5.83.131.10", "2026-11-24T11:00:00Z");
    s3.put_object()
        .bucket(&bucket)
        .key("AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/24/root.json.gz")
        .body(gzip(&json!({"Records": [root]})).into())
        .send()
        .await
        .unwrap();
    let summary = w.function.handle(created).await.unwrap();
    assert_eq!(summary["alerts"], 1, "{summary}");
    assert_eq!(alerts_after(&w).await[0]["detector"], "root-signin");
}

async fn alerts_after(w: &World) -> Vec<Value> {
    alerts(&w.sdk, &w.alert_queue).await
}

#[tokio::test]
async fn eventbridge_console_sign_in_of_root_raises_root_signin() {
    let w = world().await;
    let event: Value =
        serde_json::from_str(&event_file("eventbridge/cloudtrail-console-signin.json")).unwrap();
    let summary = w.function.handle(event).await.unwrap();
    assert_eq!(summary["alerts"], 1, "{summary}");
    let alerts = alerts_after(&w).await;
    assert_eq!(alerts[0]["detector"], "root-signin");
    assert_eq!(alerts[0]["severity"], "high", "root with MFA");

    let err = w
        .function
        .handle(json!({"detail-type": "Something Else", "detail": {}}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Something Else"), "{err}");
}

#[tokio::test]
async fn baselines_are_written_in_batches_and_read_back() {
    use idc_guard::store::Item;
    let (sdk, _) = isolated_account().await;
    let table = create_state_table(&sdk).await;
    let store = DynamoStateStore::new(&sdk, table);
    let items: Vec<Item> = (0..60)
        .map(|i| Item::new(format!("signin-user#u{i:02}"), "baseline", json!({"n": i})))
        .collect();
    store.put_many(items).await.unwrap();
    for i in [0, 24, 25, 59] {
        let got = store.get(&format!("signin-user#u{i:02}"), "baseline").await.unwrap().unwrap();
        assert_eq!(got.data["n"], i, "item {i} of a 60-item put_many (three batches)");
    }
}
