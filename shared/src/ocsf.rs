//! Alerts as OCSF Detection Findings (class 2004, category 2 "Findings"), for a Security Lake
//! pipeline or any SIEM that reads OCSF: `idc-guard scan --format ocsf`, one JSON object a line.
//!
//! The mapping: the alert id is `finding_info.uid` (stable for the same finding, so a consumer
//! updates rather than duplicates), the detector is `finding_info.types[0]` and
//! `finding_info.analytic.name`, the severity maps to `severity_id` (info 1, low 2, medium 3,
//! high 4, critical 5), the runbook to `remediation.desc`; what OCSF has no attribute for (the
//! user, the evidence, the CloudTrail event ids) goes to `unmapped`.

use serde_json::{Value, json};

use crate::alert::{Alert, Severity};

/// OCSF's schema version the rendering follows.
pub const OCSF_VERSION: &str = "1.1.0";
/// Detection Finding.
pub const CLASS_UID: u32 = 2004;
/// Findings.
pub const CATEGORY_UID: u32 = 2;

/// What happened to the finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// A new finding.
    Create = 1,
    /// The same finding, changed (a burst grown graver).
    Update = 2,
    /// The condition cleared.
    Close = 3,
}

impl Activity {
    fn name(self) -> &'static str {
        match self {
            Activity::Create => "Create",
            Activity::Update => "Update",
            Activity::Close => "Close",
        }
    }
}

fn severity_id(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "Informational",
        Severity::Low => "Low",
        Severity::Medium => "Medium",
        Severity::High => "High",
        Severity::Critical => "Critical",
    }
}

/// The alert as an OCSF Detection Finding.
pub fn detection_finding(alert: &Alert, activity: Activity) -> Value {
    let time = alert.time.timestamp_millis();
    let (status_id, status) = match activity {
        Activity::Close => (4, "Resolved"),
        _ => (1, "New"),
    };
    json!({
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": activity as u32,
        "activity_name": activity.name(),
        "type_uid": CLASS_UID * 100 + activity as u32,
        "type_name": format!("Detection Finding: {}", activity.name()),
        "time": time,
        "severity_id": severity_id(alert.severity),
        "severity": severity_name(alert.severity),
        "status_id": status_id,
        "status": status,
        "is_alert": activity != Activity::Close,
        "message": alert.summary,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "idc-guard", "vendor_name": "idc-guard", "version": env!("CARGO_PKG_VERSION")},
            "uid": alert.id,
        },
        "finding_info": {
            "uid": alert.id,
            "title": alert.title,
            "desc": alert.summary,
            "types": [alert.detector],
            "analytic": {"name": alert.detector, "type_id": 1, "type": "Rule"},
            "created_time": time,
            "first_seen_time": time,
            "related_events_count": alert.event_ids.len(),
        },
        "remediation": {"desc": alert.runbook},
        "unmapped": {
            "user": alert.user,
            "evidence": alert.evidence,
            "event_ids": alert.event_ids,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attributes OCSF requires of every event (`base_event`), of a finding (`finding`), of
    /// `finding_info` and `metadata`, as the schema (1.x) states them; and the Detection
    /// Finding's identifiers.
    const REQUIRED: &[&str] = &[
        "activity_id",
        "category_uid",
        "class_uid",
        "metadata",
        "severity_id",
        "time",
        "type_uid",
        "finding_info",
    ];

    fn alert(severity: Severity) -> Alert {
        Alert::new(
            "root-signin",
            "k",
            "2026-11-21T02:14:09Z".parse().unwrap(),
            severity,
            "Root user console sign-in to account 123456789012",
            Some("root".into()),
            "The root user signed in from 203.0.113.9.",
            json!({"source_ip": "203.0.113.9"}),
            vec!["e1".into()],
            "Confirm with the account owner.",
        )
    }

    #[test]
    fn every_alert_is_a_valid_detection_finding() {
        for (severity, id) in [
            (Severity::Info, 1),
            (Severity::Low, 2),
            (Severity::Medium, 3),
            (Severity::High, 4),
            (Severity::Critical, 5),
        ] {
            for activity in [Activity::Create, Activity::Update, Activity::Close] {
                let a = alert(severity);
                let f = detection_finding(&a, activity);
                for key in REQUIRED {
                    assert!(f.get(key).is_some_and(|v| !v.is_null()), "{key} missing: {f}");
                }
                assert_eq!(f["class_uid"], 2004);
                assert_eq!(f["category_uid"], 2);
                assert_eq!(f["type_uid"], 200400 + activity as u64);
                assert_eq!(f["severity_id"], id);
                assert_eq!(f["time"], a.time.timestamp_millis());
                assert_eq!(f["finding_info"]["uid"], a.id.as_str(), "required, and stable");
                assert!(f["metadata"]["product"]["name"].is_string());
                assert!(
                    f["metadata"]["version"].as_str().is_some_and(|v| v.split('.').count() == 3)
                );
                assert!(matches!(f["status_id"].as_u64(), Some(1 | 4)));
            }
        }
    }
}
