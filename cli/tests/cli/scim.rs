//! `idc-guard scim-token stage | status | confirm` through the real binary against the local AWS
//! stand-in. The token goes in on stdin and never comes out.

use local_aws::*;

use super::idc_guard;

const TOKEN: &str = "scim-token-Qw3Er5Ty7Ui9Op1";

#[test]
fn stage_refuses_a_token_on_the_command_line_without_echoing_it() {
    let out = run_with_stdin(
        idc_guard().args([
            "scim-token",
            "stage",
            "--secret",
            "arn:aws:secretsmanager:us-east-1:1:secret:x",
            TOKEN,
        ]),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("never pass the token on the command line"), "{t}");
    assert!(!t.contains(TOKEN), "the refused token was echoed: {t}");
}

#[tokio::test]
async fn stage_from_stdin_then_status_and_confirm() {
    let sdk = local_aws().await;
    // The SCIM endpoint (stood in for on loopback): stage probes the token before staging it.
    let scim = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path(
        "/a1b2c3d4-tenant/scim/v2/ServiceProviderConfig",
    ))
    .and(wiremock::matchers::header("authorization", format!("Bearer {TOKEN}").as_str()))
    .respond_with(wiremock::ResponseTemplate::new(200))
    .mount(&scim)
    .await;
    wiremock::Mock::given(wiremock::matchers::path(
        "/a1b2c3d4-tenant/scim/v2/ServiceProviderConfig",
    ))
    .respond_with(wiremock::ResponseTemplate::new(401))
    .mount(&scim)
    .await;
    let endpoint = format!("{}/a1b2c3d4-tenant/scim/v2", scim.uri());
    let endpoint = endpoint.as_str();
    let issued = chrono::Utc::now() - chrono::Duration::days(30);
    let current = serde_json::json!({"token": "old-token-value", "scim_endpoint": endpoint, "issued_at": issued,
        "expires_at": issued + chrono::Duration::days(365)});
    let arn = create_secret(&sdk, &current.to_string()).await;
    let table = create_state_table(&sdk).await;

    // A token the endpoint rejects is refused, and nothing is staged.
    let out = run_with_stdin(
        idc_guard().args(["scim-token", "stage", "--secret", &arn, "--no-rotate"]),
        "a-revoked-token\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("rejected this token (401): nothing staged"), "{}", text(&out));
    assert!(!text(&out).contains("a-revoked-token"));
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    assert!(
        sm.get_secret_value().secret_id(&arn).version_stage("AWSPENDING").send().await.is_err()
    );

    let out = run_with_stdin(
        idc_guard().args(["scim-token", "stage", "--secret", &arn, "--no-rotate"]),
        &format!("{TOKEN}\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains(TOKEN));
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let pending =
        sm.get_secret_value().secret_id(&arn).version_stage("AWSPENDING").send().await.unwrap();
    let staged: serde_json::Value = serde_json::from_str(pending.secret_string().unwrap()).unwrap();
    assert_eq!(staged["token"], TOKEN);
    assert_eq!(staged["scim_endpoint"], endpoint, "the endpoint defaults to the current token's");
    assert!(staged["expires_at"].as_str().unwrap() > staged["issued_at"].as_str().unwrap());

    let out = run_with_stdin(
        idc_guard().args([
            "scim-token",
            "status",
            "--secret",
            &arn,
            "--no-probe",
            "--format",
            "json",
        ]),
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["age_days"], 30);
    assert!(status["pending_version"].as_str().is_some());
    assert!(!text(&out).contains("old-token-value") && !text(&out).contains(TOKEN));

    let out = run_with_stdin(
        idc_guard().args(["scim-token", "confirm", "--secret", &arn, "--no-rotate"]),
        "",
    );
    assert_eq!(out.status.code(), Some(1), "needs the shared state table: {}", text(&out));
    let out = run_with_stdin(
        idc_guard()
            .args(["scim-token", "confirm", "--secret", &arn, "--no-rotate"])
            .env("IDC_GUARD_STATE_TABLE", &table),
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let version = status["pending_version"].as_str().unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let item = ddb
        .get_item()
        .table_name(&table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("scim-token".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(format!("confirmed#{version}")))
        .send()
        .await
        .unwrap();
    assert!(item.item.is_some(), "the confirmation is where the rotation function looks");

    let out =
        run_with_stdin(idc_guard().args(["scim-token", "stage", "--secret", &arn]), "two words\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out).contains("two words"));
}
