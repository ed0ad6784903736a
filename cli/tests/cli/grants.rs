//! `idc-guard login`, `grant`, `approve`, `deny`, `grants` through the real binary: Okta's device
//! authorization grant and the grants API as wiremock servers. The CLI holds no Okta API token
//! and no AWS access: it signs in, keeps the ID token to itself, and sends it.

use serde_json::json;
use wiremock::matchers::{body_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use local_aws::text;

use super::idc_guard;

const ID_TOKEN: &str = "eyJraWQiOiJ0ZXN0In0.eyJzdWIiOiIwMHUtY2Fyb2wifQ.c2lnbmF0dXJl";

async fn okta() -> MockServer {
    let okta = MockServer::start().await;
    let mut authorize: serde_json::Value =
        serde_json::from_str(include_str!("../../../events/okta-api/device-authorize.json"))
            .unwrap();
    authorize["interval"] = 1.into();
    Mock::given(method("POST"))
        .and(path("/oauth2/v1/device/authorize"))
        .and(body_string_contains("client_id=0oa1idcguardcli"))
        .and(body_string_contains("scope=openid+profile+email"))
        .respond_with(ResponseTemplate::new(200).set_body_json(authorize))
        .mount(&okta)
        .await;
    // The person has not approved yet on the first poll.
    Mock::given(method("POST"))
        .and(path("/oauth2/v1/token"))
        .and(body_string_contains("device_code=2f6e0a51"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"error": "authorization_pending",
            "error_description": "The device authorization is pending. Please try again later."})),
        )
        .up_to_n_times(1)
        .mount(&okta)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/v1/token"))
        .and(body_string_contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token_type": "Bearer",
            "expires_in": 3600, "access_token": "not-used-by-idc-guard", "scope": "openid profile email",
            "id_token": ID_TOKEN})))
        .mount(&okta)
        .await;
    okta
}

/// The binary as a person runs it against these stand-ins, with its own home (the saved token).
fn client(
    api: &MockServer,
    okta: &MockServer,
    home: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    let mut c = idc_guard();
    c.env("IDC_GUARD_GRANTS_URL", api.uri())
        .env("IDC_GUARD_OKTA_ORG_URL", okta.uri())
        .env("IDC_GUARD_OKTA_CLIENT_ID", "0oa1idcguardcli")
        .env("HOME", home)
        .args(args);
    c.output().unwrap()
}

fn grant_json(status: &str) -> serde_json::Value {
    json!({"id": "g-20261204100000-ab12", "login": "alice@acme.example", "group": "aws-admin-platform",
        "minutes": 60, "status": status, "reason": "INC-42", "requested_by": "alice@acme.example",
        "approvals": [], "break_glass": false})
}

#[tokio::test]
async fn the_cli_signs_in_with_the_device_flow_and_calls_the_api_with_the_id_token() {
    let okta = okta().await;
    let api = MockServer::start().await;
    let bearer = format!("Bearer {ID_TOKEN}");
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(header("authorization", bearer.as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"id": "00u-carol", "login": "carol@acme.example", "groups": []}),
            ),
        )
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/grants/g-20261204100000-ab12"))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(grant_json("pending")))
        .mount(&api)
        .await;
    // The approval carries exactly what was shown.
    Mock::given(method("POST"))
        .and(path("/grants/g-20261204100000-ab12/approve"))
        .and(header("authorization", bearer.as_str()))
        .and(body_json(json!({"expect": {"login": "alice@acme.example", "group": "aws-admin-platform", "minutes": 60}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(grant_json("active")))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/grants"))
        .and(body_json(json!({"group": "aws-admin-platform", "minutes": 90, "reason": "INC-42", "user": null, "break_glass": false})))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": "requester carol@acme.example is not in any of aws-admin-platform's requesters (oncall)"})))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/grants/g-gone/deny"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "unauthorized"})))
        .mount(&api)
        .await;

    let home = std::env::temp_dir().join(local_aws::unique("idc-guard-home"));
    let token_file = home.join(".idc-guard/okta-id-token.json");
    let run = |args: &[&str]| client(&api, &okta, &home, args);
    let out = run(&["login"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("activate?user_code=WDJBMJHT") && t.contains("carol@acme.example (00u-carol)"),
        "{t}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the user reads the token");
    }
    // Signed in: no second device flow; the approval shows the grant, then approves it.
    let out = run(&["approve", "g-20261204100000-ab12", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("active"), "{}", text(&out));
    assert!(!text(&out).contains("Sign in with Okta"), "{}", text(&out));
    // A refusal shows the rule that refused.
    let out =
        run(&["grant", "--group", "aws-admin-platform", "--for", "90m", "--reason", "INC-42"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("not in any of aws-admin-platform's requesters (oncall) (403)"),
        "{}",
        text(&out)
    );
    // A duration that is not whole minutes never leaves the laptop.
    let out = run(&["grant", "--group", "g", "--for", "90s", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("whole minutes"), "{}", text(&out));
    // The API no longer accepts the token: it is forgotten, and the message says what to do.
    let out = run(&["deny", "g-gone"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("run `idc-guard login` again"), "{}", text(&out));
    assert!(!token_file.exists());
    // An API URL that would carry the token in the clear is refused before anything is sent.
    let mut c = idc_guard();
    c.env("IDC_GUARD_GRANTS_URL", "http://grants.example.com")
        .env("IDC_GUARD_OKTA_ORG_URL", okta.uri())
        .env("IDC_GUARD_OKTA_CLIENT_ID", "x")
        .env("HOME", &home)
        .arg("grants");
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("must be https"), "{}", text(&out));
}

/// `review decide`: the decision goes to the grants API with the person's ID token (the CLI
/// cannot change Okta itself); a refusal is an error with the rule.
#[tokio::test]
async fn review_decide_sends_the_decision_with_the_id_token() {
    let okta = okta().await;
    let api = MockServer::start().await;
    let bearer = format!("Bearer {ID_TOKEN}");
    Mock::given(method("POST"))
        .and(path("/reviews"))
        .and(header("authorization", bearer.as_str()))
        .and(body_json(json!({"user": "alice@acme.example", "group": "aws-admin-platform",
            "decision": "remove", "reason": "unused for 120 days"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "r-1",
            "at": "2026-12-04T10:00:00Z", "decision": "remove", "login": "alice@acme.example",
            "group": "aws-admin-platform", "reviewer_login": "carol@acme.example",
            "outcome": "membership removed in Okta (SCIM removes it in IAM Identity Center)"})))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/reviews"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"error": "nobody reviews their own access"})),
        )
        .mount(&api)
        .await;
    let home = std::env::temp_dir().join(local_aws::unique("idc-guard-home"));
    let run = |args: &[&str]| client(&api, &okta, &home, args);
    let decide = |user: &str, reason: &str| {
        run(&[
            "review",
            "decide",
            "remove",
            "--user",
            user,
            "--group",
            "aws-admin-platform",
            "--reason",
            reason,
        ])
    };
    let out = decide("alice@acme.example", "unused for 120 days");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("remove alice@acme.example in aws-admin-platform: membership removed"),
        "{}",
        text(&out)
    );
    let out = decide("carol@acme.example", "mine");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nobody reviews their own access"), "{}", text(&out));
    let out = run(&["review", "decide", "delete", "--user", "a", "--group", "g", "--reason", "r"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown decision: {}", text(&out));
}
