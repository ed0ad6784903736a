//! The reconciler: read what exists, diff against the plan, and apply within IdC's quotas.
//!
//! Safety rules (ARCHITECTURE.md, "Invariants"):
//! - only groups a rule matches (or that idc-guard managed before) and permission sets the policy
//!   declares are ever touched;
//! - any failed read → no deletions in that run; a run that would delete more than
//!   `max_deletions` deletes nothing and says so (the caller raises `deletion-guard-tripped`);
//! - groups are keyed by id, so a group deleted and re-created is a different group.
//!
//! Pacing: every sso-admin call waits for a slot of a shared pacer (20 requests/s by default);
//! at most 10 assignment operations are outstanding (created, not yet SUCCEEDED/FAILED);
//! throttling and conflicts are retried with full-jitter exponential backoff.

use super::revoke_policy;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::plan::{Assignment, Desired, Inventory, ManagedGroup, plan};
use super::policy::{PermissionSetSpec, PermissionsBoundary, Policy, canonical_json_text};
use crate::access::ports::{
    IdentityCenter, OperationStatus, Organizations, PermissionSetInfo, PermissionSetPolicies,
};
use crate::error::AwsError;

/// IdC's documented quotas, and how patiently to wait.
#[derive(Debug, Clone)]
pub struct Limits {
    /// sso-admin requests per second, shared by every task of a run (IdC allows 20).
    pub requests_per_second: f64,
    /// Assignment operations in flight at once (IdC allows 10).
    pub max_outstanding: usize,
    /// How often an operation's status is polled.
    pub poll_interval: Duration,
    /// Attempts per call before a retryable failure is given up.
    pub max_attempts: u32,
    /// The first backoff after a retryable failure.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_cap: Duration,
    /// Give up waiting for one asynchronous operation after this long (counted as a failure).
    pub operation_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            requests_per_second: 20.0,
            max_outstanding: 10,
            poll_interval: Duration::from_secs(1),
            max_attempts: 8,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(20),
            operation_timeout: Duration::from_secs(300),
        }
    }
}

/// Spaces calls evenly at a fixed rate, shared by every task of a run.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(per_second: f64) -> Self {
        let interval = if per_second > 0.0 {
            Duration::from_secs_f64(1.0 / per_second)
        } else {
            Duration::ZERO
        };
        Self { interval, next: Mutex::new(Instant::now()) }
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Which part of the estate a run looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The whole estate (the schedule, `plan`, `apply`).
    All,
    /// These IdC group ids only (an Okta group event).
    Groups(BTreeSet<String>),
    /// Every managed group, in this account only (an Organizations event).
    Account(String),
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Which part of the estate.
    pub scope: Scope,
    /// False: compute and report the changes, make none.
    pub apply: bool,
    /// Group ids idc-guard managed in earlier runs (from the state store): a group renamed out of
    /// every rule, or deleted, still has its assignments removed.
    pub previously_managed: BTreeSet<String>,
}

/// One planned assignment change, with names for people.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Change {
    /// The IdC group id.
    pub group_id: String,
    /// The group's display name (or `(deleted group <id>)`).
    pub group: String,
    /// The permission set's name.
    pub permission_set: String,
    /// The account id.
    pub account_id: String,
    /// The account's name.
    pub account: String,
}

/// A deletion that is reported, never made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    /// The deletion.
    pub change: Change,
    /// Why it is held.
    pub reason: String,
}

/// What [`Reconciler::prepare`] read and decided, ready for [`Reconciler::apply`]: applying a
/// `Prepared` makes exactly the changes its report lists.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The plan, nothing applied yet.
    pub report: Report,
    instance_arn: String,
    ps_arns: BTreeMap<String, String>,
    actual: BTreeSet<Assignment>,
    unreadable: BTreeSet<String>,
    managed_groups: BTreeMap<String, ManagedGroup>,
    scope: Scope,
    previously_managed: BTreeSet<String>,
}

impl Prepared {
    /// The part of the estate this plan covers.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The plan as a report, nothing applied.
    pub fn into_report(mut self) -> Report {
        self.report.managed_groups = self.managed_groups;
        self.report
    }

    /// The groups a rule matches (every group this plan can give assignments to, by id):
    /// remembered as managed *before* applying (write-ahead), so a crash between the two never
    /// leaves access nobody manages.
    pub fn groups_to_remember(&self) -> BTreeMap<String, String> {
        self.managed_groups.iter().map(|(id, g)| (id.clone(), g.display_name.clone())).collect()
    }

    /// The changes a person confirms: permission-set changes, creates, deletes and whether the
    /// deletions would be made. Two plans with equal keys make the same changes.
    pub fn change_key(&self) -> (Vec<String>, Vec<Change>, Vec<Change>, bool) {
        (
            self.report.permission_set_changes.clone(),
            self.report.creates.clone(),
            self.report.deletes.clone(),
            self.report.deletions_blocked.is_none(),
        )
    }
}

/// Phase guard: decides whether this run may delete. Any failed read or policy error blocks
/// every deletion; `prune = false` reports only; more than `max_deletions` trips the guard.
pub fn guard(policy: &Policy, report: &mut Report) {
    report.deletion_guard_tripped = false;
    report.deletions_blocked = if !report.policy_errors.is_empty() {
        Some(format!(
            "the policy cannot be applied ({}): no deletions in this run",
            report.policy_errors.join("; ")
        ))
    } else if !report.read_errors.is_empty() {
        Some(format!("{} read(s) failed: no deletions in this run", report.read_errors.len()))
    } else if !policy.settings.prune && !report.deletes.is_empty() {
        Some("prune = false: drift reported, nothing deleted".into())
    } else if report.deletes.len() > policy.settings.max_deletions {
        report.deletion_guard_tripped = true;
        Some(format!(
            "{} deletions exceed max_deletions = {}: nothing deleted",
            report.deletes.len(),
            policy.settings.max_deletions
        ))
    } else {
        None
    };
}

/// What phase read found besides the assignments.
#[derive(Debug, Default)]
struct Estate {
    instance_arn: String,
    /// Permission set name → ARN, for those that exist.
    ps_arns: BTreeMap<String, String>,
    permission_set_changes: Vec<String>,
    read_errors: Vec<String>,
    policy_errors: Vec<String>,
    inventory: Inventory,
}

/// The assignments phase read found.
#[derive(Debug, Default)]
struct AssignmentsRead {
    actual: BTreeSet<Assignment>,
    unreadable: BTreeSet<String>,
    errors: Vec<String>,
}

/// The groups whose assignments a run reads: those a rule matches now and those managed before,
/// within the scope.
pub fn groups_to_read(
    managed_now: &BTreeMap<String, ManagedGroup>,
    previously_managed: &BTreeSet<String>,
    scope: &Scope,
) -> BTreeSet<String> {
    managed_now
        .keys()
        .chain(previously_managed.iter())
        .filter(|g| match scope {
            Scope::Groups(ids) => ids.contains(*g),
            _ => true,
        })
        .cloned()
        .collect()
}

/// Which assignments a plan may look at.
pub struct Considered<'a> {
    /// The groups read (see [`groups_to_read`]).
    pub managed: &'a BTreeSet<String>,
    /// Groups whose assignments could not be read: never planned for.
    pub unreadable: &'a BTreeSet<String>,
    /// The run's scope (an account scope limits the plan to that account).
    pub scope: &'a Scope,
}

impl Considered<'_> {
    fn contains(&self, a: &Assignment) -> bool {
        self.managed.contains(&a.group_id)
            && !self.unreadable.contains(&a.group_id)
            && match self.scope {
                Scope::Account(id) => *id == a.account_id,
                _ => true,
            }
    }
}

/// The assignment changes a plan calls for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// What the considered groups hold now.
    pub current: Vec<Change>,
    /// Assignments to create.
    pub creates: Vec<Change>,
    /// Assignments to delete (if the guard allows).
    pub deletes: Vec<Change>,
    /// Deletions never made: in protected accounts.
    pub held: Vec<Held>,
}

/// Phase plan (pure): desired against actual. Protected accounts: never delete in the
/// management account unless a rule names it by id for that permission set, and never in an
/// account that is not ACTIVE; such deletions are held (reported only).
pub fn plan_changes(
    policy: &Policy,
    inventory: &Inventory,
    desired: &BTreeSet<Assignment>,
    actual: &BTreeSet<Assignment>,
    considered: &Considered<'_>,
) -> Changes {
    let groups: BTreeMap<&str, &str> =
        inventory.groups.iter().map(|g| (g.id.as_str(), g.display_name.as_str())).collect();
    let accounts: BTreeMap<&str, &super::plan::Account> =
        inventory.accounts.iter().map(|a| (a.id.as_str(), a)).collect();
    let change = |a: &Assignment| Change {
        group_id: a.group_id.clone(),
        group: groups
            .get(a.group_id.as_str())
            .map(|n| (*n).to_owned())
            .unwrap_or_else(|| format!("(deleted group {})", a.group_id)),
        permission_set: a.permission_set.clone(),
        account_id: a.account_id.clone(),
        account: accounts.get(a.account_id.as_str()).map(|a| a.name.clone()).unwrap_or_default(),
    };
    // (permission set, account) pairs some rule names by account id.
    let named: BTreeSet<(&str, &str)> = policy
        .rules
        .iter()
        .flat_map(|r| {
            r.targets.accounts.iter().flat_map(move |acc| {
                r.permission_sets.iter().map(move |ps| (ps.as_str(), acc.as_str()))
            })
        })
        .collect();
    let mut changes = Changes {
        current: actual.iter().filter(|a| considered.contains(a)).map(change).collect(),
        creates: desired
            .difference(actual)
            .filter(|a| considered.contains(a))
            .map(change)
            .collect(),
        ..Changes::default()
    };
    for a in actual.difference(desired).filter(|a| considered.contains(a)) {
        let reason = if inventory.management_account_id.as_deref() == Some(a.account_id.as_str())
            && !named.contains(&(a.permission_set.as_str(), a.account_id.as_str()))
        {
            Some(
                "the management account (a rule must name it by id for this permission set)"
                    .to_owned(),
            )
        } else {
            match accounts.get(a.account_id.as_str()).map(|acc| acc.status) {
                Some(super::plan::AccountStatus::Active) | None => None,
                Some(status) => Some(format!("the account is {}", status.as_str())),
            }
        };
        match reason {
            Some(reason) => changes.held.push(Held { change: change(a), reason }),
            None => changes.deletes.push(change(a)),
        }
    }
    changes
}

/// Phase remember (pure): the groups to keep as managed after a run — those a rule matches now,
/// and earlier ones that still hold assignments of the policy's permission sets, could not be
/// read, or were outside this run's scope. Persisting them is the caller's (`access::sync`).
pub fn remember(
    managed_now: &BTreeMap<String, ManagedGroup>,
    previously_managed: &BTreeSet<String>,
    scope: &Scope,
    unreadable: &BTreeSet<String>,
    actual_after: &BTreeSet<Assignment>,
) -> BTreeSet<String> {
    let in_scope = |group_id: &str| match scope {
        Scope::Groups(ids) => ids.contains(group_id),
        _ => true,
    };
    let still_holding: BTreeSet<&str> = actual_after.iter().map(|a| a.group_id.as_str()).collect();
    previously_managed
        .iter()
        .filter(|g| !in_scope(g) || unreadable.contains(*g) || still_holding.contains(g.as_str()))
        .cloned()
        .chain(managed_now.keys().cloned())
        .collect()
}

/// An assignment operation that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The change.
    pub change: Change,
    /// `create` or `delete`.
    pub action: &'static str,
    /// IdC's reason, or why it was not attempted.
    pub reason: String,
}

/// What a run found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Permission set changes (planned; when applied, made).
    pub permission_set_changes: Vec<String>,
    /// Assignments to create.
    pub creates: Vec<Change>,
    /// Assignments to delete, allowed or not (see `deletions_blocked`).
    pub deletes: Vec<Change>,
    /// What the managed groups hold now (of the policy's permission sets), before this run's changes.
    pub current: Vec<Change>,
    /// Deletions the guard never makes: in the management account (unless a rule names it) and
    /// in accounts that are not ACTIVE. Reported only.
    pub held: Vec<Held>,
    /// Why deletions were not made, when they were not.
    pub deletions_blocked: Option<String>,
    /// More deletions than `max_deletions`: none were made (`deletion-guard-tripped`).
    pub deletion_guard_tripped: bool,
    /// Reads that failed: each blocks every deletion of the run (`deletions-blocked`).
    pub read_errors: Vec<String>,
    /// Targets the policy names that the organisation lacks (warnings; `--strict`: errors).
    pub unknown_targets: Vec<String>,
    /// The policy cannot be applied as written (e.g. an unmanaged permission set IdC lacks):
    /// `plan` and `apply` stop with an error; access-sync blocks deletions and alerts.
    pub policy_errors: Vec<String>,
    /// The plan was applied.
    pub applied: bool,
    /// Assignments created.
    pub created: usize,
    /// Assignments deleted.
    pub deleted: usize,
    /// Operations that failed.
    pub failures: Vec<Failure>,
    /// API calls made.
    pub api_calls: usize,
    /// Calls retried after throttling or a conflict.
    pub retries: usize,
    /// Group ids to remember as managed: matched now, or still holding assignments.
    #[serde(skip)]
    pub managed_after: BTreeSet<String>,
    /// The groups a rule matches, by id.
    #[serde(skip)]
    pub managed_groups: BTreeMap<String, ManagedGroup>,
}

impl Report {
    /// True when the run found something to change.
    pub fn has_changes(&self) -> bool {
        !self.permission_set_changes.is_empty()
            || !self.creates.is_empty()
            || !self.deletes.is_empty()
    }

    /// Deletions are blocked by something that will not go away by itself (a failed read or a
    /// policy error), as opposed to the guard or `prune = false`: `deletions-blocked`.
    pub fn deletions_blocked_by_errors(&self) -> bool {
        !self.read_errors.is_empty() || !self.policy_errors.is_empty()
    }
}

/// A run could not even start: the groups or the accounts could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A read without which nothing can be planned failed.
    #[error("cannot read {what}: {source}")]
    Read {
        /// What was being read.
        what: &'static str,
        /// The failure.
        #[source]
        source: AwsError,
    },
}

impl ReconcileError {
    /// True when a later run may succeed (throttling, an outage).
    pub fn is_retryable(&self) -> bool {
        match self {
            ReconcileError::Read { source, .. } => source.is_retryable(),
        }
    }
}

/// Reads, plans, guards and applies the access policy against IdC and Organizations, within
/// IdC's quotas (see the module header).
pub struct Reconciler<'a, Idc, Org> {
    idc: &'a Idc,
    org: &'a Org,
    limits: Limits,
    pacer: Pacer,
    instance_arn: Option<String>,
    calls: AtomicUsize,
    retries: AtomicUsize,
    /// Users whose sessions are denied, by permission set ARN (the state's revocation records).
    /// `Some`: the records are the truth, and each statement is made to hold exactly them (a
    /// lost deny is put back, one whose record is gone is removed). `None` (a reconciler without
    /// the state): the statement is kept as it is.
    revoked: Option<BTreeMap<String, BTreeSet<String>>>,
}

/// Progress callback for long runs: (done, total).
pub type Progress<'p> = &'p (dyn Fn(usize, usize) + Send + Sync);

impl<'a, Idc: IdentityCenter, Org: Organizations> Reconciler<'a, Idc, Org> {
    /// A reconciler over these ports.
    pub fn new(idc: &'a Idc, org: &'a Org, limits: Limits) -> Self {
        let pacer = Pacer::new(limits.requests_per_second);
        Self {
            idc,
            org,
            limits,
            pacer,
            instance_arn: None,
            calls: AtomicUsize::new(0),
            retries: AtomicUsize::new(0),
            revoked: None,
        }
    }

    /// Use this IdC instance instead of discovering it with ListInstances.
    pub fn with_instance_arn(mut self, arn: Option<String>) -> Self {
        self.instance_arn = arn;
        self
    }

    /// Keep these users' session deny (by permission set ARN) in the inline policies written.
    pub fn with_revoked(mut self, by_permission_set: BTreeMap<String, BTreeSet<String>>) -> Self {
        self.revoked = Some(by_permission_set);
        self
    }

    /// Calls retried so far.
    pub(crate) fn retried(&self) -> usize {
        self.retries.load(Ordering::Relaxed)
    }

    /// One paced call with retries on throttling and conflicts.
    pub(crate) async fn call<T, F, Fut>(&self, mut f: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let mut attempt = 0;
        loop {
            self.pacer.wait().await;
            self.calls.fetch_add(1, Ordering::Relaxed);
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt + 1 < self.limits.max_attempts => {
                    attempt += 1;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    let cap = self
                        .limits
                        .backoff_cap
                        .min(self.limits.backoff_base * 2u32.saturating_pow(attempt));
                    let jitter = Duration::from_secs_f64(cap.as_secs_f64() * fastrand::f64());
                    tracing::debug!(attempt, error = %e, "retrying after backoff");
                    tokio::time::sleep(jitter).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads, plans and guards; when `options.apply`, then applies: [`Self::prepare`] followed
    /// by [`Self::apply`].
    pub async fn run(
        &self,
        policy: &Policy,
        options: &RunOptions,
        progress: Option<Progress<'_>>,
    ) -> Result<Report, ReconcileError> {
        let prepared = self.prepare(policy, options).await?;
        if !options.apply {
            return Ok(prepared.into_report());
        }
        Ok(self.apply(policy, prepared, progress).await)
    }

    /// Phases read, plan and guard: what exists, what the policy wants, and which deletions may
    /// be made. Changes nothing, whatever `options.apply` says.
    pub async fn prepare(
        &self,
        policy: &Policy,
        options: &RunOptions,
    ) -> Result<Prepared, ReconcileError> {
        let estate = self.read_estate(policy).await?;
        let Desired { assignments: desired, managed_groups, .. } = plan(policy, &estate.inventory);
        let managed = groups_to_read(&managed_groups, &options.previously_managed, &options.scope);
        let ps_names: BTreeMap<String, String> =
            estate.ps_arns.iter().map(|(n, a)| (a.clone(), n.clone())).collect();
        let read = self.read_assignments(&estate.instance_arn, &managed, &ps_names).await;
        let mut report = Report {
            permission_set_changes: estate.permission_set_changes,
            read_errors: estate.read_errors,
            policy_errors: estate.policy_errors,
            unknown_targets: super::plan::unknown_targets(policy, &estate.inventory),
            ..Report::default()
        };
        report.read_errors.extend(read.errors);
        let changes = plan_changes(
            policy,
            &estate.inventory,
            &desired,
            &read.actual,
            &Considered { managed: &managed, unreadable: &read.unreadable, scope: &options.scope },
        );
        (report.current, report.creates, report.deletes, report.held) =
            (changes.current, changes.creates, changes.deletes, changes.held);
        guard(policy, &mut report);
        Ok(Prepared {
            report,
            instance_arn: estate.instance_arn,
            ps_arns: estate.ps_arns,
            actual: read.actual,
            unreadable: read.unreadable,
            managed_groups,
            scope: options.scope.clone(),
            previously_managed: options.previously_managed.clone(),
        })
    }

    /// Phase read, first part: the instance, the permission sets (with the managed ones' drift),
    /// the groups and the organization. Without groups or accounts nothing can be planned, so
    /// those failures end the run; a permission set that cannot be read is a read error.
    async fn read_estate(&self, policy: &Policy) -> Result<Estate, ReconcileError> {
        let read = |what| move |source| ReconcileError::Read { what, source };
        let instance = self
            .call(|| self.idc.instance(self.instance_arn.as_deref()))
            .await
            .map_err(read("the IAM Identity Center instance"))?;
        let arn = instance.instance_arn.clone();
        let existing = self
            .call(|| self.idc.list_permission_sets(&arn))
            .await
            .map_err(read("permission sets"))?;
        self.calls.fetch_add(existing.len(), Ordering::Relaxed); // one DescribePermissionSet each
        let mut estate = Estate { instance_arn: arn.clone(), ..Estate::default() };
        for spec in &policy.permission_sets {
            let found = existing.iter().find(|p| p.name == spec.name);
            match (found, spec.managed) {
                (Some(info), true) => {
                    estate.ps_arns.insert(spec.name.clone(), info.arn.clone());
                    match self.sync_permission_set(&arn, spec, info, false).await {
                        Ok(changes) => estate.permission_set_changes.extend(changes),
                        Err(e) => {
                            estate.read_errors.push(format!("permission set {}: {e}", spec.name))
                        }
                    }
                }
                (None, true) => estate
                    .permission_set_changes
                    .push(format!("create permission set {}", spec.name)),
                (Some(info), false) => {
                    estate.ps_arns.insert(spec.name.clone(), info.arn.clone());
                }
                (None, false) => estate.policy_errors.push(format!(
                    "permission set {} is declared managed = false but does not exist in IAM Identity Center: create it there or remove managed = false",
                    spec.name
                )),
            }
        }
        let groups = self
            .idc
            .list_groups(&instance.identity_store_id)
            .await
            .map_err(read("identity store groups"))?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let uses_tags =
            policy.rules.iter().any(|r| !r.targets.tags.is_empty() || !r.exclude.tags.is_empty());
        let org = self.org.snapshot(uses_tags).await.map_err(read("AWS Organizations accounts"))?;
        self.calls.fetch_add(org.calls, Ordering::Relaxed);
        estate.inventory = Inventory {
            groups,
            accounts: org.accounts,
            management_account_id: org.management_account_id,
            organizational_units: org.organizational_units,
        };
        Ok(estate)
    }

    /// Phase read, second part: the assignments of `groups`, restricted to the policy's permission
    /// sets (`ps_names`: ARN → name). A group whose assignments cannot be read is reported and
    /// left out of the plan (and blocks the run's deletions through the guard).
    async fn read_assignments(
        &self,
        instance_arn: &str,
        groups: &BTreeSet<String>,
        ps_names: &BTreeMap<String, String>,
    ) -> AssignmentsRead {
        let reads = futures::stream::iter(groups.iter().cloned())
            .map(|group_id| async move {
                let result =
                    self.call(|| self.idc.list_group_assignments(instance_arn, &group_id)).await;
                (group_id, result)
            })
            .buffer_unordered(self.limits.max_outstanding.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut out = AssignmentsRead::default();
        for (group_id, result) in reads {
            match result {
                Ok((list, pages)) => {
                    self.calls.fetch_add(pages.saturating_sub(1), Ordering::Relaxed);
                    for a in list {
                        if let Some(name) = ps_names.get(&a.permission_set_arn) {
                            out.actual.insert(Assignment {
                                group_id: group_id.clone(),
                                permission_set: name.clone(),
                                account_id: a.account_id,
                            });
                        }
                    }
                }
                Err(e) => {
                    out.errors.push(format!("assignments of group {group_id}: {e}"));
                    out.unreadable.insert(group_id);
                }
            }
        }
        out
    }

    /// Phases apply and remember: permission sets first, then the assignment operations (at
    /// most `max_outstanding` at once); deletions only when the guard allowed them.
    pub async fn apply(
        &self,
        policy: &Policy,
        prepared: Prepared,
        progress: Option<Progress<'_>>,
    ) -> Report {
        let Prepared {
            mut report,
            instance_arn,
            mut ps_arns,
            mut actual,
            unreadable,
            managed_groups,
            scope,
            previously_managed,
        } = prepared;
        let arn = instance_arn.as_str();
        report.applied = true;

        // Permission sets: bring the managed ones in line, create the missing ones.
        if !report.permission_set_changes.is_empty() {
            let mut applied = Vec::new();
            match self.call(|| self.idc.list_permission_sets(arn)).await {
                Ok(existing) => {
                    for spec in policy.permission_sets.iter().filter(|s| s.managed) {
                        let result = match existing.iter().find(|p| p.name == spec.name) {
                            Some(info) => self
                                .sync_permission_set(arn, spec, info, true)
                                .await
                                .map(|changes| applied.extend(changes)),
                            None => self.create_permission_set(arn, spec).await.map(|new_arn| {
                                applied.push(format!("create permission set {}", spec.name));
                                ps_arns.insert(spec.name.clone(), new_arn);
                            }),
                        };
                        if let Err(e) = result {
                            report.read_errors.push(format!("permission set {}: {e}", spec.name));
                        }
                    }
                }
                Err(e) => report.read_errors.push(format!("permission sets: {e}")),
            }
            report.permission_set_changes = applied;
            guard(policy, &mut report);
        }

        let deletes: &[Change] =
            if report.deletions_blocked.is_some() { &[] } else { &report.deletes };
        let total = report.creates.len() + deletes.len();
        let done = AtomicUsize::new(0);
        let ops = report
            .creates
            .iter()
            .map(|c| (c, true))
            .chain(deletes.iter().map(|c| (c, false)))
            .filter_map(|(c, create)| {
                ps_arns.get(&c.permission_set).map(|ps| (c, ps.as_str(), create))
            });
        let results = futures::stream::iter(ops)
            .map(|(c, ps_arn, create)| {
                let done = &done;
                async move {
                    let result = self.assignment_operation(arn, c, ps_arn, create).await;
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(p) = progress {
                        p(n, total);
                    }
                    (c, create, result)
                }
            })
            .buffer_unordered(self.limits.max_outstanding.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut failures = Vec::new();
        for (c, create, result) in results {
            match result {
                Ok(()) if create => report.created += 1,
                Ok(()) => {
                    report.deleted += 1;
                    actual.remove(&Assignment {
                        group_id: c.group_id.clone(),
                        permission_set: c.permission_set.clone(),
                        account_id: c.account_id.clone(),
                    });
                }
                Err(reason) => failures.push(Failure {
                    change: c.clone(),
                    action: if create { "create" } else { "delete" },
                    reason,
                }),
            }
        }
        report.failures = failures;
        // Creates for a permission set that could not be created count as failures.
        for c in report.creates.iter().filter(|c| !ps_arns.contains_key(&c.permission_set)) {
            report.failures.push(Failure {
                change: c.clone(),
                action: "create",
                reason: format!("permission set {} does not exist", c.permission_set),
            });
        }

        report.managed_after =
            remember(&managed_groups, &previously_managed, &scope, &unreadable, &actual);
        report.managed_groups = managed_groups;
        report.api_calls = self.calls.load(Ordering::Relaxed);
        report.retries = self.retries.load(Ordering::Relaxed);
        report
    }

    /// Creates or deletes one assignment and waits until IdC reports it finished.
    async fn assignment_operation(
        &self,
        instance: &str,
        c: &Change,
        ps_arn: &str,
        create: bool,
    ) -> Result<(), String> {
        let (request_id, mut status) = self
            .call(|| async {
                if create {
                    self.idc.create_assignment(instance, &c.group_id, ps_arn, &c.account_id).await
                } else {
                    self.idc.delete_assignment(instance, &c.group_id, ps_arn, &c.account_id).await
                }
            })
            .await
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + self.limits.operation_timeout;
        loop {
            match status {
                OperationStatus::Succeeded => return Ok(()),
                OperationStatus::Failed(reason) => return Err(reason),
                OperationStatus::InProgress if Instant::now() >= deadline => {
                    return Err(format!(
                        "still in progress after {:?} (request {request_id})",
                        self.limits.operation_timeout
                    ));
                }
                OperationStatus::InProgress => {
                    tokio::time::sleep(self.limits.poll_interval).await;
                    status = self
                        .call(|| self.idc.assignment_status(instance, &request_id, create))
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    }

    async fn create_permission_set(
        &self,
        instance: &str,
        spec: &PermissionSetSpec,
    ) -> Result<String, AwsError> {
        let arn = self.call(|| self.idc.create_permission_set(instance, spec)).await?;
        let info = PermissionSetInfo::of_spec(&arn, spec);
        self.apply_policies(instance, spec, &info, &PermissionSetPolicies::default(), true).await?;
        Ok(arn)
    }

    /// Brings an existing managed permission set in line with its declaration; returns what
    /// differs (and, when `apply`, has been changed and re-provisioned).
    async fn sync_permission_set(
        &self,
        instance: &str,
        spec: &PermissionSetSpec,
        info: &PermissionSetInfo,
        apply: bool,
    ) -> Result<Vec<String>, AwsError> {
        let mut changes = Vec::new();
        let norm = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        if norm(&info.description) != norm(&spec.description)
            || info.session_duration.as_deref().unwrap_or("PT1H") != spec.session_duration
            || norm(&info.relay_state) != norm(&spec.relay_state)
        {
            changes.push(format!(
                "update permission set {} (description, session duration or relay state)",
                spec.name
            ));
            if apply {
                self.call(|| self.idc.update_permission_set(instance, &info.arn, spec)).await?;
            }
        }
        let current = self
            .call(|| {
                self.idc.permission_set_policies(
                    instance,
                    &info.arn,
                    spec.permissions_boundary.is_some(),
                )
            })
            .await?;
        self.calls.fetch_add(2, Ordering::Relaxed); // managed, customer-managed and inline reads
        changes.extend(self.apply_policies(instance, spec, info, &current, apply).await?);
        if apply && !changes.is_empty() {
            let request =
                self.call(|| self.idc.provision_permission_set(instance, &info.arn)).await?;
            tracing::info!(permission_set = %spec.name, request_id = %request, "re-provisioning to all provisioned accounts");
            changes.push(format!("re-provision permission set {}", spec.name));
        }
        Ok(changes)
    }

    async fn apply_policies(
        &self,
        instance: &str,
        spec: &PermissionSetSpec,
        info: &PermissionSetInfo,
        current: &PermissionSetPolicies,
        apply: bool,
    ) -> Result<Vec<String>, AwsError> {
        let arn = info.arn.as_str();
        let mut changes = Vec::new();
        for p in spec.managed_policies.difference(&current.managed) {
            changes.push(format!("attach {p} to {}", spec.name));
            if apply {
                self.call(|| self.idc.attach_managed_policy(instance, arn, p, true)).await?;
            }
        }
        for p in current.managed.difference(&spec.managed_policies) {
            changes.push(format!("detach {p} from {}", spec.name));
            if apply {
                self.call(|| self.idc.attach_managed_policy(instance, arn, p, false)).await?;
            }
        }
        for p in spec.customer_managed_policies.difference(&current.customer_managed) {
            changes.push(format!("attach customer policy {}{} to {}", p.path, p.name, spec.name));
            if apply {
                self.call(|| self.idc.attach_customer_managed_policy(instance, arn, p, true))
                    .await?;
            }
        }
        for p in current.customer_managed.difference(&spec.customer_managed_policies) {
            changes.push(format!("detach customer policy {}{} from {}", p.path, p.name, spec.name));
            if apply {
                self.call(|| self.idc.attach_customer_managed_policy(instance, arn, p, false))
                    .await?;
            }
        }
        // The policy file's inline policy is canonical JSON; IdC returns it as stored.
        // idc-guard's session-revocation statement is its own: compared without it, and kept
        // whenever the inline policy is written (a policy change never drops a revocation).
        // With the revocation records, the statement holds exactly the recorded users: a deny a
        // stale writer dropped is put back, and one whose revocation was released meanwhile
        // (and written back by such a writer) is removed.
        let current_ids = revoke_policy::revoked_ids(current.inline.as_deref());
        let revoked = match &self.revoked {
            Some(records) => records.get(arn).cloned().unwrap_or_default(),
            None => current_ids.clone(),
        };
        let deny_lost = revoked != current_ids;
        let current_inline = revoke_policy::without_revocations(current.inline.as_deref())
            .as_deref()
            .map(canonical_json_text);
        if spec.inline_policy != current_inline || deny_lost {
            changes.push(match &spec.inline_policy {
                _ if spec.inline_policy == current_inline => {
                    format!("update the session deny in {}", spec.name)
                }
                Some(_) => format!("put inline policy of {}", spec.name),
                None => format!("delete inline policy of {}", spec.name),
            });
            if apply {
                let document =
                    revoke_policy::with_revocations(spec.inline_policy.as_deref(), &revoked)
                        .map_err(|e| AwsError::Permanent {
                            service: "sso-admin",
                            operation: "PutInlinePolicyToPermissionSet",
                            message: format!("{}: {e}", spec.name),
                        })?;
                self.call(|| self.idc.set_inline_policy(instance, arn, document.as_deref()))
                    .await?;
            }
        }
        if let Some(b) = &spec.permissions_boundary
            && current.boundary.as_ref() != Some(b)
        {
            changes.push(format!(
                "set permissions boundary of {} to {}",
                spec.name,
                match b {
                    PermissionsBoundary::ManagedPolicyArn(a) => a.clone(),
                    PermissionsBoundary::CustomerManaged(c) => format!("{}{}", c.path, c.name),
                }
            ));
            if apply {
                self.call(|| self.idc.set_permissions_boundary(instance, arn, b)).await?;
            }
        }
        Ok(changes)
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
