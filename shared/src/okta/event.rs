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
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub event_type_version: Option<String>,
    #[serde(default)]
    pub cloud_events_version: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub event_time: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default, borrow)]
    pub data: Option<EnvelopeData<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct EnvelopeData<'a> {
    #[serde(default, borrow)]
    pub events: Option<Vec<&'a RawValue>>,
}

/// One Okta System Log event (the objects in `data.events`, and in `GET /api/v1/logs`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OktaEvent {
    #[serde(default, deserialize_with = "lenient")]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub published: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient")]
    pub event_type: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub version: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub display_message: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub severity: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub actor: Option<Actor>,
    #[serde(default, deserialize_with = "lenient")]
    pub client: Option<Client>,
    #[serde(default, deserialize_with = "lenient")]
    pub outcome: Option<Outcome>,
    #[serde(default, deserialize_with = "lenient_vec")]
    pub target: Vec<Target>,
    #[serde(default, deserialize_with = "lenient")]
    pub authentication_context: Option<AuthenticationContext>,
    #[serde(default, deserialize_with = "lenient")]
    pub security_context: Option<SecurityContext>,
    #[serde(default, deserialize_with = "lenient")]
    pub debug_context: Option<DebugContext>,
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
    pub reason: String,
    pub original_bytes: usize,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub alternate_id: Option<String>,
    pub display_name: Option<String>,
}

/// An event's target: a `User`, a `UserGroup`, an `AppInstance`, a `PolicyEntity`, ...
pub type Target = Actor;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    pub ip_address: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub user_agent: Option<UserAgent>,
    pub zone: Option<String>,
    pub device: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub geographical_context: Option<GeographicalContext>,
    #[serde(default, deserialize_with = "lenient_vec")]
    pub ip_chain: Vec<IpChainEntry>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserAgent {
    pub raw_user_agent: Option<String>,
    pub os: Option<String>,
    pub browser: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GeographicalContext {
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub geolocation: Option<Geolocation>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
pub struct Geolocation {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IpChainEntry {
    pub ip: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub geographical_context: Option<GeographicalContext>,
    pub version: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Outcome {
    pub result: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationContext {
    pub authentication_provider: Option<String>,
    pub credential_provider: Option<String>,
    pub credential_type: Option<String>,
    pub external_session_id: Option<String>,
    pub interface: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub authentication_step: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    #[serde(default, deserialize_with = "lenient")]
    pub as_number: Option<i64>,
    pub as_org: Option<String>,
    pub isp: Option<String>,
    pub domain: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub is_proxy: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DebugContext {
    #[serde(default)]
    pub debug_data: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Transaction {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub id: Option<String>,
}

/// The few fields the event hook needs to route an event onto the queue, parsed with the same
/// tolerance as [`OktaEvent`] while skipping everything else.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventRouting {
    #[serde(default, deserialize_with = "lenient")]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub published: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient")]
    pub event_type: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub actor: Option<Actor>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
