//! Precision and recall on a generated corpus of realistic files (see `support/corpus.rs`).

mod support;

use std::collections::HashSet;

use coffer_scan::{RuleSet, Scanner};
use support::corpus;

#[test]
fn precision_and_recall_are_at_least_095_on_the_generated_corpus() {
    let c = corpus::generate(0x5EC2E7, 600);
    assert!(
        c.labels.len() > 300,
        "the corpus holds enough secrets: {}",
        c.labels.len()
    );
    let scanner = Scanner::new(RuleSet::builtin().unwrap());
    let truth: HashSet<(String, usize)> =
        c.labels.iter().map(|l| (l.file.clone(), l.line)).collect();
    let mut reported = HashSet::new();
    for (path, content) in &c.files {
        for f in scanner.scan(path, content.as_bytes()) {
            reported.insert((f.file.clone(), f.line));
        }
    }
    let tp = reported.intersection(&truth).count();
    let fps: Vec<_> = reported.difference(&truth).collect();
    let misses: Vec<_> = c
        .labels
        .iter()
        .filter(|l| !reported.contains(&(l.file.clone(), l.line)))
        .collect();
    let precision = tp as f64 / reported.len().max(1) as f64;
    let recall = tp as f64 / truth.len() as f64;
    eprintln!(
        "labels {} reported {} tp {tp} precision {precision:.3} recall {recall:.3}",
        truth.len(),
        reported.len()
    );
    for fp in fps.iter().take(15) {
        let line = c
            .files
            .iter()
            .find(|f| f.0 == fp.0)
            .and_then(|f| f.1.lines().nth(fp.1 - 1))
            .unwrap_or("");
        eprintln!(
            "false positive {}:{}: {}",
            fp.0,
            fp.1,
            line.chars().take(140).collect::<String>()
        );
    }
    for m in misses.iter().take(15) {
        let line = c
            .files
            .iter()
            .find(|f| f.0 == m.file)
            .and_then(|f| f.1.lines().nth(m.line - 1))
            .unwrap_or("");
        eprintln!(
            "missed {} {}:{}: {}",
            m.kind,
            m.file,
            m.line,
            line.chars().take(140).collect::<String>()
        );
    }
    assert!(precision >= 0.95, "precision {precision:.3}");
    assert!(recall >= 0.95, "recall {recall:.3}");
}
