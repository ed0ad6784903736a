//! Adapters for the sign-in checks: CloudTrail `LookupEvents`, CloudTrail log objects in S3, and
//! identitystore `DescribeUser` for resolving user ids.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use chrono::{DateTime, Utc};

use crate::error::AwsError;
use crate::signin::ports::UserDirectory;
use crate::signin::ports::{LogObjects, Page, TrailLookup};

crate::error::sdk_error_fn!(trail, "cloudtrail", "ThrottlingException");
crate::error::sdk_error_fn!(s3, "s3");
crate::error::sdk_error_fn!(ids, "identitystore");

/// `LookupEvents` with one `EventSource` attribute, 50 events a page (the API's maximum).
#[derive(Debug, Clone)]
pub struct CloudTrailLookup {
    client: aws_sdk_cloudtrail::Client,
}

impl CloudTrailLookup {
    /// A lookup with this client.
    pub fn new(client: aws_sdk_cloudtrail::Client) -> Self {
        Self { client }
    }
}

/// The one lookup attribute `LookupEvents` takes.
fn lookup_attribute(key: LookupAttributeKey, value: &str) -> Result<LookupAttribute, AwsError> {
    LookupAttribute::builder().attribute_key(key).attribute_value(value).build().map_err(|e| {
        AwsError::Permanent {
            service: "cloudtrail",
            operation: "LookupEvents",
            message: e.to_string(),
        }
    })
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.timestamp_millis())
}

impl CloudTrailLookup {
    /// One `LookupEvents` page (50 events, the API's maximum) of events with this attribute.
    async fn one_page(
        &self,
        attribute: LookupAttribute,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        next_token: Option<String>,
    ) -> Result<Page, AwsError> {
        let out = self
            .client
            .lookup_events()
            .lookup_attributes(attribute)
            .start_time(smithy_time(start))
            .end_time(smithy_time(end))
            .max_results(50)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| trail("LookupEvents", e))?;
        Ok(Page {
            records: out
                .events
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| e.cloud_trail_event)
                .collect(),
            next_token: out.next_token,
        })
    }
}

impl TrailLookup for CloudTrailLookup {
    async fn page(
        &self,
        event_source: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        next_token: Option<String>,
    ) -> Result<Page, AwsError> {
        let attribute = lookup_attribute(LookupAttributeKey::EventSource, event_source)?;
        self.one_page(attribute, start, end, next_token).await
    }
}

impl crate::access::grants::activity::UserActivity for CloudTrailLookup {
    fn events<'a>(
        &'a self,
        user_name: &'a str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> futures::future::BoxFuture<'a, Result<Vec<String>, AwsError>> {
        Box::pin(async move {
            let attribute = lookup_attribute(LookupAttributeKey::Username, user_name)?;
            let mut records = Vec::new();
            let mut next_token = None;
            // LookupEvents answers two calls a second per account and region: a long, busy
            // window is cut at 20 pages (1,000 events), which the summary counts as all.
            for _ in 0..20 {
                let page = self.one_page(attribute.clone(), start, end, next_token).await?;
                records.extend(page.records);
                next_token = page.next_token;
                if next_token.is_none() {
                    break;
                }
            }
            Ok(records)
        })
    }
}

/// CloudTrail log objects in S3.
#[derive(Debug, Clone)]
pub struct S3LogObjects {
    client: aws_sdk_s3::Client,
}

impl S3LogObjects {
    /// Objects read with this client.
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }
}

impl LogObjects for S3LogObjects {
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, AwsError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3("GetObject", e))?;
        let body = out.body.collect().await.map_err(|e| AwsError::Retryable {
            service: "s3",
            operation: "GetObject",
            message: e.to_string(),
        })?;
        Ok(body.into_bytes().to_vec())
    }
}

/// The access ledger's exports in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3LedgerArchive {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3LedgerArchive {
    /// Exports to `bucket` with this client.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }
}

impl crate::access::ledger::export::LedgerArchive for S3LedgerArchive {
    fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<Vec<u8>>, AwsError>> {
        Box::pin(async move {
            match self.client.get_object().bucket(&self.bucket).key(key).send().await {
                Ok(out) => {
                    let body = out.body.collect().await.map_err(|e| AwsError::Retryable {
                        service: "s3",
                        operation: "GetObject",
                        message: e.to_string(),
                    })?;
                    Ok(Some(body.into_bytes().to_vec()))
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                Err(e) => Err(s3("GetObject", e)),
            }
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        content_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .body(body.into())
                .send()
                .await
                .map_err(|e| s3("PutObject", e))?;
            Ok(())
        })
    }
}

/// identitystore `DescribeUser`, cached for the life of the process.
#[derive(Debug)]
pub struct IdentityStoreDirectory {
    client: aws_sdk_identitystore::Client,
    cache: Mutex<HashMap<String, Option<String>>>,
}

impl IdentityStoreDirectory {
    /// A directory with this client (names are cached per user id).
    pub fn new(client: aws_sdk_identitystore::Client) -> Self {
        Self { client, cache: Mutex::new(HashMap::new()) }
    }
}

impl UserDirectory for IdentityStoreDirectory {
    async fn user_name(&self, store_id: &str, user_id: &str) -> Result<Option<String>, AwsError> {
        let cached = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(user_id).cloned();
        if let Some(hit) = cached {
            return Ok(hit);
        }
        let name = match self
            .client
            .describe_user()
            .identity_store_id(store_id)
            .user_id(user_id)
            .send()
            .await
        {
            Ok(out) => out.user_name,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                None
            }
            Err(e) => return Err(ids("DescribeUser", e)),
        };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user_id.to_owned(), name.clone());
        Ok(name)
    }
}
