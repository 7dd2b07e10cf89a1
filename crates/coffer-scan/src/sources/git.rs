//! Git as a source, through the `git` CLI (no libgit2): history (`--git`) and the index
//! (`--staged`).
//!
//! History: `git log --all --raw` names, for every commit oldest first, the blobs it introduced;
//! each blob is kept once with the first commit that carried it (so a finding names the commit
//! that added the secret). `git cat-file --batch` then streams those blobs, which are scanned in
//! parallel in batches.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use rayon::prelude::*;

use super::{is_binary, Options};
use crate::engine::Scanner;
use crate::error::Error;
use crate::finding::Finding;

/// Where a blob was first seen.
struct BlobRef {
    sha: String,
    path: String,
    commit: Option<(String, String, String)>,
}

/// Scans every blob reachable from any ref of the repository at `repo`, once.
pub fn scan_history(scanner: &Scanner, repo: &Path, opts: &Options) -> Result<Vec<Finding>, Error> {
    let out = git(
        repo,
        &[
            "-c",
            "core.quotePath=false",
            "log",
            "--all",
            "--topo-order",
            "--reverse",
            "-m",
            "--raw",
            "--no-abbrev",
            "--no-renames",
            "--format=%x01%H%x02%an <%ae>%x02%aI",
        ],
    )?;
    let mut seen = HashSet::new();
    let mut blobs = Vec::new();
    let mut commit: Option<(String, String, String)> = None;
    for line in out.lines() {
        if let Some(header) = line.strip_prefix('\u{1}') {
            let mut parts = header.split('\u{2}');
            commit = Some((
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
            ));
        } else if let Some((sha, path)) = parse_raw(line) {
            if seen.insert(sha.clone()) {
                blobs.push(BlobRef {
                    sha,
                    path,
                    commit: commit.clone(),
                });
            }
        }
    }
    scan_blobs(scanner, repo, &blobs, opts)
}

/// Scans the staged version of every added, copied, modified or renamed file.
pub fn scan_staged(scanner: &Scanner, repo: &Path, opts: &Options) -> Result<Vec<Finding>, Error> {
    let out = git(
        repo,
        &[
            "-c",
            "core.quotePath=false",
            "diff",
            "--cached",
            "--raw",
            "--no-abbrev",
            "--no-renames",
            "--diff-filter=ACMR",
        ],
    )?;
    let blobs: Vec<BlobRef> = out
        .lines()
        .filter_map(parse_raw)
        .map(|(sha, path)| BlobRef {
            sha,
            path,
            commit: None,
        })
        .collect();
    scan_blobs(scanner, repo, &blobs, opts)
}

/// `:100644 100644 <old> <new> M\t<path>` → (new, path), for regular files only.
fn parse_raw(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix(':')?;
    let (meta, path) = rest.split_once('\t')?;
    let fields: Vec<&str> = meta.split_whitespace().collect();
    let (mode, sha) = (*fields.get(1)?, *fields.get(3)?);
    if !mode.starts_with("100") || sha.bytes().all(|b| b == b'0') {
        return None; // deleted, symlink or submodule
    }
    let path = path
        .strip_prefix('"')
        .and_then(|p| p.strip_suffix('"'))
        .unwrap_or(path);
    Some((sha.to_string(), path.to_string()))
}

fn scan_blobs(
    scanner: &Scanner,
    repo: &Path,
    blobs: &[BlobRef],
    opts: &Options,
) -> Result<Vec<Finding>, Error> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Git(format!("cannot run git: {e}")))?;
    let mut stdin = child.stdin.take().expect("stdin was piped above");
    let shas: Vec<String> = blobs.iter().map(|b| b.sha.clone()).collect();
    // Feed the object names from another thread so that neither pipe fills up and blocks.
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for sha in shas {
            stdin.write_all(sha.as_bytes())?;
            stdin.write_all(b"\n")?;
        }
        Ok(())
    });
    let mut reader = BufReader::with_capacity(
        1 << 20,
        child.stdout.take().expect("stdout was piped above"),
    );
    let mut findings = Vec::new();
    let mut batch: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut batch_bytes = 0;
    let mut header = String::new();
    for (i, blob) in blobs.iter().enumerate() {
        header.clear();
        reader
            .read_line(&mut header)
            .map_err(|e| Error::Git(format!("reading cat-file: {e}")))?;
        let fields: Vec<&str> = header.split_whitespace().collect();
        if fields.get(1) == Some(&"missing") || fields.len() < 3 {
            continue;
        }
        let size: usize = fields[2]
            .parse()
            .map_err(|_| Error::Git("unexpected cat-file output".into()))?;
        let mut buf = vec![0; size + 1];
        reader
            .read_exact(&mut buf)
            .map_err(|e| Error::Git(format!("reading cat-file: {e}")))?;
        buf.truncate(size);
        if size as u64 > opts.max_file_size {
            opts.notice(format_args!(
                "skipped {} in {}: above --max-file-size",
                blob.path,
                short(blob)
            ));
            continue;
        }
        if is_binary(&buf) {
            continue;
        }
        batch_bytes += size;
        batch.push((i, buf));
        if batch_bytes >= BATCH_BYTES {
            findings.extend(scan_batch(scanner, blobs, &batch));
            batch.clear();
            batch_bytes = 0;
        }
    }
    findings.extend(scan_batch(scanner, blobs, &batch));
    drop(reader);
    let _ = writer.join();
    let status = child.wait().map_err(|e| Error::Git(e.to_string()))?;
    if !status.success() {
        return Err(Error::Git(format!("cat-file exited with {status}")));
    }
    Ok(findings)
}

fn scan_batch(scanner: &Scanner, blobs: &[BlobRef], batch: &[(usize, Vec<u8>)]) -> Vec<Finding> {
    batch
        .par_iter()
        .flat_map_iter(|(i, buf)| {
            let blob = &blobs[*i];
            let mut found = scanner.scan(&blob.path, buf);
            if let Some((sha, author, date)) = &blob.commit {
                for f in &mut found {
                    f.commit = Some(sha.clone());
                    f.author = Some(author.clone());
                    f.date = Some(date.clone());
                }
            }
            found
        })
        .collect()
}

fn short(blob: &BlobRef) -> &str {
    blob.commit
        .as_ref()
        .map_or("the index", |c| &c.0[..c.0.len().min(12)])
}

fn git(repo: &Path, args: &[&str]) -> Result<String, Error> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .map_err(|e| Error::Git(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(Error::Git(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Blob bytes collected before a parallel scan.
const BATCH_BYTES: usize = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_raw_keeps_added_and_modified_files_only() {
        let z = "0".repeat(40);
        let a = "a".repeat(40);
        assert_eq!(
            parse_raw(&format!(":000000 100644 {z} {a} A\tsrc/x.py")),
            Some((a.clone(), "src/x.py".into()))
        );
        assert_eq!(
            parse_raw(&format!(":100644 000000 {a} {z} D\tsrc/x.py")),
            None
        );
        assert_eq!(
            parse_raw(&format!(":000000 160000 {z} {a} A\tvendor/sub")),
            None
        );
    }
}
