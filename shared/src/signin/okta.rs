//! What Okta saw, for correlation: sign-ins (successes and failures, with Okta's own geolocation)
//! and lifecycle changes. In Lambda they come from the state table (written by access-sync from
//! the event hook); in the CLI from `--okta FILE` (event-hook envelopes or System Log arrays).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::geo::{Country, Place, Point};
use crate::okta::event::OktaEvent;
use crate::store::Item;

/// Okta event types that are sign-in attempts (successful or not).
pub const SIGNIN_EVENT_TYPES: &[&str] = &[
    "user.session.start",
    "user.authentication.sso",
    "user.authentication.auth_via_mfa",
    "user.authentication.verify",
    "user.authentication.authenticate",
];

/// Okta lifecycle event types and the status they leave the user in.
pub fn lifecycle_status(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "user.lifecycle.deactivate" => "deactivated",
        "user.lifecycle.suspend" => "suspended",
        "user.lifecycle.delete.initiated" => "deleted",
        "user.lifecycle.unsuspend" | "user.lifecycle.reactivate" | "user.lifecycle.activate" => {
            "active"
        }
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct OktaSignin {
    pub time: DateTime<Utc>,
    pub event_type: String,
    pub success: bool,
    pub reason: Option<String>,
    pub ip: Option<IpAddr>,
    /// Okta's geolocation of the client.
    pub place: Place,
    pub app: Option<String>,
    pub app_id: Option<String>,
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

#[derive(Debug, Clone, PartialEq)]
pub struct Lifecycle {
    pub status: String,
    pub at: DateTime<Utc>,
    pub event_id: String,
}

impl Lifecycle {
    pub fn is_inactive(&self) -> bool {
        self.status != "active"
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

/// A sign-in record written by access-sync (`okta-signin#<login>`).
pub fn signin_from_item(item: &Item) -> Option<OktaSignin> {
    let d = &item.data;
    let time = d["time"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok())?.to_utc();
    Some(OktaSignin {
        time,
        event_type: d["event_type"].as_str().unwrap_or_default().to_owned(),
        success: d["outcome"].as_str() == Some("SUCCESS"),
        reason: d["reason"].as_str().map(str::to_owned),
        ip: d["ip"].as_str().and_then(|i| i.parse().ok()),
        place: place(
            d["country"].as_str(),
            d["city"].as_str(),
            d["lat"].as_f64(),
            d["lon"].as_f64(),
        ),
        app: d["app"].as_str().map(str::to_owned),
        app_id: d["app_id"].as_str().map(str::to_owned),
        event_id: d["event_id"].as_str().unwrap_or_default().to_owned(),
    })
}

/// A lifecycle record written by access-sync (`okta-user#<login>`, sk `lifecycle`).
pub fn lifecycle_from_item(item: &Item) -> Option<Lifecycle> {
    let d = &item.data;
    Some(Lifecycle {
        status: d["status"].as_str()?.to_owned(),
        at: d["at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok())?.to_utc(),
        event_id: d["event_id"].as_str().unwrap_or_default().to_owned(),
    })
}

/// What one Okta event says about a user: `(login, fact)`.
#[derive(Debug, Clone, PartialEq)]
pub enum OktaFact {
    Signin(OktaSignin),
    Lifecycle(Lifecycle),
}

/// Reads an Okta event; `None` for events the sign-in checks do not use.
pub fn fact_of(event: &OktaEvent) -> Option<(String, OktaFact)> {
    let event_type = event.event_type.as_deref()?;
    let time = event.published?;
    let event_id = event.uuid.clone().unwrap_or_default();
    if SIGNIN_EVENT_TYPES.contains(&event_type) {
        let login = event.actor.as_ref()?.alternate_id.as_deref()?.to_lowercase();
        let client = event.client.clone().unwrap_or_default();
        let geo = client.geographical_context.unwrap_or_default();
        return Some((
            login,
            OktaFact::Signin(OktaSignin {
                time,
                event_type: event_type.to_owned(),
                success: event.outcome_result() == Some("SUCCESS"),
                reason: event.outcome.as_ref().and_then(|o| o.reason.clone()),
                ip: client.ip_address.as_deref().and_then(|i| i.parse().ok()),
                place: place(
                    geo.country.as_deref(),
                    geo.city.as_deref(),
                    geo.geolocation.map(|g| g.lat),
                    geo.geolocation.map(|g| g.lon),
                ),
                app: event.target_of_type("AppInstance").and_then(|a| a.display_name.clone()),
                app_id: event.target_of_type("AppInstance").and_then(|a| a.id.clone()),
                event_id,
            }),
        ));
    }
    let status = lifecycle_status(event_type)?;
    let login = event.target_of_type("User")?.alternate_id.as_deref()?.to_lowercase();
    Some((login, OktaFact::Lifecycle(Lifecycle { status: status.to_owned(), at: time, event_id })))
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
