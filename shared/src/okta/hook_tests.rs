//! Unit tests of the hook's logic with in-memory fakes of the ports. The same scenarios run
//! against the local AWS endpoint in `tests/tests/okta_event_hook.rs`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::*;
use crate::okta::event::OktaEvent;
use crate::okta::ports::RejectedMessage;
use crate::secret::{SecretDescription, SecretString};

const SECRET_ID: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hook-AbCdEf";
const CURRENT: &str = "Bearer current-0123456789abcdef";
const PENDING: &str = "Bearer pending-fedcba9876543210";

const FIXTURES: &[(&str, &str)] = &[
    (
        "group-user-membership-add",
        include_str!("../../../events/okta/group-user-membership-add.json"),
    ),
    (
        "group-user-membership-remove",
        include_str!("../../../events/okta/group-user-membership-remove.json"),
    ),
    ("group-lifecycle-create", include_str!("../../../events/okta/group-lifecycle-create.json")),
    ("group-profile-update", include_str!("../../../events/okta/group-profile-update.json")),
    (
        "user-lifecycle-deactivate",
        include_str!("../../../events/okta/user-lifecycle-deactivate.json"),
    ),
    (
        "user-mfa-factor-reset-all",
        include_str!("../../../events/okta/user-mfa-factor-reset-all.json"),
    ),
    ("policy-rule-update", include_str!("../../../events/okta/policy-rule-update.json")),
    (
        "user-authentication-sso-success",
        include_str!("../../../events/okta/user-authentication-sso-success.json"),
    ),
    (
        "user-authentication-sso-failure",
        include_str!("../../../events/okta/user-authentication-sso-failure.json"),
    ),
    (
        "application-provision-group-push-failed",
        include_str!("../../../events/okta/application-provision-group-push-failed.json"),
    ),
    ("delivery-three-events", include_str!("../../../events/okta/delivery-three-events.json")),
    ("sparse-event", include_str!("../../../events/okta/sparse-event.json")),
];

const TEAM_GROUP: &str = "00g4teamPAY7xYz5d7q2";
const ADMIN_GROUP: &str = "00g5admPLT3kLm5d7r9w";
const ALICE: &str = "00u2al1ceQRS9tUvW5d7";
const BOB: &str = "00u3b0bMNO8pQrS5d7x1";

fn fixture(name: &str) -> &'static str {
    FIXTURES.iter().find(|(n, _)| *n == name).map(|(_, body)| *body).unwrap()
}

/// Secrets Manager for one secret: a value per staging label, each value its own version (as a
/// new `PutSecretValue` is); counts value reads and `DescribeSecret` calls.
#[derive(Default)]
struct FakeSecrets {
    values: StdMutex<HashMap<&'static str, String>>,
    reads: AtomicUsize,
    describes: AtomicUsize,
    unreachable: AtomicBool,
}

impl FakeSecrets {
    fn with(current: Option<&str>, pending: Option<&str>) -> Self {
        let s = Self::default();
        s.set(AWSCURRENT, current);
        s.set(AWSPENDING, pending);
        s
    }
    fn set(&self, stage: &'static str, value: Option<&str>) {
        let mut v = self.values.lock().unwrap();
        match value {
            Some(value) => v.insert(stage, value.to_owned()),
            None => v.remove(stage),
        };
    }
    fn version_of(value: &str) -> String {
        format!("v-{}", &hex::encode(Sha256::digest(value.as_bytes()))[..12])
    }
    fn fail_if_unreachable(&self, operation: &'static str) -> Result<(), AwsError> {
        if self.unreachable.load(Ordering::SeqCst) {
            return Err(AwsError::Retryable {
                service: "secretsmanager",
                operation,
                message: "dispatch failure".into(),
            });
        }
        Ok(())
    }
}

impl SecretVersions for &FakeSecrets {
    async fn describe(&self, secret_id: &str) -> Result<SecretDescription, AwsError> {
        assert_eq!(secret_id, SECRET_ID);
        self.describes.fetch_add(1, Ordering::SeqCst);
        self.fail_if_unreachable("DescribeSecret")?;
        let mut versions: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (stage, value) in self.values.lock().unwrap().iter() {
            versions.entry(FakeSecrets::version_of(value)).or_default().push((*stage).to_owned());
        }
        Ok(SecretDescription { arn: SECRET_ID.into(), versions, ..Default::default() })
    }
    async fn version_value(
        &self,
        secret_id: &str,
        version_id: &str,
    ) -> Result<Option<SecretString>, AwsError> {
        assert_eq!(secret_id, SECRET_ID);
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.fail_if_unreachable("GetSecretValue")?;
        let values = self.values.lock().unwrap();
        Ok(values
            .values()
            .find(|v| FakeSecrets::version_of(v) == version_id)
            .cloned()
            .map(SecretString::from))
    }
}

/// A queue that records what it accepted; it can refuse the next N entries or fail whole calls.
#[derive(Default)]
struct FakeQueue {
    accepted: StdMutex<Vec<QueueMessage>>,
    calls: AtomicUsize,
    refuse_entries: AtomicUsize,
    sender_fault: AtomicBool,
    down: AtomicBool,
}

impl EventQueue for &FakeQueue {
    async fn send_batch(
        &self,
        messages: &[QueueMessage],
    ) -> Result<Vec<RejectedMessage>, AwsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert!(messages.len() <= SQS_MAX_BATCH, "batch of {}", messages.len());
        if self.down.load(Ordering::SeqCst) {
            return Err(AwsError::Permanent {
                service: "sqs",
                operation: "SendMessageBatch",
                message: "AWS.SimpleQueueService.NonExistentQueue".into(),
            });
        }
        // SQS's own rules, which the local stand-in does not enforce: the whole request fails
        // when a message (body plus attributes) exceeds 256 KiB or the batch does, and an
        // entry with a character outside SQS's set is refused.
        let sizes: Vec<usize> = messages
            .iter()
            .map(|m| {
                m.body.len()
                    + m.attributes
                        .iter()
                        .map(|(n, v)| n.len() + "String".len() + v.len())
                        .sum::<usize>()
            })
            .collect();
        if sizes.iter().any(|s| *s > SQS_MAX_PAYLOAD_BYTES)
            || sizes.iter().sum::<usize>() > SQS_MAX_PAYLOAD_BYTES
        {
            return Err(AwsError::Permanent {
                service: "sqs",
                operation: "SendMessageBatch",
                message: "AWS.SimpleQueueService.BatchRequestTooLong".into(),
            });
        }
        let mut rejected = Vec::new();
        for (index, m) in messages.iter().enumerate() {
            let invalid = !m.body.chars().all(is_sqs_char)
                || m.attributes.iter().any(|(_, v)| !v.chars().all(is_sqs_char));
            if invalid {
                rejected.push(RejectedMessage {
                    index,
                    code: "InvalidMessageContents".into(),
                    sender_fault: true,
                });
                continue;
            }
            let refuse = self
                .refuse_entries
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if refuse {
                let sender_fault = self.sender_fault.load(Ordering::SeqCst);
                rejected.push(RejectedMessage {
                    index,
                    code: "InternalError".into(),
                    sender_fault,
                });
            } else {
                self.accepted.lock().unwrap().push(m.clone());
            }
        }
        Ok(rejected)
    }
}

fn service<'a>(
    secrets: &'a FakeSecrets,
    queue: &'a FakeQueue,
) -> EventHookHandler<&'a FakeSecrets, &'a FakeQueue> {
    EventHookHandler::new(HookAuthenticator::new(secrets, SECRET_ID), queue)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    h
}

fn error_of(r: &HookResponse) -> String {
    let v: serde_json::Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
    v["error"].as_str().unwrap().to_owned()
}

#[test]
fn every_fixture_is_a_valid_delivery_with_typed_events() {
    for (name, body) in FIXTURES {
        let d = prepare_delivery(body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!d.messages.is_empty(), "{name}");
        for m in &d.messages {
            let e: OktaEvent = serde_json::from_str(&m.body).unwrap();
            assert!(e.event_type.is_some(), "{name}");
            assert_eq!(Some(m.deduplication_id.as_str()), e.uuid.as_deref(), "{name}");
        }
    }
}

#[test]
fn message_groups_follow_the_affected_group_then_the_user() {
    let group_of = |name: &str| {
        prepare_delivery(fixture(name).as_bytes()).unwrap().messages[0].group_id.clone()
    };
    assert_eq!(group_of("group-user-membership-add"), TEAM_GROUP);
    assert_eq!(group_of("group-user-membership-remove"), TEAM_GROUP);
    assert_eq!(group_of("group-lifecycle-create"), ADMIN_GROUP);
    assert_eq!(group_of("group-profile-update"), TEAM_GROUP);
    assert_eq!(group_of("application-provision-group-push-failed"), TEAM_GROUP);
    assert_eq!(group_of("user-lifecycle-deactivate"), BOB);
    assert_eq!(group_of("user-mfa-factor-reset-all"), ALICE);
    assert_eq!(group_of("user-authentication-sso-success"), ALICE);
    assert_eq!(group_of("user-authentication-sso-failure"), BOB);
    assert_eq!(group_of("sparse-event"), ALICE);
    // No group or user target: the admin who acted keeps their changes in order.
    assert_eq!(group_of("policy-rule-update"), "00u1adm1nXYZ0aBcD5d7");
}

#[test]
fn a_delivery_is_ordered_by_published_and_keeps_each_event_verbatim() {
    let body = fixture("delivery-three-events");
    let d = prepare_delivery(body.as_bytes()).unwrap();
    let types: Vec<_> = d.messages.iter().map(|m| m.attributes[0].1.as_str()).collect();
    assert_eq!(
        types,
        ["group.user_membership.add", "group.user_membership.remove", "user.lifecycle.deactivate"]
    );
    let groups: Vec<_> = d.messages.iter().map(|m| m.group_id.as_str()).collect();
    assert_eq!(groups, [TEAM_GROUP, TEAM_GROUP, BOB]);
    for m in &d.messages {
        assert!(body.contains(&m.body), "event body is forwarded exactly as received");
        assert_eq!(m.attributes[1], ("okta_delivery_id", d.delivery_id.clone().unwrap()));
    }
}

#[test]
fn an_event_without_a_usable_uuid_is_deduplicated_by_content() {
    let body = r#"{"eventType":"com.okta.event_hook","data":{"events":[
        {"eventType":"user.session.start","actor":{"id":"00u1","type":"User"}},
        {"uuid":"","eventType":"system.org.rate_limit.warning"}]}}"#;
    let a = prepare_delivery(body.as_bytes()).unwrap();
    let b = prepare_delivery(body.as_bytes()).unwrap();
    assert_eq!(a.messages[0].deduplication_id.len(), 64);
    assert_eq!(a.messages[0].deduplication_id, b.messages[0].deduplication_id);
    assert_ne!(a.messages[0].deduplication_id, a.messages[1].deduplication_id);
    assert_eq!(a.messages[0].group_id, "00u1");
    assert_eq!(a.messages[1].group_id, ORG_MESSAGE_GROUP);
}

#[test]
fn malformed_deliveries_are_refused_with_a_reason_and_never_panic() {
    let big = format!(
        r#"{{"eventType":"com.okta.event_hook","data":{{"events":[{{"uuid":"x","pad":"{}"}}]}}}}"#,
        "a".repeat(MAX_BODY_BYTES)
    );
    let cases: Vec<(&[u8], StatusCode, &str)> = vec![
        (b"", StatusCode::BAD_REQUEST, "empty body"),
        (b"   ", StatusCode::BAD_REQUEST, "empty body"),
        (b"{", StatusCode::BAD_REQUEST, "malformed JSON"),
        (b"null", StatusCode::BAD_REQUEST, "malformed JSON"),
        (b"[]", StatusCode::BAD_REQUEST, "eventType is missing"),
        (b"\xff\xfe", StatusCode::BAD_REQUEST, "not UTF-8"),
        (b"{}", StatusCode::BAD_REQUEST, "eventType is missing"),
        (
            br#"{"eventType":"com.okta.inline_hook","data":{"events":[{}]}}"#,
            StatusCode::BAD_REQUEST,
            "not com.okta.event_hook",
        ),
        (
            br#"{"eventType":"com.okta.event_hook"}"#,
            StatusCode::BAD_REQUEST,
            "data.events is missing",
        ),
        (
            br#"{"eventType":"com.okta.event_hook","data":null}"#,
            StatusCode::BAD_REQUEST,
            "data.events is missing",
        ),
        (
            br#"{"eventType":"com.okta.event_hook","data":{"events":null}}"#,
            StatusCode::BAD_REQUEST,
            "data.events is missing",
        ),
        (
            br#"{"eventType":"com.okta.event_hook","data":{"events":[]}}"#,
            StatusCode::BAD_REQUEST,
            "data.events is empty",
        ),
        (
            br#"{"eventType":"com.okta.event_hook","data":{"events":{}}}"#,
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            br#"{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"a"},7]}}"#,
            StatusCode::BAD_REQUEST,
            "data.events[1] is not an object",
        ),
        (big.as_bytes(), StatusCode::PAYLOAD_TOO_LARGE, "exceeds 1 MiB"),
    ];
    for (body, status, reason) in cases {
        let err = prepare_delivery(body).unwrap_err();
        assert_eq!(
            err.status(),
            status,
            "{:?}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
        assert!(err.to_string().contains(reason), "{err} should contain {reason}");
    }
}

#[tokio::test]
async fn an_event_too_large_for_sqs_is_queued_as_a_stub_and_nothing_is_dropped() {
    // Defect: the size check ignored message attributes, so an event just under 256 KiB was
    // refused by SQS and the whole delivery became 503s until Okta gave up.
    let secrets = FakeSecrets::with(Some(CURRENT), None);
    let queue = FakeQueue::default();
    let svc = service(&secrets, &queue);
    let event = |uuid: &str, pad: usize| {
        format!(
            r#"{{"uuid":"{uuid}","published":"2026-11-20T14:03:21.522Z","eventType":"group.user_membership.add","actor":{{"id":"00u1","type":"User","alternateId":"admin@acme.example"}},"target":[{{"id":"00u2","type":"User","alternateId":"alice@acme.example"}},{{"id":"00g1","type":"UserGroup","displayName":"aws-team-payments"}}],"debugContext":{{"pad":"{}"}}}}"#,
            "a".repeat(pad)
        )
    };
    let just_under = SQS_MAX_PAYLOAD_BYTES - 600; // fits alone, not with its attributes
    let huge = 600 * 1024;
    let body = format!(
        r#"{{"eventType":"com.okta.event_hook","eventId":"{}","data":{{"events":[{},{},{}]}}}}"#,
        "d".repeat(200),
        event("e-under", just_under),
        event("e-small", 10),
        event("e-huge", huge),
    );
    let r =
        svc.handle(&Method::POST, &headers(&[("authorization", CURRENT)]), body.as_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let accepted = queue.accepted.lock().unwrap();
    let ids: BTreeSet<&str> = accepted.iter().map(|m| m.deduplication_id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from(["e-under", "e-small", "e-huge"]), "no event dropped");
    for m in accepted.iter() {
        let e: OktaEvent = serde_json::from_str(&m.body).unwrap();
        assert_eq!(e.event_type.as_deref(), Some("group.user_membership.add"));
        assert_eq!(e.group().and_then(|g| g.display_name.as_deref()), Some("aws-team-payments"));
        let stubbed = e.idc_guard_stub.is_some();
        assert_eq!(stubbed, m.deduplication_id != "e-small", "{}", m.deduplication_id);
        assert_eq!(m.group_id, "00g1");
    }
}

#[test]
fn a_raw_control_character_in_a_delivery_is_malformed_json() {
    // Why the hook only has to escape U+FFFE and U+FFFF: JSON (and serde_json) refuses raw
    // control characters inside strings, and only whitespace may stand between tokens.
    let body =
        "{\"eventType\":\"com.okta.event_hook\",\"data\":{\"events\":[{\"uuid\":\"a\u{1}b\"}]}}";
    assert_eq!(prepare_delivery(body.as_bytes()).unwrap_err().status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn characters_sqs_refuses_never_reach_it_raw_and_mean_the_same() {
    let secrets = FakeSecrets::with(Some(CURRENT), None);
    let queue = FakeQueue::default();
    let svc = service(&secrets, &queue);
    let agent = "curl/8.0 \u{FFFF}\u{FFFE}\u{7F} ok";
    let event = serde_json::json!({"uuid": "e-ua", "eventType": "user.authentication.sso \u{FFFF}",
        "client": {"userAgent": {"rawUserAgent": agent}}});
    let body = serde_json::json!({"eventType": "com.okta.event_hook", "eventId": "del\u{FFFE}",
        "data": {"events": [event]}})
    .to_string();
    assert!(body.contains('\u{FFFF}'), "the delivery carries the raw character");
    let r =
        svc.handle(&Method::POST, &headers(&[("authorization", CURRENT)]), body.as_bytes()).await;
    assert_eq!(r.status, StatusCode::OK);
    let accepted = queue.accepted.lock().unwrap();
    assert_eq!(accepted.len(), 1);
    let m = &accepted[0];
    assert!(m.body.chars().all(is_sqs_char));
    let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
    assert_eq!(v["client"]["userAgent"]["rawUserAgent"], agent, "the same text after decoding");
    assert!(m.attributes.iter().all(|(_, v)| v.chars().all(is_sqs_char)));
}

#[test]
fn batches_respect_the_entry_and_payload_limits_and_keep_order() {
    let msg = |n: usize, size: usize| QueueMessage {
        body: "x".repeat(size),
        group_id: "g".into(),
        deduplication_id: n.to_string(),
        attributes: vec![],
    };
    let small: Vec<_> = (0..25).map(|i| msg(i, 100)).collect();
    let sizes: Vec<_> = batches_of(&small).iter().map(|b| b.len()).collect();
    assert_eq!(sizes, [10, 10, 5]);
    let large: Vec<_> = (0..5).map(|i| msg(i, 100 * 1024)).collect();
    let batches = batches_of(&large);
    assert_eq!(batches.iter().map(|b| b.len()).collect::<Vec<_>>(), [2, 2, 1]);
    let order: Vec<_> =
        batches.iter().flat_map(|b| b.iter().map(|m| m.deduplication_id.clone())).collect();
    assert_eq!(order, ["0", "1", "2", "3", "4"]);
    assert!(batches_of(&[]).is_empty());
}

#[tokio::test]
async fn verification_echoes_the_challenge_for_any_header_case() {
    let (secrets, queue) = (FakeSecrets::with(Some(CURRENT), None), FakeQueue::default());
    let svc = service(&secrets, &queue);
    for name in ["x-okta-verification-challenge", "X-Okta-Verification-Challenge"] {
        let h = headers(&[("authorization", CURRENT), (name, "chAll3nge-value")]);
        let r = svc.handle(&Method::GET, &h, b"").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body.as_deref(), Some(r#"{"verification":"chAll3nge-value"}"#));
    }
    let r = svc.handle(&Method::GET, &headers(&[("authorization", CURRENT)]), b"").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let h = headers(&[("authorization", "Bearer wrong"), (VERIFICATION_HEADER, "c")]);
    assert_eq!(svc.handle(&Method::GET, &h, b"").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_delivery_is_acknowledged_only_after_every_event_is_queued() {
    let (secrets, queue) = (FakeSecrets::with(Some(CURRENT), None), FakeQueue::default());
    let svc = service(&secrets, &queue);
    let h = headers(&[("authorization", CURRENT), ("content-type", "application/json")]);
    let r = svc.handle(&Method::POST, &h, fixture("delivery-three-events").as_bytes()).await;
    assert_eq!(r, HookResponse { status: StatusCode::OK, body: None });
    assert_eq!(queue.accepted.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn entries_the_queue_refuses_are_sent_again_then_503() {
    let (secrets, queue) = (FakeSecrets::with(Some(CURRENT), None), FakeQueue::default());
    let svc = service(&secrets, &queue);
    let h = headers(&[("authorization", CURRENT)]);
    let body = fixture("delivery-three-events").as_bytes();

    queue.refuse_entries.store(2, Ordering::SeqCst);
    assert_eq!(svc.handle(&Method::POST, &h, body).await.status, StatusCode::OK);
    assert_eq!(queue.accepted.lock().unwrap().len(), 3, "refused entries were retried");
    assert_eq!(queue.calls.load(Ordering::SeqCst), 2);

    queue.accepted.lock().unwrap().clear();
    queue.refuse_entries.store(100, Ordering::SeqCst);
    let r = svc.handle(&Method::POST, &h, body).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!r.body.unwrap().contains("InternalError"), "internal causes stay in the log");

    queue.refuse_entries.store(1, Ordering::SeqCst);
    queue.sender_fault.store(true, Ordering::SeqCst);
    let calls = queue.calls.load(Ordering::SeqCst);
    assert_eq!(svc.handle(&Method::POST, &h, body).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(queue.calls.load(Ordering::SeqCst), calls + 1, "a sender fault is not retried");

    queue.down.store(true, Ordering::SeqCst);
    assert_eq!(svc.handle(&Method::POST, &h, body).await.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let (secrets, queue) = (FakeSecrets::with(Some(CURRENT), None), FakeQueue::default());
    let svc = service(&secrets, &queue);
    for m in [Method::PUT, Method::DELETE, Method::PATCH, Method::HEAD, Method::OPTIONS] {
        let r = svc.handle(&m, &headers(&[("authorization", CURRENT)]), b"{}").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{m}");
        let http = r.into_http();
        assert_eq!(http.headers().get(ALLOW).unwrap(), "GET, POST");
    }
    assert_eq!(secrets.reads.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unauthorized_requests_get_a_generic_401_and_queue_nothing() {
    let (secrets, queue) = (FakeSecrets::with(Some(CURRENT), Some(PENDING)), FakeQueue::default());
    let svc = service(&secrets, &queue);
    let body = fixture("group-user-membership-add").as_bytes();
    let cases: [&[(&str, &str)]; 4] = [
        &[],
        &[("authorization", "")],
        &[("authorization", "Bearer current-0123456789abcdeF")],
        &[("authorization", "current-0123456789abcdef")],
    ];
    for h in cases {
        let r = svc.handle(&Method::POST, &headers(h), body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_of(&r), "unauthorized");
    }
    assert!(queue.accepted.lock().unwrap().is_empty());
    assert_eq!(queue.calls.load(Ordering::SeqCst), 0);
    // An unauthenticated caller learns nothing about the body: 401 comes before 400 and 413.
    let r = svc.handle(&Method::POST, &headers(&[("authorization", "x")]), b"{").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn current_and_pending_values_are_both_accepted() {
    let (secrets, queue) = (FakeSecrets::with(Some(CURRENT), Some(PENDING)), FakeQueue::default());
    let svc = service(&secrets, &queue);
    let body = fixture("group-user-membership-add").as_bytes();
    for value in [CURRENT, PENDING] {
        let r = svc.handle(&Method::POST, &headers(&[("authorization", value)]), body).await;
        assert_eq!(r.status, StatusCode::OK, "{value}");
    }
}

#[tokio::test(start_paused = true)]
async fn values_are_cached_for_the_ttl_and_a_mismatch_checks_the_version_ids_only() {
    let secrets = FakeSecrets::with(Some(CURRENT), None);
    let auth = HookAuthenticator::new(&secrets, SECRET_ID);
    let reads = || secrets.reads.load(Ordering::SeqCst);
    let describes = || secrets.describes.load(Ordering::SeqCst);

    auth.authenticate(Some(CURRENT.as_bytes())).await.unwrap();
    assert_eq!((describes(), reads()), (1, 1), "version ids, then AWSCURRENT's value");
    auth.authenticate(Some(CURRENT.as_bytes())).await.unwrap();
    assert_eq!((describes(), reads()), (1, 1), "served from the cache");

    // A wrong value is judged on a version check made after it arrived: unchanged ids, 401,
    // and no value is read.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(matches!(auth.authenticate(Some(b"wrong")).await, Err(HookError::Unauthorized)));
    assert_eq!((describes(), reads()), (2, 1));

    // The secret rotates. The old value stays cached (still accepted) until a mismatch...
    secrets.set(AWSCURRENT, Some(PENDING));
    tokio::time::advance(Duration::from_secs(1)).await;
    auth.authenticate(Some(CURRENT.as_bytes())).await.unwrap();
    assert_eq!((describes(), reads()), (2, 1));
    // ...and the new value is accepted at once: the ids changed, the values are read again.
    auth.authenticate(Some(PENDING.as_bytes())).await.unwrap();
    assert_eq!((describes(), reads()), (4, 2));
    // The cache was replaced: the rotated-out value is now refused.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(auth.authenticate(Some(CURRENT.as_bytes())).await.is_err());

    // After the TTL everything is read again, even for a matching value.
    let before = reads();
    tokio::time::advance(HookAuthenticator::<&FakeSecrets>::DEFAULT_TTL).await;
    auth.authenticate(Some(PENDING.as_bytes())).await.unwrap();
    assert_eq!(reads(), before + 1);

    // A missing header never causes a call.
    let (d, r) = (describes(), reads());
    assert!(auth.authenticate(None).await.is_err());
    assert_eq!((describes(), reads()), (d, r));
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_wrong_values_costs_one_version_check_per_interval_and_never_a_503() {
    // Defect: wrong values spent a re-read budget (20, then one per 5 s); once spent, every
    // unknown value, the rotation's new one included, got 503 until the budget refilled.
    let secrets = FakeSecrets::with(Some(CURRENT), None);
    let auth = HookAuthenticator::new(&secrets, SECRET_ID);
    auth.authenticate(Some(CURRENT.as_bytes())).await.unwrap();
    let flood = (0..2_000).map(|i| {
        let auth = &auth;
        async move {
            let wrong = format!("Bearer guess-{i}");
            auth.authenticate(Some(wrong.as_bytes())).await
        }
    });
    let started = Instant::now();
    let answers = futures::future::join_all(flood).await;
    assert!(answers.iter().all(|a| matches!(a, Err(HookError::Unauthorized))), "401 each");
    let checks = secrets.describes.load(Ordering::SeqCst) - 1;
    let interval = HookAuthenticator::<&FakeSecrets>::DEFAULT_CHECK_INTERVAL;
    assert!(checks <= 2, "one check answers every request that arrived before it: {checks}");
    assert!(started.elapsed() <= interval * 2, "nobody waits past the next check");
    assert_eq!(secrets.reads.load(Ordering::SeqCst), 1, "a flood reads no value");
}

/// A rotation of the hook secret while someone floods the endpoint with wrong values: the flood
/// runs through all four steps, and Okta's verification and every delivery with the old or the
/// new value must be accepted (Okta never retries a 401, and each 503 costs one of its two
/// attempts).
#[tokio::test(start_paused = true)]
async fn a_flood_of_wrong_values_during_all_four_rotation_steps_never_fails_okta() {
    let secrets = FakeSecrets::with(Some(CURRENT), None);
    let queue = FakeQueue::default();
    let svc = service(&secrets, &queue);
    let body = fixture("group-user-membership-add").as_bytes();
    let verify = |value: &'static str| {
        headers(&[("authorization", value), ("x-okta-verification-challenge", "challenge-1")])
    };
    let done = AtomicBool::new(false);
    // Twenty attackers at once, each sending a new wrong value as soon as the last is answered.
    let attacker = |who: usize| {
        let (svc, done) = (&svc, &done);
        async move {
            let mut refused = 0usize;
            while !done.load(Ordering::SeqCst) {
                let wrong = format!("Bearer flood-{who}-{refused}");
                let auth = headers(&[("authorization", wrong.as_str())]);
                let r = svc.handle(&Method::POST, &auth, body).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the flood itself is refused");
                refused += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            refused
        }
    };
    let flooder =
        async { futures::future::join_all((0..20).map(attacker)).await.into_iter().sum::<usize>() };
    let okta = async {
        let mut statuses = Vec::new();
        let deliver = |value: &'static str, step: &'static str| {
            let svc = &svc;
            async move {
                let auth = headers(&[("authorization", value)]);
                (step, svc.handle(&Method::POST, &auth, body).await.status)
            }
        };
        tokio::time::sleep(Duration::from_millis(40)).await;
        statuses.push(deliver(CURRENT, "before").await);
        // createSecret: AWSPENDING staged.
        secrets.set(AWSPENDING, Some(PENDING));
        tokio::time::sleep(Duration::from_millis(7)).await;
        statuses.push(deliver(CURRENT, "createSecret").await);
        // setSecret: Okta gets the new value and verifies the hook with it at once.
        let r = svc.handle(&Method::GET, &verify(PENDING), b"").await;
        statuses.push(("setSecret verification", r.status));
        statuses.push(deliver(PENDING, "setSecret").await);
        // testSecret: deliveries with the new value.
        tokio::time::sleep(Duration::from_millis(11)).await;
        statuses.push(deliver(PENDING, "testSecret").await);
        // finishSecret: AWSCURRENT moves; AWSPENDING is removed from the new version.
        secrets.set(AWSCURRENT, Some(PENDING));
        secrets.set(AWSPENDING, None);
        statuses.push(deliver(PENDING, "finishSecret").await);
        tokio::time::sleep(Duration::from_millis(400)).await;
        statuses.push(deliver(PENDING, "after").await);
        done.store(true, Ordering::SeqCst);
        statuses
    };
    let (refused, statuses) = tokio::join!(flooder, okta);
    assert!(refused >= 40, "the flood ran throughout: {refused}");
    for (step, status) in statuses {
        assert_eq!(status, StatusCode::OK, "{step}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_value_set_in_okta_before_secrets_manager_is_accepted_once_it_is_stored() {
    // Defect: a value refused on a fresh read was remembered and refused again without a read
    // for a cache lifetime, so a person who typed the new value into Okta first, then into
    // Secrets Manager, had Okta's deliveries refused with 401 (never retried).
    let secrets = FakeSecrets::with(Some(CURRENT), None);
    let queue = FakeQueue::default();
    let svc = service(&secrets, &queue);
    let body = fixture("group-user-membership-add").as_bytes();
    let post = |value: &'static str| {
        let svc = &svc;
        async move { svc.handle(&Method::POST, &headers(&[("authorization", value)]), body).await }
    };
    assert_eq!(post(CURRENT).await.status, StatusCode::OK);
    assert_eq!(post(PENDING).await.status, StatusCode::UNAUTHORIZED, "not stored yet");
    secrets.set(AWSCURRENT, Some(PENDING));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(post(PENDING).await.status, StatusCode::OK, "stored now: accepted");
}

#[tokio::test]
async fn an_unreachable_or_empty_secret_is_503_not_401() {
    let (secrets, queue) = (FakeSecrets::with(Some(CURRENT), None), FakeQueue::default());
    secrets.unreachable.store(true, Ordering::SeqCst);
    let svc = service(&secrets, &queue);
    let body = fixture("group-user-membership-add").as_bytes();
    let r = svc.handle(&Method::POST, &headers(&[("authorization", CURRENT)]), body).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!r.body.unwrap().contains("dispatch"), "no internal detail in the body");

    let (secrets, queue) = (FakeSecrets::with(None, None), FakeQueue::default());
    let svc = service(&secrets, &queue);
    let r = svc.handle(&Method::POST, &headers(&[("authorization", CURRENT)]), body).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(queue.accepted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn function_url_fixtures_drive_the_lambda_adapter() {
    let secrets = FakeSecrets::with(Some("REPLACE-WITH-THE-HOOK-SECRET-VALUE"), None);
    let queue = FakeQueue::default();
    let svc = service(&secrets, &queue);

    let req = lambda_http::request::from_str(include_str!(
        "../../../events/function-url/okta-verification.json"
    ))
    .unwrap();
    let resp = svc.handle_http(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers().get(CONTENT_TYPE).unwrap(), "application/json");
    let body: serde_json::Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    assert_eq!(body["verification"], "w8PzJzXHWbZyTGtJZrzvbhn2o8nPzwqPCVrWSw4e");

    let req = lambda_http::request::from_str(include_str!(
        "../../../events/function-url/okta-delivery.json"
    ))
    .unwrap();
    let resp = svc.handle_http(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.body().is_empty());
    let accepted = queue.accepted.lock().unwrap();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].group_id, TEAM_GROUP);
}

/// Collects everything logged (at every level) while the closure's future runs.
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<StdMutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_value_reaches_the_log_or_a_response() {
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (secrets, queue) = (FakeSecrets::with(Some(CURRENT), Some(PENDING)), FakeQueue::default());
    let svc = EventHookHandler::new(
        HookAuthenticator::new(&secrets, SECRET_ID)
            .with_timing(Duration::from_secs(300), Duration::ZERO),
        &queue,
    );
    let body = fixture("delivery-three-events").as_bytes();
    let mut responses = Vec::new();
    for auth in [CURRENT, PENDING, "Bearer wrong-guess"] {
        responses.push(svc.handle(&Method::POST, &headers(&[("authorization", auth)]), body).await);
    }
    queue.down.store(true, Ordering::SeqCst);
    responses.push(svc.handle(&Method::POST, &headers(&[("authorization", CURRENT)]), body).await);
    secrets.unreachable.store(true, Ordering::SeqCst);
    responses
        .push(svc.handle(&Method::POST, &headers(&[("authorization", "Bearer x")]), body).await);

    let statuses: Vec<u16> = responses.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, [200, 200, 401, 503, 503]);
    let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("okta event hook"), "the log was captured: {logged}");
    for secret in [CURRENT, PENDING, "current-0123456789abcdef", "pending-fedcba9876543210"] {
        assert!(!logged.contains(secret), "secret in log:\n{logged}");
        for r in &responses {
            assert!(!r.body.as_deref().unwrap_or("").contains(secret));
        }
    }
}

#[tokio::test]
async fn every_answer_is_counted_by_status_and_queued_events_by_number() {
    use crate::telemetry::metrics::{Metric, recorded};
    let (secrets, queue) = (FakeSecrets::with(Some(CURRENT), None), FakeQueue::default());
    let svc = service(&secrets, &queue);
    let body = fixture("delivery-three-events").as_bytes();
    let ((), counts) = recorded(async {
        svc.handle(&Method::POST, &headers(&[("authorization", CURRENT)]), body).await;
        svc.handle(&Method::POST, &headers(&[("authorization", "Bearer wrong")]), body).await;
        queue.down.store(true, Ordering::SeqCst);
        svc.handle(&Method::POST, &headers(&[("authorization", CURRENT)]), body).await;
    })
    .await;
    assert_eq!(counts.get(Metric::HookRequests, &["200"]), 1.0);
    assert_eq!(counts.get(Metric::HookRequests, &["401"]), 1.0);
    assert_eq!(counts.get(Metric::HookRequests, &["503"]), 1.0);
    assert_eq!(counts.total(Metric::EventsQueued), 3.0, "only the stored delivery's events");
}

/// Fault sweep of one delivery: the N-th call (a secret read or a queue send) fails with each
/// fault; Okta then retries once with healthy ports. The hook never answers 401 for a fault,
/// answers 200 only when every event is on the queue, and after the retry every event is on the
/// queue exactly once by its deduplication id (SQS FIFO drops a repeat within five minutes).
#[tokio::test(start_paused = true)]
async fn fault_sweep_a_delivery_is_acknowledged_only_when_stored_and_the_retry_completes_it() {
    use crate::testing::faults::{ALL_FAULTS, Faults, Faulty};
    // Every fixture's events in one delivery: more than one SQS batch.
    let events: Vec<serde_json::Value> = FIXTURES
        .iter()
        .flat_map(|(_, body)| {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            v["data"]["events"].as_array().unwrap().clone()
        })
        .collect();
    let body = serde_json::json!({"eventType": "com.okta.event_hook", "eventId": "sweep",
        "eventTime": "2026-11-20T17:01:33.000Z", "data": {"events": events}})
    .to_string();
    let expected: BTreeSet<String> =
        events.iter().map(|e| e["uuid"].as_str().unwrap().to_owned()).collect();
    assert!(expected.len() > SQS_MAX_BATCH, "the delivery spans several batches");
    let auth = &headers(&[("authorization", CURRENT)]);
    let body = body.as_str();

    let deliver = |faults: &'static Faults| async move {
        let (secrets, queue) = (FakeSecrets::with(Some(CURRENT), None), FakeQueue::default());
        let svc = EventHookHandler::new(
            HookAuthenticator::new(Faulty::new(&secrets, faults), SECRET_ID),
            Faulty::new(&queue, faults),
        );
        let first = tokio::time::timeout(
            Duration::from_secs(3), // Okta's budget; a dropped call is a timeout to Okta
            svc.handle(&Method::POST, auth, body.as_bytes()),
        )
        .await;
        let calls = faults.calls();
        let hit = faults.hit();
        let stored_after_first: BTreeSet<String> =
            queue.accepted.lock().unwrap().iter().map(|m| m.deduplication_id.clone()).collect();
        faults.disarm();
        let retried = match &first {
            Ok(r) if r.status == StatusCode::OK => None,
            _ => Some(svc.handle(&Method::POST, auth, body.as_bytes()).await.status),
        };
        let ids: BTreeSet<String> =
            queue.accepted.lock().unwrap().iter().map(|m| m.deduplication_id.clone()).collect();
        (first.map(|r| r.status), stored_after_first, retried, ids, calls, hit)
    };
    let healthy: &'static Faults = Box::leak(Box::default());
    let (first, _, retried, ids, calls, _) = deliver(healthy).await;
    assert_eq!((first.unwrap(), retried), (StatusCode::OK, None));
    assert_eq!(ids, expected);
    assert!(calls >= 3, "a secret read and at least two batches: {calls}");
    for n in 1..=calls {
        for fault in ALL_FAULTS {
            let faults: &'static Faults = Box::leak(Box::default());
            faults.arm(n, fault);
            let (first, stored, retried, ids, _, hit) = deliver(faults).await;
            let case = format!("call {n} {fault:?} {hit:?}");
            assert!(hit.is_some(), "{case}: the armed call never happened");
            match first {
                Ok(StatusCode::OK) => assert_eq!(stored, expected, "{case}: 200 before storing"),
                Ok(status) => assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{case}"),
                Err(_) => assert_eq!(fault, crate::testing::faults::Fault::Drop, "{case}"),
            }
            assert_ne!(first.ok(), Some(StatusCode::UNAUTHORIZED), "{case}");
            assert!(retried.is_none_or(|s| s == StatusCode::OK), "{case}: retry got {retried:?}");
            assert_eq!(ids, expected, "{case}: every event once by its deduplication id");
        }
    }
}
