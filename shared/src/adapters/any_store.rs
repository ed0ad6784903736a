//! Either state store, chosen at run time.

use super::{DynamoStateStore, SqliteStateStore};
use crate::error::AwsError;
use crate::store::{Item, StateStore};

/// Either store, chosen at run time (the CLI uses the function's table when one is configured,
/// else a local database file).
#[derive(Debug)]
pub enum AnyStore {
    /// The function's DynamoDB table.
    Dynamo(DynamoStateStore),
    /// A local SQLite database.
    Local(SqliteStateStore),
}

impl StateStore for AnyStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, AwsError> {
        match self {
            AnyStore::Dynamo(s) => s.get(pk, sk).await,
            AnyStore::Local(s) => s.get(pk, sk).await,
        }
    }
    async fn put(&self, item: Item) -> Result<(), AwsError> {
        match self {
            AnyStore::Dynamo(s) => s.put(item).await,
            AnyStore::Local(s) => s.put(item).await,
        }
    }
    async fn put_many(&self, items: Vec<Item>) -> Result<(), AwsError> {
        match self {
            AnyStore::Dynamo(s) => s.put_many(items).await,
            AnyStore::Local(s) => s.put_many(items).await,
        }
    }
    async fn put_if_absent(&self, item: Item) -> Result<bool, AwsError> {
        match self {
            AnyStore::Dynamo(s) => s.put_if_absent(item).await,
            AnyStore::Local(s) => s.put_if_absent(item).await,
        }
    }
    async fn put_if_unchanged(&self, item: Item, seen: Option<&Item>) -> Result<bool, AwsError> {
        match self {
            AnyStore::Dynamo(s) => s.put_if_unchanged(item, seen).await,
            AnyStore::Local(s) => s.put_if_unchanged(item, seen).await,
        }
    }
    async fn put_many_if_unchanged(
        &self,
        writes: Vec<(Item, Option<Item>)>,
    ) -> Result<Vec<bool>, AwsError> {
        match self {
            AnyStore::Dynamo(s) => s.put_many_if_unchanged(writes).await,
            AnyStore::Local(s) => s.put_many_if_unchanged(writes).await,
        }
    }
    async fn query(&self, pk: &str) -> Result<Vec<Item>, AwsError> {
        match self {
            AnyStore::Dynamo(s) => s.query(pk).await,
            AnyStore::Local(s) => s.query(pk).await,
        }
    }
    async fn delete(&self, pk: &str, sk: &str) -> Result<(), AwsError> {
        match self {
            AnyStore::Dynamo(s) => s.delete(pk, sk).await,
            AnyStore::Local(s) => s.delete(pk, sk).await,
        }
    }
}
