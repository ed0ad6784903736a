//! [`Organizations`] backed by the AWS Organizations API: the account tree, statuses and tags.

use std::collections::BTreeMap;

use aws_sdk_organizations::Client;
use aws_sdk_organizations::types::{AccountState, AccountStatus as SdkStatus};

use crate::access::plan::{Account, AccountStatus};
use crate::access::ports::{OrgSnapshot, Organizations};
use crate::error::AwsError;

/// [`Organizations`] over the Organizations SDK client.
#[derive(Clone, Debug)]
pub struct SdkOrganizations {
    client: Client,
}

impl SdkOrganizations {
    /// A client from the SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: super::sdk_client!(aws_sdk_organizations, config) }
    }

    /// This client.
    pub fn from_client(client: Client) -> Self {
        Self { client }
    }
}

crate::error::sdk_error_fn!(err, "organizations");

fn status(a: &aws_sdk_organizations::types::Account) -> AccountStatus {
    match (a.state(), a.status()) {
        (Some(AccountState::Active), _) => AccountStatus::Active,
        (Some(AccountState::Suspended), _) => AccountStatus::Suspended,
        (Some(AccountState::PendingClosure), _) => AccountStatus::PendingClosure,
        (Some(AccountState::PendingActivation), _) => AccountStatus::PendingActivation,
        (Some(AccountState::Closed), _) => AccountStatus::Closed,
        (_, Some(SdkStatus::Active)) => AccountStatus::Active,
        (_, Some(SdkStatus::PendingClosure)) => AccountStatus::PendingClosure,
        // Unknown or missing: not SUSPENDED, but not known to be active either, so it is never
        // targeted implicitly and nothing is deleted in it.
        _ => AccountStatus::Unknown,
    }
}

impl Organizations for SdkOrganizations {
    async fn snapshot(&self, with_tags: bool) -> Result<OrgSnapshot, AwsError> {
        let mut calls = 1;
        let org = self
            .client
            .describe_organization()
            .send()
            .await
            .map_err(|e| err("DescribeOrganization", e))?;
        let management_account_id = org.organization.and_then(|o| o.master_account_id);

        let mut roots = Vec::new();
        let mut pages = self.client.list_roots().into_paginator().send();
        while let Some(page) = pages.next().await {
            calls += 1;
            roots.extend(
                page.map_err(|e| err("ListRoots", e))?
                    .roots
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|r| r.id),
            );
        }
        // Breadth-first over the OU tree: (parent id, path from the root down to it).
        let mut queue: Vec<(String, Vec<String>)> =
            roots.into_iter().map(|r| (r.clone(), vec![r])).collect();
        let mut accounts = Vec::new();
        let mut organizational_units = std::collections::BTreeSet::new();
        while let Some((parent, path)) = queue.pop() {
            organizational_units.insert(parent.clone());
            let mut pages =
                self.client.list_accounts_for_parent().parent_id(&parent).into_paginator().send();
            while let Some(page) = pages.next().await {
                calls += 1;
                for a in
                    page.map_err(|e| err("ListAccountsForParent", e))?.accounts.unwrap_or_default()
                {
                    let Some(id) = a.id.clone() else { continue };
                    accounts.push(Account {
                        status: status(&a),
                        name: a.name.clone().unwrap_or_default(),
                        id,
                        ou_path: path.clone(),
                        tags: BTreeMap::new(),
                    });
                }
            }
            let mut pages = self
                .client
                .list_organizational_units_for_parent()
                .parent_id(&parent)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                calls += 1;
                for ou in page
                    .map_err(|e| err("ListOrganizationalUnitsForParent", e))?
                    .organizational_units
                    .unwrap_or_default()
                {
                    if let Some(id) = ou.id {
                        let mut p = path.clone();
                        p.push(id.clone());
                        queue.push((id, p));
                    }
                }
            }
        }
        if with_tags {
            for a in &mut accounts {
                let mut pages =
                    self.client.list_tags_for_resource().resource_id(&a.id).into_paginator().send();
                while let Some(page) = pages.next().await {
                    calls += 1;
                    for t in
                        page.map_err(|e| err("ListTagsForResource", e))?.tags.unwrap_or_default()
                    {
                        a.tags.insert(t.key, t.value);
                    }
                }
            }
        }
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(OrgSnapshot { accounts, management_account_id, organizational_units, calls })
    }
}
