//! The human table: one row per finding, the secret partly masked.

use std::io::{self, Write};

use crate::finding::{mask, Finding};

/// Writes the findings as an aligned table followed by a count.
pub fn write(out: &mut dyn Write, findings: &[Finding]) -> io::Result<()> {
    if findings.is_empty() {
        return writeln!(out, "no secrets found");
    }
    let rows: Vec<[String; 4]> = findings
        .iter()
        .map(|f| {
            let place = format!("{}:{}:{}", f.file, f.line, f.column);
            let origin = match (&f.commit, &f.author, &f.date) {
                (Some(c), Some(a), Some(d)) => format!("{} {} {}", &c[..c.len().min(10)], a, d),
                _ => String::new(),
            };
            [place, f.rule.clone(), mask(&f.secret), origin]
        })
        .collect();
    let headers = ["LOCATION", "RULE", "SECRET", "COMMIT"];
    let show_commit = rows.iter().any(|r| !r[3].is_empty());
    let cols = if show_commit { 4 } else { 3 };
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(headers[i].len())
        })
        .collect();
    let line = |cells: [&str; 4]| {
        let mut s = String::new();
        for i in 0..cols {
            if i + 1 == cols {
                s.push_str(cells[i]);
            } else {
                s.push_str(&format!("{:<w$}  ", cells[i], w = widths[i]));
            }
        }
        s
    };
    writeln!(out, "{}", line(headers))?;
    for r in &rows {
        writeln!(out, "{}", line([&r[0], &r[1], &r[2], &r[3]]))?;
    }
    writeln!(out, "\n{} secret(s) found", findings.len())
}
