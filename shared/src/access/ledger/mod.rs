//! The access ledger: who can reach which account with which permission set, why, and whether
//! they use it.
//!
//! - [`build`]: one read of the estate (users, groups and their members, permission sets, every
//!   assignment per permission set and provisioned account, the account access manager's
//!   entitlements, active grants, last uses) into a [`Ledger`] snapshot;
//! - [`query`]: the snapshot indexed, expanded into [`Row`]s (person → group → permission set →
//!   account) and asked `who`, `what` and `unused`; CSV and JSON; the diff of two snapshots;
//! - [`export`]: the scheduled export to S3 (CSV, JSON lines, the diff, the snapshot).
//!
//! The snapshot is normalised (holdings per principal, members per group), so it stays small
//! where the expanded rows are not (a read-only set for everyone in 500 accounts is 500 rows a
//! person); rows are made when asked.

pub mod build;
pub mod export;
pub mod query;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ports::{IdcUser, RoleEntitlement};
use crate::records::LastUsed;

pub use build::build;
pub use query::{Row, Via};

/// A group with its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerGroup {
    /// The Identity Store group id.
    pub id: String,
    /// Its display name (the Okta group's name, pushed by SCIM).
    pub display_name: String,
    /// Its members' Identity Store user ids.
    pub members: Vec<String>,
}

/// A permission set as the ledger shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerSet {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Its session duration (ISO-8601, `PT1H`).
    pub session_duration: Option<String>,
    /// The policy declares it.
    pub in_policy: bool,
}

/// One account assignment: a group or a user holds a permission set in an account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Holding {
    /// `GROUP:<id>` or `USER:<id>`.
    pub principal: String,
    /// The permission set's name.
    pub permission_set: String,
    /// The account.
    pub account_id: String,
    /// Why it exists: `rule <name>[, rule <name>]`, `hand-made`, `hand-made (direct)` or
    /// `outside the policy`.
    pub why: String,
    /// The tier: its rules' tiers, else what the group's name says (`aws-admin-*` → `admin`).
    pub tier: Option<String>,
}

/// An active grant: a time-boxed membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantHeld {
    /// The person's login (lower case).
    pub login: String,
    /// The group.
    pub group: String,
    /// When it ends.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A last use in the snapshot: [`LastUsed`] with its key written out (the record keeps those
/// in the store's key, so it cannot travel in a JSON snapshot itself).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Use {
    /// The Identity Store user id, or the lower-case user name.
    pub user: String,
    /// The account.
    pub account_id: String,
    /// The permission set's name.
    pub permission_set: String,
    /// The latest portal request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal: Option<DateTime<Utc>>,
    /// The latest call in the role session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<DateTime<Utc>>,
}

impl Use {
    /// The latest use of either kind.
    pub fn latest(&self) -> Option<DateTime<Utc>> {
        self.portal.max(self.activity)
    }
}

impl From<LastUsed> for Use {
    fn from(u: LastUsed) -> Self {
        Self {
            user: u.user,
            account_id: u.account_id,
            permission_set: u.permission_set,
            portal: u.portal,
            activity: u.activity,
        }
    }
}

/// The estate at one time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// When it was read.
    pub built_at: DateTime<Utc>,
    /// Every Identity Store user.
    pub users: Vec<IdcUser>,
    /// Every group, with members.
    pub groups: Vec<LedgerGroup>,
    /// Every permission set.
    pub permission_sets: Vec<LedgerSet>,
    /// Account id → name.
    pub accounts: BTreeMap<String, String>,
    /// Every account assignment.
    pub holdings: Vec<Holding>,
    /// The account access manager's role entitlements.
    pub entitlements: Vec<RoleEntitlement>,
    /// Grants active when it was read.
    pub grants: Vec<GrantHeld>,
    /// Last uses as CloudTrail showed them.
    pub last_used: Vec<Use>,
    /// API calls the read took (IdC, Organizations, account access manager).
    pub calls: usize,
    /// What could not be read, and what the ledger therefore lacks.
    pub notes: Vec<String>,
    /// The SHA-256 of the policy text that explained it (`None`: no policy), so a snapshot
    /// explained by another policy is read again rather than shown.
    #[serde(default)]
    pub policy_digest: Option<String>,
}

/// The tier a group's name says (`aws-core-*`, `aws-team-*`, `aws-admin-*`), for holdings no
/// rule explains.
pub fn tier_of_name(display_name: &str) -> Option<&'static str> {
    let name = display_name.to_ascii_lowercase();
    [("aws-core-", "core"), ("aws-team-", "team"), ("aws-admin-", "admin")]
        .into_iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, tier)| tier)
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
