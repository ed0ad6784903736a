//! `[[grantable]]`: the Okta groups that may be granted for a time, and who may ask and approve.
//!
//! ```toml
//! [[grantable]]
//! group = "aws-admin-platform"
//! max_duration = "4h"
//! approval = true                    # another person must approve
//! approvers = ["aws-approvers"]      # Okta groups whose members may approve (required with approval)
//! approvals = 2                      # distinct approvers needed (1 or 2; default 1)
//! requesters = ["platform-oncall"]   # Okta groups whose members may ask and be granted (default: anyone)
//! break_glass = true                 # self-approval with a reason, alerted to every approver
//! break_glass_max_duration = "30m"   # default: the shorter of max_duration and 1h
//! slack_channel = "C0123456789"      # where requests are posted for approval (optional)
//! ```

use chrono::Duration;
use serde::Deserialize;
use toml::Spanned;

use crate::policy_file::{Checker, parse_duration};

/// The shortest grant: a shorter one would end before IdC has provisioned anything.
pub const MIN_DURATION: Duration = Duration::minutes(1);
/// The longest `max_duration` a policy may give.
pub const MAX_DURATION: Duration = Duration::days(7);
/// The break-glass maximum when the policy names none (capped by `max_duration`).
pub const DEFAULT_BREAK_GLASS_MAX: Duration = Duration::hours(1);

/// An Okta group that may be granted for a limited time (`idc-guard grant`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grantable {
    /// The Okta group's name (the same name in IAM Identity Center, pushed by SCIM).
    pub group: String,
    /// The longest grant.
    pub max_duration: Duration,
    /// Other persons must approve.
    pub approval: bool,
    /// Okta groups whose members may approve.
    pub approvers: Vec<String>,
    /// How many distinct approvers (1 or 2).
    pub approvals: usize,
    /// Okta groups whose members may ask and be granted; empty: anyone in the org.
    pub requesters: Vec<String>,
    /// The longest break-glass grant (self-approved, alerted, reviewed after the fact); `None`:
    /// break-glass is not allowed.
    pub break_glass: Option<Duration>,
    /// The Slack channel where requests are posted for approval.
    pub slack_channel: Option<String>,
}

/// The table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrantable {
    group: Spanned<String>,
    max_duration: Spanned<String>,
    #[serde(default)]
    approval: bool,
    #[serde(default)]
    approvers: Vec<String>,
    #[serde(default)]
    approvals: Option<Spanned<i64>>,
    #[serde(default)]
    requesters: Vec<String>,
    #[serde(default)]
    break_glass: bool,
    #[serde(default)]
    break_glass_max_duration: Option<Spanned<String>>,
    #[serde(default)]
    slack_channel: Option<String>,
}

fn duration(c: &mut Checker, field: &str, value: &Spanned<String>) -> Option<Duration> {
    let parsed =
        parse_duration(value.get_ref()).filter(|d| *d >= MIN_DURATION && *d <= MAX_DURATION);
    if parsed.is_none() {
        c.error(
            value.span().start,
            format!(
                "{field} {:?} must be a duration such as \"2h\", from 1 minute to 7 days",
                value.get_ref()
            ),
        );
    }
    parsed
}

fn groups(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> =
        list.into_iter().map(|g| g.trim().to_owned()).filter(|g| !g.is_empty()).collect();
    out.dedup();
    out
}

/// Checks the `[[grantable]]` tables; each error is reported at its place and the table skipped.
pub(crate) fn parse(c: &mut Checker, raw: Vec<Spanned<RawGrantable>>) -> Vec<Grantable> {
    let mut out: Vec<Grantable> = Vec::new();
    for g in raw {
        let offset = g.span().start;
        let g = g.into_inner();
        let group = g.group.get_ref().trim().to_owned();
        if group.is_empty() {
            c.error(g.group.span().start, "grantable group must not be empty");
            continue;
        }
        if out.iter().any(|x| x.group == group) {
            c.error(offset, format!("grantable group {group:?} is declared twice"));
            continue;
        }
        let Some(max_duration) = duration(c, "max_duration", &g.max_duration) else { continue };
        let approvals = match &g.approvals {
            None => 1,
            Some(n) if matches!(n.get_ref(), 1 | 2) => *n.get_ref() as usize,
            Some(n) => {
                c.error(n.span().start, "approvals must be 1 or 2");
                continue;
            }
        };
        let approvers = groups(g.approvers);
        if (g.approval || g.break_glass) && approvers.is_empty() {
            c.error(
                offset,
                format!(
                    "grantable {group:?} needs approvers (Okta groups whose members may approve{})",
                    if g.break_glass { " and review break-glass grants" } else { "" }
                ),
            );
            continue;
        }
        if g.approvals.is_some() && !g.approval {
            c.warn(
                offset,
                format!("grantable {group:?}: approvals has no effect without approval = true"),
            );
        }
        let break_glass = if g.break_glass {
            let max = match &g.break_glass_max_duration {
                Some(d) => match duration(c, "break_glass_max_duration", d) {
                    Some(d) => d,
                    None => continue,
                },
                None => DEFAULT_BREAK_GLASS_MAX.min(max_duration),
            };
            Some(max.min(max_duration))
        } else {
            if let Some(d) = &g.break_glass_max_duration {
                c.warn(
                    d.span().start,
                    "break_glass_max_duration has no effect without break_glass = true",
                );
            }
            None
        };
        out.push(Grantable {
            group,
            max_duration,
            approval: g.approval,
            approvers,
            approvals,
            requesters: groups(g.requesters),
            break_glass,
            slack_channel: g.slack_channel.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::access::Policy;
    use crate::policy_file::Level;

    const RULE: &str = "[[rule]]\ngroups = \"aws-admin-x\"\npermission_sets = [\"A\"]\ntargets = { accounts = [\"111111111111\"] }\n[[permission_set]]\nname = \"A\"\nmanaged_policies = [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n";

    fn check(grantable: &str) -> (Option<Policy>, Vec<String>) {
        let (p, d) = Policy::check(
            &format!("{RULE}[[grantable]]\ngroup = \"aws-admin-x\"\n{grantable}"),
            None,
        );
        (p, d.iter().map(|d| format!("{:?}: {}", d.severity == Level::Error, d.message)).collect())
    }

    #[test]
    fn approval_needs_approvers_and_approvals_are_one_or_two() {
        for (text, message) in [
            ("max_duration = \"1h\"\napproval = true", "needs approvers"),
            ("max_duration = \"1h\"\nbreak_glass = true", "review break-glass"),
            (
                "max_duration = \"1h\"\napproval = true\napprovers = [\"a\"]\napprovals = 3",
                "approvals must be 1 or 2",
            ),
            (
                "max_duration = \"1h\"\napproval = true\napprovers = [\"a\"]\napprovals = 0",
                "approvals must be 1 or 2",
            ),
            ("max_duration = \"30s\"", "from 1 minute to 7 days"),
            ("max_duration = \"8d\"", "from 1 minute to 7 days"),
            (
                "max_duration = \"1h\"\nbreak_glass = true\napprovers = [\"a\"]\nbreak_glass_max_duration = \"10s\"",
                "break_glass_max_duration",
            ),
            ("max_duration = \"1h\"\nrequestors = [\"a\"]", "unknown field"),
        ] {
            let (p, d) = check(text);
            assert!(p.is_none(), "{text}");
            assert!(
                d.iter().any(|m| m.starts_with("true") && m.contains(message)),
                "{text}: {d:?}"
            );
        }
    }

    #[test]
    fn break_glass_is_capped_by_the_maximum_and_defaults_to_an_hour() {
        let (p, _) = check(
            "max_duration = \"4h\"\napproval = true\napprovers = [\" a \", \"a\", \"\"]\nbreak_glass = true\nrequesters = [\"r\"]\nslack_channel = \" C1 \"",
        );
        let g = p.unwrap().grantable.remove(0);
        assert_eq!(g.break_glass, Some(chrono::Duration::hours(1)));
        assert_eq!(
            (g.approvers, g.requesters, g.approvals),
            (vec!["a".to_owned()], vec!["r".to_owned()], 1)
        );
        assert_eq!(g.slack_channel.as_deref(), Some("C1"));
        let (p, _) = check(
            "max_duration = \"20m\"\napprovers = [\"a\"]\nbreak_glass = true\nbreak_glass_max_duration = \"2h\"",
        );
        assert_eq!(p.unwrap().grantable[0].break_glass, Some(chrono::Duration::minutes(20)));
        let (p, d) =
            check("max_duration = \"20m\"\napprovals = 2\nbreak_glass_max_duration = \"5m\"");
        let g = &p.unwrap().grantable[0];
        assert_eq!((g.approval, g.break_glass), (false, None));
        assert_eq!(d.iter().filter(|m| m.starts_with("false")).count(), 2, "{d:?}");
    }
}
