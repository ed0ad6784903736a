//! Metrics in CloudWatch's embedded metric format (EMF): counted in memory during one invocation
//! and written to standard output as JSON lines when it ends. Lambda sends standard output to
//! CloudWatch Logs, which turns each EMF line into metric values: no `PutMetricData` call, no
//! extra permission, no latency on the hook's path.
//!
//! Counting is scoped: [`invocation`] runs one invocation's future with a fresh recorder and
//! flushes it afterwards; [`count`] adds to the recorder of the invocation it runs in (a task-local)
//! and does nothing outside one (the CLI, unit tests). Every metric is in the `idc-guard`
//! namespace with the `Function` dimension (the Lambda function's name) plus the dimensions its
//! [`Metric`] documents; the template's alarms name these metrics and dimensions.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every idc-guard metric.
pub const NAMESPACE: &str = "idc-guard";

/// EMF allows at most 100 metrics in one directive.
const MAX_METRICS_PER_LINE: usize = 100;

/// Every metric the functions emit (all counts). One home for the names the template's alarms
/// and the README's table use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Event-hook requests answered, by `Status` (the HTTP status code).
    HookRequests,
    /// Okta events put on the FIFO queue by the hook.
    EventsQueued,
    /// Queue records access-sync could not process, by `Reason` (`unreadable` or `retry`).
    EventsFailed,
    /// Alerts sent to at least one sink, by `Detector` and `Severity`.
    AlertsSent,
    /// Alert sends a sink refused (the alert stays pending and is sent again), by `Sink`.
    AlertSendFailures,
    /// Account assignments created.
    AssignmentsCreated,
    /// Account assignments deleted.
    AssignmentsDeleted,
    /// Assignment creations and deletions that failed.
    AssignmentsFailed,
    /// Deletions not made: held by the guard, blocked by a failed read, or over `max_deletions`.
    DeletionsHeld,
    /// AWS API call attempts, by `Service`.
    ApiCalls,
    /// AWS API attempts answered with throttling, by `Service`.
    ApiThrottles,
    /// Okta Management API requests.
    OktaCalls,
    /// Okta Management API requests answered 429 (rate limited).
    OktaThrottles,
    /// Secrets Manager rotation steps, by `Step` and `Outcome` (`done`, `already-done`,
    /// `already-current`, `failed`, `needs-person`).
    RotationSteps,
    /// CloudTrail records read by the sign-in checks.
    ScanRecords,
    /// Sign-in findings raised.
    ScanFindings,
}

impl Metric {
    /// Every metric, for documentation and the template check.
    pub const ALL: [Metric; 16] = [
        Metric::HookRequests,
        Metric::EventsQueued,
        Metric::EventsFailed,
        Metric::AlertsSent,
        Metric::AlertSendFailures,
        Metric::AssignmentsCreated,
        Metric::AssignmentsDeleted,
        Metric::AssignmentsFailed,
        Metric::DeletionsHeld,
        Metric::ApiCalls,
        Metric::ApiThrottles,
        Metric::OktaCalls,
        Metric::OktaThrottles,
        Metric::RotationSteps,
        Metric::ScanRecords,
        Metric::ScanFindings,
    ];

    /// The metric's name in CloudWatch.
    pub fn name(self) -> &'static str {
        match self {
            Metric::HookRequests => "HookRequests",
            Metric::EventsQueued => "EventsQueued",
            Metric::EventsFailed => "EventsFailed",
            Metric::AlertsSent => "AlertsSent",
            Metric::AlertSendFailures => "AlertSendFailures",
            Metric::AssignmentsCreated => "AssignmentsCreated",
            Metric::AssignmentsDeleted => "AssignmentsDeleted",
            Metric::AssignmentsFailed => "AssignmentsFailed",
            Metric::DeletionsHeld => "DeletionsHeld",
            Metric::ApiCalls => "ApiCalls",
            Metric::ApiThrottles => "ApiThrottles",
            Metric::OktaCalls => "OktaCalls",
            Metric::OktaThrottles => "OktaThrottles",
            Metric::RotationSteps => "RotationSteps",
            Metric::ScanRecords => "ScanRecords",
            Metric::ScanFindings => "ScanFindings",
        }
    }

    /// The dimensions (besides `Function`) this metric is recorded with.
    pub fn dimensions(self) -> &'static [&'static str] {
        match self {
            Metric::HookRequests => &["Status"],
            Metric::EventsFailed => &["Reason"],
            Metric::AlertsSent => &["Detector", "Severity"],
            Metric::AlertSendFailures => &["Sink"],
            Metric::ApiCalls | Metric::ApiThrottles => &["Service"],
            Metric::RotationSteps => &["Step", "Outcome"],
            _ => &[],
        }
    }
}

type Dimensions = Vec<(&'static str, String)>;

/// One invocation's counts, by dimension values and metric.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    counts: Arc<Mutex<BTreeMap<Dimensions, BTreeMap<Metric, f64>>>>,
}

impl Recorder {
    /// Adds `n` to `metric` with these dimension values (in the order [`Metric::dimensions`]
    /// names them; missing values are recorded as `none`).
    pub fn add(&self, metric: Metric, values: &[&str], n: f64) {
        let dims: Dimensions = metric
            .dimensions()
            .iter()
            .enumerate()
            .map(|(i, name)| (*name, values.get(i).copied().unwrap_or("none").to_owned()))
            .collect();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(dims).or_default().entry(metric).or_default() += n;
    }

    /// The count of `metric` with these dimension values (0 when never counted).
    pub fn get(&self, metric: Metric, values: &[&str]) -> f64 {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .iter()
            .filter(|(dims, _)| {
                dims.len() == values.len() && dims.iter().zip(values).all(|((_, v), w)| v == w)
            })
            .filter_map(|(_, m)| m.get(&metric))
            .sum()
    }

    /// The sum of `metric` over every dimension value.
    pub fn total(&self, metric: Metric) -> f64 {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.values().filter_map(|m| m.get(&metric)).sum()
    }

    /// The EMF documents for these counts: one per set of dimension values (EMF applies a
    /// directive's dimensions to all its metrics), at most 100 metrics each.
    pub fn emf_lines(&self, function: &str, timestamp_ms: i64) -> Vec<String> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut lines = Vec::new();
        for (dims, metrics) in counts.iter() {
            let metrics: Vec<(&Metric, &f64)> = metrics.iter().collect();
            for chunk in metrics.chunks(MAX_METRICS_PER_LINE) {
                let mut names = vec!["Function"];
                names.extend(dims.iter().map(|(n, _)| *n));
                let definitions: Vec<Value> =
                    chunk.iter().map(|(m, _)| json!({"Name": m.name(), "Unit": "Count"})).collect();
                let mut doc = Map::new();
                doc.insert(
                    "_aws".into(),
                    json!({
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": NAMESPACE,
                            "Dimensions": [names],
                            "Metrics": definitions,
                        }],
                    }),
                );
                doc.insert("Function".into(), Value::from(function));
                for (name, value) in dims {
                    doc.insert((*name).into(), Value::from(value.as_str()));
                }
                for (m, v) in chunk {
                    doc.insert(m.name().into(), json!(v));
                }
                lines.push(Value::Object(doc).to_string());
            }
        }
        lines
    }
}

tokio::task_local! {
    static CURRENT: Recorder;
}

/// Adds `n` to `metric` in the running invocation (no-op outside [`invocation`]/[`recorded`]).
pub fn count(metric: Metric, values: &[&str], n: usize) {
    if n > 0 {
        let _ = CURRENT.try_with(|r| r.add(metric, values, n as f64));
    }
}

/// Runs `fut` with a fresh recorder and returns its output and the counts it made.
pub async fn recorded<F: Future>(fut: F) -> (F::Output, Recorder) {
    let recorder = Recorder::default();
    let output = CURRENT.scope(recorder.clone(), fut).await;
    (output, recorder)
}

/// Runs one Lambda invocation and writes its metrics to standard output as EMF lines.
pub async fn invocation<F: Future>(fut: F) -> F::Output {
    let (output, recorder) = recorded(fut).await;
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into());
    let lines = recorder.emf_lines(&function, chrono::Utc::now().timestamp_millis());
    let mut out = std::io::stdout().lock();
    for line in lines {
        // A full pipe or closed stdout loses metrics, never the invocation.
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_inside_an_invocation_only_and_emits_valid_emf() {
        count(Metric::EventsQueued, &[], 5); // outside: ignored
        let ((), r) = recorded(async {
            count(Metric::EventsQueued, &[], 2);
            count(Metric::EventsQueued, &[], 1);
            count(Metric::AlertsSent, &["brute-force", "high"], 1);
            count(Metric::AlertsSent, &["new-country", "medium"], 1);
            count(Metric::HookRequests, &["200"], 0); // zero: not recorded
        })
        .await;
        assert_eq!(r.total(Metric::EventsQueued), 3.0);
        assert_eq!(r.get(Metric::AlertsSent, &["brute-force", "high"]), 1.0);
        assert_eq!(r.total(Metric::HookRequests), 0.0);
        let lines = r.emf_lines("idc-guard-AccessSync", 1_700_000_000_000);
        assert_eq!(lines.len(), 3, "one document per set of dimension values: {lines:?}");
        for line in &lines {
            let doc: Value = serde_json::from_str(line).unwrap();
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
            assert_eq!(directive["Namespace"], NAMESPACE);
            // Every dimension and metric named in the directive is a top-level member.
            for dim in directive["Dimensions"][0].as_array().unwrap() {
                assert!(doc[dim.as_str().unwrap()].is_string(), "{line}");
            }
            for m in directive["Metrics"].as_array().unwrap() {
                assert!(doc[m["Name"].as_str().unwrap()].is_number(), "{line}");
                assert_eq!(m["Unit"], "Count");
            }
            assert_eq!(doc["Function"], "idc-guard-AccessSync");
        }
        let brute = lines.iter().find(|l| l.contains("brute-force")).unwrap();
        let doc: Value = serde_json::from_str(brute).unwrap();
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            json!(["Function", "Detector", "Severity"])
        );
        assert_eq!(doc["AlertsSent"], 1.0);
    }

    #[test]
    fn metric_names_are_unique_and_never_clash_with_a_dimension() {
        let names: std::collections::BTreeSet<&str> =
            Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len());
        for m in Metric::ALL {
            assert_eq!(format!("{m:?}"), m.name());
            for d in m.dimensions() {
                assert!(!names.contains(d), "{d} is both a metric and a dimension");
                assert_ne!(*d, "Function");
            }
        }
    }

    /// Every alarm on an idc-guard metric names a metric the functions emit, with exactly the
    /// dimensions it is emitted with: an alarm on a misspelt metric or a missing dimension
    /// would watch nothing and never fire.
    #[test]
    fn the_templates_alarms_watch_metrics_that_exist_with_their_dimensions() {
        let template = include_str!("../../../template.yaml");
        let mut checked = 0;
        // Resources are the lines indented by exactly two spaces, each with what follows it.
        let mut blocks: Vec<String> = Vec::new();
        for line in template.lines() {
            let starts = line.starts_with("  ") && line[2..].starts_with(char::is_alphanumeric);
            match blocks.last_mut() {
                Some(b) if !starts => b.push_str(&format!("{line}\n")),
                _ => blocks.push(format!("{line}\n")),
            }
        }
        for block in blocks.iter().filter(|b| b.contains("Type: AWS::CloudWatch::Alarm")) {
            if !block.contains(&format!("Namespace: {NAMESPACE}\n")) {
                continue;
            }
            let field = |key: &str| {
                block.lines().find_map(|l| l.trim().strip_prefix(key)).map(str::trim).unwrap()
            };
            let name = field("MetricName:");
            let metric = Metric::ALL.iter().find(|m| m.name() == name);
            let metric = metric.unwrap_or_else(|| panic!("alarm on unknown metric {name}"));
            let dims: Vec<&str> = block
                .lines()
                .filter_map(|l| l.trim().strip_prefix("- Name:"))
                .map(str::trim)
                .collect();
            let mut expected = vec!["Function"];
            expected.extend(metric.dimensions());
            assert_eq!(dims, expected, "alarm on {name}");
            checked += 1;
        }
        assert!(checked >= 3, "found {checked} alarms on idc-guard metrics");
    }
}
