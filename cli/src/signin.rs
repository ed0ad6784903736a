//! `idc-guard scan` and `idc-guard diagnose`: the sign-in checks over local files.

use std::collections::{BTreeSet, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;

use idc_guard::adapters::SqliteStateStore;
use idc_guard::alert::{Alert, AlertSink, Alerts};
use idc_guard::config::{GEO_CITY_DB, POLICY_FILE};
use idc_guard::error::AwsError;
use idc_guard::geo::Geo;
use idc_guard::signin::diagnose::diagnose;
use idc_guard::signin::engine::Engine;
use idc_guard::signin::model::Activity;
use idc_guard::signin::okta::{OktaFact, read_facts};
use idc_guard::signin::ports::NoDirectory;
use idc_guard::signin::scan::{Reorder, Scanner, cloudtrail_file_time, plain_user};
use idc_guard::signin::settings::{SigninPolicy, SigninSettings, parse_duration};
use idc_guard::signin::sources::{Reader, Stats};

use crate::Format;

#[derive(Args)]
pub struct GeoArgs {
    /// Access policy: its [signin] table and privileged tiers (defaults apply when the file is
    /// absent).
    #[arg(long, env = POLICY_FILE, default_value = "policy/access-policy.toml")]
    pub policy: PathBuf,
    /// Optional city-level MMDB (GeoLite2-City / DB-IP City Lite) for coordinates.
    #[arg(long, env = GEO_CITY_DB)]
    pub geo_city_db: Option<PathBuf>,
    /// Okta events: event-hook envelopes or a System Log export (JSON array or lines).
    #[arg(long, value_name = "FILE")]
    pub okta: Vec<PathBuf>,
}

#[derive(Args)]
pub struct ScanArgs {
    /// CloudTrail input: S3 log files (plain or .gz), JSON lines, EventBridge events or
    /// LookupEvents output, or directories of them (a trail copied from S3, walked at any
    /// depth); - (or nothing) reads stdin.
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub common: GeoArgs,
    /// Keep baselines and reported findings here, so the next scan continues from them and
    /// repeats nothing.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Events held to put the input in time order: any input up to this many events is checked
    /// exactly as if it were in order; beyond it, events up to 24 hours late are.
    #[arg(long, value_name = "EVENTS", default_value_t = 200_000)]
    pub order_window: usize,
    /// table, json (the alert schema) or ocsf (OCSF Detection Findings, class 2004).
    #[arg(long, value_enum, default_value_t = ScanFormat::Table)]
    pub format: ScanFormat,
}

#[derive(Args)]
pub struct DiagnoseArgs {
    /// The user: IdC user name (the SAML NameID, usually the Okta login) or user id.
    #[arg(long)]
    pub user: String,
    /// When the failure happened (RFC 3339, e.g. 2026-11-20T18:30:00Z).
    #[arg(long)]
    pub at: DateTime<Utc>,
    /// How far either side of --at to look.
    #[arg(long, default_value = "30m")]
    pub window: String,
    /// CloudTrail input, as for scan.
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub common: GeoArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn settings(args: &GeoArgs) -> anyhow::Result<(SigninSettings, BTreeSet<String>)> {
    if !args.policy.exists() {
        return Ok((SigninSettings::default(), BTreeSet::new()));
    }
    let (policy, warnings) =
        SigninPolicy::load(&args.policy).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in warnings {
        eprintln!("{}: {w}", args.policy.display());
    }
    Ok((policy.settings, policy.privileged))
}

/// The city database given, or the one beside the policy (`scripts/geo/fetch-city-db.sh`), or
/// none; says on stderr whether travel is measured between cities or countries.
fn geo(args: &GeoArgs) -> anyhow::Result<Geo> {
    let geo = Geo::for_policy(&args.policy, args.geo_city_db.as_deref())?;
    if geo.city_level() {
        eprintln!("travel: measured between cities (city database loaded)");
    } else {
        eprintln!(
            "travel: measured between countries only (no city database: --geo-city-db, or scripts/geo/fetch-city-db.sh beside the policy)"
        );
    }
    if geo.owner_level() {
        eprintln!("networks: compared by owner (ASN data beside the city database)");
    } else {
        eprintln!(
            "networks: compared by /24 and /48 (no ASN data: scripts/geo/fetch-asn-db.sh beside the policy)"
        );
    }
    Ok(geo)
}

/// Okta events across every `--okta` file: read, used, of other types, skipped by reason.
#[derive(Debug, Default, serde::Serialize)]
struct OktaCounts {
    events: usize,
    used: usize,
    other_types: usize,
    skipped_by_reason: std::collections::BTreeMap<&'static str, usize>,
}

/// Every Okta file's facts; each file's unusable events are counted by reason on stderr.
fn okta_facts(files: &[PathBuf]) -> anyhow::Result<Vec<(String, OktaFact)>> {
    Ok(okta_facts_counted(files)?.0)
}

fn okta_facts_counted(files: &[PathBuf]) -> anyhow::Result<(Vec<(String, OktaFact)>, OktaCounts)> {
    let mut counts = OktaCounts::default();
    let mut facts = Vec::new();
    for f in files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        // A Windows export's byte-order mark or UTF-16 is read as its text.
        let text = idc_guard::encodings::text_of(&bytes)
            .with_context(|| format!("reading {}", f.display()))?;
        let read = read_facts(&text);
        let skipped: usize = read.skipped.values().sum();
        eprintln!(
            "{}: {} Okta event(s), {} used, {} of other types, {skipped} skipped",
            f.display(),
            read.events,
            read.facts.len(),
            read.other_types
        );
        for (reason, n) in &read.skipped {
            eprintln!("  skipped: {n} × {reason}");
            *counts.skipped_by_reason.entry(reason).or_default() += n;
        }
        counts.events += read.events;
        counts.used += read.facts.len();
        counts.other_types += read.other_types;
        facts.extend(read.facts);
    }
    Ok((facts, counts))
}

/// Reads every input (files, `-` or nothing for stdin) through one streaming `Reader`.
/// `checks_only`: records no check reads are counted, not parsed (the scan; not `diagnose`,
/// which shows everything a person did).
fn read_inputs(
    files: &[PathBuf],
    checks_only: bool,
    on: &mut impl FnMut(Activity),
) -> anyhow::Result<Stats> {
    let reader = Reader::new(on);
    let mut reader = if checks_only { reader.unread_skipped() } else { reader };
    let stdin = files.is_empty() || files.iter().any(|f| f.as_os_str() == "-");
    for f in files.iter().filter(|f| f.as_os_str() != "-") {
        let file = std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
        // A damaged file is a counted, named skip: the others are still read.
        reader.read_named(&f.display().to_string(), file);
    }
    if stdin {
        reader.read(std::io::stdin().lock()).context("reading stdin")?;
    }
    Ok(reader.stats)
}

/// Reads the inputs beside detection: files on as many reader threads as there are cores
/// (`signin::parallel`: inflating, splitting and parsing run there, in one ordered stream), stdin
/// on one. `on` sees every activity in input order, on this thread.
fn read_inputs_beside(files: &[PathBuf], on: &mut impl FnMut(Activity)) -> anyhow::Result<Stats> {
    if files.is_empty() || files.iter().any(|f| f.as_os_str() == "-") {
        return read_inputs_on_a_thread(files, on);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    idc_guard::signin::parallel::read_files(files, threads, true, on).map_err(anyhow::Error::msg)
}

/// Reads the inputs (stdin among them) on a second thread, handing activities over in batches.
/// Emptied batches go back to the reader, so the hand-over allocates nothing once running.
fn read_inputs_on_a_thread(
    files: &[PathBuf],
    on: &mut impl FnMut(Activity),
) -> anyhow::Result<Stats> {
    const BATCH: usize = 1_024;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Activity>>(8);
    let (give_back, given_back) = std::sync::mpsc::channel::<Vec<Activity>>();
    let files = files.to_vec();
    let reader = std::thread::spawn(move || {
        let fresh = || given_back.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let mut batch = fresh();
        let stats = read_inputs(&files, true, &mut |a| {
            batch.push(a);
            if batch.len() >= BATCH {
                // The receiver stops only on an error of its own; the reader then stops too.
                let _ = tx.send(std::mem::replace(&mut batch, fresh()));
            }
        });
        let _ = tx.send(batch);
        stats
    });
    for mut batch in rx {
        batch.drain(..).for_each(&mut *on);
        let _ = give_back.send(batch);
    }
    reader.join().map_err(|_| anyhow::anyhow!("the input reader panicked"))?
}

/// Collects alerts instead of sending them (the CLI prints them).
#[derive(Default)]
struct Collect(std::sync::Mutex<Vec<Alert>>);

impl AlertSink for Collect {
    async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(alert.clone());
        Ok(())
    }
}

/// The scan's running state: findings so far, and where they go.
struct Scan<'a> {
    scanner: Scanner<'a, SqliteStateStore, NoDirectory>,
    store: Option<&'a SqliteStateStore>,
    collect: Collect,
    findings: Vec<Alert>,
    seen: HashSet<String>,
    repeats: usize,
    error: Option<anyhow::Error>,
    started: std::time::Instant,
    next_report: u64,
    progress: bool,
}

impl Scan<'_> {
    /// Runs a chunk through the detectors. The state store is a local file, so the store's
    /// futures complete at once: the scan runs on this one thread, parsing and detecting in turn.
    fn chunk(&mut self, chunk: Vec<Activity>) {
        if self.error.is_some() || chunk.is_empty() {
            return;
        }
        if let Err(e) = futures::executor::block_on(self.process(chunk)) {
            self.error = Some(e);
        }
        let observed = self.scanner.engine.observed;
        if self.progress && observed >= self.next_report {
            self.next_report += 500_000;
            eprintln!(
                "… {observed} events, {} users, {} findings ({:.0} events/s)",
                self.scanner.engine.users(),
                self.findings.len(),
                observed as f64 / self.started.elapsed().as_secs_f64()
            );
        }
    }

    async fn process(&mut self, chunk: Vec<Activity>) -> anyhow::Result<()> {
        let alerts = self.scanner.process(chunk).await?;
        match self.store {
            Some(store) => {
                let dispatcher = Alerts::new(&self.collect, store);
                for a in &alerts {
                    if !dispatcher.raise(a).await? {
                        self.repeats += 1;
                    }
                }
                for a in
                    std::mem::take(&mut *self.collect.0.lock().unwrap_or_else(|p| p.into_inner()))
                {
                    match self.findings.iter_mut().find(|f| f.id == a.id) {
                        // An update of a finding this run reported: it replaces it.
                        Some(known) => *known = a,
                        None => self.findings.push(a),
                    }
                }
                self.scanner.save().await?;
            }
            None => {
                for a in alerts {
                    if self.seen.insert(a.id.clone()) {
                        self.findings.push(a);
                    } else if let Some(known) =
                        self.findings.iter_mut().find(|f| f.id == a.id && f.severity < a.severity)
                    {
                        // One finding per burst: a later, graver state of it replaces it.
                        *known = a;
                    }
                }
            }
        }
        Ok(())
    }
}

pub fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    const REORDER_SLACK_HOURS: i64 = 24;
    let (settings, privileged) = settings(&args.common)?;
    let geo = geo(&args.common)?;
    let store = args.state.as_ref().map(SqliteStateStore::open).transpose()?;
    let engine = Engine::new(Arc::new(settings), privileged, Arc::new(geo));
    let mut scanner = Scanner::new(engine, store.as_ref(), &NoDirectory).without_okta_in_store();
    let (facts, okta_counts) = okta_facts_counted(&args.common.okta)?;
    for (login, fact) in facts {
        scanner.engine.okta(&login, fact);
    }
    let mut run = Scan {
        scanner,
        store: store.as_ref(),
        collect: Collect::default(),
        findings: Vec::new(),
        seen: HashSet::new(),
        repeats: 0,
        error: None,
        started: std::time::Instant::now(),
        next_report: 500_000,
        progress: std::io::stderr().is_terminal() || args.format != ScanFormat::Table,
    };
    // Detection runs in time order: files named by CloudTrail are read in the order of the time
    // in their names, and a reorder buffer puts the rest in order (exactly, up to
    // --order-window events; beyond that, for events at most REORDER_SLACK_HOURS late).
    let mut files = with_directories_walked(&args.files)?;
    if files.iter().all(|f| cloudtrail_file_time(&f.to_string_lossy()).is_some()) {
        files.sort_by_cached_key(|f| (cloudtrail_file_time(&f.to_string_lossy()), f.clone()));
    }
    let mut reorder = Reorder::new(args.order_window, chrono::Duration::hours(REORDER_SLACK_HOURS));
    let stats = read_inputs_beside(&files, &mut |a| {
        // Names are learned as events arrive, not as they leave the buffer: a portal event
        // (which names only the identity-store user id) is keyed by the user's name when their
        // sign-in is anywhere in the buffer, even later in time.
        run.scanner.engine.learn(&a);
        run.chunk(reorder.push(a));
    })?;
    run.chunk(reorder.finish());
    if let Some(e) = run.error {
        return Err(e);
    }
    print_alerts(&run.findings, args.format)?;
    eprintln!(
        "scanned {} records ({} read by no check, {} skipped), {} users, in {:.2} s: {} finding(s){}",
        stats.records,
        stats.unread,
        stats.skipped,
        run.scanner.engine.users(),
        run.started.elapsed().as_secs_f64(),
        run.findings.len(),
        if run.repeats > 0 {
            format!(", {} already reported before", run.repeats)
        } else {
            String::new()
        }
    );
    for (kind, n) in &stats.by_reason {
        eprintln!("  skipped: {n} × {kind}");
    }
    for r in &stats.reasons {
        eprintln!("  e.g.: {r}");
    }
    let unchecked = run.scanner.engine.okta_unchecked;
    if unchecked > 0 {
        eprintln!(
            "  signin-without-okta: {unchecked} IAM Identity Center sign-in(s) not checked: no Okta sign-ins cover their time (give them with --okta)"
        );
    }
    for f in stats.files.iter().filter(|f| f.unreadable.is_some()) {
        eprintln!(
            "  {}: read {} record(s) before it could not be read further ({})",
            f.name,
            f.records,
            f.unreadable.as_deref().unwrap_or_default()
        );
    }
    if args.format != ScanFormat::Table {
        eprintln!(
            "{}",
            serde_json::json!({"summary": {
                "records": stats.records, "unread": stats.unread, "skimmed_files": stats.skimmed, "skipped": stats.skipped, "skipped_by_reason": stats.by_reason,
                "files": stats.files, "signin_without_okta_unchecked": unchecked,
                "users": run.scanner.engine.users(), "findings": run.findings.len(),
                "already_reported": run.repeats, "okta": okta_counts,
            }})
        );
    }
    let code = if run.findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) };
    // The engine's state (a few maps for each of up to hundreds of thousands of users) goes
    // with the process, which ends now, rather than one allocation at a time: a tenth of the
    // detection thread's work on a large trail. The store was written chunk by chunk and is not
    // part of `run`: it is closed as usual.
    std::mem::forget(run);
    Ok(code)
}

/// How `scan` prints its findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanFormat {
    /// One line a finding.
    Table,
    /// The alert JSON, one object a line.
    Json,
    /// OCSF Detection Findings (class 2004), one object a line.
    Ocsf,
}

fn print_alerts(alerts: &[Alert], format: ScanFormat) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        ScanFormat::Json => {
            for a in alerts {
                writeln!(out, "{}", a.to_json())?;
            }
        }
        ScanFormat::Ocsf => {
            for a in alerts {
                let finding =
                    idc_guard::ocsf::detection_finding(a, idc_guard::ocsf::Activity::Create);
                writeln!(out, "{finding}")?;
            }
        }
        ScanFormat::Table => {
            if !alerts.is_empty() {
                writeln!(
                    out,
                    "{:<9} {:<27} {:<20} {:<28} TITLE",
                    "SEVERITY", "DETECTOR", "TIME", "USER"
                )?;
            }
            for a in alerts {
                writeln!(
                    out,
                    "{:<9} {:<27} {:<20} {:<28} {}",
                    a.severity.as_str(),
                    a.detector,
                    a.time.format("%Y-%m-%d %H:%M:%S"),
                    a.user.as_deref().unwrap_or("-"),
                    a.title
                )?;
            }
        }
    }
    Ok(())
}

pub fn diagnose_user(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    let window = parse_duration(&args.window)
        .with_context(|| format!("--window {:?}: use e.g. 30m or 2h", args.window))?;
    let user = args.user.to_lowercase();
    let mut mine = Vec::new();
    let mut names = std::collections::HashMap::new();
    read_inputs(&with_directories_walked(&args.files)?, false, &mut |a: Activity| {
        if let (Some(id), Some(name)) = (&a.user_id, &a.user_name) {
            names.insert(id.clone(), name.to_lowercase());
        }
        if (a.time - args.at).abs() <= window {
            mine.push(a);
        }
    })?;
    mine.retain(|a| {
        plain_user(a).is_some_and(|u| u == user)
            || a.user_id.as_ref().and_then(|id| names.get(id)).is_some_and(|n| *n == user)
            || a.user_id.as_deref().is_some_and(|id| id.eq_ignore_ascii_case(&user))
    });
    let okta: Vec<_> = okta_facts(&args.common.okta)?
        .into_iter()
        .filter(|(login, _)| *login == user)
        .filter_map(|(_, f)| match f {
            OktaFact::Signin(s) => Some(s),
            OktaFact::Lifecycle(_) => None,
        })
        .collect();
    let d = diagnose(&args.user, args.at, window, &mine, &okta);
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&d)?)?,
        Format::Table => {
            writeln!(out, "{} around {} (±{})", d.user, d.at.to_rfc3339(), args.window)?;
            for e in &d.timeline {
                writeln!(
                    out,
                    "  {}  {:<4} {:<40} {:<22} {:<16} {}",
                    e.time.format("%H:%M:%S"),
                    e.source,
                    e.event,
                    e.outcome,
                    e.ip.as_deref().unwrap_or("-"),
                    e.detail
                )?;
            }
            let stage = serde_json::to_value(d.verdict.stage)?;
            writeln!(out, "\nverdict: {}", stage.as_str().unwrap_or_default())?;
            writeln!(out, "  {}", d.verdict.explanation)?;
            if !d.verdict.evidence.is_empty() {
                writeln!(out, "  evidence: {}", d.verdict.evidence.join(", "))?;
            }
            writeln!(out, "  next: {}", d.verdict.next_steps)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The inputs with each directory replaced by the files under it, at any depth, in path order:
/// a trail copied from S3 (`aws s3 sync s3://bucket/AWSLogs/ trail/`) is scanned as
/// `scan trail/`. Left out of a walk: CloudTrail's digest files (`CloudTrail-Digest`: hashes of
/// log files, no records), hidden files (`.DS_Store`) and links to directories (no loops).
/// Files named on the command line are read as named. A directory with no file is an error,
/// not a silent read of stdin.
fn with_directories_walked(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading directory {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading directory {}", dir.display()))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.contains("_CloudTrail-Digest_") {
                continue;
            }
            let kind = entry.file_type().with_context(|| format!("reading {}", path.display()))?;
            if kind.is_dir() {
                if name != "CloudTrail-Digest" {
                    walk(&path, out)?;
                }
            } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::with_capacity(inputs.len());
    for input in inputs {
        if input.as_os_str() != "-" && input.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found)?;
            if found.is_empty() {
                bail!("{} holds no file to read", input.display());
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// Refuses a state path that is a directory before any work is done.
pub fn check_state_path(path: Option<&Path>) -> anyhow::Result<()> {
    if let Some(p) = path
        && p.is_dir()
    {
        bail!("--state {} is a directory; give a file path", p.display());
    }
    Ok(())
}
