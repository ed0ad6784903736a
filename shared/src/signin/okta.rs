//! What Okta saw, for correlation: sign-ins (successes and failures, with Okta's own geolocation)
//! and lifecycle changes. In Lambda they come from the state table (written by access-sync from
//! the event hook); in the CLI from `--okta FILE` (event-hook envelopes or System Log arrays).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::geo::{Country, Place, Point};
use crate::okta::event::OktaEvent;
use crate::records::{Lifecycle, OktaSigninRecord, SIGNIN_EVENT_TYPES};

/// One Okta sign-in attempt, as the sign-in checks use it.
#[derive(Debug, Clone, PartialEq)]
pub struct OktaSignin {
    /// When.
    pub time: DateTime<Utc>,
    /// Okta's event type.
    pub event_type: String,
    /// Okta's outcome was `SUCCESS`.
    pub success: bool,
    /// Okta's reason for the outcome.
    pub reason: Option<String>,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// Okta's geolocation of the client.
    pub place: Place,
    /// The app signed in to (SSO events).
    pub app: Option<String>,
    /// The app's id.
    pub app_id: Option<String>,
    /// Okta's event uuid.
    pub event_id: String,
}

impl OktaSignin {
    /// Single sign-on into an app.
    pub fn is_sso(&self) -> bool {
        self.event_type == "user.authentication.sso"
    }

    /// Single sign-on into the AWS app: one of `aws_apps` (display names or app ids), or, when
    /// none are configured, an app whose name mentions AWS.
    pub fn is_aws_sso(&self, aws_apps: &[String]) -> bool {
        self.is_sso()
            && if aws_apps.is_empty() {
                self.app.as_deref().is_some_and(|a| a.to_ascii_lowercase().contains("aws"))
            } else {
                aws_apps.iter().any(|x| {
                    Some(x.as_str()) == self.app.as_deref()
                        || Some(x.as_str()) == self.app_id.as_deref()
                })
            }
    }
}

fn place(country: Option<&str>, city: Option<&str>, lat: Option<f64>, lon: Option<f64>) -> Place {
    Place {
        country: country.and_then(Country::from_name),
        city: city.map(str::to_owned),
        // Okta's coordinates are city-level: allow 50 km.
        point: lat.zip(lon).map(|(lat, lon)| Point { lat, lon, radius_km: 50.0 }),
    }
}

impl From<&OktaSigninRecord> for OktaSignin {
    fn from(r: &OktaSigninRecord) -> Self {
        OktaSignin {
            time: r.time,
            event_type: r.event_type.clone().unwrap_or_default(),
            success: r.outcome.as_deref() == Some("SUCCESS"),
            reason: r.reason.clone(),
            ip: r.ip.as_deref().and_then(|i| i.parse().ok()),
            place: place(r.country.as_deref(), r.city.as_deref(), r.lat, r.lon),
            app: r.app.clone(),
            app_id: r.app_id.clone(),
            event_id: r.event_id.clone(),
        }
    }
}

/// What one Okta event says about a user: `(login, fact)`.
#[derive(Debug, Clone, PartialEq)]
pub enum OktaFact {
    /// A sign-in attempt.
    Signin(OktaSignin),
    /// A lifecycle change.
    Lifecycle(Lifecycle),
}

/// Reads an Okta event as the state records access-sync would write for it; `None` for events
/// the sign-in checks do not use, and for those they cannot read (see [`fact_or_reason`]).
pub fn fact_of(event: &OktaEvent) -> Option<(String, OktaFact)> {
    fact_or_reason(event).ok().flatten()
}

/// [`fact_of`], with the reason when an event of a type the sign-in checks use cannot be read:
/// `Ok(None)` is an event of another type.
pub fn fact_or_reason(event: &OktaEvent) -> Result<Option<(String, OktaFact)>, &'static str> {
    let event_type = event.event_type.as_deref().ok_or("no eventType")?;
    let signin = SIGNIN_EVENT_TYPES.contains(&event_type);
    if !signin && crate::records::LifecycleStatus::of_event_type(event_type).is_none() {
        return Ok(None);
    }
    if event.published.is_none() {
        return Err("no published time, or one that is not a time");
    }
    let event_id = event.uuid.clone().unwrap_or_default();
    if signin {
        let record = OktaSigninRecord::from_event(event, &event_id).ok_or("no actor login")?;
        return Ok(Some((record.login.clone(), OktaFact::Signin(OktaSignin::from(&record)))));
    }
    let lifecycle = Lifecycle::from_event(event, &event_id).ok_or("no target user login")?;
    Ok(Some((lifecycle.login.clone(), OktaFact::Lifecycle(lifecycle))))
}

/// What a file of Okta events gave the sign-in checks.
#[derive(Debug, Default)]
pub struct OktaRead {
    /// The facts, by login.
    pub facts: Vec<(String, OktaFact)>,
    /// Events read.
    pub events: usize,
    /// Events of types the sign-in checks do not use.
    pub other_types: usize,
    /// Entries that could not be used, by reason.
    pub skipped: std::collections::BTreeMap<&'static str, usize>,
}

/// Reads Okta events from a file's text (see [`read_events`]) into facts, counting every entry
/// that could not be used by its reason.
pub fn read_facts(text: &str) -> OktaRead {
    let (events, unreadable) = read_events(text);
    let mut read = OktaRead { events: events.len(), ..OktaRead::default() };
    if unreadable > 0 {
        read.skipped.insert("not JSON, or not an Okta event", unreadable);
    }
    for e in &events {
        match fact_or_reason(e) {
            Ok(Some(fact)) => read.facts.push(fact),
            Ok(None) => read.other_types += 1,
            Err(reason) => *read.skipped.entry(reason).or_default() += 1,
        }
    }
    read
}

/// Okta events from a file: event-hook envelopes (`data.events`), System Log arrays, or JSON
/// lines of either. Returns the events and the number of unreadable entries.
pub fn read_events(text: &str) -> (Vec<OktaEvent>, usize) {
    let mut events = Vec::new();
    let mut bad = 0;
    let take = |v: Value, events: &mut Vec<OktaEvent>, bad: &mut usize| {
        let list = match v {
            Value::Array(items) => items,
            v if v.pointer("/data/events").is_some() => {
                v.pointer("/data/events").and_then(Value::as_array).cloned().unwrap_or_default()
            }
            v => vec![v],
        };
        for e in list {
            match serde_json::from_value::<OktaEvent>(e).ok() {
                Some(ev) if ev.event_type.is_some() => events.push(ev),
                _ => *bad += 1,
            }
        }
    };
    match serde_json::from_str::<Value>(text) {
        Ok(v) => take(v, &mut events, &mut bad),
        Err(_) => {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str::<Value>(line) {
                    Ok(v) => take(v, &mut events, &mut bad),
                    Err(_) => bad += 1,
                }
            }
        }
    }
    (events, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_okta_entry_is_used_or_counted_by_reason() {
        let sso = include_str!("../../../events/okta/user-authentication-sso-success.json");
        let mut lines: Vec<String> = Vec::new();
        let event: serde_json::Value =
            serde_json::from_str::<serde_json::Value>(sso).unwrap()["data"]["events"][0].clone();
        // A SIEM export's time form is read; a word is not a time.
        let mut siem = event.clone();
        siem["published"] = "2026-11-20 18:30:12.000000000".into();
        lines.push(siem.to_string());
        let mut no_time = event.clone();
        no_time["published"] = "yesterday".into();
        lines.push(no_time.to_string());
        let mut no_actor = event.clone();
        no_actor["actor"] = serde_json::Value::Null;
        lines.push(no_actor.to_string());
        let mut other = event.clone();
        other["eventType"] = "group.user_membership.add".into();
        lines.push(other.to_string());
        lines.push("{not json".into());
        let read = read_facts(&lines.join("\n"));
        assert_eq!(read.facts.len(), 1, "{read:?}");
        assert_eq!(read.other_types, 1);
        assert_eq!(read.skipped.get("no published time, or one that is not a time"), Some(&1));
        assert_eq!(read.skipped.get("no actor login"), Some(&1));
        assert_eq!(read.skipped.get("not JSON, or not an Okta event"), Some(&1));
        assert_eq!(read.events + 1, lines.len(), "every line accounted for");
    }
}
