//! A compiled set of policies and the check of one request against it. Matching follows
//! OpenBao: an exact rule wins; otherwise, among the patterns that match (a trailing `*` for a
//! prefix, `+` for one segment), the most specific wins.

use std::collections::HashMap;

use coffer_sdk::{Error, Operation};
use serde::Deserialize;

/// A set of capabilities as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities(u16);

impl Capabilities {
    pub const CREATE: Self = Self(1);
    pub const READ: Self = Self(1 << 1);
    pub const UPDATE: Self = Self(1 << 2);
    pub const DELETE: Self = Self(1 << 3);
    pub const LIST: Self = Self(1 << 4);
    pub const SUDO: Self = Self(1 << 5);
    pub const DENY: Self = Self(1 << 6);
    pub const PATCH: Self = Self(1 << 7);
    const NAMES: [(&'static str, Self); 8] = [
        ("create", Self::CREATE),
        ("read", Self::READ),
        ("update", Self::UPDATE),
        ("delete", Self::DELETE),
        ("list", Self::LIST),
        ("sudo", Self::SUDO),
        ("deny", Self::DENY),
        ("patch", Self::PATCH),
    ];

    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The capability an operation needs.
    pub fn for_operation(op: Operation) -> Self {
        match op {
            Operation::Read => Self::READ,
            Operation::List => Self::LIST,
            Operation::Create => Self::CREATE,
            Operation::Update => Self::UPDATE,
            Operation::Patch => Self::PATCH,
            Operation::Delete => Self::DELETE,
        }
    }

    /// The names, in OpenBao's order, as `sys/capabilities` lists them.
    pub fn names(self) -> Vec<&'static str> {
        if self.contains(Self::DENY) {
            return vec!["deny"];
        }
        Self::NAMES
            .iter()
            .filter(|(_, c)| self.contains(*c))
            .map(|(n, _)| *n)
            .collect()
    }

    fn parse(name: &str) -> Result<Self, Error> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
            .ok_or_else(|| Error::invalid(format!("invalid capability {name:?}")))
    }
}

/// The rules of one policy, as parsed from HCL.
#[derive(Debug, Clone)]
pub struct Rules {
    paths: Vec<(String, Capabilities)>,
}

impl Rules {
    /// Parses a policy document.
    pub fn parse(text: &str) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Document {
            #[serde(default)]
            path: HashMap<String, PathBlock>,
        }
        #[derive(Deserialize)]
        struct PathBlock {
            #[serde(default)]
            capabilities: Vec<String>,
            #[serde(default)]
            policy: Option<String>,
        }
        let doc: Document = hcl::from_str(text)
            .map_err(|e| Error::invalid(format!("failed to parse policy: {e}")))?;
        let mut paths = Vec::with_capacity(doc.path.len());
        for (pattern, block) in doc.path {
            let mut caps = Capabilities::default();
            for name in &block.capabilities {
                caps = caps.union(Capabilities::parse(name)?);
            }
            // The legacy `policy = "write"` form, as Vault still accepts it.
            if let Some(legacy) = block.policy.as_deref() {
                caps = caps.union(match legacy {
                    "deny" => Capabilities::DENY,
                    "read" => Capabilities::READ.union(Capabilities::LIST),
                    "write" => Capabilities(0b1001_1111),
                    "sudo" => Capabilities(0b1011_1111),
                    other => return Err(Error::invalid(format!("invalid policy {other:?}"))),
                });
            }
            paths.push((pattern.trim_start_matches('/').to_owned(), caps));
        }
        Ok(Rules { paths })
    }
}

/// The merged rules of a token's policies.
#[derive(Debug, Default)]
pub struct Acl {
    root: bool,
    exact: HashMap<String, Capabilities>,
    /// Patterns with `*` or `+`, most specific first.
    patterns: Vec<Pattern>,
}

#[derive(Debug)]
struct Pattern {
    text: String,
    caps: Capabilities,
}

impl Acl {
    /// The ACL of the `root` policy: everything allowed.
    pub fn root() -> Self {
        Acl {
            root: true,
            ..Acl::default()
        }
    }

    /// Merges policies: capabilities of equal patterns add up, and `deny` overrides.
    pub fn compile<'a>(policies: impl IntoIterator<Item = &'a Rules>) -> Self {
        let mut merged: HashMap<String, Capabilities> = HashMap::new();
        for rules in policies {
            for (pattern, caps) in &rules.paths {
                let slot = merged.entry(pattern.clone()).or_default();
                *slot = slot.union(*caps);
            }
        }
        let mut acl = Acl::default();
        for (text, mut caps) in merged {
            if caps.contains(Capabilities::DENY) {
                caps = Capabilities::DENY;
            }
            if text.contains('+') || text.ends_with('*') {
                acl.patterns.push(Pattern { text, caps });
            } else {
                acl.exact.insert(text, caps);
            }
        }
        acl.patterns
            .sort_by(|a, b| specificity(&b.text).cmp(&specificity(&a.text)));
        acl
    }

    /// The capabilities granted on `path`.
    pub fn capabilities(&self, path: &str) -> Capabilities {
        if self.root {
            return Capabilities(0b1011_1111);
        }
        if let Some(caps) = self.exact.get(path) {
            return *caps;
        }
        self.patterns
            .iter()
            .find(|p| glob_match(&p.text, path))
            .map_or(Capabilities::default(), |p| p.caps)
    }

    /// Whether `op` on `path` is allowed; `sudo` additionally requires the sudo capability.
    pub fn allows(&self, op: Operation, path: &str, sudo: bool) -> bool {
        if self.root {
            return true;
        }
        let caps = self.capabilities(path);
        if caps.contains(Capabilities::DENY) {
            return false;
        }
        if sudo && !caps.contains(Capabilities::SUDO) {
            return false;
        }
        caps.contains(Capabilities::for_operation(op))
    }
}

/// Orders patterns as OpenBao's "most specific match": a later first wildcard, then no trailing
/// `*`, then fewer `+`, then a longer pattern, then the lexicographically greater.
fn specificity(pattern: &str) -> (usize, bool, std::cmp::Reverse<usize>, usize, &str) {
    let first_wildcard = pattern.find(['+', '*']).unwrap_or(pattern.len());
    (
        first_wildcard,
        !pattern.ends_with('*'),
        std::cmp::Reverse(pattern.matches('+').count()),
        pattern.len(),
        pattern,
    )
}

/// Matches `path` against a pattern with `+` (one whole segment) and a trailing `*` (any rest).
fn glob_match(pattern: &str, path: &str) -> bool {
    let (body, prefix_match) = match pattern.strip_suffix('*') {
        Some(body) => (body, true),
        None => (pattern, false),
    };
    if !body.contains('+') {
        return if prefix_match {
            path.starts_with(body)
        } else {
            path == body
        };
    }
    let mut rest = path;
    let mut segments = body.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if last {
            // The final piece of the body: a prefix of the rest when the pattern had `*`.
            return if segment == "+" {
                let seg_end = rest.find('/').unwrap_or(rest.len());
                if prefix_match {
                    seg_end > 0 || rest.is_empty()
                } else {
                    seg_end == rest.len() && !rest.is_empty()
                }
            } else if prefix_match {
                rest.starts_with(segment)
            } else {
                rest == segment
            };
        }
        let seg_end = match rest.find('/') {
            Some(i) => i,
            None => return false,
        };
        let actual = &rest[..seg_end];
        if segment != "+" && segment != actual {
            return false;
        }
        if segment == "+" && actual.is_empty() {
            return false;
        }
        rest = &rest[seg_end + 1..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(text: &str) -> Acl {
        Acl::compile([&Rules::parse(text).unwrap()])
    }

    #[test]
    fn exact_beats_glob_and_longest_glob_wins() {
        let acl = acl(r#"
            path "secret/*" { capabilities = ["read"] }
            path "secret/data/team/*" { capabilities = ["read", "update"] }
            path "secret/data/team/locked" { capabilities = ["deny"] }
        "#);
        assert!(acl.allows(Operation::Read, "secret/data/other", false));
        assert!(!acl.allows(Operation::Update, "secret/data/other", false));
        assert!(acl.allows(Operation::Update, "secret/data/team/x", false));
        assert!(!acl.allows(Operation::Read, "secret/data/team/locked", false));
        assert!(!acl.allows(Operation::Read, "other/x", false));
    }

    #[test]
    fn plus_matches_exactly_one_segment() {
        let acl = acl(r#"path "secret/+/app" { capabilities = ["read"] }"#);
        assert!(acl.allows(Operation::Read, "secret/data/app", false));
        assert!(!acl.allows(Operation::Read, "secret/data/x/app", false));
        assert!(!acl.allows(Operation::Read, "secret//app", false));
        assert!(!acl.allows(Operation::Read, "secret/data/app2", false));
    }

    #[test]
    fn deny_overrides_across_policies_and_sudo_is_required() {
        let a = Rules::parse(r#"path "sys/rotate" { capabilities = ["update"] }"#).unwrap();
        let b = Rules::parse(
            r#"path "secret/x" { capabilities = ["deny"] }
                                 path "secret/*" { capabilities = ["read"] }"#,
        )
        .unwrap();
        let c = Rules::parse(r#"path "secret/x" { capabilities = ["read"] }"#).unwrap();
        let acl = Acl::compile([&a, &b, &c]);
        assert!(!acl.allows(Operation::Read, "secret/x", false));
        assert!(acl.allows(Operation::Update, "sys/rotate", false));
        assert!(!acl.allows(Operation::Update, "sys/rotate", true));
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(Rules::parse(r#"path "x" { capabilities = ["fly"] }"#).is_err());
        assert!(Rules::parse("path {").is_err());
    }
}
