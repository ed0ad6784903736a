//! Detectors that need no geolocation: `root-signin`, `console-login-no-mfa`, `brute-force` and
//! `token-replay`. Activities are fed in time order; state is per user and per portal session,
//! so memory grows with users and sessions, not with events. Alert ids derive from the events
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
    /// One portal session used from two networks within this window is a replay.
    pub replay_window: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            brute_force_failures: 10,
            brute_force_window: Duration::minutes(6),
            replay_window: Duration::hours(2),
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
fn network_key(ip: IpAddr) -> u128 {
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
    /// Per portal session: (last use, network key, first event id) per network.
    sessions: HashMap<String, Vec<(DateTime<Utc>, u128, String)>>,
    observed: u64,
    replayed: BTreeSet<String>,
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
        match &a.kind {
            Kind::ConsoleLogin { success: true, root: true, mfa_used, .. } => out.push(Alert::new(
                "root-signin",
                &a.event_id,
                a.time,
                if *mfa_used { Severity::High } else { Severity::Critical },
                format!("Root user console sign-in to account {}", a.account_id.as_deref().unwrap_or("?")),
                Some("root".into()),
                format!(
                    "The root user signed in from {}{}.",
                    a.source_ip.map(|i| i.to_string()).unwrap_or_else(|| "an unknown address".into()),
                    if *mfa_used { "" } else { " without MFA" }
                ),
                json!({"source_ip": a.source_ip, "user_agent": a.user_agent, "mfa_used": mfa_used}),
                vec![a.event_id.clone()],
                "Confirm with the account owner. Root should be used only for the few tasks that need it; rotate the root password and MFA if the sign-in was not expected.",
            )),
            Kind::ConsoleLogin { success: true, iam_user: true, mfa_used: false, identity_center_role: false, .. } => {
                out.push(Alert::new(
                    "console-login-no-mfa",
                    &a.event_id,
                    a.time,
                    Severity::Medium,
                    format!("IAM user {} signed in to the console without MFA", user.unwrap_or("?")),
                    user.map(str::to_owned),
                    "An IAM user (not an IAM Identity Center session) signed in to the console without MFA.".to_owned(),
                    json!({"source_ip": a.source_ip, "account": a.account_id}),
                    vec![a.event_id.clone()],
                    "Require MFA for the IAM user, or move the person to IAM Identity Center and remove the console password.",
                ));
            }
            Kind::Credential { success: false, .. } => {
                if let Some(u) = user {
                    let window = self.thresholds.brute_force_window;
                    let q = self.failures.entry(u.to_owned()).or_default();
                    q.push_back((a.time, a.event_id.clone()));
                    while q.front().is_some_and(|(t, _)| a.time - *t > window) {
                        q.pop_front();
                    }
                    if q.len() >= self.thresholds.brute_force_failures {
                        let ids: Vec<String> = q.iter().map(|(_, id)| id.clone()).collect();
                        let first = ids.first().cloned().unwrap_or_default();
                        out.push(Alert::new(
                            "brute-force",
                            &first,
                            a.time,
                            Severity::High,
                            format!("{} failed IAM Identity Center credential checks for {u}", q.len()),
                            Some(u.to_owned()),
                            format!("{} failures within {} minutes.", q.len(), window.num_minutes()),
                            json!({"failures": q.len(), "source_ip": a.source_ip}),
                            ids,
                            "Check whether the user is locked out or under attack; block the source network if it is not theirs.",
                        ));
                        q.clear();
                    }
                }
            }
            _ => {}
        }
        if let (Some(session), Some(ip)) = (&a.session_id, a.source_ip) {
            let window = self.thresholds.replay_window;
            let net = network_key(ip);
            self.observed += 1;
            if self.observed.is_multiple_of(100_000) {
                // Forget sessions idle for longer than the window: memory follows live sessions.
                self.sessions.retain(|_, seen| seen.iter().any(|(t, _, _)| a.time - *t <= window));
            }
            let seen = match self.sessions.get_mut(session) {
                Some(seen) => seen,
                None => self.sessions.entry(session.clone()).or_default(),
            };
            seen.retain(|(t, _, _)| a.time - *t <= window);
            // One entry per network (its latest use; the first event id as evidence).
            match seen.iter_mut().find(|(_, n, _)| *n == net) {
                Some(entry) => entry.0 = a.time,
                None => seen.push((a.time, net, a.event_id.clone())),
            }
            if seen.len() >= 2 && self.replayed.insert(session.clone()) {
                let networks: BTreeSet<String> =
                    seen.iter().map(|(_, n, _)| network_of_key(*n)).collect();
                let ids: Vec<String> = seen.iter().map(|(_, _, id)| id.clone()).collect();
                out.push(Alert::new(
                    "token-replay",
                    session,
                    a.time,
                    Severity::High,
                    format!("One portal session of {} used from {} networks", user.unwrap_or("a user"), networks.len()),
                    user.map(str::to_owned),
                    format!("Portal session used from {} within {} hours.", networks.iter().cloned().collect::<Vec<_>>().join(", "), window.num_hours()),
                    json!({"networks": networks, "session": session}),
                    ids,
                    "Sign the user out of all sessions in IAM Identity Center and ask whether both networks were theirs; a stolen portal token is the usual cause.",
                ));
            }
        }
        out
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
    const PORTAL: &str = include_str!("../../../events/cloudtrail/sso-get-role-credentials.json");

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
    fn token_replay_needs_two_networks_within_two_hours() {
        let first = activity(PORTAL);
        let mut same_network = first.clone();
        same_network.source_ip = Some("198.51.100.201".parse().unwrap());
        same_network.event_id = "same".into();
        let mut elsewhere = first.clone();
        elsewhere.source_ip = Some("203.0.113.77".parse().unwrap());
        elsewhere.event_id = "elsewhere".into();
        elsewhere.time += Duration::minutes(30);
        let mut d = Detectors::default();
        assert!(d.observe(&first).is_empty());
        assert!(d.observe(&same_network).is_empty(), "same /24: one network");
        let alerts = d.observe(&elsewhere);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].detector, "token-replay");
        let again = Detectors::default().observe(&first);
        assert!(again.is_empty());
        // Three hours later from elsewhere: a new day's session use, not a replay.
        let mut d = Detectors::default();
        let mut late = elsewhere.clone();
        late.time = first.time + Duration::hours(3);
        d.observe(&first);
        assert!(d.observe(&late).is_empty());
    }

    #[test]
    fn the_same_input_twice_gives_the_same_alert_ids() {
        let ids = |_: ()| {
            let mut d = Detectors::default();
            (0..10).flat_map(|i| d.observe(&failure(i))).map(|a| a.id).collect::<Vec<_>>()
        };
        assert_eq!(ids(()), ids(()));
    }
}
