//! In-process cost of the Okta event-hook endpoint for a 100-event delivery, network excluded:
//! authentication (cached digests), parsing, validation, ordering and batching, with ports that
//! answer at once. Run: `cargo bench -p idc-guard-core --bench hook`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use idc_guard::error::AwsError;
use idc_guard::okta::hook::{EventHookHandler, HookAuthenticator, prepare_delivery};
use idc_guard::okta::ports::{EventQueue, QueueMessage, RejectedMessage};
use idc_guard::secret::SecretString;
use idc_guard::secret::{SecretDescription, SecretVersions};

const AUTHORIZATION: &str = "Bearer 9c1f0e5d7a3b4c2e8f6a1d0b3c5e7f9a";

struct Secrets;
impl SecretVersions for Secrets {
    async fn describe(&self, _: &str) -> Result<SecretDescription, AwsError> {
        Ok(SecretDescription {
            versions: [("v1".to_owned(), vec!["AWSCURRENT".to_owned()])].into(),
            ..Default::default()
        })
    }
    async fn version_value(
        &self,
        _: &str,
        version: &str,
    ) -> Result<Option<SecretString>, AwsError> {
        Ok((version == "v1").then(|| SecretString::from(AUTHORIZATION.to_owned())))
    }
}

struct Queue;
impl EventQueue for Queue {
    async fn send_batch(
        &self,
        messages: &[QueueMessage],
    ) -> Result<Vec<RejectedMessage>, AwsError> {
        black_box(messages);
        Ok(Vec::new())
    }
}

/// 100 realistic events: the fixture events repeated with distinct uuids and times.
fn delivery_of(n: usize) -> String {
    let fixtures = [
        include_str!("../../events/okta/group-user-membership-add.json"),
        include_str!("../../events/okta/user-authentication-sso-success.json"),
        include_str!("../../events/okta/user-lifecycle-deactivate.json"),
        include_str!("../../events/okta/group-profile-update.json"),
    ];
    let samples: Vec<serde_json::Value> = fixtures
        .iter()
        .map(|f| serde_json::from_str::<serde_json::Value>(f).unwrap()["data"]["events"][0].clone())
        .collect();
    let events: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut e = samples[i % samples.len()].clone();
            e["uuid"] = format!("5d7a0000-0000-4000-8000-{i:012}").into();
            e["published"] =
                format!("2026-11-20T14:{:02}:{:02}.000Z", (n - i) / 60 % 60, (n - i) % 60).into();
            e
        })
        .collect();
    serde_json::json!({
        "eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "cloudEventsVersion": "0.1",
        "source": "https://acme.okta.com/api/v1/eventHooks/whk1", "eventId": "bench",
        "eventTime": "2026-11-20T15:00:00.000Z", "contentType": "application/json",
        "data": { "events": events }
    })
    .to_string()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let body = delivery_of(100);
    let svc = EventHookHandler::new(
        HookAuthenticator::new(Secrets, "arn:aws:secretsmanager:bench"),
        Queue,
    );
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static(AUTHORIZATION));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    // Fill the secret cache, as every warm invocation finds it.
    assert_eq!(rt.block_on(svc.handle(&Method::POST, &headers, body.as_bytes())).status, 200);

    let mut g = c.benchmark_group("okta_event_hook");
    g.throughput(criterion::Throughput::Elements(100));
    g.bench_function("handle_100_event_delivery", |b| {
        b.iter(|| rt.block_on(svc.handle(&Method::POST, &headers, black_box(body.as_bytes()))))
    });
    g.bench_function("prepare_100_event_delivery", |b| {
        b.iter(|| prepare_delivery(black_box(body.as_bytes())).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
