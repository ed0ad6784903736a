//! `idc-guard policy check`, `plan`, `apply` and `review`: the access-sync logic, run locally
//! with the standard AWS credential chain (honours `AWS_ENDPOINT_URL`, `AWS_PROFILE`, ...).

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use idc_guard::access::policy::Policy;
use idc_guard::access::ports::IdentityCenter;
use idc_guard::access::reconcile::{Change, Limits, Report, Scope};
use idc_guard::access::sync::{AccessSyncHandler, Confirmed};
use idc_guard::adapters::AnyStore;
use idc_guard::adapters::SecretsManagerStore;
use idc_guard::adapters::SnsAlertSink;
use idc_guard::adapters::okta::LazyOktaClient;
use idc_guard::adapters::{DynamoStateStore, SdkAccountAccess, SqliteStateStore};
use idc_guard::adapters::{SdkIdentityCenter, SdkOrganizations, load_sdk_config};
use idc_guard::alert::{FanOut, LogAlertSink};
use idc_guard::config::{
    ALERT_TOPIC_ARN, INSTANCE_ARN, OKTA_API_SECRET_ARN, OKTA_ORG_URL, POLICY_FILE, STATE_TABLE,
};
use idc_guard::policy_file::{Diagnostic, Level};
use idc_guard::records::{self, Review};
use idc_guard::signin::settings::SigninSettings;

use crate::Format;

#[derive(Args, Clone)]
pub struct AccessArgs {
    /// The access policy.
    #[arg(long, env = POLICY_FILE, default_value = "policy/access-policy.toml")]
    pub policy: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Local state file (the groups idc-guard manages, review records). Ignored when
    /// IDC_GUARD_STATE_TABLE names the functions' DynamoDB table, which is then shared.
    #[arg(long, default_value = ".idc-guard/state.db")]
    pub state: PathBuf,
    /// Treat targets the organisation lacks (OU or account ids, tag values) as errors.
    #[arg(long)]
    pub strict: bool,
}

fn print_diagnostics(file: &Path, diagnostics: &[Diagnostic], format: Format) {
    for d in diagnostics {
        match format {
            Format::Table => eprintln!("{}:{d}", file.display()),
            Format::Json => println!(
                "{}",
                serde_json::json!({"file": file.display().to_string(), "line": d.line, "column": d.column,
                    "severity": d.severity, "message": d.message})
            ),
        }
    }
}

pub fn check(file: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (policy, mut diagnostics) = Policy::check(&text, file.parent());
    // The [signin] table is the sign-in checks'; a policy check covers the whole file.
    let (signin, signin_diagnostics) = SigninSettings::check(&text);
    diagnostics.extend(signin_diagnostics);
    // So is [health], the integration-health checks'. (A file that is not TOML at all is
    // already reported above; the [health] errors start with "[health]".)
    let health_error = idc_guard::health::settings::HealthSettings::from_policy_text(&text)
        .err()
        .filter(|m| m.starts_with("[health]"));
    if let Some(message) = &health_error {
        let line = text.lines().position(|l| l.trim() == "[health]").map(|i| i + 1).unwrap_or(0);
        let column = usize::from(line > 0);
        diagnostics.push(Diagnostic {
            severity: Level::Error,
            line,
            column,
            message: message.clone(),
        });
    }
    diagnostics.sort_by_key(|d| (d.line, d.column));
    diagnostics.dedup();
    print_diagnostics(file, &diagnostics, format);
    let errors = diagnostics.iter().filter(|d| d.severity == Level::Error).count();
    match policy.filter(|_| signin.is_some() && health_error.is_none()) {
        Some(p) => {
            if format == Format::Table {
                println!(
                    "{}: ok ({} permission sets, {} rules, {} warnings)",
                    file.display(),
                    p.permission_sets.len(),
                    p.rules.len(),
                    diagnostics.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        None => bail!("{}: {errors} error(s)", file.display()),
    }
}

pub(crate) type Sync = AccessSyncHandler<
    SdkIdentityCenter,
    SdkOrganizations,
    AnyStore,
    FanOut<LogAlertSink, SnsAlertSink>,
    LazyOktaClient<SecretsManagerStore>,
>;

pub(crate) async fn setup(args: &AccessArgs, max_deletions: Option<usize>) -> anyhow::Result<Sync> {
    let (mut policy, warnings) = Policy::load(&args.policy).map_err(|e| {
        print_diagnostics(&args.policy, &e.diagnostics, Format::Table);
        anyhow::anyhow!("{}: the policy has errors", args.policy.display())
    })?;
    print_diagnostics(&args.policy, &warnings, Format::Table);
    if let Some(m) = max_deletions {
        policy.settings.max_deletions = m;
    }
    setup_with(args, policy).await
}

/// [`setup`] for reading the estate: without a policy file (an estate not yet adopted), no
/// assignment is explained by a rule (sets read as outside the policy), and the CLI says so.
pub(crate) async fn setup_for_reading(args: &AccessArgs) -> anyhow::Result<Sync> {
    if args.policy.exists() {
        return setup(args, None).await;
    }
    eprintln!(
        "note: no policy at {}: no assignment is explained by a rule (`idc-guard policy import` writes one)",
        args.policy.display()
    );
    let (empty, _) = Policy::check("", None);
    setup_with(args, empty.ok_or_else(|| anyhow::anyhow!("an empty policy does not check"))?).await
}

async fn setup_with(args: &AccessArgs, policy: Policy) -> anyhow::Result<Sync> {
    let sdk = load_sdk_config(Duration::from_secs(30)).await;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let store = match env(STATE_TABLE) {
        Some(table) => AnyStore::Dynamo(DynamoStateStore::new(&sdk, table)),
        None => AnyStore::Local(SqliteStateStore::open(&args.state)?),
    };
    let sns = env(ALERT_TOPIC_ARN).map(|arn| SnsAlertSink::new(&sdk, arn));
    // Okta (grants): the functions' org and credential secret, when set.
    let okta = match (env(OKTA_ORG_URL), env(OKTA_API_SECRET_ARN)) {
        (Some(url), Some(secret)) => {
            Some(LazyOktaClient::new(SecretsManagerStore::new(&sdk), secret, &url)?)
        }
        _ => None,
    };
    Ok(AccessSyncHandler {
        system_log: okta,
        idc: SdkIdentityCenter::new(&sdk),
        org: SdkOrganizations::new(&sdk),
        store,
        sink: FanOut { primary: LogAlertSink, secondary: sns },
        policy,
        instance_arn: env(INSTANCE_ARN),
        limits: Limits::default(),
        requeue: None,
        account_access: Some(std::sync::Arc::new(SdkAccountAccess::new(&sdk))),
    })
}

/// Asks on the terminal; only `yes` is accepted. No terminal: an error that names `--yes`.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to confirm on; pass --yes to go ahead without asking");
    }
    print!("{question} Only 'yes' is accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

fn describe(c: &Change) -> String {
    format!("{:<32} {:<24} {} ({})", c.group, c.permission_set, c.account, c.account_id)
}

fn print_report(report: &Report, format: Format) {
    if format == Format::Json {
        println!("{}", serde_json::to_string(report).unwrap_or_default());
        return;
    }
    if !report.permission_set_changes.is_empty() {
        println!("Permission sets:");
        for c in &report.permission_set_changes {
            println!("  ~ {c}");
        }
    }
    if !report.creates.is_empty() || !report.deletes.is_empty() {
        println!("Assignments:");
        for c in &report.creates {
            println!("  + {}", describe(c));
        }
        for c in &report.deletes {
            println!("  - {}", describe(c));
        }
    }
    for e in &report.read_errors {
        println!("Read error: {e}");
    }
    for h in &report.held {
        println!("Held (never deleted): {} ({})", describe(&h.change), h.reason);
    }
    if report.applied {
        print_outcome(report);
    } else if report.has_changes() {
        println!(
            "Plan: {} to create, {} to delete, {} permission set changes ({} API calls).",
            report.creates.len(),
            report.deletes.len(),
            report.permission_set_changes.len(),
            report.api_calls
        );
    } else {
        println!(
            "No changes: IAM Identity Center matches the policy ({} API calls).",
            report.api_calls
        );
    }
    if !report.applied
        && let Some(reason) = &report.deletions_blocked
    {
        println!("Deletions blocked: {reason}");
    }
}

/// What an applied run did: counts, failures, and why deletions were held back.
fn print_outcome(report: &Report) {
    println!(
        "Applied: {} created, {} deleted, {} failed ({} API calls, {} retries).",
        report.created,
        report.deleted,
        report.failures.len(),
        report.api_calls,
        report.retries
    );
    for f in &report.failures {
        println!("Failed to {}: {} ({})", f.action, describe(&f.change), f.reason);
    }
    if let Some(reason) = &report.deletions_blocked {
        println!("Deletions blocked: {reason}");
    }
}

pub async fn plan(args: &AccessArgs) -> anyhow::Result<ExitCode> {
    let sync = setup(args, None).await?;
    let report = sync.run(Scope::All, false, None).await?;
    print_report(&report, args.format);
    policy_errors(&report, args.strict)?;
    Ok(if report.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// Changes to IAM Identity Center (apply, revoke, grant) are made from the deployment's state
/// table only: a laptop's own state has none of the deployment's revocation records or grants,
/// so a change made from it would strip a session deny, be undone by the next scheduled
/// reconcile, or never expire.
fn deployment_store(sync: &Sync, what: &str) -> anyhow::Result<()> {
    if matches!(sync.store, AnyStore::Dynamo(_)) {
        return Ok(());
    }
    bail!(
        "not changing IAM Identity Center from local state: {what} must use the deployment's state table. Set {STATE_TABLE} to the table (the stack output StateTableName; your role needs the template's CliStateAccessPolicy){}",
        if what == "apply" {
            ", or pass --standalone when no idc-guard deployment exists"
        } else {
            ""
        }
    )
}

/// `apply --standalone`: only when no session deny of a deployment is in IAM Identity Center.
async fn no_deployment_denies(sync: &Sync) -> anyhow::Result<()> {
    let instance = sync.idc.instance(sync.instance_arn.as_deref()).await?;
    for set in sync.idc.list_permission_sets(&instance.instance_arn).await? {
        let inline =
            sync.idc.permission_set_policies(&instance.instance_arn, &set.arn, false).await?.inline;
        if !idc_guard::access::revoke_policy::revoked_ids(inline.as_deref()).is_empty() {
            bail!(
                "not applying --standalone: permission set {} holds idc-guard session denies, so a deployment exists; set {STATE_TABLE} to its state table",
                set.name
            );
        }
    }
    Ok(())
}

pub async fn apply(
    args: &AccessArgs,
    yes: bool,
    max_deletions: Option<usize>,
    standalone: bool,
) -> anyhow::Result<ExitCode> {
    let sync = setup(args, max_deletions).await?;
    if standalone && matches!(sync.store, AnyStore::Local(_)) {
        no_deployment_denies(&sync).await?;
    } else {
        deployment_store(&sync, "apply")?;
    }
    let planned = sync.prepare(Scope::All).await?;
    print_report(&planned.report, Format::Table);
    policy_errors(&planned.report, args.strict)?;
    if !planned.report.has_changes() {
        return Ok(ExitCode::SUCCESS);
    }
    if !yes && !confirm("Apply these changes?")? {
        println!("Nothing changed.");
        return Ok(ExitCode::SUCCESS);
    }
    let progress = |done: usize, total: usize| {
        if total >= 20 && (done.is_multiple_of(10) || done == total) {
            eprintln!("  {done}/{total} assignment operations finished");
        }
    };
    let report = match sync.apply_confirmed(&planned, Some(&progress)).await? {
        Confirmed::Applied(report) => report,
        Confirmed::Changed(new_plan) => {
            println!(
                "IAM Identity Center or the organisation changed after the plan was shown: nothing was applied. The new plan:"
            );
            print_report(&new_plan, Format::Table);
            bail!("not applying a plan nobody confirmed; run apply again to review the new plan");
        }
    };
    if args.format == Format::Json {
        print_report(&report, Format::Json);
    } else {
        print_outcome(&report);
    }
    Ok(if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// A policy that cannot be applied as written is an error of `plan` and `apply`; targets the
/// organisation lacks are warnings, or errors with `--strict`.
fn policy_errors(report: &Report, strict: bool) -> anyhow::Result<()> {
    let level = if strict { "error" } else { "warning" };
    for u in &report.unknown_targets {
        eprintln!("{level}: {u}");
    }
    if strict && !report.unknown_targets.is_empty() {
        bail!(
            "{} target(s) the organisation does not have (--strict)",
            report.unknown_targets.len()
        );
    }
    if report.policy_errors.is_empty() {
        return Ok(());
    }
    for e in &report.policy_errors {
        eprintln!("error: {e}");
    }
    bail!("the policy cannot be applied as written ({} error(s))", report.policy_errors.len())
}

pub async fn review(args: &AccessArgs, mark: &[String]) -> anyhow::Result<ExitCode> {
    let sync = setup(args, None).await?;
    let report = sync.run(Scope::All, false, None).await?;
    let now = Utc::now();
    for name in mark {
        let Some((id, _)) = report.managed_groups.iter().find(|(_, g)| &g.display_name == name)
        else {
            bail!("{name:?} is not a group the policy manages");
        };
        let review = Review { group_id: id.clone(), at: now, name: name.clone() };
        records::save(&sync.store, &review).await?;
        eprintln!("recorded: {name} reviewed {}", now.format("%Y-%m-%d"));
    }
    let instance = sync.idc.instance(sync.instance_arn.as_deref()).await?;
    let mut holdings: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for c in &report.current {
        holdings
            .entry(c.group_id.as_str())
            .or_default()
            .push(format!("{}@{}", c.permission_set, c.account));
    }
    let mut due_count = 0;
    let mut rows = Vec::new();
    for rule in &sync.policy.rules {
        let tier = rule.tier.clone().unwrap_or_else(|| "-".into());
        for (id, group) in
            report.managed_groups.iter().filter(|(_, g)| g.rules.contains(&rule.name))
        {
            let members = sync.idc.list_group_member_names(&instance.identity_store_id, id).await?;
            let last: Option<DateTime<Utc>> =
                records::load::<Review, _>(&sync.store, &Review::key_of(id)).await?.map(|r| r.at);
            let (due, status) = match (rule.review_every_days, last) {
                (None, _) => (false, "no review interval".to_string()),
                (Some(_), None) => (true, "due: never reviewed".to_string()),
                (Some(days), Some(at)) => {
                    let next = at + chrono::Duration::days(i64::from(days));
                    if next <= now {
                        (true, format!("due since {}", next.format("%Y-%m-%d")))
                    } else {
                        (false, format!("next {}", next.format("%Y-%m-%d")))
                    }
                }
            };
            due_count += usize::from(due);
            rows.push(serde_json::json!({
                "tier": tier, "rule": rule.name, "group": group.display_name, "group_id": id,
                "review_every_days": rule.review_every_days, "last_review": last, "due": due, "status": status,
                "members": members, "assignments": holdings.get(id.as_str()).cloned().unwrap_or_default(),
            }));
        }
    }
    match args.format {
        Format::Json => rows.iter().for_each(|r| println!("{r}")),
        Format::Table => {
            let mut current_tier = String::new();
            for r in &rows {
                let tier = r["tier"].as_str().unwrap_or("-");
                if tier != current_tier {
                    println!("tier {tier} (review every {} days)", r["review_every_days"]);
                    current_tier = tier.to_owned();
                }
                println!(
                    "  {}  [{}]",
                    r["group"].as_str().unwrap_or(""),
                    r["status"].as_str().unwrap_or("")
                );
                println!("    members:     {}", join(&r["members"]));
                println!("    assignments: {}", join(&r["assignments"]));
            }
            println!("{} groups, {} reviews due.", rows.len(), due_count);
        }
    }
    Ok(if due_count > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

fn join(v: &serde_json::Value) -> String {
    let items: Vec<&str> =
        v.as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
    if items.is_empty() { "-".into() } else { items.join(", ") }
}

/// `idc-guard revoke --user LOGIN`: deny the user's live AWS sessions now (incident response), as
/// access-sync does when Okta deactivates them; `--release` lifts a revocation; `--dry-run` shows
/// what would be covered.
pub async fn revoke(
    args: &AccessArgs,
    user: &str,
    dry_run: bool,
    release: bool,
) -> anyhow::Result<ExitCode> {
    let sync = setup(args, None).await?;
    if !dry_run {
        deployment_store(&sync, if release { "revoke --release" } else { "revoke" })?;
    }
    if release {
        let instance = sync.idc.instance(sync.instance_arn.as_deref()).await?;
        let Some(user_id) = sync.idc.find_user_id(&instance.identity_store_id, user).await? else {
            bail!("{user} is not a user in IAM Identity Center");
        };
        if sync.release_sessions(&user_id).await? {
            println!("released: {user}'s sessions are no longer denied");
        } else {
            println!("{user} has no revocation to release");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = sync.revoke_sessions(user, "idc-guard revoke", dry_run, Utc::now()).await?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&report)?),
        Format::Table => {
            let Some(user_id) = &report.user_id else {
                bail!("{user} is not a user in IAM Identity Center: nothing to revoke");
            };
            let verb = if report.applied { "denied" } else { "would deny" };
            println!(
                "{user} ({user_id}): {verb} live sessions in {} permission set(s)",
                report.covered.len()
            );
            for c in &report.covered {
                let accounts = if c.accounts.is_empty() {
                    "every account it is provisioned to".to_owned()
                } else {
                    c.accounts.join(", ")
                };
                let managed = if c.managed { "" } else { ", not managed by the policy" };
                println!(
                    "  {:<24} {accounts} (session {}; via {}{managed})",
                    c.name,
                    c.session_duration,
                    c.via.join(", ")
                );
            }
            for n in &report.not_covered {
                let where_ = if n.accounts.is_empty() {
                    String::new()
                } else {
                    format!(" in {}", n.accounts.join(", "))
                };
                println!("  NOT covered: {}{where_}: {}", n.what, n.reason);
            }
            for note in &report.notes {
                println!("  note: {note}");
            }
            if let Some(t) = report.release_after {
                println!(
                    "released no earlier than {} (the longest session has ended), and only once {user} holds none of these groups or assignments",
                    t.format("%Y-%m-%d %H:%M UTC")
                );
            }
            if report.applied {
                println!("  then: {}", idc_guard::access::revoke::PORTAL_SESSION_STEP);
            }
        }
    }
    if !report.not_covered.is_empty() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// What CloudTrail showed: the sign-in checks' `revoked-session-used` alerts for this user (the
/// delivery records under the signin-anomaly writer's partition).
async fn proof_of(sync: &Sync, user_id: &str) -> anyhow::Result<Vec<String>> {
    let alerts: Vec<idc_guard::records::AlertDelivery> =
        records::load_all(&sync.store, "alert#signin-anomaly").await?;
    Ok(alerts
        .into_iter()
        .filter(|a| a.detector == "revoked-session-used")
        .filter(|a| a.alert["evidence"]["user_id"] == user_id)
        .map(|a| a.alert["summary"].as_str().unwrap_or_default().to_owned())
        .collect())
}

/// `revoke --status`: the user's revocation record (the evidence), as stored.
pub async fn revocation_status(args: &AccessArgs, user: &str) -> anyhow::Result<ExitCode> {
    let sync = setup(args, None).await?;
    let instance = sync.idc.instance(sync.instance_arn.as_deref()).await?;
    let Some(user_id) = sync.idc.find_user_id(&instance.identity_store_id, user).await? else {
        bail!("{user} is not a user in IAM Identity Center");
    };
    let record: Option<idc_guard::records::RevokedSessions> =
        records::load(&sync.store, &idc_guard::records::RevokedSessions::key_of(&user_id)).await?;
    let Some(r) = record else {
        println!("{user} ({user_id}): no revocation recorded");
        return Ok(ExitCode::SUCCESS);
    };
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "user_id": user_id, "login": r.login, "reason": r.reason, "revoked_at": r.revoked_at,
                "release_after": r.release_after, "permission_sets": r.permission_sets,
                "accounts": r.accounts, "groups": r.groups, "unprovisioned": r.unprovisioned,
                "not_covered": r.not_covered, "access_ended_at": r.access_ended_at,
                "cloudtrail": proof_of(&sync, &user_id).await?,
            }))?
        ),
        Format::Table => {
            println!("{user} ({user_id}): sessions denied since {} ({})", r.revoked_at, r.reason);
            println!("  permission sets: {}", r.permission_sets.join(", "));
            println!("  accounts: {}", r.accounts.join(", "));
            for u in &r.unprovisioned {
                println!(
                    "  NOT yet provisioned: {} in {}: {}",
                    u.permission_set,
                    if u.account_id.is_empty() { "its accounts" } else { &u.account_id },
                    u.reason
                );
            }
            for n in &r.not_covered {
                println!("  NOT covered: {n}");
            }
            match r.access_ended_at {
                Some(t) => println!("  access ended (no group or assignment left) at {t}"),
                None => println!(
                    "  access not yet ended in IAM Identity Center (groups or assignments remain)"
                ),
            }
            println!("  release no earlier than {}", r.release_after);
            let proof = proof_of(&sync, &user_id).await?;
            if proof.is_empty() {
                println!(
                    "  CloudTrail: no successful call of the user after the deny took effect (revoked-session-used) so far"
                );
            }
            for p in &proof {
                println!("  CloudTrail: {p}");
            }
        }
    }
    Ok(if r.not_covered.is_empty() && r.unprovisioned.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `idc-guard policy import`: the estate's policy, written where it does not overwrite one.
pub async fn import(output: &Path, state: &Path) -> anyhow::Result<ExitCode> {
    let to_stdout = output.as_os_str() == "-";
    if !to_stdout && output.exists() {
        bail!("{} exists: not overwriting a policy (choose another --output)", output.display());
    }
    let sdk = load_sdk_config(Duration::from_secs(30)).await;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let store = match env(STATE_TABLE) {
        Some(table) => AnyStore::Dynamo(DynamoStateStore::new(&sdk, table)),
        None => AnyStore::Local(SqliteStateStore::open(state)?),
    };
    let imported = idc_guard::access::import::read_and_import(
        &SdkIdentityCenter::new(&sdk),
        &SdkOrganizations::new(&sdk),
        &store,
        env(INSTANCE_ARN).as_deref(),
        Limits::default(),
    )
    .await?;
    let mut text = String::from(
        "# Written by `idc-guard policy import` from the estate as it was; `idc-guard plan` shows no change.\n",
    );
    for n in &imported.not_imported {
        text.push_str(&format!("# not imported: {n}\n"));
    }
    text.push('\n');
    text.push_str(&imported.toml);
    if to_stdout {
        print!("{text}");
    } else {
        if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(output, &text).with_context(|| format!("writing {}", output.display()))?;
        eprintln!(
            "wrote {}: {} permission sets, {} rules",
            output.display(),
            imported.permission_sets,
            imported.rules
        );
    }
    for n in &imported.not_imported {
        eprintln!("not imported: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `review --packets`: per owner, what needs a decision (from a fresh ledger).
pub async fn review_packets(args: &AccessArgs) -> anyhow::Result<ExitCode> {
    let sync = setup(args, None).await?;
    let now = Utc::now();
    let ledger = sync.ledger(now).await?;
    let (packets, direct) = idc_guard::access::review::packets(&sync.policy.reviews, &ledger, now);
    let items: usize = packets.iter().map(|p| p.items.len()).sum();
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"packets": packets, "direct_assignments": direct, "notes": ledger.notes})
            )?
        ),
        Format::Table => {
            for p in &packets {
                if p.owners.is_empty() {
                    println!(
                        "no owner (add a [[review]] naming Okta groups that decide for these groups):"
                    );
                } else {
                    println!("for {}:", p.owners.join(", "));
                }
                for i in &p.items {
                    let last = i
                        .last_used
                        .map_or("never".to_owned(), |t| t.format("%Y-%m-%d").to_string());
                    println!(
                        "  {} in {} (last used {last}): {}",
                        i.user,
                        i.group,
                        i.reasons.join("; ")
                    );
                    println!("    gives: {}", i.access.join(", "));
                    println!(
                        "    decide: idc-guard review decide remove|keep --user {} --group {} --reason \"...\"",
                        i.user, i.group
                    );
                }
            }
            for d in &direct {
                println!(
                    "direct assignment (remove in IAM Identity Center or move to a group): {d}"
                );
            }
            for n in &ledger.notes {
                println!("note: {n}");
            }
            println!(
                "{items} membership(s) need a decision, {} direct assignment(s).",
                direct.len()
            );
        }
    }
    Ok(if items + direct.len() > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// `review --history`: every decision, as the grants function recorded it.
pub async fn review_history(args: &AccessArgs) -> anyhow::Result<ExitCode> {
    let sync = setup(args, None).await?;
    let all: Vec<idc_guard::records::ReviewDecision> =
        records::load_all(&sync.store, idc_guard::records::ReviewDecision::PK).await?;
    match args.format {
        Format::Json => {
            for d in &all {
                println!("{}", d.view());
            }
        }
        Format::Table => {
            for d in &all {
                println!(
                    "{}  {:<24} {:<6} {:<28} {:<24} {} ({})",
                    d.at.format("%Y-%m-%d %H:%M"),
                    d.reviewer_login,
                    d.decision,
                    d.login,
                    d.group,
                    d.outcome,
                    d.reason
                );
            }
            println!("{} decision(s).", all.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
