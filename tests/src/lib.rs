//! Helpers for integration tests against the local AWS stand-in (moto server), which
//! `scripts/test.sh` starts on 127.0.0.1 and announces through `AWS_ENDPOINT_URL`. Used by the
//! workspace's integration tests (`tests/tests/integration`) and the CLI's (`cli/tests/cli`).

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

/// The SDK configuration the functions use, pointed at moto. Refuses to run against anything but
/// a loopback endpoint, so a test can never touch a real AWS account.
pub async fn local_aws() -> SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
        "AWS_ENDPOINT_URL must point at the local AWS stand-in (got {endpoint:?}); run scripts/test.sh"
    );
    idc_guard::adapters::load_sdk_config(Duration::from_secs(10)).await
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub async fn create_secret(sdk: &SdkConfig, value: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client
        .create_secret()
        .name(unique("idc-guard/test/hook"))
        .secret_string(value)
        .send()
        .await
        .expect("create secret");
    out.arn.expect("secret arn")
}

/// Stages `value` as AWSPENDING on the secret, as a rotation's createSecret step does.
pub async fn stage_pending(sdk: &SdkConfig, arn: &str, value: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let token = uuid::Uuid::new_v4().to_string();
    client
        .put_secret_value()
        .secret_id(arn)
        .client_request_token(&token)
        .secret_string(value)
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("put pending value");
    token
}

/// Promotes a pending version to AWSCURRENT, as a rotation's finishSecret step does.
pub async fn promote(sdk: &SdkConfig, arn: &str, version: &str) {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let described = client.describe_secret().secret_id(arn).send().await.expect("describe");
    let current = described
        .version_ids_to_stages
        .unwrap_or_default()
        .into_iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(id, _)| id)
        .expect("a current version");
    client
        .update_secret_version_stage()
        .secret_id(arn)
        .version_stage("AWSCURRENT")
        .move_to_version_id(version)
        .remove_from_version_id(current)
        .send()
        .await
        .expect("promote");
    client
        .update_secret_version_stage()
        .secret_id(arn)
        .version_stage("AWSPENDING")
        .remove_from_version_id(version)
        .send()
        .await
        .expect("clear pending");
}

pub async fn create_fifo_queue(sdk: &SdkConfig) -> String {
    let client = aws_sdk_sqs::Client::new(sdk);
    let out = client
        .create_queue()
        .queue_name(format!("{}.fifo", unique("idc-guard-events")))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("create queue");
    out.queue_url.expect("queue url")
}

/// A message as it arrived on the queue.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: String,
    pub group_id: String,
    pub deduplication_id: String,
    pub event_type: Option<String>,
}

/// Receives and deletes every message currently on the queue.
pub async fn drain(sdk: &SdkConfig, queue_url: &str) -> Vec<Received> {
    let client = aws_sdk_sqs::Client::new(sdk);
    let mut out = Vec::new();
    let mut empty_polls = 0;
    while empty_polls < 2 {
        let resp = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        let messages = resp.messages.unwrap_or_default();
        if messages.is_empty() {
            empty_polls += 1;
            continue;
        }
        for m in messages {
            let attrs = m.attributes.clone().unwrap_or_default();
            out.push(Received {
                body: m.body.clone().unwrap_or_default(),
                group_id: attrs
                    .get(&MessageSystemAttributeName::MessageGroupId)
                    .cloned()
                    .unwrap_or_default(),
                deduplication_id: attrs
                    .get(&MessageSystemAttributeName::MessageDeduplicationId)
                    .cloned()
                    .unwrap_or_default(),
                event_type: m
                    .message_attributes
                    .as_ref()
                    .and_then(|a| a.get("okta_event_type"))
                    .and_then(|v| v.string_value.clone()),
            });
            client
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle.unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    out
}

/// Reads a file under `events/`.
pub fn event_file(relative: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh AWS account of its own on the local stand-in (via sts:AssumeRole into a random account
/// id), so tests that need account-wide singletons (an organization, the IdC instance) can run in
/// parallel without seeing each other.
pub async fn isolated_account() -> (SdkConfig, String) {
    let (sdk, account, _) = isolated_account_with_env().await;
    (sdk, account)
}

/// As [`isolated_account`], plus the environment variables that give a child process (the CLI)
/// the same credentials.
pub async fn isolated_account_with_env() -> (SdkConfig, String, Vec<(&'static str, String)>) {
    let base = local_aws().await;
    let account = format!("{:012}", fastrand::u64(100_000_000_000..999_999_999_999));
    let sts = aws_sdk_sts::Client::new(&base);
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/idc-guard-test"))
        .role_session_name("idc-guard-test")
        .send()
        .await
        .expect("assume role");
    let c = out.credentials.expect("credentials");
    let env = vec![
        ("AWS_ACCESS_KEY_ID", c.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key.clone()),
        ("AWS_SESSION_TOKEN", c.session_token.clone()),
    ];
    let creds = aws_credential_types::Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "isolated-test-account",
    );
    let sdk = base
        .to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .build();
    (sdk, account, env)
}

/// An organization with OUs and accounts, in an isolated account.
pub struct Org {
    pub client: aws_sdk_organizations::Client,
    pub management: String,
    pub root: String,
}

impl Org {
    pub async fn create(sdk: &SdkConfig) -> Org {
        let client = aws_sdk_organizations::Client::new(sdk);
        let org = client
            .create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .expect("create organization")
            .organization
            .unwrap();
        let root = client.list_roots().send().await.unwrap().roots.unwrap()[0].id.clone().unwrap();
        Org { client, management: org.master_account_id.unwrap(), root }
    }

    pub async fn ou(&self, parent: &str, name: &str) -> String {
        self.client
            .create_organizational_unit()
            .parent_id(parent)
            .name(name)
            .send()
            .await
            .expect("create OU")
            .organizational_unit
            .unwrap()
            .id
            .unwrap()
    }

    /// Creates an account in `ou` with tags; returns its id.
    pub async fn account(&self, name: &str, ou: &str, tags: &[(&str, &str)]) -> String {
        let status = self
            .client
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .expect("create account")
            .create_account_status
            .unwrap();
        let id = status.account_id.unwrap();
        self.client
            .move_account()
            .account_id(&id)
            .source_parent_id(&self.root)
            .destination_parent_id(ou)
            .send()
            .await
            .expect("move account");
        self.tag(&id, tags).await;
        id
    }

    pub async fn tag(&self, id: &str, tags: &[(&str, &str)]) {
        if tags.is_empty() {
            return;
        }
        let tags: Vec<_> = tags
            .iter()
            .map(|(k, v)| {
                aws_sdk_organizations::types::Tag::builder().key(*k).value(*v).build().unwrap()
            })
            .collect();
        self.client.tag_resource().resource_id(id).set_tags(Some(tags)).send().await.expect("tag");
    }
}

/// The IdC instance of an isolated account and its identity store.
pub struct Idc {
    pub sso: aws_sdk_ssoadmin::Client,
    pub ids: aws_sdk_identitystore::Client,
    pub instance_arn: String,
    pub store_id: String,
}

impl Idc {
    pub async fn open(sdk: &SdkConfig) -> Idc {
        let sso = aws_sdk_ssoadmin::Client::new(sdk);
        let ids = aws_sdk_identitystore::Client::new(sdk);
        let inst = sso.list_instances().send().await.expect("list instances").instances.unwrap();
        let i = &inst[0];
        Idc {
            sso,
            ids,
            instance_arn: i.instance_arn.clone().unwrap(),
            store_id: i.identity_store_id.clone().unwrap(),
        }
    }

    pub async fn group(&self, name: &str) -> String {
        self.ids
            .create_group()
            .identity_store_id(&self.store_id)
            .display_name(name)
            .send()
            .await
            .expect("create group")
            .group_id
    }

    /// A user (as SCIM creates them: user name, display name, given and family names).
    pub async fn user(&self, user_name: &str) -> String {
        let name = aws_sdk_identitystore::types::Name::builder()
            .given_name(user_name.split('@').next().unwrap_or(user_name))
            .family_name("Example")
            .build();
        self.ids
            .create_user()
            .identity_store_id(&self.store_id)
            .user_name(user_name)
            .display_name(user_name)
            .name(name)
            .send()
            .await
            .expect("create user")
            .user_id
    }

    /// Adds a user to a group.
    pub async fn add_member(&self, group_id: &str, user_id: &str) {
        self.ids
            .create_group_membership()
            .identity_store_id(&self.store_id)
            .group_id(group_id)
            .member_id(aws_sdk_identitystore::types::MemberId::UserId(user_id.to_owned()))
            .send()
            .await
            .expect("create group membership");
    }

    pub async fn delete_group(&self, id: &str) {
        self.ids
            .delete_group()
            .identity_store_id(&self.store_id)
            .group_id(id)
            .send()
            .await
            .expect("delete group");
    }

    /// (permission set name, account id) pairs assigned to a group.
    pub async fn assignments(&self, group_id: &str) -> Vec<(String, String)> {
        let names = self.permission_set_names().await;
        let out = self
            .sso
            .list_account_assignments_for_principal()
            .instance_arn(&self.instance_arn)
            .principal_id(group_id)
            .principal_type(aws_sdk_ssoadmin::types::PrincipalType::Group)
            .send()
            .await
            .expect("list assignments");
        let mut v: Vec<_> = out
            .account_assignments
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                let arn = a.permission_set_arn.unwrap();
                (names.get(&arn).cloned().unwrap_or(arn), a.account_id.unwrap())
            })
            .collect();
        v.sort();
        v
    }

    pub async fn permission_set_names(&self) -> std::collections::HashMap<String, String> {
        let arns = self
            .sso
            .list_permission_sets()
            .instance_arn(&self.instance_arn)
            .send()
            .await
            .unwrap()
            .permission_sets
            .unwrap_or_default();
        let mut m = std::collections::HashMap::new();
        for arn in arns {
            let d = self
                .sso
                .describe_permission_set()
                .instance_arn(&self.instance_arn)
                .permission_set_arn(&arn)
                .send()
                .await
                .unwrap();
            m.insert(arn, d.permission_set.unwrap().name.unwrap());
        }
        m
    }

    pub async fn permission_set_arn(&self, name: &str) -> Option<String> {
        self.permission_set_names().await.into_iter().find(|(_, n)| n == name).map(|(a, _)| a)
    }

    /// A permission set made by hand (outside idc-guard), with one AWS managed policy.
    pub async fn permission_set(&self, name: &str, session: &str, managed: &str) -> String {
        let arn = self
            .sso
            .create_permission_set()
            .instance_arn(&self.instance_arn)
            .name(name)
            .session_duration(session)
            .send()
            .await
            .expect("create permission set")
            .permission_set
            .and_then(|p| p.permission_set_arn)
            .expect("its ARN");
        self.sso
            .attach_managed_policy_to_permission_set()
            .instance_arn(&self.instance_arn)
            .permission_set_arn(&arn)
            .managed_policy_arn(managed)
            .send()
            .await
            .expect("attach");
        arn
    }

    /// An assignment made by hand (outside idc-guard).
    pub async fn assign(&self, group_id: &str, permission_set: &str, account: &str) {
        self.assign_principal(
            aws_sdk_ssoadmin::types::PrincipalType::Group,
            group_id,
            permission_set,
            account,
        )
        .await;
    }

    /// A direct (user) assignment made by hand.
    pub async fn assign_user(&self, user_id: &str, permission_set: &str, account: &str) {
        self.assign_principal(
            aws_sdk_ssoadmin::types::PrincipalType::User,
            user_id,
            permission_set,
            account,
        )
        .await;
    }

    async fn assign_principal(
        &self,
        kind: aws_sdk_ssoadmin::types::PrincipalType,
        principal: &str,
        permission_set: &str,
        account: &str,
    ) {
        let arn = self.permission_set_arn(permission_set).await.expect("permission set exists");
        self.sso
            .create_account_assignment()
            .instance_arn(&self.instance_arn)
            .target_id(account)
            .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
            .permission_set_arn(arn)
            .principal_type(kind)
            .principal_id(principal)
            .send()
            .await
            .expect("assign");
    }
}

pub async fn create_state_table(sdk: &SdkConfig) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let name = unique("idc-guard-state");
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap()
    };
    client
        .create_table()
        .table_name(&name)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
    name
}

/// An SNS topic whose messages land (raw) on an SQS queue the test can read.
pub async fn alert_topic(sdk: &SdkConfig) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(unique("idc-guard-alerts"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let queue =
        sqs.create_queue().queue_name(unique("alerts")).send().await.unwrap().queue_url.unwrap();
    let queue_arn = queue_arn(sdk, &queue).await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    (topic, queue)
}

/// Every alert published so far, parsed.
pub async fn alerts(sdk: &SdkConfig, queue: &str) -> Vec<serde_json::Value> {
    drain(sdk, queue)
        .await
        .into_iter()
        .map(|m| serde_json::from_str(&m.body).expect("alert JSON"))
        .collect()
}

/// The ARN of a queue.
pub async fn queue_arn(sdk: &SdkConfig, queue_url: &str) -> String {
    aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default()
        .remove(&QueueAttributeName::QueueArn)
        .expect("a queue ARN")
}

/// Runs a command with `stdin` as its input.
pub fn run_with_stdin(cmd: &mut std::process::Command, stdin: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// stdout then stderr, as text.
pub fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Faults at the HTTP layer of the real SDK clients, for the fault tests against moto: a request
/// whose `X-Amz-Target` starts with a rule's prefix is answered by the rule (a 503, a throttling
/// error) instead of reaching moto, so the SDK's own retries and the code's handling of what
/// they give up on are what is tested.
pub mod http_faults {
    use std::sync::{Arc, Mutex};

    use aws_config::SdkConfig;
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
        SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::body::SdkBody;

    /// What a faulty request is answered with.
    #[derive(Debug, Clone, Copy)]
    pub enum Answer {
        /// 503 Service Unavailable.
        Unavailable,
        /// 400 with the service's `ThrottlingException`.
        Throttled,
    }

    #[derive(Debug)]
    struct Rule {
        target_prefix: &'static str,
        skip: usize,
        remaining: usize,
        probability: f64,
        answer: Answer,
    }

    /// The rules, and how many requests each answered.
    #[derive(Debug, Default)]
    pub struct FaultPlan {
        rules: Mutex<Vec<Rule>>,
        rng: Mutex<Option<fastrand::Rng>>,
        answered: Mutex<Vec<&'static str>>,
    }

    impl FaultPlan {
        /// A plan with no rules.
        pub fn new() -> Arc<Self> {
            Arc::new(Self::default())
        }

        /// After `skip` matching requests pass, answers the next `count` with `answer`.
        pub fn fail(&self, target_prefix: &'static str, skip: usize, count: usize, answer: Answer) {
            self.rules.lock().unwrap().push(Rule {
                target_prefix,
                skip,
                remaining: count,
                probability: 1.0,
                answer,
            });
        }

        /// Answers each matching request with `answer` with this probability (seeded: the same
        /// run every time), until cleared.
        pub fn storm(
            &self,
            target_prefix: &'static str,
            probability: f64,
            answer: Answer,
            seed: u64,
        ) {
            *self.rng.lock().unwrap() = Some(fastrand::Rng::with_seed(seed));
            self.rules.lock().unwrap().push(Rule {
                target_prefix,
                skip: 0,
                remaining: usize::MAX,
                probability,
                answer,
            });
        }

        /// Removes every rule: the service is healthy again.
        pub fn clear(&self) {
            self.rules.lock().unwrap().clear();
        }

        /// How many requests were answered by a rule, with their targets.
        pub fn answered(&self) -> Vec<&'static str> {
            self.answered.lock().unwrap().clone()
        }

        fn answer_for(&self, target: &str) -> Option<HttpResponse> {
            let mut rules = self.rules.lock().unwrap();
            let rule = rules
                .iter_mut()
                .find(|r| target.starts_with(r.target_prefix) && r.remaining > 0)?;
            if rule.skip > 0 {
                rule.skip -= 1;
                return None;
            }
            if rule.probability < 1.0 {
                let roll = self.rng.lock().unwrap().as_mut().map(|r| r.f64()).unwrap_or(0.0);
                if roll >= rule.probability {
                    return None;
                }
            }
            rule.remaining -= 1;
            self.answered.lock().unwrap().push(rule.target_prefix);
            let (status, body) = match rule.answer {
                Answer::Unavailable => {
                    (503, r#"{"__type":"ServiceUnavailable","message":"injected"}"#)
                }
                Answer::Throttled => {
                    (400, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#)
                }
            };
            let mut response = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body));
            response.headers_mut().insert("content-type", "application/x-amz-json-1.1");
            Some(response)
        }
    }

    #[derive(Debug)]
    struct Client {
        inner: SharedHttpClient,
        plan: Arc<FaultPlan>,
    }

    #[derive(Debug)]
    struct Connector {
        inner: SharedHttpConnector,
        plan: Arc<FaultPlan>,
    }

    impl HttpClient for Client {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(Connector {
                inner: self.inner.http_connector(settings, components),
                plan: Arc::clone(&self.plan),
            })
        }
    }

    impl HttpConnector for Connector {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let target = request.headers().get("x-amz-target").unwrap_or_default().to_owned();
            match self.plan.answer_for(&target) {
                Some(response) => HttpConnectorFuture::ready(Ok(response)),
                None => self.inner.call(request),
            }
        }
    }

    /// `sdk` with every request going through `plan` first.
    pub fn with_faults(sdk: &SdkConfig, plan: &Arc<FaultPlan>) -> SdkConfig {
        // The client the SDK builds by default (hyper 1, rustls with aws-lc).
        let inner = sdk.http_client().unwrap_or_else(|| {
            use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                .build_https()
        });
        sdk.to_builder().http_client(Client { inner, plan: Arc::clone(plan) }).build()
    }
}
