//! `TestServer`: the real `coffer` binary on a free loopback port, its config, data and
//! captured output in a temp dir, and a blocking HTTP client that speaks to it.
//!
//! It waits for `sys/health` by polling a bounded number of times (never a fixed sleep), can
//! `kill9()` the process and `restart()` it on the same data dir and port, and kills the
//! process when dropped. It must not hide a failing server: a process that exits before it
//! answers fails the test with its captured stderr.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use serde_json::{json, Value};

/// How to start a server.
#[derive(Default, Clone)]
pub struct Options {
    /// Extra top-level HCL appended to the config (e.g. `max_request_size = 1024`).
    pub extra: String,
    /// Extra HCL inside the `listener "tcp"` block.
    pub listener_extra: String,
    /// Serve HTTPS with this certificate and key (PEM), trusted by the client.
    pub tls: Option<Tls>,
    /// `coffer server --dev` (in-memory, unsealed, root token `root`) instead of a config.
    pub dev: bool,
}

/// A server certificate: the client trusts `cert_pem` as a root.
#[derive(Clone)]
pub struct Tls {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A response: status and body, parsed as JSON when it is JSON (`Value::Null` otherwise).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

pub struct TestServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    opts: Options,
    port: u16,
    http: Client,
    runs: u32,
    /// The root token (after `init`, or `root` in dev mode).
    pub token: String,
    /// The unseal keys (base64) from `init`.
    pub keys: Vec<String>,
    /// The threshold from `init`.
    pub threshold: usize,
}

impl TestServer {
    /// A sqlite-backed server with a plain HTTP listener, not yet initialised.
    pub fn start() -> TestServer {
        TestServer::start_with(Options::default())
    }

    /// A sqlite-backed server, initialised (1 share), unsealed, with `secret/` as kv v2.
    pub fn unsealed() -> TestServer {
        let mut server = TestServer::start();
        server.init(1, 1);
        server.unseal();
        server.mount_kv2("secret");
        server
    }

    /// `coffer server --dev`: in-memory, unsealed, root token `root`, `secret/` kv v2.
    pub fn dev() -> TestServer {
        TestServer::start_with(Options {
            dev: true,
            ..Options::default()
        })
    }

    pub fn start_with(opts: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::create_dir_all(dir.path().join("data")).expect("the data dir");
        let http = client_for(opts.tls.as_ref());
        let mut server = TestServer {
            child: None,
            dir,
            token: if opts.dev {
                "root".into()
            } else {
                String::new()
            },
            opts,
            port: 0,
            http,
            runs: 0,
            keys: Vec::new(),
            threshold: 0,
        };
        // A port found free may be taken by a parallel test before the server binds it:
        // then try another.
        for attempt in 0.. {
            server.port = free_port();
            server.write_config();
            match server.spawn() {
                Ok(()) => break,
                Err(stderr) if stderr.contains("in use") && attempt < 5 => continue,
                Err(stderr) => panic!("coffer did not start:\n{stderr}"),
            }
        }
        server
    }

    /// The temp dir holding the config, `data/` and the captured output.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The sqlite data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `http(s)://127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        let scheme = if self.opts.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ADDR/v1/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.addr(), path.trim_start_matches('/'))
    }

    /// Everything the server processes printed so far (stdout and stderr of every run).
    pub fn log(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for run in 0..self.runs {
            for stream in ["out", "err"] {
                if let Ok(bytes) = std::fs::read(self.dir.path().join(format!("run{run}.{stream}")))
                {
                    all.extend(bytes);
                }
            }
        }
        all
    }

    /// A request with the root token.
    pub fn req(&self, method: &str, path: &str) -> RequestBuilder {
        self.req_as(&self.token, method, path)
    }

    /// A request with `token` (none when empty).
    pub fn req_as(&self, token: &str, method: &str, path: &str) -> RequestBuilder {
        let method = Method::from_bytes(method.as_bytes()).expect("a valid method");
        let builder = self.http.request(method, self.url(path));
        if token.is_empty() {
            builder
        } else {
            builder.header("X-Vault-Token", token)
        }
    }

    /// Sends `method path` with the root token and an optional JSON body.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_as(&self.token, method, path, body)
    }

    pub fn call_as(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        let mut builder = self.req_as(token, method, path);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        send(builder)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None)
    }

    pub fn put(&self, path: &str, body: Value) -> Resp {
        self.call("PUT", path, Some(body))
    }

    pub fn post(&self, path: &str, body: Value) -> Resp {
        self.call("POST", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.call("DELETE", path, None)
    }

    pub fn list(&self, path: &str) -> Resp {
        self.call("LIST", path, None)
    }

    /// `PUT sys/init`; keeps the keys and the root token.
    pub fn init(&mut self, shares: u32, threshold: u32) -> Value {
        let r = self.put(
            "sys/init",
            json!({"secret_shares": shares, "secret_threshold": threshold}),
        );
        assert_eq!(r.status, 200, "init: {r:?}");
        self.keys = r.body["keys_base64"]
            .as_array()
            .expect("keys_base64")
            .iter()
            .map(|k| k.as_str().expect("a key").to_owned())
            .collect();
        assert_eq!(self.keys.len(), shares as usize);
        self.token = r.body["root_token"]
            .as_str()
            .expect("root_token")
            .to_owned();
        self.threshold = threshold as usize;
        r.body
    }

    /// Submits the first `threshold` keys; asserts the server ends unsealed.
    pub fn unseal(&self) {
        let mut last = None;
        for key in &self.keys[..self.threshold] {
            let r = self.put("sys/unseal", json!({ "key": key }));
            assert_eq!(r.status, 200, "unseal: {r:?}");
            last = Some(r.body);
        }
        let last = last.expect("init was called");
        assert_eq!(last["sealed"], json!(false), "still sealed: {last}");
    }

    /// Enables a kv v2 mount at `path`.
    pub fn mount_kv2(&self, path: &str) {
        let r = self.post(
            &format!("sys/mounts/{path}"),
            json!({"type": "kv", "options": {"version": "2"}}),
        );
        assert_eq!(r.status, 204, "mount {path}: {r:?}");
    }

    /// Writes `data` at `secret/data/<path>` and asserts a 200.
    pub fn write_secret(&self, path: &str, data: Value) -> Resp {
        let r = self.put(&format!("secret/data/{path}"), json!({ "data": data }));
        assert_eq!(r.status, 200, "write secret/{path}: {r:?}");
        r
    }

    /// Reads `secret/data/<path>`'s data, asserting a 200.
    pub fn read_secret(&self, path: &str) -> Value {
        let r = self.get(&format!("secret/data/{path}"));
        assert_eq!(r.status, 200, "read secret/{path}: {r:?}");
        r.body["data"]["data"].clone()
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the server");
            child.wait().expect("reap the server");
        }
    }

    /// SIGTERM, then waits (bounded) for the process to exit on its own.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("kill runs");
            assert!(status.success());
            for _ in 0..400 {
                if child.try_wait().expect("try_wait").is_some() {
                    return;
                }
                std::thread::sleep(POLL);
            }
            child.kill().expect("SIGKILL after SIGTERM timed out");
            child.wait().expect("reap");
            panic!("coffer did not exit within 10 s of SIGTERM");
        }
    }

    /// Stops the server if it runs (SIGKILL) and starts it again on the same data dir and
    /// port; it comes back sealed (unless in dev mode).
    pub fn restart(&mut self) {
        self.kill9();
        if let Err(stderr) = self.spawn() {
            panic!("coffer did not restart:\n{stderr}");
        }
    }

    fn write_config(&self) {
        if self.opts.dev {
            return;
        }
        let listener_tls = match &self.opts.tls {
            Some(tls) => {
                let cert = self.dir.path().join("cert.pem");
                let key = self.dir.path().join("key.pem");
                std::fs::write(&cert, &tls.cert_pem).expect("write cert");
                std::fs::write(&key, &tls.key_pem).expect("write key");
                format!(
                    "  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n",
                    cert.display(),
                    key.display()
                )
            }
            None => "  tls_disable = true\n".to_owned(),
        };
        let config = format!(
            "storage \"sqlite\" {{\n  path = \"{data}\"\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n{listener_tls}  {listener_extra}\n}}\n\
             disable_mlock = true\n{extra}\n",
            data = self.data_dir().display(),
            port = self.port,
            extra = self.opts.extra,
            listener_extra = self.opts.listener_extra,
        );
        std::fs::write(self.dir.path().join("coffer.hcl"), config).expect("write config");
    }

    /// Starts the process and waits until `sys/health` answers; `Err(stderr)` if it exits
    /// first or never answers.
    fn spawn(&mut self) -> Result<(), String> {
        let run = self.runs;
        self.runs += 1;
        let out_path = self.dir.path().join(format!("run{run}.out"));
        let err_path = self.dir.path().join(format!("run{run}.err"));
        let out = std::fs::File::create(&out_path).expect("stdout file");
        let err = std::fs::File::create(&err_path).expect("stderr file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
        if self.opts.dev {
            cmd.args([
                "server",
                "--dev",
                "--dev-root-token-id",
                "root",
                "--dev-listen-address",
                &format!("127.0.0.1:{}", self.port),
            ]);
        } else {
            cmd.args(["server", "--config"])
                .arg(self.dir.path().join("coffer.hcl"));
        }
        let mut child = cmd
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn coffer");
        // Any answer to health counts, whatever the seal state (501, 503, 200).
        let health = self.url("sys/health");
        for _ in 0..600 {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
                return Err(format!("exited with {status}: {stderr}"));
            }
            if self
                .http
                .get(&health)
                .timeout(Duration::from_secs(2))
                .send()
                .is_ok()
            {
                self.child = Some(child);
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
        let _ = child.kill();
        let _ = child.wait();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        Err(format!("sys/health did not answer within 15 s: {stderr}"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Sends `method target` over a plain TCP connection exactly as written: no client cleans
/// the path (reqwest resolves `..` and `%2e%2e` before sending). Plain HTTP only.
pub fn send_raw(server: &TestServer, method: &str, target: &str, body: &[u8]) -> Resp {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a read timeout");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.token,
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let mut payload = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        payload = dechunk(&payload);
    }
    let text = String::from_utf8_lossy(&payload).into_owned();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, body, text }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16)
            .expect("a chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

/// Sends a request and reads the whole response.
pub fn send(builder: RequestBuilder) -> Resp {
    let resp = builder.send().expect("the server answers");
    let status = resp.status().as_u16();
    let text = resp.text().expect("a readable body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, body, text }
}

/// A client (optionally trusting `tls`'s certificate) with a timeout, so a hung server fails
/// the test instead of blocking it.
pub fn client_for(tls: Option<&Tls>) -> Client {
    let mut builder = Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(tls) = tls {
        let cert = reqwest::Certificate::from_pem(tls.cert_pem.as_bytes()).expect("a PEM cert");
        builder = builder
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(cert);
    }
    builder.build().expect("a client")
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// OpenBao's exact body for a sealed server.
pub fn sealed_body() -> Value {
    json!({"errors": ["Vault is sealed"]})
}

/// OpenBao's exact body for a permission denied.
pub fn denied_body() -> Value {
    json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
}

/// The interval between polls of a bounded wait (not a wait of its own).
const POLL: Duration = Duration::from_millis(25);
