//! The workspace's integration tests, one binary: each handler against the local AWS stand-in
//! (moto, through the real SDK adapters), Okta and the SCIM endpoint as HTTP mocks, and the
//! access handler against the quota-enforcing fakes of `idc_guard::testing`.

mod access_fakes;
mod access_sync;
mod health;
mod okta_event_hook;
mod scim_rotation;
mod security_hub;
mod signin_anomaly;
mod state_store;
