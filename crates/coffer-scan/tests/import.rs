//! `--import` against a real OpenBao dev server (needs `bao` on PATH, hence `#[ignore]`):
//!   cargo test -p coffer-scan --test import -- --ignored
//! Starts `bao server -dev` on 127.0.0.1:18397, imports the secrets of a temp tree into
//! `secret/<prefix>`, reads them back over HTTP, and checks `--rewrite` left references.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use coffer_scan::ScanArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ScanArgs,
}

struct Bao(Child);

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const ADDR: &str = "127.0.0.1:18397";

fn start_bao() -> Bao {
    let child = Command::new("bao")
        .args([
            "server",
            "-dev",
            "-dev-root-token-id=root",
            &format!("-dev-listen-address={ADDR}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bao on PATH");
    let bao = Bao(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(ADDR).is_err() {
        assert!(Instant::now() < deadline, "bao did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let client = reqwest::blocking::Client::new();
    while !client
        .get(format!("http://{ADDR}/v1/sys/health"))
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "bao not healthy");
        std::thread::sleep(Duration::from_millis(100));
    }
    bao
}

#[test]
#[ignore = "needs `bao` on PATH"]
fn import_stores_each_secret_and_rewrite_leaves_references() {
    let _bao = start_bao();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = "Zq8#Lm2!xV7pRt4W";
    let token = "sk_live_4eC39HqLyjWDarjtT1zdp7dcQ8rN2";
    std::fs::create_dir(d.join("config")).unwrap();
    std::fs::write(
        d.join("config/db.env"),
        format!("DB_PASSWORD={pw}\nSTRIPE_KEY={token}\n"),
    )
    .unwrap();
    std::fs::write(d.join("app.py"), format!("password = \"{pw}\"\n")).unwrap();
    // Relative paths name the KV entries (this binary holds this one test, so changing the
    // working directory is safe).
    std::env::set_current_dir(d).unwrap();
    let (report, benv) = (d.join("report.txt"), d.join("b.env"));
    let (report, benv) = (report.to_str().unwrap(), benv.to_str().unwrap());
    let argv = [
        "coffer-scan",
        "--quiet",
        "--import",
        "secret/myapp",
        "--rewrite",
        "--address",
        &format!("http://{ADDR}"),
        "--token",
        "root",
        "-o",
        report,
        ".",
    ];
    assert_eq!(coffer_scan::run(Cli::parse_from(argv).args), 1);

    let client = reqwest::blocking::Client::new();
    let read = |path: &str| -> serde_json::Value {
        client
            .get(format!("http://{ADDR}/v1/secret/data/{path}"))
            .header("X-Vault-Token", "root")
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    // Findings are ordered by file: app.py comes first, so the password is stored under its
    // path, and db.env's copy of it points there (each distinct secret is stored once).
    let app = read("myapp/app");
    assert_eq!(app["data"]["data"]["password"], pw, "{app}");
    let db = read("myapp/config/db");
    assert_eq!(db["data"]["data"]["STRIPE_KEY"], token, "{db}");
    assert!(db["data"]["data"].get("DB_PASSWORD").is_none());
    let pw_ref = "coffer://secret/myapp/app#password";
    let env = std::fs::read_to_string(d.join("config/db.env")).unwrap();
    assert_eq!(
        env,
        format!("DB_PASSWORD={pw_ref}\nSTRIPE_KEY=coffer://secret/myapp/config/db#STRIPE_KEY\n")
    );
    let app = std::fs::read_to_string(d.join("app.py")).unwrap();
    assert_eq!(app, format!("password = \"{pw_ref}\"\n"));

    // A wrong token: exit 2, nothing rewritten.
    std::fs::write(benv, format!("API_TOKEN={pw}x\n")).unwrap();
    let argv = [
        "coffer-scan",
        "--quiet",
        "--import",
        "secret/myapp",
        "--rewrite",
        "--address",
        &format!("http://{ADDR}"),
        "--token",
        "wrong",
        "-o",
        report,
        benv,
    ];
    assert_eq!(coffer_scan::run(Cli::parse_from(argv).args), 2);
    assert_eq!(
        std::fs::read_to_string(benv).unwrap(),
        format!("API_TOKEN={pw}x\n")
    );
}
