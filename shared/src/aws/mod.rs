//! Ports (small traits) over the AWS APIs idc-guard uses, and their SDK-backed adapters.
//!
//! Handlers are generic over these traits. Production and integration tests use the adapters in
//! this module (integration tests point them at the local AWS endpoint); unit tests may use
//! in-memory fakes of the traits.

mod identity_center;
mod organizations;
mod secrets;
mod sqs;
mod trail;

use std::future::Future;
use std::time::Duration;

pub use identity_center::SdkIdentityCenter;
pub use organizations::SdkOrganizations;
pub use secrets::{SecretAdmin, SecretDescription, SecretsManagerStore};
pub use sqs::SqsQueue;
pub use trail::{CloudTrailLookup, IdentityStoreDirectory, S3LogObjects};

use std::collections::BTreeSet;

use crate::access::plan::{Account, Group};
use crate::access::policy::{CustomerManagedPolicy, PermissionSetSpec, PermissionsBoundary};
use crate::error::AwsError;
use crate::secret::SecretString;

/// Secrets Manager staging labels.
pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// Read access to secrets by staging label.
pub trait SecretStore: Send + Sync {
    /// The secret string of the version carrying `stage`, or `None` when no version carries
    /// that label (for example no rotation is in progress, so there is no `AWSPENDING`).
    fn secret_string(
        &self,
        secret_id: &str,
        stage: &str,
    ) -> impl Future<Output = Result<Option<SecretString>, AwsError>> + Send;
}

/// One message for a FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub body: String,
    pub group_id: String,
    pub deduplication_id: String,
    /// String message attributes (name, value).
    pub attributes: Vec<(&'static str, String)>,
}

/// A message the queue did not accept, by its index in the batch given to `send_batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedMessage {
    pub index: usize,
    pub code: String,
    /// True when SQS blames the request (retrying the same message cannot succeed).
    pub sender_fault: bool,
}

/// SQS accepts at most 10 entries per `SendMessageBatch`...
pub const SQS_MAX_BATCH: usize = 10;
/// ... and at most 256 KiB of payload per batch, and so per message.
pub const SQS_MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// A FIFO queue.
pub trait EventQueue: Send + Sync {
    /// Sends up to [`SQS_MAX_BATCH`] messages in one call. `Ok` lists the messages that
    /// were not accepted (empty when all were); `Err` means the call as a whole failed.
    fn send_batch(
        &self,
        messages: &[QueueMessage],
    ) -> impl Future<Output = Result<Vec<RejectedMessage>, AwsError>> + Send;
}

/// The IAM Identity Center instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdcInstance {
    pub instance_arn: String,
    pub identity_store_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionSetInfo {
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    pub session_duration: Option<String>,
    pub relay_state: Option<String>,
}

/// The policies attached to a permission set (inline policy as compact JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSetPolicies {
    pub managed: BTreeSet<String>,
    pub customer_managed: BTreeSet<CustomerManagedPolicy>,
    pub inline: Option<String>,
    pub boundary: Option<PermissionsBoundary>,
}

/// An assignment as sso-admin reports it for a principal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ActualAssignment {
    pub account_id: String,
    pub permission_set_arn: String,
}

/// State of an asynchronous assignment creation or deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationStatus {
    InProgress,
    Succeeded,
    Failed(String),
}

/// IAM Identity Center: sso-admin (instance, permission sets, assignments) and the identity store.
/// Each method is one API call unless it says otherwise (pagination, list + describe).
pub trait IdentityCenter: Send + Sync {
    /// `ListInstances`; `configured_arn` picks one when several exist.
    fn instance(
        &self,
        configured_arn: Option<&str>,
    ) -> impl Future<Output = Result<IdcInstance, AwsError>> + Send;
    fn list_groups(&self, store: &str)
    -> impl Future<Output = Result<Vec<Group>, AwsError>> + Send;
    /// `GetGroupId` by display name.
    fn find_group(
        &self,
        store: &str,
        display_name: &str,
    ) -> impl Future<Output = Result<Option<Group>, AwsError>> + Send;
    fn describe_group(
        &self,
        store: &str,
        group_id: &str,
    ) -> impl Future<Output = Result<Option<Group>, AwsError>> + Send;
    /// User names of a group's members (`ListGroupMemberships` + `DescribeUser` each).
    fn list_group_member_names(
        &self,
        store: &str,
        group_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
    /// `ListPermissionSets` + `DescribePermissionSet` for each.
    fn list_permission_sets(
        &self,
        instance: &str,
    ) -> impl Future<Output = Result<Vec<PermissionSetInfo>, AwsError>> + Send;
    fn permission_set_policies(
        &self,
        instance: &str,
        arn: &str,
        read_boundary: bool,
    ) -> impl Future<Output = Result<PermissionSetPolicies, AwsError>> + Send;
    fn create_permission_set(
        &self,
        instance: &str,
        spec: &PermissionSetSpec,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
    fn update_permission_set(
        &self,
        instance: &str,
        arn: &str,
        spec: &PermissionSetSpec,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn attach_managed_policy(
        &self,
        instance: &str,
        arn: &str,
        policy_arn: &str,
        attach: bool,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn attach_customer_managed_policy(
        &self,
        instance: &str,
        arn: &str,
        policy: &CustomerManagedPolicy,
        attach: bool,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn set_inline_policy(
        &self,
        instance: &str,
        arn: &str,
        policy: Option<&str>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn set_permissions_boundary(
        &self,
        instance: &str,
        arn: &str,
        boundary: &PermissionsBoundary,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Re-provisions to every account the set is provisioned to; returns the request id.
    fn provision_permission_set(
        &self,
        instance: &str,
        arn: &str,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// A group's assignments in every account (`ListAccountAssignmentsForPrincipal`), and the
    /// number of pages (API calls) it took.
    fn list_group_assignments(
        &self,
        instance: &str,
        group_id: &str,
    ) -> impl Future<Output = Result<(Vec<ActualAssignment>, usize), AwsError>> + Send;
    fn create_assignment(
        &self,
        instance: &str,
        group_id: &str,
        ps_arn: &str,
        account: &str,
    ) -> impl Future<Output = Result<(String, OperationStatus), AwsError>> + Send;
    fn delete_assignment(
        &self,
        instance: &str,
        group_id: &str,
        ps_arn: &str,
        account: &str,
    ) -> impl Future<Output = Result<(String, OperationStatus), AwsError>> + Send;
    /// `DescribeAccountAssignmentCreationStatus` (creation) or `...DeletionStatus`.
    fn assignment_status(
        &self,
        instance: &str,
        request_id: &str,
        creation: bool,
    ) -> impl Future<Output = Result<OperationStatus, AwsError>> + Send;
}

/// The organization as the planner needs it.
#[derive(Debug, Clone, Default)]
pub struct OrgSnapshot {
    pub accounts: Vec<Account>,
    pub management_account_id: Option<String>,
    /// Every root and OU id (OUs without accounts included).
    pub organizational_units: std::collections::BTreeSet<String>,
    /// API calls it took.
    pub calls: usize,
}

/// AWS Organizations: accounts with status, OU path and (when asked) tags.
pub trait Organizations: Send + Sync {
    fn snapshot(
        &self,
        with_tags: bool,
    ) -> impl Future<Output = Result<OrgSnapshot, AwsError>> + Send;
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
        aws_sdk_s3::config::Builder::from(sdk).force_path_style(custom_endpoint).build(),
    )
}
