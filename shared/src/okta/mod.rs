//! Okta: the event-hook envelope and event model, and the event-hook endpoint.

pub mod event;
pub mod hook;
pub mod org_url;
pub mod ports;

pub use event::{EventHookEnvelope, OktaEvent};
