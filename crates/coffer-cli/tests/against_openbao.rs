//! End-to-end: the CLI's verbs, called in-process through `run_with`, against a real dev
//! server started per test on a free loopback port.
//!
//! By default the server is OpenBao (`bao server -dev`); when `bao` is not on PATH every test
//! says so and passes without running. To point these tests at another server that takes the
//! same dev flags (coffer), set `COFFER_CLI_TEST_SERVER` to its command line, e.g.
//! `COFFER_CLI_TEST_SERVER="/path/to/coffer server"`; `-dev -dev-root-token-id=root
//! -dev-listen-address=127.0.0.1:<port>` are appended.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use coffer_cli::{normalize_args, run_with, Command, GlobalArgs, Token, Ui};
use serde_json::Value;

/// A dev server, killed on drop.
struct DevServer {
    child: Child,
    addr: String,
    unseal_key: Option<String>,
    home: tempfile::TempDir,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one CLI invocation produced.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

impl DevServer {
    /// Starts a dev server, or `None` (with a message) when `bao` is not installed.
    fn start() -> Option<DevServer> {
        let (program, mut args) = match std::env::var("COFFER_CLI_TEST_SERVER") {
            Ok(cmd) if !cmd.trim().is_empty() => {
                let mut parts = cmd.split_whitespace().map(str::to_owned);
                let program = parts
                    .next()
                    .expect("COFFER_CLI_TEST_SERVER names a program");
                (program, parts.collect::<Vec<_>>())
            }
            _ => {
                if !on_path("bao") {
                    eprintln!("SKIPPED: `bao` is not on PATH; install OpenBao to run the end-to-end CLI tests");
                    return None;
                }
                ("bao".to_owned(), vec!["server".to_owned()])
            }
        };
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        args.extend([
            "-dev".to_owned(),
            "-dev-root-token-id=root".to_owned(),
            format!("-dev-listen-address={addr}"),
        ]);
        let home = tempfile::tempdir().expect("temp dir");
        let mut child = Process::new(&program)
            .args(&args)
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        // Collect the unseal key the dev server prints, in the background.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(k) = line.trim().strip_prefix("Unseal Key: ") {
                    let _ = tx.send(k.trim().to_owned());
                }
            }
        });
        let url = format!("http://{addr}");
        let http = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = http
                .get(format!("{url}/v1/sys/health"))
                .send()
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dev server at {url} did not become healthy"
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("dev server exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let unseal_key = rx.recv_timeout(Duration::from_secs(5)).ok();
        Some(DevServer {
            child,
            addr: url,
            unseal_key,
            home,
        })
    }

    fn token_file(&self) -> PathBuf {
        self.home.path().join(".coffer-token")
    }

    /// Runs `coffer <args>` as the root token.
    fn cli(&self, args: &[&str]) -> Out {
        self.cli_full(args, Some("root"), "")
    }

    fn cli_full(&self, args: &[&str], token: Option<&str>, stdin: &str) -> Out {
        let argv = std::iter::once("coffer".to_owned()).chain(args.iter().map(|s| s.to_string()));
        let cli = Cli::try_parse_from(normalize_args(argv))
            .unwrap_or_else(|e| panic!("parse {args:?}: {e}"));
        let mut global = cli.global;
        global.address = Some(self.addr.clone());
        global.token = token.map(Token::new);
        global.token_file = Some(self.token_file());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut input = stdin.as_bytes();
        let code = run_with(
            global,
            cli.command,
            Ui {
                out: &mut out,
                err: &mut err,
                input: &mut input,
            },
        );
        Out {
            code,
            stdout: String::from_utf8(out).expect("utf-8 stdout"),
            stderr: String::from_utf8(err).expect("utf-8 stderr"),
        }
    }

    /// Runs and asserts success.
    fn ok(&self, args: &[&str]) -> Out {
        let out = self.cli(args);
        assert_eq!(
            out.code, 0,
            "{args:?} failed\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        out
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// A free port between 18300 and 18999 (this project's range for test servers) whose next port
/// is free too: a dev server also listens for cluster traffic on port + 1.
fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 350) as u16;
    for _ in 0..350 {
        let slot = (start + NEXT.fetch_add(1, Ordering::SeqCst)) % 350;
        let port = 18300 + slot * 2;
        let both_free = TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 1)).is_ok();
        if both_free {
            return port;
        }
    }
    panic!("no free port pair in 18300-18999");
}

macro_rules! server {
    () => {
        match DevServer::start() {
            Some(s) => s,
            None => return,
        }
    };
}

#[test]
fn status_reports_an_unsealed_dev_server() {
    let s = server!();
    let out = s.ok(&["status"]);
    assert!(out.stdout.starts_with("Key"), "{}", out.stdout);
    assert!(out.stdout.contains("Sealed "), "{}", out.stdout);
    assert!(out.stdout.contains("false"), "{}", out.stdout);
    let j = s.ok(&["status", "-format=json"]).json();
    assert_eq!(j["sealed"], false);
    assert_eq!(j["initialized"], true);
    assert_eq!(j["t"], 1);
    assert!(j.get("ha_enabled").is_some());
}

#[test]
fn seal_makes_status_exit_2_and_unseal_opens_it_again() {
    let s = server!();
    let Some(key) = s.unseal_key.clone() else {
        eprintln!("SKIPPED: the dev server printed no unseal key");
        return;
    };
    let out = s.ok(&["operator", "seal"]);
    assert_eq!(out.stdout, "Success! Vault is sealed.\n");
    let status = s.cli(&["status", "-format=json"]);
    assert_eq!(status.code, 2, "{}", status.stderr);
    assert_eq!(status.json()["sealed"], true);
    let table = s.cli(&["status"]);
    assert_eq!(table.code, 2);
    assert!(table.stdout.contains("Unseal Progress"), "{}", table.stdout);
    // The key from stdin (no terminal): one line is read.
    let out = s.cli_full(
        &["operator", "unseal", "-format=json"],
        Some("root"),
        &format!("{key}\n"),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stdout.contains(&key),
        "the unseal key must not be echoed"
    );
    let j: Value = serde_json::from_str(
        out.stdout
            .trim_start_matches("Unseal Key (will be hidden): \n"),
    )
    .unwrap();
    assert_eq!(j["sealed"], false);
    assert_eq!(s.cli(&["status"]).code, 0);
}

#[test]
fn kv_v2_round_trip() {
    let s = server!();
    let put = s.ok(&["kv", "put", "secret/app", "a=1", "b=2"]);
    assert!(
        put.stdout
            .starts_with("= Secret Path =\nsecret/data/app\n\n"),
        "{}",
        put.stdout
    );
    assert!(
        put.stdout.contains("version            1"),
        "{}",
        put.stdout
    );

    let got = s.ok(&["kv", "get", "-format=json", "secret/app"]).json();
    assert_eq!(got["data"]["data"]["a"], "1");
    assert_eq!(got["data"]["metadata"]["version"], 1);
    assert!(got.get("request_id").is_some() && got.get("warnings").is_some());

    let table = s.ok(&["kv", "get", "secret/app"]).stdout;
    assert!(
        table.contains("== Data ==\nKey    Value\n---    -----\na      1\nb      2\n"),
        "{table}"
    );

    let patched = s
        .ok(&["kv", "patch", "-format=json", "secret/app", "c=3"])
        .json();
    assert_eq!(patched["data"]["version"], 2);
    let got = s
        .ok(&["kv", "get", "-format=json", "-mount=secret", "app"])
        .json();
    assert_eq!(
        got["data"]["data"],
        serde_json::json!({"a": "1", "b": "2", "c": "3"})
    );

    let field = s.ok(&["kv", "get", "-field=c", "secret/app"]);
    assert_eq!(field.stdout, "3");

    // Check-and-set: version 0 means "only if absent".
    let cas = s.cli(&["kv", "put", "-cas=0", "secret/app", "x=1"]);
    assert_eq!(cas.code, 2);
    assert!(
        cas.stderr
            .starts_with("Error writing data to secret/data/app: Error making API request."),
        "{}",
        cas.stderr
    );

    let v1 = s
        .ok(&["kv", "get", "-version=1", "-format=json", "secret/app"])
        .json();
    assert_eq!(v1["data"]["data"], serde_json::json!({"a": "1", "b": "2"}));

    s.ok(&["kv", "put", "secret/dir/nested", "k=v"]);
    let list = s.ok(&["kv", "list", "-format=json", "secret"]).json();
    assert_eq!(list, serde_json::json!(["app", "dir/"]));
    let list = s.ok(&["kv", "list", "secret/"]).stdout;
    assert_eq!(list, "Keys\n----\napp\ndir/\n");

    let del = s.ok(&["kv", "delete", "secret/app"]);
    assert_eq!(
        del.stdout,
        "Success! Data deleted (if it existed) at: secret/data/app\n"
    );
    // A soft-deleted secret: exit 0, metadata shown, no data.
    let gone = s.cli(&["kv", "get", "-format=json", "secret/app"]);
    assert_eq!(gone.code, 0, "{}", gone.stderr);
    let gone = gone.json();
    assert_eq!(gone["data"]["data"], Value::Null);
    assert_ne!(gone["data"]["metadata"]["deletion_time"], "");

    let und = s.ok(&["kv", "undelete", "-versions=2", "secret/app"]);
    assert_eq!(
        und.stdout,
        "Success! Data written to: secret/undelete/app\n"
    );
    assert_eq!(
        s.ok(&["kv", "get", "-format=json", "secret/app"]).json()["data"]["data"]["c"],
        "3"
    );

    s.ok(&["kv", "destroy", "-versions=1", "secret/app"]);
    let meta = s
        .ok(&["kv", "metadata", "get", "-format=json", "secret/app"])
        .json();
    assert_eq!(meta["data"]["versions"]["1"]["destroyed"], true);
    assert_eq!(meta["data"]["current_version"], 2);
    let meta_table = s.ok(&["kv", "metadata", "get", "secret/app"]).stdout;
    assert!(
        meta_table.starts_with("== Metadata Path ==\nsecret/metadata/app\n"),
        "{meta_table}"
    );
    assert!(
        meta_table.contains("====== Version 1 ======"),
        "{meta_table}"
    );

    s.ok(&[
        "kv",
        "metadata",
        "put",
        "-max-versions=5",
        "-custom-metadata=owner=ci",
        "secret/app",
    ]);
    let meta = s
        .ok(&["kv", "metadata", "get", "-format=json", "secret/app"])
        .json();
    assert_eq!(meta["data"]["max_versions"], 5);
    assert_eq!(meta["data"]["custom_metadata"]["owner"], "ci");

    let out = s.ok(&["kv", "metadata", "delete", "secret/app"]);
    assert_eq!(
        out.stdout,
        "Success! Data deleted (if it existed) at: secret/metadata/app\n"
    );
    let missing = s.cli(&["kv", "get", "secret/app"]);
    assert_eq!(missing.code, 2);
    assert_eq!(missing.stderr, "No value found at secret/data/app\n");
}

#[test]
fn kv_usage_errors_exit_1() {
    let s = server!();
    let out = s.cli(&["kv", "get"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Not enough arguments (expected 1, got 0)\n")
    );
    let out = s.cli(&["kv", "put", "secret/x"]);
    assert_eq!((out.code, out.stderr.as_str()), (1, "Must supply data\n"));
    let out = s.cli(&["kv", "undelete", "secret/x"]);
    assert_eq!(out.code, 1);
    let out = s.cli(&["kv", "put", "secret/x", "novalue"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Failed to parse K=V data: format must be key=value\n")
    );
}

#[test]
fn generic_verbs_on_a_kv_v1_mount() {
    let s = server!();
    let out = s.ok(&["secrets", "enable", "-path=kv1", "kv"]);
    assert_eq!(
        out.stdout,
        "Success! Enabled the kv secrets engine at: kv1/\n"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cert.pem");
    std::fs::write(&file, "from-a-file").unwrap();
    let file_arg = format!("f=@{}", file.display());
    let out = s.cli_full(
        &["write", "kv1/foo", "a=1", &file_arg, "s=-"],
        Some("root"),
        "from-stdin",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "Success! Data written to: kv1/foo\n");

    let j = s.ok(&["read", "-format=json", "kv1/foo"]).json();
    assert_eq!(
        j["data"],
        serde_json::json!({"a": "1", "f": "from-a-file", "s": "from-stdin"})
    );
    assert_eq!(j["lease_duration"], 2_764_800);
    let table = s.ok(&["read", "kv1/foo"]).stdout;
    assert!(table.starts_with("Key                 Value\n---                 -----\nrefresh_interval    768h\na                   1\n"), "{table}");
    assert_eq!(s.ok(&["read", "-field=s", "kv1/foo"]).stdout, "from-stdin");

    // kv verbs on v1 go to the plain path.
    let kv = s.ok(&["kv", "get", "-format=json", "kv1/foo"]).json();
    assert_eq!(kv["data"]["a"], "1");
    s.ok(&["kv", "put", "kv1/bar", "z=9"]);

    assert_eq!(
        s.ok(&["list", "-format=json", "kv1"]).json(),
        serde_json::json!(["bar", "foo"])
    );
    assert_eq!(s.ok(&["list", "kv1/"]).stdout, "Keys\n----\nbar\nfoo\n");
    let empty = s.cli(&["list", "-format=json", "kv1/nothing"]);
    assert_eq!((empty.code, empty.stdout.as_str()), (2, "{}\n"));

    let out = s.ok(&["delete", "kv1/foo"]);
    assert_eq!(
        out.stdout,
        "Success! Data deleted (if it existed) at: kv1/foo\n"
    );
    let missing = s.cli(&["read", "kv1/foo"]);
    assert_eq!(
        (missing.code, missing.stderr.as_str()),
        (2, "No value found at kv1/foo\n")
    );

    let usage = s.cli(&["write", "kv1/foo"]);
    assert_eq!(
        (usage.code, usage.stderr.as_str()),
        (1, "Must supply data or use -force\n")
    );
}

#[test]
fn secrets_enable_list_tune_disable() {
    let s = server!();
    s.ok(&[
        "secrets",
        "enable",
        "-path=team",
        "-description=team secrets",
        "-version=2",
        "kv",
    ]);
    let list = s.ok(&["secrets", "list", "-format=json"]).json();
    let team = &list["team/"];
    assert_eq!(team["type"], "kv");
    assert_eq!(team["description"], "team secrets");
    assert_eq!(team["options"]["version"], "2");
    assert!(team["accessor"].as_str().unwrap().starts_with("kv_"));
    assert!(list["secret/"].is_object() && list["sys/"].is_object());

    let table = s.ok(&["secrets", "list"]).stdout;
    assert!(table.starts_with("Path "), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("team/ ") && l.ends_with("team secrets")),
        "{table}"
    );
    let detailed = s.ok(&["secrets", "list", "-detailed"]).stdout;
    assert!(detailed.contains("Default TTL"), "{detailed}");

    let out = s.ok(&[
        "secrets",
        "tune",
        "-default-lease-ttl=1h",
        "-max-lease-ttl=2h",
        "-description=tuned",
        "team",
    ]);
    assert_eq!(out.stdout, "Success! Tuned the secrets engine at: team/\n");
    let tuned = s
        .ok(&["read", "-format=json", "sys/mounts/team/tune"])
        .json();
    assert_eq!(tuned["data"]["default_lease_ttl"], 3600);
    assert_eq!(tuned["data"]["max_lease_ttl"], 7200);
    assert_eq!(tuned["data"]["description"], "tuned");

    let out = s.ok(&["secrets", "disable", "team"]);
    assert_eq!(
        out.stdout,
        "Success! Disabled the secrets engine (if it existed) at: team/\n"
    );
    let list = s.ok(&["secrets", "list", "-format=json"]).json();
    assert!(list.get("team/").is_none());

    let bad = s.cli(&["secrets", "enable", "-path=nope", "no-such-engine"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .starts_with("Error enabling: Error making API request."),
        "{}",
        bad.stderr
    );
}

#[test]
fn token_create_lookup_revoke() {
    let s = server!();
    let created = s
        .ok(&[
            "token",
            "create",
            "-policy=default",
            "-ttl=1h",
            "-display-name=ci",
            "-format=json",
        ])
        .json();
    let auth = &created["auth"];
    let token = auth["client_token"].as_str().unwrap().to_owned();
    let accessor = auth["accessor"].as_str().unwrap().to_owned();
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["policies"], serde_json::json!(["default"]));
    assert_eq!(created["data"], Value::Null);

    let looked = s.ok(&["token", "lookup", "-format=json", &token]).json();
    assert_eq!(looked["data"]["display_name"], "token-ci");
    assert_eq!(looked["data"]["accessor"], accessor);
    let by_accessor = s
        .ok(&["token", "lookup", "-accessor", "-format=json", &accessor])
        .json();
    assert_eq!(by_accessor["data"]["display_name"], "token-ci");
    let table = s.ok(&["token", "lookup", &token]).stdout;
    assert!(table.contains("display_name"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("creation_ttl ") && l.ends_with("1h")),
        "{table}"
    );

    // The new token can look itself up.
    let own = s.cli_full(&["token", "lookup", "-format=json"], Some(&token), "");
    assert_eq!(own.code, 0, "{}", own.stderr);
    assert_eq!(own.json()["data"]["id"], token);

    let out = s.ok(&["token", "revoke", &token]);
    assert_eq!(out.stdout, "Success! Revoked token (if it existed)\n");
    let after = s.cli(&["token", "lookup", &token]);
    assert_eq!(after.code, 2);
    assert!(
        after
            .stderr
            .starts_with("Error looking up token: Error making API request."),
        "{}",
        after.stderr
    );

    let orphan = s
        .ok(&[
            "token",
            "create",
            "-orphan",
            "-no-default-policy",
            "-policy=p1",
            "-format=json",
        ])
        .json();
    assert_eq!(orphan["auth"]["orphan"], true);
    assert_eq!(orphan["auth"]["policies"], serde_json::json!(["p1"]));
    let orphan_accessor = orphan["auth"]["accessor"].as_str().unwrap().to_owned();
    s.ok(&["token", "revoke", "-accessor", &orphan_accessor]);
    assert_eq!(
        s.cli(&["token", "lookup", "-accessor", &orphan_accessor])
            .code,
        2
    );

    let table = s.ok(&["token", "create", "-ttl=30m"]).stdout;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("token_duration ") && l.ends_with("30m")),
        "{table}"
    );

    let self_token = s.ok(&["token", "create", "-format=json"]).json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = s.cli_full(&["token", "revoke", "-self"], Some(&self_token), "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(s.cli(&["token", "lookup", &self_token]).code, 2);
}

#[test]
fn operator_key_status_and_rotate() {
    let s = server!();
    let before = s.ok(&["operator", "key-status", "-format=json"]).json();
    let term = before["term"].as_i64().unwrap();
    assert!(term >= 1);
    assert!(before["install_time"].as_str().unwrap().contains('T'));
    assert!(before["encryptions"].as_i64().is_some());
    let table = s.ok(&["operator", "key-status"]).stdout;
    assert!(table.starts_with("Key Term            "), "{table}");
    assert!(table.contains(" UTC\n"), "{table}");

    let rotated = s.ok(&["operator", "rotate"]).stdout;
    assert!(
        rotated.starts_with("Success! Rotated key\n\nKey Term"),
        "{rotated}"
    );
    let after = s.ok(&["operator", "key-status", "-format=json"]).json();
    assert_eq!(after["term"].as_i64().unwrap(), term + 1);

    let init = s.cli(&["operator", "init", "-status"]);
    assert_eq!(
        (init.code, init.stdout.as_str()),
        (0, "Vault is initialized\n")
    );
}

#[test]
fn login_stores_the_token_and_prints_it_as_bao() {
    let s = server!();
    let out = s.cli_full(&["login", "root"], None, "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("Success! You are now authenticated."),
        "{}",
        out.stdout
    );
    assert!(out
        .stdout
        .lines()
        .any(|l| l.starts_with("token ") && l.ends_with(" root")));
    assert_eq!(std::fs::read_to_string(s.token_file()).unwrap(), "root");

    // Later commands without a token use the stored one.
    let out = s.cli_full(&["token", "lookup", "-format=json"], None, "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["data"]["id"], "root");

    let j = s
        .cli_full(&["login", "-no-store", "-format=json", "root"], None, "")
        .json();
    assert_eq!(j["auth"]["client_token"], "root");
    assert_eq!(j["auth"]["policies"], serde_json::json!(["root"]));

    let bad = s.cli_full(&["login", "s.not-a-real-token-1234"], None, "");
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .starts_with("Error authenticating: error looking up token: Error making API request."),
        "{}",
        bad.stderr
    );
    assert!(
        !bad.stderr.contains("not-a-real-token"),
        "the token must not appear in errors"
    );
}

#[test]
fn api_errors_exit_2_without_leaking_the_token() {
    let s = server!();
    let secret_token = "s.leak-check-token-value";
    let out = s.cli_full(&["kv", "get", "secret/anything"], Some(secret_token), "");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("Code: 403. Errors:\n\n* permission denied"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(secret_token) && !out.stdout.contains(secret_token));

    let out = s.cli_full(&["read", "secret/data/x"], Some(secret_token), "");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("Error reading secret/data/x: Error making API request.\n\nURL: GET "),
        "{}",
        out.stderr
    );

    // Nothing listening: a transport error, still exit 2 (status: 1, as bao).
    let dead = DeadServer::new();
    let out = dead.run(&["read", "secret/x"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with("Error reading secret/x: Get \""),
        "{}",
        out.stderr
    );
    assert_eq!(dead.run(&["status"]).code, 1);
}

/// An address where nothing listens.
struct DeadServer {
    addr: String,
}

impl DeadServer {
    fn new() -> DeadServer {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        DeadServer {
            addr: format!("http://127.0.0.1:{port}"),
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        let argv = std::iter::once("coffer".to_owned()).chain(args.iter().map(|s| s.to_string()));
        let cli = Cli::try_parse_from(normalize_args(argv)).unwrap();
        let mut global = cli.global;
        global.address = Some(self.addr.clone());
        global.token = Some(Token::new("root"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut input: &[u8] = b"";
        let code = run_with(
            global,
            cli.command,
            Ui {
                out: &mut out,
                err: &mut err,
                input: &mut input,
            },
        );
        Out {
            code,
            stdout: String::from_utf8(out).unwrap(),
            stderr: String::from_utf8(err).unwrap(),
        }
    }
}
