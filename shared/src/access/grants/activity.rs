//! What a person did while a grant ran: the CloudTrail calls made with the granted permission
//! sets, by service and action, with every write call listed.
//!
//! IAM Identity Center's roles are `AWSReservedSSO_<permission set>_<hex>`, and the role
//! session is named after the IdC user name, which is the Okta login; CloudTrail's
//! `LookupEvents` by user name finds those calls (management events of the function's region:
//! an organisation trail in S3 holds the rest, and the summary says so).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{GrantsHandler, Ports};
use crate::error::AwsError;
use crate::idc_roles;
use crate::records::{ActivitySummary, Grant};

/// At most this many write calls are listed (the count covers all).
pub const MAX_WRITES_LISTED: usize = 50;

/// CloudTrail events of one user name (the SDK adapter is `adapters::CloudTrailLookup`).
pub trait UserActivity: Send + Sync {
    /// Each event's record (JSON text) of `user_name` between `start` and `end`.
    fn events<'a>(
        &'a self,
        user_name: &'a str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> futures::future::BoxFuture<'a, Result<Vec<String>, AwsError>>;
}

impl ActivitySummary {
    /// One line for an alert.
    pub fn headline(&self) -> String {
        if self.total == 0 {
            return format!(
                "no calls with the granted permission sets{}",
                self.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
            );
        }
        let top: Vec<String> =
            self.calls.iter().take(5).map(|(a, n)| format!("{a} ×{n}")).collect();
        format!("{} calls, {} writes; most: {}", self.total, self.writes.len(), top.join(", "))
    }
}

/// The permission set of an IAM Identity Center role session
/// ([`idc_roles::session_permission_set`]: a look-alike role outside IdC's path is none).
fn permission_set_of(record: &Value) -> Option<&str> {
    let identity = &record["userIdentity"];
    let issuer = &identity["sessionContext"]["sessionIssuer"];
    idc_roles::session_permission_set(
        issuer["userName"].as_str(),
        issuer["arn"].as_str(),
        identity["arn"].as_str(),
    )
}

/// Summarises CloudTrail records: those made in one of `sets` between `start` and `end`.
pub fn summarise(
    records: &[String],
    sets: &[String],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> ActivitySummary {
    let mut calls: BTreeMap<String, u64> = BTreeMap::new();
    let mut writes: Vec<(String, String)> = Vec::new();
    let mut total = 0;
    for text in records {
        let Ok(record) = serde_json::from_str::<Value>(text) else { continue };
        let Some(set) = permission_set_of(&record) else { continue };
        if !sets.iter().any(|s| s == set) {
            continue;
        }
        let time = record["eventTime"].as_str().unwrap_or_default();
        let at: Option<DateTime<Utc>> = time.parse().ok();
        if at.is_none_or(|t| t < start || t > end) {
            continue;
        }
        let service =
            record["eventSource"].as_str().unwrap_or("?").trim_end_matches(".amazonaws.com");
        let action = format!("{service}:{}", record["eventName"].as_str().unwrap_or("?"));
        total += 1;
        *calls.entry(action.clone()).or_default() += 1;
        let read_only = match &record["readOnly"] {
            Value::Bool(b) => *b,
            Value::String(s) => s == "true",
            _ => false,
        };
        if !read_only {
            let account = record["recipientAccountId"].as_str().unwrap_or_default();
            writes.push((time.to_owned(), format!("{time} {action} {account}")));
        }
    }
    writes.sort();
    let mut calls: Vec<(String, u64)> = calls.into_iter().collect();
    calls.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let listed = writes.len().min(MAX_WRITES_LISTED);
    ActivitySummary {
        calls,
        writes: writes.into_iter().take(listed).map(|(_, w)| w).collect(),
        total,
        note: None,
    }
}

impl<P: Ports> GrantsHandler<P> {
    /// The permission sets the policy gives `group`.
    fn sets_of(&self, group: &str) -> Vec<String> {
        let mut sets: Vec<String> = self
            .access
            .policy
            .rules
            .iter()
            .filter(|r| r.groups.matches(group).is_some())
            .flat_map(|r| r.permission_sets.iter().cloned())
            .collect();
        sets.sort();
        sets.dedup();
        sets
    }

    /// The grant's activity summary (None when CloudTrail is not configured).
    pub(crate) async fn activity_of(
        &self,
        grant: &Grant,
        now: DateTime<Utc>,
    ) -> Option<ActivitySummary> {
        let lookup = self.activity.as_ref()?;
        let start = grant.starts_at?;
        let end = grant.expires_at.unwrap_or(now).min(now);
        let sets = self.sets_of(&grant.group);
        Some(match lookup.events(&grant.login, start, end).await {
            Ok(records) => ActivitySummary {
                note: Some("management events of this region (CloudTrail LookupEvents)".into()),
                ..summarise(&records, &sets, start, end)
            },
            Err(e) => ActivitySummary {
                note: Some(format!("CloudTrail could not be read: {e}")),
                ..Default::default()
            },
        })
    }
}
