//! Reading the policy file (`access-policy.toml`): findings with 1-based line and column, and the
//! value forms both of its readers accept. The access side reads everything but `[signin]`
//! (`access::policy`); the sign-in checks read `[signin]` (`signin::settings`).

use chrono::Duration;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The file works, but probably not as meant.
    Warning,
    /// The file cannot be used.
    Error,
}

/// A finding about the policy file, with its position (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// How bad.
    pub severity: Level,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// 1-based column (0: the file as a whole).
    pub column: usize,
    /// What is wrong, and how to fix it.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(f, "{}:{}: {sev}: {}", self.line, self.column, self.message)
    }
}

/// The first error, and how many more there are.
pub fn first_error(d: &[Diagnostic]) -> String {
    let errors: Vec<_> = d.iter().filter(|d| d.severity == Level::Error).collect();
    match errors.as_slice() {
        [] => "no errors".into(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

/// Collects findings with positions in a text.
pub struct Checker<'a> {
    text: &'a str,
    /// What was found so far.
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    /// A checker of `text`.
    pub fn new(text: &'a str) -> Self {
        Self { text, diagnostics: Vec::new() }
    }

    /// True when an error was found.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Level::Error)
    }

    /// A finding at a byte offset of the text.
    pub fn at(&mut self, severity: Level, offset: usize, message: impl Into<String>) {
        let (line, column) = line_column(self.text, offset);
        self.diagnostics.push(Diagnostic { severity, line, column, message: message.into() });
    }
    /// An error at a byte offset.
    pub fn error(&mut self, offset: usize, message: impl Into<String>) {
        self.at(Level::Error, offset, message)
    }
    /// A warning at a byte offset.
    pub fn warn(&mut self, offset: usize, message: impl Into<String>) {
        self.at(Level::Warning, offset, message)
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|b| *b == b'\n').map(|p| p + 1).unwrap_or(0);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, column)
}

/// `30s`, `10m`, `2h`, `1d` → a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (n, unit) = split_unit(s.trim())?;
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    match unit {
        's' => Duration::try_seconds(n),
        'm' => Duration::try_minutes(n),
        'h' => Duration::try_hours(n),
        'd' => Duration::try_days(n),
        _ => None,
    }
}

/// `"10m"` → (`"10"`, `'m'`): the last character is the unit, whatever its width in bytes.
pub fn split_unit(s: &str) -> Option<(&str, char)> {
    let (at, unit) = s.char_indices().next_back()?;
    Some((&s[..at], unit))
}
