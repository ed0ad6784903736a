use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::AwsError;
use crate::store::{Item, StateStore, now_epoch};

/// [`StateStore`] on a DynamoDB table with string keys `pk`, `sk` and the TTL attribute `ttl`.
#[derive(Clone, Debug)]
pub struct DynamoStateStore {
    client: Client,
    table: String,
}

impl DynamoStateStore {
    /// The store in `table`.
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self { client: super::sdk_client!(aws_sdk_dynamodb, config), table: table.into() }
    }
}

crate::error::sdk_error_fn!(err, "dynamodb");

fn to_attributes(item: &Item) -> HashMap<String, AttributeValue> {
    let mut m = HashMap::from([
        ("pk".to_owned(), AttributeValue::S(item.pk.clone())),
        ("sk".to_owned(), AttributeValue::S(item.sk.clone())),
        ("data".to_owned(), AttributeValue::S(item.data.to_string())),
    ]);
    if let Some(t) = item.expires_at {
        m.insert("ttl".to_owned(), AttributeValue::N(t.to_string()));
    }
    m
}

fn from_attributes(m: &HashMap<String, AttributeValue>) -> Option<Item> {
    let s = |k: &str| m.get(k).and_then(|v| v.as_s().ok()).cloned();
    Some(Item {
        pk: s("pk")?,
        sk: s("sk")?,
        data: s("data")
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or(serde_json::Value::Null),
        expires_at: m.get("ttl").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()),
    })
}

/// Sends a conditional `PutItem`: `false` when its condition did not hold.
async fn put_when(request: PutItemFluentBuilder) -> Result<bool, AwsError> {
    match request.send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(err("PutItem", e)),
    }
}

impl StateStore for DynamoStateStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err("GetItem", e))?;
        // DynamoDB deletes expired items lazily (the local stand-in never does): filter.
        Ok(out.item.as_ref().and_then(from_attributes).filter(|i| i.is_live(now_epoch())))
    }

    async fn put(&self, item: Item) -> Result<(), AwsError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attributes(&item)))
            .send()
            .await
            .map_err(|e| err("PutItem", e))?;
        Ok(())
    }

    /// BatchWriteItem, 25 items a request; unprocessed items are retried with backoff.
    async fn put_many(&self, items: Vec<Item>) -> Result<(), AwsError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in items.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|i| {
                    PutRequest::builder()
                        .set_item(Some(to_attributes(i)))
                        .build()
                        .map(|p| WriteRequest::builder().put_request(p).build())
                        .map_err(|e| AwsError::Permanent {
                            service: "dynamodb",
                            operation: "BatchWriteItem",
                            message: e.to_string(),
                        })
                })
                .collect::<Result<_, _>>()?;
            for attempt in 0u32.. {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| err("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt >= 5 {
                    return Err(AwsError::Retryable {
                        service: "dynamodb",
                        operation: "BatchWriteItem",
                        message: format!("{} items still unprocessed after retries", pending.len()),
                    });
                }
                let wait = 50u64 << attempt;
                tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(
                    wait / 2..=wait,
                )))
                .await;
            }
        }
        Ok(())
    }

    async fn put_if_absent(&self, item: Item) -> Result<bool, AwsError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attributes(&item)))
            .condition_expression(
                "attribute_not_exists(pk) OR (attribute_exists(#ttl) AND #ttl <= :now)",
            )
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", AttributeValue::N(now_epoch().to_string()));
        put_when(request).await
    }

    async fn put_if_unchanged(&self, item: Item, seen: Option<&Item>) -> Result<bool, AwsError> {
        let Some(seen) = seen else { return self.put_if_absent(item).await };
        // The data as written (`Value`'s serialization is canonical: an item read and written
        // back compares equal) and the same expiry.
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attributes(&item)))
            .expression_attribute_names("#data", "data")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":seen", AttributeValue::S(seen.data.to_string()));
        let request = match seen.expires_at {
            Some(t) => request
                .condition_expression("#data = :seen AND #ttl = :ttl")
                .expression_attribute_values(":ttl", AttributeValue::N(t.to_string())),
            None => request.condition_expression("#data = :seen AND attribute_not_exists(#ttl)"),
        };
        put_when(request).await
    }

    async fn query(&self, pk: &str) -> Result<Vec<Item>, AwsError> {
        let mut items = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .into_paginator()
            .send();
        let now = now_epoch();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| err("Query", e))?;
            items.extend(
                page.items
                    .unwrap_or_default()
                    .iter()
                    .filter_map(from_attributes)
                    .filter(|i| i.is_live(now)),
            );
        }
        Ok(items)
    }

    async fn delete(&self, pk: &str, sk: &str) -> Result<(), AwsError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .send()
            .await
            .map_err(|e| err("DeleteItem", e))?;
        Ok(())
    }
}
