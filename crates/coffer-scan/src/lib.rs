//! coffer-scan: finds hardcoded secrets in files, git history and stdin, and can move them into
//! the vault.
//!
//! Owns the rules (a TOML file compiled in, `rules/default.toml`, plus user files), the detection
//! engine (an Aho-Corasick keyword pass over each file, then only the rules whose keywords occur
//! run their regex, on the lines around the hit), the sources (a `.gitignore`-aware parallel walk,
//! `git` history and the index through the `git` CLI, stdin), the reports (table, JSON, SARIF),
//! baselines, and `--import` (KV v2 over the Vault HTTP API).
//!
//! It must not depend on the server crates: `--import` speaks HTTP like any other Vault client.
//! Files are read with `std::fs` (not memory-mapped: mapping needs `unsafe`, which the workspace
//! forbids; reading a file into a buffer is as fast on the sizes we scan).

mod baseline;
mod checks;
mod engine;
mod error;
mod finding;
pub mod import;
mod report;
mod rules;
mod sources;

use std::io::Write;
use std::path::PathBuf;

pub use engine::Scanner;
pub use error::Error;
pub use finding::Finding;
pub use rules::RuleSet;

/// Helpers for tests and corpus generators outside this crate.
#[doc(hidden)]
pub mod testkit {
    pub use crate::checks::with_crc32_checksum;
}

/// The arguments of `coffer scan`.
#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Files or directories to scan (`-` reads stdin); defaults to the current directory.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Scan every commit of the repository's history (each blob once) instead of the work tree.
    #[arg(long, conflicts_with = "staged")]
    pub git: bool,

    /// Scan what git is about to commit (the staged version of each added or modified file).
    #[arg(long)]
    pub staged: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the report to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Mask secrets in JSON output too (the table and SARIF always mask them).
    #[arg(long)]
    pub redact: bool,

    /// Additional rules file (TOML, same format as the built-in rules); may be repeated.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,

    /// Ignore findings whose fingerprint is in this baseline file.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Write every current finding's fingerprint to this baseline file.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,

    /// Skip files larger than this many megabytes (with a notice).
    #[arg(long, value_name = "MB", default_value_t = 25)]
    pub max_file_size: u64,

    /// Also scan files that .gitignore and .ignore files exclude.
    #[arg(long)]
    pub no_ignore: bool,

    /// Do not print notices about skipped files.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Store each distinct secret found in a KV v2 mount, under `<mount>/<prefix>`
    /// (for example `secret/myapp`).
    #[arg(long = "import", value_name = "MOUNT/PREFIX")]
    pub import: Option<String>,

    /// With --import: replace each literal in its file by a `coffer://` reference once stored.
    #[arg(long, requires = "import")]
    pub rewrite: bool,

    /// Server address for --import (else COFFER_ADDR, then VAULT_ADDR).
    #[arg(long, value_name = "URL")]
    pub address: Option<String>,

    /// Token for --import (else COFFER_TOKEN, then VAULT_TOKEN).
    #[arg(long, value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// How findings are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A table for people, secrets partly masked.
    Table,
    /// An array of findings.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

/// Runs a scan; returns the process exit code (0 nothing found, 1 findings, 2 error).
pub fn run(args: ScanArgs) -> i32 {
    match run_inner(&args) {
        Ok(found) => i32::from(found),
        Err(e) => {
            eprintln!("coffer scan: {e}");
            2
        }
    }
}

/// Scans what `args` names and reports; `Ok(true)` when anything was found.
fn run_inner(args: &ScanArgs) -> Result<bool, Error> {
    let mut rules = RuleSet::builtin()?;
    for file in &args.rules {
        let text = std::fs::read_to_string(file).map_err(|e| Error::Io(file.clone(), e))?;
        rules = rules.with_extra(&text, &file.display().to_string())?;
    }
    let scanner = Scanner::new(rules);
    let opts = sources::Options {
        max_file_size: args.max_file_size.saturating_mul(1024 * 1024),
        respect_ignore: !args.no_ignore,
        quiet: args.quiet,
    };
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let mut findings = if args.git {
        let mut all = Vec::new();
        for p in &paths {
            all.extend(sources::git::scan_history(&scanner, p, &opts)?);
        }
        all
    } else if args.staged {
        let mut all = Vec::new();
        for p in &paths {
            all.extend(sources::git::scan_staged(&scanner, p, &opts)?);
        }
        all
    } else {
        sources::scan_paths(&scanner, &paths, &opts)?
    };
    finding::sort(&mut findings);

    if let Some(path) = &args.write_baseline {
        baseline::write(path, &findings)?;
    }
    if let Some(path) = &args.baseline {
        let known = baseline::read(path)?;
        findings.retain(|f| !known.contains(&f.fingerprint));
    }

    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| Error::Io(p.clone(), e))?),
        None => Box::new(std::io::stdout().lock()),
    };
    match args.format {
        Format::Table => report::table::write(&mut out, &findings),
        Format::Json => report::json::write(&mut out, &findings, args.redact),
        Format::Sarif => report::sarif::write(&mut out, &findings, scanner.rules()),
    }
    .and_then(|()| out.flush())
    .map_err(Error::Output)?;

    if let Some(target) = &args.import {
        let server = import::Server::from_args(args.address.as_deref(), args.token.as_deref())?;
        let target = import::Target::parse(target)?;
        let plan = import::plan(&findings, &target);
        import::store(&server, &target, &plan)?;
        for entry in &plan.entries {
            eprintln!(
                "stored {} key(s) at {}/{}: {}",
                entry.keys.len(),
                target.mount,
                entry.path,
                entry
                    .keys
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if args.rewrite {
            let changed = import::rewrite(&findings, &plan, &target)?;
            for (file, n) in &changed {
                eprintln!("rewrote {n} literal(s) in {}", file.display());
            }
            eprintln!("{} file(s) changed", changed.len());
        }
    }
    Ok(!findings.is_empty())
}
