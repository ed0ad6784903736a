//! What the integration-health checks read from Okta: its Management API as JSON documents.
//! The checks pick the fields they need defensively (a missing field is evidence, never a
//! crash), so one read port serves the apps, keys, policies, groups and System Log reads.

use std::future::Future;

use serde_json::Value;

use crate::okta::ports::OktaError;

/// Read-only access to Okta's Management API.
pub trait OktaReader: Send + Sync {
    /// `GET` of a path on the org (one document or one page).
    fn get_json(&self, path: &str) -> impl Future<Output = Result<Value, OktaError>> + Send;
    /// Every item of a paginated list (follows `Link: rel="next"` to the end).
    fn get_list(&self, path: &str) -> impl Future<Output = Result<Vec<Value>, OktaError>> + Send;
    /// One page of a list and its `next` link: the System Log's polling mode, where a `next`
    /// link is returned even when the page is empty.
    fn get_page(
        &self,
        path_or_url: &str,
    ) -> impl Future<Output = Result<(Vec<Value>, Option<String>), OktaError>> + Send;
}
