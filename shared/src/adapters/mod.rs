//! Adapters: every implementation of a port that talks to something outside the process — the
//! AWS SDK clients (IAM Identity Center, Organizations, Secrets Manager, SQS, SNS, CloudTrail,
//! S3, DynamoDB, Security Hub, the account access manager), Okta's and IdC's SCIM HTTP APIs,
//! Okta's published keys, Slack's Web API, the alert webhook — and the embedded SQLite
//! store. The ports themselves live beside the domain that needs them (`access/ports.rs`,
//! `okta/ports.rs`, `scim/ports.rs`, `signin/ports.rs`, `secret.rs`, `store/`, `alert.rs`).
//!
//! An adapter translates and nothing more: it imports the port and its data types, never domain
//! logic, and no domain module imports an adapter. Integration tests point the SDK adapters at
//! the local AWS endpoint (moto); unit tests use in-memory fakes of the ports.

mod account_access;
mod any_store;
mod api_metrics;
mod cloudtrail;
mod dynamodb;
mod identity_center;
pub mod okta;
mod organizations;
mod scim_probe;
mod secrets_manager;
mod security_hub;
pub mod slack;
mod sns;
mod sqlite;
mod sqs;
mod webhook;

use std::time::Duration;

pub use account_access::SdkAccountAccess;
pub use any_store::AnyStore;
pub use api_metrics::ApiCallMetrics;
pub(crate) use api_metrics::sdk_client;
pub use cloudtrail::{CloudTrailLookup, IdentityStoreDirectory, S3LedgerArchive, S3LogObjects};
pub use dynamodb::DynamoStateStore;
pub use identity_center::SdkIdentityCenter;
pub use okta::{LazyOktaClient, OktaClient, OktaPublicKeys};
pub use organizations::SdkOrganizations;
pub use scim_probe::HttpScimProbe;
pub use secrets_manager::SecretsManagerStore;
pub use security_hub::SecurityHubSink;
pub use slack::SlackWebClient;
pub use sns::{FunctionSink, SinkSetupError, SnsAlertSink, function_sink};
pub use sqlite::SqliteStateStore;
pub use sqs::{SqsQueue, SqsRequeue};
pub use webhook::WebhookAlertSink;

/// A CloudTrail client with [`ApiCallMetrics`] attached.
pub fn cloudtrail_client(sdk: &aws_config::SdkConfig) -> aws_sdk_cloudtrail::Client {
    sdk_client!(aws_sdk_cloudtrail, sdk)
}

/// An Identity Store client with [`ApiCallMetrics`] attached.
pub fn identitystore_client(sdk: &aws_config::SdkConfig) -> aws_sdk_identitystore::Client {
    sdk_client!(aws_sdk_identitystore, sdk)
}

/// Loads the SDK configuration from the environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, the
/// standard credential chain) with timeouts that fit a caller's time budget.
pub async fn load_sdk_config(operation_timeout: Duration) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(operation_timeout.min(Duration::from_secs(1)))
        .operation_attempt_timeout(operation_timeout / 2)
        .operation_timeout(operation_timeout)
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await
}

/// An S3 client. With a custom endpoint (`AWS_ENDPOINT_URL`, local runs) addressing is
/// path-style, since a loopback endpoint has no per-bucket host names.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = sdk.endpoint_url().is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(custom_endpoint)
            .interceptor(ApiCallMetrics)
            .build(),
    )
}
