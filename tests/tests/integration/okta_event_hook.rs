//! The Okta event-hook endpoint end to end in-process: the Lambda adapter, real Secrets Manager
//! and SQS FIFO through the AWS SDK, against the local AWS stand-in.

use std::time::Duration;

use http::StatusCode;
use idc_guard::adapters::{SecretsManagerStore, SqsQueue};
use idc_guard::okta::hook::{EventHookHandler, HookAuthenticator};
use lambda_http::{Body, Request};
use local_aws::*;

type Hook = EventHookHandler<SecretsManagerStore, SqsQueue>;

const TEAM_GROUP: &str = "00g4teamPAY7xYz5d7q2";
const BOB: &str = "00u3b0bMNO8pQrS5d7x1";

const DELIVERIES: &[&str] = &[
    "okta/group-user-membership-add.json",
    "okta/group-user-membership-remove.json",
    "okta/group-lifecycle-create.json",
    "okta/group-profile-update.json",
    "okta/user-lifecycle-deactivate.json",
    "okta/user-mfa-factor-reset-all.json",
    "okta/policy-rule-update.json",
    "okta/user-authentication-sso-success.json",
    "okta/user-authentication-sso-failure.json",
    "okta/application-provision-group-push-failed.json",
    "okta/delivery-three-events.json",
    "okta/sparse-event.json",
];

struct Setup {
    sdk: aws_config::SdkConfig,
    secret_arn: String,
    queue_url: String,
    hook: Hook,
}

fn generated_secret() -> String {
    format!("Bearer {}", uuid::Uuid::new_v4().simple())
}

async fn setup_with(secret_value: &str, timing: Option<(Duration, Duration)>) -> Setup {
    let sdk = local_aws().await;
    let secret_arn = create_secret(&sdk, secret_value).await;
    let queue_url = create_fifo_queue(&sdk).await;
    let mut auth = HookAuthenticator::new(SecretsManagerStore::new(&sdk), &secret_arn);
    if let Some((ttl, check)) = timing {
        auth = auth.with_timing(ttl, check);
    }
    let hook = EventHookHandler::new(auth, SqsQueue::new(&sdk, &queue_url));
    Setup { sdk, secret_arn, queue_url, hook }
}

fn request(
    method: &str,
    authorization: Option<&str>,
    extra: &[(&str, &str)],
    body: &str,
) -> Request {
    let mut b = http::Request::builder().method(method).uri("https://hook.example/");
    if let Some(a) = authorization {
        b = b.header("authorization", a);
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let body = if body.is_empty() { Body::Empty } else { Body::Text(body.to_owned()) };
    b.body(body).unwrap()
}

async fn post(hook: &Hook, authorization: Option<&str>, body: &str) -> (StatusCode, String) {
    let req = request("POST", authorization, &[("content-type", "application/json")], body);
    let resp = hook.handle_http(req).await.unwrap();
    let text = String::from_utf8_lossy(resp.body().as_ref()).into_owned();
    (resp.status(), text)
}

#[tokio::test]
async fn verification_answers_with_the_challenge() {
    let secret = generated_secret();
    let s = setup_with(&secret, None).await;
    let req = request(
        "GET",
        Some(&secret),
        &[("X-Okta-Verification-Challenge", "c0ffee-Challenge-42")],
        "",
    );
    let resp = s.hook.handle_http(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    assert_eq!(body, serde_json::json!({ "verification": "c0ffee-Challenge-42" }));

    let req = request("GET", Some("Bearer nope"), &[("x-okta-verification-challenge", "c")], "");
    assert_eq!(s.hook.handle_http(req).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_delivery_of_three_events_is_queued_once_in_its_groups_even_when_retried() {
    let secret = generated_secret();
    let s = setup_with(&secret, None).await;
    let body = event_file("okta/delivery-three-events.json");

    let (status, text) = post(&s.hook, Some(&secret), &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, "", "a successful delivery has an empty body");
    // Okta retries (at-least-once): the same delivery again adds nothing. (Real SQS drops a
    // repeated deduplication id for 5 minutes; moto only while the first copy is still queued,
    // so the retry is sent before the queue is read, as it is in practice.)
    let (status, _) = post(&s.hook, Some(&secret), &body).await;
    assert_eq!(status, StatusCode::OK);

    let messages = drain(&s.sdk, &s.queue_url).await;
    assert_eq!(messages.len(), 3);
    let mut groups: Vec<_> = messages.iter().map(|m| m.group_id.as_str()).collect();
    groups.sort();
    assert_eq!(groups, [TEAM_GROUP, TEAM_GROUP, BOB]);
    let envelope: serde_json::Value = serde_json::from_str(&body).unwrap();
    for m in &messages {
        let event: serde_json::Value = serde_json::from_str(&m.body).unwrap();
        assert!(envelope["data"]["events"].as_array().unwrap().contains(&event));
        assert_eq!(event["uuid"].as_str(), Some(m.deduplication_id.as_str()));
        assert_eq!(event["eventType"].as_str(), m.event_type.as_deref());
    }
    // Within the team group, the older event (published first) is delivered first.
    let team: Vec<_> = messages.iter().filter(|m| m.group_id == TEAM_GROUP).collect();
    assert_eq!(team[0].event_type.as_deref(), Some("group.user_membership.add"));
    assert_eq!(team[1].event_type.as_deref(), Some("group.user_membership.remove"));
}

#[tokio::test]
async fn every_fixture_delivery_is_accepted_and_queued() {
    let secret = generated_secret();
    let s = setup_with(&secret, None).await;
    let mut expected = 0;
    for name in DELIVERIES {
        let body = event_file(name);
        let envelope: serde_json::Value = serde_json::from_str(&body).unwrap();
        expected += envelope["data"]["events"].as_array().unwrap().len();
        let (status, text) = post(&s.hook, Some(&secret), &body).await;
        assert_eq!(status, StatusCode::OK, "{name}: {text}");
    }
    // delivery-three-events repeats three events of the single-event fixtures: deduplicated.
    let messages = drain(&s.sdk, &s.queue_url).await;
    let mut ids: Vec<_> = messages.iter().map(|m| m.deduplication_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), messages.len(), "no event arrived twice");
    assert_eq!(messages.len(), expected - 3, "{messages:#?}");
}

#[tokio::test]
async fn missing_or_wrong_authorization_is_401_and_queues_nothing() {
    let secret = generated_secret();
    let s = setup_with(&secret, None).await;
    let body = event_file("okta/group-user-membership-add.json");
    let wrong_case = secret.to_uppercase();
    let with_space = format!("{secret} ");
    for auth in
        [None, Some(""), Some("Bearer wrong"), Some(wrong_case.as_str()), Some(with_space.as_str())]
    {
        let (status, text) = post(&s.hook, auth, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(text, r#"{"error":"unauthorized"}"#);
        assert!(!text.contains(&secret));
    }
    assert!(drain(&s.sdk, &s.queue_url).await.is_empty());
}

#[tokio::test]
async fn malformed_requests_get_their_status_and_queue_nothing() {
    let secret = generated_secret();
    let s = setup_with(&secret, None).await;
    let huge = format!(
        r#"{{"eventType":"com.okta.event_hook","data":{{"events":[{{"uuid":"u","pad":"{}"}}]}}}}"#,
        "x".repeat(1024 * 1024)
    );
    let cases = [
        ("not json", StatusCode::BAD_REQUEST),
        (r#"{"eventType":"com.okta.event_hook""#, StatusCode::BAD_REQUEST),
        (
            r#"{"eventType":"com.okta.oauth2.tokens.transform","data":{"events":[{"uuid":"u"}]}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"eventType":"com.okta.event_hook","data":{}}"#, StatusCode::BAD_REQUEST),
        (r#"{"eventType":"com.okta.event_hook","data":{"events":[]}}"#, StatusCode::BAD_REQUEST),
        (huge.as_str(), StatusCode::PAYLOAD_TOO_LARGE),
    ];
    for (body, expected) in cases {
        let (status, text) = post(&s.hook, Some(&secret), body).await;
        assert_eq!(status, expected, "{}", &body[..body.len().min(60)]);
        let reason: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(reason["error"].as_str().is_some_and(|r| !r.is_empty() && r.len() < 120));
    }
    for method in ["PUT", "DELETE", "PATCH"] {
        let req = request(method, Some(&secret), &[], "{}");
        let resp = s.hook.handle_http(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    assert!(drain(&s.sdk, &s.queue_url).await.is_empty());
}

#[tokio::test]
async fn current_and_pending_values_are_both_accepted_during_a_rotation() {
    let current = generated_secret();
    let pending = generated_secret();
    let s = setup_with(&current, None).await;
    stage_pending(&s.sdk, &s.secret_arn, &pending).await;
    let body = event_file("okta/group-lifecycle-create.json");
    assert_eq!(post(&s.hook, Some(&current), &body).await.0, StatusCode::OK);
    assert_eq!(post(&s.hook, Some(&pending), &body).await.0, StatusCode::OK);
    assert_eq!(post(&s.hook, Some("Bearer other"), &body).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(drain(&s.sdk, &s.queue_url).await.len(), 1);
}

#[tokio::test]
async fn a_rotation_that_finished_after_the_cache_was_filled_costs_no_delivery() {
    let old = generated_secret();
    let new = generated_secret();
    // Re-reads allowed at once, so the test need not wait out the production interval (5 s).
    let s = setup_with(&old, Some((Duration::from_secs(300), Duration::ZERO))).await;
    let body = event_file("okta/group-user-membership-remove.json");
    assert_eq!(post(&s.hook, Some(&old), &body).await.0, StatusCode::OK);

    // Rotation completes elsewhere: new value AWSCURRENT, no pending. The cache still holds old.
    let version = stage_pending(&s.sdk, &s.secret_arn, &new).await;
    promote(&s.sdk, &s.secret_arn, &version).await;

    let other = event_file("okta/group-profile-update.json");
    assert_eq!(post(&s.hook, Some(&new), &other).await.0, StatusCode::OK);
    assert_eq!(post(&s.hook, Some(&old), &other).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(drain(&s.sdk, &s.queue_url).await.len(), 2);
}

#[tokio::test]
async fn a_missing_queue_is_503_so_okta_retries() {
    let secret = generated_secret();
    let s = setup_with(&secret, None).await;
    let missing = s.queue_url.replace("idc-guard-events-", "idc-guard-missing-");
    let auth = HookAuthenticator::new(SecretsManagerStore::new(&s.sdk), &s.secret_arn);
    let hook = EventHookHandler::new(auth, SqsQueue::new(&s.sdk, missing));
    let (status, text) =
        post(&hook, Some(&secret), &event_file("okta/group-user-membership-add.json")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(text, r#"{"error":"temporarily unavailable, retry later"}"#);
}

#[tokio::test]
async fn unreachable_secrets_manager_is_503_not_401() {
    let secret = generated_secret();
    let s = setup_with(&secret, None).await;
    // A loopback port nobody listens on: the SDK's calls fail to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let config = aws_sdk_secretsmanager::config::Builder::from(&s.sdk)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    let unreachable = aws_sdk_secretsmanager::Client::from_conf(config);
    let auth = HookAuthenticator::new(SecretsManagerStore::from_client(unreachable), &s.secret_arn);
    let hook = EventHookHandler::new(auth, SqsQueue::new(&s.sdk, &s.queue_url));
    let (status, _) =
        post(&hook, Some(&secret), &event_file("okta/group-user-membership-add.json")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(drain(&s.sdk, &s.queue_url).await.is_empty());
}

/// Every fixture's events in one delivery: more than one SQS batch.
fn large_delivery() -> (String, Vec<String>) {
    let events: Vec<serde_json::Value> = DELIVERIES
        .iter()
        .flat_map(|f| {
            let v: serde_json::Value = serde_json::from_str(&event_file(f)).unwrap();
            v["data"]["events"].as_array().unwrap().clone()
        })
        .collect();
    let uuids = events.iter().map(|e| e["uuid"].as_str().unwrap().to_owned()).collect();
    let body = serde_json::json!({"eventType": "com.okta.event_hook", "eventId": "large",
        "eventTime": "2026-11-20T17:01:33.000Z", "contentType": "application/json",
        "data": {"events": events}})
    .to_string();
    (body, uuids)
}

async fn faulty_setup(plan: &std::sync::Arc<http_faults::FaultPlan>) -> Setup {
    let healthy = local_aws().await;
    let sdk = http_faults::with_faults(&healthy, plan);
    let value = generated_secret();
    let secret_arn = create_secret(&healthy, &value).await;
    let queue_url = create_fifo_queue(&healthy).await;
    let auth = HookAuthenticator::new(SecretsManagerStore::new(&sdk), &secret_arn);
    let hook = EventHookHandler::new(auth, SqsQueue::new(&sdk, &queue_url));
    // The secret's value, for the Authorization header, kept in the setup's place of it.
    Setup { sdk: healthy, secret_arn: value, queue_url, hook }
}

/// SQS unavailable after the first batch of a delivery (longer than the SDK's retries): the hook
/// answers 503, Okta's one retry gets 200, and the queue holds each event once (the FIFO queue
/// drops the first batch's repeats by their deduplication ids).
#[tokio::test]
async fn sqs_unavailable_mid_delivery_is_503_and_oktas_retry_stores_each_event_once() {
    use http_faults::{Answer, FaultPlan};
    let plan = FaultPlan::new();
    let s = faulty_setup(&plan).await;
    let (body, uuids) = large_delivery();
    assert!(uuids.len() > 10, "two SQS batches");
    plan.fail("AmazonSQS.SendMessageBatch", 1, 10, Answer::Unavailable);
    let (status, text) = post(&s.hook, Some(&s.secret_arn), &body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(plan.answered().len() >= 2, "the SDK retried first: {:?}", plan.answered());
    plan.clear();
    let (status, _) = post(&s.hook, Some(&s.secret_arn), &body).await;
    assert_eq!(status, StatusCode::OK, "Okta's retry");
    let mut queued: Vec<String> =
        drain(&s.sdk, &s.queue_url).await.into_iter().map(|m| m.deduplication_id).collect();
    queued.sort();
    // Some fixtures repeat an event (Okta redelivers): the queue holds each uuid once.
    let expected: Vec<String> =
        uuids.into_iter().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    assert_eq!(queued, expected, "each event once");
}

/// Secrets Manager down: the hook cannot tell a right value from a wrong one, so every request
/// gets 503 (Okta retries), never 401 (Okta would drop the delivery).
#[tokio::test]
async fn secrets_manager_down_is_503_never_401() {
    use http_faults::{Answer, FaultPlan};
    let plan = FaultPlan::new();
    let s = faulty_setup(&plan).await;
    let body = event_file("okta/group-user-membership-add.json");
    plan.fail("secretsmanager.GetSecretValue", 0, 1000, Answer::Unavailable);
    for auth in [Some(s.secret_arn.as_str()), Some("Bearer wrong"), None] {
        let (status, text) = post(&s.hook, auth, &body).await;
        if auth.is_some() {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{auth:?}: {text}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "no header at all is refused at once");
        }
    }
    plan.clear();
    let (status, _) = post(&s.hook, Some(&s.secret_arn), &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(drain(&s.sdk, &s.queue_url).await.len(), 1);
}
