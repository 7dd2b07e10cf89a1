//! A finding: where a secret is, which rule matched, and a fingerprint that stays the same when
//! the lines around it move (so baselines survive edits).

use serde::Serialize;
use sha2::{Digest, Sha256};

/// One secret found at one place.
///
/// Holds the secret itself, so it does not derive `Debug` (its `Debug` prints `[REDACTED]`).
#[derive(Clone, Serialize)]
pub struct Finding {
    /// The file (or `-` for stdin), relative as given on the command line.
    pub file: String,
    /// 1-based line of the secret's first byte.
    pub line: usize,
    /// 1-based column (in bytes) of the secret's first byte.
    pub column: usize,
    /// The rule id.
    pub rule: String,
    /// What the rule finds.
    pub description: String,
    /// The literal as it appears in the file.
    pub secret: String,
    /// The commit that introduced the blob (with --git).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// That commit's author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// That commit's author date (ISO 8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// sha256 over rule, file and secret (hex, 32 chars); stable across line moves.
    pub fingerprint: String,
    /// The variable the secret is assigned to, when the line says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The value to store when it differs from the literal (a Kubernetes Secret's decoded data).
    #[serde(skip)]
    pub decoded: Option<String>,
    /// Byte range of the literal in the scanned content.
    #[serde(skip)]
    pub start: usize,
    #[serde(skip)]
    pub end: usize,
}

impl Finding {
    /// The secret as it should be stored (decoded when the file holds an encoding of it).
    pub fn value(&self) -> &str {
        self.decoded.as_deref().unwrap_or(&self.secret)
    }

    /// Sets the fingerprint from rule, file and secret.
    pub(crate) fn seal_fingerprint(&mut self) {
        let mut h = Sha256::new();
        h.update(self.rule.as_bytes());
        h.update([0]);
        h.update(self.file.as_bytes());
        h.update([0]);
        h.update(self.secret.as_bytes());
        self.fingerprint = hex::encode(&h.finalize()[..16]);
    }
}

impl std::fmt::Debug for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finding")
            .field("file", &self.file)
            .field("line", &self.line)
            .field("column", &self.column)
            .field("rule", &self.rule)
            .field("secret", &"[REDACTED]")
            .field("commit", &self.commit)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// Shows the first few characters and hides the rest, so people can recognise a secret in a
/// report without the report leaking it.
pub fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    let shown = (n / 5).min(6);
    let head: String = secret.chars().take(shown).collect();
    format!("{head}{}", "*".repeat((n - shown).clamp(3, 12)))
}

/// Orders findings by file, commit, line and column, and drops exact duplicates.
pub fn sort(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| {
        (&a.file, &a.commit, a.line, a.column, &a.rule)
            .cmp(&(&b.file, &b.commit, b.line, b.column, &b.rule))
    });
    findings.dedup_by(|a, b| {
        a.file == b.file
            && a.commit == b.commit
            && a.line == b.line
            && a.column == b.column
            && a.rule == b.rule
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_hides_most_of_the_secret() {
        let m = mask("ghp_abcdefghijklmnopqrstuvwxyz0123456789");
        assert!(m.starts_with("ghp_ab"));
        assert!(!m.contains("xyz"));
        assert_eq!(mask("abc"), "***");
    }
}
