//! What can stop a scan (exit code 2). Per-file read failures are notices, not errors.

use std::path::PathBuf;

/// Why a scan could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rules file did not parse or a rule did not compile.
    #[error("rules {origin}: {reason}")]
    Rules { origin: String, reason: String },
    /// A path could not be read or written.
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, #[source] std::io::Error),
    /// `git` failed or is missing.
    #[error("git: {0}")]
    Git(String),
    /// The report could not be written.
    #[error("writing the report: {0}")]
    Output(#[source] std::io::Error),
    /// A baseline file is not what --write-baseline writes.
    #[error("baseline {path}: {reason}", path = .0.display(), reason = .1)]
    Baseline(PathBuf, String),
    /// --import was given without what it needs, or the server refused.
    #[error("import: {0}")]
    Import(String),
}
