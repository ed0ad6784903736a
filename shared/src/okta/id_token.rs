//! Okta ID tokens, verified: how the grants function knows which person calls it from the CLI.
//!
//! The CLI signs in with Okta's device authorization grant to idc-guard's own OIDC app (a
//! native app) and sends the ID token it gets. The token is a JWT signed RS256 by the org
//! authorization server; its keys are published at `<org>/oauth2/v1/keys`, chosen by `kid`.
//! Checked: the algorithm (RS256 only, so an `alg: none` or HMAC token is refused), the
//! signature, `iss` = the org URL, `aud` = the app's client id, `exp` and `iat` (one minute of
//! clock skew). `sub` is the Okta user id. Keys are cached and fetched again at most once a
//! minute when a token names a `kid` the cache lacks (Okta rotates keys).

use std::time::Duration;

use tokio::time::Instant;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::okta::ports::OktaError;

/// Clock skew allowed on `exp` and `iat`.
pub const LEEWAY_SECONDS: u64 = 60;
/// The shortest time between two fetches of the keys.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// The org authorization server's published keys (object-safe; the adapter is
/// `adapters::okta::OktaPublicKeys`).
pub trait OktaKeys: Send + Sync {
    /// `GET <org>/oauth2/v1/keys`.
    fn keys(&self) -> futures::future::BoxFuture<'_, Result<JwkSet, OktaError>>;
}

/// Why a token was refused (logged; the caller only sees "unauthorized").
#[derive(Debug, thiserror::Error)]
pub enum TokenRefusal {
    /// Not a JWT, or not RS256.
    #[error("not an RS256 JWT: {0}")]
    Malformed(String),
    /// No published key has its `kid`.
    #[error("no published key has the token's kid")]
    UnknownKey,
    /// Signature, issuer, audience or expiry.
    #[error("the token is not valid: {0}")]
    Invalid(String),
    /// Issued in the future.
    #[error("the token is issued in the future")]
    IssuedInFuture,
    /// The keys could not be read.
    #[error("Okta's keys could not be read: {0}")]
    Keys(OktaError),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
}

/// Verifies ID tokens of one OIDC app of one org.
pub struct IdTokenVerifier {
    issuer: String,
    client_id: String,
    keys: Box<dyn OktaKeys>,
    cache: tokio::sync::Mutex<Option<(JwkSet, Instant)>>,
}

impl std::fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl IdTokenVerifier {
    /// A verifier for tokens the org at `org_url` issues to `client_id`.
    pub fn new(org_url: &str, client_id: &str, keys: Box<dyn OktaKeys>) -> Self {
        Self {
            issuer: org_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            keys,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenRefusal> {
        let mut cache = self.cache.lock().await;
        let find = |set: &JwkSet| set.find(kid).map(DecodingKey::from_jwk);
        if let Some((set, _)) = cache.as_ref()
            && let Some(key) = find(set)
        {
            return key.map_err(|e| TokenRefusal::Malformed(e.to_string()));
        }
        if cache.as_ref().is_some_and(|(_, at)| at.elapsed() < REFETCH_AFTER) {
            return Err(TokenRefusal::UnknownKey);
        }
        let set = self.keys.keys().await.map_err(TokenRefusal::Keys)?;
        let key = find(&set);
        *cache = Some((set, Instant::now()));
        key.ok_or(TokenRefusal::UnknownKey)?.map_err(|e| TokenRefusal::Malformed(e.to_string()))
    }

    /// The Okta user id (`sub`) of a valid ID token.
    pub async fn verify(&self, token: &str) -> Result<String, TokenRefusal> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenRefusal::Malformed(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenRefusal::Malformed(format!("algorithm {:?}", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| TokenRefusal::Malformed("no kid".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.client_id]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| TokenRefusal::Invalid(e.to_string()))?;
        if data.claims.iat > chrono::Utc::now().timestamp() + LEEWAY_SECONDS as i64 {
            return Err(TokenRefusal::IssuedInFuture);
        }
        if data.claims.sub.is_empty() {
            return Err(TokenRefusal::Invalid("empty sub".into()));
        }
        Ok(data.claims.sub)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Counting(Arc<AtomicUsize>);

    impl OktaKeys for Counting {
        fn keys(&self) -> futures::future::BoxFuture<'_, Result<JwkSet, OktaError>> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Box::pin(async {
                Ok(serde_json::from_str(include_str!(
                    "../../../events/okta-api/oauth2-v1-keys.json"
                ))
                .unwrap())
            })
        }
    }

    fn token_with_kid(kid: &str) -> String {
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("../testing/oidc-test-key.pem"))
                .unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        let t = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({"sub": "00u1", "iss": "https://acme.okta.com", "aud": "0oa1", "iat": t, "exp": t + 600});
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    /// A token naming a key Okta does not publish makes the keys be fetched at most once a
    /// minute: a flood of such tokens costs Okta one request a minute.
    #[tokio::test(start_paused = true)]
    async fn unknown_keys_are_looked_for_at_most_once_a_minute() {
        let fetched = Arc::new(AtomicUsize::new(0));
        let v = IdTokenVerifier::new(
            "https://acme.okta.com/",
            "0oa1",
            Box::new(Counting(Arc::clone(&fetched))),
        );
        assert!(
            format!("{v:?}").contains("0oa1") && format!("{v:?}").contains("https://acme.okta.com")
        );
        let unknown = token_with_kid("rotated-in");
        for _ in 0..50 {
            assert!(matches!(v.verify(&unknown).await, Err(TokenRefusal::UnknownKey)));
        }
        assert_eq!(fetched.load(Ordering::Relaxed), 1);
        tokio::time::advance(REFETCH_AFTER - Duration::from_millis(1)).await;
        assert!(v.verify(&unknown).await.is_err());
        assert_eq!(fetched.load(Ordering::Relaxed), 1, "not before the minute is over");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(v.verify(&unknown).await.is_err());
        assert_eq!(fetched.load(Ordering::Relaxed), 2, "again once the minute is over");
        // A known key is served from the cache.
        assert_eq!(v.verify(&token_with_kid("idc-guard-test-key-1")).await.unwrap(), "00u1");
        assert_eq!(fetched.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_token_issued_up_to_a_minute_ahead_is_accepted_and_later_ones_are_not() {
        let v = IdTokenVerifier::new(
            "https://acme.okta.com",
            "0oa1",
            Box::new(Counting(Arc::new(AtomicUsize::new(0)))),
        );
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("../testing/oidc-test-key.pem"))
                .unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some("idc-guard-test-key-1".into());
        let sign = |ahead: i64| {
            let t = chrono::Utc::now().timestamp();
            let claims = serde_json::json!({"sub": "00u1", "iss": "https://acme.okta.com", "aud": "0oa1", "iat": t + ahead, "exp": t + 3600});
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        };
        assert!(v.verify(&sign(LEEWAY_SECONDS as i64)).await.is_ok());
        assert!(matches!(
            v.verify(&sign(LEEWAY_SECONDS as i64 + 2)).await,
            Err(TokenRefusal::IssuedInFuture)
        ));
    }
}
