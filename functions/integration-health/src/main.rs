//! integration-health: wiring only. The checks are `idc_guard::health`.

use std::time::Duration;

use idc_guard::adapters::okta::LazyOktaClient;
use idc_guard::adapters::{
    DynamoStateStore, SdkIdentityCenter, SecretsManagerStore, SqsQueue, function_sink,
    load_sdk_config,
};
use idc_guard::config::HealthConfig;
use idc_guard::health::Doctor;
use idc_guard::health::settings::HealthSettings;
use idc_guard::telemetry::metrics::invocation;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    idc_guard::telemetry::init_lambda();
    idc_guard::records::set_writer(env!("CARGO_BIN_NAME"));
    let config = HealthConfig::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    let text = std::fs::read_to_string(&config.policy_file).map_err(|e| {
        let message = format!("cannot read the policy file {}: {e}", config.policy_file.display());
        tracing::error!("{message}");
        message
    })?;
    let settings =
        HealthSettings::from_policy_text(&text).inspect_err(|e| tracing::error!("{e}"))?;
    let sdk = load_sdk_config(Duration::from_secs(20)).await;
    let sink =
        function_sink(&sdk, &config.alert_topic_arn, config.alert_webhook_secret_arn.as_deref())
            .await?;
    // Read on first use: a bad credential fails the Okta checks with the reason, not the start.
    let okta = LazyOktaClient::new(
        SecretsManagerStore::new(&sdk),
        &config.okta_api_secret_arn,
        &config.okta_org_url,
    )?;
    let idc = SdkIdentityCenter::new(&sdk);
    let store = DynamoStateStore::new(&sdk, &config.state_table);
    let queue = SqsQueue::new(&sdk, &config.event_queue_url);
    let doctor = Doctor {
        okta: &okta,
        idc: &idc,
        store: &store,
        sink: &sink,
        queue: Some(&queue),
        settings: &settings,
        instance_arn: config.instance_arn.as_deref(),
        report_only: false,
    };
    let doctor = &doctor;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        invocation(doctor.handle(&event.payload, chrono::Utc::now())).await
    }))
    .await
}
