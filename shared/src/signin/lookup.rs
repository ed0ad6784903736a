//! The function's sources: a scheduled `LookupEvents` sweep per event source since a checkpoint
//! (≤ 2 requests/s, 50 events a page; the checkpoint moves only after its window is fully
//! processed, alerts sent and baselines saved), EventBridge CloudTrail events, and S3
//! `ObjectCreated` notifications for CloudTrail log files.

use crate::telemetry::metrics::{Metric, count};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;

use super::model::{Activity, Interner, Record};
use super::ports::{LogObjects, TrailLookup, UserDirectory};
use super::scan::Scanner;
use super::sources::{Reader, Stats};
use crate::alert::{AlertSink, Alerts};
use crate::error::AwsError;
use crate::records::{self, Checkpoint};
use crate::store::StateStore;

/// Event sources swept: sign-in (IdC, console), the access portal and IdC's admin API, IdC's
/// directory (identity source, SCIM, MFA settings), and IdC's SCIM endpoint (the token's use).
pub const SWEEP_SOURCES: &[&str] = &[
    "signin.amazonaws.com",
    "sso.amazonaws.com",
    "sso-directory.amazonaws.com",
    "sso-oauth.amazonaws.com",
    "identitystore-scim.amazonaws.com",
];
/// EventBridge detail-types that carry CloudTrail records (AWS documents both console spellings).
pub const CLOUDTRAIL_DETAIL_TYPES: &[&str] = &[
    "AWS Console Sign In via CloudTrail",
    "AWS Console Signin via CloudTrail",
    "AWS Service Event via CloudTrail",
    "AWS API Call via CloudTrail",
];

/// The sweep's windows and pacing.
#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// CloudTrail can take this long to make an event visible to LookupEvents: windows end this
    /// far in the past.
    pub settle: Duration,
    /// Without a checkpoint (first run), look back this far.
    pub first_window: Duration,
    /// At most this much per source and run, so a long outage catches up over several runs.
    pub max_window: Duration,
    /// Minimum spacing between LookupEvents calls (the API allows 2 per second).
    pub min_interval: std::time::Duration,
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            settle: Duration::minutes(15),
            first_window: Duration::hours(1),
            max_window: Duration::hours(24),
            min_interval: std::time::Duration::from_millis(500),
        }
    }
}

/// What the sweep did for one event source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceReport {
    /// The event source.
    pub source: String,
    /// The window's start.
    pub start: Option<DateTime<Utc>>,
    /// The window's end (the new checkpoint).
    pub end: Option<DateTime<Utc>>,
    /// `LookupEvents` pages read.
    pub pages: usize,
    /// Records read.
    pub records: usize,
    /// Records that could not be used.
    pub skipped: usize,
    /// Alerts raised.
    pub alerts: usize,
}

/// Keeps LookupEvents calls at least `min_interval` apart.
struct Pacer {
    interval: std::time::Duration,
    last: Option<tokio::time::Instant>,
}

impl Pacer {
    async fn wait(&mut self) {
        if let Some(last) = self.last {
            tokio::time::sleep_until(last + self.interval).await;
        }
        self.last = Some(tokio::time::Instant::now());
    }
}

/// What a last-use backfill read and wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Backfill {
    /// `LookupEvents` pages read.
    pub pages: usize,
    /// Events read.
    pub records: usize,
    /// Events that were not CloudTrail records.
    pub skipped: usize,
    /// Last uses written (new, or later than the stored ones).
    pub written: usize,
}

/// Backfills the access ledger's last uses from CloudTrail history: the access portal's events
/// (`sso.amazonaws.com`: role credentials and console federation) from `since` to `until`, a day
/// at a time, paced to `min_interval` per call. Only last uses are written: no finding is
/// raised and no baseline moved (old events were the sweep's to alert on), so it can run over
/// any period any number of times.
pub async fn backfill_usage<Trail, Store>(
    lookup: &Trail,
    store: &Store,
    engine: &mut super::engine::Engine,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    min_interval: std::time::Duration,
) -> Result<Backfill, AwsError>
where
    Trail: TrailLookup,
    Store: StateStore,
{
    let mut pacer = Pacer { interval: min_interval, last: None };
    let mut out = Backfill::default();
    let mut start = since;
    while start < until {
        let end = (start + Duration::days(1)).min(until);
        let mut texts = Interner::default();
        let mut activities = Vec::new();
        let mut token = None;
        loop {
            pacer.wait().await;
            let page = lookup.page("sso.amazonaws.com", start, end, token.take()).await?;
            out.pages += 1;
            for text in &page.records {
                out.records += 1;
                match Record::from_json(text).and_then(|r| r.activity_in(&mut texts)) {
                    Ok(a) => activities.push(a),
                    Err(_) => out.skipped += 1,
                }
            }
            match page.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        activities.sort_by_cached_key(Activity::order_key);
        for a in activities {
            let _ = engine.observe(a);
        }
        out.written += super::scan::save_usage(store, engine.take_usage()).await?;
        start = end;
    }
    Ok(out)
}

/// Sweeps every source once. A failure leaves that source's checkpoint where it was, so the next
/// run repeats the window (alerts already sent are not sent again).
pub async fn sweep<Trail, Store, Directory, Sink>(
    lookup: &Trail,
    store: &Store,
    scanner: &mut Scanner<'_, Store, Directory>,
    alerts: &Alerts<'_, Sink, Store>,
    settings: &SweepSettings,
    now: DateTime<Utc>,
) -> Result<Vec<SourceReport>, AwsError>
where
    Trail: TrailLookup,
    Store: StateStore,
    Directory: UserDirectory,
    Sink: AlertSink,
{
    let mut pacer = Pacer { interval: settings.min_interval, last: None };
    let mut reports = Vec::new();
    for source in SWEEP_SOURCES {
        let mut report = SourceReport { source: (*source).to_owned(), ..Default::default() };
        let checkpoint = records::load::<Checkpoint, _>(store, &Checkpoint::key_of(source))
            .await?
            .map(|c| c.until);
        let latest = now - settings.settle;
        let start = checkpoint.unwrap_or(latest - settings.first_window);
        let end = latest.min(start + settings.max_window);
        if end <= start {
            reports.push(report);
            continue;
        }
        (report.start, report.end) = (Some(start), Some(end));
        if checkpoint.is_none() {
            // Pin the first window's start, so a failure in it is retried from the same point
            // rather than from a later "first window" that would skip the gap.
            let pinned = Checkpoint { source: (*source).to_owned(), until: start };
            records::save(store, &pinned).await?;
        }
        let mut activities = Vec::new();
        let mut stats = Stats::default();
        let mut texts = Interner::default();
        let mut token = None;
        loop {
            pacer.wait().await;
            let page = lookup.page(source, start, end, token.take()).await?;
            report.pages += 1;
            for text in &page.records {
                stats.records += 1;
                match Record::from_json(text).and_then(|r| r.activity_in(&mut texts)) {
                    Ok(a) => activities.push(a),
                    Err(e) => {
                        stats.skipped += 1;
                        tracing::warn!(source, reason = %e, "skipped a malformed CloudTrail event");
                    }
                }
            }
            match page.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        (report.records, report.skipped) = (stats.records, stats.skipped);
        report.alerts = raise_all(scanner, alerts, activities).await?;
        records::save(store, &Checkpoint { source: (*source).to_owned(), until: end }).await?;
        reports.push(report);
    }
    Ok(reports)
}

/// Runs activities through the scanner, sends new alerts, then saves baselines. Returns the
/// number of alerts sent now (repeats of earlier findings are not counted).
pub async fn raise_all<Store, Directory, Sink>(
    scanner: &mut Scanner<'_, Store, Directory>,
    alerts: &Alerts<'_, Sink, Store>,
    activities: Vec<Activity>,
) -> Result<usize, AwsError>
where
    Store: StateStore,
    Directory: UserDirectory,
    Sink: AlertSink,
{
    let mut sent = 0;
    count(Metric::ScanRecords, &[], activities.len());
    let findings = scanner.process(activities).await?;
    count(Metric::ScanFindings, &[], findings.len());
    for alert in findings {
        if alerts.raise(&alert).await? {
            sent += 1;
        }
    }
    scanner.save().await?;
    Ok(sent)
}

/// What invoked the function.
#[derive(Debug)]
pub enum Trigger {
    /// EventBridge schedule: sweep LookupEvents.
    Schedule,
    /// One CloudTrail record delivered by EventBridge.
    CloudTrail(Value),
    /// S3 notifications: (bucket, key) of new CloudTrail log objects.
    Objects(Vec<(String, String)>),
}

/// Tells the function's triggers apart: a schedule, an EventBridge CloudTrail event, S3 objects.
pub fn classify(event: Value) -> Result<Trigger, String> {
    if let Some(dt) = event.get("detail-type").and_then(Value::as_str) {
        if dt == "Scheduled Event" {
            return Ok(Trigger::Schedule);
        }
        if dt == "Object Created" {
            // S3 via EventBridge: one object, key not URL-encoded.
            let bucket = event.pointer("/detail/bucket/name").and_then(Value::as_str);
            let key = event.pointer("/detail/object/key").and_then(Value::as_str);
            return match (bucket, key) {
                (Some(b), Some(k)) => Ok(Trigger::Objects(vec![(b.to_owned(), k.to_owned())])),
                _ => Err("an S3 Object Created event without bucket or key".into()),
            };
        }
        if CLOUDTRAIL_DETAIL_TYPES.contains(&dt) {
            return match event.get("detail") {
                Some(d) if d.is_object() => Ok(Trigger::CloudTrail(d.clone())),
                _ => Err("an EventBridge CloudTrail event without detail".into()),
            };
        }
        return Err(format!("unexpected EventBridge detail-type {dt:?}"));
    }
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        let mut objects = Vec::new();
        for r in records {
            let bucket = r.pointer("/s3/bucket/name").and_then(Value::as_str);
            let key = r.pointer("/s3/object/key").and_then(Value::as_str);
            match (bucket, key) {
                (Some(b), Some(k)) => objects.push((b.to_owned(), decode_key(k))),
                _ => return Err("an S3 notification record without bucket or key".into()),
            }
        }
        return Ok(Trigger::Objects(objects));
    }
    Err("not a schedule, an EventBridge CloudTrail event or an S3 notification".into())
}

/// S3 notification keys are URL-encoded with `+` for spaces.
pub fn decode_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// CloudTrail log files (not digests, not other objects in the bucket).
pub fn is_cloudtrail_log(key: &str) -> bool {
    key.contains("/CloudTrail/") && key.ends_with(".json.gz")
}

/// Reads the named log objects (skipping anything that is not a CloudTrail log file).
pub async fn read_objects<Objects: LogObjects>(
    objects: &Objects,
    keys: &[(String, String)],
) -> Result<(Vec<Activity>, Stats), AwsError> {
    let mut activities = Vec::new();
    let mut push = |a| activities.push(a);
    let mut reader = Reader::new(&mut push).unread_skipped();
    for (bucket, key) in keys.iter().filter(|(_, k)| is_cloudtrail_log(k)) {
        let bytes = objects.get(bucket, key).await?;
        // A damaged object is a counted skip; its records before the damage are kept.
        reader.read_named(&format!("s3://{bucket}/{key}"), bytes.as_slice());
    }
    let stats = reader.stats;
    Ok((activities, stats))
}

#[cfg(test)]
#[path = "lookup_tests.rs"]
mod tests;
