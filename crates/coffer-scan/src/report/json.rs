//! JSON: an array of findings (file, line, column, rule, secret, commit/author/date from history,
//! fingerprint).

use std::io::{self, Write};

use crate::finding::{mask, Finding};

/// Writes the findings as a pretty JSON array; `redact` masks the secrets.
pub fn write(out: &mut dyn Write, findings: &[Finding], redact: bool) -> io::Result<()> {
    let shown: Vec<Finding> = findings
        .iter()
        .map(|f| {
            let mut f = f.clone();
            if redact {
                f.secret = mask(&f.secret);
            }
            f
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &shown).map_err(io::Error::other)?;
    writeln!(out)
}
