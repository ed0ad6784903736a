//! Time-boxed elevation through Okta groups, with its authority on the server.
//!
//! The grants function ([`GrantsHandler`]) is the only holder of an Okta credential that changes
//! group membership and the only writer of grant records. People reach it through two front
//! doors ([`api`]): the CLI with an Okta ID token (device sign-in), and Slack with a signed
//! interaction ([`slack`]). Either way the **person** is an Okta user id established by the
//! server ([`authority::Person`]), never an AWS caller ARN, which differs per role and session.
//!
//! - A request is checked against the policy's `[[grantable]]` ([`grantable`]): the group, the
//!   longest duration (one-minute floor), a reason, and that the requester and the beneficiary
//!   are in its `requesters`. It is recorded (`grant-requested`) and, with a Slack channel,
//!   posted there with Approve / Deny buttons.
//! - An approval re-checks all of that at the moment of approval, and that the approver is in
//!   `approvers` and is neither the requester nor the beneficiary nor an earlier approver. Once
//!   `approvals` distinct persons agree, the grant activates: write-ahead `activating`, the
//!   leftover session deny of an earlier grant lifted, the Okta `PUT`, then `active`
//!   (`grant-approved`). Break-glass activates a self-approved grant at once with a critical
//!   `grant-break-glass` alert, to be reviewed by an approver afterwards.
//! - The end ([`expiry`]) runs on its own five-minute schedule, grant by grant: leases (another
//!   running grant of the same person and group keeps the membership), the Okta `DELETE`, the
//!   live-session deny, an activity summary from CloudTrail ([`activity`]), `grant-expired`.
//!   A grant whose group is no longer grantable ends at once.

pub mod activity;
pub mod api;
pub mod authority;
pub mod expiry;
pub mod grantable;
pub mod reviews;
pub mod slack;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::ports::{IdentityCenter, Organizations};
use super::sync::{AccessSyncHandler, SyncError};
use crate::alert::{Alert, AlertSink, Alerts, Severity};
use crate::okta::ports::{OktaError, OktaGroups, SystemLog};
use crate::records::{self, Decision, Grant, GrantStatus, Record, RevokedSessions};
use crate::store::StateStore;
pub use authority::Person;

/// The ports the grants function works over, named once: IAM Identity Center, Organizations,
/// the state store, the alert sink and Okta (group memberships). Implemented for the tuple of
/// them, so `GrantsHandler<(Idc, Org, Store, Sink, Okta)>` names a handler.
pub trait Ports {
    /// IAM Identity Center.
    type Idc: IdentityCenter;
    /// AWS Organizations.
    type Org: Organizations;
    /// The state store.
    type Store: StateStore;
    /// Where alerts go.
    type Sink: AlertSink;
    /// Okta: System Log and group memberships.
    type Log: SystemLog + OktaGroups;
}

impl<I, O, S, K, L> Ports for (I, O, S, K, L)
where
    I: IdentityCenter,
    O: Organizations,
    S: StateStore,
    K: AlertSink,
    L: SystemLog + OktaGroups,
{
    type Idc = I;
    type Org = O;
    type Store = S;
    type Sink = K;
    type Log = L;
}

/// The access-sync handler over a grants handler's ports.
pub type Access<P> = AccessSyncHandler<
    <P as Ports>::Idc,
    <P as Ports>::Org,
    <P as Ports>::Store,
    <P as Ports>::Sink,
    <P as Ports>::Log,
>;

/// The grants function: the access-sync logic it shares (Okta memberships, session denies,
/// IdC), plus Slack and CloudTrail, both optional.
pub struct GrantsHandler<P: Ports> {
    /// IdC, the state table, alerts, the policy and the Okta client (group-membership scope).
    pub access: Access<P>,
    /// Slack's Web API and signing secret (None: the CLI door alone).
    pub slack: Option<Box<dyn slack::SlackApi>>,
    /// CloudTrail, for the activity summary at a grant's end (None: no summary).
    pub activity: Option<Box<dyn activity::UserActivity>>,
    /// Verifies the CLI's Okta ID tokens (None: the CLI door is closed).
    pub id_tokens: Option<crate::okta::id_token::IdTokenVerifier>,
}

/// What a person asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRequest {
    /// The beneficiary's Okta login (None: the person asking).
    pub user: Option<String>,
    /// The grantable group.
    pub group: String,
    /// How long.
    pub duration: Duration,
    /// Why (an incident or ticket).
    pub reason: String,
    /// Self-approved under the group's break-glass settings.
    pub break_glass: bool,
}

pub(crate) fn refused(message: impl Into<String>) -> SyncError {
    SyncError::Grant(message.into())
}

fn decision(person: &Person, now: DateTime<Utc>) -> Decision {
    Decision {
        person_id: person.id.clone(),
        login: person.login.clone(),
        door: person.door,
        at: now,
    }
}

pub(crate) fn grant_alert(
    detector: &'static str,
    severity: Severity,
    g: &Grant,
    summary: String,
) -> Alert {
    Alert::new(
        detector,
        &format!("{}\n{detector}", g.id),
        Utc::now(),
        severity,
        format!("{} for {} in {}", detector.replace('-', " "), g.login, g.group),
        Some(g.login.clone()),
        summary,
        json!({"grant": g.id, "group": g.group, "reason": g.reason, "requested_by": g.requested_by,
            "approvals": g.approvals, "break_glass": g.break_glass, "minutes": g.minutes,
            "expires_at": g.expires_at, "activity": g.activity}),
        vec![],
        "An audit record of time-boxed access: `idc-guard grants` lists every grant with who asked, who approved, why and when.",
    )
}

impl<P: Ports> GrantsHandler<P> {
    pub(crate) fn okta(&self) -> Result<&P::Log, SyncError> {
        self.access.system_log.as_ref().ok_or_else(|| {
            SyncError::Okta(OktaError::Config(
                "Okta is not configured (IDC_GUARD_OKTA_ORG_URL, IDC_GUARD_OKTA_API_SECRET_ARN)"
                    .into(),
            ))
        })
    }

    pub(crate) async fn raise(&self, alert: Alert) -> Result<(), SyncError> {
        Alerts::new(&self.access.sink, &self.access.store).raise(&alert).await?;
        Ok(())
    }

    /// Records `who`'s request; a group that needs no approval, or a break-glass request, is
    /// granted at once.
    pub async fn request(
        &self,
        who: &Person,
        request: &GrantRequest,
        now: DateTime<Utc>,
    ) -> Result<Grant, SyncError> {
        let grantable = self.access.policy.grantable(&request.group).ok_or_else(|| {
            refused(format!(
                "{} is not a grantable group (the policy's [[grantable]] names those)",
                request.group
            ))
        })?;
        let beneficiary = match &request.user {
            Some(login) => self.person_by_login(login, who.door).await?,
            None => who.clone(),
        };
        authority::check_request(grantable, who, &beneficiary, request)?;
        let grant = Grant {
            id: format!("g-{}-{:04x}", now.format("%Y%m%d%H%M%S"), fastrand::u16(..)),
            login: beneficiary.login.clone(),
            user_id: beneficiary.id.clone(),
            group: grantable.group.clone(),
            reason: request.reason.trim().to_owned(),
            minutes: request.duration.num_minutes(),
            requested_by: who.login.clone(),
            requester_id: who.id.clone(),
            requested_at: now,
            approved_by: None,
            approvals: Vec::new(),
            denied_by: None,
            break_glass: request.break_glass,
            reviewed_by: None,
            status: GrantStatus::Pending,
            starts_at: None,
            expires_at: None,
            ended_at: None,
            sessions_pending: false,
            slack_message: None,
            activity: None,
        };
        records::save(&self.access.store, &grant).await?;
        let waiting = grantable.approval && !request.break_glass;
        let summary = format!(
            "{} asked for {} to be in {} for {} minutes: {}{}",
            grant.requested_by,
            grant.login,
            grant.group,
            grant.minutes,
            grant.reason,
            if waiting {
                format!(
                    " (waiting for {} approval(s) from {})",
                    grantable.approvals,
                    grantable.approvers.join(", ")
                )
            } else {
                String::new()
            }
        );
        self.raise(grant_alert("grant-requested", Severity::Medium, &grant, summary)).await?;
        if request.break_glass {
            let grant = self.activate(grant, now).await?;
            let summary = format!(
                "BREAK-GLASS: {} gave {} {} for {} minutes without approval: {}. Approvers ({}) must review it: `idc-guard approve {}`.",
                grant.requested_by,
                grant.login,
                grant.group,
                grant.minutes,
                grant.reason,
                grantable.approvers.join(", "),
                grant.id
            );
            self.raise(grant_alert("grant-break-glass", Severity::Critical, &grant, summary))
                .await?;
            self.post_to_slack(grant, grantable).await
        } else if waiting {
            self.post_to_slack(grant, grantable).await
        } else {
            self.activate(grant, now).await
        }
    }

    /// `who` approves grant `id` (or reviews a break-glass grant). Everything the request was
    /// checked for is checked again now, against today's policy and Okta; `expect` is what the
    /// approver was shown (group, minutes, login), and any difference refuses.
    pub async fn approve(
        &self,
        who: &Person,
        id: &str,
        expect: Option<&Expected>,
        now: DateTime<Utc>,
    ) -> Result<Grant, SyncError> {
        let mut grant = self.load(id).await?;
        if let Some(e) = expect {
            e.matches(&grant)?;
        }
        let grantable = self.access.policy.grantable(&grant.group).ok_or_else(|| {
            refused(format!(
                "{} is no longer a grantable group: grant {id} cannot be approved",
                grant.group
            ))
        })?;
        let requester = self.person_by_id(&grant.requester_id, who.door).await?;
        let beneficiary = self.person_by_id(&grant.user_id, who.door).await?;
        if grant.break_glass
            && matches!(
                grant.status,
                GrantStatus::Active | GrantStatus::Activating | GrantStatus::Expired
            )
        {
            authority::check_review(grantable, &grant, who)?;
            grant.reviewed_by = Some(decision(who, now));
            records::save(&self.access.store, &grant).await?;
            self.update_slack(&grant).await;
            return Ok(grant);
        }
        if grant.status != GrantStatus::Pending {
            return Err(refused(format!("grant {id} is not pending (it is {:?})", grant.status)));
        }
        authority::check_approval(grantable, &grant, &requester, &beneficiary, who, now)?;
        grant.approvals.push(decision(who, now));
        grant.approved_by =
            Some(grant.approvals.iter().map(|d| d.login.as_str()).collect::<Vec<_>>().join(", "));
        if grant.approvals.len() < grantable.approvals {
            records::save(&self.access.store, &grant).await?;
            self.update_slack(&grant).await;
            return Ok(grant);
        }
        self.activate(grant, now).await
    }

    /// `who` denies grant `id` (an approver), or withdraws it (its requester or beneficiary).
    pub async fn deny(
        &self,
        who: &Person,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Grant, SyncError> {
        let mut grant = self.load(id).await?;
        if grant.status != GrantStatus::Pending {
            return Err(refused(format!("grant {id} is not pending (it is {:?})", grant.status)));
        }
        let own = who.id == grant.requester_id || who.id == grant.user_id;
        let approver = self
            .access
            .policy
            .grantable(&grant.group)
            .is_some_and(|g| authority::in_any(&who.groups, &g.approvers));
        if !own && !approver {
            return Err(refused(format!(
                "{} is not an approver of {} and did not ask",
                who.login, grant.group
            )));
        }
        grant.status = GrantStatus::Denied;
        grant.denied_by = Some(decision(who, now));
        records::save(&self.access.store, &grant).await?;
        let summary = format!(
            "{} {} the request for {} to be in {} ({})",
            who.login,
            if own { "withdrew" } else { "denied" },
            grant.login,
            grant.group,
            grant.reason
        );
        self.raise(grant_alert("grant-denied", Severity::Low, &grant, summary)).await?;
        self.update_slack(&grant).await;
        Ok(grant)
    }

    /// Write-ahead activation: `activating` with its times first, then the leftover deny of an
    /// earlier grant lifted, the Okta membership added, and `active`. A crash anywhere in
    /// between leaves an `activating` record that the expiry run finishes (or ends, when due).
    pub(crate) async fn activate(
        &self,
        mut grant: Grant,
        now: DateTime<Utc>,
    ) -> Result<Grant, SyncError> {
        grant.status = GrantStatus::Activating;
        grant.starts_at = Some(now);
        grant.expires_at = Some(now + Duration::minutes(grant.minutes));
        records::save(&self.access.store, &grant).await?;
        self.finish_activation(&mut grant).await?;
        let summary = format!(
            "{} is in {} until {}{}: {}",
            grant.login,
            grant.group,
            grant.expires_at.unwrap_or(now).format("%Y-%m-%d %H:%M UTC"),
            grant.approved_by.as_deref().map(|a| format!(", approved by {a}")).unwrap_or_default(),
            grant.reason
        );
        self.raise(grant_alert("grant-approved", Severity::High, &grant, summary)).await?;
        self.update_slack(&grant).await;
        Ok(grant)
    }

    /// The steps after the write-ahead record; safe to repeat.
    pub(crate) async fn finish_activation(&self, grant: &mut Grant) -> Result<(), SyncError> {
        self.lift_leftover_deny(grant).await?;
        let group_id = self.group_id(&grant.group).await?;
        self.okta()?.add_member(&group_id, &grant.user_id).await?;
        grant.status = GrantStatus::Active;
        records::save(&self.access.store, grant).await?;
        Ok(())
    }

    /// An earlier grant's end denied this user's live sessions; the deny stays until their
    /// sessions have aged out, so a new grant would be refused by it for hours. A deny that
    /// only grant ends wrote is lifted; one written for a deactivation or an incident is not,
    /// and the grant is refused until a person releases it.
    async fn lift_leftover_deny(&self, grant: &Grant) -> Result<(), SyncError> {
        let rc = self.access.reconciler();
        let instance =
            rc.call(|| self.access.idc.instance(self.access.instance_arn.as_deref())).await?;
        let Some(idc_user) = rc
            .call(|| self.access.idc.find_user_id(&instance.identity_store_id, &grant.login))
            .await?
        else {
            return Ok(());
        };
        let Some(record): Option<RevokedSessions> =
            records::load(&self.access.store, &RevokedSessions::key_of(&idc_user)).await?
        else {
            return Ok(());
        };
        if !record.grant_end {
            return Err(refused(format!(
                "{}'s sessions are revoked ({}); a grant cannot lift that: release it with `idc-guard revoke --user {} --release` first",
                grant.login, record.reason, grant.login
            )));
        }
        tracing::info!(grant = %grant.id, user = %grant.login, "lifting an earlier grant's session deny");
        self.access.release_sessions(&idc_user).await?;
        Ok(())
    }

    pub(crate) async fn group_id(&self, group: &str) -> Result<String, SyncError> {
        self.okta()?
            .group_id(group)
            .await?
            .ok_or_else(|| refused(format!("no Okta group named {group}")))
    }

    pub(crate) async fn load(&self, id: &str) -> Result<Grant, SyncError> {
        records::load(&self.access.store, &Grant::key_of(id))
            .await?
            .ok_or_else(|| refused(format!("no grant {id}")))
    }

    /// Every grant, oldest request first.
    pub async fn grants(&self) -> Result<Vec<Grant>, SyncError> {
        let mut out: Vec<Grant> = Vec::new();
        for item in self.access.store.query(Grant::PK).await? {
            if let Some(mut g) = Grant::from_item(&item) {
                g.restore_key(&records::Key::new(item.pk.clone(), item.sk.clone()));
                out.push(g);
            }
        }
        out.sort_by_key(|g| g.requested_at);
        Ok(out)
    }
}

/// What an approver was shown; the approval is refused when the record says otherwise now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Expected {
    /// The beneficiary's login.
    pub login: String,
    /// The group.
    pub group: String,
    /// The minutes.
    pub minutes: i64,
}

impl Expected {
    fn matches(&self, g: &Grant) -> Result<(), SyncError> {
        if self.login.eq_ignore_ascii_case(&g.login)
            && self.group == g.group
            && self.minutes == g.minutes
        {
            Ok(())
        } else {
            Err(refused(format!(
                "grant {} changed since it was shown: it is {} in {} for {} minutes",
                g.id, g.login, g.group, g.minutes
            )))
        }
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
