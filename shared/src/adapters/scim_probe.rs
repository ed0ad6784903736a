//! The SCIM probe over HTTP.

use std::time::Duration;

use crate::scim::ports::{Probe, ScimProbe};
use crate::scim::validate_scim_endpoint;
use crate::secret::{ExposeSecret, SecretString};

/// Probes with `GET <endpoint>/ServiceProviderConfig` and the bearer token.
#[derive(Clone, Debug)]
pub struct HttpScimProbe {
    http: reqwest::Client,
}

impl Default for HttpScimProbe {
    fn default() -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { http }
    }
}

impl ScimProbe for HttpScimProbe {
    async fn probe(&self, endpoint: &str, token: &SecretString) -> Probe {
        if let Err(e) = validate_scim_endpoint(endpoint) {
            return Probe::Inconclusive(e);
        }
        let url = format!("{}/ServiceProviderConfig", endpoint.trim_end_matches('/'));
        let result = self.http.get(url).bearer_auth(token.expose_secret()).send().await;
        match result {
            Ok(r) if r.status().is_success() => Probe::Valid,
            Ok(r) if matches!(r.status().as_u16(), 401 | 403) => {
                Probe::Rejected(r.status().as_u16())
            }
            Ok(r) => {
                Probe::Inconclusive(format!("the SCIM endpoint answered {}", r.status().as_u16()))
            }
            Err(e) => Probe::Inconclusive(e.without_url().to_string()),
        }
    }
}
