//! Slack, the second front door: requests are posted to the grantable's channel with Approve /
//! Deny buttons; a click is a signed interaction that the grants function verifies, maps to the
//! Okta user by the Slack user's e-mail, and decides exactly as a CLI approval would.
//!
//! Signature: `X-Slack-Signature` = `v0=` + hex HMAC-SHA256(signing secret,
//! `v0:<X-Slack-Request-Timestamp>:<raw body>`), compared in constant time; a timestamp more
//! than five minutes off is refused (a replay inside the window decides nothing twice: a person
//! approves once, and only a pending grant can be approved or denied). The Web API adapter is
//! `adapters::slack`; its base URL is a setting so tests and the demo use a local stand-in.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::grantable::Grantable;
use super::{GrantsHandler, Ports};
use crate::records::{self, Grant, GrantStatus};
use crate::secret::{ExposeSecret, SecretString};

/// How far a request's timestamp may be from now.
pub const REPLAY_WINDOW_SECONDS: i64 = 300;
/// The Approve button's `action_id`.
pub const APPROVE: &str = "grant-approve";
/// The Deny button's `action_id`.
pub const DENY: &str = "grant-deny";

/// A Slack call that failed.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// Not configured, or the secret cannot be read.
    #[error("Slack is not configured: {0}")]
    Config(String),
    /// Slack answered `ok: false`.
    #[error("Slack refused {method}: {error}")]
    Api {
        /// The Web API method.
        method: &'static str,
        /// Slack's error code.
        error: String,
    },
    /// No answer.
    #[error("Slack could not be reached: {0}")]
    Transport(String),
}

/// What a Slack call returns.
pub type SlackFuture<'a, T> = futures::future::BoxFuture<'a, Result<T, SlackError>>;

/// Slack's Web API and the app's signing secret (object-safe).
pub trait SlackApi: Send + Sync {
    /// The signing secret interactions are verified with.
    fn signing_secret(&self) -> SlackFuture<'_, SecretString>;
    /// `chat.postMessage`; returns the channel id and the message's `ts`.
    fn post<'a>(
        &'a self,
        channel: &'a str,
        text: &'a str,
        blocks: &'a Value,
    ) -> SlackFuture<'a, (String, String)>;
    /// `chat.update`.
    fn update<'a>(
        &'a self,
        channel: &'a str,
        ts: &'a str,
        text: &'a str,
        blocks: &'a Value,
    ) -> SlackFuture<'a, ()>;
    /// `users.info`: the user's profile e-mail (`users:read.email`).
    fn user_email<'a>(&'a self, user_id: &'a str) -> SlackFuture<'a, Option<String>>;
    /// A message only the clicking person sees, through the interaction's `response_url`.
    fn respond<'a>(&'a self, response_url: &'a str, text: &'a str) -> SlackFuture<'a, ()>;
}

/// Why an interaction was refused before anything was decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Headers missing or malformed.
    #[error("the request is not signed by Slack")]
    Unsigned,
    /// The timestamp is more than five minutes off.
    #[error("the request's timestamp is outside the five-minute window")]
    Stale,
    /// The signature does not match.
    #[error("the request's signature does not match")]
    BadSignature,
}

/// Verifies a request's signature (see the module header).
pub fn verify(
    secret: &SecretString,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(Refusal::Unsigned);
    };
    let ts: i64 = timestamp.trim().parse().map_err(|_| Refusal::Unsigned)?;
    if (now.timestamp() - ts).abs() > REPLAY_WINDOW_SECONDS {
        return Err(Refusal::Stale);
    }
    let given = signature.strip_prefix("v0=").ok_or(Refusal::Unsigned)?;
    let given = hex::decode(given).map_err(|_| Refusal::BadSignature)?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(|_| Refusal::BadSignature)?;
    mac.update(b"v0:");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b":");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    if expected.len() == given.len() && bool::from(expected.as_slice().ct_eq(&given)) {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

/// Signs a body as Slack does (the local Slack stand-in's and the tests' side).
pub fn sign(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.expose_secret().as_bytes())
    else {
        return String::new();
    };
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// A button click, as the grants function reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    /// The Slack user id.
    pub user: String,
    /// [`APPROVE`] or [`DENY`].
    pub action: String,
    /// The grant id.
    pub grant: String,
    /// Where to answer the person.
    pub response_url: Option<String>,
}

/// Reads a `block_actions` interaction (`payload=<JSON>`, form-encoded).
pub fn parse_click(body: &[u8]) -> Result<Click, String> {
    let payload = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or("no payload field")?;
    let v: Value = serde_json::from_str(&payload).map_err(|_| "the payload is not JSON")?;
    if v["type"] != "block_actions" {
        return Err(format!("unsupported interaction type {}", v["type"]));
    }
    let action = &v["actions"][0];
    let str_of = |x: &Value, what: &str| x.as_str().map(str::to_owned).ok_or(format!("no {what}"));
    Ok(Click {
        user: str_of(&v["user"]["id"], "user.id")?,
        action: str_of(&action["action_id"], "action_id")?,
        grant: str_of(&action["value"], "action value")?,
        response_url: v["response_url"].as_str().map(str::to_owned),
    })
}

/// The message's text and Block Kit blocks: buttons while the grant waits for approval.
pub fn message(grant: &Grant, needed: usize) -> (String, Value) {
    let state = match grant.status {
        GrantStatus::Pending => {
            format!("waiting for approval ({} of {needed})", grant.approvals.len())
        }
        GrantStatus::Activating | GrantStatus::Active => format!(
            "*active* until {}{}",
            grant
                .expires_at
                .map(|e| e.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
            grant.approved_by.as_deref().map(|a| format!(", approved by {a}")).unwrap_or_default()
        ),
        GrantStatus::Expired => format!(
            "*ended* {}{}",
            grant.ended_at.map(|e| e.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default(),
            grant.activity.as_ref().map(|a| format!(" — {}", a.headline())).unwrap_or_default()
        ),
        GrantStatus::Denied => format!(
            "*denied* by {}",
            grant.denied_by.as_ref().map(|d| d.login.as_str()).unwrap_or("?")
        ),
    };
    let glass = if grant.break_glass {
        format!(
            " :rotating_light: BREAK-GLASS{}",
            grant
                .reviewed_by
                .as_ref()
                .map(|r| format!(" (reviewed by {})", r.login))
                .unwrap_or_else(|| " — needs review".into())
        )
    } else {
        String::new()
    };
    let text = format!(
        "{} asks for {} to be in {} for {} min: {} — {state}{glass} ({})",
        grant.requested_by, grant.login, grant.group, grant.minutes, grant.reason, grant.id
    );
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})];
    let reviewable = grant.break_glass && grant.reviewed_by.is_none();
    if grant.status == GrantStatus::Pending || reviewable {
        let approve = if reviewable { "Mark reviewed" } else { "Approve" };
        let mut elements = vec![json!({"type": "button", "action_id": APPROVE, "style": "primary",
            "text": {"type": "plain_text", "text": approve}, "value": grant.id})];
        if grant.status == GrantStatus::Pending {
            elements.push(json!({"type": "button", "action_id": DENY, "style": "danger",
                "text": {"type": "plain_text", "text": "Deny"}, "value": grant.id}));
        }
        blocks.push(json!({"type": "actions", "block_id": format!("grant:{}", grant.id), "elements": elements}));
    }
    (text, Value::Array(blocks))
}

impl<P: Ports> GrantsHandler<P> {
    /// Posts the request to the grantable's channel and remembers the message. Slack being
    /// down does not fail the request: the CLI door still works, and the alert went out.
    pub(crate) async fn post_to_slack(
        &self,
        mut grant: Grant,
        grantable: &Grantable,
    ) -> Result<Grant, crate::access::sync::SyncError> {
        let (Some(slack), Some(channel)) = (&self.slack, &grantable.slack_channel) else {
            return Ok(grant);
        };
        let (text, blocks) = message(&grant, grantable.approvals);
        match slack.post(channel, &text, &blocks).await {
            Ok((channel, ts)) => {
                grant.slack_message = Some((channel, ts));
                records::save(&self.access.store, &grant).await?;
            }
            Err(e) => {
                tracing::warn!(grant = %grant.id, error = %e, "the request could not be posted to Slack")
            }
        }
        Ok(grant)
    }

    /// Shows the grant's outcome in its Slack message (best effort: logged when it fails).
    pub(crate) async fn update_slack(&self, grant: &Grant) {
        let (Some(slack), Some((channel, ts))) = (&self.slack, &grant.slack_message) else {
            return;
        };
        let needed = self.access.policy.grantable(&grant.group).map_or(1, |g| g.approvals);
        let (text, blocks) = message(grant, needed);
        if let Err(e) = slack.update(channel, ts, &text, &blocks).await {
            tracing::warn!(grant = %grant.id, error = %e, "the Slack message could not be updated");
        }
    }

    /// A signed interaction (`POST /slack/interactions`): `(status, body)`. Only the signature
    /// decides whether anything is read; the person is the Okta user with the Slack user's
    /// e-mail; the decision is the CLI's (approve or deny, with every check).
    pub async fn slack_interaction(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> (u16, String) {
        let Some(slack) = &self.slack else { return (404, "not found".into()) };
        let secret = match slack.signing_secret().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "the Slack signing secret cannot be read");
                return (503, "unavailable".into());
            }
        };
        if let Err(refusal) = verify(&secret, timestamp, signature, body, now) {
            tracing::warn!(%refusal, "a Slack interaction was refused");
            return (401, "unauthorized".into());
        }
        let click = match parse_click(body) {
            Ok(c) => c,
            Err(why) => return (400, format!("bad interaction: {why}")),
        };
        let answer = self.decide_click(slack.as_ref(), &click, now).await;
        tracing::info!(grant = %click.grant, action = %click.action, %answer, "slack interaction");
        if let Some(url) = &click.response_url
            && let Err(e) = slack.respond(url, &answer).await
        {
            tracing::warn!(error = %e, "the Slack response could not be sent");
        }
        (200, String::new())
    }

    async fn decide_click(
        &self,
        slack: &dyn SlackApi,
        click: &Click,
        now: DateTime<Utc>,
    ) -> String {
        let email = match slack.user_email(&click.user).await {
            Ok(Some(e)) => e,
            Ok(None) => return "Your Slack profile has no e-mail: idc-guard cannot tell who you are in Okta.".into(),
            Err(e) => return format!("Slack could not say who you are: {e}"),
        };
        let refusal = |e: crate::access::sync::SyncError| match e {
            crate::access::sync::SyncError::Grant(why) => format!("Refused: {why}"),
            other => format!("Not done: {other}"),
        };
        let person = match self.person_by_email(&email).await {
            Ok(p) => p,
            Err(e) => return refusal(e),
        };
        let outcome = match click.action.as_str() {
            APPROVE => self.approve(&person, &click.grant, None, now).await,
            DENY => self.deny(&person, &click.grant, now).await,
            other => return format!("Unknown action {other}"),
        };
        match outcome {
            Ok(g) => {
                format!("Done: grant {} is {}.", g.id, format!("{:?}", g.status).to_lowercase())
            }
            Err(e) => refusal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretString {
        SecretString::from("8f742231b10e8888abcd99yyyzzz85a5".to_owned())
    }

    #[test]
    fn the_replay_window_is_five_minutes_either_way_and_no_more() {
        let now: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
        let at = |offset: i64| {
            let ts = now.timestamp() + offset;
            let signature = sign(&secret(), ts, b"payload=x");
            verify(&secret(), Some(&ts.to_string()), Some(&signature), b"payload=x", now)
        };
        assert_eq!(at(-REPLAY_WINDOW_SECONDS), Ok(()));
        assert_eq!(at(REPLAY_WINDOW_SECONDS), Ok(()));
        assert_eq!(at(-REPLAY_WINDOW_SECONDS - 1), Err(Refusal::Stale));
        assert_eq!(at(REPLAY_WINDOW_SECONDS + 1), Err(Refusal::Stale));
    }

    fn grant(status: GrantStatus, break_glass: bool) -> Grant {
        let t: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
        Grant {
            id: "g-1".into(),
            login: "alice@acme.example".into(),
            user_id: "00u-alice".into(),
            group: "aws-admin-platform".into(),
            reason: "INC-1".into(),
            minutes: 60,
            requested_by: "alice@acme.example".into(),
            requester_id: "00u-alice".into(),
            requested_at: t,
            approved_by: None,
            approvals: vec![],
            denied_by: None,
            break_glass,
            reviewed_by: None,
            status,
            starts_at: None,
            expires_at: None,
            ended_at: None,
            sessions_pending: false,
            slack_message: None,
            activity: None,
        }
    }

    fn buttons(g: &Grant) -> Vec<String> {
        let (_, blocks) = message(g, 1);
        blocks
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| {
                b["elements"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["text"]["text"].as_str().unwrap().to_owned())
            })
            .collect()
    }

    #[test]
    fn buttons_follow_what_is_left_to_decide() {
        assert_eq!(buttons(&grant(GrantStatus::Pending, false)), ["Approve", "Deny"]);
        assert!(buttons(&grant(GrantStatus::Active, false)).is_empty(), "nothing left to decide");
        assert!(buttons(&grant(GrantStatus::Denied, false)).is_empty());
        assert_eq!(
            buttons(&grant(GrantStatus::Active, true)),
            ["Mark reviewed"],
            "break-glass waits for review"
        );
        let mut reviewed = grant(GrantStatus::Active, true);
        reviewed.reviewed_by = Some(crate::records::Decision {
            person_id: "00u-carol".into(),
            login: "carol@acme.example".into(),
            door: crate::records::Door::Slack,
            at: reviewed.requested_at,
        });
        assert!(buttons(&reviewed).is_empty());
        assert!(message(&reviewed, 1).0.contains("reviewed by carol@acme.example"));
    }
}
