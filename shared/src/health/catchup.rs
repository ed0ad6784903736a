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

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::ports::OktaReader;
use super::{Check, Doctor, Status, first_names, text};
use crate::access::ports::IdentityCenter;
use crate::alert::{Alert, AlertSink, Alerts, Severity};
use crate::okta::event::SUBSCRIBED_EVENT_TYPES;
use crate::okta::hook::{enqueue, prepare_event_value};
use crate::okta::ports::EventQueue;
use crate::records::{self, EVENT_CLAIM_PK, SystemLogCheckpoint};
use crate::store::StateStore;

/// The check's id.
pub const ID: &str = "system-log-catch-up";
/// The check's title.
pub const TITLE: &str = "Okta System Log catch-up";

/// The detector of a catch-up that stalled or restarted over a gap.
pub const STALLED: &str = "catch-up-stalled";
/// The `okta_delivery_id` attribute of events the catch-up queues.
const DELIVERY_ID: &str = "system-log-catch-up";

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

fn is_provisioning_failure(event: &Value) -> bool {
    let kind = text(event, "/eventType").unwrap_or_default();
    PROVISIONING_PREFIXES.iter().any(|p| kind.starts_with(p))
        && text(event, "/outcome/result") == Some("FAILURE")
}

/// The event names the AWS app among its targets (by id: labels and names are the admin's).
fn targets_app(event: &Value, app_id: Option<&str>) -> bool {
    app_id.is_some_and(|app| {
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

/// Where this run starts: the saved cursor, or (no cursor, or one saved longer ago than
/// access-sync remembers processed events) a first page. A restart over a stale cursor names
/// the gap it leaves.
struct Start {
    next: String,
    /// The stale cursor's age, when it was dropped.
    gap_since: Option<DateTime<Utc>>,
}

async fn start<Store: StateStore>(
    store: &Store,
    lookback: Duration,
    now: DateTime<Utc>,
) -> Result<Start, String> {
    let saved = records::load::<SystemLogCheckpoint, _>(store, &SystemLogCheckpoint::key())
        .await
        .map_err(|e| format!("reading the cursor: {e}"))?;
    let fresh = |since| Start { next: first_page(since), gap_since: None };
    Ok(match saved {
        Some(c) if !c.next.is_empty() => match c.saved_at {
            Some(at) if at < oldest_replayable(now) => {
                Start { next: first_page(oldest_replayable(now)), gap_since: Some(at) }
            }
            _ => Start { next: c.next, gap_since: None },
        },
        _ => fresh(now - lookback),
    })
}

/// The oldest `published` time an event may have and still be queued: access-sync's claim of
/// an older event may have expired, and queueing it again would apply it again (an old
/// `reactivate` would lift a current deny). One hour of margin for clocks and processing.
pub fn oldest_replayable(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::seconds(records::EVENT_CLAIM_KEEP_SECONDS) + Duration::hours(1)
}

fn published(event: &Value) -> Option<DateTime<Utc>> {
    text(event, "/published")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The alert for a cursor older than the claim memory: the events between it and the restart
/// were not checked, and are not replayed.
fn gap_alert(saved_at: DateTime<Utc>, restart: DateTime<Utc>, now: DateTime<Utc>) -> Alert {
    Alert::new(
        STALLED,
        &format!("gap:{}", saved_at.to_rfc3339_opts(SecondsFormat::Secs, true)),
        now,
        Severity::High,
        "Okta System Log catch-up restarted after a long pause: events in the gap were not checked",
        None,
        format!(
            "The catch-up's cursor was last moved at {saved_at}, longer ago than access-sync remembers processed events. It restarted from {restart}; Okta events between the two were neither queued nor checked for provisioning failures, and none is replayed."
        ),
        json!({"cursor_saved_at": saved_at, "restarted_from": restart}),
        vec![],
        "Review Okta's System Log for the gap (group memberships, deactivations) and run `idc-guard plan` and a full reconcile; find why the catch-up did not run (its schedule, the integration-health function's errors).",
    )
}

/// What one run saw, for the check's verdict.
#[derive(Default)]
struct Tally {
    read: usize,
    pages: usize,
    missed: Vec<String>,
    too_old: usize,
    unqueueable: Vec<String>,
    failed: Vec<String>,
    /// Why the AWS app could not be found (provisioning failures then cannot be attributed).
    no_app: Option<String>,
    /// Provisioning failures of apps that are not the AWS app (not alerted).
    other_apps: usize,
    /// Provisioning failures not alerted because the AWS app is unknown.
    unattributed: usize,
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
    let Start { mut next, gap_since } =
        match start(d.store, d.settings.catch_up_lookback, now).await {
            Ok(start) => start,
            Err(why) => return Check::unknown(ID, TITLE, why),
        };
    let alerts = Alerts::new(d.sink, d.store);
    if let (Some(saved_at), false) = (gap_since, d.report_only)
        && let Err(e) = alerts.raise(&gap_alert(saved_at, oldest_replayable(now), now)).await
    {
        return Check::unknown(ID, TITLE, format!("raising an alert: {e}"));
    }
    let mut tally = Tally::default();
    // Without the AWS app's id, no failure can be told to be its own: none is alerted, and the
    // check says why. Missed events are queued all the same.
    let app_id = provisioning_app(d).await.unwrap_or_else(|why| {
        tally.no_app = Some(why);
        None
    });
    while tally.pages < d.settings.catch_up_max_pages {
        let (events, link) = match d.okta.get_page(&next).await {
            Ok(page) => page,
            Err(e) => return Check::unknown(ID, TITLE, format!("reading the System Log: {e}")),
        };
        tally.pages += 1;
        tally.read += events.len();
        if let Err(why) = handle_page(d, &events, app_id.as_deref(), &alerts, &mut tally, now).await
        {
            return Check::unknown(ID, TITLE, why);
        }
        let caught_up = events.len() < PAGE;
        let Some(link) = link else { break };
        next = link;
        // The cursor is the function's: `report_only` never moves it.
        if !d.report_only {
            let checkpoint = SystemLogCheckpoint { next: next.clone(), saved_at: Some(now) };
            if let Err(e) = records::save(d.store, &checkpoint).await {
                return Check::unknown(ID, TITLE, format!("saving the cursor: {e}"));
            }
        }
        if caught_up {
            break;
        }
    }
    verdict(d, tally, gap_since)
}

/// The AWS app's id for telling its provisioning failures from other apps': the configured id,
/// else the one active app with the catalogue name `amazon_aws_sso`.
async fn provisioning_app<Okta, Idc, Store, Sink, Queue>(
    d: &Doctor<'_, Okta, Idc, Store, Sink, Queue>,
) -> Result<Option<String>, String>
where
    Okta: OktaReader,
{
    if let Some(id) = d.settings.okta_aws_app_id.as_deref() {
        return Ok(Some(id.to_owned()));
    }
    match super::find_aws_app(d.okta, None).await {
        Ok(app) => Ok(text(&app, "/id").map(str::to_owned)),
        Err(why) => {
            Err(format!("provisioning failures cannot be attributed to the AWS app: {why}"))
        }
    }
}

/// One page: every missed subscribed event queued on its own (oldest first, as Okta returned
/// them), every provisioning failure of the AWS app alerted.
async fn handle_page<Okta, Idc, Store, Sink, Queue>(
    d: &Doctor<'_, Okta, Idc, Store, Sink, Queue>,
    events: &[Value],
    app_id: Option<&str>,
    alerts: &Alerts<'_, Sink, Store>,
    tally: &mut Tally,
    now: DateTime<Utc>,
) -> Result<(), String>
where
    Store: StateStore,
    Sink: AlertSink,
    Queue: EventQueue,
{
    let mut to_queue = Vec::new();
    for event in events {
        let Some(uuid) = text(event, "/uuid") else { continue };
        let kind = text(event, "/eventType").unwrap_or_default();
        if SUBSCRIBED_EVENT_TYPES.contains(&kind) {
            let done = match d.store.get(EVENT_CLAIM_PK, uuid).await {
                Ok(claim) => claim.is_some_and(|c| c.data["status"] == "done"),
                Err(e) => return Err(format!("reading event claims: {e}")),
            };
            if !done {
                if published(event).is_none_or(|p| p < oldest_replayable(now)) {
                    // Its claim may be gone: never replayed.
                    tally.too_old += 1;
                } else {
                    tally.missed.push(format!("{kind} {uuid}"));
                    match prepare_event_value(event, DELIVERY_ID) {
                        Ok(message) => to_queue.push(message),
                        Err(e) => tally.unqueueable.push(format!("{kind} {uuid}: {e}")),
                    }
                }
            }
        }
        if !is_provisioning_failure(event) {
            continue;
        }
        if app_id.is_none() {
            tally.unattributed += 1;
        } else if !targets_app(event, app_id) {
            tally.other_apps += 1;
        } else {
            tally
                .failed
                .push(format!("{kind}: {}", text(event, "/outcome/reason").unwrap_or("no reason")));
            if !d.report_only
                && let Err(e) = alerts.raise(&provisioning_alert(event, uuid, now)).await
            {
                return Err(format!("raising an alert: {e}"));
            }
        }
    }
    if d.report_only || to_queue.is_empty() {
        return Ok(());
    }
    let Some(queue) = d.queue else {
        return Err("no event queue configured to put missed events on".into());
    };
    enqueue(queue, &to_queue).await.map(|_| ()).map_err(|e| format!("queueing missed events: {e}"))
}

fn verdict<Okta, Idc, Store, Sink, Queue>(
    d: &Doctor<'_, Okta, Idc, Store, Sink, Queue>,
    tally: Tally,
    gap_since: Option<DateTime<Utc>>,
) -> Check {
    let mut check = Check::pass(ID, TITLE, "");
    check.evidence.push(format!("{} event(s) read in {} page(s)", tally.read, tally.pages));
    if !tally.failed.is_empty() {
        let what = if d.report_only { "seen" } else { "alerted" };
        check.evidence.push(format!(
            "{} provisioning failure(s) {what}: {}",
            tally.failed.len(),
            first_names(&tally.failed)
        ));
    }
    if tally.other_apps > 0 {
        check.evidence.push(format!(
            "{} provisioning failure(s) of other Okta apps ignored",
            tally.other_apps
        ));
    }
    if let Some(why) = &tally.no_app {
        check.status = Status::Warn;
        check
            .evidence
            .push(format!("{why} ({} provisioning failure(s) not alerted)", tally.unattributed));
        check.fix = Some(
            "Set [health] okta_aws_app_id to the AWS IAM Identity Center app's id in Okta.".into(),
        );
    }
    if tally.too_old > 0 {
        check.evidence.push(format!(
            "{} unprocessed event(s) older than access-sync's {}-day memory were not queued (never replayed)",
            tally.too_old,
            records::EVENT_CLAIM_KEEP_SECONDS / 86_400
        ));
    }
    if !tally.unqueueable.is_empty() {
        check.evidence.push(format!(
            "{} event(s) could not be queued even as a stub: {}",
            tally.unqueueable.len(),
            first_names(&tally.unqueueable)
        ));
    }
    if let Some(saved_at) = gap_since {
        check.evidence.push(format!(
            "the cursor was last moved at {saved_at}: restarted {}-day(s) back, the gap alerted",
            records::EVENT_CLAIM_KEEP_SECONDS / 86_400
        ));
    }
    if tally.missed.is_empty() {
        check.summary = "every subscribed event reached access-sync".into();
    } else {
        check.status = Status::Warn;
        let verb =
            if d.queue.is_some() { "queued now" } else { "the scheduled catch-up queues them" };
        check.summary = format!(
            "{} event(s) never reached access-sync ({verb}): {}",
            tally.missed.len(),
            first_names(&tally.missed)
        );
        check.fix = Some("Check the event hook's deliveries in Okta (Workflow > Event Hooks) and the HookUnavailableAlarm; the catch-up closes the gap meanwhile.".into());
    }
    check
}

#[cfg(test)]
#[path = "catchup_tests.rs"]
mod tests;
