//! Access that really ends: when Okta deactivates or suspends someone, SCIM disables them in IAM
//! Identity Center, but the console and CLI role sessions they already hold live on until their
//! permission set's session duration ends (up to 12 hours). AWS's cure, automated:
//!
//! 1. resolve the user's Identity Store id (`GetUserId` by user name);
//! 2. find every permission set the user could use: the assignments of their groups
//!    (`ListGroupMembershipsForMember`, then each group's assignments), limited to the permission
//!    sets the policy names;
//! 3. add the user's id to idc-guard's deny statement in each one's inline policy
//!    ([`super::revoke_policy`]), re-provision it to its accounts and wait until IdC reports the
//!    provisioning done;
//! 4. record the revocation ([`RevokedSessions`]) and raise `sessions-revoked` with the accounts.
//!
//! After the longest session of those permission sets plus a margin, no session from before the
//! revocation can be alive: the scheduled sweep ([`AccessSyncHandler::release_due`]) takes the
//! id out again, unless the user is still deactivated and `[settings]
//! keep_revoked_while_deactivated` says to keep it. Reactivation in Okta releases at once. Every
//! step is idempotent: a retry after any failure converges.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;

use super::policy::parse_session_duration;
use super::ports::{IdentityCenter, OperationStatus, Organizations};
use super::reconcile::Reconciler;
use super::revoke_policy::{self, RevokePolicyError};
use super::sync::{AccessSyncHandler, SyncError};
use crate::alert::{Alert, AlertSink, Alerts, Severity};
use crate::error::AwsError;
use crate::okta::ports::{OktaGroups, SystemLog};
use crate::records::{self, Lifecycle, RevokedSessions};
use crate::store::StateStore;

/// Added to the longest session duration before a revocation is released.
pub const RELEASE_MARGIN_MINUTES: i64 = 15;

/// One permission set a revocation covers.
#[derive(Debug, Clone, Serialize)]
pub struct Covered {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// The accounts the user's groups hold it in.
    pub accounts: Vec<String>,
    /// Its session duration (ISO-8601).
    pub session_duration: String,
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
    /// Permission sets whose inline policy cannot take the deny (full, or not a policy).
    pub not_covered: Vec<String>,
    /// The deny was written and provisioned (false: `--dry-run`, or nothing to cover).
    pub applied: bool,
    /// When the deny may be released.
    pub release_after: Option<DateTime<Utc>>,
}

fn aws_error(operation: &'static str, message: String) -> AwsError {
    AwsError::Permanent { service: "sso-admin", operation, message }
}

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
            applied: false,
            release_after: None,
        };
        // Paced and retried as the reconciler's calls are (IdC's request rate is shared).
        let rc = self.reconciler();
        let instance = rc.call(|| self.idc.instance(self.instance_arn.as_deref())).await?;
        let store_id = instance.identity_store_id.as_str();
        let Some(user_id) = rc.call(|| self.idc.find_user_id(store_id, login)).await? else {
            tracing::warn!(%login, "no such user in IAM Identity Center: no session to revoke");
            return Ok(report);
        };
        report.user_id = Some(user_id.clone());
        // The permission sets the user could use: their groups' assignments, of the policy's
        // permission sets (a revocation already recorded keeps covering what it covered).
        let mut accounts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let instance_arn = instance.instance_arn.as_str();
        let groups = match only_group {
            // The group's assignments, whether or not SCIM has removed the membership yet.
            Some(name) => rc
                .call(|| self.idc.find_group(store_id, name))
                .await?
                .map(|g| vec![g.id])
                .unwrap_or_default(),
            None => rc.call(|| self.idc.user_group_ids(store_id, &user_id)).await?,
        };
        for group in groups {
            let (assignments, _) =
                rc.call(|| self.idc.list_group_assignments(instance_arn, &group)).await?;
            for a in assignments {
                accounts.entry(a.permission_set_arn).or_default().insert(a.account_id);
            }
        }
        let previous: Option<RevokedSessions> =
            records::load(&self.store, &RevokedSessions::key_of(&user_id)).await?;
        for arn in previous.iter().flat_map(|p| &p.permission_sets) {
            accounts.entry(arn.clone()).or_default();
        }
        let policy_names = self.policy.permission_set_names();
        let sets = rc.call(|| self.idc.list_permission_sets(instance_arn)).await?;
        for info in sets.iter().filter(|i| accounts.contains_key(&i.arn)) {
            if !policy_names.contains(info.name.as_str()) {
                continue;
            }
            report.covered.push(Covered {
                name: info.name.clone(),
                arn: info.arn.clone(),
                accounts: accounts[&info.arn].iter().cloned().collect(),
                session_duration: info.session_duration.clone().unwrap_or_else(|| "PT1H".into()),
            });
        }
        let longest = report
            .covered
            .iter()
            .filter_map(|c| parse_session_duration(&c.session_duration))
            .max()
            .unwrap_or(60);
        let release_after = now + Duration::minutes(i64::from(longest) + RELEASE_MARGIN_MINUTES);
        report.release_after = Some(release_after);
        if dry_run || report.covered.is_empty() {
            return Ok(report);
        }
        let accounts_of = |covered: &[Covered]| -> Vec<String> {
            covered
                .iter()
                .flat_map(|c| c.accounts.iter().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
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
        };
        records::save(&self.store, &record).await?;
        let mut requests = Vec::new();
        for c in &report.covered {
            match self.set_denied(&rc, &instance.instance_arn, &c.arn, &user_id, true).await {
                Ok(request) => requests.push((c.name.clone(), request)),
                Err(RevokeStep::Policy(e)) => {
                    tracing::error!(permission_set = %c.name, error = %e, "cannot add the session deny");
                    report.not_covered.push(format!("{}: {e}", c.name));
                }
                Err(RevokeStep::Aws(e)) => return Err(e.into()),
            }
        }
        for (name, request) in &requests {
            self.wait_provisioned(&rc, &instance.instance_arn, name, request).await?;
        }
        report.covered.retain(|c| !report.not_covered.iter().any(|n| n.starts_with(&c.name)));
        // A writer that read an inline policy before the deny was added and wrote it after
        // (a reconcile from the CLI) would have dropped it: checked, and written again.
        for c in &report.covered {
            let inline = self
                .idc
                .permission_set_policies(&instance.instance_arn, &c.arn, false)
                .await?
                .inline;
            if !revoke_policy::revoked_ids(inline.as_deref()).contains(&user_id) {
                tracing::warn!(permission_set = %c.name, "the session deny was overwritten: written again");
                match self.set_denied(&rc, &instance.instance_arn, &c.arn, &user_id, true).await {
                    Ok(request) => {
                        self.wait_provisioned(&rc, &instance.instance_arn, &c.name, &request)
                            .await?
                    }
                    Err(RevokeStep::Policy(e)) => {
                        report.not_covered.push(format!("{}: {e}", c.name))
                    }
                    Err(RevokeStep::Aws(e)) => return Err(e.into()),
                }
            }
        }
        record.permission_sets = report.covered.iter().map(|c| c.arn.clone()).collect();
        record.accounts = accounts_of(&report.covered);
        records::save(&self.store, &record).await?;
        report.applied = true;
        Alerts::new(&self.sink, &self.store).raise(&sessions_revoked(&report, &record)).await?;
        Ok(report)
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
            self.wait_provisioned(&rc, &instance.instance_arn, arn, request).await?;
        }
        self.store.delete(RevokedSessions::PK, user_id).await?;
        tracing::info!(user = %record.login, %user_id, "session deny released");
        Ok(true)
    }

    /// The scheduled sweep: releases every revocation whose sessions have ended, unless the user
    /// is still deactivated and the policy keeps it. Returns the logins released.
    pub async fn release_due(&self, now: DateTime<Utc>) -> Result<Vec<String>, SyncError> {
        let mut released = Vec::new();
        for item in self.store.query(RevokedSessions::PK).await? {
            let Some(mut r) = <RevokedSessions as records::Record>::from_item(&item) else {
                continue;
            };
            r.user_id = item.sk.clone();
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
            if self.release_sessions(&r.user_id).await? {
                released.push(r.login);
            }
        }
        Ok(released)
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

    async fn wait_provisioned(
        &self,
        rc: &Reconciler<'_, Idc, Org>,
        instance: &str,
        what: &str,
        request: &str,
    ) -> Result<(), SyncError> {
        let deadline = tokio::time::Instant::now() + self.limits.operation_timeout;
        loop {
            match rc.call(|| self.idc.provisioning_status(instance, request)).await? {
                OperationStatus::Succeeded => return Ok(()),
                OperationStatus::Failed(reason) => {
                    return Err(aws_error(
                        "ProvisionPermissionSet",
                        format!("provisioning {what} failed: {reason}"),
                    )
                    .into());
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

enum RevokeStep {
    Policy(RevokePolicyError),
    Aws(AwsError),
}

impl From<AwsError> for RevokeStep {
    fn from(e: AwsError) -> Self {
        RevokeStep::Aws(e)
    }
}

fn sessions_revoked(report: &RevokeReport, record: &RevokedSessions) -> Alert {
    let severity = if report.not_covered.is_empty() { Severity::High } else { Severity::Critical };
    let names: Vec<&str> = report.covered.iter().map(|c| c.name.as_str()).collect();
    Alert::new(
        "sessions-revoked",
        &format!("{}\n{}", record.user_id, record.revoked_at.timestamp()),
        record.revoked_at,
        severity,
        format!("Live AWS sessions of {} denied", record.login),
        Some(record.login.clone()),
        format!(
            "{} ({}): sessions denied in {} permission set(s) ({}) across {} account(s) until {}.{}",
            record.login,
            record.reason,
            names.len(),
            names.join(", "),
            record.accounts.len(),
            record.release_after.format("%Y-%m-%d %H:%M UTC"),
            if report.not_covered.is_empty() {
                String::new()
            } else {
                format!(" NOT covered: {}.", report.not_covered.join("; "))
            }
        ),
        json!({"user_id": record.user_id, "permission_sets": names, "accounts": record.accounts,
            "release_after": record.release_after, "not_covered": report.not_covered}),
        vec![],
        "Nothing to do if the deactivation was intended. A permission set NOT covered has a full inline policy: shorten it, then run `idc-guard revoke --user <login>` again. To lift the deny early (a mistaken deactivation), reactivate the user in Okta.",
    )
}

#[cfg(test)]
#[path = "revoke_tests.rs"]
mod tests;
