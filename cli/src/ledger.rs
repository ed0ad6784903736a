//! `idc-guard access who|what|unused|refresh`: the access ledger, asked from a snapshot.
//!
//! The snapshot is read from IAM Identity Center, Organizations, the account access manager and
//! the state (grants, last uses) at most `--max-age` ago and kept in `--snapshot`
//! (`.idc-guard/ledger.json`); `refresh` reads it now. With `IDC_GUARD_LEDGER_BUCKET` set, the
//! deployment's latest scheduled export is used instead of reading the estate from here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, ValueEnum};
use idc_guard::access::ledger::export::{LATEST_KEY, LedgerArchive};
use idc_guard::access::ledger::query::{CSV_HEADER, Index, csv_line};
use idc_guard::access::ledger::{Ledger, Row};
use idc_guard::adapters::{S3LedgerArchive, load_sdk_config, s3_client};
use idc_guard::config::{LEDGER_BUCKET, POLICY_FILE};

use crate::Format;
use crate::access::AccessArgs;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LedgerFormat {
    Table,
    Json,
    Csv,
}

#[derive(Args, Clone)]
pub struct LedgerArgs {
    /// The access policy (what explains each assignment).
    #[arg(long, env = POLICY_FILE, default_value = "policy/access-policy.toml")]
    pub policy: PathBuf,
    /// Local state (last uses, grants); the functions' table when IDC_GUARD_STATE_TABLE is set.
    #[arg(long, default_value = ".idc-guard/state.db")]
    pub state: PathBuf,
    /// Where the ledger snapshot is kept.
    #[arg(long, default_value = ".idc-guard/ledger.json")]
    pub snapshot: PathBuf,
    /// Read the estate again when the snapshot is older than this (e.g. 30m, 1h, 1d; 0 = always).
    #[arg(long, default_value = "1h")]
    pub max_age: String,
    /// The deployment's ledger bucket: read its latest scheduled export instead.
    #[arg(long, env = LEDGER_BUCKET)]
    pub bucket: Option<String>,
    #[arg(long, value_enum, default_value_t = LedgerFormat::Table)]
    pub format: LedgerFormat,
}

/// The shared setup's arguments for these commands.
fn access_args(args: &LedgerArgs) -> AccessArgs {
    AccessArgs {
        policy: args.policy.clone(),
        format: Format::Table,
        state: args.state.clone(),
        strict: false,
    }
}

fn max_age(text: &str) -> anyhow::Result<chrono::Duration> {
    if text.trim() == "0" {
        return Ok(chrono::Duration::zero());
    }
    idc_guard::policy_file::parse_duration(text)
        .with_context(|| format!("--max-age {text:?}: expected a duration such as 30m, 1h or 1d"))
}

/// The snapshot: the deployment's export, a fresh enough local one, or a new read.
async fn ledger(args: &LedgerArgs, refresh: bool) -> anyhow::Result<Ledger> {
    if let Some(bucket) = args.bucket.as_deref().filter(|b| !b.is_empty()) {
        let sdk = load_sdk_config(Duration::from_secs(30)).await;
        let archive = S3LedgerArchive::new(s3_client(&sdk), bucket);
        let bytes = archive
            .get(LATEST_KEY)
            .await?
            .with_context(|| format!("s3://{bucket}/{LATEST_KEY}: no ledger exported yet"))?;
        let ledger: Ledger = serde_json::from_slice(&bytes)
            .with_context(|| format!("s3://{bucket}/{LATEST_KEY} is not a ledger snapshot"))?;
        eprintln!(
            "ledger of {} (the deployment's export)",
            ledger.built_at.format("%Y-%m-%d %H:%M UTC")
        );
        return Ok(ledger);
    }
    let limit = max_age(&args.max_age)?;
    let digest = std::fs::read(&args.policy).ok().map(|text| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&text))
    });
    if !refresh && let Ok(bytes) = std::fs::read(&args.snapshot) {
        match serde_json::from_slice::<Ledger>(&bytes) {
            Ok(l) if Utc::now() - l.built_at < limit && l.policy_digest == digest => {
                eprintln!(
                    "ledger of {} ({}; `idc-guard access refresh` reads it again)",
                    l.built_at.format("%Y-%m-%d %H:%M UTC"),
                    args.snapshot.display()
                );
                return Ok(l);
            }
            Ok(_) => {}
            Err(e) => eprintln!(
                "{}: not a ledger snapshot ({e}); reading the estate",
                args.snapshot.display()
            ),
        }
    }
    let access = access_args(args);
    let sync = crate::access::setup_for_reading(&access).await?;
    let mut ledger = sync.ledger(Utc::now()).await?;
    ledger.policy_digest = digest;
    if let Some(dir) = args.snapshot.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = args.snapshot.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&ledger)?)
        .and_then(|()| std::fs::rename(&tmp, &args.snapshot))
        .with_context(|| format!("writing {}", args.snapshot.display()))?;
    eprintln!(
        "ledger read from IAM Identity Center: {} users, {} groups, {} permission sets, {} assignments, {} entitlements ({} API calls)",
        ledger.users.len(),
        ledger.groups.len(),
        ledger.permission_sets.len(),
        ledger.holdings.len(),
        ledger.entitlements.len(),
        ledger.calls
    );
    Ok(ledger)
}

fn notes(ledger: &Ledger) {
    for n in &ledger.notes {
        eprintln!("note: {n}");
    }
}

fn print(rows: &[Row<'_>], format: LedgerFormat) -> anyhow::Result<()> {
    let day = |t: Option<chrono::DateTime<Utc>>| {
        t.map_or_else(|| "never".to_owned(), |t| t.format("%Y-%m-%d").to_string())
    };
    match format {
        LedgerFormat::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        LedgerFormat::Csv => {
            println!("{CSV_HEADER}");
            rows.iter().for_each(|r| println!("{}", csv_line(r)));
        }
        LedgerFormat::Table => {
            println!(
                "{:<28} {:<30} {:<24} {:<26} {:<18} {:<10} LAST USED",
                "USER", "VIA", "PERMISSION SET", "ACCOUNT", "WHY", "TIER"
            );
            for r in rows {
                let via = match (r.group, r.grant_expires) {
                    (Some(g), Some(t)) => format!("{g} (grant until {})", t.format("%m-%d %H:%M")),
                    (Some(g), None) => g.to_owned(),
                    (None, _) => format!("({})", r.via.as_str()),
                };
                let account = if r.account_name.is_empty() {
                    r.account_id.to_owned()
                } else {
                    format!("{} {}", r.account_id, r.account_name)
                };
                println!(
                    "{:<28} {:<30} {:<24} {:<26} {:<18} {:<10} {}",
                    r.user,
                    via,
                    r.permission_set,
                    account,
                    r.why,
                    r.tier.unwrap_or("-"),
                    day(r.last_used)
                );
            }
            println!("{} row(s).", rows.len());
        }
    }
    Ok(())
}

pub async fn who(args: &LedgerArgs, account: &str, set: Option<&str>) -> anyhow::Result<ExitCode> {
    if !idc_guard::access::policy::is_account_id(account) {
        bail!("--account {account:?}: expected a 12-digit account id");
    }
    let ledger = ledger(args, false).await?;
    notes(&ledger);
    if !ledger.accounts.contains_key(account) {
        eprintln!("note: {account} is not an account of the organisation");
    }
    print(&Index::new(&ledger).who(account, set), args.format)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn what(args: &LedgerArgs, user: &str) -> anyhow::Result<ExitCode> {
    let ledger = ledger(args, false).await?;
    notes(&ledger);
    let index = Index::new(&ledger);
    let Some(u) = index.user(user) else {
        bail!("{user} is not a user in IAM Identity Center (as of {})", ledger.built_at);
    };
    print(&index.what(u), args.format)?;
    Ok(ExitCode::SUCCESS)
}

/// Exit 2 when some access is unused (like a finding).
pub async fn unused(args: &LedgerArgs, days: u32) -> anyhow::Result<ExitCode> {
    let ledger = ledger(args, false).await?;
    notes(&ledger);
    if ledger.last_used.is_empty() {
        eprintln!(
            "note: no last use is recorded yet: the sign-in checks record it as they read CloudTrail (signin-anomaly, or `idc-guard scan --state` over exported trails)"
        );
    }
    let rows = Index::new(&ledger).unused(days, Utc::now());
    print(&rows, args.format)?;
    Ok(if rows.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

pub async fn refresh(args: &LedgerArgs) -> anyhow::Result<ExitCode> {
    let ledger = ledger(args, true).await?;
    notes(&ledger);
    Ok(ExitCode::SUCCESS)
}

/// `idc-guard access backfill --days N`: last uses from CloudTrail's `LookupEvents` history
/// (90 days at most), written to the state (the deployment's table with
/// IDC_GUARD_STATE_TABLE). Only last uses: no finding, no baseline.
pub async fn backfill(args: &LedgerArgs, days: u32) -> anyhow::Result<ExitCode> {
    if !(1..=90).contains(&days) {
        bail!("--days {days}: CloudTrail's LookupEvents keeps 90 days; give 1 to 90");
    }
    let access = access_args(args);
    let sync = crate::access::setup_for_reading(&access).await?;
    let sdk = load_sdk_config(Duration::from_secs(30)).await;
    let lookup =
        idc_guard::adapters::CloudTrailLookup::new(idc_guard::adapters::cloudtrail_client(&sdk));
    let settings = std::sync::Arc::new(idc_guard::signin::settings::SigninSettings::default());
    let geo = std::sync::Arc::new(idc_guard::geo::Geo::default());
    let mut engine = idc_guard::signin::engine::Engine::new(settings, Default::default(), geo);
    let now = Utc::now();
    eprintln!("reading {days} day(s) of portal events (sso.amazonaws.com), two requests a second…");
    let report = idc_guard::signin::lookup::backfill_usage(
        &lookup,
        &sync.store,
        &mut engine,
        now - chrono::Duration::days(i64::from(days)),
        now,
        Duration::from_millis(500),
    )
    .await?;
    println!(
        "{} events in {} pages ({} unreadable): {} last use(s) written",
        report.records, report.pages, report.skipped, report.written
    );
    Ok(ExitCode::SUCCESS)
}
