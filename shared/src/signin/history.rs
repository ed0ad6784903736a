//! A user's recent history, kept so that a finding is a function of the events and not of the
//! order or the number of times they are read:
//!
//! - [`Stays`]: the user's sightings in time order, as stretches ("stays") of consecutive
//!   sightings near each other. Travel pairs are formed only between time-adjacent sightings;
//!   a late event is inserted in place and paired with its real neighbours, and an event read
//!   again (it is the end of a stay, or lies inside a stay of its own place) forms no pair.
//! - [`SessionUse`]: a portal session's uses per network, so a replay spread over two runs is
//!   found and has one id.
//! - [`FailureMemory`]: failed sign-ins counted (stored as [`FailedSignin`] records), so the
//!   next run continues the counting windows and a failure read again is never counted twice.
//!
//! Stays older than the longest gap travel can be impossible over are forgotten (and later
//! events before that point are not placed); session uses end with the replay window.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::model::{Activity, Kind};
use crate::geo::Place;
use crate::records::{FailedSignin, FailureKind};

/// Half the Earth's circumference: no two places are further apart.
const MAX_DISTANCE_KM: f64 = 20_040.0;
/// At most this many stays per user, however much the user moves within the horizon.
const MAX_STAYS: usize = 32;

/// Where and when a user was seen (persisted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sighting {
    /// When.
    pub time: DateTime<Utc>,
    /// From which address.
    pub ip: IpAddr,
    /// Where that address is.
    pub place: Place,
    /// The event.
    pub event_id: String,
}

impl Sighting {
    /// The total order sightings are kept in: time, then event id, then address (an export
    /// that repeats an event id for two events still orders them).
    fn order(&self, other: &Self) -> Ordering {
        (self.time, &self.event_id, self.ip).cmp(&(other.time, &other.event_id, other.ip))
    }
}

/// Consecutive sightings from places near each other: no pair inside it can be travel, so only
/// its ends are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stay {
    /// The earliest sighting.
    pub first: Sighting,
    /// The latest sighting (the same as `first` for a single one).
    pub last: Sighting,
}

/// Where a new sighting falls in the history, and which neighbours it must be compared with.
#[derive(Debug, PartialEq)]
pub enum Placement<'a> {
    /// Read before (an end of a stay), or inside a stay of a place near it: nothing to compare.
    Seen,
    /// Older than what the history still remembers: it cannot be placed.
    Forgotten,
    /// New: compare with these time-adjacent sightings (before, after).
    New {
        /// The sighting just before it.
        before: Option<&'a Sighting>,
        /// The sighting just after it.
        after: Option<&'a Sighting>,
    },
}

/// A user's sightings in time order, as stays.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stays {
    /// Oldest first; stays never overlap in time.
    #[serde(default)]
    pub stays: Vec<Stay>,
    /// Everything up to this time has been forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgotten_until: Option<DateTime<Utc>>,
}

impl Stays {
    /// The most recent sighting.
    pub fn latest(&self) -> Option<&Sighting> {
        self.stays.last().map(|s| &s.last)
    }

    /// Where `s` falls: `near` says whether two places are too close for travel between them.
    pub fn place(&self, s: &Sighting, near: impl Fn(&Place, &Place) -> bool) -> Placement<'_> {
        if self.forgotten_until.is_some_and(|f| s.time <= f) {
            return Placement::Forgotten;
        }
        // The first stay that does not end before `s`.
        let at = self.stays.partition_point(|st| st.last.order(s) == Ordering::Less);
        let before = at.checked_sub(1).map(|i| &self.stays[i].last);
        match self.stays.get(at) {
            Some(st) if st.first.order(s) != Ordering::Greater => {
                // An end of a stay, or inside one.
                if st.first.order(s) == Ordering::Equal || st.last.order(s) == Ordering::Equal {
                    return Placement::Seen;
                }
                if near(&st.first.place, &s.place) || near(&st.last.place, &s.place) {
                    return Placement::Seen;
                }
                // A late event far from the stay it falls into: its real neighbours are inside
                // the stay and were not kept; its ends are the nearest known.
                Placement::New { before: Some(&st.first), after: Some(&st.last) }
            }
            after => Placement::New { before, after: after.map(|st| &st.first) },
        }
    }

    /// Adds a [`Placement::New`] sighting in place, merging it with a neighbouring stay whose
    /// place is near, then forgets what lies beyond `horizon` before the latest sighting.
    pub fn insert(
        &mut self,
        s: Sighting,
        near: impl Fn(&Place, &Place) -> bool,
        horizon: Duration,
    ) {
        let at = self.stays.partition_point(|st| st.last.order(&s) == Ordering::Less);
        let inside = self.stays.get(at).is_some_and(|st| st.first.order(&s) == Ordering::Less);
        if inside {
            // Split the stay around the far sighting, keeping the ends known.
            let st = self.stays.remove(at);
            let left = Stay { first: st.first.clone(), last: st.first };
            let right = Stay { first: st.last.clone(), last: st.last };
            let mid = Stay { first: s.clone(), last: s };
            self.stays.splice(at..at, [left, mid, right]);
        } else {
            let near_before = at > 0 && near(&self.stays[at - 1].last.place, &s.place);
            let near_after = self.stays.get(at).is_some_and(|st| near(&st.first.place, &s.place));
            match (near_before, near_after) {
                (true, true) => {
                    let next = self.stays.remove(at);
                    self.stays[at - 1].last = next.last;
                }
                (true, false) => self.stays[at - 1].last = s,
                (false, true) => self.stays[at].first = s,
                (false, false) => self.stays.insert(at, Stay { first: s.clone(), last: s }),
            }
        }
        self.forget(horizon);
    }

    fn forget(&mut self, horizon: Duration) {
        let Some(latest) = self.latest().map(|s| s.time) else { return };
        let keep_from = latest - horizon;
        let stale = self.stays.iter().take_while(|st| st.last.time < keep_from).count();
        let drop = stale.max(self.stays.len().saturating_sub(MAX_STAYS)).min(self.stays.len() - 1);
        if drop > 0 {
            let until = self.stays[drop - 1].last.time;
            self.forgotten_until = Some(self.forgotten_until.map_or(until, |f| f.max(until)));
            self.stays.drain(..drop);
        }
    }
}

/// The longest gap between two sightings over which travel can still be impossible at
/// `max_speed_kmh` (beyond it, no distance on Earth is too far), at least an hour.
pub fn travel_horizon(max_speed_kmh: f64) -> Duration {
    const WEEK_MINUTES: f64 = 7.0 * 24.0 * 60.0;
    let minutes =
        if max_speed_kmh > 0.0 { MAX_DISTANCE_KM * 60.0 / max_speed_kmh } else { WEEK_MINUTES };
    Duration::minutes(minutes.clamp(60.0, WEEK_MINUTES).ceil() as i64)
}

/// One portal session's use from one network (persisted, so a session used from a second
/// network in a later run is still a replay).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionUse {
    /// The portal session (`credentialId`).
    pub session: String,
    /// The first address seen in this network.
    pub ip: IpAddr,
    /// First use from this network.
    pub first: DateTime<Utc>,
    /// Latest use from this network.
    pub last: DateTime<Utc>,
    /// The first use's event.
    pub event_id: String,
}

/// Records a use of `session` from `ip` (whose network is `net`, by `network_of`) and returns
/// the session's uses, one per network, that lie within `window` of this one. Uses that ended
/// more than `window` before it are forgotten. `changed` tells whether anything was new.
pub fn use_session<'a>(
    uses: &'a mut Vec<SessionUse>,
    session: &str,
    ip: IpAddr,
    time: DateTime<Utc>,
    event_id: &str,
    window: Duration,
    network_of: impl Fn(IpAddr) -> u128,
) -> (Vec<&'a SessionUse>, bool) {
    let before = uses.len();
    uses.retain(|u| u.last >= time - window || u.session == session && u.first <= time + window);
    let mut changed = uses.len() != before;
    let net = network_of(ip);
    match uses.iter_mut().find(|u| u.session == session && network_of(u.ip) == net) {
        Some(u) => {
            if time < u.first || (time == u.first && event_id < u.event_id.as_str()) {
                (u.first, u.event_id, u.ip) = (time, event_id.to_owned(), ip);
                changed = true;
            }
            if time > u.last {
                u.last = time;
                changed = true;
            }
        }
        None => {
            uses.push(SessionUse {
                session: session.to_owned(),
                ip,
                first: time,
                last: time,
                event_id: event_id.to_owned(),
            });
            changed = true;
        }
    }
    let live = uses
        .iter()
        .filter(|u| u.session == session && u.first - window <= time && time <= u.last + window)
        .collect();
    (live, changed)
}

/// The failed sign-ins the windowed detectors have counted, in this run or (loaded) in earlier
/// ones, by a stable hash of their identity; and those not yet saved.
#[derive(Debug, Default)]
pub struct FailureMemory {
    seen: HashSet<u64>,
    /// Counted in this run, to save.
    pub unsaved: Vec<FailedSignin>,
}

impl FailureMemory {
    /// Counts a failure: `false` when it was counted before (read again).
    pub fn first_time(&mut self, a: &Activity) -> bool {
        let identity = stable_hash(&a.identity());
        if !self.seen.insert(identity) {
            return false;
        }
        self.unsaved.extend(failure_of(a, identity));
        true
    }

    /// Whether a stored failure is new to this run (and marks it counted).
    pub fn first_load(&mut self, r: &FailedSignin) -> bool {
        self.seen.insert(r.identity)
    }
}

/// Whether the windowed detectors' memory of earlier failures matters to this activity: a
/// failure (it may continue a run) or a console sign-in (it may follow a guessing run).
pub fn uses_failure_memory(a: &Activity) -> bool {
    matches!(
        a.kind,
        Kind::Credential { success: false, .. }
            | Kind::ScimCall { success: false, .. }
            | Kind::ConsoleLogin { root: true, .. }
            | Kind::ConsoleLogin { iam_user: true, .. }
            | Kind::ConsoleLogin { success: false, .. }
    )
}

/// The stored form of a failed sign-in.
pub fn failure_of(a: &Activity, identity: u64) -> Option<FailedSignin> {
    let (kind, step, root, iam_user) = match &a.kind {
        Kind::Credential { step, success: false } => {
            (FailureKind::Credential, Some(step.to_string()), false, false)
        }
        Kind::ConsoleLogin { success: false, root, iam_user, .. } => {
            (FailureKind::Console, None, *root, *iam_user)
        }
        Kind::ScimCall { operation, success: false } => {
            (FailureKind::Scim, Some(operation.to_string()), false, false)
        }
        _ => return None,
    };
    Some(FailedSignin {
        time: a.time,
        event_id: a.event_id.clone(),
        source_ip: a.source_ip,
        kind,
        step,
        root,
        iam_user,
        user_name: a.user_name.as_deref().map(str::to_owned),
        user_id: a.user_id.as_deref().map(str::to_owned),
        account_id: a.account_id.as_deref().map(str::to_owned),
        identity,
    })
}

/// The activity a stored failed sign-in stands for, as the windowed detectors see it.
pub fn activity_of(r: &FailedSignin) -> Activity {
    let kind = match r.kind {
        FailureKind::Console => Kind::ConsoleLogin {
            success: false,
            mfa_used: false,
            mfa_known: true,
            root: r.root,
            iam_user: r.iam_user,
            identity_center_role: false,
            federated: false,
        },
        FailureKind::Credential => Kind::Credential {
            step: r.step.as_deref().unwrap_or("CredentialVerification").into(),
            success: false,
        },
        FailureKind::Scim => Kind::ScimCall {
            operation: r.step.as_deref().unwrap_or_default().into(),
            success: false,
        },
    };
    Activity {
        time: r.time,
        event_id: r.event_id.clone(),
        kind,
        user_name: r.user_name.as_deref().map(Into::into),
        user_id: r.user_id.as_deref().map(Into::into),
        session_id: None,
        source_ip: r.source_ip,
        source_text: None,
        user_agent: None,
        account_id: r.account_id.as_deref().map(Into::into),
        identity_store_id: None,
        permission_set: None,
        event_source: None,
        event_name: None,
        error_code: None,
    }
}

/// FNV-1a: the same value in every process and release (a `HashMap`'s hasher is seeded).
pub fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::geo::Country;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z").unwrap().to_utc()
            + Duration::minutes(minutes)
    }

    fn sighting(minutes: i64, country: &str, id: &str) -> Sighting {
        Sighting {
            time: at(minutes),
            ip: "192.0.2.1".parse().unwrap(),
            place: Place { country: Country::parse(country), ..Default::default() },
            event_id: id.into(),
        }
    }

    fn near(a: &Place, b: &Place) -> bool {
        a.country == b.country
    }

    fn add(stays: &mut Stays, s: Sighting) -> Vec<String> {
        let pairs = match stays.place(&s, near) {
            Placement::New { before, after } => {
                before.into_iter().chain(after).map(|n| n.event_id.clone()).collect()
            }
            _ => return vec!["-".into()],
        };
        stays.insert(s, near, Duration::hours(24));
        pairs
    }

    #[test]
    fn in_order_sightings_compare_with_the_one_before_and_stays_merge() {
        let mut s = Stays::default();
        assert!(add(&mut s, sighting(0, "DE", "a")).is_empty());
        assert_eq!(add(&mut s, sighting(5, "DE", "b")), ["a"]);
        assert_eq!(add(&mut s, sighting(10, "AU", "c")), ["b"]);
        assert_eq!(s.stays.len(), 2);
        assert_eq!(
            (s.stays[0].first.event_id.as_str(), s.stays[0].last.event_id.as_str()),
            ("a", "b")
        );
    }

    #[test]
    fn a_reread_sighting_is_seen_and_a_late_one_meets_its_real_neighbours() {
        let mut s = Stays::default();
        for (m, c, id) in [(0, "DE", "a"), (5, "DE", "b"), (10, "DE", "c"), (60, "AU", "d")] {
            add(&mut s, sighting(m, c, id));
        }
        for (m, c, id) in [(0, "DE", "a"), (10, "DE", "c"), (60, "AU", "d")] {
            assert_eq!(s.place(&sighting(m, c, id), near), Placement::Seen, "{id}");
        }
        // b lies inside the DE stay: seen as well (it is near the stay's ends).
        assert_eq!(s.place(&sighting(5, "DE", "b"), near), Placement::Seen);
        // A late US sighting between c and d: compared with c and d, not with d alone.
        assert_eq!(add(&mut s, sighting(30, "US", "late")), ["c", "d"]);
        assert_eq!(s.stays.len(), 3);
        // A late US sighting inside the DE stay splits it.
        assert_eq!(add(&mut s, sighting(7, "US", "x")), ["a", "c"]);
    }

    #[test]
    fn a_sighting_between_two_stays_joins_the_one_before_it_when_near() {
        let mut s = Stays::default();
        add(&mut s, sighting(0, "DE", "a"));
        add(&mut s, sighting(60, "AU", "b"));
        // Read late, between them, in Germany: compared with both, then part of the DE stay.
        assert_eq!(add(&mut s, sighting(10, "DE", "c")), ["a", "b"]);
        assert_eq!(s.stays.len(), 2, "{s:?}");
        assert_eq!(
            (s.stays[0].first.event_id.as_str(), s.stays[0].last.event_id.as_str()),
            ("a", "c")
        );
    }

    #[test]
    fn a_late_sighting_near_either_end_of_a_stay_is_seen() {
        // "Near" need not be transitive (300 km hops): a stay can run from one place to another
        // that is not near the first. Here DE–AT and AT–HU are near, DE–HU is not.
        let near = |a: &Place, b: &Place| {
            let pair = [a.country, b.country].map(|c| c.map(|c| c.to_string()).unwrap_or_default());
            pair[0] == pair[1]
                || matches!(
                    (pair[0].as_str(), pair[1].as_str()),
                    ("DE", "AT") | ("AT", "DE") | ("AT", "HU") | ("HU", "AT")
                )
        };
        let mut s = Stays::default();
        for (m, c, id) in [(0, "DE", "a"), (5, "AT", "b"), (10, "HU", "c")] {
            s.insert(sighting(m, c, id), near, Duration::hours(24));
        }
        assert_eq!(s.stays.len(), 1, "one stay from DE to HU: {s:?}");
        assert_eq!(s.place(&sighting(3, "DE", "late-de"), near), Placement::Seen);
        assert_eq!(s.place(&sighting(7, "HU", "late-hu"), near), Placement::Seen);
        // Near neither end: compared with both.
        assert!(matches!(s.place(&sighting(7, "US", "late-us"), near), Placement::New { .. }));
    }

    #[test]
    fn history_beyond_the_horizon_is_forgotten_and_not_placed_again() {
        let mut s = Stays::default();
        add(&mut s, sighting(0, "DE", "a"));
        add(&mut s, sighting(60, "AU", "b"));
        add(&mut s, sighting(60 * 30, "US", "c"));
        assert_eq!(s.stays.len(), 1, "{s:?}");
        assert_eq!(s.place(&sighting(0, "DE", "a"), near), Placement::Forgotten);
        assert_eq!(s.place(&sighting(30, "FR", "z"), near), Placement::Forgotten);
    }

    #[test]
    fn a_stay_a_horizon_old_is_still_remembered() {
        // The horizon is inclusive: a sighting exactly that long after another is compared.
        let mut s = Stays::default();
        add(&mut s, sighting(0, "DE", "a"));
        assert_eq!(add(&mut s, sighting(24 * 60, "AU", "b")), ["a"]);
        assert_eq!(s.stays.len(), 2, "{s:?}");
        assert_eq!(s.place(&sighting(0, "DE", "a"), near), Placement::Seen);
        add(&mut s, sighting(24 * 60 + 1, "AU", "c"));
        assert_eq!(s.place(&sighting(0, "DE", "a"), near), Placement::Forgotten);
        // Only what was dropped is forgotten: the stay kept is still known, re-reads included.
        assert_eq!(s.place(&sighting(24 * 60, "AU", "b"), near), Placement::Seen);
        assert!(matches!(s.place(&sighting(60, "US", "x"), near), Placement::New { .. }));
    }

    #[test]
    fn the_number_of_stays_is_bounded() {
        let mut s = Stays::default();
        for i in 0..100 {
            add(&mut s, sighting(i, if i % 2 == 0 { "DE" } else { "AU" }, &format!("e{i}")));
        }
        assert_eq!(s.stays.len(), MAX_STAYS);
        assert!(s.forgotten_until.is_some());
    }

    #[test]
    fn a_session_remembers_each_network_once_and_forgets_other_sessions_after_the_window() {
        let net = |ip: IpAddr| u128::from(matches!(ip, IpAddr::V4(v) if v.octets()[0] == 203));
        let (home, away) = ("192.0.2.1".parse().unwrap(), "203.0.113.9".parse().unwrap());
        let window = Duration::hours(2);
        let mut uses = Vec::new();
        let (live, changed) = use_session(&mut uses, "s1", home, at(0), "e5", window, net);
        assert!(changed && live.len() == 1);
        // The same event again: nothing new. Another address of the same network: one use.
        assert!(!use_session(&mut uses, "s1", home, at(0), "e5", window, net).1);
        assert!(
            !use_session(&mut uses, "s1", "192.0.2.77".parse().unwrap(), at(0), "e9", window, net)
                .1
        );
        assert_eq!(uses[0].event_id, "e5", "a later id at the same time is not the first use");
        // An earlier id at the same second, an earlier time: the first use moves back.
        assert!(use_session(&mut uses, "s1", home, at(0), "e1", window, net).1);
        assert_eq!(uses[0].event_id, "e1");
        assert!(use_session(&mut uses, "s1", home, at(-5), "e0", window, net).1);
        assert_eq!((uses[0].first, uses[0].last), (at(-5), at(0)));
        // A second network within the window: both uses are live (a replay).
        let (live, _) = use_session(&mut uses, "s1", away, at(30), "e7", window, net);
        assert_eq!(live.len(), 2);
        // Another session, exactly the window after s1's use from away: that use is kept (the
        // window is inclusive), the one from home (ended at 0) is dropped; a minute later the
        // other is too.
        use_session(&mut uses, "s2", home, at(30 + 120), "f1", window, net);
        let kept: Vec<_> = uses.iter().map(|u| (u.session.as_str(), u.event_id.as_str())).collect();
        assert_eq!(kept, [("s1", "e7"), ("s2", "f1")]);
        let (_, changed) = use_session(&mut uses, "s2", home, at(30 + 121), "f2", window, net);
        assert!(changed);
        assert_eq!(uses.iter().map(|u| u.session.as_str()).collect::<Vec<_>>(), ["s2"]);
        assert_eq!((uses[0].first, uses[0].last), (at(150), at(151)), "the use grew");
    }

    #[test]
    fn the_horizon_follows_the_speed_limit() {
        assert_eq!(travel_horizon(900.0), Duration::minutes(1336));
        assert_eq!(travel_horizon(100_000.0), Duration::hours(1));
        assert_eq!(travel_horizon(0.0), Duration::days(7));
    }

    #[test]
    fn the_stable_hash_is_fnv_1a() {
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
