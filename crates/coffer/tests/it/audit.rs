//! Audit devices end to end: the real binary with `audit` blocks in its config, real files,
//! `coffer audit verify`, and SIGHUP rotation.
//!
//! Starts its own servers (a config with audit blocks and an init/unseal), since they need
//! config text of their own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

/// A marker written as a secret: it must never appear in plaintext in an audit file.
const SECRET_MARKER: &str = "MARKER-SECRET-7f3a";
/// A marker used as a token id.
const TOKEN_MARKER: &str = "s.MARKERTOKEN7f3a0000000000";

struct AuditServer {
    child: Child,
    addr: String,
    token: String,
    http: Client,
    dir: tempfile::TempDir,
}

impl AuditServer {
    /// Starts the binary with `audit_blocks` (use `{dir}` for the temp dir), initialises and
    /// unseals it, and mounts `secret/` as kv v2.
    fn start(audit_blocks: &str) -> AuditServer {
        AuditServer::start_in(tempfile::tempdir().unwrap(), audit_blocks)
    }

    /// As `start`, in a temp dir the caller prepared.
    fn start_in(dir: tempfile::TempDir, audit_blocks: &str) -> AuditServer {
        let port = free_port();
        let addr = format!("http://127.0.0.1:{port}");
        let config = format!(
            "storage \"sqlite\" {{\n  path = \"{data}\"\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n{blocks}",
            data = dir.path().join("data").display(),
            blocks = audit_blocks.replace("{dir}", &dir.path().display().to_string()),
        );
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let config_path = dir.path().join("coffer.hcl");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(["server", "--config"])
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http = Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{addr}/v1/sys/health")).send().is_err() {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let init: Value = http
            .put(format!("{addr}/v1/sys/init"))
            .json(&json!({"secret_shares": 1, "secret_threshold": 1}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let key = init["keys_base64"][0].as_str().unwrap().to_owned();
        let token = init["root_token"].as_str().unwrap().to_owned();
        let status = http
            .put(format!("{addr}/v1/sys/unseal"))
            .json(&json!({ "key": key }))
            .send()
            .unwrap()
            .status();
        assert!(status.is_success());
        let server = AuditServer {
            child,
            addr,
            token,
            http,
            dir,
        };
        let status = server.call(
            "POST",
            "sys/mounts/secret",
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        );
        assert!(status.0 < 300, "mount: {status:?}");
        server
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// One API call with the root token: status and body.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(&self.token, method, path, body)
    }

    fn call_as(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn write_secret(&self, name: &str, value: &str) -> u16 {
        self.call(
            "POST",
            &format!("secret/data/{name}"),
            Some(json!({"data": {"value": value}})),
        )
        .0
    }

    /// `coffer audit verify FILES...` with the key fetched from this server.
    fn verify(&self, files: &[&Path]) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .arg("audit")
            .arg("verify")
            .args(files)
            .args(["--address", &self.addr, "--device", "file"])
            .env("COFFER_TOKEN", &self.token)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for AuditServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn file_block(name: &str, file: &str) -> String {
    format!(
        "audit \"file\" \"{name}\" {{\n  options {{\n    file_path = \"{{dir}}/{file}\"\n    write_timeout = \"1s\"\n  }}\n}}\n"
    )
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn marker_secrets_and_tokens_never_appear_in_plaintext() {
    let server = AuditServer::start(&file_block("file", "audit.log"));
    assert_eq!(server.write_secret("app", SECRET_MARKER), 200);
    let (status, _) = server.call(
        "POST",
        "auth/token/create",
        Some(json!({"id": TOKEN_MARKER, "policies": ["default"]})),
    );
    assert_eq!(status, 200);
    // The marker token is presented (denied: default policy) and looked up.
    let (status, _) = server.call_as(TOKEN_MARKER, "GET", "secret/data/app", None);
    assert_eq!(status, 403);
    let (status, _) = server.call_as(TOKEN_MARKER, "GET", "auth/token/lookup-self", None);
    assert_eq!(status, 200);
    let (status, body) = server.call("GET", "secret/data/app", None);
    assert_eq!(
        (status, &body["data"]["data"]["value"]),
        (200, &json!(SECRET_MARKER))
    );

    let text = std::fs::read_to_string(server.path("audit.log")).unwrap();
    assert!(text.lines().count() >= 8);
    for marker in [SECRET_MARKER, TOKEN_MARKER, server.token.as_str()] {
        assert!(!text.contains(marker), "a marker leaked into the audit log");
    }
    let (_, hash) = server.call(
        "POST",
        "sys/audit-hash/file",
        Some(json!({"input": SECRET_MARKER})),
    );
    let hash = hash["data"]["hash"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("hmac-sha256:"));
    assert!(text.contains(&hash), "the secret is recorded, hashed");
    let denied = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| {
            e["type"] == "request"
                && e["error"]
                    .as_str()
                    .is_some_and(|m| m.contains("permission denied"))
        })
        .expect("the denied request is recorded");
    assert_eq!(denied["request"]["path"], "secret/data/app");
}

#[test]
fn edits_deletions_swaps_and_cut_tails_are_detected() {
    let server = AuditServer::start(&file_block("file", "audit.log"));
    for i in 0..4 {
        assert_eq!(server.write_secret(&format!("s{i}"), "v"), 200);
    }
    let log = server.path("audit.log");
    let (ok, out) = server.verify(&[&log]);
    assert!(ok, "{out}");
    assert!(out.starts_with("OK: "), "{out}");

    let original = lines(&log);
    let tampered = server.path("tampered.log");
    let check = |content: Vec<String>, expect: &str| {
        std::fs::write(&tampered, content.concat()).unwrap();
        let (ok, out) = server.verify(&[&tampered]);
        assert!(!ok, "tampering went unnoticed ({expect}): {out}");
        assert!(out.contains(expect), "expected {expect:?} in {out}");
    };

    let mut edited = original.clone();
    edited[3] = edited[3].replacen("\"update\"", "\"read\"", 1);
    assert_ne!(edited[3], original[3]);
    check(edited, "tampered.log:4: entry was modified");

    let mut deleted = original.clone();
    deleted.remove(4);
    check(deleted, "tampered.log:5: 1 entry deleted");

    let mut swapped = original.clone();
    swapped.swap(5, 6);
    check(swapped, "tampered.log:6: entries reordered");

    let cut = original[..original.len() - 3].to_vec();
    check(cut, "cut off the tail");
}

#[test]
fn an_unwritable_device_blocks_requests_unless_another_records_them() {
    // One device, its directory removed: requests are refused and not executed.
    let blocks = "audit \"file\" \"file\" {\n  options {\n    file_path = \"{dir}/logs/audit.log\"\n    write_timeout = \"1s\"\n  }\n}\n";
    let server = start_with_dir(blocks, "logs");
    std::fs::remove_dir_all(server.path("logs")).unwrap();
    let refused = first_refused_write(&server, "gone");
    std::fs::create_dir_all(server.path("logs")).unwrap();
    let (status, _) = server.call("GET", &format!("secret/data/{refused}"), None);
    assert_eq!(status, 404, "the refused write must not have run");

    // The file made read-only: refused too.
    let log = server.path("logs/audit.log");
    set_mode(&log, 0o400);
    let refused = first_refused_write(&server, "readonly");
    set_mode(&log, 0o600);
    let (status, _) = server.call("GET", &format!("secret/data/{refused}"), None);
    assert_eq!(status, 404, "the refused write must not have run");
    assert_eq!(server.write_secret("flows", "v"), 200);

    // Two devices, one broken: requests flow.
    let blocks = format!("{blocks}{}", file_block("second", "second.log"));
    let server = start_with_dir(&blocks, "logs");
    std::fs::remove_dir_all(server.path("logs")).unwrap();
    assert_eq!(server.write_secret("flows", "v"), 200);
    let second = std::fs::read_to_string(server.path("second.log")).unwrap();
    assert!(second.contains("secret/data/flows"));

    // sys/health names the failing device and when it started failing (once the device has
    // checked its file, a few times a second).
    let mut health = Value::Null;
    for _ in 0..100 {
        assert_eq!(server.write_secret("flows", "v"), 200);
        health = server.call("GET", "sys/health", None).1;
        if health.to_string().contains("\"failing\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let devices = health["audit_devices"]
        .as_array()
        .expect("audit_devices in sys/health");
    let state = |name: &str| {
        devices
            .iter()
            .find(|d| d["path"].as_str().is_some_and(|p| p.starts_with(name)))
            .unwrap_or_else(|| panic!("device {name} in {health}"))
            .clone()
    };
    assert_eq!(state("file")["status"], "failing", "{health}");
    assert!(state("file")["failing_since"].is_string(), "{health}");
    assert_eq!(state("second")["status"], "healthy", "{health}");

    // And sys/metrics, in Prometheus text.
    let metrics = server
        .http
        .get(format!("{}/v1/sys/metrics", server.addr))
        .header("X-Vault-Token", &server.token)
        .send()
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().unwrap();
    let line = |device: &str| {
        text.lines()
            .find(|l| l.starts_with("coffer_audit_device_healthy") && l.contains(device))
            .unwrap_or_else(|| panic!("{device} in {text}"))
            .to_owned()
    };
    assert!(line("\"file").ends_with(" 0"), "{text}");
    assert!(line("\"second").ends_with(" 1"), "{text}");
    assert!(
        text.contains("coffer_requests_total{outcome=\"ok\"}"),
        "{text}"
    );
}

#[test]
fn sighup_rotation_keeps_the_chain_verifiable() {
    let server = AuditServer::start(&file_block("file", "audit.log"));
    assert_eq!(server.write_secret("before", "v"), 200);
    let log = server.path("audit.log");
    let rotated = server.path("audit.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    server.hangup();
    assert_eq!(server.write_secret("after", "v"), 200);
    assert!(log.exists(), "a new file was started");
    let (ok, out) = server.verify(&[&rotated, &log]);
    assert!(ok, "{out}");
    // Either file alone is incomplete: the first lacks the tail, the second the start.
    let (ok, out) = server.verify(&[&rotated]);
    assert!(!ok && out.contains("cut off"), "{out}");
    let (ok, out) = server.verify(&[&log]);
    assert!(ok && out.contains("continues an earlier file"), "{out}");
}

/// A server whose temp dir holds `subdir` before it starts (where a device writes).
fn start_with_dir(blocks: &str, subdir: &str) -> AuditServer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(subdir)).unwrap();
    AuditServer::start_in(dir, blocks)
}

/// Writes secrets under new names until one is refused, then one more, which must be refused
/// too, and returns its name. A device looks at its file a few times a second, not on every
/// write, so it notices a broken file within a few writes, possibly while recording a response
/// (that write ran); from then on it checks the file on every write, so requests are refused
/// before they run.
fn first_refused_write(server: &AuditServer, prefix: &str) -> String {
    (0..100)
        .map(|i| format!("{prefix}{i}"))
        .find(|name| {
            let status = server.write_secret(name, "v");
            assert!(status == 200 || status == 500, "status {status}");
            std::thread::sleep(Duration::from_millis(20));
            status == 500
        })
        .expect("a write to a broken audit device is refused");
    let name = format!("{prefix}-after");
    assert_eq!(server.write_secret(&name, "v"), 500);
    name
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
