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
/// the sign-in checks do not use.
pub fn fact_of(event: &OktaEvent) -> Option<(String, OktaFact)> {
    let event_type = event.event_type.as_deref()?;
    let event_id = event.uuid.clone().unwrap_or_default();
    if SIGNIN_EVENT_TYPES.contains(&event_type) {
        let record = OktaSigninRecord::from_event(event, &event_id)?;
        return Some((record.login.clone(), OktaFact::Signin(OktaSignin::from(&record))));
    }
    let lifecycle = Lifecycle::from_event(event, &event_id)?;
    Some((lifecycle.login.clone(), OktaFact::Lifecycle(lifecycle)))
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
