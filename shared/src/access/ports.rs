//! The access domain's ports: IAM Identity Center and Organizations as the reconciler sees them,
//! and the backoff for failed queue records. Adapters: `adapters/identity_center.rs`,
//! `adapters/organizations.rs`, `adapters/sqs.rs`.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use aws_lambda_events::sqs::SqsMessage;

use super::plan::{Account, Group};
use super::policy::{CustomerManagedPolicy, PermissionSetSpec, PermissionsBoundary};
use crate::error::AwsError;

/// The IAM Identity Center instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdcInstance {
    /// Its ARN.
    pub instance_arn: String,
    /// The identity store that holds its users and groups.
    pub identity_store_id: String,
}

/// A permission set as `DescribePermissionSet` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionSetInfo {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// ISO-8601 session duration (`PT1H`).
    pub session_duration: Option<String>,
    /// Its relay state.
    pub relay_state: Option<String>,
}

impl PermissionSetInfo {
    /// What IdC reports for a permission set just created from `spec` under `arn`.
    pub fn of_spec(arn: &str, spec: &PermissionSetSpec) -> Self {
        Self {
            arn: arn.to_owned(),
            name: spec.name.clone(),
            description: spec.description.clone(),
            session_duration: Some(spec.session_duration.clone()),
            relay_state: spec.relay_state.clone(),
        }
    }
}

/// The policies attached to a permission set (inline policy as compact JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSetPolicies {
    /// AWS managed policy ARNs.
    pub managed: BTreeSet<String>,
    /// Customer managed policy references.
    pub customer_managed: BTreeSet<CustomerManagedPolicy>,
    /// The inline policy.
    pub inline: Option<String>,
    /// The permissions boundary (read only when asked).
    pub boundary: Option<PermissionsBoundary>,
}

/// An assignment as sso-admin reports it for a principal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ActualAssignment {
    /// The account.
    pub account_id: String,
    /// The permission set's ARN.
    pub permission_set_arn: String,
}

/// A way into an account that is not an account assignment: an entitlement of AWS's account
/// access manager lets an IAM Identity Center user or group assume one IAM role in one account.
/// No deny can be written there through IAM Identity Center; the entitlement must be deleted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct RoleEntitlement {
    /// The entitlement's id.
    pub id: String,
    /// The account access manager application it belongs to.
    pub application_arn: String,
    /// Who holds it: `USER:<id>` or `GROUP:<id>` (Identity Store ids).
    pub principal: String,
    /// The IAM role it lets the principal assume.
    pub role_arn: String,
    /// The account of that role.
    pub account_id: String,
}

/// AWS's account access manager: the second way to give IAM Identity Center principals access
/// to accounts (entitlements to assume an IAM role). Object-safe, so a handler can hold one
/// whatever its other ports are.
pub trait AccountAccess: Send + Sync {
    /// The entitlements held by any of these principals (`USER:<id>`, `GROUP:<id>`):
    /// `ListApplications`, then `ListEntitlements` filtered by each principal.
    fn role_entitlements<'a>(
        &'a self,
        principals: &'a [String],
    ) -> futures::future::BoxFuture<'a, Result<Vec<RoleEntitlement>, AwsError>>;
    /// Every principal-role entitlement of every application (`ListEntitlements` with an empty
    /// principal-role filter): the access ledger's view.
    fn all_role_entitlements(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<Vec<RoleEntitlement>, AwsError>>;
}

/// An Identity Store user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct IdcUser {
    /// The Identity Store user id.
    pub id: String,
    /// The user name (the SAML NameID: Okta's login).
    pub user_name: String,
}

/// Who holds an account assignment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    /// A group, by Identity Store id.
    Group(String),
    /// A user (a direct assignment), by Identity Store id.
    User(String),
}

/// The whole estate as the access ledger and `policy import` read it, beyond what the
/// reconciler needs: every user and membership, and assignments per permission set and account
/// (which finds direct user assignments too). Each method is paginated.
pub trait Estate: IdentityCenter {
    /// `ListUsers` of the identity store.
    fn list_users(
        &self,
        store: &str,
    ) -> impl Future<Output = Result<Vec<IdcUser>, AwsError>> + Send;
    /// `ListGroupMemberships`: the user ids of a group's members.
    fn group_member_ids(
        &self,
        store: &str,
        group_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
    /// `ListAccountsForProvisionedPermissionSet`: the accounts a set is provisioned to (an
    /// assignment of it can exist only there).
    fn provisioned_accounts(
        &self,
        instance: &str,
        permission_set_arn: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
    /// `ListAccountAssignments` of one permission set in one account: users and groups.
    fn account_assignments(
        &self,
        instance: &str,
        account_id: &str,
        permission_set_arn: &str,
    ) -> impl Future<Output = Result<Vec<Principal>, AwsError>> + Send;
}

/// State of an asynchronous assignment creation or deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationStatus {
    /// Accepted, not finished.
    InProgress,
    /// Finished.
    Succeeded,
    /// Failed, with IdC's reason.
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
    /// `ListGroups` of the identity store (paginated).
    fn list_groups(&self, store: &str)
    -> impl Future<Output = Result<Vec<Group>, AwsError>> + Send;
    /// `GetGroupId` by display name.
    fn find_group(
        &self,
        store: &str,
        display_name: &str,
    ) -> impl Future<Output = Result<Option<Group>, AwsError>> + Send;
    /// `DescribeGroup`; `None` when it no longer exists.
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
    /// The policies attached to a permission set; the boundary only when `read_boundary`.
    fn permission_set_policies(
        &self,
        instance: &str,
        arn: &str,
        read_boundary: bool,
    ) -> impl Future<Output = Result<PermissionSetPolicies, AwsError>> + Send;
    /// `CreatePermissionSet`; returns its ARN.
    fn create_permission_set(
        &self,
        instance: &str,
        spec: &PermissionSetSpec,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// `UpdatePermissionSet`: description, session duration, relay state.
    fn update_permission_set(
        &self,
        instance: &str,
        arn: &str,
        spec: &PermissionSetSpec,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Attaches (`attach`) or detaches an AWS managed policy.
    fn attach_managed_policy(
        &self,
        instance: &str,
        arn: &str,
        policy_arn: &str,
        attach: bool,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Attaches (`attach`) or detaches a customer managed policy reference.
    fn attach_customer_managed_policy(
        &self,
        instance: &str,
        arn: &str,
        policy: &CustomerManagedPolicy,
        attach: bool,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Puts the inline policy, or deletes it (`None`).
    fn set_inline_policy(
        &self,
        instance: &str,
        arn: &str,
        policy: Option<&str>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Puts the permissions boundary.
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
    /// A user's direct assignments in every account (`ListAccountAssignmentsForPrincipal` with
    /// `PrincipalType USER`, paginated).
    fn list_user_assignments(
        &self,
        instance: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<ActualAssignment>, AwsError>> + Send;
    /// Re-provisions a permission set to one account (`TargetType AWS_ACCOUNT`); returns the
    /// request id. Used to learn which accounts a failed provisioning left behind.
    fn provision_to_account(
        &self,
        instance: &str,
        arn: &str,
        account_id: &str,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// `CreateAccountAssignment` for a group; returns the request id and its first status.
    fn create_assignment(
        &self,
        instance: &str,
        group_id: &str,
        ps_arn: &str,
        account: &str,
    ) -> impl Future<Output = Result<(String, OperationStatus), AwsError>> + Send;
    /// `DeleteAccountAssignment` for a group; returns the request id and its first status.
    fn delete_assignment(
        &self,
        instance: &str,
        group_id: &str,
        ps_arn: &str,
        account: &str,
    ) -> impl Future<Output = Result<(String, OperationStatus), AwsError>> + Send;
    /// `GetUserId` by user name (the SAML NameID, Okta's login); `None` when there is no such user.
    fn find_user_id(
        &self,
        store: &str,
        user_name: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;
    /// `ListGroupMembershipsForMember`: the ids of the groups a user belongs to (paginated).
    fn user_group_ids(
        &self,
        store: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
    /// `DescribePermissionSetProvisioningStatus` of a `ProvisionPermissionSet` request.
    fn provisioning_status(
        &self,
        instance: &str,
        request_id: &str,
    ) -> impl Future<Output = Result<OperationStatus, AwsError>> + Send;
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
    /// Every account, with status, OU path and (when asked) tags.
    pub accounts: Vec<Account>,
    /// The management account.
    pub management_account_id: Option<String>,
    /// Every root and OU id (OUs without accounts included).
    pub organizational_units: std::collections::BTreeSet<String>,
    /// API calls it took.
    pub calls: usize,
}

/// AWS Organizations: accounts with status, OU path and (when asked) tags.
pub trait Organizations: Send + Sync {
    /// Reads the organization; tags (one `ListTagsForResource` per account) only `with_tags`.
    fn snapshot(
        &self,
        with_tags: bool,
    ) -> impl Future<Output = Result<OrgSnapshot, AwsError>> + Send;
}

/// Delays a failed queue record's next delivery (SQS `ChangeMessageVisibility`). Boxed, so the
/// handler holds it without another type parameter.
pub trait RecordDelay: Send + Sync {
    /// Makes `record` visible again after `by`.
    fn delay<'a>(
        &'a self,
        record: &'a SqsMessage,
        by: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<(), AwsError>> + Send + 'a>>;
}

/// Exponential backoff for failed queue records: `base × 2^(receive count − 1)`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first retry's delay.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: Duration::from_secs(30), max: Duration::from_secs(900) }
    }
}

impl Backoff {
    /// The delay before delivery number `receive_count + 1`.
    pub fn delay_for(&self, receive_count: u32) -> Duration {
        let factor = 2u32.saturating_pow(receive_count.saturating_sub(1).min(16));
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Redelivers failed queue records after a [`Backoff`] (without it, the queue's visibility
/// timeout decides).
pub struct Requeue {
    /// The delays.
    pub backoff: Backoff,
    /// Where they are applied.
    pub queue: Box<dyn RecordDelay>,
}

impl std::fmt::Debug for Requeue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requeue").field("backoff", &self.backoff).finish_non_exhaustive()
    }
}

impl Requeue {
    /// Delays `record` by the backoff for its receive count.
    pub async fn delay(&self, record: &SqsMessage) -> Result<(), AwsError> {
        let count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        self.queue.delay(record, self.backoff.delay_for(count)).await
    }
}
