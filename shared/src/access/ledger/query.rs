//! Asking the ledger: rows for one account (`who`), one person (`what`), access not used for N
//! days (`unused`), every row (the scheduled export), and what changed between two snapshots.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Holding, Ledger, LedgerGroup, LedgerSet, Use};
use crate::access::ports::{IdcUser, RoleEntitlement};

/// How a person holds the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// A group's account assignment.
    Group,
    /// An assignment to the user directly.
    Direct,
    /// An account access manager entitlement to an IAM role.
    Entitlement,
}

impl Via {
    /// As written in tables and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Group => "group",
            Via::Direct => "direct",
            Via::Entitlement => "entitlement",
        }
    }
}

/// One way one person reaches one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row<'a> {
    /// The person's user name (Okta login).
    pub user: &'a str,
    /// Their Identity Store user id.
    pub user_id: &'a str,
    /// How.
    pub via: Via,
    /// The group (Okta's, pushed to IdC), for `via = group`.
    pub group: Option<&'a str>,
    /// When the person's grant of that group ends, when the membership is a grant.
    pub grant_expires: Option<DateTime<Utc>>,
    /// The permission set, or the IAM role's ARN of an entitlement.
    pub permission_set: &'a str,
    /// The account.
    pub account_id: &'a str,
    /// The account's name.
    pub account_name: &'a str,
    /// Why the access exists.
    pub why: &'a str,
    /// The tier.
    pub tier: Option<&'a str>,
    /// The permission set's session duration.
    pub session_duration: Option<&'a str>,
    /// The latest use CloudTrail showed (portal request or role-session call).
    pub last_used: Option<DateTime<Utc>>,
    /// The latest portal request (credentials or console) for it.
    pub last_portal: Option<DateTime<Utc>>,
}

impl Row<'_> {
    /// What identifies the access in a diff: person, how, group, set and account.
    fn identity(&self) -> (String, Via, String, String, String) {
        (
            self.user_id.to_owned(),
            self.via,
            self.group.unwrap_or_default().to_owned(),
            self.permission_set.to_owned(),
            self.account_id.to_owned(),
        )
    }
}

/// The ledger indexed for questions.
pub struct Index<'a> {
    ledger: &'a Ledger,
    users: HashMap<&'a str, &'a IdcUser>,
    groups: HashMap<&'a str, &'a LedgerGroup>,
    by_name: HashMap<String, &'a IdcUser>,
    groups_of: HashMap<&'a str, Vec<&'a LedgerGroup>>,
    holdings_of: HashMap<&'a str, Vec<&'a Holding>>,
    entitlements_of: HashMap<&'a str, Vec<&'a RoleEntitlement>>,
    sets: HashMap<&'a str, &'a LedgerSet>,
    used: HashMap<(&'a str, &'a str, &'a str), &'a Use>,
    grants: HashMap<(&'a str, &'a str), Option<DateTime<Utc>>>,
}

impl<'a> Index<'a> {
    /// Indexes a ledger (linear in its size).
    pub fn new(ledger: &'a Ledger) -> Self {
        let mut groups_of: HashMap<&str, Vec<&LedgerGroup>> = HashMap::new();
        for g in &ledger.groups {
            for m in &g.members {
                groups_of.entry(m.as_str()).or_default().push(g);
            }
        }
        let mut holdings_of: HashMap<&str, Vec<&Holding>> = HashMap::new();
        for h in &ledger.holdings {
            holdings_of.entry(h.principal.as_str()).or_default().push(h);
        }
        let mut entitlements_of: HashMap<&str, Vec<&RoleEntitlement>> = HashMap::new();
        for e in &ledger.entitlements {
            entitlements_of.entry(e.principal.as_str()).or_default().push(e);
        }
        Self {
            ledger,
            users: ledger.users.iter().map(|u| (u.id.as_str(), u)).collect(),
            groups: ledger.groups.iter().map(|g| (g.id.as_str(), g)).collect(),
            by_name: ledger.users.iter().map(|u| (u.user_name.to_lowercase(), u)).collect(),
            groups_of,
            holdings_of,
            entitlements_of,
            sets: ledger.permission_sets.iter().map(|s| (s.name.as_str(), s)).collect(),
            used: ledger
                .last_used
                .iter()
                .map(|u| ((u.user.as_str(), u.account_id.as_str(), u.permission_set.as_str()), u))
                .collect(),
            grants: ledger
                .grants
                .iter()
                .map(|g| ((g.login.as_str(), g.group.as_str()), g.expires_at))
                .collect(),
        }
    }

    /// The user by user name (any case) or Identity Store id.
    pub fn user(&self, who: &str) -> Option<&'a IdcUser> {
        self.users.get(who).copied().or_else(|| self.by_name.get(&who.to_lowercase()).copied())
    }

    /// Every way `user` reaches any account.
    pub fn what(&self, user: &'a IdcUser) -> Vec<Row<'a>> {
        let mut rows = Vec::new();
        self.rows_of(user, &mut |r| rows.push(r));
        rows
    }

    /// Every way anyone reaches `account` (with `permission_set`, when given).
    pub fn who(&self, account: &str, permission_set: Option<&str>) -> Vec<Row<'a>> {
        let wanted = |set: &str, acct: &str| {
            acct == account && permission_set.is_none_or(|p| p.eq_ignore_ascii_case(set))
        };
        let mut rows = Vec::new();
        for h in self.ledger.holdings.iter().filter(|h| wanted(&h.permission_set, &h.account_id)) {
            for (user, group) in self.holders(&h.principal) {
                rows.push(self.holding_row(user, group, h));
            }
        }
        for e in self.ledger.entitlements.iter().filter(|e| {
            e.account_id == account && permission_set.is_none_or(|p| e.role_arn.ends_with(p))
        }) {
            for (user, group) in self.holders(&e.principal) {
                rows.push(self.entitlement_row(user, group, e));
            }
        }
        rows.sort_by(|a, b| {
            (a.user, a.permission_set, a.via).cmp(&(b.user, b.permission_set, b.via))
        });
        rows
    }

    /// The persons a principal (`GROUP:<id>`, `USER:<id>`) stands for, each with the group.
    fn holders(&self, principal: &str) -> Vec<(&'a IdcUser, Option<&'a LedgerGroup>)> {
        match principal.split_once(':') {
            Some(("GROUP", id)) => self
                .groups
                .get(id)
                .map(|g| {
                    g.members
                        .iter()
                        .filter_map(|m| self.users.get(m.as_str()).map(|u| (*u, Some(*g))))
                        .collect()
                })
                .unwrap_or_default(),
            Some(("USER", id)) => self.users.get(id).map(|u| vec![(*u, None)]).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Every row, person by person (`f` is called for each: the export streams them).
    pub fn each_row(&self, f: &mut dyn FnMut(Row<'a>)) {
        for user in &self.ledger.users {
            self.rows_of(user, f);
        }
    }

    /// Access not used since `now − days` (never used included), person by person.
    pub fn unused(&self, days: u32, now: DateTime<Utc>) -> Vec<Row<'a>> {
        let since = now - chrono::Duration::days(i64::from(days));
        let mut rows = Vec::new();
        self.each_row(&mut |r| {
            if r.via != Via::Entitlement && r.last_used.is_none_or(|t| t < since) {
                rows.push(r);
            }
        });
        rows
    }

    fn rows_of(&self, user: &'a IdcUser, f: &mut dyn FnMut(Row<'a>)) {
        let groups = self.groups_of.get(user.id.as_str());
        for group in groups.into_iter().flatten() {
            let key = format!("GROUP:{}", group.id);
            for h in self.holdings_of.get(key.as_str()).into_iter().flatten() {
                f(self.holding_row(user, Some(group), h));
            }
            for e in self.entitlements_of.get(key.as_str()).into_iter().flatten() {
                f(self.entitlement_row(user, Some(group), e));
            }
        }
        let key = format!("USER:{}", user.id);
        for h in self.holdings_of.get(key.as_str()).into_iter().flatten() {
            f(self.holding_row(user, None, h));
        }
        for e in self.entitlements_of.get(key.as_str()).into_iter().flatten() {
            f(self.entitlement_row(user, None, e));
        }
    }

    fn holding_row(
        &self,
        user: &'a IdcUser,
        group: Option<&'a LedgerGroup>,
        h: &'a Holding,
    ) -> Row<'a> {
        let set = self.sets.get(h.permission_set.as_str());
        // CloudTrail names the user by Identity Store id (2025 shape) or by user name.
        let by_id =
            self.used.get(&(user.id.as_str(), h.account_id.as_str(), h.permission_set.as_str()));
        let lower = user.user_name.to_lowercase();
        let by_name =
            self.used.get(&(lower.as_str(), h.account_id.as_str(), h.permission_set.as_str()));
        let latest = |f: fn(&Use) -> Option<DateTime<Utc>>| {
            by_id.and_then(|u| f(u)).max(by_name.and_then(|u| f(u)))
        };
        Row {
            user: &user.user_name,
            user_id: &user.id,
            via: if group.is_some() { Via::Group } else { Via::Direct },
            group: group.map(|g| g.display_name.as_str()),
            grant_expires: group.and_then(|g| {
                self.grants.get(&(lower.as_str(), g.display_name.as_str())).copied().flatten()
            }),
            permission_set: &h.permission_set,
            account_id: &h.account_id,
            account_name: self.account_name(&h.account_id),
            why: &h.why,
            tier: h.tier.as_deref(),
            session_duration: set.and_then(|s| s.session_duration.as_deref()),
            last_used: latest(Use::latest),
            last_portal: latest(|u| u.portal),
        }
    }

    fn entitlement_row(
        &self,
        user: &'a IdcUser,
        group: Option<&'a LedgerGroup>,
        e: &'a RoleEntitlement,
    ) -> Row<'a> {
        Row {
            user: &user.user_name,
            user_id: &user.id,
            via: Via::Entitlement,
            group: group.map(|g| g.display_name.as_str()),
            grant_expires: None,
            permission_set: &e.role_arn,
            account_id: &e.account_id,
            account_name: self.account_name(&e.account_id),
            why: "account access manager entitlement",
            tier: None,
            session_duration: None,
            last_used: None,
            last_portal: None,
        }
    }

    fn account_name(&self, id: &str) -> &'a str {
        self.ledger.accounts.get(id).map_or("", String::as_str)
    }
}

/// The CSV header, in [`csv_line`]'s order.
pub const CSV_HEADER: &str = "user,user_id,via,group,grant_expires,permission_set,account_id,account_name,why,tier,session_duration,last_used,last_portal";

/// One row as a CSV line (RFC 4180 quoting), without the line end.
pub fn csv_line(r: &Row<'_>) -> String {
    let t = |d: Option<DateTime<Utc>>| d.map(|d| d.to_rfc3339()).unwrap_or_default();
    [
        r.user.to_owned(),
        r.user_id.to_owned(),
        r.via.as_str().to_owned(),
        r.group.unwrap_or_default().to_owned(),
        t(r.grant_expires),
        r.permission_set.to_owned(),
        r.account_id.to_owned(),
        r.account_name.to_owned(),
        r.why.to_owned(),
        r.tier.unwrap_or_default().to_owned(),
        r.session_duration.unwrap_or_default().to_owned(),
        t(r.last_used),
        t(r.last_portal),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
}

fn csv_field(f: &str) -> String {
    // A leading = + - @ would be a formula in a spreadsheet: quoted and prefixed with '.
    let f = if f.starts_with(['=', '+', '-', '@']) { format!("'{f}") } else { f.to_owned() };
    if f.contains([',', '"', '\n', '\r']) || f.starts_with('\'') {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}

/// What changed between two snapshots: access that appeared and access that went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// When the earlier snapshot was read.
    pub from: Option<DateTime<Utc>>,
    /// When the later one was.
    pub to: Option<DateTime<Utc>>,
    /// New access: `user via group → permission set @ account (why)`.
    pub added: Vec<String>,
    /// Access gone.
    pub removed: Vec<String>,
}

/// The access in `new` not in `old` and the reverse, by person, way, group, set and account.
pub fn diff(old: &Ledger, new: &Ledger) -> Diff {
    let describe = |r: &Row<'_>| {
        let via = match r.group {
            Some(g) => format!("{} {g}", r.via.as_str()),
            None => r.via.as_str().to_owned(),
        };
        format!("{} via {via} → {} @ {} ({})", r.user, r.permission_set, r.account_id, r.why)
    };
    let collect = |ledger: &Ledger| {
        let index = Index::new(ledger);
        let mut map = BTreeMap::new();
        index.each_row(&mut |r| {
            map.insert(r.identity(), describe(&r));
        });
        map
    };
    let (before, after) = (collect(old), collect(new));
    let before_keys: HashSet<_> = before.keys().collect();
    let after_keys: HashSet<_> = after.keys().collect();
    Diff {
        from: Some(old.built_at),
        to: Some(new.built_at),
        added: after
            .iter()
            .filter(|(k, _)| !before_keys.contains(k))
            .map(|(_, v)| v.clone())
            .collect(),
        removed: before
            .iter()
            .filter(|(k, _)| !after_keys.contains(k))
            .map(|(_, v)| v.clone())
            .collect(),
    }
}
