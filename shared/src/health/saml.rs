//! `saml-trust`: the AWS app's SAML signing key and settings.
//!
//! Okta does not rotate a SAML app's certificate by itself: when the active key
//! (`credentials.signing.kid`) expires, every sign-in to AWS fails. The check warns
//! `cert_warn_days` before (60), fails `cert_fail_days` before (14), and alerts once at each of
//! `cert_alert_days` (60/30/7/1). IdC has no API for its external identity provider settings,
//! so the ACS URL and issuer are compared with what the person copied from the IdC console
//! (`[health] acs_url`, `issuer`), exactly: a trailing slash breaks the trust.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::ports::OktaReader;
use super::settings::HealthSettings;
use super::{AlertSpec, Check, Status, text, urlencode};
use crate::alert::Severity;

/// The check's id.
pub const ID: &str = "saml-trust";
/// The check's title.
pub const TITLE: &str = "SAML trust (Okta signing key and settings)";

/// Runs the check on the AWS app `app`.
pub async fn check<Okta: OktaReader>(
    okta: &Okta,
    app: &Value,
    settings: &HealthSettings,
    now: DateTime<Utc>,
) -> Check {
    let app_id = text(app, "/id").unwrap_or_default();
    let keys = match okta
        .get_list(&format!("/api/v1/apps/{}/credentials/keys", urlencode(app_id)))
        .await
    {
        Ok(keys) => keys,
        Err(e) => return Check::unknown(ID, TITLE, format!("reading the app's signing keys: {e}")),
    };
    let mut result = Check::pass(ID, TITLE, "");
    let mut problems: Vec<(Status, String, &'static str, Severity, String)> = Vec::new();
    let active_kid = text(app, "/credentials/signing/kid");
    let active = active_kid.and_then(|kid| keys.iter().find(|k| text(k, "/kid") == Some(kid)));
    let expiry = |k: &Value| {
        text(k, "/expiresAt")
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    match (active_kid, active) {
        (None, _) => problems.push((
            Status::Warn,
            "the app has no credentials.signing.kid: the active key cannot be told".into(),
            "saml-settings-mismatch",
            Severity::Medium,
            "no-active-kid".into(),
        )),
        (Some(kid), None) => problems.push((
            Status::Fail,
            format!("the active key {kid} is not among the app's keys"),
            "saml-settings-mismatch",
            Severity::High,
            format!("missing-key:{kid}"),
        )),
        (Some(kid), Some(key)) => match expiry(key) {
            None => {
                result.evidence.push(format!("active key {kid}: no expiresAt in Okta's answer"))
            }
            Some(expires) => {
                let days_left = (expires - now).num_days();
                result.evidence.push(format!(
                    "active key {kid} expires {} ({days_left} days)",
                    expires.format("%Y-%m-%d")
                ));
                let status = if days_left <= settings.cert_fail_days {
                    Some(Status::Fail)
                } else if days_left <= settings.cert_warn_days {
                    Some(Status::Warn)
                } else {
                    None
                };
                // The smallest threshold crossed: one alert per threshold.
                let threshold =
                    settings.cert_alert_days.iter().copied().filter(|t| days_left <= *t).min();
                if let Some(status) = status {
                    let severity =
                        if status == Status::Fail { Severity::High } else { Severity::Medium };
                    let when = if days_left < 0 {
                        format!("expired {} days ago", -days_left)
                    } else {
                        format!("expires in {days_left} days")
                    };
                    problems.push((
                        status,
                        format!("the SAML signing key {kid} {when}"),
                        "saml-cert-expiring",
                        severity,
                        format!("{kid}:{}", threshold.unwrap_or(settings.cert_warn_days)),
                    ));
                }
            }
        },
    }
    // A newer key that is not active yet: generated for a rotation, waiting to be activated.
    let active_expiry = active.and_then(expiry);
    for key in &keys {
        let kid = text(key, "/kid").unwrap_or_default();
        if Some(kid) != active_kid && expiry(key).zip(active_expiry).is_some_and(|(a, b)| a > b) {
            result.evidence.push(format!(
                "key {kid} is ready to activate: upload its metadata certificate to IAM Identity Center, then make it the app's active key"
            ));
        }
    }
    // Signature algorithm and NameID format, where the app exposes them.
    let sign_on = app.pointer("/settings/signOn");
    match sign_on.and_then(|s| text(s, "/signatureAlgorithm")) {
        Some("RSA_SHA256") => result.evidence.push("signature algorithm RSA_SHA256".into()),
        Some(other) => problems.push((
            Status::Fail,
            format!("the signature algorithm is {other}, not RSA_SHA256"),
            "saml-settings-mismatch",
            Severity::High,
            format!("algorithm:{other}"),
        )),
        None => result.evidence.push(
            "signature algorithm: not exposed by this app's API (OIN app); Okta signs the AWS app with SHA-256".into(),
        ),
    }
    if let Some(format) = sign_on.and_then(|s| text(s, "/subjectNameIdFormat")) {
        result.evidence.push(format!("NameID format {format}"));
        if format.ends_with(":transient") {
            problems.push((
                Status::Fail,
                "the NameID format is transient: IdC matches the NameID to a user name".into(),
                "saml-settings-mismatch",
                Severity::High,
                "nameid:transient".into(),
            ));
        }
    }
    if let Some(statements) =
        sign_on.and_then(|s| s.get("attributeStatements")).and_then(Value::as_array)
    {
        let names: Vec<&str> = statements.iter().filter_map(|a| text(a, "/name")).collect();
        result.evidence.push(format!(
            "attribute statements: {}",
            if names.is_empty() { "none".into() } else { names.join(", ") }
        ));
    }
    // ACS URL and issuer against the IdC console's values.
    let okta_acs =
        text(app, "/settings/app/acsURL").or(sign_on.and_then(|s| text(s, "/ssoAcsUrl")));
    let okta_issuer =
        text(app, "/settings/app/entityID").or(sign_on.and_then(|s| text(s, "/audience")));
    for (what, configured, in_okta, key) in [
        ("ACS URL", settings.acs_url.as_deref(), okta_acs, "acs_url"),
        ("issuer", settings.issuer.as_deref(), okta_issuer, "issuer"),
    ] {
        match (configured, in_okta) {
            (None, _) => result.evidence.push(format!(
                "{what}: not compared (set [health] {key} to the value in the IAM Identity Center console)"
            )),
            (Some(_), None) => result
                .evidence
                .push(format!("{what}: the app's API does not expose it (compare by hand)")),
            (Some(want), Some(got)) if want == got => {
                result.evidence.push(format!("{what} matches the IAM Identity Center console"))
            }
            (Some(want), Some(got)) => {
                let slash = want.trim_end_matches('/') == got.trim_end_matches('/');
                problems.push((
                    Status::Fail,
                    format!(
                        "the {what} in Okta is {got:?}, IAM Identity Center expects {want:?}{}",
                        if slash { " (only the trailing slash differs, and it matters)" } else { "" }
                    ),
                    "saml-settings-mismatch",
                    Severity::High,
                    format!("{key}:{got}"),
                ));
            }
        }
    }
    if problems.is_empty() {
        result.summary = "the signing key is valid and the settings match".into();
        return result;
    }
    problems.sort_by_key(|p| std::cmp::Reverse(p.0));
    let worst = &problems[0];
    result.status = worst.0;
    result.summary = problems.iter().map(|p| p.1.clone()).collect::<Vec<_>>().join("; ");
    result.fix = Some(if worst.2 == "saml-cert-expiring" {
        "In Okta: the AWS IAM Identity Center app > Sign On > SAML Signing Certificates > Generate new certificate; upload its metadata to IAM Identity Center (Settings > Identity source > Manage authentication), then activate it in Okta.".into()
    } else {
        "Copy the ACS URL and issuer from IAM Identity Center (Settings > Identity source > Manage authentication) into the Okta app's Sign On settings exactly, and keep SHA-256 signing with a persistent NameID.".into()
    });
    let state = problems.iter().map(|p| p.4.as_str()).collect::<Vec<_>>().join("|");
    result.alert = Some(AlertSpec { detector: worst.2, severity: worst.3, state });
    result
}
