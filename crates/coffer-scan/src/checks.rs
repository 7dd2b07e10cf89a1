//! Validation that a regex cannot express: checksums, decoding, entropy, and the false-positive
//! rules (placeholders, documented examples, references to the environment, hashes, UUIDs).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

/// Shannon entropy in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    if n == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// GitHub (and npm) tokens end in 6 base62 characters: the CRC32 of the random part before them
/// (github.blog, 2021-04-05, "Behind GitHub's new authentication token formats").
pub fn crc32_checksum_ok(token: &str, prefix_len: usize) -> bool {
    if token.len() < prefix_len + 7 {
        return false;
    }
    let body = &token[prefix_len..];
    let (random, check) = body.split_at(body.len() - 6);
    base62_6(crc32fast::hash(random.as_bytes())) == check
}

/// GitHub's prefixed tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`): 4-char prefix, random
/// part, checksum.
pub fn github_checksum_ok(token: &str) -> bool {
    crc32_checksum_ok(token, 4)
}

/// A JWT: the header is base64url JSON with an `alg` other than `none`, the payload is a JSON
/// object, and there is a signature.
pub fn jwt_ok(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if s.len() < 16 {
        return false;
    }
    let decode = |part: &str| -> Option<serde_json::Value> {
        let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let Some(header) = decode(h) else {
        return false;
    };
    let alg_ok = header
        .get("alg")
        .and_then(|a| a.as_str())
        .is_some_and(|a| !a.eq_ignore_ascii_case("none"));
    alg_ok && decode(p).is_some_and(|v| v.is_object())
}

/// A private key block with a body of real key material, not `...` or "your key here".
pub fn private_key_ok(block: &str) -> bool {
    // The body starts after the BEGIN line's closing dashes.
    let Some(start) = block.get(5..).and_then(|b| b.find("-----")).map(|i| i + 10) else {
        return false;
    };
    let end = block.rfind("-----END").unwrap_or(block.len());
    if end <= start {
        return false;
    }
    let body = block[start..end].replace("\\n", "\n").replace("\\r", "");
    let mut material = String::new();
    for line in body.lines() {
        let line = line
            .trim()
            .trim_matches(|c| c == '"' || c == '\'' || c == ',' || c == '+');
        // PEM headers such as "Proc-Type: 4,ENCRYPTED" and PGP armor headers carry no key.
        if line.contains(": ") {
            continue;
        }
        material.extend(line.chars().filter(|c| !c.is_whitespace()));
    }
    material.len() >= 64
        && material
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' || b == b'\\')
        && entropy(&material) > 4.5
        && !has_run(&material, 8)
}

/// The password of a URL is a real value, not `password`, `${DB_PASS}`, `****` or `<pass>`.
pub fn url_password_ok(password: &str) -> bool {
    let p = password.to_ascii_lowercase();
    if p.len() < 4 || is_reference(password) || is_placeholder(password) {
        return false;
    }
    !matches!(
        p.as_str(),
        "pass"
            | "password"
            | "passwd"
            | "pwd"
            | "secret"
            | "user"
            | "username"
            | "admin"
            | "root"
            | "guest"
            | "test"
            | "token"
            | "postgres"
            | "mysql"
            | "redis"
            | "example"
    ) && !p.starts_with('%')
}

/// `n` identical characters in a row (filler such as `AAAAAAAA`).
fn has_run(s: &str, n: usize) -> bool {
    let b = s.as_bytes();
    let mut run = 1;
    for i in 1..b.len() {
        run = if b[i] == b[i - 1] { run + 1 } else { 1 };
        if run >= n {
            return true;
        }
    }
    false
}

/// `Authorization: Basic` with `user:password` inside.
pub fn basic_auth_ok(b64: &str) -> bool {
    let Ok(bytes) = STANDARD.decode(b64) else {
        return false;
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return false;
    };
    match text.split_once(':') {
        Some((user, pass)) => !user.is_empty() && url_password_ok(pass),
        None => false,
    }
}

/// Where a value sits decides what counts as a literal: in source code an unquoted value is an
/// expression; in config formats it is the value itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Programming languages: only quoted values are literals.
    Code,
    /// YAML, .env, properties, INI, TOML, XML, Dockerfile, shell, unknown text.
    Config,
    /// Lock files: hashes everywhere, generic rules do not run.
    Lock,
}

/// Decides whether a value assigned to a secret-looking name is a secret.
pub fn generic_ok(key: &str, value: &str, quoted: bool, kind: FileKind) -> bool {
    if kind == FileKind::Code && !quoted {
        return false;
    }
    if !key_names_a_secret(key) {
        return false;
    }
    let value = if quoted {
        value
    } else {
        value.trim_end_matches([';', ',', ')', '}', ']', '>'])
    };
    let len = value.chars().count();
    if !(8..=200).contains(&len) {
        return false;
    }
    if is_reference(value) || is_placeholder(value) || is_known_example(value) {
        return false;
    }
    if looks_like_non_secret(value) {
        return false;
    }
    let (lower, upper, digit, other) = classes(value);
    let kinds = [lower, upper, digit, other].iter().filter(|b| **b).count();
    let h = entropy(value);
    if digit && !lower && !upper && !other {
        return false;
    }
    if !digit && !other && len < 24 {
        // Letters only: words and identifiers, unless long and random.
        return false;
    }
    if kinds < 2 {
        return h >= 3.8 && len >= 20;
    }
    h >= 3.0 || (h >= 2.7 && kinds >= 3 && len >= 10)
}

/// Placeholders: `your-api-key`, `<TOKEN>`, `xxxx`, `changeme`, `****`, `...`.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "your",
        "example",
        "changeme",
        "change_me",
        "change-me",
        "placeholder",
        "xxxx",
        "****",
        "redacted",
        "dummy",
        "sample",
        "replace",
        "insert",
        "fixme",
        "todo",
        "notreal",
        "not_real",
        "not-real",
        "fake",
        "mock",
        "foobar",
        "lorem",
        "....",
        "<",
        ">",
        "here",
        "secret123",
        "password1",
        "password123",
        "p@ssw0rd",
        "passw0rd",
        "12345678",
        "qwerty",
        "letmein",
        "hunter2",
        "testtest",
        "test123",
        "abc123",
        "00000000",
        "11111111",
        "deadbeef",
    ];
    if WORDS.iter().any(|w| v.contains(w)) {
        return true;
    }
    if v.starts_with("test") || v.ends_with("test") || v.starts_with("my") && v.contains("secret") {
        return true;
    }
    // A run of one character ("aaaaaa", "000000") does not happen in random material.
    let bytes = v.as_bytes();
    let mut run = 1;
    for i in 1..bytes.len() {
        if bytes[i] == bytes[i - 1] {
            run += 1;
            if run >= 5 && bytes[i] != b'=' {
                return true;
            }
        } else {
            run = 1;
        }
    }
    // Sequential runs: "abcdefgh", "12345678".
    let mut seq = 1;
    for i in 1..bytes.len() {
        if bytes[i] == bytes[i - 1].wrapping_add(1) {
            seq += 1;
            if seq >= 6 {
                return true;
            }
        } else {
            seq = 1;
        }
    }
    false
}

/// A lookup of the value elsewhere: `${VAR}`, `{{ .Values.x }}`, `process.env.X`,
/// `os.environ[...]`, `$(cat file)`, `%(x)s`, a vault or coffer reference.
pub fn is_reference(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    const MARKERS: &[&str] = &[
        "${",
        "{{",
        "}}",
        "$(",
        "%(",
        "#{",
        "<%",
        "env(",
        "env[",
        "env.",
        "getenv",
        "environ",
        "process.env",
        "secrets.",
        "vault:",
        "coffer://",
        "vault://",
        "ref+",
        "arn:aws:",
        "ssm:",
        "@format",
        "lookup(",
        "var.",
        "local.",
        "data.",
        "module.",
        "from_env",
        "fromenv",
    ];
    v.starts_with('$') || MARKERS.iter().any(|m| v.contains(m)) || has_format_verb(value)
}

/// printf-style `%s` / `%d` followed by a non-alphanumeric character or the end.
fn has_format_verb(value: &str) -> bool {
    let b = value.as_bytes();
    b.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'%'
            && (w[1] == b's' || w[1] == b'd')
            && b.get(i + 2).is_none_or(|c| !c.is_ascii_alphanumeric())
    })
}

/// Keys published in vendors' documentation as examples (AWS, Azure's storage emulator, jwt.io,
/// GitHub's docs); anything with `EXAMPLE` in it is one of AWS's.
pub fn is_known_example(value: &str) -> bool {
    const KNOWN: &[&str] = &[
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",
        "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
    ];
    value.contains("EXAMPLE") || KNOWN.iter().any(|k| value.contains(k))
}

/// Values that are recognisably something other than a secret: UUIDs, paths, URLs, data URIs,
/// hashes with an algorithm prefix, version strings, dotted identifiers, bcrypt hashes.
fn looks_like_non_secret(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    if is_uuid(&v) || v.starts_with("data:") || v.contains("://") {
        return true;
    }
    if v.starts_with('/') || v.starts_with("./") || v.starts_with("~/") || v.starts_with("../") {
        return true;
    }
    const EXT: &[&str] = &[
        ".pem", ".key", ".json", ".txt", ".crt", ".p12", ".pfx", ".yaml", ".yml", ".env", ".cfg",
        ".conf", ".jks", ".html", ".js", ".py", ".sh", ".gpg",
    ];
    if EXT.iter().any(|e| v.ends_with(e)) {
        return true;
    }
    const HASH_PREFIX: &[&str] = &[
        "sha1-", "sha256-", "sha384-", "sha512-", "sha256:", "sha1:", "md5:", "$2a$", "$2b$",
        "$2y$", "$argon2", "$6$", "$5$", "$1$", "pbkdf2",
    ];
    if HASH_PREFIX.iter().any(|p| v.starts_with(p)) {
        return true;
    }
    // Dotted or namespaced identifiers: config.db.password, Rails.application.credentials.
    let ident = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !s.as_bytes()[0].is_ascii_digit()
    };
    if v.contains('.') && v.split('.').all(ident) {
        return true;
    }
    if v.contains("::") && v.split("::").all(ident) {
        return true;
    }
    // Function calls and expressions.
    if v.ends_with("()") || v.contains("(") && v.ends_with(')') {
        return true;
    }
    false
}

/// 8-4-4-4-12 hex.
pub fn is_uuid(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The name says the value is a secret (password, token, api_key...) and not something about
/// one (password_hash, token_url, secret_name, passwordLength).
fn key_names_a_secret(key: &str) -> bool {
    let words = split_words(key);
    let Some(last) = words.last() else {
        return false;
    };
    const NOT_SECRET: &[&str] = &[
        "url",
        "uri",
        "urls",
        "path",
        "file",
        "filename",
        "dir",
        "name",
        "names",
        "type",
        "types",
        "id",
        "ids",
        "length",
        "len",
        "min",
        "max",
        "size",
        "hash",
        "hashed",
        "digest",
        "sha",
        "checksum",
        "field",
        "fields",
        "label",
        "prompt",
        "regex",
        "pattern",
        "policy",
        "ttl",
        "expiry",
        "expires",
        "expiration",
        "header",
        "endpoint",
        "env",
        "var",
        "ref",
        "provider",
        "version",
        "count",
        "enabled",
        "required",
        "format",
        "placeholder",
        "message",
        "msg",
        "error",
        "help",
        "hint",
        "input",
        "text",
        "title",
        "mode",
        "kind",
        "source",
        "location",
        "arn",
        "template",
        "lifetime",
        "timeout",
        "prefix",
        "suffix",
        "scope",
        "scopes",
        "method",
        "strategy",
        "validator",
        "validation",
        "rules",
        "rule",
        "reset",
        "confirm",
        "confirmation",
        "forgot",
        "changed",
        "class",
        "component",
        "icon",
        "store",
        "service",
        "manager",
        "handler",
        "cookie",
        "param",
        "key_id",
        "fingerprint",
        "public",
        "pub",
        "alias",
        "index",
        "limit",
        "usage",
        "algorithm",
        "alg",
        "encoding",
        "style",
        "color",
        "width",
        "height",
        "visible",
        "status",
        "state",
        "policies",
        "mount",
        "secrets",
        "config",
        "settings",
        "option",
        "options",
        "selector",
        "list",
        "map",
        "host",
        "port",
        "user",
        "username",
        "login",
        "email",
        "account",
        "client",
        "region",
        "bucket",
        "sid",
        "passed",
        "pass_through",
        "through",
        "bypass",
        "compass",
        "passenger",
        "passes",
        "passing",
        "pwd_dir",
        "cwd",
        "output",
        "tokenizer",
        "tokens",
        "tokenize",
        "tokenized",
        "keyword",
        "keywords",
        "response",
        "request",
        "callback",
        "link",
        "address",
        "spec",
        "schema",
        "date",
        "time",
        "at",
        "created",
        "updated",
        "rotation",
        "rotated",
        "refresh_url",
        "audience",
        "issuer",
    ];
    let joined = words.join("_");
    if NOT_SECRET.contains(&last.as_str()) || NOT_SECRET.contains(&joined.as_str()) {
        return false;
    }
    const SECRET_WORDS: &[&str] = &[
        "password",
        "passwd",
        "pass",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "credential",
        "credentials",
        "key",
        "auth",
        "private",
        "signing",
        "encryption",
        "master",
        "access",
        "secretkey",
    ];
    // Names written as one word (`dbpassword`, `CLIENTSECRET`).
    const GLUED: &[&str] = &[
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "credential",
    ];
    if words.iter().any(|w| GLUED.iter().any(|g| w.contains(g))) {
        return true;
    }
    // The keyword must be a word of the name, not inside another word ("compass", "bypass").
    words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
        && words.iter().any(|w| {
            matches!(
                w.as_str(),
                "password" | "passwd" | "pass" | "pwd" | "passphrase" | "secret" | "token"
                    | "apikey" | "credential" | "credentials" | "secretkey"
            )
        } || joined.contains("api_key") || joined.contains("access_key") || joined.contains("private_key")
            || joined.contains("auth_key") || joined.contains("signing_key") || joined.contains("encryption_key")
            || joined.contains("master_key"))
}

/// Splits `db.passwordHash`, `API_KEY`, `x-api-key` into lower-case words.
fn split_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = key.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let boundary = c.is_ascii_uppercase()
            && i > 0
            && (chars[i - 1].is_ascii_lowercase()
                || (chars[i - 1].is_ascii_uppercase()
                    && chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase())));
        if boundary && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn classes(v: &str) -> (bool, bool, bool, bool) {
    let mut r = (false, false, false, false);
    for b in v.bytes() {
        match b {
            b'a'..=b'z' => r.0 = true,
            b'A'..=b'Z' => r.1 = true,
            b'0'..=b'9' => r.2 = true,
            _ => r.3 = true,
        }
    }
    r
}

/// base62 (0-9A-Za-z) of a CRC32, left-padded with zeros to 6 characters.
fn base62_6(mut n: u32) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Makes a token in GitHub's or npm's format with a valid checksum (tests and the corpus).
pub fn with_crc32_checksum(prefix: &str, random: &str) -> String {
    format!(
        "{prefix}{random}{}",
        base62_6(crc32fast::hash(random.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_checksum_accepts_generated_tokens_and_rejects_the_docs_one() {
        // The token GitHub's documentation shows is illustrative: its checksum does not hold.
        assert!(!github_checksum_ok(
            "gho_16C7e42F292c6912E7710c838347Ae178B4a"
        ));
        let t = with_crc32_checksum("ghp_", "abcdefghijklmnopqrstuvwxyz0123");
        assert!(github_checksum_ok(&t));
        assert!(crc32_checksum_ok(
            &with_crc32_checksum("npm_", "Zx81kQ0pLm29vB7nR4tY6uW3eS5aD1"),
            4
        ));
    }

    #[test]
    fn jwt_needs_a_json_header_with_an_algorithm() {
        let good = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwiaWF0IjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2";
        assert!(jwt_ok(good));
        let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTQyIiwiaWF0IjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2";
        assert!(!jwt_ok(none));
        assert!(!jwt_ok(
            "eyJub3Rqc29u.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2"
        ));
    }

    #[test]
    fn private_key_needs_material() {
        assert!(!private_key_ok(
            "-----BEGIN RSA PRIVATE KEY-----\n...your key here...\n-----END RSA PRIVATE KEY-----"
        ));
        let body = "MIIEowIBAAKCAQEAx4Tq9mZ3vN1pQ8rS2tU5wX7yZ0aB3cD6eF9gH2iJ4kL7mN0oP3qR5sT8uV1wX4yZ6aB9cD2eF5gH8iJ0kL3mN6oP9qR1sT4uV7wX0yZ";
        assert!(private_key_ok(&format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
        )));
    }

    #[test]
    fn generic_rejects_placeholders_references_and_words() {
        let c = FileKind::Config;
        assert!(generic_ok("DB_PASSWORD", "k9#Qv2!mZx7Lp", false, c));
        assert!(generic_ok(
            "api_key",
            "a8f5f167f44f4964e6c998dee827110c",
            true,
            FileKind::Code
        ));
        assert!(!generic_ok(
            "api_key",
            "a8f5f167f44f4964e6c998dee827110c",
            false,
            FileKind::Code
        ));
        for v in [
            "${DB_PASSWORD}",
            "your-api-key-here",
            "changeme",
            "xxxxxxxxxxxx",
            "<TOKEN>",
            "process.env.TOKEN",
            "Password",
            "passwordInput",
            "12345678901",
        ] {
            assert!(!generic_ok("password", v, true, c), "{v}");
        }
        assert!(!generic_ok("password_hash", "k9#Qv2!mZx7Lp", true, c));
        assert!(!generic_ok("token_url", "k9#Qv2!mZx7Lp", true, c));
        assert!(!generic_ok("compass", "k9#Qv2!mZx7Lp", true, c));
        assert!(!generic_ok(
            "secret",
            "123e4567-e89b-12d3-a456-426614174000",
            true,
            c
        ));
        assert!(!generic_ok("apiKey", "AKIAIOSFODNN7EXAMPLE", true, c));
        assert!(generic_ok(
            "dbpassword",
            "FClpv6ygY364aSdXSTfMyaCfvAY8t7R4X",
            true,
            c
        ));
        assert!(generic_ok("app.api.key", "j#qbpXk^N2six", false, c));
        assert!(generic_ok(
            "auth_token",
            "CuJR_zsK%S%tr%5",
            true,
            FileKind::Code
        ));
        assert!(generic_ok("client_secret", "Xpz%doyCE5fB+cZt9", true, c));
        assert!(!generic_ok("password", "Pa55:%s@host", true, c));
    }

    #[test]
    fn url_password_rejects_placeholders() {
        assert!(url_password_ok("s3cr3tPa55"));
        for p in ["password", "${PGPASS}", "****", "<password>", "%s"] {
            assert!(!url_password_ok(p), "{p}");
        }
    }

    #[test]
    fn split_words_handles_cases() {
        assert_eq!(split_words("db.passwordHash"), ["db", "password", "hash"]);
        assert_eq!(split_words("API_KEY"), ["api", "key"]);
        assert_eq!(split_words("AWSSecretKey"), ["aws", "secret", "key"]);
    }
}
