//! Baselines: the fingerprints of findings a team has accepted, so that a scanner adopted on an
//! existing repository reports only what is new. The file holds fingerprints and locations,
//! never secrets.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::finding::Finding;

#[derive(Serialize, Deserialize)]
struct Entry {
    fingerprint: String,
    rule: String,
    file: String,
    line: usize,
}

#[derive(Serialize, Deserialize)]
struct Baseline {
    version: u32,
    findings: Vec<Entry>,
}

/// Writes every finding's fingerprint (and where it was) to `path`.
pub fn write(path: &Path, findings: &[Finding]) -> Result<(), Error> {
    let b = Baseline {
        version: 1,
        findings: findings
            .iter()
            .map(|f| Entry {
                fingerprint: f.fingerprint.clone(),
                rule: f.rule.clone(),
                file: f.file.clone(),
                line: f.line,
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&b)
        .map_err(|e| Error::Baseline(path.to_path_buf(), e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| Error::Io(path.to_path_buf(), e))
}

/// Reads the fingerprints of a baseline written by [`write`].
pub fn read(path: &Path) -> Result<HashSet<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let b: Baseline = serde_json::from_str(&text)
        .map_err(|e| Error::Baseline(path.to_path_buf(), e.to_string()))?;
    Ok(b.findings.into_iter().map(|e| e.fingerprint).collect())
}
