//! Access that really ends: when Okta deactivates or suspends someone, SCIM disables them in IAM
//! Identity Center, but the console and CLI role sessions they already hold live on until their
//! permission set's session duration ends (up to 12 hours). AWS's cure, automated, over
//! everything the person can use:
//!
//! 1. resolve the user's Identity Store id (`GetUserId` by user name); none: alerted, not silent;
//! 2. find every permission set the person could use: their groups' assignments and their direct
//!    (`USER`) assignments in every account, whatever the set (in the policy, `managed = false`,
//!    or unknown to it); with none found (SCIM may already have removed the memberships), every
//!    permission set of the instance: the deny names only this user, so it harms nobody else;
//! 3. list the account access manager's entitlements of the user and their groups: no deny can
//!    be written there through IAM Identity Center, so each is *not covered*, with the
//!    entitlement to delete;
//! 4. add the user's id to idc-guard's deny statement in each set's inline policy
//!    ([`super::revoke_policy`]; a set whose policy cannot take it within IAM's role-policy quota
//!    is not covered), re-provision it and wait; a failed provisioning is retried account by
//!    account to name the accounts it did not reach, recorded, and retried by the schedule;
//! 5. record the revocation ([`RevokedSessions`], written ahead) and raise `sessions-revoked`
//!    when everything is covered, `revocation-incomplete` (critical) when anything is not, each
//!    naming what is covered and what is not, with the reason and the one step AWS offers only in
//!    its console (ending the access-portal session).
//!
//! The schedule ([`AccessSyncHandler::release_due`]) re-provisions what failed, puts back a deny
//! someone's write dropped (every recorded set, `managed = false` ones too, alerted), and releases
//! a revocation only when the person holds none of the groups or direct assignments that held the
//! sets and the longest session since then has passed (unless the user is still deactivated and
//! `[settings] keep_revoked_while_deactivated` keeps it). A reactivation in Okta that is newer
//! than the deactivation releases at once. Every step is idempotent: a retry converges.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;

use super::policy::parse_session_duration;
use super::ports::{IdentityCenter, OperationStatus, Organizations, PermissionSetInfo};
use super::reconcile::Reconciler;
use super::revoke_policy::{self, RevokePolicyError};
use super::sync::{AccessSyncHandler, SyncError};
use crate::alert::{Alert, AlertSink, Alerts, Severity};
use crate::error::AwsError;
use crate::okta::ports::{OktaGroups, SystemLog};
use crate::records::{self, Lifecycle, RevokedSessions, Unprovisioned};
use crate::store::StateStore;

/// Added to the longest session duration before a revocation is released.
pub const RELEASE_MARGIN_MINUTES: i64 = 15;

/// The one step AWS offers only in its console: ending the person's access-portal session.
pub const PORTAL_SESSION_STEP: &str = "End the access-portal session in the console: IAM Identity Center > Users > the user > Active sessions > Delete session (https://console.aws.amazon.com/singlesignon/home). AWS has no API for it; the deny already stops every role session and every new one.";

/// One permission set a revocation covers.
#[derive(Debug, Clone, Serialize)]
pub struct Covered {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// The accounts the person holds it in (empty: every account it is provisioned to).
    pub accounts: Vec<String>,
    /// Its session duration (ISO-8601).
    pub session_duration: String,
    /// How the person holds it: `group <name>`, `direct`, `recorded earlier`, or `no assignment
    /// found`.
    pub via: Vec<String>,
    /// Whether the access policy manages it (`false`: `managed = false` or unknown to it).
    pub managed: bool,
}

/// Something the person can use that the deny does not cover, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NotCovered {
    /// What: a permission set's name, or an account access manager entitlement.
    pub what: String,
    /// The permission set's ARN or the role's ARN.
    pub arn: String,
    /// The accounts it reaches (empty: every account it is provisioned to).
    pub accounts: Vec<String>,
    /// Why it is not covered, and what to do.
    pub reason: String,
}

impl NotCovered {
    fn line(&self) -> String {
        if self.accounts.is_empty() {
            format!("{}: {}", self.what, self.reason)
        } else {
            format!("{} in {}: {}", self.what, self.accounts.join(", "), self.reason)
        }
    }
}

/// What a revocation found and did.
#[derive(Debug, Clone, Serialize)]
pub struct RevokeReport {
    /// The user name asked for.
    pub login: String,
    /// The Identity Store user id (`None`: no such user in IAM Identity Center).
    pub user_id: Option<String>,
    /// The permission sets the user could use, with their accounts.
    pub covered: Vec<Covered>,
    /// What the user can use that the deny does not cover, with the reason.
    pub not_covered: Vec<NotCovered>,
    /// Facts about the search itself (what could not be checked, a fallback taken).
    pub notes: Vec<String>,
    /// The deny was written and provisioned (false: `--dry-run`, or nothing to cover).
    pub applied: bool,
    /// When the deny may be released at the earliest.
    pub release_after: Option<DateTime<Utc>>,
}

impl RevokeReport {
    /// Everything the person can use is covered.
    pub fn complete(&self) -> bool {
        self.user_id.is_some() && self.not_covered.is_empty() && !self.covered.is_empty()
    }
}

/// What the person holds: permission set ARN → (accounts, how).
type Holdings = BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>;

impl<Idc, Org, Store, Sink, Log> AccessSyncHandler<Idc, Org, Store, Sink, Log>
where
    Idc: IdentityCenter,
    Org: Organizations,
    Store: StateStore,
    Sink: AlertSink,
    Log: SystemLog + OktaGroups,
{
    /// Denies the live sessions of `login` in every permission set they could use (see the
    /// module header); `dry_run` only reports what it would cover.
    pub async fn revoke_sessions(
        &self,
        login: &str,
        reason: &str,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<RevokeReport, SyncError> {
        self.revoke(login, reason, None, dry_run, now).await
    }

    /// As [`Self::revoke_sessions`], for the permission sets of one group only (the IdC group
    /// of that name): a time-boxed grant of that group has ended.
    pub async fn revoke_group_sessions(
        &self,
        login: &str,
        group: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<RevokeReport, SyncError> {
        self.revoke(login, reason, Some(group), false, now).await
    }

    async fn revoke(
        &self,
        login: &str,
        reason: &str,
        only_group: Option<&str>,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<RevokeReport, SyncError> {
        let mut report = RevokeReport {
            login: login.to_owned(),
            user_id: None,
            covered: Vec::new(),
            not_covered: Vec::new(),
            notes: Vec::new(),
            applied: false,
            release_after: None,
        };
        // Paced and retried as the reconciler's calls are (IdC's request rate is shared).
        let rc = self.reconciler();
        let instance = rc.call(|| self.idc.instance(self.instance_arn.as_deref())).await?;
        let store_id = instance.identity_store_id.as_str();
        let Some(user_id) = rc.call(|| self.idc.find_user_id(store_id, login)).await? else {
            tracing::warn!(%login, "no such user in IAM Identity Center: nothing could be denied");
            report.notes.push(format!(
                "{login} is not a user in IAM Identity Center: no session could be denied (check the user name, and whether SCIM deleted the user)"
            ));
            if !dry_run {
                self.raise_revocation(&report, None, reason, now).await?;
            }
            return Ok(report);
        };
        report.user_id = Some(user_id.clone());
        let previous: Option<RevokedSessions> =
            records::load(&self.store, &RevokedSessions::key_of(&user_id)).await?;
        let (holdings, groups) =
            self.holdings(&rc, &instance, &user_id, only_group, previous.as_ref()).await?;
        let sets = rc.call(|| self.idc.list_permission_sets(&instance.instance_arn)).await?;
        self.fill_covered(&mut report, holdings, &sets);
        self.entitlements(&mut report, &user_id, &groups).await;
        let longest = report
            .covered
            .iter()
            .filter_map(|c| parse_session_duration(&c.session_duration))
            .max()
            .unwrap_or(60);
        let release_after = now + Duration::minutes(i64::from(longest) + RELEASE_MARGIN_MINUTES);
        report.release_after = Some(release_after);
        if dry_run {
            return Ok(report);
        }
        // Write-ahead: the record first, so a reconcile that writes one of these inline
        // policies meanwhile keeps the deny (it merges the recorded revocations).
        let mut record = RevokedSessions {
            user_id: user_id.clone(),
            login: login.to_owned(),
            permission_sets: report.covered.iter().map(|c| c.arn.clone()).collect(),
            accounts: accounts_of(&report.covered),
            revoked_at: previous.as_ref().map_or(now, |p| p.revoked_at),
            release_after,
            reason: reason.to_owned(),
            groups: groups.clone(),
            unprovisioned: Vec::new(),
            not_covered: Vec::new(),
            access_ended_at: None,
            // Lifted by a re-grant only when no deny in it has another cause.
            grant_end: only_group.is_some() && previous.as_ref().is_none_or(|p| p.grant_end),
        };
        if !report.covered.is_empty() {
            records::save(&self.store, &record).await?;
        }
        let mut unprovisioned = Vec::new();
        for c in report.covered.clone() {
            match self.deny_and_provision(&rc, &instance.instance_arn, &c, &user_id).await? {
                Ok(failed) => unprovisioned.extend(failed),
                Err(e) => report.not_covered.push(NotCovered {
                    what: format!("permission set {}", c.name),
                    arn: c.arn.clone(),
                    accounts: c.accounts.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        // Matched by ARN, never by name: `Admin` and `AdminBreakGlass` are two sets.
        let refused: BTreeSet<String> = report.not_covered.iter().map(|n| n.arn.clone()).collect();
        report.covered.retain(|c| !refused.contains(&c.arn));
        // A writer that read an inline policy before the deny was added and wrote it after
        // (a reconcile from elsewhere) would have dropped it: checked, and written again.
        for c in report.covered.clone() {
            let inline = rc
                .call(|| self.idc.permission_set_policies(&instance.instance_arn, &c.arn, false))
                .await?
                .inline;
            if revoke_policy::revoked_ids(inline.as_deref()).contains(&user_id) {
                continue;
            }
            tracing::warn!(permission_set = %c.name, "the session deny was overwritten: written again");
            match self.deny_and_provision(&rc, &instance.instance_arn, &c, &user_id).await? {
                Ok(failed) => unprovisioned.extend(failed),
                Err(e) => {
                    report.covered.retain(|k| k.arn != c.arn);
                    report.not_covered.push(NotCovered {
                        what: format!("permission set {}", c.name),
                        arn: c.arn.clone(),
                        accounts: c.accounts.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        for u in &unprovisioned {
            report.not_covered.push(NotCovered {
                what: format!("permission set {}", u.permission_set),
                arn: u.permission_set_arn.clone(),
                accounts: vec![u.account_id.clone()]
                    .into_iter()
                    .filter(|a| !a.is_empty())
                    .collect(),
                reason: format!(
                    "provisioning the deny failed: {} (retried by the schedule until covered)",
                    u.reason
                ),
            });
        }
        record.permission_sets = report.covered.iter().map(|c| c.arn.clone()).collect();
        record.accounts = accounts_of(&report.covered);
        record.unprovisioned = unprovisioned;
        record.not_covered = report.not_covered.iter().map(NotCovered::line).collect();
        if !report.covered.is_empty() {
            records::save(&self.store, &record).await?;
            report.applied = true;
        }
        self.raise_revocation(&report, Some(&record), reason, now).await?;
        Ok(report)
    }

    /// The person's permission sets: their groups' and direct assignments (or one group's),
    /// plus what an earlier revocation covered. Returns the holdings and the group ids.
    async fn holdings(
        &self,
        rc: &Reconciler<'_, Idc, Org>,
        instance: &super::ports::IdcInstance,
        user_id: &str,
        only_group: Option<&str>,
        previous: Option<&RevokedSessions>,
    ) -> Result<(Holdings, Vec<String>), SyncError> {
        let store_id = instance.identity_store_id.as_str();
        let instance_arn = instance.instance_arn.as_str();
        let mut holdings: Holdings = BTreeMap::new();
        let groups: Vec<(String, String)> = match only_group {
            // The group's assignments, whether or not SCIM has removed the membership yet.
            Some(name) => rc
                .call(|| self.idc.find_group(store_id, name))
                .await?
                .map(|g| vec![(g.id, g.display_name)])
                .unwrap_or_default(),
            None => {
                let ids = rc.call(|| self.idc.user_group_ids(store_id, user_id)).await?;
                let mut named = Vec::with_capacity(ids.len());
                for id in ids {
                    let name = rc
                        .call(|| self.idc.describe_group(store_id, &id))
                        .await?
                        .map_or_else(|| id.clone(), |g| g.display_name);
                    named.push((id, name));
                }
                named
            }
        };
        for (id, name) in &groups {
            let (assignments, _) =
                rc.call(|| self.idc.list_group_assignments(instance_arn, id)).await?;
            for a in assignments {
                let entry = holdings.entry(a.permission_set_arn).or_default();
                entry.0.insert(a.account_id);
                entry.1.insert(format!("group {name}"));
            }
        }
        if only_group.is_none() {
            for a in rc.call(|| self.idc.list_user_assignments(instance_arn, user_id)).await? {
                let entry = holdings.entry(a.permission_set_arn).or_default();
                entry.0.insert(a.account_id);
                entry.1.insert("direct".into());
            }
        }
        for arn in previous.iter().flat_map(|p| &p.permission_sets) {
            holdings.entry(arn.clone()).or_default().1.insert("recorded earlier".into());
        }
        let mut group_ids: Vec<String> = groups.into_iter().map(|(id, _)| id).collect();
        group_ids.extend(previous.iter().flat_map(|p| p.groups.iter().cloned()));
        group_ids.sort();
        group_ids.dedup();
        Ok((holdings, group_ids))
    }

    /// Every held permission set becomes a covered candidate, whatever the policy says of it;
    /// with nothing held at all, every permission set of the instance.
    fn fill_covered(
        &self,
        report: &mut RevokeReport,
        mut holdings: Holdings,
        sets: &[PermissionSetInfo],
    ) {
        if holdings.is_empty() {
            report.notes.push(
                "no group or direct assignment found (SCIM may already have removed the memberships): every permission set of the instance is covered; the deny names only this user".into(),
            );
            for info in sets {
                holdings
                    .entry(info.arn.clone())
                    .or_default()
                    .1
                    .insert("no assignment found".into());
            }
        }
        let managed = self.policy.permission_set_names();
        for (arn, (accounts, via)) in holdings {
            match sets.iter().find(|i| i.arn == arn) {
                Some(info) => report.covered.push(Covered {
                    name: info.name.clone(),
                    arn: info.arn.clone(),
                    accounts: accounts.into_iter().collect(),
                    session_duration: info
                        .session_duration
                        .clone()
                        .unwrap_or_else(|| "PT1H".into()),
                    via: via.into_iter().collect(),
                    managed: managed.contains(info.name.as_str()),
                }),
                None => report.notes.push(format!(
                    "{arn} is no longer a permission set of the instance (deleted): nothing to deny there"
                )),
            }
        }
    }

    /// The account access manager's entitlements of the user and their groups: not covered.
    async fn entitlements(&self, report: &mut RevokeReport, user_id: &str, groups: &[String]) {
        let Some(access) = &self.account_access else {
            report.notes.push(
                "the account access manager's entitlements were not checked (no client configured)"
                    .into(),
            );
            return;
        };
        let mut principals = vec![format!("USER:{user_id}")];
        principals.extend(groups.iter().map(|g| format!("GROUP:{g}")));
        match access.role_entitlements(&principals).await {
            Ok(found) => {
                for e in found {
                    report.not_covered.push(NotCovered {
                        what: format!("account access manager entitlement {}", e.id),
                        arn: e.role_arn.clone(),
                        accounts: vec![e.account_id.clone()],
                        reason: format!(
                            "{} may assume {} outside IAM Identity Center's permission sets: no deny can be written there; delete the entitlement (account access manager DeleteEntitlement {}, application {})",
                            e.principal, e.role_arn, e.id, e.application_arn
                        ),
                    });
                }
            }
            Err(e) => report.not_covered.push(NotCovered {
                what: "account access manager".into(),
                arn: String::new(),
                accounts: Vec::new(),
                reason: format!(
                    "its entitlements could not be read ({e}): roles entitled there are not known to be covered"
                ),
            }),
        }
    }

    /// Adds the deny to one set and provisions it. The outer error is an AWS failure (retry);
    /// the inner one a set that cannot take the deny; `Ok(Ok(v))` the accounts it did not
    /// reach (empty: everywhere).
    async fn deny_and_provision(
        &self,
        rc: &Reconciler<'_, Idc, Org>,
        instance: &str,
        c: &Covered,
        user_id: &str,
    ) -> Result<Result<Vec<Unprovisioned>, RevokePolicyError>, SyncError> {
        let request = match self.set_denied(rc, instance, &c.arn, user_id, true).await {
            Ok(request) => request,
            Err(RevokeStep::Policy(e)) => {
                tracing::error!(permission_set = %c.name, error = %e, "cannot add the session deny");
                return Ok(Err(e));
            }
            Err(RevokeStep::Aws(e)) => return Err(e.into()),
        };
        let Some(failure) = self.wait_provisioned(rc, instance, &c.name, &request).await? else {
            return Ok(Ok(Vec::new()));
        };
        // Which accounts did it not reach? One by one, as far as the accounts are known.
        if c.accounts.is_empty() {
            return Ok(Ok(vec![Unprovisioned {
                permission_set_arn: c.arn.clone(),
                permission_set: c.name.clone(),
                account_id: String::new(),
                reason: failure,
            }]));
        }
        let mut failed = Vec::new();
        for account in &c.accounts {
            if let Some(reason) =
                self.provision_account(rc, instance, &c.arn, &c.name, account).await?
            {
                failed.push(Unprovisioned {
                    permission_set_arn: c.arn.clone(),
                    permission_set: c.name.clone(),
                    account_id: account.clone(),
                    reason,
                });
            }
        }
        Ok(Ok(failed))
    }

    /// Provisions one set to one account and waits; `Some(reason)` when it failed.
    async fn provision_account(
        &self,
        rc: &Reconciler<'_, Idc, Org>,
        instance: &str,
        arn: &str,
        name: &str,
        account: &str,
    ) -> Result<Option<String>, SyncError> {
        let request = rc.call(|| self.idc.provision_to_account(instance, arn, account)).await?;
        self.wait_provisioned(rc, instance, &format!("{name} to {account}"), &request).await
    }

    async fn raise_revocation(
        &self,
        report: &RevokeReport,
        record: Option<&RevokedSessions>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SyncError> {
        Alerts::new(&self.sink, &self.store)
            .raise(&revocation_alert(report, record, reason, now))
            .await?;
        Ok(())
    }

    /// Takes the user's id out of the deny statements a revocation wrote, re-provisions, and
    /// forgets the revocation. A user with none: nothing to do.
    pub async fn release_sessions(&self, user_id: &str) -> Result<bool, SyncError> {
        let Some(record): Option<RevokedSessions> =
            records::load(&self.store, &RevokedSessions::key_of(user_id)).await?
        else {
            return Ok(false);
        };
        let rc = self.reconciler();
        let instance = rc.call(|| self.idc.instance(self.instance_arn.as_deref())).await?;
        let mut requests = Vec::new();
        for arn in &record.permission_sets {
            match self.set_denied(&rc, &instance.instance_arn, arn, user_id, false).await {
                Ok(request) => requests.push((arn.clone(), request)),
                Err(RevokeStep::Policy(e)) => {
                    tracing::error!(permission_set = %arn, error = %e, "cannot remove the session deny")
                }
                Err(RevokeStep::Aws(e)) => return Err(e.into()),
            }
        }
        for (arn, request) in &requests {
            if let Some(failure) =
                self.wait_provisioned(&rc, &instance.instance_arn, arn, request).await?
            {
                // The deny is out of the policy; an account that keeps the old role policy
                // keeps denying this user only, which the next provisioning corrects.
                tracing::warn!(permission_set = %arn, %failure, "provisioning the release failed");
            }
        }
        self.store.delete(RevokedSessions::PK, user_id).await?;
        tracing::info!(user = %record.login, %user_id, "session deny released");
        Ok(true)
    }

    /// The scheduled sweep over every revocation: re-provisions accounts a deny has not reached,
    /// puts back a deny someone's write dropped (alerted), and releases a revocation once the
    /// person holds nothing that held the sets and the longest session since has passed, unless
    /// the user is still deactivated and the policy keeps it. Returns the logins released.
    pub async fn release_due(&self, now: DateTime<Utc>) -> Result<Vec<String>, SyncError> {
        let mut released = Vec::new();
        for item in self.store.query(RevokedSessions::PK).await? {
            let Some(mut r) = <RevokedSessions as records::Record>::from_item(&item) else {
                continue;
            };
            r.user_id = item.sk.clone();
            self.guard(&mut r, now).await?;
            if r.release_after > now {
                continue;
            }
            if self.policy.settings.keep_revoked_while_deactivated {
                let lifecycle: Option<Lifecycle> =
                    records::load(&self.store, &Lifecycle::key_of(&r.login.to_lowercase())).await?;
                if lifecycle.is_some_and(|l| l.is_inactive()) {
                    continue;
                }
            }
            if !self.access_ended(&mut r, now).await? {
                continue;
            }
            if self.release_sessions(&r.user_id).await? {
                released.push(r.login);
            }
        }
        Ok(released)
    }

    /// Re-provisions what has not been reached and puts back a dropped deny, in every recorded
    /// set (`managed = false` ones and sets unknown to the policy too).
    async fn guard(&self, r: &mut RevokedSessions, now: DateTime<Utc>) -> Result<(), SyncError> {
        let rc = self.reconciler();
        let instance = rc.call(|| self.idc.instance(self.instance_arn.as_deref())).await?;
        let instance_arn = instance.instance_arn.as_str();
        let mut restored = Vec::new();
        for arn in r.permission_sets.clone() {
            let inline = rc
                .call(|| self.idc.permission_set_policies(instance_arn, &arn, false))
                .await?
                .inline;
            if revoke_policy::revoked_ids(inline.as_deref()).contains(&r.user_id) {
                continue;
            }
            tracing::warn!(permission_set = %arn, user = %r.login, "a recorded session deny was dropped: put back");
            match self.set_denied(&rc, instance_arn, &arn, &r.user_id, true).await {
                Ok(request) => {
                    if let Some(failure) =
                        self.wait_provisioned(&rc, instance_arn, &arn, &request).await?
                    {
                        r.unprovisioned.push(Unprovisioned {
                            permission_set_arn: arn.clone(),
                            permission_set: arn.clone(),
                            account_id: String::new(),
                            reason: failure,
                        });
                    }
                    restored.push(arn);
                }
                Err(RevokeStep::Policy(e)) => restored.push(format!("{arn} (NOT put back: {e})")),
                Err(RevokeStep::Aws(e)) => return Err(e.into()),
            }
        }
        let mut still = Vec::new();
        let before = r.unprovisioned.len();
        for u in std::mem::take(&mut r.unprovisioned) {
            let outcome = if u.account_id.is_empty() {
                let request = rc
                    .call(|| self.idc.provision_permission_set(instance_arn, &u.permission_set_arn))
                    .await?;
                self.wait_provisioned(&rc, instance_arn, &u.permission_set, &request).await?
            } else {
                self.provision_account(
                    &rc,
                    instance_arn,
                    &u.permission_set_arn,
                    &u.permission_set,
                    &u.account_id,
                )
                .await?
            };
            match outcome {
                None => {
                    tracing::info!(permission_set = %u.permission_set, account = %u.account_id, "the session deny reached the account")
                }
                Some(reason) => still.push(Unprovisioned { reason, ..u }),
            }
        }
        r.unprovisioned = still;
        if !restored.is_empty() {
            Alerts::new(&self.sink, &self.store).raise(&dropped_alert(r, &restored, now)).await?;
        }
        if !restored.is_empty() || before != r.unprovisioned.len() {
            r.not_covered.retain(|n| !n.contains("provisioning the deny failed"));
            r.not_covered.extend(r.unprovisioned.iter().map(|u| {
                format!(
                    "permission set {} in {}: provisioning the deny failed: {}",
                    u.permission_set, u.account_id, u.reason
                )
            }));
            records::save(&self.store, r).await?;
        }
        Ok(())
    }

    /// The person holds none of the groups or direct assignments that held the denied sets
    /// (SCIM has carried the deactivation), and the longest session since then has passed.
    async fn access_ended(
        &self,
        r: &mut RevokedSessions,
        now: DateTime<Utc>,
    ) -> Result<bool, SyncError> {
        let rc = self.reconciler();
        let instance = rc.call(|| self.idc.instance(self.instance_arn.as_deref())).await?;
        let groups: BTreeSet<String> = rc
            .call(|| self.idc.user_group_ids(&instance.identity_store_id, &r.user_id))
            .await?
            .into_iter()
            .collect();
        let direct =
            rc.call(|| self.idc.list_user_assignments(&instance.instance_arn, &r.user_id)).await?;
        let holds_group = r.groups.iter().any(|g| groups.contains(g));
        let holds_direct = direct.iter().any(|a| r.permission_sets.contains(&a.permission_set_arn));
        if holds_group || holds_direct {
            if r.access_ended_at.take().is_some() {
                records::save(&self.store, r).await?;
            }
            tracing::info!(user = %r.login, holds_group, holds_direct, "still entitled in IAM Identity Center: the deny stays");
            return Ok(false);
        }
        match r.access_ended_at {
            Some(_) => Ok(true),
            None => {
                // Sessions started before the memberships went can still be alive: the
                // longest one counts from now.
                let sets =
                    rc.call(|| self.idc.list_permission_sets(&instance.instance_arn)).await?;
                let longest = sets
                    .iter()
                    .filter(|i| r.permission_sets.contains(&i.arn))
                    .filter_map(|i| i.session_duration.as_deref().and_then(parse_session_duration))
                    .max()
                    .unwrap_or(60);
                r.access_ended_at = Some(now);
                r.release_after =
                    now + Duration::minutes(i64::from(longest) + RELEASE_MARGIN_MINUTES);
                records::save(&self.store, r).await?;
                Ok(false)
            }
        }
    }

    /// Adds (`deny`) or removes the user's id in one permission set's deny statement and
    /// re-provisions it; returns the provisioning request id.
    async fn set_denied(
        &self,
        rc: &Reconciler<'_, Idc, Org>,
        instance: &str,
        arn: &str,
        user_id: &str,
        deny: bool,
    ) -> Result<String, RevokeStep> {
        let current =
            rc.call(|| self.idc.permission_set_policies(instance, arn, false)).await?.inline;
        let mut ids = revoke_policy::revoked_ids(current.as_deref());
        let changed = if deny { ids.insert(user_id.to_owned()) } else { ids.remove(user_id) };
        if changed {
            let document = revoke_policy::with_revocations(current.as_deref(), &ids)
                .map_err(RevokeStep::Policy)?;
            rc.call(|| self.idc.set_inline_policy(instance, arn, document.as_deref())).await?;
        }
        // Provisioned every time: a retry after a crash between the write and the provisioning
        // must still reach the accounts.
        Ok(rc.call(|| self.idc.provision_permission_set(instance, arn)).await?)
    }

    /// Waits for a provisioning request: `None` when it succeeded, `Some(reason)` when IdC
    /// reports it failed; an error when it cannot be told (retryable).
    async fn wait_provisioned(
        &self,
        rc: &Reconciler<'_, Idc, Org>,
        instance: &str,
        what: &str,
        request: &str,
    ) -> Result<Option<String>, SyncError> {
        let deadline = tokio::time::Instant::now() + self.limits.operation_timeout;
        loop {
            match rc.call(|| self.idc.provisioning_status(instance, request)).await? {
                OperationStatus::Succeeded => return Ok(None),
                OperationStatus::Failed(reason) => {
                    tracing::error!(%what, %reason, "provisioning failed");
                    return Ok(Some(reason));
                }
                OperationStatus::InProgress if tokio::time::Instant::now() >= deadline => {
                    return Err(AwsError::Retryable {
                        service: "sso-admin",
                        operation: "ProvisionPermissionSet",
                        message: format!("provisioning {what} still in progress"),
                    }
                    .into());
                }
                OperationStatus::InProgress => tokio::time::sleep(self.limits.poll_interval).await,
            }
        }
    }
}

fn accounts_of(covered: &[Covered]) -> Vec<String> {
    covered
        .iter()
        .flat_map(|c| c.accounts.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

enum RevokeStep {
    Policy(RevokePolicyError),
    Aws(AwsError),
}

impl From<AwsError> for RevokeStep {
    fn from(e: AwsError) -> Self {
        RevokeStep::Aws(e)
    }
}

/// `sessions-revoked` when everything the person can use is covered; `revocation-incomplete`
/// (critical) when anything is not, or nothing could be found to cover.
fn revocation_alert(
    report: &RevokeReport,
    record: Option<&RevokedSessions>,
    reason: &str,
    now: DateTime<Utc>,
) -> Alert {
    let complete = report.complete();
    let detector = if complete { "sessions-revoked" } else { "revocation-incomplete" };
    let severity = if complete { Severity::High } else { Severity::Critical };
    let names: Vec<&str> = report.covered.iter().map(|c| c.name.as_str()).collect();
    let not_covered: Vec<String> = report.not_covered.iter().map(NotCovered::line).collect();
    let accounts = record.map(|r| r.accounts.clone()).unwrap_or_default();
    let at = record.map_or(now, |r| r.revoked_at);
    let key = format!(
        "{}\n{}\n{}",
        report.user_id.as_deref().unwrap_or(&report.login),
        at.timestamp(),
        not_covered.join("|")
    );
    let title = if complete {
        format!("Live AWS sessions of {} denied", report.login)
    } else if report.covered.is_empty() {
        format!("Live AWS sessions of {} could NOT be denied", report.login)
    } else {
        format!("Live AWS sessions of {} only partly denied", report.login)
    };
    let until = report
        .release_after
        .map(|t| format!(" until at least {}", t.format("%Y-%m-%d %H:%M UTC")))
        .unwrap_or_default();
    let mut summary = format!(
        "{} ({reason}): sessions denied in {} permission set(s) ({}) across {} account(s){until}.",
        report.login,
        names.len(),
        names.join(", "),
        accounts.len(),
    );
    if !not_covered.is_empty() {
        summary.push_str(&format!(" NOT covered: {}.", not_covered.join("; ")));
    }
    if !report.notes.is_empty() {
        summary.push_str(&format!(" {}.", report.notes.join("; ")));
    }
    let covered: Vec<serde_json::Value> = report
        .covered
        .iter()
        .map(|c| json!({"permission_set": c.name, "arn": c.arn, "accounts": c.accounts, "via": c.via, "managed": c.managed}))
        .collect();
    Alert::new(
        detector,
        &key,
        at,
        severity,
        title,
        Some(report.login.clone()),
        summary,
        json!({"user_id": report.user_id, "covered": covered, "accounts": accounts,
            "not_covered": report.not_covered, "notes": report.notes,
            "release_after": report.release_after}),
        vec![],
        format!(
            "{PORTAL_SESSION_STEP} For each item NOT covered, do what its reason says (a full inline policy: shorten it, then run `idc-guard revoke --user {}` again; an entitlement: delete it). `idc-guard revoke --status --user {}` shows what is denied where. To lift the deny early (a mistaken deactivation), reactivate the user in Okta.",
            report.login, report.login
        ),
    )
}

/// A recorded deny found missing (someone's write dropped it) and put back.
fn dropped_alert(r: &RevokedSessions, restored: &[String], now: DateTime<Utc>) -> Alert {
    Alert::new(
        "revocation-incomplete",
        &format!("dropped\n{}\n{}", r.user_id, now.timestamp()),
        now,
        Severity::Critical,
        format!("The session deny of {} was removed and put back", r.login),
        Some(r.login.clone()),
        format!(
            "The deny of {}'s sessions was missing from {} (an inline-policy write by someone else: infrastructure as code, the console); idc-guard put it back and re-provisioned. Between the write and now, sessions were not denied there.",
            r.login,
            restored.join(", ")
        ),
        json!({"user_id": r.user_id, "restored": restored}),
        vec![],
        "Find who wrote the inline policy (CloudTrail PutInlinePolicyToPermissionSet) and make that tool keep the IdcGuardRevokedSessions statement; check CloudTrail for the user's activity in the gap.",
    )
}

#[cfg(test)]
#[path = "revoke_tests.rs"]
mod tests;
