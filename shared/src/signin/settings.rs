//! Sign-in check settings: thresholds, business hours, allow-lists. They live in the access
//! policy's optional `[signin]` table (validated with line and column like the rest of it).

use std::collections::BTreeSet;
use std::net::IpAddr;

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use ipnet::IpNet;

use crate::geo::Country;

#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub days: BTreeSet<u32>,
    pub time_zone: Tz,
}

impl Default for BusinessHours {
    fn default() -> Self {
        Self {
            start: NaiveTime::from_hms_opt(7, 0, 0).unwrap_or_default(),
            end: NaiveTime::from_hms_opt(20, 0, 0).unwrap_or_default(),
            days: [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri]
                .iter()
                .map(|d| d.num_days_from_monday())
                .collect(),
            time_zone: Tz::UTC,
        }
    }
}

impl BusinessHours {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&self.time_zone);
        let time = local.time();
        self.days.contains(&local.weekday().num_days_from_monday())
            && time >= self.start
            && time < self.end
    }

    /// The local calendar date of `t` (one off-hours finding per user, set and day).
    pub fn local_date(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.time_zone).format("%Y-%m-%d").to_string()
    }

    pub fn local_time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.time_zone).format("%a %Y-%m-%d %H:%M %Z").to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SigninSettings {
    /// `impossible-travel`: faster than this between consecutive activities...
    pub max_speed_kmh: f64,
    /// ...over at least this distance (lower bound), so neighbouring cities never fire.
    pub min_travel_km: f64,
    /// `new-country`: countries seen within this many days are the user's baseline.
    pub baseline_days: i64,
    /// `token-replay`: one portal session used from two networks within this window.
    pub replay_window: Duration,
    /// `brute-force`: this many IdC-directory credential failures...
    pub brute_force_failures: usize,
    /// ...within this window.
    pub brute_force_window: Duration,
    /// `okta-ip-mismatch`: Okta SSO to the AWS app within ± this of the IdC sign-in.
    pub okta_window: Duration,
    /// The Okta app(s) that sign in to AWS (display names or app ids); empty: any app whose
    /// name mentions AWS.
    pub okta_aws_apps: Vec<String>,
    /// `okta-failures-then-success`: this many Okta authentication failures...
    pub okta_failures: usize,
    /// ...then an IdC sign-in within this window.
    pub okta_failures_window: Duration,
    pub business_hours: BusinessHours,
    /// Permission sets whose use outside business hours is a finding, in addition to those the
    /// policy grants to privileged tiers.
    pub privileged_permission_sets: BTreeSet<String>,
    /// Activity from these networks (corporate egress, VPN) is never a geo finding.
    pub allow_networks: Vec<IpNet>,
    /// Countries that are never a `new-country` finding and never count as travel.
    pub allow_countries: BTreeSet<Country>,
}

impl Default for SigninSettings {
    fn default() -> Self {
        Self {
            max_speed_kmh: 900.0,
            min_travel_km: 300.0,
            baseline_days: 30,
            replay_window: Duration::hours(2),
            brute_force_failures: 10,
            brute_force_window: Duration::minutes(6),
            okta_window: Duration::minutes(10),
            okta_aws_apps: Vec::new(),
            okta_failures: 5,
            okta_failures_window: Duration::minutes(30),
            business_hours: BusinessHours::default(),
            privileged_permission_sets: BTreeSet::new(),
            allow_networks: Vec::new(),
            allow_countries: BTreeSet::new(),
        }
    }
}

impl SigninSettings {
    pub fn network_allowed(&self, ip: IpAddr) -> bool {
        self.allow_networks.iter().any(|n| n.contains(&ip))
    }
}

/// `30s`, `10m`, `2h`, `1d` → a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (n, unit) = split_unit(s.trim())?;
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    match unit {
        's' => Duration::try_seconds(n),
        'm' => Duration::try_minutes(n),
        'h' => Duration::try_hours(n),
        'd' => Duration::try_days(n),
        _ => None,
    }
}

/// `"10m"` → (`"10"`, `'m'`): the last character is the unit, whatever its width in bytes.
pub fn split_unit(s: &str) -> Option<(&str, char)> {
    let (at, unit) = s.char_indices().next_back()?;
    Some((&s[..at], unit))
}

/// `08:00-18:00` → (start, end), start before end.
pub fn parse_hours(s: &str) -> Option<(NaiveTime, NaiveTime)> {
    let (a, b) = s.split_once('-')?;
    let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?;
    let end = NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?;
    (start < end).then_some((start, end))
}

pub fn parse_weekday(s: &str) -> Option<u32> {
    s.parse::<Weekday>().ok().map(|d| d.num_days_from_monday())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_hours_follow_the_time_zone() {
        let hours = BusinessHours {
            time_zone: "Europe/Berlin".parse().unwrap(),
            ..BusinessHours::default()
        };
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        // Friday 2026-11-27 18:30 UTC = 19:30 in Berlin: inside 07:00-20:00.
        assert!(hours.contains(at("2026-11-27T18:30:00Z")));
        // 19:30 UTC = 20:30 Berlin: outside; Saturday: outside.
        assert!(!hours.contains(at("2026-11-27T19:30:00Z")));
        assert!(!hours.contains(at("2026-11-28T10:00:00Z")));
        assert_eq!(hours.local_date(at("2026-11-27T23:30:00Z")), "2026-11-28");
    }

    #[test]
    fn durations_and_hours() {
        assert_eq!(parse_duration("10m"), Some(Duration::minutes(10)));
        assert_eq!(parse_duration("2h"), Some(Duration::hours(2)));
        assert_eq!(parse_duration("0m"), None);
        assert_eq!(parse_duration("10"), None);
        assert!(parse_hours("08:00-18:00").is_some());
        assert!(parse_hours("18:00-08:00").is_none());
        assert_eq!(parse_weekday("sat"), Some(5));
    }
}
