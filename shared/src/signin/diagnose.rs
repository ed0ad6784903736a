//! `idc-guard diagnose`: one person's Okta and CloudTrail events around a time, and a verdict on
//! where a failed sign-in stopped — Okta authentication, the SAML assertion, the role
//! assumption, or permission evaluation — with the events that show it.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::model::{Activity, Kind};
use super::okta::OktaSignin;

/// One line of a user's sign-in timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// When.
    pub time: DateTime<Utc>,
    /// `okta` or `aws`.
    pub source: &'static str,
    /// The event (Okta's event type, or CloudTrail's event name).
    pub event: String,
    /// Its outcome.
    pub outcome: String,
    /// The client address.
    pub ip: Option<String>,
    /// What else matters (reason, app, role, error code).
    pub detail: String,
    /// The event's id.
    pub event_id: String,
}

/// Where a sign-in failed, along Okta → SAML → role → permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Okta refused the user (password, MFA, policy).
    OktaAuthentication,
    /// IAM Identity Center did not accept Okta's SAML assertion.
    SamlAssertion,
    /// The user could not get the role (no assignment, or the permission set is not provisioned).
    RoleAssumption,
    /// The role was assumed, but an action was denied.
    PermissionEvaluation,
    /// The events show no failure.
    NoFailureFound,
    /// No events for the user in the window.
    NoEvents,
}

/// `diagnose`'s conclusion.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Where it failed.
    pub stage: Stage,
    /// What happened, in a sentence.
    pub explanation: String,
    /// The event ids that show it.
    pub evidence: Vec<String>,
    /// What to do.
    pub next_steps: String,
}

/// A user's sign-in timeline and where it failed.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// The user.
    pub user: String,
    /// Around when.
    pub at: DateTime<Utc>,
    /// Okta's and AWS's events, in time order.
    pub timeline: Vec<Entry>,
    /// The conclusion.
    pub verdict: Verdict,
}

fn okta_entry(o: &OktaSignin) -> Entry {
    Entry {
        time: o.time,
        source: "okta",
        event: o.event_type.clone(),
        outcome: if o.success { "SUCCESS".into() } else { "FAILURE".into() },
        ip: o.ip.map(|i| i.to_string()),
        detail: [
            o.reason.clone(),
            o.app.clone().map(|a| format!("app {a}")),
            o.place.country.map(|c| c.to_string()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", "),
        event_id: o.event_id.clone(),
    }
}

fn aws_entry(a: &Activity) -> Entry {
    let detail = match &a.kind {
        Kind::Portal { account_id, role_name, .. } => format!(
            "account {} role {}",
            account_id.as_deref().unwrap_or("?"),
            role_name.as_deref().unwrap_or("?")
        ),
        Kind::IdcSignIn { credential_type, .. } => {
            format!("credential {}", credential_type.as_deref().unwrap_or("?"))
        }
        _ => a.account_id.clone().map(|x| format!("account {x}")).unwrap_or_default(),
    };
    Entry {
        time: a.time,
        source: "aws",
        event: format!(
            "{}:{}",
            a.event_source.as_deref().unwrap_or("?").trim_end_matches(".amazonaws.com"),
            a.event_name.as_deref().unwrap_or("?")
        ),
        outcome: match (&a.error_code, failed(a)) {
            (Some(code), _) => code.to_string(),
            (None, true) => "Failure".into(),
            (None, false) => "Success".into(),
        },
        ip: a.source_ip.map(|i| i.to_string()),
        detail,
        event_id: a.event_id.clone(),
    }
}

fn failed(a: &Activity) -> bool {
    a.error_code.is_some()
        || matches!(
            a.kind,
            Kind::IdcSignIn { success: false, .. }
                | Kind::Credential { success: false, .. }
                | Kind::ConsoleLogin { success: false, .. }
        )
}

fn is_access_denied(code: &str) -> bool {
    let c = code.to_ascii_lowercase();
    c.contains("accessdenied") || c.contains("unauthorized") || c.contains("forbidden")
}

/// Builds the timeline of `user` within ±`window` of `at` and decides where it failed.
/// `aws` and `okta` must already be this user's events.
pub fn diagnose(
    user: &str,
    at: DateTime<Utc>,
    window: Duration,
    aws: &[Activity],
    okta: &[OktaSignin],
) -> Diagnosis {
    let within = |t: DateTime<Utc>| (t - at).abs() <= window;
    let aws: Vec<&Activity> = aws.iter().filter(|a| within(a.time)).collect();
    let okta: Vec<&OktaSignin> = okta.iter().filter(|o| within(o.time)).collect();
    let mut timeline: Vec<Entry> =
        okta.iter().map(|o| okta_entry(o)).chain(aws.iter().map(|a| aws_entry(a))).collect();
    timeline.sort_by(|a, b| a.time.cmp(&b.time).then(a.source.cmp(b.source)));
    let verdict = verdict(&aws, &okta);
    Diagnosis { user: user.to_owned(), at, timeline, verdict }
}

fn ids<'a>(xs: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    xs.into_iter().map(str::to_owned).collect()
}

fn verdict(aws: &[&Activity], okta: &[&OktaSignin]) -> Verdict {
    if aws.is_empty() && okta.is_empty() {
        return Verdict {
            stage: Stage::NoEvents,
            explanation: "No Okta or CloudTrail events for this user in the window.".into(),
            evidence: vec![],
            next_steps: "Widen --window, check the user name (the SAML NameID, usually the Okta login), and pass the CloudTrail files and the Okta System Log export (--okta) for that time.".into(),
        };
    }
    let okta_ok_sso = okta.iter().filter(|o| o.is_sso() && o.success).collect::<Vec<_>>();
    let idc_ok = aws
        .iter()
        .filter(|a| matches!(a.kind, Kind::IdcSignIn { success: true, .. }))
        .collect::<Vec<_>>();
    let idc_failed = aws
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                Kind::IdcSignIn { success: false, .. } | Kind::Credential { success: false, .. }
            )
        })
        .collect::<Vec<_>>();
    // 1. Okta authentication: failures and no success afterwards.
    let last_okta_failure = okta.iter().filter(|o| !o.success).max_by_key(|o| o.time);
    if let Some(f) = last_okta_failure
        && !okta.iter().any(|o| o.success && o.time > f.time)
        && idc_ok.is_empty()
    {
        let failures: Vec<&&OktaSignin> = okta.iter().filter(|o| !o.success).collect();
        return Verdict {
            stage: Stage::OktaAuthentication,
            explanation: format!(
                "Okta refused the sign-in ({} failure{}, last: {} — {}); AWS never saw an attempt.",
                failures.len(),
                if failures.len() == 1 { "" } else { "s" },
                f.event_type,
                f.reason.as_deref().unwrap_or("no reason given")
            ),
            evidence: ids(failures.iter().map(|o| o.event_id.as_str())),
            next_steps: "Look at the Okta System Log for the user: password, MFA factor, sign-on policy, or the user not being assigned to the AWS IAM Identity Center app.".into(),
        };
    }
    // 2. SAML assertion: Okta issued one, IdC did not accept a sign-in.
    if idc_ok.is_empty() && (!okta_ok_sso.is_empty() || !idc_failed.is_empty()) {
        let mut evidence = ids(okta_ok_sso.iter().map(|o| o.event_id.as_str()));
        evidence.extend(idc_failed.iter().map(|a| a.event_id.clone()));
        return Verdict {
            stage: Stage::SamlAssertion,
            explanation: if idc_failed.is_empty() {
                "Okta completed SSO to the AWS app, but IAM Identity Center recorded no successful sign-in: the SAML assertion was not accepted.".into()
            } else {
                format!("IAM Identity Center rejected the sign-in ({}).", idc_failed.iter().filter_map(|a| a.error_code.clone()).collect::<Vec<_>>().join(", "))
            },
            evidence,
            next_steps: "Check that the user exists in IAM Identity Center (SCIM provisioned, same user name as the NameID), that the NameID format and attribute mappings match, that the IdP certificate in IdC is current, and the clocks.".into(),
        };
    }
    // 3. Role assumption: portal could not federate / get role credentials.
    let role_failures: Vec<&&Activity> = aws
        .iter()
        .filter(|a| {
            a.error_code.is_some()
                && matches!(&a.kind, Kind::Portal { action, .. } if matches!(&**action, "Federate" | "GetRoleCredentials" | "ListAccountRoles" | "ListAccounts"))
                || (matches!(a.kind, Kind::AssumeRoleWithSaml) && a.error_code.is_some())
        })
        .collect();
    if !role_failures.is_empty() {
        return Verdict {
            stage: Stage::RoleAssumption,
            explanation: format!(
                "The user signed in, but getting into an account failed: {}.",
                role_failures
                    .iter()
                    .map(|a| format!("{} {}", a.event_name.as_deref().unwrap_or("?"), a.error_code.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            evidence: ids(role_failures.iter().map(|a| a.event_id.as_str())),
            next_steps: "Check the account assignment (idc-guard plan), that the permission set is provisioned to the account, and the role's trust policy and any SCP that denies sts:AssumeRoleWithSAML.".into(),
        };
    }
    // 4. Permission evaluation: in the account, calls were denied.
    let denied: Vec<&&Activity> = aws
        .iter()
        .filter(|a| {
            matches!(a.kind, Kind::Other) && a.error_code.as_deref().is_some_and(is_access_denied)
        })
        .collect();
    if !denied.is_empty() {
        return Verdict {
            stage: Stage::PermissionEvaluation,
            explanation: format!(
                "The user reached the account, but {} call{} denied ({}).",
                denied.len(),
                if denied.len() == 1 { " was" } else { "s were" },
                denied
                    .iter()
                    .map(|a| format!("{}:{}", a.event_source.as_deref().unwrap_or("?").trim_end_matches(".amazonaws.com"), a.event_name.as_deref().unwrap_or("?")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            evidence: ids(denied.iter().map(|a| a.event_id.as_str())),
            next_steps: "Compare the permission set's policies with the denied actions; check SCPs, resource policies and permission boundaries (IAM policy simulator or the error message's policy type).".into(),
        };
    }
    Verdict {
        stage: Stage::NoFailureFound,
        explanation: "Okta and IAM Identity Center both show success and no call was denied in the window.".into(),
        evidence: ids(idc_ok.iter().map(|a| a.event_id.as_str())),
        next_steps: "If the user still reports a failure, ask for the exact time and error page; widen --window or add CloudTrail files from the member account.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::okta::{OktaFact, fact_of, read_events};
    use crate::signin::sources::parse;

    fn okta(file: &str) -> Vec<OktaSignin> {
        read_events(file)
            .0
            .iter()
            .filter_map(fact_of)
            .filter_map(|(_, f)| match f {
                OktaFact::Signin(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    const OKTA_FAIL: &str =
        include_str!("../../../events/okta/user-authentication-sso-failure.json");
    const OKTA_OK: &str = include_str!("../../../events/okta/user-authentication-sso-success.json");
    const SIGNIN: &str = include_str!("../../../events/cloudtrail/idc-signin-2025-shape.json");
    const PORTAL: &str = include_str!("../../../events/cloudtrail/sso-get-role-credentials.json");
    const DENIED: &str = include_str!("../../../events/cloudtrail/api-call-access-denied.json");

    #[test]
    fn okta_failure_is_diagnosed_at_okta() {
        let o = okta(OKTA_FAIL);
        let d = diagnose("alice@acme.example", o[0].time, Duration::minutes(30), &[], &o);
        assert_eq!(d.verdict.stage, Stage::OktaAuthentication);
        assert_eq!(d.verdict.evidence, [o[0].event_id.clone()]);
    }

    #[test]
    fn an_okta_sso_without_an_idc_sign_in_is_a_saml_problem() {
        let o = okta(OKTA_OK);
        let d = diagnose("alice@acme.example", o[0].time, Duration::minutes(30), &[], &o);
        assert_eq!(d.verdict.stage, Stage::SamlAssertion);
    }

    #[test]
    fn role_and_permission_failures() {
        let mut signin = parse(SIGNIN.as_bytes()).activities;
        let at = signin[0].time;
        let mut portal = parse(PORTAL.as_bytes()).activities.remove(0);
        portal.time = at + Duration::minutes(1);
        let mut denied_portal = portal.clone();
        denied_portal.error_code = Some("ForbiddenException".into());
        let d =
            diagnose("alice", at, Duration::minutes(30), &[signin[0].clone(), denied_portal], &[]);
        assert_eq!(d.verdict.stage, Stage::RoleAssumption, "{:?}", d.verdict);
        let mut denied = parse(DENIED.as_bytes()).activities.remove(0);
        denied.time = at + Duration::minutes(2);
        assert_eq!(denied.error_code.as_deref(), Some("AccessDenied"));
        signin.extend([portal, denied]);
        let d = diagnose("alice", at, Duration::minutes(30), &signin, &[]);
        assert_eq!(d.verdict.stage, Stage::PermissionEvaluation, "{:?}", d.verdict);
        assert_eq!(d.timeline.len(), 3);
        let ok = diagnose("alice", at, Duration::minutes(30), &signin[..2], &[]);
        assert_eq!(ok.verdict.stage, Stage::NoFailureFound);
        assert_eq!(
            diagnose("alice", at, Duration::minutes(30), &[], &[]).verdict.stage,
            Stage::NoEvents
        );
    }
}
