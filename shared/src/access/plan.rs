//! The planner: policy + IdC groups + Organizations accounts → the desired assignments.
//! Pure and deterministic; the reconciler feeds it what it read.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::pattern::render;
use super::policy::{Policy, Rule, Targets};

/// An IdC group (identity store), keyed by its id: display names can be reused after a delete.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Group {
    /// The IdC group id.
    pub id: String,
    /// The group's display name (Okta's group name, pushed by SCIM).
    pub display_name: String,
}

/// An account's state in Organizations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountStatus {
    /// `ACTIVE`.
    Active,
    /// `SUSPENDED`.
    Suspended,
    /// `PENDING_CLOSURE`.
    PendingClosure,
    /// `PENDING_ACTIVATION`.
    PendingActivation,
    /// `CLOSED`.
    Closed,
    /// Organizations gave no state or one this version does not know.
    Unknown,
}

impl AccountStatus {
    /// Organizations' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "ACTIVE",
            AccountStatus::Suspended => "SUSPENDED",
            AccountStatus::PendingClosure => "PENDING_CLOSURE",
            AccountStatus::PendingActivation => "PENDING_ACTIVATION",
            AccountStatus::Closed => "CLOSED",
            AccountStatus::Unknown => "of unknown status",
        }
    }
}

/// An account of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The 12-digit id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The state.
    pub status: AccountStatus,
    /// From the root id to the account's parent OU id.
    pub ou_path: Vec<String>,
    /// Tags (read only when a rule targets or excludes by tag).
    pub tags: BTreeMap<String, String>,
}

/// What the planner works from.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The identity store's groups.
    pub groups: Vec<Group>,
    /// The organization's accounts.
    pub accounts: Vec<Account>,
    /// The management account, never a target unless a rule names it by id.
    pub management_account_id: Option<String>,
    /// Every root and OU id of the organisation (OUs without accounts included).
    pub organizational_units: BTreeSet<String>,
}

/// One account assignment: a group holds a permission set (by name) in an account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Assignment {
    /// The IdC group id.
    pub group_id: String,
    /// The permission set's name.
    pub permission_set: String,
    /// The account id.
    pub account_id: String,
}

/// A group some rule matches, with the rules that matched it.
#[derive(Default, Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagedGroup {
    /// The display name.
    pub display_name: String,
    /// The rules that match it.
    pub rules: Vec<String>,
    /// Their tiers.
    pub tiers: BTreeSet<String>,
}

/// What the policy wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// The assignments.
    pub assignments: BTreeSet<Assignment>,
    /// Groups matching at least one rule, by group id.
    pub managed_groups: BTreeMap<String, ManagedGroup>,
    /// The rules that want each assignment, in policy order (the access ledger's "why").
    pub why: BTreeMap<Assignment, Vec<String>>,
}

/// Computes the desired assignments. The management account and accounts that are not ACTIVE
/// are targeted only when a rule names them by id.
pub fn plan(policy: &Policy, inventory: &Inventory) -> Desired {
    let mut desired = Desired::default();
    for group in &inventory.groups {
        for rule in &policy.rules {
            let Some(captures) = rule.groups.matches(&group.display_name) else { continue };
            let managed =
                desired.managed_groups.entry(group.id.clone()).or_insert_with(|| ManagedGroup {
                    display_name: group.display_name.clone(),
                    rules: Vec::new(),
                    tiers: BTreeSet::new(),
                });
            managed.rules.push(rule.name.clone());
            managed.tiers.extend(rule.tier.clone());
            let tags = rendered(&rule.targets, &captures);
            let exclude_tags = rendered(&rule.exclude, &captures);
            for account in &inventory.accounts {
                if !targets_account(rule, account, inventory, &tags, &exclude_tags) {
                    continue;
                }
                for ps in &rule.permission_sets {
                    let assignment = Assignment {
                        group_id: group.id.clone(),
                        permission_set: ps.clone(),
                        account_id: account.id.clone(),
                    };
                    let rules = desired.why.entry(assignment.clone()).or_default();
                    if !rules.contains(&rule.name) {
                        rules.push(rule.name.clone());
                    }
                    desired.assignments.insert(assignment);
                }
            }
        }
    }
    desired
}

/// Targets the policy names that the organisation does not have: account ids and OU (or root)
/// ids in `targets` or `exclude`, and tag values no account carries (rendered per matching
/// group when they use captures). Each is a sentence naming the rule; nothing is ever assigned
/// for them, which is usually a placeholder or a typo.
pub fn unknown_targets(policy: &Policy, inventory: &Inventory) -> Vec<String> {
    let accounts: BTreeSet<&str> = inventory.accounts.iter().map(|a| a.id.as_str()).collect();
    let ous: BTreeSet<&str> = inventory
        .organizational_units
        .iter()
        .map(String::as_str)
        .chain(inventory.accounts.iter().flat_map(|a| a.ou_path.iter().map(String::as_str)))
        .collect();
    let mut found = BTreeSet::new();
    for rule in &policy.rules {
        for (what, t) in [("targets", &rule.targets), ("exclude", &rule.exclude)] {
            for id in t.accounts.iter().filter(|id| !accounts.contains(id.as_str())) {
                found.insert(format!(
                    "rule {}: {what} account {id} is not in the organisation",
                    rule.name
                ));
            }
            for id in t.ous.iter().filter(|id| !ous.contains(id.as_str())) {
                found.insert(format!(
                    "rule {}: {what} OU {id} is not in the organisation",
                    rule.name
                ));
            }
        }
        if rule.targets.tags.is_empty() {
            continue;
        }
        for group in &inventory.groups {
            let Some(captures) = rule.groups.matches(&group.display_name) else { continue };
            let tags = rendered(&rule.targets, &captures);
            if !inventory
                .accounts
                .iter()
                .any(|a| tags.iter().all(|(k, v)| a.tags.get(k) == Some(v)))
            {
                let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                found.insert(format!(
                    "rule {}: no account has the tags {} (group {})",
                    rule.name,
                    pairs.join(", "),
                    group.display_name
                ));
            }
        }
    }
    found.into_iter().collect()
}

fn rendered(t: &Targets, captures: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    t.tags.iter().map(|(k, v)| (k.clone(), render(v, captures))).collect()
}

fn selects(t: &Targets, account: &Account, tags: &BTreeMap<String, String>) -> bool {
    t.all_accounts
        || t.accounts.contains(&account.id)
        || account.ou_path.iter().any(|ou| t.ous.contains(ou))
        || (!tags.is_empty() && tags.iter().all(|(k, v)| account.tags.get(k) == Some(v)))
}

fn targets_account(
    rule: &Rule,
    account: &Account,
    inventory: &Inventory,
    tags: &BTreeMap<String, String>,
    exclude_tags: &BTreeMap<String, String>,
) -> bool {
    let named = rule.targets.accounts.contains(&account.id);
    let protected = account.status != AccountStatus::Active
        || inventory.management_account_id.as_deref() == Some(account.id.as_str());
    if protected && !named {
        return false;
    }
    selects(&rule.targets, account, tags) && !selects(&rule.exclude, account, exclude_tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
[[permission_set]]
name = "ReadOnly"
managed_policies = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
[[permission_set]]
name = "TeamDev"
[[permission_set]]
name = "Admin"
managed_policies = ["arn:aws:iam::aws:policy/AdministratorAccess"]

[[rule]]
groups = "aws-core-*"
permission_sets = ["ReadOnly"]
tier = "core"
targets = { all_accounts = true }
exclude = { ous = ["ou-root-sandbox1"] }

[[rule]]
groups = "aws-team-{team}"
permission_sets = ["TeamDev"]
tier = "team"
targets = { tags = { team = "{team}" } }

[[rule]]
groups = "aws-admin-platform"
permission_sets = ["Admin"]
tier = "admin"
targets = { ous = ["ou-root-platform"], accounts = ["999999999999"] }
"#;

    fn account(id: &str, ous: &[&str], tags: &[(&str, &str)], status: AccountStatus) -> Account {
        Account {
            id: id.into(),
            name: format!("acct-{id}"),
            status,
            ou_path: std::iter::once("r-root")
                .chain(ous.iter().copied())
                .map(String::from)
                .collect(),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn inventory() -> Inventory {
        Inventory {
            groups: vec![
                Group { id: "g-core".into(), display_name: "aws-core-readers".into() },
                Group { id: "g-pay".into(), display_name: "aws-team-payments".into() },
                Group { id: "g-admin".into(), display_name: "aws-admin-platform".into() },
                Group { id: "g-other".into(), display_name: "marketing".into() },
            ],
            accounts: vec![
                account(
                    "111111111111",
                    &["ou-root-workload"],
                    &[("team", "payments")],
                    AccountStatus::Active,
                ),
                account(
                    "222222222222",
                    &["ou-root-platform", "ou-root-platnet1"],
                    &[],
                    AccountStatus::Active,
                ),
                account(
                    "333333333333",
                    &["ou-root-sandbox1"],
                    &[("team", "payments")],
                    AccountStatus::Active,
                ),
                account(
                    "444444444444",
                    &["ou-root-workload"],
                    &[("team", "payments")],
                    AccountStatus::Suspended,
                ),
                account("999999999999", &[], &[], AccountStatus::Active),
            ],
            management_account_id: Some("999999999999".into()),
            organizational_units: BTreeSet::new(),
        }
    }

    #[test]
    fn targets_the_organisation_lacks_are_named_per_rule() {
        let text = r#"
[[permission_set]]
name = "ReadOnly"
[[rule]]
name = "core"
groups = "aws-core-*"
permission_sets = ["ReadOnly"]
targets = { ous = ["ou-ab12-workload", "ou-abcd-placeholder"], accounts = ["111111111111", "123456789012"] }
exclude = { ous = ["ou-ab12-sandbox1", "ou-abcd-emptyunit"] }
[[rule]]
name = "team"
groups = "aws-team-{team}"
permission_sets = ["ReadOnly"]
targets = { tags = { team = "{team}" } }
"#;
        let (p, d) = Policy::check(text, None);
        let policy = p.unwrap_or_else(|| panic!("{d:?}"));
        let mut inv = inventory();
        for a in &mut inv.accounts {
            a.ou_path = a.ou_path.iter().map(|o| o.replace("ou-root-", "ou-ab12-")).collect();
        }
        inv.groups.push(Group { id: "g-x".into(), display_name: "aws-team-nobody".into() });
        inv.organizational_units.insert("ou-abcd-emptyunit".into()); // an OU without accounts exists
        assert_eq!(
            unknown_targets(&policy, &inv),
            [
                "rule core: targets OU ou-abcd-placeholder is not in the organisation",
                "rule core: targets account 123456789012 is not in the organisation",
                "rule team: no account has the tags team=nobody (group aws-team-nobody)",
            ]
        );
        assert!(
            unknown_targets(&self::policy(), &inventory()).iter().all(|u| !u.contains("payments"))
        );
    }

    fn set(desired: &Desired) -> Vec<(String, String, String)> {
        desired
            .assignments
            .iter()
            .map(|a| (a.group_id.clone(), a.permission_set.clone(), a.account_id.clone()))
            .collect()
    }

    fn policy() -> Policy {
        let (p, d) = Policy::check(POLICY.replace("ou-root-", "ou-ab12-").as_str(), None);
        p.unwrap_or_else(|| panic!("{d:?}"))
    }

    #[test]
    fn every_target_kind_with_protected_accounts() {
        let mut inv = inventory();
        for a in &mut inv.accounts {
            a.ou_path = a.ou_path.iter().map(|o| o.replace("ou-root-", "ou-ab12-")).collect();
        }
        let d = plan(&policy(), &inv);
        let t = |g: &str, p: &str, a: &str| (g.to_string(), p.to_string(), a.to_string());
        assert_eq!(
            set(&d),
            vec![
                // admin: the OU (recursively, via the nested OU) and the management account by id
                t("g-admin", "Admin", "222222222222"),
                t("g-admin", "Admin", "999999999999"),
                // core: all accounts minus the sandbox OU, the suspended and the management account
                t("g-core", "ReadOnly", "111111111111"),
                t("g-core", "ReadOnly", "222222222222"),
                // team: tag team=payments (the suspended account is skipped)
                t("g-pay", "TeamDev", "111111111111"),
                t("g-pay", "TeamDev", "333333333333"),
            ]
        );
        assert_eq!(d.managed_groups.len(), 3, "marketing is not managed");
        assert_eq!(d.managed_groups["g-pay"].tiers, BTreeSet::from(["team".to_string()]));
    }

    #[test]
    fn a_renamed_or_unknown_group_gets_nothing() {
        let mut inv = inventory();
        inv.groups[1].display_name = "payments-team".into();
        let d = plan(&policy(), &inv);
        assert!(d.assignments.iter().all(|a| a.group_id != "g-pay"));
        assert!(!d.managed_groups.contains_key("g-pay"));
    }
}
