//! The scan path shared by the function and the CLI: activities in, findings out, with each
//! user's baseline and Okta context loaded from the state store before their first activity and
//! changed baselines written back afterwards.

use std::collections::HashSet;

use serde_json::json;

use super::engine::{Baseline, Engine, UserContext, user_key};
use super::model::Activity;
use super::okta::OktaSignin;
use super::ports::UserDirectory;
use crate::alert::Alert;
use crate::error::AwsError;
use crate::records::{self, Lifecycle, OktaSigninRecord, baseline_key};
use crate::store::{Item, StateStore, now_epoch};

/// Baselines outlive the 30-day window so a user back from 60 days off is not "new" everywhere.
const BASELINE_KEEP_SECONDS: i64 = 180 * 24 * 3600;

/// Feeds activities to the engine, loading each user's context from the store first.
pub struct Scanner<'a, Store, Directory> {
    /// The detectors and their per-user state.
    pub engine: Engine,
    store: Option<&'a Store>,
    directory: &'a Directory,
    unresolvable: HashSet<String>,
    /// Users whose stored context has been loaded.
    loaded: HashSet<String>,
}

impl<'a, Store: StateStore, Directory: UserDirectory> Scanner<'a, Store, Directory> {
    /// `store: None` keeps everything in memory (a one-off scan).
    pub fn new(engine: Engine, store: Option<&'a Store>, directory: &'a Directory) -> Self {
        Self { engine, store, directory, unresolvable: HashSet::new(), loaded: HashSet::new() }
    }

    /// Runs a batch of activities (any order; sorted here) through the detectors.
    pub async fn process(&mut self, mut batch: Vec<Activity>) -> Result<Vec<Alert>, AwsError> {
        batch.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.event_id.cmp(&b.event_id)));
        // Learn id ↔ name pairs first, so a portal call early in the batch resolves too.
        for a in &batch {
            self.engine.learn(a);
        }
        for a in &batch {
            let mut user = self.engine.key(a);
            if a.user_name.is_none()
                && let (Some(id), Some(store_id)) = (&a.user_id, &a.identity_store_id)
                && user.as_deref() == Some(id.as_str())
                && !self.unresolvable.contains(id)
            {
                match self.directory.user_name(store_id, id).await? {
                    Some(name) => {
                        self.engine.learn_name(id, &name);
                        user = self.engine.key(a);
                    }
                    None => {
                        self.unresolvable.insert(id.clone());
                    }
                }
            }
            if let Some(user) = user
                && !self.loaded.contains(&user)
            {
                let ctx = self.context(&user).await?;
                self.engine.load(&user, ctx);
                self.loaded.insert(user);
            }
        }
        Ok(batch.into_iter().flat_map(|a| self.engine.observe(a)).collect())
    }

    async fn context(&self, user: &str) -> Result<UserContext, AwsError> {
        let Some(store) = self.store else { return Ok(UserContext::default()) };
        let key = baseline_key(user);
        let baseline = store
            .get(&key.pk, &key.sk)
            .await?
            .and_then(|i| serde_json::from_value::<Baseline>(i.data).ok())
            .unwrap_or_default();
        let okta =
            records::load_all::<OktaSigninRecord, _>(store, &OktaSigninRecord::partition(user))
                .await?
                .iter()
                .map(OktaSignin::from)
                .collect();
        let lifecycle = records::load(store, &Lifecycle::key_of(user)).await?;
        Ok(UserContext { baseline, okta, lifecycle })
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
        }
        Ok(n)
    }
}

/// The user key an activity would get without directory help (for `diagnose`).
pub fn plain_user(a: &Activity) -> Option<String> {
    user_key(a, &Default::default())
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

    #[tokio::test]
    async fn stored_baselines_load_even_for_users_okta_facts_arrived_for_first() {
        let path = std::env::temp_dir().join(format!("idc-guard-scan-{}.json", fastrand::u64(..)));
        let store = SqliteStateStore::open(&path).unwrap();
        // Day one: alice in Germany; the baseline is saved.
        let mut first = Scanner::new(engine(), Some(&store), &NoDirectory);
        assert!(
            first
                .process(vec![signin("5.44.46.10", "2026-11-20T10:00:00Z", "e1")])
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(first.save().await.unwrap(), 1);
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
        let alerts = second
            .process(vec![signin("5.83.131.10", "2026-11-22T10:00:00Z", "e2")])
            .await
            .unwrap();
        let detectors: Vec<&str> = alerts.iter().map(|a| a.detector.as_str()).collect();
        assert_eq!(detectors, ["new-country"], "the stored DE baseline was loaded: US is new");
        let _ = std::fs::remove_file(path);
    }
}
