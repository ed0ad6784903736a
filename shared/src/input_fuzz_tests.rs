//! Bad input never crashes a parser: arbitrary bytes and mutated vendor-shaped fixtures (cut
//! short, a byte changed, bytes spliced in) through every parser that reads what someone else
//! wrote: the Okta hook delivery, the Okta System Log reader, the CloudTrail normaliser, the
//! access policy (with its `[signin]` table) and the URL checks. Each must return a typed result:
//! findings, skips counted by reason, or an error that maps to a 4xx, never a panic.
//!
//! Cases: proptest's default (256 per property); `PROPTEST_CASES=100000` runs more.

use proptest::prelude::*;

use crate::access::policy::Policy;
use crate::okta::hook::prepare_delivery;
use crate::okta::org_url::validate_org_url;
use crate::scim::validate_scim_endpoint;
use crate::signin::okta::read_facts;
use crate::signin::settings::SigninSettings;
use crate::signin::sources::parse;

const OKTA: &[&str] = &[
    include_str!("../../events/okta/delivery-three-events.json"),
    include_str!("../../events/okta/user-lifecycle-deactivate.json"),
    include_str!("../../events/okta/user-authentication-sso-failure.json"),
    include_str!("../../events/okta/group-user-membership-add.json"),
    include_str!("../../events/okta/sparse-event.json"),
    include_str!("../../events/okta/application-provision-group-push-failed.json"),
];

const CLOUDTRAIL: &[&str] = &[
    include_str!("../../events/cloudtrail/idc-signin-2025-shape.json"),
    include_str!("../../events/cloudtrail/idc-signin-legacy-shape.json"),
    include_str!("../../events/cloudtrail/sso-get-role-credentials.json"),
    include_str!("../../events/cloudtrail/console-login-root.json"),
    include_str!("../../events/cloudtrail/console-login-iam-user-failure.json"),
    include_str!("../../events/cloudtrail/credential-verification-failure-legacy-shape.json"),
    include_str!("../../events/cloudtrail/api-call-access-denied.json"),
];

const POLICY: &str = include_str!("../../access-policy.example.toml");

/// How a fixture is damaged.
#[derive(Debug, Clone)]
enum Mutation {
    /// Cut at this fraction of its length.
    Truncate(prop::sample::Index),
    /// One byte replaced.
    Replace(prop::sample::Index, u8),
    /// Bytes spliced in.
    Insert(prop::sample::Index, Vec<u8>),
    /// A span removed.
    Remove(prop::sample::Index, prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(a, b)| Mutation::Remove(a, b)),
    ]
}

fn damage(text: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        match m {
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Mutation::Replace(i, b) => {
                let at = i.index(bytes.len());
                bytes[at] = *b;
            }
            Mutation::Insert(i, v) => {
                let at = i.index(bytes.len());
                bytes.splice(at..at, v.iter().copied());
            }
            Mutation::Remove(a, b) => {
                let (a, b) = (a.index(bytes.len()), b.index(bytes.len()));
                bytes.drain(a.min(b)..a.max(b));
            }
        }
    }
    bytes
}

/// A damaged fixture: one of `fixtures` with one to four mutations.
fn damaged(fixtures: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(fixtures), proptest::collection::vec(mutation(), 1..4))
        .prop_map(|(text, ms)| damage(text, &ms))
}

fn hook_delivery_is_typed(body: &[u8]) -> Result<(), TestCaseError> {
    if let Err(e) = prepare_delivery(body) {
        // A bad body is the sender's fault: never a 5xx that would make Okta retry it forever.
        prop_assert!(e.status().is_client_error(), "{e} → {}", e.status());
    }
    Ok(())
}

fn cloudtrail_is_counted(bytes: &[u8]) -> Result<(), TestCaseError> {
    let parsed = parse(bytes);
    prop_assert!(parsed.reasons.len() <= parsed.skipped);
    Ok(())
}

proptest! {
    #[test]
    fn the_hook_types_every_delivery_body(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        hook_delivery_is_typed(&body)?;
    }

    #[test]
    fn the_hook_types_every_damaged_okta_delivery(body in damaged(OKTA)) {
        hook_delivery_is_typed(&body)?;
    }

    #[test]
    fn the_system_log_reader_survives_damaged_exports(body in damaged(OKTA)) {
        let read = read_facts(&String::from_utf8_lossy(&body));
        prop_assert!(read.facts.len() <= read.events, "a fact comes from an event");
    }

    #[test]
    fn cloudtrail_parsing_counts_what_it_cannot_use(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        cloudtrail_is_counted(&bytes)?;
    }

    #[test]
    fn cloudtrail_parsing_survives_damaged_records(bytes in damaged(CLOUDTRAIL)) {
        cloudtrail_is_counted(&bytes)?;
        // The same damage inside an S3 log file and a JSON-lines file.
        let text = String::from_utf8_lossy(&bytes);
        cloudtrail_is_counted(format!("{{\"Records\": [{text}, {{}}]}}").as_bytes())?;
        cloudtrail_is_counted(format!("{}\n{text}\n", CLOUDTRAIL[0].replace('\n', "")).as_bytes())?;
    }

    #[test]
    fn the_policy_checker_reports_damaged_policies_with_positions(bytes in damaged(&[POLICY])) {
        let text = String::from_utf8_lossy(&bytes);
        let (policy, diagnostics) = Policy::check(&text, None);
        prop_assert!(policy.is_some() || !diagnostics.is_empty(), "rejected without a reason");
        let (settings, diagnostics) = SigninSettings::check(&text);
        prop_assert!(settings.is_some() || !diagnostics.is_empty(), "[signin] rejected without a reason");
    }

    #[test]
    fn url_checks_accept_only_https_or_loopback(url in "\\PC{0,60}") {
        if let Ok(accepted) = validate_org_url(&url) {
            prop_assert!(
                accepted.starts_with("https://") || accepted.starts_with("http://127.0.0.1")
                    || accepted.starts_with("http://localhost") || accepted.starts_with("http://[::1]"),
                "{url:?} → {accepted:?}"
            );
        }
        let _ = validate_scim_endpoint(&url);
    }
}
