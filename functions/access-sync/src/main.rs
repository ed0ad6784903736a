//! access-sync: wiring only. Its capability (access sync (policy reconcile and Okta event worker)) arrives with its own issue;
//! until then every invocation fails loudly with a typed `NotImplemented` error.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    idc_guard::telemetry::init_lambda();
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        idc_guard::error::not_implemented(
            "access sync (policy reconcile and Okta event worker)",
            event,
        )
    }))
    .await
}
