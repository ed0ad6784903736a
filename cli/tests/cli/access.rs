//! `idc-guard policy check | plan | apply | review` as a person runs them: the real binary, the
//! standard AWS credential chain, against the local AWS stand-in.

use std::path::PathBuf;
use std::process::{Output, Stdio};

use local_aws::*;

use super::idc_guard;

struct Cli {
    env: Vec<(&'static str, String)>,
    dir: PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = idc_guard();
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

#[tokio::test]
async fn policy_check_plan_apply_and_review() {
    let (sdk, _, env) = isolated_account_with_env().await;
    let org = Org::create(&sdk).await;
    let workloads = org.ou(&org.root, "workloads").await;
    let account = org.account("payments-prod", &workloads, &[("team", "payments")]).await;
    let idc = Idc::open(&sdk).await;
    let group = idc.group("aws-team-payments").await;
    idc.ids
        .create_user()
        .identity_store_id(&idc.store_id)
        .user_name("alice@acme.example")
        .display_name("Alice")
        .name(
            aws_sdk_identitystore::types::Name::builder()
                .given_name("Alice")
                .family_name("L")
                .build(),
        )
        .send()
        .await
        .map(|u| u.user_id)
        .map(|user_id| {
            let ids = idc.ids.clone();
            let store = idc.store_id.clone();
            let group = group.clone();
            async move {
                ids.create_group_membership()
                    .identity_store_id(store)
                    .group_id(group)
                    .member_id(aws_sdk_identitystore::types::MemberId::UserId(user_id))
                    .send()
                    .await
                    .unwrap();
            }
        })
        .unwrap()
        .await;

    let dir = std::env::temp_dir().join(unique("idc-guard-cli"));
    // The default policy path is the deployed layer's folder: policy/access-policy.toml.
    std::fs::create_dir_all(dir.join("policy")).unwrap();
    std::fs::write(
        dir.join("policy/access-policy.toml"),
        r#"
[[permission_set]]
name = "TeamDeveloper"
session_duration = "PT4H"
managed_policies = ["arn:aws:iam::aws:policy/PowerUserAccess"]

[[rule]]
groups = "aws-team-{team}"
permission_sets = ["TeamDeveloper"]
tier = "team"
review_every = "30d"
targets = { tags = { team = "{team}" } }
"#,
    )
    .unwrap();
    // The account access manager, which the local AWS stand-in lacks: a stand-in answering its
    // REST API (the real SDK client, through its service-specific endpoint setting). The team
    // group is entitled to one role outside IAM Identity Center's permission sets.
    let account_access = wiremock::MockServer::start().await;
    let app = "arn:aws:account-access::123456789012:application/app-1";
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/applications-list"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "applications": [{"applicationArn": app, "createdAt": "2026-09-01T10:00:00Z",
                "updatedAt": "2026-09-01T10:00:00Z"}]})))
        .mount(&account_access)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/entitlements-list"))
        .and(wiremock::matchers::body_partial_json(serde_json::json!({"applicationArn": app,
            "filter": {"principalRole": {"principal": {"identityCenter": {"groupId": group}}}}})))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "entitlements": [{"entitlementId": "ent-7f3a", "createdAt": "2026-09-02T10:00:00Z",
                "entitlement": {"principalRole": {"principal": {"identityCenter": {"groupId": group}},
                    "roleArn": format!("arn:aws:iam::{account}:role/OpsBreakGlass"), "account": account}}}]})))
        .mount(&account_access)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/entitlements-list"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"entitlements": []})),
        )
        .mount(&account_access)
        .await;
    let mut env = env;
    env.push(("AWS_ENDPOINT_URL", std::env::var("AWS_ENDPOINT_URL").unwrap()));
    env.push(("AWS_ENDPOINT_URL_ACCOUNT_ACCESS", account_access.uri()));
    env.push(("AWS_REGION", "us-east-1".into()));
    let cli = Cli { env, dir: dir.clone() };

    let out = cli.run(&["policy", "check", "policy/access-policy.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("ok (1 permission sets, 1 rules, 0 warnings)"));

    let out = cli.run(&["plan"]);
    assert_eq!(out.status.code(), Some(2), "changes pending: {}", text(&out));
    let t = text(&out);
    assert!(t.contains("create permission set TeamDeveloper"), "{t}");
    assert!(t.contains("+ aws-team-payments") && t.contains(&account), "{t}");

    // A laptop's own state holds none of a deployment's revocations or grants: changing IAM
    // Identity Center from it is refused, with how to point at the deployment's table.
    let out = cli.run(&["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("IDC_GUARD_STATE_TABLE"), "{}", text(&out));
    assert!(idc.assignments(&group).await.is_empty(), "nothing applied");
    // No deployment exists (no session deny anywhere): --standalone says the file is the state.
    let out = cli.run(&["apply", "--standalone"]);
    assert_eq!(out.status.code(), Some(1), "refuses without a terminal or --yes");
    assert!(text(&out).contains("pass --yes"));
    assert!(idc.assignments(&group).await.is_empty(), "nothing applied");

    let out = cli.run(&["apply", "--standalone", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Applied: 1 created, 0 deleted, 0 failed"), "{}", text(&out));
    assert_eq!(idc.assignments(&group).await, vec![("TeamDeveloper".to_string(), account.clone())]);

    let out = cli.run(&["plan", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["creates"].as_array().unwrap().len(), 0);

    let out = cli.run(&["review"]);
    assert_eq!(out.status.code(), Some(2), "a review is due: {}", text(&out));
    let t = text(&out);
    assert!(t.contains("tier team (review every 30 days)"), "{t}");
    assert!(t.contains("due: never reviewed") && t.contains("alice@acme.example"), "{t}");
    assert!(t.contains("TeamDeveloper@payments-prod"), "{t}");

    let out = cli.run(&["review", "--mark-reviewed", "aws-team-payments"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("0 reviews due"));
    assert!(dir.join(".idc-guard/state.db").exists(), "local state kept next to the policy");

    // Incident response, dry run: what `revoke` would cover for Alice, and nothing changed.
    let out = cli.run(&["revoke", "--user", "alice@acme.example", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "an entitlement is not covered: {}", text(&out));
    let t = text(&out);
    assert!(t.contains("would deny live sessions in 1 permission set(s)"), "{t}");
    assert!(t.contains("via group aws-team-payments"), "{t}");
    assert!(
        t.contains("NOT covered: account access manager entitlement ent-7f3a")
            && t.contains("OpsBreakGlass"),
        "{t}"
    );
    assert!(
        t.contains("TeamDeveloper") && t.contains(&account) && t.contains("session PT4H"),
        "{t}"
    );
    assert!(t.contains("released no earlier than"), "{t}");
    let out = cli.run(&["revoke", "--user", "nobody@acme.example", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("not a user in IAM Identity Center"), "{}", text(&out));
    // A change from local state is refused even for incident response: a local revoke would be
    // undone by the deployment's next reconcile.
    let out = cli.run(&["revoke", "--user", "alice@acme.example"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("IDC_GUARD_STATE_TABLE"), "{}", text(&out));

    // `revoke --status` against the deployment's table: the evidence record, what is not
    // covered yet, and what CloudTrail showed (the sign-in checks' revoked-session-used).
    let table = create_state_table(&sdk).await;
    let store = idc_guard::adapters::DynamoStateStore::new(&sdk, &table);
    let user_id = idc
        .ids
        .get_user_id()
        .identity_store_id(&idc.store_id)
        .alternate_identifier(aws_sdk_identitystore::types::AlternateIdentifier::UniqueAttribute(
            aws_sdk_identitystore::types::UniqueAttribute::builder()
                .attribute_path("userName")
                .attribute_value(aws_smithy_types::Document::String("alice@acme.example".into()))
                .build()
                .unwrap(),
        ))
        .send()
        .await
        .unwrap()
        .user_id;
    let revoked_at: chrono::DateTime<chrono::Utc> = "2026-12-01T10:00:00Z".parse().unwrap();
    let record = idc_guard::records::RevokedSessions {
        user_id: user_id.clone(),
        login: "alice@acme.example".into(),
        permission_sets: vec!["arn:aws:sso:::permissionSet/ssoins-1/ps-1".into()],
        accounts: vec![account.clone()],
        revoked_at,
        release_after: revoked_at + chrono::Duration::hours(5),
        reason: "Okta user.lifecycle.deactivate".into(),
        groups: vec![group.clone()],
        unprovisioned: vec![idc_guard::records::Unprovisioned {
            permission_set_arn: "arn:aws:sso:::permissionSet/ssoins-1/ps-1".into(),
            permission_set: "TeamDeveloper".into(),
            account_id: account.clone(),
            reason: "provisioning failed".into(),
        }],
        not_covered: vec![],
        access_ended_at: None,
        grant_end: false,
    };
    idc_guard::records::save(&store, &record).await.unwrap();
    let proof = idc_guard::alert::Alert::new(
        "revoked-session-used",
        "k",
        revoked_at + chrono::Duration::minutes(30),
        idc_guard::alert::Severity::Critical,
        "alice used AWS after their sessions were revoked",
        Some("alice@acme.example".into()),
        "AWS recorded a successful s3:ListBuckets 30 minutes after the deny",
        serde_json::json!({"user_id": user_id}),
        vec![],
        "",
    );
    let delivery = idc_guard::records::AlertDelivery {
        id: proof.id.clone(),
        detector: proof.detector.clone(),
        sinks: Some(Default::default()),
        alert: serde_json::to_value(&proof).unwrap(),
    };
    let mut item = idc_guard::records::Record::to_item(&delivery);
    item.pk = "alert#signin-anomaly".into();
    idc_guard::store::StateStore::put(&store, item).await.unwrap();
    let mut with_table = Cli { env: cli.env.clone(), dir: dir.clone() };
    with_table.env.push(("IDC_GUARD_STATE_TABLE", table.clone()));
    let out = with_table.run(&["revoke", "--user", "alice@acme.example", "--status"]);
    assert_eq!(out.status.code(), Some(2), "an account not yet provisioned: {}", text(&out));
    let t = text(&out);
    assert!(t.contains("NOT yet provisioned: TeamDeveloper in") && t.contains(&account), "{t}");
    assert!(t.contains("CloudTrail: AWS recorded a successful s3:ListBuckets"), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn policy_check_reports_errors_with_positions_and_exit_1() {
    let dir = std::env::temp_dir().join(unique("idc-guard-cli-check"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.toml"),
        "[[rule]]\ngroups = \"aws-{x\"\npermission_sets = [\"Missing\"]\n",
    )
    .unwrap();
    let out = idc_guard().args(["policy", "check", "bad.toml"]).current_dir(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("bad.toml:2:10: error: groups: unclosed '{'"), "{t}");
    assert!(t.contains("bad.toml:3:20: error: unknown permission set \"Missing\""), "{t}");
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../access-policy.example.toml");
    let out = idc_guard().args(["policy", "check"]).arg(example).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An estate made by hand (not by idc-guard): `policy import` writes its policy, the first
/// `plan` changes nothing, and the ledger answers who can reach an account, what a person can
/// reach, and what goes unused.
#[tokio::test]
async fn policy_import_then_plan_changes_nothing_and_the_ledger_answers() {
    let (sdk, _, env) = isolated_account_with_env().await;
    let org = Org::create(&sdk).await;
    let prod = org.ou(&org.root, "prod").await;
    let dev = org.ou(&org.root, "dev").await;
    let pay = org.account("payments-prod", &prod, &[("team", "payments")]).await;
    let search = org.account("search-prod", &prod, &[("team", "search")]).await;
    let pay_dev = org.account("payments-dev", &dev, &[("team", "payments")]).await;
    let idc = Idc::open(&sdk).await;
    idc.permission_set("ReadOnly", "PT8H", "arn:aws:iam::aws:policy/ReadOnlyAccess").await;
    idc.permission_set("PowerUser", "PT4H", "arn:aws:iam::aws:policy/PowerUserAccess").await;
    idc.permission_set("Admin", "PT1H", "arn:aws:iam::aws:policy/AdministratorAccess").await;
    let core = idc.group("aws-core-readonly").await;
    let team = idc.group("aws-team-payments").await;
    let admin = idc.group("aws-admin-prod").await;
    let alice = idc.user("alice@acme.example").await;
    let bob = idc.user("bob@acme.example").await;
    for u in [&alice, &bob] {
        idc.add_member(&core, u).await;
    }
    idc.add_member(&team, &alice).await;
    idc.add_member(&admin, &bob).await;
    for a in [&pay, &search, &pay_dev] {
        idc.assign(&core, "ReadOnly", a).await;
    }
    for a in [&pay, &pay_dev] {
        idc.assign(&team, "PowerUser", a).await;
    }
    for a in [&pay, &search] {
        idc.assign(&admin, "Admin", a).await;
    }
    // A direct assignment made by hand: in the ledger, listed (not imported) by the import.
    let carol = idc.user("carol@acme.example").await;
    idc.assign_user(&carol, "Admin", &pay).await;
    // The account access manager has no entitlements here (a stand-in answering its API).
    let account_access = wiremock::MockServer::start().await;
    for path in ["/applications-list", "/entitlements-list"] {
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .and(wiremock::matchers::path(path))
            .respond_with(
                wiremock::ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"applications": [], "entitlements": []})),
            )
            .mount(&account_access)
            .await;
    }
    let dir = std::env::temp_dir().join(unique("idc-guard-import"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut env = env;
    env.push(("AWS_ENDPOINT_URL", std::env::var("AWS_ENDPOINT_URL").unwrap()));
    env.push(("AWS_ENDPOINT_URL_ACCOUNT_ACCESS", account_access.uri()));
    env.push(("AWS_REGION", "us-east-1".into()));
    let cli = Cli { env, dir: dir.clone() };

    // Before any policy: the ledger reads, no assignment explained by a rule.
    let out = cli.run(&["access", "who", "--account", &pay, "--format", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no policy at"), "{}", text(&out));
    let csv = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(csv.lines().filter(|l| l.contains(",outside the policy,")).count(), 4, "{csv}");
    assert_eq!(csv.lines().filter(|l| l.contains(",hand-made (direct),")).count(), 1, "{csv}");

    let out = cli.run(&["policy", "import"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("direct assignment: carol@acme.example holds Admin"),
        "{}",
        text(&out)
    );
    let policy = std::fs::read_to_string(dir.join("policy/access-policy.toml")).unwrap();
    assert!(policy.contains("all_accounts = true"), "{policy}");
    assert!(policy.contains("team = \"payments\""), "{policy}");
    assert!(policy.contains(&prod), "the admins' OU: {policy}");
    let out = cli.run(&["policy", "import"]);
    assert_eq!(out.status.code(), Some(1), "never overwrites a policy: {}", text(&out));

    let out = cli.run(&["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{policy}", text(&out));
    assert!(text(&out).contains("No changes"), "{}", text(&out));

    let out = cli.run(&["access", "who", "--account", &pay, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut seen: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {} {} {}", r["user"], r["group"], r["permission_set"], r["why"]))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "\"alice@acme.example\" \"aws-core-readonly\" \"ReadOnly\" \"rule aws-core-readonly\"",
            "\"alice@acme.example\" \"aws-team-payments\" \"PowerUser\" \"rule aws-team-payments\"",
            "\"bob@acme.example\" \"aws-admin-prod\" \"Admin\" \"rule aws-admin-prod\"",
            "\"bob@acme.example\" \"aws-core-readonly\" \"ReadOnly\" \"rule aws-core-readonly\"",
            "\"carol@acme.example\" null \"Admin\" \"hand-made (direct)\"",
        ]
    );
    assert!(dir.join(".idc-guard/ledger.json").exists(), "the snapshot is kept");

    let out = cli.run(&["access", "what", "--user", "BOB@acme.example", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let csv = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(csv.starts_with("user,user_id,via,group"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 3 + 2, "header, ReadOnly in 3, Admin in 2: {csv}");

    // Nothing was used yet: everything is unused (exit 2, like a finding).
    let out = cli.run(&["access", "unused", "--days", "90"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("11 row(s)"), "{}", text(&out));

    let out = cli.run(&["access", "what", "--user", "nobody@acme.example"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("not a user"), "{}", text(&out));
    let out = cli.run(&["access", "who", "--account", "12345"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("12-digit"), "{}", text(&out));
}

/// `access backfill`: CloudTrail's LookupEvents history (a stand-in answering its JSON API) into
/// the local state's last uses, which the ledger then joins; a period LookupEvents does not keep
/// is refused.
#[tokio::test]
async fn access_backfill_reads_portal_history_into_last_uses() {
    let trail = wiremock::MockServer::start().await;
    let mut event: serde_json::Value = serde_json::from_str(include_str!(
        "../../../events/cloudtrail/sso-get-role-credentials.json"
    ))
    .unwrap();
    event["eventTime"] = (chrono::Utc::now() - chrono::Duration::hours(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
        .into();
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::header("x-amz-target", "CloudTrail_20131101.LookupEvents"))
        .and(wiremock::matchers::body_string_contains("sso.amazonaws.com"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "Events": [{"EventId": event["eventID"], "EventName": "GetRoleCredentials",
                "EventSource": "sso.amazonaws.com", "CloudTrailEvent": event.to_string()}]})))
        .mount(&trail)
        .await;
    let dir = std::env::temp_dir().join(unique("idc-guard-backfill"));
    std::fs::create_dir_all(&dir).unwrap();
    let cli = Cli {
        env: vec![
            ("AWS_ENDPOINT_URL_CLOUDTRAIL", trail.uri()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("IDC_GUARD_STATE_TABLE", String::new()),
        ],
        dir: dir.clone(),
    };
    std::fs::create_dir_all(dir.join("policy")).unwrap();
    std::fs::write(dir.join("policy/access-policy.toml"), "").unwrap();
    let out = cli.run(&["access", "backfill", "--days", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 last use(s) written"), "{}", text(&out));
    // Two one-day windows: the same event read twice is written once.
    assert_eq!(trail.received_requests().await.unwrap().len(), 2);
    let out = cli.run(&["access", "backfill", "--days", "91"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("90 days"), "{}", text(&out));
}
