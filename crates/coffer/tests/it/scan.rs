//! `coffer scan --import` against the real server: a hardcoded secret found in a file is stored
//! in KV v2, and `--rewrite` replaces the literal by its `coffer://` reference only after that.

use std::process::Command;

use crate::server::TestServer;

const SECRET: &str = "Vq8#kP2m!Zr7wXt4Lb9N";

#[test]
fn scan_import_stores_the_secret_and_rewrites_the_file() {
    let server = TestServer::dev();
    let project = tempfile::tempdir().unwrap();
    let file = project.path().join("settings.yaml");
    std::fs::write(&file, format!("database:\n  password: \"{SECRET}\"\n")).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["scan", "--import", "secret/app", "--rewrite", "--address"])
        .arg(server.addr())
        .args(["--token", &server.token])
        // Names derive from paths as given: scan `.` for `secret/app/settings`.
        .current_dir(project.path())
        .arg(".")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "findings exit 1: {stdout}");
    assert!(
        !stdout.contains(SECRET),
        "the table masks the secret: {stdout}"
    );

    let stored = server.get("secret/data/app/settings");
    assert_eq!(stored.status, 200, "{stored:?}");
    assert_eq!(stored.body["data"]["data"]["password"], SECRET);

    let rewritten = std::fs::read_to_string(&file).unwrap();
    assert!(!rewritten.contains(SECRET), "{rewritten}");
    assert!(
        rewritten.contains("coffer://secret/app/settings#password"),
        "{rewritten}"
    );
}

#[test]
fn scan_import_with_a_bad_token_stores_and_rewrites_nothing() {
    let server = TestServer::dev();
    let project = tempfile::tempdir().unwrap();
    let file = project.path().join("settings.yaml");
    let original = format!("database:\n  password: \"{SECRET}\"\n");
    std::fs::write(&file, &original).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["scan", "--import", "secret/app", "--rewrite", "--address"])
        .arg(server.addr())
        .args(["--token", "not-a-token"])
        .current_dir(project.path())
        .arg(".")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);
    assert_eq!(server.get("secret/data/app/settings").status, 404);
}
