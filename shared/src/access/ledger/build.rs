//! Reading the estate into a [`Ledger`].
//!
//! Calls, for `S` permission sets, `G` groups and `U` users: `ListPermissionSets` (+ one
//! `DescribePermissionSet` each), one `ListAccountsForProvisionedPermissionSet` per set, one
//! `ListAccountAssignments` per set and account it is provisioned to (an assignment can exist
//! nowhere else), `ListUsers` and `ListGroupMemberships` per group (100 a page), Organizations'
//! accounts, and the account access manager's entitlements (one listing per application).
//! The naive read — `ListAccountAssignments` for every account × every set — costs
//! accounts × sets calls whatever is provisioned; `BENCHMARKS.md` has both counts.
//! sso-admin calls are paced and retried as the reconciler's are.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::{GrantHeld, Holding, Ledger, LedgerGroup, LedgerSet, tier_of_name};
use crate::access::plan::{Assignment, Inventory, plan};
use crate::access::policy::Policy;
use crate::access::ports::{AccountAccess, Estate, Organizations, Principal};
use crate::access::reconcile::{Limits, Reconciler};
use crate::error::AwsError;
use crate::records::{self, Grant, GrantStatus, LastUsed};
use crate::store::StateStore;

/// How many reads run at once (each still waits for the shared pacer).
const CONCURRENCY: usize = 8;

/// What the ledger is read from.
pub struct Sources<'a, Idc, Org, Store> {
    /// IAM Identity Center.
    pub idc: &'a Idc,
    /// AWS Organizations.
    pub org: &'a Org,
    /// The account access manager; `None` leaves its entitlements out (and says so).
    pub account_access: Option<&'a dyn AccountAccess>,
    /// The state: grants and last uses.
    pub store: &'a Store,
    /// The access policy: what explains a holding.
    pub policy: &'a Policy,
    /// The IdC instance, when configured.
    pub instance_arn: Option<&'a str>,
    /// IdC's quotas.
    pub limits: Limits,
}

/// Reads the estate. A failed read of IdC or Organizations fails the build (a ledger that
/// silently lacks an account would say nobody can reach it); the account access manager's
/// failure is a note, since its entitlements are a second way in the ledger then names as
/// unread.
pub async fn build<Idc: Estate, Org: Organizations, Store: StateStore>(
    src: &Sources<'_, Idc, Org, Store>,
    now: DateTime<Utc>,
) -> Result<Ledger, AwsError> {
    let rec = &Reconciler::new(src.idc, src.org, src.limits.clone());
    let calls = AtomicUsize::new(0);
    let counted = |n: usize| calls.fetch_add(n, Ordering::Relaxed);
    let idc = src.idc;
    let instance = rec.call(|| idc.instance(src.instance_arn)).await?;
    counted(1);
    let (arn, store_id) = (instance.instance_arn.as_str(), instance.identity_store_id.as_str());
    let users = idc.list_users(store_id).await?;
    counted(users.len().div_ceil(100).max(1));
    let groups = idc.list_groups(store_id).await?;
    counted(groups.len().div_ceil(100).max(1));
    let groups: Vec<LedgerGroup> = futures::stream::iter(groups)
        .map(|g| async {
            let mut members = idc.group_member_ids(store_id, &g.id).await?;
            counted(members.len().div_ceil(100).max(1));
            members.sort();
            Ok::<_, AwsError>(LedgerGroup { id: g.id, display_name: g.display_name, members })
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let sets = &rec.call(|| idc.list_permission_sets(arn)).await?;
    counted(1 + sets.len());
    let declared = src.policy.permission_set_names();
    // Where each set is provisioned, then who holds it in each of those accounts.
    let provisioned: Vec<(usize, Vec<String>)> = futures::stream::iter(sets.iter().enumerate())
        .map(|(i, set)| async move {
            let accounts = rec.call(|| idc.provisioned_accounts(arn, &set.arn)).await?;
            Ok::<_, AwsError>((i, accounts))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    counted(provisioned.iter().map(|(_, a)| a.len().div_ceil(100).max(1)).sum());
    // Each group's assignments by principal too (a page per 100): the two listings cross-check,
    // so an assignment one of them misses is still in the ledger (IdC's listings are eventually
    // consistent, and the local AWS stand-in's ListAccountsForProvisionedPermissionSet is a
    // stub that names only the caller's account).
    let by_arn: BTreeMap<&str, usize> =
        sets.iter().enumerate().map(|(i, s)| (s.arn.as_str(), i)).collect();
    let by_group: Vec<(String, Vec<crate::access::ports::ActualAssignment>)> =
        futures::stream::iter(groups.iter())
            .map(|g| async move {
                let (list, pages) = rec.call(|| idc.list_group_assignments(arn, &g.id)).await?;
                counted(pages.max(1));
                Ok::<_, AwsError>((g.id.clone(), list))
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
    let mut found: BTreeSet<(usize, String, Principal)> = BTreeSet::new();
    for (group, list) in by_group {
        for a in list {
            if let Some(&i) = by_arn.get(a.permission_set_arn.as_str()) {
                found.insert((i, a.account_id, Principal::Group(group.clone())));
            }
        }
    }
    // Who holds each set in each account it is provisioned to, and in each account a group
    // holds it in (in IAM Identity Center those are provisioned too, so this adds no call; where
    // a listing lags, the direct assignments beside a group's are still found).
    let mut pairs: BTreeSet<(usize, String)> = provisioned
        .into_iter()
        .flat_map(|(i, accounts)| accounts.into_iter().map(move |a| (i, a)))
        .collect();
    pairs.extend(found.iter().map(|(i, a, _)| (*i, a.clone())));
    let held: Vec<(usize, String, Vec<Principal>)> = futures::stream::iter(pairs)
        .map(|(i, account)| async move {
            let principals =
                rec.call(|| idc.account_assignments(arn, &account, &sets[i].arn)).await?;
            Ok::<_, AwsError>((i, account, principals))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    counted(held.iter().map(|(_, _, p)| p.len().div_ceil(100).max(1)).sum());
    for (i, account, principals) in held {
        found.extend(principals.into_iter().map(|p| (i, account.clone(), p)));
    }

    let uses_tags =
        src.policy.rules.iter().any(|r| !r.targets.tags.is_empty() || !r.exclude.tags.is_empty());
    let org = src.org.snapshot(uses_tags).await?;
    counted(org.calls);
    let inventory = Inventory {
        groups: groups
            .iter()
            .map(|g| crate::access::plan::Group {
                id: g.id.clone(),
                display_name: g.display_name.clone(),
            })
            .collect(),
        accounts: org.accounts.clone(),
        management_account_id: org.management_account_id.clone(),
        organizational_units: org.organizational_units.clone(),
    };
    let desired = plan(src.policy, &inventory);
    let group_names: BTreeMap<&str, &str> =
        groups.iter().map(|g| (g.id.as_str(), g.display_name.as_str())).collect();
    let rule_tiers: BTreeMap<&str, &str> = src
        .policy
        .rules
        .iter()
        .filter_map(|r| Some((r.name.as_str(), r.tier.as_deref()?)))
        .collect();
    let mut holdings = Vec::new();
    for (i, account_id, principal) in found {
        let set = &sets[i];
        {
            let (key, why, tier) = match &principal {
                Principal::Group(id) => {
                    let wanted = desired.why.get(&Assignment {
                        group_id: id.clone(),
                        permission_set: set.name.clone(),
                        account_id: account_id.clone(),
                    });
                    let name = group_names.get(id.as_str()).copied().unwrap_or_default();
                    let (why, tier) = match wanted {
                        Some(rules) => {
                            let tiers: BTreeSet<&str> = rules
                                .iter()
                                .filter_map(|r| rule_tiers.get(r.as_str()))
                                .copied()
                                .collect();
                            let why = rules.iter().map(|r| format!("rule {r}")).collect::<Vec<_>>();
                            (
                                why.join(", "),
                                (!tiers.is_empty())
                                    .then(|| tiers.into_iter().collect::<Vec<_>>().join("+")),
                            )
                        }
                        None if !declared.contains(set.name.as_str()) => {
                            ("outside the policy".to_owned(), tier_of_name(name).map(str::to_owned))
                        }
                        None => ("hand-made".to_owned(), tier_of_name(name).map(str::to_owned)),
                    };
                    (format!("GROUP:{id}"), why, tier)
                }
                Principal::User(id) => {
                    (format!("USER:{id}"), "hand-made (direct)".to_owned(), None)
                }
            };
            holdings.push(Holding {
                principal: key,
                permission_set: set.name.clone(),
                account_id: account_id.clone(),
                why,
                tier,
            });
        }
    }
    holdings.sort();
    holdings.dedup();

    let mut notes = Vec::new();
    let entitlements = match src.account_access {
        Some(access) => match access.all_role_entitlements().await {
            Ok(list) => list,
            Err(e) => {
                notes.push(format!(
                    "the account access manager's entitlements could not be read ({e}): roles entitled through it are not in this ledger"
                ));
                Vec::new()
            }
        },
        None => {
            notes.push("the account access manager was not read: roles entitled through it are not in this ledger".into());
            Vec::new()
        }
    };
    let grants = records::load_all::<Grant, _>(src.store, Grant::PK)
        .await?
        .into_iter()
        .filter(|g| g.status == GrantStatus::Active)
        .filter(|g| g.expires_at.is_none_or(|t| t > now))
        .map(|g| GrantHeld {
            login: g.login.to_lowercase(),
            group: g.group,
            expires_at: g.expires_at,
        })
        .collect();
    let last_used = records::load_all::<LastUsed, _>(src.store, LastUsed::PK)
        .await?
        .into_iter()
        .map(super::Use::from)
        .collect();
    let mut permission_sets: Vec<LedgerSet> = sets
        .iter()
        .map(|s| LedgerSet {
            arn: s.arn.clone(),
            name: s.name.clone(),
            session_duration: s.session_duration.clone(),
            in_policy: declared.contains(s.name.as_str()),
        })
        .collect();
    permission_sets.sort_by(|a, b| a.name.cmp(&b.name));
    let mut users = users;
    users.sort();
    Ok(Ledger {
        built_at: now,
        users,
        groups,
        permission_sets,
        accounts: org.accounts.iter().map(|a| (a.id.clone(), a.name.clone())).collect(),
        holdings,
        entitlements,
        grants,
        last_used,
        // Retried calls are calls too.
        calls: calls.load(Ordering::Relaxed) + rec.retried(),
        notes,
        policy_digest: None,
    })
}
