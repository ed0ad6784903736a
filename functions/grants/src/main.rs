//! grants: wiring only. The logic is `idc_guard::access::grants` (routes in `grants::api`).

use std::time::Duration;

use idc_guard::access::Policy;
use idc_guard::access::grants::GrantsHandler;
use idc_guard::access::reconcile::Limits;
use idc_guard::access::sync::AccessSyncHandler;
use idc_guard::adapters::okta::LazyOktaClient;
use idc_guard::adapters::{
    CloudTrailLookup, DynamoStateStore, OktaPublicKeys, SdkAccountAccess, SdkIdentityCenter,
    SdkOrganizations, SecretsManagerStore, SlackWebClient, cloudtrail_client, function_sink,
    load_sdk_config,
};
use idc_guard::config::GrantsConfig;
use idc_guard::okta::id_token::IdTokenVerifier;
use idc_guard::telemetry::metrics::invocation;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    idc_guard::telemetry::init_lambda();
    idc_guard::records::set_writer(env!("CARGO_BIN_NAME"));
    let config = GrantsConfig::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    let base = &config.base;
    let (policy, warnings) =
        Policy::load(&base.policy_file).inspect_err(|e| tracing::error!("{e}"))?;
    for w in warnings {
        tracing::warn!(policy = %base.policy_file.display(), "{w}");
    }
    let sdk = load_sdk_config(Duration::from_secs(10)).await;
    let sink = function_sink(&sdk, &base.alert_topic_arn, base.alert_webhook_secret_arn.as_deref())
        .await?;
    let (org_url, okta_secret) = base.okta.clone().ok_or("Okta is required")?;
    let okta = LazyOktaClient::new(SecretsManagerStore::new(&sdk), okta_secret, &org_url)?;
    let id_tokens = match &config.okta_client_id {
        Some(client_id) => Some(IdTokenVerifier::new(
            &org_url,
            client_id,
            Box::new(OktaPublicKeys::new(&org_url)?),
        )),
        None => None,
    };
    let slack = match &config.slack_secret_arn {
        Some(arn) => Some(Box::new(SlackWebClient::new(
            &config.slack_api_url,
            SecretsManagerStore::new(&sdk),
            arn,
        )?) as Box<dyn idc_guard::access::grants::slack::SlackApi>),
        None => None,
    };
    let activity = config.activity.then(|| {
        Box::new(CloudTrailLookup::new(cloudtrail_client(&sdk)))
            as Box<dyn idc_guard::access::grants::activity::UserActivity>
    });
    let grants = GrantsHandler::<(_, _, _, _, _)> {
        access: AccessSyncHandler {
            system_log: Some(okta),
            idc: SdkIdentityCenter::new(&sdk),
            org: SdkOrganizations::new(&sdk),
            store: DynamoStateStore::new(&sdk, base.state_table.clone()),
            sink,
            policy,
            instance_arn: base.instance_arn.clone(),
            limits: Limits::default(),
            requeue: None,
            account_access: Some(std::sync::Arc::new(SdkAccountAccess::new(&sdk))),
        },
        slack,
        activity,
        id_tokens,
    };
    let grants = &grants;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        invocation(grants.handle(event.payload)).await
    }))
    .await
}
