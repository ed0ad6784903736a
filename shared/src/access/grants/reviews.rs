//! Review decisions through the grants API: the only holder of an Okta credential that changes
//! membership applies a reviewer's `remove` (and records `keep`), after the rules of
//! [`crate::access::review`] passed for the persons Okta names at that moment.

use chrono::{DateTime, Utc};

use super::authority::Person;
use super::{GrantsHandler, Ports, refused};
use crate::access::review::{self, DecisionRequest};
use crate::access::sync::SyncError;
use crate::okta::ports::OktaGroups;
use crate::records::{self, ReviewDecision};

impl<P: Ports> GrantsHandler<P> {
    /// Applies a reviewer's decision and records it (the evidence) whatever Okta answered; a
    /// removal Okta refused is recorded with Okta's answer and returned as an error.
    pub async fn decide_review(
        &self,
        reviewer: &Person,
        ask: &DecisionRequest,
        now: DateTime<Utc>,
    ) -> Result<ReviewDecision, SyncError> {
        let okta = self.okta()?;
        let subject = okta
            .user(ask.user.trim())
            .await?
            .ok_or_else(|| refused(format!("no Okta user {}", ask.user)))?;
        review::may_decide(
            &self.access.policy.reviews,
            &reviewer.id,
            &reviewer.groups,
            &subject.id,
            ask,
        )
        .map_err(refused)?;
        if !okta.user_group_names(&subject.id).await?.iter().any(|g| g == &ask.group) {
            return Err(refused(format!(
                "{} is not a member of {} in Okta",
                subject.login, ask.group
            )));
        }
        let mut record = ReviewDecision {
            id: format!("r-{}-{:04x}", now.format("%Y%m%d%H%M%S"), fastrand::u16(..)),
            at: now,
            reviewer: reviewer.id.clone(),
            reviewer_login: reviewer.login.clone(),
            decision: ask.decision.clone(),
            user_id: subject.id.clone(),
            login: subject.login.clone(),
            group: ask.group.clone(),
            reason: ask.reason.trim().to_owned(),
            outcome: "kept".into(),
        };
        let mut failure = None;
        if ask.decision == "remove" {
            let group_id = okta
                .group_id(&ask.group)
                .await?
                .ok_or_else(|| refused(format!("no Okta group {}", ask.group)))?;
            match okta.remove_member(&group_id, &subject.id).await {
                Ok(()) => {
                    record.outcome =
                        "membership removed in Okta (SCIM removes it in IAM Identity Center)"
                            .into();
                }
                Err(e) => {
                    record.outcome = format!("not removed: Okta answered {e}");
                    failure = Some(e);
                }
            }
        }
        records::save(&self.access.store, &record).await?;
        tracing::info!(reviewer = %reviewer.login, user = %record.login, group = %record.group,
            decision = %record.decision, outcome = %record.outcome, "review decision");
        match failure {
            Some(e) => Err(SyncError::Okta(e)),
            None => Ok(record),
        }
    }

    /// Every review decision, oldest first.
    pub async fn review_history(&self) -> Result<Vec<ReviewDecision>, SyncError> {
        Ok(records::load_all(&self.access.store, ReviewDecision::PK).await?)
    }
}

#[cfg(test)]
#[path = "reviews_tests.rs"]
mod tests;
