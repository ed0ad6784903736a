//! Typed configuration, loaded once per cold start. It fails closed: a missing or malformed
//! variable stops the start with one line naming it, and nothing falls back to a default.

use std::collections::HashMap;

pub const HOOK_SECRET_ARN: &str = "IDC_GUARD_HOOK_SECRET_ARN";
pub const EVENT_QUEUE_URL: &str = "IDC_GUARD_EVENT_QUEUE_URL";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration: {0} is not set")]
    Missing(&'static str),
    #[error("configuration: {name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: &'static str },
}

/// A source of configuration variables: the process environment, or a map in tests.
pub trait Vars {
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
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Env)
    }

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
