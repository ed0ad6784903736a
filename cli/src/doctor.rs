//! `idc-guard doctor`: the integration-health checks, now, for a person. Looks and never
//! touches: no alert, no queueing, and the deployed function's System Log cursor stays where it is.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use idc_guard::adapters::okta::{LazyOktaClient, OktaClient};
use idc_guard::adapters::{
    AnyStore, DynamoStateStore, SdkIdentityCenter, SecretsManagerStore, SqliteStateStore, SqsQueue,
    load_sdk_config,
};
use idc_guard::alert::LogAlertSink;
use idc_guard::config::{
    INSTANCE_ARN, OKTA_API_SECRET_ARN, OKTA_ORG_URL, POLICY_FILE, STATE_TABLE,
};
use idc_guard::health::ports::OktaReader;
use idc_guard::health::settings::HealthSettings;
use idc_guard::health::{Check, Doctor, Status};
use idc_guard::secret::SecretString;

use crate::Format;

/// An SSWS token or service-app credential given in the environment (never on the command line).
const OKTA_API_TOKEN: &str = "IDC_GUARD_OKTA_API_TOKEN";

#[derive(Args)]
pub struct DoctorArgs {
    /// The policy file (its [health] table: the AWS app, the IdC console's ACS URL and issuer).
    #[arg(long, env = POLICY_FILE, default_value = "policy/access-policy.toml")]
    pub policy: PathBuf,
    /// The Okta org.
    #[arg(long, env = OKTA_ORG_URL)]
    pub okta_org_url: String,
    /// The secret holding the Okta API credential (else IDC_GUARD_OKTA_API_TOKEN holds it).
    #[arg(long, env = OKTA_API_SECRET_ARN)]
    pub okta_api_secret: Option<String>,
    /// Local state (the managed groups). Ignored when IDC_GUARD_STATE_TABLE names the
    /// functions' table.
    #[arg(long, default_value = ".idc-guard/state.db")]
    pub state: PathBuf,
    /// Also read the Okta System Log from the function's cursor (report only).
    #[arg(long)]
    pub catch_up: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.policy)
        .with_context(|| format!("reading {}", args.policy.display()))?;
    let settings = HealthSettings::from_policy_text(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.policy.display()))?;
    // What the sign-in checks can tell apart: a city database beside the policy, or countries.
    match idc_guard::geo::Geo::for_policy(&args.policy, None) {
        Ok(geo) if geo.city_level() => {
            eprintln!("sign-in travel: measured between cities (city database beside the policy)")
        }
        Ok(_) => eprintln!(
            "sign-in travel: measured between countries only (no city database beside the policy: scripts/geo/fetch-city-db.sh)"
        ),
        Err(e) => {
            eprintln!("sign-in travel: the city database beside the policy cannot be read: {e}")
        }
    }
    if idc_guard::geo::Geo::for_policy(&args.policy, None).is_ok_and(|g| g.owner_level()) {
        eprintln!("sign-in networks: compared by owner (ASN data beside the policy)");
    } else {
        eprintln!(
            "sign-in networks: compared by /24 and /48 (no ASN data beside the policy: scripts/geo/fetch-asn-db.sh)"
        );
    }
    let sdk = load_sdk_config(Duration::from_secs(30)).await;
    let token = std::env::var(OKTA_API_TOKEN).ok().filter(|t| !t.trim().is_empty());
    match (token, &args.okta_api_secret) {
        (Some(token), _) => {
            let okta = OktaClient::new(&args.okta_org_url, &SecretString::from(token))?;
            checks(&okta, &sdk, &settings, &args).await
        }
        (None, Some(secret)) => {
            let okta =
                LazyOktaClient::new(SecretsManagerStore::new(&sdk), secret, &args.okta_org_url)?;
            checks(&okta, &sdk, &settings, &args).await
        }
        (None, None) => bail!(
            "no Okta credential: set {OKTA_API_SECRET_ARN} (or --okta-api-secret) to its secret, or {OKTA_API_TOKEN} to the credential itself"
        ),
    }
}

async fn checks<Okta: OktaReader>(
    okta: &Okta,
    sdk: &aws_config::SdkConfig,
    settings: &HealthSettings,
    args: &DoctorArgs,
) -> anyhow::Result<ExitCode> {
    let store = match std::env::var(STATE_TABLE).ok().filter(|t| !t.is_empty()) {
        Some(t) => AnyStore::Dynamo(DynamoStateStore::new(sdk, t)),
        None => AnyStore::Local(SqliteStateStore::open(&args.state)?),
    };
    let idc = SdkIdentityCenter::new(sdk);
    let instance_arn = std::env::var(INSTANCE_ARN).ok().filter(|a| !a.is_empty());
    let doctor = Doctor {
        okta,
        idc: &idc,
        store: &store,
        sink: &LogAlertSink,
        queue: None::<&SqsQueue>,
        settings,
        instance_arn: instance_arn.as_deref(),
        report_only: true,
    };
    let now = chrono::Utc::now();
    let mut checks = doctor.posture(now).await;
    if args.catch_up {
        checks.push(doctor.catch_up(now).await);
    }
    print(&checks, args.format);
    Ok(ExitCode::from(exit_code(&checks)))
}

/// 0 every check passed; 1 a check could not be checked (a credential, the network, Okta or AWS
/// failed: the verdict is incomplete, whatever the others say); 2 a check warns or fails.
fn exit_code(checks: &[Check]) -> u8 {
    if checks.iter().any(|c| c.could_not_check) {
        1
    } else if checks.iter().all(|c| c.status == Status::Pass) {
        0
    } else {
        2
    }
}

fn print(checks: &[Check], format: Format) {
    match format {
        Format::Json => {
            for c in checks {
                println!("{}", serde_json::to_string(c).unwrap_or_default());
            }
        }
        Format::Table => {
            for c in checks {
                println!("{:<5} {:<20} {}", c.status.as_str().to_uppercase(), c.id, c.summary);
                for e in &c.evidence {
                    println!("{:<26} · {e}", "");
                }
                if let Some(fix) = &c.fix {
                    println!("{:<26} fix: {fix}", "");
                }
            }
        }
    }
}
