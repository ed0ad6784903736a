//! The [`StateStore`] contract, as one suite every implementation must pass: the SQLite store
//! runs it in the library's unit tests, the DynamoDB store against moto in the integration tests.
//! Each check says which promise of the port it holds the store to; every key is under `scope`,
//! so runs can share a table.

use serde_json::json;

use super::{Item, StateStore, now_epoch};

/// Runs every check; panics (with the check's name) on the first broken promise.
pub async fn check_state_store<S: StateStore>(store: &S, scope: &str) {
    absent_items_read_as_none(store, scope).await;
    put_replaces_and_round_trips_data(store, scope).await;
    expired_items_are_absent_everywhere(store, scope).await;
    put_if_absent_takes_only_free_or_expired_keys(store, scope).await;
    concurrent_put_if_absent_has_one_winner(store, scope).await;
    put_if_unchanged_writes_only_over_what_was_read(store, scope).await;
    concurrent_put_if_unchanged_has_one_winner(store, scope).await;
    put_many_if_unchanged_answers_each_write(store, scope).await;
    query_reads_one_partition_in_sort_key_order(store, scope).await;
    put_many_writes_more_than_one_batch(store, scope).await;
    a_large_partition_reads_back_whole(store, scope).await;
    delete_is_idempotent(store, scope).await;
}

fn pk(scope: &str, name: &str) -> String {
    format!("{scope}#{name}")
}

async fn absent_items_read_as_none<S: StateStore>(store: &S, scope: &str) {
    let p = pk(scope, "absent");
    assert_eq!(store.get(&p, "nothing").await.unwrap(), None, "get of a missing item");
    assert!(store.query(&p).await.unwrap().is_empty(), "query of an empty partition");
}

async fn put_replaces_and_round_trips_data<S: StateStore>(store: &S, scope: &str) {
    let p = pk(scope, "round-trip");
    // Keys and data with what real records carry: '#', unicode, quotes, nesting, big numbers.
    let data = json!({
        "login": "zoë.o'brien@acme.example", "n": 9_007_199_254_740_993_i64, "f": 0.1,
        "nested": {"list": [1, "two", null, true], "empty": {}}, "text": "line\nbreak \"quoted\"",
    });
    let item = Item::new(&p, "sk#ü#1", data.clone()).expiring_at(now_epoch() + 3600);
    store.put(item.clone()).await.unwrap();
    assert_eq!(store.get(&p, "sk#ü#1").await.unwrap(), Some(item), "put then get");
    let replaced = Item::new(&p, "sk#ü#1", json!({"v": 2}));
    store.put(replaced.clone()).await.unwrap();
    assert_eq!(store.get(&p, "sk#ü#1").await.unwrap(), Some(replaced), "put replaces, ttl too");
}

async fn expired_items_are_absent_everywhere<S: StateStore>(store: &S, scope: &str) {
    let p = pk(scope, "expired");
    store.put(Item::new(&p, "old", json!(1)).expiring_at(now_epoch() - 1)).await.unwrap();
    store.put(Item::new(&p, "live", json!(2)).expiring_at(now_epoch() + 3600)).await.unwrap();
    assert_eq!(store.get(&p, "old").await.unwrap(), None, "get of an expired item");
    let keys: Vec<String> = store.query(&p).await.unwrap().into_iter().map(|i| i.sk).collect();
    assert_eq!(keys, ["live"], "query leaves expired items out");
}

async fn put_if_absent_takes_only_free_or_expired_keys<S: StateStore>(store: &S, scope: &str) {
    let p = pk(scope, "claim");
    let lease = |v: i64, ttl: i64| Item::new(&p, "k", json!(v)).expiring_at(now_epoch() + ttl);
    assert!(store.put_if_absent(lease(1, 3600)).await.unwrap(), "a free key is taken");
    assert!(!store.put_if_absent(lease(2, 3600)).await.unwrap(), "a live key is not");
    assert_eq!(store.get(&p, "k").await.unwrap().map(|i| i.data), Some(json!(1)), "kept");
    store.put(lease(3, -1)).await.unwrap();
    assert!(store.put_if_absent(lease(4, 3600)).await.unwrap(), "an expired key is free");
    assert_eq!(store.get(&p, "k").await.unwrap().map(|i| i.data), Some(json!(4)));
}

async fn concurrent_put_if_absent_has_one_winner<S: StateStore>(store: &S, scope: &str) {
    let p = pk(scope, "race");
    let attempts = (0..8).map(|i| store.put_if_absent(Item::new(&p, "k", json!(i))));
    let won = futures::future::join_all(attempts).await;
    let winners = won.into_iter().map(Result::unwrap).filter(|w| *w).count();
    assert_eq!(winners, 1, "exactly one of eight racing claims wins");
}

async fn put_if_unchanged_writes_only_over_what_was_read<S: StateStore>(store: &S, scope: &str) {
    let p = pk(scope, "unchanged");
    let v = |n: i64| Item::new(&p, "k", json!({"n": n, "login": "zoë#1", "f": 0.1}));
    assert!(store.put_if_unchanged(v(1), None).await.unwrap(), "nothing read, nothing there");
    assert!(!store.put_if_unchanged(v(2), None).await.unwrap(), "nothing read, but one is there");
    let read = store.get(&p, "k").await.unwrap();
    assert!(store.put_if_unchanged(v(3), read.as_ref()).await.unwrap(), "over what was read");
    assert!(!store.put_if_unchanged(v(4), read.as_ref()).await.unwrap(), "over a stale read");
    let expiring = v(5).expiring_at(now_epoch() + 3600);
    let read = store.get(&p, "k").await.unwrap();
    assert!(store.put_if_unchanged(expiring.clone(), read.as_ref()).await.unwrap(), "ttl added");
    let mut other_ttl = expiring.clone();
    other_ttl.expires_at = Some(now_epoch() + 7200);
    assert!(
        !store.put_if_unchanged(v(6), Some(&other_ttl)).await.unwrap(),
        "the same data with another expiry is another item"
    );
    assert!(!store.put_if_unchanged(v(6), read.as_ref()).await.unwrap(), "the ttl changed");
    assert!(store.put_if_unchanged(v(7), Some(&expiring)).await.unwrap(), "over what was read");
    assert_eq!(store.get(&p, "k").await.unwrap(), Some(v(7)), "the last write won, ttl removed");
    store.put(v(8).expiring_at(now_epoch() - 1)).await.unwrap();
    assert!(store.put_if_unchanged(v(9), None).await.unwrap(), "an expired item counts as none");
}

async fn concurrent_put_if_unchanged_has_one_winner<S: StateStore>(store: &S, scope: &str) {
    let p = pk(scope, "unchanged-race");
    store.put(Item::new(&p, "k", json!(0))).await.unwrap();
    let read = store.get(&p, "k").await.unwrap();
    let attempts =
        (1..9).map(|i| store.put_if_unchanged(Item::new(&p, "k", json!(i)), read.as_ref()));
    let won = futures::future::join_all(attempts).await;
    let winners: Vec<usize> =
        won.iter().enumerate().filter(|(_, w)| *w.as_ref().unwrap()).map(|(i, _)| i + 1).collect();
    assert_eq!(winners.len(), 1, "one writer over the same read wins: {winners:?}");
    let stored = store.get(&p, "k").await.unwrap().unwrap();
    assert_eq!(stored.data, json!(winners[0]), "and what is stored is the winner's");
}

async fn put_many_if_unchanged_answers_each_write<S: StateStore>(store: &S, scope: &str) {
    let p = pk(scope, "unchanged-many");
    let item = |k: &str, n: i64| Item::new(&p, k, json!(n));
    store.put(item("a", 1)).await.unwrap();
    store.put(item("b", 1)).await.unwrap();
    let a = store.get(&p, "a").await.unwrap();
    let stale_b = Some(item("b", 0));
    let written = store
        .put_many_if_unchanged(vec![
            (item("a", 2), a),
            (item("b", 2), stale_b),
            (item("c", 2), None),
            (item("c", 3), None),
        ])
        .await
        .unwrap();
    assert_eq!(written, [true, false, true, false], "each write is judged on its own, in order");
    let data: Vec<_> = store.query(&p).await.unwrap().into_iter().map(|i| i.data).collect();
    assert_eq!(data, [json!(2), json!(1), json!(2)], "only the writes that won are stored");
}

async fn query_reads_one_partition_in_sort_key_order<S: StateStore>(store: &S, scope: &str) {
    let (p, neighbour) = (pk(scope, "order"), pk(scope, "order2"));
    for sk in ["b", "a#2", "a#10", "c", "A"] {
        store.put(Item::new(&p, sk, json!(sk))).await.unwrap();
    }
    store.put(Item::new(&neighbour, "a", json!("other partition"))).await.unwrap();
    let keys: Vec<String> = store.query(&p).await.unwrap().into_iter().map(|i| i.sk).collect();
    assert_eq!(keys, ["A", "a#10", "a#2", "b", "c"], "byte order of sort keys, one partition");
}

async fn put_many_writes_more_than_one_batch<S: StateStore>(store: &S, scope: &str) {
    let p = pk(scope, "many");
    let items: Vec<Item> = (0..60).map(|i| Item::new(&p, format!("{i:03}"), json!(i))).collect();
    store.put_many(items.clone()).await.unwrap();
    assert_eq!(store.query(&p).await.unwrap(), items, "60 items (DynamoDB batches 25)");
}

async fn a_large_partition_reads_back_whole<S: StateStore>(store: &S, scope: &str) {
    // More than one 1 MB query page in DynamoDB: 130 items of 10 kB.
    let p = pk(scope, "large");
    let filler = "x".repeat(10_000);
    let items: Vec<Item> =
        (0..130).map(|i| Item::new(&p, format!("{i:04}"), json!({"i": i, "f": filler}))).collect();
    store.put_many(items).await.unwrap();
    let read = store.query(&p).await.unwrap();
    assert_eq!(read.len(), 130, "every page read");
    assert!(read.iter().enumerate().all(|(i, item)| item.data["i"] == i), "in order");
}

async fn delete_is_idempotent<S: StateStore>(store: &S, scope: &str) {
    let p = pk(scope, "delete");
    store.put(Item::new(&p, "k", json!(1))).await.unwrap();
    store.delete(&p, "k").await.unwrap();
    assert_eq!(store.get(&p, "k").await.unwrap(), None, "deleted");
    store.delete(&p, "k").await.unwrap();
    store.delete(&p, "never-there").await.unwrap();
}
