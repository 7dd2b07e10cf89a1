//! `coffer audit verify FILE...` checks the tamper-evident chain of an audit log (a series of
//! rotated files, oldest first) with the device's chain key, fetched from the server (root
//! token) or read from a key file exported earlier; `coffer audit key DEVICE` exports it, and
//! `coffer audit list` lists the devices as `bao audit list` does.
//!
//! Server calls go through the CLI crate's verbs (`read -format=json`), so that addresses, TLS
//! settings and tokens resolve as for every other verb (`COFFER_ADDR`, `COFFER_TOKEN`...).

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use coffer_core::audit::chain::{self, Head, Segment, Verdict};
use coffer_core::audit::ChainExport;
use secrecy::SecretBox;
use serde_json::{Map, Value};

#[derive(Parser)]
#[command(name = "coffer audit", about = "Interact with audit devices")]
struct AuditCli {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain of audit log files (rotated files oldest first)
    Verify(VerifyArgs),
    /// Print a device's chain key and head as JSON, for `verify --key-file` (root token)
    Key(KeyArgs),
    /// List the enabled audit devices
    List(ListArgs),
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Address of the server (default: COFFER_ADDR, VAULT_ADDR)
    #[arg(long)]
    address: Option<String>,
    /// The token (default: COFFER_TOKEN, VAULT_TOKEN, then the token file); prefer the
    /// environment, a command line is visible to other users
    #[arg(long)]
    token: Option<String>,
    /// Path to a PEM CA certificate to verify the server's certificate
    #[arg(long)]
    ca_cert: Option<String>,
    /// Disable verification of TLS certificates (insecure)
    #[arg(long)]
    tls_skip_verify: bool,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The log files, oldest first
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// A key file from `coffer audit key` (verify offline); otherwise the key is fetched
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// The device whose key to fetch (needed when the server has more than one)
    #[arg(long)]
    device: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args)]
struct KeyArgs {
    /// The device's path, e.g. `file`
    device: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args)]
struct ListArgs {
    /// Also print each device's options
    #[arg(long)]
    detailed: bool,
    /// table or json
    #[arg(long, default_value = "table")]
    format: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `coffer audit ...`; `args` are the arguments after `audit`. Returns the exit code:
/// 0 success, 1 a command used wrongly, 2 an error or a chain that does not verify.
pub fn run(args: Vec<String>) -> i32 {
    let argv = std::iter::once("coffer audit".to_owned()).chain(args);
    let cli = match AuditCli::try_parse_from(coffer_cli::normalize_args(argv)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let result = match cli.command {
        AuditCommand::Verify(a) => verify(a),
        AuditCommand::Key(a) => fetch_chain(&a.server, &a.device).and_then(|export| {
            let text = serde_json::to_string_pretty(&export).map_err(|e| e.to_string())?;
            println!("{text}");
            Ok(0)
        }),
        AuditCommand::List(a) => list(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e}");
            2
        }
    }
}

fn verify(args: VerifyArgs) -> Result<i32, String> {
    let export = match &args.key_file {
        Some(path) => read_key_file(path)?,
        None => {
            let device = match &args.device {
                Some(d) => d.clone(),
                None => only_device(&args.server)?,
            };
            fetch_chain(&args.server, &device)?
        }
    };
    let key = SecretBox::new(Box::new(
        decode_hex(export.chain_key.trim()).ok_or("the chain key is not hex")?,
    ));
    let mut texts = Vec::new();
    for path in &args.files {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("{} is not UTF-8 text: not an audit log", path.display()))?;
        texts.push((path.display().to_string(), text));
    }
    let segments: Vec<Segment<'_>> = texts
        .iter()
        .map(|(name, text)| Segment { name, text })
        .collect();
    // A head of seq 0 (a key file without one) tells nothing about the tail.
    let head = (export.head.seq > 0).then_some(&export.head);
    let verdict = chain::verify(&key, &segments, head);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{verdict}");
    Ok(match verdict {
        Verdict::Ok { .. } => 0,
        Verdict::Broken { .. } => 2,
    })
}

/// A key file: the JSON `coffer audit key` prints, the `-format=json` output of
/// `coffer read sys/audit-chain/DEVICE`, or a bare hex key (no head: a cut tail goes unseen).
fn read_key_file(path: &PathBuf) -> Result<ChainExport, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        return Ok(ChainExport {
            device: String::new(),
            chain_key: trimmed.to_owned(),
            head: Head::default(),
        });
    }
    let mut value: Value = serde_json::from_str(trimmed)
        .map_err(|e| format!("key file {} is not JSON: {e}", path.display()))?;
    if let Some(data) = value.get_mut("data").map(Value::take) {
        value = data;
    }
    serde_json::from_value(value)
        .map_err(|e| format!("key file {} is not a chain export: {e}", path.display()))
}

fn fetch_chain(server: &ServerArgs, device: &str) -> Result<ChainExport, String> {
    let data = read_json(
        server,
        &format!("sys/audit-chain/{}", device.trim_matches('/')),
    )?;
    serde_json::from_value(Value::Object(data)).map_err(|e| e.to_string())
}

fn only_device(server: &ServerArgs) -> Result<String, String> {
    let devices = read_json(server, "sys/audit")?;
    let mut paths = devices.keys();
    match (paths.next(), paths.next()) {
        (Some(one), None) => Ok(one.clone()),
        (None, _) => Err("the server has no audit device".into()),
        _ => Err(format!(
            "the server has several audit devices ({}): name one with --device",
            devices.keys().cloned().collect::<Vec<_>>().join(", ")
        )),
    }
}

fn list(args: ListArgs) -> Result<i32, String> {
    let devices = read_json(&args.server, "sys/audit")?;
    if args.format == "json" {
        let text = serde_json::to_string_pretty(&devices).map_err(|e| e.to_string())?;
        println!("{text}");
        return Ok(0);
    }
    if args.format != "table" {
        eprintln!("Invalid output format: {}", args.format);
        return Ok(1);
    }
    if devices.is_empty() {
        println!("No audit devices are enabled.");
        return Ok(2);
    }
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut rows = vec![vec!["Path".to_owned(), "Type".into(), "Description".into()]];
    if args.detailed {
        rows[0].extend(["Replication".into(), "Options".into()]);
    }
    for (path, v) in &devices {
        let mut row = vec![path.clone(), field(v, "type"), field(v, "description")];
        if args.detailed {
            let options = v
                .get("options")
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            row.extend(["replicated".to_owned(), options]);
        }
        rows.push(row);
    }
    let dashes: Vec<String> = rows[0].iter().map(|h| "-".repeat(h.len())).collect();
    rows.insert(1, dashes);
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", cells.join("    ").trim_end());
    }
    Ok(0)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `coffer read -format=json PATH` through the CLI crate: the response's `data`.
fn read_json(server: &ServerArgs, path: &str) -> Result<Map<String, Value>, String> {
    let global = coffer_cli::GlobalArgs {
        address: server.address.clone(),
        format: Some("json".into()),
        tls_skip_verify: server.tls_skip_verify,
        ca_cert: server.ca_cert.clone(),
        token: server.token.clone().map(coffer_cli::Token::new),
        ..Default::default()
    };
    let command = coffer_cli::Command::Read(coffer_cli::ReadArgs {
        field: None,
        args: vec![path.to_owned()],
    });
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut input = std::io::empty();
    let code = coffer_cli::run_with(
        global,
        command,
        coffer_cli::Ui {
            out: &mut out,
            err: &mut err,
            input: &mut input,
        },
    );
    if code != 0 {
        return Err(String::from_utf8_lossy(&err).trim().to_owned());
    }
    let value: Value = serde_json::from_slice(&out).map_err(|e| e.to_string())?;
    match value.get("data") {
        Some(Value::Object(data)) => Ok(data.clone()),
        _ => Err(format!("the server returned no data for {path}")),
    }
}
