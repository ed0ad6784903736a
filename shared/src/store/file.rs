use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Item, StateStore, now_epoch};
use crate::error::AwsError;

/// [`StateStore`] in one JSON file, for the CLI. Every write replaces the file atomically
/// (write to a temporary file, then rename), so an interrupted run never leaves it half-written.
#[derive(Debug)]
pub struct FileStateStore {
    path: PathBuf,
    items: Mutex<BTreeMap<(String, String), StoredItem>>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct StoredItem {
    pk: String,
    sk: String,
    data: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
}

fn io_error(path: &Path, op: &'static str, e: impl std::fmt::Display) -> AwsError {
    AwsError::Permanent {
        service: "state file",
        operation: op,
        message: format!("{}: {e}", path.display()),
    }
}

impl FileStateStore {
    /// Opens (or starts) the store at `path`. A file that is not a state file is an error, never
    /// silently replaced.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, AwsError> {
        let path = path.into();
        let items = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let list: Vec<StoredItem> =
                    serde_json::from_str(&text).map_err(|e| io_error(&path, "read", e))?;
                list.into_iter().map(|i| ((i.pk.clone(), i.sk.clone()), i)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io_error(&path, "read", e)),
        };
        Ok(Self { path, items: Mutex::new(items) })
    }

    fn save(&self, items: &BTreeMap<(String, String), StoredItem>) -> Result<(), AwsError> {
        let now = now_epoch();
        let live: Vec<&StoredItem> =
            items.values().filter(|i| i.ttl.is_none_or(|t| t > now)).collect();
        let text =
            serde_json::to_string_pretty(&live).map_err(|e| io_error(&self.path, "write", e))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_error(&self.path, "write", e))?;
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| io_error(&tmp, "write", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io_error(&self.path, "write", e))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), StoredItem>> {
        self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn to_item(s: &StoredItem) -> Item {
    Item { pk: s.pk.clone(), sk: s.sk.clone(), data: s.data.clone(), expires_at: s.ttl }
}

fn to_stored(i: Item) -> StoredItem {
    StoredItem { pk: i.pk, sk: i.sk, data: i.data, ttl: i.expires_at }
}

impl StateStore for FileStateStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, AwsError> {
        let items = self.lock();
        Ok(items
            .get(&(pk.to_owned(), sk.to_owned()))
            .map(to_item)
            .filter(|i| i.is_live(now_epoch())))
    }

    async fn put(&self, item: Item) -> Result<(), AwsError> {
        let mut items = self.lock();
        items.insert((item.pk.clone(), item.sk.clone()), to_stored(item));
        self.save(&items)
    }

    async fn put_many(&self, batch: Vec<Item>) -> Result<(), AwsError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut items = self.lock();
        for item in batch {
            items.insert((item.pk.clone(), item.sk.clone()), to_stored(item));
        }
        self.save(&items)
    }

    async fn put_if_absent(&self, item: Item) -> Result<bool, AwsError> {
        let mut items = self.lock();
        let key = (item.pk.clone(), item.sk.clone());
        if items.get(&key).is_some_and(|i| to_item(i).is_live(now_epoch())) {
            return Ok(false);
        }
        items.insert(key, to_stored(item));
        self.save(&items)?;
        Ok(true)
    }

    async fn query(&self, pk: &str) -> Result<Vec<Item>, AwsError> {
        let now = now_epoch();
        let items = self.lock();
        Ok(items
            .range((pk.to_owned(), String::new())..)
            .take_while(|((p, _), _)| p == pk)
            .map(|(_, i)| to_item(i))
            .filter(|i| i.is_live(now))
            .collect())
    }

    async fn delete(&self, pk: &str, sk: &str) -> Result<(), AwsError> {
        let mut items = self.lock();
        items.remove(&(pk.to_owned(), sk.to_owned()));
        self.save(&items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Claim, claim, complete, release};

    #[tokio::test]
    async fn items_survive_a_reopen_and_expired_ones_are_absent() {
        let dir = std::env::temp_dir().join(format!("idc-guard-state-{}", std::process::id()));
        let path = dir.join("state.json");
        let _ = std::fs::remove_file(&path);
        let store = FileStateStore::open(&path).unwrap();
        store.put(Item::new("a", "1", serde_json::json!({"x": 1}))).await.unwrap();
        store
            .put(Item::new("a", "0", serde_json::json!({"old": true})).expiring_at(now_epoch() - 1))
            .await
            .unwrap();
        assert!(
            store
                .put_if_absent(Item::new("a", "0", serde_json::json!({"new": true})))
                .await
                .unwrap()
        );
        assert!(!store.put_if_absent(Item::new("a", "1", serde_json::json!({}))).await.unwrap());
        let reopened = FileStateStore::open(&path).unwrap();
        let items = reopened.query("a").await.unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].data["new"], true);
        assert_eq!(reopened.get("a", "1").await.unwrap().unwrap().data["x"], 1);

        assert_eq!(claim(&reopened, "event", "u1").await.unwrap(), Claim::Acquired);
        assert_eq!(claim(&reopened, "event", "u1").await.unwrap(), Claim::Busy);
        release(&reopened, "event", "u1").await.unwrap();
        assert_eq!(claim(&reopened, "event", "u1").await.unwrap(), Claim::Acquired);
        complete(&reopened, "event", "u1", 3600).await.unwrap();
        assert_eq!(claim(&reopened, "event", "u1").await.unwrap(), Claim::Done);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_state_file_is_an_error() {
        let path =
            std::env::temp_dir().join(format!("idc-guard-notstate-{}.json", std::process::id()));
        std::fs::write(&path, "hello").unwrap();
        assert!(FileStateStore::open(&path).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
