//! The Okta event-hook endpoint: one-time verification, authenticated delivery, durable hand-off
//! to an SQS FIFO queue.
//!
//! Contract (README, "The endpoint's contract"): `GET` + `x-okta-verification-challenge` → `200
//! {"verification": ...}`; `POST` of an envelope → every event enqueued, then `200` with an empty
//! body; `401` on a missing or wrong `Authorization`; `400` on a malformed envelope; `413` over
//! 1 MiB; `405` for other methods; `503` whenever an event could not be stored, so Okta retries.

use crate::telemetry::metrics::{Metric, count};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::Instrument;

use super::event::{EVENT_HOOK_TYPE, EventHookEnvelope, EventRouting};
use crate::error::AwsError;
use crate::okta::ports::{EventQueue, QueueMessage, SQS_MAX_BATCH, SQS_MAX_PAYLOAD_BYTES};
use crate::secret::{AWSCURRENT, AWSPENDING, SecretStore};
use crate::secret::{ExposeSecret, SecretDigest};

/// Largest request body accepted (Function URLs allow more; Okta never sends this much).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Header Okta sends with the one-time verification request (any case).
pub const VERIFICATION_HEADER: &str = "x-okta-verification-challenge";
/// Longest verification challenge echoed back.
const MAX_CHALLENGE_BYTES: usize = 1024;
/// Message group for events that name neither a group nor a user.
pub const ORG_MESSAGE_GROUP: &str = "okta-org";
/// How many times entries that SQS did not accept are sent again before answering 503.
const QUEUE_RETRIES: usize = 2;

/// Why a request was not accepted. The `Display` text is what the caller sees: short, generic for
/// authentication, and never the internal cause (that goes to the log).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// Neither `GET` (verification) nor `POST` (delivery).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The `Authorization` value matches neither AWSCURRENT nor AWSPENDING.
    #[error("unauthorized")]
    Unauthorized,
    /// The body is larger than any Okta delivery.
    #[error("request body exceeds 1 MiB")]
    PayloadTooLarge,
    /// Even the event's stub (uuid, type, published, actor, targets) does not fit in one message.
    #[error("event {index} exceeds the queue's 256 KiB message limit")]
    EventTooLarge {
        /// The event's index in the delivery.
        index: usize,
    },
    /// Not an event-hook delivery (the reason is safe to show).
    #[error("{0}")]
    BadRequest(String),
    /// The secret or the queue could not be reached: Okta retries a 5xx.
    #[error("temporarily unavailable, retry later")]
    Unavailable(#[source] AwsError),
    /// SQS did not accept every event: Okta retries the delivery (duplicates are dropped by the
    /// FIFO queue's deduplication id).
    #[error("temporarily unavailable, retry later")]
    NotStored {
        /// Events accepted.
        stored: usize,
        /// Events in the delivery.
        total: usize,
        /// SQS's error codes.
        codes: Vec<String>,
    },
    /// The presented value matches no cached value and the re-read budget is spent: the cache
    /// may predate a rotation, so this is no ground for a 401 (Okta never retries a 4xx). 503
    /// lets Okta retry once the secret can be read again.
    #[error("temporarily unavailable, retry later")]
    NotVerifiedYet,
}

impl HookError {
    /// The HTTP status Okta gets.
    pub fn status(&self) -> StatusCode {
        match self {
            HookError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HookError::Unauthorized => StatusCode::UNAUTHORIZED,
            HookError::PayloadTooLarge | HookError::EventTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            HookError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HookError::Unavailable(_) | HookError::NotStored { .. } | HookError::NotVerifiedYet => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

fn bad_request(reason: impl Into<String>) -> HookError {
    HookError::BadRequest(reason.into())
}

/// The endpoint's answer, before it becomes an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// JSON body, if any. A successful delivery has none.
    pub body: Option<String>,
}

impl HookResponse {
    fn ok_empty() -> Self {
        Self { status: StatusCode::OK, body: None }
    }

    fn from_error(e: &HookError) -> Self {
        Self {
            status: e.status(),
            body: Some(serde_json::json!({ "error": e.to_string() }).to_string()),
        }
    }

    /// The Lambda HTTP response.
    pub fn into_http(self) -> Response<Body> {
        let mut builder = Response::builder().status(self.status);
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            builder = builder.header(ALLOW, "GET, POST");
        }
        let result = match self.body {
            Some(json) => builder.header(CONTENT_TYPE, "application/json").body(Body::Text(json)),
            None => builder.body(Body::Empty),
        };
        // Only a status and well-formed constant headers are set above, so building cannot fail;
        // should it ever, answer 500 rather than panic.
        result.unwrap_or_else(|_| {
            let mut r = Response::new(Body::Empty);
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

/// The events of one delivery, ready for the queue, in `published` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The envelope's `eventId` (one per delivery, not per event).
    pub delivery_id: Option<String>,
    /// One message per event.
    pub messages: Vec<QueueMessage>,
}

/// Parses and validates a delivery body and turns each event into a FIFO queue message:
/// deduplication id = the event's `uuid` (or a content hash when it has none usable), message
/// group = the affected group's id, else the user's id, else the actor's id, else
/// [`ORG_MESSAGE_GROUP`].
pub fn prepare_delivery(body: &[u8]) -> Result<Delivery, HookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(HookError::PayloadTooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| bad_request("body is not UTF-8"))?;
    if text.trim().is_empty() {
        return Err(bad_request("empty body"));
    }
    let envelope: EventHookEnvelope<'_> = serde_json::from_str(text).map_err(|e| {
        bad_request(format!(
            "malformed JSON or not an Okta event-hook envelope (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    match envelope.event_type.as_deref() {
        Some(EVENT_HOOK_TYPE) => {}
        Some(_) => return Err(bad_request("eventType is not com.okta.event_hook")),
        None => return Err(bad_request("eventType is missing")),
    }
    let events = envelope
        .data
        .and_then(|d| d.events)
        .ok_or_else(|| bad_request("data.events is missing"))?;
    if events.is_empty() {
        return Err(bad_request("data.events is empty"));
    }
    let mut prepared = Vec::with_capacity(events.len());
    for (index, raw) in events.into_iter().enumerate() {
        prepared.push(prepare_event(index, raw, envelope.event_id.as_deref())?);
    }
    // Okta delivers out of order; related events should reach the queue oldest first. The sort
    // is stable, and events without a readable `published` keep their place at the end.
    prepared.sort_by_key(|(published, _)| (published.is_none(), *published));
    Ok(Delivery {
        delivery_id: envelope.event_id,
        messages: prepared.into_iter().map(|(_, m)| m).collect(),
    })
}

type Published = Option<chrono::DateTime<chrono::Utc>>;

fn prepare_event(
    index: usize,
    raw: &RawValue,
    delivery_id: Option<&str>,
) -> Result<(Published, QueueMessage), HookError> {
    let raw_body = raw.get();
    if !raw_body.starts_with('{') {
        return Err(bad_request(format!("data.events[{index}] is not an object")));
    }
    let event: EventRouting = serde_json::from_str(raw_body)
        .map_err(|_| bad_request(format!("data.events[{index}] is not an Okta event")))?;
    // SQS refuses some characters JSON allows raw (U+FFFE, U+FFFF; an attacker controls a
    // User-Agent): they are written as JSON escapes, which decode to the same text.
    let body = sqs_safe_json(raw_body);
    let body = body.as_ref();
    let deduplication_id = match event.uuid.as_deref() {
        Some(uuid) if is_sqs_token(uuid) => uuid.to_owned(),
        _ => hex::encode(Sha256::digest(body.as_bytes())),
    };
    let group_id =
        event.subject_id().filter(|id| is_sqs_token(id)).unwrap_or(ORG_MESSAGE_GROUP).to_owned();
    let mut attributes = Vec::with_capacity(2);
    if let Some(t) = event.event_type.as_deref().filter(|v| is_attribute_value(v)) {
        attributes.push(("okta_event_type", t.to_owned()));
    }
    if let Some(d) = delivery_id.filter(|v| is_attribute_value(v)) {
        attributes.push(("okta_delivery_id", d.to_owned()));
    }
    let mut message =
        QueueMessage { body: body.to_owned(), group_id, deduplication_id, attributes };
    if message_size(&message) > SQS_MAX_PAYLOAD_BYTES {
        // Never drop an event: queue a stub that access-sync completes from the System Log.
        tracing::warn!(
            index,
            bytes = raw_body.len(),
            "event too large for one SQS message: queued as a stub"
        );
        message.body = sqs_safe_json(&event.stub(raw_body.len())).into_owned();
        if message_size(&message) > SQS_MAX_PAYLOAD_BYTES {
            return Err(HookError::EventTooLarge { index });
        }
    }
    Ok((event.published, message))
}

/// SQS accepts #x9, #xA, #xD, #x20–#xD7FF, #xE000–#xFFFD and #x10000–#x10FFFF.
pub fn is_sqs_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// JSON text with every character SQS refuses written as a `\uXXXX` escape. In valid JSON such
/// characters can stand only inside strings, where the escape means the same character.
fn sqs_safe_json(json: &str) -> std::borrow::Cow<'_, str> {
    // Fast path: parsed JSON holds no raw control character (serde_json refuses them in strings,
    // and only tab, LF, CR and space may stand between tokens), so the only characters SQS
    // refuses that can occur are U+FFFE and U+FFFF: UTF-8 EF BF BE and EF BF BF.
    let bytes = json.as_bytes();
    let refused_noncharacter = memchr::memchr_iter(0xEF, bytes)
        .any(|i| bytes.get(i + 1) == Some(&0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)));
    if !refused_noncharacter {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_sqs_char(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// SQS message group and deduplication ids: 1–128 characters, alphanumeric or ASCII punctuation.
fn is_sqs_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic())
}

fn is_attribute_value(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.chars().all(|c| is_sqs_char(c) && !c.is_control())
}

/// Checks the `Authorization` header against the hook secret's AWSCURRENT and AWSPENDING values.
///
/// Only SHA-256 digests of the values are kept, for at most `ttl`. A 401 is answered only on a
/// read of the secret made after the presented value could have been staged: on a mismatch
/// with cached values the secret is read again, within a budget of `REREAD_BURST` re-reads
/// refilled one per `reread_interval`; a value refused on such a fresh read is remembered (a
/// random 64-character rotation never produces it later) and refused again without a read.
/// When the budget is spent, an unknown value gets 503, never 401: Okta does not retry a 4xx,
/// so a value from a rotation a moment ago must never be refused on an older view.
pub struct HookAuthenticator<Secrets> {
    store: Secrets,
    secret_id: String,
    ttl: Duration,
    reread_interval: Duration,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    accepted: Option<Accepted>,
    /// Digests refused on a fresh read (bounded; cleared when full).
    refused: Vec<SecretDigest>,
    /// Re-read budget: tokens, and when they were last counted.
    tokens: f64,
    counted_at: Option<Instant>,
}

struct Accepted {
    digests: Vec<SecretDigest>,
    loaded_at: Instant,
}

impl Accepted {
    /// Constant time in the presented value: every accepted digest is compared, no early exit.
    fn accepts(&self, presented: &SecretDigest) -> bool {
        self.digests.iter().fold(false, |any, d| any | d.ct_eq(presented))
    }
}

/// Re-reads allowed in a burst: enough that a person or a probe trying a few wrong values gets
/// 401 for each; a flood of distinct values costs at most one read per `reread_interval` after.
pub(crate) const REREAD_BURST: f64 = 20.0;
const REFUSED_MEMO: usize = 256;

impl Cache {
    fn take_token(&mut self, now: Instant, interval: Duration) -> bool {
        let elapsed = self.counted_at.map(|t| now.duration_since(t)).unwrap_or(Duration::MAX);
        let refill = if interval.is_zero() {
            REREAD_BURST
        } else {
            elapsed.as_secs_f64() / interval.as_secs_f64()
        };
        self.tokens = (self.tokens + refill).min(REREAD_BURST);
        self.counted_at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn refuse(&mut self, presented: SecretDigest) -> Result<(), HookError> {
        if self.refused.len() >= REFUSED_MEMO {
            self.refused.clear();
        }
        self.refused.push(presented);
        Err(HookError::Unauthorized)
    }
}

impl<Secrets: SecretStore> HookAuthenticator<Secrets> {
    /// How long a read of the secret is trusted before it is read again.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
    /// An unknown value may trigger a fresh read at most this often (after the burst).
    pub const DEFAULT_REREAD_INTERVAL: Duration = Duration::from_secs(5);

    /// An authenticator of the hook secret `secret_id` in `store`.
    pub fn new(store: Secrets, secret_id: impl Into<String>) -> Self {
        Self {
            store,
            secret_id: secret_id.into(),
            ttl: Self::DEFAULT_TTL,
            reread_interval: Self::DEFAULT_REREAD_INTERVAL,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Sets how long values are cached (at most 5 minutes is the contract) and how fast the
    /// re-read budget refills.
    pub fn with_timing(mut self, ttl: Duration, reread_interval: Duration) -> Self {
        self.ttl = ttl;
        self.reread_interval = reread_interval;
        self
    }

    /// `Ok` when `presented` equals the secret's AWSCURRENT or AWSPENDING value.
    pub async fn authenticate(&self, presented: Option<&[u8]>) -> Result<(), HookError> {
        let presented = match presented {
            Some(p) if !p.is_empty() => SecretDigest::of(p),
            _ => return Err(HookError::Unauthorized),
        };
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        let usable = cache.accepted.as_ref().filter(|c| now.duration_since(c.loaded_at) < self.ttl);
        match usable {
            Some(accepted) if accepted.accepts(&presented) => return Ok(()),
            Some(_) => {
                if cache.refused.iter().any(|r| r.ct_eq(&presented)) {
                    return Err(HookError::Unauthorized);
                }
                if !cache.take_token(now, self.reread_interval) {
                    tracing::info!(
                        "authorization mismatch on a cached view; re-read budget spent: 503"
                    );
                    return Err(HookError::NotVerifiedYet);
                }
                tracing::info!("authorization mismatch: re-reading the hook secret");
            }
            None => {}
        }
        // A fresh read: its verdict is final.
        let fresh = self.load().await?;
        let accepted = fresh.accepts(&presented);
        cache.accepted = Some(fresh);
        if accepted { Ok(()) } else { cache.refuse(presented) }
    }

    async fn load(&self) -> Result<Accepted, HookError> {
        let (current, pending) = tokio::join!(
            self.store.secret_string(&self.secret_id, AWSCURRENT),
            self.store.secret_string(&self.secret_id, AWSPENDING),
        );
        let current = current.map_err(HookError::Unavailable)?.ok_or_else(|| {
            HookError::Unavailable(AwsError::Permanent {
                service: "secretsmanager",
                operation: "GetSecretValue",
                message: "the hook secret does not exist or has no AWSCURRENT version".into(),
            })
        })?;
        let pending = pending.map_err(HookError::Unavailable)?;
        let digests = [Some(current), pending]
            .into_iter()
            .flatten()
            .filter(|v| !v.expose_secret().is_empty())
            .map(|v| SecretDigest::of(v.expose_secret().as_bytes()))
            .collect();
        Ok(Accepted { digests, loaded_at: Instant::now() })
    }
}

/// What a successful request did, for the log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Handled {
    /// Events queued.
    pub events: usize,
    /// `SendMessageBatch` calls made.
    pub batches: usize,
}

/// The event-hook endpoint, generic over the secret store and the queue.
pub struct EventHookHandler<Secrets, Queue> {
    auth: HookAuthenticator<Secrets>,
    queue: Queue,
}

impl<Secrets: SecretStore, Queue: EventQueue> EventHookHandler<Secrets, Queue> {
    /// A handler that authenticates with `auth` and queues to `queue`.
    pub fn new(auth: HookAuthenticator<Secrets>, queue: Queue) -> Self {
        Self { auth, queue }
    }

    /// Handles one request given as method, headers and body.
    pub async fn handle(&self, method: &Method, headers: &HeaderMap, body: &[u8]) -> HookResponse {
        let response = self.respond(method, headers, body).await;
        count(Metric::HookRequests, &[response.status.as_str()], 1);
        response
    }

    async fn respond(&self, method: &Method, headers: &HeaderMap, body: &[u8]) -> HookResponse {
        match self.try_handle(method, headers, body).await {
            Ok((response, handled)) => {
                count(Metric::EventsQueued, &[], handled.events);
                tracing::info!(
                    status = response.status.as_u16(),
                    events = handled.events,
                    batches = handled.batches,
                    "okta event hook request accepted"
                );
                response
            }
            Err(e) => {
                match &e {
                    HookError::Unavailable(cause) => {
                        tracing::error!(status = 503, error = %cause, "okta event hook could not complete")
                    }
                    HookError::NotStored { stored, total, codes } => tracing::error!(
                        status = 503,
                        stored,
                        total,
                        ?codes,
                        "events were not all accepted by the queue"
                    ),
                    other => {
                        tracing::warn!(status = other.status().as_u16(), reason = %other, "okta event hook request refused")
                    }
                }
                HookResponse::from_error(&e)
            }
        }
    }

    /// Handles a Lambda Function URL or API Gateway request.
    pub async fn handle_http(
        &self,
        req: Request,
    ) -> Result<Response<Body>, std::convert::Infallible> {
        let request_id = req.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_default();
        let span = tracing::info_span!("okta_event_hook", request_id = %request_id);
        let (parts, body) = req.into_parts();
        let body: Bytes = match body {
            Body::Empty => Bytes::new(),
            Body::Text(t) => Bytes::from(t),
            Body::Binary(b) => Bytes::from(b),
            _ => Bytes::new(),
        };
        let response = self.handle(&parts.method, &parts.headers, &body).instrument(span).await;
        Ok(response.into_http())
    }

    async fn try_handle(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(HookResponse, Handled), HookError> {
        if method != Method::GET && method != Method::POST {
            return Err(HookError::MethodNotAllowed);
        }
        let authorization = headers.get(AUTHORIZATION).map(|v| v.as_bytes());
        self.auth.authenticate(authorization).await?;
        if method == Method::GET {
            return verification(headers).map(|r| (r, Handled::default()));
        }
        let delivery = prepare_delivery(body)?;
        let batches = enqueue(&self.queue, &delivery.messages).await?;
        Ok((HookResponse::ok_empty(), Handled { events: delivery.messages.len(), batches }))
    }
}

/// Sends every message, in order, in batches within SQS's limits. Entries SQS did not accept
/// are sent again (the deduplication id makes that safe); any still refused is an error. Returns
/// the number of `SendMessageBatch` calls. Used by the hook and by the System Log catch-up.
pub async fn enqueue<Queue: EventQueue>(
    queue: &Queue,
    messages: &[QueueMessage],
) -> Result<usize, HookError> {
    let mut batches = 0;
    for chunk in batches_of(messages) {
        batches += 1;
        let mut pending: Vec<QueueMessage> = chunk.to_vec();
        let mut attempt = 0;
        loop {
            let rejected = queue.send_batch(&pending).await.map_err(HookError::Unavailable)?;
            if rejected.is_empty() {
                break;
            }
            attempt += 1;
            let retryable = rejected.iter().all(|r| !r.sender_fault);
            if attempt > QUEUE_RETRIES || !retryable {
                return Err(HookError::NotStored {
                    stored: messages.len() - rejected.len(),
                    total: messages.len(),
                    codes: rejected.into_iter().map(|r| r.code).collect(),
                });
            }
            pending = rejected.iter().filter_map(|r| pending.get(r.index).cloned()).collect();
        }
    }
    Ok(batches)
}

fn verification(headers: &HeaderMap) -> Result<HookResponse, HookError> {
    let challenge = headers
        .get(VERIFICATION_HEADER)
        .ok_or_else(|| bad_request("missing x-okta-verification-challenge header"))?;
    let challenge = challenge
        .to_str()
        .ok()
        .filter(|c| !c.is_empty() && c.len() <= MAX_CHALLENGE_BYTES)
        .ok_or_else(|| bad_request("malformed x-okta-verification-challenge header"))?;
    Ok(HookResponse {
        status: StatusCode::OK,
        body: Some(serde_json::json!({ "verification": challenge }).to_string()),
    })
}

/// Splits messages into consecutive batches of at most [`SQS_MAX_BATCH`] entries and
/// [`SQS_MAX_PAYLOAD_BYTES`] of payload, keeping their order.
fn batches_of(messages: &[QueueMessage]) -> Vec<&[QueueMessage]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, m) in messages.iter().enumerate() {
        let size = message_size(m);
        if i > start && (i - start == SQS_MAX_BATCH || bytes + size > SQS_MAX_PAYLOAD_BYTES) {
            out.push(&messages[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

/// Payload size as SQS counts it: the body plus each attribute's name, type and value.
fn message_size(m: &QueueMessage) -> usize {
    m.body.len()
        + m.attributes.iter().map(|(n, v)| n.len() + "String".len() + v.len()).sum::<usize>()
}

#[cfg(test)]
#[path = "hook_tests.rs"]
mod tests;
