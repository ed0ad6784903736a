//! Group-name patterns: a glob (`*` any run of characters, `?` one character) with `{name}`
//! placeholders that capture part of the name, e.g. `aws-team-{team}` or `aws-core-*`.

use std::collections::BTreeMap;

use regex::Regex;

/// A group display-name pattern: `*` matches any run of characters, `?` one, `{name}` captures a
/// part (usable in the rule's tag targets); matched against the whole name, case-sensitively.
#[derive(Debug, Clone)]
pub struct GroupPattern {
    source: String,
    regex: Regex,
    captures: Vec<String>,
}

impl PartialEq for GroupPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl GroupPattern {
    /// Compiles a pattern; the error says what is wrong and at which character.
    pub fn compile(source: &str) -> Result<Self, String> {
        if source.is_empty() {
            return Err("empty group pattern".into());
        }
        let mut re = String::with_capacity(source.len() * 2 + 2);
        re.push('^');
        let mut captures: Vec<String> = Vec::new();
        let mut chars = source.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(format!("unclosed '{{' at character {}", i + 1));
                    }
                    if !is_identifier(&name) {
                        return Err(format!(
                            "placeholder {{{name}}} at character {}: use letters, digits and _",
                            i + 1
                        ));
                    }
                    if captures.contains(&name) {
                        return Err(format!("placeholder {{{name}}} appears twice"));
                    }
                    re.push_str(&format!("(?P<{name}>.+?)"));
                    captures.push(name);
                }
                '}' => return Err(format!("unmatched '}}' at character {}", i + 1)),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        let regex = Regex::new(&re).map_err(|e| format!("invalid pattern: {e}"))?;
        Ok(Self { source: source.to_owned(), regex, captures })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Its capture names, in order.
    pub fn captures(&self) -> &[String] {
        &self.captures
    }

    /// The captured values when `name` matches, else `None`.
    pub fn matches(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let caps = self.regex.captures(name)?;
        Some(
            self.captures
                .iter()
                .filter_map(|c| caps.name(c).map(|m| (c.clone(), m.as_str().to_owned())))
                .collect(),
        )
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Placeholders named in a template such as `team-{team}`.
pub fn placeholders(template: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}').ok_or_else(|| format!("unclosed '{{' in {template:?}"))?;
        let name = &after[..end];
        if !is_identifier(name) {
            return Err(format!("bad placeholder {{{name}}} in {template:?}"));
        }
        out.push(name.to_owned());
        rest = &after[end + 1..];
    }
    if rest.contains('}') {
        return Err(format!("unmatched '}}' in {template:?}"));
    }
    Ok(out)
}

/// Fills `{name}` placeholders from captures (a placeholder without a capture stays as is).
pub fn render(template: &str, captures: &BTreeMap<String, String>) -> String {
    if !template.contains('{') {
        return template.to_owned();
    }
    let mut out = template.to_owned();
    for (k, v) in captures {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_captures() {
        let p = GroupPattern::compile("aws-team-{team}").unwrap();
        assert_eq!(p.matches("aws-team-payments").unwrap()["team"], "payments");
        assert!(p.matches("aws-team-").is_none());
        assert!(p.matches("xaws-team-payments").is_none());
        let p = GroupPattern::compile("aws-core-*").unwrap();
        assert!(p.matches("aws-core-").is_some());
        assert!(p.matches("aws-core-readers").unwrap().is_empty());
        assert!(p.matches("AWS-core-readers").is_none(), "case-sensitive, like IdC names");
        let p = GroupPattern::compile("aws-{env}-?-{team}.admins").unwrap();
        let c = p.matches("aws-prod-x-data.admins").unwrap();
        assert_eq!((c["env"].as_str(), c["team"].as_str()), ("prod", "data"));
        assert!(p.matches("aws-prod-x-dataXadmins").is_none(), "'.' is literal");
    }

    #[test]
    fn bad_patterns_say_why() {
        for (p, msg) in [
            ("", "empty"),
            ("aws-{team", "unclosed"),
            ("aws-team}", "unmatched"),
            ("aws-{}", "placeholder"),
            ("aws-{a b}", "placeholder"),
            ("{x}-{x}", "twice"),
        ] {
            let err = GroupPattern::compile(p).unwrap_err();
            assert!(err.contains(msg), "{p}: {err}");
        }
    }

    #[test]
    fn templates_render_from_captures() {
        let caps = BTreeMap::from([("team".to_owned(), "data".to_owned())]);
        assert_eq!(render("team-{team}", &caps), "team-data");
        assert_eq!(placeholders("{team}-{env}").unwrap(), ["team", "env"]);
        assert!(placeholders("{team").is_err());
    }
}
