//! The coffer CLI: the familiar `bao`/`vault` verbs (`status`, `operator`, `login`, `read`,
//! `write`, `list`, `delete`, `kv`, `secrets`, `token`, `policy`, `auth`, `unwrap`), speaking only the Vault HTTP API, with
//! the flags, exit codes, tables and `-format=json` output of the OpenBao 2.7 CLI.
//!
//! The binary (crates/coffer) owns the top-level parser: it flattens [`GlobalArgs`], adds
//! [`Command`] as subcommands next to `server` and `scan`, passes `std::env::args()` through
//! [`normalize_args`] first, and calls [`run`]. This crate must not depend on any server crate:
//! everything it knows about a server comes over HTTP.
//!
//! Exit codes follow bao: 0 success, 1 for a command used wrongly (bad flags or arguments,
//! an unknown format), 2 for an error from the server or the network (and `status` of a sealed
//! server); `kv get` of a soft-deleted secret is 0.

mod auth;
mod client;
mod generic;
mod kv;
mod operator;
mod output;
mod policy;
mod secrets;
mod token;
mod unwrap;

use std::io::{BufRead, Write};
use std::path::PathBuf;

pub use auth::AuthCommand;
pub use client::Token;
pub use generic::{parse_args_data, DeleteArgs, ListArgs, ReadArgs, WriteArgs};
pub use kv::{KvCommand, KvMetadataCommand};
pub use operator::{OperatorCommand, StatusArgs};
pub use output::Format;
pub use policy::PolicyCommand;
pub use secrets::SecretsCommand;
pub use token::{LoginArgs, TokenCommand};
pub use unwrap::UnwrapArgs;

use client::{Client, ClientConfig};

/// Every CLI verb (not `server` or `scan`, which the binary adds).
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print seal and HA status
    Status(StatusArgs),
    /// Perform operator-specific tasks (init, unseal, seal, rotate, key-status)
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Authenticate locally with a token
    Login(LoginArgs),
    /// Read data and retrieves secrets
    Read(ReadArgs),
    /// Write data, configuration, and secrets
    Write(WriteArgs),
    /// List data or secrets
    List(ListArgs),
    /// Delete secrets and configuration
    Delete(DeleteArgs),
    /// Interact with the key/value secrets engine
    #[command(subcommand)]
    Kv(KvCommand),
    /// Interact with secrets engines
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Interact with tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Interact with policies
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Interact with auth methods
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Unwrap a wrapped secret
    Unwrap(UnwrapArgs),
}

/// Global flags shared by every verb.
///
/// Unset fields fall back to the environment: `COFFER_ADDR`/`VAULT_ADDR` (default
/// `https://127.0.0.1:8200`), `COFFER_TOKEN`/`VAULT_TOKEN` then the token file,
/// `COFFER_CACERT`/`VAULT_CACERT`, `COFFER_SKIP_VERIFY`/`VAULT_SKIP_VERIFY`,
/// `COFFER_FORMAT`/`VAULT_FORMAT`, `COFFER_WRAP_TTL`/`VAULT_WRAP_TTL`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Address of the server
    #[arg(long, global = true, value_name = "ADDR")]
    pub address: Option<String>,
    /// Print the output in the given format: table or json
    #[arg(long, global = true, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Disable verification of TLS certificates (insecure)
    #[arg(long, global = true)]
    pub tls_skip_verify: bool,
    /// Path to a PEM-encoded CA certificate to verify the server's certificate
    #[arg(long, global = true, value_name = "PATH")]
    pub ca_cert: Option<String>,
    /// Wrap the response in a single-use token with this TTL (`X-Vault-Wrap-TTL`); read it
    /// back with `unwrap`
    #[arg(long, global = true, value_name = "DURATION")]
    pub wrap_ttl: Option<String>,
    /// The token to send; not a flag (tokens do not belong on command lines), set by callers
    /// such as tests. When unset: `COFFER_TOKEN`, `VAULT_TOKEN`, then the token file.
    #[arg(skip)]
    pub token: Option<Token>,
    /// Where `login` stores the token and where it is read from; not a flag. Defaults to
    /// `~/.coffer-token`.
    #[arg(skip)]
    pub token_file: Option<PathBuf>,
}

/// Where a command writes and reads: stdout, stderr, stdin (or buffers in tests).
pub struct Ui<'a> {
    /// Normal output (tables, JSON, success messages).
    pub out: &'a mut dyn Write,
    /// Errors and warnings.
    pub err: &'a mut dyn Write,
    /// `k=-` values, `-` JSON bodies, and prompted tokens and unseal keys.
    pub input: &'a mut dyn BufRead,
}

/// Runs one verb; returns the process exit code.
pub fn run(global: GlobalArgs, command: Command) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let stdin = std::io::stdin();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let mut input = stdin.lock();
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let stdout_tty = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none();
    run_inner(
        interactive,
        stdout_tty,
        global,
        command,
        Ui {
            out: &mut out,
            err: &mut err,
            input: &mut input,
        },
    )
}

/// Runs one verb against explicit output and input streams; returns the process exit code.
pub fn run_with(global: GlobalArgs, command: Command, ui: Ui<'_>) -> i32 {
    run_inner(false, false, global, command, ui)
}

fn run_inner(
    interactive: bool,
    stdout_tty: bool,
    global: GlobalArgs,
    command: Command,
    ui: Ui<'_>,
) -> i32 {
    let format_text = global
        .format
        .clone()
        .or_else(|| env_var(&["COFFER_FORMAT", "VAULT_FORMAT"]))
        .unwrap_or_else(|| "table".to_owned());
    let wrap_text = global
        .wrap_ttl
        .clone()
        .or_else(|| env_var(&["COFFER_WRAP_TTL", "VAULT_WRAP_TTL"]));
    let mut env = Env {
        ui,
        format: Format::Table,
        global,
        interactive,
        stdout_tty,
        wrap_ttl: None,
    };
    // `-wrap-ttl` is a duration flag: a bad value is a usage error; zero means no wrapping.
    if let Some(text) = wrap_text {
        match output::parse_duration(&text) {
            Ok(0) => {}
            Ok(secs) => env.wrap_ttl = Some(output::go_duration(secs)),
            Err(e) => {
                env.error(&format!("invalid value \"{text}\" for flag -wrap-ttl: {e}"));
                return 1;
            }
        }
    }
    match Format::parse(&format_text) {
        Some(f) => env.format = f,
        None => {
            env.error(&format!("Invalid output format: {format_text}"));
            return 1;
        }
    }
    match command {
        Command::Status(a) => operator::status(&mut env, a),
        Command::Operator(c) => operator::run(&mut env, c),
        Command::Login(a) => token::login(&mut env, a),
        Command::Read(a) => generic::read(&mut env, a),
        Command::Write(a) => generic::write(&mut env, a),
        Command::List(a) => generic::list(&mut env, a),
        Command::Delete(a) => generic::delete(&mut env, a),
        Command::Kv(c) => kv::run(&mut env, c),
        Command::Secrets(c) => secrets::run(&mut env, c),
        Command::Token(c) => token::run(&mut env, c),
        Command::Policy(c) => policy::run(&mut env, c),
        Command::Auth(c) => auth::run(&mut env, c),
        Command::Unwrap(a) => unwrap::unwrap(&mut env, a),
    }
}

/// Rewrites Vault-style single-dash long flags for clap: `-name=value` becomes `--name=value`
/// and `-name` becomes `--name`. Left alone: the program name, `-`, `--` and everything after
/// it, real short flags (`-h`), anything already `--`, and values that are not flags (`k=-`,
/// `-5`).
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        if is_single_dash_long_flag(&arg) {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

fn is_single_dash_long_flag(arg: &str) -> bool {
    let Some(rest) = arg.strip_prefix('-') else {
        return false;
    };
    if rest.starts_with('-') {
        return false;
    }
    let name = rest.split('=').next().unwrap_or("");
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !first.is_ascii_alphabetic() {
        return false;
    }
    // One letter is a short flag (`-h`), unless it carries a value (`-x=1`), which clap's
    // short flags would misread anyway.
    if name.len() == 1 && !rest.contains('=') {
        return false;
    }
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// One command's world: its streams, its output format and the global settings.
pub(crate) struct Env<'a> {
    ui: Ui<'a>,
    pub format: Format,
    pub global: GlobalArgs,
    /// Input is a terminal: prompts turn echo off.
    pub interactive: bool,
    /// Output is a terminal: a raw `-field` value gets a newline (bao's `PrintRaw`).
    pub stdout_tty: bool,
    /// `-wrap-ttl` as Go's duration text (`1m30s`), sent on every request.
    pub wrap_ttl: Option<String>,
}

impl Env<'_> {
    /// A line on stdout (`ui.Output`/`ui.Info`).
    pub fn out(&mut self, s: &str) {
        let _ = writeln!(self.ui.out, "{s}");
    }

    /// A raw value (`PrintRaw`): a newline follows only on a terminal, so that
    /// `$(coffer kv get -field=x ...)` and pipes get the bare value.
    pub fn raw(&mut self, s: &str) {
        if self.stdout_tty {
            let _ = writeln!(self.ui.out, "{s}");
        } else {
            let _ = write!(self.ui.out, "{s}");
        }
    }

    /// Text on stdout, no newline (prompts).
    pub fn prompt(&mut self, s: &str) {
        let _ = write!(self.ui.out, "{s}");
        let _ = self.ui.out.flush();
    }

    /// Text on stderr, no newline (prompts bao writes to stderr).
    pub fn prompt_err(&mut self, s: &str) {
        let _ = write!(self.ui.err, "{s}");
        let _ = self.ui.err.flush();
    }

    /// A line on stderr (`ui.Error`).
    pub fn error(&mut self, s: &str) {
        let _ = writeln!(self.ui.err, "{s}");
    }

    /// A line on stderr (`ui.Warn`).
    pub fn warn(&mut self, s: &str) {
        let _ = writeln!(self.ui.err, "{s}");
    }

    /// The input stream.
    pub fn input(&mut self) -> &mut dyn BufRead {
        &mut *self.ui.input
    }

    /// Reads one line of input, without its line ending.
    pub fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        self.ui.input.read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn config(&self, with_token: bool) -> ClientConfig {
        let g = &self.global;
        let address = g
            .address
            .clone()
            .or_else(|| env_var(&["COFFER_ADDR", "VAULT_ADDR"]))
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned());
        let ca_cert = g
            .ca_cert
            .clone()
            .or_else(|| env_var(&["COFFER_CACERT", "VAULT_CACERT"]));
        let tls_skip_verify = g.tls_skip_verify
            || env_var(&["COFFER_SKIP_VERIFY", "VAULT_SKIP_VERIFY"])
                .is_some_and(|v| parse_bool(&v));
        let token = if with_token {
            self.resolve_token()
        } else {
            None
        };
        ClientConfig {
            address,
            ca_cert,
            tls_skip_verify,
            token,
            wrap_ttl: self.wrap_ttl.clone(),
        }
    }

    /// The token: the caller's, `COFFER_TOKEN`, `VAULT_TOKEN`, then the token file.
    fn resolve_token(&self) -> Option<Token> {
        if let Some(t) = &self.global.token {
            return Some(t.clone());
        }
        if let Some(t) = env_var(&["COFFER_TOKEN", "VAULT_TOKEN"]) {
            return Some(Token::new(t));
        }
        let path = self.token_file()?;
        let text = std::fs::read_to_string(path).ok()?;
        let t = text.trim();
        (!t.is_empty()).then(|| Token::new(t))
    }

    /// The token file: the caller's, else `~/.coffer-token`.
    pub fn token_file(&self) -> Option<PathBuf> {
        if let Some(p) = &self.global.token_file {
            return Some(p.clone());
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(TOKEN_FILE_NAME))
    }

    /// A client carrying the resolved token; on failure the error is printed and `Err` holds
    /// the exit code (2, as bao's `c.Client()` failures).
    pub fn client(&mut self) -> Result<Client, i32> {
        self.make_client(true)
    }

    /// A client without a token (`login`).
    pub fn client_without_token(&mut self) -> Result<Client, i32> {
        self.make_client(false)
    }

    fn make_client(&mut self, with_token: bool) -> Result<Client, i32> {
        let config = self.config(with_token);
        Client::new(&config).map_err(|e| {
            self.error(&e);
            2
        })
    }
}

/// Checks a command's positional argument count, printing bao's message (`expected` is how bao
/// words the expectation: `1`, `>1`, `0`); `Err(1)` when wrong.
pub(crate) fn check_args(
    env: &mut Env<'_>,
    args: &[String],
    min: usize,
    max: Option<usize>,
    expected: &str,
) -> Result<(), i32> {
    if args.len() < min {
        env.error(&format!(
            "Not enough arguments (expected {expected}, got {})",
            args.len()
        ));
        return Err(1);
    }
    if max.is_some_and(|m| args.len() > m) {
        env.error(&format!(
            "Too many arguments (expected {expected}, got {})",
            args.len()
        ));
        return Err(1);
    }
    Ok(())
}

fn env_var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| std::env::var(n).ok())
        .find(|v| !v.is_empty())
}

fn parse_bool(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "yes" | "y"
    )
}

/// `sanitizePath`: no leading or trailing slashes, surrounding space trimmed.
pub(crate) fn sanitize_path(s: &str) -> String {
    s.trim()
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_owned()
}

/// `ensureTrailingSlash`.
pub(crate) fn ensure_trailing_slash(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() || s.ends_with('/') {
        s.to_owned()
    } else {
        format!("{s}/")
    }
}

/// The address bao uses when none is configured.
const DEFAULT_ADDRESS: &str = "https://127.0.0.1:8200";
/// The token helper's file in the home directory (bao's is `.vault-token`).
const TOKEN_FILE_NAME: &str = ".coffer-token";

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn n(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn normalizer_rewrites_single_dash_long_flags() {
        assert_eq!(
            n(&[
                "coffer",
                "kv",
                "get",
                "-format=json",
                "-mount",
                "secret",
                "foo"
            ]),
            vec![
                "coffer",
                "kv",
                "get",
                "--format=json",
                "--mount",
                "secret",
                "foo"
            ]
        );
        assert_eq!(
            n(&["coffer", "-address=http://x", "status"]),
            vec!["coffer", "--address=http://x", "status"]
        );
        assert_eq!(
            n(&["coffer", "token", "create", "-no-default-policy", "-ttl=1h"]),
            vec![
                "coffer",
                "token",
                "create",
                "--no-default-policy",
                "--ttl=1h"
            ]
        );
    }

    #[test]
    fn normalizer_leaves_values_short_flags_and_after_double_dash() {
        assert_eq!(
            n(&[
                "coffer",
                "write",
                "p",
                "k=-",
                "-",
                "-h",
                "--format=json",
                "-5"
            ]),
            vec![
                "coffer",
                "write",
                "p",
                "k=-",
                "-",
                "-h",
                "--format=json",
                "-5"
            ]
        );
        assert_eq!(
            n(&["coffer", "kv", "put", "--", "-format=json", "-x"]),
            vec!["coffer", "kv", "put", "--", "-format=json", "-x"]
        );
        // The program name is never touched.
        assert_eq!(n(&["-weird"]), vec!["-weird"]);
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        global: GlobalArgs,
        #[command(subcommand)]
        command: Command,
    }

    #[test]
    fn normalized_vault_style_lines_parse() {
        let cli = Cli::try_parse_from(n(&[
            "coffer",
            "kv",
            "put",
            "-mount=secret",
            "-cas=0",
            "-format=json",
            "foo",
            "a=1",
        ]))
        .unwrap();
        assert_eq!(cli.global.format.as_deref(), Some("json"));
        match cli.command {
            Command::Kv(KvCommand::Put(a)) => {
                assert_eq!(a.mount.as_deref(), Some("secret"));
                assert_eq!(a.cas, -1 + 1);
                assert_eq!(a.args, vec!["foo", "a=1"]);
            }
            other => panic!("parsed {other:?}"),
        }
        let cli = Cli::try_parse_from(n(&["coffer", "-tls-skip-verify", "status"])).unwrap();
        assert!(cli.global.tls_skip_verify);
    }

    #[test]
    fn new_verbs_parse_with_vault_style_flags() {
        let cli = Cli::try_parse_from(n(&[
            "coffer",
            "token",
            "renew",
            "-increment=1h",
            "-wrap-ttl=2m",
            "s.x",
        ]))
        .unwrap();
        assert_eq!(cli.global.wrap_ttl.as_deref(), Some("2m"));
        match cli.command {
            Command::Token(TokenCommand::Renew(a)) => {
                assert_eq!(a.increment.as_deref(), Some("1h"));
                assert_eq!(a.args, vec!["s.x"]);
            }
            other => panic!("parsed {other:?}"),
        }
        let cli = Cli::try_parse_from(n(&[
            "coffer",
            "login",
            "-method=userpass",
            "-path=people",
            "username=bob",
        ]))
        .unwrap();
        match cli.command {
            Command::Login(a) => {
                assert_eq!(a.method.as_deref(), Some("userpass"));
                assert_eq!(a.path.as_deref(), Some("people"));
                assert_eq!(a.args, vec!["username=bob"]);
            }
            other => panic!("parsed {other:?}"),
        }
        let cli = Cli::try_parse_from(n(&["coffer", "policy", "write", "ci", "-"])).unwrap();
        match cli.command {
            Command::Policy(PolicyCommand::Write(a)) => assert_eq!(a.args, vec!["ci", "-"]),
            other => panic!("parsed {other:?}"),
        }
        let cli = Cli::try_parse_from(n(&["coffer", "auth", "list", "-detailed"])).unwrap();
        assert!(matches!(
            cli.command,
            Command::Auth(AuthCommand::List(a)) if a.detailed
        ));
        let cli = Cli::try_parse_from(n(&["coffer", "unwrap", "-field=data", "s.w"])).unwrap();
        assert!(matches!(cli.command, Command::Unwrap(a) if a.field.as_deref() == Some("data")));
    }

    #[test]
    fn bad_wrap_ttl_is_a_usage_error() {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut input: &[u8] = b"";
        let g = GlobalArgs {
            wrap_ttl: Some("soon".into()),
            address: Some("http://127.0.0.1:1".into()),
            ..GlobalArgs::default()
        };
        let code = run_with(
            g,
            Command::Unwrap(UnwrapArgs::default()),
            Ui {
                out: &mut out,
                err: &mut err,
                input: &mut input,
            },
        );
        assert_eq!(code, 1);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "invalid value \"soon\" for flag -wrap-ttl: time: invalid duration \"soon\"\n"
        );
    }

    #[test]
    fn global_args_debug_hides_the_token() {
        let g = GlobalArgs {
            token: Some(Token::new("s.topsecret")),
            ..GlobalArgs::default()
        };
        assert!(!format!("{g:?}").contains("topsecret"));
    }

    #[test]
    fn unknown_format_is_a_usage_error() {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut input: &[u8] = b"";
        let g = GlobalArgs {
            format: Some("yaml".into()),
            address: Some("http://127.0.0.1:1".into()),
            ..GlobalArgs::default()
        };
        let code = run_with(
            g,
            Command::Status(StatusArgs::default()),
            Ui {
                out: &mut out,
                err: &mut err,
                input: &mut input,
            },
        );
        assert_eq!(code, 1);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "Invalid output format: yaml\n"
        );
    }
}
