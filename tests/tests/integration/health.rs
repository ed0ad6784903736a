//! Integration health end to end: Okta's Management API as a wiremock server built from the
//! fixtures in `events/okta-api/` (shapes from Okta's reference), the Identity Store, the state
//! table, the alert topic and the hook's FIFO queue on the local AWS stand-in.

use chrono::{DateTime, Utc};
use idc_guard::adapters::{
    DynamoStateStore, OktaClient, SdkIdentityCenter, SnsAlertSink, SqsQueue,
};
use idc_guard::health::settings::HealthSettings;
use idc_guard::health::{Check, Doctor, Status};
use idc_guard::records::{self, EVENT_CLAIM_PK, ManagedGroup, SystemLogCheckpoint};
use idc_guard::store::{Item, StateStore};
use local_aws::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const APP: &str = "0oa1b2c3d4e5AWSidc";
const PAYMENTS_OKTA: &str = "00g4teamPAY7xYz5d7q2";

fn fixture(path: &str) -> Value {
    serde_json::from_str(&event_file(path)).unwrap()
}

/// The Okta org's answers; a test changes one before mounting them.
struct OktaOrg {
    app: Value,
    keys: Value,
    org: Value,
    rules: Value,
    groups: Value,
    members: Value,
    mappings: Value,
    app_groups: Value,
    app_users: Value,
}

impl OktaOrg {
    /// A healthy org: the key is valid for years, every rule asks for two factors, the managed
    /// group's members are the Identity Store's, pushes and users are in sync.
    fn healthy() -> Self {
        Self {
            app: fixture("okta-api/app-aws-iam-identity-center.json"),
            keys: fixture("okta-api/app-credentials-keys.json"),
            org: fixture("okta-api/well-known-okta-organization.json"),
            rules: fixture("okta-api/access-policy-rules.json"),
            groups: fixture("okta-api/groups.json"),
            members: fixture("okta-api/group-members-aws-team-payments.json"),
            mappings: fixture("okta-api/group-push-mappings.json"),
            app_groups: fixture("okta-api/app-groups.json"),
            app_users: fixture("okta-api/app-users.json"),
        }
    }

    async fn serve(&self) -> MockServer {
        let server = MockServer::start().await;
        let ok = |body: &Value| ResponseTemplate::new(200).set_body_json(body.clone());
        let routes: Vec<(String, Value)> = vec![
            ("/api/v1/apps".into(), json!([self.app])),
            (format!("/api/v1/apps/{APP}"), self.app.clone()),
            (format!("/api/v1/apps/{APP}/credentials/keys"), self.keys.clone()),
            ("/.well-known/okta-organization".into(), self.org.clone()),
            ("/api/v1/policies/rst1aws0idcPolicy7d7/rules".into(), self.rules.clone()),
            ("/api/v1/groups".into(), self.groups.clone()),
            (format!("/api/v1/groups/{PAYMENTS_OKTA}/users"), self.members.clone()),
            (format!("/api/v1/groups/{PAYMENTS_OKTA}"), self.groups[0].clone()),
            (format!("/api/v1/apps/{APP}/group-push/mappings"), self.mappings.clone()),
            (format!("/api/v1/apps/{APP}/groups"), self.app_groups.clone()),
            (format!("/api/v1/apps/{APP}/users"), self.app_users.clone()),
        ];
        for (p, body) in routes {
            Mock::given(method("GET")).and(path(p)).respond_with(ok(&body)).mount(&server).await;
        }
        server
    }
}

/// The AWS side: the managed group with Alice and Bob in the Identity Store, the state table
/// remembering it, the alert topic, the hook's queue.
struct Aws {
    sdk: aws_config::SdkConfig,
    idc: Idc,
    table: String,
    topic: String,
    alert_queue: String,
    queue: String,
    payments: String,
}

impl Aws {
    async fn new() -> Self {
        let (sdk, _) = isolated_account().await;
        let idc = Idc::open(&sdk).await;
        let payments = idc.group("aws-team-payments").await;
        for name in ["alice@acme.example", "bob@acme.example"] {
            let user = idc.user(name).await;
            idc.add_member(&payments, &user).await;
        }
        let table = create_state_table(&sdk).await;
        let store = DynamoStateStore::new(&sdk, &table);
        let group =
            ManagedGroup { group_id: payments.clone(), display_name: "aws-team-payments".into() };
        records::save(&store, &group).await.unwrap();
        let (topic, alert_queue) = alert_topic(&sdk).await;
        let queue = create_fifo_queue(&sdk).await;
        Self { sdk, idc, table, topic, alert_queue, queue, payments }
    }

    /// Runs the posture checks (or the catch-up) over these stand-ins and Okta at `okta`, then
    /// their alerts, as the function does; returns the checks and the detectors alerted now.
    async fn doctor(
        &self,
        okta: &MockServer,
        settings: &HealthSettings,
        now: DateTime<Utc>,
        catch_up: bool,
    ) -> (Vec<Check>, Vec<String>) {
        let client = OktaClient::new(&okta.uri(), &"okta-api-token".to_owned().into()).unwrap();
        let idc = SdkIdentityCenter::new(&self.sdk);
        let store = DynamoStateStore::new(&self.sdk, &self.table);
        let sink = SnsAlertSink::new(&self.sdk, &self.topic);
        let queue = SqsQueue::new(&self.sdk, &self.queue);
        let doctor = Doctor {
            okta: &client,
            idc: &idc,
            store: &store,
            sink: &sink,
            queue: Some(&queue),
            settings,
            instance_arn: None,
            report_only: false,
        };
        let checks =
            if catch_up { vec![doctor.catch_up(now).await] } else { doctor.posture(now).await };
        let sent = doctor.alert(&checks, now).await.unwrap();
        let sent = sent.into_iter().map(|a| a.detector).collect();
        (checks, sent)
    }
}

fn settings() -> HealthSettings {
    let app = fixture("okta-api/app-aws-iam-identity-center.json");
    HealthSettings {
        acs_url: app["settings"]["app"]["acsURL"].as_str().map(str::to_owned),
        issuer: app["settings"]["app"]["entityID"].as_str().map(str::to_owned),
        ..HealthSettings::default()
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-28T06:00:00Z".parse().unwrap()
}

fn by_id<'a>(checks: &'a [Check], id: &str) -> &'a Check {
    checks.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no check {id}"))
}

#[tokio::test]
async fn a_healthy_integration_passes_every_check_and_alerts_nothing() {
    let aws = Aws::new().await;
    let okta = OktaOrg::healthy().serve().await;
    let (checks, sent) = aws.doctor(&okta, &settings(), now(), false).await;
    for c in &checks {
        assert_eq!(c.status, Status::Pass, "{c:?}");
    }
    assert_eq!(checks.len(), 3);
    assert!(sent.is_empty(), "{sent:?}");
    let sync = by_id(&checks, "scim-sync");
    assert!(
        sync.evidence.iter().any(|e| e.contains("aws-team-payments: 2 in Okta, 2 in IdC")),
        "{sync:?}"
    );
    assert!(alerts(&aws.sdk, &aws.alert_queue).await.is_empty());
}

#[tokio::test]
async fn an_expiring_signing_key_warns_then_fails_and_alerts_once_per_threshold() {
    let aws = Aws::new().await;
    let mut org = OktaOrg::healthy();
    org.keys[0]["expiresAt"] = json!("2026-12-08T06:00:00.000Z"); // 10 days after now()
    let okta = org.serve().await;
    let (checks, sent) = aws.doctor(&okta, &settings(), now(), false).await;
    let saml = by_id(&checks, "saml-trust");
    assert_eq!(saml.status, Status::Fail, "{saml:?}");
    assert!(saml.summary.contains("expires in 10 days"), "{}", saml.summary);
    assert!(saml.fix.as_deref().unwrap().contains("Generate new certificate"));
    assert_eq!(sent, ["saml-cert-expiring"]);
    // The next day: the same threshold (30), no repeat.
    let (_, sent) = aws.doctor(&okta, &settings(), now() + chrono::Duration::days(1), false).await;
    assert!(sent.is_empty(), "{sent:?}");
    // Four days later it crosses 7 days: alerted again.
    let (_, sent) = aws.doctor(&okta, &settings(), now() + chrono::Duration::days(4), false).await;
    assert_eq!(sent, ["saml-cert-expiring"]);
    let delivered = alerts(&aws.sdk, &aws.alert_queue).await;
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[0]["severity"], "high");
}

#[tokio::test]
async fn a_newer_key_is_reported_ready_to_activate() {
    let aws = Aws::new().await;
    let mut org = OktaOrg::healthy();
    let mut newer = org.keys[0].clone();
    newer["kid"] = json!("akHZ0NEWkeyReady5d7");
    newer["expiresAt"] = json!("2036-11-01T00:00:00.000Z");
    org.keys.as_array_mut().unwrap().push(newer);
    let okta = org.serve().await;
    let (checks, _) = aws.doctor(&okta, &settings(), now(), false).await;
    let saml = by_id(&checks, "saml-trust");
    assert_eq!(saml.status, Status::Pass);
    assert!(saml.evidence.iter().any(|e| e.contains("akHZ0NEWkeyReady5d7 is ready to activate")));
}

#[tokio::test]
async fn an_acs_url_that_differs_by_a_trailing_slash_fails_the_saml_check() {
    let aws = Aws::new().await;
    let mut org = OktaOrg::healthy();
    let acs = org.app["settings"]["app"]["acsURL"].as_str().unwrap().to_owned();
    org.app["settings"]["app"]["acsURL"] = json!(format!("{acs}/"));
    let okta = org.serve().await;
    let (checks, sent) = aws.doctor(&okta, &settings(), now(), false).await;
    let saml = by_id(&checks, "saml-trust");
    assert_eq!(saml.status, Status::Fail);
    assert!(saml.summary.contains("trailing slash"), "{}", saml.summary);
    assert!(saml.fix.as_deref().unwrap().contains("ACS URL"));
    assert_eq!(sent, ["saml-settings-mismatch"]);
}

#[tokio::test]
async fn a_rule_that_allows_one_factor_fails_the_mfa_check_by_name() {
    let aws = Aws::new().await;
    let mut org = OktaOrg::healthy();
    org.rules[1]["actions"]["appSignOn"] = json!({"access": "ALLOW", "verificationMethod": {"factorMode": "1FA", "type": "ASSURANCE"}});
    let okta = org.serve().await;
    let (checks, sent) = aws.doctor(&okta, &settings(), now(), false).await;
    let mfa = by_id(&checks, "mfa-posture");
    assert_eq!(mfa.status, Status::Fail);
    assert!(mfa.summary.contains("Catch-all Rule (catch-all)"), "{}", mfa.summary);
    assert!(!mfa.summary.contains("two factors"), "the 2FA rule is not named");
    assert!(mfa.fix.as_deref().unwrap().contains("Authentication Policies"));
    assert_eq!(sent, ["mfa-not-required"]);
}

#[tokio::test]
async fn on_the_classic_engine_the_global_sign_on_policy_is_checked_and_said_so() {
    let aws = Aws::new().await;
    let mut org = OktaOrg::healthy();
    org.org["pipeline"] = json!("v1");
    let okta = org.serve().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/policies"))
        .and(query_param("type", "OKTA_SIGN_ON"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "00p1globalSignOn5d7", "status": "ACTIVE", "name": "Default Policy", "type": "OKTA_SIGN_ON", "system": true}
        ])))
        .mount(&okta)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/policies/00p1globalSignOn5d7/rules"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "0pr1default5d7", "status": "ACTIVE", "name": "Default Rule", "system": true, "type": "SIGN_ON",
             "actions": {"signon": {"access": "ALLOW", "requireFactor": false}}}
        ])))
        .mount(&okta)
        .await;
    let (checks, _) = aws.doctor(&okta, &settings(), now(), false).await;
    let mfa = by_id(&checks, "mfa-posture");
    assert_eq!(mfa.status, Status::Fail);
    assert!(mfa.summary.contains("Default Policy / Default Rule (catch-all)"), "{}", mfa.summary);
    assert!(mfa.evidence[0].contains("per-app sign-on policies have no public API"));
}

#[tokio::test]
async fn scim_drift_names_missing_users_push_errors_and_sync_failures() {
    let aws = Aws::new().await;
    // In IdC but not in Okta's group: someone added by hand (or a stale push).
    let mallory = aws.idc.user("mallory@acme.example").await;
    aws.idc.add_member(&aws.payments, &mallory).await;
    let mut org = OktaOrg::healthy();
    // In Okta's group but never provisioned.
    org.members.as_array_mut().unwrap().push(json!({"id": "00u5daveXYZ5d7", "status": "ACTIVE",
        "profile": {"login": "dave@acme.example", "email": "dave@acme.example"}}));
    org.mappings[0]["status"] = json!("ERROR");
    org.mappings[0]["errorSummary"] = json!(
        "Failed on 11-20-2026 04:41:00PM UTC: Unable to update Group Push mapping target App group aws-team-payments: Error while creating user group: 401 Unauthorized"
    );
    org.app_users[1]["syncState"] = json!("ERROR");
    org.app_groups
        .as_array_mut()
        .unwrap()
        .push(json!({"id": PAYMENTS_OKTA, "priority": 1, "profile": {}}));
    let okta = org.serve().await;
    let (checks, sent) = aws.doctor(&okta, &settings(), now(), false).await;
    let sync = by_id(&checks, "scim-sync");
    assert_eq!(sync.status, Status::Fail);
    for expected in [
        "1 Okta member(s) missing in IdC: dave@acme.example",
        "1 IdC member(s) not in the Okta group: mallory@acme.example",
        "401 Unauthorized",
        "1 user(s) failed to sync: bob@acme.example",
        "1 group(s) both assigned to the app and pushed: aws-team-payments",
        "1 group push(es) in ERROR: aws-team-payments (",
        "Okta did not provision: mallory@acme.example",
    ] {
        assert!(sync.summary.contains(expected), "{expected:?} not in {}", sync.summary);
    }
    assert_eq!(sent, ["scim-sync-drift"]);
    // The same drift the next day: no repeat.
    let (_, sent) = aws.doctor(&okta, &settings(), now() + chrono::Duration::days(1), false).await;
    assert!(sent.is_empty());
}

#[tokio::test]
async fn an_app_username_other_than_the_okta_login_is_not_drift() {
    // Defect (held-out org): the Okta login (an AD UPN) was compared with the Identity Store
    // user name, which SCIM sets from the AWS app's username (the e-mail): every member was
    // reported missing in IdC and extra in IdC at once, a false scim-sync-drift.
    let aws = Aws::new().await;
    let mut org = OktaOrg::healthy();
    for member in org.members.as_array_mut().unwrap() {
        let login = member["profile"]["login"]
            .as_str()
            .unwrap()
            .replace("@acme.example", "@corp.acme.local");
        member["profile"]["login"] = json!(login);
    }
    let okta = org.serve().await;
    let (checks, sent) = aws.doctor(&okta, &settings(), now(), false).await;
    let sync = by_id(&checks, "scim-sync");
    assert_eq!(sync.status, Status::Pass, "{sync:?}");
    assert!(!sent.contains(&"scim-sync-drift".to_owned()), "{sent:?}");

    // A real difference under the app username is still found.
    let mut org = OktaOrg::healthy();
    org.app_users[1]["credentials"]["userName"] = json!("robert@acme.example");
    let okta = org.serve().await;
    let (checks, _) = aws.doctor(&okta, &settings(), now(), false).await;
    let sync = by_id(&checks, "scim-sync");
    assert_eq!(sync.status, Status::Fail);
    assert!(sync.summary.contains("missing in IdC: robert@acme.example"), "{}", sync.summary);
    assert!(sync.summary.contains("not in the Okta group: bob@acme.example"), "{}", sync.summary);
}

#[tokio::test]
async fn the_catch_up_queues_an_event_the_hook_never_received_and_alerts_provisioning_failures() {
    let aws = Aws::new().await;
    let okta = OktaOrg::healthy().serve().await;
    let page: Value = fixture("okta-api/system-log-catch-up.json");
    let delivered = page[0]["uuid"].as_str().unwrap().to_owned();
    let missed = page[1]["uuid"].as_str().unwrap().to_owned();
    // access-sync processed the first event (the hook delivered it).
    let store = DynamoStateStore::new(&aws.sdk, &aws.table);
    store.put(Item::new(EVENT_CLAIM_PK, &delivered, json!({"status": "done"}))).await.unwrap();
    let next =
        format!("{}/api/v1/logs?after=1764321247220_1&limit=1000&sortOrder=ASCENDING", okta.uri());
    // Okta's rate limit first, then the page (polling mode: a next link).
    Mock::given(method("GET"))
        .and(path("/api/v1/logs"))
        .and(query_param("sortOrder", "ASCENDING"))
        .and(query_param("since", "2026-11-28T05:00:00.000Z"))
        .respond_with(ResponseTemplate::new(429).insert_header("X-Rate-Limit-Reset", "0"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&okta)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/logs"))
        .and(query_param("since", "2026-11-28T05:00:00.000Z"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page.clone())
                .insert_header("link", format!("<{next}>; rel=\"next\"").as_str()),
        )
        .expect(1)
        .mount(&okta)
        .await;
    // The cursor's page: empty, and still a next link.
    Mock::given(method("GET"))
        .and(path("/api/v1/logs"))
        .and(query_param("after", "1764321247220_1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([]))
                .insert_header("link", format!("<{next}>; rel=\"next\"").as_str()),
        )
        .expect(1)
        .mount(&okta)
        .await;

    let s = HealthSettings { okta_aws_app_id: Some(APP.into()), ..settings() };
    let (checks, _) = aws.doctor(&okta, &s, now(), true).await;
    let check = &checks[0];
    assert_eq!(check.status, Status::Warn, "{check:?}");
    assert!(check.summary.contains(&missed), "{}", check.summary);
    assert!(check.evidence.iter().any(|e| e.contains("1 provisioning failure(s) alerted")));
    let queued = drain(&aws.sdk, &aws.queue).await;
    assert_eq!(queued.len(), 1, "only the missed event");
    assert_eq!(queued[0].deduplication_id, missed, "the hook's deduplication id");
    let delivered_alerts = alerts(&aws.sdk, &aws.alert_queue).await;
    assert_eq!(delivered_alerts.len(), 1);
    assert_eq!(delivered_alerts[0]["detector"], "scim-provisioning-failure");
    assert!(delivered_alerts[0]["summary"].as_str().unwrap().contains("Bearer token is expired"));
    let cursor: SystemLogCheckpoint =
        records::load(&store, &SystemLogCheckpoint::key()).await.unwrap().unwrap();
    assert_eq!(cursor.next, next);

    // The next run continues from the cursor: nothing new, nothing queued or alerted again.
    let (checks, _) = aws.doctor(&okta, &s, now() + chrono::Duration::minutes(5), true).await;
    assert_eq!(checks[0].status, Status::Pass, "{:?}", checks[0]);
    assert!(drain(&aws.sdk, &aws.queue).await.is_empty());
    assert!(alerts(&aws.sdk, &aws.alert_queue).await.is_empty());
}
