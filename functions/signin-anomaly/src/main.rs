//! signin-anomaly: wiring only. The logic is `idc_guard::signin`.

use std::sync::Arc;
use std::time::Duration;

use idc_guard::adapters::DynamoStateStore;
use idc_guard::adapters::function_sink;
use idc_guard::adapters::{
    CloudTrailLookup, IdentityStoreDirectory, S3LogObjects, load_sdk_config, s3_client,
};
use idc_guard::config::SigninConfig;
use idc_guard::geo::Geo;
use idc_guard::signin::function::SigninAnomalyHandler;
use idc_guard::signin::lookup::SweepSettings;
use idc_guard::signin::settings::SigninPolicy;
use idc_guard::telemetry::metrics::invocation;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    idc_guard::telemetry::init_lambda();
    idc_guard::records::set_writer(env!("CARGO_BIN_NAME"));
    let config = SigninConfig::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    let (policy, warnings) =
        SigninPolicy::load(&config.policy_file).inspect_err(|e| tracing::error!("{e}"))?;
    for w in warnings {
        tracing::warn!(policy = %config.policy_file.display(), "{w}");
    }
    // The city database: configured, or shipped in the policy layer beside the policy.
    let geo = Geo::for_policy(&config.policy_file, config.city_db.as_deref())
        .inspect_err(|e| tracing::error!("{e}"))?;
    if geo.city_level() {
        tracing::info!("travel is measured between cities (city database loaded)");
    } else {
        tracing::warn!(
            "travel is measured between countries: no city database (scripts/geo/fetch-city-db.sh puts one in the policy layer)"
        );
    }
    if geo.owner_level() {
        tracing::info!("networks are compared by owner (ASN data in the policy layer)");
    }
    let sdk = load_sdk_config(Duration::from_secs(20)).await;
    let sink =
        function_sink(&sdk, &config.alert_topic_arn, config.alert_webhook_secret_arn.as_deref())
            .await?;
    let function = SigninAnomalyHandler {
        lookup: CloudTrailLookup::new(idc_guard::adapters::cloudtrail_client(&sdk)),
        objects: S3LogObjects::new(s3_client(&sdk)),
        store: DynamoStateStore::new(&sdk, config.state_table),
        directory: IdentityStoreDirectory::new(idc_guard::adapters::identitystore_client(&sdk)),
        sink,
        privileged: policy.privileged,
        settings: Arc::new(policy.settings),
        geo: Arc::new(geo),
        sweep: SweepSettings::default(),
    };
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        invocation(function.handle(event.payload)).await
    }))
    .await
}
