//! Writes a synthetic organisation trail as CloudTrail JSON lines to stdout, with planted
//! anomalies (listed on stderr). Used by `scripts/measure-scan.sh`.
//!
//! `cargo run --release -p idc-guard-core --example gen_trail -- EVENTS USERS [SEED]`

use std::io::{BufWriter, Write};

use idc_guard::signin::synth::Synth;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut number = |default: u64| -> u64 {
        args.next().and_then(|a| a.replace('_', "").parse().ok()).unwrap_or(default)
    };
    let (events, users, seed) = (number(1_000_000), number(10_000) as usize, number(42));
    let mut s = Synth::new(seed, users, events, 7);
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    for i in 0..events {
        if i == events / 2 {
            let (records, planted) = s.plant();
            for r in records {
                writeln!(out, "{r}")?;
            }
            for p in planted {
                eprintln!("planted: {} for {}", p.detector, p.user);
            }
        }
        writeln!(out, "{}", s.record())?;
    }
    out.flush()
}
