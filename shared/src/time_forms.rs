//! Times as vendors write them and as exports rewrite them, read alike on the Okta and the
//! CloudTrail side: RFC 3339; a space instead of the `T`; up to nine fractional digits (SIEM
//! nanoseconds); no zone (UTC); epoch seconds or milliseconds (a number or a string of digits).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Epoch seconds or milliseconds: milliseconds from 2001-09-09 on, seconds before.
pub fn from_epoch(n: i64) -> Option<DateTime<Utc>> {
    if n.abs() >= 1_000_000_000_000 {
        DateTime::from_timestamp_millis(n)
    } else {
        DateTime::from_timestamp(n, 0)
    }
}

/// A time written as text, in any of the forms above.
pub fn parse_time_text(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(t) = cloudtrail_form(s.as_bytes()) {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.to_utc());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return from_epoch(s.parse().ok()?);
    }
    let t = s.replacen(' ', "T", 1);
    if let Ok(t) = DateTime::parse_from_rfc3339(&t) {
        return Some(t.to_utc());
    }
    let naive = t.trim_end_matches(['Z', 'z']);
    NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc())
}

/// CloudTrail's own form, `YYYY-MM-DDTHH:MM:SSZ` (nearly every time in a trail), read without
/// the general RFC 3339 parser; `None` for anything else (a leap second included), which the
/// general path reads. The same instant as RFC 3339 gives (property-tested).
fn cloudtrail_form(s: &[u8]) -> Option<DateTime<Utc>> {
    let &[
        y0,
        y1,
        y2,
        y3,
        b'-',
        m0,
        m1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b':',
        i0,
        i1,
        b':',
        s0,
        s1,
        b'Z',
    ] = s
    else {
        return None;
    };
    let two = |a: u8, b: u8| {
        (a.is_ascii_digit() && b.is_ascii_digit())
            .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
    };
    let year = two(y0, y1)? * 100 + two(y2, y3)?;
    let second = two(s0, s1).filter(|&s| s < 60)?;
    NaiveDate::from_ymd_opt(year as i32, two(m0, m1)?, two(d0, d1)?)?
        .and_hms_opt(two(h0, h1)?, two(i0, i1)?, second)
        .map(|t| t.and_utc())
}

/// A time given as a JSON value: text in any form above, or an epoch number.
pub fn parse_time(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    match v {
        serde_json::Value::Number(n) => from_epoch(n.as_i64()?),
        serde_json::Value::String(s) => parse_time_text(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// CloudTrail's form read on its own gives what RFC 3339 gives, for any digits: days
        /// that do not exist, hour 24, second 60, month 00.
        #[test]
        fn cloudtrail_form_is_read_as_rfc3339_reads_it(
            y in 0..10_000u32, m in 0..14u32, d in 0..33u32, h in 0..26u32, i in 0..62u32, s in 0..62u32,
        ) {
            let text = format!("{y:04}-{m:02}-{d:02}T{h:02}:{i:02}:{s:02}Z");
            let general = DateTime::parse_from_rfc3339(&text).ok().map(|t| t.to_utc());
            let fast = cloudtrail_form(text.as_bytes());
            if fast.is_some() || s != 60 {
                prop_assert_eq!(fast, general, "{}", text);
            }
            prop_assert_eq!(parse_time_text(&text), general, "{}", text);
        }

        /// A byte that is not a digit where a digit goes (before or after it a digit, so either
        /// of a pair) is refused, as RFC 3339 refuses it.
        #[test]
        fn a_non_digit_in_cloudtrail_form_is_refused(
            at in prop::sample::select(vec![0usize, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]),
            byte in any::<u8>().prop_filter("not a digit", |b| !b.is_ascii_digit()),
        ) {
            let mut text = b"2026-11-20T18:31:58Z".to_vec();
            text[at] = byte;
            prop_assert_eq!(cloudtrail_form(&text), None, "{:?}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn every_export_form_reads_as_the_same_instant() {
        let want: DateTime<Utc> = "2026-11-20T18:31:58Z".parse().unwrap();
        for form in [
            "2026-11-20T18:31:58Z",
            "2026-11-20T18:31:58.000Z",
            "2026-11-20T19:31:58+01:00",
            "2026-11-20 18:31:58",
            "2026-11-20T18:31:58",
            "2026-11-20 18:31:58.000000000",
            "2026-11-20T18:31:58.000000000Z",
            "1795199518",
            "1795199518000",
        ] {
            assert_eq!(parse_time_text(form), Some(want), "{form}");
        }
        assert_eq!(parse_time(&serde_json::json!(1795199518)), Some(want));
        assert_eq!(parse_time(&serde_json::json!(1795199518000i64)), Some(want));
        for junk in ["", "yesterday", "2026-13-45T99:00:00Z"] {
            assert_eq!(parse_time_text(junk), None, "{junk}");
        }
    }
}
