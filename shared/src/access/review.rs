//! Access reviews that write back: who owns the decision for a group (`[[review]]`), the packet
//! of what needs one (from the ledger), and the rules a decision must pass before the grants
//! function removes the Okta membership.
//!
//! ```toml
//! [[review]]
//! groups = "aws-admin-*"          # group-name pattern (as in rules); the first match decides
//! owners = ["security-leads"]     # Okta groups whose members decide for these groups
//! unused_days = 30                # access unused this long needs a decision (default 90)
//! ```
//!
//! A membership needs a decision when its access went unused for `unused_days` (never used
//! included), when it reaches the admin tier, or when an assignment behind it is hand-made (no
//! rule of the policy explains it). A decision is made by a person (an Okta user id from a
//! verified ID token), who must be an active member of one of the group's owner groups and not
//! the person decided about; `remove` deletes the Okta membership (Okta stays the source of
//! truth and SCIM carries the change to IAM Identity Center), `keep` records why it stays.
//! Both are kept as evidence ([`crate::records::ReviewDecision`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::ledger::Ledger;
use super::ledger::query::{Index, Via};
use super::pattern::GroupPattern;
use crate::policy_file::Checker;

/// The unused period when a `[[review]]` entry names none.
pub const DEFAULT_UNUSED_DAYS: u32 = 90;

/// Who decides for the groups a pattern matches.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewOwners {
    /// The groups.
    pub groups: GroupPattern,
    /// Okta groups whose members decide.
    pub owners: Vec<String>,
    /// Access unused this many days needs a decision.
    pub unused_days: u32,
}

/// The table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReview {
    groups: Spanned<String>,
    owners: Vec<String>,
    unused_days: Option<Spanned<i64>>,
}

pub(crate) fn parse(c: &mut Checker, raw: Vec<Spanned<RawReview>>) -> Vec<ReviewOwners> {
    let mut out = Vec::new();
    for r in raw {
        let offset = r.span().start;
        let r = r.into_inner();
        let groups = match GroupPattern::compile(r.groups.get_ref()) {
            Ok(p) => p,
            Err(e) => {
                c.error(r.groups.span().start, format!("review groups: {e}"));
                continue;
            }
        };
        let owners: Vec<String> =
            r.owners.iter().map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect();
        if owners.is_empty() {
            c.error(offset, "a [[review]] needs owners (Okta groups whose members decide)");
            continue;
        }
        let unused_days = match &r.unused_days {
            None => DEFAULT_UNUSED_DAYS,
            Some(d) if (1..=3650).contains(d.get_ref()) => *d.get_ref() as u32,
            Some(d) => {
                c.error(d.span().start, "unused_days must be from 1 to 3650");
                continue;
            }
        };
        out.push(ReviewOwners { groups, owners, unused_days });
    }
    out
}

/// The first `[[review]]` entry whose pattern matches the group.
pub fn owners_of<'a>(reviews: &'a [ReviewOwners], group: &str) -> Option<&'a ReviewOwners> {
    reviews.iter().find(|r| r.groups.matches(group).is_some())
}

/// One membership that needs a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The person (user name, the Okta login).
    pub user: String,
    /// The group (Okta's name).
    pub group: String,
    /// Why it needs a decision.
    pub reasons: Vec<String>,
    /// The latest use of any access the membership gives.
    pub last_used: Option<DateTime<Utc>>,
    /// `permission set @ account`, what the membership gives.
    pub access: Vec<String>,
}

/// What one set of owners must decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Packet {
    /// The owner groups (empty: no `[[review]]` names owners for these groups).
    pub owners: Vec<String>,
    /// The memberships.
    pub items: Vec<Item>,
}

/// The packets, one per set of owners. Direct assignments are not memberships: they are in
/// `direct`, to be removed in IAM Identity Center (or moved to a group).
pub fn packets(
    reviews: &[ReviewOwners],
    ledger: &Ledger,
    now: DateTime<Utc>,
) -> (Vec<Packet>, Vec<String>) {
    let index = Index::new(ledger);
    // (user, group) → rows.
    let mut memberships: BTreeMap<(String, String), Vec<super::ledger::Row<'_>>> = BTreeMap::new();
    let mut direct = Vec::new();
    index.each_row(&mut |r| match (r.via, r.group) {
        (Via::Group, Some(g)) => {
            memberships.entry((r.user.to_owned(), g.to_owned())).or_default().push(r);
        }
        (Via::Direct, _) => direct.push(format!(
            "{} holds {} in {} directly ({})",
            r.user, r.permission_set, r.account_id, r.why
        )),
        _ => {}
    });
    let mut by_owners: BTreeMap<Vec<String>, Vec<Item>> = BTreeMap::new();
    for ((user, group), rows) in memberships {
        let entry = owners_of(reviews, &group);
        let days = entry.map_or(DEFAULT_UNUSED_DAYS, |e| e.unused_days);
        let last_used = rows.iter().filter_map(|r| r.last_used).max();
        let mut reasons = Vec::new();
        if last_used.is_none_or(|t| t < now - chrono::Duration::days(i64::from(days))) {
            reasons.push(match last_used {
                None => format!("never used (no use in CloudTrail; {days}-day window)"),
                Some(t) => format!(
                    "unused for {} days (last {})",
                    (now - t).num_days(),
                    t.format("%Y-%m-%d")
                ),
            });
        }
        if rows.iter().any(|r| r.tier.is_some_and(|t| t.split('+').any(|t| t == "admin"))) {
            reasons.push("admin tier".into());
        }
        if rows.iter().any(|r| !r.why.starts_with("rule ")) {
            reasons.push("hand-made (no rule of the policy explains an assignment)".into());
        }
        if reasons.is_empty() {
            continue;
        }
        let access =
            rows.iter().map(|r| format!("{}@{}", r.permission_set, r.account_id)).collect();
        by_owners
            .entry(entry.map(|e| e.owners.clone()).unwrap_or_default())
            .or_default()
            .push(Item { user, group, reasons, last_used, access });
    }
    (by_owners.into_iter().map(|(owners, items)| Packet { owners, items }).collect(), direct)
}

/// A decision as asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct DecisionRequest {
    /// The person decided about (Okta login).
    pub user: String,
    /// The group.
    pub group: String,
    /// `remove` or `keep`.
    pub decision: String,
    /// Why.
    pub reason: String,
}

/// Why a reviewer may not make this decision, or `Ok` (pure: the caller establishes the persons
/// from Okta at the moment of the decision).
pub fn may_decide(
    reviews: &[ReviewOwners],
    reviewer_id: &str,
    reviewer_groups: &[String],
    subject_id: &str,
    ask: &DecisionRequest,
) -> Result<(), String> {
    if !matches!(ask.decision.as_str(), "remove" | "keep") {
        return Err(format!("decision must be remove or keep, not {:?}", ask.decision));
    }
    if ask.reason.trim().is_empty() {
        return Err("a decision needs a reason".into());
    }
    if reviewer_id == subject_id {
        return Err("nobody reviews their own access".into());
    }
    let Some(entry) = owners_of(reviews, &ask.group) else {
        return Err(format!("no [[review]] of the policy names owners for {}", ask.group));
    };
    if !entry.owners.iter().any(|o| reviewer_groups.iter().any(|g| g == o)) {
        return Err(format!(
            "only members of {} decide for {}",
            entry.owners.join(", "),
            ask.group
        ));
    }
    Ok(())
}
