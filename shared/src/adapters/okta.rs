//! The Okta Management API client: SSWS API token, or an OAuth 2.0 service app with a
//! `private_key_jwt` client assertion (1-hour access tokens, cached), rate-limit aware (429 → wait until
//! `X-Rate-Limit-Reset` + 1 s, a bounded number of times), `Link: <…>; rel="next"` pagination.
//! Credentials never reach an error or a log: reqwest errors are stripped of their URL and the
//! `Authorization` header is marked sensitive.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use serde_json::Value;

use crate::okta::org_url::validate_org_url;
use crate::okta::ports::{OktaApi, OktaError, OktaUser, SystemLog};
use crate::secret::{ExposeSecret, SecretStore, SecretString};
use crate::telemetry::metrics::{Metric, count};

/// The Okta Management API client (see the module header).
#[derive(Clone)]
pub struct OktaClient {
    http: reqwest::Client,
    org_url: String,
    auth: std::sync::Arc<Auth>,
    max_attempts: u32,
    max_wait: Duration,
}

enum Auth {
    Ssws(SecretString),
    /// OAuth 2.0 client credentials with a signed client assertion (`private_key_jwt`).
    ServiceApp {
        client_id: String,
        key: jsonwebtoken::EncodingKey,
        key_id: Option<String>,
        scopes: String,
        cached: tokio::sync::Mutex<Option<(SecretString, tokio::time::Instant)>>,
    },
}

impl std::fmt::Debug for OktaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaClient")
            .field("org_url", &self.org_url)
            .field("authorization", &"***")
            .finish()
    }
}

impl OktaClient {
    /// `credential` is the secret's value: an SSWS API token; or JSON, either
    /// `{"type":"ssws","token":…}` or `{"type":"oauth","client_id":…,"private_key":"<PEM>",
    /// "key_id":…(optional),"scopes":["okta.eventHooks.manage","okta.apps.manage"]}`.
    pub fn new(org_url: &str, credential: &SecretString) -> Result<Self, OktaError> {
        let org_url = validate_org_url(org_url)?;
        let raw = credential.expose_secret().trim();
        let field = |m: &serde_json::Map<String, Value>, k: &str| {
            m.get(k).and_then(Value::as_str).map(str::to_owned)
        };
        let auth = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) => match m.get("type").and_then(Value::as_str) {
                Some("ssws") | None => {
                    Auth::Ssws(SecretString::from(field(&m, "token").ok_or_else(|| {
                        OktaError::Config("the credential JSON has no token".into())
                    })?))
                }
                Some("oauth") => {
                    let client_id = field(&m, "client_id").ok_or_else(|| {
                        OktaError::Config("the OAuth credential has no client_id".into())
                    })?;
                    let pem = field(&m, "private_key").ok_or_else(|| {
                        OktaError::Config("the OAuth credential has no private_key".into())
                    })?;
                    let key =
                        jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
                            OktaError::Config(
                                "the OAuth private_key is not an RSA private key in PEM".into(),
                            )
                        })?;
                    let scopes: Vec<String> = m
                        .get("scopes")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                        .unwrap_or_else(|| {
                            vec!["okta.eventHooks.manage".into(), "okta.apps.manage".into()]
                        });
                    Auth::ServiceApp {
                        client_id,
                        key,
                        key_id: field(&m, "key_id"),
                        scopes: scopes.join(" "),
                        cached: tokio::sync::Mutex::new(None),
                    }
                }
                Some(other) => {
                    return Err(OktaError::Config(format!(
                        "unknown credential type {other:?} (ssws or oauth)"
                    )));
                }
            },
            _ if raw.is_empty() => return Err(OktaError::Config("empty API token".into())),
            _ => Auth::Ssws(SecretString::from(raw.to_owned())),
        };
        if let Auth::Ssws(t) = &auth
            && t.expose_secret().is_empty()
        {
            return Err(OktaError::Config("empty API token".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| OktaError::Config(e.without_url().to_string()))?;
        Ok(Self {
            http,
            org_url,
            auth: std::sync::Arc::new(auth),
            max_attempts: 4,
            max_wait: Duration::from_secs(60),
        })
    }

    /// The `Authorization` value: `SSWS <token>`, or `Bearer <access token>` fetched (and cached
    /// until a minute before it expires) with a signed client assertion.
    async fn authorization(&self) -> Result<SecretString, OktaError> {
        match self.auth.as_ref() {
            Auth::Ssws(token) => Ok(SecretString::from(format!("SSWS {}", token.expose_secret()))),
            Auth::ServiceApp { client_id, key, key_id, scopes, cached } => {
                let mut cached = cached.lock().await;
                if let Some((token, until)) = cached.as_ref()
                    && tokio::time::Instant::now() < *until
                {
                    return Ok(SecretString::from(format!("Bearer {}", token.expose_secret())));
                }
                let token_url = format!("{}/oauth2/v1/token", self.org_url);
                let now = chrono::Utc::now().timestamp();
                let claims = serde_json::json!({
                    "aud": token_url, "iss": client_id, "sub": client_id, "iat": now, "exp": now + 300,
                    "jti": format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
                });
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                header.kid = key_id.clone();
                let assertion = jsonwebtoken::encode(&header, &claims, key).map_err(|e| {
                    OktaError::Config(format!("cannot sign the client assertion: {e}"))
                })?;
                let form = [
                    ("grant_type", "client_credentials"),
                    ("scope", scopes.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ];
                let response = self
                    .http
                    .post(&token_url)
                    .header(http::header::ACCEPT, "application/json")
                    .form(&form)
                    .send()
                    .await
                    .map_err(|e| OktaError::Transport(e.without_url().to_string()))?;
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if status != 200 {
                    let summary = body["error_description"]
                        .as_str()
                        .or(body["error"].as_str())
                        .unwrap_or("no description");
                    return Err(OktaError::Refused {
                        status,
                        summary: format!("access token request: {summary}"),
                    });
                }
                let access = body["access_token"]
                    .as_str()
                    .ok_or_else(|| {
                        OktaError::BadReply("the token response has no access_token".into())
                    })?
                    .to_owned();
                let lifetime = body["expires_in"].as_u64().unwrap_or(3600).saturating_sub(60);
                let value = SecretString::from(format!("Bearer {access}"));
                *cached = Some((
                    SecretString::from(access),
                    tokio::time::Instant::now() + Duration::from_secs(lifetime),
                ));
                Ok(value)
            }
        }
    }

    /// Bounds the 429 handling (attempts, and the longest single wait).
    pub fn with_rate_limit_policy(mut self, max_attempts: u32, max_wait: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.max_wait = max_wait;
        self
    }

    async fn headers(&self) -> Result<HeaderMap, OktaError> {
        let mut h = HeaderMap::new();
        let authorization = self.authorization().await?;
        let mut auth = HeaderValue::from_str(authorization.expose_secret()).map_err(|_| {
            OktaError::Config("the API token has characters a header cannot carry".into())
        })?;
        auth.set_sensitive(true);
        h.insert(http::header::AUTHORIZATION, auth);
        h.insert(http::header::ACCEPT, HeaderValue::from_static("application/json"));
        Ok(h)
    }

    /// One request, with waits on 429. `path_or_url` is a path on the org or a full `next` URL.
    async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, OktaError> {
        // A path is joined to the org; an absolute URL (a pagination link) must keep the org's
        // origin exactly (scheme, host and port), or the credential would go elsewhere.
        let url = if path_or_url.starts_with('/') {
            format!("{}{path_or_url}", self.org_url)
        } else {
            path_or_url.to_owned()
        };
        let same_origin = reqwest::Url::parse(&url)
            .is_ok_and(|u| u.origin().ascii_serialization() == self.org_url);
        if !same_origin {
            return Err(OktaError::BadReply("a link points outside the Okta org".into()));
        }
        for attempt in 1..=self.max_attempts {
            let mut request =
                self.http.request(method.clone(), &url).headers(self.headers().await?);
            if let Some(b) = body {
                request = request.json(b);
            }
            count(Metric::OktaCalls, &[], 1);
            let response = request
                .send()
                .await
                .map_err(|e| OktaError::Transport(e.without_url().to_string()))?;
            let status = response.status().as_u16();
            if status == 429 {
                count(Metric::OktaThrottles, &[], 1);
                let wait = rate_limit_wait(response.headers()).min(self.max_wait);
                tracing::warn!(
                    attempt,
                    wait_s = wait.as_secs(),
                    "Okta rate limit reached; waiting for the reset"
                );
                if attempt < self.max_attempts {
                    tokio::time::sleep(wait).await;
                }
                continue;
            }
            if (500..600).contains(&status) {
                return Err(OktaError::Server { status });
            }
            if !(200..300).contains(&status) {
                let summary = response
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["errorSummary"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "no error summary".into());
                return Err(OktaError::Refused { status, summary });
            }
            return Ok(response);
        }
        Err(OktaError::RateLimited { attempts: self.max_attempts })
    }

    /// `GET` of an API path (one page), as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, OktaError> {
        let r = self.send(Method::GET, path, None).await?;
        r.json().await.map_err(|e| OktaError::BadReply(e.without_url().to_string()))
    }

    /// Every item of a paginated list, following `Link: <…>; rel="next"`.
    pub async fn get_all(&self, path: &str) -> Result<Vec<Value>, OktaError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(url) = next.take() {
            let r = self.send(Method::GET, &url, None).await?;
            next = next_link(r.headers());
            let page: Value =
                r.json().await.map_err(|e| OktaError::BadReply(e.without_url().to_string()))?;
            match page {
                Value::Array(a) => items.extend(a),
                _ => return Err(OktaError::BadReply("expected a JSON array".into())),
            }
        }
        Ok(items)
    }
}

/// Seconds until `X-Rate-Limit-Reset` (epoch seconds) plus one; 1 s when absent or past.
fn rate_limit_wait(headers: &reqwest::header::HeaderMap) -> Duration {
    let reset = headers
        .get("x-rate-limit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let now = chrono::Utc::now().timestamp();
    let secs = reset.map(|r| (r - now).max(0) + 1).unwrap_or(1);
    Duration::from_secs(secs as u64)
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let (target, params) = part.split_once(';')?;
            params
                .split(';')
                .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
                .then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
        })
}

impl crate::health::ports::OktaReader for OktaClient {
    async fn get_json(&self, path: &str) -> Result<Value, OktaError> {
        self.get(path).await
    }

    async fn get_list(&self, path: &str) -> Result<Vec<Value>, OktaError> {
        self.get_all(path).await
    }

    async fn get_page(&self, path_or_url: &str) -> Result<(Vec<Value>, Option<String>), OktaError> {
        let r = self.send(Method::GET, path_or_url, None).await?;
        let next = next_link(r.headers());
        match r.json().await.map_err(|e| OktaError::BadReply(e.without_url().to_string()))? {
            Value::Array(items) => Ok((items, next)),
            _ => Err(OktaError::BadReply("expected a JSON array".into())),
        }
    }
}

impl crate::okta::ports::OktaGroups for OktaClient {
    async fn group_id(&self, name: &str) -> Result<Option<String>, OktaError> {
        let q: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let groups = self.get_all(&format!("/api/v1/groups?q={q}&limit=200")).await?;
        Ok(groups
            .iter()
            .filter(|g| g["profile"]["name"].as_str() == Some(name))
            .find_map(|g| g["id"].as_str().map(str::to_owned)))
    }

    async fn user_id(&self, login: &str) -> Result<Option<String>, OktaError> {
        let login: String = url::form_urlencoded::byte_serialize(login.as_bytes()).collect();
        match self.get(&format!("/api/v1/users/{login}")).await {
            Ok(user) => Ok(user["id"].as_str().map(str::to_owned)),
            Err(OktaError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<(), OktaError> {
        let path = format!("/api/v1/groups/{}/users/{}", path_part(group_id), path_part(user_id));
        self.send(Method::PUT, &path, None).await.map(|_| ())
    }

    async fn remove_member(&self, group_id: &str, user_id: &str) -> Result<(), OktaError> {
        let path = format!("/api/v1/groups/{}/users/{}", path_part(group_id), path_part(user_id));
        match self.send(Method::DELETE, &path, None).await {
            Ok(_) | Err(OktaError::Refused { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn member_logins(&self, group_id: &str) -> Result<Vec<String>, OktaError> {
        let users = self
            .get_all(&format!("/api/v1/groups/{}/users?limit=200", path_part(group_id)))
            .await?;
        Ok(users.iter().filter_map(|u| u["profile"]["login"].as_str().map(str::to_owned)).collect())
    }

    async fn user(&self, id_or_login: &str) -> Result<Option<OktaUser>, OktaError> {
        match self.get(&format!("/api/v1/users/{}", path_part(id_or_login))).await {
            Ok(user) => Ok(OktaUser::from_json(&user)),
            Err(OktaError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn users_by_email(&self, email: &str) -> Result<Vec<OktaUser>, OktaError> {
        // Okta's search expression takes a quoted string; a quote or backslash in an address
        // would end it, so such an address is refused rather than escaped.
        if email.contains(['"', '\\']) || email.trim().is_empty() {
            return Ok(Vec::new());
        }
        let search: String = url::form_urlencoded::byte_serialize(
            format!("profile.email eq \"{email}\"").as_bytes(),
        )
        .collect();
        let users = self.get_all(&format!("/api/v1/users?search={search}&limit=200")).await?;
        Ok(users
            .iter()
            .filter_map(OktaUser::from_json)
            .filter(|u| u.email.eq_ignore_ascii_case(email))
            .collect())
    }

    async fn user_group_names(&self, user_id: &str) -> Result<Vec<String>, OktaError> {
        let groups =
            self.get_all(&format!("/api/v1/users/{}/groups?limit=200", path_part(user_id))).await?;
        Ok(groups.iter().filter_map(|g| g["profile"]["name"].as_str().map(str::to_owned)).collect())
    }
}

/// An id as one path segment.
fn path_part(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

impl OktaApi for OktaClient {
    async fn set_event_hook_secret(
        &self,
        hook_id: &str,
        value: &SecretString,
    ) -> Result<(), OktaError> {
        let path = format!("/api/v1/eventHooks/{hook_id}");
        let mut hook = self.get(&path).await?;
        let config = hook
            .pointer_mut("/channel/config")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| OktaError::BadReply("the event hook has no channel.config".into()))?;
        config.insert(
            "authScheme".into(),
            serde_json::json!({"type": "HEADER", "key": "Authorization", "value": value.expose_secret()}),
        );
        let obj = hook
            .as_object_mut()
            .ok_or_else(|| OktaError::BadReply("the event hook is not an object".into()))?;
        for read_only in
            ["id", "status", "verificationStatus", "created", "lastUpdated", "createdBy", "_links"]
        {
            obj.remove(read_only);
        }
        self.send(Method::PUT, &path, Some(&hook)).await?;
        Ok(())
    }

    async fn verify_event_hook(&self, hook_id: &str) -> Result<bool, OktaError> {
        let r = self
            .send(Method::POST, &format!("/api/v1/eventHooks/{hook_id}/lifecycle/verify"), None)
            .await?;
        let hook: Value =
            r.json().await.map_err(|e| OktaError::BadReply(e.without_url().to_string()))?;
        Ok(hook["verificationStatus"] == "VERIFIED")
    }

    async fn set_app_provisioning_token(
        &self,
        app_id: &str,
        token: &SecretString,
    ) -> Result<(), OktaError> {
        let body =
            serde_json::json!({"profile": {"authScheme": "TOKEN", "token": token.expose_secret()}});
        self.send(
            Method::POST,
            &format!("/api/v1/apps/{app_id}/connections/default?activate=true"),
            Some(&body),
        )
        .await?;
        Ok(())
    }
}

impl SystemLog for OktaClient {
    async fn event_by_uuid(
        &self,
        uuid: &str,
        published: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Option<crate::okta::OktaEvent>, OktaError> {
        // The log keeps 90 days; without a time, look back that far.
        let since = published
            .map(|p| p - chrono::Duration::minutes(5))
            .unwrap_or_else(|| chrono::Utc::now() - chrono::Duration::days(90));
        let filter = format!("uuid eq \"{}\"", uuid.replace('"', ""));
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", &filter)
            .append_pair("since", &since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .append_pair("limit", "1")
            .finish();
        let page = self.get(&format!("/api/v1/logs?{query}")).await?;
        let Some(first) = page.as_array().and_then(|a| a.first()) else { return Ok(None) };
        let event: crate::okta::OktaEvent = serde_json::from_value(first.clone())
            .map_err(|e| OktaError::BadReply(format!("a System Log event: {e}")))?;
        Ok((event.uuid.as_deref() == Some(uuid)).then_some(event))
    }
}

/// The org authorization server's published keys (`<org>/oauth2/v1/keys`): public, read
/// without a credential, for verifying the ID tokens Okta issues to idc-guard's OIDC app.
#[derive(Debug, Clone)]
pub struct OktaPublicKeys {
    http: reqwest::Client,
    url: String,
}

impl OktaPublicKeys {
    /// The keys of the org at `org_url`.
    pub fn new(org_url: &str) -> Result<Self, OktaError> {
        let org = validate_org_url(org_url)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| OktaError::Config(e.without_url().to_string()))?;
        Ok(Self { http, url: format!("{org}/oauth2/v1/keys") })
    }
}

impl crate::okta::id_token::OktaKeys for OktaPublicKeys {
    fn keys(&self) -> futures::future::BoxFuture<'_, Result<jsonwebtoken::jwk::JwkSet, OktaError>> {
        Box::pin(async move {
            let response = self
                .http
                .get(&self.url)
                .send()
                .await
                .map_err(|e| OktaError::Transport(e.without_url().to_string()))?;
            let status = response.status().as_u16();
            if status != 200 {
                return Err(OktaError::Refused {
                    status,
                    summary: "the keys endpoint refused".into(),
                });
            }
            response.json().await.map_err(|e| OktaError::BadReply(e.without_url().to_string()))
        })
    }
}

/// The Okta client, built on first use from the credential secret: a function that does not
/// need Okta for an invocation (the daily SCIM token check) never depends on it, and a missing
/// or bad credential fails only the steps that call Okta, with the reason. A failed read is
/// tried again on the next use.
pub struct LazyOktaClient<Secrets> {
    secrets: Secrets,
    secret_id: String,
    org_url: String,
    client: tokio::sync::OnceCell<OktaClient>,
}

impl<Secrets: SecretStore> LazyOktaClient<Secrets> {
    /// Checks the org URL now (configuration); reads the credential only when Okta is called.
    pub fn new(
        secrets: Secrets,
        secret_id: impl Into<String>,
        org_url: &str,
    ) -> Result<Self, OktaError> {
        Ok(Self {
            secrets,
            secret_id: secret_id.into(),
            org_url: validate_org_url(org_url)?,
            client: tokio::sync::OnceCell::new(),
        })
    }

    async fn client(&self) -> Result<&OktaClient, OktaError> {
        self.client
            .get_or_try_init(|| async {
                let credential = self
                    .secrets
                    .secret_string(&self.secret_id, crate::secret::AWSCURRENT)
                    .await
                    .map_err(|e| {
                        OktaError::Config(format!("the Okta API credential could not be read: {e}"))
                    })?
                    .filter(|c| !c.expose_secret().trim().is_empty())
                    .ok_or_else(|| {
                        OktaError::Config("the Okta API credential secret has no value".into())
                    })?;
                OktaClient::new(&self.org_url, &credential)
            })
            .await
    }
}

impl<Secrets: SecretStore> crate::health::ports::OktaReader for LazyOktaClient<Secrets> {
    async fn get_json(&self, path: &str) -> Result<Value, OktaError> {
        self.client().await?.get(path).await
    }

    async fn get_list(&self, path: &str) -> Result<Vec<Value>, OktaError> {
        self.client().await?.get_all(path).await
    }

    async fn get_page(&self, path_or_url: &str) -> Result<(Vec<Value>, Option<String>), OktaError> {
        self.client().await?.get_page(path_or_url).await
    }
}

impl<Secrets: SecretStore> crate::okta::ports::OktaGroups for LazyOktaClient<Secrets> {
    async fn group_id(&self, name: &str) -> Result<Option<String>, OktaError> {
        self.client().await?.group_id(name).await
    }
    async fn user_id(&self, login: &str) -> Result<Option<String>, OktaError> {
        self.client().await?.user_id(login).await
    }
    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<(), OktaError> {
        self.client().await?.add_member(group_id, user_id).await
    }
    async fn remove_member(&self, group_id: &str, user_id: &str) -> Result<(), OktaError> {
        self.client().await?.remove_member(group_id, user_id).await
    }
    async fn member_logins(&self, group_id: &str) -> Result<Vec<String>, OktaError> {
        self.client().await?.member_logins(group_id).await
    }
    async fn user(&self, id_or_login: &str) -> Result<Option<OktaUser>, OktaError> {
        self.client().await?.user(id_or_login).await
    }
    async fn users_by_email(&self, email: &str) -> Result<Vec<OktaUser>, OktaError> {
        self.client().await?.users_by_email(email).await
    }
    async fn user_group_names(&self, user_id: &str) -> Result<Vec<String>, OktaError> {
        self.client().await?.user_group_names(user_id).await
    }
}

impl<Secrets: SecretStore> SystemLog for LazyOktaClient<Secrets> {
    async fn event_by_uuid(
        &self,
        uuid: &str,
        published: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Option<crate::okta::OktaEvent>, OktaError> {
        self.client().await?.event_by_uuid(uuid, published).await
    }
}

impl<Secrets: SecretStore> OktaApi for LazyOktaClient<Secrets> {
    async fn set_event_hook_secret(
        &self,
        hook_id: &str,
        value: &SecretString,
    ) -> Result<(), OktaError> {
        self.client().await?.set_event_hook_secret(hook_id, value).await
    }

    async fn verify_event_hook(&self, hook_id: &str) -> Result<bool, OktaError> {
        self.client().await?.verify_event_hook(hook_id).await
    }

    async fn set_app_provisioning_token(
        &self,
        app_id: &str,
        token: &SecretString,
    ) -> Result<(), OktaError> {
        self.client().await?.set_app_provisioning_token(app_id, token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "00aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789abcd";

    /// A credential secret that is empty until set, counting its reads.
    #[derive(Default)]
    struct Credential(std::sync::Mutex<Option<String>>, std::sync::atomic::AtomicUsize);

    impl SecretStore for &Credential {
        async fn secret_string(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<SecretString>, crate::error::AwsError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self.0.lock().unwrap().clone().map(SecretString::from))
        }
    }

    #[tokio::test]
    async fn the_lazy_client_reads_the_credential_only_when_okta_is_called() {
        // Defect: scim-token-rotation read the Okta credential at cold start, so a missing one
        // stopped the daily SCIM expiry check, which never calls Okta.
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/eventHooks/whk1/lifecycle/verify"))
            .and(header("authorization", format!("SSWS {TOKEN}").as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"verificationStatus": "VERIFIED"})),
            )
            .mount(&server)
            .await;
        let credential = Credential::default();
        let lazy = LazyOktaClient::new(&credential, "okta-api", &server.uri()).unwrap();
        assert_eq!(credential.1.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing read");
        let err = lazy.verify_event_hook("whk1").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "Okta configuration: the Okta API credential secret has no value"
        );
        *credential.0.lock().unwrap() = Some(TOKEN.to_owned());
        assert!(lazy.verify_event_hook("whk1").await.unwrap(), "read again after a failure");
        assert!(lazy.verify_event_hook("whk1").await.unwrap());
        assert_eq!(credential.1.load(std::sync::atomic::Ordering::SeqCst), 2, "built once");
        assert!(
            LazyOktaClient::new(&credential, "okta-api", "https://acme.okta.com.evil/").is_err()
        );
    }

    fn client(server: &MockServer) -> OktaClient {
        OktaClient::new(&server.uri(), &SecretString::from(TOKEN.to_owned()))
            .unwrap()
            .with_rate_limit_policy(3, Duration::from_secs(2))
    }

    #[tokio::test]
    async fn waits_for_the_rate_limit_reset_then_succeeds() {
        let server = MockServer::start().await;
        let reset = chrono::Utc::now().timestamp();
        Mock::given(method("GET"))
            .and(path("/api/v1/groups"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("X-Rate-Limit-Reset", reset.to_string().as_str()),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/groups"))
            .and(header("authorization", format!("SSWS {TOKEN}").as_str()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!([{"id": "00g1"}])),
            )
            .mount(&server)
            .await;
        let started = std::time::Instant::now();
        let groups = client(&server).get("/api/v1/groups").await.unwrap();
        assert_eq!(groups[0]["id"], "00g1");
        assert!(started.elapsed() >= Duration::from_millis(900), "waited for the reset + 1 s");
    }

    #[tokio::test]
    async fn gives_up_after_bounded_rate_limit_attempts() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).insert_header("X-Rate-Limit-Reset", "0"))
            .expect(3)
            .mount(&server)
            .await;
        let err = client(&server).get("/api/v1/groups").await.unwrap_err();
        assert!(matches!(err, OktaError::RateLimited { attempts: 3 }), "{err}");
    }

    #[tokio::test]
    async fn follows_link_pagination_within_the_org() {
        let server = MockServer::start().await;
        let next = format!(
            "<{}/api/v1/groups/00g1/users?after=abc&limit=200>; rel=\"next\"",
            server.uri()
        );
        Mock::given(method("GET"))
            .and(path("/api/v1/groups/00g1/users"))
            .and(wiremock::matchers::query_param("after", "abc"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!([{"id": "u3"}])),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/groups/00g1/users"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header(
                        "link",
                        format!(
                            "<{}/api/v1/groups/00g1/users?limit=200>; rel=\"self\"",
                            server.uri()
                        )
                        .as_str(),
                    )
                    .append_header("link", next.as_str())
                    .set_body_json(serde_json::json!([{"id": "u1"}, {"id": "u2"}])),
            )
            .mount(&server)
            .await;
        let users = client(&server).get_all("/api/v1/groups/00g1/users?limit=200").await.unwrap();
        let ids: Vec<_> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["u1", "u2", "u3"]);
    }

    #[tokio::test]
    async fn a_pagination_link_to_another_origin_is_refused_even_with_the_same_prefix() {
        // The org is http://127.0.0.1:PORT; a link to http://127.0.0.1:PORT0/ or to
        // http://127.0.0.1:PORT.evil.com/ starts with the org's text but is another host or port.
        let server = MockServer::start().await;
        for next in [
            format!("<{}0/api/v1/groups?after=x>; rel=\"next\"", server.uri()),
            format!("<{}.evil.com/api/v1/groups?after=x>; rel=\"next\"", server.uri()),
            "<https://acme.okta.com.evil/api/v1/groups?after=x>; rel=\"next\"".to_owned(),
        ] {
            server.reset().await;
            Mock::given(method("GET"))
                .and(path("/api/v1/groups"))
                .respond_with(
                    ResponseTemplate::new(200)
                        .insert_header("link", next.as_str())
                        .set_body_json(serde_json::json!([{"id": "g1"}])),
                )
                .mount(&server)
                .await;
            let err = client(&server).get_all("/api/v1/groups").await.unwrap_err();
            assert!(err.to_string().contains("outside the Okta org"), "{next}: {err}");
            assert_eq!(server.received_requests().await.unwrap().len(), 1, "{next}");
        }
    }

    #[tokio::test]
    async fn errors_carry_okta_summaries_but_never_the_token() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/eventHooks/whk1"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(serde_json::json!({"errorSummary": "Invalid token provided"})),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/eventHooks/whk2"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        let c = client(&server);
        let e = c.get("/api/v1/eventHooks/whk1").await.unwrap_err();
        assert_eq!(e.to_string(), "Okta refused the request (401): Invalid token provided");
        let e = c.get("/api/v1/eventHooks/whk2").await.unwrap_err();
        assert!(e.is_retryable());
        assert!(!format!("{c:?}").contains(TOKEN));
    }

    #[tokio::test]
    async fn the_event_hook_secret_is_replaced_in_the_full_hook_object() {
        let server = MockServer::start().await;
        let hook = serde_json::json!({
            "id": "whk1", "status": "ACTIVE", "verificationStatus": "VERIFIED", "name": "idc-guard",
            "events": {"type": "EVENT_TYPE", "items": ["group.user_membership.add"]},
            "channel": {"type": "HTTP", "version": "1.0.0", "config": {"uri": "https://hook.example/", "headers": [],
                "authScheme": {"type": "HEADER", "key": "Authorization"}}},
            "created": "2026-01-01T00:00:00.000Z", "lastUpdated": "2026-01-01T00:00:00.000Z", "_links": {}
        });
        Mock::given(method("GET"))
            .and(path("/api/v1/eventHooks/whk1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(hook.clone()))
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .and(path("/api/v1/eventHooks/whk1"))
            .and(body_partial_json(serde_json::json!({"name": "idc-guard", "channel": {"config": {"authScheme": {"type": "HEADER", "key": "Authorization", "value": "new-value"}}}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(hook))
            .expect(1)
            .mount(&server)
            .await;
        client(&server)
            .set_event_hook_secret("whk1", &SecretString::from("new-value".to_owned()))
            .await
            .unwrap();
        let put = &server.received_requests().await.unwrap()[1];
        let sent: Value = serde_json::from_slice(&put.body).unwrap();
        assert!(
            sent.get("id").is_none() && sent.get("_links").is_none(),
            "read-only fields are not sent back"
        );
    }

    #[test]
    fn a_bad_credential_is_a_configuration_error() {
        assert!(
            OktaClient::new(
                "https://acme.okta.com",
                &SecretString::from(r#"{"type":"oauth","client_id":"x"}"#.to_owned())
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn a_service_app_signs_a_client_assertion_and_caches_the_access_token() {
        let server = MockServer::start().await;
        let credential = serde_json::json!({
            "type": "oauth", "client_id": "0oaServiceApp123", "key_id": "kid-1",
            "private_key": include_str!("../../testdata/okta-service-app-test-key.pem"),
            "scopes": ["okta.eventHooks.manage"],
        });
        Mock::given(method("POST"))
            .and(path("/oauth2/v1/token"))
            .and(wiremock::matchers::body_string_contains("grant_type=client_credentials"))
            .and(wiremock::matchers::body_string_contains(
                "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "token_type": "Bearer", "expires_in": 3600, "access_token": "eyJ.access.token",
                "scope": "okta.eventHooks.manage"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/eventHooks/whk1/lifecycle/verify"))
            .and(header("authorization", "Bearer eyJ.access.token"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"verificationStatus": "VERIFIED"})),
            )
            .expect(2)
            .mount(&server)
            .await;
        let c =
            OktaClient::new(&server.uri(), &SecretString::from(credential.to_string())).unwrap();
        assert!(c.verify_event_hook("whk1").await.unwrap());
        assert!(c.verify_event_hook("whk1").await.unwrap(), "the access token is reused");
        assert!(!format!("{c:?}").contains("PRIVATE KEY"));

        // The assertion is an RS256 JWT for this org's token endpoint, signed with the app's key.
        let requests = server.received_requests().await.unwrap();
        let form = String::from_utf8(requests[0].body.clone()).unwrap();
        let assertion =
            form.split('&').find_map(|kv| kv.strip_prefix("client_assertion=")).unwrap();
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(include_bytes!(
            "../../testdata/okta-service-app-test-key.pub.pem"
        ))
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[format!("{}/oauth2/v1/token", server.uri())]);
        validation.set_issuer(&["0oaServiceApp123"]);
        let decoded =
            jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation).unwrap();
        assert_eq!(decoded.claims["sub"], "0oaServiceApp123");
        assert_eq!(decoded.header.kid.as_deref(), Some("kid-1"));
    }

    #[test]
    fn unknown_credential_types_are_refused() {
        let c = OktaClient::new(
            "https://acme.okta.com",
            &SecretString::from(r#"{"type":"saml"}"#.to_owned()),
        );
        assert!(c.is_err());
    }
}
