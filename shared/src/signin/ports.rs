//! The sign-in checks' ports: CloudTrail's `LookupEvents`, CloudTrail log objects in S3, and the
//! identity store's user names. Adapters: `adapters/cloudtrail.rs`.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::error::AwsError;

/// One `LookupEvents` page.
pub struct Page {
    /// Each event's `CloudTrailEvent` (the record as JSON text).
    pub records: Vec<String>,
    /// The next page's token.
    pub next_token: Option<String>,
}

/// CloudTrail `LookupEvents` (the SDK adapter is `adapters::CloudTrailLookup`).
pub trait TrailLookup: Send + Sync {
    /// One page of events of `event_source` between `start` and `end`.
    fn page(
        &self,
        event_source: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page, AwsError>> + Send;
}

/// CloudTrail log objects (the SDK adapter is `adapters::S3LogObjects`).
pub trait LogObjects: Send + Sync {
    /// The object's bytes (gzip or plain).
    fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<u8>, AwsError>> + Send;
}

/// Resolves an identity-store user id to its user name (identitystore:DescribeUser in Lambda).
pub trait UserDirectory: Send + Sync {
    /// The user name of an identity-store user id; `None` when there is no such user.
    fn user_name(
        &self,
        identity_store_id: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;
}

/// No directory: user ids are resolved only from the events themselves.
pub struct NoDirectory;

impl UserDirectory for NoDirectory {
    async fn user_name(&self, _: &str, _: &str) -> Result<Option<String>, AwsError> {
        Ok(None)
    }
}
