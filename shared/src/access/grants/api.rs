//! The grants function's two entry points: HTTP requests (its Function URL) and its
//! five-minute schedule.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /me` | Okta ID token | the person the token names, with their groups |
//! | `GET /grants` · `GET /grants/{id}` | Okta ID token | every grant · one |
//! | `POST /grants` | Okta ID token | ask: `{"group", "minutes", "reason", "user"?, "break_glass"?}` |
//! | `POST /grants/{id}/approve` | Okta ID token | approve (or review a break-glass grant): `{"expect": {"login", "group", "minutes"}}`? |
//! | `POST /grants/{id}/deny` | Okta ID token | deny, or withdraw one's own |
//! | `GET /reviews` | Okta ID token | every review decision (the evidence) |
//! | `POST /reviews` | Okta ID token | a review decision: `{"user", "group", "decision": "remove"\|"keep", "reason"}` ([`super::reviews`]) |
//! | `POST /slack/interactions` | Slack signature | a button click ([`super::slack`]) |
//!
//! The ID token comes as `Authorization: Bearer <token>`. Every refusal of a credential is the
//! same `401 {"error":"unauthorized"}` (the reason is logged); a refused decision is `403` with
//! the rule that refused it; an upstream failure is `502` without its details.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Expected, GrantRequest, GrantsHandler, Person, Ports};
use crate::access::sync::SyncError;
use crate::records::Door;

/// Bodies larger than this are refused.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An HTTP request as the function sees it.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The raw body (after base64 decoding, as signatures are over the raw bytes).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// Reads a Function URL (or API Gateway HTTP API, payload 2.0) event.
    pub fn from_event(v: &Value) -> Option<Self> {
        let method = v["requestContext"]["http"]["method"].as_str()?.to_owned();
        let path = v["rawPath"]
            .as_str()
            .or_else(|| v["requestContext"]["http"]["path"].as_str())?
            .to_owned();
        let headers = v["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let body = match v["body"].as_str() {
            None => Vec::new(),
            Some(b) if v["isBase64Encoded"].as_bool() == Some(true) => {
                base64::engine::general_purpose::STANDARD.decode(b).ok()?
            }
            Some(b) => b.as_bytes().to_vec(),
        };
        Some(Self { method, path, headers, body })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A reply.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
}

impl HttpReply {
    fn new(status: u16, body: Value) -> Self {
        Self { status, body }
    }
    fn error(status: u16, message: impl Into<String>) -> Self {
        Self::new(status, json!({"error": message.into()}))
    }
    /// As a Function URL response.
    pub fn to_event(&self) -> Value {
        // Every field of the payload-2.0 response, as Lambda's Function URL (and emulators that
        // read it strictly) expect them.
        json!({"statusCode": self.status, "headers": {"content-type": "application/json"},
            "multiValueHeaders": {}, "body": self.body.to_string(), "isBase64Encoded": false,
            "cookies": []})
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewGrant {
    group: String,
    minutes: i64,
    reason: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    break_glass: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Approval {
    #[serde(default)]
    expect: Option<Expected>,
}

/// A grant as the API shows it: the record with its id.
pub fn view(g: &crate::records::Grant) -> Value {
    let mut v = serde_json::to_value(g).unwrap_or(Value::Null);
    v["id"] = json!(g.id);
    v
}

fn decision_reply(result: Result<impl serde::Serialize, SyncError>, ok: u16) -> HttpReply {
    match result {
        Ok(v) => HttpReply::new(ok, serde_json::to_value(v).unwrap_or(Value::Null)),
        Err(SyncError::Grant(why)) if why.starts_with("no grant ") => HttpReply::error(404, why),
        Err(SyncError::Grant(why)) => HttpReply::error(403, why),
        Err(e) => {
            tracing::error!(error = %e, "a grants request failed upstream");
            HttpReply::error(502, "an upstream service failed; try again")
        }
    }
}

fn json_body<T: for<'de> Deserialize<'de> + Default>(
    body: &[u8],
    empty_ok: bool,
) -> Result<T, HttpReply> {
    if body.iter().all(u8::is_ascii_whitespace) && empty_ok {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| HttpReply::error(400, format!("bad JSON body: {e}")))
}

impl<P: Ports> GrantsHandler<P> {
    /// The Lambda entry point: a Function URL request, or the five-minute schedule.
    pub async fn handle(&self, event: Value) -> Result<Value, SyncError> {
        if let Some(request) = HttpRequest::from_event(&event) {
            return Ok(self.http(&request, Utc::now()).await.to_event());
        }
        if event["source"] == "aws.events" || event["detail-type"] == "Scheduled Event" {
            let report = self.run_schedule(Utc::now()).await?;
            return Ok(serde_json::to_value(report).unwrap_or(Value::Null));
        }
        Err(SyncError::UnknownTrigger("neither a Function URL request nor the schedule".into()))
    }

    /// The person an `Authorization: Bearer <ID token>` names.
    async fn caller(&self, request: &HttpRequest) -> Result<Person, HttpReply> {
        let unauthorized = || HttpReply::error(401, "unauthorized");
        let Some(verifier) = &self.id_tokens else {
            tracing::warn!("an API call, but no Okta OIDC client id is configured");
            return Err(unauthorized());
        };
        let token = request
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .ok_or_else(unauthorized)?;
        let sub = verifier.verify(token.trim()).await.map_err(|e| {
            tracing::warn!(refusal = %e, "an ID token was refused");
            unauthorized()
        })?;
        self.person_by_id(&sub, Door::Okta).await.map_err(|e| match e {
            SyncError::Grant(why) => HttpReply::error(403, why),
            e => decision_reply(Err::<(), _>(e), 200),
        })
    }

    /// Routes one request (see the module header).
    pub async fn http(&self, request: &HttpRequest, now: DateTime<Utc>) -> HttpReply {
        if request.body.len() > MAX_BODY_BYTES {
            return HttpReply::error(413, "the body is too large");
        }
        let parts: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        let method = request.method.to_ascii_uppercase();
        if let (["slack", "interactions"], "POST") = (parts.as_slice(), method.as_str()) {
            let (status, body) = self
                .slack_interaction(
                    request.header("x-slack-request-timestamp"),
                    request.header("x-slack-signature"),
                    &request.body,
                    now,
                )
                .await;
            return HttpReply::new(
                status,
                if body.is_empty() { Value::Null } else { json!({"message": body}) },
            );
        }
        let known = matches!(
            (parts.as_slice(), method.as_str()),
            (["me"], "GET")
                | (["grants"], "GET" | "POST")
                | (["grants", _], "GET")
                | (["grants", _, "approve" | "deny"], "POST")
                | (["reviews"], "GET" | "POST")
        );
        if !known {
            return HttpReply::error(404, "not found");
        }
        let person = match self.caller(request).await {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        match (parts.as_slice(), method.as_str()) {
            (["me"], _) => HttpReply::new(
                200,
                json!({"id": person.id, "login": person.login, "groups": person.groups}),
            ),
            (["grants"], "GET") => decision_reply(
                self.grants().await.map(|all| all.iter().map(view).collect::<Vec<_>>()),
                200,
            ),
            (["grants", id], _) => decision_reply(self.load(id).await.map(|g| view(&g)), 200),
            (["grants"], _) => {
                let body: NewGrant = match json_body(&request.body, false) {
                    Ok(b) => b,
                    Err(reply) => return reply,
                };
                if !(1..=7 * 24 * 60).contains(&body.minutes) {
                    return HttpReply::error(400, "minutes must be from 1 to 10080");
                }
                let ask = GrantRequest {
                    user: body.user,
                    group: body.group,
                    duration: Duration::minutes(body.minutes),
                    reason: body.reason,
                    break_glass: body.break_glass,
                };
                decision_reply(self.request(&person, &ask, now).await.map(|g| view(&g)), 201)
            }
            (["grants", id, "approve"], _) => {
                let body: Approval = match json_body(&request.body, true) {
                    Ok(b) => b,
                    Err(reply) => return reply,
                };
                decision_reply(
                    self.approve(&person, id, body.expect.as_ref(), now).await.map(|g| view(&g)),
                    200,
                )
            }
            (["grants", id, _], _) => {
                decision_reply(self.deny(&person, id, now).await.map(|g| view(&g)), 200)
            }
            (["reviews"], "GET") => decision_reply(
                self.review_history()
                    .await
                    .map(|all| all.iter().map(|d| d.view()).collect::<Vec<_>>()),
                200,
            ),
            (["reviews"], _) => {
                let body: crate::access::review::DecisionRequest =
                    match json_body(&request.body, false) {
                        Ok(b) => b,
                        Err(reply) => return reply,
                    };
                decision_reply(self.decide_review(&person, &body, now).await.map(|d| d.view()), 201)
            }
            _ => HttpReply::error(404, "not found"),
        }
    }
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
