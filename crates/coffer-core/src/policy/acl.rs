//! A compiled set of policies and the check of one request against it. Matching follows
//! OpenBao: an exact rule wins; otherwise, among the patterns that match (a trailing `*` for a
//! prefix, `+` for one segment), the most specific wins.

use std::collections::HashMap;

use coffer_sdk::{Error, Operation};
use serde::Deserialize;
use serde_json::{Map, Value};

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

/// What one path rule grants: capabilities, constraints on the request's parameters, and bounds
/// on response wrapping.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    pub caps: Capabilities,
    /// Parameters every request must carry.
    required: Vec<String>,
    /// When not empty, the only parameters allowed (`*` allows any), each with the values it
    /// may take (none listed: any value).
    allowed: HashMap<String, Vec<Value>>,
    /// Parameters refused (`*`: all), with the values refused (none listed: any value).
    denied: HashMap<String, Vec<Value>>,
    min_wrapping_ttl: u64,
    max_wrapping_ttl: u64,
}

impl Permissions {
    fn merge(&mut self, other: &Permissions) {
        self.caps = self.caps.union(other.caps);
        self.required.extend(other.required.iter().cloned());
        for (map, from) in [
            (&mut self.allowed, &other.allowed),
            (&mut self.denied, &other.denied),
        ] {
            for (k, v) in from {
                map.entry(k.clone()).or_default().extend(v.iter().cloned());
            }
        }
        // As OpenBao: the looser of two wrapping bounds wins.
        self.min_wrapping_ttl = min_nonzero(self.min_wrapping_ttl, other.min_wrapping_ttl);
        self.max_wrapping_ttl = self.max_wrapping_ttl.max(other.max_wrapping_ttl);
    }

    /// Whether the request's parameters and wrapping satisfy this rule.
    fn admits(&self, data: &Map<String, Value>, wrap_ttl: Option<u64>) -> bool {
        if self.required.iter().any(|k| !data.contains_key(k)) {
            return false;
        }
        for (key, value) in data {
            let denied = self.denied.get(key).or_else(|| self.denied.get("*"));
            if let Some(values) = denied {
                if values.is_empty() || values.iter().any(|d| value_matches(d, value)) {
                    return false;
                }
            }
            if !self.allowed.is_empty() {
                match self.allowed.get(key).or_else(|| self.allowed.get("*")) {
                    None => return false,
                    Some(values)
                        if !values.is_empty()
                            && !values.iter().any(|a| value_matches(a, value)) =>
                    {
                        return false
                    }
                    Some(_) => {}
                }
            }
        }
        if self.min_wrapping_ttl > 0 || self.max_wrapping_ttl > 0 {
            let Some(ttl) = wrap_ttl else { return false };
            if ttl < self.min_wrapping_ttl
                || (self.max_wrapping_ttl > 0 && ttl > self.max_wrapping_ttl)
            {
                return false;
            }
        }
        true
    }
}

fn min_nonzero(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

/// A policy value matches a request value when equal, or as a glob with a leading or trailing
/// `*` on strings; a list in the request matches when every element does.
fn value_matches(policy: &Value, actual: &Value) -> bool {
    match (policy, actual) {
        (_, Value::Array(items)) => items.iter().all(|item| value_matches(policy, item)),
        (Value::String(p), Value::String(a)) => {
            if p == "*" {
                true
            } else if let Some(prefix) = p.strip_suffix('*') {
                a.starts_with(prefix)
            } else if let Some(suffix) = p.strip_prefix('*') {
                a.ends_with(suffix)
            } else {
                p == a
            }
        }
        (Value::String(p), Value::Number(n)) => {
            p.parse::<serde_json::Number>().is_ok_and(|p| p == *n)
        }
        (Value::String(p), Value::Bool(b)) => p.parse::<bool>().is_ok_and(|p| p == *b),
        (p, a) => p == a,
    }
}

/// The rules of one policy, as parsed from HCL.
#[derive(Debug, Clone)]
pub struct Rules {
    paths: Vec<(String, Permissions)>,
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
            #[serde(default)]
            required_parameters: Vec<String>,
            #[serde(default)]
            allowed_parameters: HashMap<String, Vec<Value>>,
            #[serde(default)]
            denied_parameters: HashMap<String, Vec<Value>>,
            #[serde(default)]
            min_wrapping_ttl: Option<Value>,
            #[serde(default)]
            max_wrapping_ttl: Option<Value>,
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
            let ttl = |v: &Option<Value>| -> Result<u64, Error> {
                v.as_ref()
                    .map_or(Ok(0), coffer_sdk::duration::parse_seconds)
            };
            let permissions = Permissions {
                caps,
                required: block.required_parameters,
                allowed: block.allowed_parameters,
                denied: block.denied_parameters,
                min_wrapping_ttl: ttl(&block.min_wrapping_ttl)?,
                max_wrapping_ttl: ttl(&block.max_wrapping_ttl)?,
            };
            if permissions.max_wrapping_ttl > 0
                && permissions.min_wrapping_ttl > permissions.max_wrapping_ttl
            {
                return Err(Error::invalid(format!(
                    "max_wrapping_ttl ({}) cannot be less than min_wrapping_ttl ({}) on path {pattern:?}",
                    permissions.max_wrapping_ttl, permissions.min_wrapping_ttl
                )));
            }
            paths.push((pattern.trim_start_matches('/').to_owned(), permissions));
        }
        Ok(Rules { paths })
    }
}

/// The merged rules of a token's policies.
#[derive(Debug, Default)]
pub struct Acl {
    root: bool,
    exact: HashMap<String, Permissions>,
    /// Patterns with `*` or `+`, most specific first.
    patterns: Vec<Pattern>,
}

/// A wildcard pattern with the literal text before its first wildcard, which a path must start
/// with: one cheap comparison rules out most patterns before any glob matching.
#[derive(Debug)]
struct Pattern {
    text: String,
    literal_prefix: usize,
    permissions: Permissions,
}

impl Acl {
    /// The ACL of the `root` policy: everything allowed.
    pub fn root() -> Self {
        Acl {
            root: true,
            ..Acl::default()
        }
    }

    /// Merges policies: the permissions of equal patterns add up, and `deny` overrides.
    pub fn compile<'a>(policies: impl IntoIterator<Item = &'a Rules>) -> Self {
        let mut merged: HashMap<String, Permissions> = HashMap::new();
        for rules in policies {
            for (pattern, permissions) in &rules.paths {
                merged
                    .entry(pattern.clone())
                    .or_default()
                    .merge(permissions);
            }
        }
        let mut acl = Acl::default();
        for (text, mut permissions) in merged {
            if permissions.caps.contains(Capabilities::DENY) {
                permissions.caps = Capabilities::DENY;
            }
            if text.contains('+') || text.ends_with('*') {
                let literal_prefix = text.find(['+', '*']).unwrap_or(text.len());
                acl.patterns.push(Pattern {
                    text,
                    literal_prefix,
                    permissions,
                });
            } else {
                acl.exact.insert(text, permissions);
            }
        }
        acl.patterns
            .sort_by(|a, b| specificity(&b.text).cmp(&specificity(&a.text)));
        acl
    }

    /// The rule that governs `path`: the exact one, else the most specific pattern.
    fn permissions(&self, path: &str) -> Option<&Permissions> {
        self.exact.get(path).or_else(|| {
            self.patterns
                .iter()
                .find(|p| {
                    path.as_bytes()
                        .starts_with(&p.text.as_bytes()[..p.literal_prefix])
                        && glob_match(&p.text, path)
                })
                .map(|p| &p.permissions)
        })
    }

    /// The capabilities granted on `path`.
    pub fn capabilities(&self, path: &str) -> Capabilities {
        if self.root {
            return Capabilities(0b1011_1111);
        }
        self.permissions(path)
            .map_or(Capabilities::default(), |p| p.caps)
    }

    /// Whether `op` on `path` is allowed; `sudo` additionally requires the sudo capability.
    pub fn allows(&self, op: Operation, path: &str, sudo: bool) -> bool {
        self.allows_request(op, path, sudo, &Map::new(), None)
    }

    /// As `allows`, also checking the request's parameters against the rule's required,
    /// allowed and denied parameters, and its wrapping TTL against the rule's bounds.
    pub fn allows_request(
        &self,
        op: Operation,
        path: &str,
        sudo: bool,
        data: &Map<String, Value>,
        wrap_ttl: Option<u64>,
    ) -> bool {
        if self.root {
            return true;
        }
        let Some(permissions) = self.permissions(path) else {
            return false;
        };
        let caps = permissions.caps;
        if caps.contains(Capabilities::DENY) || (sudo && !caps.contains(Capabilities::SUDO)) {
            return false;
        }
        caps.contains(Capabilities::for_operation(op)) && permissions.admits(data, wrap_ttl)
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
    fn parameter_constraints_and_wrapping_bounds_are_enforced() {
        let acl = acl(r#"
            path "secret/data/app" {
              capabilities = ["update"]
              required_parameters = ["owner"]
              allowed_parameters = { "owner" = [], "env" = ["dev", "stage*"] }
              denied_parameters = { "env" = ["stage-prod"] }
            }
            path "secret/data/wrapped" {
              capabilities = ["read"]
              min_wrapping_ttl = "1m"
              max_wrapping_ttl = "1h"
            }
        "#);
        let body = |v: serde_json::Value| v.as_object().unwrap().clone();
        let ok =
            |data| acl.allows_request(Operation::Update, "secret/data/app", false, &data, None);
        assert!(ok(body(serde_json::json!({"owner": "a", "env": "dev"}))));
        assert!(ok(body(
            serde_json::json!({"owner": "a", "env": "stage-2"})
        )));
        assert!(
            !ok(body(serde_json::json!({"env": "dev"}))),
            "owner is required"
        );
        assert!(
            !ok(body(serde_json::json!({"owner": "a", "env": "prod"}))),
            "env value not allowed"
        );
        assert!(
            !ok(body(serde_json::json!({"owner": "a", "env": "stage-prod"}))),
            "denied value"
        );
        assert!(
            !ok(body(serde_json::json!({"owner": "a", "extra": 1}))),
            "unknown parameter"
        );

        let read = |ttl| {
            acl.allows_request(
                Operation::Read,
                "secret/data/wrapped",
                false,
                &Map::new(),
                ttl,
            )
        };
        assert!(!read(None), "wrapping is required");
        assert!(!read(Some(30)));
        assert!(read(Some(300)));
        assert!(!read(Some(7200)));
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(Rules::parse(r#"path "x" { capabilities = ["fly"] }"#).is_err());
        assert!(Rules::parse("path {").is_err());
    }
}
