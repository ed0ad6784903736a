//! The scan path shared by the function and the CLI: activities in, findings out, with each
//! user's baseline and Okta context loaded from the state store before their first activity and
//! changed baselines written back afterwards.

use std::collections::{BTreeSet, HashSet};

use serde_json::json;

use super::engine::{Baseline, Engine, FastHash, Revocation, UserContext, user_key};
use super::history::uses_failure_memory;
use super::model::Activity;
use super::okta::OktaSignin;
use super::ports::UserDirectory;
use crate::alert::Alert;
use crate::error::AwsError;
use crate::records::{
    self, FailedSignin, LastUsed, Lifecycle, OktaSigninRecord, Record, RevokedSessions,
    baseline_key,
};
use crate::store::{Item, StateStore, now_epoch};

/// Baselines outlive the 30-day window so a user back from 60 days off is not "new" everywhere.
const BASELINE_KEEP_SECONDS: i64 = 180 * 24 * 3600;

/// Feeds activities to the engine, loading each user's context from the store first.
pub struct Scanner<'a, Store, Directory> {
    /// The detectors and their per-user state.
    pub engine: Engine,
    store: Option<&'a Store>,
    directory: &'a Directory,
    unresolvable: HashSet<String, FastHash>,
    /// Users whose stored context has been loaded (looked up for every activity).
    loaded: HashSet<String, FastHash>,
    /// Hours of stored failed sign-ins already loaded.
    failure_hours: HashSet<String, FastHash>,
    /// Whether the store holds Okta's sign-ins and lifecycle (written by access-sync); the CLI's
    /// store does not (its Okta facts come from files), so it skips those reads.
    okta_in_store: bool,
    /// access-sync's revocation records, read once per scanner (a few, whatever the users).
    revocations: tokio::sync::OnceCell<Vec<RevokedSessions>>,
}

impl<'a, Store: StateStore, Directory: UserDirectory> Scanner<'a, Store, Directory> {
    /// `store: None` keeps everything in memory (a one-off scan).
    pub fn new(engine: Engine, store: Option<&'a Store>, directory: &'a Directory) -> Self {
        Self {
            engine,
            store,
            directory,
            unresolvable: HashSet::default(),
            loaded: HashSet::default(),
            failure_hours: HashSet::default(),
            okta_in_store: true,
            revocations: tokio::sync::OnceCell::new(),
        }
    }

    /// A scanner whose store holds no Okta records (the CLI's): user contexts are read without
    /// looking for them.
    pub fn without_okta_in_store(mut self) -> Self {
        self.okta_in_store = false;
        self
    }

    /// Runs a batch of activities (any order; sorted here) through the detectors.
    pub async fn process(&mut self, mut batch: Vec<Activity>) -> Result<Vec<Alert>, AwsError> {
        if !batch.is_sorted_by_key(Activity::order_key) {
            batch.sort_by_cached_key(Activity::order_key);
        }
        // The deployment's managed groups, once: out-of-band changes are told apart by them.
        if self.okta_in_store
            && let Some(store) = self.store
            && self.engine.managed_groups_unknown()
        {
            self.engine.set_managed_groups(records::ManagedGroup::load_map(store).await?);
        }
        // Learn id ↔ name pairs first, so a portal call early in the batch resolves too.
        for a in &batch {
            self.engine.learn(a);
        }
        for a in &batch {
            if a.user_name.is_none()
                && let (Some(id), Some(store_id)) = (&a.user_id, &a.identity_store_id)
                && !self.engine.knows_id(id)
                && !self.unresolvable.contains(&**id)
            {
                match self.directory.user_name(store_id, id).await? {
                    Some(name) => self.engine.learn_name(id, &name),
                    None => {
                        self.unresolvable.insert(id.to_string());
                    }
                }
            }
            let loaded = &self.loaded;
            let pending =
                self.engine.with_key(a, |k| k.filter(|k| !loaded.contains(*k)).map(str::to_owned));
            if let Some(user) = pending {
                let ctx = self.context(&user).await?;
                self.engine.load(&user, ctx);
                self.loaded.insert(user);
            }
        }
        self.load_failures(&batch).await?;
        let alerts = batch.into_iter().flat_map(|a| self.engine.observe(a)).collect();
        if self.store.is_none() {
            self.engine.take_failures();
        }
        Ok(alerts)
    }

    /// Loads the failed sign-ins earlier runs counted in the hours this batch's failures and
    /// console sign-ins can reach back to, so the counting windows continue.
    async fn load_failures(&mut self, batch: &[Activity]) -> Result<(), AwsError> {
        let Some(store) = self.store else { return Ok(()) };
        // At most two days of hours per batch, however long a configured window is: each hour
        // is one read of the state table.
        let horizon = self.engine.failure_horizon().min(chrono::Duration::hours(48));
        let mut hours = BTreeSet::new();
        for a in batch.iter().filter(|a| uses_failure_memory(a)) {
            let mut t = a.time - horizon;
            while t < a.time {
                hours.insert(FailedSignin::partition(t));
                t += chrono::Duration::hours(1);
            }
            hours.insert(FailedSignin::partition(a.time));
        }
        let mut stored = Vec::new();
        for pk in hours {
            if self.failure_hours.insert(pk.clone()) {
                stored.extend(records::load_all::<FailedSignin, _>(store, &pk).await?);
            }
        }
        self.engine.replay(stored);
        Ok(())
    }

    async fn context(&self, user: &str) -> Result<UserContext, AwsError> {
        let Some(store) = self.store else { return Ok(UserContext::default()) };
        let key = baseline_key(user);
        let baseline = store
            .get(&key.pk, &key.sk)
            .await?
            .and_then(|i| serde_json::from_value::<Baseline>(i.data).ok())
            .unwrap_or_default();
        if !self.okta_in_store {
            return Ok(UserContext { baseline, ..Default::default() });
        }
        let okta =
            records::load_all::<OktaSigninRecord, _>(store, &OktaSigninRecord::partition(user))
                .await?
                .iter()
                .map(OktaSignin::from)
                .collect();
        let lifecycle = records::load(store, &Lifecycle::key_of(user)).await?;
        // Revocations are keyed by Identity Store id; the user key is the user name or that id.
        let revocations = self
            .revocations
            .get_or_try_init(|| records::load_all::<RevokedSessions, _>(store, RevokedSessions::PK))
            .await?;
        let revoked = revocations
            .iter()
            .find(|r| r.login.eq_ignore_ascii_case(user) || r.user_id == user)
            .map(|r| Revocation { at: r.revoked_at, user_id: r.user_id.clone() });
        Ok(UserContext { baseline, okta, lifecycle, revoked })
    }

    /// Writes changed baselines back. Call after the batch's alerts are dispatched.
    pub async fn save(&mut self) -> Result<usize, AwsError> {
        let dirty = self.engine.take_dirty();
        let n = dirty.len();
        if let Some(store) = self.store {
            let expires = now_epoch() + BASELINE_KEEP_SECONDS;
            let items = dirty
                .into_iter()
                .map(|(user, b)| {
                    let key = baseline_key(&user);
                    Item::new(key.pk, key.sk, json!(b)).expiring_at(expires)
                })
                .collect();
            store.put_many(items).await?;
            let failures = self.engine.take_failures();
            store.put_many(failures.iter().map(Record::to_item).collect()).await?;
            self.save_usage(store).await?;
        }
        Ok(n)
    }
}

impl<Store: StateStore, Directory> Scanner<'_, Store, Directory> {
    /// Merges the uses this run saw into the stored last uses.
    async fn save_usage(&mut self, store: &Store) -> Result<(), AwsError> {
        save_usage(store, self.engine.take_usage()).await.map(|_| ())
    }
}

/// How often a last use is read and merged again when another writer changed it in between.
const USAGE_WRITE_TRIES: usize = 8;

/// Merges last uses into the store (one read per user, account and permission set: a few per
/// log file), never moving a stored time back; returns how many were written. Each write is
/// conditional on the stored use being the one read, so functions reading log files at the same
/// time never lose each other's later times: the uses whose write lost are read, merged and
/// written again, up to [`USAGE_WRITE_TRIES`] rounds.
pub async fn save_usage<Store: StateStore>(
    store: &Store,
    mut uses: Vec<LastUsed>,
) -> Result<usize, AwsError> {
    let mut written = 0;
    for _ in 0..USAGE_WRITE_TRIES {
        let (mut writes, mut pending, mut unreadable) = (Vec::new(), Vec::new(), Vec::new());
        for used in uses {
            let key = used.key();
            let read = store.get(&key.pk, &key.sk).await?;
            let mut merged = used.clone();
            match read.as_ref().map(LastUsed::from_item) {
                Some(Some(stored)) => {
                    if stored.portal >= used.portal && stored.activity >= used.activity {
                        continue;
                    }
                    merged.merge(&stored);
                }
                // Not a last use (damaged, or written by something else): there is nothing in
                // it to keep, and a condition on what was read may never hold (DynamoDB reads
                // data that is not JSON as null), so it is replaced outright; only a writer
                // that repairs the same item at the same moment can lose its time to this.
                Some(None) => {
                    unreadable.push(merged.to_item());
                    continue;
                }
                None => {}
            }
            writes.push((merged.to_item(), read));
            pending.push(used);
        }
        written += unreadable.len();
        store.put_many(unreadable).await?;
        let won = store.put_many_if_unchanged(writes).await?;
        written += won.iter().filter(|w| **w).count();
        uses = pending.into_iter().zip(won).filter(|(_, w)| !w).map(|(u, _)| u).collect();
        if uses.is_empty() {
            return Ok(written);
        }
    }
    Err(AwsError::Retryable {
        service: "state",
        operation: "save last use",
        message: format!(
            "{} last use(s) changed under {USAGE_WRITE_TRIES} writes in a row, e.g. {}",
            uses.len(),
            uses[0].key().sk
        ),
    })
}

/// Puts input that arrives out of time order back in order before detection, within bounds:
/// it holds up to `capacity` activities and releases, oldest first, those more than `slack`
/// older than the newest held (at least half of them when full, so memory stays bounded). Input
/// of at most `capacity` activities is therefore processed in exact time order whatever order it
/// came in; longer input, when no activity is more than `slack` late. Exact duplicates (same
/// event id, time and address) held together are dropped.
pub struct Reorder {
    held: Vec<Activity>,
    capacity: usize,
    slack: chrono::Duration,
    newest: Option<chrono::DateTime<chrono::Utc>>,
    /// Duplicates dropped.
    pub duplicates: usize,
}

impl Reorder {
    /// A buffer of `capacity` activities that waits `slack` for late ones.
    pub fn new(capacity: usize, slack: chrono::Duration) -> Self {
        let capacity = capacity.max(2);
        let held = Vec::with_capacity(capacity.min(1 << 18));
        Self { held, capacity, slack, newest: None, duplicates: 0 }
    }

    /// Adds an activity; returns the activities it releases, in time order (often none).
    pub fn push(&mut self, a: Activity) -> Vec<Activity> {
        self.newest = Some(self.newest.map_or(a.time, |n| n.max(a.time)));
        self.held.push(a);
        if self.held.len() < self.capacity {
            return Vec::new();
        }
        self.sort();
        let ripe = self.newest.map(|n| n - self.slack);
        let cut = self.held.partition_point(|a| ripe.is_some_and(|r| a.time < r));
        let cut = cut.max(self.capacity / 2);
        // The buffer keeps its allocation; the released events move to a new batch.
        self.held.drain(..cut).collect()
    }

    /// Everything still held, in time order.
    pub fn finish(&mut self) -> Vec<Activity> {
        self.sort();
        std::mem::take(&mut self.held)
    }

    fn sort(&mut self) {
        // By cached keys: the activities themselves are moved once, not at every comparison.
        if !self.held.is_sorted_by_key(Activity::order_key) {
            self.held.sort_by_cached_key(Activity::order_key);
        }
        let before = self.held.len();
        self.held.dedup_by(|b, a| a.same_event(b));
        self.duplicates += before - self.held.len();
    }
}

/// The time in a CloudTrail S3 log file's name
/// (`<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz`), to read a trail's files
/// in time order rather than in the order a glob lists them (region first).
pub fn cloudtrail_file_time(name: &str) -> Option<chrono::NaiveDateTime> {
    let rest = &name[name.find("_CloudTrail_")? + "_CloudTrail_".len()..];
    let stamp = rest.split('_').nth(1)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ").ok()
}

/// The user key an activity would get without directory help (for `diagnose`).
pub fn plain_user(a: &Activity) -> Option<String> {
    user_key(a, &std::collections::HashMap::<String, String>::new())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;
    use crate::adapters::SqliteStateStore;
    use crate::geo::Geo;
    use crate::records::{Lifecycle, LifecycleStatus};
    use crate::signin::okta::OktaFact;
    use crate::signin::ports::NoDirectory;
    use crate::signin::settings::SigninSettings;
    use crate::signin::sources::parse;

    fn signin(ip: &str, time: &str, id: &str) -> Activity {
        let mut a =
            parse(include_str!("../../../events/cloudtrail/idc-signin-2025-shape.json").as_bytes())
                .activities
                .remove(0);
        a.source_ip = Some(ip.parse().unwrap());
        a.time = chrono::DateTime::parse_from_rfc3339(time).unwrap().to_utc();
        a.event_id = id.into();
        a
    }

    fn engine() -> Engine {
        Engine::new(Arc::new(SigninSettings::default()), BTreeSet::new(), Arc::new(Geo::default()))
    }

    #[test]
    fn cloudtrail_file_names_give_their_time() {
        let t = cloudtrail_file_time(
            "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/111122223333_CloudTrail_eu-west-1_20261120T0905Z_a1B2c3D4e5F6g7H8.json.gz",
        );
        assert_eq!(t.unwrap().to_string(), "2026-11-20 09:05:00");
        assert_eq!(cloudtrail_file_time("trail.jsonl"), None);
        assert_eq!(cloudtrail_file_time("x_CloudTrail_us-east-1_garbage_y.json"), None);
    }

    #[test]
    fn reorder_releases_in_time_order_within_its_bounds() {
        let times: Vec<i64> = vec![5, 1, 9, 3, 7, 2, 8, 4, 6, 0];
        let make = |m: i64| {
            let mut a = signin("5.44.46.10", "2026-11-20T10:00:00Z", &format!("e{m}"));
            a.time += chrono::Duration::minutes(m);
            a
        };
        // Large enough to hold everything: exact order, the duplicate dropped.
        let mut r = Reorder::new(100, chrono::Duration::hours(1));
        let mut out: Vec<Activity> = times.iter().flat_map(|&m| r.push(make(m))).collect();
        assert!(out.is_empty());
        r.push(make(3));
        out.extend(r.finish());
        let ids: Vec<&str> = out.iter().map(|a| a.event_id.as_str()).collect();
        assert_eq!(ids, ["e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"]);
        assert_eq!(r.duplicates, 1);
        // A small buffer still releases in order what is later than the slack allows.
        let mut r = Reorder::new(4, chrono::Duration::minutes(2));
        let mut out: Vec<Activity> = (0..10).rev().flat_map(|m| r.push(make(m * 10))).collect();
        out.extend(r.finish());
        assert_eq!(out.len(), 10, "nothing is lost");
    }

    /// The buffer's bounds, exactly: nothing leaves before it is full; when full, what lies
    /// more than the slack before the newest event leaves (what may still be overtaken by a
    /// late event stays), and at least half of it leaves whatever the slack, so it never grows
    /// past its size.
    #[test]
    fn the_reorder_buffer_releases_at_its_size_what_the_slack_allows_and_at_least_half() {
        let make = |m: i64| {
            let mut a = signin("5.44.46.10", "2026-11-20T10:00:00Z", &format!("e{m}"));
            a.time += chrono::Duration::minutes(m);
            a
        };
        let minutes = |out: Vec<Activity>| -> Vec<i64> {
            let start = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z").unwrap();
            out.iter().map(|a| (a.time - start.to_utc()).num_minutes()).collect()
        };
        let mut r = Reorder::new(6, chrono::Duration::minutes(20));
        for m in [30, 0, 2, 1, 3] {
            assert!(r.push(make(m)).is_empty(), "not full yet");
        }
        // Full at the sixth: the newest is 10:30, so what is before 10:10 leaves; 10:10 itself
        // (exactly the slack before) stays.
        assert_eq!(minutes(r.push(make(10))), [0, 1, 2, 3]);
        assert_eq!(minutes(r.finish()), [10, 30]);
        // Everything within the slack: half leaves all the same.
        let mut r = Reorder::new(4, chrono::Duration::hours(1));
        let released: Vec<Activity> =
            [3, 1, 0, 2].into_iter().flat_map(|m| r.push(make(m))).collect();
        assert_eq!(minutes(released), [0, 1]);
        assert_eq!(minutes(r.finish()), [2, 3]);
    }

    /// `diagnose` finds a person's events by the key the engine would give them unaided.
    #[test]
    fn the_plain_user_key_is_the_name_or_the_id() {
        let a = signin("5.44.46.10", "2026-11-20T10:00:00Z", "e1");
        assert_eq!(plain_user(&a).as_deref(), Some("alice@acme.example"));
        let mut nameless = a.clone();
        nameless.user_name = None;
        nameless.user_id = Some("u-alice".into());
        assert_eq!(plain_user(&nameless).as_deref(), Some("u-alice"));
    }

    type Scan<'a> = Scanner<'a, SqliteStateStore, NoDirectory>;

    /// Day one: alice signs in from Germany, which is no finding, and her baseline is saved.
    async fn alice_in_germany(scanner: &mut Scan<'_>) {
        let alerts =
            scanner.process(vec![signin("5.44.46.10", "2026-11-20T10:00:00Z", "e1")]).await;
        assert!(alerts.unwrap().is_empty(), "a first sighting is no finding");
        assert_eq!(scanner.save().await.unwrap(), 1);
    }

    /// Day two: alice from the US; the detectors that fire.
    async fn alice_in_the_us(scanner: &mut Scan<'_>) -> Vec<String> {
        let alerts =
            scanner.process(vec![signin("5.83.131.10", "2026-11-22T10:00:00Z", "e2")]).await;
        alerts.unwrap().into_iter().map(|a| a.detector).collect()
    }

    /// The CLI's scanner (its store holds no Okta records) loads stored baselines too: a
    /// `scan --state` re-run knows the countries of the run before.
    #[tokio::test]
    async fn the_clis_scanner_loads_stored_baselines() {
        let store = SqliteStateStore::in_memory().unwrap();
        let scanner = || Scanner::new(engine(), Some(&store), &NoDirectory).without_okta_in_store();
        alice_in_germany(&mut scanner()).await;
        let detectors = alice_in_the_us(&mut scanner()).await;
        assert_eq!(detectors, ["new-country"], "the stored DE baseline was loaded: US is new");
    }

    #[tokio::test]
    async fn stored_baselines_load_even_for_users_okta_facts_arrived_for_first() {
        let path = std::env::temp_dir().join(format!("idc-guard-scan-{}.json", fastrand::u64(..)));
        let store = SqliteStateStore::open(&path).unwrap();
        alice_in_germany(&mut Scanner::new(engine(), Some(&store), &NoDirectory)).await;
        // Day two, a new scan that is first told an (unrelated) Okta fact about alice.
        let mut second = Scanner::new(engine(), Some(&store), &NoDirectory);
        second.engine.okta(
            "alice@acme.example",
            OktaFact::Lifecycle(Lifecycle {
                login: String::new(),
                status: LifecycleStatus::Active,
                user_id: None,
                at: chrono::DateTime::parse_from_rfc3339("2026-11-19T00:00:00Z").unwrap().to_utc(),
                event_id: "o1".into(),
            }),
        );
        let detectors = alice_in_the_us(&mut second).await;
        assert_eq!(detectors, ["new-country"], "the stored DE baseline was loaded: US is new");
        let _ = std::fs::remove_file(path);
    }

    /// Only failures (and the console sign-ins that close a brute-force run) read the stored
    /// failure hours: a batch of portal calls makes no such reads (up to two days of hourly
    /// reads a batch otherwise).
    #[tokio::test]
    async fn only_failures_read_the_stored_failure_hours() {
        let portal = include_str!("../../../events/cloudtrail/sso-get-role-credentials.json");
        let store = SqliteStateStore::in_memory().unwrap();
        let mut scanner = Scanner::new(engine(), Some(&store), &NoDirectory);
        scanner.process(parse(portal.as_bytes()).activities).await.unwrap();
        assert!(scanner.failure_hours.is_empty(), "{:?}", scanner.failure_hours);
        let root = include_str!("../../../events/cloudtrail/console-login-root.json");
        scanner.process(parse(root.as_bytes()).activities).await.unwrap();
        assert!(!scanner.failure_hours.is_empty());
    }

    /// The ledger's last use: the portal's role request names the target account (not the
    /// account the event is recorded in), a role session's call its own account; a re-read of
    /// older files never moves a stored time back, and a failed portal request is no use.
    #[tokio::test]
    async fn last_uses_are_stored_per_user_account_and_permission_set_and_only_move_forward() {
        let portal = include_str!("../../../events/cloudtrail/sso-get-role-credentials.json");
        let call = include_str!("../../../events/cloudtrail/api-call-access-denied.json");
        let parsed = |text: &str, time: &str, id: &str| {
            let mut a = parse(text.as_bytes()).activities.remove(0);
            a.time = chrono::DateTime::parse_from_rfc3339(time).unwrap().to_utc();
            a.event_id = id.into();
            a
        };
        let store = SqliteStateStore::in_memory().unwrap();
        let mut scanner = Scanner::new(engine(), Some(&store), &NoDirectory);
        let mut failed = parsed(portal, "2026-11-25T00:00:00Z", "p0");
        failed.error_code = Some("UnauthorizedException".into());
        scanner
            .process(vec![
                parsed(portal, "2026-11-20T18:30:41Z", "p1"),
                parsed(call, "2026-11-21T09:00:00Z", "c1"),
                failed,
            ])
            .await
            .unwrap();
        scanner.save().await.unwrap();
        // An older file read afterwards.
        let mut older = Scanner::new(engine(), Some(&store), &NoDirectory);
        older.process(vec![parsed(portal, "2026-10-01T00:00:00Z", "p2")]).await.unwrap();
        older.save().await.unwrap();
        let stored: Vec<LastUsed> = records::load_all(&store, LastUsed::PK).await.unwrap();
        let view: Vec<String> = stored
            .iter()
            .map(|u| {
                format!(
                    "{} {} {} {:?} {:?}",
                    u.user,
                    u.account_id,
                    u.permission_set,
                    u.portal.map(|t| t.to_rfc3339()),
                    u.activity.map(|t| t.to_rfc3339()),
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                "94482488-3041-7026-18f3-be45837cd0e4 111122223333 TeamDeveloper Some(\"2026-11-20T18:30:41+00:00\") None",
                "alice@acme.example 111122223333 TeamDeveloper None Some(\"2026-11-21T09:00:00+00:00\")",
            ]
        );
    }

    /// Records that name only an Identity Store user id are resolved through the directory:
    /// once per id, known or not (a batch of a thousand portal calls is not a thousand reads).
    #[tokio::test]
    async fn user_ids_are_looked_up_once_each_whether_or_not_the_directory_knows_them() {
        struct Directory(std::sync::Mutex<Vec<String>>);
        impl UserDirectory for Directory {
            async fn user_name(&self, _: &str, user_id: &str) -> Result<Option<String>, AwsError> {
                self.0.lock().unwrap().push(user_id.to_owned());
                Ok((user_id == "u-alice").then(|| "alice@acme.example".to_owned()))
            }
        }
        let portal = include_str!("../../../events/cloudtrail/sso-get-role-credentials.json");
        let call = |user_id: &str, id: &str| {
            let mut a = parse(portal.as_bytes()).activities.remove(0);
            a.user_name = None;
            a.user_id = Some(user_id.into());
            a.identity_store_id = Some("d-1234567890".into());
            a.event_id = id.into();
            a
        };
        let directory = Directory(std::sync::Mutex::default());
        let mut scanner = Scanner::<SqliteStateStore, _>::new(engine(), None, &directory);
        let batch = vec![call("u-alice", "1"), call("u-x", "2")];
        scanner.process(batch).await.unwrap();
        scanner.process(vec![call("u-alice", "3"), call("u-x", "4")]).await.unwrap();
        assert_eq!(*directory.0.lock().unwrap(), ["u-alice", "u-x"]);
        assert!(scanner.engine.knows_id("u-alice"));
    }

    /// A batch arrives in any order (an S3 object is not sorted by time): the success that
    /// ends a burst of console failures is judged after them, even when it comes first.
    #[tokio::test]
    async fn a_batch_is_judged_in_time_order_whatever_its_order() {
        let failure =
            include_str!("../../../events/cloudtrail/console-login-iam-user-failure.json");
        let at = |second: i64, id: &str, success: bool| {
            let mut a = parse(failure.as_bytes()).activities.remove(0);
            a.time = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:50:00Z").unwrap().to_utc()
                + chrono::Duration::seconds(second);
            a.event_id = id.into();
            if let crate::signin::model::Kind::ConsoleLogin { success: s, mfa_used, .. } =
                &mut a.kind
            {
                (*s, *mfa_used) = (success, true);
            }
            a.error_code = None;
            a
        };
        let mut batch = vec![at(400, "ok", true)];
        batch.extend((0..10).map(|i| at(i * 20, &format!("f{i}"), false)));
        let mut scanner = Scanner::<SqliteStateStore, _>::new(engine(), None, &NoDirectory);
        let alerts = scanner.process(batch).await.unwrap();
        let detectors: Vec<&str> = alerts.iter().map(|a| a.detector.as_str()).collect();
        assert_eq!(detectors, ["console-brute-force", "console-brute-force-success"]);
    }

    /// Baselines outlive the 30-day window: kept 180 days from the scan that last changed them.
    #[tokio::test]
    async fn a_baseline_is_kept_for_180_days() {
        let store = SqliteStateStore::in_memory().unwrap();
        let before = now_epoch();
        alice_in_germany(&mut Scanner::new(engine(), Some(&store), &NoDirectory)).await;
        let key = baseline_key("alice@acme.example");
        let item = store.get(&key.pk, &key.sk).await.unwrap().expect("the baseline is stored");
        let kept = item.expires_at.expect("an expiry") - before;
        assert!((180 * 86_400..180 * 86_400 + 60).contains(&kept), "{kept} s");
    }

    /// An attacker paces console guesses across an hour boundary and across scans: the failures
    /// an earlier scan counted in the hour before still count toward this scan's burst.
    #[tokio::test]
    async fn failures_stored_in_the_hour_before_continue_the_burst() {
        let failure =
            include_str!("../../../events/cloudtrail/console-login-iam-user-failure.json");
        let at = |second: i64, id: &str| {
            let mut a = parse(failure.as_bytes()).activities.remove(0);
            a.time = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:57:00Z").unwrap().to_utc()
                + chrono::Duration::seconds(second);
            a.event_id = id.into();
            a
        };
        let store = SqliteStateStore::in_memory().unwrap();
        let mut first = Scanner::new(engine(), Some(&store), &NoDirectory);
        let nine: Vec<Activity> = (0..9).map(|i| at(i * 20, &format!("f{i}"))).collect();
        assert!(first.process(nine).await.unwrap().is_empty(), "nine are not ten");
        first.save().await.unwrap();
        // The tenth, at 11:01, in the next hour and the next scan.
        let mut second = Scanner::new(engine(), Some(&store), &NoDirectory);
        let alerts = second.process(vec![at(240, "f9")]).await.unwrap();
        let detectors: Vec<&str> = alerts.iter().map(|a| a.detector.as_str()).collect();
        assert_eq!(detectors, ["console-brute-force"]);
    }

    /// The function's scanner reads access-sync's revocations: a person denied at 10:00 who
    /// signs in at 10:30 is `revoked-session-used`, matched by login whatever its case, and by
    /// Identity Store id where the activity names no one. The CLI's store holds none, and its
    /// scanner does not look.
    #[tokio::test]
    async fn the_functions_scanner_finds_a_use_after_revocation_by_login_or_id() {
        let revoked_at = chrono::DateTime::parse_from_rfc3339("2026-11-22T09:00:00Z").unwrap();
        let revocation = |login: &str, user_id: &str| RevokedSessions {
            user_id: user_id.into(),
            login: login.into(),
            permission_sets: vec!["arn:aws:sso:::permissionSet/ssoins-1/ps-1".into()],
            accounts: vec!["111122223333".into()],
            revoked_at: revoked_at.to_utc(),
            release_after: revoked_at.to_utc() + chrono::Duration::hours(13),
            reason: "okta user.lifecycle.deactivate".into(),
            groups: Vec::new(),
            unprovisioned: Vec::new(),
            not_covered: Vec::new(),
            access_ended_at: None,
            grant_end: false,
        };
        let store = SqliteStateStore::in_memory().unwrap();
        records::save(&store, &revocation("Alice@ACME.example", "u-alice")).await.unwrap();
        let mut function = Scanner::new(engine(), Some(&store), &NoDirectory);
        let found = alice_in_the_us(&mut function).await;
        assert!(found.contains(&"revoked-session-used".to_owned()), "{found:?}");
        let mut cli = Scanner::new(engine(), Some(&store), &NoDirectory).without_okta_in_store();
        let found = alice_in_the_us(&mut cli).await;
        assert!(!found.contains(&"revoked-session-used".to_owned()), "{found:?}");

        // A portal call that names only the Identity Store id (no directory to resolve it).
        let store = SqliteStateStore::in_memory().unwrap();
        records::save(&store, &revocation("someone.else@acme.example", "u-bob")).await.unwrap();
        let portal = include_str!("../../../events/cloudtrail/sso-get-role-credentials.json");
        let mut call = parse(portal.as_bytes()).activities.remove(0);
        call.user_name = None;
        call.user_id = Some("u-bob".into());
        call.time = revoked_at.to_utc() + chrono::Duration::minutes(30);
        let mut scanner = Scanner::new(engine(), Some(&store), &NoDirectory);
        let alerts = scanner.process(vec![call]).await.unwrap();
        let detectors: Vec<&str> = alerts.iter().map(|a| a.detector.as_str()).collect();
        assert_eq!(detectors, ["revoked-session-used"]);
    }
}

/// The attack on the ledger's last use: a role made to look like a permission set's
/// (`AWSReservedSSO_<set>_<hex>`, outside IdC's reserved path) assumed with a person's name as
/// the session name, so that its calls pass for that person's use of the permission set.
#[cfg(test)]
mod usage_forgery_tests {
    use super::*;
    use crate::adapters::SqliteStateStore;
    use crate::signin::ports::NoDirectory;
    use crate::signin::sources::parse;

    #[tokio::test]
    async fn a_role_named_like_a_permission_set_outside_idcs_path_is_no_use_of_it() {
        let call = include_str!("../../../events/cloudtrail/api-call-access-denied.json");
        let genuine = "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_TeamDeveloper_0123456789abcdef";
        let mut uses = Vec::new();
        for (arn, id) in [
            (genuine.replace("aws-reserved/sso.amazonaws.com/", ""), "forged-1"),
            (genuine.replace("aws-reserved/sso.amazonaws.com/", "team/"), "forged-2"),
            (genuine.to_owned(), "genuine"),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(call).unwrap();
            v["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = serde_json::json!(arn);
            v["eventID"] = serde_json::json!(id);
            let a = parse(v.to_string().as_bytes()).activities.remove(0);
            assert_eq!(a.permission_set.is_some(), id == "genuine", "{arn}");
            let store = SqliteStateStore::in_memory().unwrap();
            let engine = Engine::new(
                std::sync::Arc::new(crate::signin::settings::SigninSettings::default()),
                BTreeSet::new(),
                std::sync::Arc::new(crate::geo::Geo::default()),
            );
            let mut scanner = Scanner::new(engine, Some(&store), &NoDirectory);
            scanner.process(vec![a]).await.unwrap();
            scanner.save().await.unwrap();
            let stored: Vec<LastUsed> = records::load_all(&store, LastUsed::PK).await.unwrap();
            uses.push((id, stored.len()));
        }
        assert_eq!(uses, [("forged-1", 0), ("forged-2", 0), ("genuine", 1)]);
    }
}

/// The ledger's last use under concurrent writers: two functions read log files of the same
/// person at once, each reads the stored use, merges and writes. The attack is the classic lost
/// update: a slower writer putting back its older merge over a newer time.
#[cfg(test)]
mod usage_race_tests {
    use std::sync::Mutex;

    use super::*;
    use crate::adapters::SqliteStateStore;
    use crate::store::Item;

    fn at(day: u32) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(&format!("2026-11-{day:02}T12:00:00Z"))
            .unwrap()
            .to_utc()
    }

    fn used(portal: Option<u32>, activity: Option<u32>) -> LastUsed {
        LastUsed {
            user: "alice@acme.example".into(),
            account_id: "111122223333".into(),
            permission_set: "TeamDeveloper".into(),
            portal: portal.map(at),
            activity: activity.map(at),
            user_name: None,
        }
    }

    /// A store where a rival writer's save lands between each of our reads and the write after
    /// it: `rivals` of them, one per write, each a day later than the one before.
    struct Racing<'a> {
        inner: &'a SqliteStateStore,
        rivals: Mutex<Vec<LastUsed>>,
    }

    impl Racing<'_> {
        async fn rival_lands(&self) -> Result<(), AwsError> {
            let rival = self.rivals.lock().unwrap().pop();
            match rival {
                Some(rival) => save_usage(self.inner, vec![rival]).await.map(|_| ()),
                None => Ok(()),
            }
        }
    }

    impl StateStore for Racing<'_> {
        async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, AwsError> {
            self.inner.get(pk, sk).await
        }
        async fn put(&self, item: Item) -> Result<(), AwsError> {
            self.inner.put(item).await
        }
        async fn put_if_absent(&self, item: Item) -> Result<bool, AwsError> {
            self.inner.put_if_absent(item).await
        }
        async fn put_if_unchanged(
            &self,
            item: Item,
            seen: Option<&Item>,
        ) -> Result<bool, AwsError> {
            self.rival_lands().await?;
            self.inner.put_if_unchanged(item, seen).await
        }
        async fn put_many_if_unchanged(
            &self,
            writes: Vec<(Item, Option<Item>)>,
        ) -> Result<Vec<bool>, AwsError> {
            self.rival_lands().await?;
            self.inner.put_many_if_unchanged(writes).await
        }
        async fn query(&self, pk: &str) -> Result<Vec<Item>, AwsError> {
            self.inner.query(pk).await
        }
        async fn delete(&self, pk: &str, sk: &str) -> Result<(), AwsError> {
            self.inner.delete(pk, sk).await
        }
    }

    async fn stored(store: &SqliteStateStore) -> Vec<LastUsed> {
        records::load_all(store, LastUsed::PK).await.unwrap()
    }

    #[tokio::test]
    async fn a_rival_writing_between_our_read_and_write_loses_nothing() {
        let store = SqliteStateStore::in_memory().unwrap();
        save_usage(&store, vec![used(Some(1), None)]).await.unwrap();
        let racing = Racing { inner: &store, rivals: Mutex::new(vec![used(Some(3), None)]) };
        // Ours: an older portal use than the rival's, and a role-session call it never saw.
        let written = save_usage(&racing, vec![used(Some(2), Some(2))]).await.unwrap();
        assert_eq!(written, 1);
        assert_eq!(
            stored(&store).await,
            [used(Some(3), Some(2))],
            "the rival's later portal use and our call are both kept"
        );
    }

    #[tokio::test]
    async fn a_write_that_loses_every_race_fails_retryably_and_overwrites_nothing() {
        let store = SqliteStateStore::in_memory().unwrap();
        save_usage(&store, vec![used(Some(1), None)]).await.unwrap();
        let rivals: Vec<LastUsed> =
            (0..USAGE_WRITE_TRIES as u32).rev().map(|n| used(Some(10 + n), None)).collect();
        let racing = Racing { inner: &store, rivals: Mutex::new(rivals) };
        let e = save_usage(&racing, vec![used(Some(2), Some(2))]).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(
            stored(&store).await,
            [used(Some(10 + USAGE_WRITE_TRIES as u32 - 1), None)],
            "the rivals' latest use stands; ours is left for the retry"
        );
    }

    #[tokio::test]
    async fn a_damaged_stored_use_is_replaced_not_retried_forever() {
        let store = SqliteStateStore::in_memory().unwrap();
        let key = used(None, None).key();
        store
            .put(Item::new(&key.pk, &key.sk, serde_json::json!({"portal": "not a time"})))
            .await
            .unwrap();
        assert_eq!(save_usage(&store, vec![used(Some(2), None)]).await.unwrap(), 1);
        assert_eq!(stored(&store).await, [used(Some(2), None)]);
    }

    #[tokio::test]
    async fn an_older_use_read_again_writes_nothing() {
        let store = SqliteStateStore::in_memory().unwrap();
        assert_eq!(save_usage(&store, vec![used(Some(5), Some(5))]).await.unwrap(), 1);
        assert_eq!(save_usage(&store, vec![used(Some(4), Some(5))]).await.unwrap(), 0);
        assert_eq!(stored(&store).await, [used(Some(5), Some(5))]);
    }
}

#[cfg(test)]
#[path = "exactness_tests.rs"]
mod exactness_tests;
