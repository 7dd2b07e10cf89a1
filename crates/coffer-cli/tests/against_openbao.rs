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

impl DevServer {
    /// Runs the real `bao` CLI with the same arguments against the same server, as the root
    /// token, for output comparisons; `None` when `bao` is not installed.
    fn bao(&self, args: &[&str], stdin: &str) -> Option<Out> {
        if !on_path("bao") {
            return None;
        }
        let mut child = Process::new("bao")
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", "root")
            .env("HOME", self.home.path())
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run bao");
        {
            use std::io::Write;
            let mut input = child.stdin.take().expect("piped stdin");
            input.write_all(stdin.as_bytes()).expect("write bao stdin");
        }
        let out = child.wait_with_output().expect("bao output");
        Some(Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("utf-8"),
            stderr: String::from_utf8(out.stderr).expect("utf-8"),
        })
    }

    /// Asserts that coffer and bao print the same for `args` (skipped without `bao`).
    fn same_as_bao(&self, args: &[&str]) -> Out {
        let ours = self.cli(args);
        if let Some(theirs) = self.bao(args, "") {
            assert_eq!(
                (ours.code, ours.stdout.as_str()),
                (theirs.code, theirs.stdout.as_str()),
                "{args:?}: coffer and bao differ\ncoffer stderr: {}\nbao stderr: {}",
                ours.stderr,
                theirs.stderr
            );
        }
        ours
    }
}

/// A table with its values blanked: each line's first column and where its second starts.
fn shape(table: &str) -> Vec<(String, usize)> {
    table
        .lines()
        .map(|l| {
            let key = l.split_whitespace().next().unwrap_or("").to_owned();
            let value_at = l[key.len()..]
                .find(|c: char| !c.is_whitespace())
                .map_or(0, |i| i + key.len());
            (key, value_at)
        })
        .collect()
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

#[test]
fn userpass_login_stores_the_token_and_lookup_sees_it() {
    let s = server!();
    let out = s.ok(&["auth", "enable", "userpass"]);
    assert_eq!(
        out.stdout,
        "Success! Enabled userpass auth method at: userpass/\n"
    );
    s.ok(&[
        "write",
        "auth/userpass/users/bob",
        "password=pw1",
        "policies=p1",
    ]);

    let out = s.cli_full(
        &["login", "-method=userpass", "username=bob", "password=pw1"],
        None,
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("Success! You are now authenticated."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("token_meta_username ") && l.ends_with(" bob")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("token_policies         [\"default\" \"p1\"]"),
        "{}",
        out.stdout
    );
    let stored = std::fs::read_to_string(s.token_file()).unwrap();
    assert!(!stored.is_empty() && stored != "root");

    // The stored token is the one later commands use.
    let me = s.cli_full(&["token", "lookup", "-format=json"], None, "");
    assert_eq!(me.code, 0, "{}", me.stderr);
    let me = me.json();
    assert_eq!(me["data"]["id"], stored.as_str());
    assert_eq!(me["data"]["meta"]["username"], "bob");
    assert_eq!(me["data"]["path"], "auth/userpass/login/bob");

    // The password from the prompt (no terminal: one line of stdin), on another mount path.
    s.ok(&["auth", "enable", "-path=people", "userpass"]);
    s.ok(&["write", "auth/people/users/amy", "password=pw2"]);
    let out = s.cli_full(
        &[
            "login",
            "-method=userpass",
            "-path=people",
            "-token-only",
            "username=amy",
        ],
        None,
        "pw2\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "Password (will be hidden): \n");
    assert!(out.stdout.starts_with("s."), "{}", out.stdout);
    assert_eq!(std::fs::read_to_string(s.token_file()).unwrap(), stored);

    // Same rows, same column layout as bao's login table.
    let login = [
        "login",
        "-method=userpass",
        "-no-store",
        "username=bob",
        "password=pw1",
    ];
    if let Some(theirs) = s.bao(&login, "") {
        let ours = s.cli_full(&login, None, "");
        assert_eq!(
            shape(&ours.stdout),
            shape(&theirs.stdout),
            "ours:\n{}\nbao:\n{}",
            ours.stdout,
            theirs.stdout
        );
    }

    let bad = s.cli_full(
        &[
            "login",
            "-method=userpass",
            "username=bob",
            "password=wrong",
        ],
        None,
        "",
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .starts_with("Error authenticating: Error making API request."),
        "{}",
        bad.stderr
    );
    assert!(!bad.stderr.contains("wrong"));
    let missing = s.cli_full(&["login", "-method=userpass", "password=x"], None, "");
    assert_eq!(
        (missing.code, missing.stderr.as_str()),
        (2, "Error authenticating: 'username' must be specified\n")
    );
    let unknown = s.cli_full(&["login", "-method=ldapx"], None, "");
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.starts_with("Unknown auth method: ldapx."));
}

#[test]
fn approle_login_with_role_and_secret_ids() {
    let s = server!();
    s.ok(&["auth", "enable", "approle"]);
    s.ok(&[
        "write",
        "auth/approle/role/ci",
        "token_policies=p2",
        "token_ttl=20m",
    ]);
    let role_id = s
        .ok(&["read", "-field=role_id", "auth/approle/role/ci/role-id"])
        .stdout;
    let secret_id = s
        .ok(&[
            "write",
            "-f",
            "-field=secret_id",
            "auth/approle/role/ci/secret-id",
        ])
        .stdout;
    let role_arg = format!("role_id={role_id}");
    let secret_arg = format!("secret_id={secret_id}");
    let out = s.cli_full(
        &[
            "login",
            "-method=approle",
            "-no-store",
            "-format=json",
            &role_arg,
            &secret_arg,
        ],
        None,
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let auth = &out.json()["auth"];
    assert_eq!(auth["token_policies"], serde_json::json!(["default", "p2"]));
    assert_eq!(auth["lease_duration"], 1200);
    assert_eq!(auth["metadata"]["role_name"], "ci");
    assert!(!s.token_file().exists(), "-no-store writes no token file");
    assert!(out.stderr.starts_with("The token was not stored"));

    let bad = s.cli_full(
        &["login", "-method=approle", &role_arg, "secret_id=nope"],
        None,
        "",
    );
    assert_eq!(bad.code, 2, "{}", bad.stdout);
    assert!(bad
        .stderr
        .starts_with("Error authenticating: Error making API request."));
}

#[test]
fn policy_write_read_list_fmt_delete() {
    let s = server!();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ci.hcl");
    let messy = "# read-only\npath \"secret/data/ci/*\" {\ncapabilities = [\"read\",\"list\"]\n}\npath   \"sys/x\"   {   capabilities=[\"deny\"] }\n";
    std::fs::write(&file, messy).unwrap();
    let file_arg = file.to_str().unwrap();

    let out = s.ok(&["policy", "write", "CI", file_arg]);
    assert_eq!(out.stdout, "Success! Uploaded policy: ci\n");
    assert_eq!(
        out.stderr,
        "Policy name was converted from \"CI\" to \"ci\"\n"
    );
    let out = s.cli_full(&["policy", "write", "fromstdin", "-"], Some("root"), messy);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let read = s.same_as_bao(&["policy", "read", "ci"]);
    assert_eq!(read.stdout, messy.trim().to_owned() + "\n");
    let j = s
        .same_as_bao(&["policy", "read", "-format=json", "fromstdin"])
        .json();
    assert_eq!(j["policy"], messy);
    let list = s.same_as_bao(&["policy", "list"]);
    assert_eq!(list.stdout, "ci\ndefault\nfromstdin\nroot\n");
    s.same_as_bao(&["policy", "list", "-format=json"]);
    let missing = s.same_as_bao(&["policy", "read", "nope"]);
    assert_eq!(
        (missing.code, missing.stderr.as_str()),
        (2, "No policy named: nope\n")
    );

    // fmt rewrites the file as `bao policy fmt` does.
    let out = s.ok(&["policy", "fmt", file_arg]);
    assert_eq!(
        out.stdout,
        format!("Success! Formatted policy: {file_arg}\n")
    );
    let ours = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        ours,
        "# read-only\npath \"secret/data/ci/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n\npath \"sys/x\" {\n  capabilities = [\"deny\"]\n}\n"
    );
    let theirs_file = dir.path().join("bao.hcl");
    std::fs::write(&theirs_file, messy).unwrap();
    if s.bao(&["policy", "fmt", theirs_file.to_str().unwrap()], "")
        .is_some()
    {
        assert_eq!(ours, std::fs::read_to_string(&theirs_file).unwrap());
    }
    let bad_file = dir.path().join("bad.hcl");
    std::fs::write(&bad_file, "path \"a\" { capabilities = [\"reed\"] }").unwrap();
    let bad = s.cli(&["policy", "fmt", bad_file.to_str().unwrap()]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("invalid capability \"reed\""),
        "{}",
        bad.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&bad_file).unwrap(),
        "path \"a\" { capabilities = [\"reed\"] }",
        "a file that does not parse is left alone"
    );

    let out = s.ok(&["policy", "delete", "ci"]);
    assert_eq!(out.stdout, "Success! Deleted policy: ci\n");
    assert_eq!(s.cli(&["policy", "read", "ci"]).code, 2);
    let usage = s.cli(&["policy", "write", "onlyname"]);
    assert_eq!(
        (usage.code, usage.stderr.as_str()),
        (1, "Not enough arguments (expected 2, got 1)\n")
    );
}

#[test]
fn auth_enable_list_tune_disable() {
    let s = server!();
    let out = s.ok(&[
        "auth",
        "enable",
        "-path=ci-users",
        "-description=CI users",
        "-default-lease-ttl=30m",
        "-max-lease-ttl=2h",
        "userpass",
    ]);
    assert_eq!(
        out.stdout,
        "Success! Enabled userpass auth method at: ci-users/\n"
    );
    let j = s.ok(&["auth", "list", "-format=json"]).json();
    let m = &j["ci-users/"];
    assert_eq!(m["type"], "userpass");
    assert_eq!(m["description"], "CI users");
    assert_eq!(m["config"]["default_lease_ttl"], 1800);
    assert_eq!(m["config"]["max_lease_ttl"], 7200);
    assert!(j.get("token/").is_some());

    let out = s.ok(&[
        "auth",
        "tune",
        "-default-lease-ttl=1h",
        "-description=tuned",
        "ci-users",
    ]);
    assert_eq!(out.stdout, "Success! Tuned the auth method at: ci-users/\n");
    let j = s.ok(&["auth", "list", "-format=json"]).json();
    assert_eq!(j["ci-users/"]["config"]["default_lease_ttl"], 3600);
    assert_eq!(j["ci-users/"]["description"], "tuned");

    // The tables and JSON are bao's, byte for byte.
    let table = s.same_as_bao(&["auth", "list"]);
    assert!(
        table
            .stdout
            .starts_with("Path         Type        Accessor"),
        "{}",
        table.stdout
    );
    s.same_as_bao(&["auth", "list", "-detailed"]);
    s.same_as_bao(&["auth", "list", "-format=json"]);

    let out = s.ok(&["auth", "disable", "ci-users"]);
    assert_eq!(
        out.stdout,
        "Success! Disabled the auth method (if it existed) at: ci-users/\n"
    );
    let j = s.ok(&["auth", "list", "-format=json"]).json();
    assert!(j.get("ci-users/").is_none());
    let bad = s.cli(&["auth", "enable", "no-such-method"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .starts_with("Error enabling no-such-method auth: Error making API request."),
        "{}",
        bad.stderr
    );
    assert_eq!(s.cli(&["auth", "list", "extra"]).code, 1);
}

#[test]
fn token_create_with_role_use_limit_period_then_renew_and_capabilities() {
    let s = server!();
    s.ok(&[
        "write",
        "auth/token/roles/ci",
        "allowed_policies=p1",
        "orphan=true",
    ]);
    let j = s
        .ok(&["token", "create", "-role=ci", "-policy=p1", "-format=json"])
        .json();
    assert_eq!(j["auth"]["orphan"], true);
    assert_eq!(j["auth"]["policies"], serde_json::json!(["default", "p1"]));

    let limited = s
        .ok(&["token", "create", "-use-limit=2", "-field=token"])
        .stdout;
    let looked = s.ok(&["token", "lookup", "-format=json", &limited]).json();
    assert_eq!(looked["data"]["num_uses"], 2);

    let periodic = s
        .ok(&["token", "create", "-period=10m", "-format=json"])
        .json();
    assert_eq!(periodic["auth"]["lease_duration"], 600);
    let token = periodic["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let accessor = periodic["auth"]["accessor"].as_str().unwrap().to_owned();

    let renewed = s
        .ok(&["token", "renew", "-increment=5m", "-format=json", &token])
        .json();
    assert_eq!(renewed["auth"]["client_token"], token.as_str());
    assert_eq!(
        renewed["auth"]["lease_duration"], 600,
        "a periodic token renews to its period"
    );
    let table = s.ok(&["token", "renew", "-accessor", &accessor]).stdout;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("token_duration ") && l.ends_with("10m")),
        "{table}"
    );
    let own = s.cli_full(&["token", "renew", "-format=json"], Some(&token), "");
    assert_eq!(own.code, 0, "{}", own.stderr);
    let root = s.cli(&["token", "renew"]);
    assert_eq!(root.code, 2);
    assert!(root
        .stderr
        .starts_with("Error renewing token: Error making API request."));

    // Capabilities: root's own, another token's, and bao's layout for both formats.
    let caps = s.same_as_bao(&["token", "capabilities", "secret/data/x"]);
    assert_eq!(caps.stdout, "root\n");
    s.same_as_bao(&["token", "capabilities", "-format=json", "secret/data/x"]);
    // The periodic token inherited root's policies.
    let out = s.same_as_bao(&["token", "capabilities", &token, "secret/data/x"]);
    assert_eq!(out.stdout, "root\n");
    let plain = s
        .ok(&["token", "create", "-policy=default", "-field=token"])
        .stdout;
    let out = s.same_as_bao(&["token", "capabilities", &plain, "secret/data/x"]);
    assert_eq!(out.stdout, "deny\n");
    let out = s.ok(&["token", "capabilities", &plain, "auth/token/lookup-self"]);
    assert_eq!(out.stdout, "read\n");
    let usage = s.cli(&["token", "capabilities"]);
    assert_eq!(
        (usage.code, usage.stderr.as_str()),
        (1, "Not enough arguments (expected 1-2, got 0)\n")
    );
    assert_eq!(s.cli(&["token", "revoke", "-mode=bogus", &token]).code, 1);
    s.ok(&["token", "revoke", "-mode=orphan", &token]);
    assert_eq!(s.cli(&["token", "lookup", &token]).code, 2);
}

#[test]
fn wrap_ttl_wraps_and_unwrap_works_once() {
    let s = server!();
    s.ok(&["kv", "put", "secret/wrapped", "colour=teal"]);

    // kv get: the wrapping token instead of the secret.
    let wrapped = s
        .ok(&[
            "kv",
            "get",
            "-wrap-ttl=90s",
            "-format=json",
            "secret/wrapped",
        ])
        .json();
    let info = &wrapped["wrap_info"];
    assert_eq!(info["ttl"], 90);
    assert_eq!(info["creation_path"], "secret/data/wrapped");
    assert_eq!(wrapped["data"], Value::Null);
    let wtoken = info["token"].as_str().unwrap().to_owned();
    let out = s.ok(&["unwrap", "-format=json", &wtoken]);
    assert_eq!(out.json()["data"]["data"]["colour"], "teal");
    let again = s.cli(&["unwrap", &wtoken]);
    assert_eq!(again.code, 2, "a wrapping token works once");
    assert!(
        again
            .stderr
            .starts_with("Error unwrapping: Error making API request.\n\nURL: PUT "),
        "{}",
        again.stderr
    );

    // The table shows bao's wrapping rows.
    let table = s
        .ok(&["kv", "get", "-wrap-ttl=2m", "secret/wrapped"])
        .stdout;
    for row in [
        "wrapping_token:",
        "wrapping_accessor:",
        "wrapping_token_ttl:              2m",
        "wrapping_token_creation_time:",
        "wrapping_token_creation_path:    secret/data/wrapped",
    ] {
        assert!(table.contains(row), "{row} missing:\n{table}");
    }
    assert!(table.contains(" +0000 UTC"), "{table}");

    // token create: the wrapped token, unwrapped with the wrapping token as the client token.
    let created = s
        .ok(&[
            "token",
            "create",
            "-wrap-ttl=1m",
            "-policy=default",
            "-format=json",
        ])
        .json();
    assert_eq!(created["auth"], Value::Null);
    let winfo = &created["wrap_info"];
    assert_eq!(winfo["creation_path"], "auth/token/create");
    assert!(!winfo["wrapped_accessor"].as_str().unwrap().is_empty());
    let wtoken = winfo["token"].as_str().unwrap().to_owned();
    let out = s.cli_full(&["unwrap", "-format=json"], Some(&wtoken), "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let new_token = out.json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.ok(&["token", "lookup", "-format=json", &new_token])
            .json()["data"]["policies"],
        serde_json::json!(["default"])
    );
    let again = s.cli_full(&["unwrap"], Some(&wtoken), "");
    assert_eq!(again.code, 2);

    // The wrapped table has bao's rows and columns (values differ: fresh tokens).
    let ours = s.ok(&["token", "create", "-wrap-ttl=1m"]).stdout;
    if let Some(theirs) = s.bao(&["token", "create", "-wrap-ttl=1m"], "") {
        assert_eq!(
            shape(&ours),
            shape(&theirs.stdout),
            "ours:\n{ours}\nbao:\n{}",
            theirs.stdout
        );
    }

    // A bad duration is a usage error.
    assert_eq!(
        s.cli(&["kv", "get", "-wrap-ttl=soon", "secret/wrapped"])
            .code,
        1
    );
}
