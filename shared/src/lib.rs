//! idc-guard's domain logic, shared by the Lambda functions and the `idc-guard` CLI.
//!
//! `ARCHITECTURE.md` at the repository root has the data flow from each trigger, the invariants
//! and how to extend the crate. Domains, each with its ports (traits) in `ports.rs`:
//! - [`okta`]: the event-hook envelope and event model, the hook endpoint, Okta org URLs;
//! - [`access`]: the access policy, the planner, the reconciler and the `access-sync` handler;
//! - [`scim`]: SCIM token and hook secret rotation, the daily token check;
//! - [`signin`]: CloudTrail sign-in records, detectors, the sweep, `scan` and `diagnose`;
//! - [`alert`]: the one Alert type, the sink port and per-sink delivery.
//!
//! Shared foundations:
//! - [`records`]: every record one part writes to the state store and another reads, typed;
//! - [`store`]: the state store port and exactly-once claims;
//! - [`secret`]: values that never print, and the secret store port;
//! - [`policy_file`]: findings with line and column for the policy file's two readers;
//! - [`geo`]: offline geolocation; [`config`]: environment variables, fail closed;
//! - [`idc_roles`]: which IAM role is an IAM Identity Center permission set's;
//! - [`encodings`]: the text encodings exports arrive in (a byte-order mark, UTF-16);
//! - [`error`], [`telemetry`]: shared errors, logging.
//!
//! [`adapters`] holds every implementation of a port that leaves the process (AWS SDK clients,
//! Okta's and IdC's HTTP APIs, the webhook, DynamoDB and SQLite); no domain module uses it, so
//! handlers are generic over the ports and tests run them against the local AWS endpoint, the
//! fakes in `testing` (feature `test-support`) or HTTP mocks.

#![warn(missing_docs)]

pub mod access;
pub mod adapters;
pub mod alert;
pub mod config;
pub mod encodings;
pub mod error;
pub mod geo;
pub mod health;
pub mod idc_roles;
pub mod ocsf;
pub mod okta;
pub mod policy_file;
pub mod records;
pub mod scim;
pub mod secret;
pub mod signin;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod time_forms;

#[cfg(test)]
mod architecture_tests;
#[cfg(test)]
mod input_fuzz_tests;
