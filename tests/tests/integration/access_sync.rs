//! Access policy → IAM Identity Center assignments, end to end against the local AWS stand-in:
//! real sso-admin, identitystore, Organizations, DynamoDB, SNS and SQS through the AWS SDK.

use idc_guard::access::ports::{Backoff, Requeue};
use std::collections::BTreeSet;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use idc_guard::access::Policy;
use idc_guard::access::ports::IdentityCenter;
use idc_guard::access::reconcile::{Limits, Reconciler, RunOptions, Scope};
use idc_guard::access::sync::{AccessSyncHandler, Confirmed};
use idc_guard::adapters::DynamoStateStore;
use idc_guard::adapters::SnsAlertSink;
use idc_guard::adapters::{SdkIdentityCenter, SdkOrganizations};
use local_aws::*;
use serde_json::{Value, json};

/// The estate every test starts from, in an account of its own.
struct World {
    sdk: aws_config::SdkConfig,
    org: Org,
    idc: Idc,
    ou_platform: String,
    ou_sandbox: String,
    ou_workloads: String,
    pay_prod: String,
    data_prod: String,
    platform_shared: String,
    sandbox: String,
    suspended: String,
    core: String,
    payments: String,
    data: String,
    admin: String,
    marketing: String,
    table: String,
    topic: String,
    alert_queue: String,
}

impl World {
    async fn new() -> World {
        let (sdk, _) = isolated_account().await;
        let org = Org::create(&sdk).await;
        let ou_workloads = org.ou(&org.root, "workloads").await;
        let ou_platform = org.ou(&org.root, "platform").await;
        let ou_platform_net = org.ou(&ou_platform, "platform-network").await;
        let ou_sandbox = org.ou(&org.root, "sandbox").await;
        let pay_prod = org.account("payments-prod", &ou_workloads, &[("team", "payments")]).await;
        let data_prod = org.account("data-prod", &ou_workloads, &[("team", "data")]).await;
        let platform_shared = org.account("platform-shared", &ou_platform_net, &[]).await;
        let sandbox = org.account("sandbox-1", &ou_sandbox, &[("team", "payments")]).await;
        let suspended = org.account("payments-old", &ou_workloads, &[("team", "payments")]).await;
        org.client.close_account().account_id(&suspended).send().await.expect("close account");
        let idc = Idc::open(&sdk).await;
        let core = idc.group("aws-core-readers").await;
        let payments = idc.group("aws-team-payments").await;
        let data = idc.group("aws-team-data").await;
        let admin = idc.group("aws-admin-platform").await;
        let marketing = idc.group("marketing-all").await;
        let table = create_state_table(&sdk).await;
        let (topic, alert_queue) = alert_topic(&sdk).await;
        World {
            sdk,
            org,
            idc,
            ou_platform,
            ou_sandbox,
            ou_workloads,
            pay_prod,
            data_prod,
            platform_shared,
            sandbox,
            suspended,
            core,
            payments,
            data,
            admin,
            marketing,
            table,
            topic,
            alert_queue,
        }
    }

    fn policy_text(
        &self,
        max_deletions: usize,
        admin_session: &str,
        extra_admin_policy: bool,
    ) -> String {
        let admin_policies = if extra_admin_policy {
            r#"["arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/AWSSupportAccess"]"#
        } else {
            r#"["arn:aws:iam::aws:policy/AdministratorAccess"]"#
        };
        format!(
            r#"
[settings]
max_deletions = {max_deletions}

[[permission_set]]
name = "ReadOnly"
description = "Read-only access (core tier)"
session_duration = "PT8H"
managed_policies = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]

[[permission_set]]
name = "TeamDeveloper"
session_duration = "PT4H"
managed_policies = ["arn:aws:iam::aws:policy/PowerUserAccess"]
inline_policy = '{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"iam:*","Resource":"*"}}]}}'

[[permission_set]]
name = "Administrator"
session_duration = "{admin_session}"
managed_policies = {admin_policies}

[[rule]]
name = "core"
groups = "aws-core-*"
permission_sets = ["ReadOnly"]
tier = "core"
review_every = "90d"
targets = {{ all_accounts = true }}
exclude = {{ ous = ["{sandbox}"] }}

[[rule]]
name = "team"
groups = "aws-team-{{team}}"
permission_sets = ["TeamDeveloper"]
tier = "team"
review_every = "30d"
targets = {{ tags = {{ team = "{{team}}" }} }}

[[rule]]
name = "admin"
groups = "aws-admin-platform"
permission_sets = ["Administrator"]
tier = "admin"
review_every = "14d"
targets = {{ ous = ["{platform}"], accounts = ["{mgmt}"] }}
"#,
            sandbox = self.ou_sandbox,
            platform = self.ou_platform,
            mgmt = self.org.management,
        )
    }

    fn policy(&self, max_deletions: usize) -> Policy {
        let text = self.policy_text(max_deletions, "PT1H", false);
        let (p, d) = Policy::check(&text, None);
        p.unwrap_or_else(|| panic!("{d:?}"))
    }

    fn sync(
        &self,
        policy: Policy,
    ) -> AccessSyncHandler<SdkIdentityCenter, SdkOrganizations, DynamoStateStore, SnsAlertSink>
    {
        self.sync_with(SdkIdentityCenter::new(&self.sdk), policy)
    }

    fn sync_with<I: IdentityCenter>(
        &self,
        idc: I,
        policy: Policy,
    ) -> AccessSyncHandler<I, SdkOrganizations, DynamoStateStore, SnsAlertSink> {
        AccessSyncHandler {
            system_log: None,
            idc,
            org: SdkOrganizations::new(&self.sdk),
            store: DynamoStateStore::new(&self.sdk, &self.table),
            sink: SnsAlertSink::new(&self.sdk, &self.topic),
            policy,
            instance_arn: None,
            limits: fast_limits(),
            requeue: None,
            account_access: None,
        }
    }

    fn expected_full(&self) -> Vec<(String, Vec<(String, String)>)> {
        let v = |pairs: &[(&str, &String)]| {
            let mut v: Vec<_> = pairs.iter().map(|(p, a)| (p.to_string(), (*a).clone())).collect();
            v.sort();
            v
        };
        vec![
            (
                self.core.clone(),
                v(&[
                    ("ReadOnly", &self.pay_prod),
                    ("ReadOnly", &self.data_prod),
                    ("ReadOnly", &self.platform_shared),
                ]),
            ),
            (
                self.payments.clone(),
                v(&[("TeamDeveloper", &self.pay_prod), ("TeamDeveloper", &self.sandbox)]),
            ),
            (self.data.clone(), v(&[("TeamDeveloper", &self.data_prod)])),
            (
                self.admin.clone(),
                v(&[
                    ("Administrator", &self.platform_shared),
                    ("Administrator", &self.org.management),
                ]),
            ),
            (self.marketing.clone(), vec![]),
        ]
    }

    async fn assert_full_state(&self) {
        for (group, expected) in self.expected_full() {
            assert_eq!(self.idc.assignments(&group).await, expected, "group {group}");
        }
    }
}

/// The stand-in answers at once: no need to pace or poll slowly.
fn fast_limits() -> Limits {
    Limits {
        requests_per_second: 1000.0,
        poll_interval: Duration::from_millis(5),
        ..Limits::default()
    }
}

/// SQS records as the Lambda service hands them over, built from Okta events.
fn sqs_event(events: &[Value]) -> SqsEvent {
    let records: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({
                "messageId": format!("m-{i}-{}", e["uuid"].as_str().unwrap_or("x")),
                "receiptHandle": "rh",
                "body": e.to_string(),
                "attributes": {"MessageDeduplicationId": e["uuid"], "MessageGroupId": "g", "ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:idc-guard-events.fifo",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// One receive as Lambda's SQS event source makes it: up to 10 messages with their system
/// attributes, in the shape of the function's event. `None` when nothing is visible.
async fn receive_batch(sqs: &aws_sdk_sqs::Client, queue: &str, arn: &str) -> Option<SqsEvent> {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let messages = sqs
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    if messages.is_empty() {
        return None;
    }
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attrs: serde_json::Map<String, Value> = m
                .attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                .collect();
            json!({"messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
                "attributes": attrs, "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": arn, "awsRegion": "us-east-1"})
        })
        .collect();
    Some(serde_json::from_value(json!({ "Records": records })).unwrap())
}

/// A FIFO events queue with this visibility timeout (seconds) and redrive policy: its URL and ARN.
async fn events_queue(
    sqs: &aws_sdk_sqs::Client,
    sdk: &aws_config::SdkConfig,
    visibility: &str,
    redrive: Option<Value>,
) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let mut create = sqs
        .create_queue()
        .queue_name(format!("{}.fifo", unique("events")))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::VisibilityTimeout, visibility);
    if let Some(r) = redrive {
        create = create.attributes(QueueAttributeName::RedrivePolicy, r.to_string());
    }
    let queue = create.send().await.unwrap().queue_url.unwrap();
    let arn = queue_arn(sdk, &queue).await;
    (queue, arn)
}

fn okta_event(fixture: &str) -> Value {
    let envelope: Value = serde_json::from_str(&event_file(fixture)).unwrap();
    envelope["data"]["events"][0].clone()
}

fn failed_ids(response: &aws_lambda_events::sqs::SqsBatchResponse) -> Vec<String> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
}

#[tokio::test]
async fn a_full_reconcile_grants_every_target_kind_and_the_second_run_changes_nothing() {
    let w = World::new().await;
    let sync = w.sync(w.policy(20));
    let report = sync
        .handle(serde_json::from_str(&event_file("eventbridge/scheduled-reconcile.json")).unwrap())
        .await
        .unwrap();
    assert_eq!(report["created"], 8, "{report}");
    assert_eq!(report["failures"], 0);
    // all accounts (minus sandbox OU, suspended, management), tags with captures, nested OU +
    // the management account named by id; the suspended account and marketing get nothing.
    w.assert_full_state().await;
    assert!(w.idc.assignments(&w.payments).await.iter().all(|(_, a)| *a != w.suspended));

    let second = sync.reconcile(Scope::All).await.unwrap();
    assert!(
        !second.has_changes(),
        "idempotent: {:?} {:?} {:?}",
        second.permission_set_changes,
        second.creates,
        second.deletes
    );
    assert_eq!((second.created, second.deleted), (0, 0));
}

/// The stand-in has no UpdateGroup: this view of the real identity store renames one group, as
/// SCIM does when an Okta group is renamed. Everything else goes to the real adapter.
/// The real IdC adapter, with one group shown under another name, and optionally a process
/// that dies right after its first assignment was created (as a Lambda timeout would).
struct Renamed<'a> {
    inner: &'a SdkIdentityCenter,
    id: String,
    name: String,
    hang_after_create: bool,
}

impl IdentityCenter for Renamed<'_> {
    async fn instance(
        &self,
        a: Option<&str>,
    ) -> Result<idc_guard::access::ports::IdcInstance, idc_guard::error::AwsError> {
        self.inner.instance(a).await
    }
    async fn list_groups(
        &self,
        s: &str,
    ) -> Result<Vec<idc_guard::access::Group>, idc_guard::error::AwsError> {
        let mut groups = self.inner.list_groups(s).await?;
        for g in groups.iter_mut().filter(|g| g.id == self.id) {
            g.display_name = self.name.clone();
        }
        Ok(groups)
    }
    async fn find_group(
        &self,
        s: &str,
        n: &str,
    ) -> Result<Option<idc_guard::access::Group>, idc_guard::error::AwsError> {
        if n == self.name {
            return Ok(Some(idc_guard::access::Group {
                id: self.id.clone(),
                display_name: n.to_owned(),
            }));
        }
        self.inner.find_group(s, n).await
    }
    async fn describe_group(
        &self,
        s: &str,
        g: &str,
    ) -> Result<Option<idc_guard::access::Group>, idc_guard::error::AwsError> {
        self.inner.describe_group(s, g).await
    }
    async fn list_group_member_names(
        &self,
        s: &str,
        g: &str,
    ) -> Result<Vec<String>, idc_guard::error::AwsError> {
        self.inner.list_group_member_names(s, g).await
    }
    async fn list_permission_sets(
        &self,
        i: &str,
    ) -> Result<Vec<idc_guard::access::ports::PermissionSetInfo>, idc_guard::error::AwsError> {
        self.inner.list_permission_sets(i).await
    }
    async fn permission_set_policies(
        &self,
        i: &str,
        a: &str,
        b: bool,
    ) -> Result<idc_guard::access::ports::PermissionSetPolicies, idc_guard::error::AwsError> {
        self.inner.permission_set_policies(i, a, b).await
    }
    async fn create_permission_set(
        &self,
        i: &str,
        s: &idc_guard::access::policy::PermissionSetSpec,
    ) -> Result<String, idc_guard::error::AwsError> {
        self.inner.create_permission_set(i, s).await
    }
    async fn update_permission_set(
        &self,
        i: &str,
        a: &str,
        s: &idc_guard::access::policy::PermissionSetSpec,
    ) -> Result<(), idc_guard::error::AwsError> {
        self.inner.update_permission_set(i, a, s).await
    }
    async fn attach_managed_policy(
        &self,
        i: &str,
        a: &str,
        p: &str,
        at: bool,
    ) -> Result<(), idc_guard::error::AwsError> {
        self.inner.attach_managed_policy(i, a, p, at).await
    }
    async fn attach_customer_managed_policy(
        &self,
        i: &str,
        a: &str,
        p: &idc_guard::access::policy::CustomerManagedPolicy,
        at: bool,
    ) -> Result<(), idc_guard::error::AwsError> {
        self.inner.attach_customer_managed_policy(i, a, p, at).await
    }
    async fn set_inline_policy(
        &self,
        i: &str,
        a: &str,
        p: Option<&str>,
    ) -> Result<(), idc_guard::error::AwsError> {
        self.inner.set_inline_policy(i, a, p).await
    }
    async fn set_permissions_boundary(
        &self,
        i: &str,
        a: &str,
        b: &idc_guard::access::policy::PermissionsBoundary,
    ) -> Result<(), idc_guard::error::AwsError> {
        self.inner.set_permissions_boundary(i, a, b).await
    }
    async fn provision_permission_set(
        &self,
        i: &str,
        a: &str,
    ) -> Result<String, idc_guard::error::AwsError> {
        self.inner.provision_permission_set(i, a).await
    }
    async fn list_group_assignments(
        &self,
        i: &str,
        g: &str,
    ) -> Result<(Vec<idc_guard::access::ports::ActualAssignment>, usize), idc_guard::error::AwsError>
    {
        self.inner.list_group_assignments(i, g).await
    }
    async fn list_user_assignments(
        &self,
        i: &str,
        u: &str,
    ) -> Result<Vec<idc_guard::access::ports::ActualAssignment>, idc_guard::error::AwsError> {
        self.inner.list_user_assignments(i, u).await
    }
    async fn provision_to_account(
        &self,
        i: &str,
        a: &str,
        account: &str,
    ) -> Result<String, idc_guard::error::AwsError> {
        self.inner.provision_to_account(i, a, account).await
    }
    async fn create_assignment(
        &self,
        i: &str,
        g: &str,
        p: &str,
        a: &str,
    ) -> Result<(String, idc_guard::access::ports::OperationStatus), idc_guard::error::AwsError>
    {
        let created = self.inner.create_assignment(i, g, p, a).await;
        if self.hang_after_create {
            std::future::pending::<()>().await;
        }
        created
    }
    async fn delete_assignment(
        &self,
        i: &str,
        g: &str,
        p: &str,
        a: &str,
    ) -> Result<(String, idc_guard::access::ports::OperationStatus), idc_guard::error::AwsError>
    {
        self.inner.delete_assignment(i, g, p, a).await
    }
    async fn find_user_id(
        &self,
        s: &str,
        n: &str,
    ) -> Result<Option<String>, idc_guard::error::AwsError> {
        self.inner.find_user_id(s, n).await
    }
    async fn user_group_ids(
        &self,
        s: &str,
        u: &str,
    ) -> Result<Vec<String>, idc_guard::error::AwsError> {
        self.inner.user_group_ids(s, u).await
    }
    /// moto lacks DescribePermissionSetProvisioningStatus (its ProvisionPermissionSet is done
    /// at once): answered here. The asynchronous case is enforced by `idc_guard::testing`'s fake.
    async fn provisioning_status(
        &self,
        _: &str,
        _: &str,
    ) -> Result<idc_guard::access::ports::OperationStatus, idc_guard::error::AwsError> {
        Ok(idc_guard::access::ports::OperationStatus::Succeeded)
    }
    async fn assignment_status(
        &self,
        i: &str,
        r: &str,
        c: bool,
    ) -> Result<idc_guard::access::ports::OperationStatus, idc_guard::error::AwsError> {
        self.inner.assignment_status(i, r, c).await
    }
}

/// Okta renames aws-team-payments to payments-team (out of every rule); IdC shows the new name
/// (moto has no UpdateGroup) and the group.profile.update event reaches access-sync.
async fn rename_payments_out_of_its_pattern(w: &World) {
    let real = SdkIdentityCenter::new(&w.sdk);
    let renamed = Renamed {
        inner: &real,
        id: w.payments.clone(),
        name: "payments-team".into(),
        hang_after_create: false,
    };
    let sync = w.sync_with(renamed, w.policy(20));
    let mut event = okta_event("okta/group-profile-update.json");
    event["target"][0]["displayName"] = json!("payments-team");
    let response = sync.handle_queue(sqs_event(&[event])).await;
    assert!(failed_ids(&response).is_empty());
}

#[tokio::test]
async fn a_group_renamed_out_of_its_pattern_loses_its_assignments() {
    let w = World::new().await;
    w.sync(w.policy(20)).reconcile(Scope::All).await.unwrap();
    assert_eq!(w.idc.assignments(&w.payments).await.len(), 2);

    rename_payments_out_of_its_pattern(&w).await;
    assert!(
        w.idc.assignments(&w.payments).await.is_empty(),
        "renamed out of aws-team-*: access removed"
    );
    assert_eq!(w.idc.assignments(&w.data).await.len(), 1, "other groups untouched");
}

#[tokio::test]
async fn a_group_deleted_and_recreated_gets_its_access_under_the_new_id() {
    let w = World::new().await;
    let sync = w.sync(w.policy(20));
    sync.reconcile(Scope::All).await.unwrap();
    w.idc.delete_group(&w.payments).await;
    let recreated = w.idc.group("aws-team-payments").await;
    assert_ne!(recreated, w.payments);

    let report = sync.reconcile(Scope::All).await.unwrap();
    assert_eq!(report.failures, vec![]);
    let mut expected = vec![
        ("TeamDeveloper".to_string(), w.pay_prod.clone()),
        ("TeamDeveloper".to_string(), w.sandbox.clone()),
    ];
    expected.sort();
    assert_eq!(w.idc.assignments(&recreated).await, expected);
    assert!(
        w.idc.assignments(&w.payments).await.is_empty(),
        "the old id's assignments are removed"
    );
}

#[tokio::test]
async fn a_new_account_tagged_for_a_team_is_assigned_to_that_team() {
    let w = World::new().await;
    let sync = w.sync(w.policy(20));
    sync.reconcile(Scope::All).await.unwrap();
    let staging = w.org.account("payments-staging", &w.ou_workloads, &[("team", "payments")]).await;
    let mut event: Value =
        serde_json::from_str(&event_file("eventbridge/organizations-create-account-result.json"))
            .unwrap();
    event["detail"]["serviceEventDetails"]["createAccountStatus"]["accountId"] = json!(staging);
    let report = sync.handle(event).await.unwrap();
    // The team group and the core group (all accounts) gain the new account, nothing else moves.
    assert_eq!(
        (report["created"].as_u64(), report["deleted"].as_u64()),
        (Some(2), Some(0)),
        "{report}"
    );
    assert!(
        w.idc.assignments(&w.payments).await.contains(&("TeamDeveloper".into(), staging.clone()))
    );
    assert!(w.idc.assignments(&w.core).await.contains(&("ReadOnly".into(), staging.clone())));
    assert!(!w.idc.assignments(&w.data).await.iter().any(|(_, a)| *a == staging));
}

#[tokio::test]
async fn an_organizations_read_failure_deletes_nothing() {
    let w = World::new().await;
    let sync = w.sync(w.policy(20));
    sync.reconcile(Scope::All).await.unwrap();
    // Drift that a healthy run would delete: ReadOnly given by hand to the core group in sandbox.
    w.idc.assign(&w.core, "ReadOnly", &w.sandbox).await;

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let broken = aws_sdk_organizations::config::Builder::from(&w.sdk)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    let idc = SdkIdentityCenter::new(&w.sdk);
    let org = SdkOrganizations::from_client(aws_sdk_organizations::Client::from_conf(broken));
    let reconciler = Reconciler::new(&idc, &org, fast_limits());
    let options =
        RunOptions { scope: Scope::All, apply: true, previously_managed: BTreeSet::new() };
    let err = reconciler.run(&w.policy(20), &options, None).await.unwrap_err();
    assert!(err.to_string().contains("AWS Organizations"), "{err}");
    assert!(
        w.idc.assignments(&w.core).await.contains(&("ReadOnly".into(), w.sandbox.clone())),
        "nothing deleted"
    );

    // With Organizations back, the drift is corrected.
    let report = sync.reconcile(Scope::All).await.unwrap();
    assert_eq!(report.deleted, 1);
    w.assert_full_state().await;
}

#[tokio::test]
async fn the_deletion_guard_refuses_and_alerts_once() {
    let w = World::new().await;
    w.sync(w.policy(20)).reconcile(Scope::All).await.unwrap();
    w.idc.assign(&w.core, "ReadOnly", &w.sandbox).await;
    w.idc.assign(&w.data, "TeamDeveloper", &w.pay_prod).await;
    let guarded = w.sync(w.policy(1));
    let report = guarded.reconcile(Scope::All).await.unwrap();
    assert!(report.deletion_guard_tripped);
    assert_eq!((report.deletes.len(), report.deleted), (2, 0));
    assert!(w.idc.assignments(&w.core).await.contains(&("ReadOnly".into(), w.sandbox.clone())));
    guarded.reconcile(Scope::All).await.unwrap();
    let alerts = alerts(&w.sdk, &w.alert_queue).await;
    assert_eq!(alerts.len(), 1, "the same finding alerts once: {alerts:?}");
    assert_eq!(alerts[0]["detector"], "deletion-guard-tripped");
    assert_eq!(alerts[0]["evidence"]["total"], 2);
}

#[tokio::test]
async fn okta_side_alerts_arrive_on_sns_in_the_alert_schema_once() {
    let w = World::new().await;
    let sync = w.sync(w.policy(20));
    let mut admin_add = okta_event("okta/group-user-membership-add.json");
    admin_add["uuid"] = json!("7b0d5c1e-admin-add-0001");
    admin_add["target"][1]["displayName"] = json!("aws-admin-platform");
    let events = vec![
        okta_event("okta/user-mfa-factor-reset-all.json"),
        okta_event("okta/policy-rule-update.json"),
        admin_add,
        okta_event("okta/group-user-membership-add.json"), // team tier: not privileged
        okta_event("okta/application-provision-group-push-failed.json"),
    ];
    let response = sync.handle_queue(sqs_event(&events)).await;
    assert!(failed_ids(&response).is_empty(), "{response:?}");
    // The same records again (SQS redelivery, Okta retry): processed once.
    let response = sync.handle_queue(sqs_event(&events)).await;
    assert!(failed_ids(&response).is_empty());

    let mut alerts = alerts(&w.sdk, &w.alert_queue).await;
    alerts.sort_by_key(|a| a["detector"].as_str().unwrap_or_default().to_owned());
    let detectors: Vec<_> = alerts.iter().map(|a| a["detector"].as_str().unwrap()).collect();
    assert_eq!(
        detectors,
        ["mfa-weakened", "mfa-weakened", "privileged-group-change", "scim-provisioning-failure"]
    );
    for a in &alerts {
        for field in [
            "id",
            "time",
            "detector",
            "severity",
            "title",
            "user",
            "summary",
            "evidence",
            "event_ids",
            "runbook",
        ] {
            assert!(a.get(field).is_some(), "{field} missing in {a}");
        }
        assert_eq!(a["event_ids"].as_array().unwrap().len(), 1);
    }
    assert_eq!(alerts[2]["user"], "alice@acme.example");
    assert_eq!(alerts[2]["severity"], "high");
    assert_eq!(alerts[3]["severity"], "critical");
    let store = DynamoStateStore::new(&w.sdk, &w.table);
    use idc_guard::store::StateStore;
    let health = store.get("scim-health", "last-group-push-failure").await.unwrap().unwrap();
    assert_eq!(health.data["group"], "aws-team-payments");
}

#[tokio::test]
async fn signins_and_deactivations_are_recorded_for_the_anomaly_checks() {
    let w = World::new().await;
    let sync = w.sync(w.policy(20));
    let events = vec![
        okta_event("okta/user-authentication-sso-success.json"),
        okta_event("okta/user-authentication-sso-failure.json"),
        okta_event("okta/user-lifecycle-deactivate.json"),
    ];
    assert!(failed_ids(&sync.handle_queue(sqs_event(&events)).await).is_empty());
    use idc_guard::store::StateStore;
    let store = DynamoStateStore::new(&w.sdk, &w.table);
    let alice = store.query("okta-signin#alice@acme.example").await.unwrap();
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].data["country"], "United States");
    assert_eq!(alice[0].data["outcome"], "SUCCESS");
    assert_eq!(alice[0].data["app"], "AWS IAM Identity Center");
    assert!(alice[0].expires_at.is_some());
    let bob = store.query("okta-signin#bob@acme.example").await.unwrap();
    assert_eq!(bob[0].data["outcome"], "FAILURE");
    let bob_status = store.get("okta-user#bob@acme.example", "lifecycle").await.unwrap().unwrap();
    assert_eq!(bob_status.data["status"], "deactivated");
}

#[tokio::test]
async fn a_group_not_yet_in_identity_center_is_retried_and_later_records_wait() {
    let w = World::new().await;
    let sync = w.sync(w.policy(20));
    let mut create = okta_event("okta/group-lifecycle-create.json");
    create["target"][0]["displayName"] = json!("aws-team-newteam");
    let later = okta_event("okta/user-mfa-factor-reset-all.json");
    let batch = sqs_event(&[create.clone(), later]);
    let response = sync.handle_queue(batch.clone()).await;
    // Both returned: the second waits behind the first, as FIFO order requires.
    assert_eq!(failed_ids(&response).len(), 2);
    assert!(alerts(&w.sdk, &w.alert_queue).await.is_empty());

    let team = w.idc.group("aws-team-newteam").await;
    w.org.tag(&w.data_prod, &[("team", "newteam")]).await;
    let response = sync.handle_queue(batch).await;
    assert!(failed_ids(&response).is_empty(), "{response:?}");
    assert_eq!(
        w.idc.assignments(&team).await,
        vec![("TeamDeveloper".to_string(), w.data_prod.clone())]
    );
    let alerts = alerts(&w.sdk, &w.alert_queue).await;
    let detectors: Vec<_> = alerts.iter().map(|a| a["detector"].as_str().unwrap()).collect();
    assert_eq!(detectors.iter().filter(|d| **d == "mfa-weakened").count(), 1, "{detectors:?}");
    // Retagging data-prod for the new team left aws-team-data without an account: named too.
    let unknown: Vec<_> = alerts.iter().filter(|a| a["detector"] == "unknown-target").collect();
    assert_eq!(unknown.len(), 1, "{detectors:?}");
    assert!(unknown[0]["summary"].as_str().unwrap().contains("team=data"));
}

/// Lambda's SQS event source with `ReportBatchItemFailures`, against real queues: a message that
/// can never be processed goes to the dead-letter queue after `maxReceiveCount` receives; the
/// records of other message groups in its batches are processed once and deleted.
#[tokio::test]
async fn a_poison_message_goes_to_the_dead_letter_queue_and_the_rest_of_the_batch_is_processed() {
    let w = World::new().await;
    let sqs = aws_sdk_sqs::Client::new(&w.sdk);
    let dlq = create_fifo_queue(&w.sdk).await;
    let dlq_arn = queue_arn(&w.sdk, &dlq).await;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3});
    let (queue, arn) = events_queue(&sqs, &w.sdk, "1", Some(redrive)).await;
    let good = okta_event("okta/user-mfa-factor-reset-all.json");
    for (body, group, dedup) in [
        ("{\"uuid\": \"poison\", \"eventType\": ".to_owned(), "00u-poison", "poison"),
        (good.to_string(), "00u-good", "good"),
    ] {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(dedup)
            .send()
            .await
            .unwrap();
    }
    let sync = w.sync(w.policy(20));
    let mut failed_total = 0.0;
    for _ in 0..20 {
        let Some(batch) = receive_batch(&sqs, &queue, &arn).await else {
            tokio::time::sleep(Duration::from_millis(600)).await;
            continue;
        };
        let (response, counts) =
            idc_guard::telemetry::metrics::recorded(sync.handle_queue(batch.clone())).await;
        failed_total +=
            counts.get(idc_guard::telemetry::metrics::Metric::EventsFailed, &["unreadable"]);
        let failed = failed_ids(&response);
        for r in &batch.records {
            if !failed.contains(r.message_id.as_ref().unwrap()) {
                sqs.delete_message()
                    .queue_url(&queue)
                    .receipt_handle(r.receipt_handle.clone().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    let dead = drain(&w.sdk, &dlq).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].deduplication_id, "poison");
    assert_eq!(failed_total, 3.0, "failed once per receive, counted in EventsFailed");
    assert!(drain(&w.sdk, &queue).await.is_empty(), "nothing left behind");
    let alerts = alerts(&w.sdk, &w.alert_queue).await;
    let detectors: Vec<_> = alerts.iter().map(|a| a["detector"].as_str().unwrap()).collect();
    assert_eq!(detectors, ["mfa-weakened"], "the good record processed exactly once");
}

#[tokio::test]
async fn declared_permission_sets_are_created_then_updated_and_reprovisioned() {
    let w = World::new().await;
    let sync = w.sync(w.policy(20));
    let first = sync.reconcile(Scope::All).await.unwrap();
    assert_eq!(
        first
            .permission_set_changes
            .iter()
            .filter(|c| c.starts_with("create permission set"))
            .count(),
        3,
        "{:?}",
        first.permission_set_changes
    );
    let text = w.policy_text(20, "PT2H", true);
    let changed = Policy::check(&text, None).0.unwrap();
    let report = w.sync(changed).reconcile(Scope::All).await.unwrap();
    assert_eq!(
        report.permission_set_changes,
        vec![
            "update permission set Administrator (description, session duration or relay state)"
                .to_string(),
            "attach arn:aws:iam::aws:policy/AWSSupportAccess to Administrator".to_string(),
            "re-provision permission set Administrator".to_string(),
        ]
    );
    let arn = w.idc.permission_set_arn("Administrator").await.unwrap();
    let d = w
        .idc
        .sso
        .describe_permission_set()
        .instance_arn(&w.idc.instance_arn)
        .permission_set_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(d.permission_set.unwrap().session_duration.as_deref(), Some("PT2H"));
    let attached = w
        .idc
        .sso
        .list_managed_policies_in_permission_set()
        .instance_arn(&w.idc.instance_arn)
        .permission_set_arn(&arn)
        .send()
        .await
        .unwrap()
        .attached_managed_policies
        .unwrap();
    assert_eq!(attached.len(), 2);
    // The inline policy of TeamDeveloper was written once and is not seen as drift.
    assert!(report.permission_set_changes.iter().all(|c| !c.contains("TeamDeveloper")));
}

#[tokio::test]
async fn a_failed_record_returns_after_the_backoff_not_the_queue_timeout() {
    let w = World::new().await;
    let sqs = aws_sdk_sqs::Client::new(&w.sdk);
    let (queue, arn) = events_queue(&sqs, &w.sdk, "120", None).await;
    let mut create = okta_event("okta/group-lifecycle-create.json");
    create["target"][0]["displayName"] = json!("aws-team-newteam");
    sqs.send_message()
        .queue_url(&queue)
        .message_body(create.to_string())
        .message_group_id("00g-new")
        .message_deduplication_id("create-newteam")
        .send()
        .await
        .unwrap();
    let got = receive_batch(&sqs, &queue, &arn).await.expect("the message");
    assert_eq!(got.records.len(), 1);
    let event = got;

    let mut sync = w.sync(w.policy(20));
    let backoff = Backoff { base: Duration::from_secs(1), max: Duration::from_secs(900) };
    assert_eq!(backoff.delay_for(1), Duration::from_secs(1));
    assert_eq!(backoff.delay_for(3), Duration::from_secs(4));
    let requeue = Box::new(idc_guard::adapters::SqsRequeue::new(&w.sdk));
    sync.requeue = Some(Requeue { backoff, queue: requeue });
    let response = sync.handle_queue(event).await;
    assert_eq!(failed_ids(&response).len(), 1);
    assert!(receive_batch(&sqs, &queue, &arn).await.is_none(), "not visible again at once");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = receive_batch(&sqs, &queue, &arn).await.expect("visible again");
    assert_eq!(again.records.len(), 1, "back after the 1 s backoff, long before the queue's 120 s");
}

#[tokio::test]
async fn a_crash_right_after_the_first_create_never_orphans_the_access() {
    // Defect: assignments were created before the group was remembered as managed. A timeout
    // between the two, then a rename out of the rule's pattern, left the access forever.
    let w = World::new().await;
    let real = SdkIdentityCenter::new(&w.sdk);
    let crashing =
        Renamed { inner: &real, id: String::new(), name: String::new(), hang_after_create: true };
    let sync = w.sync_with(crashing, w.policy(20));
    let run = tokio::time::timeout(
        Duration::from_secs(5),
        sync.reconcile(Scope::Groups([w.payments.clone()].into())),
    );
    assert!(run.await.is_err(), "the run died mid-apply");
    assert!(!w.idc.assignments(&w.payments).await.is_empty(), "one assignment was made");

    // The group is renamed out of aws-team-* in Okta; the next event reconciles it.
    rename_payments_out_of_its_pattern(&w).await;
    assert!(w.idc.assignments(&w.payments).await.is_empty(), "the orphan-to-be was removed");
}

#[tokio::test]
async fn a_persistent_policy_error_blocks_deletions_visibly_and_alerts_once() {
    // Defect: a `managed = false` permission set IdC lacks blocked every deletion on every run
    // while the run reported success.
    let w = World::new().await;
    w.sync(w.policy(20)).reconcile(Scope::All).await.unwrap();
    w.idc.assign(&w.core, "ReadOnly", &w.sandbox).await; // drift a healthy run deletes
    let text = format!(
        "{}\n[[permission_set]]\nname = \"BreakGlass\"\nmanaged = false\n",
        w.policy_text(20, "PT1H", false)
    );
    let (policy, d) = Policy::check(&text, None);
    let sync = w.sync(policy.unwrap_or_else(|| panic!("{d:?}")));
    let plan = sync.run(Scope::All, false, None).await.unwrap();
    assert_eq!(plan.policy_errors.len(), 1, "plan shows it: {:?}", plan.policy_errors);
    assert!(plan.policy_errors[0].contains("BreakGlass"));
    for _ in 0..2 {
        let report = sync.reconcile(Scope::All).await.unwrap();
        assert_eq!(report.deleted, 0);
        assert!(report.deletions_blocked.as_deref().unwrap_or("").contains("BreakGlass"));
    }
    assert!(w.idc.assignments(&w.core).await.contains(&("ReadOnly".into(), w.sandbox.clone())));
    let alerts = alerts(&w.sdk, &w.alert_queue).await;
    let blocked: Vec<_> = alerts.iter().filter(|a| a["detector"] == "deletions-blocked").collect();
    assert_eq!(blocked.len(), 1, "once per distinct cause: {alerts:?}");
    assert!(blocked[0]["title"].as_str().unwrap().contains("BreakGlass"));
    assert_eq!(blocked[0]["evidence"]["groups_waiting"], json!(["aws-core-readers"]));
}

#[tokio::test]
async fn nothing_is_deleted_in_the_management_account_or_an_account_that_is_not_active() {
    let w = World::new().await;
    w.sync(w.policy(20)).reconcile(Scope::All).await.unwrap();
    // Drift in protected accounts: the core group is not meant to be in the management account
    // (no rule names it for core), the data team not in the closed account.
    w.idc.assign(&w.core, "ReadOnly", &w.org.management).await;
    w.idc.assign(&w.data, "TeamDeveloper", &w.suspended).await;
    let report = w.sync(w.policy(20)).reconcile(Scope::All).await.unwrap();
    assert_eq!(report.deleted, 0, "{:?}", report.deletes);
    assert_eq!(report.held.len(), 2, "{:?}", report.held);
    assert!(report.held.iter().any(|h| h.reason.contains("management account")));
    assert!(report.held.iter().any(|h| h.reason.contains("SUSPENDED")
        || h.reason.contains("CLOSED")
        || h.reason.contains("PENDING")));
    assert!(
        w.idc.assignments(&w.core).await.contains(&("ReadOnly".into(), w.org.management.clone()))
    );
    assert!(
        w.idc.assignments(&w.data).await.contains(&("TeamDeveloper".into(), w.suspended.clone()))
    );
}

#[tokio::test]
async fn apply_applies_the_confirmed_plan_or_nothing_when_the_estate_changed() {
    let w = World::new().await;
    let sync = w.sync(w.policy(20));
    // The permission sets and the core group's access exist; the rest is to be planned.
    sync.reconcile(Scope::Groups([w.core.clone()].into())).await.unwrap();
    let confirmed = sync.prepare(Scope::All).await.unwrap();
    assert!(!confirmed.report.creates.is_empty());
    // Someone changes IdC between the plan shown and the "yes".
    w.idc.assign(&w.data, "TeamDeveloper", &w.pay_prod).await;
    let Confirmed::Changed(new_plan) = sync.apply_confirmed(&confirmed, None).await.unwrap() else {
        panic!("applied a plan nobody confirmed")
    };
    assert!(new_plan.deletes.iter().any(|d| d.group_id == w.data && d.account_id == w.pay_prod));
    assert!(w.idc.assignments(&w.payments).await.is_empty(), "nothing applied");

    // Confirmed again, unchanged: exactly that plan is applied.
    let confirmed = sync.prepare(Scope::All).await.unwrap();
    let Confirmed::Applied(report) = sync.apply_confirmed(&confirmed, None).await.unwrap() else {
        panic!("the estate did not change")
    };
    assert_eq!(report.created, confirmed.report.creates.len());
    assert_eq!(report.deleted, confirmed.report.deletes.len());
    w.assert_full_state().await;
}

#[tokio::test]
async fn targets_the_organisation_lacks_are_named_and_alerted_once() {
    // Defect: the example policy's placeholder OU and account ids gave silent non-assignment.
    let w = World::new().await;
    let text = format!(
        "{}\n[[rule]]\nname = \"placeholder\"\ngroups = \"aws-core-*\"\npermission_sets = [\"ReadOnly\"]\ntargets = {{ ous = [\"ou-abcd-12345678\"], accounts = [\"123456789012\"] }}\n",
        w.policy_text(20, "PT1H", false)
    );
    let (policy, d) = Policy::check(&text, None);
    let sync = w.sync(policy.unwrap_or_else(|| panic!("{d:?}")));
    let plan = sync.run(Scope::All, false, None).await.unwrap();
    assert_eq!(
        plan.unknown_targets,
        [
            "rule placeholder: targets OU ou-abcd-12345678 is not in the organisation",
            "rule placeholder: targets account 123456789012 is not in the organisation",
        ]
    );
    sync.reconcile(Scope::All).await.unwrap();
    sync.reconcile(Scope::All).await.unwrap();
    w.assert_full_state().await;
    let alerts = alerts(&w.sdk, &w.alert_queue).await;
    let unknown: Vec<_> = alerts.iter().filter(|a| a["detector"] == "unknown-target").collect();
    assert_eq!(unknown.len(), 1, "raised once: {alerts:?}");
    assert_eq!(unknown[0]["evidence"]["unknown_targets"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_stub_event_is_completed_from_the_okta_system_log() {
    // The hook queues a stub (uuid, type, published, actor, targets) for an event too large
    // for SQS; access-sync reads the whole event back by uuid before processing it.
    use idc_guard::adapters::okta::OktaClient;
    use idc_guard::store::StateStore;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let w = World::new().await;
    let full = okta_event("okta/user-authentication-sso-success.json");
    let uuid = full["uuid"].as_str().unwrap().to_owned();
    let routing: idc_guard::okta::event::EventRouting =
        serde_json::from_value(full.clone()).unwrap();
    let stub: Value = serde_json::from_str(&routing.stub(300_000)).unwrap();
    assert!(stub.get("client").is_none(), "the stub lacks the client address");

    let okta = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/logs"))
        .and(query_param("filter", format!("uuid eq \"{uuid}\"").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([full])))
        .expect(1)
        .mount(&okta)
        .await;
    let client = OktaClient::new(&okta.uri(), &"okta-api-token".to_owned().into()).unwrap();
    let sync = w.sync(w.policy(20)).with_system_log(client);
    let response = sync.handle_queue(sqs_event(&[stub])).await;
    assert!(failed_ids(&response).is_empty());
    let records = sync.store.query("okta-signin#alice@acme.example").await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].data["ip"], "198.51.100.23", "completed from the System Log");
}

/// A throttling storm on sso-admin (half its requests answered `ThrottlingException` at the HTTP
/// layer, under the SDK's own retries): every run either completes or blocks its deletions, no
/// run deletes an assignment the policy keeps, and the runs converge on the full state.
#[tokio::test]
async fn an_sso_admin_throttling_storm_converges_and_never_deletes_after_a_failed_read() {
    use local_aws::http_faults::{Answer, FaultPlan, with_faults};
    let w = World::new().await;
    w.sync(w.policy(20)).reconcile(Scope::All).await.unwrap();
    // Drift a healthy run deletes: ReadOnly given by hand to the core group in sandbox.
    w.idc.assign(&w.core, "ReadOnly", &w.sandbox).await;
    let plan = FaultPlan::new();
    let stormy = with_faults(&w.sdk, &plan);
    let sync = AccessSyncHandler {
        idc: SdkIdentityCenter::new(&stormy),
        org: SdkOrganizations::new(&stormy),
        ..w.sync(w.policy(20))
    };
    plan.storm("SWBExternalService.", 0.5, Answer::Throttled, 7);
    let mut converged = false;
    for _ in 0..8 {
        let run = sync.reconcile(Scope::All).await;
        for (group, kept) in w.expected_full() {
            let now = w.idc.assignments(&group).await;
            for k in kept {
                assert!(now.contains(&k), "{k:?} of {group} deleted during the storm");
            }
        }
        if let Ok(r) = run
            && r.failures.is_empty()
            && r.read_errors.is_empty()
            && r.deleted == 1
        {
            converged = true;
            break;
        }
    }
    assert!(plan.answered().len() > 10, "the storm hit: {}", plan.answered().len());
    assert!(converged, "the drift is corrected during the storm");
    plan.clear();
    w.assert_full_state().await;
    assert!(!sync.reconcile(Scope::All).await.unwrap().has_changes());
}

/// Two access-sync invocations handed the same record at once (a redelivery racing the first
/// attempt): the event is processed once; the loser retries later and finds it done.
#[tokio::test]
async fn two_workers_racing_on_one_event_process_it_once() {
    let w = World::new().await;
    let (a, b) = (w.sync(w.policy(20)), w.sync(w.policy(20)));
    let batch = sqs_event(&[okta_event("okta/user-mfa-factor-reset-all.json")]);
    let (ra, rb) = tokio::join!(a.handle_queue(batch.clone()), b.handle_queue(batch.clone()));
    let failed = failed_ids(&ra).len() + failed_ids(&rb).len();
    assert!(failed <= 1, "at most the loser returns the record");
    let again = b.handle_queue(batch).await; // the redelivery
    assert!(failed_ids(&again).is_empty());
    let alerts = alerts(&w.sdk, &w.alert_queue).await;
    let detectors: Vec<_> = alerts.iter().map(|a| a["detector"].as_str().unwrap()).collect();
    assert_eq!(detectors, ["mfa-weakened"]);
}

/// Okta rate-limits the System Log read that completes a stub event (429 twice, then the
/// answer): the client waits for the reset and the event is completed, not processed as a stub.
#[tokio::test]
async fn an_okta_429_burst_delays_the_stub_completion_and_loses_nothing() {
    use idc_guard::adapters::okta::OktaClient;
    use idc_guard::store::StateStore;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let w = World::new().await;
    let full = okta_event("okta/user-authentication-sso-success.json");
    let routing: idc_guard::okta::event::EventRouting =
        serde_json::from_value(full.clone()).unwrap();
    let stub: Value = serde_json::from_str(&routing.stub(300_000)).unwrap();
    let okta = MockServer::start().await;
    let reset = (chrono::Utc::now().timestamp() + 1).to_string();
    Mock::given(method("GET"))
        .and(path("/api/v1/logs"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-Rate-Limit-Reset", reset.as_str())
                .set_body_json(json!({"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."})),
        )
        .up_to_n_times(2)
        .expect(2)
        .mount(&okta)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/logs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([full])))
        .expect(1)
        .mount(&okta)
        .await;
    let client = OktaClient::new(&okta.uri(), &"okta-api-token".to_owned().into()).unwrap();
    let sync = w.sync(w.policy(20)).with_system_log(client);
    let (response, counts) =
        idc_guard::telemetry::metrics::recorded(sync.handle_queue(sqs_event(&[stub]))).await;
    assert!(failed_ids(&response).is_empty());
    use idc_guard::telemetry::metrics::Metric;
    assert_eq!(counts.total(Metric::OktaThrottles), 2.0);
    assert_eq!(counts.total(Metric::OktaCalls), 3.0);
    let records = sync.store.query("okta-signin#alice@acme.example").await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].data["ip"], "198.51.100.23", "completed, not the stub");
}

/// Okta deactivates Bob: access-sync denies his live sessions in the permission sets his groups
/// hold (real inline policies and provisioning on the stand-in), alerts once; his reactivation
/// lifts the deny at once.
#[tokio::test]
async fn a_deactivated_users_sessions_are_denied_and_reactivation_lifts_it() {
    let w = World::new().await;
    w.sync(w.policy(20)).reconcile(Scope::All).await.unwrap();
    let bob = w.idc.user("bob@acme.example").await;
    w.idc.add_member(&w.core, &bob).await;
    w.idc.add_member(&w.payments, &bob).await;
    let real = SdkIdentityCenter::new(&w.sdk);
    let idc =
        Renamed { inner: &real, id: String::new(), name: String::new(), hang_after_create: false };
    let sync = w.sync_with(idc, w.policy(20));
    let deactivate = okta_event("okta/user-lifecycle-deactivate.json");
    let response = sync.handle_queue(sqs_event(std::slice::from_ref(&deactivate))).await;
    assert!(failed_ids(&response).is_empty(), "{response:?}");
    let inline = |name: &'static str| {
        let w = &w;
        async move {
            let arn = w.idc.permission_set_arn(name).await.unwrap();
            w.idc
                .sso
                .get_inline_policy_for_permission_set()
                .instance_arn(&w.idc.instance_arn)
                .permission_set_arn(arn)
                .send()
                .await
                .unwrap()
                .inline_policy
        }
    };
    use idc_guard::access::revoke_policy::revoked_ids;
    for name in ["ReadOnly", "TeamDeveloper"] {
        assert_eq!(
            revoked_ids(inline(name).await.as_deref()),
            BTreeSet::from([bob.clone()]),
            "{name}"
        );
    }
    assert!(revoked_ids(inline("Administrator").await.as_deref()).is_empty(), "not his");
    let alerts = alerts(&w.sdk, &w.alert_queue).await;
    let revoked: Vec<_> = alerts.iter().filter(|a| a["detector"] == "sessions-revoked").collect();
    assert_eq!(revoked.len(), 1, "{alerts:?}");
    assert_eq!(revoked[0]["user"], "bob@acme.example");
    // A scheduled reconcile keeps the deny (idc-guard's own statement, not drift).
    let report = sync.reconcile(Scope::All).await.unwrap();
    assert!(!report.has_changes(), "{:?}", report.permission_set_changes);

    let mut reactivate = deactivate;
    reactivate["uuid"] = json!("0d6a1f7e-reactivate-bob-0001");
    reactivate["eventType"] = json!("user.lifecycle.reactivate");
    let response = sync.handle_queue(sqs_event(&[reactivate])).await;
    assert!(failed_ids(&response).is_empty(), "{response:?}");
    assert!(revoked_ids(inline("ReadOnly").await.as_deref()).is_empty());
    assert!(revoked_ids(inline("TeamDeveloper").await.as_deref()).is_empty());
}
