//! okta-event-hook: wiring only. The endpoint's logic is `idc_guard::okta::hook`.

use std::time::Duration;

use idc_guard::adapters::{SecretsManagerStore, SqsQueue, load_sdk_config};
use idc_guard::config::HookConfig;
use idc_guard::okta::hook::{EventHookHandler, HookAuthenticator};
use idc_guard::telemetry::metrics::invocation;
use lambda_http::{Error, Request, service_fn};

/// Each AWS call must leave room inside Okta's 3-second budget for the other.
const AWS_OPERATION_TIMEOUT: Duration = Duration::from_millis(1200);

#[tokio::main]
async fn main() -> Result<(), Error> {
    idc_guard::telemetry::init_lambda();
    let config = HookConfig::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    let sdk = load_sdk_config(AWS_OPERATION_TIMEOUT).await;
    let auth = HookAuthenticator::new(SecretsManagerStore::new(&sdk), config.hook_secret_arn);
    let service = EventHookHandler::new(auth, SqsQueue::new(&sdk, config.event_queue_url));
    let service = &service;
    lambda_http::run(service_fn(move |req: Request| invocation(service.handle_http(req)))).await
}
