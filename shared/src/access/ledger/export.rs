//! The scheduled export: the full ledger as CSV and JSON lines (gzip), the snapshot for the
//! next run, and the diff against the previous snapshot, in an S3 bucket.
//!
//! Layout under the bucket: `ledger/latest.json` (the snapshot the next run diffs against, and
//! the CLI can read), `ledger/<time>/ledger.csv.gz`, `ledger/<time>/ledger.jsonl.gz`,
//! `ledger/<time>/diff.json`.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use futures::future::BoxFuture;
use serde::Serialize;

use super::Ledger;
use super::query::{CSV_HEADER, Diff, Index, csv_line, diff};
use crate::error::AwsError;

/// The key of the latest snapshot.
pub const LATEST_KEY: &str = "ledger/latest.json";

/// Where exports go (an S3 bucket in the deployment). Object-safe.
pub trait LedgerArchive: Send + Sync {
    /// The object's bytes; `None` when there is none.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, AwsError>>;
    /// Writes the object.
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), AwsError>>;
}

/// What one export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// The rows written.
    pub rows: usize,
    /// The objects written.
    pub keys: Vec<String>,
    /// The diff against the previous snapshot (none on the first run).
    pub diff: Option<Diff>,
}

/// The rows as gzip'd CSV and gzip'd JSON lines.
pub fn render(ledger: &Ledger) -> (Vec<u8>, Vec<u8>, usize) {
    let index = Index::new(ledger);
    let mut csv = GzEncoder::new(Vec::new(), Compression::fast());
    let mut jsonl = GzEncoder::new(Vec::new(), Compression::fast());
    let mut rows = 0;
    // Writes into memory cannot fail.
    let _ = writeln!(csv, "{CSV_HEADER}");
    index.each_row(&mut |r| {
        rows += 1;
        let _ = writeln!(csv, "{}", csv_line(&r));
        let _ = serde_json::to_writer(&mut jsonl, &r);
        let _ = jsonl.write_all(b"\n");
    });
    (csv.finish().unwrap_or_default(), jsonl.finish().unwrap_or_default(), rows)
}

/// Writes the export and the new snapshot. The previous snapshot, when it cannot be read as
/// one, is reported in the diff's place (no diff) rather than failing the export.
pub async fn publish(ledger: &Ledger, archive: &dyn LedgerArchive) -> Result<Published, AwsError> {
    let previous = archive
        .get(LATEST_KEY)
        .await?
        .and_then(|bytes| serde_json::from_slice::<Ledger>(&bytes).ok());
    let diff = previous.as_ref().map(|p| diff(p, ledger));
    let stamp = ledger.built_at.format("%Y-%m-%dT%H-%M-%SZ");
    let (csv, jsonl, rows) = render(ledger);
    let mut keys = Vec::new();
    for (name, body, kind) in [
        ("ledger.csv.gz", csv, "application/gzip"),
        ("ledger.jsonl.gz", jsonl, "application/gzip"),
        ("diff.json", serde_json::to_vec_pretty(&diff).unwrap_or_default(), "application/json"),
    ] {
        let key = format!("ledger/{stamp}/{name}");
        archive.put(&key, body, kind).await?;
        keys.push(key);
    }
    // The snapshot last: a run that failed half-way diffs against the same previous one.
    archive
        .put(LATEST_KEY, serde_json::to_vec(ledger).unwrap_or_default(), "application/json")
        .await?;
    keys.push(LATEST_KEY.to_owned());
    Ok(Published { rows, keys, diff })
}
