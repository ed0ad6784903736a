//! `idc-guard scim-token status | stage | confirm`. The token is read from stdin only and never
//! printed.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, Subcommand};
use idc_guard::adapters::AnyStore;
use idc_guard::adapters::HttpScimProbe;
use idc_guard::adapters::{DynamoStateStore, SqliteStateStore};
use idc_guard::adapters::{SecretsManagerStore, load_sdk_config};
use idc_guard::alert::LogAlertSink;
use idc_guard::config::{SCIM_TOKEN_SECRET_ARN, STATE_TABLE};
use idc_guard::records::{self, ConfirmedByHand};
use idc_guard::scim::health::HealthCheck;
use idc_guard::scim::ports::{Probe, ScimProbe};
use idc_guard::scim::{ScimSecret, TOKEN_LIFETIME_DAYS, validate_scim_endpoint};
use idc_guard::secret::{AWSCURRENT, AWSPENDING, SecretAdmin, SecretStore, SecretVersions};
use idc_guard::secret::{ExposeSecret, SecretString};

use crate::Format;

#[derive(Args, Clone)]
pub struct SecretArgs {
    /// The SCIM token secret.
    #[arg(long = "secret", env = SCIM_TOKEN_SECRET_ARN)]
    pub secret_arn: String,
}

#[derive(Subcommand, Clone)]
pub enum ScimCommand {
    /// Age, expiry, last probe and rotation state of the SCIM token (never the token).
    Status {
        #[command(flatten)]
        secret: SecretArgs,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Do not call the SCIM endpoint.
        #[arg(long)]
        no_probe: bool,
    },
    /// Stage a token generated in the IAM Identity Center console. Reads it from stdin, never
    /// from the command line, stores it as AWSPENDING and starts the rotation.
    Stage {
        #[command(flatten)]
        secret: SecretArgs,
        /// SCIM endpoint of the token (default: the current one's).
        #[arg(long)]
        endpoint: Option<String>,
        /// Store the token as AWSPENDING but do not start the rotation.
        #[arg(long)]
        no_rotate: bool,
        /// Refused: a token on the command line lands in shell history and process lists.
        #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
        refused: Vec<String>,
    },
    /// Confirm that the pending token was entered in Okta by hand, so rotation can finish.
    Confirm {
        #[command(flatten)]
        secret: SecretArgs,
        /// Record only; do not re-drive the rotation.
        #[arg(long)]
        no_rotate: bool,
    },
}

pub async fn run(command: ScimCommand) -> anyhow::Result<ExitCode> {
    if let ScimCommand::Stage { refused, .. } = &command
        && !refused.is_empty()
    {
        bail!(
            "never pass the token on the command line (shell history, process lists): pipe it on stdin, e.g. `pbpaste | idc-guard scim-token stage`"
        );
    }
    let sdk = load_sdk_config(Duration::from_secs(30)).await;
    let secrets = SecretsManagerStore::new(&sdk);
    let table = std::env::var(STATE_TABLE).ok().filter(|t| !t.is_empty());
    match command {
        ScimCommand::Status { secret, format, no_probe } => {
            let store = match &table {
                Some(t) => AnyStore::Dynamo(DynamoStateStore::new(&sdk, t)),
                None => AnyStore::Local(SqliteStateStore::open(".idc-guard/state.db")?),
            };
            let probe = HttpScimProbe::default();
            let check = HealthCheck {
                secrets: &secrets,
                probe: &probe,
                sink: &LogAlertSink,
                store: &store,
                scim_secret_id: &secret.secret_arn,
            };
            let (status, _) = check.status(Utc::now(), !no_probe).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string(&status)?),
                Format::Table => {
                    let date = |d: Option<chrono::DateTime<Utc>>| {
                        d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "-".into())
                    };
                    println!(
                        "current version   {}",
                        status.current_version.as_deref().unwrap_or("-")
                    );
                    println!(
                        "pending version   {}",
                        status.pending_version.as_deref().unwrap_or("-")
                    );
                    println!(
                        "SCIM endpoint     {}",
                        status.scim_endpoint.as_deref().unwrap_or("-")
                    );
                    println!(
                        "issued            {} ({} days ago)",
                        date(status.issued_at),
                        status.age_days.map(|d| d.to_string()).unwrap_or_else(|| "?".into())
                    );
                    println!("rotation due      {} (every 90 days)", date(status.rotation_due));
                    println!("expires           {}", date(status.expires_at));
                    println!("rotation enabled  {}", status.rotation_enabled);
                    println!(
                        "probe             {}",
                        status.probe.as_deref().unwrap_or("not probed")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ScimCommand::Stage { secret, endpoint, no_rotate, .. } => {
            let token = read_token()?;
            let endpoint = match endpoint {
                Some(e) => e,
                None => {
                    let current = secrets
                        .secret_string(&secret.secret_arn, AWSCURRENT)
                        .await?
                        .context("the secret has no current value: pass --endpoint")?;
                    ScimSecret::parse(&current)
                        .map_err(anyhow::Error::msg)
                        .context("pass --endpoint")?
                        .scim_endpoint
                }
            };
            validate_scim_endpoint(&endpoint).map_err(anyhow::Error::msg)?;
            // Refuse a token the endpoint rejects before it is staged (and handed to Okta).
            match HttpScimProbe::default().probe(&endpoint, &token).await {
                Probe::Valid => eprintln!("the SCIM endpoint accepts the token"),
                Probe::Rejected(status) => bail!(
                    "the SCIM endpoint rejected this token ({status}): nothing staged. Generate a new token in the IAM Identity Center console"
                ),
                Probe::Inconclusive(why) => bail!(
                    "the token could not be tested against the SCIM endpoint ({why}): nothing staged; try again"
                ),
            }
            let now = Utc::now();
            let value = ScimSecret {
                token: token.expose_secret().to_owned(),
                scim_endpoint: endpoint,
                issued_at: Some(now),
                expires_at: Some(now + chrono::Duration::days(TOKEN_LIFETIME_DAYS)),
            };
            let version = uuid::Uuid::new_v4().to_string();
            secrets.put_pending(&secret.secret_arn, &version, &value.to_secret()).await?;
            println!("staged the new SCIM token as AWSPENDING (version {version})");
            if no_rotate {
                println!(
                    "rotation not started (--no-rotate): run `aws secretsmanager rotate-secret --secret-id … --client-request-token {version}`"
                );
            } else {
                secrets.start_rotation(&secret.secret_arn, &version).await?;
                println!(
                    "rotation started: Okta is updated, the token is tested against the SCIM endpoint, then promoted"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ScimCommand::Confirm { secret, no_rotate } => {
            let Some(table) = table else {
                bail!(
                    "{STATE_TABLE} must name the functions' state table: the rotation function reads the confirmation there"
                );
            };
            let store = DynamoStateStore::new(&sdk, table);
            let d = secrets.describe(&secret.secret_arn).await?;
            let current = d.version_with(AWSCURRENT);
            let pending = d
                .version_with(AWSPENDING)
                .filter(|v| Some(*v) != current)
                .context("no rotation is waiting: the secret has no pending version")?
                .to_owned();
            let confirmed =
                ConfirmedByHand { version: pending.clone(), at: Utc::now(), by: whoami() };
            records::save(&store, &confirmed).await?;
            println!("confirmed: version {pending} was entered in Okta by hand");
            if !no_rotate {
                secrets.start_rotation(&secret.secret_arn, &pending).await?;
                println!("rotation re-started for version {pending}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

fn read_token() -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!(
            "Paste the SCIM token generated in the IAM Identity Center console, then press Enter: "
        );
        std::io::stderr().flush()?;
    }
    let mut text = String::new();
    stdin.lock().read_line(&mut text).context("reading the token from stdin")?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        bail!("no token on stdin");
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("the token on stdin has spaces or control characters: paste only the token");
    }
    Ok(SecretString::from(token))
}
