//! Okta: the event-hook envelope and event model, the event-hook endpoint, and ID tokens.

pub mod event;
pub mod hook;
pub mod id_token;
pub mod org_url;
pub mod ports;

pub use event::{EventHookEnvelope, OktaEvent};
