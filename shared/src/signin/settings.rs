//! Sign-in check settings: thresholds, business hours, allow-lists. They live in the policy
//! file's optional `[signin]` table, which this module reads (validated with line and column like
//! the rest of the file); the access side ignores that table.

use std::collections::BTreeSet;
use std::net::IpAddr;

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use ipnet::IpNet;

use serde::Deserialize;
use toml::Spanned;

use crate::access::policy::{Policy, PolicyError};
use crate::geo::Country;
pub use crate::policy_file::parse_duration;
use crate::policy_file::{Checker, Diagnostic};

/// When privileged use is expected.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    /// Start of the working day (local).
    pub start: NaiveTime,
    /// End of the working day (local).
    pub end: NaiveTime,
    /// Working days, 0 = Monday.
    pub days: BTreeSet<u32>,
    /// The time zone they are in.
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
    /// Within business hours.
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

    /// `t` in the business hours' time zone, for alert text.
    pub fn local_time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.time_zone).format("%a %Y-%m-%d %H:%M %Z").to_string()
    }
}

/// The sign-in checks' settings (`[signin]`).
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
    /// `console-brute-force`: this many failed console sign-ins of one IAM user or root...
    pub console_failures: usize,
    /// ...within this window.
    pub console_failures_window: Duration,
    /// `console-username-guessing`: this many failed console sign-ins with user names that do
    /// not exist (`HIDDEN_DUE_TO_SECURITY_REASONS`) from one network in one account...
    pub username_guessing_failures: usize,
    /// ...within this window.
    pub username_guessing_window: Duration,
    /// `password-spraying`: failed sign-ins of this many distinct users from one network...
    pub spraying_users: usize,
    /// ...within this window.
    pub spraying_window: Duration,
    /// `okta-ip-mismatch`: Okta SSO to the AWS app within ± this of the IdC sign-in.
    pub okta_window: Duration,
    /// The Okta app(s) that sign in to AWS (display names or app ids); empty: any app whose
    /// name mentions AWS.
    pub okta_aws_apps: Vec<String>,
    /// `okta-failures-then-success`: this many Okta authentication failures...
    pub okta_failures: usize,
    /// ...then an IdC sign-in within this window.
    pub okta_failures_window: Duration,
    /// When privileged use is expected.
    pub business_hours: BusinessHours,
    /// Permission sets whose use outside business hours is a finding, in addition to those the
    /// policy grants to privileged tiers.
    pub privileged_permission_sets: BTreeSet<String>,
    /// Activity from these networks (corporate egress, VPN) is never a geo finding.
    pub allow_networks: Vec<IpNet>,
    /// Countries that are never a `new-country` finding and never count as travel.
    pub allow_countries: BTreeSet<Country>,
    /// Failed SCIM calls that make a `scim-token-rejected` finding...
    pub scim_failures: usize,
    /// ...within this window.
    pub scim_failures_window: Duration,
    /// Okta's published IP ranges file (`[signin] okta_ip_ranges_file`, relative to the policy
    /// file), as given; loaded into `okta_networks` by [`SigninPolicy::load`].
    pub okta_ip_ranges_file: Option<String>,
    /// The Okta cells to take from that file (empty: every cell).
    pub okta_cells: Vec<String>,
    /// Okta's networks: a SCIM call from outside them is `scim-token-foreign-use` (empty: the
    /// address is not checked).
    pub okta_networks: std::sync::Arc<Vec<IpNet>>,
    /// Okta's SCIM client user agent contains one of these (case-insensitive); another user
    /// agent is `scim-token-foreign-use` (empty: not checked).
    pub scim_user_agents: Vec<String>,
    /// `out-of-band-change`: changes to IAM Identity Center made in a session of one of these
    /// roles are idc-guard's own: a role ARN, or a role name, exactly or as CloudFormation
    /// names a template's role (`<stack>-<name>-<suffix>`; default: the template's access-sync
    /// role). Session names and IAM user names never count (see `detect::idc_guards_own`).
    pub idc_guard_roles: Vec<String>,
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
            console_failures: 10,
            console_failures_window: Duration::minutes(6),
            username_guessing_failures: 5,
            username_guessing_window: Duration::minutes(30),
            spraying_users: 5,
            spraying_window: Duration::minutes(30),
            okta_window: Duration::minutes(10),
            okta_aws_apps: Vec::new(),
            okta_failures: 5,
            okta_failures_window: Duration::minutes(30),
            business_hours: BusinessHours::default(),
            privileged_permission_sets: BTreeSet::new(),
            allow_networks: Vec::new(),
            allow_countries: BTreeSet::new(),
            scim_failures: 5,
            scim_failures_window: Duration::minutes(10),
            okta_ip_ranges_file: None,
            okta_cells: Vec::new(),
            okta_networks: std::sync::Arc::new(Vec::new()),
            scim_user_agents: vec!["Okta".into()],
            idc_guard_roles: vec!["AccessSyncFunctionRole".into()],
        }
    }
}

impl SigninSettings {
    /// The address is in an allowed network.
    pub fn network_allowed(&self, ip: IpAddr) -> bool {
        self.allow_networks.iter().any(|n| n.contains(&ip))
    }
}

/// `08:00-18:00` → (start, end), start before end.
pub fn parse_hours(s: &str) -> Option<(NaiveTime, NaiveTime)> {
    let (a, b) = s.split_once('-')?;
    let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?;
    let end = NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?;
    (start < end).then_some((start, end))
}

/// `mon` … `sun` (or full names) → 0 … 6.
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

// ---- the [signin] table -------------------------------------------------------------------------

/// The policy file as the sign-in side reads it: only `[signin]`.
#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    signin: RawSignin,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSignin {
    max_speed_kmh: Option<Spanned<f64>>,
    min_travel_km: Option<Spanned<f64>>,
    baseline_days: Option<Spanned<i64>>,
    replay_window: Option<Spanned<String>>,
    brute_force_failures: Option<Spanned<i64>>,
    brute_force_window: Option<Spanned<String>>,
    console_failures: Option<Spanned<i64>>,
    console_failures_window: Option<Spanned<String>>,
    username_guessing_failures: Option<Spanned<i64>>,
    username_guessing_window: Option<Spanned<String>>,
    spraying_users: Option<Spanned<i64>>,
    spraying_window: Option<Spanned<String>>,
    okta_window: Option<Spanned<String>>,
    okta_failures: Option<Spanned<i64>>,
    okta_failures_window: Option<Spanned<String>>,
    business_hours: Option<Spanned<String>>,
    business_days: Option<Vec<Spanned<String>>>,
    time_zone: Option<Spanned<String>>,
    #[serde(default)]
    privileged_permission_sets: Vec<String>,
    #[serde(default)]
    okta_aws_apps: Vec<String>,
    #[serde(default)]
    allow_networks: Vec<Spanned<String>>,
    #[serde(default)]
    allow_countries: Vec<Spanned<String>>,
    scim_failures: Option<Spanned<i64>>,
    scim_failures_window: Option<Spanned<String>>,
    okta_ip_ranges_file: Option<String>,
    #[serde(default)]
    okta_cells: Vec<String>,
    scim_user_agents: Option<Vec<String>>,
    idc_guard_roles: Option<Vec<String>>,
}

impl SigninSettings {
    /// Reads the `[signin]` table of a policy file's text; `Some` when it has no errors. Other
    /// tables are the access side's and are not looked at (beyond being valid TOML).
    pub fn check(text: &str) -> (Option<SigninSettings>, Vec<Diagnostic>) {
        let mut c = Checker::new(text);
        let raw: RawFile = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                c.error(e.span().map(|s| s.start).unwrap_or(0), e.message().trim().to_owned());
                return (None, c.diagnostics);
            }
        };
        let settings = signin_settings(&mut c, raw.signin);
        let ok = !c.has_errors();
        (ok.then_some(settings), c.diagnostics)
    }
}

fn signin_settings(c: &mut Checker<'_>, raw: RawSignin) -> SigninSettings {
    let mut s = SigninSettings::default();
    let positive = |c: &mut Checker<'_>, v: Option<Spanned<f64>>, name: &str, into: &mut f64| {
        if let Some(v) = v {
            match *v.get_ref() {
                x if x > 0.0 && x.is_finite() => *into = x,
                _ => c.error(v.span().start, format!("{name} must be a positive number")),
            }
        }
    };
    positive(c, raw.max_speed_kmh, "max_speed_kmh", &mut s.max_speed_kmh);
    positive(c, raw.min_travel_km, "min_travel_km", &mut s.min_travel_km);
    let count = |c: &mut Checker<'_>, v: Option<Spanned<i64>>, name: &str, into: &mut usize| {
        if let Some(v) = v {
            match usize::try_from(*v.get_ref()) {
                Ok(x) if x > 0 => *into = x,
                _ => c.error(v.span().start, format!("{name} must be 1 or more")),
            }
        }
    };
    let mut days = 0usize;
    count(c, raw.baseline_days, "baseline_days", &mut days);
    if days > 0 {
        s.baseline_days = days as i64;
    }
    count(c, raw.brute_force_failures, "brute_force_failures", &mut s.brute_force_failures);
    count(c, raw.console_failures, "console_failures", &mut s.console_failures);
    count(c, raw.spraying_users, "spraying_users", &mut s.spraying_users);
    count(
        c,
        raw.username_guessing_failures,
        "username_guessing_failures",
        &mut s.username_guessing_failures,
    );
    count(c, raw.okta_failures, "okta_failures", &mut s.okta_failures);
    count(c, raw.scim_failures, "scim_failures", &mut s.scim_failures);
    let duration =
        |c: &mut Checker<'_>, v: Option<Spanned<String>>, name: &str, into: &mut Duration| {
            if let Some(v) = v {
                match parse_duration(v.get_ref()) {
                Some(d) => *into = d,
                None => c.error(
                    v.span().start,
                    format!(
                        "{name} {:?} must be a duration such as \"30s\", \"10m\", \"2h\" or \"1d\"",
                        v.get_ref()
                    ),
                ),
            }
            }
        };
    duration(c, raw.replay_window, "replay_window", &mut s.replay_window);
    duration(c, raw.brute_force_window, "brute_force_window", &mut s.brute_force_window);
    duration(
        c,
        raw.console_failures_window,
        "console_failures_window",
        &mut s.console_failures_window,
    );
    duration(c, raw.spraying_window, "spraying_window", &mut s.spraying_window);
    duration(
        c,
        raw.username_guessing_window,
        "username_guessing_window",
        &mut s.username_guessing_window,
    );
    duration(c, raw.okta_window, "okta_window", &mut s.okta_window);
    duration(c, raw.okta_failures_window, "okta_failures_window", &mut s.okta_failures_window);
    duration(c, raw.scim_failures_window, "scim_failures_window", &mut s.scim_failures_window);
    s.okta_ip_ranges_file = raw.okta_ip_ranges_file.filter(|f| !f.trim().is_empty());
    s.okta_cells = raw.okta_cells;
    if let Some(roles) = raw.idc_guard_roles {
        s.idc_guard_roles = roles.into_iter().filter(|r| !r.trim().is_empty()).collect();
    }
    if let Some(agents) = raw.scim_user_agents {
        s.scim_user_agents = agents.into_iter().filter(|a| !a.trim().is_empty()).collect();
    }
    if let Some(h) = raw.business_hours {
        match parse_hours(h.get_ref()) {
            Some((start, end)) => (s.business_hours.start, s.business_hours.end) = (start, end),
            None => c.error(
                h.span().start,
                format!(
                    "business_hours {:?} must look like \"08:00-18:00\" (start before end)",
                    h.get_ref()
                ),
            ),
        }
    }
    if let Some(days) = raw.business_days {
        s.business_hours.days.clear();
        for d in days {
            match parse_weekday(d.get_ref()) {
                Some(n) => {
                    s.business_hours.days.insert(n);
                }
                None => c.error(
                    d.span().start,
                    format!("{:?} is not a day of the week (mon … sun)", d.get_ref()),
                ),
            }
        }
    }
    if let Some(tz) = raw.time_zone {
        match tz.get_ref().parse() {
            Ok(z) => s.business_hours.time_zone = z,
            Err(_) => c.error(
                tz.span().start,
                format!(
                    "time_zone {:?} is not an IANA time zone such as \"Europe/Berlin\"",
                    tz.get_ref()
                ),
            ),
        }
    }
    s.privileged_permission_sets = raw.privileged_permission_sets.into_iter().collect();
    s.okta_aws_apps = raw.okta_aws_apps;
    for n in raw.allow_networks {
        match n
            .get_ref()
            .parse::<ipnet::IpNet>()
            .or_else(|_| n.get_ref().parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        {
            Ok(net) => s.allow_networks.push(net.trunc()),
            Err(_) => c.error(
                n.span().start,
                format!("{:?} is not an address or CIDR network", n.get_ref()),
            ),
        }
    }
    for cc in raw.allow_countries {
        match Country::parse(cc.get_ref()) {
            Some(country) => {
                s.allow_countries.insert(country);
            }
            None => c.error(
                cc.span().start,
                format!("{:?} is not a two-letter country code", cc.get_ref()),
            ),
        }
    }
    s
}

/// What the sign-in checks take from the policy file: the `[signin]` settings, and the permission
/// sets whose use is privileged (those the access rules grant to a privileged tier, plus
/// `[signin] privileged_permission_sets`).
#[derive(Debug, Clone, PartialEq)]
pub struct SigninPolicy {
    /// Thresholds, business hours, allow-lists.
    pub settings: SigninSettings,
    /// Privileged permission set names.
    pub privileged: BTreeSet<String>,
}

impl SigninPolicy {
    /// Reads the policy file at `path`; warnings are returned, errors fail it.
    pub fn load(path: &std::path::Path) -> Result<(Self, Vec<Diagnostic>), PolicyError> {
        // One read of the file for both of its readers.
        let text = Policy::read_file(path)?;
        let (policy, mut warnings) = Policy::from_file_text(path, &text)?;
        let (settings, diagnostics) = SigninSettings::check(&text);
        let Some(settings) = settings else {
            return Err(PolicyError { source_name: Some(path.display().to_string()), diagnostics });
        };
        warnings.extend(diagnostics);
        let mut settings = settings;
        if let Some(file) = settings.okta_ip_ranges_file.clone() {
            let at = path.parent().unwrap_or(std::path::Path::new(".")).join(&file);
            let networks = std::fs::read_to_string(&at)
                .map_err(|e| e.to_string())
                .and_then(|text| okta_ip_ranges(&text, &settings.okta_cells));
            match networks {
                Ok(n) => settings.okta_networks = std::sync::Arc::new(n),
                Err(reason) => {
                    return Err(PolicyError {
                        source_name: Some(path.display().to_string()),
                        diagnostics: vec![Diagnostic {
                            severity: crate::policy_file::Level::Error,
                            line: 0,
                            column: 0,
                            message: format!(
                                "[signin] okta_ip_ranges_file {}: {reason} (refresh it with scripts/okta-ip-ranges.sh)",
                                at.display()
                            ),
                        }],
                    });
                }
            }
        }
        Ok((Self::from_parts(settings, &policy), warnings))
    }

    /// Joins the `[signin]` settings with the access policy's privileged tiers.
    pub fn from_parts(settings: SigninSettings, policy: &Policy) -> Self {
        let mut privileged = policy.privileged_permission_sets();
        privileged.extend(settings.privileged_permission_sets.iter().cloned());
        Self { settings, privileged }
    }
}

/// Okta's published IP ranges (`https://s3.amazonaws.com/okta-ip-ranges/ip_ranges.json`: an
/// object keyed by cell, `us_cell_1`, `emea_cell_2`, …, each with `ip_ranges`, a list of CIDR
/// networks), limited to `cells` when any are named.
pub fn okta_ip_ranges(text: &str, cells: &[String]) -> Result<Vec<IpNet>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let by_cell = doc.as_object().ok_or("not an object keyed by Okta cell")?;
    for cell in cells {
        if !by_cell.contains_key(cell) {
            return Err(format!("no cell {cell:?} in the file"));
        }
    }
    let mut networks = Vec::new();
    for (cell, entry) in by_cell {
        if !cells.is_empty() && !cells.contains(cell) {
            continue;
        }
        let ranges = entry
            .get("ip_ranges")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| format!("cell {cell:?} has no ip_ranges list"))?;
        for r in ranges {
            let text = r.as_str().unwrap_or_default();
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("cell {cell:?}: {text:?} is not a network"))?;
            networks.push(net.trunc());
        }
    }
    if networks.is_empty() {
        return Err("no networks in the file".into());
    }
    Ok(networks)
}

#[cfg(test)]
mod policy_file_tests {
    use super::*;
    use crate::access::policy::tests::ADMIN_RULE;
    use crate::policy_file::Level;

    fn errors(text: &str) -> Vec<String> {
        let (p, d) = SigninSettings::check(text);
        assert!(p.is_none() || d.iter().all(|d| d.severity == Level::Warning));
        d.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn the_okta_ip_ranges_file_is_read_beside_the_policy_and_a_bad_one_stops_the_load() {
        let dir = std::env::temp_dir().join(format!("idc-guard-ranges-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let ranges = include_str!("../../testdata/okta-ip-ranges-test.json");
        std::fs::write(dir.join("okta-ip-ranges.json"), ranges).unwrap();
        let policy = dir.join("access-policy.toml");
        let text = format!(
            "[signin]\nokta_ip_ranges_file = \"okta-ip-ranges.json\"\nokta_cells = [\"us_cell_1\"]\nscim_failures = 3\n{ADMIN_RULE}"
        );
        std::fs::write(&policy, &text).unwrap();
        let (p, _) = SigninPolicy::load(&policy).unwrap();
        assert_eq!(p.settings.okta_networks.len(), 2, "us_cell_1 only");
        assert_eq!(p.settings.scim_failures, 3);
        std::fs::write(dir.join("okta-ip-ranges.json"), "{}").unwrap();
        let e = SigninPolicy::load(&policy).unwrap_err();
        assert!(e.to_string().contains("okta_ip_ranges_file"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_signin_table_sets_thresholds_hours_and_allow_lists() {
        let text = format!(
            r#"[signin]
max_speed_kmh = 1000
baseline_days = 45
replay_window = "90m"
business_hours = "08:00-18:00"
business_days = ["mon", "tue", "wed", "thu"]
time_zone = "Europe/Berlin"
allow_networks = ["203.0.113.0/24", "2001:db8::1"]
allow_countries = ["de"]
privileged_permission_sets = ["BreakGlass"]
okta_aws_apps = ["AWS IAM Identity Center"]
{ADMIN_RULE}"#
        );
        let (p, d) = SigninSettings::check(&text);
        let p = p.unwrap_or_else(|| panic!("{d:?}"));
        assert_eq!(p.max_speed_kmh, 1000.0);
        assert_eq!(p.baseline_days, 45);
        assert_eq!(p.replay_window, chrono::Duration::minutes(90));
        assert_eq!(p.business_hours.days.len(), 4);
        assert_eq!(p.business_hours.time_zone.name(), "Europe/Berlin");
        assert_eq!(p.allow_networks.len(), 2);
        assert!(p.allow_countries.contains(&Country::parse("DE").unwrap()));
        assert_eq!(p.privileged_permission_sets, BTreeSet::from(["BreakGlass".to_owned()]));
        let policy = Policy::check(&text, None).0.unwrap();
        assert_eq!(
            SigninPolicy::from_parts(p.clone(), &policy).privileged,
            BTreeSet::from(["AdministratorAccess".to_owned(), "BreakGlass".to_owned()]),
            "admin-tier sets plus the extra ones"
        );
        // Defaults without the table.
        let (p, _) = SigninSettings::check(ADMIN_RULE);
        assert_eq!(p.unwrap(), SigninSettings::default());
    }

    #[test]
    fn signin_mistakes_are_reported_with_line_and_column() {
        let e = errors(&format!(
            r#"[signin]
max_speed_kmh = -5
okta_window = "ten minutes"
business_hours = "18:00-08:00"
business_days = ["someday"]
time_zone = "Mars/Olympus"
allow_networks = ["10.0.0.0/33"]
allow_countries = ["Germany"]
{ADMIN_RULE}"#
        ));
        let joined = e.join("\n");
        for expected in [
            "2:17: error: max_speed_kmh must be a positive number",
            "3:15: error: okta_window \"ten minutes\"",
            "4:18: error: business_hours \"18:00-08:00\"",
            "5:18: error: \"someday\" is not a day of the week",
            "6:13: error: time_zone \"Mars/Olympus\"",
            "7:19: error: \"10.0.0.0/33\" is not an address or CIDR network",
            "8:20: error: \"Germany\" is not a two-letter country code",
        ] {
            assert!(joined.contains(expected), "missing {expected:?} in\n{joined}");
        }
        let unknown = errors(&format!("[signin]\nspeed = 3\n{ADMIN_RULE}"));
        assert!(unknown[0].contains("unknown field `speed`"), "{unknown:?}");
    }

    #[test]
    fn durations_in_the_table_are_errors_with_positions_not_crashes() {
        for value in ["10é", "é", "1€", "9223372036854775807d", ""] {
            let v = serde_json::to_string(value).unwrap();
            let (s, d) = SigninSettings::check(&format!(
                "[signin]\nreplay_window = {v}\nbusiness_hours = {v}\n"
            ));
            assert!(s.is_none(), "{value:?} accepted");
            assert_eq!(d.len(), 2, "{value:?}: {d:?}");
            assert!(d.iter().all(|d| d.line > 1 && d.column > 0), "{value:?}: {d:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_policy_text_crashes_the_signin_reader(text in "\\PC{0,200}") {
            let _ = SigninSettings::check(&text);
        }
    }
}
