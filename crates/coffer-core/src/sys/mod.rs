//! The system backend (`sys/`): mounts, auth mounts, policies, the barrier key, and the internal
//! UI mount lookup the bao CLI relies on. The seal endpoints (`seal-status`, `health`, `init`,
//! `unseal`, `seal`, `leader`) answer even while sealed and are served by the HTTP layer
//! straight from `Core`.

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use coffer_sdk::{duration, Error, Operation, Request, Response, SpecialPaths};
use serde_json::{json, Map, Value};

use crate::core::{Core, Unsealed};
use crate::mount::{MountConfig, Table};

/// The sys paths that need `sudo`, as OpenBao's system backend declares them.
pub fn special_paths() -> SpecialPaths {
    SpecialPaths {
        unauthenticated: Vec::new(),
        root: [
            "auth/*",
            "remount",
            "audit",
            "audit/*",
            "raw",
            "raw/*",
            "rotate",
            "rotate/*",
            "seal",
            "step-down",
            "config/*",
            "leases/revoke-prefix/*",
            "leases/revoke-force/*",
            "leases/lookup/*",
            "leases",
        ]
        .map(String::from)
        .to_vec(),
    }
}

/// Serves a request under `sys/`; `req.path` is relative to it.
pub async fn handle(
    core: &Core,
    state: &Unsealed,
    req: Request,
    token: Option<&str>,
) -> Result<Option<Response>, Error> {
    let op = req.operation;
    let path = req.path.clone();
    let read = op == Operation::Read;
    let write = matches!(op, Operation::Create | Operation::Update);
    let (head, rest) = match path.split_once('/') {
        Some((h, r)) => (h, Some(r)),
        None => (path.as_str(), None),
    };
    match (head, rest) {
        ("mounts", None) if read => Ok(Some(list_mounts(state, Table::Secrets))),
        ("auth", None) if read => Ok(Some(list_mounts(state, Table::Auth))),
        ("mounts" | "auth", Some(rest)) => {
            let table = if head == "mounts" {
                Table::Secrets
            } else {
                Table::Auth
            };
            mount_path(core, state, table, rest, &req).await
        }
        ("policy", None) if read || op == Operation::List => {
            let names = state.policies.list().await?;
            Ok(Some(data(json!({ "keys": names, "policies": names }))))
        }
        ("policies", Some("acl")) | ("policies", Some("acl/")) if read || op == Operation::List => {
            let names = state.policies.list().await?;
            Ok(Some(data(json!({ "keys": names, "policies": names }))))
        }
        ("policy", Some(name)) => policy(state, name, &req, "rules").await,
        ("policies", Some(rest)) if rest.starts_with("acl/") => {
            policy(state, &rest["acl/".len()..], &req, "policy").await
        }
        ("metrics", None) if read => Ok(Some(Response::raw(
            "text/plain; version=0.0.4",
            core.metrics_text().as_bytes(),
        ))),
        ("key-status", None) | ("rotate", Some("keyring")) if read => {
            let status = core.barrier().key_status()?;
            Ok(Some(data(json!({
                "term": status.term,
                "install_time": status.install_time.to_rfc3339_opts(SecondsFormat::Nanos, true),
                "encryptions": status.encryptions,
            }))))
        }
        // `sys/rotate/keyring` is OpenBao 2.x's name; the bao CLI uses it.
        ("rotate", None | Some("keyring")) if write => {
            core.barrier().rotate().await?;
            tracing::info!("barrier key rotated");
            Ok(None)
        }
        ("internal", Some(rest)) if read && rest.starts_with("ui/mounts") => {
            ui_mounts(state, rest["ui/mounts".len()..].trim_start_matches('/'))
        }
        ("capabilities-self" | "capabilities" | "capabilities-accessor", None) if write => {
            capabilities(state, &req).await
        }
        ("wrapping", Some(action)) if write || (read && action == "lookup") => {
            wrapping(state, action, &req, token).await
        }
        ("audit" | "audit-hash" | "audit-chain", _) => crate::audit::sys::handle(core, req).await,
        ("leases", _) => crate::expiration::sys::handle(core, state, &req).await,
        (
            "mounts"
            | "auth"
            | "policy"
            | "policies"
            | "key-status"
            | "rotate"
            | "capabilities"
            | "capabilities-self"
            | "capabilities-accessor"
            | "wrapping",
            _,
        ) => Err(Error::UnsupportedOperation),
        _ => Err(Error::UnsupportedPath(format!("sys/{path}"))),
    }
}

/// `sys/mounts/<path>` (enable, read, disable) and `sys/mounts/<path>/tune`; likewise for auth.
async fn mount_path(
    core: &Core,
    state: &Unsealed,
    table: Table,
    rest: &str,
    req: &Request,
) -> Result<Option<Response>, Error> {
    let op = req.operation;
    if let Some(mount) = rest.strip_suffix("/tune") {
        let route_path = format!("{}{}/", table.route_prefix(), mount.trim_matches('/'));
        return match op {
            Operation::Read => {
                let router = state.router.load();
                let route = router.get(&route_path).ok_or_else(|| {
                    Error::invalid(format!("cannot fetch sysview for path {route_path:?}"))
                })?;
                Ok(Some(tune_view(core, &route.entry)))
            }
            Operation::Create | Operation::Update => {
                let data = req.data.clone();
                core.tune_mount(&route_path, move |entry| apply_tune(entry, &data))
                    .await?;
                Ok(None)
            }
            _ => Err(Error::UnsupportedOperation),
        };
    }
    match op {
        Operation::Read => {
            let route_path = format!("{}{}/", table.route_prefix(), rest.trim_matches('/'));
            let router = state.router.load();
            let route = router
                .get(&route_path)
                .ok_or_else(|| Error::invalid(format!("No secret engine mount at {rest}")))?;
            Ok(Some(data(route.entry.to_json())))
        }
        Operation::Create | Operation::Update => {
            let mount_type = req
                .get_str("type")
                .filter(|t| !t.is_empty())
                .ok_or_else(|| Error::invalid("backend type must be specified as a string"))?;
            let description = req.get_str("description").unwrap_or_default();
            let mut config = MountConfig::default();
            if let Some(Value::Object(c)) = req.data.get("config") {
                apply_ttls(&mut config, c)?;
            }
            let options = string_map(req.data.get("options"))?;
            core.enable_mount(table, rest, mount_type, description, config, options)
                .await?;
            Ok(None)
        }
        Operation::Delete => {
            core.disable_mount(table, rest).await?;
            Ok(None)
        }
        _ => Err(Error::UnsupportedOperation),
    }
}

fn list_mounts(state: &Unsealed, table: Table) -> Response {
    let router = state.router.load();
    let mounts: Map<String, Value> = router
        .iter()
        .filter(|r| r.entry.table == table)
        .map(|r| (r.entry.path.clone(), r.entry.to_json()))
        .collect();
    Response::with_data(mounts)
}

fn tune_view(core: &Core, entry: &crate::mount::MountEntry) -> Response {
    let or_default = |v: u64, d: u64| if v == 0 { d } else { v };
    let mut out = json!({
        "description": entry.description,
        "default_lease_ttl": or_default(entry.config.default_lease_ttl, core.default_lease_ttl()),
        "max_lease_ttl": or_default(entry.config.max_lease_ttl, core.max_lease_ttl()),
        "force_no_cache": entry.config.force_no_cache,
    });
    if !entry.options.is_empty() {
        out["options"] = json!(entry.options);
    }
    if entry.table == Table::Auth {
        let option = |key: &str| entry.options.get(key).map(String::as_str);
        let secs = |key: &str| {
            option(key)
                .and_then(|v| duration::parse_str(v).ok())
                .unwrap_or(0)
        };
        out["user_lockout_threshold"] = json!(option("lockout_threshold")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0));
        out["user_lockout_duration"] = json!(secs("lockout_duration"));
        out["user_lockout_counter_reset_duration"] = json!(secs("lockout_counter_reset"));
        out["user_lockout_disable"] = json!(option("lockout_disable") == Some("true"));
        out["token_type"] = json!("default-service");
    }
    data(out)
}

fn apply_tune(
    entry: &mut crate::mount::MountEntry,
    data: &Map<String, Value>,
) -> Result<(), Error> {
    apply_ttls(&mut entry.config, data)?;
    if let Some(description) = data.get("description").and_then(Value::as_str) {
        entry.description = description.to_owned();
    }
    // OpenBao's user lockout settings of an auth mount; the auth method reads them from the
    // mount options.
    if let Some(config) = data.get("user_lockout_config") {
        for (key, value) in string_map(Some(config))? {
            let valid = match key.as_str() {
                "lockout_threshold" => value.parse::<u64>().is_ok(),
                "lockout_duration" | "lockout_counter_reset" | "lockout_counter_reset_duration" => {
                    duration::parse_str(&value).is_ok()
                }
                "lockout_disable" => value.parse::<bool>().is_ok(),
                _ => {
                    return Err(Error::invalid(format!(
                        "unknown user_lockout_config key {key:?}"
                    )))
                }
            };
            if !valid {
                return Err(Error::invalid(format!(
                    "invalid value for {key}: {value:?}"
                )));
            }
            entry.options.insert(key, value);
        }
    }
    for (k, v) in string_map(data.get("options"))? {
        if k == "version" && entry.options.get("version").is_some_and(|cur| *cur > v) {
            return Err(Error::invalid("cannot downgrade mount from version 2"));
        }
        entry.options.insert(k, v);
    }
    Ok(())
}

fn apply_ttls(config: &mut MountConfig, data: &Map<String, Value>) -> Result<(), Error> {
    for (field, slot) in [
        ("default_lease_ttl", &mut config.default_lease_ttl),
        ("max_lease_ttl", &mut config.max_lease_ttl),
    ] {
        match data.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "system" => *slot = 0,
            Some(v) => *slot = duration::parse_seconds(v)?,
        }
    }
    if config.max_lease_ttl > 0 && config.default_lease_ttl > config.max_lease_ttl {
        return Err(Error::invalid(
            "backend max lease TTL cannot be less than backend default lease TTL",
        ));
    }
    Ok(())
}

async fn policy(
    state: &Unsealed,
    name: &str,
    req: &Request,
    text_field: &str,
) -> Result<Option<Response>, Error> {
    match req.operation {
        Operation::Read => {
            let text = state.policies.get(name).await?.ok_or(Error::NotFound)?;
            let name = name.to_lowercase();
            let mut out = json!({ "name": name, text_field: text });
            if text_field == "rules" {
                out["policy"] = json!(text);
            }
            Ok(Some(data(out)))
        }
        Operation::Create | Operation::Update => {
            let text = req
                .get_str("policy")
                .or_else(|| req.get_str("rules"))
                .ok_or_else(|| Error::invalid("'policy' parameter not supplied or empty"))?;
            state.policies.put(name, text).await?;
            Ok(None)
        }
        Operation::Delete => {
            state.policies.delete(name).await?;
            Ok(None)
        }
        _ => Err(Error::UnsupportedOperation),
    }
}

/// `sys/capabilities-self` and `sys/capabilities`: what the caller's (or a given) token may do.
async fn capabilities(state: &Unsealed, req: &Request) -> Result<Option<Response>, Error> {
    let policies = match (req.get_str("token"), req.get_str("accessor")) {
        (_, Some(accessor)) if req.path == "capabilities-accessor" => {
            let hash = state
                .tokens
                .hash_by_accessor(accessor)
                .await?
                .ok_or_else(|| Error::invalid("invalid accessor"))?;
            state
                .tokens
                .lookup_hash(&hash)
                .await?
                .ok_or_else(|| Error::invalid("invalid accessor"))?
                .entry
                .policies
                .clone()
        }
        (Some(token), _) if req.path == "capabilities" => state
            .tokens
            .lookup(token)
            .await?
            .ok_or_else(|| Error::invalid("invalid token"))?
            .entry
            .policies
            .clone(),
        _ if req.path == "capabilities-self" => req
            .auth
            .as_ref()
            .map(|a| a.policies.clone())
            .ok_or(Error::PermissionDenied)?,
        _ => return Err(Error::invalid("missing token or accessor")),
    };
    let acl = state.policies.acl(&policies).await?;
    let mut paths = crate::token::string_list(req.data.get("paths"))?;
    if let Some(path) = req.get_str("path") {
        paths.push(path.to_owned());
    }
    let mut out = Map::new();
    for path in &paths {
        let caps = acl.capabilities(path.trim_start_matches('/'));
        let names = if caps == Default::default() {
            vec!["deny"]
        } else {
            caps.names()
        };
        out.insert(path.clone(), json!(names));
    }
    if paths.len() == 1 {
        out.insert("capabilities".into(), out[&paths[0]].clone());
    }
    Ok(Some(Response::with_data(out)))
}

/// `sys/wrapping/{wrap,unwrap,lookup,rewrap}`. `wrap` returns its input for the pipeline to
/// wrap; the others take the wrapping token from the body or, as OpenBao allows, as the client
/// token.
async fn wrapping(
    state: &Unsealed,
    action: &str,
    req: &Request,
    token: Option<&str>,
) -> Result<Option<Response>, Error> {
    if action == "wrap" {
        if req.data.is_empty() {
            return Err(Error::invalid("no data provided"));
        }
        return Ok(Some(Response::with_data(req.data.clone())));
    }
    let wrapping_token = req
        .get_str("token")
        .filter(|t| !t.is_empty())
        .or(token)
        .ok_or_else(|| Error::invalid("wrapping token is not valid or does not exist"))?;
    match action {
        "unwrap" => crate::wrapping::unwrap(state, wrapping_token)
            .await
            .map(Some),
        "lookup" => crate::wrapping::lookup(state, wrapping_token)
            .await
            .map(Some),
        "rewrap" => crate::wrapping::rewrap(state, wrapping_token)
            .await
            .map(Some),
        _ => Err(Error::UnsupportedPath(format!("sys/wrapping/{action}"))),
    }
}

/// `sys/internal/ui/mounts[/<path>]`: the mount serving a path, as the bao CLI's kv commands ask.
fn ui_mounts(state: &Unsealed, path: &str) -> Result<Option<Response>, Error> {
    let router = state.router.load();
    if path.is_empty() {
        let mut secret = Map::new();
        let mut auth = Map::new();
        for route in router.iter() {
            let target = if route.entry.table == Table::Auth {
                &mut auth
            } else {
                &mut secret
            };
            target.insert(route.entry.path.clone(), route.entry.to_json());
        }
        return Ok(Some(data(json!({ "secret": secret, "auth": auth }))));
    }
    let (route, _) = router
        .find(path)
        .ok_or_else(|| Error::invalid(format!("Preflight capability check returned 403, please ensure client's policies grant access to path \"{path}/\"")))?;
    let mut out = route.entry.to_json();
    out["path"] = json!(route.path);
    Ok(Some(data(out)))
}

fn data(value: Value) -> Response {
    match value {
        Value::Object(map) => Response::with_data(map),
        _ => Response::default(),
    }
}

fn string_map(value: Option<&Value>) -> Result<BTreeMap<String, String>, Error> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(Error::invalid(format!("option {k:?} must be a string"))),
            })
            .collect(),
        Some(_) => Err(Error::invalid("options must be a map")),
    }
}
