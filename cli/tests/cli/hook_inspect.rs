//! `idc-guard hook inspect` through the real binary.

use std::io::Write;
use std::process::Stdio;

use super::idc_guard;

fn events(name: &str) -> String {
    format!("{}/../events/okta/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn inspect_shows_each_event_in_order_with_its_queue_keys() {
    let out = idc_guard()
        .args(["hook", "inspect", "--format", "json", &events("delivery-three-events.json")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["event_type"], "group.user_membership.add");
    assert_eq!(lines[0]["message_group_id"], "00g4teamPAY7xYz5d7q2");
    assert_eq!(lines[2]["event_type"], "user.lifecycle.deactivate");
    assert_eq!(lines[2]["message_group_id"], "00u3b0bMNO8pQrS5d7x1");
}

#[test]
fn inspect_refuses_a_bad_delivery_from_stdin_with_exit_1() {
    let mut child = idc_guard()
        .args(["hook", "inspect", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"eventType":"com.okta.event_hook","data":{"events":[]}}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused with 400 (data.events is empty)"), "{stderr}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = idc_guard().args(["hook", "inspect", "/nonexistent/delivery.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /nonexistent/delivery.json"));
}
