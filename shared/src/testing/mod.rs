//! Test support: in-memory fakes of the access ports that enforce IAM Identity Center's and
//! Organizations' documented rules, shared by unit tests, integration tests and benchmarks
//! (`features = ["test-support"]` outside this crate's own tests).
//!
//! [`FakeIdentityCenter`] enforces what moto does not:
//! - sso-admin's request rate: a token bucket of `rate` requests per second (burst `rate`,
//!   default 20); a request beyond it fails with a retryable `ThrottlingException`;
//! - at most 10 assignment operations (create or delete) in flight; an 11th is throttled;
//! - assignment operations complete asynchronously, `completion` after they were accepted
//!   (default 1 s, on tokio's clock, so paused-time tests run instantly);
//! - permission set names are unique (`ConflictException`), a session duration is 1–12 h;
//! - `ListAccountAssignments` pages hold 100 assignments, each page one request.
//!
//! - a permission set's provisioning fails in every account when its inline policy is over IAM's
//!   role-policy quota (10,240 characters, whitespace excluded): `PutInlinePolicyToPermissionSet`
//!   accepts up to 32,768, but the role IdC creates in each account cannot hold more;
//! - user (direct) assignments beside group assignments, both listed per principal.
//!
//! Reads and operations can be made to fail for one group or account, for the deletion guard's
//! tests, and provisioning can be made to fail in one account. [`FakeAccountAccess`] follows the
//! account access manager's API reference (applications, principal-role entitlements), which
//! the local AWS stand-in lacks. Every counter is public, so tests and benchmarks can report calls and throttles.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::access::plan::{Account, AccountStatus, Group};
use crate::access::policy::{CustomerManagedPolicy, PermissionSetSpec, PermissionsBoundary};
use crate::access::ports::{
    ActualAssignment, IdcInstance, IdentityCenter, OperationStatus, OrgSnapshot, Organizations,
    PermissionSetInfo, PermissionSetPolicies,
};
use crate::error::AwsError;

/// The fake's instance ARN.
pub const INSTANCE_ARN: &str = "arn:aws:sso:::instance/ssoins-fake";
/// The fake's identity store id.
pub const IDENTITY_STORE_ID: &str = "d-fake";
/// At most this many assignment operations in flight (IdC's documented quota).
pub const MAX_OUTSTANDING_OPERATIONS: usize = 10;

fn throttled(operation: &'static str) -> AwsError {
    AwsError::Retryable { service: "sso-admin", operation, message: "ThrottlingException".into() }
}

fn refused(operation: &'static str, message: String) -> AwsError {
    AwsError::Permanent { service: "sso-admin", operation, message }
}

/// An assignment: (group id, permission set ARN, account id).
pub type AssignmentKey = (String, String, String);

#[derive(Debug, Clone)]
struct Operation {
    assignment: AssignmentKey,
    create: bool,
    completes_at: Instant,
    fails: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    bucket: f64,
    refilled: Option<Instant>,
    groups: Vec<Group>,
    permission_sets: BTreeMap<String, (PermissionSetInfo, PermissionSetPolicies)>,
    assignments: BTreeSet<AssignmentKey>,
    operations: HashMap<String, Operation>,
    next_id: u64,
    unreadable_groups: BTreeSet<String>,
    failing_accounts: BTreeSet<String>,
    /// user name → user id
    users: BTreeMap<String, String>,
    /// (group id, user id)
    memberships: BTreeSet<(String, String)>,
    /// provisioning request id → when it completes, and why it fails (if it does)
    provisioning: HashMap<String, (Instant, Option<String>)>,
    /// (user id, permission set ARN, account id)
    user_assignments: BTreeSet<AssignmentKey>,
    /// Accounts where provisioning fails.
    failing_provisioning: BTreeSet<String>,
    /// Accounts whose assignments cannot be listed.
    unreadable_accounts: BTreeSet<String>,
}

/// IAM's quota for a role's inline policies: characters, whitespace excluded.
pub const IAM_ROLE_POLICY_CHARS: usize = 10_240;

impl State {
    /// Why provisioning `arn` to `account` fails, if it does.
    fn provisioning_failure(&self, arn: &str, account: &str) -> Option<String> {
        let inline = self.permission_sets.get(arn).and_then(|(_, p)| p.inline.as_deref());
        let size = inline.map_or(0, |i| i.chars().filter(|c| !c.is_whitespace()).count());
        if size > IAM_ROLE_POLICY_CHARS {
            return Some(format!(
                "LimitExceeded: the inline policy ({size} characters without whitespace) exceeds the role policy quota of {IAM_ROLE_POLICY_CHARS} in account {account}"
            ));
        }
        self.failing_provisioning
            .contains(account)
            .then(|| format!("provisioning failed in account {account}"))
    }

    /// The accounts a permission set is provisioned to: those with an assignment of it.
    fn provisioned_accounts(&self, arn: &str) -> BTreeSet<String> {
        self.assignments
            .iter()
            .chain(&self.user_assignments)
            .filter(|(_, p, _)| p == arn)
            .map(|(_, _, a)| a.clone())
            .collect()
    }
}

/// An in-memory IAM Identity Center that enforces its quotas (see the module header).
#[derive(Debug)]
pub struct FakeIdentityCenter {
    state: Mutex<State>,
    /// sso-admin requests per second (and burst).
    pub rate: f64,
    /// How long an accepted assignment operation takes.
    pub completion: Duration,
    /// sso-admin requests made (throttled ones included).
    pub sso_calls: AtomicUsize,
    /// Requests refused for the rate or the in-flight quota.
    pub throttled: AtomicUsize,
    /// identitystore requests made.
    pub identity_store_calls: AtomicUsize,
    /// The most assignment operations seen in flight at once.
    pub max_in_flight: AtomicUsize,
    /// Every sso-admin request is refused (an outage, or a role that lost its permissions).
    pub down: std::sync::atomic::AtomicBool,
}

impl Default for FakeIdentityCenter {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeIdentityCenter {
    /// An empty instance with IdC's default quotas.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State { bucket: 20.0, ..Default::default() }),
            rate: 20.0,
            completion: Duration::from_secs(1),
            sso_calls: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
            identity_store_calls: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            down: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a group; returns its id.
    pub fn add_group(&self, display_name: &str) -> String {
        let mut s = self.lock();
        s.next_id += 1;
        let id = format!("g-{:04}", s.next_id);
        s.groups.push(Group { id: id.clone(), display_name: display_name.to_owned() });
        id
    }

    /// Renames a group (as a SCIM push of an Okta rename does).
    pub fn rename_group(&self, id: &str, display_name: &str) {
        if let Some(g) = self.lock().groups.iter_mut().find(|g| g.id == id) {
            g.display_name = display_name.to_owned();
        }
    }

    /// Adds an existing permission set with these managed policies; returns its ARN.
    pub fn add_permission_set(&self, name: &str, managed: &[&str]) -> String {
        let mut s = self.lock();
        s.next_id += 1;
        let arn = format!("arn:aws:sso:::permissionSet/ssoins-fake/ps-{:04}", s.next_id);
        let info = PermissionSetInfo {
            arn: arn.clone(),
            name: name.to_owned(),
            description: None,
            session_duration: Some("PT1H".into()),
            relay_state: None,
        };
        let policies = PermissionSetPolicies {
            managed: managed.iter().map(|m| (*m).to_owned()).collect(),
            ..Default::default()
        };
        s.permission_sets.insert(arn.clone(), (info, policies));
        arn
    }

    /// The ARN of a permission set by name.
    pub fn permission_set_arn(&self, name: &str) -> Option<String> {
        self.lock()
            .permission_sets
            .values()
            .find(|(i, _)| i.name == name)
            .map(|(i, _)| i.arn.clone())
    }

    /// A permission set's policies, by name.
    pub fn policies_of(&self, name: &str) -> Option<PermissionSetPolicies> {
        self.lock().permission_sets.values().find(|(i, _)| i.name == name).map(|(_, p)| p.clone())
    }

    /// Puts an assignment in place directly (no quota), by permission set name.
    pub fn assign(&self, group_id: &str, permission_set: &str, account_id: &str) {
        let arn = self.permission_set_arn(permission_set).expect("a known permission set");
        self.lock().assignments.insert((group_id.into(), arn, account_id.into()));
    }

    /// Settles finished operations and returns the assignments as (group id, permission set
    /// name, account id).
    pub fn assignments(&self) -> BTreeSet<(String, String, String)> {
        let mut s = self.lock();
        Self::settle(&mut s);
        s.assignments
            .iter()
            .map(|(g, p, a)| {
                let name =
                    s.permission_sets.get(p).map(|(i, _)| i.name.clone()).unwrap_or_default();
                (g.clone(), name, a.clone())
            })
            .collect()
    }

    /// `ListAccountAssignmentsForPrincipal` fails for this group from now on.
    pub fn fail_reads_of_group(&self, group_id: &str) {
        self.lock().unreadable_groups.insert(group_id.to_owned());
    }

    /// `ListAccountAssignments` fails in this account from now on.
    pub fn fail_reads_in(&self, account_id: &str) {
        self.lock().unreadable_accounts.insert(account_id.to_owned());
    }

    /// Assignment operations in this account are accepted and then fail.
    pub fn fail_operations_in(&self, account_id: &str) {
        self.lock().failing_accounts.insert(account_id.to_owned());
    }

    /// Provisioning of any permission set to this account fails from now on.
    pub fn fail_provisioning_in(&self, account_id: &str) {
        self.lock().failing_provisioning.insert(account_id.to_owned());
    }

    /// Provisioning to this account works again.
    pub fn heal_provisioning_in(&self, account_id: &str) {
        self.lock().failing_provisioning.remove(account_id);
    }

    /// Puts a direct (user) assignment in place, by permission set name.
    pub fn assign_user(&self, user_id: &str, permission_set: &str, account_id: &str) {
        let arn = self.permission_set_arn(permission_set).expect("a known permission set");
        self.lock().user_assignments.insert((user_id.into(), arn, account_id.into()));
    }

    /// Removes a user from a group (as SCIM does).
    pub fn remove_member(&self, group_id: &str, user_id: &str) {
        self.lock().memberships.remove(&(group_id.to_owned(), user_id.to_owned()));
    }

    /// Replaces a permission set's inline policy directly (a person in the console, IaC).
    pub fn put_inline_policy(&self, name: &str, document: Option<&str>) {
        let arn = self.permission_set_arn(name).expect("a known permission set");
        if let Some((_, p)) = self.lock().permission_sets.get_mut(&arn) {
            p.inline = document.map(str::to_owned);
        }
    }

    /// Adds a user (as SCIM does); returns its id.
    pub fn add_user(&self, user_name: &str) -> String {
        let mut s = self.lock();
        let id = format!("u-{:04}", s.users.len() + 1);
        s.users.insert(user_name.to_owned(), id.clone());
        id
    }

    /// Makes a user a member of a group.
    pub fn add_member(&self, group_id: &str, user_id: &str) {
        self.lock().memberships.insert((group_id.to_owned(), user_id.to_owned()));
    }

    /// The inline policy of a permission set, by name.
    pub fn inline_policy_of(&self, name: &str) -> Option<String> {
        self.policies_of(name).and_then(|p| p.inline)
    }

    /// One sso-admin request against the token bucket.
    fn quota(&self, operation: &'static str) -> Result<(), AwsError> {
        self.sso_calls.fetch_add(1, Ordering::Relaxed);
        if self.down.load(Ordering::Relaxed) {
            return Err(refused(
                operation,
                "AccessDeniedException: sso-admin is down for this test".into(),
            ));
        }
        let mut s = self.lock();
        let now = Instant::now();
        let elapsed = s.refilled.map(|t| now.duration_since(t).as_secs_f64()).unwrap_or(0.0);
        s.bucket = (s.bucket + elapsed * self.rate).min(self.rate);
        s.refilled = Some(now);
        if s.bucket < 1.0 {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(throttled(operation));
        }
        s.bucket -= 1.0;
        Ok(())
    }

    /// Completes the operations whose time has come; returns how many are still in flight.
    fn settle(s: &mut State) -> usize {
        let now = Instant::now();
        let done: Vec<String> = s
            .operations
            .iter()
            .filter(|(_, op)| op.completes_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in done {
            let Some(op) = s.operations.get(&id).cloned() else { continue };
            if op.fails.is_some() {
                continue; // kept, to report Failed
            }
            s.operations.remove(&id);
            if op.create {
                s.assignments.insert(op.assignment);
            } else {
                s.assignments.remove(&op.assignment);
            }
        }
        s.operations.values().filter(|op| op.completes_at > now).count()
    }

    fn start(
        &self,
        operation: &'static str,
        assignment: AssignmentKey,
        create: bool,
    ) -> Result<(String, OperationStatus), AwsError> {
        self.quota(operation)?;
        let mut s = self.lock();
        if !s.permission_sets.contains_key(&assignment.1) {
            return Err(refused(operation, "ResourceNotFoundException: permission set".into()));
        }
        let in_flight = Self::settle(&mut s);
        if in_flight >= MAX_OUTSTANDING_OPERATIONS {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(throttled(operation));
        }
        self.max_in_flight.fetch_max(in_flight + 1, Ordering::Relaxed);
        s.next_id += 1;
        let id = format!("req-{:06}", s.next_id);
        let fails = s
            .failing_accounts
            .contains(&assignment.2)
            .then(|| format!("the operation failed in account {}", assignment.2));
        let completes_at = Instant::now() + self.completion;
        s.operations.insert(id.clone(), Operation { assignment, create, completes_at, fails });
        Ok((id, OperationStatus::InProgress))
    }

    fn with_permission_set<T>(
        &self,
        operation: &'static str,
        arn: &str,
        f: impl FnOnce(&mut PermissionSetInfo, &mut PermissionSetPolicies) -> T,
    ) -> Result<T, AwsError> {
        self.quota(operation)?;
        let mut s = self.lock();
        let (info, policies) = s
            .permission_sets
            .get_mut(arn)
            .ok_or_else(|| refused(operation, format!("ResourceNotFoundException: {arn}")))?;
        Ok(f(info, policies))
    }
}

fn valid_session_duration(d: &str) -> bool {
    crate::access::policy::parse_session_duration(d).is_some()
}

impl IdentityCenter for FakeIdentityCenter {
    async fn instance(&self, configured: Option<&str>) -> Result<IdcInstance, AwsError> {
        self.quota("ListInstances")?;
        if let Some(arn) = configured.filter(|a| *a != INSTANCE_ARN) {
            return Err(refused("ListInstances", format!("no instance {arn}")));
        }
        Ok(IdcInstance {
            instance_arn: INSTANCE_ARN.into(),
            identity_store_id: IDENTITY_STORE_ID.into(),
        })
    }

    async fn list_groups(&self, _: &str) -> Result<Vec<Group>, AwsError> {
        self.identity_store_calls.fetch_add(1, Ordering::Relaxed);
        Ok(self.lock().groups.clone())
    }

    async fn find_group(&self, _: &str, name: &str) -> Result<Option<Group>, AwsError> {
        self.identity_store_calls.fetch_add(1, Ordering::Relaxed);
        Ok(self.lock().groups.iter().find(|g| g.display_name == name).cloned())
    }

    async fn describe_group(&self, _: &str, id: &str) -> Result<Option<Group>, AwsError> {
        self.identity_store_calls.fetch_add(1, Ordering::Relaxed);
        Ok(self.lock().groups.iter().find(|g| g.id == id).cloned())
    }

    async fn list_group_member_names(&self, _: &str, group: &str) -> Result<Vec<String>, AwsError> {
        self.identity_store_calls.fetch_add(1, Ordering::Relaxed);
        let s = self.lock();
        let mut names: Vec<String> = s
            .users
            .iter()
            .filter(|(_, id)| s.memberships.contains(&(group.to_owned(), (*id).clone())))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn list_permission_sets(&self, _: &str) -> Result<Vec<PermissionSetInfo>, AwsError> {
        // ListPermissionSets, then DescribePermissionSet for each.
        self.quota("ListPermissionSets")?;
        let infos: Vec<PermissionSetInfo> =
            self.lock().permission_sets.values().map(|(i, _)| i.clone()).collect();
        for _ in &infos {
            self.quota("DescribePermissionSet")?;
        }
        Ok(infos)
    }

    async fn permission_set_policies(
        &self,
        _: &str,
        arn: &str,
        read_boundary: bool,
    ) -> Result<PermissionSetPolicies, AwsError> {
        // Managed, customer managed, inline (and the boundary when asked): one call each.
        for _ in 0..(3 + usize::from(read_boundary)) {
            self.quota("GetPermissionSetPolicies")?;
        }
        let s = self.lock();
        let (_, p) = s
            .permission_sets
            .get(arn)
            .ok_or_else(|| refused("ListManagedPoliciesInPermissionSet", arn.to_owned()))?;
        let mut p = p.clone();
        if !read_boundary {
            p.boundary = None;
        }
        Ok(p)
    }

    async fn create_permission_set(
        &self,
        _: &str,
        spec: &PermissionSetSpec,
    ) -> Result<String, AwsError> {
        self.quota("CreatePermissionSet")?;
        if !valid_session_duration(&spec.session_duration) {
            return Err(refused("CreatePermissionSet", "ValidationException".into()));
        }
        let mut s = self.lock();
        if s.permission_sets.values().any(|(i, _)| i.name == spec.name) {
            return Err(refused(
                "CreatePermissionSet",
                format!("ConflictException: {} exists", spec.name),
            ));
        }
        s.next_id += 1;
        let arn = format!("arn:aws:sso:::permissionSet/ssoins-fake/ps-{:04}", s.next_id);
        let info = PermissionSetInfo::of_spec(&arn, spec);
        s.permission_sets.insert(arn.clone(), (info, PermissionSetPolicies::default()));
        Ok(arn)
    }

    async fn update_permission_set(
        &self,
        _: &str,
        arn: &str,
        spec: &PermissionSetSpec,
    ) -> Result<(), AwsError> {
        if !valid_session_duration(&spec.session_duration) {
            return Err(refused("UpdatePermissionSet", "ValidationException".into()));
        }
        self.with_permission_set("UpdatePermissionSet", arn, |info, _| {
            info.description = spec.description.clone();
            info.session_duration = Some(spec.session_duration.clone());
            info.relay_state = spec.relay_state.clone();
        })
    }

    async fn attach_managed_policy(
        &self,
        _: &str,
        arn: &str,
        policy_arn: &str,
        attach: bool,
    ) -> Result<(), AwsError> {
        self.with_permission_set("AttachManagedPolicyToPermissionSet", arn, |_, p| {
            if attach {
                p.managed.insert(policy_arn.to_owned());
            } else {
                p.managed.remove(policy_arn);
            }
        })
    }

    async fn attach_customer_managed_policy(
        &self,
        _: &str,
        arn: &str,
        policy: &CustomerManagedPolicy,
        attach: bool,
    ) -> Result<(), AwsError> {
        self.with_permission_set("AttachCustomerManagedPolicyReference", arn, |_, p| {
            if attach {
                p.customer_managed.insert(policy.clone());
            } else {
                p.customer_managed.remove(policy);
            }
        })
    }

    async fn set_inline_policy(
        &self,
        _: &str,
        arn: &str,
        document: Option<&str>,
    ) -> Result<(), AwsError> {
        // IdC refuses an inline policy over 32,768 characters.
        if let Some(d) = document
            && d.chars().count() > crate::access::revoke_policy::MAX_INLINE_POLICY_CHARS
        {
            self.quota("PutInlinePolicyToPermissionSet")?;
            return Err(refused(
                "PutInlinePolicyToPermissionSet",
                "ValidationException: the inline policy exceeds 32768 characters".into(),
            ));
        }
        self.with_permission_set("PutInlinePolicyToPermissionSet", arn, |_, p| {
            p.inline = document.map(str::to_owned);
        })
    }

    async fn set_permissions_boundary(
        &self,
        _: &str,
        arn: &str,
        boundary: &PermissionsBoundary,
    ) -> Result<(), AwsError> {
        self.with_permission_set("PutPermissionsBoundaryToPermissionSet", arn, |_, p| {
            p.boundary = Some(boundary.clone());
        })
    }

    async fn provision_permission_set(&self, _: &str, arn: &str) -> Result<String, AwsError> {
        // Asynchronous, like assignment operations: done `completion` after it was accepted;
        // it fails when any account it goes to fails.
        self.with_permission_set("ProvisionPermissionSet", arn, |_, _| ())?;
        let mut s = self.lock();
        let failure = s
            .provisioned_accounts(arn)
            .iter()
            .find_map(|account| s.provisioning_failure(arn, account));
        s.next_id += 1;
        let id = format!("provision-{:06}", s.next_id);
        s.provisioning.insert(id.clone(), (Instant::now() + self.completion, failure));
        Ok(id)
    }

    async fn provision_to_account(
        &self,
        _: &str,
        arn: &str,
        account_id: &str,
    ) -> Result<String, AwsError> {
        self.with_permission_set("ProvisionPermissionSet", arn, |_, _| ())?;
        let mut s = self.lock();
        let failure = s.provisioning_failure(arn, account_id);
        s.next_id += 1;
        let id = format!("provision-{:06}", s.next_id);
        s.provisioning.insert(id.clone(), (Instant::now() + self.completion, failure));
        Ok(id)
    }

    async fn list_user_assignments(
        &self,
        _: &str,
        user_id: &str,
    ) -> Result<Vec<ActualAssignment>, AwsError> {
        self.quota("ListAccountAssignmentsForPrincipal")?;
        let s = self.lock();
        Ok(s.user_assignments
            .iter()
            .filter(|(u, _, _)| u == user_id)
            .map(|(_, p, a)| ActualAssignment {
                account_id: a.clone(),
                permission_set_arn: p.clone(),
            })
            .collect())
    }

    async fn list_group_assignments(
        &self,
        _: &str,
        group_id: &str,
    ) -> Result<(Vec<ActualAssignment>, usize), AwsError> {
        self.quota("ListAccountAssignmentsForPrincipal")?;
        let list: Vec<ActualAssignment> = {
            let mut s = self.lock();
            if s.unreadable_groups.contains(group_id) {
                return Err(refused(
                    "ListAccountAssignmentsForPrincipal",
                    format!("AccessDeniedException: group {group_id}"),
                ));
            }
            Self::settle(&mut s);
            s.assignments
                .iter()
                .filter(|(g, _, _)| g == group_id)
                .map(|(_, p, a)| ActualAssignment {
                    account_id: a.clone(),
                    permission_set_arn: p.clone(),
                })
                .collect()
        };
        let pages = list.len().div_ceil(100).max(1);
        for _ in 1..pages {
            self.quota("ListAccountAssignmentsForPrincipal")?;
        }
        Ok((list, pages))
    }

    async fn create_assignment(
        &self,
        _: &str,
        group_id: &str,
        ps_arn: &str,
        account_id: &str,
    ) -> Result<(String, OperationStatus), AwsError> {
        self.start(
            "CreateAccountAssignment",
            (group_id.into(), ps_arn.into(), account_id.into()),
            true,
        )
    }

    async fn delete_assignment(
        &self,
        _: &str,
        group_id: &str,
        ps_arn: &str,
        account_id: &str,
    ) -> Result<(String, OperationStatus), AwsError> {
        self.start(
            "DeleteAccountAssignment",
            (group_id.into(), ps_arn.into(), account_id.into()),
            false,
        )
    }

    async fn find_user_id(&self, _: &str, user_name: &str) -> Result<Option<String>, AwsError> {
        self.identity_store_calls.fetch_add(1, Ordering::Relaxed);
        Ok(self.lock().users.get(user_name).cloned())
    }

    async fn user_group_ids(&self, _: &str, user_id: &str) -> Result<Vec<String>, AwsError> {
        self.identity_store_calls.fetch_add(1, Ordering::Relaxed);
        let s = self.lock();
        Ok(s.memberships.iter().filter(|(_, u)| u == user_id).map(|(g, _)| g.clone()).collect())
    }

    async fn provisioning_status(
        &self,
        _: &str,
        request_id: &str,
    ) -> Result<OperationStatus, AwsError> {
        self.quota("DescribePermissionSetProvisioningStatus")?;
        let s = self.lock();
        match s.provisioning.get(request_id) {
            Some((done, _)) if *done > Instant::now() => Ok(OperationStatus::InProgress),
            Some((_, Some(failure))) => Ok(OperationStatus::Failed(failure.clone())),
            Some((_, None)) => Ok(OperationStatus::Succeeded),
            None => Err(refused(
                "DescribePermissionSetProvisioningStatus",
                format!("ResourceNotFoundException: {request_id}"),
            )),
        }
    }

    async fn assignment_status(
        &self,
        _: &str,
        request_id: &str,
        _: bool,
    ) -> Result<OperationStatus, AwsError> {
        self.quota("DescribeAccountAssignmentCreationStatus")?;
        let mut s = self.lock();
        Self::settle(&mut s);
        Ok(match s.operations.get(request_id) {
            None => OperationStatus::Succeeded,
            Some(op) if op.completes_at > Instant::now() => OperationStatus::InProgress,
            Some(op) => OperationStatus::Failed(op.fails.clone().unwrap_or_default()),
        })
    }
}

/// `ListAccountAssignments` and `ListAccountsForProvisionedPermissionSet` page sizes (100).
const PAGE: usize = 100;

impl crate::access::ports::Estate for FakeIdentityCenter {
    async fn list_users(&self, _: &str) -> Result<Vec<crate::access::ports::IdcUser>, AwsError> {
        let s = self.lock();
        // ListUsers: 100 a page.
        self.identity_store_calls.fetch_add(s.users.len().div_ceil(PAGE).max(1), Ordering::Relaxed);
        Ok(s.users
            .iter()
            .map(|(name, id)| crate::access::ports::IdcUser {
                id: id.clone(),
                user_name: name.clone(),
            })
            .collect())
    }

    async fn group_member_ids(&self, _: &str, group_id: &str) -> Result<Vec<String>, AwsError> {
        let s = self.lock();
        let ids: Vec<String> =
            s.memberships.iter().filter(|(g, _)| g == group_id).map(|(_, u)| u.clone()).collect();
        self.identity_store_calls.fetch_add(ids.len().div_ceil(PAGE).max(1), Ordering::Relaxed);
        Ok(ids)
    }

    async fn provisioned_accounts(&self, _: &str, arn: &str) -> Result<Vec<String>, AwsError> {
        let accounts: Vec<String> = {
            let mut s = self.lock();
            Self::settle(&mut s);
            s.provisioned_accounts(arn).into_iter().collect()
        };
        for _ in 0..accounts.len().div_ceil(PAGE).max(1) {
            self.quota("ListAccountsForProvisionedPermissionSet")?;
        }
        Ok(accounts)
    }

    async fn account_assignments(
        &self,
        _: &str,
        account_id: &str,
        arn: &str,
    ) -> Result<Vec<crate::access::ports::Principal>, AwsError> {
        use crate::access::ports::Principal;
        let list: Vec<Principal> = {
            let mut s = self.lock();
            if s.unreadable_accounts.contains(account_id) {
                drop(s);
                self.quota("ListAccountAssignments")?;
                return Err(refused(
                    "ListAccountAssignments",
                    format!("AccessDeniedException: account {account_id}"),
                ));
            }
            Self::settle(&mut s);
            let groups = s
                .assignments
                .iter()
                .filter(|(_, p, a)| p == arn && a == account_id)
                .map(|(g, _, _)| Principal::Group(g.clone()));
            let users = s
                .user_assignments
                .iter()
                .filter(|(_, p, a)| p == arn && a == account_id)
                .map(|(u, _, _)| Principal::User(u.clone()));
            groups.chain(users).collect()
        };
        for _ in 0..list.len().div_ceil(PAGE).max(1) {
            self.quota("ListAccountAssignments")?;
        }
        Ok(list)
    }
}

/// The account access manager as its API reference describes it: applications, each with
/// principal-role entitlements (an IAM Identity Center user or group may assume one role in one
/// account). Lists by principal, as `ListEntitlements` with a principal filter does.
#[derive(Debug, Default)]
pub struct FakeAccountAccess {
    /// The entitlements.
    pub entitlements: Mutex<Vec<crate::access::ports::RoleEntitlement>>,
    /// Fail every call (the service unreachable, or not allowed).
    pub fail: std::sync::atomic::AtomicBool,
    /// Calls made (`ListApplications` and `ListEntitlements`).
    pub calls: AtomicUsize,
}

impl FakeAccountAccess {
    /// Entitles `principal` (`USER:<id>` or `GROUP:<id>`) to assume `role` in `account`;
    /// returns the entitlement's id.
    pub fn entitle(&self, principal: &str, role: &str, account: &str) -> String {
        let mut list = self.entitlements.lock().unwrap_or_else(|p| p.into_inner());
        let id = format!("ent-{:04}", list.len() + 1);
        list.push(crate::access::ports::RoleEntitlement {
            id: id.clone(),
            application_arn: "arn:aws:account-access::111111111111:application/app-fake".into(),
            principal: principal.to_owned(),
            role_arn: format!("arn:aws:iam::{account}:role/{role}"),
            account_id: account.to_owned(),
        });
        id
    }
}

impl crate::access::ports::AccountAccess for FakeAccountAccess {
    fn role_entitlements<'a>(
        &'a self,
        principals: &'a [String],
    ) -> futures::future::BoxFuture<'a, Result<Vec<crate::access::ports::RoleEntitlement>, AwsError>>
    {
        Box::pin(async move {
            // ListApplications, then ListEntitlements per principal.
            self.calls.fetch_add(1 + principals.len(), Ordering::Relaxed);
            if self.fail.load(Ordering::Relaxed) {
                return Err(AwsError::Permanent {
                    service: "account-access",
                    operation: "ListEntitlements",
                    message: "AccessDeniedException".into(),
                });
            }
            let list = self.entitlements.lock().unwrap_or_else(|p| p.into_inner());
            Ok(list.iter().filter(|e| principals.contains(&e.principal)).cloned().collect())
        })
    }

    fn all_role_entitlements(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<Vec<crate::access::ports::RoleEntitlement>, AwsError>>
    {
        Box::pin(async move {
            // ListApplications, then one ListEntitlements (one application).
            self.calls.fetch_add(2, Ordering::Relaxed);
            if self.fail.load(Ordering::Relaxed) {
                return Err(AwsError::Permanent {
                    service: "account-access",
                    operation: "ListEntitlements",
                    message: "AccessDeniedException".into(),
                });
            }
            Ok(self.entitlements.lock().unwrap_or_else(|p| p.into_inner()).clone())
        })
    }
}

/// An in-memory organization.
#[derive(Debug, Default)]
pub struct FakeOrganizations {
    /// The accounts.
    pub accounts: Mutex<Vec<Account>>,
    /// The management account's id.
    pub management_account_id: Option<String>,
    /// Fail every snapshot (an Organizations outage).
    pub fail: std::sync::atomic::AtomicBool,
}

impl FakeOrganizations {
    /// An organization whose management account is `management`.
    pub fn new(management: &str) -> Self {
        Self { management_account_id: Some(management.to_owned()), ..Default::default() }
    }

    /// Adds an ACTIVE account under `ou` (a root or OU id) with these tags.
    pub fn add_account(&self, id: &str, name: &str, ou: &str, tags: &[(&str, &str)]) {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner()).push(Account {
            id: id.to_owned(),
            name: name.to_owned(),
            status: AccountStatus::Active,
            ou_path: vec!["r-fake".into(), ou.to_owned()],
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        });
    }

    /// Sets an account's status.
    pub fn set_status(&self, id: &str, status: AccountStatus) {
        for a in self.accounts.lock().unwrap_or_else(|p| p.into_inner()).iter_mut() {
            if a.id == id {
                a.status = status;
            }
        }
    }
}

impl Organizations for FakeOrganizations {
    async fn snapshot(&self, with_tags: bool) -> Result<OrgSnapshot, AwsError> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(AwsError::Retryable {
                service: "organizations",
                operation: "ListAccountsForParent",
                message: "ServiceException".into(),
            });
        }
        let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let organizational_units: BTreeSet<String> =
            accounts.iter().flat_map(|a| a.ou_path.iter().cloned()).collect();
        // DescribeOrganization, ListRoots, the OUs, a page of 20 accounts per OU, and one
        // ListTagsForResource per account when tags are asked for.
        let calls = 2
            + organizational_units.len()
            + accounts.len().div_ceil(20)
            + if with_tags { accounts.len() } else { 0 };
        Ok(OrgSnapshot {
            accounts,
            management_account_id: self.management_account_id.clone(),
            organizational_units,
            calls,
        })
    }
}

pub mod faults;
