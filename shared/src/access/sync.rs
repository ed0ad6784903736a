//! The `access-sync` handler: Okta events from the hook's FIFO queue, the schedule, and
//! Organizations events, turned into reconciles, alerts and records for the sign-in checks.

use crate::telemetry::metrics::{Metric, count};
use std::collections::{BTreeMap, BTreeSet};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

use super::policy::Policy;
use super::ports::Requeue;
use super::reconcile::{
    Limits, Prepared, Progress, ReconcileError, Reconciler, Report, RunOptions, Scope,
};
use crate::access::ports::{IdentityCenter, Organizations};
use crate::alert::{Alert, AlertSink, Alerts, Severity};
use crate::error::AwsError;
use crate::okta::OktaEvent;
use crate::okta::ports::{NoSystemLog, OktaGroups, SystemLog};
use crate::records::{
    self, EVENT_CLAIM_PK, GroupPushFailure, Lifecycle, LifecycleStatus, ManagedGroup,
    OktaSigninRecord, Record, SIGNIN_EVENT_TYPES,
};
use crate::store::{Claim, StateStore, claim, complete, release};

/// Why a trigger (or one queue record) was not fully processed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A reconcile could not start.
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The group is not in IdC yet (the SCIM push is pending): retried later.
    #[error("group {0:?} is not in IAM Identity Center yet (SCIM push pending): retry later")]
    GroupNotInIdentityCenter(String),
    /// Another invocation holds the event's claim.
    #[error("event {0} is being processed by another invocation: retry later")]
    Busy(String),
    /// A queue record is not an Okta event.
    #[error("unreadable queue record: {0}")]
    BadRecord(String),
    /// An event this function does not handle.
    #[error("unrecognised trigger: {0}")]
    UnknownTrigger(String),
    /// Okta's System Log could not be read for a stub event.
    #[error("Okta System Log: {0}")]
    Okta(#[from] crate::okta::ports::OktaError),
    /// A grant request or approval was refused (not grantable, too long, self-approval, …).
    #[error("grant refused: {0}")]
    Grant(String),
}

impl From<SyncError> for Diagnostic {
    fn from(e: SyncError) -> Self {
        let error_type = match &e {
            SyncError::Reconcile(_) => "ReconcileError",
            SyncError::Aws(_) => "AwsError",
            SyncError::GroupNotInIdentityCenter(_) => "GroupNotInIdentityCenter",
            SyncError::Busy(_) => "Busy",
            SyncError::BadRecord(_) => "BadRecord",
            SyncError::UnknownTrigger(_) => "UnknownTrigger",
            SyncError::Okta(_) => "OktaError",
            SyncError::Grant(_) => "GrantRefused",
        };
        Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// The outcome of [`AccessSyncHandler::apply_confirmed`].
#[derive(Debug)]
pub enum Confirmed {
    /// The confirmed plan was applied.
    Applied(Box<Report>),
    /// The estate changed since the plan was shown: nothing applied; this is the new plan.
    Changed(Box<Report>),
}

/// What invoked the function.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Okta events from the hook's FIFO queue.
    Queue(SqsEvent),
    /// The scheduled full reconcile.
    Schedule,
    /// The scheduled access ledger export (`detail.job = "ledger"`).
    Ledger,
    /// An Organizations change to one account (created, moved, tagged).
    Account {
        /// The account.
        account_id: String,
        /// `CreateAccountResult`, `MoveAccount` or `TagResource`.
        event_name: String,
    },
}

/// Tells the triggers apart by their shape.
pub fn classify(event: &Value) -> Result<Trigger, SyncError> {
    if event.get("Records").is_some() {
        let sqs: SqsEvent = serde_json::from_value(event.clone()).map_err(|e| {
            SyncError::UnknownTrigger(format!("Records that are not an SQS event: {e}"))
        })?;
        return Ok(Trigger::Queue(sqs));
    }
    let source = event.get("source").and_then(Value::as_str).unwrap_or_default();
    let detail_type = event.get("detail-type").and_then(Value::as_str).unwrap_or_default();
    if source == "aws.events" && detail_type == "Scheduled Event" {
        if event["detail"]["job"] == "ledger" {
            return Ok(Trigger::Ledger);
        }
        return Ok(Trigger::Schedule);
    }
    if source == "aws.organizations" {
        let detail = &event["detail"];
        let event_name = detail["eventName"].as_str().unwrap_or_default().to_owned();
        let account_id = match event_name.as_str() {
            "CreateAccountResult" => {
                detail["serviceEventDetails"]["createAccountStatus"]["accountId"].as_str()
            }
            "MoveAccount" => detail["requestParameters"]["accountId"].as_str(),
            "TagResource" | "UntagResource" => detail["requestParameters"]["resourceId"].as_str(),
            _ => None,
        };
        return match account_id {
            Some(id) if super::policy::is_account_id(id) => {
                Ok(Trigger::Account { account_id: id.to_owned(), event_name })
            }
            _ => Err(SyncError::UnknownTrigger(format!(
                "Organizations event {event_name:?} without an account id"
            ))),
        };
    }
    Err(SyncError::UnknownTrigger(format!("source {source:?}, detail-type {detail_type:?}")))
}

/// The `access-sync` function: Okta events, schedules and Organizations events turned into
/// reconciles, alerts and sign-in records (see the module header).
pub struct AccessSyncHandler<Idc, Org, Store, Sink, Log = NoSystemLog> {
    /// IAM Identity Center.
    pub idc: Idc,
    /// Organizations.
    pub org: Org,
    /// The state table.
    pub store: Store,
    /// Where alerts go.
    pub sink: Sink,
    /// Okta's System Log, where events the hook could only queue as stubs are completed.
    pub system_log: Option<Log>,
    /// The access policy.
    pub policy: Policy,
    /// The IdC instance, when configured.
    pub instance_arn: Option<String>,
    /// IdC's quotas and patience.
    pub limits: Limits,
    /// Delays the redelivery of failed queue records with exponential backoff (None: the
    /// queue's visibility timeout decides).
    pub requeue: Option<Requeue>,
    /// AWS's account access manager, whose entitlements a revocation lists as not covered
    /// (None: not checked, and every revocation report says so).
    pub account_access: Option<std::sync::Arc<dyn super::ports::AccountAccess>>,
}

impl<Idc, Org, Store, Sink, Log> AccessSyncHandler<Idc, Org, Store, Sink, Log> {
    /// The same handler, completing stub events from this System Log.
    pub fn with_system_log<Log2: SystemLog + OktaGroups>(
        self,
        log: Log2,
    ) -> AccessSyncHandler<Idc, Org, Store, Sink, Log2> {
        AccessSyncHandler {
            idc: self.idc,
            org: self.org,
            store: self.store,
            sink: self.sink,
            system_log: Some(log),
            policy: self.policy,
            instance_arn: self.instance_arn,
            limits: self.limits,
            requeue: self.requeue,
            account_access: self.account_access,
        }
    }
}

impl<Idc, Org, Store, Sink, Log> AccessSyncHandler<Idc, Org, Store, Sink, Log>
where
    Idc: IdentityCenter,
    Org: Organizations,
    Store: StateStore,
    Sink: AlertSink,
    Log: SystemLog + OktaGroups,
{
    /// The Lambda entry point.
    pub async fn handle(&self, event: Value) -> Result<Value, SyncError> {
        match classify(&event)? {
            Trigger::Queue(sqs) => {
                let response = self.handle_queue(sqs).await;
                Ok(serde_json::to_value(response).unwrap_or(Value::Null))
            }
            Trigger::Schedule => {
                let report = self.reconcile(Scope::All).await?;
                // Session denies whose sessions have all ended are lifted. (Grants end on the
                // grants function's own schedule: nothing here can hold them up.)
                let now = Utc::now();
                let released = self.release_due(now).await?;
                let mut out = summary(&report);
                out["sessions_released"] = json!(released);
                Ok(out)
            }
            Trigger::Account { account_id, event_name } => {
                tracing::info!(%account_id, %event_name, "organizations change: reconciling the account");
                let report = self.reconcile(Scope::Account(account_id)).await?;
                Ok(summary(&report))
            }
            Trigger::Ledger => Err(SyncError::UnknownTrigger(
                "the ledger job needs a ledger bucket (IDC_GUARD_LEDGER_BUCKET)".into(),
            )),
        }
    }

    /// Processes queue records in order. Order matters within a FIFO message group (one Okta
    /// group or user): once a record fails, it and every later record of its group are returned
    /// for redelivery, so their order is kept; records of other groups are still processed. On
    /// a standard queue (no group) only the failed record is returned. A record that keeps
    /// failing reaches the dead-letter queue after the queue's `maxReceiveCount` receives.
    pub async fn handle_queue(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failures = Vec::new();
        let mut failed_groups = BTreeSet::new();
        for record in &event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let group = record.attributes.get("MessageGroupId");
            if group.is_some_and(|g| failed_groups.contains(g)) {
                failures.push(item_failure(id));
                continue;
            }
            if let Err(e) = self.process_record(record).await {
                let reason =
                    if matches!(e, SyncError::BadRecord(_)) { "unreadable" } else { "retry" };
                count(Metric::EventsFailed, &[reason], 1);
                tracing::error!(message_id = %id, group = ?group, error = %e, "queue record failed; it and the later records of its message group will be retried");
                if let Some(g) = group {
                    failed_groups.insert(g.clone());
                }
                failures.push(item_failure(id));
            }
        }
        if let Some(requeue) = &self.requeue {
            for record in event.records.iter().filter(|r| {
                failures.iter().any(|f| Some(&f.item_identifier) == r.message_id.as_ref())
            }) {
                if let Err(e) = requeue.delay(record).await {
                    tracing::warn!(error = %e, "could not set the retry delay; the queue's visibility timeout applies");
                }
            }
        }
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        response
    }

    async fn process_record(&self, record: &SqsMessage) -> Result<(), SyncError> {
        let body = record.body.as_deref().ok_or_else(|| SyncError::BadRecord("no body".into()))?;
        if !body.trim_start().starts_with('{') {
            return Err(SyncError::BadRecord("the body is not a JSON object".into()));
        }
        let event: OktaEvent = serde_json::from_str(body)
            .map_err(|e| SyncError::BadRecord(format!("not an Okta event: {e}")))?;
        let event = self.complete_stub(event).await?;
        let key = event
            .uuid
            .clone()
            .or_else(|| record.attributes.get("MessageDeduplicationId").cloned())
            .ok_or_else(|| {
                SyncError::BadRecord("an event without uuid or deduplication id".into())
            })?;
        match claim(&self.store, EVENT_CLAIM_PK, &key).await? {
            Claim::Done => {
                tracing::info!(uuid = %key, "duplicate event skipped");
                return Ok(());
            }
            Claim::Busy => return Err(SyncError::Busy(key)),
            Claim::Acquired => {}
        }
        match self.process_event(&event, &key).await {
            Ok(()) => {
                complete(&self.store, EVENT_CLAIM_PK, &key, records::EVENT_CLAIM_KEEP_SECONDS)
                    .await?;
                Ok(())
            }
            Err(e) => {
                if let Err(release_error) = release(&self.store, EVENT_CLAIM_PK, &key).await {
                    tracing::error!(uuid = %key, error = %release_error, "could not release the claim; it expires by itself");
                }
                Err(e)
            }
        }
    }

    /// An event the hook queued as a stub (too large for one SQS message) is read back whole
    /// from Okta's System Log. When the log is not configured or has no such event, the stub
    /// (uuid, type, published, actor, targets) is processed as it is; an Okta failure that may
    /// pass returns the record for a retry.
    async fn complete_stub(&self, stub: OktaEvent) -> Result<OktaEvent, SyncError> {
        let (Some(info), Some(uuid)) = (&stub.idc_guard_stub, stub.uuid.as_deref()) else {
            return Ok(stub);
        };
        let Some(log) = &self.system_log else {
            tracing::warn!(%uuid, bytes = info.original_bytes, "stub event and no Okta System Log configured: processed as it is");
            return Ok(stub);
        };
        match log.event_by_uuid(uuid, stub.published).await {
            Ok(Some(full)) => {
                tracing::info!(%uuid, "stub event completed from the Okta System Log");
                Ok(full)
            }
            Ok(None) => {
                tracing::warn!(%uuid, "the Okta System Log has no event with this uuid: the stub is processed");
                Ok(stub)
            }
            Err(e) if e.is_retryable() => Err(SyncError::Okta(e)),
            Err(e) => {
                tracing::warn!(%uuid, error = %e, "the Okta System Log could not be read: the stub is processed");
                Ok(stub)
            }
        }
    }

    async fn process_event(&self, event: &OktaEvent, key: &str) -> Result<(), SyncError> {
        let event_type = event.event_type.as_deref().unwrap_or_default();
        tracing::info!(uuid = %key, %event_type, "processing okta event");
        match event_type {
            "group.lifecycle.create"
            | "group.profile.update"
            | "group.lifecycle.delete"
            | "group.application_assignment.add"
            | "group.application_assignment.remove" => {
                self.reconcile_okta_group(event, event_type).await
            }
            "group.user_membership.add" => self.privileged_membership(event, key).await,
            "user.mfa.factor.reset_all"
            | "user.mfa.factor.deactivate"
            | "policy.lifecycle.deactivate"
            | "policy.lifecycle.update"
            | "policy.rule.update"
            | "policy.rule.deactivate"
            | "policy.rule.delete" => self.raise(mfa_weakened(event, key)).await,
            "application.provision.group_push.mapping.update.or.delete.failed.with.error" => {
                let failure = GroupPushFailure {
                    time: event.published,
                    reason: event.outcome.as_ref().and_then(|o| o.reason.clone()),
                    group: event.group().and_then(|g| g.display_name.clone()),
                    event_id: key.to_owned(),
                };
                records::save(&self.store, &failure).await?;
                self.raise(provisioning_failure(event, key)).await
            }
            t if LifecycleStatus::of_event_type(t).is_some() => {
                // Okta does not order deliveries and the catch-up re-queues older events: only
                // the newest known state of the user changes their sessions.
                if self.record_lifecycle(event, key).await? {
                    self.lifecycle_sessions(event, t).await
                } else {
                    tracing::info!(event_type = %t, "older than the user's recorded state: no session change");
                    Ok(())
                }
            }
            t if SIGNIN_EVENT_TYPES.contains(&t) => self.record_signin(event, key).await,
            _ => {
                tracing::debug!(%event_type, "event type not used by access-sync");
                Ok(())
            }
        }
    }

    async fn raise(&self, alert: Alert) -> Result<(), SyncError> {
        let sent = Alerts::new(&self.sink, &self.store).raise(&alert).await?;
        tracing::info!(alert_id = %alert.id, detector = %alert.detector, sent, "alert");
        Ok(())
    }

    /// A group event: reconcile the IdC group of that name, and any group idc-guard managed under
    /// that name before (renamed or deleted).
    async fn reconcile_okta_group(
        &self,
        event: &OktaEvent,
        event_type: &str,
    ) -> Result<(), SyncError> {
        let Some(name) = event.group().and_then(|g| g.display_name.clone()) else {
            tracing::warn!(%event_type, "group event without a group name: left to the scheduled reconcile");
            return Ok(());
        };
        let instance = self.idc.instance(self.instance_arn.as_deref()).await?;
        let current = self.idc.find_group(&instance.identity_store_id, &name).await?;
        let previously: BTreeMap<String, String> = self.managed_groups().await?;
        let mut ids: BTreeSet<String> =
            previously.iter().filter(|(_, n)| **n == name).map(|(id, _)| id.clone()).collect();
        let waiting_for_scim = current.is_none()
            && matches!(
                event_type,
                "group.lifecycle.create"
                    | "group.profile.update"
                    | "group.application_assignment.add"
            );
        if let Some(g) = current {
            ids.insert(g.id);
        }
        if waiting_for_scim && self.policy.rules.iter().any(|r| r.groups.matches(&name).is_some()) {
            return Err(SyncError::GroupNotInIdentityCenter(name));
        }
        if ids.is_empty() {
            tracing::info!(group = %name, "group is not managed by the policy: nothing to do");
            return Ok(());
        }
        let report = self.reconcile(Scope::Groups(ids)).await?;
        tracing::info!(group = %name, created = report.created, deleted = report.deleted, failures = report.failures.len(), "group reconciled");
        Ok(())
    }

    /// The groups idc-guard manages, id → display name.
    pub async fn managed_groups(&self) -> Result<BTreeMap<String, String>, AwsError> {
        ManagedGroup::load_map(&self.store).await
    }

    /// Reconciles and applies: see [`AccessSyncHandler::run`].
    pub async fn reconcile(&self, scope: Scope) -> Result<Report, SyncError> {
        self.run(scope, true, None).await
    }

    /// Runs the reconciler with the remembered managed groups. When applying, it then saves the
    /// new set and alerts on a tripped deletion guard or failed operations; a plan changes nothing.
    pub async fn run(
        &self,
        scope: Scope,
        apply: bool,
        progress: Option<Progress<'_>>,
    ) -> Result<Report, SyncError> {
        let prepared = self.prepare(scope).await?;
        if !apply {
            return Ok(prepared.into_report());
        }
        self.apply_prepared(prepared, progress).await
    }

    pub(crate) fn reconciler(&self) -> Reconciler<'_, Idc, Org> {
        Reconciler::new(&self.idc, &self.org, self.limits.clone())
            .with_instance_arn(self.instance_arn.clone())
    }

    /// Users whose sessions are denied, by permission set ARN (the revocation records): their
    /// deny survives any inline policy a run writes, and one found missing is put back.
    async fn revoked(&self) -> Result<BTreeMap<String, BTreeSet<String>>, AwsError> {
        let mut revoked: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for item in self.store.query(crate::records::RevokedSessions::PK).await? {
            if let Some(r) = <crate::records::RevokedSessions as Record>::from_item(&item) {
                for arn in r.permission_sets {
                    revoked.entry(arn).or_default().insert(item.sk.clone());
                }
            }
        }
        Ok(revoked)
    }

    /// Reads and plans with the remembered managed groups; changes nothing.
    pub async fn prepare(&self, scope: Scope) -> Result<Prepared, SyncError> {
        let before = self.managed_groups().await?;
        let options = RunOptions {
            scope,
            apply: false,
            previously_managed: before.keys().cloned().collect(),
        };
        let reconciler = self.reconciler().with_revoked(self.revoked().await?);
        Ok(reconciler.prepare(&self.policy, &options).await?)
    }

    /// Applies what a person confirmed, and only that: the estate is read again, and when the
    /// changes it calls for differ from the confirmed ones (IdC or the org changed meanwhile),
    /// nothing is applied and the new plan is returned as [`Confirmed::Changed`].
    pub async fn apply_confirmed(
        &self,
        confirmed: &Prepared,
        progress: Option<Progress<'_>>,
    ) -> Result<Confirmed, SyncError> {
        let fresh = self.prepare(confirmed.scope().clone()).await?;
        if fresh.change_key() != confirmed.change_key() {
            return Ok(Confirmed::Changed(Box::new(fresh.into_report())));
        }
        Ok(Confirmed::Applied(Box::new(self.apply_prepared(fresh, progress).await?)))
    }

    /// Applies a prepared plan: remembers its groups first (write-ahead), applies, then saves
    /// the new managed set and raises the run's alerts.
    pub async fn apply_prepared(
        &self,
        prepared: Prepared,
        progress: Option<Progress<'_>>,
    ) -> Result<Report, SyncError> {
        let before = self.managed_groups().await?;
        let reconciler = self.reconciler().with_revoked(self.revoked().await?);
        // Write-ahead: every group this run gives access to is remembered as managed before
        // the first assignment is created, so a crash or timeout between the two can never
        // leave access that a later rename would orphan.
        let mut remembered = before.clone();
        for (id, name) in prepared.groups_to_remember() {
            if remembered.get(&id) != Some(&name) {
                let group = ManagedGroup { group_id: id.clone(), display_name: name.clone() };
                records::save(&self.store, &group).await?;
                remembered.insert(id, name);
            }
        }
        let report = reconciler.apply(&self.policy, prepared, progress).await;
        count(Metric::AssignmentsCreated, &[], report.created);
        count(Metric::AssignmentsDeleted, &[], report.deleted);
        count(Metric::AssignmentsFailed, &[], report.failures.len());
        let not_made = if report.deletions_blocked.is_some() { report.deletes.len() } else { 0 };
        count(Metric::DeletionsHeld, &[], report.held.len() + not_made);
        for id in &report.managed_after {
            let name = report
                .managed_groups
                .get(id)
                .map(|g| g.display_name.clone())
                .or_else(|| remembered.get(id).cloned())
                .unwrap_or_default();
            if remembered.get(id) != Some(&name) {
                let group = ManagedGroup { group_id: id.clone(), display_name: name };
                records::save(&self.store, &group).await?;
            }
        }
        for id in remembered.keys().filter(|id| !report.managed_after.contains(*id)) {
            self.store.delete(ManagedGroup::PK, id).await?;
        }
        if report.deletions_blocked_by_errors() {
            self.raise(deletions_blocked(&report)).await?;
        }
        if !report.unknown_targets.is_empty() {
            self.raise(unknown_targets(&report)).await?;
        }
        if report.deletion_guard_tripped {
            self.raise(deletion_guard(&report)).await?;
        }
        if !report.failures.is_empty() {
            self.raise(assignment_failed(&report)).await?;
        }
        tracing::info!(
            creates = report.creates.len(),
            deletes = report.deletes.len(),
            created = report.created,
            deleted = report.deleted,
            failures = report.failures.len(),
            api_calls = report.api_calls,
            retries = report.retries,
            deletions_blocked = report.deletions_blocked.as_deref().unwrap_or(""),
            "reconcile finished"
        );
        Ok(report)
    }

    async fn privileged_membership(&self, event: &OktaEvent, key: &str) -> Result<(), SyncError> {
        let Some(group) = event.group().and_then(|g| g.display_name.clone()) else { return Ok(()) };
        let tiers = &self.policy.settings.privileged_tiers;
        let Some(rule) = self.policy.rules.iter().find(|r| {
            r.tier.as_ref().is_some_and(|t| tiers.contains(t)) && r.groups.matches(&group).is_some()
        }) else {
            return Ok(());
        };
        let user = event
            .target_of_type("User")
            .and_then(|u| u.alternate_id.clone().or_else(|| u.display_name.clone()));
        let actor = event.actor.as_ref().and_then(|a| a.alternate_id.clone());
        let alert = Alert::new(
            "privileged-group-change",
            key,
            event.published.unwrap_or_else(Utc::now),
            Severity::High,
            format!("{} added to privileged group {group}", user.as_deref().unwrap_or("a user")),
            user.clone(),
            format!(
                "{} added {} to {group} (tier {}, rule {}): this grants {} in AWS.",
                actor.as_deref().unwrap_or("someone"),
                user.as_deref().unwrap_or("a user"),
                rule.tier.as_deref().unwrap_or("-"),
                rule.name,
                rule.permission_sets.join(", ")
            ),
            json!({"group": group, "actor": actor, "rule": rule.name, "tier": rule.tier, "permission_sets": rule.permission_sets}),
            vec![key.to_owned()],
            "Confirm the change with the actor and an approved access request; if unexpected, remove the membership in Okta, review the actor's recent admin activity, and check CloudTrail for the user's sessions.",
        );
        self.raise(alert).await
    }

    /// Records the user's lifecycle state; `false` when a newer state is already recorded
    /// (this event is out of order and must change nothing).
    async fn record_lifecycle(&self, event: &OktaEvent, key: &str) -> Result<bool, SyncError> {
        let Some(record) = Lifecycle::from_event(event, key) else { return Ok(true) };
        // Out-of-order delivery: never let an older event overwrite a newer status.
        let existing: Option<Lifecycle> = records::load(&self.store, &record.key()).await?;
        if existing.is_some_and(|e| e.at > record.at) {
            return Ok(false);
        }
        records::save(&self.store, &record).await?;
        Ok(true)
    }

    /// Deactivated, suspended or deleted in Okta: deny the user's live AWS sessions.
    /// Reactivated: lift the deny at once.
    async fn lifecycle_sessions(
        &self,
        event: &OktaEvent,
        event_type: &str,
    ) -> Result<(), SyncError> {
        let Some(login) = event.target_of_type("User").and_then(|u| u.alternate_id.clone()) else {
            tracing::warn!(%event_type, "lifecycle event without a target login: no session change");
            return Ok(());
        };
        match LifecycleStatus::of_event_type(event_type) {
            Some(LifecycleStatus::Active) => {
                let instance = self.idc.instance(self.instance_arn.as_deref()).await?;
                if let Some(user_id) =
                    self.idc.find_user_id(&instance.identity_store_id, &login).await?
                {
                    self.release_sessions(&user_id).await?;
                }
                Ok(())
            }
            Some(_) => {
                let at = event.published.unwrap_or_else(Utc::now);
                let report =
                    self.revoke_sessions(&login, &format!("Okta {event_type}"), false, at).await?;
                tracing::info!(%login, covered = report.covered.len(), "live sessions denied");
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn record_signin(&self, event: &OktaEvent, key: &str) -> Result<(), SyncError> {
        if let Some(record) = OktaSigninRecord::from_event(event, key) {
            records::save(&self.store, &record).await?;
        }
        Ok(())
    }
}

fn item_failure(id: String) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id;
    f
}

fn summary(r: &Report) -> Value {
    json!({
        "creates": r.creates.len(), "deletes": r.deletes.len(), "created": r.created, "deleted": r.deleted,
        "failures": r.failures.len(), "deletions_blocked": r.deletions_blocked, "api_calls": r.api_calls,
    })
}

fn user_of(event: &OktaEvent) -> Option<String> {
    event
        .target_of_type("User")
        .and_then(|u| u.alternate_id.clone().or_else(|| u.display_name.clone()))
}

fn mfa_weakened(event: &OktaEvent, key: &str) -> Alert {
    let event_type = event.event_type.as_deref().unwrap_or_default();
    let actor = event.actor.as_ref().and_then(|a| a.alternate_id.clone());
    let (severity, title, user) = match event_type {
        "user.mfa.factor.reset_all" => {
            let u = user_of(event);
            (
                Severity::High,
                format!("All MFA factors reset for {}", u.as_deref().unwrap_or("a user")),
                u,
            )
        }
        "user.mfa.factor.deactivate" => {
            let u = user_of(event);
            (
                Severity::Medium,
                format!("An MFA factor was deactivated for {}", u.as_deref().unwrap_or("a user")),
                u,
            )
        }
        _ => {
            let what = event
                .target
                .iter()
                .find(|t| matches!(t.kind.as_deref(), Some("PolicyRule") | Some("PolicyEntity")))
                .and_then(|t| t.display_name.clone())
                .unwrap_or_else(|| "an authentication policy".into());
            let severity = if event_type.ends_with("deactivate") || event_type.ends_with("delete") {
                Severity::High
            } else {
                Severity::Medium
            };
            let verb = event_type.rsplit('.').next().unwrap_or("changed");
            (severity, format!("Authentication policy change ({verb}): {what}"), None)
        }
    };
    Alert::new(
        "mfa-weakened",
        key,
        event.published.unwrap_or_else(Utc::now),
        severity,
        title,
        user,
        format!(
            "Okta {event_type} by {}: {}.",
            actor.as_deref().unwrap_or("unknown actor"),
            event.display_message.as_deref().unwrap_or("no message")
        ),
        json!({"event_type": event_type, "actor": actor, "targets": event.target, "client_ip": event.client.as_ref().and_then(|c| c.ip_address.clone())}),
        vec![key.to_owned()],
        "Confirm the change with the actor. If it was not planned: restore the factor or policy in Okta, expire the user's sessions, and review the user's recent AWS activity (idc-guard diagnose).",
    )
}

fn provisioning_failure(event: &OktaEvent, key: &str) -> Alert {
    let group = event.group().and_then(|g| g.display_name.clone());
    let reason = event.outcome.as_ref().and_then(|o| o.reason.clone());
    Alert::new(
        "scim-provisioning-failure",
        key,
        event.published.unwrap_or_else(Utc::now),
        Severity::Critical,
        format!(
            "Okta could not push group {} to IAM Identity Center",
            group.as_deref().unwrap_or("?")
        ),
        None,
        format!(
            "Group push failed: {}. Provisioning to AWS may have stopped; a rejected SCIM token is the usual cause.",
            reason.as_deref().unwrap_or("no reason given")
        ),
        json!({"group": group, "reason": reason, "app": event.target_of_type("AppInstance").and_then(|a| a.display_name.clone())}),
        vec![key.to_owned()],
        "Run `idc-guard scim-token status`. If the token is expired or rejected, generate a new one in the IAM Identity Center console, stage it with `idc-guard scim-token stage`, then retry the push in Okta (Applications > AWS IAM Identity Center > Push Groups).",
    )
}

fn deletion_guard(r: &Report) -> Alert {
    let key: Vec<String> = r
        .deletes
        .iter()
        .map(|d| format!("{}/{}/{}", d.group_id, d.permission_set, d.account_id))
        .collect();
    Alert::new(
        "deletion-guard-tripped",
        &key.join(","),
        Utc::now(),
        Severity::High,
        format!("Reconcile refused to delete {} assignments", r.deletes.len()),
        None,
        r.deletions_blocked.clone().unwrap_or_default(),
        json!({"deletes": r.deletes.iter().take(50).collect::<Vec<_>>(), "total": r.deletes.len()}),
        vec![],
        "Review the deletions with `idc-guard plan`. If they are intended, raise max_deletions in the policy for one run (or apply with the CLI); if not, fix the policy or the group names in Okta.",
    )
}

/// Deletions blocked by a failed read or a policy error: raised once per distinct cause (which
/// read or which policy error, not the error's wording), with the removals that wait.
fn deletions_blocked(r: &Report) -> Alert {
    let mut causes: Vec<String> = r
        .policy_errors
        .iter()
        .chain(r.read_errors.iter())
        .map(|e| e.split(':').next().unwrap_or(e).trim().to_owned())
        .collect();
    causes.sort();
    causes.dedup();
    let waiting: BTreeSet<String> = r.deletes.iter().map(|d| d.group.clone()).collect();
    Alert::new(
        "deletions-blocked",
        &causes.join("\n"),
        Utc::now(),
        Severity::High,
        format!(
            "Access removals are blocked: {} ({} removal(s) waiting)",
            causes.join("; "),
            r.deletes.len()
        ),
        None,
        format!(
            "No assignment is deleted while this lasts, on every run: {}",
            r.policy_errors
                .iter()
                .chain(r.read_errors.iter())
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ),
        json!({
            "causes": causes,
            "policy_errors": r.policy_errors,
            "read_errors": r.read_errors,
            "groups_waiting": waiting,
            "removals_waiting": r.deletes.iter().take(50).collect::<Vec<_>>(),
            "total_waiting": r.deletes.len(),
        }),
        vec![],
        "Fix the cause: create the permission set the policy names (or remove `managed = false`), or grant access-sync the permission it lacks. Until then access that should be removed stays. `idc-guard plan` shows the same.",
    )
}

/// Targets the policy names that the organisation lacks: raised once per set of them.
fn unknown_targets(r: &Report) -> Alert {
    Alert::new(
        "unknown-target",
        &r.unknown_targets.join("\n"),
        Utc::now(),
        Severity::Medium,
        format!(
            "The access policy names {} target(s) the organisation does not have",
            r.unknown_targets.len()
        ),
        None,
        format!("Nothing is assigned for them: {}", r.unknown_targets.join("; ")),
        json!({"unknown_targets": r.unknown_targets}),
        vec![],
        "Replace placeholder or mistyped OU and account ids in the policy, or tag the accounts a team group should reach. `idc-guard plan --strict` fails on them.",
    )
}

fn assignment_failed(r: &Report) -> Alert {
    let key: Vec<String> = r
        .failures
        .iter()
        .map(|f| {
            format!(
                "{}/{}/{}/{}",
                f.action, f.change.group_id, f.change.permission_set, f.change.account_id
            )
        })
        .collect();
    Alert::new(
        "assignment-failed",
        &key.join(","),
        Utc::now(),
        Severity::Medium,
        format!("{} account assignment operations failed", r.failures.len()),
        None,
        r.failures
            .first()
            .map(|f| {
                format!(
                    "e.g. {} {} in {}: {}",
                    f.action, f.change.permission_set, f.change.account_id, f.reason
                )
            })
            .unwrap_or_default(),
        json!({"failures": r.failures.iter().take(50).collect::<Vec<_>>()}),
        vec![],
        "Check the failure reasons; the next scheduled reconcile retries them. Persistent failures usually mean a suspended account or a permission set that cannot be provisioned there.",
    )
}

impl<Idc, Org, Store, Sink, Log> AccessSyncHandler<Idc, Org, Store, Sink, Log>
where
    Idc: super::ports::Estate,
    Org: Organizations,
    Store: StateStore,
    Sink: AlertSink,
    Log: SystemLog + OktaGroups,
{
    /// Reads the access ledger (see [`super::ledger`]).
    pub async fn ledger(&self, now: DateTime<Utc>) -> Result<super::ledger::Ledger, AwsError> {
        super::ledger::build(
            &super::ledger::build::Sources {
                idc: &self.idc,
                org: &self.org,
                account_access: self.account_access.as_deref(),
                store: &self.store,
                policy: &self.policy,
                instance_arn: self.instance_arn.as_deref(),
                limits: self.limits.clone(),
            },
            now,
        )
        .await
    }

    /// [`Self::handle`], and the scheduled ledger export into `archive` (the deployment's
    /// ledger bucket).
    pub async fn handle_with_ledger(
        &self,
        event: Value,
        archive: Option<&dyn super::ledger::export::LedgerArchive>,
    ) -> Result<Value, SyncError> {
        let (Ok(Trigger::Ledger), Some(archive)) = (classify(&event), archive) else {
            return self.handle(event).await;
        };
        let ledger = self.ledger(Utc::now()).await.map_err(SyncError::Aws)?;
        let published =
            super::ledger::export::publish(&ledger, archive).await.map_err(SyncError::Aws)?;
        tracing::info!(rows = published.rows, calls = ledger.calls, "access ledger exported");
        Ok(json!({
            "ledger_rows": published.rows,
            "api_calls": ledger.calls,
            "objects": published.keys,
            "added": published.diff.as_ref().map(|d| d.added.len()),
            "removed": published.diff.as_ref().map(|d| d.removed.len()),
            "notes": ledger.notes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn triggers_are_told_apart_by_shape() {
        assert_eq!(
            classify(&parse(include_str!("../../../events/eventbridge/scheduled-reconcile.json")))
                .unwrap(),
            Trigger::Schedule
        );
        // The ledger's schedule (template.yaml's Input): its own job, not a reconcile.
        assert_eq!(
            classify(&parse(include_str!("../../../events/eventbridge/scheduled-ledger.json")))
                .unwrap(),
            Trigger::Ledger
        );
        for (text, name) in [
            (
                include_str!(
                    "../../../events/eventbridge/organizations-create-account-result.json"
                ),
                "CreateAccountResult",
            ),
            (
                include_str!("../../../events/eventbridge/organizations-move-account.json"),
                "MoveAccount",
            ),
            (
                include_str!("../../../events/eventbridge/organizations-tag-resource.json"),
                "TagResource",
            ),
        ] {
            assert_eq!(
                classify(&parse(text)).unwrap(),
                Trigger::Account { account_id: "210987654321".into(), event_name: name.into() }
            );
        }
        let Trigger::Queue(sqs) =
            classify(&parse(include_str!("../../../events/sqs/okta-events-batch.json"))).unwrap()
        else {
            panic!("not a queue trigger")
        };
        assert_eq!(sqs.records.len(), 2);
        let first: OktaEvent =
            serde_json::from_str(sqs.records[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(first.event_type.as_deref(), Some("group.user_membership.add"));
    }

    #[test]
    fn unknown_triggers_are_refused_with_a_reason() {
        for text in [
            r#"{}"#,
            r#"{"source":"aws.health","detail-type":"AWS Health Event"}"#,
            r#"{"source":"aws.organizations","detail":{"eventName":"CreateAccountResult"}}"#,
            r#"{"Records":"nope"}"#,
        ] {
            let err = classify(&parse(text)).unwrap_err();
            assert!(matches!(err, SyncError::UnknownTrigger(_)), "{text}: {err}");
        }
    }
}
