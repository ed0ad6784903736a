//! The Okta event-hook envelope and the System Log event model.
//!
//! Real payloads omit or null many fields, and Okta adds fields over time, so parsing is
//! tolerant: every field is optional, unknown fields are ignored, and a top-level event field of
//! an unexpected shape becomes `None` instead of failing the whole event.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// The `eventType` of every event-hook delivery envelope.
pub const EVENT_HOOK_TYPE: &str = "com.okta.event_hook";

/// An event-hook delivery as Okta POSTs it. `data.events` is kept raw so that each event can be
/// forwarded exactly as received.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventHookEnvelope<'a> {
    /// `eventType`: [`EVENT_HOOK_TYPE`] for a delivery.
    #[serde(default)]
    pub event_type: Option<String>,
    /// `eventTypeVersion`.
    #[serde(default)]
    pub event_type_version: Option<String>,
    /// `cloudEventsVersion`.
    #[serde(default)]
    pub cloud_events_version: Option<String>,
    /// `source`: the hook's URL in Okta.
    #[serde(default)]
    pub source: Option<String>,
    /// `eventId`: the delivery's id (a retried delivery keeps it).
    #[serde(default)]
    pub event_id: Option<String>,
    /// `eventTime`.
    #[serde(default)]
    pub event_time: Option<String>,
    /// `contentType`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// `data`: the events.
    #[serde(default, borrow)]
    pub data: Option<EnvelopeData<'a>>,
}

/// The envelope's `data`.
#[derive(Debug, Deserialize)]
pub struct EnvelopeData<'a> {
    /// The System Log events, raw.
    #[serde(default, borrow)]
    pub events: Option<Vec<&'a RawValue>>,
}

/// One Okta System Log event (the objects in `data.events`, and in `GET /api/v1/logs`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OktaEvent {
    /// `uuid`: the event's unique id (the queue's deduplication id).
    #[serde(default, deserialize_with = "lenient")]
    pub uuid: Option<String>,
    /// `published`: when Okta recorded it (RFC 3339, or a SIEM export's form: see
    /// [`parse_time`]).
    #[serde(default, deserialize_with = "lenient_time")]
    pub published: Option<DateTime<Utc>>,
    /// `eventType`, e.g. `group.user_membership.add`.
    #[serde(default, deserialize_with = "lenient")]
    pub event_type: Option<String>,
    /// `version` of the event's schema.
    #[serde(default, deserialize_with = "lenient")]
    pub version: Option<String>,
    /// `displayMessage`.
    #[serde(default, deserialize_with = "lenient")]
    pub display_message: Option<String>,
    /// `severity`: `DEBUG`, `INFO`, `WARN` or `ERROR`.
    #[serde(default, deserialize_with = "lenient")]
    pub severity: Option<String>,
    /// `actor`: who did it.
    #[serde(default, deserialize_with = "lenient")]
    pub actor: Option<Actor>,
    /// `client`: from where.
    #[serde(default, deserialize_with = "lenient")]
    pub client: Option<Client>,
    /// `outcome`: `SUCCESS`, `FAILURE`, …, with a reason.
    #[serde(default, deserialize_with = "lenient")]
    pub outcome: Option<Outcome>,
    /// `target`: what it was done to.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub target: Vec<Target>,
    /// `authenticationContext`.
    #[serde(default, deserialize_with = "lenient")]
    pub authentication_context: Option<AuthenticationContext>,
    /// `securityContext`: the client's network.
    #[serde(default, deserialize_with = "lenient")]
    pub security_context: Option<SecurityContext>,
    /// `debugContext`.
    #[serde(default, deserialize_with = "lenient")]
    pub debug_context: Option<DebugContext>,
    /// `transaction`.
    #[serde(default, deserialize_with = "lenient")]
    pub transaction: Option<Transaction>,
    /// Present when the hook queued a stub of an event too large for one SQS message: the full
    /// event is read back from Okta's System Log by its uuid.
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub idc_guard_stub: Option<StubInfo>,
}

/// Why an event was queued as a stub, and how large it was.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StubInfo {
    /// Why (the event's size).
    pub reason: String,
    /// The event's size as received, in bytes.
    pub original_bytes: usize,
}

/// An event's `actor` or one of its `target`s' common fields.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// Okta's id (`00u…` for users).
    pub id: Option<String>,
    /// `type`: `User`, `SystemPrincipal`, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `alternateId`: the login (users), or another readable id.
    pub alternate_id: Option<String>,
    /// `displayName`.
    pub display_name: Option<String>,
}

/// An event's target: a `User`, a `UserGroup`, an `AppInstance`, a `PolicyEntity`, ...
pub type Target = Actor;

/// The event's `client`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    /// `ipAddress`.
    pub ip_address: Option<String>,
    /// `userAgent`.
    #[serde(default, deserialize_with = "lenient")]
    pub user_agent: Option<UserAgent>,
    /// `zone`: the network zone.
    pub zone: Option<String>,
    /// `device`: `Computer`, `Mobile`, …
    pub device: Option<String>,
    /// `geographicalContext`: Okta's geolocation of the client.
    #[serde(default, deserialize_with = "lenient")]
    pub geographical_context: Option<GeographicalContext>,
    /// `ipChain`: the addresses the request passed through.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub ip_chain: Vec<IpChainEntry>,
}

/// `client.userAgent`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserAgent {
    /// `rawUserAgent`.
    pub raw_user_agent: Option<String>,
    /// `os`.
    pub os: Option<String>,
    /// `browser`.
    pub browser: Option<String>,
}

/// Okta's geolocation of an address.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GeographicalContext {
    /// `city`.
    pub city: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `country` (a name, e.g. `United States`).
    pub country: Option<String>,
    /// `postalCode`.
    pub postal_code: Option<String>,
    /// `geolocation`: coordinates.
    #[serde(default, deserialize_with = "lenient")]
    pub geolocation: Option<Geolocation>,
}

/// Coordinates.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
pub struct Geolocation {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// One entry of `client.ipChain`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IpChainEntry {
    /// `ip`.
    pub ip: Option<String>,
    /// `geographicalContext`.
    #[serde(default, deserialize_with = "lenient")]
    pub geographical_context: Option<GeographicalContext>,
    /// `version`: `V4` or `V6`.
    pub version: Option<String>,
    /// `source`.
    pub source: Option<String>,
}

/// The event's `outcome`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Outcome {
    /// `result`: `SUCCESS`, `FAILURE`, `SKIPPED`, `ALLOW`, `DENY`, `CHALLENGE`, `UNKNOWN`.
    pub result: Option<String>,
    /// `reason`.
    pub reason: Option<String>,
}

/// The event's `authenticationContext`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationContext {
    /// `authenticationProvider`.
    pub authentication_provider: Option<String>,
    /// `credentialProvider`.
    pub credential_provider: Option<String>,
    /// `credentialType`.
    pub credential_type: Option<String>,
    /// `externalSessionId`: the Okta session.
    pub external_session_id: Option<String>,
    /// `interface`.
    pub interface: Option<String>,
    /// `authenticationStep`.
    #[serde(default, deserialize_with = "lenient")]
    pub authentication_step: Option<i64>,
}

/// The event's `securityContext`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    /// `asNumber`: the autonomous system.
    #[serde(default, deserialize_with = "lenient")]
    pub as_number: Option<i64>,
    /// `asOrg`.
    pub as_org: Option<String>,
    /// `isp`.
    pub isp: Option<String>,
    /// `domain`.
    pub domain: Option<String>,
    /// `isProxy`: Okta saw a proxy or anonymiser.
    #[serde(default, deserialize_with = "lenient")]
    pub is_proxy: Option<bool>,
}

/// The event's `debugContext`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DebugContext {
    /// `debugData`: free-form details.
    #[serde(default)]
    pub debug_data: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The event's `transaction`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Transaction {
    /// `type`: `WEB` or `JOB`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `id`: the request id.
    pub id: Option<String>,
}

/// The few fields the event hook needs to route an event onto the queue, parsed with the same
/// tolerance as [`OktaEvent`] while skipping everything else.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventRouting {
    /// `uuid`.
    #[serde(default, deserialize_with = "lenient")]
    pub uuid: Option<String>,
    /// `published`.
    #[serde(default, deserialize_with = "lenient_time")]
    pub published: Option<DateTime<Utc>>,
    /// `eventType`.
    #[serde(default, deserialize_with = "lenient")]
    pub event_type: Option<String>,
    /// `actor`.
    #[serde(default, deserialize_with = "lenient")]
    pub actor: Option<Actor>,
    /// `target`.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub target: Vec<Target>,
}

/// Most targets a stub keeps, and the longest text of each of their fields.
const STUB_MAX_TARGETS: usize = 50;
const STUB_MAX_FIELD_CHARS: usize = 512;

impl EventRouting {
    /// The event reduced to what routes it (uuid, type, published, actor, targets), marked as a
    /// stub: what the hook queues when the whole event does not fit in one SQS message.
    pub fn stub(&self, original_bytes: usize) -> String {
        let short = |v: &Option<String>| {
            v.as_deref().map(|s| s.chars().take(STUB_MAX_FIELD_CHARS).collect::<String>())
        };
        let who = |a: &Actor| Actor {
            id: short(&a.id),
            kind: short(&a.kind),
            alternate_id: short(&a.alternate_id),
            display_name: short(&a.display_name),
        };
        serde_json::json!({
            "uuid": short(&self.uuid),
            "published": self.published,
            "eventType": short(&self.event_type),
            "actor": self.actor.as_ref().map(who),
            "target": self.target.iter().take(STUB_MAX_TARGETS).map(who).collect::<Vec<_>>(),
            "idcGuardStub": StubInfo {
                reason: "larger than one SQS message".into(),
                original_bytes,
            },
        })
        .to_string()
    }

    /// The FIFO message group: the affected group's id, else the user's, else the actor's.
    pub fn subject_id(&self) -> Option<&str> {
        let of_type = |kind: &str| self.target.iter().find(|t| t.kind.as_deref() == Some(kind));
        of_type("UserGroup")
            .or_else(|| of_type("User"))
            .or(self.actor.as_ref())
            .and_then(|t| t.id.as_deref())
    }
}

impl OktaEvent {
    /// The first target of the given type (`User`, `UserGroup`, `AppInstance`, ...).
    pub fn target_of_type(&self, kind: &str) -> Option<&Target> {
        self.target.iter().find(|t| t.kind.as_deref() == Some(kind))
    }

    /// The group an event is about (`UserGroup` target), if any.
    pub fn group(&self) -> Option<&Target> {
        self.target_of_type("UserGroup")
    }

    /// The user an event is about: the `User` target, else the actor when it is a user (as in
    /// `user.authentication.sso`, where the actor is the person signing in).
    pub fn user(&self) -> Option<&Target> {
        self.target_of_type("User")
            .or_else(|| self.actor.as_ref().filter(|a| a.kind.as_deref() == Some("User")))
    }

    /// The outcome's `result` (`SUCCESS`, `FAILURE`, …).
    pub fn outcome_result(&self) -> Option<&str> {
        self.outcome.as_ref().and_then(|o| o.result.as_deref())
    }
}

/// Deserialises a value of any shape; a value that does not fit `T` (or `null`) becomes `None`.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

/// An Okta time as Okta writes it (RFC 3339) or as SIEM exports often rewrite it (see
/// [`crate::time_forms`]).
pub fn parse_time(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    crate::time_forms::parse_time(v)
}

fn lenient_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(parse_time(&v))
}

/// A list whose entries of the wrong shape are dropped; anything but a list becomes empty.
fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Array(items) => {
            items.into_iter().filter_map(|i| serde_json::from_value(i).ok()).collect()
        }
        _ => Vec::new(),
    })
}

/// The event types the Okta event hook subscribes to (README, "The Okta side"): the System Log
/// catch-up re-queues exactly these when the hook missed them.
pub const SUBSCRIBED_EVENT_TYPES: &[&str] = &[
    "group.user_membership.add",
    "group.user_membership.remove",
    "group.lifecycle.create",
    "group.lifecycle.delete",
    "group.profile.update",
    "group.application_assignment.add",
    "group.application_assignment.remove",
    "user.lifecycle.deactivate",
    "user.lifecycle.suspend",
    "user.lifecycle.unsuspend",
    "user.lifecycle.reactivate",
    "user.lifecycle.delete.initiated",
    "user.account.lock",
    "user.account.privilege.grant",
    "user.account.privilege.revoke",
    "user.mfa.factor.activate",
    "user.mfa.factor.deactivate",
    "user.mfa.factor.reset_all",
    "user.mfa.factor.update",
    "policy.lifecycle.activate",
    "policy.lifecycle.deactivate",
    "policy.lifecycle.update",
    "policy.rule.add",
    "policy.rule.update",
    "policy.rule.activate",
    "policy.rule.deactivate",
    "policy.rule.delete",
    "application.user_membership.add",
    "application.user_membership.remove",
    "user.authentication.sso",
    "user.session.start",
    "system.api_token.create",
    "system.api_token.revoke",
    "application.provision.group_push.mapping.update.or.delete.failed.with.error",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrong_shapes_become_none_instead_of_failing_the_event() {
        let e: OktaEvent = serde_json::from_str(
            r#"{"uuid": 42, "published": "not a time", "eventType": "user.session.start",
                "actor": "nobody", "target": {"id": "x"}, "client": {"ipAddress": "192.0.2.1",
                "geographicalContext": {"geolocation": {"lat": "north"}}},
                "securityContext": {"asNumber": "AS13335", "isProxy": "no"}, "extra": [1, 2]}"#,
        )
        .unwrap();
        assert_eq!(e.uuid, None);
        assert_eq!(e.published, None);
        assert_eq!(e.event_type.as_deref(), Some("user.session.start"));
        assert_eq!(e.actor, None);
        assert!(e.target.is_empty());
        let client = e.client.unwrap();
        assert_eq!(client.ip_address.as_deref(), Some("192.0.2.1"));
        assert_eq!(client.geographical_context.unwrap().geolocation, None);
        assert_eq!(e.security_context.unwrap().as_number, None);
    }

    #[test]
    fn group_and_user_are_found_among_targets() {
        let e: OktaEvent = serde_json::from_str(
            r#"{"actor": {"id": "00uadmin", "type": "User"},
                "target": [{"id": "00uuser", "type": "User"}, {"id": "00ggroup", "type": "UserGroup", "displayName": "aws-team-data"}]}"#,
        )
        .unwrap();
        assert_eq!(e.group().and_then(|g| g.id.as_deref()), Some("00ggroup"));
        assert_eq!(e.user().and_then(|u| u.id.as_deref()), Some("00uuser"));
        let sso: OktaEvent =
            serde_json::from_str(r#"{"actor": {"id": "00uself", "type": "User"}, "target": null}"#)
                .unwrap();
        assert_eq!(sso.user().and_then(|u| u.id.as_deref()), Some("00uself"));
        assert!(sso.group().is_none());
    }

    #[test]
    fn okta_times_in_siem_export_forms_are_read() {
        let at = |v: serde_json::Value| parse_time(&v).map(|t| t.to_rfc3339());
        let want = Some("2024-04-02T19:17:37.621+00:00".to_owned());
        assert_eq!(at(json!("2024-04-02T19:17:37.621Z")), want);
        assert_eq!(at(json!("2024-04-02 19:17:37.621000000")), want);
        assert_eq!(at(json!("2024-04-02T19:17:37.621")), want);
        assert_eq!(at(json!("2024-04-02 21:17:37.621+02:00")), want);
        assert_eq!(at(json!(1712085457621_i64)), want);
        assert_eq!(at(json!("1712085457621")), want);
        assert_eq!(at(json!(1712085457)), Some("2024-04-02T19:17:37+00:00".to_owned()));
        for bad in [json!("yesterday"), json!(""), json!(true), json!("2024-13-02 19:17:37")] {
            assert_eq!(at(bad.clone()), None, "{bad}");
        }
    }
}
