//! `token create|lookup|renew|revoke|capabilities` over `auth/token/*` and `sys/capabilities*`,
//! and `login`: with the token method (look the token up with `auth/token/lookup-self`) or a
//! login method (`userpass`, `approle`, `jwt`: a write to `auth/<mount>/login`), store the token
//! in the token file (`~/.coffer-token`, mode 0600), and print the login as bao prints one.
//!
//! Copies OpenBao `internal/command/{token_create,token_lookup,token_renew,token_revoke,
//! token_capabilities,login}.go` and `internal/builtin/credential/{token,userpass}/cli.go`.
//! bao 2.7.2 has no CLI handler for AppRole or JWT (it answers "Unknown auth method"); coffer
//! adds them as the plain login write `bao write auth/approle/login role_id=.. secret_id=..`
//! would send, then stores and prints the token as any login. The token is printed only where bao prints it:
//! the login table and `token create`.

use serde_json::{json, Map, Value};

use crate::client::{Client, Secret, SecretAuth, Token};
use crate::output::{self, go_duration, parse_duration, wrap_at_length, Format};
use crate::{check_args, Env};

/// `token` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a new token
    Create(Box<CreateArgs>),
    /// Display information about a token
    Lookup(LookupArgs),
    /// Revoke a token and its children
    Revoke(RevokeArgs),
    /// Renew a token's lease
    Renew(RenewArgs),
    /// Print a token's capabilities on a path
    Capabilities(CapabilitiesArgs),
}

/// `token renew [-increment D] [-accessor] [TOKEN]`
///
/// Its `Debug` hides the positional argument: it is a token.
#[derive(clap::Args, Default)]
pub struct RenewArgs {
    /// Treat the argument as an accessor
    #[arg(long)]
    pub accessor: bool,
    /// Request this much more time (e.g. 1h, or seconds); the server may cap it
    #[arg(long, short = 'i')]
    pub increment: Option<String>,
    /// TOKEN or ACCESSOR (default: the current token)
    pub args: Vec<String>,
}

impl std::fmt::Debug for RenewArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenewArgs")
            .field("accessor", &self.accessor)
            .field("increment", &self.increment)
            .field("args", &"[REDACTED]")
            .finish()
    }
}

/// `token capabilities [TOKEN] PATH`
///
/// Its `Debug` hides the positional arguments: one may be a token.
#[derive(clap::Args, Default)]
pub struct CapabilitiesArgs {
    /// [TOKEN] PATH
    pub args: Vec<String>,
}

impl std::fmt::Debug for CapabilitiesArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapabilitiesArgs")
            .field("args", &"[REDACTED]")
            .finish()
    }
}

/// `token create [-policy P]... [-ttl D] [-display-name N] [-orphan] [-no-default-policy] ...`
#[derive(clap::Args, Debug, Default)]
pub struct CreateArgs {
    /// The token value (requires sudo)
    #[arg(long)]
    pub id: Option<String>,
    /// Name associated with the token
    #[arg(long)]
    pub display_name: Option<String>,
    /// Initial TTL
    #[arg(long)]
    pub ttl: Option<String>,
    /// Explicit maximum lifetime
    #[arg(long)]
    pub explicit_max_ttl: Option<String>,
    /// Renewal period (a periodic token)
    #[arg(long)]
    pub period: Option<String>,
    /// Whether the token can be renewed (default true)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub renewable: Option<bool>,
    /// Create the token without a parent
    #[arg(long)]
    pub orphan: bool,
    /// Do not attach the "default" policy
    #[arg(long)]
    pub no_default_policy: bool,
    /// Number of uses (0: unlimited)
    #[arg(long, default_value_t = 0)]
    pub use_limit: i64,
    /// Create against this token role
    #[arg(long)]
    pub role: Option<String>,
    /// Token type: service or batch
    #[arg(long, default_value = "service")]
    pub r#type: String,
    /// A K=V metadata pair (repeatable)
    #[arg(long)]
    pub metadata: Vec<String>,
    /// A policy to attach (repeatable)
    #[arg(long)]
    pub policy: Vec<String>,
    /// Entity alias to associate with the token
    #[arg(long)]
    pub entity_alias: Option<String>,
    /// Print only the named field
    #[arg(long)]
    pub field: Option<String>,
    /// Unexpected positional arguments (bao rejects them)
    pub args: Vec<String>,
}

/// `token lookup [-accessor] [TOKEN]`
#[derive(clap::Args, Debug, Default)]
pub struct LookupArgs {
    /// Treat the argument as an accessor
    #[arg(long)]
    pub accessor: bool,
    /// Print only the named field
    #[arg(long)]
    pub field: Option<String>,
    /// TOKEN (default: the current token)
    pub args: Vec<String>,
}

/// `token revoke [-self | -accessor] [-mode orphan|path] [TOKEN]`
#[derive(clap::Args, Debug, Default)]
pub struct RevokeArgs {
    /// Treat the argument as an accessor
    #[arg(long)]
    pub accessor: bool,
    /// Revoke the current token
    #[arg(long = "self")]
    pub self_: bool,
    /// "orphan" (keep children) or "path" (revoke by prefix)
    #[arg(long)]
    pub mode: Option<String>,
    /// TOKEN or ACCESSOR
    pub args: Vec<String>,
}

/// `login [-method token|userpass|approle|jwt] [-path P] [-no-store] [-no-print]
/// [-token-only] [-non-interactive] [TOKEN | K=V...]`
///
/// Its `Debug` hides the positional arguments: they hold the token.
#[derive(clap::Args, Default)]
pub struct LoginArgs {
    /// Auth method: token (the default), userpass, approle or jwt
    #[arg(long)]
    pub method: Option<String>,
    /// Mount path of the auth method (default: the method's name)
    #[arg(long)]
    pub path: Option<String>,
    /// Never prompt: fail when a token or password is missing
    #[arg(long)]
    pub non_interactive: bool,
    /// Do not store the token in the token file
    #[arg(long)]
    pub no_store: bool,
    /// Do not print the token information
    #[arg(long)]
    pub no_print: bool,
    /// Print only the token (implies -no-store)
    #[arg(long)]
    pub token_only: bool,
    /// Print only the named field
    #[arg(long)]
    pub field: Option<String>,
    /// TOKEN or K=V pairs
    pub args: Vec<String>,
}

impl std::fmt::Debug for LoginArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginArgs")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("no_store", &self.no_store)
            .field("no_print", &self.no_print)
            .field("token_only", &self.token_only)
            .field("non_interactive", &self.non_interactive)
            .field("field", &self.field)
            .field("args", &"[REDACTED]")
            .finish()
    }
}

pub(crate) fn run(env: &mut Env<'_>, c: TokenCommand) -> i32 {
    match c {
        TokenCommand::Create(a) => create(env, *a),
        TokenCommand::Lookup(a) => lookup(env, a),
        TokenCommand::Revoke(a) => revoke(env, a),
        TokenCommand::Renew(a) => renew(env, a),
        TokenCommand::Capabilities(a) => capabilities(env, a),
    }
}

fn renew(env: &mut Env<'_>, a: RenewArgs) -> i32 {
    let increment = match a.increment.as_deref().map(parse_duration) {
        None => 0,
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            env.error(&format!(
                "invalid value \"{}\" for flag -increment: {e}",
                a.increment.as_deref().unwrap_or("")
            ));
            return 1;
        }
    };
    if a.args.len() > 1 {
        env.error(&format!(
            "Too many arguments (expected 1, got {})",
            a.args.len()
        ));
        return 1;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let arg = a
        .args
        .first()
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let result = if arg.is_empty() {
        client.call(
            "PUT",
            "auth/token/renew-self",
            Some(&json!({ "increment": increment })),
        )
    } else if a.accessor {
        client.call(
            "POST",
            "auth/token/renew-accessor",
            Some(&json!({ "accessor": arg, "increment": increment })),
        )
    } else {
        client.call(
            "PUT",
            "auth/token/renew",
            Some(&json!({ "token": arg, "increment": increment })),
        )
    };
    match result {
        Ok(s) => output::output_secret(env, &s.unwrap_or_default()),
        Err(e) => {
            env.error(&format!("Error renewing token: {e}"));
            2
        }
    }
}

fn capabilities(env: &mut Env<'_>, a: CapabilitiesArgs) -> i32 {
    let (token, path) = match a.args.as_slice() {
        [] => {
            env.error("Not enough arguments (expected 1-2, got 0)");
            return 1;
        }
        [p] => (None, p.clone()),
        [t, p] => (Some(t.clone()), p.clone()),
        more => {
            env.error(&format!(
                "Too many arguments (expected 1-2, got {})",
                more.len()
            ));
            return 1;
        }
    };
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    // `Sys().Capabilities`: the current token asks `capabilities-self`.
    let current = client
        .token()
        .map(|t| t.expose().to_owned())
        .unwrap_or_default();
    let token = token.unwrap_or_else(|| current.clone());
    let endpoint = if token == current {
        "sys/capabilities-self"
    } else {
        "sys/capabilities"
    };
    let result = client.call(
        "POST",
        endpoint,
        Some(&json!({ "token": token, "path": path })),
    );
    let data = match result {
        Ok(Some(Secret { data: Some(d), .. })) => d,
        Ok(_) => {
            env.error("Error listing capabilities: data from server response is empty");
            return 2;
        }
        Err(e) => {
            env.error(&format!("Error listing capabilities: {e}"));
            return 2;
        }
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().map(output::fmt_value).collect())
            .unwrap_or_default()
    };
    let mut caps = strings(data.get(&path));
    if caps.is_empty() {
        caps = strings(data.get("capabilities"));
    }
    if caps.is_empty() {
        env.error("No capabilities found");
        return 1;
    }
    match env.format {
        Format::Table => {
            caps.sort();
            env.out(&caps.join(", "));
        }
        Format::Json => {
            let text = output::go_json(&caps);
            env.out(&text);
        }
    }
    0
}

fn create(env: &mut Env<'_>, a: CreateArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 0, Some(0), "0") {
        return c;
    }
    let mut durations = Vec::new();
    for (name, v) in [
        ("ttl", &a.ttl),
        ("explicit-max-ttl", &a.explicit_max_ttl),
        ("period", &a.period),
    ] {
        match parse_duration(v.as_deref().unwrap_or("")) {
            Ok(s) => durations.push(go_duration(s)),
            Err(e) => {
                env.error(&format!(
                    "invalid value \"{}\" for flag -{name}: {e}",
                    v.as_deref().unwrap_or("")
                ));
                return 1;
            }
        }
    }
    let mut meta = Map::new();
    for kv in &a.metadata {
        match kv.split_once('=') {
            Some((k, v)) => {
                meta.insert(k.to_owned(), json!(v));
            }
            None => {
                env.error(&format!(
                    "invalid value \"{kv}\" for flag -metadata: missing = in KV pair: \"{kv}\""
                ));
                return 1;
            }
        }
    }
    let renewable = a.r#type != "batch" && a.renewable.unwrap_or(true);
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    // `api.TokenCreateRequest`, with its omitempty rules.
    let mut body = Map::new();
    if let Some(id) = a.id.as_deref().filter(|s| !s.is_empty()) {
        body.insert("id".into(), json!(id));
    }
    let policies: Vec<String> = a
        .policy
        .iter()
        .flat_map(|p| p.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    if !policies.is_empty() {
        body.insert("policies".into(), json!(policies));
    }
    if !meta.is_empty() {
        body.insert("meta".into(), Value::Object(meta));
    }
    body.insert("ttl".into(), json!(durations[0]));
    body.insert("explicit_max_ttl".into(), json!(durations[1]));
    body.insert("period".into(), json!(durations[2]));
    if a.orphan {
        body.insert("no_parent".into(), json!(true));
    }
    if a.no_default_policy {
        body.insert("no_default_policy".into(), json!(true));
    }
    body.insert(
        "display_name".into(),
        json!(a.display_name.clone().unwrap_or_default()),
    );
    body.insert("num_uses".into(), json!(a.use_limit));
    body.insert("renewable".into(), json!(renewable));
    body.insert("type".into(), json!(a.r#type));
    body.insert(
        "entity_alias".into(),
        json!(a.entity_alias.clone().unwrap_or_default()),
    );
    let path = match a.role.as_deref().filter(|r| !r.is_empty()) {
        Some(role) => format!("auth/token/create/{role}"),
        None => "auth/token/create".to_owned(),
    };
    let secret = match client.call("POST", &path, Some(&Value::Object(body))) {
        Ok(Some(s)) => s,
        Ok(None) => Secret::default(),
        Err(e) => {
            env.error(&format!("Error creating token: {e}"));
            return 2;
        }
    };
    if let Some(f) = &a.field {
        return output::print_raw_field(env, &secret, f);
    }
    output::output_secret(env, &secret)
}

fn lookup(env: &mut Env<'_>, a: LookupArgs) -> i32 {
    if a.accessor && a.args.len() != 1 {
        let what = if a.args.is_empty() {
            "Not enough"
        } else {
            "Too many"
        };
        env.error(&format!(
            "{what} arguments with -accessor (expected 1, got {})",
            a.args.len()
        ));
        return 1;
    }
    if a.args.len() > 1 {
        env.error(&format!(
            "Too many arguments (expected 0-1, got {})",
            a.args.len()
        ));
        return 1;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let arg = a
        .args
        .first()
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let result = if arg.is_empty() {
        client.call("GET", "auth/token/lookup-self", None)
    } else if a.accessor {
        client.call(
            "POST",
            "auth/token/lookup-accessor",
            Some(&json!({"accessor": arg})),
        )
    } else {
        client.call("POST", "auth/token/lookup", Some(&json!({"token": arg})))
    };
    let secret = match result {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            env.error(&format!("Error looking up token: {e}"));
            return 2;
        }
    };
    if let Some(f) = &a.field {
        return output::print_raw_field(env, &secret, f);
    }
    output::output_secret(env, &secret)
}

fn revoke(env: &mut Env<'_>, a: RevokeArgs) -> i32 {
    let mode = a.mode.clone().unwrap_or_default();
    if !matches!(mode.as_str(), "" | "orphan" | "path") {
        env.error(&format!("Invalid mode: {mode}"));
        return 1;
    }
    let n = a.args.len();
    let usage = if a.self_ && n > 0 {
        Some(format!(
            "Too many arguments with -self (expected 0, got {n})"
        ))
    } else if !a.self_ && n > 1 {
        Some(format!("Too many arguments (expected 1 or -self, got {n})"))
    } else if !a.self_ && n < 1 {
        Some(format!(
            "Not enough arguments (expected 1 or -self, got {n})"
        ))
    } else if a.self_ && a.accessor {
        Some("Cannot use -self with -accessor!".to_owned())
    } else if a.self_ && !mode.is_empty() {
        Some("Cannot use -self with -mode!".to_owned())
    } else if a.accessor && mode == "orphan" {
        Some("Cannot use -accessor with -mode=orphan!".to_owned())
    } else if a.accessor && mode == "path" {
        Some("Cannot use -accessor with -mode=path!".to_owned())
    } else {
        None
    };
    if let Some(msg) = usage {
        env.error(&msg);
        return 1;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let arg = a
        .args
        .first()
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let result = if a.self_ {
        client.raw("PUT", "auth/token/revoke-self", &[], None)
    } else if a.accessor {
        client.raw(
            "POST",
            "auth/token/revoke-accessor",
            &[],
            Some(&json!({"accessor": arg})),
        )
    } else if mode == "orphan" {
        client.raw(
            "PUT",
            "auth/token/revoke-orphan",
            &[],
            Some(&json!({"token": arg})),
        )
    } else if mode == "path" {
        client.raw("PUT", &format!("sys/leases/revoke-prefix/{arg}"), &[], None)
    } else {
        client.raw(
            "PUT",
            "auth/token/revoke",
            &[],
            Some(&json!({"token": arg})),
        )
    };
    if let Err(e) = result {
        env.error(&format!("Error revoking token: {e}"));
        return 2;
    }
    env.out("Success! Revoked token (if it existed)");
    0
}

/// `login`: authenticate with a method's CLI handler, unwrap a wrapped answer, store the token
/// and print it (`LoginCommand.Run`).
pub(crate) fn login(env: &mut Env<'_>, a: LoginArgs) -> i32 {
    let no_store = a.no_store || a.token_only;
    let field = if a.token_only {
        Some("token".to_owned())
    } else {
        a.field.clone()
    };
    if no_store && a.no_print {
        env.error("-no-store and -no-print cannot be used together");
        return 1;
    }
    let mut method = crate::sanitize_path(a.method.as_deref().unwrap_or(""));
    if method.is_empty() {
        method = "token".to_owned();
    }
    let auth_path = match a.path.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => p.to_owned(),
        None => crate::ensure_trailing_slash(&method),
    };
    let Some(handler) = LoginMethod::from_name(&method) else {
        env.error(&wrap_at_length(&format!("Unknown auth method: {method}. Use \"bao auth list\" to see the complete list of auth methods. Additionally, some auth methods are only available via the HTTP API."), 0));
        return 1;
    };
    let mut args = a.args.clone();
    if handler == LoginMethod::Token {
        if let Some(first) = args.first_mut() {
            if !first.contains('=') {
                *first = format!("token={first}");
            }
        }
    }
    let mut config = match crate::generic::parse_args_data(env.input(), &args) {
        Ok(c) => c,
        Err(e) => {
            env.error(&format!("Error parsing configuration: {e}"));
            return 1;
        }
    };
    if config.get("mount").is_none_or(|m| m.as_str() == Some("")) {
        config.insert("mount".into(), Value::String(auth_path));
    }
    // A login starts without a token (`ClientWithoutToken`); the token method sets its own.
    let mut client = match env.client_without_token() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let secret = match handler.auth(env, &mut client, &config, a.non_interactive) {
        Ok(s) => s,
        Err(e) => {
            env.error(&format!("Error authenticating: {e}"));
            return 2;
        }
    };
    // A wrapped login (`-wrap-ttl`) is unwrapped before storing, unless nothing is stored.
    let mut client = client.without_wrapping();
    let unwrap = !a.token_only && !a.no_store;
    let (secret, is_wrapped) = match extract_token(&mut client, secret, unwrap) {
        Ok(s) => s,
        Err(e) => {
            env.error(&format!("Error extracting token: {e}"));
            return 2;
        }
    };
    if is_wrapped {
        if a.token_only {
            return output::print_raw_field(env, &secret, "wrapping_token");
        }
        if a.no_store {
            return output::output_secret(env, &secret);
        }
    }
    let Some(auth) = &secret.auth else {
        env.error(&wrap_at_length("Vault returned a secret, but the secret has no authentication information attached. This should never happen and is likely a bug.", 0));
        return 2;
    };
    let token = Token::new(auth.client_token.clone());
    if !no_store {
        let Some(path) = env.token_file() else {
            env.error("Error storing token: no home directory to keep the token file in");
            return 2;
        };
        if let Err(e) = store_token(&path, &token) {
            env.error(&format!("Error storing token: {e}"));
            env.error(&(wrap_at_length("Authentication was successful, but the token was not persisted. The resulting token is shown below for your records.", 0) + "\n"));
            output::output_secret(env, &secret);
            return 2;
        }
    } else if !a.token_only {
        env.warn(&(wrap_at_length("The token was not stored in token helper. Set the COFFER_TOKEN environment variable or pass the token below with each request to Vault.", 0) + "\n"));
    }
    if a.no_print {
        return 0;
    }
    if let Some(f) = &field {
        return output::print_raw_field(env, &secret, f);
    }
    if env.format == Format::Table {
        env.out(&(wrap_at_length("Success! You are now authenticated. The token information displayed below is already stored in the token helper. You do NOT need to run \"bao login\" again. Future OpenBao requests will automatically use this token.", 0) + "\n"));
    }
    output::output_secret(env, &secret)
}

/// The login methods coffer's CLI knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoginMethod {
    Token,
    Userpass,
    AppRole,
    Jwt,
}

impl LoginMethod {
    fn from_name(name: &str) -> Option<LoginMethod> {
        match name {
            "token" => Some(LoginMethod::Token),
            "userpass" => Some(LoginMethod::Userpass),
            "approle" => Some(LoginMethod::AppRole),
            "jwt" => Some(LoginMethod::Jwt),
            _ => None,
        }
    }

    /// The method's `CLIHandler.Auth`: the login answer (an auth block, or wrap info).
    fn auth(
        self,
        env: &mut Env<'_>,
        client: &mut Client,
        config: &Map<String, Value>,
        non_interactive: bool,
    ) -> Result<Secret, String> {
        let get = |k: &str| config.get(k).map(output::fmt_value).unwrap_or_default();
        let mount = crate::sanitize_path(&get("mount"));
        let body = match self {
            LoginMethod::Token => return token_auth(env, client, config, non_interactive),
            LoginMethod::Userpass => {
                let username = get("username");
                if username.is_empty() {
                    return Err("'username' must be specified".to_owned());
                }
                let mut password = get("password");
                if password.is_empty() {
                    if non_interactive {
                        return Err(
                            "'password' must be specified and refusing to pull from stdin"
                                .to_owned(),
                        );
                    }
                    env.prompt_err("Password (will be hidden): ");
                    let line = read_hidden(env);
                    env.prompt_err("\n");
                    password = line.map_err(|e| e.to_string())?;
                }
                let path = format!("auth/{mount}/login/{username}");
                return login_write(client, &path, &json!({ "password": password }));
            }
            LoginMethod::AppRole => {
                let mut body = Map::new();
                body.insert("role_id".into(), json!(get("role_id")));
                if config.contains_key("secret_id") {
                    body.insert("secret_id".into(), json!(get("secret_id")));
                }
                body
            }
            LoginMethod::Jwt => {
                let mut body = Map::new();
                body.insert("role".into(), json!(get("role")));
                body.insert("jwt".into(), json!(get("jwt")));
                body
            }
        };
        if self == LoginMethod::AppRole && get("role_id").is_empty() {
            return Err("'role_id' must be specified".to_owned());
        }
        if self == LoginMethod::Jwt && get("jwt").is_empty() {
            return Err("'jwt' must be specified".to_owned());
        }
        login_write(client, &format!("auth/{mount}/login"), &Value::Object(body))
    }
}

/// A login write; an empty answer is an error (`empty response from credential provider`).
fn login_write(client: &Client, path: &str, body: &Value) -> Result<Secret, String> {
    match client.write(path, body) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err("empty response from credential provider".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// The token method's handler: take the token (argument or prompt), look it up, and make an
/// auth block of the lookup (`credential/token/cli.go`).
fn token_auth(
    env: &mut Env<'_>,
    client: &mut Client,
    config: &Map<String, Value>,
    non_interactive: bool,
) -> Result<Secret, String> {
    let token_text = match config.get("token") {
        Some(v) => output::fmt_value(v),
        None => {
            if non_interactive {
                return Err("'token' not supplied and refusing to pull from stdin".to_owned());
            }
            env.prompt_err("Token (will be hidden): ");
            let line = read_hidden(env);
            env.prompt_err("\n");
            line.map_err(|e| format!("error reading token: {e}"))?
        }
    };
    let token = Token::new(token_text.trim().to_owned());
    drop(token_text);
    if token.expose().is_empty() {
        return Err(
            "a token must be passed to auth, please view the help for more information".to_owned(),
        );
    }
    client.set_token(Some(token.clone()));
    let lookup = match client.call("GET", "auth/token/lookup-self", None) {
        Ok(Some(s)) => s,
        Ok(None) => return Err("empty response from lookup-self".to_owned()),
        Err(e) => return Err(format!("error looking up token: {e}")),
    };
    // A wrapped lookup is the answer as it came (the caller unwraps or prints it).
    if lookup.wrap_info.is_some() {
        return Ok(lookup);
    }
    Ok(login_secret(&token, &lookup))
}

/// `extractToken`: the secret with an auth block, unwrapping a wrapped login when asked; the
/// flag says whether a wrapped answer was left wrapped.
fn extract_token(
    client: &mut Client,
    secret: Secret,
    unwrap: bool,
) -> Result<(Secret, bool), String> {
    if secret.auth.is_some() {
        return Ok((secret, false));
    }
    let Some(w) = &secret.wrap_info else {
        return Err("no auth or wrapping info in response".to_owned());
    };
    if w.wrapped_accessor.is_empty() {
        return Err("wrapped response does not contain a token".to_owned());
    }
    if !unwrap {
        return Ok((secret, true));
    }
    client.set_token(Some(Token::new(w.token.clone())));
    match crate::unwrap::unwrap_token(client, None) {
        Ok(Some(s)) => extract_token(client, s, unwrap),
        Ok(None) => Err("empty response from auth helper".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// The secret the token method's CLI handler makes from `lookup-self`.
fn login_secret(token: &Token, lookup: &Secret) -> Secret {
    let data = lookup.data.clone().unwrap_or_default();
    let strings = |k: &str| -> Option<Vec<String>> {
        data.get(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
    };
    let id = data
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| token.expose().to_owned());
    Secret {
        auth: Some(SecretAuth {
            client_token: id,
            accessor: data
                .get("accessor")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            policies: strings("policies"),
            token_policies: strings("policies"),
            identity_policies: strings("identity_policies"),
            metadata: data.get("meta").and_then(Value::as_object).cloned(),
            lease_duration: data.get("ttl").and_then(Value::as_i64).unwrap_or(0),
            renewable: data
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            ..SecretAuth::default()
        }),
        ..Secret::default()
    }
}

/// Writes the token file, readable by its owner only.
fn store_token(path: &std::path::Path, token: &Token) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(token.expose().as_bytes())
}

/// Reads one line for a prompt; on a terminal, echo is off while typing (`stty -echo`).
pub(crate) fn read_hidden(env: &mut Env<'_>) -> std::io::Result<String> {
    let echo_off = env.interactive
        && std::process::Command::new("stty")
            .arg("-echo")
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success());
    let line = env.read_line();
    if echo_off {
        let _ = std::process::Command::new("stty")
            .arg("echo")
            .stdin(std::process::Stdio::inherit())
            .status();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_secret_comes_from_lookup_self() {
        let lookup = crate::client::parse_secret(
            r#"{"request_id":"x","data":{"id":"s.abc","accessor":"acc","policies":["root"],"ttl":0,"renewable":false,"meta":null}}"#,
        )
        .unwrap()
        .unwrap();
        let s = login_secret(&Token::new("s.abc"), &lookup);
        let j = output::go_json(&s);
        assert!(j.contains("\"client_token\": \"s.abc\""));
        assert!(j.contains("\"request_id\": \"\""));
        assert!(j.contains("\"identity_policies\": null"));
        let table = output::secret_table(&s).unwrap();
        assert!(table.contains("token_duration       ∞"), "{table}");
        assert!(table.contains("token_policies       [\"root\"]"), "{table}");
    }

    #[test]
    fn login_methods_are_the_known_ones() {
        assert_eq!(LoginMethod::from_name("token"), Some(LoginMethod::Token));
        assert_eq!(
            LoginMethod::from_name("userpass"),
            Some(LoginMethod::Userpass)
        );
        assert_eq!(
            LoginMethod::from_name("approle"),
            Some(LoginMethod::AppRole)
        );
        assert_eq!(LoginMethod::from_name("jwt"), Some(LoginMethod::Jwt));
        assert_eq!(LoginMethod::from_name("ldap"), None);
        let a = RenewArgs {
            args: vec!["s.renew-secret".into()],
            ..RenewArgs::default()
        };
        assert!(!format!("{a:?}").contains("renew-secret"));
    }

    #[test]
    fn login_args_debug_hides_the_token() {
        let a = LoginArgs {
            args: vec!["s.secret-token".into()],
            ..LoginArgs::default()
        };
        assert!(!format!("{a:?}").contains("secret-token"));
    }

    #[test]
    fn token_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        store_token(&path, &Token::new("s.x")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "s.x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
