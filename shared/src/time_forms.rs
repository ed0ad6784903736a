//! Times as vendors write them and as exports rewrite them, read alike on the Okta and the
//! CloudTrail side: RFC 3339; a space instead of the `T`; up to nine fractional digits (SIEM
//! nanoseconds); no zone (UTC); epoch seconds or milliseconds (a number or a string of digits).

use chrono::{DateTime, NaiveDateTime, Utc};

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
    use super::*;

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
