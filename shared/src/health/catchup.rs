//! `system-log-catch-up`: closes the hook's loss window and sees what hooks cannot carry.
//!
//! Okta retries a failed event-hook delivery once; after that the events are gone from the hook,
//! but not from the System Log. Every few minutes this reads `GET /api/v1/logs` in polling mode
//! (ascending, from a saved cursor, following `Link: rel="next"`, which Okta returns even on an
//! empty page) and:
//! - queues every event of a subscribed type that access-sync never processed on the hook's FIFO
//!   queue, with the same deduplication id (its uuid), so an event the hook did deliver is dropped
//!   by the queue or skipped by access-sync's claim: a repeat is harmless;
//! - raises `scim-provisioning-failure` for provisioning failures of the AWS app
//!   (`application.provision.*`, `app.user_management.*`, `application.integration.*` with
//!   outcome FAILURE), which event hooks cannot carry.
//!
//! The cursor is saved after each page is handled, so a crash re-reads at most one page.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::ports::OktaReader;
use super::{Check, Doctor, Status, first_names, text};
use crate::access::ports::IdentityCenter;
use crate::alert::{Alert, AlertSink, Alerts, Severity};
use crate::okta::event::SUBSCRIBED_EVENT_TYPES;
use crate::okta::hook::{enqueue, prepare_delivery};
use crate::okta::ports::EventQueue;
use crate::records::{self, EVENT_CLAIM_PK, SystemLogCheckpoint};
use crate::store::StateStore;

/// The check's id.
pub const ID: &str = "system-log-catch-up";
/// The check's title.
pub const TITLE: &str = "Okta System Log catch-up";

/// Events per page (Okta's maximum).
const PAGE: usize = 1000;

/// Provisioning event families hooks cannot carry.
const PROVISIONING_PREFIXES: [&str; 3] =
    ["application.provision.", "app.user_management", "application.integration."];

/// The System Log filter: the subscribed types and the provisioning families.
pub fn filter() -> String {
    let mut parts: Vec<String> =
        SUBSCRIBED_EVENT_TYPES.iter().map(|t| format!("eventType eq \"{t}\"")).collect();
    parts.extend(
        PROVISIONING_PREFIXES
            .iter()
            .map(|p| format!("eventType sw \"{}\"", p.trim_end_matches('.'))),
    );
    parts.join(" or ")
}

/// The first page's path when there is no saved cursor.
pub fn first_page(since: DateTime<Utc>) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("since", &since.to_rfc3339_opts(SecondsFormat::Millis, true))
        .append_pair("sortOrder", "ASCENDING")
        .append_pair("limit", &PAGE.to_string())
        .append_pair("filter", &filter())
        .finish();
    format!("/api/v1/logs?{query}")
}

fn is_provisioning_failure(event: &Value, app_id: Option<&str>) -> bool {
    let kind = text(event, "/eventType").unwrap_or_default();
    PROVISIONING_PREFIXES.iter().any(|p| kind.starts_with(p))
        && text(event, "/outcome/result") == Some("FAILURE")
        && app_id.is_none_or(|app| {
            event
                .get("target")
                .and_then(Value::as_array)
                .is_some_and(|ts| ts.iter().any(|t| text(t, "/id") == Some(app)))
        })
}

fn provisioning_alert(event: &Value, uuid: &str, now: DateTime<Utc>) -> Alert {
    let kind = text(event, "/eventType").unwrap_or("?");
    let reason = text(event, "/outcome/reason").unwrap_or("no reason given");
    let user = event
        .get("target")
        .and_then(Value::as_array)
        .and_then(|ts| ts.iter().find(|t| text(t, "/type") == Some("User")))
        .and_then(|t| text(t, "/alternateId"))
        .map(str::to_owned);
    let time = text(event, "/published")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    Alert::new(
        "scim-provisioning-failure",
        uuid,
        time,
        Severity::High,
        format!("Okta provisioning to IAM Identity Center failed ({kind})"),
        user,
        format!("{kind} failed: {reason}"),
        json!({"event_type": kind, "reason": reason, "display_message": text(event, "/displayMessage")}),
        vec![uuid.to_owned()],
        "Read the error in Okta (Applications > AWS IAM Identity Center > Provisioning, and the System Log event). A rejected or expired SCIM token is the usual cause: run `idc-guard scim-token status`.",
    )
}

/// Reads the System Log from the saved cursor: queues what the hook missed, alerts provisioning
/// failures, saves the cursor.
pub async fn run<Okta, Idc, Store, Sink, Queue>(
    d: &Doctor<'_, Okta, Idc, Store, Sink, Queue>,
    now: DateTime<Utc>,
) -> Check
where
    Okta: OktaReader,
    Idc: IdentityCenter,
    Store: StateStore,
    Sink: AlertSink,
    Queue: EventQueue,
{
    let mut next =
        match records::load::<SystemLogCheckpoint, _>(d.store, &SystemLogCheckpoint::key()).await {
            Ok(Some(c)) if !c.next.is_empty() => c.next,
            Ok(_) => first_page(now - d.settings.catch_up_lookback),
            Err(e) => return Check::unknown(ID, TITLE, format!("reading the cursor: {e}")),
        };
    let app_id = d.settings.okta_aws_app_id.as_deref();
    let alerts = Alerts::new(d.sink, d.store);
    let (mut read, mut pages) = (0, 0);
    let mut failed: Vec<String> = Vec::new();
    let mut missed: Vec<String> = Vec::new();
    loop {
        if pages >= d.settings.catch_up_max_pages {
            break;
        }
        let (events, link) = match d.okta.get_page(&next).await {
            Ok(page) => page,
            Err(e) => return Check::unknown(ID, TITLE, format!("reading the System Log: {e}")),
        };
        pages += 1;
        read += events.len();
        let mut to_queue = Vec::new();
        for event in &events {
            let Some(uuid) = text(event, "/uuid") else { continue };
            let kind = text(event, "/eventType").unwrap_or_default();
            if SUBSCRIBED_EVENT_TYPES.contains(&kind) {
                match d.store.get(EVENT_CLAIM_PK, uuid).await {
                    Ok(Some(claim)) if claim.data["status"] == "done" => {}
                    Ok(_) => {
                        missed.push(format!("{kind} {uuid}"));
                        to_queue.push(event.clone());
                    }
                    Err(e) => {
                        return Check::unknown(ID, TITLE, format!("reading event claims: {e}"));
                    }
                }
            }
            if is_provisioning_failure(event, app_id) {
                failed.push(format!(
                    "{kind}: {}",
                    text(event, "/outcome/reason").unwrap_or("no reason")
                ));
                if !d.report_only
                    && let Err(e) = alerts.raise(&provisioning_alert(event, uuid, now)).await
                {
                    return Check::unknown(ID, TITLE, format!("raising an alert: {e}"));
                }
            }
        }
        if d.report_only {
            // The cursor is the function's: never moved from here.
            next = match link {
                Some(link) if events.len() >= PAGE => link,
                _ => break,
            };
            continue;
        }
        if !to_queue.is_empty() {
            let Some(queue) = d.queue else {
                return Check::unknown(
                    ID,
                    TITLE,
                    "no event queue configured to put missed events on",
                );
            };
            let envelope = json!({"eventType": "com.okta.event_hook", "eventId": "system-log-catch-up",
                "data": {"events": to_queue}});
            let queued = match prepare_delivery(envelope.to_string().as_bytes()) {
                Ok(delivery) => enqueue(queue, &delivery.messages).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = queued {
                return Check::unknown(ID, TITLE, format!("queueing missed events: {e}"));
            }
        }
        let caught_up = events.len() < PAGE;
        match link {
            Some(link) => {
                next = link;
                let checkpoint = SystemLogCheckpoint { next: next.clone(), saved_at: Some(now) };
                if let Err(e) = records::save(d.store, &checkpoint).await {
                    return Check::unknown(ID, TITLE, format!("saving the cursor: {e}"));
                }
            }
            None => break,
        }
        if caught_up {
            break;
        }
    }
    let mut check = Check::pass(ID, TITLE, "");
    check.evidence.push(format!("{read} event(s) read in {pages} page(s)"));
    if !failed.is_empty() {
        let what = if d.report_only { "seen" } else { "alerted" };
        check.evidence.push(format!(
            "{} provisioning failure(s) {what}: {}",
            failed.len(),
            first_names(&failed)
        ));
    }
    if missed.is_empty() {
        check.summary = "every subscribed event reached access-sync".into();
    } else {
        check.status = Status::Warn;
        let verb =
            if d.queue.is_some() { "queued now" } else { "the scheduled catch-up queues them" };
        check.summary = format!(
            "{} event(s) never reached access-sync ({verb}): {}",
            missed.len(),
            first_names(&missed)
        );
        check.fix = Some("Check the event hook's deliveries in Okta (Workflow > Event Hooks) and the HookUnavailableAlarm; the catch-up closes the gap meanwhile.".into());
    }
    check
}
