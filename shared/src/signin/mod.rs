//! CloudTrail-driven sign-in anomaly checks, correlated with what Okta saw: the record model in
//! both the 2025 `IdentityCenterUser` shape and the older `Unknown` shape ([`model`]), input
//! formats ([`sources`]), the detectors ([`detect`], [`engine`]) with per-user baselines in the
//! state store ([`scan`]), the function's sources ([`lookup`]) and handler ([`function`]).

pub mod detect;
pub mod diagnose;
pub mod engine;
pub mod function;
pub mod history;
pub mod inflate;
pub mod lookup;
pub mod model;
pub mod okta;
pub mod parallel;
pub mod ports;
pub mod prefilter;
pub mod scan;
pub mod settings;
pub mod skim;
pub mod sources;
pub mod synth;
