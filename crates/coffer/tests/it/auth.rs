//! Auth methods end to end, through the real binary, with the clients users have: hvac and
//! the bao CLI log in with userpass, approle and jwt; a brute-forced userpass login is locked
//! out; logins need no token while the methods' admin paths do; no password reaches the log.
//!
//! Starts its own dev server (`coffer server --dev`) with its output captured to a file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

const ROOT: &str = "it-root-token";

/// A dev server on a free loopback port, killed on drop.
struct DevServer {
    child: Child,
    addr: String,
    http: Client,
    dir: tempfile::TempDir,
}

impl DevServer {
    fn start() -> DevServer {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(["server", "--dev", "--dev-root-token-id", ROOT])
            .arg(format!("--dev-listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let addr = format!("http://127.0.0.1:{port}");
        let http = Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.get(format!("{addr}/v1/sys/health")).send().is_err() {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        DevServer {
            child,
            addr,
            http,
            dir,
        }
    }

    /// A request with `token` (none when empty); answers the status and the JSON body.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr));
        if !token.is_empty() {
            req = req.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn root(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, body) = self.call(method, path, ROOT, Some(body));
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }

    fn enable_auth(&self, path: &str, kind: &str) {
        self.root("POST", &format!("sys/auth/{path}"), json!({ "type": kind }));
    }

    /// The policies of `token`, from lookup-self.
    fn policies_of(&self, token: &str) -> Vec<String> {
        let (status, body) = self.call("GET", "auth/token/lookup-self", token, None);
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_value(body["data"]["policies"].clone()).unwrap()
    }

    /// Runs a Python snippet with an `hvac.Client` named `client` bound to this server;
    /// answers what the snippet prints as JSON.
    fn hvac(&self, snippet: &str) -> Value {
        let script = format!(
            "import hvac, json, sys\nclient = hvac.Client(url={:?})\n{snippet}\n",
            self.addr
        );
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hvac failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs the bao CLI against this server without a token.
    fn bao(&self, args: &[&str]) -> Output {
        Command::new("bao")
            .args(args)
            .env("VAULT_ADDR", &self.addr)
            .env("BAO_ADDR", &self.addr)
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_TOKEN")
            .env("HOME", self.dir.path())
            .output()
            .expect("bao is on PATH")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token_of(bao_json: &Output) -> String {
    assert!(
        bao_json.status.success(),
        "bao failed: {}",
        String::from_utf8_lossy(&bao_json.stderr)
    );
    let v: Value = serde_json::from_slice(&bao_json.stdout).unwrap();
    v["auth"]["client_token"].as_str().unwrap().to_owned()
}

#[test]
fn userpass_logins_with_hvac_and_the_bao_cli() {
    let server = DevServer::start();
    server.enable_auth("userpass", "userpass");
    server.root(
        "POST",
        "sys/policies/acl/dev",
        json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"}),
    );
    let password = "correct-horse-battery-4d1f";
    server.root(
        "POST",
        "auth/userpass/users/alice",
        json!({"password": password, "token_policies": "dev", "token_ttl": "1h"}),
    );

    let login = server.hvac(&format!(
        "r = client.auth.userpass.login(username='alice', password={password:?})\nprint(json.dumps(r['auth']))"
    ));
    let token = login["client_token"].as_str().unwrap();
    assert_eq!(login["metadata"]["username"], "alice");
    assert_eq!(login["lease_duration"], 3600);
    assert_eq!(server.policies_of(token), ["default", "dev"]);

    let out = server.bao(&[
        "login",
        "-method=userpass",
        "-no-store",
        "-format=json",
        "username=alice",
        &format!("password={password}"),
    ]);
    assert_eq!(server.policies_of(&token_of(&out)), ["default", "dev"]);

    // A wrong password: the same 400 as an unknown user.
    let (status, body) = server.call(
        "POST",
        "auth/userpass/login/alice",
        "",
        Some(json!({"password": "nope"})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"errors": ["invalid username or password"]}));
    let (status, ghost) = server.call(
        "POST",
        "auth/userpass/login/ghost",
        "",
        Some(json!({"password": "nope"})),
    );
    assert_eq!((status, ghost), (StatusCode::BAD_REQUEST, body));

    // The admin paths need a token with the capability; login does not.
    let (status, _) = server.call("GET", "auth/userpass/users/alice", "", None);
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server.call(
        "POST",
        "auth/userpass/users/mallory",
        token,
        Some(json!({"password": "x", "token_policies": "root"})),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server.call("GET", "auth/userpass/users/mallory", ROOT, None);
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was written");

    assert!(
        !server.log().contains(password),
        "a password reached the server log"
    );
}

#[test]
fn brute_force_userpass_logins_are_locked_out() {
    let server = DevServer::start();
    server.enable_auth("userpass", "userpass");
    server.root(
        "POST",
        "auth/userpass/users/alice",
        json!({"password": "right-pw"}),
    );
    server.root(
        "POST",
        "auth/userpass/users/bob",
        json!({"password": "bobs-pw"}),
    );
    let attempt = |user: &str, pw: &str| {
        server.call(
            "POST",
            &format!("auth/userpass/login/{user}"),
            "",
            Some(json!({"password": pw})),
        )
    };
    let mut statuses = Vec::new();
    for guess in ["a", "b", "c", "d", "e", "f"] {
        statuses.push(attempt("alice", guess).0.as_u16());
    }
    // OpenBao's default lockout: the fifth failure locks.
    assert_eq!(statuses, [400, 400, 400, 400, 403, 403]);
    // While locked, the right password gets the same answer as a wrong one.
    let wrong = attempt("alice", "g");
    let right = attempt("alice", "right-pw");
    assert_eq!(right.0, StatusCode::FORBIDDEN);
    assert_eq!(right, wrong);
    assert!(right.1["auth"].is_null());
    // The bao CLI is refused too; other users are unaffected.
    let out = server.bao(&[
        "login",
        "-method=userpass",
        "-no-store",
        "username=alice",
        "password=right-pw",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Code: 403"));
    let (status, body) = attempt("bob", "bobs-pw");
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[test]
fn the_lockout_threshold_is_tuned_on_the_mount() {
    let server = DevServer::start();
    server.enable_auth("userpass", "userpass");
    server.root(
        "POST",
        "sys/auth/userpass/tune",
        json!({"user_lockout_config": {"lockout_threshold": "2", "lockout_duration": "10m"}}),
    );
    let (_, tune) = server.call("GET", "sys/auth/userpass/tune", ROOT, None);
    assert_eq!(tune["data"]["user_lockout_threshold"], 2, "{tune}");
    assert_eq!(tune["data"]["user_lockout_duration"], 600, "{tune}");
    server.root(
        "POST",
        "auth/userpass/users/carol",
        json!({"password": "carols-pw"}),
    );
    let attempt = |pw: &str| {
        server
            .call(
                "POST",
                "auth/userpass/login/carol",
                "",
                Some(json!({"password": pw})),
            )
            .0
            .as_u16()
    };
    assert_eq!(
        [attempt("x"), attempt("y"), attempt("carols-pw")],
        [400, 403, 403]
    );
}

#[test]
fn approle_logins_with_hvac_and_the_bao_cli_spend_secret_id_uses() {
    let server = DevServer::start();
    server.enable_auth("approle", "approle");
    server.root(
        "POST",
        "auth/approle/role/ci",
        json!({"token_policies": "ci", "secret_id_num_uses": 2, "secret_id_ttl": "10m"}),
    );
    let role_id = server.root("GET", "auth/approle/role/ci/role-id", json!({}))["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = server.root(
        "POST",
        "auth/approle/role/ci/secret-id",
        json!({"metadata": "{\"job\":\"build\"}"}),
    );
    let secret_id = secret["data"]["secret_id"].as_str().unwrap().to_owned();
    assert_eq!(secret["data"]["secret_id_num_uses"], 2);

    let login = server.hvac(&format!(
        "r = client.auth.approle.login(role_id={role_id:?}, secret_id={secret_id:?})\nprint(json.dumps(r['auth']))"
    ));
    assert_eq!(login["metadata"]["role_name"], "ci");
    assert_eq!(login["metadata"]["job"], "build");
    assert_eq!(
        server.policies_of(login["client_token"].as_str().unwrap()),
        ["ci", "default"]
    );

    let out = server.bao(&[
        "write",
        "-format=json",
        "auth/approle/login",
        &format!("role_id={role_id}"),
        &format!("secret_id={secret_id}"),
    ]);
    assert_eq!(server.policies_of(&token_of(&out)), ["ci", "default"]);

    // Both uses are spent: the secret ID is gone.
    let (status, body) = server.call(
        "POST",
        "auth/approle/login",
        "",
        Some(json!({"role_id": role_id, "secret_id": secret_id})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"errors": ["invalid role or secret ID"]}));
    let (status, _) = server.call("LIST", "auth/approle/role/ci/secret-id", ROOT, None);
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A destroyed secret ID no longer logs in.
    let sid = server.root("POST", "auth/approle/role/ci/secret-id", json!({}))["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.root(
        "POST",
        "auth/approle/role/ci/secret-id/destroy",
        json!({"secret_id": sid}),
    );
    let (status, _) = server.call(
        "POST",
        "auth/approle/login",
        "",
        Some(json!({"role_id": role_id, "secret_id": sid})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        !server.log().contains(&secret_id),
        "a secret ID reached the server log"
    );
}

#[test]
fn jwt_login_with_hvac_checks_signature_and_audience() {
    let server = DevServer::start();
    server.enable_auth("jwt", "jwt");
    let dir = server.dir.path().to_owned();
    let (key, public_pem) = rsa_key(&dir, "signer");
    let (other_key, _) = rsa_key(&dir, "other");
    server.root(
        "POST",
        "auth/jwt/config",
        json!({"jwt_validation_pubkeys": [public_pem], "bound_issuer": "https://issuer.example"}),
    );
    server.root(
        "POST",
        "auth/jwt/role/deploy",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "coffer",
               "bound_claims": {"team": "ops"}, "claim_mappings": {"email": "email"},
               "token_policies": "deploy"}),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": "https://issuer.example", "sub": "svc-1", "aud": "coffer",
                        "team": "ops", "email": "svc@example.com", "exp": now + 300, "iat": now});
    let jwt = sign_rs256(&key, &claims);
    let login = server.hvac(&format!(
        "r = client.auth.jwt.jwt_login(role='deploy', jwt={jwt:?})\nprint(json.dumps(r['auth']))"
    ));
    assert_eq!(login["metadata"]["email"], "svc@example.com");
    assert_eq!(login["metadata"]["role"], "deploy");
    assert_eq!(
        server.policies_of(login["client_token"].as_str().unwrap()),
        ["default", "deploy"]
    );

    let refused = |token: String| {
        let (status, body) = server.call(
            "POST",
            "auth/jwt/login",
            "",
            Some(json!({"role": "deploy", "jwt": token})),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        body["errors"][0].as_str().unwrap().to_owned()
    };
    assert!(
        refused(sign_rs256(&other_key, &claims)).contains("no known key successfully validated")
    );
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("someone-else");
    assert!(refused(sign_rs256(&key, &wrong_aud)).contains("invalid audience"));
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 3600);
    assert!(refused(sign_rs256(&key, &expired)).contains("token is expired"));
    let mut wrong_team = claims;
    wrong_team["team"] = json!("dev");
    assert!(refused(sign_rs256(&key, &wrong_team))
        .contains("does not match any associated bound claim values"));
}

/// A fresh 2048-bit RSA key made with openssl: its private key path and public PEM.
fn rsa_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(format!("{name}.key"));
    let status = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    (key, String::from_utf8(out.stdout).unwrap())
}

/// An RS256 JWT of `claims`, signed by openssl with the key at `key`.
fn sign_rs256(key: &Path, claims: &Value) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let signing_input = format!(
        "{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    format!("{signing_input}.{}", b64(&out.stdout))
}
