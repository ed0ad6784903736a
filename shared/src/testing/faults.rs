//! Fault injection for the fault-sweep tests: any port wrapped in [`Faulty`] counts its calls in
//! a shared [`Faults`], and the N-th call (across every wrapped port) fails on command:
//!
//! - [`Fault::Error`]: the call fails before it has any effect (a refused request, a 5xx);
//! - [`Fault::Timeout`]: the call takes effect, then fails (the answer was lost on the way back:
//!   a timeout after the service acted), the case that makes retries send things twice;
//! - [`Fault::Drop`]: the call never returns, so the caller's future is dropped there (a crash,
//!   a Lambda timeout); the test drives the flow under a deadline on paused time.
//!
//! A sweep runs a flow once healthy to count its calls, then for every N and every fault runs it
//! on a fresh world with that fault, then again with healthy ports, and checks the end state.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::access::plan::Group;
use crate::access::policy::{CustomerManagedPolicy, PermissionSetSpec, PermissionsBoundary};
use crate::access::ports::{
    ActualAssignment, IdcInstance, IdentityCenter, OperationStatus, OrgSnapshot, Organizations,
    PermissionSetInfo, PermissionSetPolicies,
};
use crate::alert::{Alert, AlertSink};
use crate::error::AwsError;
use crate::okta::ports::{EventQueue, OktaApi, OktaError, QueueMessage, RejectedMessage};
use crate::scim::ports::{Probe, ScimProbe};
use crate::secret::{SecretAdmin, SecretDescription, SecretStore, SecretString, SecretVersions};
use crate::store::{Item, StateStore};

/// How the chosen call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fails before any effect.
    Error,
    /// Takes effect, then fails.
    Timeout,
    /// Never returns: the caller's future is dropped.
    Drop,
}

/// Every kind of fault, for the sweeps' tables.
pub const ALL_FAULTS: [Fault; 3] = [Fault::Error, Fault::Timeout, Fault::Drop];

/// The call counter and the armed fault, shared by every wrapped port of one world.
#[derive(Debug, Default)]
pub struct Faults {
    calls: AtomicUsize,
    armed: Mutex<Option<(usize, Fault)>>,
    hit: Mutex<Option<(&'static str, Fault)>>,
    ops: Mutex<Vec<&'static str>>,
}

impl Faults {
    /// Fails the `n`-th call from now (1-based) with `fault`; the counter restarts.
    pub fn arm(&self, n: usize, fault: Fault) {
        self.calls.store(0, Ordering::SeqCst);
        self.ops.lock().unwrap().clear();
        *self.hit.lock().unwrap() = None;
        *self.armed.lock().unwrap() = Some((n, fault));
    }

    /// No more faults; the counter restarts.
    pub fn disarm(&self) {
        self.calls.store(0, Ordering::SeqCst);
        self.ops.lock().unwrap().clear();
        *self.armed.lock().unwrap() = None;
    }

    /// Calls made since the last `arm` or `disarm`.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The calls made since the last `arm` or `disarm`, in order.
    pub fn ops(&self) -> Vec<&'static str> {
        self.ops.lock().unwrap().clone()
    }

    /// The call that failed, and how, once the armed fault struck.
    pub fn hit(&self) -> Option<(&'static str, Fault)> {
        *self.hit.lock().unwrap()
    }

    /// Runs one port call `op`, failing it when it is the armed one.
    pub async fn around<T, E>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, E>>,
        injected: impl FnOnce(&'static str) -> E,
    ) -> Result<T, E> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.ops.lock().unwrap().push(op);
        let fault = match *self.armed.lock().unwrap() {
            Some((at, fault)) if at == n => Some(fault),
            _ => None,
        };
        let Some(fault) = fault else { return call.await };
        *self.hit.lock().unwrap() = Some((op, fault));
        match fault {
            Fault::Error => Err(injected(op)),
            Fault::Timeout => {
                let _ = call.await;
                Err(injected(op))
            }
            Fault::Drop => std::future::pending().await,
        }
    }
}

/// The error an injected AWS fault returns: retryable, as a 5xx or a timeout would be.
pub fn aws_fault(op: &'static str) -> AwsError {
    AwsError::Retryable { service: "fault", operation: op, message: "injected fault".into() }
}

fn okta_fault(_: &'static str) -> OktaError {
    OktaError::Transport("injected fault".into())
}

/// A port whose calls go through a shared [`Faults`].
pub struct Faulty<'a, T> {
    /// The real fake.
    pub inner: T,
    /// The shared counter and armed fault.
    pub faults: &'a Faults,
}

impl<'a, T> Faulty<'a, T> {
    /// Wraps `inner`.
    pub fn new(inner: T, faults: &'a Faults) -> Self {
        Self { inner, faults }
    }
}

/// Delegating methods that return `Result<_, AwsError>`, each through `Faults::around`.
macro_rules! through_faults {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(
            async fn $name(&self, $($arg: $ty),*) -> Result<$ret, AwsError> {
                self.faults.around(stringify!($name), self.inner.$name($($arg),*), aws_fault).await
            }
        )*
    };
}

impl<T: StateStore> StateStore for Faulty<'_, T> {
    through_faults! {
        get(pk: &str, sk: &str) -> Option<Item>;
        put(item: Item) -> ();
        put_many(items: Vec<Item>) -> ();
        put_if_absent(item: Item) -> bool;
        put_if_unchanged(item: Item, seen: Option<&Item>) -> bool;
        put_many_if_unchanged(writes: Vec<(Item, Option<Item>)>) -> Vec<bool>;
        query(pk: &str) -> Vec<Item>;
        delete(pk: &str, sk: &str) -> ();
    }
}

impl<T: AlertSink> AlertSink for Faulty<'_, T> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn parts(&self) -> Vec<&'static str> {
        self.inner.parts()
    }
    through_faults! {
        send(alert: &Alert) -> ();
        send_part(part: &str, alert: &Alert) -> ();
    }
}

impl<T: IdentityCenter> IdentityCenter for Faulty<'_, T> {
    through_faults! {
        instance(configured_arn: Option<&str>) -> IdcInstance;
        list_groups(store: &str) -> Vec<Group>;
        find_group(store: &str, display_name: &str) -> Option<Group>;
        describe_group(store: &str, group_id: &str) -> Option<Group>;
        list_group_member_names(store: &str, group_id: &str) -> Vec<String>;
        list_permission_sets(instance: &str) -> Vec<PermissionSetInfo>;
        permission_set_policies(instance: &str, arn: &str, read_boundary: bool) -> PermissionSetPolicies;
        create_permission_set(instance: &str, spec: &PermissionSetSpec) -> String;
        update_permission_set(instance: &str, arn: &str, spec: &PermissionSetSpec) -> ();
        attach_managed_policy(instance: &str, arn: &str, policy_arn: &str, attach: bool) -> ();
        attach_customer_managed_policy(instance: &str, arn: &str, policy: &CustomerManagedPolicy, attach: bool) -> ();
        set_inline_policy(instance: &str, arn: &str, policy: Option<&str>) -> ();
        set_permissions_boundary(instance: &str, arn: &str, boundary: &PermissionsBoundary) -> ();
        provision_permission_set(instance: &str, arn: &str) -> String;
        list_group_assignments(instance: &str, group_id: &str) -> (Vec<ActualAssignment>, usize);
        list_user_assignments(instance: &str, user_id: &str) -> Vec<ActualAssignment>;
        provision_to_account(instance: &str, arn: &str, account_id: &str) -> String;
        create_assignment(instance: &str, group_id: &str, ps_arn: &str, account: &str) -> (String, OperationStatus);
        delete_assignment(instance: &str, group_id: &str, ps_arn: &str, account: &str) -> (String, OperationStatus);
        assignment_status(instance: &str, request_id: &str, creation: bool) -> OperationStatus;
        find_user_id(store: &str, user_name: &str) -> Option<String>;
        user_group_ids(store: &str, user_id: &str) -> Vec<String>;
        provisioning_status(instance: &str, request_id: &str) -> OperationStatus;
    }
}

impl<T: Organizations> Organizations for Faulty<'_, T> {
    through_faults! {
        snapshot(with_tags: bool) -> OrgSnapshot;
    }
}

impl<T: SecretStore> SecretStore for Faulty<'_, T> {
    through_faults! {
        secret_string(secret_id: &str, stage: &str) -> Option<SecretString>;
    }
}

impl<T: SecretVersions> SecretVersions for Faulty<'_, T> {
    through_faults! {
        describe(secret_id: &str) -> SecretDescription;
        version_value(secret_id: &str, version_id: &str) -> Option<SecretString>;
    }
}

impl<T: SecretAdmin> SecretAdmin for Faulty<'_, T> {
    through_faults! {
        put_pending(secret_id: &str, version_id: &str, value: &SecretString) -> ();
        promote(secret_id: &str, to_version: &str, from_version: Option<&str>) -> ();
        random_password(length: i64) -> SecretString;
        start_rotation(secret_id: &str, version_id: &str) -> ();
    }
}

impl<T: EventQueue> EventQueue for Faulty<'_, T> {
    through_faults! {
        send_batch(messages: &[QueueMessage]) -> Vec<RejectedMessage>;
    }
}

impl<T: OktaApi> OktaApi for Faulty<'_, T> {
    async fn set_event_hook_secret(
        &self,
        hook_id: &str,
        value: &SecretString,
    ) -> Result<(), OktaError> {
        let call = self.inner.set_event_hook_secret(hook_id, value);
        self.faults.around("set_event_hook_secret", call, okta_fault).await
    }
    async fn verify_event_hook(&self, hook_id: &str) -> Result<bool, OktaError> {
        let call = self.inner.verify_event_hook(hook_id);
        self.faults.around("verify_event_hook", call, okta_fault).await
    }
    async fn set_app_provisioning_token(
        &self,
        app_id: &str,
        token: &SecretString,
    ) -> Result<(), OktaError> {
        let call = self.inner.set_app_provisioning_token(app_id, token);
        self.faults.around("set_app_provisioning_token", call, okta_fault).await
    }
}

impl<T: ScimProbe> ScimProbe for Faulty<'_, T> {
    async fn probe(&self, endpoint: &str, token: &SecretString) -> Probe {
        let call = async { Ok::<_, Probe>(self.inner.probe(endpoint, token).await) };
        let inconclusive = |_| Probe::Inconclusive("injected fault".into());
        match self.faults.around("probe", call, inconclusive).await {
            Ok(p) | Err(p) => p,
        }
    }
}

/// A sink that records every alert id it accepted, under its own name.
#[derive(Debug)]
pub struct RecordingSink {
    /// The sink's name (a part of a fan-out).
    pub name: &'static str,
    /// Alert ids accepted, in order, repeats included.
    pub sent: Mutex<Vec<String>>,
    /// Alert ids whose findings were closed, in order.
    pub resolved: Mutex<Vec<String>>,
}

impl RecordingSink {
    /// An empty sink called `name`.
    pub fn new(name: &'static str) -> Self {
        Self { name, sent: Mutex::new(Vec::new()), resolved: Mutex::new(Vec::new()) }
    }

    /// Alert ids accepted so far, repeats included.
    pub fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }
}

impl AlertSink for &RecordingSink {
    fn name(&self) -> &'static str {
        self.name
    }
    async fn send(&self, alert: &Alert) -> Result<(), AwsError> {
        self.sent.lock().unwrap().push(alert.id.clone());
        Ok(())
    }
    async fn resolve(&self, alert: &Alert) -> Result<(), AwsError> {
        self.resolved.lock().unwrap().push(alert.id.clone());
        Ok(())
    }
}

/// A queue that accepts every message and records it, in order.
#[derive(Debug, Default)]
pub struct RecordingQueue {
    /// Messages accepted, in order, repeats included.
    pub accepted: Mutex<Vec<crate::okta::ports::QueueMessage>>,
}

impl RecordingQueue {
    /// The deduplication ids accepted so far, in order.
    pub fn ids(&self) -> Vec<String> {
        self.accepted.lock().unwrap().iter().map(|m| m.deduplication_id.clone()).collect()
    }
}

impl EventQueue for &RecordingQueue {
    async fn send_batch(
        &self,
        messages: &[crate::okta::ports::QueueMessage],
    ) -> Result<Vec<crate::okta::ports::RejectedMessage>, AwsError> {
        self.accepted.lock().unwrap().extend_from_slice(messages);
        Ok(Vec::new())
    }
}
