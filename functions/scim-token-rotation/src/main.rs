//! scim-token-rotation: wiring only. The logic is `idc_guard::scim`.

use std::time::Duration;

use idc_guard::adapters::DynamoStateStore;
use idc_guard::adapters::HttpScimProbe;
use idc_guard::adapters::function_sink;
use idc_guard::adapters::okta::LazyOktaClient;
use idc_guard::adapters::{SecretsManagerStore, load_sdk_config};
use idc_guard::config::ScimRotationConfig;
use idc_guard::scim::ScimRotationHandler;
use idc_guard::scim::rotation::Rotator;
use idc_guard::telemetry::metrics::invocation;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    idc_guard::telemetry::init_lambda();
    idc_guard::records::set_writer(env!("CARGO_BIN_NAME"));
    let config = ScimRotationConfig::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    let sdk = load_sdk_config(Duration::from_secs(10)).await;
    let secrets = SecretsManagerStore::new(&sdk);
    // Read on first use: the daily token check must run even when the Okta credential is bad.
    let okta =
        LazyOktaClient::new(secrets.clone(), &config.okta_api_secret_arn, &config.okta_org_url)?;
    let sink =
        function_sink(&sdk, &config.alert_topic_arn, config.alert_webhook_secret_arn.as_deref())
            .await?;
    let store = DynamoStateStore::new(&sdk, &config.state_table);
    let probe = HttpScimProbe::default();
    let function = ScimRotationHandler {
        rotator: Rotator {
            secrets: &secrets,
            okta: &okta,
            probe: &probe,
            sink: &sink,
            store: &store,
            event_hook_id: Some(&config.okta_event_hook_id),
            okta_app_id: Some(&config.okta_aws_app_id),
        },
        scim_secret_id: &config.scim_token_secret_arn,
        hook_secret_id: Some(&config.hook_secret_arn),
    };
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        invocation(function.handle(event.payload)).await
    }))
    .await
}
