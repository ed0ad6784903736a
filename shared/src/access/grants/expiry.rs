//! The end of grants, on the grants function's own five-minute schedule: nothing before it in
//! the run (no reconcile, no other grant) can hold an end up.
//!
//! Grant by grant, each in its own error scope (one failure is alerted and the rest still end):
//! - a grant that is due, or whose group is no longer grantable, ends: its membership goes unless
//!   another running grant of the same person and group holds it (a lease: overlapping grants
//!   never cut each other short), the record says so before anything slower runs, then the
//!   person's live sessions on the group's permission sets are denied and the activity of the
//!   window is summarised;
//! - an `activating` grant (the function stopped between its write-ahead record and `active`) is
//!   finished;
//! - an ended grant whose session deny failed is retried.
//!
//! Then memberships of grantable groups that no running grant explains are reported (and
//! removed, with `[settings] remove_unexplained_members`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::{GrantsHandler, Ports, grant_alert};
use crate::access::sync::SyncError;
use crate::alert::{Alert, Severity};
use crate::okta::ports::OktaGroups;
use crate::records::{self, Grant, GrantStatus};

/// What one schedule run did.
#[derive(Debug, Default, Serialize)]
pub struct ExpiryReport {
    /// Grants ended.
    pub ended: Vec<String>,
    /// `activating` grants finished.
    pub activated: Vec<String>,
    /// Session denies written on a retry.
    pub sessions_retried: Vec<String>,
    /// Grants that could not be ended or finished, with why (alerted; retried next run).
    pub failed: Vec<(String, String)>,
    /// Memberships of grantable groups no grant explains.
    pub unexplained: usize,
}

/// The membership runs: approved (or being activated) and not past its end.
pub fn running(g: &Grant, now: DateTime<Utc>) -> bool {
    matches!(g.status, GrantStatus::Active | GrantStatus::Activating)
        && g.expires_at.is_some_and(|e| e > now)
}

/// The grant is due to end.
pub fn due(g: &Grant, now: DateTime<Utc>) -> bool {
    matches!(g.status, GrantStatus::Active | GrantStatus::Activating)
        && g.expires_at.is_none_or(|e| e <= now)
}

/// Another running grant of the same person and group, other than `grant`, whose group is
/// still grantable.
pub fn leased_by_another<'a>(
    grant: &Grant,
    all: &'a [Grant],
    now: DateTime<Utc>,
    grantable: impl Fn(&str) -> bool,
) -> Option<&'a Grant> {
    all.iter().find(|g| {
        g.id != grant.id
            && same_person(g, grant)
            && g.group == grant.group
            && running(g, now)
            && grantable(&g.group)
    })
}

fn same_person(a: &Grant, b: &Grant) -> bool {
    if !a.user_id.is_empty() && !b.user_id.is_empty() {
        a.user_id == b.user_id
    } else {
        a.login.eq_ignore_ascii_case(&b.login)
    }
}

impl<P: Ports> GrantsHandler<P> {
    /// The five-minute run (see the module header). Fails, after doing everything it can, when a
    /// grant could not be ended, so the function's error alarm fires too.
    pub async fn run_schedule(&self, now: DateTime<Utc>) -> Result<ExpiryReport, SyncError> {
        let mut report = ExpiryReport::default();
        for grant in self.grants().await? {
            let id = grant.id.clone();
            let grantable = self.access.policy.grantable(&grant.group).is_some();
            let outcome = if due(&grant, now) || (!grantable && running(&grant, now)) {
                let why =
                    if grantable { "its time is up" } else { "its group is no longer grantable" };
                self.end(grant, now, why).await.map(|_| report.ended.push(id.clone()))
            } else if grant.status == GrantStatus::Activating {
                let mut grant = grant;
                self.finish_activation(&mut grant).await.map(|_| report.activated.push(id.clone()))
            } else if grant.status == GrantStatus::Expired && grant.sessions_pending {
                let mut grant = grant;
                self.deny_sessions(&mut grant, now)
                    .await
                    .map(|_| report.sessions_retried.push(id.clone()))
            } else {
                Ok(())
            };
            if let Err(e) = outcome {
                tracing::error!(grant = %id, error = %e, "a grant could not be ended or finished");
                let alert = Alert::new(
                    "grant-end-failed",
                    &format!("{id}\ngrant-end-failed"),
                    now,
                    Severity::Critical,
                    format!("grant {id} could not be ended or finished"),
                    None,
                    format!(
                        "The five-minute grant run could not complete grant {id}: {e}. It tries again every five minutes; the other grants were ended."
                    ),
                    json!({"grant": id, "error": e.to_string()}),
                    vec![],
                    "Check the grants function's logs and its Okta credential; `idc-guard grants` shows the grant. Remove the Okta membership by hand if the cause lasts.",
                );
                if let Err(e) = self.raise(alert).await {
                    tracing::error!(error = %e, "the grant-end-failed alert could not be sent");
                }
                report.failed.push((id, e.to_string()));
            }
        }
        if !self.access.policy.grantable.is_empty() {
            match self.unexplained_members(now).await {
                Ok(found) => report.unexplained = found.len(),
                Err(e) => tracing::warn!(error = %e, "memberships of grantable groups not checked"),
            }
        }
        if let Some((id, why)) = report.failed.first() {
            return Err(SyncError::Grant(format!(
                "{} grant(s) could not be ended or finished (first: {id}: {why}); the others were",
                report.failed.len()
            )));
        }
        Ok(report)
    }

    /// Ends one grant: the membership (unless leased), the record, the sessions, the summary.
    async fn end(&self, mut grant: Grant, now: DateTime<Utc>, why: &str) -> Result<(), SyncError> {
        let is_grantable = |g: &str| self.access.policy.grantable(g).is_some();
        let all = self.grants().await?;
        let leased = leased_by_another(&grant, &all, now, is_grantable).is_some();
        if !leased {
            let okta = self.okta()?;
            match okta.group_id(&grant.group).await? {
                None => {
                    tracing::warn!(grant = %grant.id, group = %grant.group, "no such Okta group: no membership to remove")
                }
                Some(group_id) => {
                    let user_id = self.okta_user_id(&grant).await?;
                    if let Some(user_id) = user_id {
                        okta.remove_member(&group_id, &user_id).await?;
                        // A grant activated while this one was ending wins: its membership is
                        // put back, and no session is denied.
                        let all = self.grants().await?;
                        if leased_by_another(&grant, &all, now, is_grantable).is_some() {
                            okta.add_member(&group_id, &user_id).await?;
                            return self.close(grant, now, why, false).await;
                        }
                    }
                }
            }
        }
        self.close(grant.clone(), now, why, !leased).await?;
        grant = self.load(&grant.id).await?;
        if grant.sessions_pending {
            // The membership is gone and the record says so: a failure here is retried.
            self.deny_sessions(&mut grant, now).await?;
        }
        Ok(())
    }

    async fn okta_user_id(&self, grant: &Grant) -> Result<Option<String>, SyncError> {
        if !grant.user_id.is_empty() {
            return Ok(Some(grant.user_id.clone()));
        }
        Ok(self.okta()?.user_id(&grant.login).await?)
    }

    /// Marks the grant ended (before the slower steps), with its activity, and alerts.
    async fn close(
        &self,
        mut grant: Grant,
        now: DateTime<Utc>,
        why: &str,
        deny_sessions: bool,
    ) -> Result<(), SyncError> {
        grant.status = GrantStatus::Expired;
        grant.ended_at = Some(now);
        grant.sessions_pending = deny_sessions;
        records::save(&self.access.store, &grant).await?;
        grant.activity = self.activity_of(&grant, now).await;
        records::save(&self.access.store, &grant).await?;
        let activity = grant
            .activity
            .as_ref()
            .map(|a| format!(" Activity: {}.", a.headline()))
            .unwrap_or_default();
        let summary = format!(
            "{}'s grant of {} ended ({why}; {}).{}{}",
            grant.login,
            grant.group,
            grant.reason,
            if deny_sessions {
                " The membership was removed and live sessions are denied"
            } else {
                " Another running grant of the same group keeps the membership"
            },
            activity
        );
        self.raise(grant_alert("grant-expired", Severity::Medium, &grant, summary)).await?;
        self.update_slack(&grant).await;
        Ok(())
    }

    /// Denies the person's live sessions on the group's permission sets.
    async fn deny_sessions(&self, grant: &mut Grant, now: DateTime<Utc>) -> Result<(), SyncError> {
        self.access
            .revoke_group_sessions(
                &grant.login,
                &grant.group,
                &format!("grant {} ended", grant.id),
                now,
            )
            .await?;
        grant.sessions_pending = false;
        records::save(&self.access.store, grant).await?;
        Ok(())
    }

    /// Members of grantable groups that no running grant explains: alerted, and removed when
    /// the policy says so. Returns (group, login) pairs.
    pub async fn unexplained_members(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, SyncError> {
        let grants = self.grants().await?;
        let mut found = Vec::new();
        let okta = self.okta()?;
        for grantable in &self.access.policy.grantable {
            let Some(group_id) = okta.group_id(&grantable.group).await? else { continue };
            for login in okta.member_logins(&group_id).await? {
                let explained = grants.iter().any(|g| {
                    g.group == grantable.group
                        && g.login.eq_ignore_ascii_case(&login)
                        && running(g, now)
                });
                if explained {
                    continue;
                }
                let remove = self.access.policy.settings.remove_unexplained_members;
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
                self.raise(alert).await?;
                found.push((grantable.group.clone(), login));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::*;
    use crate::records::{Grant, GrantStatus};

    fn at() -> DateTime<Utc> {
        "2026-11-28T10:00:00Z".parse().unwrap()
    }

    fn grant(id: &str, user: &str, group: &str, status: GrantStatus, ends: i64) -> Grant {
        Grant {
            id: id.into(),
            login: format!("{user}@acme.example"),
            user_id: format!("00u-{user}"),
            group: group.into(),
            reason: "INC-1".into(),
            minutes: 60,
            requested_by: String::new(),
            requester_id: String::new(),
            requested_at: at(),
            approved_by: None,
            approvals: vec![],
            denied_by: None,
            break_glass: false,
            reviewed_by: None,
            status,
            starts_at: Some(at()),
            expires_at: Some(at() + Duration::seconds(ends)),
            ended_at: None,
            sessions_pending: false,
            slack_message: None,
            activity: None,
        }
    }

    #[test]
    fn a_grant_runs_until_the_second_it_ends_and_is_due_from_then() {
        for status in [GrantStatus::Active, GrantStatus::Activating] {
            let g = grant("g", "alice", "admin", status, 60);
            assert!(
                running(&g, at() + Duration::seconds(59)) && !due(&g, at() + Duration::seconds(59))
            );
            assert!(
                !running(&g, at() + Duration::seconds(60)) && due(&g, at() + Duration::seconds(60))
            );
        }
        for status in [GrantStatus::Pending, GrantStatus::Expired, GrantStatus::Denied] {
            let g = grant("g", "alice", "admin", status, 60);
            assert!(!running(&g, at()) && !due(&g, at() + Duration::hours(2)), "{status:?}");
        }
        let mut no_end = grant("g", "alice", "admin", GrantStatus::Active, 0);
        no_end.expires_at = None;
        assert!(
            due(&no_end, at()) && !running(&no_end, at()),
            "an active grant without an end is ended"
        );
    }

    #[test]
    fn only_another_running_grant_of_the_same_person_and_group_is_a_lease() {
        let mine = grant("g1", "alice", "admin", GrantStatus::Active, 0);
        let now = at();
        let yes = |_: &str| true;
        let lease = |other: Grant| {
            leased_by_another(&mine, std::slice::from_ref(&other), now, yes).is_some()
        };
        assert!(lease(grant("g2", "alice", "admin", GrantStatus::Active, 60)));
        assert!(lease(grant("g2", "alice", "admin", GrantStatus::Activating, 60)));
        assert!(!lease(grant("g1", "alice", "admin", GrantStatus::Active, 60)), "itself");
        assert!(!lease(grant("g2", "bob", "admin", GrantStatus::Active, 60)), "another person");
        assert!(!lease(grant("g2", "alice", "other", GrantStatus::Active, 60)), "another group");
        assert!(!lease(grant("g2", "alice", "admin", GrantStatus::Active, 0)), "ended now");
        assert!(!lease(grant("g2", "alice", "admin", GrantStatus::Pending, 60)), "not approved");
        let other = grant("g2", "alice", "admin", GrantStatus::Active, 60);
        assert!(
            leased_by_another(&mine, std::slice::from_ref(&other), now, |_| false).is_none(),
            "group no longer grantable"
        );
        // Records of an earlier version carry no user id: the login decides, case-insensitively.
        let mut old = grant("g3", "ALICE", "admin", GrantStatus::Active, 60);
        old.user_id.clear();
        assert!(lease(old));
        // The same login given to another person (ids differ): not the same person.
        let mut reassigned = grant("g4", "alice", "admin", GrantStatus::Active, 60);
        reassigned.user_id = "00u-someone-else".into();
        assert!(!lease(reassigned));
        let mut old_bob = grant("g3", "bob", "admin", GrantStatus::Active, 60);
        old_bob.user_id.clear();
        assert!(!lease(old_bob));
    }
}
