//! idc-guard's domain logic, shared by the Lambda functions and the `idc-guard` CLI.
//!
//! `ARCHITECTURE.md` at the repository root has the data flow from each trigger, the invariants
//! and how to extend the crate. Modules:
//! - [`okta`]: the event-hook envelope and event model, the hook endpoint, the Okta API client;
//! - [`access`]: the access policy, the planner, the reconciler and the `access-sync` handler;
//! - [`scim`]: SCIM token and hook secret rotation, the SCIM probe, the daily token check;
//! - [`signin`]: CloudTrail sign-in records, detectors, the sweep, `scan` and `diagnose`;
//! - [`alert`]: the one Alert type, its sinks and per-sink delivery;
//! - [`store`]: the state store port and its DynamoDB and SQLite implementations;
//! - [`records`]: every record one part writes to the state store and another reads, typed;
//! - [`aws`]: ports over the AWS APIs and their SDK-backed adapters;
//! - [`geo`]: offline geolocation; [`secret`]: values that never print;
//! - [`config`], [`error`], [`telemetry`]: configuration, shared errors, logging.
//!
//! Handlers are generic over the ports, so tests run them against the local AWS endpoint, fakes
//! or HTTP mocks.

pub mod access;
pub mod adapters;
pub mod alert;
pub mod config;
pub mod error;
pub mod geo;
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

#[cfg(test)]
mod architecture_tests;
