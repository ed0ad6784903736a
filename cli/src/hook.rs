//! `idc-guard hook inspect`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use idc_guard::okta::hook::prepare_delivery;

use crate::Format;

fn read_input(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).context("reading stdin")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

pub fn inspect(files: &[PathBuf], format: Format) -> anyhow::Result<ExitCode> {
    let mut failed = 0;
    for path in files {
        let body = read_input(path)?;
        let delivery = match prepare_delivery(&body) {
            Ok(d) => d,
            Err(e) => {
                failed += 1;
                eprintln!("{}: refused with {} ({e})", path.display(), e.status().as_u16());
                continue;
            }
        };
        for (position, m) in delivery.messages.iter().enumerate() {
            let event_type = m
                .attributes
                .iter()
                .find(|(n, _)| *n == "okta_event_type")
                .map(|(_, v)| v.as_str())
                .unwrap_or("-");
            match format {
                Format::Table => println!(
                    "{}\t{}\t{}\tgroup={}\tdedup={}",
                    path.display(),
                    position,
                    event_type,
                    m.group_id,
                    m.deduplication_id
                ),
                Format::Json => println!(
                    "{}",
                    serde_json::json!({
                        "file": path.display().to_string(),
                        "delivery_id": delivery.delivery_id,
                        "position": position,
                        "event_type": event_type,
                        "message_group_id": m.group_id,
                        "deduplication_id": m.deduplication_id,
                    })
                ),
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} deliveries would be refused", files.len());
    }
    Ok(ExitCode::SUCCESS)
}
