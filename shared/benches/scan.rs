//! The sign-in scan path on one core: parsing CloudTrail JSON lines and every detector, over a
//! synthetic organisation trail (10,000 users, planted anomalies). Throughput is reported in
//! events per second. Run: `cargo bench -p idc-guard-core --bench scan`.
//! (`scripts/measure-scan.sh` runs 1,000,000 events through the CLI and reports peak RSS.)

use std::collections::BTreeSet;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use idc_guard::geo::Geo;
use idc_guard::signin::engine::Engine;
use idc_guard::signin::settings::SigninSettings;
use idc_guard::signin::sources::Reader;
use idc_guard::signin::synth::trail;

const EVENTS: u64 = 200_000;
const USERS: usize = 10_000;

fn scan(c: &mut Criterion) {
    let (lines, _) = trail(42, USERS, EVENTS);
    let input = lines.join("\n").into_bytes();
    let geo = Arc::new(Geo::default());
    let settings = Arc::new(SigninSettings::default());
    let privileged = BTreeSet::from(["AdministratorAccess".to_owned()]);

    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("parse only (200k events)", |b| {
        b.iter(|| {
            let mut n = 0u64;
            let mut count = |a| {
                black_box(a);
                n += 1;
            };
            Reader::new(&mut count).read(input.as_slice()).unwrap();
            n
        })
    });
    group.bench_function("parse + all detectors (200k events, 10k users)", |b| {
        b.iter(|| {
            let mut engine = Engine::new(settings.clone(), privileged.clone(), geo.clone());
            let mut alerts = 0usize;
            let mut observe = |a| alerts += engine.observe(a).len();
            Reader::new(&mut observe).read(input.as_slice()).unwrap();
            alerts
        })
    });
    group.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
