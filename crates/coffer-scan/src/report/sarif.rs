//! SARIF 2.1.0 (OASIS): one run, the rules as `tool.driver.rules`, a result per finding with its
//! location and fingerprint. Secrets are masked: SARIF files get uploaded to dashboards.

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::finding::{mask, Finding};
use crate::rules::RuleSet;

/// Writes a SARIF 2.1.0 log.
pub fn write(out: &mut dyn Write, findings: &[Finding], rules: &RuleSet) -> io::Result<()> {
    let mut rule_list: Vec<Value> = rules
        .rules()
        .iter()
        .map(|r| json!({"id": r.id, "name": r.id, "shortDescription": {"text": r.description}}))
        .collect();
    rule_list.push(
        json!({"id": "kubernetes-secret", "name": "kubernetes-secret",
        "shortDescription": {"text": "Kubernetes Secret data holding a secret"}}),
    );
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut result = json!({
                "ruleId": f.rule,
                "level": "error",
                "message": {"text": format!("{}: {}", f.description, mask(&f.secret))},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": f.file},
                    "region": {"startLine": f.line, "startColumn": f.column,
                               "endColumn": f.column + f.secret.len()}
                }}],
                "partialFingerprints": {"cofferFingerprint/v1": f.fingerprint},
            });
            if let Some(commit) = &f.commit {
                result["properties"] =
                    json!({"commit": commit, "author": f.author, "date": f.date});
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "coffer-scan",
                "informationUri": "https://github.com/coffer/coffer",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rule_list,
            }},
            "results": results,
        }]
    });
    serde_json::to_writer_pretty(&mut *out, &log).map_err(io::Error::other)?;
    writeln!(out)
}
