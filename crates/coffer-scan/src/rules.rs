//! Rules: parsed from TOML (the built-in file is compiled in), compiled into regexes and one
//! Aho-Corasick automaton over every rule's keywords.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::Regex;
use serde::Deserialize;

use crate::error::Error;

/// The rules compiled into the binary.
const BUILTIN: &str = include_str!("../rules/default.toml");

/// Extra validation a rule's match must pass, done in code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// GitHub's token format: the last 6 chars are the base62 CRC32 of the random part.
    GithubCrc32,
    /// npm's token format (the same scheme as GitHub's).
    NpmCrc32,
    /// A JWT whose header decodes to JSON naming a signing algorithm.
    Jwt,
    /// A PEM / OpenSSH / PGP block with a real body.
    PrivateKey,
    /// The password part of a URL is not a placeholder.
    UrlPassword,
    /// Base64 `user:password` with a real password.
    BasicAuth,
    /// A value assigned to a secret-looking name: entropy, placeholders, references.
    Generic,
}

/// One compiled rule.
pub struct Rule {
    pub id: String,
    pub description: String,
    pub regex: Regex,
    /// Capture group holding the secret.
    pub secret_group: usize,
    /// Capture group holding the variable name (generic rules).
    pub key_group: Option<usize>,
    /// Capture group holding the opening quote (generic rules).
    pub quote_group: Option<usize>,
    pub check: Option<Check>,
    pub min_entropy: Option<f64>,
    pub multiline: bool,
    pub generic: bool,
    /// Rules without keywords run on every file.
    pub keywordless: bool,
}

/// Every rule, plus the keyword automaton that decides which of them run.
pub struct RuleSet {
    rules: Vec<Rule>,
    ac: AhoCorasick,
    /// For each automaton pattern, the rules it wakes.
    pattern_rules: Vec<Vec<usize>>,
    /// The keywords themselves, kept to rebuild the automaton when rules are added.
    keywords: Vec<(String, usize)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    keywords: Vec<String>,
    regex: String,
    check: Option<String>,
    min_entropy: Option<f64>,
    #[serde(default)]
    multiline: bool,
    #[serde(default)]
    generic: bool,
}

impl RuleSet {
    /// The built-in rules.
    pub fn builtin() -> Result<Self, Error> {
        Self::empty().with_extra(BUILTIN, "built-in")
    }

    /// Adds the rules of a TOML document (`origin` names it in errors). A rule with the id of an
    /// existing rule replaces it.
    pub fn with_extra(mut self, toml_text: &str, origin: &str) -> Result<Self, Error> {
        let err = |reason: String| Error::Rules {
            origin: origin.to_string(),
            reason,
        };
        let file: RulesFile = toml::from_str(toml_text).map_err(|e| err(e.to_string()))?;
        for spec in file.rule {
            let rule = compile(&spec).map_err(|r| err(format!("rule {}: {r}", spec.id)))?;
            let idx = match self.rules.iter().position(|r| r.id == rule.id) {
                Some(i) => {
                    self.keywords.retain(|(_, r)| *r != i);
                    self.rules[i] = rule;
                    i
                }
                None => {
                    self.rules.push(rule);
                    self.rules.len() - 1
                }
            };
            for kw in &spec.keywords {
                self.keywords.push((kw.to_ascii_lowercase(), idx));
            }
        }
        self.rebuild().map_err(err)?;
        Ok(self)
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The value starts with the keyword of a rule for one credential type (`ghp_`, `npm_`,
    /// `sk_live_`...).
    pub(crate) fn has_token_prefix(&self, value: &str) -> bool {
        let v = value.as_bytes();
        self.keywords.iter().any(|(kw, r)| {
            kw.len() >= 4
                && !self.rules[*r].generic
                && v.len() >= kw.len()
                && v[..kw.len()].eq_ignore_ascii_case(kw.as_bytes())
        })
    }

    pub(crate) fn automaton(&self) -> &AhoCorasick {
        &self.ac
    }

    pub(crate) fn rules_of_pattern(&self, pattern: usize) -> &[usize] {
        &self.pattern_rules[pattern]
    }

    fn empty() -> Self {
        RuleSet {
            rules: Vec::new(),
            ac: AhoCorasick::new(Vec::<&str>::new()).expect("an empty automaton always builds"),
            pattern_rules: Vec::new(),
            keywords: Vec::new(),
        }
    }

    fn rebuild(&mut self) -> Result<(), String> {
        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_rules: Vec<Vec<usize>> = Vec::new();
        for (kw, rule) in &self.keywords {
            match patterns.iter().position(|p| p == kw) {
                Some(i) => pattern_rules[i].push(*rule),
                None => {
                    patterns.push(kw.clone());
                    pattern_rules.push(vec![*rule]);
                }
            }
        }
        for (i, rule) in self.rules.iter_mut().enumerate() {
            rule.keywordless = !self.keywords.iter().any(|(_, r)| *r == i);
        }
        self.ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| e.to_string())?;
        self.pattern_rules = pattern_rules;
        Ok(())
    }
}

fn compile(spec: &RuleSpec) -> Result<Rule, String> {
    let regex = regex::bytes::RegexBuilder::new(&spec.regex)
        .size_limit(64 << 20)
        .build()
        .map_err(|e| e.to_string())?;
    let names: Vec<Option<String>> = regex
        .capture_names()
        .map(|n| n.map(str::to_string))
        .collect();
    let group = |name: &str| names.iter().position(|n| n.as_deref() == Some(name));
    let secret_group = group("secret")
        .or_else(|| group("value"))
        .unwrap_or(if regex.captures_len() > 1 { 1 } else { 0 });
    let check = match spec.check.as_deref() {
        None => None,
        Some("github-crc32") => Some(Check::GithubCrc32),
        Some("npm-crc32") => Some(Check::NpmCrc32),
        Some("jwt") => Some(Check::Jwt),
        Some("private-key") => Some(Check::PrivateKey),
        Some("url-password") => Some(Check::UrlPassword),
        Some("basic-auth") => Some(Check::BasicAuth),
        Some("generic") => Some(Check::Generic),
        Some(other) => return Err(format!("unknown check {other:?}")),
    };
    Ok(Rule {
        id: spec.id.clone(),
        description: spec.description.clone(),
        regex,
        secret_group,
        key_group: group("key"),
        quote_group: group("q"),
        check,
        min_entropy: spec.min_entropy,
        multiline: spec.multiline,
        generic: spec.generic,
        keywordless: spec.keywords.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_compile_and_cover_sixty_types() {
        let rules = RuleSet::builtin().unwrap();
        assert!(rules.rules().len() >= 60, "{} rules", rules.rules().len());
        let mut ids: Vec<_> = rules.rules().iter().map(|r| r.id.as_str()).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "rule ids are unique");
    }

    #[test]
    fn user_rules_add_and_replace() {
        let extra = r#"
[[rule]]
id = "acme-token"
description = "ACME internal token"
keywords = ["acme_"]
regex = '''(acme_[a-z0-9]{20})'''
"#;
        let before = RuleSet::builtin().unwrap().rules().len();
        let rules = RuleSet::builtin()
            .unwrap()
            .with_extra(extra, "test")
            .unwrap();
        assert_eq!(rules.rules().len(), before + 1);
        let bad = "[[rule]]\nid = \"x\"\nregex = \"(\"\n";
        assert!(RuleSet::builtin().unwrap().with_extra(bad, "test").is_err());
        let unknown = "[[rule]]\nid = \"x\"\nregex = \"x\"\ncheck = \"nope\"\n";
        assert!(RuleSet::builtin()
            .unwrap()
            .with_extra(unknown, "test")
            .is_err());
    }
}
