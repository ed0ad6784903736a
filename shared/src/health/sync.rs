//! `scim-sync`: what Okta holds and what SCIM put in IAM Identity Center agree, for every group
//! idc-guard manages.
//!
//! Per managed group: Okta's members (`/api/v1/groups/{id}/users`) against the Identity Store's
//! (`ListGroupMemberships` + `DescribeUser`), by user name; for the AWS app, group-push mappings
//! in `ERROR` (with Okta's summary), a group both assigned to the app and pushed (the setup guide
//! says not to), app users whose sync state is `ERROR` or `OUT_OF_SYNC`, and users in a managed
//! IdC group that Okta never provisioned. Counts and the first names, never thousands of lines.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::ports::OktaReader;
use super::{AlertSpec, Check, Status, first_names, text, urlencode};
use crate::access::ports::IdentityCenter;
use crate::alert::Severity;
use crate::records::ManagedGroup;
use crate::store::StateStore;

/// The check's id.
pub const ID: &str = "scim-sync";
/// The check's title.
pub const TITLE: &str = "SCIM sync (Okta groups and IAM Identity Center)";

/// Okta user statuses whose users SCIM keeps in IdC (active in the app).
const PROVISIONED: [&str; 4] = ["ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY"];

struct Finding {
    status: Status,
    kind: &'static str,
    line: String,
}

/// Runs the check.
pub async fn check<Okta: OktaReader, Idc: IdentityCenter, Store: StateStore>(
    okta: &Okta,
    idc: &Idc,
    store: &Store,
    app: Option<&Value>,
    instance_arn: Option<&str>,
) -> Check {
    let managed: BTreeMap<String, String> = match ManagedGroup::load_map(store).await {
        Ok(m) => m,
        Err(e) => return Check::unknown(ID, TITLE, format!("reading the managed groups: {e}")),
    };
    let mut result = Check::pass(ID, TITLE, "");
    let mut findings: Vec<Finding> = Vec::new();
    let mut idc_names_all: BTreeSet<String> = BTreeSet::new();
    // The app's users carry the user name SCIM sends to IAM Identity Center (the app username,
    // `credentials.userName`): an org whose AWS app username is the e-mail or another attribute
    // than the Okta login is compared by that name, not by the login.
    let app_users = match app {
        Some(app) => {
            let path = format!(
                "/api/v1/apps/{}/users?limit=500",
                urlencode(text(app, "/id").unwrap_or_default())
            );
            Some(okta.get_list(&path).await)
        }
        None => None,
    };
    let app_username: BTreeMap<&str, String> = match &app_users {
        Some(Ok(users)) => users
            .iter()
            .filter_map(|u| {
                Some((text(u, "/id")?, text(u, "/credentials/userName")?.to_lowercase()))
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    // A member's name in IAM Identity Center: the app username, else the Okta login.
    let idc_name = |u: &Value| -> Option<String> {
        text(u, "/id")
            .and_then(|id| app_username.get(id).cloned())
            .or_else(|| text(u, "/profile/login").map(str::to_lowercase))
    };
    if managed.is_empty() {
        result.evidence.push("no managed groups yet (access-sync has not reconciled)".into());
    } else {
        let instance = match idc.instance(instance_arn).await {
            Ok(i) => i,
            Err(e) => return Check::unknown(ID, TITLE, format!("IAM Identity Center: {e}")),
        };
        for (group_id, name) in &managed {
            let in_idc =
                match idc.list_group_member_names(&instance.identity_store_id, group_id).await {
                    Ok(m) => m.into_iter().map(|n| n.to_lowercase()).collect::<BTreeSet<_>>(),
                    Err(e) => {
                        return Check::unknown(ID, TITLE, format!("members of {name} in IdC: {e}"));
                    }
                };
            idc_names_all.extend(in_idc.iter().cloned());
            let groups = match okta
                .get_list(&format!("/api/v1/groups?q={}&limit=200", urlencode(name)))
                .await
            {
                Ok(g) => g,
                Err(e) => return Check::unknown(ID, TITLE, format!("finding {name} in Okta: {e}")),
            };
            let Some(okta_group) = groups.iter().find(|g| text(g, "/profile/name") == Some(name))
            else {
                findings.push(Finding {
                    status: Status::Fail,
                    kind: "not-in-okta",
                    line: format!("{name}: in IAM Identity Center but no Okta group has this name"),
                });
                continue;
            };
            let okta_id = text(okta_group, "/id").unwrap_or_default();
            let members = match okta
                .get_list(&format!("/api/v1/groups/{}/users?limit=200", urlencode(okta_id)))
                .await
            {
                Ok(m) => m,
                Err(e) => {
                    return Check::unknown(ID, TITLE, format!("members of {name} in Okta: {e}"));
                }
            };
            let okta_all: BTreeSet<String> = members.iter().filter_map(idc_name).collect();
            let okta_provisioned: BTreeSet<String> = members
                .iter()
                .filter(|u| text(u, "/status").is_some_and(|s| PROVISIONED.contains(&s)))
                .filter_map(idc_name)
                .collect();
            let missing: Vec<&String> = okta_provisioned.difference(&in_idc).collect();
            let extra: Vec<&String> = in_idc.difference(&okta_all).collect();
            result.evidence.push(format!(
                "{name}: {} in Okta, {} in IdC",
                okta_provisioned.len(),
                in_idc.len()
            ));
            if !missing.is_empty() {
                findings.push(Finding {
                    status: Status::Fail,
                    kind: "missing-in-idc",
                    line: format!(
                        "{name}: {} Okta member(s) missing in IdC: {}",
                        missing.len(),
                        first_names(&missing)
                    ),
                });
            }
            if !extra.is_empty() {
                findings.push(Finding {
                    status: Status::Fail,
                    kind: "extra-in-idc",
                    line: format!(
                        "{name}: {} IdC member(s) not in the Okta group: {}",
                        extra.len(),
                        first_names(&extra)
                    ),
                });
            }
        }
    }
    if let (Some(app), Some(users)) = (app, &app_users) {
        let context = AppContext { app, users, idc_names: &idc_names_all };
        app_findings(okta, context, &mut findings, &mut result.evidence).await;
    }
    if findings.is_empty() {
        result.summary = format!("{} managed group(s) in sync", managed.len());
        return result;
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.status));
    result.status = findings[0].status;
    result.summary = findings.iter().map(|f| f.line.clone()).collect::<Vec<_>>().join("; ");
    result.fix = Some(
        "In Okta: the AWS IAM Identity Center app > Push Groups; push each named group again (and fix the error it shows), and keep a group either assigned to the app or pushed, not both. Users missing in IdC are provisioned when their group assignment or push succeeds.".into(),
    );
    let mut state: Vec<String> = findings.iter().map(|f| f.kind.to_owned()).collect();
    state.sort();
    state.dedup();
    let severity = if result.status == Status::Fail { Severity::High } else { Severity::Medium };
    result.alert =
        Some(AlertSpec { detector: "scim-sync-drift", severity, state: state.join("|") });
    result
}

/// What the app-level findings read: the app, its users (already read), the IdC members seen.
struct AppContext<'a> {
    app: &'a Value,
    users: &'a Result<Vec<Value>, crate::okta::ports::OktaError>,
    idc_names: &'a BTreeSet<String>,
}

/// Okta group ids named by their group names (`GET /api/v1/groups/{id}`); an id that cannot be
/// read stays an id.
async fn group_names<Okta: OktaReader>(okta: &Okta, ids: &[&str]) -> Vec<String> {
    let mut names = Vec::with_capacity(ids.len());
    for id in ids {
        let name = match okta.get_json(&format!("/api/v1/groups/{}", urlencode(id))).await {
            Ok(group) => text(&group, "/profile/name").map(str::to_owned),
            Err(_) => None,
        };
        names.push(name.unwrap_or_else(|| (*id).to_owned()));
    }
    names
}

async fn app_findings<Okta: OktaReader>(
    okta: &Okta,
    context: AppContext<'_>,
    findings: &mut Vec<Finding>,
    evidence: &mut Vec<String>,
) {
    let AppContext { app, users, idc_names } = context;
    let app_id = urlencode(text(app, "/id").unwrap_or_default());
    match okta.get_list(&format!("/api/v1/apps/{app_id}/group-push/mappings")).await {
        Ok(mappings) => {
            let in_error: Vec<&Value> =
                mappings.iter().filter(|m| text(m, "/status") == Some("ERROR")).collect();
            let ids: Vec<&str> =
                in_error.iter().map(|m| text(m, "/sourceGroupId").unwrap_or("?")).collect();
            let errors: Vec<String> = group_names(okta, &ids)
                .await
                .into_iter()
                .zip(&in_error)
                .map(|(name, m)| {
                    format!("{name} ({})", text(m, "/errorSummary").unwrap_or("no summary"))
                })
                .collect();
            evidence.push(format!("{} group-push mapping(s)", mappings.len()));
            if !errors.is_empty() {
                findings.push(Finding {
                    status: Status::Fail,
                    kind: "push-error",
                    line: format!(
                        "{} group push(es) in ERROR: {}",
                        errors.len(),
                        first_names(&errors)
                    ),
                });
            }
            match okta.get_list(&format!("/api/v1/apps/{app_id}/groups?limit=200")).await {
                Ok(assigned) => {
                    let pushed: BTreeSet<&str> =
                        mappings.iter().filter_map(|m| text(m, "/sourceGroupId")).collect();
                    let both: Vec<&str> = assigned
                        .iter()
                        .filter_map(|g| text(g, "/id"))
                        .filter(|id| pushed.contains(id))
                        .collect();
                    let both = group_names(okta, &both).await;
                    if !both.is_empty() {
                        findings.push(Finding {
                            status: Status::Warn,
                            kind: "assigned-and-pushed",
                            line: format!(
                                "{} group(s) both assigned to the app and pushed: {}",
                                both.len(),
                                first_names(&both)
                            ),
                        });
                    }
                }
                Err(e) => evidence.push(format!("app group assignments not read: {e}")),
            }
        }
        Err(e) => evidence.push(format!("group-push mappings not read: {e}")),
    }
    match users {
        Ok(users) => {
            let name = |u: &Value| {
                text(u, "/credentials/userName").or(text(u, "/id")).unwrap_or("?").to_owned()
            };
            let failed: Vec<String> =
                users.iter().filter(|u| text(u, "/syncState") == Some("ERROR")).map(name).collect();
            let stale: Vec<String> = users
                .iter()
                .filter(|u| text(u, "/syncState") == Some("OUT_OF_SYNC"))
                .map(name)
                .collect();
            if !failed.is_empty() {
                findings.push(Finding {
                    status: Status::Fail,
                    kind: "user-sync-error",
                    line: format!(
                        "{} user(s) failed to sync: {}",
                        failed.len(),
                        first_names(&failed)
                    ),
                });
            }
            if !stale.is_empty() {
                findings.push(Finding {
                    status: Status::Warn,
                    kind: "user-out-of-sync",
                    line: format!("{} user(s) out of sync: {}", stale.len(), first_names(&stale)),
                });
            }
            let provisioned: BTreeSet<String> = users
                .iter()
                .filter_map(|u| text(u, "/credentials/userName"))
                .map(str::to_lowercase)
                .collect();
            let foreign: Vec<&String> =
                idc_names.iter().filter(|n| !provisioned.contains(*n)).collect();
            if !users.is_empty() && !foreign.is_empty() {
                findings.push(Finding {
                    status: Status::Fail,
                    kind: "not-provisioned-by-okta",
                    line: format!(
                        "{} user(s) in managed IdC groups that Okta did not provision: {}",
                        foreign.len(),
                        first_names(&foreign)
                    ),
                });
            }
        }
        Err(e) => evidence.push(format!("app users not read: {e}")),
    }
}
