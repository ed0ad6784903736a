use proptest::prelude::*;
use serde_json::value::RawValue;

use super::*;
use crate::signin::prefilter::unread;
use crate::signin::synth::Synth;

/// What serde_json makes of a text as an S3 log file: each record's span, or `None`.
fn serde_split(text: &[u8]) -> Option<Vec<Range<usize>>> {
    #[derive(serde::Deserialize)]
    struct Log<'a> {
        #[serde(rename = "Records", borrow)]
        records: Vec<&'a RawValue>,
    }
    let s = std::str::from_utf8(text).ok()?;
    let log: Log = serde_json::from_str(s).ok()?;
    let base = s.as_ptr() as usize;
    Some(
        log.records
            .iter()
            .map(|r| {
                let from = r.get().as_ptr() as usize - base;
                from..from + r.get().len()
            })
            .collect(),
    )
}

/// A compact log file of organisation traffic, with the odd records real writers produce:
/// escapes of every kind, numbers of every form, keys moved, a sign-in among them.
fn org_file(seed: u64, n: usize) -> String {
    let mut s = Synth::new(seed, 30, 2_000, 1);
    let records: Vec<String> = (0..n)
        .map(|i| {
            let text = s.org_record(6).to_string();
            match i % 11 {
                0 => text.replace(
                    "\"eventSource\":",
                    "\"x\":[1,-2.5e+3,0.0,true,null,{}],\"eventSource\":",
                ),
                1 => text.replace("amazonaws.com\"", "amazonaws.com \\\"q\\\" \\\\ \\/ \\t\""),
                2 => text.replace("\"eventTime\"", "\"eventTim\\u0065\""),
                3 => text.replacen('{', "{\"eventSource\":\"kms.amazonaws.com\",", 1),
                4 => text.replace("\"eventName\":\"", "\"eventName\":\"onBehalfOf "),
                5 => text.replace("\"awsRegion\"", "\"e\":\"AWSReservedSSO_x\",\"awsRegion\""),
                6 => text.replace("\"eventID\"", "\"ünïcode\":\"日本\",\"eventID\""),
                _ => text,
            }
        })
        .collect();
    format!("{{\"Records\":[{}]}}\n", records.join(","))
}

/// The skim with the widest classifier this CPU runs (the plain one where there is no SIMD).
fn skim_best(text: &[u8]) -> Option<Skim> {
    skim_with(text, best_simd())
}

/// The classifiers this CPU runs.
fn simds() -> Vec<Simd> {
    match best_simd() {
        Simd::Avx512 => vec![Simd::Plain, Simd::Avx2, Simd::Avx512],
        Simd::Avx2 => vec![Simd::Plain, Simd::Avx2],
        Simd::Plain => vec![Simd::Plain],
    }
}

/// The skim's verdicts, each beside what the prefilter says of the record on its own.
fn assert_matches_serde_and_prefilter(text: &[u8], skim: &Skim) {
    let spans = serde_split(text).expect("whatever the skim accepts, serde_json accepts");
    let got: Vec<Range<usize>> = skim.records.iter().map(|r| r.span.clone()).collect();
    assert_eq!(got, spans, "the same records");
    for r in &skim.records {
        assert_eq!(
            r.unread,
            unread(&text[r.span.clone()]),
            "{}",
            String::from_utf8_lossy(&text[r.span.clone()])
        );
    }
    assert_eq!(skim.ascii, text.is_ascii());
}

#[test]
fn compact_log_files_are_skimmed_exactly_as_serde_and_the_prefilter_read_them() {
    for seed in 0..6 {
        let text = org_file(seed, 300);
        for simd in simds() {
            let skim = skim_with(text.as_bytes(), simd).expect("a compact log file is skimmed");
            assert_eq!(skim.records.len(), 300);
            assert!(
                skim.records.iter().filter(|r| r.unread).count() > 100,
                "machine traffic is unread"
            );
            assert!(skim.records.iter().any(|r| !r.unread));
            assert_matches_serde_and_prefilter(text.as_bytes(), &skim);
        }
    }
    let empty = skim_with(b"{\"Records\":[]}", Simd::Plain).unwrap();
    assert_eq!(empty.records, vec![]);
}

#[test]
fn what_the_skim_does_not_decide_goes_the_full_way() {
    let one = org_file(1, 3);
    let pretty = {
        let v: serde_json::Value = serde_json::from_str(&one).unwrap();
        serde_json::to_string_pretty(&v).unwrap()
    };
    let deep = format!("{{\"Records\":[{{\"a\":{}1{}}}]}}", "[".repeat(60), "]".repeat(60));
    for (what, text) in [
        ("pretty-printed", pretty),
        ("a space between tokens", one.replacen("\":", "\": ", 1)),
        ("another outer key", one.replacen("]}", "],\"x\":1}", 1)),
        ("a record that is not an object", "{\"Records\":[1]}".into()),
        ("an array in the Records", "{\"Records\":[[]]}".into()),
        ("deeper than the skim follows", deep),
        ("not Records", one.replacen("Records", "Recordz", 1)),
        ("leading space", format!(" {one}")),
        ("a tab in a string", one.replacen("amazonaws", "amazon\taws", 1)),
        ("trailing bytes", format!("{one}x")),
    ] {
        assert_eq!(skim_best(text.as_bytes()), None, "{what}");
    }
}

#[test]
fn malformed_files_are_refused() {
    let good = "{\"Records\":[{\"a\":\"b\",\"c\":[1,{\"d\":true}]},{\"e\":null}]}";
    assert!(skim_best(good.as_bytes()).is_some());
    for bad in [
        "{\"Records\":[{\"a\":\"b\",\"c\":[1,{\"d\":true}]},{\"e\":nul}]}",
        "{\"Records\":[{\"a\":\"b\",\"c\":[1,{\"d\":true}]},{\"e\":01}]}",
        "{\"Records\":[{\"a\":\"b\",\"c\":[1,{\"d\":true]}},{\"e\":null}]}",
        "{\"Records\":[{\"a\":\"b\",\"c\":[1,{\"d\":true}]},{\"e\":null,}]}",
        "{\"Records\":[{\"a\":\"b\",\"c\":[1,{\"d\":true},]},{\"e\":null}]}",
        "{\"Records\":[{\"a\",\"c\":[1,{\"d\":true}]},{\"e\":null}]}",
        "{\"Records\":[{\"a\":\"b\":\"c\"},{\"e\":null}]}",
        "{\"Records\":[{\"a\":\"b\",\"c\":[1:2]},{\"e\":null}]}",
        "{\"Records\":[{\"a\":\"b\"\"c\"},{\"e\":null}]}",
        "{\"Records\":[{\"a\":\"b\\x\"},{\"e\":null}]}",
        "{\"Records\":[{\"a\":\"b\\u12g4\"},{\"e\":null}]}",
        "{\"Records\":[{\"a\":1.},{\"e\":-}]}",
        "{\"Records\":[{\"a\":\"b\"},,{\"e\":null}]}",
        "{\"Records\":[{\"a\":\"b\"}{\"e\":null}]}",
        "{\"Records\":[{\"a\":\"b\"},{\"e\":null}]]}",
        "{\"Records\":[{\"a\":\"b\"},{\"e\":null}]}}",
        "{\"Records\":[{\"a\":\"b},{\"e\":null}]}",
        "{\"Records\":[{1:\"b\"},{\"e\":null}]}",
        "{\"Records\":[{\"a\":\"b\"},\"x\",{\"e\":null}]}",
    ] {
        assert!(serde_split(bad.as_bytes()).is_none() || bad.contains("\"x\""), "{bad}");
        assert_eq!(skim_best(bad.as_bytes()), None, "{bad}");
    }
}

#[test]
fn escapes_follow_json_across_blocks() {
    // A run of backslashes ending at every offset around a block's edge.
    for pad in 40..80 {
        for run in 0..6 {
            let text = format!(
                "{{\"Records\":[{{\"k\":\"{}{}\\\"x\"}}]}}",
                "a".repeat(pad),
                "\\\\".repeat(run)
            );
            let skim = skim_best(text.as_bytes()).unwrap_or_else(|| panic!("{text}"));
            assert_matches_serde_and_prefilter(text.as_bytes(), &skim);
        }
    }
}

/// The escaped characters, byte by byte: the reference for [`escaped_bits`].
fn escaped_plain(bytes: &[u8]) -> Vec<bool> {
    let mut out = vec![false; bytes.len()];
    let mut escape = false;
    for (i, &b) in bytes.iter().enumerate() {
        if escape {
            out[i] = true;
            escape = false;
        } else if b == b'\\' {
            escape = true;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_simd_classes_are_the_plain_ones(
        bytes in proptest::collection::vec(
            prop_oneof![
                Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'),
                Just(b':'), Just(b','), Just(b' '), Just(b'e'), Just(b'd'), Just(b'S'),
                Just(b'n'), Just(b'B'), Just(b'u'), any::<u8>()
            ],
            65,
        )
    ) {
        for simd in simds() {
            prop_assert_eq!(classify(&bytes, simd), classify_plain(&bytes), "{:?}", simd);
        }
    }

    #[test]
    fn escapes_are_found_as_a_byte_by_byte_reader_finds_them(
        bytes in proptest::collection::vec(prop_oneof![Just(b'\\'), Just(b'a')], 64..400)
    ) {
        let want = escaped_plain(&bytes);
        let mut carry = 0;
        for (n, block) in bytes.chunks(64).enumerate() {
            let mut backslash = 0u64;
            for (i, &b) in block.iter().enumerate() {
                backslash |= u64::from(b == b'\\') << i;
            }
            let got = escaped_bits(backslash, &mut carry);
            for i in 0..block.len() {
                prop_assert_eq!((got >> i) & 1 == 1, want[n * 64 + i], "byte {}", n * 64 + i);
            }
        }
    }

    /// Soundness: a damaged log file is skimmed only if serde_json reads it, into the same
    /// records, each judged as the prefilter judges it.
    #[test]
    fn whatever_is_skimmed_serde_reads_the_same_way(
        seed in 0..50u64,
        damage in proptest::collection::vec((any::<prop::sample::Index>(), 0..4u8, prop_oneof![
            Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b':'),
            Just(b','), Just(b' '), Just(b'1'), Just(b'e'), Just(b'-'), Just(b'.'), Just(b'u'),
            Just(b't'), Just(0x1f), Just(0xc3)
        ]), 1..4),
    ) {
        let mut text = org_file(seed, 4).into_bytes();
        for (at, how, byte) in damage {
            let i = at.index(text.len());
            match how {
                0 => text[i] = byte,
                1 => text.insert(i, byte),
                2 => { text.remove(i); }
                _ => {
                    let j = (i + 1).min(text.len() - 1);
                    text.swap(i, j)
                }
            }
        }
        for simd in simds() {
            if let Some(skim) = skim_with(&text, simd) {
                prop_assert!(std::str::from_utf8(&text).is_ok() || !skim.ascii);
                if std::str::from_utf8(&text).is_ok() {
                    assert_matches_serde_and_prefilter(&text, &skim);
                }
            }
        }
    }

    /// Completeness on what CloudTrail writes: every compact file of any records is skimmed.
    #[test]
    fn every_compact_file_is_skimmed(seed in 0..1_000u64, n in 0..40usize) {
        let text = org_file(seed, n);
        let skim = skim_best(text.as_bytes());
        prop_assert!(skim.is_some());
        assert_matches_serde_and_prefilter(text.as_bytes(), &skim.unwrap());
    }
}

/// A JSON value as CloudTrail writes one (compact), for the token-level tests.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6..1e6f64).prop_map(Value::from),
        "[a-zA-Z0-9 \"\\\\/:,{}\\[\\]\u{7f}\u{e9}\u{65e5}\t\n]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z\"\\\\]{0,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any records of any JSON objects, written compactly, are skimmed into serde_json's records.
    #[test]
    fn any_compact_objects_are_skimmed_as_serde_splits_them(
        records in proptest::collection::vec(
            proptest::collection::btree_map("[a-zA-Z]{1,12}", json_value(), 0..6), 0..5)
    ) {
        let records: Vec<String> = records
            .into_iter()
            .map(|m| serde_json::Value::Object(m.into_iter().collect()).to_string())
            .collect();
        let text = format!("{{\"Records\":[{}]}}", records.join(","));
        for simd in simds() {
            let skim = skim_with(text.as_bytes(), simd);
            prop_assert!(skim.is_some(), "{}", text);
            assert_matches_serde_and_prefilter(text.as_bytes(), &skim.unwrap());
        }
    }

    /// An attacker's file: records of any shape with JSON's tokens put in anywhere and bytes
    /// taken out. Whatever the skim accepts, serde_json accepts and splits into the same records,
    /// so no record can hide inside another's text.
    #[test]
    fn damaged_records_of_any_shape_are_never_split_differently(
        records in proptest::collection::vec(
            proptest::collection::btree_map("[a-zA-Z]{1,12}", json_value(), 0..6), 1..4),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![
            Just("{"), Just("}"), Just("["), Just("]"), Just(":"), Just(","), Just("\"k\""),
            Just("\"eventSource\":\"signin.amazonaws.com\""), Just("\"a\\\"b\""),
            Just("\""), Just("\\"), Just("1"), Just("-0.5e3"), Just("0"), Just("true"),
            Just("}},{\"a\":{"), Just("},{"), Just(""),
        ]), 1..3),
    ) {
        let records: Vec<String> = records
            .into_iter()
            .map(|m| serde_json::Value::Object(m.into_iter().collect()).to_string())
            .collect();
        let mut text = format!("{{\"Records\":[{}]}}", records.join(",")).into_bytes();
        for (at, token) in edits {
            let i = at.index(text.len());
            if token.is_empty() {
                text.remove(i);
            } else {
                text.splice(i..i, token.bytes());
            }
        }
        for simd in simds() {
            if let Some(skim) = skim_with(&text, simd) {
                // The skim leaves UTF-8 to its caller, which reads a non-UTF-8 file the full way.
                if std::str::from_utf8(&text).is_ok() {
                    assert_matches_serde_and_prefilter(&text, &skim);
                } else {
                    prop_assert!(!skim.ascii);
                }
            }
        }
    }
}
