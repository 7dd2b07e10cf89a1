//! Where content comes from: files and directories (a parallel, `.gitignore`-aware walk), stdin,
//! and git (history and the index, in `git.rs`).

pub mod git;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ignore::{WalkBuilder, WalkState};

use crate::engine::Scanner;
use crate::error::Error;
use crate::finding::Finding;

/// What every source needs to know.
pub struct Options {
    /// Files above this many bytes are skipped with a notice.
    pub max_file_size: u64,
    /// Honour .gitignore, .ignore and git's exclude files.
    pub respect_ignore: bool,
    /// No notices on stderr.
    pub quiet: bool,
}

impl Options {
    pub(crate) fn notice(&self, msg: std::fmt::Arguments<'_>) {
        if !self.quiet {
            eprintln!("coffer scan: {msg}");
        }
    }
}

/// Scans files, directories and `-` (stdin).
pub fn scan_paths(
    scanner: &Scanner,
    paths: &[PathBuf],
    opts: &Options,
) -> Result<Vec<Finding>, Error> {
    let mut findings = Vec::new();
    let mut roots = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Error::Io(p.clone(), e))?;
            findings.extend(scan_buffer(scanner, "-", &buf, opts));
        } else if !p.exists() {
            return Err(Error::Io(
                p.clone(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            ));
        } else {
            roots.push(p.clone());
        }
    }
    if roots.is_empty() {
        return Ok(findings);
    }
    let mut builder = WalkBuilder::new(&roots[0]);
    for r in &roots[1..] {
        builder.add(r);
    }
    builder
        .hidden(false)
        .git_ignore(opts.respect_ignore)
        .git_global(opts.respect_ignore)
        .git_exclude(opts.respect_ignore)
        .ignore(opts.respect_ignore)
        .parents(opts.respect_ignore)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git");
    let found = Mutex::new(findings);
    builder.build_parallel().run(|| {
        let found = &found;
        Box::new(move |entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    opts.notice(format_args!("skipped: {e}"));
                    return WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let local = scan_file(scanner, entry.path(), opts);
            if !local.is_empty() {
                found
                    .lock()
                    .expect("no thread panics while holding the findings lock")
                    .extend(local);
            }
            WalkState::Continue
        })
    });
    Ok(found
        .into_inner()
        .expect("the walk has ended, so no thread holds the lock"))
}

/// Reads and scans one file; unreadable, binary and huge files give a notice and no findings.
pub fn scan_file(scanner: &Scanner, path: &Path, opts: &Options) -> Vec<Finding> {
    let name = display_path(path);
    match std::fs::metadata(path) {
        Ok(m) if m.len() > opts.max_file_size => {
            opts.notice(format_args!(
                "skipped {name}: {} MB is above --max-file-size",
                m.len() >> 20
            ));
            return Vec::new();
        }
        Err(e) => {
            opts.notice(format_args!("skipped {name}: {e}"));
            return Vec::new();
        }
        Ok(_) => {}
    }
    match std::fs::read(path) {
        Ok(buf) => scan_buffer(scanner, &name, &buf, opts),
        Err(e) => {
            opts.notice(format_args!("skipped {name}: {e}"));
            Vec::new()
        }
    }
}

/// Scans one buffer unless it is binary.
pub fn scan_buffer(scanner: &Scanner, name: &str, buf: &[u8], opts: &Options) -> Vec<Finding> {
    if is_binary(buf) {
        opts.notice(format_args!("skipped {name}: binary"));
        return Vec::new();
    }
    scanner.scan(name, buf)
}

/// A NUL byte in the first 8 KiB means binary (git's own heuristic).
pub fn is_binary(buf: &[u8]) -> bool {
    memchr::memchr(0, &buf[..buf.len().min(8192)]).is_some()
}

fn display_path(path: &Path) -> String {
    let s = path.to_string_lossy();
    s.strip_prefix("./").unwrap_or(&s).to_string()
}
