//! Every record one part of idc-guard writes to the state store and another part reads, as one
//! typed value with its key. Writer and reader use the same type, so a renamed field or key
//! fails to compile instead of failing silently.
//!
//! | record | pk | sk | writer | reader |
//! |---|---|---|---|---|
//! | [`OktaSigninRecord`] | `okta-signin#<login>` | `<time>#<event id>` | access-sync | sign-in checks |
//! | [`Lifecycle`] | `okta-user#<login>` | `lifecycle` | access-sync | sign-in checks |
//! | [`GroupPushFailure`] | `scim-health` | `last-group-push-failure` | access-sync | daily token check |
//! | [`ManagedGroup`] | `managed-group` | group id | access-sync, idc-guard | access-sync, CLI |
//! | [`RevokedSessions`] | `revoked-sessions` | Identity Store user id | access-sync, grants, idc-guard | access-sync, CLI, sign-in checks (`revoked-session-used`) |
//! | [`Grant`] | `grant` | grant id | grants | grants (the CLI and Slack reach it through the grants API) |
//! | event claim ([`EVENT_CLAIM_PK`]) | `okta-event` | event uuid | access-sync | access-sync, catch-up |
//! | [`Review`] | `review` | group id | idc-guard | CLI `review` |
//! | [`Checkpoint`] | `signin-checkpoint` | event source | signin-anomaly | sign-in sweep |
//! | [`LastUsed`] | `last-used` | `<user>#<account>#<permission set>` | signin-anomaly, idc-guard | the access ledger |
//! | [`ReviewDecision`] | `review-decision` | `<time>#<decision id>` | grants | CLI `review --history`, the access ledger |
//! | [`FailedSignin`] | `signin-failures#<hour>` | `<time>#<hash>` | signin-anomaly | sign-in checks (next run) |
//! | baseline ([`baseline_key`]) | `signin-user#<user>` | `baseline` | signin-anomaly | sign-in checks |
//! | [`ScimRotation`] | `scim-token` | `rotation` | scim-token-rotation, idc-guard | daily token check |
//! | [`ConfirmedByHand`] | `scim-token` | `confirmed#<version>` | scim-token-rotation, idc-guard | rotation (testSecret) |
//! | [`OktaHolds`] | `hook-secret` | `okta-holds` | scim-token-rotation | 15-minute hook-secret check |
//! | [`HealthCheckState`] | `health-check` | check id | integration-health | integration-health |
//! | [`SystemLogCheckpoint`] | `health` | `system-log-checkpoint` | integration-health | integration-health, `doctor` |
//! | [`AlertDelivery`] | `alert#<writer>` | alert id | each writer its own | the same writer, on retry |
//!
//! **Writers** are the functions (by binary name) and `idc-guard` (the CLI); each process says
//! which it is once ([`set_writer`]). The deployment holds every writer to the partitions this
//! table gives it (`dynamodb:LeadingKeys` in `template.yaml`; `scripts/iam_lint.py` reads this
//! table and checks the template against it), so a compromised function cannot forge or delete
//! another's records: not a revocation, not a grant, and not an alert-delivery record (each
//! writer's alert records are under `alert#<writer>`, so none can pre-write another's alert to
//! silence it).
//!
//! Two keys whose data belongs to one module are built here too, so that every key string of the
//! table has one home: the sign-in baseline ([`baseline_key`], data `signin::engine::Baseline`)
//! and the per-event claim ([`EVENT_CLAIM_PK`], data written by [`crate::store::claim`]).
//!
//! The stored JSON is unchanged from earlier versions, so a deployed table keeps working. An item
//! that does not read as its record is logged and treated as absent: for managed groups that
//! means "not managed", which can only stop a deletion, never cause one.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::AwsError;
use crate::okta::event::OktaEvent;
use crate::store::{Item, StateStore, now_epoch};

static WRITER: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// The CLI's writer name (and the writer of a process that never said).
pub const CLI_WRITER: &str = "idc-guard";

/// Says once, at start, which writer this process is: a function's binary name
/// (`env!("CARGO_BIN_NAME")` in its `main.rs`). Later calls change nothing.
pub fn set_writer(name: &'static str) {
    let _ = WRITER.set(name);
}

/// This process's writer ([`CLI_WRITER`] unless [`set_writer`] said otherwise).
pub fn writer() -> &'static str {
    WRITER.get().copied().unwrap_or(CLI_WRITER)
}

/// A state-store key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
}

impl Key {
    /// A key from its two parts.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into() }
    }
}

/// A typed state-store record.
pub trait Record: Serialize + DeserializeOwned {
    /// What the record is, for logs.
    const WHAT: &'static str;

    /// Where the record is stored.
    fn key(&self) -> Key;

    /// When the store may drop it (epoch seconds); `None` keeps it.
    fn expires_at(&self) -> Option<i64> {
        None
    }

    /// Fills the fields that are kept only in the key (the data does not repeat them).
    fn restore_key(&mut self, _key: &Key) {}

    /// The item to store.
    fn to_item(&self) -> Item {
        let key = self.key();
        // Serializing these plain records cannot fail (no maps with non-string keys).
        let data = serde_json::to_value(self).unwrap_or_default();
        let item = Item::new(key.pk, key.sk, data);
        match self.expires_at() {
            Some(t) => item.expiring_at(t),
            None => item,
        }
    }

    /// Reads a stored item; `None` (and a warning) when it is not this record.
    fn from_item(item: &Item) -> Option<Self> {
        // Deserialised from the borrowed value: no copy of the item's data.
        match Self::deserialize(&item.data) {
            Ok(mut record) => {
                record.restore_key(&Key::new(&item.pk, &item.sk));
                Some(record)
            }
            Err(e) => {
                tracing::warn!(what = Self::WHAT, pk = %item.pk, sk = %item.sk, error = %e, "unreadable record ignored");
                None
            }
        }
    }
}

/// Reads one record.
pub async fn load<R: Record, Store: StateStore>(
    store: &Store,
    key: &Key,
) -> Result<Option<R>, AwsError> {
    Ok(store.get(&key.pk, &key.sk).await?.as_ref().and_then(R::from_item))
}

/// Reads every live record of a partition, in sort-key order.
pub async fn load_all<R: Record, Store: StateStore>(
    store: &Store,
    pk: &str,
) -> Result<Vec<R>, AwsError> {
    let now = now_epoch();
    Ok(store.query(pk).await?.iter().filter(|i| i.is_live(now)).filter_map(R::from_item).collect())
}

/// Writes one record.
pub async fn save<R: Record, Store: StateStore>(store: &Store, record: &R) -> Result<(), AwsError> {
    store.put(record.to_item()).await
}

/// The sign-in baseline's key (`signin-user#<user>`, `baseline`).
pub fn baseline_key(user: &str) -> Key {
    Key::new(format!("signin-user#{user}"), "baseline")
}

/// The partition of per-event claims (exactly-once processing of Okta events).
pub const EVENT_CLAIM_PK: &str = "okta-event";

/// How long a processed event's claim is kept (access-sync's memory of what it applied). An
/// event older than this may be applied again if queued again: the System Log catch-up never
/// queues one.
pub const EVENT_CLAIM_KEEP_SECONDS: i64 = 7 * 24 * 3600;

// ---------------------------------------------------------------------------------------------
// Okta sign-ins and lifecycle, written by access-sync, read by the sign-in checks.

/// How long Okta sign-ins are kept for correlation.
pub const SIGNIN_KEEP_SECONDS: i64 = 90 * 24 * 3600;

/// Okta event types that are sign-in attempts (successful or not): each becomes an
/// [`OktaSigninRecord`].
pub const SIGNIN_EVENT_TYPES: &[&str] = &[
    "user.session.start",
    "user.authentication.sso",
    "user.authentication.auth_via_mfa",
    "user.authentication.verify",
    "user.authentication.authenticate",
];

/// One Okta sign-in attempt, as Okta reported it (with Okta's own geolocation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OktaSigninRecord {
    /// Okta's user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The user's login, lower-cased (the correlation key).
    pub login: String,
    /// When Okta published the event.
    pub time: DateTime<Utc>,
    /// The Okta event type (`user.session.start`, `user.authentication.sso`, …).
    #[serde(default)]
    pub event_type: Option<String>,
    /// `SUCCESS`, `FAILURE`, `DENY`, …
    #[serde(default)]
    pub outcome: Option<String>,
    /// Okta's reason for the outcome.
    #[serde(default)]
    pub reason: Option<String>,
    /// The client's IP address.
    #[serde(default)]
    pub ip: Option<String>,
    /// Okta's country name for the client.
    #[serde(default)]
    pub country: Option<String>,
    /// Okta's city for the client.
    #[serde(default)]
    pub city: Option<String>,
    /// Okta's latitude for the client.
    #[serde(default)]
    pub lat: Option<f64>,
    /// Okta's longitude for the client.
    #[serde(default)]
    pub lon: Option<f64>,
    /// The app signed in to (display name), for SSO events.
    #[serde(default)]
    pub app: Option<String>,
    /// The app's id.
    #[serde(default)]
    pub app_id: Option<String>,
    /// The Okta event's uuid.
    pub event_id: String,
}

impl OktaSigninRecord {
    /// The partition of one user's sign-ins.
    pub fn partition(login: &str) -> String {
        format!("okta-signin#{login}")
    }

    /// The record of a sign-in event: its actor is the user. `None` without an actor login or
    /// a publication time (a sign-in without a time cannot be correlated).
    pub fn from_event(event: &OktaEvent, event_id: &str) -> Option<Self> {
        let actor = event.actor.as_ref()?;
        let login = actor.alternate_id.as_deref()?.to_lowercase();
        let client = event.client.clone().unwrap_or_default();
        let geo = client.geographical_context.unwrap_or_default();
        let app = event.target_of_type("AppInstance");
        Some(Self {
            user_id: actor.id.clone(),
            login,
            time: event.published?,
            event_type: event.event_type.clone(),
            outcome: event.outcome_result().map(str::to_owned),
            reason: event.outcome.as_ref().and_then(|o| o.reason.clone()),
            ip: client.ip_address,
            country: geo.country,
            city: geo.city,
            lat: geo.geolocation.map(|g| g.lat),
            lon: geo.geolocation.map(|g| g.lon),
            app: app.and_then(|a| a.display_name.clone()),
            app_id: app.and_then(|a| a.id.clone()),
            event_id: event_id.to_owned(),
        })
    }
}

impl Record for OktaSigninRecord {
    const WHAT: &'static str = "okta sign-in";
    fn key(&self) -> Key {
        Key::new(
            Self::partition(&self.login),
            format!("{}#{}", self.time.to_rfc3339_opts(SecondsFormat::Millis, true), self.event_id),
        )
    }
    fn expires_at(&self) -> Option<i64> {
        Some(now_epoch().max(self.time.timestamp()) + SIGNIN_KEEP_SECONDS)
    }
}

/// The status an Okta lifecycle event leaves a user in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleStatus {
    /// Active (activated, reactivated, unsuspended).
    Active,
    /// Deactivated.
    Deactivated,
    /// Suspended.
    Suspended,
    /// Deletion initiated.
    Deleted,
}

impl LifecycleStatus {
    /// The status an Okta event type leaves the user in; `None` for other event types.
    pub fn of_event_type(event_type: &str) -> Option<Self> {
        Some(match event_type {
            "user.lifecycle.deactivate" => Self::Deactivated,
            "user.lifecycle.suspend" => Self::Suspended,
            "user.lifecycle.delete.initiated" => Self::Deleted,
            "user.lifecycle.unsuspend"
            | "user.lifecycle.reactivate"
            | "user.lifecycle.activate" => Self::Active,
            _ => return None,
        })
    }

    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }
}

/// A user's latest Okta lifecycle status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// The user's login, lower-cased (kept in the key).
    #[serde(skip)]
    pub login: String,
    /// The status.
    pub status: LifecycleStatus,
    /// When Okta published the change.
    pub at: DateTime<Utc>,
    /// Okta's user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The Okta event's uuid.
    #[serde(default)]
    pub event_id: String,
}

impl Lifecycle {
    /// The key of a user's lifecycle record.
    pub fn key_of(login: &str) -> Key {
        Key::new(format!("okta-user#{login}"), "lifecycle")
    }

    /// The record of a lifecycle event: its target user. `None` for other event types, or
    /// without a target login or a publication time.
    pub fn from_event(event: &OktaEvent, event_id: &str) -> Option<Self> {
        let status = LifecycleStatus::of_event_type(event.event_type.as_deref()?)?;
        let user = event.target_of_type("User")?;
        Some(Self {
            login: user.alternate_id.as_deref()?.to_lowercase(),
            status,
            at: event.published?,
            user_id: user.id.clone(),
            event_id: event_id.to_owned(),
        })
    }

    /// Deactivated, suspended or deleted.
    pub fn is_inactive(&self) -> bool {
        self.status != LifecycleStatus::Active
    }
}

impl Record for Lifecycle {
    const WHAT: &'static str = "okta lifecycle";
    fn key(&self) -> Key {
        Self::key_of(&self.login)
    }
    fn restore_key(&mut self, key: &Key) {
        self.login = key.pk.strip_prefix("okta-user#").unwrap_or_default().to_owned();
    }
}

// ---------------------------------------------------------------------------------------------
// SCIM health, written by access-sync, read by the daily token check.

/// Okta's last failed group push to IAM Identity Center.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupPushFailure {
    /// When Okta published the failure.
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    /// Okta's reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// The group that was not pushed.
    #[serde(default)]
    pub group: Option<String>,
    /// The Okta event's uuid.
    #[serde(default)]
    pub event_id: String,
}

impl GroupPushFailure {
    /// Its one key.
    pub fn key() -> Key {
        Key::new("scim-health", "last-group-push-failure")
    }
}

impl Record for GroupPushFailure {
    const WHAT: &'static str = "group push failure";
    fn key(&self) -> Key {
        Self::key()
    }
}

// ---------------------------------------------------------------------------------------------
// Access lifecycle: users whose live sessions are denied.

/// A user whose live AWS sessions are denied (the `identitystore:userId` deny statement in the
/// permission sets they could use), until `release_after`: the longest session of those
/// permission sets plus a margin, after which no session from before the revocation can live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedSessions {
    /// The Identity Store user id (kept in the key).
    #[serde(skip)]
    pub user_id: String,
    /// The user name (Okta login).
    pub login: String,
    /// Permission set ARNs holding the deny.
    pub permission_sets: Vec<String>,
    /// Accounts those permission sets are provisioned to for the user's groups.
    pub accounts: Vec<String>,
    /// When the deny was provisioned.
    pub revoked_at: DateTime<Utc>,
    /// When the deny may be removed again.
    pub release_after: DateTime<Utc>,
    /// Why (`okta user.lifecycle.deactivate`, `idc-guard revoke`, …).
    pub reason: String,
    /// The Identity Store groups whose assignments the deny covers (the release waits until the
    /// user is in none of them).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Accounts where provisioning the deny failed: retried by the schedule until covered.
    #[serde(default)]
    pub unprovisioned: Vec<Unprovisioned>,
    /// What the deny could not cover, each with its reason (the evidence of what was left).
    #[serde(default)]
    pub not_covered: Vec<String>,
    /// When the user was first seen with no group or direct assignment left that held the
    /// denied permission sets: the release counts the longest session from here.
    #[serde(default)]
    pub access_ended_at: Option<DateTime<Utc>>,
    /// Every deny this record holds was written because time-boxed grants ended (not for a
    /// deactivation or an incident): a new grant of the user may lift it.
    #[serde(default)]
    pub grant_end: bool,
}

/// One account a revocation's deny has not reached yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unprovisioned {
    /// The permission set.
    pub permission_set_arn: String,
    /// Its name, for people.
    #[serde(default)]
    pub permission_set: String,
    /// The account (empty: every account the set is provisioned to).
    pub account_id: String,
    /// IdC's failure reason.
    pub reason: String,
}

impl RevokedSessions {
    /// The partition of every revocation.
    pub const PK: &'static str = "revoked-sessions";

    /// The key of a user's revocation.
    pub fn key_of(user_id: &str) -> Key {
        Key::new(Self::PK, user_id)
    }
}

impl Record for RevokedSessions {
    const WHAT: &'static str = "revoked sessions";
    fn key(&self) -> Key {
        Self::key_of(&self.user_id)
    }
    fn restore_key(&mut self, key: &Key) {
        self.user_id = key.sk.clone();
    }
}

/// Where a time-boxed grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantStatus {
    /// Waiting for approval.
    Pending,
    /// Approved; the Okta membership is being added (written before the `PUT`, so a crash in
    /// between is finished, or ended, by the next expiry run).
    Activating,
    /// The Okta membership is in place until `expires_at`.
    Active,
    /// Over: the membership was removed (or a later grant kept it).
    Expired,
    /// Refused by an approver, or withdrawn by the person who asked.
    Denied,
}

/// Which front door a person came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Door {
    /// An Okta ID token issued to idc-guard's OIDC app (the CLI's device sign-in).
    Okta,
    /// A signed Slack interaction, mapped to the Okta user by verified e-mail.
    Slack,
}

/// A person's act on a grant (an approval, a denial, a break-glass review).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The person's Okta user id: what persons are compared by.
    pub person_id: String,
    /// Their Okta login, for people to read.
    pub login: String,
    /// How they came.
    pub door: Door,
    /// When.
    pub at: DateTime<Utc>,
}

/// What the person did with the granted permission sets while the grant ran (CloudTrail).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivitySummary {
    /// Calls by `service:Action`, most first.
    pub calls: Vec<(String, u64)>,
    /// Write calls (`readOnly` false), in time order: `time service:Action account`.
    pub writes: Vec<String>,
    /// Calls in all.
    pub total: u64,
    /// What could not be read (the summary is then partial).
    #[serde(default)]
    pub note: Option<String>,
}

/// A time-boxed membership in an Okta group (`idc-guard grant`), its approval and its end.
///
/// Written only by the grants function (the state table's `grant` partition is its alone);
/// every decision re-checks the policy and Okta, so even a record someone forged grants nothing
/// the policy does not allow to the persons it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Its id (kept in the key).
    #[serde(skip)]
    pub id: String,
    /// The beneficiary's Okta login.
    pub login: String,
    /// The beneficiary's Okta user id.
    #[serde(default)]
    pub user_id: String,
    /// The Okta group.
    pub group: String,
    /// Why (an incident or ticket).
    pub reason: String,
    /// How long, in minutes, from activation.
    pub minutes: i64,
    /// Who asked (Okta login).
    pub requested_by: String,
    /// Who asked (Okta user id).
    #[serde(default)]
    pub requester_id: String,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// The approvers' logins, for people to read (see `approvals`).
    #[serde(default)]
    pub approved_by: Option<String>,
    /// Each approval, one per person.
    #[serde(default)]
    pub approvals: Vec<Decision>,
    /// Who denied or withdrew it.
    #[serde(default)]
    pub denied_by: Option<Decision>,
    /// Self-approved under break-glass; reviewed after the fact by an approver.
    #[serde(default)]
    pub break_glass: bool,
    /// The approver who reviewed a break-glass grant.
    #[serde(default)]
    pub reviewed_by: Option<Decision>,
    /// Where it stands.
    pub status: GrantStatus,
    /// When the membership was added.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// When it ends.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// The live-session deny on the group's permission sets is still to be written (it failed
    /// when the grant ended; the next expiry run retries).
    #[serde(default)]
    pub sessions_pending: bool,
    /// The Slack message the request was posted as (`channel`, `ts`).
    #[serde(default)]
    pub slack_message: Option<(String, String)>,
    /// What the person did while the grant ran.
    #[serde(default)]
    pub activity: Option<ActivitySummary>,
}

impl Grant {
    /// The partition of every grant.
    pub const PK: &'static str = "grant";

    /// The key of a grant.
    pub fn key_of(id: &str) -> Key {
        Key::new(Self::PK, id)
    }
}

impl Record for Grant {
    const WHAT: &'static str = "grant";
    fn key(&self) -> Key {
        Self::key_of(&self.id)
    }
    fn restore_key(&mut self, key: &Key) {
        self.id = key.sk.clone();
    }
}

// ---------------------------------------------------------------------------------------------
// Integration health: each check's last state, and the System Log catch-up's place.

/// An integration-health check's last result: alerts are raised once per state change, and a
/// check that passed again starts a new episode (the same problem returning alerts again).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckState {
    /// The check's id (kept in the key).
    #[serde(skip)]
    pub check: String,
    /// `pass`, `warn` or `fail`.
    pub status: String,
    /// Incremented each time the check passes after not passing.
    #[serde(default)]
    pub episode: u32,
    /// When it was last run.
    #[serde(default)]
    pub checked_at: Option<DateTime<Utc>>,
    /// Since when it could not be checked, while it cannot (none once it could again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchecked_since: Option<DateTime<Utc>>,
    /// The alert of its last state that did not pass: closed when the check passes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
}

impl HealthCheckState {
    /// The key of a check's state.
    pub fn key_of(check: &str) -> Key {
        Key::new("health-check", check)
    }
}

impl Record for HealthCheckState {
    const WHAT: &'static str = "health check state";
    fn key(&self) -> Key {
        Self::key_of(&self.check)
    }
    fn restore_key(&mut self, key: &Key) {
        self.check = key.sk.clone();
    }
}

/// Where the Okta System Log catch-up continues: the `next` link of the last page read
/// (Okta's polling cursor), saved after every page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemLogCheckpoint {
    /// The `next` link (a path and query on the org).
    pub next: String,
    /// When it was saved.
    #[serde(default)]
    pub saved_at: Option<DateTime<Utc>>,
}

impl SystemLogCheckpoint {
    /// Its one key.
    pub fn key() -> Key {
        Key::new("health", "system-log-checkpoint")
    }
}

impl Record for SystemLogCheckpoint {
    const WHAT: &'static str = "System Log checkpoint";
    fn key(&self) -> Key {
        Self::key()
    }
}

// ---------------------------------------------------------------------------------------------
// Access: managed groups and reviews.

/// A group idc-guard manages (keyed by its IdC group id, so a rename keeps it managed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedGroup {
    /// The IdC group id (kept in the key).
    #[serde(skip)]
    pub group_id: String,
    /// Its display name when last seen.
    #[serde(default)]
    pub display_name: String,
}

impl ManagedGroup {
    /// The partition of managed groups.
    pub const PK: &'static str = "managed-group";

    /// The managed groups as id → display name.
    pub async fn load_map<Store: StateStore>(
        store: &Store,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        Ok(load_all::<Self, Store>(store, Self::PK)
            .await?
            .into_iter()
            .map(|g| (g.group_id, g.display_name))
            .collect())
    }
}

impl Record for ManagedGroup {
    const WHAT: &'static str = "managed group";
    fn key(&self) -> Key {
        Key::new(Self::PK, &self.group_id)
    }
    fn restore_key(&mut self, key: &Key) {
        self.group_id = key.sk.clone();
    }
}

/// When a person last reviewed a managed group's members (`idc-guard access review --mark`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The IdC group id (kept in the key).
    #[serde(skip)]
    pub group_id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The group's display name then.
    #[serde(default)]
    pub name: String,
}

impl Review {
    /// The key of a group's review.
    pub fn key_of(group_id: &str) -> Key {
        Key::new("review", group_id)
    }
}

impl Record for Review {
    const WHAT: &'static str = "review";
    fn key(&self) -> Key {
        Self::key_of(&self.group_id)
    }
    fn restore_key(&mut self, key: &Key) {
        self.group_id = key.sk.clone();
    }
}

// ---------------------------------------------------------------------------------------------
// The access ledger: last use, and review decisions.

/// When a person last used a permission set in an account, as CloudTrail showed it: through the
/// access portal (`Federate`, `GetRoleCredentials`) and by calls made in the role session
/// (`AWSReservedSSO_<set>_…`). The user is the Identity Store user id where the record carried
/// one (CloudTrail's 2025 shape), else the lower-case user name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastUsed {
    /// The user (kept in the key).
    #[serde(skip)]
    pub user: String,
    /// The account (kept in the key).
    #[serde(skip)]
    pub account_id: String,
    /// The permission set's name (kept in the key).
    #[serde(skip)]
    pub permission_set: String,
    /// The latest portal use (role credentials or console federation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal: Option<DateTime<Utc>>,
    /// The latest call made in the role session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<DateTime<Utc>>,
    /// The user name, where it was known with the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

impl LastUsed {
    /// The partition of every last use.
    pub const PK: &'static str = "last-used";

    /// The latest use of either kind.
    pub fn latest(&self) -> Option<DateTime<Utc>> {
        self.portal.max(self.activity)
    }

    /// Keeps the later of each time (a re-read or an older file never moves one back).
    pub fn merge(&mut self, other: &LastUsed) {
        self.portal = self.portal.max(other.portal);
        self.activity = self.activity.max(other.activity);
        if self.user_name.is_none() {
            self.user_name.clone_from(&other.user_name);
        }
    }
}

impl Record for LastUsed {
    const WHAT: &'static str = "last use";
    fn key(&self) -> Key {
        Key::new(Self::PK, format!("{}#{}#{}", self.user, self.account_id, self.permission_set))
    }
    fn expires_at(&self) -> Option<i64> {
        // A year past the latest use: "unused for N days" needs the old ones too.
        self.latest().map(|t| t.timestamp() + 400 * 24 * 3600)
    }
    fn restore_key(&mut self, key: &Key) {
        // User names may hold `#`; account ids and permission set names cannot.
        let mut parts = key.sk.rsplitn(3, '#');
        self.permission_set = parts.next().unwrap_or_default().to_owned();
        self.account_id = parts.next().unwrap_or_default().to_owned();
        self.user = parts.next().unwrap_or_default().to_owned();
    }
}

/// A review decision applied: who decided, when, and what changed in Okta. Written only by the
/// grants function (the only holder of an Okta credential that changes membership), after Okta
/// accepted the change or refused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDecision {
    /// The decision's id (kept in the key, after its time).
    #[serde(skip)]
    pub id: String,
    /// When it was decided (kept in the key).
    #[serde(skip)]
    pub at: DateTime<Utc>,
    /// The reviewer: an Okta user id established by the grants API.
    pub reviewer: String,
    /// The reviewer's login.
    pub reviewer_login: String,
    /// `remove` or `keep`.
    pub decision: String,
    /// The person whose access was decided: Okta user id and login.
    pub user_id: String,
    /// Their login.
    pub login: String,
    /// The Okta group (its name, the IdC group's display name).
    pub group: String,
    /// Why (the packet's reasons, and the reviewer's words).
    pub reason: String,
    /// What changed in Okta (`membership removed`), or why nothing did.
    pub outcome: String,
}

impl ReviewDecision {
    /// The partition of every review decision.
    pub const PK: &'static str = "review-decision";

    /// The decision whole (its id and time too), as the API and the CLI show it.
    pub fn view(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["id"] = self.id.clone().into();
        v["at"] = self.at.to_rfc3339_opts(SecondsFormat::Secs, true).into();
        v
    }
}

impl Record for ReviewDecision {
    const WHAT: &'static str = "review decision";
    fn key(&self) -> Key {
        Key::new(
            Self::PK,
            format!("{}#{}", self.at.to_rfc3339_opts(SecondsFormat::Millis, true), self.id),
        )
    }
    fn restore_key(&mut self, key: &Key) {
        if let Some((at, id)) = key.sk.split_once('#') {
            self.id = id.to_owned();
            if let Ok(t) = DateTime::parse_from_rfc3339(at) {
                self.at = t.with_timezone(&Utc);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-in sweep.

/// How far the `LookupEvents` sweep of one event source has fully read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The event source (kept in the key).
    #[serde(skip)]
    pub source: String,
    /// Everything before this time has been read.
    pub until: DateTime<Utc>,
}

impl Checkpoint {
    /// The key of a source's checkpoint.
    pub fn key_of(source: &str) -> Key {
        Key::new("signin-checkpoint", source)
    }
}

impl Record for Checkpoint {
    const WHAT: &'static str = "sweep checkpoint";
    fn key(&self) -> Key {
        Self::key_of(&self.source)
    }
    fn restore_key(&mut self, key: &Key) {
        self.source = key.sk.clone();
    }
}

/// How long failed sign-ins are kept: long enough for any counting window and for a re-read of
/// the same files days later to find them.
pub const FAILED_SIGNIN_KEEP_SECONDS: i64 = 8 * 24 * 3600;

/// A failed sign-in the windowed detectors counted, so the next run (another invocation, the next
/// `scan --state`) continues their windows and never counts it twice. One item per failure, in a
/// partition per hour, so concurrent writers never overwrite each other and a run reads only the
/// hours it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedSignin {
    /// When.
    pub time: DateTime<Utc>,
    /// CloudTrail's event id.
    pub event_id: String,
    /// The caller's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<std::net::IpAddr>,
    /// Which kind of sign-in failed.
    pub kind: FailureKind,
    /// The credential step (`CredentialVerification`, `CredentialChallenge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// A root user's console sign-in.
    #[serde(default)]
    pub root: bool,
    /// An IAM user's console sign-in.
    #[serde(default)]
    pub iam_user: bool,
    /// The user name the record carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The identity-store user id the record carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// A stable hash of the event's identity (id, time, address), kept in the key.
    #[serde(skip)]
    pub identity: u64,
}

/// The kind of a [`FailedSignin`] (stored as `credential` or `console`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// An IdC-directory credential check (`CredentialVerification`, `CredentialChallenge`).
    Credential,
    /// A console sign-in (root or IAM user).
    Console,
    /// A call to IAM Identity Center's SCIM endpoint (`step` holds the operation).
    Scim,
}

impl FailedSignin {
    /// The partition of the failures of the hour `time` falls in.
    pub fn partition(time: DateTime<Utc>) -> String {
        format!("signin-failures#{}", time.format("%Y-%m-%dT%H"))
    }
}

impl Record for FailedSignin {
    const WHAT: &'static str = "failed sign-in";
    fn key(&self) -> Key {
        Key::new(
            Self::partition(self.time),
            format!(
                "{}#{:016x}",
                self.time.to_rfc3339_opts(SecondsFormat::Millis, true),
                self.identity
            ),
        )
    }
    fn expires_at(&self) -> Option<i64> {
        Some(now_epoch() + FAILED_SIGNIN_KEEP_SECONDS)
    }
    fn restore_key(&mut self, key: &Key) {
        self.identity = key
            .sk
            .rsplit_once('#')
            .and_then(|(_, h)| u64::from_str_radix(h, 16).ok())
            .unwrap_or_default();
    }
}

// ---------------------------------------------------------------------------------------------
// Alerts.

/// How long an alert's delivery record is kept (repeats within it are not re-sent).
pub const ALERT_KEEP_SECONDS: i64 = 90 * 24 * 3600;

/// One sink's state for one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkState {
    /// Not yet accepted by the sink.
    Pending,
    /// Accepted by the sink.
    Sent,
}

/// The delivery record of one alert id: each sink's state. Absent `sinks` is a record from
/// before per-sink tracking, which was sent to every sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDelivery {
    /// The alert id (kept in the key).
    #[serde(skip)]
    pub id: String,
    /// The detector that raised it.
    #[serde(default)]
    pub detector: String,
    /// Each sink's state; `None` in records from before per-sink tracking.
    #[serde(default)]
    pub sinks: Option<BTreeMap<String, SinkState>>,
    /// The alert as sent (its JSON form), for whoever reads the table.
    #[serde(default)]
    pub alert: serde_json::Value,
}

impl AlertDelivery {
    /// One sink's state.
    pub fn state(&self, sink: &str) -> Option<SinkState> {
        self.sinks.as_ref().and_then(|s| s.get(sink)).copied()
    }

    /// The key of an alert's delivery record: under this process's writer.
    pub fn key_of(id: &str) -> Key {
        Key::new(format!("alert#{}", writer()), id)
    }
}

impl Record for AlertDelivery {
    const WHAT: &'static str = "alert delivery";
    fn key(&self) -> Key {
        Self::key_of(&self.id)
    }
    fn expires_at(&self) -> Option<i64> {
        Some(now_epoch() + ALERT_KEEP_SECONDS)
    }
    fn restore_key(&mut self, key: &Key) {
        self.id = key.sk.clone();
    }
}

// ---------------------------------------------------------------------------------------------
// Rotation.

/// The SCIM token's last finished rotation (the daily check reads it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScimRotation {
    /// The version that became AWSCURRENT.
    pub version: String,
    /// The version before it.
    #[serde(default)]
    pub previous: Option<String>,
    /// When finishSecret completed.
    pub finished_at: DateTime<Utc>,
}

impl ScimRotation {
    /// Its one key.
    pub fn key() -> Key {
        Key::new("scim-token", "rotation")
    }
}

impl Record for ScimRotation {
    const WHAT: &'static str = "scim rotation";
    fn key(&self) -> Key {
        Self::key()
    }
}

/// A person's word that a pending SCIM token was entered in Okta by hand (no Okta API token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedByHand {
    /// The secret version (kept in the key).
    #[serde(skip)]
    pub version: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (the local user name).
    #[serde(default)]
    pub by: String,
}

impl ConfirmedByHand {
    /// The key of a version's confirmation.
    pub fn key_of(version: &str) -> Key {
        Key::new("scim-token", format!("confirmed#{version}"))
    }
}

impl Record for ConfirmedByHand {
    const WHAT: &'static str = "confirmed by hand";
    fn key(&self) -> Key {
        Self::key_of(&self.version)
    }
    fn restore_key(&mut self, key: &Key) {
        self.version = key.sk.strip_prefix("confirmed#").unwrap_or_default().to_owned();
    }
}

/// Which version of the hook secret Okta was last given (setSecret, finishSecret, a restore).
/// When that version is neither AWSCURRENT nor AWSPENDING any more, a rotation was cancelled
/// after Okta got the new value: the hook refuses Okta's requests until Okta is set back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OktaHolds {
    /// The secret version.
    pub version: String,
    /// When Okta was given it.
    pub at: DateTime<Utc>,
}

impl OktaHolds {
    /// Its one key.
    pub fn key() -> Key {
        Key::new("hook-secret", "okta-holds")
    }
}

impl Record for OktaHolds {
    const WHAT: &'static str = "okta holds";
    fn key(&self) -> Key {
        Self::key()
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
