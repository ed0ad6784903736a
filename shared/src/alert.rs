//! One `Alert` type, the same everywhere (SNS message, webhook, log line, CLI JSON line), and
//! its sinks. An alert's `id` is stable for the same finding, and a dispatcher with a state
//! store sends each id once.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::AwsError;
use crate::records::{self, AlertDelivery, Record, SinkState};
use crate::store::StateStore;
use crate::telemetry::metrics::{Metric, count};

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record; nothing to do.
    Info,
    /// Worth a look.
    Low,
    /// Look today.
    Medium,
    /// Look now.
    High,
    /// Act now: access is at risk.
    Critical,
}

impl Severity {
    /// The lowercase name used in JSON and SNS attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One alert, the same for every detector and sink (the schema in the README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id: the detector plus a hash of what identifies the case, so a repeat is recognised.
    pub id: String,
    /// When it happened (the event's time, not the alert's).
    pub time: DateTime<Utc>,
    /// The detector that raised it.
    pub detector: String,
    /// How urgent.
    pub severity: Severity,
    /// One line for a person.
    pub title: String,
    /// The user concerned, if any.
    pub user: Option<String>,
    /// What happened, with numbers.
    pub summary: String,
    /// The facts, as JSON.
    pub evidence: serde_json::Value,
    /// The Okta and CloudTrail event ids behind it.
    pub event_ids: Vec<String>,
    /// What to do.
    pub runbook: String,
}

impl Alert {
    /// An alert whose id is derived from the detector and `key` (what makes the finding the same
    /// finding: e.g. the Okta event uuid), so re-processing yields the same id.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        detector: &str,
        key: &str,
        time: DateTime<Utc>,
        severity: Severity,
        title: impl Into<String>,
        user: Option<String>,
        summary: impl Into<String>,
        evidence: serde_json::Value,
        event_ids: Vec<String>,
        runbook: impl Into<String>,
    ) -> Self {
        let digest = Sha256::digest(format!("{detector}\n{key}").as_bytes());
        Self {
            id: format!("{detector}-{}", &hex::encode(digest)[..16]),
            time,
            detector: detector.to_owned(),
            severity,
            title: title.into(),
            user,
            summary: summary.into(),
            evidence,
            event_ids,
            runbook: runbook.into(),
        }
    }

    /// The alert as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// Somewhere alerts go. A fan-out is several sinks: [`AlertSink::parts`] names them and
/// [`AlertSink::send_part`] sends to one, so delivery can be tracked per sink.
pub trait AlertSink: Send + Sync {
    /// Sends to every part.
    fn send(&self, alert: &Alert) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// This sink's name in delivery records (`sns`, `webhook`, `log`).
    fn name(&self) -> &'static str {
        "sink"
    }

    /// The names of the sinks this one delivers to.
    fn parts(&self) -> Vec<&'static str> {
        vec![self.name()]
    }

    /// Sends to the part named `part` only.
    fn send_part(
        &self,
        part: &str,
        alert: &Alert,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        let _ = part;
        self.send(alert)
    }

    /// The finding's condition has cleared. A sink that keeps findings (Security Hub) closes
    /// its finding; the others keep nothing: nothing to do.
    fn resolve(&self, alert: &Alert) -> impl Future<Output = Result<(), AwsError>> + Send {
        let _ = alert;
        async { Ok(()) }
    }
}

/// Sends to a primary sink and, when configured, a second one. Both must accept.
pub struct FanOut<A, B> {
    /// Always sent to.
    pub primary: A,
    /// Also sent to, when configured.
    pub secondary: Option<B>,
}

impl<A: AlertSink, B: AlertSink> AlertSink for FanOut<A, B> {
    async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
        self.primary.send(alert).await?;
        if let Some(s) = &self.secondary {
            s.send(alert).await?;
        }
        Ok(())
    }

    fn parts(&self) -> Vec<&'static str> {
        let mut parts = self.primary.parts();
        parts.extend(self.secondary.iter().flat_map(|s| s.parts()));
        parts
    }

    async fn send_part(&self, part: &str, alert: &Alert) -> Result<(), AwsError> {
        if self.primary.parts().contains(&part) {
            return self.primary.send_part(part, alert).await;
        }
        match &self.secondary {
            Some(s) => s.send_part(part, alert).await,
            None => Ok(()),
        }
    }

    async fn resolve(&self, alert: &Alert) -> Result<(), AwsError> {
        self.primary.resolve(alert).await?;
        match &self.secondary {
            Some(s) => s.resolve(alert).await,
            None => Ok(()),
        }
    }
}

/// A sink that may not be configured: absent, it has no parts and sends nothing.
impl<T: AlertSink> AlertSink for Option<T> {
    fn name(&self) -> &'static str {
        self.as_ref().map_or("none", AlertSink::name)
    }
    async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
        match self {
            Some(s) => s.send(alert).await,
            None => Ok(()),
        }
    }
    fn parts(&self) -> Vec<&'static str> {
        self.as_ref().map(AlertSink::parts).unwrap_or_default()
    }
    async fn send_part(&self, part: &str, alert: &Alert) -> Result<(), AwsError> {
        match self {
            Some(s) => s.send_part(part, alert).await,
            None => Ok(()),
        }
    }
    async fn resolve(&self, alert: &Alert) -> Result<(), AwsError> {
        match self {
            Some(s) => s.resolve(alert).await,
            None => Ok(()),
        }
    }
}

/// Writes the alert as one structured log line.
#[derive(Clone, Debug, Default)]
pub struct LogAlertSink;

impl AlertSink for LogAlertSink {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
        tracing::warn!(alert = %alert.to_json(), detector = %alert.detector, severity = alert.severity.as_str(), "alert");
        Ok(())
    }
}

/// Delivers each alert id to every sink at least once, and once per sink in the normal path.
///
/// A delivery record (`alert#<id>`) holds the alert and each sink's state, `pending` or `sent`.
/// It is written before the first send; each sink is marked `sent` right after it accepted.
/// When a sink fails, the others still get the alert and `raise` returns the error: the caller's
/// retry raises the same alert again and only the pending sinks are sent to. A crash between a
/// send and its mark repeats that one sink's send on retry, never loses it.
pub struct Alerts<'a, Sink, Store> {
    sink: &'a Sink,
    store: &'a Store,
}

impl<Sink: AlertSink, Store: StateStore> Alerts<'_, Sink, Store> {
    /// The condition behind an alert raised earlier has cleared: every sink that keeps findings
    /// closes its finding. An id never delivered: nothing to close (`false`).
    pub async fn resolve(&self, alert_id: &str) -> Result<bool, AwsError> {
        let key = AlertDelivery::key_of(alert_id);
        let Some(record) = records::load::<AlertDelivery, _>(self.store, &key).await? else {
            return Ok(false);
        };
        let Ok(alert) = serde_json::from_value::<Alert>(record.alert) else { return Ok(false) };
        self.sink.resolve(&alert).await?;
        Ok(true)
    }
}

/// The severity of an alert as its delivery record stored it.
fn stored_severity(alert: &serde_json::Value) -> Option<Severity> {
    serde_json::from_value(alert.get("severity")?.clone()).ok()
}

impl<'a, Sink: AlertSink, Store: StateStore> Alerts<'a, Sink, Store> {
    /// Delivery through `sink`, with each alert's record in `store`.
    pub fn new(sink: &'a Sink, store: &'a Store) -> Self {
        Self { sink, store }
    }

    /// `true` when some sink was sent to now, `false` when every sink had it already. An alert
    /// whose id was delivered before at a lower severity is an update: sent again.
    pub async fn raise(&self, alert: &Alert) -> Result<bool, AwsError> {
        let parts = self.sink.parts();
        let mut record = AlertDelivery {
            id: alert.id.clone(),
            detector: alert.detector.clone(),
            sinks: Some(parts.iter().map(|p| ((*p).to_owned(), SinkState::Pending)).collect()),
            alert: serde_json::to_value(alert).unwrap_or_default(),
        };
        if !self.store.put_if_absent(record.to_item()).await? {
            match records::load::<AlertDelivery, _>(self.store, &record.key()).await? {
                // A record from before per-sink tracking: it was sent to every sink.
                Some(AlertDelivery { sinks: None, .. }) => return Ok(false),
                // The same finding at a higher severity (a burst that grew): an update, sent
                // to every sink again under the same id.
                Some(AlertDelivery { alert: stored, .. })
                    if stored_severity(&stored).is_some_and(|s| s < alert.severity) => {}
                Some(AlertDelivery { sinks: Some(stored), .. }) => {
                    let states = record.sinks.get_or_insert_default();
                    for (name, state) in stored {
                        if let Some(slot) = states.get_mut(&name) {
                            *slot = state;
                        }
                    }
                }
                None => {}
            }
        }
        let pending: Vec<&'static str> =
            parts.iter().copied().filter(|p| record.state(p) != Some(SinkState::Sent)).collect();
        if pending.is_empty() {
            return Ok(false);
        }
        let sent_before = parts.len() - pending.len();
        let mut first_error = None;
        let mut sent_now = 0;
        for part in pending {
            match self.sink.send_part(part, alert).await {
                Ok(()) => {
                    sent_now += 1;
                    record.sinks.get_or_insert_default().insert(part.to_owned(), SinkState::Sent);
                    records::save(self.store, &record).await?;
                }
                Err(e) => {
                    tracing::warn!(alert_id = %alert.id, sink = part, error = %e, "alert sink failed; it stays pending");
                    count(Metric::AlertSendFailures, &[part], 1);
                    first_error.get_or_insert(e);
                }
            }
        }
        // Counted once per alert: when its first sink accepted it (a retry that completes the
        // other sinks does not count it again).
        if sent_now > 0 && sent_before == 0 {
            count(Metric::AlertsSent, &[&alert.detector, alert.severity.as_str()], 1);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A sink that counts what it accepted and fails while `fail` is set.
    struct Flaky {
        name: &'static str,
        fail: AtomicUsize,
        sent: Mutex<Vec<String>>,
    }

    impl Flaky {
        fn new(name: &'static str, failures: usize) -> Self {
            Self { name, fail: AtomicUsize::new(failures), sent: Mutex::new(Vec::new()) }
        }
        fn sent(&self) -> usize {
            self.sent.lock().unwrap().len()
        }
    }

    impl AlertSink for Flaky {
        fn name(&self) -> &'static str {
            self.name
        }
        async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
            if self.fail.load(Ordering::SeqCst) > 0 {
                self.fail.fetch_sub(1, Ordering::SeqCst);
                return Err(AwsError::Retryable {
                    service: "test",
                    operation: "send",
                    message: "down".into(),
                });
            }
            self.sent.lock().unwrap().push(alert.id.clone());
            Ok(())
        }
    }

    impl AlertSink for &Flaky {
        fn name(&self) -> &'static str {
            self.name
        }
        async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
            (*self).send(alert).await
        }
    }

    fn alert(key: &str) -> Alert {
        Alert::new(
            "mfa-weakened",
            key,
            Utc::now(),
            Severity::High,
            "t",
            None,
            "s",
            serde_json::json!({}),
            vec![],
            "r",
        )
    }

    #[tokio::test]
    async fn a_failed_webhook_never_resends_sns_and_the_retry_reaches_the_webhook() {
        let dir = std::env::temp_dir().join(format!("idc-guard-alerts-{}", uuid_like()));
        let store = crate::adapters::SqliteStateStore::open(dir.join("state.json")).unwrap();
        let sns = Flaky::new("sns", 0);
        let webhook = Flaky::new("webhook", 1);
        let sink = FanOut { primary: &sns, secondary: Some(&webhook) };
        let alerts = Alerts::new(&sink, &store);
        let a = alert("e1");
        assert!(alerts.raise(&a).await.is_err(), "the webhook failure is reported");
        assert_eq!((sns.sent(), webhook.sent()), (1, 0));
        assert!(alerts.raise(&a).await.unwrap(), "the retry sends what was pending");
        assert_eq!((sns.sent(), webhook.sent()), (1, 1), "SNS is not sent twice");
        assert!(!alerts.raise(&a).await.unwrap(), "nothing is pending any more");
        assert_eq!((sns.sent(), webhook.sent()), (1, 1));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_same_finding_grown_graver_is_sent_again_as_an_update_and_never_at_the_same_severity()
     {
        let store = crate::adapters::SqliteStateStore::in_memory().unwrap();
        let sns = Flaky::new("sns", 0);
        let sink = FanOut::<&Flaky, &Flaky> { primary: &sns, secondary: None };
        let alerts = Alerts::new(&sink, &store);
        let mut a = alert("burst");
        assert!(alerts.raise(&a).await.unwrap());
        assert!(!alerts.raise(&a).await.unwrap(), "the same id at the same severity: once");
        a.severity = Severity::Critical;
        assert!(alerts.raise(&a).await.unwrap(), "graver: an update under the same id");
        assert_eq!(sns.sent(), 2);
        a.severity = Severity::Low;
        assert!(!alerts.raise(&a).await.unwrap(), "milder: nothing new");
        assert_eq!(sns.sent(), 2);
    }

    #[tokio::test]
    async fn a_failed_send_is_never_lost_even_when_every_later_write_fails() {
        // The old dispatcher wrote its marker first and deleted it on failure: when that delete
        // failed too, the alert was marked sent and never delivered. Now the record says pending.
        let dir = std::env::temp_dir().join(format!("idc-guard-alerts-{}", uuid_like()));
        let store = crate::adapters::SqliteStateStore::open(dir.join("state.json")).unwrap();
        let sns = Flaky::new("sns", 2);
        let sink = FanOut::<&Flaky, &Flaky> { primary: &sns, secondary: None };
        let alerts = Alerts::new(&sink, &store);
        let a = alert("e2");
        assert!(alerts.raise(&a).await.is_err());
        assert!(alerts.raise(&a).await.is_err());
        assert_eq!(sns.sent(), 0);
        assert!(alerts.raise(&a).await.unwrap());
        assert_eq!(sns.sent(), 1);
        let record = store
            .get(&format!("alert#{}", crate::records::writer()), &a.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.data["sinks"]["sns"], "sent");
        assert_eq!(record.data["alert"]["id"], a.id.as_str());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn uuid_like() -> String {
        format!("{}-{}", std::process::id(), fastrand::u64(..))
    }

    #[test]
    fn ids_are_stable_per_finding_and_the_json_has_the_schema() {
        let t = DateTime::parse_from_rfc3339("2026-11-20T17:01:33Z").unwrap().with_timezone(&Utc);
        let mk = |key: &str| {
            Alert::new(
                "mfa-weakened",
                key,
                t,
                Severity::High,
                "t",
                Some("u".into()),
                "s",
                serde_json::json!({}),
                vec![],
                "r",
            )
        };
        assert_eq!(mk("e1").id, mk("e1").id);
        assert_ne!(mk("e1").id, mk("e2").id);
        let v: serde_json::Value = serde_json::from_str(&mk("e1").to_json()).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "detector",
                "event_ids",
                "evidence",
                "id",
                "runbook",
                "severity",
                "summary",
                "time",
                "title",
                "user"
            ]
        );
        assert_eq!(v["severity"], "high");
    }

    /// One raise through two recording sinks and a store, all behind `faults` (armed with
    /// `arm`), then the caller's retries with healthy ports. Returns what each sink got, the
    /// call that failed, and how many calls the first raise made.
    async fn raise_with_faults(
        a: &Alert,
        faults: &crate::testing::faults::Faults,
        arm: Option<(usize, crate::testing::faults::Fault)>,
    ) -> (Vec<String>, Vec<String>, Option<(&'static str, crate::testing::faults::Fault)>, usize)
    {
        use crate::testing::faults::{Faulty, RecordingSink};
        let store = Faulty::new(crate::adapters::SqliteStateStore::in_memory().unwrap(), faults);
        let (sns, webhook) = (RecordingSink::new("sns"), RecordingSink::new("webhook"));
        let sink = FanOut {
            primary: Faulty::new(&sns, faults),
            secondary: Some(Faulty::new(&webhook, faults)),
        };
        let alerts = Alerts::new(&sink, &store);
        match arm {
            Some((n, fault)) => faults.arm(n, fault),
            None => faults.disarm(),
        }
        let first = tokio::time::timeout(Duration::from_secs(60), alerts.raise(a)).await;
        let hit = faults.hit();
        let calls = faults.calls();
        faults.disarm();
        if !matches!(first, Ok(Ok(_))) {
            // The caller's retry (Lambda, SQS redelivery), with healthy ports.
            let mut attempts = 0;
            while let Err(e) = alerts.raise(a).await {
                attempts += 1;
                assert!(attempts < 3, "still failing: {e}");
            }
        }
        (sns.sent(), webhook.sent(), hit, calls)
    }

    /// Fault sweep of one raise through two sinks: the N-th port call (store or sink) fails
    /// with each fault, then the caller's retries run with healthy ports. Every sink ends up with
    /// the alert; a sink gets it twice only when its acceptance was lost before it was recorded
    /// (its answer timed out, or the write recording it failed): delivery is at least once, and
    /// a repeat carries the same alert id.
    #[tokio::test(start_paused = true)]
    async fn fault_sweep_every_sink_gets_the_alert_and_twice_only_after_a_lost_acceptance() {
        use crate::testing::faults::{ALL_FAULTS, Fault, Faults};
        let a = alert("sweep");
        let healthy = Faults::default();
        let (sns, webhook, _, calls) = raise_with_faults(&a, &healthy, None).await;
        assert!(sns.len() == 1 && webhook.len() == 1);
        assert!(calls >= 4, "a raise is at least a claim, two sends and two marks: {calls}");
        let mut duplicates = 0;
        for n in 1..=calls {
            for fault in ALL_FAULTS {
                let faults = Faults::default();
                let (sns, webhook, hit, _) = raise_with_faults(&a, &faults, Some((n, fault))).await;
                let hit = hit.expect("the armed call happened");
                let lost_acceptance = matches!(
                    hit,
                    ("send_part", Fault::Timeout) | ("put", Fault::Error | Fault::Drop)
                );
                for sent in [&sns, &webhook] {
                    assert!(!sent.is_empty(), "call {n} {fault:?} ({hit:?}): an alert was missed");
                    assert!(sent.iter().all(|id| *id == a.id));
                    assert!(sent.len() <= 2, "call {n} {fault:?}: sent {} times", sent.len());
                }
                let repeats = sns.len() + webhook.len() - 2;
                assert!(
                    repeats == 0 || (repeats == 1 && lost_acceptance),
                    "call {n} {fault:?} ({hit:?}): {repeats} repeat(s) with no lost acceptance"
                );
                duplicates += repeats;
            }
        }
        assert!(duplicates > 0, "the sweep reached the lost-acceptance cases");
    }
}
