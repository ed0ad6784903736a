//! [`IdentityCenter`] backed by the sso-admin and identitystore APIs.

use aws_sdk_identitystore::types::{AlternateIdentifier, UniqueAttribute};
use aws_sdk_ssoadmin::types::{
    CustomerManagedPolicyReference, PermissionsBoundary as SdkBoundary, PrincipalType,
    ProvisionTargetType, StatusValues, TargetType,
};

use crate::access::plan::Group;
use crate::access::policy::{CustomerManagedPolicy, PermissionSetSpec, PermissionsBoundary};
use crate::access::ports::{
    ActualAssignment, IdcInstance, IdentityCenter, OperationStatus, PermissionSetInfo,
    PermissionSetPolicies,
};
use crate::error::AwsError;

/// [`IdentityCenter`] over the sso-admin and identitystore SDK clients.
#[derive(Clone, Debug)]
pub struct SdkIdentityCenter {
    sso: aws_sdk_ssoadmin::Client,
    ids: aws_sdk_identitystore::Client,
}

impl SdkIdentityCenter {
    /// Clients from the SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            sso: super::sdk_client!(aws_sdk_ssoadmin, config),
            ids: super::sdk_client!(aws_sdk_identitystore, config),
        }
    }
}

impl SdkIdentityCenter {
    /// `ListAccountAssignmentsForPrincipal` for a group or a user, every page; the pages read.
    async fn principal_assignments(
        &self,
        instance: &str,
        principal_id: &str,
        principal_type: PrincipalType,
    ) -> Result<(Vec<ActualAssignment>, usize), AwsError> {
        let mut out = Vec::new();
        let mut calls = 0;
        let mut pages = self
            .sso
            .list_account_assignments_for_principal()
            .instance_arn(instance)
            .principal_id(principal_id)
            .principal_type(principal_type)
            .into_paginator()
            .send();

        while let Some(page) = pages.next().await {
            calls += 1;
            let page = page.map_err(|e| sso("ListAccountAssignmentsForPrincipal", e))?;
            for a in page.account_assignments.unwrap_or_default() {
                if let (Some(account_id), Some(permission_set_arn)) =
                    (a.account_id, a.permission_set_arn)
                {
                    out.push(ActualAssignment { account_id, permission_set_arn });
                }
            }
        }
        Ok((out, calls))
    }
}

crate::error::sdk_error_fn!(sso, "sso-admin", "ConflictException");

crate::error::sdk_error_fn!(ids, "identitystore");

fn missing(service: &'static str, operation: &'static str, what: &str) -> AwsError {
    AwsError::Permanent { service, operation, message: format!("the reply has no {what}") }
}

fn status(s: Option<&StatusValues>, reason: Option<String>) -> OperationStatus {
    match s {
        Some(StatusValues::Succeeded) => OperationStatus::Succeeded,
        Some(StatusValues::Failed) => {
            OperationStatus::Failed(reason.unwrap_or_else(|| "no reason given".into()))
        }
        _ => OperationStatus::InProgress,
    }
}

/// An Identity Store lookup key: a unique attribute (`displayName`, `userName`) and its value.
fn unique_attribute(
    operation: &'static str,
    path: &str,
    value: &str,
) -> Result<AlternateIdentifier, AwsError> {
    let attr = UniqueAttribute::builder()
        .attribute_path(path)
        .attribute_value(aws_smithy_types::Document::String(value.to_owned()))
        .build()
        .map_err(|e| AwsError::Permanent {
            service: "identitystore",
            operation,
            message: e.to_string(),
        })?;
    Ok(AlternateIdentifier::UniqueAttribute(attr))
}

impl IdentityCenter for SdkIdentityCenter {
    async fn instance(&self, configured_arn: Option<&str>) -> Result<IdcInstance, AwsError> {
        let out = self.sso.list_instances().send().await.map_err(|e| sso("ListInstances", e))?;
        let instances = out.instances.unwrap_or_default();
        let chosen = match configured_arn {
            Some(arn) => instances.into_iter().find(|i| i.instance_arn.as_deref() == Some(arn)),
            None if instances.len() == 1 => instances.into_iter().next(),
            None => {
                return Err(AwsError::Permanent {
                    service: "sso-admin",
                    operation: "ListInstances",
                    message: format!(
                        "{} IAM Identity Center instances: set IDC_GUARD_INSTANCE_ARN",
                        instances.len()
                    ),
                });
            }
        };
        let i = chosen.ok_or_else(|| missing("sso-admin", "ListInstances", "matching instance"))?;
        Ok(IdcInstance {
            instance_arn: i
                .instance_arn
                .ok_or_else(|| missing("sso-admin", "ListInstances", "InstanceArn"))?,
            identity_store_id: i
                .identity_store_id
                .ok_or_else(|| missing("sso-admin", "ListInstances", "IdentityStoreId"))?,
        })
    }

    async fn list_groups(&self, store: &str) -> Result<Vec<Group>, AwsError> {
        let mut groups = Vec::new();
        let mut pages = self.ids.list_groups().identity_store_id(store).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ids("ListGroups", e))?;
            for g in page.groups {
                groups.push(Group {
                    id: g.group_id,
                    display_name: g.display_name.unwrap_or_default(),
                });
            }
        }
        Ok(groups)
    }

    async fn find_group(&self, store: &str, display_name: &str) -> Result<Option<Group>, AwsError> {
        let result = self
            .ids
            .get_group_id()
            .identity_store_id(store)
            .alternate_identifier(unique_attribute("GetGroupId", "displayName", display_name)?)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(Group { id: out.group_id, display_name: display_name.to_owned() })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                Ok(None)
            }
            Err(e) => Err(ids("GetGroupId", e)),
        }
    }

    async fn describe_group(&self, store: &str, group_id: &str) -> Result<Option<Group>, AwsError> {
        let result =
            self.ids.describe_group().identity_store_id(store).group_id(group_id).send().await;
        match result {
            Ok(out) => Ok(Some(Group {
                id: out.group_id,
                display_name: out.display_name.unwrap_or_default(),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                Ok(None)
            }
            Err(e) => Err(ids("DescribeGroup", e)),
        }
    }

    async fn list_group_member_names(
        &self,
        store: &str,
        group_id: &str,
    ) -> Result<Vec<String>, AwsError> {
        let mut names = Vec::new();
        for user_id in crate::access::ports::Estate::group_member_ids(self, store, group_id).await?
        {
            let user = self
                .ids
                .describe_user()
                .identity_store_id(store)
                .user_id(&user_id)
                .send()
                .await
                .map_err(|e| ids("DescribeUser", e))?;
            names.push(user.user_name.unwrap_or(user_id));
        }
        names.sort();
        Ok(names)
    }

    async fn list_permission_sets(
        &self,
        instance: &str,
    ) -> Result<Vec<PermissionSetInfo>, AwsError> {
        let mut arns = Vec::new();
        let mut pages =
            self.sso.list_permission_sets().instance_arn(instance).into_paginator().send();
        while let Some(page) = pages.next().await {
            arns.extend(
                page.map_err(|e| sso("ListPermissionSets", e))?.permission_sets.unwrap_or_default(),
            );
        }
        let mut out = Vec::with_capacity(arns.len());
        for arn in arns {
            let d = self
                .sso
                .describe_permission_set()
                .instance_arn(instance)
                .permission_set_arn(&arn)
                .send()
                .await
                .map_err(|e| sso("DescribePermissionSet", e))?;
            let ps = d
                .permission_set
                .ok_or_else(|| missing("sso-admin", "DescribePermissionSet", "PermissionSet"))?;
            out.push(PermissionSetInfo {
                arn,
                name: ps.name.unwrap_or_default(),
                description: ps.description,
                session_duration: ps.session_duration,
                relay_state: ps.relay_state,
            });
        }
        Ok(out)
    }

    async fn permission_set_policies(
        &self,
        instance: &str,
        arn: &str,
        read_boundary: bool,
    ) -> Result<PermissionSetPolicies, AwsError> {
        let mut p = PermissionSetPolicies::default();
        let mut pages = self
            .sso
            .list_managed_policies_in_permission_set()
            .instance_arn(instance)
            .permission_set_arn(arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sso("ListManagedPoliciesInPermissionSet", e))?;
            p.managed.extend(
                page.attached_managed_policies
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| m.arn),
            );
        }
        let mut pages = self
            .sso
            .list_customer_managed_policy_references_in_permission_set()
            .instance_arn(instance)
            .permission_set_arn(arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| sso("ListCustomerManagedPolicyReferencesInPermissionSet", e))?;
            p.customer_managed.extend(
                page.customer_managed_policy_references.unwrap_or_default().into_iter().map(|r| {
                    CustomerManagedPolicy {
                        name: r.name,
                        path: r.path.unwrap_or_else(|| "/".into()),
                    }
                }),
            );
        }
        let inline = self
            .sso
            .get_inline_policy_for_permission_set()
            .instance_arn(instance)
            .permission_set_arn(arn)
            .send()
            .await
            .map_err(|e| sso("GetInlinePolicyForPermissionSet", e))?;
        p.inline = inline.inline_policy.filter(|s| !s.is_empty());
        if read_boundary {
            let b = self
                .sso
                .get_permissions_boundary_for_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .send()
                .await;
            p.boundary = match b {
                Ok(out) => out.permissions_boundary.and_then(from_sdk_boundary),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    None
                }
                Err(e) => return Err(sso("GetPermissionsBoundaryForPermissionSet", e)),
            };
        }
        Ok(p)
    }

    async fn create_permission_set(
        &self,
        instance: &str,
        spec: &PermissionSetSpec,
    ) -> Result<String, AwsError> {
        let out = self
            .sso
            .create_permission_set()
            .instance_arn(instance)
            .name(&spec.name)
            .set_description(spec.description.clone())
            // Always sent: the local stand-in's reply cannot be parsed without it (ARCHITECTURE.md, "What the local stand-in cannot check").
            .session_duration(&spec.session_duration)
            .set_relay_state(spec.relay_state.clone())
            .send()
            .await
            .map_err(|e| sso("CreatePermissionSet", e))?;
        out.permission_set
            .and_then(|p| p.permission_set_arn)
            .ok_or_else(|| missing("sso-admin", "CreatePermissionSet", "PermissionSetArn"))
    }

    async fn update_permission_set(
        &self,
        instance: &str,
        arn: &str,
        spec: &PermissionSetSpec,
    ) -> Result<(), AwsError> {
        self.sso
            .update_permission_set()
            .instance_arn(instance)
            .permission_set_arn(arn)
            .set_description(spec.description.clone())
            .session_duration(&spec.session_duration)
            .set_relay_state(spec.relay_state.clone())
            .send()
            .await
            .map_err(|e| sso("UpdatePermissionSet", e))?;
        Ok(())
    }

    async fn attach_managed_policy(
        &self,
        instance: &str,
        arn: &str,
        policy_arn: &str,
        attach: bool,
    ) -> Result<(), AwsError> {
        if attach {
            self.sso
                .attach_managed_policy_to_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .managed_policy_arn(policy_arn)
                .send()
                .await
                .map_err(|e| sso("AttachManagedPolicyToPermissionSet", e))?;
        } else {
            self.sso
                .detach_managed_policy_from_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .managed_policy_arn(policy_arn)
                .send()
                .await
                .map_err(|e| sso("DetachManagedPolicyFromPermissionSet", e))?;
        }
        Ok(())
    }

    async fn attach_customer_managed_policy(
        &self,
        instance: &str,
        arn: &str,
        policy: &CustomerManagedPolicy,
        attach: bool,
    ) -> Result<(), AwsError> {
        let reference = CustomerManagedPolicyReference::builder()
            .name(&policy.name)
            .path(&policy.path)
            .build()
            .map_err(|e| AwsError::Permanent {
                service: "sso-admin",
                operation: "CustomerManagedPolicyReference",
                message: e.to_string(),
            })?;
        if attach {
            self.sso
                .attach_customer_managed_policy_reference_to_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .customer_managed_policy_reference(reference)
                .send()
                .await
                .map_err(|e| sso("AttachCustomerManagedPolicyReferenceToPermissionSet", e))?;
        } else {
            self.sso
                .detach_customer_managed_policy_reference_from_permission_set()
                .instance_arn(instance)
                .permission_set_arn(arn)
                .customer_managed_policy_reference(reference)
                .send()
                .await
                .map_err(|e| sso("DetachCustomerManagedPolicyReferenceFromPermissionSet", e))?;
        }
        Ok(())
    }

    async fn set_inline_policy(
        &self,
        instance: &str,
        arn: &str,
        policy: Option<&str>,
    ) -> Result<(), AwsError> {
        match policy {
            Some(doc) => {
                self.sso
                    .put_inline_policy_to_permission_set()
                    .instance_arn(instance)
                    .permission_set_arn(arn)
                    .inline_policy(doc)
                    .send()
                    .await
                    .map_err(|e| sso("PutInlinePolicyToPermissionSet", e))?;
            }
            None => {
                self.sso
                    .delete_inline_policy_from_permission_set()
                    .instance_arn(instance)
                    .permission_set_arn(arn)
                    .send()
                    .await
                    .map_err(|e| sso("DeleteInlinePolicyFromPermissionSet", e))?;
            }
        }
        Ok(())
    }

    async fn set_permissions_boundary(
        &self,
        instance: &str,
        arn: &str,
        boundary: &PermissionsBoundary,
    ) -> Result<(), AwsError> {
        let b = match boundary {
            PermissionsBoundary::ManagedPolicyArn(a) => {
                SdkBoundary::builder().managed_policy_arn(a).build()
            }
            PermissionsBoundary::CustomerManaged(c) => SdkBoundary::builder()
                .customer_managed_policy_reference(
                    CustomerManagedPolicyReference::builder()
                        .name(&c.name)
                        .path(&c.path)
                        .build()
                        .map_err(|e| AwsError::Permanent {
                        service: "sso-admin",
                        operation: "PermissionsBoundary",
                        message: e.to_string(),
                    })?,
                )
                .build(),
        };
        self.sso
            .put_permissions_boundary_to_permission_set()
            .instance_arn(instance)
            .permission_set_arn(arn)
            .permissions_boundary(b)
            .send()
            .await
            .map_err(|e| sso("PutPermissionsBoundaryToPermissionSet", e))?;
        Ok(())
    }

    async fn provision_permission_set(
        &self,
        instance: &str,
        arn: &str,
    ) -> Result<String, AwsError> {
        let out = self
            .sso
            .provision_permission_set()
            .instance_arn(instance)
            .permission_set_arn(arn)
            .target_type(ProvisionTargetType::AllProvisionedAccounts)
            .send()
            .await
            .map_err(|e| sso("ProvisionPermissionSet", e))?;
        Ok(out.permission_set_provisioning_status.and_then(|s| s.request_id).unwrap_or_default())
    }

    async fn list_group_assignments(
        &self,
        instance: &str,
        group_id: &str,
    ) -> Result<(Vec<ActualAssignment>, usize), AwsError> {
        self.principal_assignments(instance, group_id, PrincipalType::Group).await
    }

    async fn list_user_assignments(
        &self,
        instance: &str,
        user_id: &str,
    ) -> Result<Vec<ActualAssignment>, AwsError> {
        Ok(self.principal_assignments(instance, user_id, PrincipalType::User).await?.0)
    }

    async fn provision_to_account(
        &self,
        instance: &str,
        arn: &str,
        account_id: &str,
    ) -> Result<String, AwsError> {
        let out = self
            .sso
            .provision_permission_set()
            .instance_arn(instance)
            .permission_set_arn(arn)
            .target_type(ProvisionTargetType::AwsAccount)
            .target_id(account_id)
            .send()
            .await
            .map_err(|e| sso("ProvisionPermissionSet", e))?;
        Ok(out.permission_set_provisioning_status.and_then(|s| s.request_id).unwrap_or_default())
    }

    async fn create_assignment(
        &self,
        instance: &str,
        group_id: &str,
        ps_arn: &str,
        account: &str,
    ) -> Result<(String, OperationStatus), AwsError> {
        let out = self
            .sso
            .create_account_assignment()
            .instance_arn(instance)
            .target_id(account)
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(ps_arn)
            .principal_type(PrincipalType::Group)
            .principal_id(group_id)
            .send()
            .await
            .map_err(|e| sso("CreateAccountAssignment", e))?;
        let s = out
            .account_assignment_creation_status
            .ok_or_else(|| missing("sso-admin", "CreateAccountAssignment", "status"))?;
        Ok((s.request_id.unwrap_or_default(), status(s.status.as_ref(), s.failure_reason)))
    }

    async fn delete_assignment(
        &self,
        instance: &str,
        group_id: &str,
        ps_arn: &str,
        account: &str,
    ) -> Result<(String, OperationStatus), AwsError> {
        let out = self
            .sso
            .delete_account_assignment()
            .instance_arn(instance)
            .target_id(account)
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(ps_arn)
            .principal_type(PrincipalType::Group)
            .principal_id(group_id)
            .send()
            .await
            .map_err(|e| sso("DeleteAccountAssignment", e))?;
        let s = out
            .account_assignment_deletion_status
            .ok_or_else(|| missing("sso-admin", "DeleteAccountAssignment", "status"))?;
        Ok((s.request_id.unwrap_or_default(), status(s.status.as_ref(), s.failure_reason)))
    }

    async fn find_user_id(&self, store: &str, user_name: &str) -> Result<Option<String>, AwsError> {
        let result = self
            .ids
            .get_user_id()
            .identity_store_id(store)
            .alternate_identifier(unique_attribute("GetUserId", "userName", user_name)?)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out.user_id)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                Ok(None)
            }
            Err(e) => Err(ids("GetUserId", e)),
        }
    }

    async fn user_group_ids(&self, store: &str, user_id: &str) -> Result<Vec<String>, AwsError> {
        let mut groups = Vec::new();
        let mut pages = self
            .ids
            .list_group_memberships_for_member()
            .identity_store_id(store)
            .member_id(aws_sdk_identitystore::types::MemberId::UserId(user_id.to_owned()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ids("ListGroupMembershipsForMember", e))?;
            groups.extend(page.group_memberships.into_iter().filter_map(|m| m.group_id));
        }
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    async fn provisioning_status(
        &self,
        instance: &str,
        request_id: &str,
    ) -> Result<OperationStatus, AwsError> {
        let out = self
            .sso
            .describe_permission_set_provisioning_status()
            .instance_arn(instance)
            .provision_permission_set_request_id(request_id)
            .send()
            .await
            .map_err(|e| sso("DescribePermissionSetProvisioningStatus", e))?;
        Ok(match out.permission_set_provisioning_status {
            Some(s) => status(s.status.as_ref(), s.failure_reason),
            None => OperationStatus::InProgress,
        })
    }

    async fn assignment_status(
        &self,
        instance: &str,
        request_id: &str,
        creation: bool,
    ) -> Result<OperationStatus, AwsError> {
        if creation {
            let out = self
                .sso
                .describe_account_assignment_creation_status()
                .instance_arn(instance)
                .account_assignment_creation_request_id(request_id)
                .send()
                .await
                .map_err(|e| sso("DescribeAccountAssignmentCreationStatus", e))?;
            let s = out.account_assignment_creation_status;
            Ok(match s {
                Some(s) => status(s.status.as_ref(), s.failure_reason),
                None => OperationStatus::InProgress,
            })
        } else {
            let out = self
                .sso
                .describe_account_assignment_deletion_status()
                .instance_arn(instance)
                .account_assignment_deletion_request_id(request_id)
                .send()
                .await
                .map_err(|e| sso("DescribeAccountAssignmentDeletionStatus", e))?;
            let s = out.account_assignment_deletion_status;
            Ok(match s {
                Some(s) => status(s.status.as_ref(), s.failure_reason),
                None => OperationStatus::InProgress,
            })
        }
    }
}

fn from_sdk_boundary(b: SdkBoundary) -> Option<PermissionsBoundary> {
    if let Some(arn) = b.managed_policy_arn {
        return Some(PermissionsBoundary::ManagedPolicyArn(arn));
    }
    b.customer_managed_policy_reference.map(|r| {
        PermissionsBoundary::CustomerManaged(CustomerManagedPolicy {
            name: r.name,
            path: r.path.unwrap_or_else(|| "/".into()),
        })
    })
}

impl crate::access::ports::Estate for SdkIdentityCenter {
    async fn list_users(
        &self,
        store: &str,
    ) -> Result<Vec<crate::access::ports::IdcUser>, AwsError> {
        let mut users = Vec::new();
        let mut pages = self.ids.list_users().identity_store_id(store).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ids("ListUsers", e))?;
            users.extend(page.users.into_iter().map(|u| crate::access::ports::IdcUser {
                user_name: u.user_name.unwrap_or_else(|| u.user_id.clone()),
                id: u.user_id,
            }));
        }
        Ok(users)
    }

    async fn group_member_ids(&self, store: &str, group_id: &str) -> Result<Vec<String>, AwsError> {
        let mut members = Vec::new();
        let mut pages = self
            .ids
            .list_group_memberships()
            .identity_store_id(store)
            .group_id(group_id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ids("ListGroupMemberships", e))?;
            members.extend(
                page.group_memberships
                    .into_iter()
                    .filter_map(|m| m.member_id.and_then(|id| id.as_user_id().ok().cloned())),
            );
        }
        Ok(members)
    }

    async fn provisioned_accounts(
        &self,
        instance: &str,
        arn: &str,
    ) -> Result<Vec<String>, AwsError> {
        let mut accounts = Vec::new();
        let mut pages = self
            .sso
            .list_accounts_for_provisioned_permission_set()
            .instance_arn(instance)
            .permission_set_arn(arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sso("ListAccountsForProvisionedPermissionSet", e))?;
            accounts.extend(page.account_ids.unwrap_or_default());
        }
        Ok(accounts)
    }

    async fn account_assignments(
        &self,
        instance: &str,
        account_id: &str,
        arn: &str,
    ) -> Result<Vec<crate::access::ports::Principal>, AwsError> {
        use crate::access::ports::Principal;
        let mut out = Vec::new();
        let mut pages = self
            .sso
            .list_account_assignments()
            .instance_arn(instance)
            .account_id(account_id)
            .permission_set_arn(arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sso("ListAccountAssignments", e))?;
            for a in page.account_assignments.unwrap_or_default() {
                let Some(id) = a.principal_id else { continue };
                match a.principal_type {
                    Some(PrincipalType::Group) => out.push(Principal::Group(id)),
                    Some(PrincipalType::User) => out.push(Principal::User(id)),
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}
