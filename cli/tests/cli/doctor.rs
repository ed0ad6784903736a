//! `idc-guard doctor` through the real binary: Okta's Management API as a wiremock server from
//! the fixtures in `events/okta-api/`, local state (no managed groups yet).

use local_aws::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::idc_guard;

fn fixture(path: &str) -> Value {
    serde_json::from_str(&event_file(path)).unwrap()
}

async fn okta(one_factor_catch_all: bool) -> MockServer {
    let server = MockServer::start().await;
    let app = fixture("okta-api/app-aws-iam-identity-center.json");
    let mut rules = fixture("okta-api/access-policy-rules.json");
    if one_factor_catch_all {
        rules[1]["actions"]["appSignOn"] = json!({"access": "ALLOW", "verificationMethod": {"factorMode": "1FA", "type": "ASSURANCE"}});
    }
    for (p, body) in [
        ("/api/v1/apps".to_owned(), json!([app])),
        (
            "/api/v1/apps/0oa1b2c3d4e5AWSidc/credentials/keys".into(),
            fixture("okta-api/app-credentials-keys.json"),
        ),
        (
            "/.well-known/okta-organization".into(),
            fixture("okta-api/well-known-okta-organization.json"),
        ),
        ("/api/v1/policies/rst1aws0idcPolicy7d7/rules".into(), rules),
        (
            "/api/v1/apps/0oa1b2c3d4e5AWSidc/group-push/mappings".into(),
            fixture("okta-api/group-push-mappings.json"),
        ),
        ("/api/v1/apps/0oa1b2c3d4e5AWSidc/groups".into(), fixture("okta-api/app-groups.json")),
        ("/api/v1/apps/0oa1b2c3d4e5AWSidc/users".into(), fixture("okta-api/app-users.json")),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    server
}

fn policy_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("idc-guard-doctor"));
    std::fs::create_dir_all(&dir).unwrap();
    let rule = "[[rule]]\ngroups = \"aws-core-*\"\npermission_sets = [\"ReadOnly\"]\ntargets = { all_accounts = true }\ntier = \"core\"\n";
    std::fs::write(dir.join("access-policy.toml"), rule).unwrap();
    dir
}

#[tokio::test]
async fn doctor_names_the_failing_check_and_its_fix_and_exits_2() {
    let okta = okta(true).await;
    let dir = policy_dir();
    let out = idc_guard()
        .args(["doctor", "--policy", "access-policy.toml"])
        .current_dir(&dir)
        .env("IDC_GUARD_OKTA_ORG_URL", okta.uri())
        .env("IDC_GUARD_OKTA_API_TOKEN", "okta-api-token-Xy7")
        .env_remove("IDC_GUARD_OKTA_API_SECRET_ARN")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("PASS  saml-trust"), "{t}");
    assert!(t.contains("FAIL  mfa-posture"), "{t}");
    assert!(t.contains("Catch-all Rule (catch-all)"), "{t}");
    assert!(t.contains("fix: In Okta: Security > Authentication Policies"), "{t}");
    assert!(t.contains("no managed groups yet"), "{t}");
    assert!(!t.contains("okta-api-token-Xy7"), "the credential never printed");

    let healthy = self::okta(false).await;
    let out = idc_guard()
        .args(["doctor", "--policy", "access-policy.toml", "--format", "json"])
        .current_dir(&dir)
        .env("IDC_GUARD_OKTA_ORG_URL", healthy.uri())
        .env("IDC_GUARD_OKTA_API_TOKEN", "okta-api-token-Xy7")
        .env_remove("IDC_GUARD_OKTA_API_SECRET_ARN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let checks: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(checks.len(), 3);
    assert!(checks.iter().all(|c| c["status"] == "pass"), "{checks:?}");
}

#[tokio::test]
async fn a_revoked_okta_credential_exits_1_not_2() {
    // Defect: a revoked token gave four "could not be checked" warnings with exit 2, the code of
    // a key 40 days from expiry, so a script could not tell a broken credential from a warning.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"errorCode": "E0000011",
            "errorSummary": "Invalid token provided"})))
        .mount(&server)
        .await;
    let dir = policy_dir();
    let out = idc_guard()
        .args(["doctor", "--policy", "access-policy.toml", "--format", "json"])
        .current_dir(&dir)
        .env("IDC_GUARD_OKTA_ORG_URL", server.uri())
        .env("IDC_GUARD_OKTA_API_TOKEN", "okta-api-token-revoked")
        .env_remove("IDC_GUARD_OKTA_API_SECRET_ARN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let checks: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(checks.iter().any(|c| c["could_not_check"] == true), "{checks:?}");
    assert!(!text(&out).contains("okta-api-token-revoked"));
}

#[test]
fn doctor_without_an_okta_credential_is_a_clear_error() {
    let dir = policy_dir();
    let out = idc_guard()
        .args([
            "doctor",
            "--policy",
            "access-policy.toml",
            "--okta-org-url",
            "https://acme.okta.com",
        ])
        .current_dir(&dir)
        .env_remove("IDC_GUARD_OKTA_API_TOKEN")
        .env_remove("IDC_GUARD_OKTA_API_SECRET_ARN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no Okta credential"), "{}", text(&out));
}
