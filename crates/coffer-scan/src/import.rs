//! `--import`: moves what a scan found into a KV v2 mount over the Vault HTTP API, and with
//! `--rewrite` replaces each literal by a `coffer://<mount>/<path>#<key>` reference.
//!
//! Three steps a test can call one by one: [`plan`] (names every distinct secret: the KV path
//! comes from the file, the key from the variable it was assigned to), [`store`] (one
//! `POST /v1/<mount>/data/<path>` per path, `{"data": {...}}`, the `X-Vault-Token` header), and
//! [`rewrite`] (only after `store` succeeded: nothing is rewritten unless stored first).
//! Secret values are never printed; errors name paths and statuses only.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::error::Error;
use crate::finding::Finding;

/// A server to import into.
pub struct Server {
    /// Base address, e.g. `http://127.0.0.1:8200`, without a trailing slash.
    pub address: String,
    token: SecretString,
}

/// Where secrets go: a KV v2 mount and a path prefix inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub mount: String,
    pub prefix: String,
}

/// Every distinct secret, named; built by [`plan`].
pub struct Plan {
    /// One KV entry per path.
    pub entries: Vec<Entry>,
    /// For each finding (by index in the slice given to [`plan`]), its entry and key, if stored.
    pub placement: Vec<Option<(usize, usize)>>,
}

/// One KV v2 secret: a path under the mount and its keys.
pub struct Entry {
    /// The path under the mount (the prefix included).
    pub path: String,
    pub keys: Vec<Key>,
}

/// One key of an entry. No `Debug`: it holds the secret.
pub struct Key {
    pub name: String,
    value: SecretString,
}

impl Server {
    /// A server from explicit values, else `COFFER_ADDR`/`COFFER_TOKEN`, else
    /// `VAULT_ADDR`/`VAULT_TOKEN`.
    pub fn from_args(address: Option<&str>, token: Option<&str>) -> Result<Self, Error> {
        let env = |a: &str, b: &str| {
            std::env::var(a)
                .or_else(|_| std::env::var(b))
                .ok()
                .filter(|v| !v.is_empty())
        };
        let address = address
            .map(str::to_string)
            .or_else(|| env("COFFER_ADDR", "VAULT_ADDR"))
            .ok_or_else(|| {
                Error::Import("no server address: use --address or COFFER_ADDR".into())
            })?;
        let token = token
            .map(str::to_string)
            .or_else(|| env("COFFER_TOKEN", "VAULT_TOKEN"))
            .ok_or_else(|| Error::Import("no token: use --token or COFFER_TOKEN".into()))?;
        Ok(Self::new(&address, SecretString::from(token)))
    }

    /// A server at `address` used with `token`.
    pub fn new(address: &str, token: SecretString) -> Self {
        Server {
            address: address.trim_end_matches('/').to_string(),
            token,
        }
    }
}

impl Target {
    /// Parses `secret/myapp` (mount `secret`, prefix `myapp`) or `secret`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim_matches('/');
        let (mount, prefix) = s.split_once('/').unwrap_or((s, ""));
        if mount.is_empty() {
            return Err(Error::Import(
                "--import needs a mount, e.g. secret/myapp".into(),
            ));
        }
        Ok(Target {
            mount: mount.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The reference that `coffer run` resolves: `coffer://<mount>/<path>#<key>`.
    pub fn reference(&self, path: &str, key: &str) -> String {
        format!("coffer://{}/{}#{}", self.mount, path, key)
    }
}

impl Key {
    /// The value to store.
    pub fn expose_value(&self) -> &str {
        self.value.expose_secret()
    }
}

/// Names each distinct secret: path `<prefix>/<file without extension>`, key the variable name
/// (or the rule id); one secret found in several places is stored once.
pub fn plan(findings: &[Finding], target: &Target) -> Plan {
    let mut entries: Vec<Entry> = Vec::new();
    let mut by_path: HashMap<String, usize> = HashMap::new();
    let mut by_value: HashMap<String, (usize, usize)> = HashMap::new();
    let mut placement = Vec::with_capacity(findings.len());
    for f in findings {
        let value = f.value();
        if let Some(place) = by_value.get(value) {
            placement.push(Some(*place));
            continue;
        }
        let path = kv_path(&target.prefix, &f.file);
        let e = *by_path.entry(path.clone()).or_insert_with(|| {
            entries.push(Entry {
                path,
                keys: Vec::new(),
            });
            entries.len() - 1
        });
        let base = sanitize_key(f.name.as_deref().unwrap_or(&f.rule));
        let mut name = base.clone();
        let mut n = 2;
        while entries[e].keys.iter().any(|k| k.name == name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        entries[e].keys.push(Key {
            name,
            value: SecretString::from(value.to_string()),
        });
        let place = (e, entries[e].keys.len() - 1);
        by_value.insert(value.to_string(), place);
        placement.push(Some(place));
    }
    Plan { entries, placement }
}

/// Writes every entry with `POST {address}/v1/<mount>/data/<path>`; stops at the first refusal.
pub fn store(server: &Server, target: &Target, plan: &Plan) -> Result<(), Error> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Import(format!("http client: {e}")))?;
    for entry in &plan.entries {
        let data: BTreeMap<&str, &str> = entry
            .keys
            .iter()
            .map(|k| (k.name.as_str(), k.expose_value()))
            .collect();
        let url = format!("{}/v1/{}/data/{}", server.address, target.mount, entry.path);
        let resp = client
            .post(&url)
            .header("X-Vault-Token", server.token.expose_secret())
            .json(&serde_json::json!({ "data": data }))
            .send()
            .map_err(|e| {
                Error::Import(format!(
                    "{}/{}: {}",
                    target.mount,
                    entry.path,
                    e.without_url()
                ))
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body: serde_json::Value = resp.json().unwrap_or_default();
            let errors = body
                .get("errors")
                .map(|e| e.to_string())
                .unwrap_or_default();
            return Err(Error::Import(format!(
                "{}/{}: server answered {status} {errors}",
                target.mount, entry.path
            )));
        }
    }
    Ok(())
}

/// Replaces each stored literal in its file by its `coffer://` reference; returns the files
/// changed and how many literals each. Findings from history, stdin, and encoded values
/// (Kubernetes Secret data, which must stay base64) are left alone. A literal is replaced only
/// if the file still holds it at the recorded place.
pub fn rewrite(
    findings: &[Finding],
    plan: &Plan,
    target: &Target,
) -> Result<Vec<(PathBuf, usize)>, Error> {
    let mut per_file: BTreeMap<&str, Vec<(usize, usize, String, &str)>> = BTreeMap::new();
    for (f, place) in findings.iter().zip(&plan.placement) {
        let Some((e, k)) = place else { continue };
        if f.commit.is_some() || f.file == "-" || f.decoded.is_some() {
            continue;
        }
        let entry = &plan.entries[*e];
        let reference = target.reference(&entry.path, &entry.keys[*k].name);
        per_file
            .entry(&f.file)
            .or_default()
            .push((f.start, f.end, reference, &f.secret));
    }
    let mut changed = Vec::new();
    for (file, mut edits) in per_file {
        let path = PathBuf::from(file);
        let mut bytes = std::fs::read(&path).map_err(|e| Error::Io(path.clone(), e))?;
        edits.sort_by_key(|e| std::cmp::Reverse(e.0));
        edits.dedup_by_key(|e| e.0);
        let mut n = 0;
        let mut last_start = usize::MAX;
        for (start, end, reference, secret) in edits {
            if end > last_start || bytes.get(start..end) != Some(secret.as_bytes()) {
                continue;
            }
            bytes.splice(start..end, reference.bytes());
            last_start = start;
            n += 1;
        }
        if n > 0 {
            std::fs::write(&path, &bytes).map_err(|e| Error::Io(path.clone(), e))?;
            changed.push((path, n));
        }
    }
    Ok(changed)
}

/// `<prefix>/<file path without extension>`, each segment reduced to `[A-Za-z0-9_-]`.
fn kv_path(prefix: &str, file: &str) -> String {
    let file = if file == "-" { "stdin" } else { file };
    let mut segments: Vec<String> = file
        .split(['/', '\\'])
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .map(str::to_string)
        .collect();
    if let Some(last) = segments.last_mut() {
        let stem = match last.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem.to_string(),
            _ => last.trim_start_matches('.').to_string(),
        };
        *last = stem;
    }
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let mut parts: Vec<String> = Vec::new();
    if !prefix.is_empty() {
        parts.push(prefix.to_string());
    }
    parts.extend(segments.iter().map(|s| clean(s)).filter(|s| !s.is_empty()));
    parts.join("/")
}

fn sanitize_key(name: &str) -> String {
    let last = name
        .rsplit(['.', '[', ']'])
        .find(|s| !s.is_empty())
        .unwrap_or(name);
    let s: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "secret".to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(file: &str, name: Option<&str>, secret: &str) -> Finding {
        Finding {
            file: file.into(),
            line: 1,
            column: 1,
            rule: "generic-secret".into(),
            description: String::new(),
            secret: secret.into(),
            commit: None,
            author: None,
            date: None,
            fingerprint: String::new(),
            name: name.map(str::to_string),
            decoded: None,
            start: 0,
            end: secret.len(),
        }
    }

    #[test]
    fn plan_names_by_file_and_variable_and_stores_each_value_once() {
        let t = Target::parse("secret/myapp").unwrap();
        assert_eq!(
            t,
            Target {
                mount: "secret".into(),
                prefix: "myapp".into()
            }
        );
        let fs = [
            finding("./config/db.env", Some("DB_PASSWORD"), "v1"),
            finding("config/db.env", Some("API_TOKEN"), "v2"),
            finding("src/app.py", Some("db.password"), "v1"),
            finding(".env", Some("DB_PASSWORD"), "v3"),
            finding(".env", Some("DB_PASSWORD"), "v4"),
        ];
        let p = plan(&fs, &t);
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.entries[0].path, "myapp/config/db");
        assert_eq!(
            p.entries[0]
                .keys
                .iter()
                .map(|k| k.name.as_str())
                .collect::<Vec<_>>(),
            ["DB_PASSWORD", "API_TOKEN"]
        );
        assert_eq!(p.placement[2], Some((0, 0)), "same value, stored once");
        assert_eq!(p.entries[1].path, "myapp/env");
        assert_eq!(p.entries[1].keys[1].name, "DB_PASSWORD_2");
        assert_eq!(
            t.reference("myapp/config/db", "DB_PASSWORD"),
            "coffer://secret/myapp/config/db#DB_PASSWORD"
        );
    }

    #[test]
    fn rewrite_replaces_only_the_literal_still_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.env");
        std::fs::write(&file, "A=one-secret-value\nB=two\n").unwrap();
        let name = file.to_string_lossy().to_string();
        let mut f1 = finding(&name, Some("A"), "one-secret-value");
        f1.start = 2;
        f1.end = 18;
        let mut f2 = finding(&name, Some("B"), "not-there");
        f2.start = 21;
        f2.end = 30;
        let t = Target::parse("secret/x").unwrap();
        let fs = [f1, f2];
        let p = plan(&fs, &t);
        let changed = rewrite(&fs, &p, &t).unwrap();
        assert_eq!(changed.len(), 1);
        let kv = kv_path("x", &name);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("A=coffer://secret/{kv}#A\nB=two\n")
        );
    }
}
