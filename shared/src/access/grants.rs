//! Time-boxed elevation through Okta groups.
//!
//! The policy names the groups that may be granted (`[[grantable]]`: the longest grant, whether
//! a second person must approve). A grant is a record first (`grant-requested`); once approved
//! (`grant-approved`; never by the person who asked), the Okta membership is added with
//! `PUT /api/v1/groups/{group}/users/{user}`, so SCIM, access-sync and Okta's own policies all see
//! it. The scheduled run ends grants that are due (`grant-expired`): the membership is removed
//! (`DELETE`) unless a later grant of the same group to the same user still runs (the latest
//! expiry wins), and the user's live sessions on that group's permission sets are denied
//! ([`super::revoke`]). A membership in a grantable group that no active grant explains is
//! reported (`unexplained-membership`) and, with `[settings] remove_unexplained_members`,
//! removed.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::ports::{IdentityCenter, Organizations};
use super::sync::{AccessSyncHandler, SyncError};
use crate::alert::{Alert, AlertSink, Alerts, Severity};
use crate::okta::ports::{OktaError, OktaGroups, SystemLog};
use crate::records::{self, Grant, GrantStatus, Record};
use crate::store::StateStore;

fn refused(message: impl Into<String>) -> SyncError {
    SyncError::Grant(message.into())
}

fn grant_alert(detector: &'static str, severity: Severity, g: &Grant, summary: String) -> Alert {
    Alert::new(
        detector,
        &format!("{}\n{detector}", g.id),
        Utc::now(),
        severity,
        format!("{} for {} in {}", detector.replace('-', " "), g.login, g.group),
        Some(g.login.clone()),
        summary,
        json!({"grant": g.id, "group": g.group, "reason": g.reason, "requested_by": g.requested_by,
            "approved_by": g.approved_by, "minutes": g.minutes, "expires_at": g.expires_at}),
        vec![],
        "An audit record of time-boxed access: `idc-guard grants` lists every grant with who asked, who approved, why and when.",
    )
}

impl<Idc, Org, Store, Sink, Log> AccessSyncHandler<Idc, Org, Store, Sink, Log>
where
    Idc: IdentityCenter,
    Org: Organizations,
    Store: StateStore,
    Sink: AlertSink,
    Log: SystemLog + OktaGroups,
{
    fn okta(&self) -> Result<&Log, SyncError> {
        self.system_log.as_ref().ok_or_else(|| {
            SyncError::Okta(OktaError::Config(
                "Okta is not configured (IDC_GUARD_OKTA_ORG_URL, IDC_GUARD_OKTA_API_SECRET_ARN)"
                    .into(),
            ))
        })
    }

    async fn raise_grant(&self, alert: Alert) -> Result<(), SyncError> {
        Alerts::new(&self.sink, &self.store).raise(&alert).await?;
        Ok(())
    }

    /// Records a request for `login` to be in `group` for `duration`; a group that needs no
    /// approval is granted at once.
    pub async fn grant_request(
        &self,
        login: &str,
        group: &str,
        duration: Duration,
        reason: &str,
        requested_by: &str,
        now: DateTime<Utc>,
    ) -> Result<Grant, SyncError> {
        let Some(grantable) = self.policy.grantable(group) else {
            return Err(refused(format!(
                "{group} is not a grantable group (the policy's [[grantable]] names those)"
            )));
        };
        if duration <= Duration::zero() || duration > grantable.max_duration {
            return Err(refused(format!(
                "{group} may be granted for at most {} minutes",
                grantable.max_duration.num_minutes()
            )));
        }
        if reason.trim().is_empty() {
            return Err(refused("a grant needs a reason (--reason, e.g. an incident id)"));
        }
        let grant = Grant {
            id: format!("g-{}-{:04x}", now.format("%Y%m%d%H%M%S"), fastrand::u16(..)),
            login: login.to_owned(),
            group: group.to_owned(),
            reason: reason.trim().to_owned(),
            minutes: duration.num_minutes(),
            requested_by: requested_by.to_owned(),
            requested_at: now,
            approved_by: None,
            status: GrantStatus::Pending,
            starts_at: None,
            expires_at: None,
        };
        records::save(&self.store, &grant).await?;
        let summary = format!(
            "{requested_by} asked for {login} to be in {group} for {} minutes: {}{}",
            grant.minutes,
            grant.reason,
            if grantable.approval { " (waiting for approval)" } else { "" }
        );
        self.raise_grant(grant_alert("grant-requested", Severity::Medium, &grant, summary)).await?;
        if grantable.approval {
            return Ok(grant);
        }
        self.activate(grant, now).await
    }

    /// Approves a pending grant and adds the membership. The person who asked cannot approve.
    pub async fn grant_approve(
        &self,
        id: &str,
        approver: &str,
        now: DateTime<Utc>,
    ) -> Result<Grant, SyncError> {
        let Some(mut grant): Option<Grant> = records::load(&self.store, &Grant::key_of(id)).await?
        else {
            return Err(refused(format!("no grant {id}")));
        };
        if grant.status != GrantStatus::Pending {
            return Err(refused(format!("grant {id} is not pending (it is {:?})", grant.status)));
        }
        if grant.requested_by.eq_ignore_ascii_case(approver) {
            return Err(refused("self-approval is refused: another person must approve"));
        }
        grant.approved_by = Some(approver.to_owned());
        self.activate(grant, now).await
    }

    async fn activate(&self, mut grant: Grant, now: DateTime<Utc>) -> Result<Grant, SyncError> {
        let (group_id, user_id) = self.okta_ids(&grant).await?;
        self.okta()?.add_member(&group_id, &user_id).await?;
        grant.status = GrantStatus::Active;
        grant.starts_at = Some(now);
        grant.expires_at = Some(now + Duration::minutes(grant.minutes));
        records::save(&self.store, &grant).await?;
        let summary = format!(
            "{} is in {} until {}{}: {}",
            grant.login,
            grant.group,
            grant.expires_at.unwrap_or(now).format("%Y-%m-%d %H:%M UTC"),
            grant.approved_by.as_deref().map(|a| format!(", approved by {a}")).unwrap_or_default(),
            grant.reason
        );
        self.raise_grant(grant_alert("grant-approved", Severity::High, &grant, summary)).await?;
        Ok(grant)
    }

    async fn okta_ids(&self, grant: &Grant) -> Result<(String, String), SyncError> {
        let okta = self.okta()?;
        let group_id = okta
            .group_id(&grant.group)
            .await?
            .ok_or_else(|| refused(format!("no Okta group named {}", grant.group)))?;
        let user_id = okta
            .user_id(&grant.login)
            .await?
            .ok_or_else(|| refused(format!("no Okta user {}", grant.login)))?;
        Ok((group_id, user_id))
    }

    /// Every grant, oldest request first.
    pub async fn grants(&self) -> Result<Vec<Grant>, SyncError> {
        let mut out: Vec<Grant> = Vec::new();
        for item in self.store.query(Grant::PK).await? {
            if let Some(mut g) = Grant::from_item(&item) {
                g.restore_key(&records::Key::new(item.pk.clone(), item.sk.clone()));
                out.push(g);
            }
        }
        out.sort_by_key(|g| g.requested_at);
        Ok(out)
    }

    /// Ends every active grant that is due: the membership goes unless a later grant of the
    /// same group to the same user still runs; the user's live sessions on the group's
    /// permission sets are denied. Returns the grants ended.
    pub async fn expire_grants(&self, now: DateTime<Utc>) -> Result<Vec<Grant>, SyncError> {
        let mut ended = Vec::new();
        let due: Vec<Grant> = self
            .grants()
            .await?
            .into_iter()
            .filter(|g| g.status == GrantStatus::Active && g.expires_at.is_some_and(|e| e <= now))
            .collect();
        for mut grant in due {
            if !self.still_granted(&grant, now).await? {
                // A user or group Okta no longer has holds no membership to remove.
                let (group_id, user_id) = match self.okta_ids(&grant).await {
                    Ok(ids) => ids,
                    Err(SyncError::Grant(why)) => {
                        tracing::warn!(grant = %grant.id, %why, "nothing to remove in Okta");
                        (String::new(), String::new())
                    }
                    Err(e) => return Err(e),
                };
                if !group_id.is_empty() {
                    self.okta()?.remove_member(&group_id, &user_id).await?;
                }
                // A grant approved while this one was ending wins: its membership is put back.
                if !group_id.is_empty() && self.still_granted(&grant, now).await? {
                    self.okta()?.add_member(&group_id, &user_id).await?;
                } else {
                    self.revoke_group_sessions(
                        &grant.login,
                        &grant.group,
                        &format!("grant {} ended", grant.id),
                        now,
                    )
                    .await?;
                }
            }
            grant.status = GrantStatus::Expired;
            records::save(&self.store, &grant).await?;
            let summary = format!(
                "{}'s grant of {} ended ({}); the membership was removed unless a later grant runs",
                grant.login, grant.group, grant.reason
            );
            self.raise_grant(grant_alert("grant-expired", Severity::Medium, &grant, summary))
                .await?;
            ended.push(grant);
        }
        Ok(ended)
    }

    /// Another active grant of the same group to the same user runs past `now`.
    async fn still_granted(&self, grant: &Grant, now: DateTime<Utc>) -> Result<bool, SyncError> {
        Ok(self.grants().await?.iter().any(|g| {
            g.id != grant.id
                && g.login.eq_ignore_ascii_case(&grant.login)
                && g.group == grant.group
                && g.status == GrantStatus::Active
                && g.expires_at.is_some_and(|e| e > now)
        }))
    }

    /// Members of grantable groups that no active grant explains: alerted, and removed when the
    /// policy says so. Returns (group, login) pairs.
    pub async fn unexplained_members(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, SyncError> {
        let grants = self.grants().await?;
        let mut found = Vec::new();
        for grantable in &self.policy.grantable {
            let okta = self.okta()?;
            let Some(group_id) = okta.group_id(&grantable.group).await? else { continue };
            for login in okta.member_logins(&group_id).await? {
                let explained = grants.iter().any(|g| {
                    g.group == grantable.group
                        && g.login.eq_ignore_ascii_case(&login)
                        && g.status == GrantStatus::Active
                        && g.expires_at.is_some_and(|e| e > now)
                });
                if explained {
                    continue;
                }
                let remove = self.policy.settings.remove_unexplained_members;
                if remove && let Some(user_id) = okta.user_id(&login).await? {
                    okta.remove_member(&group_id, &user_id).await?;
                }
                let alert = Alert::new(
                    "unexplained-membership",
                    &format!("{}\n{}", grantable.group, login.to_lowercase()),
                    now,
                    Severity::High,
                    format!("{login} is in grantable group {} without a grant", grantable.group),
                    Some(login.clone()),
                    format!(
                        "{login} is a member of {}, which is granted only for a time, and no active grant explains it{}.",
                        grantable.group,
                        if remove { "; the membership was removed" } else { "" }
                    ),
                    json!({"group": grantable.group, "removed": remove}),
                    vec![],
                    "Ask who added the membership in Okta. Grant it with `idc-guard grant` (time-boxed, approved) or remove it; set [settings] remove_unexplained_members = true to have idc-guard remove such memberships.",
                );
                self.raise_grant(alert).await?;
                found.push((grantable.group.clone(), login));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
#[path = "grants_tests.rs"]
mod tests;
