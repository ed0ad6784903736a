//! Okta: the event-hook envelope and event model, and the event-hook endpoint.

pub mod client;
pub mod event;
pub mod hook;

pub use event::{EventHookEnvelope, OktaEvent};
