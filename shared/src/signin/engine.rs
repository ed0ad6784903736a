//! The sign-in detectors that need a user's history, geolocation or Okta's view:
//! `impossible-travel`, `new-country`, `deactivated-user-activity`, `okta-ip-mismatch`,
//! `okta-failures-then-success` and `privileged-off-hours`, together with the windowed ones in
//! [`super::detect`]. State is per user (a baseline that is persisted, plus Okta context that is
//! loaded), so memory grows with users, not with events.
//!
//! Alert ids derive from the events that make a finding (for travel, the sorted pair), so a
//! re-scan of the same input raises the same ids, which the send-once dispatcher drops.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::detect::{Detectors, Thresholds, network, network_key};
use super::history::{
    FailureMemory, Placement, SessionUse, Sighting, Stay, Stays, activity_of, travel_horizon,
    use_session,
};
use super::model::{Activity, Kind, Text};
use super::okta::{OktaFact, OktaSignin};
use super::settings::SigninSettings;
use crate::alert::{Alert, Severity};
use crate::geo::{Country, Geo, Place, min_distance_km};
use crate::records::{FailedSignin, LastUsed, Lifecycle};

/// A user's persisted baseline: countries seen (with when last seen), recent sightings in time
/// order, and failed sign-ins recently counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Countries the user was seen in, each with when last seen.
    #[serde(default)]
    pub countries: BTreeMap<Country, DateTime<Utc>>,
    /// The same countries, each with when first seen (what makes a country new, whatever order
    /// its events are read in). Baselines of earlier releases have none: their countries count
    /// as seen from their last sighting.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub first_seen: BTreeMap<Country, DateTime<Utc>>,
    /// Recent sightings, as stays, for travel between time-adjacent ones.
    #[serde(default, skip_serializing_if = "is_empty_stays")]
    pub travel: Stays,
    /// Portal sessions' recent uses per network, for token-replay.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<SessionUse>,
    /// The single last sighting baselines of earlier releases kept: read once, into `travel`.
    #[serde(default, skip_serializing)]
    pub last: Option<Sighting>,
}

fn is_empty_stays(s: &Stays) -> bool {
    s.stays.is_empty() && s.forgotten_until.is_none()
}

impl Baseline {
    /// Moves an earlier release's `last` sighting into the stays.
    fn migrate(&mut self) {
        if let Some(last) = self.last.take()
            && self.travel.stays.is_empty()
        {
            self.travel.stays.push(Stay { first: last.clone(), last });
        }
        // Countries known before first-seen times were kept: known from the start.
        for country in self.countries.keys() {
            self.first_seen.entry(*country).or_insert(DateTime::<Utc>::UNIX_EPOCH);
        }
    }
}

#[derive(Debug, Default)]
struct UserState {
    baseline: Baseline,
    dirty: bool,
    /// Okta sign-ins, in time order.
    okta: Vec<OktaSignin>,
    lifecycle: Option<Lifecycle>,
    /// The user's live-session revocation, when one is in force.
    revoked: Option<Revocation>,
    /// One `deactivated-user-activity` finding per deactivation.
    reported_inactive: bool,
    /// One `revoked-session-used` finding per revocation.
    reported_revoked_use: bool,
    /// The person's latest browser activity (IdC sign-in or portal use): where a device code
    /// they approved was approved from.
    last_browser: Option<(DateTime<Utc>, IpAddr)>,
    /// `privileged-off-hours` findings already made (permission set + local date).
    reported_off_hours: BTreeSet<String>,
    /// Sessions already reported as replayed.
    reported_replay: BTreeSet<String>,
}

/// Everything the engine knows about a user before their activity is observed.
#[derive(Debug, Default, Clone)]
pub struct UserContext {
    /// The user's baseline.
    pub baseline: Baseline,
    /// Okta's sign-ins of the user, in time order.
    pub okta: Vec<OktaSignin>,
    /// The user's Okta lifecycle status.
    pub lifecycle: Option<Lifecycle>,
    /// The user's live-session revocation (access-sync's record), when one is in force.
    pub revoked: Option<Revocation>,
}

/// A live-session revocation in force: from `at` (plus the time provisioning takes), no call
/// of the user can succeed. One that does proves a way in the deny did not cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// When the deny was written (provisioning follows within minutes).
    pub at: DateTime<Utc>,
    /// The Identity Store user id the deny names.
    pub user_id: String,
}

/// How long after a revocation a successful call is still the deny's provisioning at work.
pub const REVOCATION_EFFECT_GRACE: chrono::Duration = chrono::Duration::minutes(5);

/// The sign-in detectors over a stream of activities, with per-user state.
pub struct Engine {
    settings: Arc<SigninSettings>,
    privileged: BTreeSet<String>,
    geo: Arc<Geo>,
    windowed: Detectors,
    users: HashMap<String, UserState, FastHash>,
    /// Identity-store user id → user name, learned from sign-ins that carry both.
    names: HashMap<String, String, FastHash>,
    /// Failed sign-ins counted (for the windowed detectors across runs).
    failures: FailureMemory,
    /// Activities observed.
    pub observed: u64,
    /// The period Okta's sign-ins cover (the earliest and latest seen, any user): outside it,
    /// `signin-without-okta` cannot tell an absent Okta sign-in from absent Okta data.
    okta_span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// IdC sign-ins `signin-without-okta` could not check (outside the Okta data's period).
    pub okta_unchecked: u64,
    /// The latest use of each (user, account, permission set) seen since the last
    /// [`Engine::take_usage`]: the access ledger's "last used".
    usage: HashMap<(Text, Text, Text), LastUsed, FastHash>,
}

/// A fast hasher for the per-user maps (seeded per process, so crafted user names cannot make
/// them degenerate).
pub(crate) type FastHash = foldhash::fast::RandomState;

/// The user an activity belongs to, as the engine keys it (lower-case user name, else the
/// identity-store user id).
pub fn user_key<S: std::hash::BuildHasher>(
    a: &Activity,
    names: &HashMap<String, String, S>,
) -> Option<String> {
    user_key_ref(a, names).map(std::borrow::Cow::into_owned)
}

/// [`user_key`], borrowed where it can be (a user name already in lower case, a learned name,
/// a bare id).
fn user_key_ref<'a, S: std::hash::BuildHasher>(
    a: &'a Activity,
    names: &'a HashMap<String, String, S>,
) -> Option<std::borrow::Cow<'a, str>> {
    use std::borrow::Cow;
    if let Some(name) = a.user_name.as_deref() {
        let lower = name.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase());
        return Some(if lower { Cow::Borrowed(name) } else { Cow::Owned(name.to_lowercase()) });
    }
    let id = a.user_id.as_deref()?;
    Some(Cow::Borrowed(names.get(id).map_or(id, String::as_str)))
}

impl Engine {
    /// `privileged` are the permission sets whose off-hours use is a finding: the whole set,
    /// privileged tiers and `[signin] privileged_permission_sets` together, as
    /// [`super::settings::SigninPolicy`] makes it (its one home).
    pub fn new(settings: Arc<SigninSettings>, privileged: BTreeSet<String>, geo: Arc<Geo>) -> Self {
        let windowed = Detectors::new(Thresholds {
            brute_force_failures: settings.brute_force_failures,
            brute_force_window: settings.brute_force_window,
            console_failures: settings.console_failures,
            console_failures_window: settings.console_failures_window,
            username_guessing_failures: settings.username_guessing_failures,
            username_guessing_window: settings.username_guessing_window,
            spraying_users: settings.spraying_users,
            spraying_window: settings.spraying_window,
            scim_failures: settings.scim_failures,
            scim_failures_window: settings.scim_failures_window,
            okta_networks: Arc::clone(&settings.okta_networks),
            scim_user_agents: settings.scim_user_agents.clone(),
            idc_guard_roles: settings.idc_guard_roles.clone(),
            managed_groups: None,
        });
        Self {
            settings,
            privileged,
            geo,
            windowed,
            users: HashMap::default(),
            names: HashMap::default(),
            failures: FailureMemory::default(),
            observed: 0,
            okta_span: None,
            okta_unchecked: 0,
            usage: HashMap::default(),
        }
    }

    /// Notes a use of a permission set in an account: a portal request for its credentials or
    /// console (the account and role the request names, when it succeeded), or any call made in
    /// its role session (the account the call was recorded in).
    fn note_use(&mut self, a: &Activity) {
        let (account, portal) = match &a.kind {
            Kind::Portal { account_id, .. } if a.error_code.is_none() => (account_id, true),
            Kind::Portal { .. } => return,
            _ => (&a.account_id, false),
        };
        let (Some(account), Some(set)) = (account, &a.permission_set) else { return };
        let user: Text = match (&a.user_id, &a.user_name) {
            (Some(id), _) => id.clone(),
            (None, Some(name)) if !name.chars().any(char::is_uppercase) => name.clone(),
            (None, Some(name)) => name.to_lowercase().into(),
            (None, None) => return,
        };
        let name = match (&a.user_name, &a.user_id) {
            (Some(n), _) => Some(&**n),
            (None, Some(id)) => self.names.get(&**id).map(String::as_str),
            (None, None) => None,
        };
        let entry = self.usage.entry((user, account.clone(), set.clone())).or_default();
        let slot = if portal { &mut entry.portal } else { &mut entry.activity };
        if slot.is_none_or(|t| t < a.time) {
            *slot = Some(a.time);
        }
        if entry.user_name.is_none() {
            entry.user_name = name.map(|n| n.to_lowercase());
        }
    }

    /// The uses noted since the last call, to store (merged with what is stored).
    pub fn take_usage(&mut self) -> Vec<LastUsed> {
        self.usage
            .drain()
            .map(|((user, account, set), mut used)| {
                used.user = user.to_string();
                used.account_id = account.to_string();
                used.permission_set = set.to_string();
                used
            })
            .collect()
    }

    /// How far back earlier failures matter to a failure now: the longest counting window (an
    /// hour for failed root sign-ins).
    pub fn failure_horizon(&self) -> Duration {
        let t = &self.windowed.thresholds;
        [
            t.brute_force_window,
            t.console_failures_window,
            t.username_guessing_window,
            t.spraying_window,
            t.scim_failures_window,
            Duration::hours(1),
        ]
        .into_iter()
        .max()
        .unwrap_or_default()
    }

    /// Feeds failed sign-ins counted by earlier runs to the windowed detectors, in time order and
    /// without findings (those were raised then), so their windows continue. Failures this run
    /// already counted are skipped.
    pub fn replay(&mut self, stored: Vec<FailedSignin>) {
        let mut earlier: Vec<Activity> =
            stored.iter().filter(|r| self.failures.first_load(r)).map(activity_of).collect();
        earlier.sort_by_cached_key(Activity::order_key);
        for a in &earlier {
            let _ = self.windowed.observe(a);
        }
    }

    /// Failed sign-ins counted since the last call, to store.
    pub fn take_failures(&mut self) -> Vec<FailedSignin> {
        std::mem::take(&mut self.failures.unsaved)
    }

    /// The thresholds in use.
    pub fn settings(&self) -> &SigninSettings {
        &self.settings
    }

    /// Learns the id ↔ name pair a sign-in carries.
    pub fn learn(&mut self, a: &Activity) {
        if let (Some(id), Some(name)) = (&a.user_id, &a.user_name)
            && !self.names.contains_key(&**id)
        {
            self.names.insert(id.to_string(), name.to_lowercase());
        }
    }

    /// The key of this activity's user with what is known so far.
    pub fn key(&self, a: &Activity) -> Option<String> {
        user_key(a, &self.names)
    }

    /// [`Engine::key`], lent to `f` without a copy where it can be.
    pub fn with_key<R>(&self, a: &Activity, f: impl FnOnce(Option<&str>) -> R) -> R {
        f(user_key_ref(a, &self.names).as_deref())
    }

    /// Whether the user name of an identity-store user id is known.
    pub fn knows_id(&self, user_id: &str) -> bool {
        self.names.contains_key(user_id)
    }

    /// Whether the managed groups have not been given yet.
    pub fn managed_groups_unknown(&self) -> bool {
        self.windowed.thresholds.managed_groups.is_none()
    }

    /// The groups the access policy manages (id → name), for `out-of-band-change`.
    pub fn set_managed_groups(&mut self, groups: BTreeMap<String, String>) {
        self.windowed.thresholds.managed_groups = Some(Arc::new(groups));
    }

    /// Teaches the engine a user name for an identity-store id (from identitystore).
    pub fn learn_name(&mut self, user_id: &str, user_name: &str) {
        self.names.insert(user_id.to_owned(), user_name.to_lowercase());
    }

    /// Installs a user's persisted baseline and Okta context (before their first activity),
    /// merged with any Okta facts already given for them.
    pub fn load(&mut self, user: &str, ctx: UserContext) {
        let state = self.users.entry(user.to_owned()).or_default();
        state.baseline = ctx.baseline;
        state.baseline.migrate();
        for s in ctx.okta {
            Self::widen(&mut self.okta_span, s.time);
            Self::add_okta(state, OktaFact::Signin(s));
        }
        if let Some(l) = ctx.lifecycle {
            Self::add_okta(state, OktaFact::Lifecycle(l));
        }
        if ctx.revoked.is_some() && ctx.revoked != state.revoked {
            state.revoked = ctx.revoked;
            state.reported_revoked_use = false;
        }
    }

    /// Adds what Okta saw (CLI `--okta`, or events arriving while a scan runs).
    pub fn okta(&mut self, login: &str, fact: OktaFact) {
        if let OktaFact::Signin(s) = &fact {
            Self::widen(&mut self.okta_span, s.time);
        }
        let state = self.users.entry(login.to_lowercase()).or_default();
        Self::add_okta(state, fact);
    }

    fn widen(span: &mut Option<(DateTime<Utc>, DateTime<Utc>)>, t: DateTime<Utc>) {
        *span = Some(match *span {
            Some((from, to)) => (from.min(t), to.max(t)),
            None => (t, t),
        });
    }

    fn add_okta(state: &mut UserState, fact: OktaFact) {
        match fact {
            OktaFact::Signin(s) => {
                let at = state.okta.partition_point(|o| o.time <= s.time);
                if !state.okta.iter().any(|o| o.event_id == s.event_id && !s.event_id.is_empty()) {
                    state.okta.insert(at, s);
                }
            }
            OktaFact::Lifecycle(l) => {
                if state.lifecycle.as_ref().is_none_or(|old| old.at <= l.at) {
                    state.lifecycle = Some(l);
                }
            }
        }
    }

    /// Baselines changed since the last call, to persist.
    pub fn take_dirty(&mut self) -> Vec<(String, Baseline)> {
        self.users
            .iter_mut()
            .filter(|(_, s)| s.dirty)
            .map(|(u, s)| {
                s.dirty = false;
                (u.clone(), s.baseline.clone())
            })
            .collect()
    }

    /// Users with state.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// Feeds one activity (in time order as far as the input allows); returns its findings.
    pub fn observe(&mut self, mut a: Activity) -> Vec<Alert> {
        self.observed += 1;
        self.learn(&a);
        if is_failure(&a) {
            if a.user_name.is_none() {
                a.user_name = self.key(&a).map(Into::into);
            }
            // A failed sign-in read again is not counted twice.
            if !self.failures.first_time(&a) {
                return Vec::new();
            }
        }
        let mut out = self.windowed.observe(&a);
        if !is_user_activity(&a) {
            // A console session only named after a revoked person (another role's, named by
            // whoever assumed it) is not their activity, but their name in use after the deny:
            // the revocation's alarm still sounds.
            if matches!(a.kind, Kind::ConsoleLogin { success: true, root: false, .. })
                && let Some(user) = user_key_ref(&a, &self.names)
                && let Some(state) = self.users.get_mut(&*user)
            {
                out.extend(revoked_use(&user, state, &a, true));
            }
            return out;
        }
        self.note_use(&a);
        // Borrowed from the activity or the name table: no allocation per event.
        let Some(user) = user_key_ref(&a, &self.names) else { return out };
        let user: &str = &user;
        let settings = Arc::clone(&self.settings);
        let state = match self.users.get_mut(user) {
            Some(state) => state,
            None => self.users.entry(user.to_owned()).or_default(),
        };

        // deactivated-user-activity: anything the user does after Okta deactivated them.
        if let Some(l) = &state.lifecycle
            && l.is_inactive()
            && a.time > l.at
            && !state.reported_inactive
        {
            state.reported_inactive = true;
            out.push(Alert::new(
                "deactivated-user-activity",
                &format!("{user}\n{}", l.event_id),
                a.time,
                Severity::Critical,
                format!("{user} is {} in Okta but was active in AWS", l.status.as_str()),
                Some(user.to_owned()),
                format!(
                    "Okta marked the user {} at {}; AWS recorded {} at {} ({} later).",
                    l.status.as_str(),
                    l.at.to_rfc3339(),
                    describe(&a),
                    a.time.to_rfc3339(),
                    human(a.time - l.at)
                ),
                json!({"okta_status": l.status, "okta_event": l.event_id, "aws_event": a.event_id, "source_ip": a.source_ip, "account": a.account_id}),
                vec![l.event_id.clone(), a.event_id.clone()],
                "Revoke the user's active sessions in IAM Identity Center now (existing portal and role sessions outlive an Okta deactivation), check that SCIM removed the user, and review what the session did.",
            ));
        }

        // revoked-session-used: a call that succeeded after the user's sessions were denied.
        out.extend(revoked_use(user, state, &a, false));

        // device-code-phishing: a device code redeemed from another network than the one the
        // person's browser approved it from, minutes before.
        if let (Kind::DeviceToken { success: true }, Some(ip)) = (&a.kind, a.source_ip)
            && !settings.network_allowed(ip)
            && let Some((seen, browser)) = state.last_browser
            && a.time - seen <= DEVICE_APPROVAL_WINDOW
            && a.time >= seen
            && self.geo.network_key(browser, network_key) != self.geo.network_key(ip, network_key)
        {
            out.push(device_code_phishing(user, &a, seen, browser, ip));
        }
        if let (Kind::IdcSignIn { success: true, .. } | Kind::Portal { .. }, Some(ip)) =
            (&a.kind, a.source_ip)
            && state.last_browser.is_none_or(|(t, _)| a.time >= t)
        {
            state.last_browser = Some((a.time, ip));
        }

        // privileged-off-hours
        if let Some(ps) = a.permission_set.as_deref().filter(|p| self.privileged.contains(*p))
            && !settings.business_hours.contains(a.time)
            && state
                .reported_off_hours
                .insert(format!("{ps}\n{}", settings.business_hours.local_date(a.time)))
        {
            let day = settings.business_hours.local_date(a.time);
            out.push(Alert::new(
                "privileged-off-hours",
                &format!("{user}\n{ps}\n{day}"),
                a.time,
                Severity::Medium,
                format!("{user} used {ps} outside business hours"),
                Some(user.to_owned()),
                format!(
                    "Privileged permission set {ps} used at {} ({}).",
                    settings.business_hours.local_time(a.time),
                    describe(&a)
                ),
                json!({"permission_set": ps, "account": a.account_id, "local_time": settings.business_hours.local_time(a.time), "source_ip": a.source_ip}),
                vec![a.event_id.clone()],
                "Confirm with the user (and any on-call or change record) that the privileged session was planned; if not, revoke the session and review its CloudTrail activity.",
            ));
        }

        // token-replay: one portal session used from two networks within the window (not
        // counting allow-listed networks: VPN, corporate egress).
        if let (Some(session), Some(ip)) = (&a.session_id, a.source_ip)
            && !settings.network_allowed(ip)
        {
            // The same network: the same owner (AS) where ASN data says, else the same /24.
            let geo = &self.geo;
            let (live, changed) = use_session(
                &mut state.baseline.sessions,
                session,
                ip,
                a.time,
                &a.event_id,
                settings.replay_window,
                |ip| geo.network_key(ip, network_key),
            );
            state.dirty |= changed;
            if live.len() >= 2 && state.reported_replay.insert(session.to_string()) {
                out.push(token_replay(user, session, live, settings.replay_window, geo));
            }
        }

        // Okta correlation on IdC sign-ins.
        if matches!(a.kind, Kind::IdcSignIn { success: true, .. }) {
            out.extend(okta_checks(&settings, &self.geo, user, state, &a));
            // signin-without-okta: an IdC sign-in through the external IdP with no Okta SSO to
            // the AWS app by that person around it, where Okta's data covers the time.
            let external = matches!(&a.kind, Kind::IdcSignIn { credential_type: Some(c), .. } if &**c == "EXTERNAL_IDP");
            let covered = self.okta_span.is_some_and(|(from, to)| {
                a.time >= from - settings.okta_window && a.time <= to + settings.okta_window
            });
            if external && !covered {
                self.okta_unchecked += 1;
            } else if external {
                let sso = state.okta.iter().any(|o| {
                    o.is_aws_sso(&settings.okta_aws_apps)
                        && o.success
                        && (o.time - a.time).abs() <= settings.okta_window
                });
                if !sso {
                    out.push(signin_without_okta(user, &a, settings.okta_window));
                }
            }
        }

        // Geo: never for AWS-made calls (no source address) or allow-listed networks.
        let Some(ip) = a.source_ip else { return out };
        if settings.network_allowed(ip) {
            return out;
        }
        let mut place = self.geo.locate(ip);
        // Okta geolocated the same address near this time: prefer its coordinates.
        if place.point.is_none()
            && let Some(o) = state.okta.iter().find(|o| {
                o.ip == Some(ip)
                    && o.place.point.is_some()
                    && (o.time - a.time).abs() <= Duration::hours(1)
            })
        {
            place.point = o.place.point;
            place.city = o.place.city.clone();
            place.country = place.country.or(o.place.country);
        }
        let Some(country) = place.country else { return out };
        let allowed_country = settings.allow_countries.contains(&country);

        // Where the sighting falls among the user's recent ones: read before, too old to place,
        // or new with the time-adjacent sightings to compare it with.
        let sighting = Sighting { time: a.time, ip, place, event_id: a.event_id.clone() };
        let near = |x: &Place, y: &Place| !travel_comparable(&settings, x, y);
        let travel = match state.baseline.travel.place(&sighting, near) {
            Placement::New { before, after } => [
                before.and_then(|b| impossible_travel(&settings, user, b, &sighting)),
                after.and_then(|n| impossible_travel(&settings, user, &sighting, n)),
            ],
            Placement::Seen | Placement::Forgotten => return out,
        };

        // new-country: a country is new at its first sighting when the user had been seen in
        // another country before it. Files overlap in time, so an earlier sighting can arrive
        // after a later one: it can make a country known (no alert for it) or give a country
        // first seen later the baseline it lacked (the alert is raised then). The incident is
        // the person in a new country on a day, so whichever event is read first, the id is one.
        let horizon = a.time - Duration::days(settings.baseline_days);
        let baseline = &mut state.baseline;
        baseline.countries.retain(|_, seen| *seen >= horizon);
        let countries = &baseline.countries;
        baseline.first_seen.retain(|c, _| countries.contains_key(c) || *c == country);
        let before = baseline.first_seen.get(&country).copied();
        let first = before.map_or(a.time, |f| f.min(a.time));
        baseline.first_seen.insert(country, first);
        let seen = baseline.countries.entry(country).or_insert(a.time);
        *seen = (*seen).max(a.time);
        let first_seen = &baseline.first_seen;
        let seen_before = |c: Country, t: DateTime<Utc>| -> Vec<String> {
            first_seen
                .iter()
                .filter(|(o, f)| **o != c && **f < t)
                .map(|(o, _)| o.to_string())
                .collect()
        };
        // This sighting is its country's first, after another country.
        if first == a.time && before.is_none_or(|b| b > a.time) && !allowed_country {
            let usual = seen_before(country, a.time);
            if !usual.is_empty() {
                out.push(new_country(
                    settings.baseline_days,
                    user,
                    country,
                    a.time,
                    &usual,
                    json!({"city": sighting.place.city, "source_ip": ip}),
                    format!("{} from {ip} ({country})", describe(&a)),
                    vec![a.event_id.clone()],
                ));
            }
        }
        // This sighting is the first baseline of countries first seen after it.
        for (&other, &their_first) in first_seen.iter() {
            let newly = their_first > a.time
                && before.is_none_or(|b| b >= their_first)
                && seen_before(other, their_first) == [country.to_string()];
            if other != country && newly && !settings.allow_countries.contains(&other) {
                out.push(new_country(
                    settings.baseline_days,
                    user,
                    other,
                    their_first,
                    &[country.to_string()],
                    json!({}),
                    format!("{user} was first seen in {other} at {}", their_first.to_rfc3339()),
                    vec![],
                ));
            }
        }

        // impossible-travel between time-adjacent sightings.
        out.extend(travel.into_iter().flatten());
        state.baseline.travel.insert(sighting, near, travel_horizon(settings.max_speed_kmh));
        state.dirty = true;
        out
    }
}

/// `revoked-session-used`: a call of `user` that succeeded after their sessions were denied
/// (past the provisioning grace), once per revocation. `named_only`: the session is another
/// role's that is only named after them.
fn revoked_use(user: &str, state: &mut UserState, a: &Activity, named_only: bool) -> Option<Alert> {
    let r = state.revoked.as_ref()?;
    if a.time <= r.at + REVOCATION_EFFECT_GRACE
        || a.error_code.is_some()
        || state.reported_revoked_use
    {
        return None;
    }
    state.reported_revoked_use = true;
    let whose = if named_only {
        " in a session of another role named after them (not an IAM Identity Center session: find who can assume it)"
    } else {
        ""
    };
    Some(Alert::new(
        "revoked-session-used",
        &format!("{}\n{}", r.user_id, r.at.timestamp()),
        a.time,
        Severity::Critical,
        format!("{user} used AWS after their sessions were revoked"),
        Some(user.to_owned()),
        format!(
            "idc-guard denied {user}'s sessions at {}; AWS recorded a successful {} at {} ({} later){}{whose}. The deny does not cover this way in.",
            r.at.to_rfc3339(),
            describe(a),
            a.time.to_rfc3339(),
            human(a.time - r.at),
            a.account_id.as_deref().map(|acc| format!(" in account {acc}")).unwrap_or_default()
        ),
        json!({"user_id": r.user_id, "revoked_at": r.at, "aws_event": a.event_id,
            "event_source": a.event_source, "event_name": a.event_name,
            "account": a.account_id, "permission_set": a.permission_set, "source_ip": a.source_ip,
            "session_named_only": named_only}),
        vec![a.event_id.clone()],
        "Run `idc-guard revoke --status --user <login>`: a permission set or account NOT covered, an account access manager entitlement, or a portal session (end it in the console: IAM Identity Center > Users > Active sessions). Then review what the session did.",
    ))
}

/// `new-country` of `user` in `country`, first seen at `time` (the id: user, country, day).
#[allow(clippy::too_many_arguments)]
fn new_country(
    baseline_days: i64,
    user: &str,
    country: Country,
    time: DateTime<Utc>,
    usual: &[String],
    mut evidence: serde_json::Value,
    what: String,
    event_ids: Vec<String>,
) -> Alert {
    evidence["country"] = json!(country);
    evidence["baseline"] = json!(usual);
    Alert::new(
        "new-country",
        &format!("{user}\n{country}\n{}", time.date_naive()),
        time,
        Severity::Medium,
        format!("{user} active from {country} for the first time in {baseline_days} days"),
        Some(user.to_owned()),
        format!("{what}; usual countries: {}.", usual.join(", ")),
        evidence,
        event_ids,
        "Ask the user whether they are travelling or using a new VPN; if not, revoke their IAM Identity Center sessions and reset their Okta credentials and factors.",
    )
}

/// `token-replay` of `session`, used from the networks of `uses`; the id is the session.
fn token_replay(
    user: &str,
    session: &str,
    mut uses: Vec<&SessionUse>,
    window: Duration,
    geo: &Geo,
) -> Alert {
    uses.sort_by(|a, b| (a.first, &a.event_id).cmp(&(b.first, &b.event_id)));
    let networks: BTreeSet<String> = uses
        .iter()
        .map(|u| match geo.owner(u.ip) {
            Some(asn) => format!("{} (AS{} {})", network(u.ip), asn.number, asn.org),
            None => network(u.ip),
        })
        .collect();
    let ids: Vec<String> = uses.iter().map(|u| u.event_id.clone()).collect();
    let latest = uses.iter().map(|u| u.last).max().unwrap_or_default();
    Alert::new(
        "token-replay",
        session,
        latest,
        Severity::High,
        format!("One portal session of {user} used from {} networks", networks.len()),
        Some(user.to_owned()),
        format!(
            "Portal session used from {} within {} hours.",
            networks.iter().cloned().collect::<Vec<_>>().join(", "),
            window.num_hours()
        ),
        json!({"networks": networks, "session": session}),
        ids,
        "Sign the user out of all sessions in IAM Identity Center and ask whether both networks were theirs; a stolen portal token is the usual cause.",
    )
}

/// Whether travel between two places can be a finding: neither in an allow-listed country, and
/// far enough apart as far as the places are known.
fn travel_comparable(settings: &SigninSettings, a: &Place, b: &Place) -> bool {
    let allowed = |p: &Place| p.country.is_some_and(|c| settings.allow_countries.contains(&c));
    !allowed(a)
        && !allowed(b)
        && min_distance_km(a, b).is_some_and(|km| km >= settings.min_travel_km)
}

/// `impossible-travel` between two time-adjacent sightings (`from` the earlier), if the speed
/// between them is too high. The id names the incident, not the pair of events that happened to
/// be adjacent when it was found: the person, the country left, the country reached and the day
/// of arrival. Log files overlap in time, so a trail read file by file pairs the same arrival
/// with different departures (and the same departure with different arrival events) as events
/// arrive; every such pair is the same incident and keeps its id, and a pair found later only
/// re-sends the alert when it is graver. (A trip whose events straddle midnight UTC can be two.)
fn impossible_travel(
    settings: &SigninSettings,
    user: &str,
    from: &Sighting,
    to: &Sighting,
) -> Option<Alert> {
    if !travel_comparable(settings, &from.place, &to.place) {
        return None;
    }
    let km = min_distance_km(&from.place, &to.place)?;
    let hours = ((to.time - from.time).abs().num_seconds() as f64 / 3600.0).max(1.0 / 60.0);
    let speed = km / hours;
    if speed <= settings.max_speed_kmh {
        return None;
    }
    let mut pair = [from.event_id.clone(), to.event_id.clone()];
    pair.sort();
    let (left, reached) = (from.place.country?, to.place.country?);
    Some(Alert::new(
        "impossible-travel",
        &format!("{user}\n{left}\n{reached}\n{}", to.time.date_naive()),
        to.time,
        Severity::High,
        format!(
            "{user}: {} → {} at {:.0} km/h or more",
            where_(&from.place),
            where_(&to.place),
            speed
        ),
        Some(user.to_owned()),
        format!(
            "At least {km:.0} km between {} ({}) and {} ({}) in {}.",
            from.ip,
            from.time.to_rfc3339(),
            to.ip,
            to.time.to_rfc3339(),
            human((to.time - from.time).abs())
        ),
        json!({
            "from": {"ip": from.ip, "place": from.place, "time": from.time, "event": from.event_id},
            "to": {"ip": to.ip, "place": to.place, "time": to.time, "event": to.event_id},
            "min_distance_km": km.round(), "min_speed_kmh": speed.round(),
            "precision": if from.place.point.is_some() && to.place.point.is_some() { "city" } else { "country" },
        }),
        pair.to_vec(),
        "Ask the user whether both sessions were theirs (a VPN or a cloud desktop can explain it; add such networks to [signin] allow_networks). If not, revoke their sessions and reset credentials and factors.",
    ))
}

/// A failed sign-in: what the windowed detectors count.
fn is_failure(a: &Activity) -> bool {
    matches!(
        a.kind,
        Kind::Credential { success: false, .. }
            | Kind::ConsoleLogin { success: false, .. }
            | Kind::ScimCall { success: false, .. }
    )
}

/// Successful, user-driven activity (not failed attempts, not AWS's own calls).
fn is_user_activity(a: &Activity) -> bool {
    match &a.kind {
        Kind::IdcSignIn { success, .. } => *success,
        // A console session names a person when IdC issued it (the session name is the IdC
        // user name), when an identity provider did (SAML: the IdP sets the name), or when it is
        // an IAM user's. Any other role session's name is whatever its caller chose: counting
        // it would let anyone who can assume a role sign in "as" someone, anywhere, and so
        // raise or hide (by teaching the baseline) that person's findings.
        Kind::ConsoleLogin { success, root, iam_user, identity_center_role, federated, .. } => {
            *success && !root && (*iam_user || *identity_center_role || *federated)
        }
        Kind::Portal { .. } => true,
        // A device token issued to the person (from wherever the device is).
        Kind::DeviceToken { success } => *success,
        // The SCIM token is Okta's, not a person's session.
        Kind::Credential { .. } | Kind::AssumeRoleWithSaml | Kind::ScimCall { .. } => false,
        // Other calls count only when made in an IdC permission-set session.
        Kind::Other | Kind::IdcChange(_) => a.permission_set.is_some(),
    }
}

/// How long before a device code's redemption the person's browser approval is looked for.
pub const DEVICE_APPROVAL_WINDOW: Duration = Duration::minutes(15);

fn device_code_phishing(
    user: &str,
    a: &Activity,
    approved_at: DateTime<Utc>,
    browser: IpAddr,
    device: IpAddr,
) -> Alert {
    Alert::new(
        "device-code-phishing",
        &a.identity(),
        a.time,
        Severity::High,
        format!("{user}: a device code redeemed from another network than the approving browser"),
        Some(user.to_owned()),
        format!(
            "An OIDC device authorization for {user} was redeemed (sso-oauth CreateToken) from {device} at {}, while the person's browser, which approves device codes, was at {browser} ({} earlier). A person tricked into approving someone else's code (device-code phishing) looks like this.",
            a.time.to_rfc3339(),
            human(a.time - approved_at)
        ),
        json!({"device_ip": device, "device_network": network(device), "browser_ip": browser,
            "browser_network": network(browser), "approved_at": approved_at, "account": a.account_id}),
        vec![a.event_id.clone()],
        "Ask the user whether they approved a device code for a tool of their own on that network. If not: revoke their sessions (`idc-guard revoke`), and review what the token's role credentials did.",
    )
}

fn signin_without_okta(user: &str, a: &Activity, window: Duration) -> Alert {
    Alert::new(
        "signin-without-okta",
        &a.identity(),
        a.time,
        Severity::High,
        format!("{user} signed in to IAM Identity Center with no Okta sign-in behind it"),
        Some(user.to_owned()),
        format!(
            "IAM Identity Center accepted an external-IdP sign-in for {user} at {} from {}, but Okta recorded no successful SSO of this person to the AWS app within {}: the SAML assertion did not come from this Okta org's sign-in (another IdP configured, a forged or replayed assertion), or Okta's record was lost.",
            a.time.to_rfc3339(),
            a.source_ip.map(|i| i.to_string()).unwrap_or_else(|| "an unknown address".into()),
            human(window)
        ),
        json!({"source_ip": a.source_ip, "account": a.account_id, "user_id": a.user_id, "window_minutes": window.num_minutes()}),
        vec![a.event_id.clone()],
        "Check IAM Identity Center's identity source and external IdP configuration (CloudTrail sso-directory changes), the SAML signing certificate, and the user's Okta System Log; if the sign-in was not theirs, revoke their sessions (`idc-guard revoke`).",
    )
}

fn okta_checks(
    settings: &SigninSettings,
    geo: &Geo,
    user: &str,
    state: &UserState,
    a: &Activity,
) -> Vec<Alert> {
    let mut out = Vec::new();
    // okta-failures-then-success
    let since = a.time - settings.okta_failures_window;
    let failures: Vec<&OktaSignin> =
        state.okta.iter().filter(|o| !o.success && o.time >= since && o.time <= a.time).collect();
    if failures.len() >= settings.okta_failures {
        let mut ids: Vec<String> = failures.iter().map(|o| o.event_id.clone()).collect();
        ids.push(a.event_id.clone());
        let reasons: BTreeSet<&str> = failures.iter().filter_map(|o| o.reason.as_deref()).collect();
        out.push(Alert::new(
            "okta-failures-then-success",
            &a.identity(),
            a.time,
            Severity::High,
            format!("{user}: {} Okta sign-in failures, then an AWS sign-in", failures.len()),
            Some(user.to_owned()),
            format!(
                "{} failed Okta authentications within {} before the IAM Identity Center sign-in at {}.",
                failures.len(),
                human(settings.okta_failures_window),
                a.time.to_rfc3339()
            ),
            json!({"failures": failures.len(), "reasons": reasons, "source_ip": a.source_ip}),
            ids,
            "Confirm with the user that they signed in; repeated failures then a success can be a guessed password with a pushed MFA prompt. If in doubt, revoke sessions and reset the password and factors.",
        ));
    }
    // okta-ip-mismatch: the Okta SSO that should have led to this sign-in came from elsewhere.
    let Some(ip) = a.source_ip else { return out };
    if settings.network_allowed(ip) {
        return out;
    }
    let near: Vec<&OktaSignin> = state
        .okta
        .iter()
        .filter(|o| {
            o.is_aws_sso(&settings.okta_aws_apps)
                && o.success
                && (o.time - a.time).abs() <= settings.okta_window
        })
        .collect();
    if near.is_empty() {
        return out;
    }
    let aws_country = geo.locate(ip).country;
    let matches = near.iter().any(|o| {
        o.ip.is_some_and(|oip| network(oip) == network(ip))
            || (aws_country.is_some() && o.place.country == aws_country)
            || o.ip.is_some_and(|oip| settings.network_allowed(oip))
    });
    let comparable = near.iter().any(|o| o.ip.is_some() || o.place.country.is_some());
    if !matches && comparable {
        let okta: Vec<_> = near
            .iter()
            .map(|o| json!({"ip": o.ip, "country": o.place.country, "city": o.place.city, "time": o.time, "event": o.event_id}))
            .collect();
        let mut ids: Vec<String> = near.iter().map(|o| o.event_id.clone()).collect();
        ids.push(a.event_id.clone());
        out.push(Alert::new(
            "okta-ip-mismatch",
            &a.event_id,
            a.time,
            Severity::High,
            format!("{user}: AWS sign-in from {ip}, Okta SSO from elsewhere"),
            Some(user.to_owned()),
            format!(
                "IAM Identity Center sign-in from {ip} ({}), but Okta's SSO to AWS within {} came from {}.",
                aws_country.map(|c| c.to_string()).unwrap_or_else(|| "unknown country".into()),
                human(settings.okta_window),
                near.iter().map(|o| o.ip.map(|i| i.to_string()).unwrap_or_else(|| "?".into())).collect::<Vec<_>>().join(", ")
            ),
            json!({"aws": {"ip": ip, "country": aws_country}, "okta": okta}),
            ids,
            "A SAML assertion used from a different network than the browser that obtained it can mean a stolen assertion or session. Ask the user, then revoke their IAM Identity Center sessions if unexplained.",
        ));
    }
    out
}

fn where_(p: &Place) -> String {
    match (&p.city, p.country) {
        (Some(city), Some(c)) => format!("{city}, {c}"),
        (None, Some(c)) => c.to_string(),
        (Some(city), None) => city.clone(),
        (None, None) => "?".into(),
    }
}

fn describe(a: &Activity) -> String {
    match &a.kind {
        Kind::IdcSignIn { .. } => "an IAM Identity Center sign-in".into(),
        Kind::Portal { action, account_id, role_name } => format!(
            "portal {action}{}{}",
            account_id.as_deref().map(|x| format!(" in {x}")).unwrap_or_default(),
            role_name.as_deref().map(|x| format!(" as {x}")).unwrap_or_default()
        ),
        Kind::ConsoleLogin { .. } => "a console sign-in".into(),
        _ => format!("an API call in account {}", a.account_id.as_deref().unwrap_or("?")),
    }
}

/// `1h 5m`, `3m`, `45s`.
pub fn human(d: Duration) -> String {
    let s = d.num_seconds().abs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, _) => format!("{m}m"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
