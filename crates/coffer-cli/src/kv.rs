//! `kv get|put|patch|list|delete|undelete|destroy|metadata get|put|delete`: the key/value verbs.
//! Each first asks `GET /v1/sys/internal/ui/mounts/<path>` which mount serves the path and
//! whether it is kv v1 or v2 (a 404 there means v1), then adds `data/`, `metadata/`, `delete/`,
//! `undelete/` or `destroy/` after the mount for v2, exactly as the bao CLI does.
//!
//! Copies OpenBao `internal/command/kv_*.go`.

use serde_json::{json, Map, Value};

use crate::client::{Client, Secret};
use crate::generic::{output_list_result, parse_args_data};
use crate::output::{self, header_for_map, pad_equal_signs, Format};
use crate::{check_args, sanitize_path, Env};

/// `kv` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum KvCommand {
    /// Retrieve data from the KV store
    Get(KvGetArgs),
    /// Set or update data in the KV store
    Put(KvPutArgs),
    /// Set or update data in the KV store without overwriting
    Patch(KvPatchArgs),
    /// List data or secrets
    List(KvListArgs),
    /// Delete versions of secrets stored in K/V
    Delete(KvDeleteArgs),
    /// Undelete versions of secrets stored in K/V
    Undelete(KvVersionsArgs),
    /// Permanently destroy one or more versions of secrets in K/V
    Destroy(KvVersionsArgs),
    /// Interact with Vault's Key-Value storage metadata
    #[command(subcommand)]
    Metadata(KvMetadataCommand),
}

/// `kv metadata` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum KvMetadataCommand {
    /// Retrieve a key's metadata and versions
    Get(KvMountArgs),
    /// Set or update a key's metadata
    Put(KvMetadataPutArgs),
    /// Delete all versions and metadata for a key
    Delete(KvMountArgs),
}

/// `kv get [-mount M] [-version N] [-field F] PATH`
#[derive(clap::Args, Debug, Default)]
pub struct KvGetArgs {
    /// Where the KV engine is mounted; PATH is then relative to it
    #[arg(long)]
    pub mount: Option<String>,
    /// The version to read (0: the latest)
    #[arg(long, default_value_t = 0)]
    pub version: i64,
    /// Print only the named field
    #[arg(long)]
    pub field: Option<String>,
    /// PATH
    pub args: Vec<String>,
}

/// `kv put [-mount M] [-cas N] PATH K=V...`
#[derive(clap::Args, Debug, Default)]
pub struct KvPutArgs {
    /// Where the KV engine is mounted; PATH is then relative to it
    #[arg(long)]
    pub mount: Option<String>,
    /// Check-and-set: the current version the write must follow (-1: no check)
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub cas: i64,
    /// Print only the named field
    #[arg(long)]
    pub field: Option<String>,
    /// PATH, then K=V data
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `kv patch [-mount M] [-cas N] [-method patch|rw] [-remove-data K] PATH K=V...`
#[derive(clap::Args, Debug, Default)]
pub struct KvPatchArgs {
    /// Where the KV engine is mounted; PATH is then relative to it
    #[arg(long)]
    pub mount: Option<String>,
    /// Check-and-set version (0: no check)
    #[arg(long, default_value_t = 0)]
    pub cas: i64,
    /// `patch` (HTTP PATCH) or `rw` (read, then write); default: patch, falling back to rw
    #[arg(long)]
    pub method: Option<String>,
    /// A key to remove (repeatable)
    #[arg(long)]
    pub remove_data: Vec<String>,
    /// Print only the named field
    #[arg(long)]
    pub field: Option<String>,
    /// PATH, then K=V data
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `kv list [-mount M] [PATH]`
#[derive(clap::Args, Debug, Default)]
pub struct KvListArgs {
    /// Where the KV engine is mounted; PATH is then relative to it
    #[arg(long)]
    pub mount: Option<String>,
    /// PATH
    pub args: Vec<String>,
}

/// `kv delete [-mount M] [-versions N,...] PATH`
#[derive(clap::Args, Debug, Default)]
pub struct KvDeleteArgs {
    /// Where the KV engine is mounted; PATH is then relative to it
    #[arg(long)]
    pub mount: Option<String>,
    /// Versions to delete (comma-separated or repeated); default: the latest
    #[arg(long)]
    pub versions: Vec<String>,
    /// PATH
    pub args: Vec<String>,
}

/// `kv undelete|destroy [-mount M] -versions N,... PATH`
#[derive(clap::Args, Debug, Default)]
pub struct KvVersionsArgs {
    /// Where the KV engine is mounted; PATH is then relative to it
    #[arg(long)]
    pub mount: Option<String>,
    /// The versions (comma-separated or repeated)
    #[arg(long)]
    pub versions: Vec<String>,
    /// PATH
    pub args: Vec<String>,
}

/// `kv metadata get|delete [-mount M] PATH`
#[derive(clap::Args, Debug, Default)]
pub struct KvMountArgs {
    /// Where the KV engine is mounted; PATH is then relative to it
    #[arg(long)]
    pub mount: Option<String>,
    /// PATH
    pub args: Vec<String>,
}

/// `kv metadata put [-mount M] [-max-versions N] [-cas-required] [-delete-version-after D]
/// [-custom-metadata K=V] PATH`
#[derive(clap::Args, Debug, Default)]
pub struct KvMetadataPutArgs {
    /// Where the KV engine is mounted; PATH is then relative to it
    #[arg(long)]
    pub mount: Option<String>,
    /// How many versions to keep (0: the mount's setting)
    #[arg(long)]
    pub max_versions: Option<i64>,
    /// Require check-and-set on every write of this key
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub cas_required: Option<bool>,
    /// Delete versions this long after they are written (0s: never)
    #[arg(long)]
    pub delete_version_after: Option<String>,
    /// A K=V pair of custom metadata (repeatable)
    #[arg(long)]
    pub custom_metadata: Vec<String>,
    /// PATH
    pub args: Vec<String>,
}

pub(crate) fn run(env: &mut Env<'_>, c: KvCommand) -> i32 {
    match c {
        KvCommand::Get(a) => get(env, a),
        KvCommand::Put(a) => put(env, a),
        KvCommand::Patch(a) => patch(env, a),
        KvCommand::List(a) => list(env, a),
        KvCommand::Delete(a) => delete(env, a),
        KvCommand::Undelete(a) => versions_op(env, a, "undelete"),
        KvCommand::Destroy(a) => versions_op(env, a, "destroy"),
        KvCommand::Metadata(KvMetadataCommand::Get(a)) => metadata_get(env, a),
        KvCommand::Metadata(KvMetadataCommand::Put(a)) => metadata_put(env, a),
        KvCommand::Metadata(KvMetadataCommand::Delete(a)) => metadata_delete(env, a),
    }
}

/// Where a kv path lives: its mount, the path bao builds on, the engine version.
struct Location {
    mount_path: String,
    partial: String,
    v2: bool,
    mount_flag: bool,
}

impl Location {
    /// The API path for `prefix` (`data`, `metadata`...) on v2, the plain path on v1.
    fn full(&self, prefix: &str) -> String {
        if self.v2 {
            add_prefix_to_kv_path(&self.partial, &self.mount_path, prefix)
        } else if self.mount_flag {
            path_join(&[&self.mount_path, &self.partial])
        } else {
            self.partial.clone()
        }
    }
}

/// Resolves `arg` (with or without `-mount`) as every kv verb does.
fn locate(
    env: &mut Env<'_>,
    client: &Client,
    mount: Option<&str>,
    partial: String,
) -> Result<Location, i32> {
    match mount.filter(|m| !m.is_empty()) {
        Some(m) => {
            let (mount_path, v2) = preflight(env, client, &sanitize_path(m))?;
            let partial = if v2 {
                path_join(&[&mount_path, &partial])
            } else {
                partial
            };
            Ok(Location {
                mount_path,
                partial,
                v2,
                mount_flag: true,
            })
        }
        None => {
            let (mount_path, v2) = preflight(env, client, &partial)?;
            Ok(Location {
                mount_path,
                partial,
                v2,
                mount_flag: false,
            })
        }
    }
}

/// `kvPreflightVersionRequest`: the mount path and whether it is kv v2.
fn preflight(env: &mut Env<'_>, client: &Client, path: &str) -> Result<(String, bool), i32> {
    // `kvPreflightVersionRequest` turns wrapping off for this request.
    let reply = client.without_wrapping().read_raw_ui_mounts(path);
    match reply {
        Err(e) if e.status() == Some(404) => Ok((String::new(), false)),
        Err(e) => {
            env.error(&e.to_string());
            Err(2)
        }
        Ok(None) => {
            env.error("nil response from pre-flight request");
            Err(2)
        }
        Ok(Some(secret)) => {
            let data = secret.data.unwrap_or_default();
            let mount_path = data
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let version = data
                .get("options")
                .and_then(|o| o.get("version"))
                .and_then(Value::as_str)
                .unwrap_or("");
            Ok((mount_path, version == "2"))
        }
    }
}

impl Client {
    /// `GET sys/internal/ui/mounts/<path>`, every error status an error (404 included).
    fn read_raw_ui_mounts(&self, path: &str) -> Result<Option<Secret>, crate::client::Error> {
        let reply = self.raw("GET", &format!("sys/internal/ui/mounts/{path}"), &[], None)?;
        crate::client::parse_secret(&reply.body).map_err(crate::client::Error::Other)
    }
}

fn get(env: &mut Env<'_>, a: KvGetArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    // `kv get` trims only a leading slash, unlike the other verbs.
    let partial = a.args[0].strip_prefix('/').unwrap_or(&a.args[0]).to_owned();
    let loc = match locate(env, &client, a.mount.as_deref(), partial) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let full = loc.full("data");
    let mut query = Vec::new();
    if loc.v2 && a.version > 0 {
        query.push(("version", a.version.to_string()));
    }
    let secret = match client.read(&full, &query) {
        Ok(Some(s)) => s,
        Ok(None) => {
            env.error(&format!("No value found at {full}"));
            return 2;
        }
        Err(e) => {
            env.error(&format!("Error reading {full}: {e}"));
            return 2;
        }
    };
    if let Some(field) = &a.field {
        if loc.v2 {
            let data = secret.data.as_ref().and_then(|d| d.get("data")).cloned();
            return match data {
                Some(Value::Object(inner)) => {
                    if field == "data" && !inner.contains_key("data") {
                        output::print_raw_field(env, &secret, field)
                    } else {
                        output::print_raw_map_field(env, &inner, field)
                    }
                }
                _ => {
                    env.error(&format!("No data found at {full}"));
                    2
                }
            };
        }
        return output::print_raw_field(env, &secret, field);
    }
    if secret.wrap_info.is_some() || env.format != Format::Table {
        return output::output_secret(env, &secret);
    }
    output::print_warnings(env, &secret);
    if loc.v2 {
        output_path(env, &full, "Secret Path");
    }
    let data = secret.data.clone().unwrap_or_default();
    if let Some(Value::Object(meta)) = data.get("metadata") {
        env.out(&header_for_map("Metadata", meta));
        output::output_map(env, meta);
        env.out("");
    }
    let shown = if loc.v2 {
        match data.get("data") {
            Some(Value::Object(d)) => Some(d.clone()),
            _ => None,
        }
    } else {
        secret.data.clone()
    };
    if let Some(d) = shown {
        env.out(&header_for_map("Data", &d));
        output::output_map(env, &d);
    }
    0
}

fn put(env: &mut Env<'_>, a: KvPutArgs) -> i32 {
    if a.args.is_empty() {
        env.error("Not enough arguments (expected >1, got 0)");
        return 1;
    }
    if a.args.len() == 1 {
        env.error("Must supply data");
        return 1;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let data = match parse_args_data(env.input(), &a.args[1..]) {
        Ok(d) => d,
        Err(e) => {
            env.error(&format!("Failed to parse K=V data: {e}"));
            return 1;
        }
    };
    let loc = match locate(env, &client, a.mount.as_deref(), sanitize_path(&a.args[0])) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let full = loc.full("data");
    let body = if loc.v2 {
        let mut options = Map::new();
        if a.cas > -1 {
            options.insert("cas".into(), json!(a.cas));
        }
        json!({"data": data, "options": options})
    } else {
        Value::Object(data)
    };
    let secret = match client.write(&full, &body) {
        Err(e) => {
            output::error_with_secret(env, &format!("Error writing data to {full}: {e}"), &e);
            return 2;
        }
        Ok(None) => {
            if env.format == Format::Table {
                env.out(&format!("Success! Data written to: {full}"));
            }
            return 0;
        }
        Ok(Some(s)) => s,
    };
    write_result(env, &full, &secret, a.field.as_deref())
}

/// How `kv put` and `kv patch` show what the write returned.
fn write_result(env: &mut Env<'_>, full: &str, secret: &Secret, field: Option<&str>) -> i32 {
    if let Some(f) = field {
        return output::print_raw_field(env, secret, f);
    }
    if secret.wrap_info.as_ref().is_some_and(|w| w.ttl != 0) {
        return output::output_secret(env, secret);
    }
    if env.format == Format::Table {
        output_path(env, full, "Secret Path");
        let meta = secret.data.clone().unwrap_or_default();
        env.out(&header_for_map("Metadata", &meta));
        return output::output_map(env, &meta);
    }
    output::output_secret(env, secret)
}

fn patch(env: &mut Env<'_>, a: KvPatchArgs) -> i32 {
    if a.args.is_empty() {
        env.error("Not enough arguments (expected >1, got 0)");
        return 1;
    }
    if a.remove_data.is_empty() && a.args.len() == 1 {
        env.error("Must supply data");
        return 1;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let mut new_data = match parse_args_data(env.input(), &a.args[1..]) {
        Ok(d) => d,
        Err(e) => {
            env.error(&format!("Failed to parse K=V data: {e}"));
            return 1;
        }
    };
    let loc = match locate(env, &client, a.mount.as_deref(), sanitize_path(&a.args[0])) {
        Ok(l) => l,
        Err(c) => return c,
    };
    if !loc.v2 {
        env.error("K/V engine mount must be version 2 for patch support");
        return 2;
    }
    let full = loc.full("data");
    for key in &a.remove_data {
        new_data.insert(key.clone(), Value::Null);
    }
    let result = match a.method.as_deref().unwrap_or("") {
        "rw" => read_then_write(env, &client, &full, new_data),
        "patch" => merge_patch(env, &client, &full, new_data, a.cas, false),
        "" => merge_patch(env, &client, &full, new_data, a.cas, true),
        other => {
            env.error(&format!(
                "Unsupported method provided to -method flag: {other}"
            ));
            return 2;
        }
    };
    match result {
        Err(code) => code,
        Ok(None) => 0,
        Ok(Some(secret)) => write_result(env, &full, &secret, a.field.as_deref()),
    }
}

/// `mergePatch`: HTTP PATCH with a merge-patch body; on 405 (or 403, with a warning) and when
/// allowed, falls back to read-then-write.
fn merge_patch(
    env: &mut Env<'_>,
    client: &Client,
    full: &str,
    new_data: Map<String, Value>,
    cas: i64,
    rw_fallback: bool,
) -> Result<Option<Secret>, i32> {
    let mut options = Map::new();
    if cas > 0 {
        options.insert("cas".into(), json!(cas));
    }
    let body = json!({"data": new_data, "options": options});
    match client.merge_patch(full, &body) {
        Ok(None) => {
            if env.format == Format::Table {
                env.out(&format!("Success! Data written to: {full}"));
            }
            Ok(None)
        }
        Ok(Some(s)) => Ok(Some(s)),
        Err(e) if rw_fallback && e.status() == Some(405) => {
            read_then_write(env, client, full, new_data)
        }
        Err(e) if rw_fallback && e.status() == Some(403) => {
            env.warn(&format!(
                "Data was written to {full} but we recommend that you add the \"patch\" capability to your ACL policy in order to use HTTP PATCH in the future."
            ));
            read_then_write(env, client, full, new_data)
        }
        Err(e) => {
            output::error_with_secret(env, &format!("Error writing data to {full}: {e}"), &e);
            Err(2)
        }
    }
}

/// `readThenWrite`: read the latest version, merge, write with `cas` set to its version.
fn read_then_write(
    env: &mut Env<'_>,
    client: &Client,
    full: &str,
    new_data: Map<String, Value>,
) -> Result<Option<Secret>, i32> {
    let secret = match client.read(full, &[]) {
        Err(e) => {
            env.error(&format!("Error doing pre-read at {full}: {e}"));
            return Err(2);
        }
        Ok(s) => s,
    };
    let Some(current) = secret.and_then(|s| s.data) else {
        env.error(&format!("No value found at {full}"));
        return Err(2);
    };
    let meta = match current.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::Null) | None => {
            env.error(&format!(
                "No metadata found at {full}; patch only works on existing data"
            ));
            return Err(2);
        }
        Some(_) => {
            env.error(&format!(
                "Metadata found at {full} is not the expected type (JSON object)"
            ));
            return Err(2);
        }
    };
    let mut data = match current.get("data") {
        Some(Value::Object(d)) => d.clone(),
        Some(Value::Null) | None => {
            env.error(&format!(
                "No data found at {full}; patch only works on existing data"
            ));
            return Err(2);
        }
        Some(_) => {
            env.error(&format!(
                "Data found at {full} is not the expected type (JSON object)"
            ));
            return Err(2);
        }
    };
    data.extend(new_data);
    let body = json!({"data": data, "options": {"cas": meta.get("version").cloned().unwrap_or(Value::Null)}});
    match client.write(full, &body) {
        Err(e) => {
            output::error_with_secret(env, &format!("Error writing data to {full}: {e}"), &e);
            Err(2)
        }
        Ok(None) => {
            if env.format == Format::Table {
                env.out(&format!("Success! Data written to: {full}"));
            }
            Ok(None)
        }
        Ok(Some(s)) => Ok(Some(s)),
    }
}

fn list(env: &mut Env<'_>, a: KvListArgs) -> i32 {
    let mut args = a.args.clone();
    if args.is_empty() {
        if a.mount.as_deref().unwrap_or("").is_empty() {
            env.error("Not enough arguments (expected 1, got 0)");
            return 1;
        }
        args.push(String::new());
    }
    if let Err(c) = check_args(env, &args, 1, Some(1), "1") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let loc = match locate(env, &client, a.mount.as_deref(), sanitize_path(&args[0])) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let full = loc.full("metadata");
    let secret = match client.list(&full) {
        Ok(s) => s,
        Err(e) => {
            env.error(&format!("Error listing {full}: {e}"));
            return 2;
        }
    };
    output_list_result(env, &full, secret, true)
}

fn delete(env: &mut Env<'_>, a: KvDeleteArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let loc = match locate(env, &client, a.mount.as_deref(), sanitize_path(&a.args[0])) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let full = loc.full("data");
    let result = if loc.v2 && !a.versions.is_empty() {
        let path = loc.full("delete");
        client.write(&path, &json!({"versions": parse_versions(&a.versions)}))
    } else {
        client.delete(&full, &[])
    };
    match result {
        Err(e) => {
            output::error_with_secret(env, &format!("Error deleting {full}: {e}"), &e);
            2
        }
        Ok(None) => {
            if env.format == Format::Table {
                env.out(&format!("Success! Data deleted (if it existed) at: {full}"));
            }
            0
        }
        Ok(Some(s)) => output::output_secret(env, &s),
    }
}

/// `kv undelete` and `kv destroy`: write the version list to `<mount>/<op>/<path>`.
fn versions_op(env: &mut Env<'_>, a: KvVersionsArgs, op: &str) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    if a.versions.is_empty() {
        env.error(&format!(
            "No versions provided, use the \"-versions\" flag to specify the version to {op}."
        ));
        return 1;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let loc = match locate(env, &client, a.mount.as_deref(), sanitize_path(&a.args[0])) {
        Ok(l) => l,
        Err(c) => return c,
    };
    if !loc.v2 {
        let verb = if op == "undelete" {
            "Undelete"
        } else {
            "Destroy"
        };
        env.error(&format!("{verb} not supported on KV Version 1"));
        return 1;
    }
    let path = loc.full(op);
    let body = json!({"versions": parse_versions(&a.versions)});
    match client.write(&path, &body) {
        Err(e) => {
            output::error_with_secret(env, &format!("Error writing data to {path}: {e}"), &e);
            2
        }
        Ok(None) => {
            if env.format == Format::Table {
                env.out(&format!("Success! Data written to: {path}"));
            }
            0
        }
        Ok(Some(s)) => output::output_secret(env, &s),
    }
}

fn metadata_get(env: &mut Env<'_>, a: KvMountArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let loc = match locate(env, &client, a.mount.as_deref(), sanitize_path(&a.args[0])) {
        Ok(l) => l,
        Err(c) => return c,
    };
    if !loc.v2 {
        env.error("Metadata not supported on KV Version 1");
        return 1;
    }
    let full = loc.full("metadata");
    let secret = match client.read(&full, &[]) {
        Ok(Some(s)) => s,
        Ok(None) => {
            env.error(&format!("No value found at {full}"));
            return 2;
        }
        Err(e) => {
            env.error(&format!("Error reading {full}: {e}"));
            return 2;
        }
    };
    if secret.wrap_info.is_some() || env.format != Format::Table {
        return output::output_secret(env, &secret);
    }
    let mut rest = secret.clone();
    let versions = match rest.data.as_mut().and_then(|d| d.remove("versions")) {
        Some(Value::Object(v)) => v,
        _ => {
            env.error(&format!("No value found at {full}"));
            output::output_secret(env, &secret);
            return 2;
        }
    };
    output_path(env, &full, "Metadata Path");
    env.out(&header_for_map(
        "Metadata",
        &rest.data.clone().unwrap_or_default(),
    ));
    output::output_secret(env, &rest);
    let mut numbers = Vec::new();
    for k in versions.keys() {
        match k.parse::<i64>() {
            Ok(n) => numbers.push(n),
            Err(_) => {
                env.error(&format!("Error parsing version {k}"));
                return 2;
            }
        }
    }
    numbers.sort_unstable();
    for n in numbers {
        let v = versions
            .get(&n.to_string())
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        env.out(&format!(
            "\n{}",
            header_for_map(&format!("Version {n}"), &v)
        ));
        output::output_map(env, &v);
    }
    0
}

fn metadata_put(env: &mut Env<'_>, a: KvMetadataPutArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let loc = match locate(env, &client, a.mount.as_deref(), sanitize_path(&a.args[0])) {
        Ok(l) => l,
        Err(c) => return c,
    };
    if !loc.v2 {
        env.error("Metadata not supported on KV Version 1");
        return 1;
    }
    let full = loc.full("metadata");
    let mut data = Map::new();
    if let Some(n) = a.max_versions.filter(|n| *n >= 0) {
        data.insert("max_versions".into(), json!(n));
    }
    if let Some(d) = &a.delete_version_after {
        data.insert("delete_version_after".into(), json!(d));
    }
    if let Some(b) = a.cas_required {
        data.insert("cas_required".into(), json!(b));
    }
    if !a.custom_metadata.is_empty() {
        let mut custom = Map::new();
        for kv in &a.custom_metadata {
            match kv.split_once('=') {
                Some((k, v)) => {
                    custom.insert(k.to_owned(), json!(v));
                }
                None => {
                    env.error(&format!(
                        "invalid value \"{kv}\" for flag -custom-metadata: missing = in KV pair: \"{kv}\""
                    ));
                    return 1;
                }
            }
        }
        data.insert("custom_metadata".into(), Value::Object(custom));
    }
    match client.write(&full, &Value::Object(data)) {
        Err(e) => {
            output::error_with_secret(env, &format!("Error writing data to {full}: {e}"), &e);
            2
        }
        Ok(None) => {
            if env.format == Format::Table {
                env.out(&format!("Success! Data written to: {full}"));
            }
            0
        }
        Ok(Some(s)) => output::output_secret(env, &s),
    }
}

fn metadata_delete(env: &mut Env<'_>, a: KvMountArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let loc = match locate(env, &client, a.mount.as_deref(), sanitize_path(&a.args[0])) {
        Ok(l) => l,
        Err(c) => return c,
    };
    if !loc.v2 {
        env.error("Metadata not supported on KV Version 1");
        return 1;
    }
    let full = loc.full("metadata");
    if let Err(e) = client.delete(&full, &[]) {
        env.error(&format!("Error deleting {full}: {e}"));
        return 2;
    }
    env.out(&format!("Success! Data deleted (if it existed) at: {full}"));
    0
}

/// `outputPath`: a centred title, the path, a blank line.
fn output_path(env: &mut Env<'_>, path: &str, title: &str) {
    env.out(&pad_equal_signs(title, path.len()));
    env.out(path);
    env.out("");
}

/// `kvParseVersionsFlags`: every `-versions` value split on commas.
fn parse_versions(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `addPrefixToKVPath`: `secret/foo` on mount `secret/` becomes `secret/<prefix>/foo`.
fn add_prefix_to_kv_path(path: &str, mount_path: &str, prefix: &str) -> String {
    if path == mount_path || path == mount_path.trim_end_matches('/') {
        return path_join(&[mount_path, prefix]);
    }
    let mut mount = mount_path.to_owned();
    let mut suffix = path.strip_prefix(mount.as_str()).unwrap_or(path).to_owned();
    while suffix == path {
        let parts: Vec<&str> = mount.splitn(2, '/').collect();
        if parts.len() <= 1 || parts[1].is_empty() {
            break;
        }
        mount = parts[1].trim_end_matches('/').to_owned();
        suffix = suffix
            .strip_prefix(mount.as_str())
            .unwrap_or(&suffix)
            .to_owned();
    }
    path_join(&[&mount, prefix, &suffix])
}

/// Go's `path.Join`: non-empty elements joined by `/`, then cleaned.
fn path_join(parts: &[&str]) -> String {
    let joined: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if joined.is_empty() {
        return String::new();
    }
    clean(&joined.join("/"))
}

/// Go's `path.Clean`.
fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_owned(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_go_after_the_mount() {
        assert_eq!(
            add_prefix_to_kv_path("secret/foo", "secret/", "data"),
            "secret/data/foo"
        );
        assert_eq!(
            add_prefix_to_kv_path("secret/a/b", "secret/", "metadata"),
            "secret/metadata/a/b"
        );
        assert_eq!(
            add_prefix_to_kv_path("secret", "secret/", "metadata"),
            "secret/metadata"
        );
        assert_eq!(
            add_prefix_to_kv_path("foo", "secret", "undelete"),
            "secret/undelete/foo"
        );
        assert_eq!(
            add_prefix_to_kv_path("ns1/kv/x", "kv/", "data"),
            "kv/data/ns1/kv/x"
        );
    }

    #[test]
    fn go_path_semantics() {
        assert_eq!(path_join(&["secret/", "foo"]), "secret/foo");
        assert_eq!(path_join(&["secret/", ""]), "secret");
        assert_eq!(path_join(&["a", "../b"]), "b");
        assert_eq!(path_join(&["", ""]), "");
        assert_eq!(clean("/a//b/./c/"), "/a/b/c");
    }

    #[test]
    fn versions_split_on_commas() {
        assert_eq!(
            parse_versions(&["1,2".into(), "3".into()]),
            vec!["1", "2", "3"]
        );
    }
}
