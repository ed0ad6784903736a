//! Who may ask, who may approve: persons as Okta users, and the rules between them.
//!
//! A [`Person`] is established by the server from what the person cannot forge (an Okta ID
//! token's `sub`, or a Slack user's verified e-mail), then read from Okta: active, with the
//! names of their groups. The rules are pure functions over persons and a grantable group, so
//! each can be tested, and mutated, on its own.

use super::grantable::{Grantable, MIN_DURATION};
use super::{GrantRequest, GrantsHandler, Ports, refused};
use crate::access::sync::SyncError;
use crate::okta::ports::{OktaGroups, OktaUser};
use crate::records::{Door, Grant};

/// A person, as the grants function knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The Okta user id.
    pub id: String,
    /// The Okta login.
    pub login: String,
    /// How they came.
    pub door: Door,
    /// The names of their Okta groups, read when they came.
    pub groups: Vec<String>,
}

/// One of `groups` is in `allowed`.
pub fn in_any(groups: &[String], allowed: &[String]) -> bool {
    groups.iter().any(|g| allowed.contains(g))
}

/// May ask for, and be granted, this group: anyone when `requesters` is empty.
pub fn eligible(grantable: &Grantable, person: &Person) -> bool {
    grantable.requesters.is_empty() || in_any(&person.groups, &grantable.requesters)
}

fn check_eligible(grantable: &Grantable, person: &Person, role: &str) -> Result<(), SyncError> {
    if eligible(grantable, person) {
        Ok(())
    } else {
        Err(refused(format!(
            "{role} {} is not in any of {}'s requesters ({})",
            person.login,
            grantable.group,
            grantable.requesters.join(", ")
        )))
    }
}

/// A request: duration within the floor and the (break-glass) maximum, a reason, both persons
/// eligible, break-glass only where allowed and only for oneself.
pub fn check_request(
    grantable: &Grantable,
    requester: &Person,
    beneficiary: &Person,
    request: &GrantRequest,
) -> Result<(), SyncError> {
    let max = if request.break_glass {
        grantable.break_glass.ok_or_else(|| {
            refused(format!("{} does not allow break-glass (break_glass = true)", grantable.group))
        })?
    } else {
        grantable.max_duration
    };
    if request.duration < MIN_DURATION || request.duration > max {
        return Err(refused(format!(
            "{} may be granted for 1 to {} minutes{}",
            grantable.group,
            max.num_minutes(),
            if request.break_glass { " under break-glass" } else { "" }
        )));
    }
    if request.duration.num_seconds() % 60 != 0 {
        return Err(refused("a grant lasts whole minutes (e.g. 90m, 2h)"));
    }
    if request.reason.trim().is_empty() {
        return Err(refused("a grant needs a reason (--reason, e.g. an incident id)"));
    }
    if request.break_glass && requester.id != beneficiary.id {
        return Err(refused("break-glass is for oneself: the person asking is the one granted"));
    }
    check_eligible(grantable, requester, "requester")?;
    check_eligible(grantable, beneficiary, "beneficiary")
}

/// How long a request waits for approval; an older one is refused (ask again), so a forgotten
/// request (or an old Slack button) never grants access days later.
pub const PENDING_FOR: chrono::Duration = chrono::Duration::hours(24);

/// An approval of a pending grant: the request is fresh, the group still needs one, the approver may approve and is
/// neither the requester, nor the beneficiary, nor an earlier approver; the duration and both
/// persons still pass today's policy.
pub fn check_approval(
    grantable: &Grantable,
    grant: &Grant,
    requester: &Person,
    beneficiary: &Person,
    approver: &Person,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), SyncError> {
    if now - grant.requested_at >= PENDING_FOR {
        return Err(refused(format!(
            "grant {} was asked for more than {} hours ago: ask again",
            grant.id,
            PENDING_FOR.num_hours()
        )));
    }
    if !grantable.approval {
        return Err(refused(format!("{} needs no approval", grantable.group)));
    }
    // `requester` and `beneficiary` are the record's persons, read from Okta by its ids.
    if approver.id == grant.requester_id {
        return Err(refused("self-approval is refused: the person who asked cannot approve"));
    }
    if approver.id == grant.user_id {
        return Err(refused("the person to be granted cannot approve their own grant"));
    }
    if grant.approvals.iter().any(|d| d.person_id == approver.id) {
        return Err(refused(format!(
            "{} has approved already: another approver is needed",
            approver.login
        )));
    }
    if !in_any(&approver.groups, &grantable.approvers) {
        return Err(refused(format!(
            "{} is not in any of {}'s approvers ({})",
            approver.login,
            grantable.group,
            grantable.approvers.join(", ")
        )));
    }
    let minutes = chrono::Duration::minutes(grant.minutes);
    if minutes < MIN_DURATION || minutes > grantable.max_duration {
        return Err(refused(format!(
            "{} may now be granted for at most {} minutes; the request asks {}",
            grantable.group,
            grantable.max_duration.num_minutes(),
            grant.minutes
        )));
    }
    check_eligible(grantable, requester, "requester")?;
    check_eligible(grantable, beneficiary, "beneficiary")
}

/// A review of a break-glass grant, after the fact: by an approver who is not its beneficiary.
pub fn check_review(
    grantable: &Grantable,
    grant: &Grant,
    reviewer: &Person,
) -> Result<(), SyncError> {
    if grant.reviewed_by.is_some() {
        return Err(refused(format!("break-glass grant {} was reviewed already", grant.id)));
    }
    if reviewer.id == grant.user_id || reviewer.id == grant.requester_id {
        return Err(refused("a break-glass grant is reviewed by another person"));
    }
    if !in_any(&reviewer.groups, &grantable.approvers) {
        return Err(refused(format!(
            "{} is not an approver of {}",
            reviewer.login, grantable.group
        )));
    }
    Ok(())
}

impl<P: Ports> GrantsHandler<P> {
    async fn person(
        &self,
        user: Option<OktaUser>,
        what: &str,
        door: Door,
    ) -> Result<Person, SyncError> {
        let user = user.ok_or_else(|| refused(format!("no Okta user {what}")))?;
        if !user.is_active() {
            return Err(refused(format!(
                "Okta user {} is {}, not active",
                user.login, user.status
            )));
        }
        let groups = self.okta()?.user_group_names(&user.id).await?;
        Ok(Person { id: user.id, login: user.login, door, groups })
    }

    /// The person with this Okta user id (an ID token's `sub`, a grant's requester).
    pub async fn person_by_id(&self, id: &str, door: Door) -> Result<Person, SyncError> {
        if id.is_empty() {
            return Err(refused(
                "the grant names no Okta user id (made by an earlier version: ask again)",
            ));
        }
        let user = self.okta()?.user(id).await?.filter(|u| u.id == id);
        self.person(user, id, door).await
    }

    /// The person with this Okta login (a beneficiary named by the requester).
    pub async fn person_by_login(&self, login: &str, door: Door) -> Result<Person, SyncError> {
        let user = self.okta()?.user(login).await?;
        self.person(user, login, door).await
    }

    /// The one active Okta user with this verified e-mail (a Slack user); none or several
    /// refuse, since either way the person is not known.
    pub async fn person_by_email(&self, email: &str) -> Result<Person, SyncError> {
        let users: Vec<OktaUser> = self
            .okta()?
            .users_by_email(email)
            .await?
            .into_iter()
            .filter(OktaUser::is_active)
            .collect();
        match users.as_slice() {
            [one] => self.person(Some(one.clone()), email, Door::Slack).await,
            [] => Err(refused(format!("no active Okta user has the e-mail {email}"))),
            _ => Err(refused(format!(
                "several Okta users have the e-mail {email}: the person is not known"
            ))),
        }
    }
}
