//! Deciding from a record's raw bytes that no check reads it, without parsing it.
//!
//! An organisation trail is mostly machine traffic (`AssumeRole`, KMS, `Describe*`, service
//! events); the sign-in checks read a few percent of it. [`unread`] looks at the record's
//! top-level `eventSource`, `eventName` and `eventTime` with a small scanner (strings skipped
//! with `memchr`, nesting counted) and says `true` only when it can prove the full parse would
//! produce an activity no check uses:
//!
//! - its source is none of the sign-in, portal, IAM Identity Center, OIDC and SCIM sources, and
//!   it is not STS's `AssumeRoleWithSAML`;
//! - it names no IAM Identity Center role anywhere (`AWSReservedSSO`): such calls are the
//!   person's activity (travel, new country, last use); nor an `onBehalfOf` identity-store user
//!   (a record that pairs a user id with a name teaches the checks that name);
//! - its `eventTime` is a string the parser reads (so the full parse would not count it as
//!   skipped).
//!
//! Anything it cannot prove (a `\u` escape anywhere, a duplicated or escaped key, a value that is
//! not a plain string, a record that is not an object) is parsed in full. The decision is exact:
//! `scan_tests` compares findings and counts with and without it.

use memchr::memmem;

/// The sources whose records the checks read whatever their identity.
const READ_SOURCES: [&[u8]; 6] = [
    b"signin.amazonaws.com",
    b"sso.amazonaws.com",
    b"sso-directory.amazonaws.com",
    b"sso-oauth.amazonaws.com",
    b"identitystore-scim.amazonaws.com",
    b"identitystore.amazonaws.com",
];

/// Bytes that anywhere in a record make it read: an escape that may hide a name, an IAM Identity
/// Center role, an identity-store user acted for.
pub(crate) const NEEDLES: [&[u8]; 3] = [b"\\u", b"AWSReservedSSO", b"onBehalfOf"];

/// What the scanner found at the top level.
#[derive(Default)]
struct Top<'a> {
    source: Option<&'a [u8]>,
    name: Option<&'a [u8]>,
    time: Option<&'a [u8]>,
}

/// `true` when the record provably holds nothing any check reads (see the module header).
pub fn unread(raw: &[u8]) -> bool {
    if NEEDLES.iter().any(|n| memmem::find(raw, n).is_some()) {
        return false;
    }
    let Some(top) = top_level(raw) else { return false };
    unread_given(top.source, top.name, top.time)
}

/// The decision from a record's top-level `eventSource`, `eventName` and `eventTime` (plain
/// strings, each given once), once no needle is in the record: shared with `signin::skim`.
pub(crate) fn unread_given(
    source: Option<&[u8]>,
    name: Option<&[u8]>,
    time: Option<&[u8]>,
) -> bool {
    let (Some(source), Some(time)) = (source, time) else { return false };
    if READ_SOURCES.contains(&source) {
        return false;
    }
    if source == b"sts.amazonaws.com" && name.is_none_or(|n| n == b"AssumeRoleWithSAML") {
        return false;
    }
    std::str::from_utf8(time).ok().and_then(crate::time_forms::parse_time_text).is_some()
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The end (one past the closing quote) of the string starting at `i` (an opening quote), and
/// whether it holds an escape.
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut at = i + 1;
    let mut escaped = false;
    loop {
        let next = at + memchr::memchr2(b'"', b'\\', &b[at..])?;
        if b[next] == b'"' {
            return Some((next + 1, escaped));
        }
        escaped = true;
        at = next + 2;
        if at > b.len() {
            return None;
        }
    }
}

/// The end of the value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i).map(|(end, _)| end),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = i;
            loop {
                match *b.get(at)? {
                    b'"' => at = string_end(b, at)?.0,
                    b'{' | b'[' => {
                        depth += 1;
                        at += 1;
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        at += 1;
                        if depth == 0 {
                            return Some(at);
                        }
                    }
                    _ => at += 1,
                }
            }
        }
        _ => {
            let len = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))?;
            Some(i + len)
        }
    }
}

/// The record's top-level `eventSource`, `eventName` and `eventTime` (plain strings only); `None`
/// when the record is not an object the scanner can read to its end, or one of them is escaped,
/// not a string, or given twice.
fn top_level(b: &[u8]) -> Option<Top<'_>> {
    let mut top = Top::default();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(top);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (key_end, key_escaped) = string_end(b, i)?;
        let key = &b[i + 1..key_end - 1];
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let end = value_end(b, i)?;
        let slot = match key {
            _ if key_escaped => None,
            b"eventSource" => Some(&mut top.source),
            b"eventName" => Some(&mut top.name),
            b"eventTime" => Some(&mut top.time),
            _ => None,
        };
        if let Some(slot) = slot {
            let (string_end, escaped) = if b[i] == b'"' { string_end(b, i)? } else { return None };
            if escaped || slot.is_some() || string_end != end {
                return None;
            }
            *slot = Some(&b[i + 1..end - 1]);
        }
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Some(top),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;
    use crate::geo::Geo;
    use crate::signin::engine::Engine;
    use crate::signin::settings::SigninSettings;
    use crate::signin::sources::Reader;
    use crate::signin::synth::Synth;

    /// An organisation trail as S3 log files, some records written the way other writers write
    /// them: pretty-printed, keys moved, escapes, a person's record with an escaped source.
    fn org_files(seed: u64, compact: bool) -> Vec<String> {
        let mut s = Synth::new(seed, 60, 6_000, 2);
        let mut records: Vec<String> = Vec::new();
        for i in 0..6_000 {
            if i == 3_000 {
                records.extend(s.plant().0.iter().map(|r| r.to_string()));
            }
            let r = s.org_record(8);
            let text = r.to_string();
            records.push(match i % 97 {
                0 if !compact => serde_json::to_string_pretty(&r).unwrap(),
                1 if !compact => text.replace("\"eventSource\":", "\"x\":1,\"eventSource\" :"),
                1 => text.replace("\"eventSource\":", "\"x\":[1,true,null],\"eventSource\":"),
                2 => text.replace("amazonaws.com\"", "amazonaws\\u002ecom\""),
                3 => text.replacen('{', "{\"eventSource\":\"kms.amazonaws.com\",", 1),
                4 => text.replace("\"eventTime\"", "\"eventTim\\u0065\""),
                5 => text.replace("\"eventTime\":\"", "\"eventTime\":\"not a time "),
                _ => text,
            });
        }
        records.chunks(250).map(|c| format!("{{\"Records\":[{}]}}", c.join(","))).collect()
    }

    /// What the checks read of an activity: its kind, or a permission-set session, or an
    /// identity-store user id with a name.
    fn read_by_checks(a: &crate::signin::model::Activity) -> bool {
        !matches!(a.kind, crate::signin::model::Kind::Other)
            || a.permission_set.is_some()
            || (a.user_id.is_some() && a.user_name.is_some())
    }

    type Scanned = (BTreeSet<String>, usize, usize, usize, Vec<String>, usize);

    fn scan(files: &[String], prefilter: bool) -> Scanned {
        let mut engine = Engine::new(
            Arc::new(SigninSettings::default()),
            BTreeSet::new(),
            Arc::new(Geo::default()),
        );
        let mut activities = Vec::new();
        let mut push = |a| activities.push(a);
        let reader = Reader::new(&mut push);
        let mut reader = if prefilter { reader.unread_skipped() } else { reader };
        for (i, f) in files.iter().enumerate() {
            reader.read_named(&format!("file-{i}.json"), f.as_bytes());
        }
        let stats = reader.stats.clone();
        activities.sort_by_cached_key(crate::signin::model::Activity::order_key);
        let read: Vec<String> =
            activities.iter().filter(|a| read_by_checks(a)).map(|a| a.event_id.clone()).collect();
        let ids = activities.into_iter().flat_map(|a| engine.observe(a)).map(|a| a.id).collect();
        (ids, stats.records, stats.skipped, stats.unread, read, stats.skimmed)
    }

    /// The decision is exact: the same findings and the same counts with and without it, on
    /// log files as CloudTrail writes them (compact: split and judged by `signin::skim`) and as
    /// other writers do (pretty-printed, spaced: split by serde_json, judged by [`unread`]).
    #[test]
    fn findings_and_counts_are_the_same_with_and_without_the_prefilter() {
        for (seed, compact) in [(1, true), (2, true), (3, false), (4, false)] {
            let files = org_files(seed, compact);
            let (full, records, skipped, none, full_read, _) = scan(&files, false);
            let (fast, fast_records, fast_skipped, unread, fast_read, skimmed) = scan(&files, true);
            assert_eq!(none, 0);
            if compact && crate::signin::skim::available() {
                assert_eq!(skimmed, files.len(), "CloudTrail's files are skimmed");
            } else {
                assert!(skimmed < files.len() / 2, "the others go the full way: {skimmed}");
            }
            assert_eq!(fast_read, full_read, "every activity a check reads is still read");
            assert_eq!((fast_records, fast_skipped), (records, skipped), "seed {seed}");
            assert!(skipped > 0, "the damaged records are counted as skipped either way");
            assert_eq!(fast, full, "seed {seed}");
            assert!(full.len() > 3, "the planted anomalies are found: {full:?}");
            assert!(
                unread > records * 3 / 4,
                "machine traffic is not parsed: {unread} of {records}"
            );
        }
    }

    const KMS: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"AWSService","invokedBy":"cloudtrail.amazonaws.com"},"eventTime":"2026-11-20T10:00:00Z","eventSource":"kms.amazonaws.com","eventName":"GenerateDataKey","awsRegion":"us-east-1","sourceIPAddress":"cloudtrail.amazonaws.com","requestParameters":{"keySpec":"AES_256","encryptionContext":{"aws:cloudtrail:arn":"arn:aws:cloudtrail:us-east-1:111122223333:trail/org"}},"eventID":"e1"}"#;

    #[test]
    fn machine_traffic_is_unread_and_what_the_checks_read_is_not() {
        assert!(unread(KMS.as_bytes()));
        let with = |from: &str, to: &str| KMS.replace(from, to);
        for (what, record) in [
            ("a sign-in", with("kms.amazonaws.com", "signin.amazonaws.com")),
            ("the portal", with("kms.amazonaws.com", "sso.amazonaws.com")),
            ("SCIM", with("kms.amazonaws.com", "identitystore-scim.amazonaws.com")),
            (
                "SAML",
                with("kms.amazonaws.com", "sts.amazonaws.com")
                    .replace("GenerateDataKey", "AssumeRoleWithSAML"),
            ),
            (
                "an IdC role",
                with(
                    "AWSService",
                    "AssumedRole\",\"arn\":\"arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_12ab/alice",
                ),
            ),
            ("an escape", with("AES_256", "AES\\u005f256")),
            ("no time", with("\"eventTime\":\"2026-11-20T10:00:00Z\",", "")),
            ("a bad time", with("2026-11-20T10:00:00Z", "yesterday")),
            ("a numeric time", with("\"2026-11-20T10:00:00Z\"", "1795600000")),
            (
                "a duplicated source",
                with("\"eventName\"", "\"eventSource\":\"signin.amazonaws.com\",\"eventName\""),
            ),
            ("an escaped key", with("\"eventSource\"", "\"event\\\"Source\"")),
            ("not an object", format!("[{KMS}]")),
            ("cut short", KMS[..KMS.len() - 1].to_owned()),
        ] {
            assert!(!unread(record.as_bytes()), "{what}: {record}");
        }
        // STS's machine calls are unread; its SAML sign-in is not.
        assert!(unread(
            with("kms.amazonaws.com", "sts.amazonaws.com")
                .replace("GenerateDataKey", "AssumeRole")
                .as_bytes()
        ));
        // Keys in any order, spaces anywhere, a source name inside a nested value.
        let reordered = r#"{ "eventID" : "e2", "requestParameters" : { "eventSource" : "signin.amazonaws.com", "x": [1, {"y": "}"}] },
            "eventName" : "Decrypt" , "eventSource" : "kms.amazonaws.com", "eventTime" : "2026-11-20 10:00:00" }"#;
        assert!(unread(reordered.as_bytes()));
        assert!(!unread(
            reordered.replace("\"kms.amazonaws.com\"", "\"sso-oauth.amazonaws.com\"").as_bytes()
        ));
    }

    /// Escapes before the keys read (a quote, a backslash, a slash: not `\u`) are stepped over
    /// to the string's real end: a machine call stays unread, and a source hidden in a string
    /// after an escaped quote is not taken for the record's own.
    #[test]
    fn escapes_are_stepped_over_to_the_strings_end() {
        let escaped = KMS.replace(
            "\"eventVersion\":\"1.09\"",
            r#""userAgent":"aws-cli/2 \"q\" C:\\dir\\ a\/b \\","eventVersion":"1.09""#,
        );
        assert!(unread(escaped.as_bytes()), "{escaped}");
        let hidden = KMS.replace(
            "\"eventVersion\":\"1.09\"",
            r#""note":"\",\"eventSource\":\"signin.amazonaws.com\",\"x\":\"","eventVersion":"1.09""#,
        );
        assert!(
            unread(hidden.as_bytes()),
            "a source inside a string is not the record's: {hidden}"
        );
        for cut in [r#"{"a":"\"#, r#"{"a":"x\"#, r#"{"a":"\\"#, r#"{"a":"\""#] {
            assert!(!unread(cut.as_bytes()), "cut short inside a string: {cut}");
        }
    }

    proptest::proptest! {
        /// Any bytes at all are judged without a panic.
        #[test]
        fn any_bytes_are_judged_without_a_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = unread(&bytes);
        }

        /// A damaged machine call (a byte changed anywhere) is judged without a panic.
        #[test]
        fn damaged_records_are_judged_without_a_panic(at in 0..KMS.len(), byte in proptest::prelude::any::<u8>()) {
            let mut bytes = KMS.as_bytes().to_vec();
            bytes[at] = byte;
            let _ = unread(&bytes);
            let _ = unread(&bytes[..at]);
        }
    }
}
