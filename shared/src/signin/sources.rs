//! CloudTrail input formats: S3 log files (`{"Records": [...]}`, plain or gzip), JSON lines,
//! EventBridge envelopes (`detail` is the record), and `LookupEvents` output (each event's
//! `CloudTrailEvent` is the record as a JSON string). Malformed input is counted and skipped.
//!
//! Large inputs stream: JSON lines are read a line at a time, so memory stays flat however long
//! the file is.

use std::io::{BufRead, BufReader, Read};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::model::{Activity, Interner, Record, Skip};
use crate::encodings::{self, Encoding};

/// Counts of what an input yielded.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Records read.
    pub records: usize,
    /// Of those, records no check reads, told from their raw bytes and not parsed
    /// ([`Reader::unread_skipped`]; `signin::prefilter`).
    pub unread: usize,
    /// Log files split and judged in one pass (`signin::skim`): those CloudTrail wrote, while
    /// most records go unread.
    pub skimmed: usize,
    /// Records that could not be used, with the first few reasons.
    pub skipped: usize,
    /// The first few reasons, in full, each naming its file (and line) when known.
    pub reasons: Vec<String>,
    /// Every skipped record, counted by the kind of its reason.
    pub by_reason: std::collections::BTreeMap<String, usize>,
    /// Per named input ([`Reader::read_named`]): its records, skips and whether it was
    /// readable to the end.
    pub files: Vec<FileStats>,
}

/// What one named input yielded.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct FileStats {
    /// The input's name (a path).
    pub name: String,
    /// Records read from it.
    pub records: usize,
    /// Records of it that could not be used.
    pub skipped: usize,
    /// Why it could not be read to the end (damaged compression, truncated, unreadable), if
    /// so: the records before the damage were kept.
    pub unreadable: Option<String>,
}

impl Stats {
    fn skip(&mut self, why: impl std::fmt::Display) {
        self.skip_at(None, None, why)
    }

    /// Counts a skipped record by the kind of its reason (the text before its detail: `: …` or
    /// a quoted value) and keeps the first few in full, with where they were.
    fn skip_at(&mut self, file: Option<&str>, line: Option<usize>, why: impl std::fmt::Display) {
        self.skipped += 1;
        let why = why.to_string();
        let kind = why.split([':', '"']).next().unwrap_or_default().trim().to_owned();
        *self.by_reason.entry(kind).or_default() += 1;
        if self.reasons.len() < 5 {
            let at = match (file, line) {
                (Some(f), Some(n)) => format!("{f} line {n}: "),
                (Some(f), None) => format!("{f}: "),
                (None, Some(n)) => format!("line {n}: "),
                (None, None) => String::new(),
            };
            self.reasons.push(format!("{at}{why}"));
        }
    }
}

/// What one small input yielded (see [`parse`]).
#[derive(Debug, Default)]
pub struct Parsed {
    /// The sign-in activities.
    pub activities: Vec<Activity>,
    /// Records that could not be used.
    pub skipped: usize,
    /// The first few reasons.
    pub reasons: Vec<String>,
}

/// An S3 log file read in one pass: its records deserialised where they lie, without first
/// splitting the array into raw records.
#[derive(Deserialize)]
struct S3Log<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<Record<'a>>,
}

/// An S3 log file split into its raw records, for the prefilter to look at before any is parsed.
#[derive(Deserialize)]
struct S3RawLog<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct LookupEvent {
    #[serde(rename = "CloudTrailEvent", default)]
    cloud_trail_event: Option<String>,
}

/// Records read with the prefilter before [`Reader`] judges whether it pays.
pub const PREFILTER_SAMPLE: usize = 2_000;

/// The largest gzip input inflated in one call (a CloudTrail log file is far smaller).
pub const WHOLE_GZIP_LIMIT: u64 = 64 << 20;

/// Feeds activities found in JSON text to `out`.
pub struct Reader<'o, F: FnMut(Activity)> {
    /// What was read so far.
    pub stats: Stats,
    out: &'o mut F,
    /// The line being read (JSON lines), for skip reasons.
    line: Option<usize>,
    /// The named input being read, for skip reasons.
    source: Option<String>,
    /// The text buffer, reused from input to input (no fresh pages per file).
    buf: Vec<u8>,
    /// The activities' shared text, across inputs.
    texts: Interner,
    /// Records no check reads are counted and not parsed (see [`Reader::unread_skipped`]).
    prefilter: bool,
    /// Records looked at by the prefilter, and of those unread, across every input (for
    /// [`Reader::prefilter_pays`]; [`Reader::stats`] may be taken input by input).
    judged: (usize, usize),
}

impl<'o, F: FnMut(Activity)> Reader<'o, F> {
    /// A reader that hands each activity to `out`.
    pub fn new(out: &'o mut F) -> Self {
        Reader {
            stats: Stats::default(),
            out,
            line: None,
            source: None,
            buf: Vec::new(),
            texts: Interner::default(),
            prefilter: false,
            judged: (0, 0),
        }
    }

    /// Records that provably no check reads (machine traffic: `signin::prefilter`) are counted
    /// in [`Stats::unread`] and not parsed. For the checks, not for reading everything a person
    /// did (`diagnose`).
    pub fn unread_skipped(mut self) -> Self {
        self.prefilter = true;
        self
    }

    /// Splitting a log file into raw records first costs a pass; it pays when most records go
    /// unparsed (an organisation trail), not on a trail of sign-ins, where every record is
    /// parsed anyway: after the first [`PREFILTER_SAMPLE`] records, log files are split only
    /// while at least a quarter of what was read went unparsed. Either way the activities and
    /// counts are the same (only [`Stats::unread`] is not counted on the one-pass path).
    fn prefilter_pays(&self) -> bool {
        let (judged, unread) = self.judged;
        judged < PREFILTER_SAMPLE || unread * 4 >= judged
    }

    fn record(&mut self, text: &str) {
        let unread = self.prefilter && super::prefilter::unread(text.as_bytes());
        self.judged_record(text, unread);
    }

    /// Counts a record and parses it unless the prefilter found it `unread`.
    fn judged_record(&mut self, text: &str, unread: bool) {
        self.stats.records += 1;
        if self.prefilter {
            self.judged.0 += 1;
            if unread {
                self.judged.1 += 1;
                self.stats.unread += 1;
                return;
            }
        }
        match Record::from_json(text).and_then(|r| r.activity_in(&mut self.texts)) {
            Ok(a) => (self.out)(a),
            Err(e) => self.skip(e),
        }
    }

    /// An S3 log file as CloudTrail writes it, split and judged in one pass (`signin::skim`)
    /// while the prefilter pays; `false` when the skim does not decide it (the caller then
    /// reads it the full way, with the same result).
    fn skimmed(&mut self, bytes: &[u8]) -> bool {
        if !(self.prefilter && self.prefilter_pays()) {
            return false;
        }
        let Some(skim) = super::skim::skim(bytes) else { return false };
        let text = if skim.ascii {
            // SAFETY: the skim saw no byte above 0x7f, and ASCII is UTF-8 (`skim_tests` checks
            // `ascii` against `is_ascii`).
            unsafe { std::str::from_utf8_unchecked(bytes) }
        } else {
            let Ok(text) = std::str::from_utf8(bytes) else { return false };
            text
        };
        for r in skim.records {
            self.judged_record(&text[r.span], r.unread);
        }
        self.stats.skimmed += 1;
        true
    }

    fn skip(&mut self, why: impl std::fmt::Display) {
        self.stats.skip_at(self.source.as_deref(), self.line, why)
    }

    /// Reads one named input (a file): as [`Reader::read`], but an input that cannot be read to
    /// the end (a truncated or corrupt `.gz`, a read error) is a counted, named skip and the
    /// records before the damage are kept; the next input is read all the same. Its counts go
    /// to [`Stats::files`].
    pub fn read_named(&mut self, name: &str, input: impl Read) {
        let (records, skipped) = (self.stats.records, self.stats.skipped);
        self.source = Some(name.to_owned());
        let unreadable = match self.read(input) {
            Ok(()) => None,
            Err(e) => {
                let why = format!("unreadable input: {e}");
                self.skip(&why);
                Some(why)
            }
        };
        self.source = None;
        self.stats.files.push(FileStats {
            name: name.to_owned(),
            records: self.stats.records - records,
            skipped: self.stats.skipped - skipped,
            unreadable,
        });
    }

    /// The complete records of an S3 log file cut short (a truncated or damaged `.gz`): every
    /// record of `{"Records": [` up to the damage.
    fn salvage(&mut self, bytes: &[u8]) {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        };
        let Some(start) = text.find("\"Records\"") else { return };
        let Some(open) = text[start..].find('[') else { return };
        let mut rest = &text[start + open + 1..];
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
            if rest.is_empty() || rest.starts_with(']') {
                return;
            }
            let mut values = serde_json::Deserializer::from_str(rest).into_iter::<&RawValue>();
            match values.next() {
                Some(Ok(v)) => {
                    let end = values.byte_offset();
                    self.record(v.get());
                    rest = &rest[end..];
                }
                // The record the damage cut: not a record.
                _ => return,
            }
        }
    }

    /// Several JSON documents one after another, pretty-printed or not (`jq '.Records[]'`,
    /// appended LookupEvents pages): each document in any supported shape.
    fn documents(&mut self, text: &str) {
        let mut values = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
        loop {
            match values.next() {
                Some(Ok(v)) => self.document(v.get()),
                Some(Err(e)) => {
                    self.stats.records += 1;
                    self.skip(Skip::Malformed(format!(
                        "{e} (the rest of this input after byte {} cannot be read)",
                        values.byte_offset()
                    )));
                    return;
                }
                None => return,
            }
        }
    }

    /// One JSON value in any of the supported shapes, parsed once: a record is told from a
    /// container of records by the container's own fields.
    pub fn document(&mut self, text: &str) {
        let trimmed = text.trim_start();
        if trimmed.starts_with('[') {
            match serde_json::from_str::<Vec<&RawValue>>(trimmed) {
                Ok(items) => items.into_iter().for_each(|i| self.document(i.get())),
                Err(e) => {
                    self.stats.records += 1;
                    self.skip(Skip::Malformed(e.to_string()))
                }
            }
            return;
        }
        // The common case, an S3 log file, in one pass. Anything unusual inside it (a record that
        // is not an object, broken JSON) fails this and takes the path below, which reads each
        // record on its own and counts the ones it cannot use.
        let s3_log = trimmed
            .strip_prefix('{')
            .is_some_and(|rest| rest.trim_start().starts_with("\"Records\""));
        if s3_log
            && self.prefilter
            && self.prefilter_pays()
            && let Ok(log) = serde_json::from_str::<S3RawLog>(trimmed)
        {
            for r in log.records {
                self.record(r.get());
            }
            return;
        }
        if s3_log && let Ok(log) = serde_json::from_str::<S3Log>(trimmed) {
            for r in log.records {
                self.stats.records += 1;
                match r.activity_in(&mut self.texts) {
                    Ok(a) => (self.out)(a),
                    Err(e) => self.skip(e),
                }
            }
            return;
        }
        let record = match Record::from_json(trimmed) {
            Ok(r) => r,
            Err(e) => {
                self.stats.records += 1;
                return self.skip(e);
            }
        };
        if let Some(records) = &record.records {
            records.iter().for_each(|r| self.record(r.get()));
        } else if let Some(events) = &record.events {
            for e in events {
                match serde_json::from_str::<LookupEvent>(e.get()) {
                    Ok(LookupEvent { cloud_trail_event: Some(text) }) => self.record(&text),
                    _ => {
                        self.stats.records += 1;
                        self.skip(Skip::Malformed(
                            "a LookupEvents event without a CloudTrailEvent".into(),
                        ))
                    }
                }
            }
        } else if record.detail_type.is_some() {
            match record.detail {
                Some(d) if d.get().starts_with('{') => self.record(d.get()),
                _ => {
                    self.stats.records += 1;
                    self.skip(Skip::Malformed("an EventBridge envelope without detail".into()))
                }
            }
        } else {
            self.stats.records += 1;
            match record.activity_in(&mut self.texts) {
                Ok(a) => (self.out)(a),
                Err(e) => self.skip(e),
            }
        }
    }

    /// Reads a whole input (file or stdin): gzip or plain, one JSON document or JSON lines.
    /// A gzip input of up to [`WHOLE_GZIP_LIMIT`] (a CloudTrail log file is) is inflated in one
    /// call with libdeflate; a larger one, or one libdeflate refuses (damaged, several members),
    /// streams through flate2, which keeps the records before any damage.
    pub fn read(&mut self, input: impl Read) -> std::io::Result<()> {
        let mut input = BufReader::with_capacity(1 << 16, input);
        let gzip = input.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        if !gzip {
            return self.read_plain(input);
        }
        let mut whole = Vec::new();
        (&mut input).take(WHOLE_GZIP_LIMIT + 1).read_to_end(&mut whole)?;
        if whole.len() as u64 <= WHOLE_GZIP_LIMIT {
            let mut text = std::mem::take(&mut self.buf);
            let inflated = super::inflate::gzip_whole_into(&whole, &mut text);
            let result = if !inflated {
                None
            } else if Encoding::sniff(&text) != encodings::PLAIN {
                Some(self.read_plain(text.as_slice()))
            } else if self.skimmed(&text) {
                Some(Ok(()))
            } else if memchr::memchr(b'\n', &text).is_none_or(|at| at + 1 == text.len()) {
                // One line (a CloudTrail log file is): one document, read where it lies, as
                // `read_text` reads a one-line input.
                if !text.iter().all(u8::is_ascii_whitespace) {
                    self.text(&text, |r, t| r.document(t));
                }
                Some(Ok(()))
            } else {
                // The text is read from its own buffer into the reader's.
                Some(self.read_text(text.as_slice()))
            };
            if self.buf.capacity() < text.capacity() {
                self.buf = text;
            }
            if let Some(result) = result {
                return result;
            }
        }
        let rest = std::io::Cursor::new(whole).chain(input);
        let inner = BufReader::with_capacity(1 << 16, flate2::read::MultiGzDecoder::new(rest));
        self.read_plain(inner)
    }

    /// Text (inflated already) in any encoding an export uses (`crate::encodings`): UTF-8 is
    /// read past its byte-order mark, UTF-16 is read whole and decoded. UTF-16 cut short (a
    /// damaged file, an odd byte) keeps what was whole and says why, as damaged gzip does.
    fn read_plain(&mut self, mut input: impl BufRead) -> std::io::Result<()> {
        match Encoding::sniff(input.fill_buf()?) {
            Encoding::Utf8 { mark } => {
                input.consume(mark);
                self.read_text(input)
            }
            Encoding::Utf16 { big_endian, mark } => {
                let mut bytes = Vec::new();
                let read = input.read_to_end(&mut bytes);
                let (text, whole) =
                    encodings::utf16_to_utf8(bytes.get(mark..).unwrap_or_default(), big_endian);
                let result = self.read_text(text.as_bytes());
                read?;
                if !whole {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        encodings::TextError::CutShort,
                    ));
                }
                result
            }
        }
    }

    fn read_text(&mut self, input: impl BufRead) -> std::io::Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let result = self.read_text_into(input, &mut buf);
        self.buf = buf;
        result
    }

    fn read_text_into(
        &mut self,
        mut input: impl BufRead,
        first: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        if let Err(e) = input.read_until(b'\n', first) {
            // Cut short inside the first line (a damaged S3 log file): keep what is whole.
            self.salvage(first);
            return Err(e);
        }
        if input.fill_buf()?.is_empty() {
            // The whole input is one line (a CloudTrail S3 log file is): one document, parsed
            // once, without first checking that the line is complete JSON.
            if !first.iter().all(u8::is_ascii_whitespace) && !self.skimmed(first) {
                self.text(first, |r, t| r.document(t));
            }
            return Ok(());
        }
        let complete_line = std::str::from_utf8(first)
            .ok()
            .filter(|l| !l.trim().is_empty())
            .is_some_and(|l| serde_json::from_str::<serde::de::IgnoredAny>(l).is_ok());
        if !complete_line {
            // JSON spread over lines: one document (an S3 log file, pretty-printed output) or
            // several one after another.
            let read = input.read_to_end(first);
            if read.is_err() {
                self.salvage(first);
                return read.map(|_| ());
            }
            if !first.iter().all(u8::is_ascii_whitespace) {
                self.text(first, |r, t| r.documents(t));
            }
            return Ok(());
        }
        let line = first;
        let mut n = 1;
        loop {
            if !line.iter().all(u8::is_ascii_whitespace) {
                self.line = Some(n);
                self.text(line, |r, t| r.document(t));
                self.line = None;
            }
            line.clear();
            n += 1;
            if input.read_until(b'\n', line)? == 0 {
                return Ok(());
            }
        }
    }

    fn text(&mut self, bytes: &[u8], then: impl FnOnce(&mut Self, &str)) {
        match std::str::from_utf8(bytes) {
            Ok(t) => then(self, t),
            Err(_) => {
                self.stats.records += 1;
                self.skip("not UTF-8 text")
            }
        }
    }
}

/// Parses one small input (a file's bytes), whatever its format, into memory.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut activities = Vec::new();
    let mut push = |a| activities.push(a);
    let mut reader = Reader::new(&mut push);
    if let Err(e) = reader.read(bytes) {
        reader.stats.skip(format!("unreadable input: {e}"));
    }
    let stats = reader.stats;
    Parsed { activities, skipped: stats.skipped, reasons: stats.reasons }
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
                mfa_known: true,
                root: false,
                iam_user: false,
                identity_center_role: true,
                federated: false
            }
        );
        assert_eq!(console.user_name.as_deref(), Some("alice@acme.example"));
        assert!(matches!(one(ROOT).kind, Kind::ConsoleLogin { root: true, mfa_used: true, .. }));
        let saml = one(SAML);
        assert_eq!(saml.kind, Kind::AssumeRoleWithSaml);
        assert_eq!(saml.source_ip, None, "IdC's own address is never the user's");
    }

    #[test]
    fn every_cloudtrail_fixture_normalises_to_its_kind() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (NEW, "idc-sign-in", Some("alice@acme.example")),
            (OLD, "idc-sign-in", Some("bob@acme.example")),
            (PORTAL, "portal", None),
            (CONSOLE, "console-login", Some("alice@acme.example")),
            (ROOT, "console-login", None),
            (SAML, "assume-role-with-saml", Some("alice@acme.example")),
            (
                include_str!("../../../events/cloudtrail/api-call-access-denied.json"),
                "other",
                Some("alice@acme.example"),
            ),
            (
                include_str!(
                    "../../../events/cloudtrail/credential-verification-failure-legacy-shape.json"
                ),
                "credential",
                Some("carol"),
            ),
            (
                include_str!("../../../events/cloudtrail/credential-challenge-2025-shape.json"),
                "credential",
                Some("carol"),
            ),
            (
                include_str!("../../../events/cloudtrail/sso-federate-legacy-shape.json"),
                "portal",
                Some("bob@acme.example"),
            ),
        ];
        for (text, kind, user) in cases {
            let a = one(text);
            let v = serde_json::to_value(&a.kind).unwrap();
            assert_eq!(v["kind"], *kind, "{a:?}");
            if let Some(u) = user {
                assert_eq!(a.user_name.as_deref(), Some(*u), "{a:?}");
            }
        }
        let failed = one(include_str!(
            "../../../events/cloudtrail/credential-verification-failure-legacy-shape.json"
        ));
        assert!(matches!(failed.kind, Kind::Credential { success: false, .. }));
        let challenge =
            one(include_str!("../../../events/cloudtrail/credential-challenge-2025-shape.json"));
        assert!(matches!(challenge.kind, Kind::Credential { success: true, .. }));
        let federate =
            one(include_str!("../../../events/cloudtrail/sso-federate-legacy-shape.json"));
        assert_eq!(federate.permission_set.as_deref(), Some("ReadOnly"));
        let denied = one(include_str!("../../../events/cloudtrail/api-call-access-denied.json"));
        assert_eq!(
            denied.permission_set.as_deref(),
            Some("TeamDeveloper"),
            "AWSReservedSSO_ session"
        );
        assert_eq!(denied.error_code.as_deref(), Some("AccessDenied"));
    }

    #[test]
    fn a_field_of_the_wrong_type_reads_as_absent_not_as_a_lost_record() {
        let mut v: serde_json::Value = serde_json::from_str(NEW).unwrap();
        v["sourceIPAddress"] = serde_json::json!(12345);
        v["userIdentity"] = serde_json::json!("weird");
        v["serviceEventDetails"] = serde_json::json!(["x"]);
        let a = one(&v.to_string());
        assert_eq!(a.source_ip, None);
        assert_eq!(a.user_name.as_deref(), Some("alice@acme.example"), "from additionalEventData");
        // An unreadable outcome is unknown, never a failure (no error code says it failed).
        assert!(matches!(a.kind, Kind::IdcSignIn { success: true, .. }));
    }

    #[test]
    fn every_input_format_is_read_and_malformed_records_are_counted() {
        let records: Vec<serde_json::Value> =
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

        for junk in
            [&b"\x1f\x8bnot gzip"[..], b"\xff\xfe\x00", b"\xc3\x28", b"[1, 2]", b"{\"Records\": 5}"]
        {
            let p = parse(junk);
            assert!(p.activities.is_empty() && p.skipped > 0, "{junk:?}");
        }
    }

    fn gz(text: &str) -> Vec<u8> {
        gz_bytes(text.as_bytes())
    }

    /// `text` as Windows tools write it: behind a UTF-8 byte-order mark, or in UTF-16 either
    /// way round with or without its mark.
    fn windows_forms(text: &str) -> Vec<(&'static str, Vec<u8>)> {
        let utf16 = |big_endian: bool, mark: bool| {
            let units = mark.then_some(0xFEFF_u16).into_iter().chain(text.encode_utf16());
            units
                .flat_map(|u| if big_endian { u.to_be_bytes() } else { u.to_le_bytes() })
                .collect::<Vec<u8>>()
        };
        vec![
            ("UTF-8 with a mark", [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat()),
            ("UTF-16LE with a mark", utf16(false, true)),
            ("UTF-16BE with a mark", utf16(true, true)),
            ("UTF-16LE", utf16(false, false)),
            ("UTF-16BE", utf16(true, false)),
        ]
    }

    #[test]
    fn an_export_in_a_windows_encoding_loses_no_record() {
        // Defect: a file behind a UTF-8 byte-order mark (Windows tools) or in UTF-16 (Windows
        // PowerShell 5's `>` and `Out-File`) was one unreadable "record": every record in it
        // was lost.
        let records: Vec<serde_json::Value> =
            [NEW, OLD, PORTAL, ROOT].iter().map(|t| serde_json::from_str(t).unwrap()).collect();
        let log = serde_json::json!({"Records": records});
        let lines = records.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\r\n");
        let shapes = [
            ("an S3 log file", log.to_string()),
            ("pretty-printed", serde_json::to_string_pretty(&log).unwrap()),
            ("JSON lines with CRLF", lines),
        ];
        for (shape, text) in shapes {
            let plain = parse(text.as_bytes());
            assert_eq!((plain.activities.len(), plain.skipped), (4, 0), "{shape}");
            for (form, bytes) in windows_forms(&text) {
                for (packing, bytes) in [("plain", bytes.clone()), ("gzip", gz_bytes(&bytes))] {
                    let p = parse(&bytes);
                    assert_eq!(p.skipped, 0, "{shape}, {form}, {packing}: {:?}", p.reasons);
                    assert_eq!(p.activities, plain.activities, "{shape}, {form}, {packing}");
                }
            }
        }
        // UTF-16 cut inside a character (an odd byte at the end): the file is named unreadable
        // and every record before the cut is kept.
        let jsonl = records.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n");
        let (_, mut cut) = windows_forms(&jsonl).swap_remove(1);
        cut.push(b'{');
        let mut seen = Vec::new();
        let mut push = |a: Activity| seen.push(a);
        let mut reader = Reader::new(&mut push);
        reader.read_named("export.json", cut.as_slice());
        let file = &reader.stats.files[0];
        assert_eq!(file.records, 4, "{file:?}");
        assert!(file.unreadable.as_deref().is_some_and(|why| why.contains("UTF-16")), "{file:?}");
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn skips_are_counted_by_the_kind_of_their_reason_and_the_first_five_kept_in_full() {
        let mut stats = Stats::default();
        for i in 0..7 {
            stats.skip_at(Some("trail.json"), Some(i), format!("unreadable eventTime \"{i}\""));
        }
        stats.skip_at(None, None, "not a CloudTrail record: expected value");
        assert_eq!(stats.skipped, 8);
        let by_reason: Vec<(&str, usize)> =
            stats.by_reason.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        assert_eq!(by_reason, [("not a CloudTrail record", 1), ("unreadable eventTime", 7)]);
        assert_eq!(stats.reasons.len(), 5);
        assert_eq!(stats.reasons[0], "trail.json line 0: unreadable eventTime \"0\"");
        assert_eq!(stats.reasons[4], "trail.json line 4: unreadable eventTime \"4\"");
    }

    /// A log file of `signins` sign-ins and `machine` records no check reads, compact as
    /// CloudTrail writes it.
    fn mixed_log(signins: usize, machine: usize) -> String {
        let signin: serde_json::Value = serde_json::from_str(NEW).unwrap();
        let kms = serde_json::json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"},
            "eventTime": "2026-11-20T18:31:02Z",
            "eventSource": "kms.amazonaws.com",
            "eventName": "Decrypt",
            "awsRegion": "eu-central-1",
            "sourceIPAddress": "lambda.amazonaws.com",
            "eventID": "5b1f0c5e-2f7a-4c0e-9a59-0d6c1f1e2a01",
            "eventType": "AwsApiCall"
        });
        let records: Vec<&serde_json::Value> = std::iter::repeat_n(&signin, signins)
            .chain(std::iter::repeat_n(&kms, machine))
            .collect();
        serde_json::json!({"Records": records}).to_string()
    }

    #[test]
    fn a_trail_the_prefilter_does_not_pay_for_is_read_in_one_pass_after_the_sample() {
        // Files of 1,000 records, a tenth of them machine traffic: after the first
        // PREFILTER_SAMPLE records (two files), too few go unread (a tenth, under a quarter)
        // for splitting files first to pay, so the third file is read in one pass, where
        // unread records are not told apart.
        assert_eq!(PREFILTER_SAMPLE, 2_000);
        let file = mixed_log(900, 100);
        let mut seen = 0;
        let mut count = |_: Activity| seen += 1;
        let mut reader = Reader::new(&mut count).unread_skipped();
        for name in ["1.json", "2.json", "3.json"] {
            reader.read_named(name, file.as_bytes());
        }
        let stats = reader.stats;
        assert_eq!((stats.records, stats.skipped), (3_000, 0));
        assert_eq!(stats.unread, 200, "told apart in the first two files only");
        assert_eq!(seen, 2 * 900 + 1_000, "the third file's machine records parsed");
        let skimmed = if crate::signin::skim::available() { 2 } else { 0 };
        assert_eq!(stats.skimmed, skimmed, "the third file is not split first");
        // Without the prefilter nothing is split first: every record is parsed anyway.
        let mut nothing = |_: Activity| {};
        let mut plain = Reader::new(&mut nothing);
        plain.read_named("1.json", file.as_bytes());
        assert_eq!((plain.stats.records, plain.stats.unread, plain.stats.skimmed), (1_000, 0, 0));
        // A trail mostly of machine traffic keeps paying: every file is split first.
        let org = mixed_log(100, 900);
        let mut ignore = |_: Activity| {};
        let mut reader = Reader::new(&mut ignore).unread_skipped();
        for name in ["1.json", "2.json", "3.json"] {
            reader.read_named(name, org.as_bytes());
        }
        assert_eq!(reader.stats.unread, 2_700);
    }

    #[test]
    fn each_unusable_value_is_one_record_and_one_skip() {
        for (junk, n) in [
            (&b"[1, 2"[..], 1),
            (b"[1, 2]", 2),
            (b"{\"Records\": [\n{\"eventTime\":", 1),
            (b"{\"eventTime\": \"2026-11-20T18:31:02Z\"}\n{\"eventTime\": \n", 1),
            (b"\xc3\x28", 1),
            (b"{\"Events\": [{\"EventId\": \"x\"}, {\"CloudTrailEvent\": 5}]}", 2),
            (b"{\"detail-type\": \"AWS API Call via CloudTrail\", \"detail\": 5}", 1),
            (b"{\"detail-type\": \"AWS API Call via CloudTrail\"}", 1),
        ] {
            let mut nothing = |_: Activity| {};
            let mut reader = Reader::new(&mut nothing);
            reader.read(junk).unwrap();
            let stats = &reader.stats;
            let text = String::from_utf8_lossy(junk);
            let read = usize::from(junk.starts_with(b"{\"eventTime\": \"2026"));
            assert_eq!(
                (stats.records, stats.skipped),
                (n + read, n),
                "{text}: {:?}",
                stats.reasons
            );
            if read == 1 {
                assert!(stats.reasons[0].starts_with("line 2: "), "{:?}", stats.reasons);
            }
            if junk.starts_with(b"{\"detail-type") {
                let why: Vec<&String> = stats.by_reason.keys().collect();
                assert_eq!(why, ["not a CloudTrail record"], "{text}: {:?}", stats.reasons);
                assert!(stats.reasons[0].contains("an EventBridge envelope without detail"));
            }
        }
        // A record alone is one record, and read.
        let mut seen = 0;
        let mut count = |_: Activity| seen += 1;
        let mut reader = Reader::new(&mut count);
        reader.read(ROOT.as_bytes()).unwrap();
        assert_eq!((reader.stats.records, reader.stats.skipped), (1, 0));
        assert_eq!(seen, 1);
    }

    #[test]
    fn a_log_file_cut_short_keeps_every_whole_record_before_the_cut() {
        let records: Vec<String> = [NEW, OLD, PORTAL]
            .iter()
            .map(|t| serde_json::from_str::<serde_json::Value>(t).unwrap().to_string())
            .collect();
        // As CloudTrail writes it, and spaced and broken over lines as other writers do.
        let compact = format!("{{\"Records\":[{},{},{}", records[0], records[1], &records[2][..40]);
        let spaced = format!(
            "{{ \"Records\" : [\n  {} ,\n  {},\n{}",
            records[0],
            records[1],
            &records[2][..40]
        );
        for text in [compact, spaced] {
            let mut seen = Vec::new();
            let mut push = |a: Activity| seen.push(a.event_id);
            let mut reader = Reader::new(&mut push);
            reader.salvage(text.as_bytes());
            assert_eq!(reader.stats.records, 2, "{text}");
            assert_eq!(seen.len(), 2);
        }
    }

    fn gz_bytes(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, bytes).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn a_damaged_gz_is_a_named_skip_its_whole_records_are_kept_and_the_next_file_is_read() {
        // Defect: one truncated, bit-flipped or bad-header `.gz` ended the scan with exit 1
        // and no findings from any other file.
        let records: Vec<serde_json::Value> =
            [NEW, OLD, PORTAL, CONSOLE].iter().map(|t| serde_json::from_str(t).unwrap()).collect();
        let s3 = serde_json::json!({"Records": records}).to_string();
        let whole = gz(&s3);
        let truncated = &whole[..whole.len() * 3 / 4];
        let mut flipped = whole.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        let bad_header = [&[0x1f, 0x8b, 0x08, 0xff][..], b"not a gzip member at all"].concat();

        let mut seen = Vec::new();
        let mut push = |a: Activity| seen.push(a);
        let mut reader = Reader::new(&mut push);
        reader.read_named("a/truncated.json.gz", truncated);
        reader.read_named("b/flipped.json.gz", flipped.as_slice());
        reader.read_named("c/bad-header.json.gz", bad_header.as_slice());
        reader.read_named("d/whole.json.gz", whole.as_slice());
        let stats = reader.stats;
        let files: Vec<(&str, bool)> =
            stats.files.iter().map(|f| (f.name.as_str(), f.unreadable.is_some())).collect();
        assert_eq!(
            files,
            [
                ("a/truncated.json.gz", true),
                ("b/flipped.json.gz", true),
                ("c/bad-header.json.gz", true),
                ("d/whole.json.gz", false)
            ]
        );
        assert_eq!(stats.files[3].records, 4, "the file after the damaged ones is read whole");
        assert!(
            stats.files[0].records >= 1,
            "records before the damage kept: {:?}",
            stats.files[0]
        );
        assert!(seen.len() >= 5, "{}", seen.len());
        assert!(
            stats.reasons.iter().any(|r| r.starts_with("a/truncated.json.gz: unreadable input")),
            "{:?}",
            stats.reasons
        );
    }

    #[test]
    fn nested_objects_written_as_json_text_are_decoded_and_unreadable_outcomes_are_not_failures() {
        // Defect: Athena, CloudTrail Lake and SIEM exports write responseElements and
        // additionalEventData as JSON strings (or null): a successful root sign-in became
        // root-signin-failed, MFA inside a string was "no MFA".
        let mut root: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        root["responseElements"] = serde_json::json!(root["responseElements"].to_string());
        root["additionalEventData"] = serde_json::json!(root["additionalEventData"].to_string());
        let a = one(&root.to_string());
        assert!(
            matches!(
                a.kind,
                Kind::ConsoleLogin {
                    success: true,
                    root: true,
                    mfa_used: true,
                    mfa_known: true,
                    ..
                }
            ),
            "{:?}",
            a.kind
        );
        // null, or text that is not JSON: unknown, which is neither a failure nor "no MFA".
        for odd in [serde_json::Value::Null, serde_json::json!("n/a"), serde_json::json!("{broken")]
        {
            let mut r: serde_json::Value = serde_json::from_str(ROOT).unwrap();
            r["responseElements"] = odd.clone();
            r["additionalEventData"] = odd.clone();
            let a = one(&r.to_string());
            assert!(
                matches!(a.kind, Kind::ConsoleLogin { success: true, mfa_known: false, .. }),
                "{odd}: {:?}",
                a.kind
            );
        }
        // A failure says so with its error message even when responseElements is unreadable.
        let mut failed: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        failed["responseElements"] = serde_json::Value::Null;
        failed["errorMessage"] = serde_json::json!("Failed authentication");
        assert!(matches!(one(&failed.to_string()).kind, Kind::ConsoleLogin { success: false, .. }));
        // IdC sign-ins alike.
        let mut idc: serde_json::Value = serde_json::from_str(NEW).unwrap();
        idc["serviceEventDetails"] = serde_json::json!(idc["serviceEventDetails"].to_string());
        assert!(matches!(one(&idc.to_string()).kind, Kind::IdcSignIn { success: true, .. }));
    }

    #[test]
    fn pretty_printed_records_one_after_another_are_each_read() {
        // Defect: `jq '.Records[]'` without -c, or appended LookupEvents pages, were one skipped
        // record: hundreds of events lost, counted as 1.
        let records: Vec<serde_json::Value> =
            [NEW, OLD, PORTAL].iter().map(|t| serde_json::from_str(t).unwrap()).collect();
        let pretty: String =
            records.iter().map(|r| serde_json::to_string_pretty(r).unwrap() + "\n").collect();
        let p = parse(pretty.as_bytes());
        assert_eq!((p.activities.len(), p.skipped), (3, 0), "{:?}", p.reasons);
        // Two LookupEvents pages appended, pretty.
        let page = |r: &serde_json::Value| {
            serde_json::to_string_pretty(
                &serde_json::json!({"Events": [{"CloudTrailEvent": r.to_string()}]}),
            )
            .unwrap()
        };
        let pages = format!("{}\n{}", page(&records[0]), page(&records[1]));
        assert_eq!(parse(pages.as_bytes()).activities.len(), 2);
        // Garbage after good documents: the good ones are kept, the rest counted.
        let p = parse(format!("{pretty}\n{{ not json").as_bytes());
        assert_eq!((p.activities.len(), p.skipped), (3, 1), "{:?}", p.reasons);
    }

    #[test]
    fn event_times_in_export_forms_are_read() {
        for form in [
            serde_json::json!("2025-11-20 18:31:58"),
            serde_json::json!("2025-11-20T18:31:58.123456789Z"),
            serde_json::json!("2025-11-20T18:31:58"),
            serde_json::json!(1763663518),
            serde_json::json!("1763663518000"),
        ] {
            let mut r: serde_json::Value = serde_json::from_str(NEW).unwrap();
            r["eventTime"] = form.clone();
            let p = parse(r.to_string().as_bytes());
            assert_eq!((p.activities.len(), p.skipped), (1, 0), "{form}: {:?}", p.reasons);
        }
    }

    #[test]
    fn evidence_keeps_what_the_record_says_and_distinct_events_never_share_an_identity() {
        let mut r: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        r["sourceIPAddress"] = serde_json::json!("AWS Internal");
        r.as_object_mut().unwrap().remove("recipientAccountId");
        let a = one(&r.to_string());
        assert_eq!((a.source_ip, a.source_text.as_deref()), (None, Some("AWS Internal")));
        assert_eq!(a.account_id.as_deref(), r["userIdentity"]["accountId"].as_str());
        // An IAM user named only by its principal id.
        let mut iam: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        iam["userIdentity"] = serde_json::json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE7QXRWZ4", "accountId": "111122223333"});
        assert_eq!(one(&iam.to_string()).user_name.as_deref(), Some("AIDAEXAMPLE7QXRWZ4"));
        // One eventID, time and address for two different events: two identities.
        let console = one(CONSOLE);
        let mut other: serde_json::Value = serde_json::from_str(CONSOLE).unwrap();
        other["eventName"] = serde_json::json!("GetCallerIdentity");
        other["eventSource"] = serde_json::json!("sts.amazonaws.com");
        assert_ne!(console.identity(), one(&other.to_string()).identity());
    }
}
