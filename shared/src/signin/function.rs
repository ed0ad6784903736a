//! The `signin-anomaly` handler: a schedule sweeps LookupEvents, an EventBridge CloudTrail event
//! is checked at once, an S3 notification reads the new log files. Each invocation loads the
//! users it sees from the state table and writes their baselines back.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::engine::Engine;
use super::lookup::{SweepSettings, Trigger, classify, raise_all, read_objects, sweep};
use super::model::Record;
use super::ports::{LogObjects, TrailLookup, UserDirectory};
use super::scan::Scanner;
use super::settings::SigninSettings;
use crate::alert::{AlertSink, Alerts};
use crate::geo::Geo;
use crate::store::StateStore;

/// The `signin-anomaly` function: the scheduled sweep, EventBridge CloudTrail events and S3 log
/// objects, through the detectors, to alerts.
pub struct SigninAnomalyHandler<Trail, Objects, Store, Directory, Sink> {
    /// CloudTrail `LookupEvents`.
    pub lookup: Trail,
    /// CloudTrail log objects in S3.
    pub objects: Objects,
    /// The state table (baselines, checkpoints, Okta's records).
    pub store: Store,
    /// User names of identity-store user ids.
    pub directory: Directory,
    /// Where alerts go.
    pub sink: Sink,
    /// Thresholds, business hours, allow-lists.
    pub settings: Arc<SigninSettings>,
    /// Permission sets whose use is privileged.
    pub privileged: BTreeSet<String>,
    /// Offline geolocation.
    pub geo: Arc<Geo>,
    /// The sweep's windows and pacing.
    pub sweep: SweepSettings,
}

impl<Trail, Objects, Store, Directory, Sink>
    SigninAnomalyHandler<Trail, Objects, Store, Directory, Sink>
where
    Trail: TrailLookup,
    Objects: LogObjects,
    Store: StateStore,
    Directory: UserDirectory,
    Sink: AlertSink,
{
    fn engine(&self) -> Engine {
        Engine::new(Arc::clone(&self.settings), self.privileged.clone(), Arc::clone(&self.geo))
    }

    /// Handles one invocation. An unrecognised event is an error (it lands in the function's
    /// error metrics); a malformed record inside a recognised one is counted and skipped.
    pub async fn handle(&self, event: Value) -> Result<Value, lambda_runtime::Error> {
        let mut scanner = Scanner::new(self.engine(), Some(&self.store), &self.directory);
        let alerts = Alerts::new(&self.sink, &self.store);
        let trigger = classify(event).map_err(|e| {
            tracing::error!(reason = %e, "signin-anomaly: unrecognised event");
            e
        })?;
        let summary = match trigger {
            Trigger::Schedule => {
                let reports = sweep(
                    &self.lookup,
                    &self.store,
                    &mut scanner,
                    &alerts,
                    &self.sweep,
                    chrono::Utc::now(),
                )
                .await?;
                json!({"trigger": "schedule", "sources": reports})
            }
            Trigger::CloudTrail(detail) => {
                let text = detail.to_string();
                let activity = Record::from_json(&text).and_then(Record::activity);
                match activity {
                    Ok(a) => {
                        let sent = raise_all(&mut scanner, &alerts, vec![a]).await?;
                        json!({"trigger": "eventbridge", "records": 1, "alerts": sent})
                    }
                    Err(reason) => {
                        tracing::warn!(%reason, "skipped a malformed CloudTrail record");
                        json!({"trigger": "eventbridge", "records": 1, "skipped": 1})
                    }
                }
            }
            Trigger::Objects(keys) => {
                let (activities, stats) = read_objects(&self.objects, &keys).await?;
                let sent = raise_all(&mut scanner, &alerts, activities).await?;
                if stats.skipped > 0 {
                    tracing::warn!(skipped = stats.skipped, reasons = ?stats.reasons, "skipped malformed CloudTrail records");
                }
                json!({"trigger": "s3", "objects": keys.len(), "records": stats.records, "skipped": stats.skipped, "alerts": sent})
            }
        };
        tracing::info!(%summary, "signin-anomaly done");
        Ok(summary)
    }
}
