//! `idc-guard login`, `grant`, `approve`, `deny`, `grants`: clients of the grants API.
//!
//! The CLI holds no Okta API token and writes nothing to the state table: it signs the person in
//! with Okta's device authorization grant (as `aws sso login` does) to idc-guard's OIDC app,
//! keeps the ID token in a file only the user can read, and sends it to the grants function,
//! which decides everything (who may ask, who may approve, for how long).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::Format;

/// Where the CLI finds the grants API and Okta.
#[derive(Args, Clone)]
pub struct ClientArgs {
    /// The grants function's URL (the stack's GrantsApiUrl output).
    #[arg(long, env = "IDC_GUARD_GRANTS_URL")]
    pub api_url: String,
    /// The Okta org, e.g. https://acme.okta.com.
    #[arg(long, env = "IDC_GUARD_OKTA_ORG_URL")]
    pub okta_org_url: String,
    /// The client id of idc-guard's Okta OIDC app (native, device authorization grant): public,
    /// not a secret.
    #[arg(long, env = "IDC_GUARD_OKTA_CLIENT_ID")]
    pub client_id: String,
    /// Where the ID token is kept (mode 0600).
    #[arg(long, env = "IDC_GUARD_TOKEN_FILE", default_value_os_t = default_token_file())]
    pub token_file: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn default_token_file() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".idc-guard")
        .join("okta-id-token.json")
}

fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?)
}

/// The token file's ID token, while it has more than a minute left.
fn saved_token(path: &Path) -> Option<String> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let expires = v["expires_at"].as_i64()?;
    (expires > chrono::Utc::now().timestamp() + 60)
        .then(|| v["id_token"].as_str().map(str::to_owned))?
}

fn save_token(path: &Path, id_token: &str, expires_in: i64) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let body =
        json!({"id_token": id_token, "expires_at": chrono::Utc::now().timestamp() + expires_in});
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(body.to_string().as_bytes())?;
    Ok(())
}

/// Okta's device authorization grant: prints where to approve, polls until the person has.
async fn device_sign_in(args: &ClientArgs) -> anyhow::Result<String> {
    let org = idc_guard::okta::org_url::validate_org_url(&args.okta_org_url)?;
    let client = http()?;
    let start: Value = client
        .post(format!("{org}/oauth2/v1/device/authorize"))
        .form(&[("client_id", args.client_id.as_str()), ("scope", "openid profile email")])
        .send()
        .await
        .context("reaching Okta's device authorization endpoint")?
        .json()
        .await
        .context("Okta's device authorization reply is not JSON")?;
    let (Some(device_code), Some(user_code)) =
        (start["device_code"].as_str(), start["user_code"].as_str())
    else {
        bail!(
            "Okta refused the device sign-in: {} (is the device authorization grant enabled for client {}?)",
            start["error_description"]
                .as_str()
                .or(start["error"].as_str())
                .unwrap_or("no reason given"),
            args.client_id
        );
    };
    let uri = start["verification_uri_complete"]
        .as_str()
        .or(start["verification_uri"].as_str())
        .unwrap_or("");
    eprintln!("Sign in with Okta: open {uri} and check that it shows the code {user_code}.");
    let mut interval = start["interval"].as_u64().unwrap_or(5).max(1);
    let deadline = std::time::Instant::now()
        + Duration::from_secs(start["expires_in"].as_u64().unwrap_or(600));
    while std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let reply: Value = client
            .post(format!("{org}/oauth2/v1/token"))
            .form(&[
                ("client_id", args.client_id.as_str()),
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code),
            ])
            .send()
            .await
            .context("reaching Okta's token endpoint")?
            .json()
            .await
            .context("Okta's token reply is not JSON")?;
        if let Some(token) = reply["id_token"].as_str() {
            save_token(&args.token_file, token, reply["expires_in"].as_i64().unwrap_or(3600))?;
            eprintln!("Signed in; the ID token is in {}.", args.token_file.display());
            return Ok(token.to_owned());
        }
        match reply["error"].as_str() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += 5,
            Some(other) => bail!("Okta ended the sign-in: {other}"),
            None => bail!("Okta's token reply has neither an ID token nor an error"),
        }
    }
    bail!("the sign-in was not approved in time")
}

async fn token(args: &ClientArgs) -> anyhow::Result<String> {
    match saved_token(&args.token_file) {
        Some(t) => Ok(t),
        None => device_sign_in(args).await,
    }
}

/// The API's URL: https, or plain http to a loopback stand-in only, since the ID token goes there.
fn api_base(url: &str) -> anyhow::Result<String> {
    let parsed =
        reqwest::Url::parse(url).with_context(|| format!("--api-url {url:?} is not a URL"))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
        bail!("--api-url {url:?} must be https (the Okta ID token is sent there)");
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// One API call; a refusal is an error with the API's message.
async fn call(
    args: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let base = api_base(&args.api_url)?;
    let token = token(args).await?;
    let url = format!("{base}/{}", path.trim_start_matches('/'));
    let mut request = http()?.request(method, &url).bearer_auth(&token);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("reaching the grants API at {}", args.api_url))?;
    let status = response.status().as_u16();
    let v: Value = response.json().await.unwrap_or(Value::Null);
    match status {
        200..=299 => Ok(v),
        401 => {
            let _ = std::fs::remove_file(&args.token_file);
            bail!("the grants API did not accept the sign-in: run `idc-guard login` again")
        }
        _ => bail!("{} ({status})", v["error"].as_str().unwrap_or("the grants API refused")),
    }
}

fn print(grants: &[Value], format: Format) {
    for g in grants {
        if format == Format::Json {
            println!("{g}");
            continue;
        }
        let s = |k: &str| g[k].as_str().unwrap_or("").to_owned();
        let approvers: Vec<&str> = g["approvals"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d["login"].as_str()).collect())
            .unwrap_or_default();
        println!(
            "{:<26} {:<10} {:<28} {:<24} {:>5} min  asked by {}{}{}  {}{}",
            s("id"),
            s("status"),
            s("login"),
            s("group"),
            g["minutes"],
            s("requested_by"),
            if approvers.is_empty() {
                String::new()
            } else {
                format!(", approved by {}", approvers.join(", "))
            },
            if g["break_glass"] == true { " [break-glass]" } else { "" },
            s("reason"),
            g["expires_at"]
                .as_str()
                .and_then(|e| e.parse::<chrono::DateTime<chrono::Utc>>().ok())
                .map(|e| format!("  until {}", e.format("%Y-%m-%d %H:%M:%S UTC")))
                .unwrap_or_default()
        );
        if let Some(a) = g["activity"].as_object() {
            println!(
                "    activity: {} calls, writes: {}",
                a.get("total").unwrap_or(&json!(0)),
                a.get("writes").map(|w| w.to_string()).unwrap_or_default()
            );
        }
    }
}

/// `idc-guard login`.
pub async fn login(args: &ClientArgs) -> anyhow::Result<ExitCode> {
    device_sign_in(args).await?;
    let me = call(args, reqwest::Method::GET, "me", None).await?;
    println!("{} ({})", me["login"].as_str().unwrap_or("?"), me["id"].as_str().unwrap_or("?"));
    Ok(ExitCode::SUCCESS)
}

/// `idc-guard grant --group G --for 2h --reason TEXT [--user U] [--break-glass]`.
pub async fn grant(
    args: &ClientArgs,
    user: Option<&str>,
    group: &str,
    duration: &str,
    reason: &str,
    break_glass: bool,
) -> anyhow::Result<ExitCode> {
    let d = idc_guard::policy_file::parse_duration(duration)
        .filter(|d| d.num_seconds() % 60 == 0)
        .ok_or_else(|| anyhow::anyhow!("--for {duration:?}: whole minutes, such as 2h or 30m"))?;
    let body = json!({"group": group, "minutes": d.num_minutes(), "reason": reason, "user": user, "break_glass": break_glass});
    let g = call(args, reqwest::Method::POST, "grants", Some(body)).await?;
    print(std::slice::from_ref(&g), args.format);
    if g["status"] == "pending" && args.format == Format::Table {
        println!(
            "waiting for approval: an approver runs `idc-guard approve {}` (or clicks Approve in Slack)",
            g["id"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `idc-guard approve ID`: shows the grant first, asks (unless --yes), and approves exactly
/// what was shown (the API refuses if the record differs).
pub async fn approve(args: &ClientArgs, id: &str, yes: bool) -> anyhow::Result<ExitCode> {
    let g = call(args, reqwest::Method::GET, &format!("grants/{id}"), None).await?;
    print(std::slice::from_ref(&g), Format::Table);
    if !yes && !crate::access::confirm("Approve this grant?")? {
        println!("Not approved.");
        return Ok(ExitCode::from(1));
    }
    let expect =
        json!({"expect": {"login": g["login"], "group": g["group"], "minutes": g["minutes"]}});
    let g =
        call(args, reqwest::Method::POST, &format!("grants/{id}/approve"), Some(expect)).await?;
    print(std::slice::from_ref(&g), args.format);
    Ok(ExitCode::SUCCESS)
}

/// `idc-guard deny ID`.
pub async fn deny(args: &ClientArgs, id: &str) -> anyhow::Result<ExitCode> {
    let g = call(args, reqwest::Method::POST, &format!("grants/{id}/deny"), None).await?;
    print(std::slice::from_ref(&g), args.format);
    Ok(ExitCode::SUCCESS)
}

/// `idc-guard grants`.
pub async fn grants(args: &ClientArgs) -> anyhow::Result<ExitCode> {
    let all = call(args, reqwest::Method::GET, "grants", None).await?;
    print(all.as_array().map(Vec::as_slice).unwrap_or_default(), args.format);
    Ok(ExitCode::SUCCESS)
}

/// `idc-guard review decide remove|keep --user U --group G --reason R`.
pub async fn decide(
    args: &ClientArgs,
    decision: &str,
    user: &str,
    group: &str,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    let body =
        serde_json::json!({"user": user, "group": group, "decision": decision, "reason": reason});
    let d = call(args, reqwest::Method::POST, "reviews", Some(body)).await?;
    match args.format {
        Format::Json => println!("{d}"),
        Format::Table => println!(
            "{} {} in {}: {} (decided by {} at {})",
            d["decision"].as_str().unwrap_or("?"),
            d["login"].as_str().unwrap_or("?"),
            d["group"].as_str().unwrap_or("?"),
            d["outcome"].as_str().unwrap_or("?"),
            d["reviewer_login"].as_str().unwrap_or("?"),
            d["at"].as_str().unwrap_or("?"),
        ),
    }
    Ok(ExitCode::SUCCESS)
}
