//! The grants API as a caller meets it: Okta ID tokens (good, forged, expired, for another app
//! or org), the routes, and what a refusal shows.

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::super::tests::{ADMIN, Handler, handler, leak, now, okta};
use super::*;
use crate::okta::id_token::{IdTokenVerifier, OktaKeys};
use crate::okta::ports::{OktaError, OktaGroups};
use crate::testing::faults::RecordingSink;

const ORG: &str = "https://acme.okta.com";
const CLIENT_ID: &str = "0oa1idcguardcli";
const KID: &str = "idc-guard-test-key-1";

struct FixtureKeys;

impl OktaKeys for FixtureKeys {
    fn keys(&self) -> futures::future::BoxFuture<'_, Result<jsonwebtoken::jwk::JwkSet, OktaError>> {
        Box::pin(async {
            Ok(serde_json::from_str(include_str!(
                "../../../../events/okta-api/oauth2-v1-keys.json"
            ))
            .unwrap())
        })
    }
}

fn api() -> Handler {
    let mut h = handler(leak(RecordingSink::new("sns")));
    h.id_tokens = Some(IdTokenVerifier::new(ORG, CLIENT_ID, Box::new(FixtureKeys)));
    h
}

fn claims(sub: &str) -> Value {
    let t = Utc::now().timestamp();
    json!({"sub": sub, "iss": ORG, "aud": CLIENT_ID, "iat": t, "exp": t + 3600, "ver": 1,
        "jti": "ID.test", "amr": ["pwd", "mfa"], "idp": "00o1", "auth_time": t})
}

fn sign(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(include_bytes!("../../testing/oidc-test-key.pem")).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn token(sub: &str) -> String {
    sign(&claims(sub))
}

fn request(method: &str, path: &str, token: Option<&str>, body: Value) -> HttpRequest {
    let mut headers = std::collections::BTreeMap::new();
    if let Some(t) = token {
        headers.insert("authorization".into(), format!("Bearer {t}"));
    }
    let body = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    HttpRequest { method: method.into(), path: path.into(), headers, body }
}

async fn call(h: &Handler, method: &str, path: &str, who: Option<&str>, body: Value) -> HttpReply {
    h.http(&request(method, path, who, body), now()).await
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_one_401() {
    let h = api();
    let t = Utc::now().timestamp();
    let with = |patch: Value| {
        let mut c = claims("00u-alice");
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        sign(&c)
    };
    let good = token("00u-alice");
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    parts[1] = b64.encode(claims("00u-carol").to_string());
    let tampered = parts.join(".");
    let none_alg = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","kid":"idc-guard-test-key-1"}"#),
        b64.encode(claims("00u-alice").to_string())
    );
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KID.into());
        jsonwebtoken::encode(
            &header,
            &claims("00u-alice"),
            &EncodingKey::from_secret(b"the public modulus"),
        )
        .unwrap()
    };
    let other_kid = {
        let key =
            EncodingKey::from_rsa_pem(include_bytes!("../../testing/oidc-test-key.pem")).unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rotated-away".into());
        jsonwebtoken::encode(&header, &claims("00u-alice"), &key).unwrap()
    };
    for (what, tok) in [
        ("another app's token", with(json!({"aud": "0oa-some-other-app"}))),
        ("another org's token", with(json!({"iss": "https://evil.okta.com"}))),
        ("expired", with(json!({"exp": t - 120, "iat": t - 3720}))),
        ("issued in the future", with(json!({"iat": t + 600, "exp": t + 4200}))),
        ("no sub", with(json!({"sub": ""}))),
        ("tampered claims", tampered),
        ("alg none", none_alg),
        ("HS256 with a guessable secret", hs256),
        ("unknown kid", other_kid),
        ("not a JWT", "not-a-token".into()),
    ] {
        let r = call(&h, "GET", "/me", Some(&tok), Value::Null).await;
        assert_eq!((r.status, &r.body), (401, &json!({"error": "unauthorized"})), "{what}");
    }
    assert_eq!(call(&h, "GET", "/grants", None, Value::Null).await.status, 401);
    let r = call(&h, "GET", "/me", Some(&good), Value::Null).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], "00u-alice");
    assert_eq!(r.body["groups"], json!(["oncall"]));
}

#[tokio::test]
async fn without_an_oidc_client_the_cli_door_is_closed() {
    let h = handler(leak(RecordingSink::new("sns")));
    assert_eq!(call(&h, "GET", "/me", Some(&token("00u-alice")), Value::Null).await.status, 401);
}

#[tokio::test]
async fn the_api_asks_shows_approves_and_refuses_with_the_rule() {
    let h = api();
    let alice = token("00u-alice");
    let r = call(
        &h,
        "POST",
        "/grants",
        Some(&alice),
        json!({"group": ADMIN, "minutes": 60, "reason": "INC-42"}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (r.body["status"].as_str(), r.body["requester_id"].as_str()),
        (Some("pending"), Some("00u-alice"))
    );
    // Alice, with a fresh token (another session, another role), approves: 403 with the rule.
    let again = sign(&{
        let mut c = claims("00u-alice");
        c["jti"] = "ID.second-session".into();
        c
    });
    let r = call(&h, "POST", &format!("/grants/{id}/approve"), Some(&again), Value::Null).await;
    assert_eq!(r.status, 403);
    assert!(r.body["error"].as_str().unwrap().contains("self-approval"));
    let carol = token("00u-carol");
    let shown = call(&h, "GET", &format!("/grants/{id}"), Some(&carol), Value::Null).await;
    assert_eq!(shown.body["login"], "alice@acme.example");
    let expect = json!({"expect": {"login": shown.body["login"], "group": shown.body["group"], "minutes": shown.body["minutes"]}});
    let r = call(&h, "POST", &format!("/grants/{id}/approve"), Some(&carol), expect).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("active")), "{:?}", r.body);
    assert!(okta(&h).is_member("alice"));
    let all = call(&h, "GET", "/grants", Some(&carol), Value::Null).await;
    assert_eq!(all.body.as_array().map(Vec::len), Some(1));
    assert_eq!(call(&h, "GET", "/grants/g-nope", Some(&carol), Value::Null).await.status, 404);
}

#[tokio::test]
async fn bad_bodies_and_unknown_routes_are_clear_errors() {
    let h = api();
    let alice = token("00u-alice");
    for body in [
        json!({"group": ADMIN}),
        json!({"group": ADMIN, "minutes": 60, "reason": "x", "approved_by": "me"}),
        json!("text"),
    ] {
        let r = call(&h, "POST", "/grants", Some(&alice), body.clone()).await;
        assert_eq!(r.status, 400, "{body}");
        assert!(r.body["error"].as_str().unwrap().starts_with("bad JSON body"), "{:?}", r.body);
    }
    for minutes in [0, -5, 100_000] {
        let r = call(
            &h,
            "POST",
            "/grants",
            Some(&alice),
            json!({"group": ADMIN, "minutes": minutes, "reason": "x"}),
        )
        .await;
        assert_eq!(r.status, 400, "{minutes}");
    }
    assert_eq!(call(&h, "DELETE", "/grants", Some(&alice), Value::Null).await.status, 404);
    assert_eq!(call(&h, "GET", "/admin", None, Value::Null).await.status, 404);
    let mut big = request("POST", "/grants", Some(&alice), Value::Null);
    big.body = vec![b' '; MAX_BODY_BYTES + 1];
    assert_eq!(h.http(&big, now()).await.status, 413);
    assert!(h.grants().await.unwrap().is_empty());
}

#[tokio::test]
async fn function_url_events_and_the_schedule_reach_their_handlers() {
    let h = api();
    let mut event: Value =
        serde_json::from_str(include_str!("../../../../events/function-url/grants-request.json"))
            .unwrap();
    event["headers"]["authorization"] = format!("Bearer {}", token("00u-alice")).into();
    let reply = h.handle(event).await.unwrap();
    assert_eq!(reply["statusCode"], 201, "{reply}");
    let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["group"], ADMIN);
    let schedule: Value =
        serde_json::from_str(include_str!("../../../../events/eventbridge/grants-schedule.json"))
            .unwrap();
    let report = h.handle(schedule).await.unwrap();
    assert_eq!(report["failed"], json!([]));
    assert!(h.handle(json!({"hello": "world"})).await.is_err());
}

/// The review route: the reviewer is the token's person (a body cannot name another), a refused
/// decision is 403 with the rule, a decision is 201 with its id and time, and the history lists
/// it.
#[tokio::test]
async fn review_decisions_come_from_the_tokens_person() {
    let mut h = api();
    h.access.policy.reviews.push(crate::access::review::ReviewOwners {
        groups: crate::access::pattern::GroupPattern::compile("aws-admin-*").unwrap(),
        owners: vec!["aws-approvers".into()],
        unused_days: 90,
    });
    okta(&h).add_member("00g-admin", "00u-alice").await.unwrap();
    let decision = json!({"user": "alice@acme.example", "group": ADMIN, "decision": "remove",
        "reason": "unused", "reviewer": "00u-carol"});
    assert_eq!(call(&h, "POST", "/reviews", None, decision.clone()).await.status, 401);
    let bob = token("00u-bob");
    let r = call(&h, "POST", "/reviews", Some(&bob), decision.clone()).await;
    assert_eq!(r.status, 403, "a body naming another reviewer changes nothing: {:?}", r.body);
    assert!(okta(&h).is_member("alice"));
    let carol = token("00u-carol");
    let r = call(&h, "POST", "/reviews", Some(&carol), decision).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert!(r.body["id"].as_str().unwrap().starts_with("r-"), "{:?}", r.body);
    assert_eq!(r.body["at"], now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    assert!(!okta(&h).is_member("alice"));
    let all = call(&h, "GET", "/reviews", Some(&bob), Value::Null).await;
    assert_eq!(all.body[0]["reviewer_login"], "carol@acme.example", "{:?}", all.body);
}
