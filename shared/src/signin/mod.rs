//! CloudTrail sign-in activity (groundwork for the sign-in anomaly checks): the record model in
//! both the 2025 `IdentityCenterUser` shape and the older `Unknown` shape, normalisation into
//! [`model::Activity`], and the input formats `idc-guard scan` and the function read.

pub mod detect;
pub mod engine;
pub mod model;
pub mod okta;
pub mod scan;
pub mod settings;
pub mod sources;
