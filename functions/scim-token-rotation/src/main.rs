//! scim-token-rotation: wiring only. Its capability (SCIM token and event-hook secret rotation) arrives with its own issue;
//! until then every invocation fails loudly with a typed `NotImplemented` error.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    idc_guard::telemetry::init_lambda();
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        idc_guard::error::not_implemented("SCIM token and event-hook secret rotation", event)
    }))
    .await
}
