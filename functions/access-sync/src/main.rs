//! access-sync: wiring only. The logic is `idc_guard::access::sync`.

use std::time::Duration;

use idc_guard::access::Policy;
use idc_guard::access::ports::{Backoff, Requeue};
use idc_guard::access::reconcile::Limits;
use idc_guard::access::sync::AccessSyncHandler;
use idc_guard::adapters::SqsRequeue;
use idc_guard::adapters::function_sink;
use idc_guard::adapters::okta::LazyOktaClient;
use idc_guard::adapters::{DynamoStateStore, S3LedgerArchive, SdkAccountAccess};
use idc_guard::adapters::{
    SdkIdentityCenter, SdkOrganizations, SecretsManagerStore, load_sdk_config,
};
use idc_guard::config::AccessSyncConfig;
use idc_guard::telemetry::metrics::invocation;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    idc_guard::telemetry::init_lambda();
    idc_guard::records::set_writer(env!("CARGO_BIN_NAME"));
    let config = AccessSyncConfig::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    let (policy, warnings) =
        Policy::load(&config.policy_file).inspect_err(|e| tracing::error!("{e}"))?;
    for w in warnings {
        tracing::warn!(policy = %config.policy_file.display(), "{w}");
    }
    let sdk = load_sdk_config(Duration::from_secs(20)).await;
    let sink =
        function_sink(&sdk, &config.alert_topic_arn, config.alert_webhook_secret_arn.as_deref())
            .await?;
    // The Okta System Log (optional): read on first use, to complete events queued as stubs.
    let system_log = match &config.okta {
        Some((url, secret)) => {
            Some(LazyOktaClient::new(SecretsManagerStore::new(&sdk), secret, url)?)
        }
        None => None,
    };
    let sync = AccessSyncHandler {
        system_log,
        idc: SdkIdentityCenter::new(&sdk),
        org: SdkOrganizations::new(&sdk),
        store: DynamoStateStore::new(&sdk, config.state_table),
        sink,
        policy,
        instance_arn: config.instance_arn,
        limits: Limits::default(),
        requeue: Some(Requeue {
            backoff: Backoff::default(),
            queue: Box::new(SqsRequeue::new(&sdk)),
        }),
        account_access: Some(std::sync::Arc::new(SdkAccountAccess::new(&sdk))),
    };
    // The scheduled access ledger export, when its bucket is deployed.
    let archive = config
        .ledger_bucket
        .map(|bucket| S3LedgerArchive::new(idc_guard::adapters::s3_client(&sdk), bucket));
    let (sync, archive) = (&sync, archive.as_ref());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let archive = archive.map(|a| a as &dyn idc_guard::access::ledger::export::LedgerArchive);
        invocation(sync.handle_with_ledger(event.payload, archive)).await
    }))
    .await
}
