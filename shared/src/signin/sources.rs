//! CloudTrail input formats: S3 log files (`{"Records": [...]}`, plain or gzip), JSON lines,
//! EventBridge envelopes (`detail` is the record), and `LookupEvents` output (each event's
//! `CloudTrailEvent` is the record as a JSON string). Malformed input is counted and skipped.

use std::io::Read;

use serde_json::Value;

use super::model::{Activity, Record, Skip};

/// What one input yielded.
#[derive(Debug, Default)]
pub struct Parsed {
    pub activities: Vec<Activity>,
    /// Records that could not be used, with the first few reasons.
    pub skipped: usize,
    pub reasons: Vec<String>,
}

impl Parsed {
    fn skip(&mut self, why: impl std::fmt::Display) {
        self.skipped += 1;
        if self.reasons.len() < 5 {
            self.reasons.push(why.to_string());
        }
    }

    fn record(&mut self, v: Value) {
        match Record::from_value(v).and_then(|r| r.activity()) {
            Ok(a) => self.activities.push(a),
            Err(e) => self.skip(e),
        }
    }

    /// One JSON value in any of the supported shapes.
    fn value(&mut self, v: Value) {
        if let Some(records) = v.get("Records") {
            match records {
                Value::Array(items) => items.iter().cloned().for_each(|r| self.record(r)),
                _ => self.skip(Skip::Malformed("Records is not a list".into())),
            }
        } else if let Some(events) = v.get("Events") {
            match events {
                Value::Array(items) => {
                    for e in items {
                        match e
                            .get("CloudTrailEvent")
                            .and_then(Value::as_str)
                            .map(serde_json::from_str::<Value>)
                        {
                            Some(Ok(r)) => self.record(r),
                            _ => self.skip(Skip::Malformed(
                                "a LookupEvents event without a CloudTrailEvent".into(),
                            )),
                        }
                    }
                }
                _ => self.skip(Skip::Malformed("Events is not a list".into())),
            }
        } else if v.get("detail-type").is_some() {
            match v.get("detail") {
                Some(d) if d.is_object() => self.record(d.clone()),
                _ => self.skip(Skip::Malformed("an EventBridge envelope without detail".into())),
            }
        } else if let Value::Array(items) = v {
            items.into_iter().for_each(|i| self.value(i));
        } else {
            self.record(v);
        }
    }
}

/// Parses one input (a file's bytes), whatever its format.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let decompressed;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        match flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out) {
            Ok(_) => {
                decompressed = out;
                decompressed.as_slice()
            }
            Err(e) => {
                parsed.skip(format!("not a readable gzip file: {e}"));
                return parsed;
            }
        }
    } else {
        bytes
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        parsed.skip("not UTF-8 text");
        return parsed;
    };
    // A whole JSON document, else JSON lines.
    match serde_json::from_str::<Value>(text) {
        Ok(v) => parsed.value(v),
        Err(_) => {
            for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                match serde_json::from_str::<Value>(line) {
                    Ok(v) => parsed.value(v),
                    Err(e) => parsed.skip(format!("line {}: {e}", n + 1)),
                }
            }
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::model::Kind;

    const NEW: &str = include_str!("../../../events/cloudtrail/idc-signin-2025-shape.json");
    const OLD: &str = include_str!("../../../events/cloudtrail/idc-signin-legacy-shape.json");
    const PORTAL: &str = include_str!("../../../events/cloudtrail/sso-get-role-credentials.json");
    const CONSOLE: &str =
        include_str!("../../../events/cloudtrail/console-login-assumed-sso-role.json");
    const ROOT: &str = include_str!("../../../events/cloudtrail/console-login-root.json");
    const SAML: &str = include_str!("../../../events/cloudtrail/assume-role-with-saml-by-idc.json");

    fn one(text: &str) -> Activity {
        let p = parse(text.as_bytes());
        assert_eq!(p.skipped, 0, "{:?}", p.reasons);
        p.activities.into_iter().next().unwrap()
    }

    #[test]
    fn both_identity_center_sign_in_shapes_normalise_alike() {
        let new = one(NEW);
        assert_eq!(
            new.kind,
            Kind::IdcSignIn { success: true, credential_type: Some("EXTERNAL_IDP".into()) }
        );
        assert_eq!(new.user_name.as_deref(), Some("alice@acme.example"));
        assert_eq!(new.user_id.as_deref(), Some("94482488-3041-7026-18f3-be45837cd0e4"));
        assert!(new.session_id.is_some());
        assert_eq!(new.source_ip, Some("198.51.100.23".parse().unwrap()));
        let old = one(OLD);
        assert_eq!(
            old.kind,
            Kind::IdcSignIn { success: true, credential_type: Some("EXTERNAL_IDP".into()) }
        );
        assert_eq!(old.user_name.as_deref(), Some("bob@acme.example"));
        assert_eq!(old.user_id, None);
    }

    #[test]
    fn portal_console_root_and_aws_made_calls() {
        let portal = one(PORTAL);
        assert_eq!(
            portal.kind,
            Kind::Portal {
                action: "GetRoleCredentials".into(),
                account_id: Some("111122223333".into()),
                role_name: Some("TeamDeveloper".into())
            }
        );
        let console = one(CONSOLE);
        assert_eq!(
            console.kind,
            Kind::ConsoleLogin {
                success: true,
                mfa_used: false,
                root: false,
                iam_user: false,
                identity_center_role: true
            }
        );
        assert_eq!(console.user_name.as_deref(), Some("alice@acme.example"));
        assert!(matches!(one(ROOT).kind, Kind::ConsoleLogin { root: true, mfa_used: true, .. }));
        let saml = one(SAML);
        assert_eq!(saml.kind, Kind::AssumeRoleWithSaml);
        assert_eq!(saml.source_ip, None, "IdC's own address is never the user's");
    }

    #[test]
    fn every_input_format_is_read_and_malformed_records_are_counted() {
        let records: Vec<Value> =
            [NEW, OLD, PORTAL].iter().map(|t| serde_json::from_str(t).unwrap()).collect();
        let s3 = serde_json::json!({"Records": records}).to_string();
        assert_eq!(parse(s3.as_bytes()).activities.len(), 3);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, s3.as_bytes()).unwrap();
        assert_eq!(parse(&gz.finish().unwrap()).activities.len(), 3);

        let lines = records.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n");
        let with_junk = format!("{lines}\nnot json\n{{\"eventName\": 1}}\n");
        let p = parse(with_junk.as_bytes());
        assert_eq!((p.activities.len(), p.skipped), (3, 2));

        let bridge = serde_json::json!({"detail-type": "AWS Console Sign In via CloudTrail", "source": "aws.signin", "detail": records[0]});
        assert_eq!(parse(bridge.to_string().as_bytes()).activities.len(), 1);

        let lookup = serde_json::json!({"Events": [{"EventId": "x", "CloudTrailEvent": records[1].to_string()}, {"EventId": "y"}]});
        let p = parse(lookup.to_string().as_bytes());
        assert_eq!((p.activities.len(), p.skipped), (1, 1));

        for junk in [&b"\x1f\x8bnot gzip"[..], b"\xff\xfe", b"[1, 2]", b"{\"Records\": 5}"] {
            let p = parse(junk);
            assert!(p.activities.is_empty() && p.skipped > 0, "{junk:?}");
        }
    }
}
