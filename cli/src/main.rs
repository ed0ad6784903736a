//! `idc-guard`: the same logic as the Lambda functions, on a laptop.
//!
//! Exit codes: 0 ok, 1 error, 2 findings or changes present (like `terraform plan
//! -detailed-exitcode`).

mod access;
mod doctor;
mod grants;
mod hook;
mod ledger;
mod scim;
mod signin;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "idc-guard",
    version,
    about = "Keep an Okta → AWS IAM Identity Center integration correct and safe"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Access policy tools.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The access ledger: who can reach an account, what a person can reach, what goes unused.
    #[command(subcommand)]
    Access(AccessCommand),
    /// Show the changes that would bring IAM Identity Center in line with the policy (exit 2 when
    /// there are any).
    Plan(access::AccessArgs),
    /// Make those changes (asks first unless --yes).
    Apply {
        #[command(flatten)]
        args: access::AccessArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Allow more deletions than the policy's max_deletions for this run.
        #[arg(long)]
        max_deletions: Option<usize>,
        /// There is no deployment: the local state file is the only state. Refused when IAM
        /// Identity Center holds a session deny (a deployment's revocation records are its truth).
        #[arg(long)]
        standalone: bool,
    },
    /// Access review: per tier, each managed group, its members, its assignments, and whether
    /// its review is due.
    #[command(args_conflicts_with_subcommands = true)]
    Review {
        #[command(flatten)]
        args: access::AccessArgs,
        /// Record that these groups (display names) were reviewed today.
        #[arg(long, value_name = "GROUP")]
        mark_reviewed: Vec<String>,
        /// Per owner (the policy's [[review]]), the memberships that need a decision: access
        /// unused for the owner's window, admin tier, hand-made (exit 2 when any).
        #[arg(long)]
        packets: bool,
        /// Every review decision made (who decided, when, what changed in Okta).
        #[arg(long, conflicts_with = "packets")]
        history: bool,
        #[command(subcommand)]
        decide: Option<ReviewCommand>,
    },
    /// Deny a user's live AWS sessions now, in every permission set they could use (incident
    /// response; what access-sync does when Okta deactivates someone).
    Revoke {
        #[command(flatten)]
        args: access::AccessArgs,
        /// The user name in IAM Identity Center (the Okta login).
        #[arg(long)]
        user: String,
        /// Show what would be covered; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Lift the user's revocation instead.
        #[arg(long, conflicts_with = "dry_run")]
        release: bool,
        /// Show the user's revocation: what is denied where, since when, what is not covered,
        /// what CloudTrail showed (the evidence record); change nothing.
        #[arg(long, conflicts_with_all = ["dry_run", "release"])]
        status: bool,
    },
    /// Sign in with Okta (device authorization) for the grants API.
    Login(grants::ClientArgs),
    /// Ask for a time-boxed membership in a grantable Okta group, for yourself or --user
    /// (approved by others when the policy says so; --break-glass where it allows).
    Grant {
        #[command(flatten)]
        args: grants::ClientArgs,
        /// The Okta login of the person to be granted (default: you).
        #[arg(long)]
        user: Option<String>,
        /// The grantable group (the policy's [[grantable]]).
        #[arg(long)]
        group: String,
        /// How long: 30m, 2h, ... (at least one minute).
        #[arg(long = "for")]
        duration: String,
        /// Why: an incident or ticket id.
        #[arg(long)]
        reason: String,
        /// Self-approved, alerted to every approver, reviewed afterwards (where the group allows).
        #[arg(long)]
        break_glass: bool,
    },
    /// Approve a pending grant (shown first), or review a break-glass grant.
    Approve {
        #[command(flatten)]
        args: grants::ClientArgs,
        /// The grant's id.
        id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Deny a pending grant, or withdraw your own request.
    Deny {
        #[command(flatten)]
        args: grants::ClientArgs,
        /// The grant's id.
        id: String,
    },
    /// Every grant: pending, active, ended and denied, with who asked, who approved, why, when
    /// and (once ended) what was done with it.
    Grants(grants::ClientArgs),
    /// Check CloudTrail sign-in activity for anomalies, correlated with Okta (exit 2 on findings).
    Scan(signin::ScanArgs),
    /// One person's Okta and CloudTrail events around a time, and where their sign-in failed.
    Diagnose(signin::DiagnoseArgs),
    /// Okta event hook tools.
    #[command(subcommand)]
    Hook(HookCommand),
    /// Integration health: SAML trust, MFA posture, SCIM sync (and --catch-up, the Okta System
    /// Log): pass / warn / fail with evidence and the fix (exit 2 when any does not pass).
    Doctor(doctor::DoctorArgs),
    /// The IAM Identity Center SCIM token: status, stage a new one, confirm a manual step.
    #[command(name = "scim-token", subcommand)]
    ScimToken(scim::ScimCommand),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy file: errors and warnings with line and column (exit 1 on errors).
    Check {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Write the policy of the estate as it is (permission sets, rules by account, OU or tag)
    /// so that the first `plan` changes nothing; what does not fit is listed.
    Import {
        /// Where to write it (refused if it exists; - for stdout).
        #[arg(long, default_value = "policy/access-policy.toml")]
        output: PathBuf,
        /// Local state file (the ledger reads grants from it; the written policy does not use them).
        #[arg(long, default_value = ".idc-guard/state.db")]
        state: PathBuf,
    },
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// Decide about one membership: remove takes the Okta membership (through the grants API,
    /// as the person signed in with `idc-guard login`); keep records why it stays.
    Decide {
        #[command(flatten)]
        client: grants::ClientArgs,
        /// remove or keep.
        #[arg(value_parser = ["remove", "keep"])]
        decision: String,
        /// The person's Okta login.
        #[arg(long)]
        user: String,
        /// The Okta group.
        #[arg(long)]
        group: String,
        /// Why (kept with the decision).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum AccessCommand {
    /// Everyone who can reach an account: via group, direct assignment or entitlement, with why,
    /// tier, session duration and last use.
    Who {
        #[command(flatten)]
        args: ledger::LedgerArgs,
        /// The account id.
        #[arg(long)]
        account: String,
        /// Only this permission set.
        #[arg(long)]
        permission_set: Option<String>,
    },
    /// Everything one person can reach (user name or Identity Store id).
    What {
        #[command(flatten)]
        args: ledger::LedgerArgs,
        #[arg(long)]
        user: String,
    },
    /// Access not used for N days, never-used included (exit 2 when there is any).
    Unused {
        #[command(flatten)]
        args: ledger::LedgerArgs,
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
    /// Read the estate into the ledger snapshot now.
    Refresh(ledger::LedgerArgs),
    /// Last uses from CloudTrail's LookupEvents history (portal events, up to 90 days), into
    /// the state; exported trails: `idc-guard scan --state`.
    Backfill {
        #[command(flatten)]
        args: ledger::LedgerArgs,
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
}

#[derive(Subcommand)]
enum HookCommand {
    /// Check Okta event-hook deliveries (files, or - for stdin) exactly as the endpoint would, and
    /// show what it would put on the queue: order, message group, deduplication id, event type.
    Inspect {
        /// Delivery files (Okta event-hook envelopes); - reads stdin.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

fn main() -> ExitCode {
    idc_guard::telemetry::init_cli();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hook(HookCommand::Inspect { files, format }) => hook::inspect(&files, format),
        Command::Policy(PolicyCommand::Check { file, format }) => access::check(&file, format),
        Command::Scan(args) => {
            signin::check_state_path(args.state.as_deref()).and_then(|()| signin::scan(args))
        }
        Command::Diagnose(args) => signin::diagnose_user(args),
        command => runtime().and_then(|rt| {
            rt.block_on(async move {
                match command {
                    Command::Plan(args) => access::plan(&args).await,
                    Command::Apply { args, yes, max_deletions, standalone } => {
                        access::apply(&args, yes, max_deletions, standalone).await
                    }
                    Command::Review { args, mark_reviewed, packets, history, decide } => {
                        match decide {
                            Some(ReviewCommand::Decide {
                                client,
                                decision,
                                user,
                                group,
                                reason,
                            }) => grants::decide(&client, &decision, &user, &group, &reason).await,
                            None if history => access::review_history(&args).await,
                            None if packets => access::review_packets(&args).await,
                            None => access::review(&args, &mark_reviewed).await,
                        }
                    }
                    Command::ScimToken(c) => scim::run(c).await,
                    Command::Policy(PolicyCommand::Import { output, state }) => {
                        access::import(&output, &state).await
                    }
                    Command::Access(c) => match c {
                        AccessCommand::Who { args, account, permission_set } => {
                            ledger::who(&args, &account, permission_set.as_deref()).await
                        }
                        AccessCommand::What { args, user } => ledger::what(&args, &user).await,
                        AccessCommand::Unused { args, days } => ledger::unused(&args, days).await,
                        AccessCommand::Refresh(args) => ledger::refresh(&args).await,
                        AccessCommand::Backfill { args, days } => {
                            ledger::backfill(&args, days).await
                        }
                    },
                    Command::Doctor(args) => doctor::run(args).await,
                    Command::Login(args) => grants::login(&args).await,
                    Command::Grant { args, user, group, duration, reason, break_glass } => {
                        grants::grant(
                            &args,
                            user.as_deref(),
                            &group,
                            &duration,
                            &reason,
                            break_glass,
                        )
                        .await
                    }
                    Command::Approve { args, id, yes } => grants::approve(&args, &id, yes).await,
                    Command::Deny { args, id } => grants::deny(&args, &id).await,
                    Command::Grants(args) => grants::grants(&args).await,
                    Command::Revoke { args, user, dry_run, release, status } => {
                        if status {
                            access::revocation_status(&args, &user).await
                        } else {
                            access::revoke(&args, &user, dry_run, release).await
                        }
                    }
                    Command::Hook(_)
                    | Command::Policy(PolicyCommand::Check { .. })
                    | Command::Scan(_)
                    | Command::Diagnose(_) => unreachable!("handled above"),
                }
            })
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("idc-guard: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
