//! Writes a synthetic organisation trail in CloudTrail's S3 layout: gzip files of
//! `{"Records": [...]}` under `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`, named as
//! CloudTrail names them, one file per region and slice of time, with the planted anomalies in
//! the middle (listed on stderr). Portal events carry only the identity-store user id (names are
//! learned from sign-ins); each user has one address per day. Used by `scripts/measure-scan.sh`.
//!
//! `cargo run --release -p idc-guard-core --example gen_s3_trail -- DIR EVENTS USERS FILES [SEED]
//! [PERSON_SHARE]`: with PERSON_SHARE n > 0 the trail is an organisation's, mostly machine
//! traffic (services, pipelines, KMS, role chains) with one person's record in n.

use std::io::Write;
use std::path::PathBuf;

use chrono::DateTime;
use flate2::Compression;
use flate2::write::GzEncoder;
use idc_guard::signin::synth::Synth;
use serde_json::Value;

const ACCOUNT: &str = "123456789012";
const REGIONS: &[&str] = &["us-east-1", "eu-central-1", "eu-west-1", "ap-southeast-2"];

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/s3-trail".into()));
    let mut number = |default: u64| -> u64 {
        args.next().and_then(|a| a.replace('_', "").parse().ok()).unwrap_or(default)
    };
    let (events, users, files, seed) =
        (number(200_000), number(10_000) as usize, number(400).max(1), number(42));
    let person_share = number(0) as u32;
    let mut s = Synth::new(seed, users, events, 7);
    let per_file = events.div_ceil(files);
    let mut records: Vec<Value> = Vec::with_capacity(per_file as usize + 16);
    let mut written = 0u64;
    for i in 0..events {
        if i == events / 2 {
            let (planted_records, planted) = s.plant();
            records.extend(planted_records);
            for p in planted {
                eprintln!("planted: {} for {}", p.detector, p.user);
            }
        }
        records.push(if person_share == 0 { s.record() } else { s.org_record(person_share) });
        if records.len() as u64 >= per_file || i + 1 == events {
            write_file(&dir, written, std::mem::take(&mut records))?;
            written += 1;
        }
    }
    eprintln!("{written} files under {}", dir.display());
    Ok(())
}

/// One log file: named after its first record's time and a region taken in turn.
fn write_file(dir: &std::path::Path, n: u64, records: Vec<Value>) -> std::io::Result<()> {
    let Some(first) = records.first() else { return Ok(()) };
    let time = first["eventTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.to_utc())
        .unwrap_or_default();
    let region = REGIONS[n as usize % REGIONS.len()];
    let folder =
        dir.join(format!("AWSLogs/{ACCOUNT}/CloudTrail/{region}/{}", time.format("%Y/%m/%d")));
    std::fs::create_dir_all(&folder)?;
    let name =
        format!("{ACCOUNT}_CloudTrail_{region}_{}_{n:016x}.json.gz", time.format("%Y%m%dT%H%MZ"));
    let mut gz = GzEncoder::new(std::fs::File::create(folder.join(name))?, Compression::fast());
    gz.write_all(serde_json::json!({ "Records": records }).to_string().as_bytes())?;
    gz.finish()?;
    Ok(())
}
