//! Review decisions, tried first as the ways around them: a reviewer outside the owners, one
//! deciding about themself, a decision without a reason or of an unknown kind, a removal of a
//! membership that does not exist; then the removal and its evidence, and Okta refusing.

use super::super::tests::{ADMIN, Handler, handler, leak, now, okta, person};
use crate::access::pattern::GroupPattern;
use crate::access::review::{DecisionRequest, ReviewOwners};
use crate::okta::ports::OktaGroups;
use crate::testing::faults::RecordingSink;

fn reviewed(mut h: Handler) -> Handler {
    h.access.policy.reviews.push(ReviewOwners {
        groups: GroupPattern::compile("aws-admin-*").unwrap(),
        owners: vec!["aws-approvers".into()],
        unused_days: 90,
    });
    h
}

fn ask(user: &str, group: &str, decision: &str, reason: &str) -> DecisionRequest {
    DecisionRequest {
        user: format!("{user}@acme.example"),
        group: group.into(),
        decision: decision.into(),
        reason: reason.into(),
    }
}

async fn setup() -> Handler {
    let h = reviewed(handler(leak(RecordingSink::new("sns"))));
    for who in ["alice", "bob", "carol"] {
        okta(&h).add_member("00g-admin", &format!("00u-{who}")).await.unwrap();
    }
    h
}

#[tokio::test]
async fn nobody_outside_the_owners_decides_and_nobody_decides_about_themself() {
    let h = setup().await;
    let refusals = [
        ("alice", ask("bob", ADMIN, "remove", "unused"), "only members of aws-approvers"),
        ("carol", ask("carol", ADMIN, "keep", "mine"), "nobody reviews their own access"),
        ("carol", ask("alice", "oncall", "remove", "unused"), "no [[review]]"),
        ("carol", ask("alice", ADMIN, "delete", "unused"), "remove or keep"),
        ("carol", ask("alice", ADMIN, "remove", "  "), "needs a reason"),
        ("carol", ask("erin", ADMIN, "remove", "unused"), "not a member"),
        // In other Okta groups, not this one.
        ("carol", ask("dave", ADMIN, "remove", "unused"), "not a member"),
        ("carol", ask("nobody", ADMIN, "remove", "unused"), "no Okta user"),
    ];
    for (reviewer, request, why) in refusals {
        let reviewer = person(&h, reviewer).await;
        let e = h.decide_review(&reviewer, &request, now()).await.unwrap_err().to_string();
        assert!(e.contains(why), "{request:?}: {e}");
    }
    assert!(okta(&h).is_member("alice") && okta(&h).is_member("bob"), "nothing changed");
    assert!(h.review_history().await.unwrap().is_empty(), "a refusal decides nothing");
}

#[tokio::test]
async fn a_removal_takes_the_okta_membership_and_both_decisions_leave_evidence() {
    let h = setup().await;
    let carol = person(&h, "carol").await;
    let removed = h
        .decide_review(&carol, &ask("alice", ADMIN, "remove", "unused for 120 days"), now())
        .await
        .unwrap();
    assert!(!okta(&h).is_member("alice"), "the Okta membership is gone");
    assert_eq!(removed.reviewer, "00u-carol");
    assert!(removed.outcome.starts_with("membership removed"), "{}", removed.outcome);
    let dave = person(&h, "dave").await;
    let later = now() + chrono::Duration::minutes(1);
    h.decide_review(&dave, &ask("bob", ADMIN, "keep", "on call this quarter"), later)
        .await
        .unwrap();
    assert!(okta(&h).is_member("bob"));
    let history = h.review_history().await.unwrap();
    let seen: Vec<(&str, &str, &str, &str)> = history
        .iter()
        .map(|d| {
            (d.reviewer_login.as_str(), d.login.as_str(), d.decision.as_str(), d.outcome.as_str())
        })
        .collect();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, "carol@acme.example");
    assert_eq!(seen[1], ("dave@acme.example", "bob@acme.example", "keep", "kept"));
    assert_eq!((history[0].at, history[1].at), (now(), later), "oldest first");
}

#[tokio::test]
async fn a_removal_okta_refuses_is_recorded_and_reported() {
    let h = setup().await;
    okta(&h).failing_users.lock().unwrap().insert("00u-alice".into());
    let carol = person(&h, "carol").await;
    let e = h.decide_review(&carol, &ask("alice", ADMIN, "remove", "unused"), now()).await;
    assert!(e.is_err());
    assert!(okta(&h).is_member("alice"));
    let history = h.review_history().await.unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0].outcome.starts_with("not removed: Okta answered"), "{}", history[0].outcome);
}
