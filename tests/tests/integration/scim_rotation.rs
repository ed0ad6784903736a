//! SCIM token and event-hook secret rotation against the local AWS stand-in's Secrets Manager,
//! DynamoDB and SNS, with Okta and the IAM Identity Center SCIM endpoint as HTTP mocks.
//! (moto cannot invoke a rotation Lambda, so the tests call the handler with each step's event.)

use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use idc_guard::adapters::DynamoStateStore;
use idc_guard::adapters::HttpScimProbe;
use idc_guard::adapters::SecretsManagerStore;
use idc_guard::adapters::SnsAlertSink;
use idc_guard::adapters::okta::OktaClient;
use idc_guard::records::{self, Record};
use idc_guard::scim::ScimRotationHandler;
use idc_guard::scim::rotation::{RotationError, RotationEvent, Rotator, StepOutcome};
use idc_guard::secret::SecretString;
use idc_guard::store::{Item, StateStore};
use local_aws::*;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const OLD_TOKEN: &str = "old-scim-token-Zx81kPq3vN5";
const NEW_TOKEN: &str = "new-scim-token-Hb27mWt9cR4";
const OKTA_API_TOKEN: &str = "00okta-api-token-Lm3Nb7Qx1";
const APP: &str = "0oa6awsIDC1cN5d7s8t4";
const HOOK: &str = "whk1a2b3c4d5E6F7g8h9";

struct Env {
    sdk: aws_config::SdkConfig,
    secrets: SecretsManagerStore,
    store: DynamoStateStore,
    sink: SnsAlertSink,
    alert_queue: String,
    okta: MockServer,
    scim: MockServer,
    probe: HttpScimProbe,
    okta_client: OktaClient,
}

impl Env {
    async fn new() -> Env {
        let sdk = local_aws().await;
        let table = create_state_table(&sdk).await;
        let (topic, alert_queue) = alert_topic(&sdk).await;
        let okta = MockServer::start().await;
        let scim = MockServer::start().await;
        let okta_client =
            OktaClient::new(&okta.uri(), &SecretString::from(OKTA_API_TOKEN.to_owned()))
                .unwrap()
                .with_rate_limit_policy(3, std::time::Duration::from_secs(2));
        Env {
            secrets: SecretsManagerStore::new(&sdk),
            store: DynamoStateStore::new(&sdk, &table),
            sink: SnsAlertSink::new(&sdk, &topic),
            alert_queue,
            okta,
            scim,
            probe: HttpScimProbe::default(),
            okta_client,
            sdk,
        }
    }

    fn endpoint(&self) -> String {
        format!("{}/a1b2c3d4-tenant/scim/v2", self.scim.uri())
    }

    fn scim_json(&self, token: &str, issued_days_ago: i64) -> String {
        let issued = Utc::now() - Duration::days(issued_days_ago);
        json!({"token": token, "scim_endpoint": self.endpoint(), "issued_at": issued, "expires_at": issued + Duration::days(365)})
            .to_string()
    }

    fn rotator(
        &self,
    ) -> Rotator<'_, SecretsManagerStore, OktaClient, HttpScimProbe, SnsAlertSink, DynamoStateStore>
    {
        Rotator {
            secrets: &self.secrets,
            okta: &self.okta_client,
            probe: &self.probe,
            sink: &self.sink,
            store: &self.store,
            event_hook_id: Some(HOOK),
            okta_app_id: Some(APP),
        }
    }

    /// A secret of `kind` with rotation enabled, `current` as AWSCURRENT and `pending` staged as
    /// AWSPENDING under a new version id (as `idc-guard scim-token stage` or createSecret leave it).
    async fn secret(&self, kind: &str, current: &str, pending: &str) -> (String, String) {
        let sm = aws_sdk_secretsmanager::Client::new(&self.sdk);
        let arn = sm
            .create_secret()
            .name(unique("idc-guard/test/rotated"))
            .secret_string("placeholder")
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key("idc-guard:kind")
                    .value(kind)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .arn
            .unwrap();
        // Enabling rotation on the stand-in also runs a lambda-less "rotation": put the real
        // current value back on top.
        sm.rotate_secret()
            .secret_id(&arn)
            .rotation_rules(
                aws_sdk_secretsmanager::types::RotationRulesType::builder()
                    .automatically_after_days(90)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        sm.put_secret_value()
            .secret_id(&arn)
            .secret_string(current)
            .version_stages("AWSCURRENT")
            .send()
            .await
            .unwrap();
        let token = stage_pending(&self.sdk, &arn, pending).await;
        (arn, token)
    }

    async fn current(&self, arn: &str) -> String {
        let sm = aws_sdk_secretsmanager::Client::new(&self.sdk);
        sm.get_secret_value()
            .secret_id(arn)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap()
            .secret_string
            .unwrap()
    }

    async fn alerts(&self) -> Vec<Value> {
        alerts(&self.sdk, &self.alert_queue).await
    }
}

fn step(arn: &str, token: &str, name: &str) -> RotationEvent {
    let file = match name {
        "create" => "secretsmanager/rotation-create-secret.json",
        "set" => "secretsmanager/rotation-set-secret.json",
        "test" => "secretsmanager/rotation-test-secret.json",
        "finish" => "secretsmanager/rotation-finish-secret.json",
        other => panic!("no rotation step {other}"),
    };
    let mut e: RotationEvent = serde_json::from_str(&event_file(file)).unwrap();
    e.secret_id = arn.to_owned();
    e.token = token.to_owned();
    e
}

async fn mock_scim(server: &MockServer, token: &str, status: u16) {
    Mock::given(method("GET"))
        .and(path("/a1b2c3d4-tenant/scim/v2/ServiceProviderConfig"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(status).set_body_json(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]}),
        ))
        .mount(server)
        .await;
}

/// Captures every log line written while the guard lives (this test's thread only).
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct W(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for W {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(Mutex::new(Vec::new()));
    let w = W(buf.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || w.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

#[tokio::test(flavor = "current_thread")]
async fn a_staged_scim_token_rotates_through_all_four_steps_each_safe_to_repeat() {
    let (logs, _guard) = capture_logs();
    let env = Env::new().await;
    let (arn, token) =
        env.secret("scim-token", &env.scim_json(OLD_TOKEN, 85), &env.scim_json(NEW_TOKEN, 0)).await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v1/apps/{APP}/connections/default")))
        .and(header("authorization", format!("SSWS {OKTA_API_TOKEN}").as_str()))
        .and(body_partial_json(json!({"profile": {"authScheme": "TOKEN", "token": NEW_TOKEN}})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"authScheme": "TOKEN", "status": "ENABLED"})),
        )
        .expect(2)
        .mount(&env.okta)
        .await;
    mock_scim(&env.scim, NEW_TOKEN, 200).await;
    let rotator = env.rotator();
    for name in ["create", "set", "test"] {
        for _ in 0..2 {
            rotator
                .rotate(&step(&arn, &token, name))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                env.current(&arn).await.contains(OLD_TOKEN),
                "AWSCURRENT unchanged before finishSecret"
            );
        }
    }
    assert_eq!(rotator.rotate(&step(&arn, &token, "finish")).await.unwrap(), StepOutcome::Done);
    assert!(env.current(&arn).await.contains(NEW_TOKEN));
    assert_eq!(
        rotator.rotate(&step(&arn, &token, "finish")).await.unwrap(),
        StepOutcome::AlreadyCurrent
    );
    assert_eq!(
        rotator.rotate(&step(&arn, &token, "set")).await.unwrap(),
        StepOutcome::AlreadyCurrent
    );
    let rotation = env.store.get("scim-token", "rotation").await.unwrap().unwrap();
    assert_eq!(rotation.data["version"], token.as_str());
    let alerts = env.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["detector"], "scim-token-needs-person");
    assert!(alerts[0]["title"].as_str().unwrap().contains("delete the old token"));
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("rotation step"), "logs were captured");
    for secret in [OLD_TOKEN, NEW_TOKEN, OKTA_API_TOKEN] {
        assert!(!logged.contains(secret), "a secret reached the log");
        assert!(!alerts[0].to_string().contains(secret), "a secret reached an alert");
    }
}

#[tokio::test]
async fn okta_refusing_the_token_waits_for_a_person_then_confirm_lets_it_finish() {
    let env = Env::new().await;
    let (arn, token) =
        env.secret("scim-token", &env.scim_json(OLD_TOKEN, 85), &env.scim_json(NEW_TOKEN, 0)).await;
    mock_scim(&env.scim, NEW_TOKEN, 200).await; // the staged token is valid: only Okta refuses
    Mock::given(method("POST"))
        .and(path(format!("/api/v1/apps/{APP}/connections/default")))
        .respond_with(ResponseTemplate::new(403).set_body_json(
            json!({"errorSummary": "You do not have permission to perform the requested action"}),
        ))
        .mount(&env.okta)
        .await;
    let rotator = env.rotator();
    for _ in 0..2 {
        let err = rotator.rotate(&step(&arn, &token, "set")).await.unwrap_err();
        assert!(matches!(err, RotationError::NeedsPerson(_)), "{err}");
        assert!(
            err.to_string().contains("Provisioning > Integration"),
            "exact console steps: {err}"
        );
    }
    assert!(env.current(&arn).await.contains(OLD_TOKEN));
    let alerts = env.alerts().await;
    assert_eq!(alerts.len(), 1, "one alert for the same wait: {alerts:?}");
    assert_eq!(alerts[0]["severity"], "high");

    env.store
        .put(
            records::ConfirmedByHand { version: token.clone(), at: Utc::now(), by: "test".into() }
                .to_item(),
        )
        .await
        .unwrap();
    assert_eq!(rotator.rotate(&step(&arn, &token, "set")).await.unwrap(), StepOutcome::AlreadyDone);
}

#[tokio::test]
async fn a_token_the_scim_endpoint_rejects_fails_testsecret_and_current_stays() {
    let env = Env::new().await;
    let (arn, token) =
        env.secret("scim-token", &env.scim_json(OLD_TOKEN, 85), &env.scim_json(NEW_TOKEN, 0)).await;
    mock_scim(&env.scim, NEW_TOKEN, 401).await;
    let err = env.rotator().rotate(&step(&arn, &token, "test")).await.unwrap_err();
    assert!(err.to_string().contains("rejected the pending token (401)"), "{err}");
    assert!(env.current(&arn).await.contains(OLD_TOKEN));
    let alerts = env.alerts().await;
    assert_eq!(alerts[0]["detector"], "secret-rotation-failed");
}

#[tokio::test]
async fn a_staged_token_the_scim_endpoint_rejects_never_reaches_okta() {
    // Defect: setSecret handed the staged token to Okta before anything had tested it.
    let env = Env::new().await;
    let (arn, token) =
        env.secret("scim-token", &env.scim_json(OLD_TOKEN, 85), &env.scim_json(NEW_TOKEN, 0)).await;
    mock_scim(&env.scim, NEW_TOKEN, 401).await;
    let err = env.rotator().rotate(&step(&arn, &token, "set")).await.unwrap_err();
    assert!(err.to_string().contains("rejected the pending token (401)"), "{err}");
    let okta_calls = env.okta.received_requests().await.unwrap_or_default();
    assert!(okta_calls.is_empty(), "Okta received {} request(s)", okta_calls.len());
    assert!(env.current(&arn).await.contains(OLD_TOKEN));
}

#[tokio::test]
async fn the_event_hook_secret_is_set_on_okta_verified_and_promoted() {
    let env = Env::new().await;
    let (arn, token) =
        env.secret("event-hook", "Bearer old-hook-value", "Bearer new-hook-value").await;
    let hook = json!({"id": HOOK, "name": "idc-guard", "status": "ACTIVE", "verificationStatus": "VERIFIED",
        "events": {"type": "EVENT_TYPE", "items": ["group.user_membership.add"]},
        "channel": {"type": "HTTP", "version": "1.0.0", "config": {"uri": "https://hook.example/", "headers": [],
            "authScheme": {"type": "HEADER", "key": "Authorization"}}}});
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/eventHooks/{HOOK}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(hook.clone()))
        .mount(&env.okta)
        .await;
    // Okta is busy once (429 with the reset time), then accepts.
    Mock::given(method("PUT"))
        .and(path(format!("/api/v1/eventHooks/{HOOK}")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-Rate-Limit-Reset", Utc::now().timestamp().to_string().as_str()),
        )
        .up_to_n_times(1)
        .mount(&env.okta)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("/api/v1/eventHooks/{HOOK}")))
        .and(body_partial_json(
            json!({"channel": {"config": {"authScheme": {"value": "Bearer new-hook-value"}}}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(hook.clone()))
        .mount(&env.okta)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v1/eventHooks/{HOOK}/lifecycle/verify")))
        .respond_with(ResponseTemplate::new(200).set_body_json(hook))
        .mount(&env.okta)
        .await;
    let rotator = env.rotator();
    for name in ["create", "set", "test"] {
        let outcome = rotator
            .rotate(&step(&arn, &token, name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if name == "create" {
            assert_eq!(outcome, StepOutcome::AlreadyDone, "the staged value is kept");
        }
        assert_eq!(env.current(&arn).await, "Bearer old-hook-value");
    }
    rotator.rotate(&step(&arn, &token, "finish")).await.unwrap();
    assert_eq!(env.current(&arn).await, "Bearer new-hook-value");
}

#[tokio::test]
async fn okta_failures_at_setsecret_leave_the_current_hook_secret() {
    let env = Env::new().await;
    let (arn, token) =
        env.secret("event-hook", "Bearer old-hook-value", "Bearer new-hook-value").await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/eventHooks/{HOOK}")))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"errorSummary": "Invalid token provided"})),
        )
        .up_to_n_times(1)
        .mount(&env.okta)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/eventHooks/{HOOK}")))
        .respond_with(ResponseTemplate::new(502))
        .mount(&env.okta)
        .await;
    let rotator = env.rotator();
    let e = rotator.rotate(&step(&arn, &token, "set")).await.unwrap_err();
    assert!(e.to_string().contains("(401): Invalid token provided"), "{e}");
    let e = rotator.rotate(&step(&arn, &token, "set")).await.unwrap_err();
    assert!(e.to_string().contains("502"), "{e}");
    assert_eq!(env.current(&arn).await, "Bearer old-hook-value");
    // A step for a version that is not pending fails; rotation not enabled fails.
    let e = rotator
        .rotate(&step(&arn, "00000000-0000-4000-8000-000000000000", "set"))
        .await
        .unwrap_err();
    assert!(matches!(e, RotationError::UnknownVersion(_)), "{e}");
}

#[tokio::test]
async fn reminders_fire_once_per_threshold_and_health_events_alert() {
    let env = Env::new().await;
    // Issued 80 days ago: rotation due in 10 days (14-day reminder); expires in 285 days.
    let (arn, _) =
        env.secret("scim-token", &env.scim_json(OLD_TOKEN, 80), &env.scim_json(NEW_TOKEN, 0)).await;
    mock_scim(&env.scim, OLD_TOKEN, 200).await;
    let function =
        ScimRotationHandler { rotator: env.rotator(), scim_secret_id: &arn, hook_secret_id: None };
    let schedule: Value =
        serde_json::from_str(&event_file("eventbridge/scheduled-scim-health.json")).unwrap();
    let first = function.handle(schedule.clone()).await.unwrap();
    assert_eq!(first["alerts_sent"], json!(["scim-token-rotation-due"]));
    let again = function.handle(schedule).await.unwrap();
    assert_eq!(again["alerts_sent"], json!([]), "the same threshold does not fire twice");

    let check = idc_guard::scim::health::HealthCheck {
        secrets: &env.secrets,
        probe: &env.probe,
        sink: &env.sink,
        store: &env.store,
        scim_secret_id: &arn,
    };
    let later = check.run(Utc::now() + Duration::days(4)).await.unwrap();
    assert_eq!(later.len(), 1);
    assert!(later[0].title.contains("due in 6 day(s)"), "{}", later[0].title);
    let overdue = check.run(Utc::now() + Duration::days(11)).await.unwrap();
    assert!(overdue[0].title.contains("overdue"));
    let near_expiry = check.run(Utc::now() + Duration::days(280)).await.unwrap();
    let detectors: Vec<_> = near_expiry.iter().map(|a| a.detector.as_str()).collect();
    assert!(detectors.contains(&"scim-token-expiring"), "{detectors:?}");

    let health: Value = serde_json::from_str(&event_file("health/scim-token-expiry.json")).unwrap();
    let sent = function.handle(health.clone()).await.unwrap();
    assert_eq!(sent["alerts_sent"], json!(["scim-token-expiring"]));
    assert_eq!(function.handle(health).await.unwrap()["alerts_sent"], json!([]));
    let published = env.alerts().await;
    assert!(published.iter().all(|a| !a.to_string().contains(OLD_TOKEN)));
}

/// The daily check run twice after Okta recorded a failed group push (`event_id`, `reason`),
/// with the SCIM endpoint answering the current token with `probe_status`.
async fn daily_check_after_a_push_failure(
    probe_status: u16,
    event_id: &str,
    reason: &str,
) -> (Vec<idc_guard::alert::Alert>, Vec<idc_guard::alert::Alert>) {
    let env = Env::new().await;
    let (arn, _) =
        env.secret("scim-token", &env.scim_json(OLD_TOKEN, 10), &env.scim_json(NEW_TOKEN, 0)).await;
    mock_scim(&env.scim, OLD_TOKEN, probe_status).await;
    env.store
        .put(Item::new(
            "scim-health",
            "last-group-push-failure",
            json!({"event_id": event_id, "group": "aws-team-payments", "reason": reason}),
        ))
        .await
        .unwrap();
    let check = idc_guard::scim::health::HealthCheck {
        secrets: &env.secrets,
        probe: &env.probe,
        sink: &env.sink,
        store: &env.store,
        scim_secret_id: &arn,
    };
    let first = check.run(Utc::now()).await.unwrap();
    (first, check.run(Utc::now()).await.unwrap())
}

fn detectors(sent: &[idc_guard::alert::Alert]) -> Vec<(&str, &str)> {
    sent.iter().map(|a| (a.detector.as_str(), a.severity.as_str())).collect()
}

#[tokio::test]
async fn an_invalid_current_token_explains_an_okta_push_failure_in_one_critical_alert() {
    let (sent, again) = daily_check_after_a_push_failure(401, "2f5a6e03", "401").await;
    assert_eq!(detectors(&sent), [("scim-token-invalid", "critical")]);
    assert_eq!(sent[0].event_ids, ["2f5a6e03"], "the push failure it explains");
    assert_eq!(sent[0].evidence["okta_push_failure"]["group"], "aws-team-payments");
    assert!(again.is_empty(), "once");
}

#[tokio::test]
async fn a_push_failure_with_a_working_token_is_a_provisioning_failure_not_a_token_one() {
    let (sent, _) = daily_check_after_a_push_failure(200, "7c1d", "Conflict: group exists").await;
    assert_eq!(detectors(&sent), [("scim-provisioning-failure", "high")]);
    assert!(sent[0].summary.contains("probe: valid"), "{}", sent[0].summary);
}
