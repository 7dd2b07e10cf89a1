//! A deterministic generator of realistic code and config files holding labelled true secrets
//! among many decoys (placeholders, documented examples, lock-file hashes, UUIDs, commit ids,
//! data URIs, minified bundles, tokens with wrong checksums, public keys, i18n labels...).
//!
//! Shared by `tests/corpus.rs` (precision/recall asserted) and `examples/corpus.rs` (writes it to
//! disk for the benchmark against other scanners).

#![allow(dead_code)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use coffer_scan::testkit::with_crc32_checksum;

/// A generated file tree and where its real secrets are.
pub struct Corpus {
    /// (relative path, content)
    pub files: Vec<(String, String)>,
    /// Every real secret: file, 1-based line, kind.
    pub labels: Vec<Label>,
}

/// One real secret.
#[derive(Clone, Debug)]
pub struct Label {
    pub file: String,
    pub line: usize,
    pub kind: String,
}

/// splitmix64: small, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn s(&mut self, alphabet: &str, n: usize) -> String {
        let a = match alphabet {
            "A2" => "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
            "AD" => "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            "a" => "abcdefghijklmnopqrstuvwxyz",
            "0" => "0123456789",
            "x" => "0123456789abcdef",
            "b" => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            "B" => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            "u" => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            "p" => "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!@#%^&*-_+=",
            other => other,
        }
        .as_bytes();
        (0..n).map(|_| a[self.below(a.len())] as char).collect()
    }
    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.s("x", 8),
            self.s("x", 4),
            self.s("x", 3),
            self.s("x", 3),
            self.s("x", 12)
        )
    }
}

/// A real secret: the value, and a kind for reports.
struct Secret {
    kind: &'static str,
    value: String,
}

fn real_token(r: &mut Rng) -> Secret {
    let (kind, value) = match r.below(24) {
        0 => ("aws-access-key-id", format!("AKIA{}", r.s("A2", 16))),
        1 => ("github-pat", with_crc32_checksum("ghp_", &r.s("b", 30))),
        2 => (
            "github-app-token",
            with_crc32_checksum("ghs_", &r.s("b", 30)),
        ),
        3 => ("gitlab-pat", format!("glpat-{}", r.s("u", 20))),
        4 => (
            "slack-bot-token",
            format!("xoxb-{}-{}-{}", r.s("0", 11), r.s("0", 13), r.s("b", 24)),
        ),
        5 => ("stripe-secret-key", format!("sk_live_{}", r.s("b", 34))),
        6 => ("openai-api-key", format!("sk-proj-{}", r.s("u", 74))),
        7 => (
            "anthropic-api-key",
            format!("sk-ant-api03-{}AA", r.s("u", 93)),
        ),
        8 => ("npm-token", with_crc32_checksum("npm_", &r.s("b", 30))),
        9 => (
            "sendgrid-api-key",
            format!("SG.{}.{}", r.s("u", 22), r.s("u", 43)),
        ),
        10 => ("gcp-api-key", format!("AIza{}", r.s("u", 35))),
        11 => (
            "pypi-token",
            format!("pypi-AgEIcHlwaS5vcmc{}", r.s("u", 70)),
        ),
        12 => ("dockerhub-pat", format!("dckr_pat_{}", r.s("u", 27))),
        13 => ("digitalocean-token", format!("dop_v1_{}", r.s("x", 64))),
        14 => (
            "huggingface-token",
            format!(
                "hf_{}",
                r.s("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 34)
            ),
        ),
        15 => ("shopify-token", format!("shpat_{}", r.s("x", 32))),
        16 => ("vault-token", format!("hvs.{}", r.s("u", 90))),
        17 => ("linear-api-key", format!("lin_api_{}", r.s("b", 40))),
        18 => ("sentry-token", format!("sntryu_{}", r.s("x", 64))),
        19 => ("mailgun-api-key", format!("key-{}", r.s("x", 32))),
        20 => (
            "postman-api-key",
            format!("PMAK-{}-{}", r.s("x", 24), r.s("x", 34)),
        ),
        21 => (
            "grafana-token",
            format!("glsa_{}_{}", r.s("b", 32), r.s("x", 8)),
        ),
        22 => ("new-relic-key", format!("NRAK-{}", r.s("AD", 27))),
        _ => ("jwt", {
            let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
            let p = URL_SAFE_NO_PAD.encode(format!(
                r#"{{"sub":"svc-{}","iat":{}}}"#,
                r.s("a", 6),
                1_700_000_000 + r.below(9_999_999)
            ));
            format!("{h}.{p}.{}", r.s("u", 43))
        }),
    };
    Secret { kind, value }
}

fn real_password(r: &mut Rng) -> String {
    match r.below(4) {
        0 => {
            let n = 12 + r.below(12);
            r.s("p", n)
        }
        1 => {
            let n = 24 + r.below(16);
            r.s("b", n)
        }
        2 => r.s("x", 32),
        _ => format!("{}{}{}", r.s("b", 6), r.s("!@#%&*", 1), r.s("b", 8)),
    }
}

fn private_key(r: &mut Rng, kind: &str) -> String {
    let body: Vec<String> = (0..12).map(|_| r.s("B", 64)).collect();
    format!(
        "-----BEGIN {kind}PRIVATE KEY-----\n{}\n-----END {kind}PRIVATE KEY-----",
        body.join("\n")
    )
}

/// Names a secret's variable the way each format does.
const SECRET_NAMES: &[&str] = &[
    "password",
    "db_password",
    "DB_PASSWORD",
    "api_key",
    "API_KEY",
    "secret_key",
    "SECRET_KEY",
    "client_secret",
    "auth_token",
    "access_token",
    "apiKey",
    "dbPassword",
    "clientSecret",
    "smtp_password",
    "REDIS_PASSWORD",
    "jwt_secret",
    "signing_key",
    "encryption_key",
];

/// Filler: ordinary code per language.
fn filler(r: &mut Rng, ext: &str) -> String {
    let id = r.s("a", 6);
    let n = r.below(1000);
    let opts: Vec<String> = match ext {
        "py" => vec![
            format!("def handle_{id}(request):"),
            format!("    return render(request, \"{id}.html\", {{\"count\": {n}}})"),
            format!("import {id}"),
            format!("logger.info(\"processed %d items\", {n})"),
            format!("    if user.check_password(form.cleaned_data[\"password\"]):"),
            format!("    token = request.headers.get(\"Authorization\")"),
            "    password = getpass.getpass(\"Password: \")".to_string(),
            format!("    api_key = settings.API_KEY  # {id}"),
            "    secret = os.environ.get(\"APP_SECRET\")".to_string(),
            format!("    for {id} in range({n}):"),
            "# Reset the password token after use".to_string(),
        ],
        "js" | "ts" => vec![
            format!("export function {id}(props) {{"),
            format!("  const [{id}, set{id}] = useState({n});"),
            "  const token = localStorage.getItem('token');".to_string(),
            "  headers: { Authorization: `Bearer ${token}` },".to_string(),
            "  const apiKey = process.env.API_KEY;".to_string(),
            format!("  return fetch('/api/{id}').then((r) => r.json());"),
            "  password: yup.string().min(8).required('Password is required'),".to_string(),
            format!("import {{ {id} }} from './{id}';"),
            "}".to_string(),
        ],
        "go" => vec![
            format!("func {id}(w http.ResponseWriter, r *http.Request) {{"),
            "\ttoken := r.Header.Get(\"X-Auth-Token\")".to_string(),
            "\tpassword := os.Getenv(\"DB_PASSWORD\")".to_string(),
            format!("\tif err != nil {{ return fmt.Errorf(\"{id}: %w\", err) }}"),
            "}".to_string(),
            format!("\tn := {n}"),
        ],
        "java" => vec![
            format!("    public void {id}(String password) {{"),
            "        this.password = password;".to_string(),
            "        String token = request.getHeader(\"Authorization\");".to_string(),
            format!("        int count = {n};"),
            "    }".to_string(),
        ],
        "yaml" => vec![
            format!("  {id}: {n}"),
            "  replicas: 3".to_string(),
            "  password: ${DB_PASSWORD}".to_string(),
            "  image: registry.internal/app:1.4.2".to_string(),
            format!("  name: {id}-service"),
            "  secretName: app-tls".to_string(),
        ],
        "env" => vec![
            format!("APP_NAME={id}"),
            format!("PORT={}", 3000 + n),
            "LOG_LEVEL=info".to_string(),
            "DB_HOST=db.internal".to_string(),
        ],
        _ => vec![
            format!("{id} = {n}"),
            format!("# {id} settings"),
            String::new(),
        ],
    };
    r.pick(&opts).clone()
}

/// A decoy line that looks like a secret to naive scanners but is not one.
fn decoy(r: &mut Rng, ext: &str) -> String {
    let name = *r.pick(SECRET_NAMES);
    let q = if matches!(ext, "py" | "js" | "ts" | "go" | "java" | "rb" | "php") {
        "\""
    } else {
        ""
    };
    let bad_gh = format!("ghp_{}", r.s("b", 36));
    let bad_npm = format!("npm_{}", r.s("b", 36));
    let hex40 = r.s("x", 40);
    let options = vec![
        format!("{name} = {q}your-api-key-here{q}"),
        format!("{name} = {q}changeme{q}"),
        format!("{name}: {q}<{}>{q}", name.to_uppercase()),
        format!("{name} = {q}${{{}}}{q}", name.to_uppercase()),
        format!("{name}: {q}xxxxxxxxxxxxxxxxxxxxxxxx{q}"),
        format!("{name} = {q}REPLACE_ME{q}"),
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE".to_string(),
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string(),
        format!("request_id = {q}{}{q}", r.uuid()),
        format!("tenant_id: {q}{}{q}", r.uuid()),
        format!("commit: {hex40}"),
        format!("rev = {q}{hex40}{q}"),
        format!("sha256 = {q}{}{q}", r.s("x", 64)),
        format!("checksum: sha256:{}", r.s("x", 64)),
        format!("icon = {q}data:image/png;base64,{}{q}", r.s("B", 120)),
        format!("fixture_token = {q}{bad_gh}{q}"),
        format!("//registry.npmjs.org/:_authToken={bad_npm}"),
        format!("password_label = {q}Enter your password{q}"),
        format!("passwordMinLength = {}", 8 + r.below(8)),
        format!("token_type = {q}Bearer{q}"),
        format!("secret_name = {q}prod-db-credentials{q}"),
        format!("password_hash = {q}$2b$12${}{q}", r.s("B", 53)),
        format!("token_url = {q}https://auth.internal/oauth/token{q}"),
        "DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app".to_string(),
        "REDIS_URL=redis://localhost:6379/0".to_string(),
        "url = \"https://user@github.com/acme/repo.git\"".to_string(),
        format!("public_key = {q}ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{} deploy@ci{q}", r.s("B", 43)),
        format!("{name} = {q}test{}{q}", r.s("a", 8)),
        format!("nonce = {q}{}{q}", r.s("B", 24)),
        format!("etag = {q}W/\"{}\"{q}", r.s("x", 32)),
        "const jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';".to_string(),
        format!("{name} = {q}sk_live_{}{q}", "x".repeat(24)),
        format!("build_id = {q}{}{q}", r.s("b", 32)),
        format!("session_cookie_name = {q}{}{q}", r.s("a", 10)),
        format!("cache_key = {q}{}{q}", r.s("x", 32)),
    ];
    r.pick(&options).clone()
}

/// A line assigning `value` to a secret-looking name, in the syntax of `ext`.
fn assignment(r: &mut Rng, ext: &str, value: &str) -> String {
    let name = *r.pick(SECRET_NAMES);
    assign_named(ext, name, value)
}

fn assign_named(ext: &str, name: &str, value: &str) -> String {
    let upper = name.to_uppercase();
    match ext {
        "py" => format!("{name} = \"{value}\""),
        "js" | "ts" => format!("const {name} = '{value}';"),
        "go" => format!("\t{name} := \"{value}\""),
        "java" => format!("    private static final String {upper} = \"{value}\";"),
        "rb" => format!("  config.{name} = '{value}'"),
        "php" => format!("    '{name}' => '{value}',"),
        "yaml" => format!("  {name}: {value}"),
        "json" => format!("  \"{name}\": \"{value}\","),
        "env" => format!("{upper}={value}"),
        "properties" => format!("app.{}={value}", name.to_lowercase().replace('_', ".")),
        "tf" => format!("  {} = \"{value}\"", name.to_lowercase()),
        "Dockerfile" => format!("ENV {upper}={value}"),
        "toml" | "ini" => format!("{} = \"{value}\"", name.to_lowercase()),
        _ => format!("{name}={value}"),
    }
}

/// Generates `n` files with a fixed seed.
pub fn generate(seed: u64, n: usize) -> Corpus {
    let mut r = Rng::new(seed);
    let mut files = Vec::new();
    let mut labels = Vec::new();
    const EXTS: &[&str] = &[
        "py",
        "js",
        "ts",
        "go",
        "java",
        "rb",
        "php",
        "yaml",
        "json",
        "env",
        "properties",
        "tf",
        "Dockerfile",
        "toml",
        "ini",
    ];
    for i in 0..n {
        let dir = *r.pick(&[
            "src",
            "app",
            "config",
            "deploy",
            "services/api",
            "services/web",
            "scripts",
            "infra",
            "test",
        ]);
        let special = r.below(20);
        let (path, content, file_labels) = match special {
            0 => lock_file(&mut r, dir, i),
            1 => k8s_secret(&mut r, dir, i),
            2 => minified_bundle(&mut r, dir, i),
            3 => service_account(&mut r, dir, i),
            4 => markdown_doc(&mut r, dir, i),
            _ => {
                let ext = *r.pick(EXTS);
                source_file(&mut r, dir, i, ext)
            }
        };
        for (line, kind) in file_labels {
            labels.push(Label {
                file: path.clone(),
                line,
                kind,
            });
        }
        files.push((path, content));
    }
    Corpus { files, labels }
}

type Generated = (String, String, Vec<(usize, String)>);

fn source_file(r: &mut Rng, dir: &str, i: usize, ext: &str) -> Generated {
    let path = if ext == "Dockerfile" {
        format!("{dir}/svc{i}/Dockerfile")
    } else if ext == "env" {
        format!("{dir}/svc{i}/.env")
    } else {
        format!("{dir}/mod{i}.{ext}")
    };
    let mut lines = Vec::new();
    let mut labels = Vec::new();
    let len = 30 + r.below(120);
    while lines.len() < len {
        let roll = r.below(100);
        if roll < 3 {
            let t = real_token(r);
            let line = match r.below(3) {
                0 if ext != "json" => {
                    let f = filler(r, ext);
                    format!("{f}  {}", comment(ext, &format!("deploy with {}", t.value)))
                }
                _ => assignment(r, ext, &t.value),
            };
            lines.push(line);
            labels.push((lines.len(), t.kind.to_string()));
        } else if roll < 5 {
            let v = real_password(r);
            lines.push(assignment(r, ext, &v));
            labels.push((lines.len(), "generic-password".to_string()));
        } else if roll < 6 {
            let pw = r.s("b", 16);
            let scheme = *r.pick(&["postgres", "mysql", "mongodb+srv", "redis", "amqp", "https"]);
            let (user, host) = (r.s("a", 4), r.below(9));
            let name = *r.pick(&[
                "DATABASE_URL",
                "db_url",
                "REDIS_URL",
                "broker_url",
                "mongoUri",
                "upstream",
            ]);
            lines.push(assign_named(
                ext,
                name,
                &format!("{scheme}://svc_{user}:{pw}@db{host}.internal:5432/app"),
            ));
            labels.push((lines.len(), "url-with-password".to_string()));
        } else if roll < 7 && matches!(ext, "py" | "rb" | "yaml" | "env") {
            let kind = *r.pick(&["RSA ", "EC ", "OPENSSH ", ""]);
            let key = private_key(r, kind);
            lines.push("PRIVATE_KEY = \"\"\"".to_string());
            labels.push((lines.len() + 1, "private-key".to_string()));
            lines.extend(key.lines().map(str::to_string));
            lines.push("\"\"\"".to_string());
        } else if roll < 22 {
            lines.push(decoy(r, ext));
        } else {
            lines.push(filler(r, ext));
        }
    }
    (path, lines.join("\n") + "\n", labels)
}

fn comment(ext: &str, text: &str) -> String {
    match ext {
        "py" | "rb" | "yaml" | "env" | "properties" | "tf" | "Dockerfile" | "toml" | "ini" => {
            format!("# {text}")
        }
        "json" => String::new(),
        _ => format!("// {text}"),
    }
}

fn lock_file(r: &mut Rng, dir: &str, i: usize) -> Generated {
    let mut lines = Vec::new();
    let which = r.below(3);
    let path = match which {
        0 => format!("{dir}/pkg{i}/package-lock.json"),
        1 => format!("{dir}/crate{i}/Cargo.lock"),
        _ => format!("{dir}/mod{i}/go.sum"),
    };
    for _ in 0..(40 + r.below(80)) {
        let name = r.s("a", 7);
        match which {
            0 => {
                lines.push(format!("    \"node_modules/{name}\": {{"));
                lines.push(format!("      \"resolved\": \"https://registry.npmjs.org/{name}/-/{name}-1.2.{}.tgz\",", r.below(20)));
                lines.push(format!(
                    "      \"integrity\": \"sha512-{}==\"",
                    r.s("B", 86)
                ));
                lines.push("    },".to_string());
            }
            1 => {
                lines.push("[[package]]".to_string());
                lines.push(format!("name = \"{name}\""));
                lines.push(format!("checksum = \"{}\"", r.s("x", 64)));
            }
            _ => {
                lines.push(format!(
                    "github.com/{name}/{name} v1.{}.0 h1:{}=",
                    r.below(9),
                    r.s("B", 43)
                ));
                lines.push(format!(
                    "github.com/{name}/{name} v1.{}.0/go.mod h1:{}=",
                    r.below(9),
                    r.s("B", 43)
                ));
            }
        }
    }
    (path, lines.join("\n") + "\n", Vec::new())
}

fn k8s_secret(r: &mut Rng, dir: &str, i: usize) -> Generated {
    let pw = real_password(r);
    let lines = [
        "apiVersion: v1".to_string(),
        "kind: Secret".to_string(),
        "metadata:".to_string(),
        format!("  name: app{i}-credentials"),
        "type: Opaque".to_string(),
        "data:".to_string(),
        format!("  username: {}", STANDARD.encode("app")),
        format!("  password: {}", STANDARD.encode(&pw)),
        format!("  host: {}", STANDARD.encode("db.internal")),
    ];
    (
        format!("{dir}/k8s/app{i}-secret.yaml"),
        lines.join("\n") + "\n",
        vec![(8, "kubernetes-secret".to_string())],
    )
}

fn minified_bundle(r: &mut Rng, dir: &str, i: usize) -> Generated {
    let mut s = String::from("!function(e){");
    for _ in 0..60 {
        s.push_str(&format!(
            "var {}=\"{}\",token=\"{}\";",
            r.s("a", 2),
            r.s("b", 24),
            r.s("B", 32)
        ));
        s.push_str(&format!(
            "e.apiKey=\"{}\";function {}(t){{return t.secret||\"{}\"}}",
            r.s("b", 20),
            r.s("a", 3),
            r.s("b", 16)
        ));
    }
    s.push_str("}(window);");
    (format!("{dir}/static/app{i}.min.js"), s + "\n", Vec::new())
}

fn service_account(r: &mut Rng, dir: &str, i: usize) -> Generated {
    let body: Vec<String> = (0..12).map(|_| r.s("B", 64)).collect();
    let key = format!(
        "-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\\n",
        body.join("\\n")
    );
    let lines = [
        "{".to_string(),
        "  \"type\": \"service_account\",".to_string(),
        format!("  \"project_id\": \"acme-{}\",", r.s("a", 6)),
        format!("  \"private_key_id\": \"{}\",", r.s("x", 40)),
        format!("  \"private_key\": \"{key}\","),
        format!(
            "  \"client_email\": \"svc@acme-{}.iam.gserviceaccount.com\",",
            r.s("a", 6)
        ),
        format!("  \"client_id\": \"{}\"", r.s("0", 21)),
        "}".to_string(),
    ];
    (
        format!("{dir}/gcp/sa{i}.json"),
        lines.join("\n") + "\n",
        vec![(5, "gcp-service-account".to_string())],
    )
}

fn markdown_doc(r: &mut Rng, dir: &str, i: usize) -> Generated {
    let lines = [
        "# Configuration".to_string(),
        String::new(),
        "Set your credentials in the environment:".to_string(),
        String::new(),
        "```bash".to_string(),
        "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE".to_string(),
        "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string(),
        "export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_string(),
        "export DATABASE_URL=postgres://user:password@localhost:5432/app".to_string(),
        "export API_KEY=<your-api-key>".to_string(),
        "```".to_string(),
        String::new(),
        "-----BEGIN RSA PRIVATE KEY-----".to_string(),
        "...".to_string(),
        "-----END RSA PRIVATE KEY-----".to_string(),
        String::new(),
        format!("See also the [{}](./{}.md) page.", r.s("a", 6), r.s("a", 6)),
        "-----BEGIN PUBLIC KEY-----".to_string(),
        r.s("B", 64),
        r.s("B", 64),
        "-----END PUBLIC KEY-----".to_string(),
    ];
    (
        format!("{dir}/docs/setup{i}.md"),
        lines.join("\n") + "\n",
        Vec::new(),
    )
}
