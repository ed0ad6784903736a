//! The access policy (`access-policy.toml`): permission sets managed as code, and rules that map
//! IdC group display names to permission sets and target accounts.
//!
//! ```toml
//! [settings]
//! prune = true            # false: report drift, delete nothing
//! max_deletions = 20      # a run that would delete more refuses its deletions and alerts
//!
//! [[permission_set]]
//! name = "ReadOnly"
//! session_duration = "PT8H"
//! managed_policies = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
//!
//! [[rule]]
//! groups = "aws-team-{team}"
//! permission_sets = ["TeamDeveloper"]
//! tier = "team"
//! review_every = "30d"
//! targets = { tags = { team = "{team}" } }
//! exclude = { ous = ["ou-ab12-sandbox1"] }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::pattern::{GroupPattern, placeholders};
use crate::policy_file::{Checker, Diagnostic, Level, first_error, split_unit};

/// The policy could not be used; every error is listed.
#[derive(Debug, thiserror::Error)]
#[error("invalid access policy{}: {}", source_name.as_deref().map(|s| format!(" {s}")).unwrap_or_default(), first_error(.diagnostics))]
pub struct PolicyError {
    /// The file, when read from one.
    pub source_name: Option<String>,
    /// Every finding, errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
}

/// The `[settings]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `false`: report drift, delete nothing.
    pub prune: bool,
    /// A run that would delete more deletes nothing and alerts.
    pub max_deletions: usize,
    /// Tiers whose groups are privileged: a membership added to one raises an alert.
    pub privileged_tiers: Vec<String>,
    /// Keep a deactivated user's session deny after their sessions have ended (released only
    /// when Okta reactivates them). Default `false`: released once the longest session is over.
    pub keep_revoked_while_deactivated: bool,
    /// A membership in a grantable group that no active grant explains is removed (default:
    /// only reported, `unexplained-membership`).
    pub remove_unexplained_members: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            prune: true,
            max_deletions: 20,
            privileged_tiers: vec!["admin".into()],
            keep_revoked_while_deactivated: false,
            remove_unexplained_members: false,
        }
    }
}

/// A customer managed policy reference: the same name and path must exist in each target account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CustomerManagedPolicy {
    /// The policy's name.
    pub name: String,
    /// Its path (`/` by default).
    pub path: String,
}

/// A permission set's permissions boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionsBoundary {
    /// An AWS managed policy.
    ManagedPolicyArn(String),
    /// A customer managed policy.
    CustomerManaged(CustomerManagedPolicy),
}

/// A permission set declared in the policy. `managed = false` names a set that exists in IdC
/// but is administered elsewhere: rules may grant it, idc-guard never changes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionSetSpec {
    /// The name (unique in IdC).
    pub name: String,
    /// `false`: the permission set exists in IdC and is only assigned, never changed.
    pub managed: bool,
    /// Its description.
    pub description: Option<String>,
    /// ISO-8601, `PT1H` .. `PT12H`; IdC's default (`PT1H`) when absent.
    pub session_duration: String,
    /// AWS managed policy ARNs.
    pub managed_policies: BTreeSet<String>,
    /// Customer managed policy references.
    pub customer_managed_policies: BTreeSet<CustomerManagedPolicy>,
    /// The inline policy document, normalised (compact JSON).
    pub inline_policy: Option<String>,
    /// The permissions boundary.
    pub permissions_boundary: Option<PermissionsBoundary>,
    /// The relay state (the console URL to land on).
    pub relay_state: Option<String>,
}

/// Which accounts a rule grants in (or excludes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    /// Every account of the organization (the management account only when named).
    pub all_accounts: bool,
    /// Account ids.
    pub accounts: BTreeSet<String>,
    /// OU ids (or the root id); an account in a child OU matches too.
    pub ous: BTreeSet<String>,
    /// Every tag must match; values may use the rule's `{captures}`.
    pub tags: BTreeMap<String, String>,
}

impl Targets {
    /// No target at all.
    pub fn is_empty(&self) -> bool {
        !self.all_accounts
            && self.accounts.is_empty()
            && self.ous.is_empty()
            && self.tags.is_empty()
    }
}

/// One `[[rule]]`: groups matching a pattern get permission sets in target accounts.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its name (for reports and alerts).
    pub name: String,
    /// The group display-name pattern.
    pub groups: GroupPattern,
    /// The permission sets granted.
    pub permission_sets: Vec<String>,
    /// Where.
    pub targets: Targets,
    /// Where not.
    pub exclude: Targets,
    /// The tier (`core`, `team`, `admin`): privileged tiers raise alerts on membership.
    pub tier: Option<String>,
    /// How often membership must be reviewed.
    pub review_every_days: Option<u32>,
}

/// A checked access policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `[settings]`.
    pub settings: Settings,
    /// The permission sets, managed or assigned only.
    pub permission_sets: Vec<PermissionSetSpec>,
    /// The rules.
    pub rules: Vec<Rule>,
    /// Okta groups that may be granted for a time (`[[grantable]]`).
    pub grantable: Vec<Grantable>,
    /// Who decides in access reviews (`[[review]]`).
    pub reviews: Vec<super::review::ReviewOwners>,
}

pub use super::grants::grantable::Grantable;

// ---- the file's shape ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    settings: RawSettings,
    #[serde(default, rename = "permission_set")]
    permission_sets: Vec<Spanned<RawPermissionSet>>,
    #[serde(default, rename = "rule")]
    rules: Vec<Spanned<RawRule>>,
    #[serde(default)]
    grantable: Vec<Spanned<super::grants::grantable::RawGrantable>>,
    #[serde(default)]
    review: Vec<Spanned<super::review::RawReview>>,
    /// The `[signin]` table belongs to the sign-in checks (`signin::settings`), which read it
    /// from the same file.
    #[serde(default)]
    #[allow(dead_code)]
    signin: Option<toml::Table>,
    /// The `[health]` table belongs to the integration-health checks (`health::settings`).
    #[serde(default)]
    #[allow(dead_code)]
    health: Option<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    prune: Option<bool>,
    max_deletions: Option<Spanned<i64>>,
    privileged_tiers: Option<Vec<String>>,
    keep_revoked_while_deactivated: Option<bool>,
    remove_unexplained_members: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPermissionSet {
    name: Spanned<String>,
    #[serde(default = "yes")]
    managed: bool,
    description: Option<Spanned<String>>,
    session_duration: Option<Spanned<String>>,
    #[serde(default)]
    managed_policies: Vec<Spanned<String>>,
    #[serde(default)]
    customer_managed_policies: Vec<Spanned<RawCustomerManaged>>,
    inline_policy: Option<Spanned<String>>,
    inline_policy_file: Option<Spanned<String>>,
    permissions_boundary: Option<Spanned<RawBoundary>>,
    relay_state: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustomerManaged {
    name: String,
    #[serde(default = "root_path")]
    path: String,
}

fn root_path() -> String {
    "/".into()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawBoundary {
    Arn(String),
    CustomerManaged(RawCustomerManaged),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    groups: Spanned<String>,
    permission_sets: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    targets: Option<Spanned<RawTargets>>,
    #[serde(default)]
    exclude: Option<Spanned<RawTargets>>,
    tier: Option<String>,
    review_every: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTargets {
    #[serde(default)]
    all_accounts: bool,
    #[serde(default)]
    accounts: Vec<Spanned<String>>,
    #[serde(default)]
    ous: Vec<Spanned<String>>,
    #[serde(default)]
    tags: BTreeMap<String, Spanned<String>>,
}

// ---- validation -------------------------------------------------------------------------------

/// A 12-digit account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `ou-` + 4–32 lowercase alphanumerics + `-` + 8–32 lowercase alphanumerics, or a root `r-xxxx`.
pub fn is_ou_or_root_id(s: &str) -> bool {
    let lower_alnum = |p: &str| p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if let Some(rest) = s.strip_prefix("ou-") {
        let mut parts = rest.splitn(2, '-');
        let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        return (4..=32).contains(&a.len())
            && (8..=32).contains(&b.len())
            && lower_alnum(a)
            && lower_alnum(b);
    }
    if let Some(rest) = s.strip_prefix("r-") {
        return (4..=32).contains(&rest.len()) && lower_alnum(rest);
    }
    false
}

/// `90d`, `2w` → days.
pub fn parse_review_interval(s: &str) -> Option<u32> {
    let (n, unit) = split_unit(s)?;
    let n: u32 = n.parse().ok().filter(|n| *n > 0)?;
    match unit {
        'd' => Some(n),
        'w' => n.checked_mul(7),
        _ => None,
    }
}

/// ISO-8601 `PT<h>H<m>M` between 1 and 12 hours (IdC's limits) → minutes.
pub fn parse_session_duration(s: &str) -> Option<u32> {
    let rest = s.strip_prefix("PT")?;
    let mut minutes = 0u32;
    let mut number = String::new();
    let mut seen_any = false;
    for c in rest.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u32 = number.parse().ok()?;
        number.clear();
        minutes = minutes.checked_add(match c {
            'H' => n.checked_mul(60)?,
            'M' => n,
            _ => return None,
        })?;
        seen_any = true;
    }
    (seen_any && number.is_empty() && (60..=720).contains(&minutes)).then_some(minutes)
}

fn is_managed_policy_arn(s: &str) -> bool {
    // arn:<partition>:iam::aws:policy/<path/>name
    let mut parts = s.splitn(6, ':');
    let (arn, partition, service, region, account, resource) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next());
    arn == Some("arn")
        && partition.is_some_and(|p| p.starts_with("aws"))
        && service == Some("iam")
        && region == Some("")
        && account == Some("aws")
        && resource.is_some_and(|r| r.starts_with("policy/") && r.len() > "policy/".len())
}

impl Policy {
    /// Reads and validates a policy file; `inline_policy_file` paths are relative to it.
    pub fn load(path: &Path) -> Result<(Policy, Vec<Diagnostic>), PolicyError> {
        let text = Self::read_file(path)?;
        Self::from_file_text(path, &text)
    }

    /// The text of a policy file; a file that cannot be read is a finding at 0:0.
    pub fn read_file(path: &Path) -> Result<String, PolicyError> {
        std::fs::read_to_string(path).map_err(|e| PolicyError {
            source_name: Some(path.display().to_string()),
            diagnostics: vec![Diagnostic {
                severity: Level::Error,
                line: 0,
                column: 0,
                message: format!("cannot read the policy file: {e}"),
            }],
        })
    }

    /// Validates the text of the policy file at `path` (read once by the caller).
    pub fn from_file_text(
        path: &Path,
        text: &str,
    ) -> Result<(Policy, Vec<Diagnostic>), PolicyError> {
        let base = path.parent().unwrap_or(Path::new("."));
        let (policy, diagnostics) = Self::check(text, Some(base));
        match policy {
            Some(p) => Ok((p, diagnostics)),
            None => Err(PolicyError { source_name: Some(path.display().to_string()), diagnostics }),
        }
    }

    /// Parses a policy from text; the policy is `Some` when there are no errors (warnings allowed).
    pub fn check(text: &str, base_dir: Option<&Path>) -> (Option<Policy>, Vec<Diagnostic>) {
        let mut c = Checker::new(text);
        let raw: RawPolicy = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                c.error(offset, e.message().trim().to_owned());
                return (None, c.diagnostics);
            }
        };
        let settings = settings(&mut c, raw.settings);
        let mut permission_sets = Vec::new();
        let mut names = BTreeSet::new();
        for ps in raw.permission_sets {
            let offset = ps.span().start;
            let name = ps.get_ref().name.get_ref().clone();
            if !names.insert(name.clone()) {
                c.error(offset, format!("permission set {name:?} is declared twice"));
                continue;
            }
            if let Some(spec) = permission_set(&mut c, ps.into_inner(), base_dir) {
                permission_sets.push(spec);
            }
        }
        let mut rules = Vec::new();
        for (i, rule) in raw.rules.into_iter().enumerate() {
            if let Some(r) = self::rule(&mut c, i, rule, &names) {
                rules.push(r);
            }
        }
        let grantable = super::grants::grantable::parse(&mut c, raw.grantable);
        let reviews = super::review::parse(&mut c, raw.review);
        if rules.is_empty() && !c.diagnostics.iter().any(|d| d.severity == Level::Error) {
            c.warn(0, "the policy has no [[rule]]: nothing will be granted");
        }
        let ok = !c.diagnostics.iter().any(|d| d.severity == Level::Error);
        c.diagnostics.sort_by_key(|d| (d.line, d.column));
        (
            ok.then_some(Policy { settings, permission_sets, rules, grantable, reviews }),
            c.diagnostics,
        )
    }

    /// The grantable group of this name.
    pub fn grantable(&self, group: &str) -> Option<&Grantable> {
        self.grantable.iter().find(|g| g.group == group)
    }

    /// A permission set by name.
    pub fn permission_set(&self, name: &str) -> Option<&PermissionSetSpec> {
        self.permission_sets.iter().find(|p| p.name == name)
    }

    /// Permission sets granted by rules of a privileged tier (the sign-in checks add
    /// `[signin] privileged_permission_sets`).
    pub fn privileged_permission_sets(&self) -> BTreeSet<String> {
        let tiers = &self.settings.privileged_tiers;
        self.rules
            .iter()
            .filter(|r| r.tier.as_ref().is_some_and(|t| tiers.contains(t)))
            .flat_map(|r| r.permission_sets.iter().cloned())
            .collect()
    }

    /// Every permission set name the policy declares (the only ones idc-guard assigns or removes).
    pub fn permission_set_names(&self) -> BTreeSet<&str> {
        self.permission_sets.iter().map(|p| p.name.as_str()).collect()
    }
}

fn settings(c: &mut Checker<'_>, raw: RawSettings) -> Settings {
    let mut s = Settings::default();
    if let Some(prune) = raw.prune {
        s.prune = prune;
    }
    if let Some(m) = raw.max_deletions {
        match usize::try_from(*m.get_ref()) {
            Ok(v) => s.max_deletions = v,
            Err(_) => c.error(m.span().start, "max_deletions must be 0 or more"),
        }
    }
    if let Some(t) = raw.privileged_tiers {
        s.privileged_tiers = t;
    }
    if let Some(keep) = raw.keep_revoked_while_deactivated {
        s.keep_revoked_while_deactivated = keep;
    }
    if let Some(remove) = raw.remove_unexplained_members {
        s.remove_unexplained_members = remove;
    }
    s
}

fn permission_set(
    c: &mut Checker<'_>,
    raw: RawPermissionSet,
    base_dir: Option<&Path>,
) -> Option<PermissionSetSpec> {
    let mut ok = true;
    let name = raw.name.get_ref().clone();
    let name_ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|ch| ch.is_ascii_alphanumeric() || "+=,.@-_".contains(ch));
    if !name_ok {
        c.error(
            raw.name.span().start,
            format!("permission set name {name:?} must be 1-32 characters of [A-Za-z0-9+=,.@_-]"),
        );
        ok = false;
    }
    let session_duration = match &raw.session_duration {
        Some(d) if parse_session_duration(d.get_ref()).is_none() => {
            c.error(
                d.span().start,
                format!(
                    "session_duration {:?} must be ISO-8601 between PT1H and PT12H, e.g. \"PT8H\"",
                    d.get_ref()
                ),
            );
            ok = false;
            String::new()
        }
        Some(d) => d.get_ref().clone(),
        None => "PT1H".into(),
    };
    let mut managed_policies = BTreeSet::new();
    for arn in &raw.managed_policies {
        if !is_managed_policy_arn(arn.get_ref()) {
            c.error(
                arn.span().start,
                format!(
                    "{:?} is not an AWS-managed policy ARN (arn:aws:iam::aws:policy/...)",
                    arn.get_ref()
                ),
            );
            ok = false;
        }
        managed_policies.insert(arn.get_ref().clone());
    }
    let mut customer_managed_policies = BTreeSet::new();
    for cm in raw.customer_managed_policies {
        let span = cm.span().start;
        let cm = cm.into_inner();
        if cm.name.is_empty() || !cm.path.starts_with('/') || !cm.path.ends_with('/') {
            c.error(
                span,
                "customer-managed policy needs a name and a path that starts and ends with '/'",
            );
            ok = false;
        }
        customer_managed_policies.insert(CustomerManagedPolicy { name: cm.name, path: cm.path });
    }
    let inline_policy = match (&raw.inline_policy, &raw.inline_policy_file) {
        (Some(_), Some(f)) => {
            c.error(f.span().start, "use inline_policy or inline_policy_file, not both");
            ok = false;
            None
        }
        (Some(text), None) => normalise_json(c, text.span().start, text.get_ref(), "inline_policy"),
        (None, Some(file)) => match base_dir {
            Some(dir) => match std::fs::read_to_string(dir.join(file.get_ref())) {
                Ok(text) => normalise_json(c, file.span().start, &text, file.get_ref()),
                Err(e) => {
                    c.error(file.span().start, format!("cannot read {:?}: {e}", file.get_ref()));
                    ok = false;
                    None
                }
            },
            None => {
                c.error(
                    file.span().start,
                    "inline_policy_file needs the policy to be read from a file",
                );
                ok = false;
                None
            }
        },
        (None, None) => None,
    };
    if (raw.inline_policy.is_some() || raw.inline_policy_file.is_some()) && inline_policy.is_none()
    {
        ok = false;
    }
    // Session revocation adds a deny listing the revoked users to this inline policy, within
    // IAM's role-policy quota: warn while there is still time to shorten it.
    if let Some(text) = &inline_policy {
        let room = super::revoke_policy::room_for_ids(Some(text));
        if room < super::revoke_policy::MIN_ROOM_FOR_IDS {
            let at = raw
                .inline_policy
                .as_ref()
                .map(|t| t.span().start)
                .or(raw.inline_policy_file.as_ref().map(|f| f.span().start))
                .unwrap_or_default();
            c.warn(
                at,
                format!(
                    "this inline policy is {} characters without whitespace: it leaves room for {room} revoked user(s) in the session deny before IAM's role-policy quota of 10,240 (at least {} advised); a revocation past it cannot cover this permission set",
                    super::revoke_policy::iam_size(text),
                    super::revoke_policy::MIN_ROOM_FOR_IDS
                ),
            );
        }
    }
    let permissions_boundary = raw.permissions_boundary.map(|b| {
        let span = b.span().start;
        match b.into_inner() {
            RawBoundary::Arn(arn) => {
                if !arn.starts_with("arn:aws") || !arn.contains(":policy/") {
                    c.error(span, format!("permissions_boundary {arn:?} is not a policy ARN"));
                    ok = false;
                }
                PermissionsBoundary::ManagedPolicyArn(arn)
            }
            RawBoundary::CustomerManaged(cm) => {
                PermissionsBoundary::CustomerManaged(CustomerManagedPolicy {
                    name: cm.name,
                    path: cm.path,
                })
            }
        }
    });
    let spec = PermissionSetSpec {
        name,
        managed: raw.managed,
        description: raw.description.map(|d| d.into_inner()),
        session_duration,
        managed_policies,
        customer_managed_policies,
        inline_policy,
        permissions_boundary,
        relay_state: raw.relay_state.map(|r| r.into_inner()),
    };
    ok.then_some(spec)
}

/// A JSON value with every object's keys sorted, whatever map type serde_json was built with
/// (`preserve_order` keeps source order): two documents that mean the same compare equal.
pub fn canonical_json(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> =
                map.into_iter().map(|(k, v)| (k, canonical_json(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical_json).collect()),
        other => other,
    }
}

/// A JSON document's canonical text (see [`canonical_json`]); text that is not JSON unchanged.
pub fn canonical_json_text(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .map(|v| canonical_json(v).to_string())
        .unwrap_or_else(|_| text.to_owned())
}

fn normalise_json(c: &mut Checker<'_>, offset: usize, text: &str, what: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if v.is_object() => Some(canonical_json(v).to_string()),
        Ok(_) => {
            c.error(offset, format!("{what}: an IAM policy document must be a JSON object"));
            None
        }
        Err(e) => {
            c.error(offset, format!("{what}: not valid JSON ({e})"));
            None
        }
    }
}

fn targets(c: &mut Checker<'_>, raw: RawTargets, captures: &[String], ok: &mut bool) -> Targets {
    let mut t = Targets { all_accounts: raw.all_accounts, ..Default::default() };
    for a in raw.accounts {
        if !is_account_id(a.get_ref()) {
            c.error(a.span().start, format!("{:?} is not a 12-digit AWS account id", a.get_ref()));
            *ok = false;
        }
        t.accounts.insert(a.into_inner());
    }
    for ou in raw.ous {
        if !is_ou_or_root_id(ou.get_ref()) {
            c.error(
                ou.span().start,
                format!(
                    "{:?} is not an OU id (ou-xxxx-xxxxxxxx) or root id (r-xxxx)",
                    ou.get_ref()
                ),
            );
            *ok = false;
        }
        t.ous.insert(ou.into_inner());
    }
    for (key, value) in raw.tags {
        match placeholders(value.get_ref()) {
            Ok(names) => {
                for n in names.iter().filter(|n| !captures.contains(n)) {
                    c.error(
                        value.span().start,
                        format!(
                            "tag {key}: {{{n}}} is not a placeholder of the rule's groups pattern"
                        ),
                    );
                    *ok = false;
                }
            }
            Err(e) => {
                c.error(value.span().start, e);
                *ok = false;
            }
        }
        t.tags.insert(key, value.into_inner());
    }
    t
}

fn rule(
    c: &mut Checker<'_>,
    index: usize,
    raw: Spanned<RawRule>,
    declared: &BTreeSet<String>,
) -> Option<Rule> {
    let rule_start = raw.span().start;
    let raw = raw.into_inner();
    let mut ok = true;
    let name = raw
        .name
        .clone()
        .unwrap_or_else(|| format!("rule {} ({})", index + 1, raw.groups.get_ref()));
    let groups = match GroupPattern::compile(raw.groups.get_ref()) {
        Ok(p) => Some(p),
        Err(e) => {
            c.error(raw.groups.span().start, format!("groups: {e}"));
            ok = false;
            None
        }
    };
    let captures = groups.as_ref().map(|g| g.captures().to_vec()).unwrap_or_default();
    let ps_span = raw.permission_sets.span().start;
    let mut permission_sets = Vec::new();
    for ps in raw.permission_sets.into_inner() {
        if !declared.contains(ps.get_ref()) {
            c.error(ps.span().start, format!("unknown permission set {:?}: declare it with [[permission_set]] (managed = false for one administered elsewhere)", ps.get_ref()));
            ok = false;
        }
        permission_sets.push(ps.into_inner());
    }
    if permission_sets.is_empty() {
        c.error(ps_span, "permission_sets is empty");
        ok = false;
    }
    let targets_span = raw.targets.as_ref().map(|t| t.span().start).unwrap_or(rule_start);
    let targets = match raw.targets {
        Some(t) => self::targets(c, t.into_inner(), &captures, &mut ok),
        None => Targets::default(),
    };
    let exclude = match raw.exclude {
        Some(t) => self::targets(c, t.into_inner(), &captures, &mut ok),
        None => Targets::default(),
    };
    if exclude.all_accounts {
        c.error(targets_span, "exclude.all_accounts would exclude everything");
        ok = false;
    }
    if targets.is_empty() {
        c.warn(targets_span, format!("{name} has no targets: it can never grant anything"));
    } else if !targets.all_accounts
        && targets.ous.is_empty()
        && targets.tags.is_empty()
        && targets.accounts.iter().all(|a| exclude.accounts.contains(a))
    {
        c.warn(
            targets_span,
            format!("{name} excludes every account it targets: it can never grant anything"),
        );
    }
    let review_every_days = match &raw.review_every {
        Some(r) => match parse_review_interval(r.get_ref()) {
            Some(d) => Some(d),
            None => {
                c.error(
                    r.span().start,
                    format!(
                        "review_every {:?} must be days or weeks, e.g. \"90d\" or \"2w\"",
                        r.get_ref()
                    ),
                );
                ok = false;
                None
            }
        },
        None => None,
    };
    Some(Rule {
        name,
        groups: groups?,
        permission_sets,
        targets,
        exclude,
        tier: raw.tier,
        review_every_days,
    })
    .filter(|_| ok)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_example_policy_is_valid_and_expresses_three_tiers() {
        let (p, d) = Policy::check(include_str!("../../../access-policy.example.toml"), None);
        let p = p.unwrap_or_else(|| panic!("{d:?}"));
        assert!(d.is_empty(), "{d:?}");
        let tiers: Vec<_> = p
            .rules
            .iter()
            .map(|r| (r.tier.clone().unwrap(), r.review_every_days.unwrap()))
            .collect();
        assert_eq!(tiers, [("core".into(), 90), ("team".into(), 30), ("admin".into(), 14)]);
        let team = p.permission_set("TeamDeveloper").unwrap();
        assert!(
            team.inline_policy.as_deref().unwrap().starts_with(r#"{"Statement":"#),
            "normalised JSON"
        );
    }

    #[test]
    fn inline_policies_compare_by_meaning_not_key_order() {
        let a = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        let b = r#"{"Statement":[{"Resource":"*","Action":"s3:*","Effect":"Allow"}],"Version":"2012-10-17"}"#;
        let canon = |t: &str| canonical_json(serde_json::from_str(t).unwrap()).to_string();
        assert_eq!(canon(a), canon(b));
        assert!(canon(a).starts_with(r#"{"Statement":[{"Action""#), "{}", canon(a));
    }

    fn errors(text: &str) -> Vec<String> {
        let (p, d) = Policy::check(text, None);
        assert!(p.is_none() || d.iter().all(|d| d.severity == Level::Warning));
        d.iter().map(|d| d.to_string()).collect()
    }

    /// An admin-tier rule, for tests that need a valid policy around what they check.
    pub(crate) const ADMIN_RULE: &str = r#"
[[permission_set]]
name = "AdministratorAccess"
managed_policies = ["arn:aws:iam::aws:policy/AdministratorAccess"]

[[rule]]
groups = "aws-admin-*"
permission_sets = ["AdministratorAccess"]
targets = { all_accounts = true }
tier = "admin"
"#;

    #[test]
    fn the_signin_table_is_left_to_the_signin_side() {
        let text = format!("[signin]\nmax_speed_kmh = -5\nunknown_key = 1\n{ADMIN_RULE}");
        let (p, d) = Policy::check(&text, None);
        assert!(p.is_some() && d.is_empty(), "{d:?}");
        assert_eq!(
            p.unwrap().privileged_permission_sets(),
            BTreeSet::from(["AdministratorAccess".to_owned()])
        );
    }

    #[test]
    fn every_kind_of_mistake_is_reported_with_line_and_column() {
        let text = r#"[[permission_set]]
name = "ReadOnly"
session_duration = "8 hours"
managed_policies = ["arn:aws:iam::123456789012:policy/Mine"]

[[rule]]
groups = "aws-team-{team"
permission_sets = ["ReadOnly", "Nope"]
review_every = "monthly"
targets = { accounts = ["12345"], ous = ["ou-xyz"], tags = { team = "{squad}" } }
"#;
        assert_eq!(
            errors(text),
            [
                r#"3:20: error: session_duration "8 hours" must be ISO-8601 between PT1H and PT12H, e.g. "PT8H""#,
                r#"4:21: error: "arn:aws:iam::123456789012:policy/Mine" is not an AWS-managed policy ARN (arn:aws:iam::aws:policy/...)"#,
                "7:10: error: groups: unclosed '{' at character 10",
                r#"8:32: error: unknown permission set "Nope": declare it with [[permission_set]] (managed = false for one administered elsewhere)"#,
                r#"9:16: error: review_every "monthly" must be days or weeks, e.g. "90d" or "2w""#,
                r#"10:25: error: "12345" is not a 12-digit AWS account id"#,
                r#"10:42: error: "ou-xyz" is not an OU id (ou-xxxx-xxxxxxxx) or root id (r-xxxx)"#,
                "10:69: error: tag team: {squad} is not a placeholder of the rule's groups pattern",
            ]
        );
    }

    #[test]
    fn syntax_errors_and_unknown_keys_have_positions_too() {
        let e = errors("[[rule]]\ngroups = \"x\"\npermision_sets = [\"A\"]\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("3:1: error: unknown field `permision_sets`"), "{e:?}");
        let e = errors("[settings]\nprune = maybe\n");
        assert!(e[0].starts_with("2:9: error:"), "{e:?}");
    }

    #[test]
    fn rules_that_can_never_grant_are_warnings() {
        let text = r#"[[permission_set]]
name = "A"
[[rule]]
groups = "g-*"
permission_sets = ["A"]
[[rule]]
groups = "h-*"
permission_sets = ["A"]
targets = { accounts = ["111111111111"] }
exclude = { accounts = ["111111111111"] }
"#;
        let (p, d) = Policy::check(text, None);
        assert!(p.is_some());
        let w: Vec<_> = d.iter().map(|d| (d.severity, d.line)).collect();
        assert_eq!(w, [(Level::Warning, 3), (Level::Warning, 9)]);
    }

    /// A policy whose every duration-like field holds `value`.
    fn policy_with_durations(value: &str) -> String {
        let v = serde_json::to_string(value).unwrap(); // a JSON string is a TOML basic string
        format!(
            "[[permission_set]]\nname = \"A\"\nsession_duration = {v}\n\n[[rule]]\nname = \"r\"\ngroups = \"aws-core-*\"\npermission_sets = [\"A\"]\ntargets = {{ all_accounts = true }}\ntier = \"core\"\nreview_every = {v}\n\n[signin]\nreplay_window = {v}\nbusiness_hours = {v}\n"
        )
    }

    #[test]
    fn multi_byte_and_huge_durations_are_errors_with_positions_not_crashes() {
        for value in [
            "10é",
            "é",
            "1€",
            "99999999999999999999d",
            "9223372036854775807s",
            "9223372036854775807d",
            "4294967295w",
            "",
        ] {
            let (policy, diagnostics) = Policy::check(&policy_with_durations(value), None);
            assert!(policy.is_none(), "{value:?} accepted");
            let errors: Vec<_> =
                diagnostics.iter().filter(|d| d.severity == Level::Error).collect();
            assert!(errors.len() >= 2, "{value:?}: {diagnostics:?}");
            assert!(
                errors.iter().all(|d| d.line > 0 && d.column > 0),
                "{value:?}: {diagnostics:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn no_duration_text_crashes_the_check(value in "\\PC{0,12}") {
            let _ = Policy::check(&policy_with_durations(&value), None);
            let _ = crate::policy_file::parse_duration(&value);
            let _ = parse_review_interval(&value);
            let _ = parse_session_duration(&value);
        }

        #[test]
        fn no_policy_text_crashes_the_check(text in "\\PC{0,200}") {
            let _ = Policy::check(&text, None);
        }
    }

    #[test]
    fn durations_and_ids() {
        assert_eq!(parse_session_duration("PT1H"), Some(60));
        assert_eq!(parse_session_duration("PT1H30M"), Some(90));
        assert_eq!(parse_session_duration("PT12H"), Some(720));
        assert_eq!(parse_session_duration("PT13H"), None);
        assert_eq!(parse_session_duration("PT30M"), None);
        assert_eq!(parse_session_duration("P1D"), None);
        assert_eq!(parse_review_interval("2w"), Some(14));
        assert_eq!(parse_review_interval("0d"), None);
        assert!(is_ou_or_root_id("ou-ab12-34cd56ef") && is_ou_or_root_id("r-ab12"));
        assert!(!is_ou_or_root_id("ou-AB12-34cd56ef") && !is_ou_or_root_id("ou-ab12"));
    }

    #[test]
    fn an_inline_policy_near_iams_role_quota_is_warned_with_its_room_for_revocations() {
        let actions: Vec<String> = (0..700).map(|i| format!("\"s3:Get{i:05}\"")).collect();
        let inline = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
            actions.join(",")
        );
        let text = format!(
            "[[permission_set]]\nname = \"Big\"\ninline_policy = '{inline}'\n\n[[rule]]\ngroups = \"aws-core-*\"\npermission_sets = [\"Big\"]\ntargets = {{ all_accounts = true }}\n"
        );
        let (policy, d) = Policy::check(&text, None);
        assert!(policy.is_some(), "{d:?}");
        assert!(
            d.iter().any(|d| d.severity == Level::Warning && d.message.contains("revoked user(s)")),
            "{d:?}"
        );
        // A small inline policy: no warning.
        let small = text.replace(&actions.join(","), "\"s3:GetObject\"");
        let (_, d) = Policy::check(&small, None);
        assert!(!d.iter().any(|d| d.message.contains("revoked user(s)")), "{d:?}");
    }
}
