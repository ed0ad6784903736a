//! [`StateStore`] in an embedded SQLite database, for the CLI: one row per item, keyed by
//! (pk, sk), in a write-ahead-logged file. A write touches only its own rows, so a long `scan
//! --state` costs the same per write whatever the store holds (the JSON file it replaces was
//! rewritten whole on every write).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::AwsError;
use crate::store::{Item, StateStore, now_epoch};

/// [`StateStore`] in an SQLite database file (see the module header).
#[derive(Debug)]
pub struct SqliteStateStore {
    path: PathBuf,
    connection: Mutex<Connection>,
}

fn error(path: &Path, op: &'static str, e: impl std::fmt::Display) -> AwsError {
    AwsError::Permanent {
        service: "state database",
        operation: op,
        message: format!("{}: {e}", path.display()),
    }
}

/// An item of the JSON state file of earlier versions, imported once.
#[derive(serde::Deserialize)]
struct LegacyItem {
    pk: String,
    sk: String,
    data: serde_json::Value,
    #[serde(default)]
    ttl: Option<i64>,
}

impl SqliteStateStore {
    /// Opens (or creates) the database at `path`. A file that is neither a state database nor a
    /// state file of an earlier version is an error, never silently replaced; an earlier JSON
    /// state file is imported and kept beside it as `<name>.json-imported`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, AwsError> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| error(&path, "open", e))?;
        }
        let legacy = Self::take_legacy_json(&path)?;
        let connection = Connection::open(&path).map_err(|e| error(&path, "open", e))?;
        let store = Self::with_connection(path, connection)?;
        if let Some(items) = legacy {
            store.write(items)?;
        }
        Ok(store)
    }

    /// A database in memory, gone when dropped (tests, and runs that keep no state).
    pub fn in_memory() -> Result<Self, AwsError> {
        let path = PathBuf::from(":memory:");
        let connection = Connection::open_in_memory().map_err(|e| error(&path, "open", e))?;
        Self::with_connection(path, connection)
    }

    fn with_connection(path: PathBuf, connection: Connection) -> Result<Self, AwsError> {
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA cache_size = -65536;
                 PRAGMA wal_autocheckpoint = 8192;
                 CREATE TABLE IF NOT EXISTS items (
                     pk TEXT NOT NULL, sk TEXT NOT NULL, data TEXT NOT NULL, ttl INTEGER,
                     PRIMARY KEY (pk, sk)
                 ) WITHOUT ROWID;",
            )
            .map_err(|e| error(&path, "open", e))?;
        Ok(Self { path, connection: Mutex::new(connection) })
    }

    /// The items of an earlier version's JSON state file at `path`, which is moved aside.
    fn take_legacy_json(path: &Path) -> Result<Option<Vec<Item>>, AwsError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(path, "open", e)),
        };
        if bytes.is_empty() || bytes.starts_with(b"SQLite format 3\0") {
            return Ok(None);
        }
        let list: Vec<LegacyItem> = serde_json::from_slice(&bytes)
            .map_err(|_| error(path, "open", "neither a state database nor a state file"))?;
        let aside = path.with_extension("json-imported");
        std::fs::rename(path, &aside).map_err(|e| error(path, "open", e))?;
        Ok(Some(
            list.into_iter()
                .map(|i| Item { pk: i.pk, sk: i.sk, data: i.data, expires_at: i.ttl })
                .collect(),
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self, items: Vec<Item>) -> Result<(), AwsError> {
        let mut c = self.lock();
        let tx = c.transaction().map_err(|e| error(&self.path, "write", e))?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO items (pk, sk, data, ttl) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| error(&self.path, "write", e))?;
            for item in items {
                put.execute(params![item.pk, item.sk, item.data.to_string(), item.expires_at])
                    .map_err(|e| error(&self.path, "write", e))?;
            }
        }
        tx.commit().map_err(|e| error(&self.path, "write", e))
    }

    fn row(
        &self,
        pk: String,
        sk: String,
        data: String,
        ttl: Option<i64>,
    ) -> Result<Item, AwsError> {
        let data = serde_json::from_str(&data).map_err(|e| error(&self.path, "read", e))?;
        Ok(Item { pk, sk, data, expires_at: ttl })
    }
}

/// Writes `item` when the live row at its key is `seen` (`None`: no row, or an expired one).
/// `seen` is compared as written: `Value`'s serialization is canonical, so a row read and
/// written back compares equal.
fn write_if(c: &Connection, item: &Item, seen: Option<&Item>) -> rusqlite::Result<bool> {
    let data = item.data.to_string();
    let changed = match seen {
        None => c
            .prepare_cached(
                "INSERT INTO items (pk, sk, data, ttl) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (pk, sk) DO UPDATE SET data = excluded.data, ttl = excluded.ttl
                 WHERE items.ttl IS NOT NULL AND items.ttl <= ?5",
            )?
            .execute(params![item.pk, item.sk, data, item.expires_at, now_epoch()])?,
        Some(seen) => c
            .prepare_cached(
                "UPDATE items SET data = ?3, ttl = ?4
                 WHERE pk = ?1 AND sk = ?2 AND data = ?5 AND ttl IS ?6 AND (ttl IS NULL OR ttl > ?7)",
            )?
            .execute(params![
                item.pk,
                item.sk,
                data,
                item.expires_at,
                seen.data.to_string(),
                seen.expires_at,
                now_epoch()
            ])?,
    };
    Ok(changed == 1)
}

impl StateStore for SqliteStateStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, AwsError> {
        let found = self
            .lock()
            .prepare_cached("SELECT data, ttl FROM items WHERE pk = ?1 AND sk = ?2")
            .and_then(|mut s| {
                s.query_row(params![pk, sk], |r| Ok((r.get::<_, String>(0)?, r.get(1)?))).optional()
            })
            .map_err(|e| error(&self.path, "read", e))?;
        match found {
            Some((data, ttl)) => {
                let item = self.row(pk.to_owned(), sk.to_owned(), data, ttl)?;
                Ok(item.is_live(now_epoch()).then_some(item))
            }
            None => Ok(None),
        }
    }

    async fn put(&self, item: Item) -> Result<(), AwsError> {
        self.write(vec![item])
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), AwsError> {
        if items.is_empty() {
            return Ok(());
        }
        self.write(items)
    }

    async fn put_if_absent(&self, item: Item) -> Result<bool, AwsError> {
        write_if(&self.lock(), &item, None).map_err(|e| error(&self.path, "write", e))
    }

    async fn put_if_unchanged(&self, item: Item, seen: Option<&Item>) -> Result<bool, AwsError> {
        write_if(&self.lock(), &item, seen).map_err(|e| error(&self.path, "write", e))
    }

    async fn put_many_if_unchanged(
        &self,
        writes: Vec<(Item, Option<Item>)>,
    ) -> Result<Vec<bool>, AwsError> {
        let mut c = self.lock();
        let tx = c.transaction().map_err(|e| error(&self.path, "write", e))?;
        let written = writes
            .iter()
            .map(|(item, seen)| write_if(&tx, item, seen.as_ref()))
            .collect::<rusqlite::Result<Vec<bool>>>()
            .map_err(|e| error(&self.path, "write", e))?;
        tx.commit().map_err(|e| error(&self.path, "write", e))?;
        Ok(written)
    }

    async fn query(&self, pk: &str) -> Result<Vec<Item>, AwsError> {
        let rows: Vec<(String, String, Option<i64>)> = self
            .lock()
            .prepare_cached(
                "SELECT sk, data, ttl FROM items WHERE pk = ?1 AND (ttl IS NULL OR ttl > ?2) ORDER BY sk",
            )
            .and_then(|mut s| {
                s.query_map(params![pk, now_epoch()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(|e| error(&self.path, "read", e))?;
        rows.into_iter().map(|(sk, data, ttl)| self.row(pk.to_owned(), sk, data, ttl)).collect()
    }

    async fn delete(&self, pk: &str, sk: &str) -> Result<(), AwsError> {
        self.lock()
            .prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
            .and_then(|mut s| s.execute(params![pk, sk]))
            .map_err(|e| error(&self.path, "write", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Claim, claim, complete, release};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "idc-guard-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn meets_the_state_store_contract_in_a_file_and_in_memory() {
        let path = temp_dir("contract").join("state.db");
        crate::store::contract::check_state_store(&SqliteStateStore::open(&path).unwrap(), "c")
            .await;
        let memory = SqliteStateStore::in_memory().unwrap();
        crate::store::contract::check_state_store(&memory, "c").await;
    }

    #[tokio::test]
    async fn items_survive_a_reopen_and_expired_ones_are_absent() {
        let dir = temp_dir("state");
        let path = dir.join("state.db");
        let store = SqliteStateStore::open(&path).unwrap();
        store.put(Item::new("a", "1", serde_json::json!({"x": 1}))).await.unwrap();
        store
            .put(Item::new("a", "0", serde_json::json!({"old": true})).expiring_at(now_epoch() - 1))
            .await
            .unwrap();
        assert!(store.get("a", "0").await.unwrap().is_none(), "expired reads as absent");
        assert!(
            store
                .put_if_absent(Item::new("a", "0", serde_json::json!({"new": true})))
                .await
                .unwrap()
        );
        assert!(!store.put_if_absent(Item::new("a", "1", serde_json::json!({}))).await.unwrap());
        drop(store);
        let reopened = SqliteStateStore::open(&path).unwrap();
        let items = reopened.query("a").await.unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].data["new"], true, "sort-key order");
        assert_eq!(reopened.get("a", "1").await.unwrap().unwrap().data["x"], 1);
        assert!(reopened.query("b").await.unwrap().is_empty());

        assert_eq!(claim(&reopened, "event", "u1").await.unwrap(), Claim::Acquired);
        assert_eq!(claim(&reopened, "event", "u1").await.unwrap(), Claim::Busy);
        release(&reopened, "event", "u1").await.unwrap();
        assert_eq!(claim(&reopened, "event", "u1").await.unwrap(), Claim::Acquired);
        complete(&reopened, "event", "u1", 3600).await.unwrap();
        assert_eq!(claim(&reopened, "event", "u1").await.unwrap(), Claim::Done);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_json_state_file_of_an_earlier_version_is_imported_once() {
        let dir = temp_dir("legacy");
        let path = dir.join("state.json");
        std::fs::write(
            &path,
            r#"[{"pk":"managed-group","sk":"g1","data":{"display_name":"aws-core-x"}},
                {"pk":"alert","sk":"old","data":{},"ttl":1}]"#,
        )
        .unwrap();
        let store = SqliteStateStore::open(&path).unwrap();
        let groups = store.query("managed-group").await.unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].data["display_name"], "aws-core-x");
        assert!(store.get("alert", "old").await.unwrap().is_none(), "expired stays expired");
        assert!(dir.join("state.json-imported").exists(), "the old file is kept aside");
        drop(store);
        let again = SqliteStateStore::open(&path).unwrap();
        assert_eq!(again.query("managed-group").await.unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_state_file_is_an_error_and_left_alone() {
        let dir = temp_dir("notstate");
        let path = dir.join("notes.txt");
        std::fs::write(&path, "hello").unwrap();
        let err = SqliteStateStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("neither a state database nor a state file"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn twenty_thousand_single_writes_all_read_back() {
        // Each write is its own row and transaction (the JSON file store it replaces rewrote
        // the whole file per write). Timing is in BENCHMARKS.md, not asserted here.
        let dir = temp_dir("many");
        let store = SqliteStateStore::open(dir.join("state.db")).unwrap();
        for i in 0..20_000 {
            store
                .put(Item::new("p", format!("{i:06}"), serde_json::json!({"i": i})))
                .await
                .unwrap();
        }
        assert_eq!(store.query("p").await.unwrap().len(), 20_000);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
