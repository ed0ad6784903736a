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
use crate::secret::{AWSCURRENT, AWSPENDING, SecretVersions};
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
            HookError::Unavailable(_) | HookError::NotStored { .. } => {
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

/// One event read from elsewhere (the System Log catch-up) as one FIFO message, exactly as the
/// hook would queue it: same deduplication id and message group, a stub when too large for SQS.
pub fn prepare_event_value(
    event: &serde_json::Value,
    delivery_id: &str,
) -> Result<QueueMessage, HookError> {
    let text = serde_json::to_string(event).map_err(|_| bad_request("event is not JSON"))?;
    let raw: &RawValue =
        serde_json::from_str(&text).map_err(|_| bad_request("event is not JSON"))?;
    prepare_event(0, raw, Some(delivery_id)).map(|(_, m)| m)
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
/// Only SHA-256 digests of the values are kept, with the version ids they were read from, for at
/// most `ttl`. A value that matches no cached digest is refused (401) only on a view confirmed
/// current *after the request arrived*: a `DescribeSecret` (version ids only, no value) started
/// after its arrival shows the same version ids as the cached view. When the version ids
/// changed (a rotation staged AWSPENDING or moved AWSCURRENT), the values are read again by
/// version id, and that read decides.
///
/// The version check is made at most once per `check_interval` per environment, and one check
/// answers every request that arrived before it started: a request that finds the last check
/// older than its arrival waits for the next one (at most `check_interval`, well inside Okta's
/// 3 seconds). So a flood of wrong values costs at most one `DescribeSecret` per interval and
/// can never spend anything a correct value needs: there is no budget to drain, and no refused
/// value is remembered beyond the version ids it was refused against (a value set in Okta before
/// Secrets Manager by hand is accepted as soon as Secrets Manager holds it).
pub struct HookAuthenticator<Secrets> {
    store: Secrets,
    secret_id: String,
    ttl: Duration,
    check_interval: Duration,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    accepted: Option<Accepted>,
    /// When the last version check (or full read) started.
    checked_at: Option<Instant>,
}

struct Accepted {
    digests: Vec<SecretDigest>,
    /// The version ids of AWSCURRENT and AWSPENDING the digests were read from.
    versions: StageVersions,
    loaded_at: Instant,
}

impl Accepted {
    /// Constant time in the presented value: every accepted digest is compared, no early exit.
    fn accepts(&self, presented: &SecretDigest) -> bool {
        self.digests.iter().fold(false, |any, d| any | d.ct_eq(presented))
    }
}

/// The version ids carrying AWSCURRENT and AWSPENDING.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StageVersions {
    current: Option<String>,
    pending: Option<String>,
}

impl StageVersions {
    fn of(description: &crate::secret::SecretDescription) -> Self {
        Self {
            current: description.version_with(AWSCURRENT).map(str::to_owned),
            pending: description.version_with(AWSPENDING).map(str::to_owned),
        }
    }
}

/// What the version check concluded.
enum Verdict {
    Accept,
    Refuse,
    /// The version ids changed: read the values again.
    Reload,
    /// No check may start yet: wait until this instant, then look again.
    WaitUntil(Instant),
}

impl<Secrets: SecretVersions> HookAuthenticator<Secrets> {
    /// How long a read of the secret is trusted before it is read again.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
    /// The version ids are checked at most this often per environment.
    pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_millis(250);

    /// An authenticator of the hook secret `secret_id` in `store`.
    pub fn new(store: Secrets, secret_id: impl Into<String>) -> Self {
        Self {
            store,
            secret_id: secret_id.into(),
            ttl: Self::DEFAULT_TTL,
            check_interval: Self::DEFAULT_CHECK_INTERVAL,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Sets how long values are cached (at most 5 minutes is the contract) and how often the
    /// version ids may be checked.
    pub fn with_timing(mut self, ttl: Duration, check_interval: Duration) -> Self {
        self.ttl = ttl;
        self.check_interval = check_interval;
        self
    }

    /// `Ok` when `presented` equals the secret's AWSCURRENT or AWSPENDING value.
    pub async fn authenticate(&self, presented: Option<&[u8]>) -> Result<(), HookError> {
        let presented = match presented {
            Some(p) if !p.is_empty() => SecretDigest::of(p),
            _ => return Err(HookError::Unauthorized),
        };
        let arrived = Instant::now();
        loop {
            let mut cache = self.cache.lock().await;
            match self.judge(&mut cache, &presented, arrived).await? {
                Verdict::Accept => return Ok(()),
                Verdict::Refuse => return Err(HookError::Unauthorized),
                Verdict::WaitUntil(at) => {
                    drop(cache);
                    tokio::time::sleep_until(at).await;
                }
                Verdict::Reload => {
                    // A fresh read: its verdict is final.
                    cache.checked_at = Some(Instant::now());
                    let fresh = self.load().await?;
                    let accepted = fresh.accepts(&presented);
                    cache.accepted = Some(fresh);
                    return if accepted { Ok(()) } else { Err(HookError::Unauthorized) };
                }
            }
        }
    }

    async fn judge(
        &self,
        cache: &mut Cache,
        presented: &SecretDigest,
        arrived: Instant,
    ) -> Result<Verdict, HookError> {
        let now = Instant::now();
        let Some(accepted) =
            cache.accepted.as_ref().filter(|c| now.duration_since(c.loaded_at) < self.ttl)
        else {
            return Ok(Verdict::Reload);
        };
        if accepted.accepts(presented) {
            return Ok(Verdict::Accept);
        }
        match cache.checked_at {
            // The view was confirmed after this request arrived: it is the current one.
            Some(at) if at >= arrived => return Ok(Verdict::Refuse),
            Some(at) if at + self.check_interval > now => {
                return Ok(Verdict::WaitUntil(at + self.check_interval));
            }
            _ => {}
        }
        cache.checked_at = Some(now);
        let description =
            self.store.describe(&self.secret_id).await.map_err(HookError::Unavailable)?;
        if StageVersions::of(&description) == accepted.versions {
            tracing::info!("authorization mismatch on the current version ids: 401");
            Ok(Verdict::Refuse)
        } else {
            tracing::info!("authorization mismatch and the secret's versions changed: re-reading");
            Ok(Verdict::Reload)
        }
    }

    /// The version ids, then exactly those versions' values: the digests never belong to
    /// versions newer than the ids kept with them.
    async fn load(&self) -> Result<Accepted, HookError> {
        let description =
            self.store.describe(&self.secret_id).await.map_err(HookError::Unavailable)?;
        let versions = StageVersions::of(&description);
        let Some(current_id) = versions.current.as_deref() else {
            return Err(HookError::Unavailable(AwsError::Permanent {
                service: "secretsmanager",
                operation: "DescribeSecret",
                message: "the hook secret has no AWSCURRENT version".into(),
            }));
        };
        let pending_id = versions.pending.as_deref().filter(|p| *p != current_id);
        let (current, pending) =
            tokio::join!(self.store.version_value(&self.secret_id, current_id), async {
                match pending_id {
                    Some(id) => self.store.version_value(&self.secret_id, id).await,
                    None => Ok(None),
                }
            },);
        let current = current.map_err(HookError::Unavailable)?.ok_or_else(|| {
            HookError::Unavailable(AwsError::Permanent {
                service: "secretsmanager",
                operation: "GetSecretValue",
                message: "the hook secret's AWSCURRENT version has no value".into(),
            })
        })?;
        let pending = pending.map_err(HookError::Unavailable)?;
        let digests = [Some(current), pending]
            .into_iter()
            .flatten()
            .filter(|v| !v.expose_secret().is_empty())
            .map(|v| SecretDigest::of(v.expose_secret().as_bytes()))
            .collect();
        Ok(Accepted { digests, versions, loaded_at: Instant::now() })
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

impl<Secrets: SecretVersions, Queue: EventQueue> EventHookHandler<Secrets, Queue> {
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
