//! `auth enable|disable|list|tune`: the auth mount table, over `sys/auth` and
//! `sys/mounts/auth/<path>/tune`.
//!
//! Copies OpenBao `internal/command/auth_{enable,disable,list,tune}.go`; `auth list -format=json`
//! has the shape of the Go client's `api.AuthMount` (the same as `api.MountOutput`).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::output::{fmt_value, go_duration, go_json, table_output, Format};
use crate::secrets::{flag_duration, parse_options, ttl_to_api, MountOutput};
use crate::{check_args, ensure_trailing_slash, sanitize_path, Env};

/// `auth` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum AuthCommand {
    /// Enable a new auth method
    Enable(AuthEnableArgs),
    /// Disable an auth method
    Disable(AuthDisableArgs),
    /// List enabled auth methods
    List(AuthListArgs),
    /// Tune an auth method configuration
    Tune(AuthTuneArgs),
}

/// `auth enable [-path P] [-description D] [-default-lease-ttl D] [-max-lease-ttl D] ... TYPE`
#[derive(clap::Args, Debug, Default)]
pub struct AuthEnableArgs {
    /// Where the method is mounted under auth/ (default: its type)
    #[arg(long)]
    pub path: Option<String>,
    /// Human-friendly description of the method
    #[arg(long)]
    pub description: Option<String>,
    /// Default lease TTL of tokens it issues (e.g. 30m, 1h, or seconds)
    #[arg(long)]
    pub default_lease_ttl: Option<String>,
    /// Maximum lease TTL of tokens it issues
    #[arg(long)]
    pub max_lease_ttl: Option<String>,
    /// Token type: default-service, default-batch, service or batch
    #[arg(long)]
    pub token_type: Option<String>,
    /// Visibility in the UI listing: unauth or hidden
    #[arg(long)]
    pub listing_visibility: Option<String>,
    /// Plugin version
    #[arg(long, default_value_t = 0)]
    pub version: i64,
    /// A K=V mount option (repeatable)
    #[arg(long)]
    pub options: Vec<String>,
    /// Mark the mount local-only
    #[arg(long)]
    pub local: bool,
    /// Seal-wrap critical values
    #[arg(long)]
    pub seal_wrap: bool,
    /// Give the method access to external entropy
    #[arg(long)]
    pub external_entropy_access: bool,
    /// TYPE
    pub args: Vec<String>,
}

/// `auth disable PATH`
#[derive(clap::Args, Debug, Default)]
pub struct AuthDisableArgs {
    /// PATH
    pub args: Vec<String>,
}

/// `auth list [-detailed]`
#[derive(clap::Args, Debug, Default)]
pub struct AuthListArgs {
    /// Print more information about each method
    #[arg(long)]
    pub detailed: bool,
    /// Unexpected positional arguments (bao rejects them)
    pub args: Vec<String>,
}

/// `auth tune [-default-lease-ttl D] [-max-lease-ttl D] [-description D] ... PATH`
#[derive(clap::Args, Debug, Default)]
pub struct AuthTuneArgs {
    /// Default lease TTL
    #[arg(long)]
    pub default_lease_ttl: Option<String>,
    /// Maximum lease TTL
    #[arg(long)]
    pub max_lease_ttl: Option<String>,
    /// New description
    #[arg(long)]
    pub description: Option<String>,
    /// Token type: default-service, default-batch, service or batch
    #[arg(long)]
    pub token_type: Option<String>,
    /// Visibility in the UI listing: unauth or hidden
    #[arg(long)]
    pub listing_visibility: Option<String>,
    /// A K=V mount option (repeatable)
    #[arg(long)]
    pub options: Vec<String>,
    /// Plugin version
    #[arg(long, default_value_t = 0)]
    pub version: i64,
    /// PATH
    pub args: Vec<String>,
}

pub(crate) fn run(env: &mut Env<'_>, c: AuthCommand) -> i32 {
    match c {
        AuthCommand::Enable(a) => enable(env, a),
        AuthCommand::Disable(a) => disable(env, a),
        AuthCommand::List(a) => list(env, a),
        AuthCommand::Tune(a) => tune(env, a),
    }
}

fn enable(env: &mut Env<'_>, a: AuthEnableArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let mut options = match parse_options(env, &a.options) {
        Ok(o) => o,
        Err(c) => return c,
    };
    let default_ttl = match flag_duration(env, "default-lease-ttl", a.default_lease_ttl.as_deref())
    {
        Ok(d) => d,
        Err(c) => return c,
    };
    let max_ttl = match flag_duration(env, "max-lease-ttl", a.max_lease_ttl.as_deref()) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let auth_type = a.args[0].trim().to_owned();
    let path = ensure_trailing_slash(
        a.path
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(&auth_type),
    );
    if a.version > 0 {
        options
            .get_or_insert_with(Map::new)
            .insert("version".into(), json!(a.version.to_string()));
    }
    // `api.EnableAuthOptions`; the optional config fields go only when their flag was given.
    let mut config = Map::new();
    config.insert("options".into(), Value::Null);
    config.insert("default_lease_ttl".into(), json!(go_duration(default_ttl)));
    config.insert("max_lease_ttl".into(), json!(go_duration(max_ttl)));
    config.insert("force_no_cache".into(), json!(false));
    if let Some(t) = &a.token_type {
        config.insert("token_type".into(), json!(t));
    }
    if let Some(v) = &a.listing_visibility {
        config.insert("listing_visibility".into(), json!(v));
    }
    let body = json!({
        "type": auth_type,
        "description": a.description.clone().unwrap_or_default(),
        "config": config,
        "local": a.local,
        "seal_wrap": a.seal_wrap,
        "external_entropy_access": a.external_entropy_access,
        "options": options,
    });
    if let Err(e) = client.raw(
        "POST",
        &format!("sys/auth/{}", path.trim_end_matches('/')),
        &[],
        Some(&body),
    ) {
        env.error(&format!("Error enabling {auth_type} auth: {e}"));
        return 2;
    }
    env.out(&format!(
        "Success! Enabled {auth_type} auth method at: {path}"
    ));
    0
}

fn disable(env: &mut Env<'_>, a: AuthDisableArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let path = ensure_trailing_slash(&sanitize_path(&a.args[0]));
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    if let Err(e) = client.raw(
        "DELETE",
        &format!("sys/auth/{}", path.trim_end_matches('/')),
        &[],
        None,
    ) {
        env.error(&format!("Error disabling auth method at {path}: {e}"));
        return 2;
    }
    env.out(&format!(
        "Success! Disabled the auth method (if it existed) at: {path}"
    ));
    0
}

fn list(env: &mut Env<'_>, a: AuthListArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 0, Some(0), "0") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let data = match client.call("GET", "sys/auth", None) {
        Ok(Some(s)) if s.data.is_some() => s.data.unwrap_or_default(),
        Ok(_) => {
            env.error("Error listing enabled authentications: data from server response is empty");
            return 2;
        }
        Err(e) => {
            env.error(&format!("Error listing enabled authentications: {e}"));
            return 2;
        }
    };
    let mounts = match auth_mounts(data) {
        Ok(m) => m,
        Err(e) => {
            env.error(&format!("Error listing enabled authentications: {e}"));
            return 2;
        }
    };
    match env.format {
        Format::Json => {
            let text = go_json(&mounts);
            env.out(&text);
        }
        Format::Table => {
            let rows = if a.detailed {
                detailed_rows(&mounts)
            } else {
                simple_rows(&mounts)
            };
            let text = table_output(rows, "|");
            env.out(&text);
        }
    }
    0
}

/// The mount entries of a `sys/auth` answer, by path; anything that is not an entry (a server
/// may add fields) is skipped.
fn auth_mounts(data: Map<String, Value>) -> Result<BTreeMap<String, MountOutput>, String> {
    let mut mounts = BTreeMap::new();
    for (path, v) in data {
        if !v.is_object() {
            continue;
        }
        let m: MountOutput = serde_json::from_value(v).map_err(|e| e.to_string())?;
        mounts.insert(path, m);
    }
    Ok(mounts)
}

fn simple_rows(mounts: &BTreeMap<String, MountOutput>) -> Vec<String> {
    let mut rows = vec!["Path | Type | Accessor | Description | Version".to_owned()];
    for (path, m) in mounts {
        rows.push(format!(
            "{path} | {} | {} | {} | {}",
            m.mount_type, m.accessor, m.description, m.plugin_version
        ));
    }
    rows
}

fn detailed_rows(mounts: &BTreeMap<String, MountOutput>) -> Vec<String> {
    let calc_ttl = |ty: &str, ttl: i64| -> String {
        if ty == "system" || ty == "cubbyhole" {
            String::new()
        } else if ttl != 0 {
            ttl.to_string()
        } else {
            "system".to_owned()
        }
    };
    let mut rows = vec!["Path | Plugin | Accessor | Default TTL | Max TTL | Token Type | Replication | Seal Wrap | External Entropy Access | Options | Description | UUID | Version | Running Version | Running SHA256 | Deprecation Status".to_owned()];
    for (path, m) in mounts {
        let options = match &m.options {
            Some(o) => fmt_value(&Value::Object(o.clone())),
            None => "map[]".to_owned(),
        };
        rows.push(format!(
            "{path} | {} | {} | {} | {} | {} | {} | {} | {} | {options} | {} | {} | {} | {} | {} | {}",
            m.mount_type,
            m.accessor,
            calc_ttl(&m.mount_type, m.config.default_lease_ttl),
            calc_ttl(&m.mount_type, m.config.max_lease_ttl),
            m.config.token_type,
            if m.local { "local" } else { "replicated" },
            m.seal_wrap,
            m.external_entropy_access,
            m.description,
            m.uuid,
            m.plugin_version,
            m.running_plugin_version,
            m.running_sha256,
            m.deprecation_status,
        ));
    }
    rows
}

fn tune(env: &mut Env<'_>, a: AuthTuneArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let mut options = match parse_options(env, &a.options) {
        Ok(o) => o,
        Err(c) => return c,
    };
    let default_ttl = match flag_duration(env, "default-lease-ttl", a.default_lease_ttl.as_deref())
    {
        Ok(d) => d,
        Err(c) => return c,
    };
    let max_ttl = match flag_duration(env, "max-lease-ttl", a.max_lease_ttl.as_deref()) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    if a.version > 0 {
        options
            .get_or_insert_with(Map::new)
            .insert("version".into(), json!(a.version.to_string()));
    }
    let path = ensure_trailing_slash(&sanitize_path(&a.args[0]));
    // `api.MountConfigInput`: the optional fields go only when their flag was given.
    let mut body = Map::new();
    body.insert(
        "options".into(),
        options.map(Value::Object).unwrap_or(Value::Null),
    );
    body.insert("default_lease_ttl".into(), json!(ttl_to_api(default_ttl)));
    body.insert("max_lease_ttl".into(), json!(ttl_to_api(max_ttl)));
    body.insert("force_no_cache".into(), json!(false));
    if let Some(d) = &a.description {
        body.insert("description".into(), json!(d));
    }
    if let Some(t) = a.token_type.as_deref().filter(|t| !t.is_empty()) {
        body.insert("token_type".into(), json!(t));
    }
    if let Some(v) = a.listing_visibility.as_deref().filter(|v| !v.is_empty()) {
        body.insert("listing_visibility".into(), json!(v));
    }
    if let Err(e) = client.raw(
        "POST",
        &format!("sys/mounts/auth/{path}tune"),
        &[],
        Some(&Value::Object(body)),
    ) {
        env.error(&format!("Error tuning auth method {path}: {e}"));
        return 2;
    }
    env.out(&format!("Success! Tuned the auth method at: {path}"));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts() -> BTreeMap<String, MountOutput> {
        let data = json!({
            "userpass/": {"type": "userpass", "accessor": "auth_userpass_1", "description": "",
                "uuid": "u1", "config": {"default_lease_ttl": 3600, "max_lease_ttl": 0,
                "force_no_cache": false, "token_type": "default-service"}, "options": null,
                "local": false, "seal_wrap": false, "external_entropy_access": false,
                "plugin_version": "", "running_plugin_version": "v2.7.2+builtin.bao",
                "running_sha256": "", "deprecation_status": "supported"},
            "token/": {"type": "token", "accessor": "auth_token_1", "description": "token based credentials",
                "uuid": "u2", "config": {"default_lease_ttl": 0, "max_lease_ttl": 0,
                "force_no_cache": false, "token_type": "default-service"}, "options": null},
            "request_id": "not a mount"
        });
        let Value::Object(m) = data else {
            unreachable!()
        };
        auth_mounts(m).unwrap()
    }

    #[test]
    fn simple_list_matches_bao_table() {
        let t = table_output(simple_rows(&mounts()), "|");
        assert_eq!(
            t,
            "Path         Type        Accessor           Description                Version\n\
             ----         ----        --------           -----------                -------\n\
             token/       token       auth_token_1       token based credentials    n/a\n\
             userpass/    userpass    auth_userpass_1    n/a                        n/a"
        );
    }

    #[test]
    fn detailed_list_shows_ttls_and_token_type() {
        let rows = detailed_rows(&mounts());
        assert_eq!(rows.len(), 3);
        assert!(rows[2].starts_with("userpass/ | userpass | auth_userpass_1 | 3600 | system | default-service | replicated | false | false | map[] |"), "{}", rows[2]);
    }

    #[test]
    fn list_json_keeps_the_auth_mount_shape() {
        let j = go_json(&mounts());
        assert!(
            j.starts_with("{\n  \"token/\": {\n    \"uuid\": \"u2\",\n    \"type\": \"token\",")
        );
        assert!(j.contains("\"token_type\": \"default-service\""));
        assert!(!j.contains("request_id"));
    }
}
