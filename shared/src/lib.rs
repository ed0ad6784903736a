//! idc-guard's domain logic, shared by the Lambda functions and the `idc-guard` CLI.
//!
//! The layout follows `DESIGN.md`: `okta` (event hooks and the Okta API), `aws` (ports over the
//! AWS APIs and their SDK-backed adapters), `config`, `error` and `telemetry`. Handlers are generic
//! over the ports in [`aws`], so tests run them against the local AWS endpoint or in-memory fakes.

pub mod access;
pub mod alert;
pub mod aws;
pub mod config;
pub mod error;
pub mod geo;
pub mod okta;
pub mod scim;
pub mod secret;
pub mod signin;
pub mod store;
pub mod telemetry;
