//! `idc-guard policy import`: the access policy of an estate idc-guard did not create, written
//! so that the first `plan` changes nothing.
//!
//! - every permission set is declared as it is (description, session duration, relay state,
//!   managed, customer managed and inline policies, boundary); sets no group holds (unassigned, or
//!   held only by users directly) are declared `managed = false`: idc-guard never changes them;
//! - each group's assignments become rules, one per group and set of accounts: `all_accounts`
//!   when they are every active member account, else a tag every one of those accounts (and no
//!   other) carries, else the largest OUs whose active accounts are all among them, plus the
//!   accounts left by id (the management account and accounts that are not ACTIVE are always
//!   named by id: the planner targets them no other way);
//! - the result is checked by planning it against the same estate: the desired assignments must
//!   be exactly the groups' current ones, or the import fails.
//!
//! What does not fit is listed, never dropped silently: direct user assignments (the policy maps
//! groups), groups outside the `aws-core-*` / `aws-team-*` / `aws-admin-*` tiers, and groups whose
//! names a pattern cannot match exactly (`*`, `?`, `{`, `}`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::ledger::{Ledger, tier_of_name};
use super::plan::{Account, AccountStatus, Group, Inventory, plan};
use super::policy::{PermissionsBoundary, Policy};
use super::ports::{OrgSnapshot, PermissionSetInfo, PermissionSetPolicies};

/// The written policy and what it could not express.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The policy file's text.
    pub toml: String,
    /// What is not in it, and why.
    pub not_imported: Vec<String>,
    /// Rules written.
    pub rules: usize,
    /// Permission sets declared.
    pub permission_sets: usize,
}

#[derive(Serialize)]
struct OutPolicy {
    settings: OutSettings,
    permission_set: Vec<OutSet>,
    rule: Vec<OutRule>,
}

#[derive(Serialize)]
struct OutSettings {
    prune: bool,
    max_deletions: usize,
}

#[derive(Serialize)]
struct OutSet {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    managed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    relay_state: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    managed_policies: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    customer_managed_policies: Vec<OutCustomer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inline_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions_boundary: Option<OutBoundary>,
}

#[derive(Serialize)]
struct OutCustomer {
    name: String,
    path: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutBoundary {
    Arn(String),
    Customer(OutCustomer),
}

#[derive(Serialize)]
struct OutRule {
    name: String,
    groups: String,
    permission_sets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    review_every: Option<String>,
    targets: OutTargets,
}

#[derive(Serialize, Default, Clone, PartialEq)]
struct OutTargets {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    all_accounts: bool,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    ous: BTreeSet<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    accounts: BTreeSet<String>,
}

/// The estate as the import reads it.
pub struct Estate<'a> {
    /// Every permission set with its policies (boundary read).
    pub permission_sets: &'a [(PermissionSetInfo, PermissionSetPolicies)],
    /// Sets whose permissions boundary could not be read: declared `managed = false`, since
    /// owning them could change what was not seen.
    pub partly_read: &'a BTreeSet<String>,
    /// Groups, members and assignments (the ledger of the estate).
    pub ledger: &'a Ledger,
    /// The organisation, with tags.
    pub org: &'a OrgSnapshot,
}

/// Writes the policy (see the module header). `Err` when the written policy would not plan
/// exactly the current assignments (a bug, never a silent change).
pub fn import(estate: &Estate<'_>) -> Result<Imported, String> {
    let org = estate.org;
    let eligible = |a: &Account| {
        a.status == AccountStatus::Active && Some(&a.id) != org.management_account_id.as_ref()
    };
    let eligible_ids: BTreeSet<&str> =
        org.accounts.iter().filter(|a| eligible(a)).map(|a| a.id.as_str()).collect();
    let mut not_imported: Vec<String> = estate
        .partly_read
        .iter()
        .map(|s| format!("permission set {s}: its permissions boundary could not be read, so it is declared managed = false (idc-guard assigns it, never changes it)"))
        .collect();
    // (group id) → permission set → accounts.
    let mut by_group: BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    let mut held_by_group: BTreeSet<&str> = BTreeSet::new();
    let users: BTreeMap<&str, &str> =
        estate.ledger.users.iter().map(|u| (u.id.as_str(), u.user_name.as_str())).collect();
    for h in &estate.ledger.holdings {
        match h.principal.split_once(':') {
            Some(("GROUP", id)) => {
                held_by_group.insert(h.permission_set.as_str());
                by_group
                    .entry(id)
                    .or_default()
                    .entry(h.permission_set.as_str())
                    .or_default()
                    .insert(h.account_id.as_str());
            }
            Some(("USER", id)) => not_imported.push(format!(
                "direct assignment: {} holds {} in {} (the policy assigns groups: move it to a group, or keep it by hand)",
                users.get(id).copied().unwrap_or(id),
                h.permission_set,
                h.account_id
            )),
            _ => {}
        }
    }
    let names: BTreeMap<&str, &str> =
        estate.ledger.groups.iter().map(|g| (g.id.as_str(), g.display_name.as_str())).collect();
    let mut rules = Vec::new();
    let mut explicit_only: BTreeSet<&str> = BTreeSet::new();
    for attempt in 0..2 {
        rules.clear();
        for (group_id, sets) in &by_group {
            let Some(name) = names.get(group_id).copied() else { continue };
            if name.contains(['*', '?', '{', '}']) {
                if attempt == 0 {
                    not_imported.push(format!(
                        "group {name:?}: its name holds pattern characters (* ? {{ }}), so no rule can match it alone; its assignments stay as they are, unmanaged"
                    ));
                }
                continue;
            }
            let tier = tier_of_name(name);
            if tier.is_none() && attempt == 0 {
                not_imported.push(format!(
                    "group {name:?} does not follow the naming tiers (aws-core-*, aws-team-*, aws-admin-*): imported as a rule without a tier"
                ));
            }
            // Sets with the same accounts share a rule.
            let mut by_accounts: BTreeMap<&BTreeSet<&str>, Vec<&str>> = BTreeMap::new();
            for (set, accounts) in sets {
                by_accounts.entry(accounts).or_default().push(set);
            }
            let many = by_accounts.len() > 1;
            for (n, (accounts, sets)) in by_accounts.into_iter().enumerate() {
                let targets = if explicit_only.contains(group_id) {
                    OutTargets {
                        accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
                        ..Default::default()
                    }
                } else {
                    targets_for(accounts, org, &eligible_ids)
                };
                rules.push(OutRule {
                    name: if many { format!("{name}-{}", n + 1) } else { name.to_owned() },
                    groups: name.to_owned(),
                    permission_sets: sets.iter().map(|s| (*s).to_owned()).collect(),
                    tier: tier.map(str::to_owned),
                    review_every: tier.map(|t| {
                        match t {
                            "admin" => "14d",
                            "team" => "30d",
                            _ => "90d",
                        }
                        .to_owned()
                    }),
                    targets,
                });
            }
        }
        let text = render(estate, &held_by_group, &rules)?;
        let (policy, diagnostics) = Policy::check(&text, None);
        let Some(policy) = policy else {
            return Err(format!("the written policy does not check: {diagnostics:?}"));
        };
        let wrong = mismatched_groups(&policy, estate, &by_group);
        if wrong.is_empty() {
            let count = rules.len();
            return Ok(Imported {
                toml: text,
                not_imported,
                rules: count,
                permission_sets: estate.permission_sets.len(),
            });
        }
        // Targets by OU or tag that plan otherwise than the estate is: name the accounts.
        explicit_only.extend(wrong.iter().filter_map(|g| by_group.keys().find(|k| **k == g)));
    }
    Err("the written policy does not plan the current assignments".into())
}

/// The narrowest description of exactly these accounts.
fn targets_for(
    accounts: &BTreeSet<&str>,
    org: &OrgSnapshot,
    eligible: &BTreeSet<&str>,
) -> OutTargets {
    let (plain, named): (BTreeSet<&str>, BTreeSet<&str>) =
        accounts.iter().partition(|a| eligible.contains(*a));
    let mut t = OutTargets {
        accounts: named.iter().map(|a| (*a).to_owned()).collect(),
        ..Default::default()
    };
    if plain.is_empty() {
        return t;
    }
    if plain == *eligible {
        t.all_accounts = true;
        return t;
    }
    let active: Vec<&Account> =
        org.accounts.iter().filter(|a| eligible.contains(a.id.as_str())).collect();
    // A tag whose accounts are exactly these.
    let mut tags: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for a in &active {
        for (k, v) in &a.tags {
            tags.entry((k, v)).or_default().insert(&a.id);
        }
    }
    if let Some(((k, v), _)) = tags.iter().find(|(_, ids)| **ids == plain) {
        t.tags.insert((*k).to_owned(), (*v).to_owned());
        return t;
    }
    // The largest OUs all of whose active accounts are among these.
    let mut under: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for a in &active {
        for ou in &a.ou_path {
            under.entry(ou).or_default().insert(&a.id);
        }
    }
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    for a in &active {
        // From the root down: the first OU that fits is the largest.
        if !plain.contains(a.id.as_str()) || covered.contains(a.id.as_str()) {
            continue;
        }
        if let Some(ou) = a
            .ou_path
            .iter()
            .find(|ou| under.get(ou.as_str()).is_some_and(|ids| ids.is_subset(&plain)))
        {
            t.ous.insert(ou.clone());
            covered.extend(under[ou.as_str()].iter().copied());
        }
    }
    t.accounts.extend(plain.difference(&covered).map(|a| (*a).to_owned()));
    t
}

/// Groups whose planned assignments differ from their current ones.
fn mismatched_groups(
    policy: &Policy,
    estate: &Estate<'_>,
    by_group: &BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>>,
) -> BTreeSet<String> {
    let inventory = Inventory {
        groups: estate
            .ledger
            .groups
            .iter()
            .map(|g| Group { id: g.id.clone(), display_name: g.display_name.clone() })
            .collect(),
        accounts: estate.org.accounts.clone(),
        management_account_id: estate.org.management_account_id.clone(),
        organizational_units: estate.org.organizational_units.clone(),
    };
    let desired = plan(policy, &inventory);
    let planned: BTreeSet<(&str, &str, &str)> = desired
        .assignments
        .iter()
        .map(|a| (a.group_id.as_str(), a.permission_set.as_str(), a.account_id.as_str()))
        .collect();
    let current: BTreeSet<(&str, &str, &str)> = by_group
        .iter()
        .filter(|(g, _)| desired.managed_groups.contains_key(**g))
        .flat_map(|(g, sets)| {
            sets.iter().flat_map(move |(s, accounts)| accounts.iter().map(move |a| (*g, *s, *a)))
        })
        .collect();
    planned.symmetric_difference(&current).map(|(g, _, _)| (*g).to_owned()).collect()
}

fn render(
    estate: &Estate<'_>,
    held_by_group: &BTreeSet<&str>,
    rules: &[OutRule],
) -> Result<String, String> {
    let mut sets: Vec<OutSet> = estate
        .permission_sets
        .iter()
        .map(|(info, p)| OutSet {
            name: info.name.clone(),
            managed: (!held_by_group.contains(info.name.as_str())
                || estate.partly_read.contains(&info.name))
            .then_some(false),
            description: info.description.clone().filter(|d| !d.is_empty()),
            session_duration: info.session_duration.clone(),
            relay_state: info.relay_state.clone().filter(|r| !r.is_empty()),
            managed_policies: p.managed.iter().cloned().collect(),
            customer_managed_policies: p
                .customer_managed
                .iter()
                .map(|c| OutCustomer { name: c.name.clone(), path: c.path.clone() })
                .collect(),
            inline_policy: p.inline.clone().filter(|i| !i.trim().is_empty()),
            permissions_boundary: p.boundary.as_ref().map(|b| match b {
                PermissionsBoundary::ManagedPolicyArn(arn) => OutBoundary::Arn(arn.clone()),
                PermissionsBoundary::CustomerManaged(c) => OutBoundary::Customer(OutCustomer {
                    name: c.name.clone(),
                    path: c.path.clone(),
                }),
            }),
        })
        .collect();
    sets.sort_by(|a, b| a.name.cmp(&b.name));
    let out = OutPolicy {
        settings: OutSettings { prune: true, max_deletions: 20 },
        permission_set: sets,
        rule: rules
            .iter()
            .map(|r| OutRule {
                name: r.name.clone(),
                groups: r.groups.clone(),
                permission_sets: r.permission_sets.clone(),
                tier: r.tier.clone(),
                review_every: r.review_every.clone(),
                targets: r.targets.clone(),
            })
            .collect(),
    };
    toml::to_string_pretty(&out).map_err(|e| e.to_string())
}

/// Reads the estate (permission sets with their policies, the ledger, the organisation with
/// tags) and writes its policy.
pub async fn read_and_import<Idc, Org, Store>(
    idc: &Idc,
    org: &Org,
    store: &Store,
    instance_arn: Option<&str>,
    limits: super::reconcile::Limits,
) -> Result<Imported, crate::error::AwsError>
where
    Idc: super::ports::Estate,
    Org: super::ports::Organizations,
    Store: crate::store::StateStore,
{
    let (empty, _) = Policy::check("", None);
    let empty = empty.ok_or_else(|| crate::error::AwsError::Permanent {
        service: "idc-guard",
        operation: "policy import",
        message: "an empty policy does not check".into(),
    })?;
    let ledger = super::ledger::build(
        &super::ledger::build::Sources {
            idc,
            org,
            account_access: None,
            store,
            policy: &empty,
            instance_arn,
            limits: limits.clone(),
        },
        chrono::Utc::now(),
    )
    .await?;
    let rec = super::reconcile::Reconciler::new(idc, org, limits);
    let instance = rec.call(|| idc.instance(instance_arn)).await?;
    let arn = instance.instance_arn.as_str();
    let mut sets = Vec::new();
    let mut partly_read = BTreeSet::new();
    for info in rec.call(|| idc.list_permission_sets(arn)).await? {
        let policies = match rec.call(|| idc.permission_set_policies(arn, &info.arn, true)).await {
            Ok(p) => p,
            // Without its boundary the set is not known whole: it is declared, never owned.
            Err(e) => {
                let p = rec.call(|| idc.permission_set_policies(arn, &info.arn, false)).await?;
                tracing::warn!(set = %info.name, error = %e, "permissions boundary unreadable");
                partly_read.insert(info.name.clone());
                p
            }
        };
        sets.push((info, policies));
    }
    let snapshot = org.snapshot(true).await?;
    import(&Estate {
        permission_sets: &sets,
        partly_read: &partly_read,
        ledger: &ledger,
        org: &snapshot,
    })
    .map_err(|message| crate::error::AwsError::Permanent {
        service: "idc-guard",
        operation: "policy import",
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::plan::AccountStatus;
    use crate::access::reconcile::{Limits, Reconciler, RunOptions, Scope};
    use crate::adapters::SqliteStateStore;
    use crate::testing::{FakeIdentityCenter, FakeOrganizations};

    const MANAGEMENT: &str = "000000000000";
    const PROD_PAY: &str = "111111111111";
    const PROD_SEARCH: &str = "222222222222";
    const DEV_PAY: &str = "333333333333";
    const DEV_SEARCH: &str = "444444444444";
    const SBX_OLD: &str = "555555555555";
    const SBX: &str = "666666666666";

    /// An estate made by hand over the years, not by idc-guard: every kind of target, a
    /// suspended account, the management account, a direct assignment, a group outside the
    /// tiers and one whose name is a glob.
    fn estate() -> (FakeIdentityCenter, FakeOrganizations) {
        let idc = FakeIdentityCenter::new();
        idc.add_permission_set("ReadOnly", &["arn:aws:iam::aws:policy/ReadOnlyAccess"]);
        idc.add_permission_set("PowerUser", &["arn:aws:iam::aws:policy/PowerUserAccess"]);
        idc.add_permission_set("Admin", &["arn:aws:iam::aws:policy/AdministratorAccess"]);
        idc.put_inline_policy(
            "Admin",
            Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"organizations:LeaveOrganization","Resource":"*"}]}"#),
        );
        idc.add_permission_set("LegacyBilling", &["arn:aws:iam::aws:policy/job-function/Billing"]);
        let org = FakeOrganizations::new(MANAGEMENT);
        org.add_account(MANAGEMENT, "management", "r-fake", &[]);
        org.add_account(PROD_PAY, "prod-payments", "ou-ab12-prod0001", &[("team", "payments")]);
        org.add_account(PROD_SEARCH, "prod-search", "ou-ab12-prod0001", &[("team", "search")]);
        org.add_account(DEV_PAY, "dev-payments", "ou-ab12-dev00001", &[("team", "payments")]);
        org.add_account(DEV_SEARCH, "dev-search", "ou-ab12-dev00001", &[("team", "search")]);
        org.add_account(SBX_OLD, "old-sandbox", "ou-ab12-sbx00001", &[]);
        org.add_account(SBX, "sandbox", "ou-ab12-sbx00001", &[]);
        org.set_status(SBX_OLD, AccountStatus::Suspended);
        let core = idc.add_group("aws-core-readonly");
        for a in [PROD_PAY, PROD_SEARCH, DEV_PAY, DEV_SEARCH, SBX] {
            idc.assign(&core, "ReadOnly", a);
        }
        let pay = idc.add_group("aws-team-payments");
        for a in [PROD_PAY, DEV_PAY] {
            idc.assign(&pay, "PowerUser", a);
        }
        let admin = idc.add_group("aws-admin-platform");
        for a in [PROD_PAY, PROD_SEARCH, MANAGEMENT] {
            idc.assign(&admin, "Admin", a);
        }
        let oncall = idc.add_group("ops-oncall");
        for a in [SBX_OLD, DEV_SEARCH] {
            idc.assign(&oncall, "ReadOnly", a);
            idc.assign(&oncall, "PowerUser", a);
        }
        idc.assign(&oncall, "ReadOnly", SBX);
        let glob = idc.add_group("team*");
        idc.assign(&glob, "Admin", DEV_PAY);
        let carol = idc.add_user("carol@acme.example");
        idc.assign_user(&carol, "LegacyBilling", PROD_SEARCH);
        (idc, org)
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_plan_of_an_imported_estate_changes_nothing() {
        let (idc, org) = estate();
        let store = SqliteStateStore::in_memory().unwrap();
        let limits = Limits::default();
        let imported = read_and_import(&idc, &org, &store, None, limits.clone()).await.unwrap();
        let (policy, diagnostics) = Policy::check(&imported.toml, None);
        let policy = policy.unwrap_or_else(|| panic!("{diagnostics:?}\n{}", imported.toml));
        let report = Reconciler::new(&idc, &org, limits)
            .run(
                &policy,
                &RunOptions {
                    scope: Scope::All,
                    apply: false,
                    previously_managed: BTreeSet::new(),
                },
                None,
            )
            .await
            .unwrap();
        assert!(!report.has_changes(), "{:?}\n{}", report, imported.toml);
        assert!(report.policy_errors.is_empty(), "{:?}", report.policy_errors);
        // Targets as narrow as the estate allows, and never wider.
        let rule = |name: &str| policy.rules.iter().find(|r| r.name == name).unwrap();
        assert!(rule("aws-core-readonly").targets.all_accounts);
        assert_eq!(
            rule("aws-team-payments").targets.tags,
            BTreeMap::from([("team".to_owned(), "payments".to_owned())])
        );
        let admin = &rule("aws-admin-platform").targets;
        assert_eq!(admin.ous, BTreeSet::from(["ou-ab12-prod0001".to_owned()]));
        assert_eq!(admin.accounts, BTreeSet::from([MANAGEMENT.to_owned()]));
        assert_eq!(rule("aws-admin-platform").tier.as_deref(), Some("admin"));
        // A set only a user holds is declared, never owned.
        assert!(!policy.permission_set("LegacyBilling").unwrap().managed);
        assert!(policy.permission_set("Admin").unwrap().inline_policy.is_some());
        // What does not fit is listed.
        let listed = imported.not_imported.join("\n");
        for expected in [
            "direct assignment: carol@acme.example holds LegacyBilling",
            "\"ops-oncall\" does not follow the naming tiers",
            "\"team*\": its name holds pattern characters",
        ] {
            assert!(listed.contains(expected), "{expected:?} not in:\n{listed}");
        }
    }
}
