//! The SCIM side's port: probing IAM Identity Center's SCIM endpoint with a token. Adapter:
//! `adapters/scim_probe.rs`. (Rotation's other ports are the secret store, `crate::secret`, and
//! Okta's API, `crate::okta::ports`.)

use std::future::Future;

use crate::secret::SecretString;

/// What a probe of the SCIM endpoint with a token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The token works.
    Valid,
    /// 401 or 403: the token is not accepted.
    Rejected(u16),
    /// Anything else (throttled, 5xx, network): no verdict.
    Inconclusive(String),
}

/// Probes a SCIM endpoint with a token.
pub trait ScimProbe: Send + Sync {
    /// `GET <endpoint>/ServiceProviderConfig` with the token; never sent to a non-SCIM host.
    fn probe(&self, endpoint: &str, token: &SecretString) -> impl Future<Output = Probe> + Send;
}
