//! `mfa-posture`: every way into AWS through Okta asks for a second factor.
//!
//! Identity Engine (`/.well-known/okta-organization` pipeline `idx`): the AWS app's
//! authentication policy; every ACTIVE rule that ALLOWs access, the catch-all included, must
//! require two factors (`verificationMethod` ASSURANCE with `factorMode` 2FA, or an
//! authentication-method chain with a second step). Classic (`v1`): per-app sign-on policies have
//! no public API, so the global sign-on policies' rules are checked (`requireFactor`), and the
//! result says so.

use serde_json::Value;

use super::ports::OktaReader;
use super::{AlertSpec, Check, Status, first_names, text, urlencode};
use crate::alert::Severity;

/// The check's id.
pub const ID: &str = "mfa-posture";
/// The check's title.
pub const TITLE: &str = "MFA for AWS sign-in";

fn rule_name(rule: &Value) -> String {
    let name = text(rule, "/name").unwrap_or("(unnamed rule)");
    if rule.get("system").and_then(Value::as_bool) == Some(true) {
        format!("{name} (catch-all)")
    } else {
        name.to_owned()
    }
}

/// True when an Identity Engine app sign-on rule asks for two factors.
fn requires_two_factors(rule: &Value) -> bool {
    let method = rule.pointer("/actions/appSignOn/verificationMethod");
    match method.and_then(|m| text(m, "/type")) {
        Some("ASSURANCE") => method.and_then(|m| text(m, "/factorMode")) == Some("2FA"),
        Some("AUTH_METHOD_CHAIN") => {
            method.and_then(|m| m.get("chains")).and_then(Value::as_array).is_some_and(|chains| {
                !chains.is_empty()
                    && chains.iter().all(|c| {
                        c.get("next").and_then(Value::as_array).is_some_and(|n| !n.is_empty())
                    })
            })
        }
        _ => false,
    }
}

fn is_active(rule: &Value) -> bool {
    text(rule, "/status").is_none_or(|s| s == "ACTIVE")
}

/// Runs the check for the AWS app `app`.
pub async fn check<Okta: OktaReader>(okta: &Okta, app: &Value) -> Check {
    let pipeline = match okta.get_json("/.well-known/okta-organization").await {
        Ok(org) => text(&org, "/pipeline").unwrap_or("unknown").to_owned(),
        Err(e) => return Check::unknown(ID, TITLE, format!("reading the Okta engine: {e}")),
    };
    let mut result = Check::pass(ID, TITLE, "");
    let weak: Vec<String> = if pipeline == "idx" {
        let Some(policy_id) = text(app, "/_links/accessPolicy/href")
            .and_then(|href| href.trim_end_matches('/').rsplit('/').next())
            .filter(|id| !id.is_empty())
        else {
            return Check::unknown(ID, TITLE, "the AWS app has no authentication policy link");
        };
        let rules = match okta
            .get_list(&format!("/api/v1/policies/{}/rules", urlencode(policy_id)))
            .await
        {
            Ok(r) => r,
            Err(e) => return Check::unknown(ID, TITLE, format!("reading policy {policy_id}: {e}")),
        };
        result.evidence.push(format!(
            "Identity Engine; authentication policy {policy_id} has {} rules",
            rules.len()
        ));
        rules
            .iter()
            .filter(|r| is_active(r))
            .filter(|r| text(r, "/actions/appSignOn/access") == Some("ALLOW"))
            .filter(|r| !requires_two_factors(r))
            .map(rule_name)
            .collect()
    } else {
        result.evidence.push(format!(
            "Classic engine (pipeline {pipeline}): per-app sign-on policies have no public API; the global sign-on policies were checked instead"
        ));
        let policies = match okta.get_list("/api/v1/policies?type=OKTA_SIGN_ON").await {
            Ok(p) => p,
            Err(e) => return Check::unknown(ID, TITLE, format!("reading sign-on policies: {e}")),
        };
        let mut weak = Vec::new();
        for policy in policies.iter().filter(|p| is_active(p)) {
            let id = text(policy, "/id").unwrap_or_default();
            let rules = match okta
                .get_list(&format!("/api/v1/policies/{}/rules", urlencode(id)))
                .await
            {
                Ok(r) => r,
                Err(e) => return Check::unknown(ID, TITLE, format!("reading policy {id}: {e}")),
            };
            weak.extend(
                rules
                    .iter()
                    .filter(|r| is_active(r))
                    .filter(|r| text(r, "/actions/signon/access") == Some("ALLOW"))
                    .filter(|r| {
                        r.pointer("/actions/signon/requireFactor").and_then(Value::as_bool)
                            != Some(true)
                    })
                    .map(|r| format!("{} / {}", text(policy, "/name").unwrap_or(id), rule_name(r))),
            );
        }
        weak
    };
    if weak.is_empty() {
        result.summary = "every rule that allows access requires a second factor".into();
        if pipeline != "idx" {
            result.status = Status::Warn;
            result.summary.push_str(
                " (global policy only: check the AWS app's sign-on policy in the console)",
            );
        }
        return result;
    }
    result.status = Status::Fail;
    result.summary = format!(
        "{} rule(s) allow access to AWS with one factor: {}",
        weak.len(),
        first_names(&weak)
    );
    result.fix = Some(if pipeline == "idx" {
        "In Okta: Security > Authentication Policies > the AWS IAM Identity Center app's policy; set each named rule (and the catch-all) to require 2 factor types, or deny.".into()
    } else {
        "In Okta: Security > Authentication > Sign On; make each named rule prompt for a factor."
            .into()
    });
    let mut state = weak.clone();
    state.sort();
    result.alert = Some(AlertSpec {
        detector: "mfa-not-required",
        severity: Severity::High,
        state: state.join("|"),
    });
    result
}
