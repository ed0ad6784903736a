//! Typed configuration, loaded once per cold start. It fails closed: a missing or malformed
//! variable stops the start with one line naming it, and nothing falls back to a default.

use std::collections::HashMap;

/// The event-hook secret (Secrets Manager ARN).
pub const HOOK_SECRET_ARN: &str = "IDC_GUARD_HOOK_SECRET_ARN";
/// The FIFO queue the hook hands events to.
pub const EVENT_QUEUE_URL: &str = "IDC_GUARD_EVENT_QUEUE_URL";
/// The DynamoDB state table.
pub const STATE_TABLE: &str = "IDC_GUARD_STATE_TABLE";
/// The SNS topic alerts go to.
pub const ALERT_TOPIC_ARN: &str = "IDC_GUARD_ALERT_TOPIC_ARN";
/// Optional: a secret holding a Slack-compatible webhook URL.
pub const ALERT_WEBHOOK_SECRET_ARN: &str = "IDC_GUARD_ALERT_WEBHOOK_SECRET_ARN";
/// `1` (or `true`): alerts also go to AWS Security Hub as ASFF findings.
pub const SECURITY_HUB: &str = "IDC_GUARD_SECURITY_HUB";
/// The policy file (`/opt/access-policy.toml` from the policy layer).
pub const POLICY_FILE: &str = "IDC_GUARD_POLICY_FILE";
/// Where a function reads the access policy when `IDC_GUARD_POLICY_FILE` is unset: the policy
/// layer's mount point (Lambda extracts layers under `/opt`).
pub const DEFAULT_POLICY_FILE: &str = "/opt/access-policy.toml";
/// Optional: the IdC instance, when the account has more than one.
pub const INSTANCE_ARN: &str = "IDC_GUARD_INSTANCE_ARN";
/// The Okta org URL (`https://<org>.okta.com`).
pub const OKTA_ORG_URL: &str = "IDC_GUARD_OKTA_ORG_URL";
/// The secret holding the Okta API credential.
pub const OKTA_API_SECRET_ARN: &str = "IDC_GUARD_OKTA_API_SECRET_ARN";
/// The Okta app id of the AWS IAM Identity Center app (SCIM provisioning).
pub const OKTA_AWS_APP_ID: &str = "IDC_GUARD_OKTA_AWS_APP_ID";
/// The Okta event hook's id.
pub const OKTA_EVENT_HOOK_ID: &str = "IDC_GUARD_OKTA_EVENT_HOOK_ID";
/// The SCIM token secret.
pub const SCIM_TOKEN_SECRET_ARN: &str = "IDC_GUARD_SCIM_TOKEN_SECRET_ARN";
/// The client id of idc-guard's Okta OIDC app, whose ID tokens the grants API accepts.
pub const OKTA_CLIENT_ID: &str = "IDC_GUARD_OKTA_CLIENT_ID";
/// Optional: the secret holding the Slack app's bot token and signing secret (grants).
pub const SLACK_SECRET_ARN: &str = "IDC_GUARD_SLACK_SECRET_ARN";
/// Optional: Slack's Web API base (default `https://slack.com/api/`).
pub const SLACK_API_URL: &str = "IDC_GUARD_SLACK_API_URL";
/// Optional: `0` turns off the CloudTrail activity summary at a grant's end.
pub const GRANT_ACTIVITY: &str = "IDC_GUARD_GRANT_ACTIVITY";
/// Optional: a MaxMind-format city database for finer geolocation.
pub const GEO_CITY_DB: &str = "IDC_GUARD_GEO_CITY_DB";
/// The S3 bucket the scheduled access ledger export writes to (access-sync), and the CLI reads
/// the deployment's latest ledger from.
pub const LEDGER_BUCKET: &str = "IDC_GUARD_LEDGER_BUCKET";

/// A configuration variable is missing or malformed: the cold start stops with its name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The variable is not set.
    #[error("configuration: {0} is not set")]
    Missing(&'static str),
    /// The variable is set but not usable.
    #[error("configuration: {name} is malformed: {reason}")]
    Malformed {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A source of configuration variables: the process environment, or a map in tests.
pub trait Vars {
    /// The variable's value, if set and not empty.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct Env;

impl Vars for Env {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Vars for HashMap<&str, &str> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).map(|v| (*v).to_owned())
    }
}

/// Whether alerts also go to Security Hub (`IDC_GUARD_SECURITY_HUB`): `1`/`true` on,
/// `0`/`false`/unset off; anything else stops the cold start (never a silent default).
pub fn security_hub(vars: &impl Vars) -> Result<bool, ConfigError> {
    match vars.get(SECURITY_HUB).as_deref().map(str::trim) {
        None | Some("" | "0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(_) => Err(ConfigError::Malformed {
            name: SECURITY_HUB,
            reason: "expected 1 or 0 (true or false)",
        }),
    }
}

fn required(vars: &impl Vars, name: &'static str) -> Result<String, ConfigError> {
    match vars.get(name) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// Configuration of the `okta-event-hook` function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookConfig {
    /// Secret whose value is the exact `Authorization` header value Okta sends.
    pub hook_secret_arn: String,
    /// SQS FIFO queue for accepted events.
    pub event_queue_url: String,
}

impl HookConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Env)
    }

    /// Reads these variables.
    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let hook_secret_arn = required(vars, HOOK_SECRET_ARN)?;
        if !hook_secret_arn.starts_with("arn:") {
            return Err(ConfigError::Malformed {
                name: HOOK_SECRET_ARN,
                reason: "expected a Secrets Manager secret ARN (arn:...:secretsmanager:...)",
            });
        }
        let event_queue_url = required(vars, EVENT_QUEUE_URL)?;
        if !(event_queue_url.starts_with("https://") || event_queue_url.starts_with("http://")) {
            return Err(ConfigError::Malformed {
                name: EVENT_QUEUE_URL,
                reason: "expected an SQS queue URL",
            });
        }
        if !event_queue_url.ends_with(".fifo") {
            return Err(ConfigError::Malformed {
                name: EVENT_QUEUE_URL,
                reason: "must be a FIFO queue (name ending in .fifo) so duplicates are dropped",
            });
        }
        Ok(Self { hook_secret_arn, event_queue_url })
    }
}

fn optional(vars: &impl Vars, name: &'static str) -> Option<String> {
    vars.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// An optional ARN: absent is fine, present must be one of `service`.
fn optional_arn(
    vars: &impl Vars,
    name: &'static str,
    service: &'static str,
) -> Result<Option<String>, ConfigError> {
    let v = optional(vars, name);
    if let Some(v) = &v {
        check_arn(name, v, service)?;
    }
    Ok(v)
}

fn arn(vars: &impl Vars, name: &'static str, service: &'static str) -> Result<String, ConfigError> {
    let v = required(vars, name)?;
    check_arn(name, &v, service)?;
    Ok(v)
}

fn check_arn(name: &'static str, v: &str, service: &'static str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    if parts.len() < 6 || parts[0] != "arn" || parts[2] != service {
        return Err(ConfigError::Malformed {
            name,
            reason: "expected an ARN of the right service",
        });
    }
    Ok(())
}

/// Configuration of the `access-sync` function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSyncConfig {
    /// The state table.
    pub state_table: String,
    /// The alert topic.
    pub alert_topic_arn: String,
    /// The alert webhook secret, if any.
    pub alert_webhook_secret_arn: Option<String>,
    /// The policy file.
    pub policy_file: std::path::PathBuf,
    /// The IdC instance, if configured.
    pub instance_arn: Option<String>,
    /// Okta org and API credential secret, both or neither: the System Log completes events the
    /// hook could only queue as stubs.
    pub okta: Option<(String, String)>,
    /// The ledger bucket, when the ledger export is deployed.
    pub ledger_bucket: Option<String>,
}

impl AccessSyncConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Env)
    }

    /// Reads these variables.
    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let state_table = required(vars, STATE_TABLE)?;
        let alert_topic_arn = arn(vars, ALERT_TOPIC_ARN, "sns")?;
        let alert_webhook_secret_arn =
            optional_arn(vars, ALERT_WEBHOOK_SECRET_ARN, "secretsmanager")?;
        let instance_arn = optional_arn(vars, INSTANCE_ARN, "sso")?;
        // Default: where the policy layer (template.yaml's AccessPolicyLayer) puts it.
        let policy_file = optional(vars, POLICY_FILE)
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from(DEFAULT_POLICY_FILE));
        let okta = match (optional(vars, OKTA_ORG_URL), optional(vars, OKTA_API_SECRET_ARN)) {
            (None, None) => None,
            (Some(url), Some(secret)) => {
                crate::okta::org_url::validate_org_url(&url).map_err(|_| {
                    ConfigError::Malformed {
                        name: OKTA_ORG_URL,
                        reason: "expected https://<org>.okta.com",
                    }
                })?;
                check_arn(OKTA_API_SECRET_ARN, &secret, "secretsmanager")?;
                Some((url, secret))
            }
            (Some(_), None) => return Err(ConfigError::Missing(OKTA_API_SECRET_ARN)),
            (None, Some(_)) => return Err(ConfigError::Missing(OKTA_ORG_URL)),
        };
        Ok(Self {
            state_table,
            alert_topic_arn,
            alert_webhook_secret_arn,
            policy_file,
            instance_arn,
            okta,
            ledger_bucket: optional(vars, LEDGER_BUCKET),
        })
    }
}

/// Configuration of the `integration-health` function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// The state table.
    pub state_table: String,
    /// The alert topic.
    pub alert_topic_arn: String,
    /// The alert webhook secret, if any.
    pub alert_webhook_secret_arn: Option<String>,
    /// The policy file (its `[health]` table).
    pub policy_file: std::path::PathBuf,
    /// The IdC instance, if configured.
    pub instance_arn: Option<String>,
    /// The Okta org.
    pub okta_org_url: String,
    /// The Okta API credential secret.
    pub okta_api_secret_arn: String,
    /// The hook's FIFO queue, where missed events are put.
    pub event_queue_url: String,
}

impl HealthConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Env)
    }

    /// Reads these variables.
    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let alert_webhook_secret_arn =
            optional_arn(vars, ALERT_WEBHOOK_SECRET_ARN, "secretsmanager")?;
        let instance_arn = optional_arn(vars, INSTANCE_ARN, "sso")?;
        let okta_org_url = required(vars, OKTA_ORG_URL)?;
        crate::okta::org_url::validate_org_url(&okta_org_url).map_err(|_| {
            ConfigError::Malformed { name: OKTA_ORG_URL, reason: "expected https://<org>.okta.com" }
        })?;
        let okta_api_secret_arn = arn(vars, OKTA_API_SECRET_ARN, "secretsmanager")?;
        let event_queue_url = required(vars, EVENT_QUEUE_URL)?;
        Ok(Self {
            state_table: required(vars, STATE_TABLE)?,
            alert_topic_arn: arn(vars, ALERT_TOPIC_ARN, "sns")?,
            alert_webhook_secret_arn,
            policy_file: optional(vars, POLICY_FILE)
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| std::path::PathBuf::from(DEFAULT_POLICY_FILE)),
            instance_arn,
            okta_org_url,
            okta_api_secret_arn,
            event_queue_url,
        })
    }
}

/// Configuration of the `signin-anomaly` function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigninConfig {
    /// The state table.
    pub state_table: String,
    /// The alert topic.
    pub alert_topic_arn: String,
    /// The alert webhook secret, if any.
    pub alert_webhook_secret_arn: Option<String>,
    /// The policy file.
    pub policy_file: std::path::PathBuf,
    /// Optional city-level MMDB file for coordinates (the country table is built in).
    pub city_db: Option<std::path::PathBuf>,
}

impl SigninConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Env)
    }

    /// Reads these variables.
    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let base = AccessSyncConfig::from_vars(vars)?;
        Ok(Self {
            state_table: base.state_table,
            alert_topic_arn: base.alert_topic_arn,
            alert_webhook_secret_arn: base.alert_webhook_secret_arn,
            policy_file: base.policy_file,
            city_db: optional(vars, GEO_CITY_DB).map(std::path::PathBuf::from),
        })
    }
}

/// Configuration of the `grants` function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantsConfig {
    /// What it shares with access-sync (Okta is required here).
    pub base: AccessSyncConfig,
    /// The Okta OIDC app whose ID tokens name persons (None: the CLI door is closed).
    pub okta_client_id: Option<String>,
    /// The Slack secret (None: no Slack door).
    pub slack_secret_arn: Option<String>,
    /// Slack's Web API base.
    pub slack_api_url: String,
    /// Summarise CloudTrail activity at a grant's end.
    pub activity: bool,
}

impl GrantsConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Env)
    }

    /// Reads these variables.
    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let base = AccessSyncConfig::from_vars(vars)?;
        if base.okta.is_none() {
            return Err(ConfigError::Missing(OKTA_ORG_URL));
        }
        let slack_api_url =
            optional(vars, SLACK_API_URL).unwrap_or_else(|| "https://slack.com/api/".into());
        if !slack_api_url.starts_with("https://") && !slack_api_url.starts_with("http://127.0.0.1")
        {
            return Err(ConfigError::Malformed {
                name: SLACK_API_URL,
                reason: "expected an https URL",
            });
        }
        let activity = match optional(vars, GRANT_ACTIVITY).as_deref() {
            None | Some("1" | "true") => true,
            Some("0" | "false") => false,
            Some(_) => {
                return Err(ConfigError::Malformed {
                    name: GRANT_ACTIVITY,
                    reason: "expected 0 or 1",
                });
            }
        };
        Ok(Self {
            base,
            okta_client_id: optional(vars, OKTA_CLIENT_ID),
            slack_secret_arn: optional_arn(vars, SLACK_SECRET_ARN, "secretsmanager")?,
            slack_api_url,
            activity,
        })
    }
}

/// Configuration of the `scim-token-rotation` function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimRotationConfig {
    /// The SCIM token secret.
    pub scim_token_secret_arn: String,
    /// The event-hook secret.
    pub hook_secret_arn: String,
    /// The state table.
    pub state_table: String,
    /// The alert topic.
    pub alert_topic_arn: String,
    /// The alert webhook secret, if any.
    pub alert_webhook_secret_arn: Option<String>,
    /// The Okta org URL.
    pub okta_org_url: String,
    /// The Okta API credential secret.
    pub okta_api_secret_arn: String,
    /// The Okta app id of the AWS app.
    pub okta_aws_app_id: String,
    /// The Okta event hook id.
    pub okta_event_hook_id: String,
}

impl ScimRotationConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Env)
    }

    /// Reads these variables.
    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let okta_org_url = required(vars, OKTA_ORG_URL)?;
        crate::okta::org_url::validate_org_url(&okta_org_url).map_err(|_| {
            ConfigError::Malformed { name: OKTA_ORG_URL, reason: "expected https://<org>.okta.com" }
        })?;
        let alert_webhook_secret_arn =
            optional_arn(vars, ALERT_WEBHOOK_SECRET_ARN, "secretsmanager")?;
        Ok(Self {
            scim_token_secret_arn: arn(vars, SCIM_TOKEN_SECRET_ARN, "secretsmanager")?,
            hook_secret_arn: arn(vars, HOOK_SECRET_ARN, "secretsmanager")?,
            state_table: required(vars, STATE_TABLE)?,
            alert_topic_arn: arn(vars, ALERT_TOPIC_ARN, "sns")?,
            alert_webhook_secret_arn,
            okta_org_url,
            okta_api_secret_arn: arn(vars, OKTA_API_SECRET_ARN, "secretsmanager")?,
            okta_aws_app_id: required(vars, OKTA_AWS_APP_ID)?,
            okta_event_hook_id: required(vars, OKTA_EVENT_HOOK_ID)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:idc-guard/hook-AbCdEf";
    const URL: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/idc-guard-events.fifo";

    #[test]
    fn loads_a_complete_configuration() {
        let vars = HashMap::from([(HOOK_SECRET_ARN, ARN), (EVENT_QUEUE_URL, URL)]);
        let c = HookConfig::from_vars(&vars).unwrap();
        assert_eq!(c.hook_secret_arn, ARN);
        assert_eq!(c.event_queue_url, URL);
    }

    #[test]
    fn a_missing_variable_is_named() {
        let vars = HashMap::from([(EVENT_QUEUE_URL, URL)]);
        let err = HookConfig::from_vars(&vars).unwrap_err();
        assert_eq!(err, ConfigError::Missing(HOOK_SECRET_ARN));
        assert_eq!(err.to_string(), "configuration: IDC_GUARD_HOOK_SECRET_ARN is not set");
        let vars = HashMap::from([(HOOK_SECRET_ARN, ARN), (EVENT_QUEUE_URL, "  ")]);
        assert_eq!(
            HookConfig::from_vars(&vars).unwrap_err(),
            ConfigError::Missing(EVENT_QUEUE_URL)
        );
    }

    #[test]
    fn access_sync_configuration_fails_closed() {
        let topic = "arn:aws:sns:us-east-1:123456789012:idc-guard-alerts";
        let vars = HashMap::from([
            (STATE_TABLE, "idc-guard-state"),
            (ALERT_TOPIC_ARN, topic),
            (POLICY_FILE, "/opt/p.toml"),
        ]);
        let c = AccessSyncConfig::from_vars(&vars).unwrap();
        assert_eq!(c.policy_file, std::path::PathBuf::from("/opt/p.toml"));
        assert_eq!(c.instance_arn, None);
        let vars = HashMap::from([(ALERT_TOPIC_ARN, topic)]);
        assert_eq!(
            AccessSyncConfig::from_vars(&vars).unwrap_err(),
            ConfigError::Missing(STATE_TABLE)
        );
        let vars =
            HashMap::from([(STATE_TABLE, "t"), (ALERT_TOPIC_ARN, "arn:aws:sqs:us-east-1:1:q")]);
        assert!(
            AccessSyncConfig::from_vars(&vars).unwrap_err().to_string().contains(ALERT_TOPIC_ARN)
        );
        let vars = HashMap::from([
            (STATE_TABLE, "t"),
            (ALERT_TOPIC_ARN, topic),
            (INSTANCE_ARN, "ssoins-123"),
        ]);
        assert!(AccessSyncConfig::from_vars(&vars).unwrap_err().to_string().contains(INSTANCE_ARN));
    }

    #[test]
    fn the_policy_defaults_to_the_policy_layer_and_a_missing_one_names_the_path() {
        let topic = "arn:aws:sns:us-east-1:123456789012:idc-guard-alerts";
        let vars = HashMap::from([(STATE_TABLE, "t"), (ALERT_TOPIC_ARN, topic)]);
        let c = AccessSyncConfig::from_vars(&vars).unwrap();
        assert_eq!(c.policy_file, std::path::PathBuf::from("/opt/access-policy.toml"));
        let missing = std::env::temp_dir().join("idc-guard-no-such-dir/access-policy.toml");
        let err = crate::access::Policy::load(&missing).unwrap_err().to_string();
        assert!(err.contains(&missing.display().to_string()), "{err}");
        assert!(err.contains("cannot read the policy file"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    #[test]
    fn a_standard_queue_or_a_secret_name_is_refused() {
        let vars = HashMap::from([
            (HOOK_SECRET_ARN, ARN),
            (EVENT_QUEUE_URL, "https://sqs.us-east-1.amazonaws.com/123456789012/events"),
        ]);
        let err = HookConfig::from_vars(&vars).unwrap_err();
        assert!(err.to_string().contains("IDC_GUARD_EVENT_QUEUE_URL"), "{err}");
        let vars = HashMap::from([(HOOK_SECRET_ARN, "idc-guard/hook"), (EVENT_QUEUE_URL, URL)]);
        let err = HookConfig::from_vars(&vars).unwrap_err();
        assert!(err.to_string().contains("IDC_GUARD_HOOK_SECRET_ARN"), "{err}");
    }
}
