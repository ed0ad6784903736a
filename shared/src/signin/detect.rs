//! Detectors that need no geolocation: `root-signin`, `root-signin-failed`,
//! `console-login-no-mfa`, `brute-force`, `console-brute-force` (and
//! `console-brute-force-success`), `console-username-guessing` and `password-spraying`.
//! A burst (failures no more than a window apart) is one finding: its id is the burst's first
//! event, and a burst that grows graver raises the same id at a higher severity (an update). Activities are fed in time order; state is per user, account and
//! network within the counting windows. Failed sign-ins counted are stored (see
//! [`super::history::FailureMemory`]) and replayed by the next run, so windows continue across runs. Alert ids derive from the events
//! that make the finding, so scanning the same input twice yields the same ids.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::model::{Activity, Kind};
use crate::alert::{Alert, Severity};

/// The windowed detectors' thresholds.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// IdC-directory credential failures that make a brute-force finding...
    pub brute_force_failures: usize,
    /// ...within this window.
    pub brute_force_window: Duration,
    /// Failed console sign-ins of one IAM user or root that make a `console-brute-force`...
    pub console_failures: usize,
    /// ...within this window.
    pub console_failures_window: Duration,
    /// Failed console sign-ins with unknown user names from one network that make a
    /// `console-username-guessing` finding...
    pub username_guessing_failures: usize,
    /// ...within this window.
    pub username_guessing_window: Duration,
    /// Distinct users failing from one network that make a `password-spraying` finding...
    pub spraying_users: usize,
    /// ...within this window.
    pub spraying_window: Duration,
    /// Failed SCIM calls in one account that make a `scim-token-rejected` finding...
    pub scim_failures: usize,
    /// ...within this window.
    pub scim_failures_window: Duration,
    /// Okta's networks (empty: a SCIM call's address is not checked).
    pub okta_networks: std::sync::Arc<Vec<ipnet::IpNet>>,
    /// Okta's SCIM user agent contains one of these (empty: not checked).
    pub scim_user_agents: Vec<String>,
    /// Roles whose changes to IAM Identity Center are idc-guard's own (name or ARN contains).
    pub idc_guard_roles: Vec<String>,
    /// The groups the access policy manages (IdC group id → name), when known (the deployment's
    /// state): an assignment change for one of them is drift the reconcile will fight; one for
    /// another principal is another tool's or a hand-made assignment.
    pub managed_groups: Option<std::sync::Arc<std::collections::BTreeMap<String, String>>>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            brute_force_failures: 10,
            brute_force_window: Duration::minutes(6),
            console_failures: 10,
            console_failures_window: Duration::minutes(6),
            username_guessing_failures: 5,
            username_guessing_window: Duration::minutes(30),
            spraying_users: 5,
            spraying_window: Duration::minutes(30),
            scim_failures: 5,
            scim_failures_window: Duration::minutes(10),
            okta_networks: std::sync::Arc::new(Vec::new()),
            scim_user_agents: vec!["Okta".into()],
            idc_guard_roles: vec!["AccessSyncFunctionRole".into()],
            managed_groups: None,
        }
    }
}

/// The network an address belongs to for replay checks: its /24 (IPv4) or /48 (IPv6), so a
/// client moving within one provider's block is not a second network.
pub fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// [`network`] as a number: an IPv4 /24 tagged by the top bit, or an IPv6 /48 prefix.
pub fn network_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => (1u128 << 127) | u128::from(u32::from(v4) & 0xffff_ff00),
        IpAddr::V6(v6) => u128::from(v6) >> 80,
    }
}

fn network_of_key(key: u128) -> String {
    if key >> 127 == 1 {
        network(IpAddr::V4(std::net::Ipv4Addr::from(key as u32)))
    } else {
        network(IpAddr::V6(std::net::Ipv6Addr::from(key << 80)))
    }
}

/// The detectors that count events in sliding windows (brute force, Okta failures).
#[derive(Default)]
pub struct Detectors {
    /// Their thresholds.
    pub thresholds: Thresholds,
    failures: HashMap<String, VecDeque<(DateTime<Utc>, String)>>,
    /// Failed console sign-ins per account and user (root or IAM user).
    console_failures: HashMap<String, VecDeque<(DateTime<Utc>, String)>>,
    /// A `console-brute-force` finding per account and user, until a success follows it.
    brute_forced: HashMap<String, (DateTime<Utc>, Vec<String>)>,
    /// Failed root sign-ins per account: (time, network key), and the burst they belong to.
    root_failures: HashMap<String, VecDeque<(DateTime<Utc>, u128)>>,
    /// The current burst of failures per key: its first event's key, its last time, the
    /// severity it was last reported at.
    bursts: HashMap<String, Burst>,
    /// Failed console sign-ins with unknown user names per account and network.
    guessing: HashMap<String, VecDeque<(DateTime<Utc>, String)>>,
    /// Failed sign-ins per network: (time, user, event id).
    spraying: HashMap<u128, VecDeque<(DateTime<Utc>, String, String)>>,
    /// Failed SCIM calls per account.
    scim_failures: HashMap<String, VecDeque<(DateTime<Utc>, String)>>,
    /// `scim-token-foreign-use` keys reported in this run (network, user agent, day).
    scim_reported: std::collections::HashSet<String>,
}

impl Detectors {
    /// Detectors with these thresholds.
    pub fn new(thresholds: Thresholds) -> Self {
        Self { thresholds, ..Default::default() }
    }

    /// Feeds one activity (in time order); returns the findings it completes.
    pub fn observe(&mut self, a: &Activity) -> Vec<Alert> {
        let mut out = Vec::new();
        let user = a.user_name.as_deref().or(a.user_id.as_deref());
        if let Kind::ConsoleLogin { success, root, iam_user, .. } = &a.kind
            && (*root || *iam_user)
        {
            out.extend(if *success {
                self.console_success(a, *root)
            } else {
                self.console_failure(a, *root)
            });
        }
        match &a.kind {
            Kind::ConsoleLogin { success: true, root: true, mfa_used, mfa_known, .. } => out.push(Alert::new(
                "root-signin",
                &a.identity(),
                a.time,
                if *mfa_used || !*mfa_known { Severity::High } else { Severity::Critical },
                format!("Root user console sign-in to account {}", a.account_id.as_deref().unwrap_or("?")),
                Some("root".into()),
                format!(
                    "The root user signed in from {}{}.",
                    a.source_ip.map(|i| i.to_string()).unwrap_or_else(|| "an unknown address".into()),
                    match (*mfa_known, *mfa_used) {
                        (false, _) => " (the record does not say whether MFA was used)",
                        (true, true) => "",
                        (true, false) => " without MFA",
                    }
                ),
                json!({"source_ip": a.source_ip, "source_address": a.source_text, "user_agent": a.user_agent,
                    "mfa_used": if *mfa_known { json!(mfa_used) } else { json!(null) }}),
                vec![a.event_id.clone()],
                "Confirm with the account owner. Root should be used only for the few tasks that need it; rotate the root password and MFA if the sign-in was not expected.",
            )),
            // Federated sessions (a SAML provider, `AWSReservedSSO_*`) do their MFA at the
            // identity provider: never "without MFA".
            Kind::ConsoleLogin {
                success: true,
                iam_user: true,
                mfa_used: false,
                mfa_known: true,
                identity_center_role: false,
                federated: false,
                ..
            } => {
                out.push(Alert::new(
                    "console-login-no-mfa",
                    &a.identity(),
                    a.time,
                    Severity::Medium,
                    format!("IAM user {} signed in to the console without MFA", user.unwrap_or("?")),
                    user.map(str::to_owned),
                    "An IAM user (not an IAM Identity Center session) signed in to the console without MFA.".to_owned(),
                    json!({"source_ip": a.source_ip, "source_address": a.source_text, "account": a.account_id}),
                    vec![a.event_id.clone()],
                    "Require MFA for the IAM user, or move the person to IAM Identity Center and remove the console password.",
                ));
            }
            Kind::IdcChange(change) if change.success => {
                let super::model::IdcChange { source, action, caller_role, caller_arn, principal, .. } =
                    &**change;
                out.extend(identity_source_changed(a, source, action));
                if &**source == "sso.amazonaws.com" {
                    let caller = caller_role.as_deref().or(caller_arn.as_deref()).unwrap_or("?");
                    let own = idc_guards_own(&self.thresholds.idc_guard_roles, change);
                    if !own && !matches!(&**action, "AssociateDirectory" | "DisassociateDirectory") {
                        out.extend(self.out_of_band_change(a, action, caller, principal.as_deref()));
                    }
                }
            }
            Kind::ScimCall { operation, success } => {
                out.extend(self.scim_foreign_use(a, operation, *success));
                if !success {
                    out.extend(self.scim_rejected(a));
                }
            }
            Kind::Credential { success: false, .. } => {
                if let (Some(u), Some(ip)) = (user, a.source_ip) {
                    out.extend(self.spraying(a, u, ip));
                }
                if let Some(u) = user {
                    let window = self.thresholds.brute_force_window;
                    let q = self.failures.entry(u.to_owned()).or_default();
                    if let Some((first, ids)) =
                        count_in_window(q, a, window, self.thresholds.brute_force_failures)
                    {
                        out.push(Alert::new(
                            "brute-force",
                            &first,
                            a.time,
                            Severity::High,
                            format!("{} failed IAM Identity Center credential checks for {u}", ids.len()),
                            Some(u.to_owned()),
                            format!("{} failures within {} minutes.", ids.len(), window.num_minutes()),
                            json!({"failures": ids.len(), "source_ip": a.source_ip}),
                            ids,
                            "Check whether the user is locked out or under attack; block the source network if it is not theirs.",
                        ));
                    }
                }
            }
            _ => {}
        }
        out
    }
}

impl Detectors {
    /// `scim-token-foreign-use`: a call to IdC's SCIM endpoint from outside Okta's published
    /// networks, or with a user agent that is not Okta's. One finding per network, user agent
    /// and day: a stolen token used all day is one alert.
    fn scim_foreign_use(&mut self, a: &Activity, operation: &str, success: bool) -> Option<Alert> {
        let t = &self.thresholds;
        let outside = a
            .source_ip
            .filter(|_| !t.okta_networks.is_empty())
            .filter(|ip| !t.okta_networks.iter().any(|n| n.contains(ip)));
        let agent = a.user_agent.as_deref();
        let foreign_agent = !t.scim_user_agents.is_empty()
            && agent.is_some_and(|ua| {
                let ua = ua.to_lowercase();
                !t.scim_user_agents.iter().any(|m| ua.contains(&m.to_lowercase()))
            });
        if outside.is_none() && !foreign_agent {
            return None;
        }
        let mut reasons = Vec::new();
        if let Some(ip) = outside {
            reasons.push(format!("{ip} is outside Okta's published IP ranges"));
        }
        if foreign_agent {
            reasons.push(format!("the user agent {:?} is not Okta's", agent.unwrap_or_default()));
        }
        let net = a.source_ip.map(network).unwrap_or_else(|| "-".into());
        let key = format!("{net}\n{}\n{}", agent.unwrap_or("-"), a.time.date_naive());
        // Its id is the key's: a later run finds the same id (delivered once); within a run,
        // only the first call makes it.
        if !self.scim_reported.insert(key.clone()) {
            return None;
        }
        Some(Alert::new(
            "scim-token-foreign-use",
            &key,
            a.time,
            Severity::Critical,
            format!(
                "IAM Identity Center's SCIM token used from outside Okta in account {}",
                a.account_id.as_deref().unwrap_or("?")
            ),
            None,
            format!(
                "{operation} ({}) to the SCIM endpoint: {}.",
                if success { "succeeded" } else { "failed" },
                reasons.join("; ")
            ),
            json!({"operation": operation, "success": success, "source_ip": a.source_ip,
                "user_agent": agent, "account": a.account_id}),
            vec![a.event_id.clone()],
            "If this was not Okta, treat the SCIM token as stolen: generate a new token in IAM Identity Center (Settings > Automatic provisioning), stage it with `idc-guard scim-token stage`, delete the old one, and review the users and groups changed through SCIM in CloudTrail. If it was Okta, refresh the IP ranges file (scripts/okta-ip-ranges.sh) or add its user agent to [signin] scim_user_agents.",
        ))
    }

    /// `scim-token-rejected`: a burst of failed SCIM calls in one account (an expired or revoked
    /// token, or someone guessing).
    fn scim_rejected(&mut self, a: &Activity) -> Option<Alert> {
        let (window, threshold) =
            (self.thresholds.scim_failures_window, self.thresholds.scim_failures);
        let account = a.account_id.as_deref().unwrap_or_default().to_owned();
        let q = self.scim_failures.entry(account.clone()).or_default();
        let (first, ids) = count_in_window(q, a, window, threshold)?;
        Some(Alert::new(
            "scim-token-rejected",
            &first,
            a.time,
            Severity::High,
            format!("{} failed SCIM calls in account {account}", ids.len()),
            None,
            format!(
                "{} calls to IAM Identity Center's SCIM endpoint failed within {} minutes (last: {}). Okta's provisioning has probably stopped.",
                ids.len(),
                window.num_minutes(),
                a.error_code.as_deref().unwrap_or("an error")
            ),
            json!({"failures": ids.len(), "error_code": a.error_code, "source_ip": a.source_ip}),
            ids,
            "Run `idc-guard scim-token status`. An expired or revoked token: generate a new one in IAM Identity Center and stage it with `idc-guard scim-token stage`. Calls not from Okta: see scim-token-foreign-use.",
        ))
    }
}

/// Changes to who can sign in to IAM Identity Center, or how: the identity source, the external
/// IdP's configuration, automatic provisioning (SCIM) and its tokens, MFA settings and devices.
/// (`sso-directory.amazonaws.com`, and the directory association on `sso.amazonaws.com`.)
const IDENTITY_SOURCE_CHANGES: &[(&str, Severity)] = &[
    ("AssociateDirectory", Severity::Critical),
    ("DisassociateDirectory", Severity::Critical),
    ("CreateExternalIdPConfigurationForDirectory", Severity::Critical),
    ("UpdateExternalIdPConfigurationForDirectory", Severity::Critical),
    ("DeleteExternalIdPConfigurationForDirectory", Severity::Critical),
    ("EnableExternalIdPConfigurationForDirectory", Severity::Critical),
    ("DisableExternalIdPConfigurationForDirectory", Severity::Critical),
    ("CreateBearerToken", Severity::High),
    ("DeleteBearerToken", Severity::High),
    ("CreateProvisioningTenant", Severity::High),
    ("DeleteProvisioningTenant", Severity::High),
    ("PutMfaDeviceManagementForDirectory", Severity::High),
    ("UpdateMfaDeviceManagementForDirectory", Severity::High),
    ("DeleteMfaDeviceForUser", Severity::High),
    ("UpdatePasswordPolicy", Severity::Medium),
];

/// `identity-source-changed`: one finding per change (each is rare and each matters).
/// Whether a change was made by idc-guard itself: by a session of an IAM role that `roles`
/// names, as a role ARN exactly, or as a role name exactly or in the form CloudFormation gives a
/// template's role (`<stack>-<name>-<suffix>`). Only the role the session was issued by counts:
/// never the session name (`assumed-role/<role>/<session>`, which the caller chooses when it
/// assumes any role) and never an IAM user's or root's name, so a caller cannot pass for
/// idc-guard by naming itself after it.
fn idc_guards_own(roles: &[String], change: &super::model::IdcChange) -> bool {
    let Some(name) = change.caller_role.as_deref() else { return false };
    let generated = |r: &str| {
        name.rsplit_once('-').is_some_and(|(head, suffix)| {
            !suffix.is_empty()
                && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
                && head.strip_suffix(r).is_some_and(|stack| stack.len() > 1 && stack.ends_with('-'))
        })
    };
    roles.iter().any(|r| {
        if r.starts_with("arn:") {
            change.caller_role_arn.as_deref() == Some(r.as_str())
        } else {
            name == r || generated(r)
        }
    })
}

fn identity_source_changed(a: &Activity, source: &str, action: &str) -> Option<Alert> {
    let severity = IDENTITY_SOURCE_CHANGES.iter().find(|(n, _)| *n == action).map(|(_, s)| *s)?;
    if source == "sso.amazonaws.com" && !action.ends_with("Directory") {
        return None;
    }
    let who = a.user_name.as_deref().or(a.user_id.as_deref()).unwrap_or("someone");
    Some(Alert::new(
        "identity-source-changed",
        &a.identity(),
        a.time,
        severity,
        format!("IAM Identity Center: {action} by {who}"),
        a.user_name.as_deref().map(str::to_owned),
        format!(
            "{who} called {action} ({source}) at {} from {}: who can sign in to AWS, or how, changed (identity source, external IdP, SCIM provisioning or its token, MFA).",
            a.time.to_rfc3339(),
            a.source_ip
                .map(|i| i.to_string())
                .or_else(|| a.source_text.as_deref().map(str::to_owned))
                .unwrap_or_else(|| "an unknown address".into())
        ),
        json!({"action": action, "source": source, "account": a.account_id, "source_ip": a.source_ip, "permission_set": a.permission_set}),
        vec![a.event_id.clone()],
        "Confirm the change with its author. An unexpected identity source or IdP change lets someone else sign in as anyone: revert it, rotate the SCIM token (`idc-guard scim-token status`), and review sign-ins since. A removed MFA device: confirm with the user before they register a new one.",
    ))
}

/// The user name CloudTrail writes for a failed console sign-in whose user does not exist.
pub const HIDDEN_USER: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// A run of failures no more than a window apart: one finding, whose severity can rise.
#[derive(Debug, Clone)]
struct Burst {
    key: String,
    first_time: DateTime<Utc>,
    last: DateTime<Utc>,
    reported: Option<Severity>,
}

impl Detectors {
    /// Places a failure in its burst (a new one when the last failure under `scope` is more
    /// than `window` ago); returns the burst's key and, when `severity` is graver than what the
    /// burst was reported at, `true` (report it, under the same key).
    fn burst(
        &mut self,
        scope: &str,
        a: &Activity,
        window: Duration,
        severity: Option<Severity>,
    ) -> (String, bool) {
        let fresh = || Burst {
            key: run_key(&a.event_id, a.time),
            first_time: a.time,
            last: a.time,
            reported: None,
        };
        let b = self.bursts.entry(scope.to_owned()).or_insert_with(fresh);
        if a.time - b.last > window || a.time < b.first_time {
            *b = fresh();
        }
        b.last = b.last.max(a.time);
        let report = severity.is_some_and(|s| b.reported.is_none_or(|r| s > r));
        if report {
            b.reported = severity;
        }
        (b.key.clone(), report)
    }
}

/// Adds the activity to a sliding window of failures; when the window holds `threshold` of
/// them, empties it and returns the finding's key (its first event's id and time, so exports
/// that repeat event ids never merge two runs) and the run's event ids.
fn count_in_window(
    q: &mut VecDeque<(DateTime<Utc>, String)>,
    a: &Activity,
    window: Duration,
    threshold: usize,
) -> Option<(String, Vec<String>)> {
    q.push_back((a.time, a.event_id.clone()));
    while q.front().is_some_and(|(t, _)| a.time - *t > window) {
        q.pop_front();
    }
    if q.len() < threshold {
        return None;
    }
    let key = q.front().map(|(t, id)| run_key(id, *t)).unwrap_or_default();
    Some((key, q.drain(..).map(|(_, id)| id).collect()))
}

/// The key of a finding made of a run of events: its first event's id and time.
fn run_key(first_id: &str, first_time: DateTime<Utc>) -> String {
    format!("{first_id}\n{}", first_time.timestamp_millis())
}

/// The account and user a console sign-in is about (`root` for the root user).
fn console_key(a: &Activity, root: bool) -> (String, String) {
    let account = a.account_id.as_deref().unwrap_or_default().to_owned();
    let user =
        if root { "root" } else { a.user_name.as_deref().or(a.user_id.as_deref()).unwrap_or("?") };
    let user = user.to_owned();
    (account, user)
}

impl Detectors {
    /// A failed root or IAM-user console sign-in: `root-signin-failed`, `console-brute-force`,
    /// `password-spraying`.
    fn console_failure(&mut self, a: &Activity, root: bool) -> Vec<Alert> {
        let mut out = Vec::new();
        let (account, user) = console_key(a, root);
        if root {
            // Any failed root sign-in is worth a look; more of them, or from several networks
            // within an hour, more so.
            let q = self.root_failures.entry(account.clone()).or_default();
            q.push_back((a.time, a.source_ip.map(network_key).unwrap_or_default()));
            while q.front().is_some_and(|(t, _)| a.time - *t > Duration::hours(1)) {
                q.pop_front();
            }
            let networks = q.iter().map(|(_, n)| *n).collect::<BTreeSet<u128>>().len();
            let failures = q.len();
            let severity = if failures >= 10 {
                Severity::Critical
            } else if failures >= 3 || networks >= 2 {
                Severity::High
            } else {
                Severity::Medium
            };
            // One burst of guessing is one finding: raised at its first failure, raised again
            // (same id) only when it grows graver.
            let (key, report) =
                self.burst(&format!("root\n{account}"), a, Duration::hours(1), Some(severity));
            if report {
                out.push(Alert::new(
                "root-signin-failed",
                &key,
                a.time,
                severity,
                format!("Failed root console sign-in to account {account}"),
                Some("root".into()),
                format!(
                    "A root console sign-in failed from {} ({} failure(s) from {} network(s) in the last hour).",
                    a.source_ip.map(|i| i.to_string()).unwrap_or_else(|| "an unknown address".into()),
                    failures,
                    networks
                ),
                json!({"account": account, "source_ip": a.source_ip, "source_address": a.source_text, "user_agent": a.user_agent, "failures_last_hour": failures, "networks_last_hour": networks}),
                vec![a.event_id.clone()],
                "Root should fail to sign in only when its owner mistypes: confirm with the owner. If not them, make sure root has MFA and a strong password, and look for password-reset emails to the root address.",
            ));
            }
        }
        if !root && user == HIDDEN_USER {
            // No such user: not one person's password being guessed, but user names. Keyed by
            // account and network; each attempt counts as a distinct user for spraying.
            out.extend(self.username_guessing(a, &account));
            if let Some(ip) = a.source_ip {
                out.extend(self.spraying(a, &format!("unknown user ({})", a.event_id), ip));
            }
            return out;
        }
        let window = self.thresholds.console_failures_window;
        let key = format!("{account}\n{user}");
        let q = self.console_failures.entry(key.clone()).or_default();
        if let Some((first, ids)) = count_in_window(q, a, window, self.thresholds.console_failures)
        {
            out.push(Alert::new(
                "console-brute-force",
                &first,
                a.time,
                Severity::High,
                format!("{} failed console sign-ins for {user} in account {account}", ids.len()),
                Some(user.clone()),
                format!("{} console password failures within {} minutes.", ids.len(), window.num_minutes()),
                json!({"account": account, "failures": ids.len(), "source_ip": a.source_ip, "root": root}),
                ids.clone(),
                "Someone is guessing this console password: make sure the user has MFA, block the source network if it is not theirs, and watch for a success (reported on its own).",
            ));
            self.brute_forced.insert(key, (a.time, ids));
        }
        if let Some(ip) = a.source_ip {
            out.extend(self.spraying(a, &user, ip));
        }
        out
    }

    /// `console-username-guessing`: failed console sign-ins with user names that do not exist,
    /// from one network in one account. One finding per burst; graver as it grows.
    fn username_guessing(&mut self, a: &Activity, account: &str) -> Option<Alert> {
        let (window, threshold) =
            (self.thresholds.username_guessing_window, self.thresholds.username_guessing_failures);
        let net = a.source_ip.map(network).unwrap_or_else(|| "unknown network".into());
        let scope = format!("{account}\n{net}");
        let q = self.guessing.entry(scope.clone()).or_default();
        q.push_back((a.time, a.event_id.clone()));
        while q.front().is_some_and(|(t, _)| a.time - *t > window) {
            q.pop_front();
        }
        let attempts = q.len();
        let ids: Vec<String> = q.iter().map(|(_, id)| id.clone()).collect();
        let severity = match attempts {
            n if n >= threshold.max(1) * 4 => Some(Severity::High),
            n if n >= threshold.max(1) => Some(Severity::Medium),
            _ => None,
        };
        let (key, report) = self.burst(&format!("guessing\n{scope}"), a, window, severity);
        if !report {
            return None;
        }
        Some(Alert::new(
            "console-username-guessing",
            &key,
            a.time,
            severity.unwrap_or(Severity::Medium),
            format!(
                "{attempts} console sign-ins with unknown user names from {net} in account {account}"
            ),
            None,
            format!(
                "{attempts} failed console sign-ins for user names that do not exist in account {account} (CloudTrail hides them as {HIDDEN_USER}) came from {net} within {} minutes: someone is guessing user names.",
                window.num_minutes()
            ),
            json!({"account": account, "network": net, "source_ip": a.source_ip, "attempts": attempts, "user_agent": a.user_agent}),
            ids,
            "Block the source network if it is not yours; make sure every IAM user with a console password has MFA, and prefer IAM Identity Center to IAM users.",
        ))
    }

    /// `out-of-band-change`: an account assignment or permission set changed by anyone but
    /// idc-guard's own role. One finding per caller per hour of changes (an IaC apply is one).
    fn out_of_band_change(
        &mut self,
        a: &Activity,
        action: &str,
        caller: &str,
        principal: Option<&str>,
    ) -> Option<Alert> {
        // Compared with what the policy manages: an assignment change for a managed group is
        // drift (the reconcile and this caller fight over it); for another principal, another
        // tool's or a hand-made assignment outside the policy.
        let managed = match (&self.thresholds.managed_groups, principal) {
            (Some(groups), Some(p)) => Some(groups.get(p).cloned()),
            _ => None,
        };
        let context = match &managed {
            Some(Some(name)) => format!(" for {name}, a group the access policy manages: drift the next reconcile undoes"),
            Some(None) => " for a principal the access policy does not manage (another tool's or hand-made access)".to_owned(),
            None => String::new(),
        };
        let grave = action.starts_with("Delete")
            || action.starts_with("Detach")
            || action.contains("Policy")
            || action.contains("Boundary")
            || matches!(managed, Some(Some(_)));
        let severity = if grave { Severity::High } else { Severity::Medium };
        let (key, report) =
            self.burst(&format!("oob\n{caller}"), a, Duration::hours(1), Some(severity));
        if !report {
            return None;
        }
        Some(Alert::new(
            "out-of-band-change",
            &key,
            a.time,
            severity,
            format!("IAM Identity Center changed outside idc-guard: {action} by {caller}"),
            a.user_name.as_deref().map(str::to_owned),
            format!(
                "{caller} called {action} at {}{}{context}. If this is infrastructure as code, it competes with idc-guard's reconcile; if not, it is drift, or someone granting themselves access. Later changes by the same caller within an hour belong to this finding.",
                a.time.to_rfc3339(),
                a.account_id.as_deref().map(|acc| format!(" in account {acc}")).unwrap_or_default()
            ),
            json!({"action": action, "caller": caller, "account": a.account_id, "source_ip": a.source_ip, "user": a.user_name,
                "principal": principal, "managed_group": managed.clone().flatten(),
                "policy_compared": managed.is_some()}),
            vec![a.event_id.clone()],
            "Run `idc-guard plan` to see what differs from the policy; put wanted access in the policy (or `managed = false` for sets another tool owns), and find who made unwanted changes. Add a tool's role to `[signin] idc_guard_roles` only if it is idc-guard itself.",
        ))
    }

    /// A successful root or IAM-user console sign-in right after a `console-brute-force`.
    fn console_success(&mut self, a: &Activity, root: bool) -> Vec<Alert> {
        let (account, user) = console_key(a, root);
        let key = format!("{account}\n{user}");
        let Some((at, mut ids)) = self.brute_forced.remove(&key) else { return Vec::new() };
        if a.time - at > Duration::hours(1) {
            return Vec::new();
        }
        ids.push(a.event_id.clone());
        vec![Alert::new(
            "console-brute-force-success",
            &a.event_id,
            a.time,
            Severity::Critical,
            format!(
                "Console sign-in for {user} in account {account} right after a password-guessing run"
            ),
            Some(user.clone()),
            format!(
                "{} failed console sign-ins, then a success at {} from {}.",
                ids.len() - 1,
                a.time.to_rfc3339(),
                a.source_ip.map(|i| i.to_string()).unwrap_or_else(|| "an unknown address".into())
            ),
            json!({"account": account, "source_ip": a.source_ip, "failures": ids.len() - 1, "root": root}),
            ids,
            "Treat the account as compromised until the user confirms the sign-in: revoke its sessions, reset the password and MFA, and review what the session did in CloudTrail.",
        )]
    }

    /// `password-spraying`: failures for many distinct users from one network.
    fn spraying(&mut self, a: &Activity, user: &str, ip: IpAddr) -> Vec<Alert> {
        let window = self.thresholds.spraying_window;
        let net = network_key(ip);
        let q = self.spraying.entry(net).or_default();
        q.push_back((a.time, user.to_owned(), a.event_id.clone()));
        while q.front().is_some_and(|(t, _, _)| a.time - *t > window) {
            q.pop_front();
        }
        let users: BTreeSet<&str> = q.iter().map(|(_, u, _)| u.as_str()).collect();
        if users.len() < self.thresholds.spraying_users {
            return Vec::new();
        }
        let users: Vec<String> = users.into_iter().map(str::to_owned).collect();
        let ids: Vec<String> = q.iter().map(|(_, _, id)| id.clone()).collect();
        let first = q.front().map(|(t, _, id)| run_key(id, *t)).unwrap_or_default();
        let alert = Alert::new(
            "password-spraying",
            &first,
            a.time,
            Severity::High,
            format!("Failed sign-ins for {} users from {}", users.len(), network_of_key(net)),
            None,
            format!(
                "{} failed sign-ins for {} distinct users from one network within {} minutes.",
                ids.len(),
                users.len(),
                window.num_minutes()
            ),
            json!({"network": network_of_key(net), "users": users, "failures": ids.len()}),
            ids,
            "One address trying many users is password spraying: block the network at the edge, check that every targeted user has MFA, and look for any success from it.",
        );
        q.clear();
        vec![alert]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::sources::parse;

    fn activity(fixture: &str) -> Activity {
        parse(fixture.as_bytes()).activities.remove(0)
    }

    const ROOT: &str = include_str!("../../../events/cloudtrail/console-login-root.json");
    const SSO_CONSOLE: &str =
        include_str!("../../../events/cloudtrail/console-login-assumed-sso-role.json");

    #[test]
    fn root_signin_fires_and_an_identity_center_console_session_does_not() {
        let mut d = Detectors::default();
        let alerts = d.observe(&activity(ROOT));
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            (alerts[0].detector.as_str(), alerts[0].severity),
            ("root-signin", Severity::High)
        );
        assert!(
            d.observe(&activity(SSO_CONSOLE)).is_empty(),
            "AWSReservedSSO_* sessions report no MFA by design"
        );
        // Without MFA it is critical; a record that does not say is not taken for "with MFA".
        for (mfa, severity, says) in [
            (Some("No"), Severity::Critical, " without MFA."),
            (Some("Yes"), Severity::High, "from 192.0.2.200."),
            (None, Severity::High, "(the record does not say whether MFA was used)."),
        ] {
            let a = with(ROOT, |v| match mfa {
                Some(m) => v["additionalEventData"]["MFAUsed"] = serde_json::json!(m),
                None => v["additionalEventData"] = serde_json::json!({}),
            });
            let alert = Detectors::default().observe(&a).remove(0);
            assert_eq!(alert.severity, severity, "{mfa:?}");
            assert!(alert.summary.ends_with(says), "{mfa:?}: {}", alert.summary);
        }
    }

    #[test]
    fn console_login_without_mfa_only_for_iam_users() {
        let mut iam: serde_json::Value = serde_json::from_str(SSO_CONSOLE).unwrap();
        iam["userIdentity"] =
            json!({"type": "IAMUser", "userName": "deploy-bot", "accountId": "111122223333"});
        let mut d = Detectors::default();
        let alerts = d.observe(&activity(&iam.to_string()));
        assert_eq!(alerts[0].detector, "console-login-no-mfa");
        iam["additionalEventData"]["MFAUsed"] = json!("Yes");
        iam["eventID"] = json!("other");
        assert!(d.observe(&activity(&iam.to_string())).is_empty());
    }

    fn failure(i: i64) -> Activity {
        let mut a =
            activity(include_str!("../../../events/cloudtrail/idc-signin-legacy-shape.json"));
        a.kind = Kind::Credential { step: "CredentialVerification".into(), success: false };
        a.time += Duration::seconds(i * 30);
        a.event_id = format!("fail-{i}");
        a
    }

    #[test]
    fn brute_force_needs_ten_failures_within_six_minutes() {
        let mut d = Detectors::default();
        let fired: Vec<_> = (0..10).flat_map(|i| d.observe(&failure(i))).collect();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].event_ids.len(), 10);
        // Nine failures, then a pause longer than the window: quiet.
        let mut d = Detectors::default();
        let quiet: Vec<_> = (0..9).chain(20..29).flat_map(|i| d.observe(&failure(i))).collect();
        assert!(quiet.is_empty());
    }

    #[test]
    fn the_same_input_twice_gives_the_same_alert_ids() {
        let ids = |_: ()| {
            let mut d = Detectors::default();
            (0..10).flat_map(|i| d.observe(&failure(i))).map(|a| a.id).collect::<Vec<_>>()
        };
        assert_eq!(ids(()), ids(()));
    }

    const IAM_FAILURE: &str =
        include_str!("../../../events/cloudtrail/console-login-iam-user-failure.json");

    /// The fixture failure of `user` (or root) at +`seconds`, from `ip`, with its own id.
    fn console_failure(user: Option<&str>, seconds: i64, ip: &str, id: &str) -> Activity {
        let mut a = activity(IAM_FAILURE);
        if let Kind::ConsoleLogin { root, iam_user, .. } = &mut a.kind {
            *root = user.is_none();
            *iam_user = user.is_some();
        }
        a.user_name = user.map(Into::into);
        a.time += Duration::seconds(seconds);
        a.source_ip = Some(ip.parse().unwrap());
        a.event_id = id.to_owned();
        a
    }

    fn detectors(alerts: &[Alert]) -> Vec<&str> {
        alerts.iter().map(|a| a.detector.as_str()).collect()
    }

    #[test]
    fn a_failed_root_signin_is_reported_and_grows_with_count_and_networks() {
        let mut d = Detectors::default();
        let first = d.observe(&console_failure(None, 0, "203.0.113.45", "r1"));
        assert_eq!(detectors(&first), ["root-signin-failed"]);
        assert_eq!(first[0].severity, Severity::Medium);
        let second = d.observe(&console_failure(None, 60, "192.0.2.9", "r2"));
        assert_eq!(second[0].severity, Severity::High, "a second network");
        assert_eq!(first[0].id, second[0].id, "the same burst, graver: an update of one finding");
        // The burst goes on at the same severity: nothing new.
        assert!(d.observe(&console_failure(None, 90, "192.0.2.9", "r3")).is_empty());
        // An IAM user's failure is not a root finding.
        let iam = d.observe(&console_failure(Some("deploy-bot"), 120, "203.0.113.45", "u1"));
        assert!(!detectors(&iam).contains(&"root-signin-failed"));
        // The hour is inclusive: a second network exactly an hour after the first still makes
        // the burst graver (an attacker pacing tries to the hour gains nothing).
        let mut d = Detectors::default();
        let first = d.observe(&console_failure(None, 0, "203.0.113.45", "h1"));
        let hour = d.observe(&console_failure(None, 3600, "192.0.2.9", "h2"));
        assert_eq!(detectors(&hour), ["root-signin-failed"]);
        assert_eq!((hour[0].severity, &hour[0].id), (Severity::High, &first[0].id));
    }

    #[test]
    fn ten_failures_spanning_exactly_the_window_are_brute_force() {
        let paced = |step: i64| {
            let mut d = Detectors::default();
            (0..10)
                .flat_map(|i| {
                    let mut a = failure(0);
                    a.time += Duration::seconds(i * step);
                    a.event_id = format!("paced-{i}");
                    d.observe(&a)
                })
                .collect::<Vec<_>>()
        };
        // Six minutes from the first to the tenth: inside; a second more a try: outside.
        assert_eq!(detectors(&paced(40)), ["brute-force"]);
        assert!(paced(41).is_empty());
    }

    #[test]
    fn console_brute_force_then_the_success_that_follows_it() {
        let mut d = Detectors::default();
        let mut fired = Vec::new();
        for i in 0..10 {
            fired.extend(d.observe(&console_failure(
                Some("deploy-bot"),
                i * 20,
                "203.0.113.45",
                &format!("f{i}"),
            )));
        }
        assert_eq!(detectors(&fired), ["console-brute-force"]);
        assert_eq!(fired[0].event_ids.len(), 10);
        let mut success = console_failure(Some("deploy-bot"), 400, "203.0.113.45", "ok");
        if let Kind::ConsoleLogin { success: s, mfa_used, .. } = &mut success.kind {
            (*s, *mfa_used) = (true, true);
        }
        let after = d.observe(&success);
        assert_eq!(detectors(&after), ["console-brute-force-success"]);
        assert_eq!(after[0].severity, Severity::Critical);
        assert_eq!(after[0].event_ids.last().map(String::as_str), Some("ok"));
        // "Right after" is an hour from the run's last failure, that hour included.
        for (delay, follows) in [(3600, true), (3601, false)] {
            let mut d = Detectors::default();
            for i in 0..10 {
                d.observe(&console_failure(
                    Some("deploy-bot"),
                    i * 20,
                    "203.0.113.45",
                    &format!("g{i}"),
                ));
            }
            let mut success =
                console_failure(Some("deploy-bot"), 180 + delay, "203.0.113.45", "ok");
            if let Kind::ConsoleLogin { success: s, mfa_used, .. } = &mut success.kind {
                (*s, *mfa_used) = (true, true);
            }
            assert_eq!(!d.observe(&success).is_empty(), follows, "{delay} s after");
        }
    }

    #[test]
    fn every_change_to_what_a_permission_set_allows_is_graver_than_a_grant() {
        for (action, severity) in [
            ("CreateAccountAssignment", Severity::Medium),
            ("CreatePermissionSet", Severity::Medium),
            ("ProvisionPermissionSet", Severity::Medium),
            ("DeleteAccountAssignment", Severity::High),
            ("AttachManagedPolicyToPermissionSet", Severity::High),
            ("DetachManagedPolicyFromPermissionSet", Severity::High),
            ("PutInlinePolicyToPermissionSet", Severity::High),
            ("AttachCustomerManagedPolicyReferenceToPermissionSet", Severity::High),
            ("PutPermissionsBoundaryToPermissionSet", Severity::High),
            ("DeletePermissionsBoundaryFromPermissionSet", Severity::High),
        ] {
            let a = with(ASSIGNMENT, |v| v["eventName"] = serde_json::json!(action));
            let alerts = Detectors::default().observe(&a);
            assert_eq!(detectors(&alerts), ["out-of-band-change"], "{action}");
            assert_eq!(alerts[0].severity, severity, "{action}");
        }
    }

    #[test]
    fn a_user_mistyping_a_few_times_is_no_brute_force() {
        let mut d = Detectors::default();
        let mut fired = Vec::new();
        // Nine failures in six minutes, then more only after the window: quiet.
        for (i, t) in (0..9).map(|i| i * 30).chain((0..9).map(|i| 1_000 + i * 30)).enumerate() {
            fired.extend(d.observe(&console_failure(
                Some("jane.doe"),
                t,
                "198.51.100.30",
                &format!("m{i}"),
            )));
        }
        assert!(fired.is_empty(), "{:?}", detectors(&fired));
    }

    #[test]
    fn password_spraying_is_many_users_failing_from_one_network() {
        let fired = spray(["203.0.113.45"; 5]);
        assert_eq!(detectors(&fired), ["password-spraying"]);
        assert_eq!(fired[0].event_ids.len(), 5);
        // Look-alike: five users each failing once from their own networks.
        let quiet = spray(["198.51.0.7", "198.51.1.7", "198.51.2.7", "198.51.3.7", "198.51.4.7"]);
        assert!(quiet.is_empty(), "{:?}", detectors(&quiet));
        // Paced so the fifth user comes exactly the half-hour window after the first: spraying.
        assert_eq!(detectors(&spray_every(450, ["203.0.113.45"; 5])), ["password-spraying"]);
    }

    /// Five users failing from `addresses` (one each, a minute apart).
    fn spray(addresses: [&str; 5]) -> Vec<Alert> {
        spray_every(60, addresses)
    }

    /// Five users failing from `addresses`, one each, `step` seconds apart.
    fn spray_every(step: i64, addresses: [&str; 5]) -> Vec<Alert> {
        let mut d = Detectors::default();
        ["ana", "ben", "cho", "dev", "eli"]
            .iter()
            .zip(addresses)
            .enumerate()
            .flat_map(|(i, (user, ip))| {
                d.observe(&console_failure(Some(user), i as i64 * step, ip, &format!("r{i}")))
            })
            .collect()
    }

    #[test]
    fn spraying_from_rotating_addresses_in_one_block_is_one_network_named_by_its_block() {
        // The attacker rotates through their /24 or /48 so that no address fails twice.
        for (addresses, block) in [
            (
                ["203.0.113.5", "203.0.113.77", "203.0.113.140", "203.0.113.201", "203.0.113.254"],
                "203.0.113.0/24",
            ),
            (
                [
                    "2001:db8:aa:1::1",
                    "2001:db8:aa:ffff::2",
                    "2001:db8:aa::3",
                    "2001:db8:aa:5:6::7",
                    "2001:db8:aa:9::8",
                ],
                "2001:db8:aa::/48",
            ),
        ] {
            let fired = spray(addresses);
            assert_eq!(detectors(&fired), ["password-spraying"], "{block}");
            assert_eq!(fired[0].evidence["network"], block);
            assert!(fired[0].title.ends_with(&format!("from {block}")), "{}", fired[0].title);
        }
        // Look-alikes: the next /48 over is another network, and an IPv4 /24 is never the IPv6
        // /48 whose 48 bits read the same number (1.2.3.0/24 and 0:102:300::/48).
        let two_blocks = [
            "2001:db8:aa::1",
            "2001:db8:ab::1",
            "2001:db8:aa::2",
            "2001:db8:ab::2",
            "2001:db8:aa::3",
        ];
        assert!(spray(two_blocks).is_empty());
        let same_bits = ["1.2.3.4", "0:102:300::1", "1.2.3.5", "0:102:300::2", "1.2.3.6"];
        assert!(spray(same_bits).is_empty());
    }

    #[test]
    fn a_federated_console_signin_is_never_without_mfa() {
        let federated =
            activity(include_str!("../../../events/cloudtrail/console-login-federated-iam.json"));
        assert!(matches!(
            federated.kind,
            Kind::ConsoleLogin { federated: true, iam_user: true, mfa_used: false, .. }
        ));
        assert!(Detectors::default().observe(&federated).is_empty());
    }

    #[test]
    fn records_without_an_event_id_get_distinct_stable_ids_from_their_content() {
        let mut owner: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        owner.as_object_mut().unwrap().remove("eventID");
        let mut attacker = owner.clone();
        attacker["eventTime"] = json!("2026-11-21T04:40:00Z");
        attacker["sourceIPAddress"] = json!("203.0.113.99");
        let (a, b) = (activity(&owner.to_string()), activity(&attacker.to_string()));
        assert!(a.event_id.starts_with("content-") && a.event_id != b.event_id);
        assert_eq!(activity(&owner.to_string()).event_id, a.event_id, "stable on re-read");
        let mut d = Detectors::default();
        let ids: BTreeSet<String> =
            d.observe(&a).into_iter().chain(d.observe(&b)).map(|x| x.id).collect();
        assert_eq!(ids.len(), 2, "the attacker's root sign-in does not hide behind the owner's");
    }

    #[test]
    fn a_repeated_event_id_with_other_content_is_another_finding() {
        let owner = activity(ROOT);
        let mut attacker = owner.clone();
        attacker.time += Duration::hours(3);
        attacker.source_ip = Some("203.0.113.99".parse().unwrap());
        let mut d = Detectors::default();
        let first = d.observe(&owner);
        let second = d.observe(&attacker);
        assert_ne!(first[0].id, second[0].id, "same eventID, other time and address");
        assert_eq!(Detectors::default().observe(&owner)[0].id, first[0].id, "stable on re-read");
    }

    #[test]
    fn one_burst_of_root_password_guessing_is_one_finding_whose_severity_rises() {
        // Defect: a burst of 15 failed root sign-ins gave 15 findings.
        let mut d = Detectors::default();
        let mut fired = Vec::new();
        for i in 0..15 {
            fired.extend(d.observe(&console_failure(
                None,
                i * 30,
                "203.0.113.45",
                &format!("r{i}"),
            )));
        }
        // (console-brute-force, the password-guessing finding, is its own: one for the run.)
        fired.retain(|a| a.detector == "root-signin-failed");
        let ids: BTreeSet<&str> = fired.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids.len(), 1, "one finding: {fired:#?}");
        let severities: Vec<Severity> = fired.iter().map(|a| a.severity).collect();
        assert_eq!(severities, [Severity::Medium, Severity::High, Severity::Critical]);
        // Hours later, a new burst: a new finding.
        let later = d.observe(&console_failure(None, 4 * 3600, "203.0.113.45", "late"));
        assert_eq!(later.len(), 1);
        assert_ne!(later[0].id, fired[0].id);
    }

    #[test]
    fn failures_for_user_names_that_do_not_exist_are_username_guessing_not_brute_force() {
        // Defect: HIDDEN_DUE_TO_SECURITY_REASONS was a user: ten such failures became "console
        // brute force for HIDDEN_DUE_TO_SECURITY_REASONS", and guessing from one address never
        // reached password-spraying (it counted as one user).
        let mut d = Detectors::default();
        let mut fired = Vec::new();
        for i in 0..25 {
            fired.extend(d.observe(&console_failure(
                Some(HIDDEN_USER),
                i * 20,
                "203.0.113.45",
                &format!("h{i}"),
            )));
        }
        let names = detectors(&fired);
        assert!(!names.contains(&"console-brute-force"), "{names:?}");
        let guessing: Vec<&Alert> =
            fired.iter().filter(|a| a.detector == "console-username-guessing").collect();
        assert_eq!(guessing.len(), 2, "raised at 5, updated at 20: {names:?}");
        assert_eq!(guessing[0].id, guessing[1].id);
        assert_eq!(
            (guessing[0].severity, guessing[1].severity),
            (Severity::Medium, Severity::High)
        );
        assert_eq!(
            (&guessing[0].evidence["attempts"], &guessing[1].evidence["attempts"]),
            (&5.into(), &20.into())
        );
        assert!(guessing[0].user.is_none());
        // Paced to span exactly the half-hour window: still one burst of guessing.
        let mut d = Detectors::default();
        let paced: Vec<Alert> = (0..5)
            .flat_map(|i| {
                d.observe(&console_failure(
                    Some(HIDDEN_USER),
                    i * 450,
                    "203.0.113.45",
                    &format!("p{i}"),
                ))
            })
            .collect();
        assert!(detectors(&paced).contains(&"console-username-guessing"), "{paced:#?}");
        // Each attempt is a distinct user for spraying: five from one network is spraying.
        assert!(names.contains(&"password-spraying"), "{names:?}");
        // The same failures from many networks: no guessing finding for any one of them.
        let mut d = Detectors::default();
        let mut spread = Vec::new();
        for i in 0..10 {
            spread.extend(d.observe(&console_failure(
                Some(HIDDEN_USER),
                i * 20,
                &format!("198.51.{i}.7"),
                &format!("s{i}"),
            )));
        }
        assert!(!detectors(&spread).contains(&"console-username-guessing"), "{spread:#?}");
        assert!(!detectors(&spread).contains(&"console-brute-force"));
    }

    const ASSIGNMENT: &str =
        include_str!("../../../events/cloudtrail/idc/sso-create-account-assignment-by-admin.json");
    const EXTERNAL_IDP: &str =
        include_str!("../../../events/cloudtrail/idc/sso-directory-update-external-idp.json");

    fn with(fixture: &str, f: impl FnOnce(&mut serde_json::Value)) -> Activity {
        let mut v: serde_json::Value = serde_json::from_str(fixture).unwrap();
        f(&mut v);
        activity(&v.to_string())
    }

    #[test]
    fn an_assignment_made_outside_idc_guard_is_out_of_band_change_once_per_caller_burst() {
        let mut d = Detectors::default();
        let first = d.observe(&activity(ASSIGNMENT));
        assert_eq!(detectors(&first), ["out-of-band-change"]);
        assert_eq!(first[0].severity, Severity::Medium);
        assert!(first[0].title.contains("AWSReservedSSO_IdentityAdmin"), "{}", first[0].title);
        // Fifty more by the same caller within the hour (an IaC apply): the same finding.
        for i in 0..50 {
            let more = d.observe(&with(ASSIGNMENT, |v| {
                v["eventID"] = serde_json::json!(format!("more-{i}"));
                v["eventTime"] = serde_json::json!(format!("2026-11-22T21:{:02}:00Z", 5 + i % 50));
            }));
            assert!(more.is_empty(), "{more:#?}");
        }
        // A delete by the same caller is graver: the same finding, updated.
        let delete = d.observe(&with(ASSIGNMENT, |v| {
            v["eventName"] = serde_json::json!("DeleteAccountAssignment");
            v["eventID"] = serde_json::json!("delete-1");
            v["eventTime"] = serde_json::json!("2026-11-22T21:59:00Z");
        }));
        assert_eq!(delete[0].id, first[0].id);
        assert_eq!(delete[0].severity, Severity::High);
    }

    #[test]
    fn a_burst_ends_after_a_quiet_window_and_never_swallows_an_earlier_change() {
        let at = |time: &str, id: &str| {
            with(ASSIGNMENT, |v| {
                v["eventTime"] = serde_json::json!(time);
                v["eventID"] = serde_json::json!(id);
            })
        };
        let mut d = Detectors::default();
        let first = d.observe(&at("2026-11-22T21:04:37Z", "a"));
        assert_eq!(detectors(&first), ["out-of-band-change"]);
        // Another change at the first one's second, and one exactly an hour after: the burst.
        assert!(d.observe(&at("2026-11-22T21:04:37Z", "b")).is_empty());
        assert!(d.observe(&at("2026-11-22T22:04:37Z", "c")).is_empty());
        // A second more than an hour of quiet: a new burst, a new finding.
        let next = d.observe(&at("2026-11-22T23:04:38Z", "d"));
        assert_eq!(detectors(&next), ["out-of-band-change"]);
        assert_ne!(next[0].id, first[0].id);
        // A change from before the burst began (an older log file read late) is not hidden in
        // it: its own finding.
        let earlier = d.observe(&at("2026-11-22T20:30:00Z", "e"));
        assert_eq!(detectors(&earlier), ["out-of-band-change"]);
        assert!(earlier[0].id != first[0].id && earlier[0].id != next[0].id);
    }

    #[test]
    fn idc_guards_own_changes_failed_calls_and_portal_use_are_not_out_of_band() {
        let mut d = Detectors::default();
        let own = with(ASSIGNMENT, |v| {
            v["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] =
                serde_json::json!("idc-guard-AccessSyncFunctionRole-1A2B3C4D5E6F");
            v["userIdentity"]["arn"] = serde_json::json!(
                "arn:aws:sts::999988887777:assumed-role/idc-guard-AccessSyncFunctionRole-1A2B3C4D5E6F/idc-guard-access-sync"
            );
        });
        assert!(d.observe(&own).is_empty());
        let refused =
            with(ASSIGNMENT, |v| v["errorCode"] = serde_json::json!("AccessDeniedException"));
        assert!(d.observe(&refused).is_empty());
        let portal = with(ASSIGNMENT, |v| v["eventName"] = serde_json::json!("GetRoleCredentials"));
        assert!(matches!(portal.kind, Kind::Portal { .. }));
        assert!(d.observe(&portal).is_empty());
    }

    /// The assignment fixture made by a session of `role` (name, ARN) named `session`.
    fn by_role(role: &str, role_arn: &str, session: &str) -> Activity {
        with(ASSIGNMENT, |v| {
            let account = role_arn.split(':').nth(4).unwrap().to_owned();
            let ui = &mut v["userIdentity"];
            ui["arn"] =
                serde_json::json!(format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"));
            ui["sessionContext"]["sessionIssuer"]["userName"] = serde_json::json!(role);
            ui["sessionContext"]["sessionIssuer"]["arn"] = serde_json::json!(role_arn);
        })
    }

    #[test]
    fn a_caller_named_after_idc_guards_role_is_still_out_of_band() {
        let fires = |thresholds: Thresholds, a: &Activity| {
            detectors(&Detectors::new(thresholds).observe(a)) == ["out-of-band-change"]
        };
        let default = Thresholds::default;
        // Any role, with the session name the caller picks when assuming it.
        let session = by_role(
            "AdminRole",
            "arn:aws:iam::999988887777:role/AdminRole",
            "AccessSyncFunctionRole",
        );
        assert!(fires(default(), &session));
        // An IAM user named after it (no role session at all).
        let user = with(ASSIGNMENT, |v| {
            v["userIdentity"] = serde_json::json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE",
                "arn": "arn:aws:iam::999988887777:user/AccessSyncFunctionRole",
                "accountId": "999988887777", "userName": "AccessSyncFunctionRole"});
        });
        assert!(fires(default(), &user));
        // Roles whose names contain it without being it or CloudFormation's name for it.
        for name in [
            "AccessSyncFunctionRoleCopy",
            "MyAccessSyncFunctionRole",
            "AccessSyncFunctionRole-",
            "-AccessSyncFunctionRole-1A2B3C",
            "x-AccessSyncFunctionRole-1A2B.C",
            "x-AccessSyncFunctionRoleX-1A2B3C",
            "MyAccessSyncFunctionRole-1A2B3C",
        ] {
            let a = by_role(name, &format!("arn:aws:iam::999988887777:role/{name}"), "s");
            assert!(fires(default(), &a), "{name}");
        }
        // Pinned by ARN: the same role name in another account is someone else's.
        let pinned = "arn:aws:iam::999988887777:role/idc-guard-AccessSyncFunctionRole-1A2B3C4D5E6F";
        let arn_only = || Thresholds { idc_guard_roles: vec![pinned.into()], ..default() };
        let name = "idc-guard-AccessSyncFunctionRole-1A2B3C4D5E6F";
        let elsewhere = by_role(name, &pinned.replace("999988887777", "111122223333"), "s");
        assert!(fires(arn_only(), &elsewhere));
        // idc-guard's own sessions: by exact name, by CloudFormation's name, by ARN.
        let exact = by_role(
            "AccessSyncFunctionRole",
            "arn:aws:iam::999988887777:role/AccessSyncFunctionRole",
            "s",
        );
        assert!(!fires(default(), &exact));
        let generated = by_role(name, pinned, "idc-guard-access-sync");
        assert!(!fires(default(), &generated));
        assert!(!fires(arn_only(), &generated));
    }

    #[test]
    fn switching_the_identity_source_on_the_sso_api_is_identity_source_changed_not_drift() {
        // The directory association is an `sso.amazonaws.com` call: whoever makes it (idc-guard's
        // own role included) decides who can sign in at all.
        for action in ["AssociateDirectory", "DisassociateDirectory"] {
            let a = with(ASSIGNMENT, |v| v["eventName"] = serde_json::json!(action));
            let alerts = Detectors::default().observe(&a);
            assert_eq!(detectors(&alerts), ["identity-source-changed"], "{action}");
            assert_eq!(alerts[0].severity, Severity::Critical);
        }
        // Look-alike: an assignment is drift for out-of-band-change, not an identity change.
        assert_eq!(
            detectors(&Detectors::default().observe(&activity(ASSIGNMENT))),
            ["out-of-band-change"]
        );
    }

    #[test]
    fn an_identity_source_or_mfa_change_is_identity_source_changed_and_reads_are_not() {
        let mut d = Detectors::default();
        let idp = d.observe(&activity(EXTERNAL_IDP));
        assert_eq!(detectors(&idp), ["identity-source-changed"]);
        assert_eq!(idp[0].severity, Severity::Critical);
        let mfa = d.observe(&with(EXTERNAL_IDP, |v| {
            v["eventName"] = serde_json::json!("DeleteMfaDeviceForUser");
            v["eventID"] = serde_json::json!("mfa-1");
        }));
        assert_eq!(detectors(&mfa), ["identity-source-changed"]);
        assert_eq!(mfa[0].severity, Severity::High);
        let token = d.observe(&with(EXTERNAL_IDP, |v| {
            v["eventName"] = serde_json::json!("CreateBearerToken");
            v["eventID"] = serde_json::json!("scim-1");
        }));
        assert_eq!(detectors(&token), ["identity-source-changed"]);
        // Look-alikes: reading the configuration, listing MFA devices.
        for read in [
            "ListExternalIdPConfigurationsForDirectory",
            "ListMfaDevicesForUser",
            "DescribeDirectory",
        ] {
            let quiet = d.observe(&with(EXTERNAL_IDP, |v| {
                v["eventName"] = serde_json::json!(read);
                v["eventID"] = serde_json::json!(read);
            }));
            assert!(quiet.is_empty(), "{read}: {quiet:#?}");
        }
    }

    #[test]
    fn out_of_band_assignments_are_told_apart_by_what_the_policy_manages() {
        // The fixture assigns the user 9448…; make it a group's assignment instead.
        let for_group = |group: &str, id: &str, caller: &str| {
            with(ASSIGNMENT, |v| {
                v["requestParameters"]["principalType"] = serde_json::json!("GROUP");
                v["requestParameters"]["principalId"] = serde_json::json!(group);
                v["eventID"] = serde_json::json!(id);
                v["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] =
                    serde_json::json!(caller);
            })
        };
        let mut d = Detectors::default();
        d.thresholds.managed_groups = Some(std::sync::Arc::new(
            [("g-payments".to_owned(), "aws-team-payments".to_owned())].into(),
        ));
        // A group the policy manages: drift, high, named.
        let drift = d.observe(&for_group("g-payments", "a1", "terraform-ci"));
        assert_eq!(drift[0].severity, Severity::High);
        assert!(drift[0].summary.contains("aws-team-payments, a group the access policy manages"));
        assert_eq!(drift[0].evidence["policy_compared"], true);
        // Another principal (another tool's access): medium, said so.
        let other = d.observe(&for_group("g-finance-tool", "a2", "finance-iac"));
        assert_eq!(other[0].severity, Severity::Medium);
        assert!(other[0].summary.contains("does not manage"), "{}", other[0].summary);
        // Without the deployment's state, nothing is claimed about the policy.
        let mut d = Detectors::default();
        let unknown = d.observe(&for_group("g-payments", "a3", "terraform-ci"));
        assert_eq!(unknown[0].evidence["policy_compared"], false);
    }
}
