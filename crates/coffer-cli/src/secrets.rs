//! `secrets enable|disable|list|tune`: the mount table, over `sys/mounts`.
//!
//! Copies OpenBao `internal/command/secrets_*.go`; the JSON of `secrets list` has the shape of
//! the Go client's `api.MountOutput`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::output::{go_duration, go_json, parse_duration, table_output, Format, SortedMap};
use crate::{check_args, ensure_trailing_slash, sanitize_path, Env};

/// `secrets` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum SecretsCommand {
    /// Enable a secrets engine
    Enable(EnableArgs),
    /// Disable a secrets engine
    Disable(DisableArgs),
    /// List enabled secrets engines
    List(ListMountsArgs),
    /// Tune a secrets engine configuration
    Tune(TuneArgs),
}

/// `secrets enable [-path P] [-description D] [-version N] ... TYPE`
#[derive(clap::Args, Debug, Default)]
pub struct EnableArgs {
    /// Where the engine is mounted (default: its type)
    #[arg(long)]
    pub path: Option<String>,
    /// Human-friendly description of the engine
    #[arg(long)]
    pub description: Option<String>,
    /// Default lease TTL (e.g. 30m, 1h, or seconds)
    #[arg(long)]
    pub default_lease_ttl: Option<String>,
    /// Maximum lease TTL
    #[arg(long)]
    pub max_lease_ttl: Option<String>,
    /// Engine version (kv: 1 or 2)
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
    /// Disable caching for this engine
    #[arg(long)]
    pub force_no_cache: bool,
    /// Give the engine access to external entropy
    #[arg(long)]
    pub external_entropy_access: bool,
    /// TYPE
    pub args: Vec<String>,
}

/// `secrets disable PATH`
#[derive(clap::Args, Debug, Default)]
pub struct DisableArgs {
    /// PATH
    pub args: Vec<String>,
}

/// `secrets list [-detailed]`
#[derive(clap::Args, Debug, Default)]
pub struct ListMountsArgs {
    /// Print more information about each engine
    #[arg(long)]
    pub detailed: bool,
    /// Unexpected positional arguments (bao rejects them)
    pub args: Vec<String>,
}

/// `secrets tune [-default-lease-ttl D] [-max-lease-ttl D] [-description D] ... PATH`
#[derive(clap::Args, Debug, Default)]
pub struct TuneArgs {
    /// Default lease TTL
    #[arg(long)]
    pub default_lease_ttl: Option<String>,
    /// Maximum lease TTL
    #[arg(long)]
    pub max_lease_ttl: Option<String>,
    /// New description
    #[arg(long)]
    pub description: Option<String>,
    /// Visibility in the UI listing: unauth or hidden
    #[arg(long)]
    pub listing_visibility: Option<String>,
    /// A K=V mount option (repeatable)
    #[arg(long)]
    pub options: Vec<String>,
    /// Engine version (kv: 1 or 2)
    #[arg(long, default_value_t = 0)]
    pub version: i64,
    /// PATH
    pub args: Vec<String>,
}

pub(crate) fn run(env: &mut Env<'_>, c: SecretsCommand) -> i32 {
    match c {
        SecretsCommand::Enable(a) => enable(env, a),
        SecretsCommand::Disable(a) => disable(env, a),
        SecretsCommand::List(a) => list(env, a),
        SecretsCommand::Tune(a) => tune(env, a),
    }
}

fn enable(env: &mut Env<'_>, a: EnableArgs) -> i32 {
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
    let engine = a.args[0].trim().to_owned();
    let path = ensure_trailing_slash(
        a.path
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(&engine),
    );
    if a.version > 0 {
        options
            .get_or_insert_with(Map::new)
            .insert("version".into(), json!(a.version.to_string()));
    }
    let body = json!({
        "type": engine,
        "description": a.description.clone().unwrap_or_default(),
        "config": {
            "options": null,
            "default_lease_ttl": go_duration(default_ttl),
            "max_lease_ttl": go_duration(max_ttl),
            "force_no_cache": a.force_no_cache,
        },
        "local": a.local,
        "seal_wrap": a.seal_wrap,
        "external_entropy_access": a.external_entropy_access,
        "options": options,
    });
    if let Err(e) = client.raw(
        "POST",
        &format!("sys/mounts/{}", path.trim_end_matches('/')),
        &[],
        Some(&body),
    ) {
        env.error(&format!("Error enabling: {e}"));
        return 2;
    }
    env.out(&format!(
        "Success! Enabled the {engine} secrets engine at: {path}"
    ));
    0
}

fn disable(env: &mut Env<'_>, a: DisableArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let path = ensure_trailing_slash(&sanitize_path(&a.args[0]));
    if let Err(e) = client.raw(
        "DELETE",
        &format!("sys/mounts/{}", path.trim_end_matches('/')),
        &[],
        None,
    ) {
        env.error(&format!("Error disabling secrets engine at {path}: {e}"));
        return 2;
    }
    env.out(&format!(
        "Success! Disabled the secrets engine (if it existed) at: {path}"
    ));
    0
}

/// `api.MountOutput` (also `api.AuthMount`), in its JSON field order.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct MountOutput {
    #[serde(default)]
    pub uuid: String,
    #[serde(rename = "type", default)]
    pub mount_type: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub accessor: String,
    #[serde(default)]
    pub config: MountConfigOutput,
    #[serde(default, serialize_with = "ser_opt_sorted")]
    pub options: Option<Map<String, Value>>,
    #[serde(default)]
    pub local: bool,
    #[serde(default)]
    pub seal_wrap: bool,
    #[serde(default)]
    pub external_entropy_access: bool,
    #[serde(default)]
    pub plugin_version: String,
    #[serde(default)]
    pub running_plugin_version: String,
    #[serde(default)]
    pub running_sha256: String,
    #[serde(default)]
    pub deprecation_status: String,
}

/// `api.MountConfigOutput`.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct MountConfigOutput {
    #[serde(default)]
    pub default_lease_ttl: i64,
    #[serde(default)]
    pub max_lease_ttl: i64,
    #[serde(default)]
    pub force_no_cache: bool,
    #[serde(default, skip_serializing_if = "empty_list")]
    pub audit_non_hmac_request_keys: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "empty_list")]
    pub audit_non_hmac_response_keys: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub listing_visibility: String,
    #[serde(default, skip_serializing_if = "empty_list")]
    pub passthrough_request_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "empty_list")]
    pub allowed_response_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_type: String,
    #[serde(default, skip_serializing_if = "empty_list")]
    pub allowed_managed_keys: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_lockout_config: Option<Value>,
}

fn empty_list(l: &Option<Vec<String>>) -> bool {
    l.as_ref().is_none_or(|l| l.is_empty())
}

fn ser_opt_sorted<S: serde::Serializer>(
    v: &Option<Map<String, Value>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(m) => SortedMap(m).serialize(s),
        None => s.serialize_none(),
    }
}

fn list(env: &mut Env<'_>, a: ListMountsArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 0, Some(0), "0") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let data = match client.call("GET", "sys/mounts", None) {
        Ok(Some(s)) if s.data.is_some() => s.data.unwrap_or_default(),
        Ok(_) => {
            env.error("Error listing secrets engines: data from server response is empty");
            return 2;
        }
        Err(e) => {
            env.error(&format!("Error listing secrets engines: {e}"));
            return 2;
        }
    };
    let mut mounts: BTreeMap<String, MountOutput> = BTreeMap::new();
    for (path, v) in data {
        // Only mount entries are objects; tolerate anything else a server adds.
        if !v.is_object() {
            continue;
        }
        match serde_json::from_value(v) {
            Ok(m) => {
                mounts.insert(path, m);
            }
            Err(e) => {
                env.error(&format!("Error listing secrets engines: {e}"));
                return 2;
            }
        }
    }
    match env.format {
        Format::Json => {
            let text = go_json(&mounts);
            env.out(&text);
        }
        Format::Table => {
            let rows = if a.detailed {
                detailed_rows(&mounts)
            } else {
                let mut rows = vec!["Path | Type | Accessor | Description".to_owned()];
                for (path, m) in &mounts {
                    rows.push(format!(
                        "{path} | {} | {} | {}",
                        m.mount_type, m.accessor, m.description
                    ));
                }
                rows
            };
            let text = table_output(rows, "|");
            env.out(&text);
        }
    }
    0
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
    let mut rows = vec!["Path | Plugin | Accessor | Default TTL | Max TTL | Force No Cache | Replication | Seal Wrap | External Entropy Access | Options | Description | UUID | Version | Running Version | Running SHA256 | Deprecation Status".to_owned()];
    for (path, m) in mounts {
        let options = match &m.options {
            Some(o) => crate::output::fmt_value(&Value::Object(o.clone())),
            None => "map[]".to_owned(),
        };
        rows.push(format!(
            "{path} | {} | {} | {} | {} | {} | {} | {} | {} | {options} | {} | {} | {} | {} | {} | {}",
            m.mount_type,
            m.accessor,
            calc_ttl(&m.mount_type, m.config.default_lease_ttl),
            calc_ttl(&m.mount_type, m.config.max_lease_ttl),
            m.config.force_no_cache,
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

fn tune(env: &mut Env<'_>, a: TuneArgs) -> i32 {
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
    if let Some(v) = &a.listing_visibility {
        if !v.is_empty() {
            body.insert("listing_visibility".into(), json!(v));
        }
    }
    if let Err(e) = client.raw(
        "POST",
        &format!("sys/mounts/{path}tune"),
        &[],
        Some(&Value::Object(body)),
    ) {
        env.error(&format!("Error tuning secrets engine {path}: {e}"));
        return 2;
    }
    env.out(&format!("Success! Tuned the secrets engine at: {path}"));
    0
}

/// `ttlToAPI`: unset is "", negative is "system", anything else Go's duration string.
pub(crate) fn ttl_to_api(secs: i64) -> String {
    match secs {
        0 => String::new(),
        s if s < 0 => "system".to_owned(),
        s => go_duration(s),
    }
}

/// A duration flag's seconds; a bad value is a usage error (exit 1), as bao's flag parser.
pub(crate) fn flag_duration(
    env: &mut Env<'_>,
    name: &str,
    value: Option<&str>,
) -> Result<i64, i32> {
    match value {
        None => Ok(0),
        Some(v) => parse_duration(v).map_err(|e| {
            env.error(&format!("invalid value \"{v}\" for flag -{name}: {e}"));
            1
        }),
    }
}

/// `-options k=v` flags as a map (`None` when none were given, sent as `null`).
pub(crate) fn parse_options(
    env: &mut Env<'_>,
    options: &[String],
) -> Result<Option<Map<String, Value>>, i32> {
    if options.is_empty() {
        return Ok(None);
    }
    let mut map = Map::new();
    for kv in options {
        match kv.split_once('=') {
            Some((k, v)) => {
                map.insert(k.trim().to_owned(), json!(v.trim()));
            }
            None => {
                env.error(&format!(
                    "invalid value \"{kv}\" for flag -options: missing = in KV pair: \"{kv}\""
                ));
                return Err(1);
            }
        }
    }
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_output_keeps_bao_shape() {
        let m: MountOutput = serde_json::from_value(json!({
            "type": "kv", "accessor": "kv_1", "description": "", "uuid": "u",
            "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
            "options": {"version": "2"}, "local": false, "seal_wrap": false,
            "external_entropy_access": false, "plugin_version": "", "running_plugin_version": "v2.7.2+builtin.bao",
            "running_sha256": "", "deprecation_status": "supported", "extra_field": 1
        }))
        .unwrap();
        let j = go_json(&m);
        assert!(
            j.starts_with("{\n  \"uuid\": \"u\",\n  \"type\": \"kv\","),
            "{j}"
        );
        assert!(!j.contains("extra_field") && !j.contains("listing_visibility"));
        assert!(j.contains("\"options\": {\n    \"version\": \"2\"\n  }"));
    }

    #[test]
    fn tune_ttls_read_as_bao_sends_them() {
        assert_eq!(ttl_to_api(0), "");
        assert_eq!(ttl_to_api(3600), "1h0m0s");
        assert_eq!(ttl_to_api(-1), "system");
    }
}
