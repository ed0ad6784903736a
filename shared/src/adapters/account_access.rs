//! [`AccountAccess`] backed by AWS's account access manager (`aws-sdk-accountaccess`).

use aws_sdk_accountaccess::types::{
    EntitlementFilter, EntitlementSummary, IdentityCenterPrincipal, IdentityCenterPrincipalFilter,
    Principal, PrincipalFilter, PrincipalRoleEntitlementFilter,
};
use futures::future::BoxFuture;

use crate::access::ports::{AccountAccess, RoleEntitlement};
use crate::error::AwsError;

/// The account access manager's applications and entitlements, read only.
#[derive(Clone, Debug)]
pub struct SdkAccountAccess {
    client: aws_sdk_accountaccess::Client,
}

impl SdkAccountAccess {
    /// A client from the SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: super::sdk_client!(aws_sdk_accountaccess, config) }
    }
}

crate::error::sdk_error_fn!(aa, "account-access");

/// `USER:<id>` / `GROUP:<id>` as the API's principal filter.
fn filter_of(principal: &str) -> Option<EntitlementFilter> {
    let who = match principal.split_once(':')? {
        ("USER", id) => IdentityCenterPrincipalFilter::UserId(id.to_owned()),
        ("GROUP", id) => IdentityCenterPrincipalFilter::GroupId(id.to_owned()),
        _ => return None,
    };
    let role = PrincipalRoleEntitlementFilter::builder()
        .principal(PrincipalFilter::IdentityCenter(who))
        .build();
    Some(EntitlementFilter::builder().principal_role(role).build())
}

fn principal_of(p: Option<&Principal>) -> Option<String> {
    match p? {
        Principal::IdentityCenter(IdentityCenterPrincipal::UserId(id)) => {
            Some(format!("USER:{id}"))
        }
        Principal::IdentityCenter(IdentityCenterPrincipal::GroupId(id)) => {
            Some(format!("GROUP:{id}"))
        }
        _ => None,
    }
}

impl SdkAccountAccess {
    /// The entitlements of `principals`, or (`None`) every principal-role entitlement.
    async fn entitlements(
        &self,
        principals: Option<&[String]>,
    ) -> Result<Vec<RoleEntitlement>, AwsError> {
        let mut applications = Vec::new();
        let mut pages = self.client.list_applications().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aa("ListApplications", e))?;
            applications.extend(page.applications.into_iter().map(|a| a.application_arn));
        }
        let mut out = Vec::new();
        for application in &applications {
            let filters: Vec<(String, EntitlementFilter)> = match principals {
                Some(list) => {
                    list.iter().filter_map(|p| Some((p.clone(), filter_of(p)?))).collect()
                }
                None => vec![(
                    String::new(),
                    EntitlementFilter::builder()
                        .principal_role(PrincipalRoleEntitlementFilter::builder().build())
                        .build(),
                )],
            };
            for (principal, filter) in filters {
                let mut pages = self
                    .client
                    .list_entitlements()
                    .application_arn(application)
                    .filter(filter)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| aa("ListEntitlements", e))?;
                    for member in page.entitlements {
                        let Some(EntitlementSummary::PrincipalRole(role)) = member.entitlement
                        else {
                            continue;
                        };
                        out.push(RoleEntitlement {
                            id: member.entitlement_id,
                            application_arn: application.clone(),
                            principal: principal_of(role.principal.as_ref())
                                .unwrap_or_else(|| principal.clone()),
                            role_arn: role.role_arn,
                            account_id: role.account,
                        });
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

impl AccountAccess for SdkAccountAccess {
    fn role_entitlements<'a>(
        &'a self,
        principals: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<RoleEntitlement>, AwsError>> {
        Box::pin(self.entitlements(Some(principals)))
    }

    fn all_role_entitlements(&self) -> BoxFuture<'_, Result<Vec<RoleEntitlement>, AwsError>> {
        Box::pin(self.entitlements(None))
    }
}
