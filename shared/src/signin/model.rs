//! CloudTrail records, parsed tolerantly, and their normalised sign-in meaning.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The CloudTrail fields the sign-in checks read. Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub event_time: Option<DateTime<Utc>>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub event_type: Option<String>,
    #[serde(rename = "eventID")]
    pub event_id: Option<String>,
    pub aws_region: Option<String>,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: Option<String>,
    pub user_agent: Option<String>,
    #[serde(default)]
    pub user_identity: Value,
    #[serde(default)]
    pub additional_event_data: Value,
    #[serde(default)]
    pub service_event_details: Value,
    #[serde(default)]
    pub response_elements: Value,
    #[serde(default)]
    pub request_parameters: Value,
    pub error_code: Option<String>,
    pub recipient_account_id: Option<String>,
}

/// What a record means for sign-in analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Kind {
    /// `signin.amazonaws.com` `UserAuthentication`: an IAM Identity Center sign-in.
    IdcSignIn {
        success: bool,
        credential_type: Option<String>,
    },
    /// `CredentialChallenge` / `CredentialVerification` (IdC directory or AD users only).
    Credential {
        step: String,
        success: bool,
    },
    /// `sso.amazonaws.com`: portal and CLI use (`Authenticate`, `Federate`, `GetRoleCredentials`, …).
    Portal {
        action: String,
        account_id: Option<String>,
        role_name: Option<String>,
    },
    /// `ConsoleLogin`.
    ConsoleLogin {
        success: bool,
        mfa_used: bool,
        root: bool,
        iam_user: bool,
        identity_center_role: bool,
    },
    /// `sts:AssumeRoleWithSAML` made by IdC on the user's behalf: its source IP is AWS's.
    AssumeRoleWithSaml,
    Other,
}

/// A normalised sign-in event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    pub time: DateTime<Utc>,
    pub event_id: String,
    pub kind: Kind,
    /// User name (the SAML NameID for Okta users) when the record carries one.
    pub user_name: Option<String>,
    /// Identity store user id (2025 shape) when present.
    pub user_id: Option<String>,
    /// The portal session (`credentialId`), for token-replay checks.
    pub session_id: Option<String>,
    /// The caller's address; `None` when AWS made the call (never geolocate those).
    pub source_ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub account_id: Option<String>,
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).filter(|x| !x.is_empty()).map(str::to_owned)
}

/// Why a record was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("not a CloudTrail record: {0}")]
    Malformed(String),
    #[error("no eventTime")]
    NoTime,
}

impl Record {
    pub fn from_value(v: Value) -> Result<Record, Skip> {
        if !v.is_object() {
            return Err(Skip::Malformed("not a JSON object".into()));
        }
        serde_json::from_value(v).map_err(|e| Skip::Malformed(e.to_string()))
    }

    /// Normalises the record. Every record with a time becomes an [`Activity`] (`Kind::Other`
    /// for those that are not sign-in related).
    pub fn activity(&self) -> Result<Activity, Skip> {
        let time = self.event_time.ok_or(Skip::NoTime)?;
        let source = self.event_source.as_deref().unwrap_or_default();
        let name = self.event_name.as_deref().unwrap_or_default();
        let ui = &self.user_identity;
        let extra = &self.additional_event_data;
        let identity_type = s(ui, "type").unwrap_or_default();
        let kind = match (source, name) {
            ("signin.amazonaws.com", "UserAuthentication") => Kind::IdcSignIn {
                success: self.service_event_details["UserAuthentication"] == "Success"
                    && self.error_code.is_none(),
                credential_type: s(extra, "CredentialType"),
            },
            ("signin.amazonaws.com", step @ ("CredentialChallenge" | "CredentialVerification")) => {
                Kind::Credential {
                    step: step.to_owned(),
                    success: self.error_code.is_none()
                        && self.service_event_details.get(step).is_none_or(|v| v == "Success"),
                }
            }
            ("signin.amazonaws.com", "ConsoleLogin") => {
                let issuer =
                    ui["sessionContext"]["sessionIssuer"]["userName"].as_str().unwrap_or_default();
                Kind::ConsoleLogin {
                    success: self.response_elements["ConsoleLogin"] == "Success",
                    mfa_used: extra["MFAUsed"] == "Yes",
                    root: identity_type == "Root",
                    iam_user: identity_type == "IAMUser",
                    identity_center_role: issuer.starts_with("AWSReservedSSO_"),
                }
            }
            ("sso.amazonaws.com", action) => Kind::Portal {
                action: action.to_owned(),
                account_id: s(&self.service_event_details, "account_id")
                    .or_else(|| s(&self.request_parameters, "accountId")),
                role_name: s(&self.service_event_details, "role_name")
                    .or_else(|| s(&self.request_parameters, "roleName")),
            },
            ("sts.amazonaws.com", "AssumeRoleWithSAML") => Kind::AssumeRoleWithSaml,
            _ => Kind::Other,
        };
        // The user: the 2025 shape names the identity-store user; sign-ins carry the user name.
        let user_name = s(extra, "UserName").or_else(|| s(ui, "userName")).or_else(|| {
            s(ui, "principalId").and_then(|p| p.split_once(':').map(|(_, n)| n.to_owned()))
        });
        let user_id = s(&ui["onBehalfOf"], "userId");
        // AWS-made calls: the SAML role assumption (source is the IdC service) and any record
        // whose source is a service name rather than an address.
        let source_ip = match kind {
            Kind::AssumeRoleWithSaml => None,
            _ => self.source_ip_address.as_deref().and_then(|ip| ip.parse().ok()),
        };
        Ok(Activity {
            time,
            event_id: self.event_id.clone().unwrap_or_default(),
            kind,
            user_name,
            user_id,
            session_id: s(ui, "credentialId"),
            source_ip,
            user_agent: self.user_agent.clone(),
            account_id: self.recipient_account_id.clone(),
        })
    }
}
