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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::ledger::{Holding, LedgerGroup, LedgerSet, Use};
    use crate::access::ports::IdcUser;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn ledger() -> Ledger {
        let user = |id: &str, name: &str| IdcUser { id: id.into(), user_name: name.into() };
        let group = |id: &str, name: &str, members: &[&str]| LedgerGroup {
            id: id.into(),
            display_name: name.into(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        };
        let hold = |p: &str, set: &str, why: &str, tier: Option<&str>| Holding {
            principal: p.into(),
            permission_set: set.into(),
            account_id: "111111111111".into(),
            why: why.into(),
            tier: tier.map(str::to_owned),
        };
        Ledger {
            built_at: at("2026-12-01T00:00:00Z"),
            users: vec![user("u1", "alice@acme.example"), user("u2", "bob@acme.example")],
            groups: vec![
                group("g1", "aws-core-readonly", &["u1", "u2"]),
                group("g2", "aws-admin-platform", &["u2"]),
                group("g3", "contractors", &["u1"]),
            ],
            permission_sets: vec![LedgerSet {
                arn: "arn:ps".into(),
                name: "ReadOnly".into(),
                session_duration: None,
                in_policy: true,
            }],
            holdings: vec![
                hold("GROUP:g1", "ReadOnly", "rule core", Some("core")),
                hold("GROUP:g2", "Admin", "rule admins", Some("admin")),
                hold("GROUP:g3", "PowerUser", "hand-made", None),
                hold("USER:u1", "Billing", "hand-made (direct)", None),
            ],
            last_used: vec![
                Use {
                    user: "u1".into(),
                    account_id: "111111111111".into(),
                    permission_set: "ReadOnly".into(),
                    portal: Some(at("2026-11-30T00:00:00Z")),
                    ..Default::default()
                },
                Use {
                    user: "bob@acme.example".into(),
                    account_id: "111111111111".into(),
                    permission_set: "Admin".into(),
                    activity: Some(at("2026-11-29T00:00:00Z")),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    /// Used core access needs nothing; unused, admin and hand-made access each do, for the
    /// owners the first matching `[[review]]` names; direct assignments are listed apart.
    #[test]
    fn packets_hold_the_unused_the_admin_and_the_hand_made_per_owner() {
        let reviews = vec![
            ReviewOwners {
                groups: GroupPattern::compile("aws-admin-*").unwrap(),
                owners: vec!["security-leads".into()],
                unused_days: 30,
            },
            ReviewOwners {
                groups: GroupPattern::compile("*").unwrap(),
                owners: vec!["platform-leads".into()],
                unused_days: 90,
            },
        ];
        let (packets, direct) = packets(&reviews, &ledger(), at("2026-12-01T00:00:00Z"));
        let view: Vec<(Vec<String>, String, String, Vec<String>)> = packets
            .iter()
            .flat_map(|p| {
                p.items
                    .iter()
                    .map(|i| (p.owners.clone(), i.user.clone(), i.group.clone(), i.reasons.clone()))
            })
            .collect();
        assert_eq!(
            view,
            [
                (
                    vec!["platform-leads".to_owned()],
                    "alice@acme.example".to_owned(),
                    "contractors".to_owned(),
                    vec![
                        "never used (no use in CloudTrail; 90-day window)".to_owned(),
                        "hand-made (no rule of the policy explains an assignment)".to_owned()
                    ]
                ),
                (
                    vec!["platform-leads".to_owned()],
                    "bob@acme.example".to_owned(),
                    "aws-core-readonly".to_owned(),
                    vec!["never used (no use in CloudTrail; 90-day window)".to_owned()]
                ),
                (
                    vec!["security-leads".to_owned()],
                    "bob@acme.example".to_owned(),
                    "aws-admin-platform".to_owned(),
                    vec!["admin tier".to_owned()]
                ),
            ]
        );
        assert_eq!(
            direct,
            ["alice@acme.example holds Billing in 111111111111 directly (hand-made (direct))"]
        );
    }

    #[test]
    fn a_review_table_without_owners_or_with_a_bad_window_is_an_error() {
        for (text, error) in [
            ("[[review]]\ngroups = \"aws-*\"\nowners = []\n", "needs owners"),
            ("[[review]]\ngroups = \"aws-*\"\nowners = [\"x\"]\nunused_days = 0\n", "unused_days"),
            ("[[review]]\ngroups = \"\"\nowners = [\"x\"]\n", "review groups"),
        ] {
            let (policy, diagnostics) = crate::access::policy::Policy::check(text, None);
            assert!(policy.is_none());
            assert!(diagnostics.iter().any(|d| d.message.contains(error)), "{diagnostics:?}");
        }
        let (policy, _) = crate::access::policy::Policy::check(
            "[[review]]\ngroups = \"aws-*\"\nowners = [\"x\"]\n",
            None,
        );
        assert_eq!(policy.unwrap().reviews[0].unused_days, DEFAULT_UNUSED_DAYS);
        let (policy, _) = crate::access::policy::Policy::check(
            "[[review]]\ngroups = \"aws-*\"\nowners = [\"x\"]\nunused_days = 3650\n",
            None,
        );
        assert_eq!(policy.unwrap().reviews[0].unused_days, 3650);
    }

    /// The window's edge: a use exactly `unused_days` ago is inside it; one a day older is not.
    #[test]
    fn a_use_on_the_windows_edge_counts_and_an_older_one_does_not() {
        let reviews = vec![ReviewOwners {
            groups: GroupPattern::compile("*").unwrap(),
            owners: vec!["leads".into()],
            unused_days: 90,
        }];
        let now = at("2026-12-01T00:00:00Z");
        let mut l = ledger();
        l.last_used = vec![Use {
            user: "u1".into(),
            account_id: "111111111111".into(),
            permission_set: "ReadOnly".into(),
            portal: Some(now - chrono::Duration::days(90)),
            ..Default::default()
        }];
        let flagged = |l: &Ledger| {
            packets(&reviews, l, now)
                .0
                .iter()
                .flat_map(|p| p.items.iter())
                .any(|i| i.user == "alice@acme.example" && i.group == "aws-core-readonly")
        };
        assert!(!flagged(&l), "used 90 days ago: inside a 90-day window");
        l.last_used[0].portal = Some(now - chrono::Duration::days(91));
        assert!(flagged(&l), "91 days ago: unused");
    }
}
