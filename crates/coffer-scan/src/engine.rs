//! The detection engine: one Aho-Corasick pass over a file finds every rule keyword; only the
//! rules woken by a keyword run their regex, and only on the line around the hit (64 KiB forward
//! for multi-line rules). Matches then pass the rule's check and the false-positive filters, and
//! overlapping matches collapse to the most specific rule.

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use memchr::{memchr, memrchr};
use regex::bytes::Regex;

use crate::checks::{self, FileKind};
use crate::finding::Finding;
use crate::rules::{Check, Rule, RuleSet};

/// Scans byte buffers with a rule set. Cheap to share between threads.
pub struct Scanner {
    rules: RuleSet,
}

/// A match that passed its checks, before line numbers are known.
struct Hit {
    rule: usize,
    /// 0 for rules about one credential type, 1 for generic rules: the lower wins an overlap.
    class: u8,
    start: usize,
    end: usize,
    secret: String,
    name: Option<String>,
    decoded: Option<String>,
    rule_id: Option<String>,
    description: Option<String>,
}

impl Scanner {
    /// A scanner over `rules`.
    pub fn new(rules: RuleSet) -> Self {
        Scanner { rules }
    }

    /// The rules this scanner runs.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Finds the secrets in `content`; `file` names it in the findings and decides its kind
    /// (source code, config, lock file).
    pub fn scan(&self, file: &str, content: &[u8]) -> Vec<Finding> {
        let kind = file_kind(file);
        let minified_file = is_minified_name(file);
        let mut hits = self.detect(content, kind, minified_file);
        if is_yaml(file) && memchr::memmem::find(content, b"kind: Secret").is_some() {
            hits.extend(self.kubernetes_secrets(content));
        }
        let hits = collapse_overlaps(hits);
        self.to_findings(file, content, hits)
    }

    fn detect(&self, content: &[u8], kind: FileKind, minified_file: bool) -> Vec<Hit> {
        let rules = self.rules.rules();
        // (rule, span start, span end), deduplicated per rule and line.
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        let mut last_span = vec![usize::MAX; rules.len()];
        for m in self.rules.automaton().find_overlapping_iter(content) {
            let lo = m.start().saturating_sub(MAX_LINE);
            let ls = memrchr(b'\n', &content[lo..m.start()]).map_or(lo, |i| lo + i + 1);
            for &r in self.rules.rules_of_pattern(m.pattern().as_usize()) {
                if last_span[r] == ls {
                    continue;
                }
                last_span[r] = ls;
                let rule = &rules[r];
                let le = if rule.multiline {
                    (m.end() + MULTILINE_SPAN).min(content.len())
                } else {
                    line_end(content, m.end())
                };
                spans.push((r, ls, le));
            }
        }
        for (r, rule) in rules.iter().enumerate() {
            if rule.keywordless {
                spans.push((r, 0, content.len()));
            }
        }
        spans.sort_unstable();
        spans.dedup();

        let mut hits = Vec::new();
        let web = kind == FileKind::Code;
        for (r, s, e) in spans {
            let rule = &rules[r];
            if rule.generic
                && (kind == FileKind::Lock
                    || minified_file
                    || is_minified_line(&content[s..e], web))
            {
                continue;
            }
            self.match_rule(r, rule, content, s, e, kind, &mut hits);
        }
        hits
    }

    #[allow(clippy::too_many_arguments)]
    fn match_rule(
        &self,
        r: usize,
        rule: &Rule,
        content: &[u8],
        s: usize,
        e: usize,
        kind: FileKind,
        hits: &mut Vec<Hit>,
    ) {
        let hay = &content[s..e];
        for caps in rule.regex.captures_iter(hay) {
            let Some(m) = caps.get(rule.secret_group) else {
                continue;
            };
            let Ok(secret) = std::str::from_utf8(m.as_bytes()) else {
                continue;
            };
            let (start, end) = (s + m.start(), s + m.end());
            let mut secret = secret.to_string();
            let mut end = end;
            let mut name = None;
            if rule.check == Some(Check::Generic) {
                let key = rule
                    .key_group
                    .and_then(|g| caps.get(g))
                    .map(|k| String::from_utf8_lossy(k.as_bytes()).into_owned())
                    .unwrap_or_default();
                let quote = rule
                    .quote_group
                    .and_then(|g| caps.get(g))
                    .map(|q| q.as_bytes())
                    .unwrap_or(b"");
                let quoted = !quote.is_empty();
                if quoted {
                    // The closing quote must follow the value: otherwise it held spaces (prose)
                    // or was concatenated with an expression.
                    if content.get(end) != Some(&quote[0]) {
                        continue;
                    }
                } else {
                    let trimmed = secret
                        .trim_end_matches([';', ',', ')', '}', ']', '>'])
                        .len();
                    end -= secret.len() - trimmed;
                    secret.truncate(trimmed);
                }
                // A value shaped like a known token is the specific rule's to judge (a GitHub
                // token with a wrong checksum must not come back as a generic secret).
                if !checks::generic_ok(&key, &secret, quoted, kind)
                    || self.rules.has_token_prefix(&secret)
                {
                    continue;
                }
                name = Some(key);
            } else if !self.specific_ok(rule, &secret) {
                continue;
            }
            if in_data_uri(content, start) || line_allows(content, start) {
                continue;
            }
            if name.is_none() {
                name = assigned_name(content, start);
            }
            hits.push(Hit {
                rule: r,
                class: u8::from(rule.generic),
                start,
                end,
                secret,
                name,
                decoded: None,
                rule_id: None,
                description: None,
            });
        }
    }

    fn specific_ok(&self, rule: &Rule, secret: &str) -> bool {
        if checks::is_known_example(secret) {
            return false;
        }
        if let Some(min) = rule.min_entropy {
            if checks::entropy(secret) < min {
                return false;
            }
        }
        if rule.check != Some(Check::PrivateKey) && token_is_placeholder(secret) {
            return false;
        }
        match rule.check {
            Some(Check::GithubCrc32) => checks::github_checksum_ok(secret),
            Some(Check::NpmCrc32) => checks::crc32_checksum_ok(secret, 4),
            Some(Check::Jwt) => checks::jwt_ok(secret),
            Some(Check::PrivateKey) => checks::private_key_ok(secret),
            Some(Check::UrlPassword) => checks::url_password_ok(secret),
            Some(Check::BasicAuth) => checks::basic_auth_ok(secret),
            Some(Check::Generic) | None => true,
        }
    }

    /// A Kubernetes Secret keeps its values base64-encoded under `data:`; decode each and scan the
    /// decoded `key: value` as config. The finding points at the encoded literal.
    fn kubernetes_secrets(&self, content: &[u8]) -> Vec<Hit> {
        let Ok(text) = std::str::from_utf8(content) else {
            return Vec::new();
        };
        let mut hits = Vec::new();
        for (doc_start, doc) in split_keep_offsets(text, "\n---") {
            if !doc.contains("kind: Secret") {
                continue;
            }
            let mut data_indent: Option<usize> = None;
            let mut pos = doc_start;
            for line in doc.split_inclusive('\n') {
                let line_start = pos;
                pos += line.len();
                let body = line.trim_end();
                let indent = body.len() - body.trim_start().len();
                if body.trim_start() == "data:" {
                    data_indent = Some(indent);
                    continue;
                }
                let Some(di) = data_indent else { continue };
                if body.trim().is_empty() {
                    continue;
                }
                if indent <= di {
                    data_indent = None;
                    continue;
                }
                let Some((key, value)) = body.trim_start().split_once(':') else {
                    continue;
                };
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                let Ok(decoded) = STANDARD.decode(value) else {
                    continue;
                };
                let Ok(decoded) = String::from_utf8(decoded) else {
                    continue;
                };
                let decoded = decoded.trim_end_matches('\n').to_string();
                if decoded.is_empty() || decoded.chars().any(|c| c.is_control() && c != '\n') {
                    continue;
                }
                let synthetic = format!("{key}: \"{decoded}\"\n");
                let inner =
                    collapse_overlaps(self.detect(synthetic.as_bytes(), FileKind::Config, false));
                let Some(best) = inner.into_iter().next() else {
                    continue;
                };
                let Some(col) = line.find(value) else {
                    continue;
                };
                let start = line_start + col;
                if line_allows(content, start) {
                    continue;
                }
                let inner_id = &self.rules.rules()[best.rule].id;
                hits.push(Hit {
                    rule: best.rule,
                    class: 0,
                    start,
                    end: start + value.len(),
                    secret: value.to_string(),
                    name: Some(key.trim().to_string()),
                    decoded: Some(best.secret),
                    rule_id: Some("kubernetes-secret".to_string()),
                    description: Some(format!(
                        "Kubernetes Secret data holding a secret ({inner_id})"
                    )),
                });
            }
        }
        hits
    }

    fn to_findings(&self, file: &str, content: &[u8], mut hits: Vec<Hit>) -> Vec<Finding> {
        hits.sort_by_key(|h| h.start);
        let mut line = 1;
        let mut counted = 0;
        let rules = self.rules.rules();
        hits.into_iter()
            .map(|h| {
                line += memchr::memchr_iter(b'\n', &content[counted..h.start]).count();
                counted = h.start;
                let ls = memrchr(b'\n', &content[..h.start]).map_or(0, |i| i + 1);
                let rule = &rules[h.rule];
                let mut f = Finding {
                    file: file.to_string(),
                    line,
                    column: h.start - ls + 1,
                    rule: h.rule_id.unwrap_or_else(|| rule.id.clone()),
                    description: h.description.unwrap_or_else(|| rule.description.clone()),
                    secret: h.secret,
                    commit: None,
                    author: None,
                    date: None,
                    fingerprint: String::new(),
                    name: h.name,
                    decoded: h.decoded,
                    start: h.start,
                    end: h.end,
                };
                f.seal_fingerprint();
                f
            })
            .collect()
    }
}

/// Keeps, of overlapping matches, the one from the most specific rule (specific before generic,
/// then rule-file order); one private key block is one finding however many keywords it holds.
fn collapse_overlaps(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by_key(|h| (h.class, h.rule, h.start));
    let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits {
        if !kept.iter().any(|k| h.start < k.end && k.start < h.end) {
            kept.push(h);
        }
    }
    kept
}

/// A token with an obvious filler: a run of one character, a counting sequence, or a word that
/// marks documentation.
fn token_is_placeholder(secret: &str) -> bool {
    let v = secret.to_ascii_lowercase();
    if [
        "xxxx",
        "example",
        "your",
        "placeholder",
        "redacted",
        "dummy",
        "insert",
        "replace",
        "<",
    ]
    .iter()
    .any(|w| v.contains(w))
    {
        return true;
    }
    let b = v.as_bytes();
    let (mut run, mut seq) = (1, 1);
    for i in 1..b.len() {
        run = if b[i] == b[i - 1] { run + 1 } else { 1 };
        seq = if b[i] == b[i - 1].wrapping_add(1) {
            seq + 1
        } else {
            1
        };
        if (run >= 6 && b[i] != b'=') || seq >= 8 {
            return true;
        }
    }
    false
}

/// An inline `coffer:allow` on the secret's line silences it.
fn line_allows(content: &[u8], at: usize) -> bool {
    let ls = memrchr(b'\n', &content[..at]).map_or(0, |i| i + 1);
    let le = line_end(content, at);
    memchr::memmem::find(&content[ls..le], b"coffer:allow").is_some()
}

/// Inside a `data:...;base64,` URI, random text matches token shapes by chance.
fn in_data_uri(content: &[u8], at: usize) -> bool {
    let ls = at
        .saturating_sub(MAX_LINE)
        .max(memrchr(b'\n', &content[..at]).map_or(0, |i| i + 1));
    let before = &content[ls..at];
    match memchr::memmem::rfind(before, b";base64,") {
        Some(i) => !before[i..]
            .iter()
            .any(|b| matches!(b, b' ' | b'"' | b'\'' | b')' | b'\t')),
        None => false,
    }
}

/// The variable a literal is assigned to on its line (`DB_PASSWORD=`, `"token": `, `api_key = `).
fn assigned_name(content: &[u8], at: usize) -> Option<String> {
    static NAME: OnceLock<Regex> = OnceLock::new();
    let re = NAME.get_or_init(|| {
        Regex::new(
            r#"([A-Za-z_][A-Za-z0-9_.\-]*)["'\]]?\s*(?::=|=>|=|:)\s*["'`]?[^\s"'`=:]{0,24}$"#,
        )
        .expect("the assigned-name regex is a valid constant")
    });
    let ls = at
        .saturating_sub(512)
        .max(memrchr(b'\n', &content[..at]).map_or(0, |i| i + 1));
    let caps = re.captures(&content[ls..at])?;
    Some(String::from_utf8_lossy(caps.get(1)?.as_bytes()).into_owned())
}

fn line_end(content: &[u8], from: usize) -> usize {
    let cap = (from + MAX_LINE).min(content.len());
    memchr(b'\n', &content[from..cap]).map_or(cap, |i| from + i)
}

/// Minified or generated code: in source files any line of 1000+ bytes; elsewhere a long line
/// with few spaces.
fn is_minified_line(line: &[u8], code: bool) -> bool {
    if line.len() < 1000 {
        return false;
    }
    code || memchr::memchr_iter(b' ', line).count() * 20 < line.len()
}

fn is_minified_name(file: &str) -> bool {
    let f = file.to_ascii_lowercase();
    [
        ".min.js",
        ".min.css",
        ".bundle.js",
        ".chunk.js",
        ".js.map",
        ".css.map",
        ".min.mjs",
    ]
    .iter()
    .any(|s| f.ends_with(s))
}

fn is_yaml(file: &str) -> bool {
    let f = file.to_ascii_lowercase();
    f.ends_with(".yaml") || f.ends_with(".yml") || f == "-"
}

/// What kind of text a file name says it holds.
pub fn file_kind(file: &str) -> FileKind {
    let name = file
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(file)
        .to_ascii_lowercase();
    const LOCKS: &[&str] = &[
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "cargo.lock",
        "go.sum",
        "poetry.lock",
        "gemfile.lock",
        "composer.lock",
        "pipfile.lock",
        "flake.lock",
        "packages.lock.json",
        "gradle.lockfile",
        "pubspec.lock",
        "mix.lock",
        "uv.lock",
        "bun.lock",
        "podfile.lock",
        "package.resolved",
        "deno.lock",
    ];
    if LOCKS.contains(&name.as_str()) || name.ends_with(".lock") || name.ends_with(".lockfile") {
        return FileKind::Lock;
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    const CODE: &[&str] = &[
        "rs", "py", "pyi", "js", "jsx", "mjs", "cjs", "ts", "tsx", "go", "java", "kt", "kts",
        "scala", "c", "h", "cc", "cpp", "cxx", "hpp", "cs", "rb", "php", "swift", "m", "mm",
        "dart", "lua", "pl", "pm", "r", "ex", "exs", "erl", "clj", "groovy", "gradle", "vue",
        "svelte", "fs", "jl", "zig", "nim", "hs", "ml", "sol", "vb", "ps1",
    ];
    if CODE.contains(&ext) {
        FileKind::Code
    } else {
        FileKind::Config
    }
}

/// Splits `text` on `sep` (the separator stays with the following part), with byte offsets.
fn split_keep_offsets<'a>(text: &'a str, sep: &str) -> Vec<(usize, &'a str)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in text.match_indices(sep) {
        out.push((start, &text[start..i]));
        start = i;
    }
    out.push((start, &text[start..]));
    out
}

/// Longest line part a single-line rule looks at on each side of its keyword.
const MAX_LINE: usize = 4096;
/// How far a multi-line rule (a private key block) may reach past its keyword.
const MULTILINE_SPAN: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::with_crc32_checksum;

    /// Deterministic random strings for samples (splitmix64).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn s(&mut self, alphabet: &str, n: usize) -> String {
            let a = match alphabet {
                "A" => "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                "A2" => "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
                "AD" => "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                "a" => "abcdefghijklmnopqrstuvwxyz",
                "ad" => "abcdefghijklmnopqrstuvwxyz0123456789",
                "0" => "0123456789",
                "x" => "0123456789abcdef",
                "b" => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "B" => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                "u" => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                "Aa" => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                other => other,
            }
            .as_bytes();
            (0..n)
                .map(|_| a[(self.next() % a.len() as u64) as usize] as char)
                .collect()
        }
    }

    fn scan(file: &str, text: &str) -> Vec<Finding> {
        static SCANNER: OnceLock<Scanner> = OnceLock::new();
        SCANNER
            .get_or_init(|| Scanner::new(RuleSet::builtin().unwrap()))
            .scan(file, text.as_bytes())
    }

    /// (rule, file name, line with the secret, the secret).
    fn true_samples() -> Vec<(&'static str, &'static str, String, String)> {
        let mut g = Gen(7);
        let mut v = Vec::new();
        let mut add = |rule: &'static str, file: &'static str, line: String, secret: String| {
            v.push((rule, file, line, secret))
        };
        let s = format!("AKIA{}", g.s("A2", 16));
        add(
            "aws-access-key-id",
            "creds.ini",
            format!("aws_access_key_id = {s}"),
            s,
        );
        let s = g.s("B", 40);
        add(
            "aws-secret-access-key",
            "creds.ini",
            format!("aws_secret_access_key = {s}"),
            s,
        );
        let body = (0..8).map(|_| g.s("B", 64)).collect::<Vec<_>>().join("\\n");
        let s = format!("-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n");
        add(
            "gcp-service-account",
            "sa.json",
            format!("  \"private_key\": \"{s}\","),
            s,
        );
        let s = format!("AIza{}", g.s("u", 35));
        add("gcp-api-key", "maps.js", format!("const key = \"{s}\";"), s);
        let s = format!("GOCSPX-{}", g.s("u", 28));
        add(
            "gcp-oauth-client-secret",
            "oauth.py",
            format!("CLIENT_SECRET = \"{s}\""),
            s,
        );
        let s = format!("{}==", g.s("B", 86));
        add("azure-storage-connection-string", "app.config", format!("DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={s};EndpointSuffix=core.windows.net"), s);
        let s = format!("{}%3D", g.s("b", 43));
        add("azure-sas-token", "upload.sh", format!("curl 'https://acme.blob.core.windows.net/c/f?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01&sig={s}'"), s);
        let s = format!("{}8Q~{}", g.s("b", 3), g.s("b", 34));
        add(
            "azure-ad-client-secret",
            "azure.env",
            format!("AZURE_CLIENT_SECRET={s}"),
            s,
        );
        let s = format!("dop_v1_{}", g.s("x", 64));
        add("digitalocean-token", "do.tf", format!("token = \"{s}\""), s);
        let s = format!("LTAI{}", g.s("b", 20));
        add(
            "alibaba-access-key-id",
            "ali.yaml",
            format!("access_key_id: {s}"),
            s,
        );
        let s = format!("fo1_{}", g.s("u", 43));
        add(
            "flyio-token",
            "deploy.sh",
            format!("FLY_API_TOKEN={s} flyctl deploy"),
            s,
        );
        let s = format!("HRKU-{}", g.s("u", 60));
        add(
            "heroku-api-key",
            "heroku.sh",
            format!("export HEROKU_API_KEY={s}"),
            s,
        );
        let s = format!("pscale_tkn_{}", g.s("u", 43));
        add(
            "planetscale-token",
            "ps.env",
            format!("PLANETSCALE_TOKEN={s}"),
            s,
        );
        let s = format!("dapi{}", g.s("x", 32));
        add("databricks-token", "db.cfg", format!("token = {s}"), s);
        let s = format!("hvs.{}", g.s("u", 90));
        add(
            "vault-service-token",
            "vault.sh",
            format!("VAULT_TOKEN={s}"),
            s,
        );
        let s = format!("hvb.{}", g.s("u", 120));
        add(
            "vault-batch-token",
            "vault.sh",
            format!("VAULT_TOKEN={s}"),
            s,
        );
        let s = format!("{}.atlasv1.{}", g.s("b", 14), g.s("u", 67));
        add(
            "terraform-cloud-token",
            ".terraformrc",
            format!("token = \"{s}\""),
            s,
        );
        let s = format!("pul-{}", g.s("x", 40));
        add(
            "pulumi-token",
            "ci.yml",
            format!("PULUMI_ACCESS_TOKEN: {s}"),
            s,
        );
        let s = format!("dp.pt.{}", g.s("b", 43));
        add(
            "doppler-token",
            "doppler.env",
            format!("DOPPLER_TOKEN={s}"),
            s,
        );
        for (rule, p) in [
            ("github-pat", "ghp_"),
            ("github-oauth-token", "gho_"),
            ("github-user-to-server-token", "ghu_"),
            ("github-app-installation-token", "ghs_"),
            ("github-refresh-token", "ghr_"),
        ] {
            let s = with_crc32_checksum(p, &g.s("b", 30));
            add(rule, "gh.py", format!("GITHUB_TOKEN = \"{s}\""), s);
        }
        let s = format!("github_pat_{}_{}", g.s("b", 22), g.s("b", 59));
        add(
            "github-fine-grained-pat",
            "gh.sh",
            format!("gh auth login --with-token <<< {s}"),
            s,
        );
        let s = format!("glpat-{}", g.s("u", 20));
        add(
            "gitlab-pat",
            ".gitlab-ci.yml",
            format!("  GITLAB_TOKEN: {s}"),
            s,
        );
        let s = format!("glptt-{}", g.s("x", 40));
        add(
            "gitlab-pipeline-trigger-token",
            "trigger.sh",
            format!("curl -F token={s} https://gitlab.example.org/api"),
            s,
        );
        let s = format!("glrt-{}", g.s("u", 20));
        add(
            "gitlab-runner-token",
            "config.toml",
            format!("token = \"{s}\""),
            s,
        );
        let s = format!("gldt-{}", g.s("u", 20));
        add(
            "gitlab-deploy-token",
            "deploy.env",
            format!("DEPLOY_TOKEN={s}"),
            s,
        );
        let s = format!("ATBB{}", g.s("b", 32));
        add(
            "bitbucket-app-password",
            "bb.env",
            format!("BITBUCKET_APP_PASSWORD={s}"),
            s,
        );
        let s = format!("xoxb-{}-{}-{}", g.s("0", 11), g.s("0", 13), g.s("b", 24));
        add(
            "slack-bot-token",
            "slack.py",
            format!("client = WebClient(token=\"{s}\")"),
            s,
        );
        let s = format!(
            "xoxp-{}-{}-{}-{}",
            g.s("0", 11),
            g.s("0", 11),
            g.s("0", 13),
            g.s("x", 32)
        );
        add(
            "slack-user-token",
            "slack.env",
            format!("SLACK_USER_TOKEN={s}"),
            s,
        );
        let s = format!(
            "xapp-1-A{}-{}-{}",
            g.s("AD", 10),
            g.s("0", 13),
            g.s("x", 64)
        );
        add(
            "slack-app-token",
            "slack.env",
            format!("SLACK_APP_TOKEN={s}"),
            s,
        );
        let s = format!("xoxe.xoxp-1-{}", g.s("AD", 150));
        add(
            "slack-config-token",
            "slack.env",
            format!("SLACK_CONFIG_TOKEN={s}"),
            s,
        );
        let s = format!(
            "https://hooks.slack.com/services/T{}/B{}/{}",
            g.s("AD", 8),
            g.s("AD", 10),
            g.s("b", 24)
        );
        add(
            "slack-webhook",
            "notify.py",
            format!("WEBHOOK = \"{s}\""),
            s,
        );
        let s = format!(
            "https://discord.com/api/webhooks/{}/{}",
            g.s("0", 18),
            g.s("u", 68)
        );
        add(
            "discord-webhook",
            "notify.js",
            format!("const hook = '{s}';"),
            s,
        );
        let s = format!("M{}.{}.{}", g.s("b", 23), g.s("u", 6), g.s("u", 27));
        add(
            "discord-bot-token",
            "bot.py",
            format!("DISCORD_TOKEN = \"{s}\""),
            s,
        );
        let s = format!("{}:AA{}", g.s("0", 10), g.s("u", 33));
        add(
            "telegram-bot-token",
            "bot.env",
            format!("TELEGRAM_BOT={s}"),
            s,
        );
        let s = format!(
            "https://acme.webhook.office.com/webhookb2/{}@{}/IncomingWebhook/{}/{}",
            g.s("x", 8),
            g.s("x", 8),
            g.s("b", 32),
            g.s("x", 8)
        );
        add(
            "microsoft-teams-webhook",
            "teams.ps1",
            format!("$uri = \"{s}\""),
            s,
        );
        let s = format!("sk_live_{}", g.s("b", 24));
        add(
            "stripe-secret-key",
            "pay.rb",
            format!("Stripe.api_key = '{s}'"),
            s,
        );
        let s = format!("sk_test_{}", g.s("b", 24));
        add(
            "stripe-test-secret-key",
            "pay.rb",
            format!("Stripe.api_key = '{s}'"),
            s,
        );
        let s = format!("rk_live_{}", g.s("b", 24));
        add(
            "stripe-restricted-key",
            "pay.env",
            format!("STRIPE_KEY={s}"),
            s,
        );
        let s = format!("whsec_{}", g.s("b", 32));
        add(
            "stripe-webhook-secret",
            "pay.env",
            format!("STRIPE_WEBHOOK={s}"),
            s,
        );
        let s = format!("sq0atp-{}", g.s("u", 22));
        add(
            "square-token",
            "square.env",
            format!("SQUARE_ACCESS={s}"),
            s,
        );
        let s = format!("access_token$production${}${}", g.s("ad", 16), g.s("x", 32));
        add(
            "paypal-braintree-token",
            "bt.env",
            format!("BRAINTREE={s}"),
            s,
        );
        let s = format!("shpat_{}", g.s("x", 32));
        add("shopify-token", "shop.env", format!("SHOPIFY={s}"), s);
        let s = format!("sk-proj-{}", g.s("u", 64));
        add(
            "openai-api-key",
            "ai.py",
            format!("client = OpenAI(api_key=\"{s}\")"),
            s,
        );
        let s = format!("sk-ant-api03-{}AA", g.s("u", 93));
        add(
            "anthropic-api-key",
            "ai.py",
            format!("client = Anthropic(api_key=\"{s}\")"),
            s,
        );
        let s = format!("hf_{}", g.s("Aa", 34));
        add(
            "huggingface-token",
            "hf.sh",
            format!("huggingface-cli login --token {s}"),
            s,
        );
        let s = format!("gsk_{}", g.s("b", 52));
        add("groq-api-key", "groq.env", format!("GROQ={s}"), s);
        let s = format!("r8_{}", g.s("b", 37));
        add("replicate-token", "rep.env", format!("REPLICATE={s}"), s);
        let s = format!("pplx-{}", g.s("b", 48));
        add("perplexity-api-key", "pplx.env", format!("PPLX={s}"), s);
        let s = with_crc32_checksum("npm_", &g.s("b", 30));
        add(
            "npm-token",
            ".npmrc",
            format!("//registry.npmjs.org/:_authToken={s}"),
            s,
        );
        let s = format!("pypi-AgEIcHlwaS5vcmc{}", g.s("u", 70));
        add("pypi-token", ".pypirc", format!("password = {s}"), s);
        let s = format!("cio{}", g.s("b", 32));
        add(
            "crates-io-token",
            "publish.sh",
            format!("cargo publish --token {s}"),
            s,
        );
        let s = format!("dckr_pat_{}", g.s("u", 27));
        add(
            "dockerhub-pat",
            "docker.sh",
            format!("echo {s} | docker login -u acme --password-stdin"),
            s,
        );
        let s = format!("rubygems_{}", g.s("x", 48));
        add(
            "rubygems-api-key",
            "gem.env",
            format!("GEM_HOST_API_KEY={s}"),
            s,
        );
        let s = format!("oy2{}", g.s("ad", 43));
        add(
            "nuget-api-key",
            "nuget.ps1",
            format!("dotnet nuget push x.nupkg -k {s}"),
            s,
        );
        let s = format!("SK{}", g.s("x", 32));
        add(
            "twilio-api-key",
            "sms.py",
            format!("twilio_client = Client(\"{s}\", secret)"),
            s,
        );
        let s = g.s("x", 32);
        add(
            "twilio-auth-token",
            "sms.env",
            format!("TWILIO_AUTH_TOKEN={s}"),
            s,
        );
        let s = format!("SG.{}.{}", g.s("u", 22), g.s("u", 43));
        add(
            "sendgrid-api-key",
            "mail.py",
            format!("sg = SendGridAPIClient(\"{s}\")"),
            s,
        );
        let s = format!("key-{}", g.s("x", 32));
        add(
            "mailgun-api-key",
            "mail.js",
            format!("mailgun({{apiKey: '{s}'}})"),
            s,
        );
        let s = format!("{}-us{}", g.s("x", 32), g.s("0", 2));
        add(
            "mailchimp-api-key",
            "mc.php",
            format!("$mc = new Mailchimp('{s}');"),
            s,
        );
        let s = g.s("x", 32);
        add("datadog-api-key", "dd.yaml", format!("dd_api_key: {s}"), s);
        let s = g.s("x", 40);
        add("datadog-app-key", "dd.yaml", format!("dd_app_key: {s}"), s);
        let s = format!("NRAK-{}", g.s("AD", 27));
        add(
            "new-relic-key",
            "nr.env",
            format!("NEW_RELIC_API_KEY={s}"),
            s,
        );
        let s = format!("sntryu_{}", g.s("x", 64));
        add(
            "sentry-token",
            "sentry.env",
            format!("SENTRY_AUTH_TOKEN={s}"),
            s,
        );
        let s = format!("glsa_{}_{}", g.s("b", 32), g.s("x", 8));
        add("grafana-token", "grafana.env", format!("GRAFANA_SA={s}"), s);
        let s = format!("PMAK-{}-{}", g.s("x", 24), g.s("x", 34));
        add("postman-api-key", "pm.env", format!("POSTMAN={s}"), s);
        let s = format!("lin_api_{}", g.s("b", 40));
        add("linear-api-key", "linear.env", format!("LINEAR={s}"), s);
        let s = format!("ntn_{}{}", g.s("0", 11), g.s("b", 35));
        add("notion-token", "notion.env", format!("NOTION={s}"), s);
        let s = format!("1/{}:{}", g.s("0", 16), g.s("x", 32));
        add("asana-pat", "asana.yaml", format!("asana_pat: \"{s}\""), s);
        let s = format!(
            "pat-na1-{}-{}-{}-{}-{}",
            g.s("x", 8),
            g.s("x", 4),
            g.s("x", 4),
            g.s("x", 4),
            g.s("x", 12)
        );
        add("hubspot-token", "hs.env", format!("HUBSPOT={s}"), s);
        let s = format!("00{}", g.s("u", 40));
        add(
            "okta-api-token",
            "okta.yaml",
            format!("okta_api_token: {s}"),
            s,
        );
        let s = g.s("u", 40);
        add(
            "cloudflare-api-token",
            "cf.env",
            format!("CLOUDFLARE_API_TOKEN={s}"),
            s,
        );
        let s = g.s("x", 32);
        add(
            "algolia-admin-key",
            "search.env",
            format!("ALGOLIA_ADMIN_KEY={s}"),
            s,
        );
        let s = format!(
            "AGE-SECRET-KEY-1{}",
            g.s("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
        );
        add(
            "age-secret-key",
            "key.txt",
            format!("# created: 2024-01-01\n{s}"),
            s,
        );
        let s = format!("EAAG{}", g.s("b", 120));
        add("facebook-access-token", "fb.env", format!("FB={s}"), s);
        let s = format!("sk.eyJ{}.{}", g.s("u", 70), g.s("u", 22));
        add("mapbox-secret-token", "map.env", format!("MAPBOX={s}"), s);
        let s =
            base64::engine::general_purpose::STANDARD.encode(format!("deploy:{}", g.s("b", 18)));
        add(
            "basic-auth-header",
            "api.http",
            format!("Authorization: Basic {s}"),
            s,
        );
        let body = (0..10).map(|_| g.s("B", 64)).collect::<Vec<_>>().join("\n");
        let s = format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----");
        add("private-key", "id_rsa", s.clone(), s);
        let b64 = |j: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(j);
        let s = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"HS256","typ":"JWT"}"#),
            b64(r#"{"sub":"svc-billing","iat":1712000000}"#),
            g.s("u", 43)
        );
        add("jwt", "client.ts", format!("const auth = `Bearer {s}`;"), s);
        let s = g.s("b", 16);
        add(
            "url-with-password",
            "db.env",
            format!("DATABASE_URL=postgres://app:{s}@db.internal:5432/app"),
            s,
        );
        // Redis puts the password after an empty user name.
        let s = g.s("b", 16);
        add(
            "url-with-password",
            "cache.env",
            format!("REDIS_URL=redis://:{s}@cache.internal:6379/0"),
            s,
        );
        let s = format!("{}!{}", g.s("b", 10), g.s("b", 5));
        add(
            "generic-secret",
            "settings.py",
            format!("DB_PASSWORD = \"{s}\""),
            s,
        );
        let s = g.s("b", 24);
        add(
            "generic-secret-env",
            "Dockerfile",
            format!("ENV API_TOKEN {s}"),
            s,
        );
        let s = g.s("b", 20);
        add(
            "generic-secret-xml",
            "web.xml",
            format!("<password>{s}</password>"),
            s,
        );
        v
    }

    #[test]
    fn every_rule_finds_its_true_sample() {
        let rules = RuleSet::builtin().unwrap();
        let samples = true_samples();
        for rule in rules.rules() {
            assert!(
                samples.iter().any(|s| s.0 == rule.id),
                "rule {} has no sample",
                rule.id
            );
        }
        for (rule, file, text, secret) in &samples {
            let found = scan(file, text);
            assert_eq!(found.len(), 1, "{rule}: {found:?} in {text}");
            assert_eq!(&found[0].rule, rule, "{text}");
            assert_eq!(&found[0].secret, secret, "{rule}");
        }
    }

    #[test]
    fn every_rule_ignores_its_sample_turned_placeholder() {
        for (rule, file, text, secret) in true_samples() {
            // Keep the shape, fill the tail with x: what documentation does.
            let keep = secret.len().saturating_sub(12).max(secret.len() / 2);
            let fake: String = secret
                .chars()
                .take(keep)
                .chain(std::iter::repeat_n('x', secret.chars().count() - keep))
                .collect();
            let text = text.replace(&secret, &fake);
            assert!(
                scan(file, &text).is_empty(),
                "{rule}: reported the placeholder in {text}"
            );
        }
    }

    #[test]
    fn bad_checksums_and_documented_examples_are_not_reported() {
        let good = with_crc32_checksum("ghp_", "Zk3rT9vQ2mX7pL4sW8nB1cY6hJ0dF5");
        let mut bad = good.clone();
        bad.replace_range(10..11, if &good[10..11] == "A" { "B" } else { "A" });
        assert_eq!(scan("a.py", &format!("t = \"{good}\"")).len(), 1);
        assert!(scan("a.py", &format!("t = \"{bad}\"")).is_empty());
        let npm_bad = format!("npm_{}", "Zk3rT9vQ2mX7pL4sW8nB1cY6hJ0dF5Ab12Cd");
        assert!(scan(".npmrc", &format!("//r/:_authToken={npm_bad}")).is_empty());
        assert!(scan("c.ini", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").is_empty());
        let jwt_io = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert!(scan("a.md", jwt_io).is_empty());
    }

    #[test]
    fn placeholders_references_and_non_secrets_are_not_reported() {
        let text = r#"
password = os.environ["DB_PASSWORD"]
api_key = "your-api-key-here"
token: ${GITHUB_TOKEN}
secret: "{{ .Values.secret }}"
DB_PASSWORD=changeme
API_KEY=<API_KEY>
password: xxxxxxxxxxxxxxxx
client_id = "123e4567-e89b-12d3-a456-426614174000"
password_hash = "a3f1c9d2e4b5a6978877665544332211ffeeddcc"
token_url = "https://auth.example.org/oauth/token"
commit: 3f786850e387550fdab836ed7e6dc881de23001b
icon = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
DATABASE_URL=postgres://user:${DB_PASS}@db:5432/app
label: "Password"
"#;
        let found = scan("config.yaml", text);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn lock_files_minified_lines_and_allow_comments_are_skipped() {
        let lock = r#"    "integrity": "sha512-Zk3rT9vQ2mX7pL4sW8nB1cY6hJ0dF5Zk3rT9vQ2mX7pL4sW8nB1cY6hJ0dF5==",
checksum = "3f786850e387550fdab836ed7e6dc881de23001b3f786850e387550fdab836ed""#;
        assert!(scan("package-lock.json", lock).is_empty());
        assert!(scan("Cargo.lock", lock).is_empty());
        let minified = format!(
            "var a={{}};{}var token=\"Qz8!rT2vLm9pXw4k\";",
            "function(e){return e}".repeat(100)
        );
        assert!(scan("app.min.js", &minified).is_empty());
        assert!(scan("app.js", &minified).is_empty());
        assert!(scan(
            "app.py",
            "DB_PASSWORD = \"Qz8!rT2vLm9pXw4k\"  # coffer:allow"
        )
        .is_empty());
        assert_eq!(
            scan("app.py", "DB_PASSWORD = \"Qz8!rT2vLm9pXw4k\"").len(),
            1
        );
    }

    #[test]
    fn one_private_key_block_counts_once() {
        let mut g = Gen(3);
        let body = (0..20).map(|_| g.s("B", 64)).collect::<Vec<_>>().join("\n");
        let text = format!("key = \"\"\"\n-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n\"\"\"\n");
        let found = scan("k.py", &text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, 2);
        assert!(scan(
            "k.md",
            "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----"
        )
        .is_empty());
    }

    #[test]
    fn kubernetes_secret_data_is_decoded_and_scanned() {
        use base64::engine::general_purpose::STANDARD;
        let pw = "Vq7#mP2xLw9!rT4z";
        let text = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  username: {}\n  password: {}\n",
            STANDARD.encode("app"),
            STANDARD.encode(pw)
        );
        let found = scan("k8s/db-secret.yaml", &text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, "kubernetes-secret");
        assert_eq!(found[0].line, 8);
        assert_eq!(found[0].value(), pw);
        assert_eq!(found[0].secret, STANDARD.encode(pw));
    }

    #[test]
    fn generic_secrets_in_many_formats() {
        let v = "Hq4!zW9pLx2Rk7Tm";
        let cases = [
            ("app.py", format!("password = \"{v}\"")),
            ("app.js", format!("const apiKey = '{v}';")),
            ("main.go", format!("dbPassword := \"{v}\"")),
            ("config.yaml", format!("  password: {v}")),
            ("config.json", format!("{{\"client_secret\": \"{v}\"}}")),
            (".env", format!("API_TOKEN={v}")),
            ("app.properties", format!("spring.datasource.password={v}")),
            ("main.tf", format!("  master_password = \"{v}\"")),
            ("Dockerfile", format!("ENV DB_PASSWORD={v}")),
            ("config.php", format!("'password' => '{v}',")),
        ];
        for (file, text) in cases {
            let found = scan(file, &text);
            assert_eq!(found.len(), 1, "{file}: {text}");
            assert_eq!(found[0].secret, v, "{file}");
        }
    }
}
