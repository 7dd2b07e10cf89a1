//! End-to-end through `run`, as the binary calls it: git history, staged files, exit codes,
//! baselines, JSON and SARIF.

use std::path::Path;
use std::process::Command;

use clap::Parser;
use coffer_scan::ScanArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ScanArgs,
}

fn run(args: &[&str]) -> i32 {
    let mut argv = vec!["coffer-scan", "--quiet"];
    argv.extend_from_slice(args);
    coffer_scan::run(Cli::parse_from(argv).args)
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Dev One",
            "-c",
            "user.email=dev@example.org",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

const SECRET: &str = "Zq8#Lm2!xV7pRt4W";

#[test]
fn secret_removed_from_history_is_found_with_git_only() {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("app.py"), "import os\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "start"]);
    std::fs::write(
        dir.join("settings.py"),
        format!("DEBUG = False\nDB_PASSWORD = \"{SECRET}\"\n"),
    )
    .unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "add settings"]);
    let added = String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(
        dir.join("settings.py"),
        "DEBUG = False\nDB_PASSWORD = os.environ[\"DB_PASSWORD\"]\n",
    )
    .unwrap();
    git(
        dir,
        &[
            "commit",
            "-q",
            "-am",
            "read the password from the environment",
        ],
    );

    let d = dir.to_str().unwrap();
    assert_eq!(run(&[d]), 0, "the work tree is clean");
    let out = dir.join("../history.json");
    let out = out.to_str().unwrap();
    assert_eq!(run(&["--git", "--format", "json", "-o", out, d]), 1);
    let findings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    let f = &findings.as_array().unwrap()[..];
    assert_eq!(f.len(), 1, "{findings}");
    assert_eq!(f[0]["file"], "settings.py");
    assert_eq!(f[0]["line"], 2);
    assert_eq!(f[0]["secret"], SECRET);
    assert_eq!(f[0]["commit"], added.trim());
    assert_eq!(f[0]["author"], "Dev One <dev@example.org>");
    assert!(f[0]["date"].as_str().unwrap().len() >= 20);
    std::fs::remove_file(out).unwrap();
}

#[test]
fn staged_scans_what_is_about_to_be_committed() {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("a.env"), "PORT=80\n").unwrap();
    git(dir, &["add", "."]);
    let d = dir.to_str().unwrap();
    assert_eq!(run(&["--staged", d]), 0);
    std::fs::write(dir.join("a.env"), format!("PORT=80\nAPI_TOKEN={SECRET}\n")).unwrap();
    assert_eq!(run(&["--staged", d]), 0, "not staged yet");
    git(dir, &["add", "a.env"]);
    assert_eq!(run(&["--staged", d]), 1);
}

#[test]
fn baseline_silences_known_findings_and_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("config.yaml"),
        format!("db:\n  password: {SECRET}\n"),
    )
    .unwrap();
    std::fs::write(d.join("logo.png"), [0x89, b'P', b'N', b'G', 0, 0, 1, 2]).unwrap();
    let base = d.join("baseline.json");
    let (ds, bs) = (d.to_str().unwrap(), base.to_str().unwrap());
    assert_eq!(
        run(&[
            "--write-baseline",
            bs,
            "-o",
            d.join("r.txt").to_str().unwrap(),
            ds
        ]),
        1
    );
    let text = std::fs::read_to_string(&base).unwrap();
    assert!(!text.contains(SECRET), "a baseline never holds the secret");
    assert_eq!(run(&["--baseline", bs, ds]), 0);
    std::fs::write(
        d.join("more.env"),
        "STRIPE_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dcQ8rN2\n",
    )
    .unwrap();
    assert_eq!(run(&["--baseline", bs, ds]), 1);
    assert_eq!(run(&[d.join("missing").to_str().unwrap()]), 2);
    assert_eq!(
        run(&["--rules", d.join("config.yaml").to_str().unwrap(), ds]),
        2,
        "not a rules file"
    );
    let report = std::fs::read_to_string(d.join("r.txt")).unwrap();
    assert!(
        report.contains("config.yaml:2:13") && !report.contains(SECRET),
        "{report}"
    );
}

#[test]
fn sarif_is_version_2_1_0_with_masked_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join(".env"), format!("API_TOKEN={SECRET}\n")).unwrap();
    let out = d.join("out.sarif");
    assert_eq!(
        run(&[
            "--format",
            "sarif",
            "-o",
            out.to_str().unwrap(),
            d.join(".env").to_str().unwrap()
        ]),
        1
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains(SECRET));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let r = &v["runs"][0]["results"][0];
    assert_eq!(r["ruleId"], "generic-secret");
    assert_eq!(
        r["locations"][0]["physicalLocation"]["region"]["startLine"],
        1
    );
}
