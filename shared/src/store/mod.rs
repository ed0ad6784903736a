//! The state store port (pk, sk, ttl, data) and its implementations: DynamoDB in Lambda, an
//! embedded SQLite database for the CLI.

use std::future::Future;

use crate::error::AwsError;

#[cfg(any(test, feature = "test-support"))]
pub mod contract;

/// One item. `expires_at` (epoch seconds) is the table's TTL attribute: expired items are treated
/// as absent by every read, whether or not the store has removed them yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// The record (JSON).
    pub data: serde_json::Value,
    /// TTL, epoch seconds.
    pub expires_at: Option<i64>,
}

impl Item {
    /// An item without expiry.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, data: serde_json::Value) -> Self {
        Self { pk: pk.into(), sk: sk.into(), data, expires_at: None }
    }

    /// The same item, expiring at `epoch_seconds`.
    pub fn expiring_at(mut self, epoch_seconds: i64) -> Self {
        self.expires_at = Some(epoch_seconds);
        self
    }

    /// Not expired at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// Seconds since the epoch, now.
pub fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Durable key-value state shared by the functions.
pub trait StateStore: Send + Sync {
    /// The live item at (pk, sk), if any.
    fn get(
        &self,
        pk: &str,
        sk: &str,
    ) -> impl Future<Output = Result<Option<Item>, AwsError>> + Send;
    /// Writes (replaces) the item.
    fn put(&self, item: Item) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Writes several items (one transaction in SQLite, BatchWriteItem in DynamoDB).
    fn put_many(&self, items: Vec<Item>) -> impl Future<Output = Result<(), AwsError>> + Send {
        async move {
            for item in items {
                self.put(item).await?;
            }
            Ok(())
        }
    }
    /// Writes the item only if no live item has its key; `true` when it was written.
    fn put_if_absent(&self, item: Item) -> impl Future<Output = Result<bool, AwsError>> + Send;
    /// Writes the item only if the live item at its key is still `seen`, what was read there
    /// (the same data and expiry; `None`: no live item), so a read-change-write never overwrites
    /// a change another writer made in between; `true` when it was written (else read again,
    /// change again and retry).
    fn put_if_unchanged(
        &self,
        item: Item,
        seen: Option<&Item>,
    ) -> impl Future<Output = Result<bool, AwsError>> + Send;
    /// [`StateStore::put_if_unchanged`] for each pair, in order (one transaction in SQLite; one
    /// conditional write each in DynamoDB, which has no batch of them); which were written.
    fn put_many_if_unchanged(
        &self,
        writes: Vec<(Item, Option<Item>)>,
    ) -> impl Future<Output = Result<Vec<bool>, AwsError>> + Send {
        async move {
            let mut written = Vec::with_capacity(writes.len());
            for (item, seen) in writes {
                written.push(self.put_if_unchanged(item, seen.as_ref()).await?);
            }
            Ok(written)
        }
    }
    /// Live items of a partition, in sort-key order.
    fn query(&self, pk: &str) -> impl Future<Output = Result<Vec<Item>, AwsError>> + Send;
    /// Deletes the item, if present.
    fn delete(&self, pk: &str, sk: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// The outcome of claiming a unit of work (an event uuid) for exactly-once processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours to process: call [`complete`] on success and [`release`] on failure.
    Acquired,
    /// Already processed: skip.
    Done,
    /// Another invocation holds a live lease: try again later.
    Busy,
}

const LEASE_SECONDS: i64 = 300;

/// Claims `key` with a short lease, so that a crash mid-way lets a retry claim it again.
pub async fn claim<Store: StateStore>(
    store: &Store,
    pk: &str,
    key: &str,
) -> Result<Claim, AwsError> {
    let lease = Item::new(pk, key, serde_json::json!({"status": "processing"}))
        .expiring_at(now_epoch() + LEASE_SECONDS);
    if store.put_if_absent(lease).await? {
        return Ok(Claim::Acquired);
    }
    Ok(match store.get(pk, key).await? {
        Some(item) if item.data["status"] == "done" => Claim::Done,
        Some(_) => Claim::Busy,
        // Expired between the two calls: the next attempt will acquire it.
        None => Claim::Busy,
    })
}

/// Marks a claimed key done for `keep_seconds` (longer than any redelivery window).
pub async fn complete<Store: StateStore>(
    store: &Store,
    pk: &str,
    key: &str,
    keep_seconds: i64,
) -> Result<(), AwsError> {
    store
        .put(
            Item::new(pk, key, serde_json::json!({"status": "done"}))
                .expiring_at(now_epoch() + keep_seconds),
        )
        .await
}

/// Gives a claimed key back after a failure, so the retry processes it.
pub async fn release<Store: StateStore>(
    store: &Store,
    pk: &str,
    key: &str,
) -> Result<(), AwsError> {
    store.delete(pk, key).await
}
