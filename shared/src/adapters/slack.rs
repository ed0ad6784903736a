//! Slack's Web API (`chat.postMessage`, `chat.update`, `users.info`) and interaction responses,
//! for the grants' Slack door. The bot token and the signing secret are one Secrets Manager
//! secret, `{"bot_token": "xoxb-…", "signing_secret": "…"}`, read on first use; the API base
//! (`https://slack.com/api/` by default) is a setting so tests and the demo use a stand-in.

use serde_json::{Value, json};

use crate::access::grants::slack::{SlackApi, SlackError};
use crate::secret::{ExposeSecret, SecretStore, SecretString};

/// Slack's Web API base.
pub const DEFAULT_API_BASE: &str = "https://slack.com/api/";

struct Credentials {
    bot_token: SecretString,
    signing_secret: SecretString,
}

/// The Slack Web API client of the grants function.
pub struct SlackWebClient<Secrets> {
    http: reqwest::Client,
    base: String,
    secrets: Secrets,
    secret_id: String,
    credentials: tokio::sync::OnceCell<Credentials>,
}

impl<Secrets> std::fmt::Debug for SlackWebClient<Secrets> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackWebClient")
            .field("base", &self.base)
            .field("credentials", &"***")
            .finish()
    }
}

impl<Secrets: SecretStore> SlackWebClient<Secrets> {
    /// A client of the API at `base` (ending in `/`), credentials from secret `secret_id`.
    pub fn new(
        base: &str,
        secrets: Secrets,
        secret_id: impl Into<String>,
    ) -> Result<Self, SlackError> {
        let url = reqwest::Url::parse(base)
            .map_err(|_| SlackError::Config(format!("{base:?} is not a URL")))?;
        let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost"));
        if url.scheme() != "https" && !local {
            return Err(SlackError::Config("the Slack API base must be https".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| SlackError::Config(e.to_string()))?;
        let base = if base.ends_with('/') { base.to_owned() } else { format!("{base}/") };
        Ok(Self {
            http,
            base,
            secrets,
            secret_id: secret_id.into(),
            credentials: tokio::sync::OnceCell::new(),
        })
    }

    async fn credentials(&self) -> Result<&Credentials, SlackError> {
        self.credentials
            .get_or_try_init(|| async {
                let raw = self
                    .secrets
                    .secret_string(&self.secret_id, crate::secret::AWSCURRENT)
                    .await
                    .map_err(|e| {
                        SlackError::Config(format!("the Slack secret could not be read: {e}"))
                    })?
                    .ok_or_else(|| SlackError::Config("the Slack secret has no value".into()))?;
                let v: Value = serde_json::from_str(raw.expose_secret())
                    .map_err(|_| SlackError::Config("the Slack secret is not JSON".into()))?;
                let field = |k: &str| {
                    v[k].as_str()
                        .filter(|s| !s.is_empty())
                        .map(|s| SecretString::from(s.to_owned()))
                        .ok_or_else(|| SlackError::Config(format!("the Slack secret has no {k}")))
                };
                Ok(Credentials {
                    bot_token: field("bot_token")?,
                    signing_secret: field("signing_secret")?,
                })
            })
            .await
    }

    /// A Web API call: JSON body, or a form for the methods that take only forms (`users.info`).
    async fn call(&self, method: &'static str, body: Value) -> Result<Value, SlackError> {
        let token = &self.credentials().await?.bot_token;
        let request =
            self.http.post(format!("{}{method}", self.base)).bearer_auth(token.expose_secret());
        let request = if method == "users.info" {
            let form: Vec<(String, String)> = body
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            request.form(&form)
        } else {
            request.json(&body)
        };
        let reply: Value = request
            .send()
            .await
            .map_err(|e| SlackError::Transport(e.without_url().to_string()))?
            .json()
            .await
            .map_err(|e| SlackError::Transport(e.without_url().to_string()))?;
        if reply["ok"] == true {
            Ok(reply)
        } else {
            Err(SlackError::Api {
                method,
                error: reply["error"].as_str().unwrap_or("unknown").to_owned(),
            })
        }
    }

    /// A `response_url` must be Slack's (or the configured stand-in's): it is where the answer,
    /// which names a grant, goes.
    fn trusted_response_url(&self, url: &str) -> bool {
        let origin =
            |u: &str| reqwest::Url::parse(u).ok().map(|u| u.origin().ascii_serialization());
        let url_origin = origin(url);
        url_origin.is_some()
            && (url_origin == origin("https://hooks.slack.com/")
                || url_origin == origin(&self.base))
    }
}

use crate::access::grants::slack::SlackFuture as Fut;

impl<Secrets: SecretStore> SlackApi for SlackWebClient<Secrets> {
    fn signing_secret(&self) -> Fut<'_, SecretString> {
        Box::pin(async move { Ok(self.credentials().await?.signing_secret.clone()) })
    }

    fn post<'a>(
        &'a self,
        channel: &'a str,
        text: &'a str,
        blocks: &'a Value,
    ) -> Fut<'a, (String, String)> {
        Box::pin(async move {
            let r = self
                .call(
                    "chat.postMessage",
                    json!({"channel": channel, "text": text, "blocks": blocks}),
                )
                .await?;
            let field = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            Ok((field("channel"), field("ts")))
        })
    }

    fn update<'a>(
        &'a self,
        channel: &'a str,
        ts: &'a str,
        text: &'a str,
        blocks: &'a Value,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            self.call(
                "chat.update",
                json!({"channel": channel, "ts": ts, "text": text, "blocks": blocks}),
            )
            .await?;
            Ok(())
        })
    }

    fn user_email<'a>(&'a self, user_id: &'a str) -> Fut<'a, Option<String>> {
        Box::pin(async move {
            let r = self.call("users.info", json!({"user": user_id})).await?;
            // A bot, or a deleted user, is no person of the org.
            if r["user"]["is_bot"] == true || r["user"]["deleted"] == true {
                return Ok(None);
            }
            Ok(r["user"]["profile"]["email"].as_str().filter(|e| !e.is_empty()).map(str::to_owned))
        })
    }

    fn respond<'a>(&'a self, response_url: &'a str, text: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            if !self.trusted_response_url(response_url) {
                return Err(SlackError::Config("the response_url is not Slack's".into()));
            }
            self.http
                .post(response_url)
                .json(
                    &json!({"response_type": "ephemeral", "replace_original": false, "text": text}),
                )
                .send()
                .await
                .map_err(|e| SlackError::Transport(e.without_url().to_string()))?;
            Ok(())
        })
    }
}
