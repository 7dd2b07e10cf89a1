//! The `auth/token/` paths: create, lookup, renew and revoke, as OpenBao's token store serves
//! them. The token method lives in core because it mints tokens for every other method.

use chrono::Utc;
use coffer_sdk::{duration, Auth, Error, Operation, Request, Response};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::{LiveToken, TokenEntry, TokenParams};
use crate::core::{Core, Unsealed};

/// Serves a request under `auth/token/`; `req.path` is relative to it. `caller` is the token
/// the request came with and `presented` the token string itself (for `lookup-self`'s `id`).
pub async fn handle(
    core: &Core,
    state: &Unsealed,
    req: Request,
    caller: &LiveToken,
    presented: &str,
) -> Result<Option<Response>, Error> {
    let op = req.operation;
    let write = matches!(op, Operation::Create | Operation::Update);
    match req.path.as_str() {
        "create" | "create-orphan" if write => {
            create(core, state, &req, caller, req.path == "create-orphan", None).await
        }
        path if write && path.starts_with("create/") => {
            let name = &path["create/".len()..];
            let role = load_role(state, name)
                .await?
                .ok_or_else(|| Error::invalid(format!("unknown role {name}")))?;
            create(core, state, &req, caller, role.orphan, Some(role)).await
        }
        "roles" | "roles/" if op == Operation::List || op == Operation::Read => {
            let keys = state.barrier().list(ROLE_PREFIX).await?;
            if keys.is_empty() {
                return Ok(None);
            }
            Ok(Some(Response::with_data(
                [("keys".to_owned(), serde_json::json!(keys))]
                    .into_iter()
                    .collect(),
            )))
        }
        path if path.starts_with("roles/") => role_path(state, &req, &path["roles/".len()..]).await,
        "lookup-self" if op == Operation::Read || write => {
            Ok(Some(lookup_response(&caller.entry, presented)))
        }
        "lookup" if op == Operation::Read || write => {
            let token = token_field(&req)?;
            let live = state
                .tokens
                .lookup(token.expose_secret())
                .await?
                .ok_or_else(|| Error::Forbidden("bad token".into()))?;
            Ok(Some(lookup_response(&live.entry, token.expose_secret())))
        }
        "lookup-accessor" if write => {
            let hash = by_accessor(state, &req).await?;
            let live = state
                .tokens
                .lookup_hash(&hash)
                .await?
                .ok_or_else(|| Error::invalid("invalid accessor"))?;
            Ok(Some(lookup_response(&live.entry, "")))
        }
        "revoke-self" if write => {
            core.revoke_token_tree(state, &caller.entry.hash).await?;
            Ok(None)
        }
        "revoke" if write => {
            let token = token_field(&req)?;
            let hash = state.tokens.hash(token.expose_secret());
            core.revoke_token_tree(state, &hash).await?;
            Ok(None)
        }
        "revoke-accessor" if write => {
            let hash = by_accessor(state, &req).await?;
            core.revoke_token_tree(state, &hash).await?;
            Ok(None)
        }
        "revoke-orphan" if write => {
            if !caller.entry.is_root() {
                return Err(Error::PermissionDenied);
            }
            let token = token_field(&req)?;
            let hash = state.tokens.hash(token.expose_secret());
            state.tokens.revoke_orphan(&hash).await?;
            core.destroy_cubbyholes(state, std::slice::from_ref(&hash))
                .await?;
            Ok(None)
        }
        "tidy" if write => {
            if !caller.entry.is_root() {
                return Err(Error::acl_denied());
            }
            let removed = state.tokens.tidy().await? + crate::wrapping::tidy(state).await?;
            tracing::info!(removed, "token store tidied");
            let mut resp = Response::default();
            resp.warnings.push(
                "Tidy operation successfully started. Any information from the operation will be printed to OpenBao's server logs.".into(),
            );
            resp.http_status = Some(202);
            Ok(Some(resp))
        }
        "renew-self" if write => renew(core, state, &req, &caller.entry.hash).await,
        "renew" if write => {
            let token = token_field(&req)?;
            let hash = state.tokens.hash(token.expose_secret());
            renew(core, state, &req, &hash).await
        }
        "create" | "create-orphan" | "lookup-self" | "lookup" | "lookup-accessor"
        | "revoke-self" | "revoke" | "revoke-accessor" | "revoke-orphan" | "renew-self"
        | "renew" => Err(Error::UnsupportedOperation),
        other => Err(Error::UnsupportedPath(format!("auth/token/{other}"))),
    }
}

async fn create(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    caller: &LiveToken,
    orphan_path: bool,
    role: Option<Role>,
) -> Result<Option<Response>, Error> {
    let parent = &caller.entry;
    let caller_is_root = parent.is_root();
    let data = &req.data;
    let mut warnings = Vec::new();

    let id = match data.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => {
            if !caller_is_root {
                return Err(Error::invalid(
                    "root or sudo privileges required to specify token id",
                ));
            }
            Some(SecretString::from(id.to_owned()))
        }
        _ => None,
    };
    let no_parent = orphan_path || bool_field(data, "no_parent")?;
    if no_parent && !orphan_path && !caller_is_root {
        return Err(Error::invalid(
            "root or sudo privileges required to create orphan token",
        ));
    }

    let no_default = bool_field(data, "no_default_policy")?
        || role.as_ref().is_some_and(|r| r.token_no_default_policy);
    let mut policies = string_list(data.get("policies"))?;
    match &role {
        // A role decides which policies its tokens may carry, whatever the parent has.
        Some(role) => {
            if policies.is_empty() {
                policies = role.allowed_policies.clone();
            }
            let mut allowed = role.allowed_policies.clone();
            if !role.token_no_default_policy {
                allowed.push("default".into());
            }
            if let Some(bad) = policies
                .iter()
                .find(|p| role.disallowed_policies.contains(p))
            {
                return Err(Error::invalid(format!(
                    "token policy {bad:?} is disallowed by this role"
                )));
            }
            if !role.allowed_policies.is_empty()
                && !policies
                    .iter()
                    .all(|p| p == "default" || allowed.contains(p))
            {
                return Err(Error::invalid(
                    "token policies must be subset of the role's allowed policies",
                ));
            }
        }
        None if policies.is_empty() => policies = parent.policies.clone(),
        None if !caller_is_root
            && !policies
                .iter()
                .all(|p| p == "default" || parent.policies.contains(p)) =>
        {
            return Err(Error::invalid("child policies must be subset of parent"));
        }
        None => {}
    }
    if !no_default && !policies.iter().any(|p| p == "root" || p == "default") {
        policies.push("default".into());
    }
    policies.sort();
    policies.dedup();

    let mut ttl = optional_duration(data, "ttl")?.or(optional_duration(data, "lease")?);
    let role_max = role.as_ref().map_or(0, |r| r.token_explicit_max_ttl);
    let explicit_max_ttl = match optional_duration(data, "explicit_max_ttl")?.unwrap_or(0) {
        0 => role_max,
        asked if role_max > 0 => asked.min(role_max),
        asked => asked,
    };
    let period = match role.as_ref().map_or(0, |r| r.token_period) {
        0 => optional_duration(data, "period")?.unwrap_or(0),
        role_period => role_period,
    };
    let is_root_token = policies.len() == 1 && policies[0] == "root";
    if ttl.is_none() && !(is_root_token && explicit_max_ttl == 0 && period == 0) {
        ttl = Some(core.default_lease_ttl());
    }
    let mut ttl = ttl.unwrap_or(0);
    let max = core.max_lease_ttl();
    if ttl > max && period == 0 {
        warnings.push(format!(
            "TTL of {ttl}s exceeded the effective max_ttl of {max}s; TTL value is capped accordingly"
        ));
        ttl = max;
    }

    let display_name = match data.get("display_name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => format!("token-{name}"),
        _ => "token".to_owned(),
    };
    let meta = match data.get("meta") {
        Some(Value::Object(map)) => Some(
            map.iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(Error::invalid("meta values must be strings")),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(Value::Null) | None => None,
        Some(_) => return Err(Error::invalid("meta must be a map of strings")),
    };
    let num_uses = match data.get("num_uses") {
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| Error::invalid("num_uses must be a non-negative integer"))?,
        None => 0,
    };
    let renewable = match data.get("renewable") {
        Some(_) => bool_field(data, "renewable")?,
        None => true,
    } && role.as_ref().is_none_or(|r| r.renewable);
    let mut bound_cidrs = string_list(data.get("bound_cidrs"))?;
    if let Some(role) = &role {
        if bound_cidrs.is_empty() {
            bound_cidrs.clone_from(&role.token_bound_cidrs);
        }
    }

    let (token, entry) = state
        .tokens
        .create(TokenParams {
            id,
            parent: (!no_parent).then(|| parent.hash.clone()),
            policies,
            path: format!("auth/token/{}", req.path),
            display_name,
            meta,
            ttl,
            explicit_max_ttl,
            num_uses,
            renewable,
            period,
            entity_id: String::new(),
            bound_cidrs,
            wrapping: false,
        })
        .await?;
    let mut resp = Response {
        auth: Some(auth_of(&entry, token.expose_secret())),
        ..Response::default()
    };
    resp.warnings = warnings;
    Ok(Some(resp))
}

async fn renew(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    hash: &str,
) -> Result<Option<Response>, Error> {
    let increment = optional_duration(&req.data, "increment")?.unwrap_or(0);
    let entry = state
        .tokens
        .renew(hash, increment, core.max_lease_ttl())
        .await?;
    let mut auth = auth_of(&entry, "");
    auth.client_token = String::new();
    Ok(Some(Response {
        auth: Some(auth),
        ..Response::default()
    }))
}

/// The `auth` block OpenBao returns for a token.
pub fn auth_of(entry: &TokenEntry, token: &str) -> Auth {
    Auth {
        client_token: token.to_owned(),
        accessor: entry.accessor.clone(),
        policies: entry.policies.clone(),
        token_policies: entry.policies.clone(),
        metadata: entry.meta.clone(),
        lease_duration: entry.ttl,
        renewable: entry.renewable,
        entity_id: entry.entity_id.clone(),
        token_type: "service".into(),
        orphan: entry.parent.is_none(),
        num_uses: entry.num_uses,
        ..Auth::default()
    }
}

fn lookup_response(entry: &TokenEntry, id: &str) -> Response {
    Response::with_data(entry.lookup_data(id, Utc::now()))
}

fn token_field(req: &Request) -> Result<SecretString, Error> {
    match req.data.get("token").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => Ok(SecretString::from(t.to_owned())),
        _ => Err(Error::invalid("missing token")),
    }
}

async fn by_accessor(state: &Unsealed, req: &Request) -> Result<String, Error> {
    let accessor = req
        .get_str("accessor")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::invalid("missing accessor"))?;
    state
        .tokens
        .hash_by_accessor(accessor)
        .await?
        .ok_or_else(|| Error::invalid("invalid accessor"))
}

fn optional_duration(
    data: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<Option<u64>, Error> {
    match data.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => duration::parse_seconds(v).map(Some),
    }
}

fn bool_field(data: &serde_json::Map<String, Value>, field: &str) -> Result<bool, Error> {
    match data.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| Error::invalid(format!("{field} must be a boolean"))),
        Some(_) => Err(Error::invalid(format!("{field} must be a boolean"))),
    }
}

/// A list given as a JSON array or a comma-separated string, as Vault accepts.
pub fn string_list(value: Option<&Value>) -> Result<Vec<String>, Error> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(|s| s.trim().to_owned())
                    .ok_or_else(|| Error::invalid("expected a list of strings"))
            })
            .collect(),
        Some(_) => Err(Error::invalid("expected a list of strings")),
    }
}

const ROLE_PREFIX: &str = "sys/token/roles/";

/// A token role (`auth/token/roles/<name>`): what tokens created through it may be.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Role {
    name: String,
    allowed_policies: Vec<String>,
    disallowed_policies: Vec<String>,
    orphan: bool,
    renewable: bool,
    path_suffix: String,
    token_period: u64,
    token_explicit_max_ttl: u64,
    token_no_default_policy: bool,
    token_bound_cidrs: Vec<String>,
    token_type: String,
}

impl Default for Role {
    fn default() -> Self {
        Role {
            name: String::new(),
            allowed_policies: Vec::new(),
            disallowed_policies: Vec::new(),
            orphan: false,
            renewable: true,
            path_suffix: String::new(),
            token_period: 0,
            token_explicit_max_ttl: 0,
            token_no_default_policy: false,
            token_bound_cidrs: Vec::new(),
            token_type: "default-service".into(),
        }
    }
}

async fn load_role(state: &Unsealed, name: &str) -> Result<Option<Role>, Error> {
    match state.barrier().get(&format!("{ROLE_PREFIX}{name}")).await? {
        Some(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).map_err(Error::internal)?,
        )),
        None => Ok(None),
    }
}

/// `auth/token/roles/<name>`: read, write (fields merge into an existing role), delete.
async fn role_path(state: &Unsealed, req: &Request, name: &str) -> Result<Option<Response>, Error> {
    if name.is_empty() || name.contains('/') {
        return Err(Error::invalid("invalid role name"));
    }
    let key = format!("{ROLE_PREFIX}{name}");
    match req.operation {
        Operation::Read => {
            let Some(role) = load_role(state, name).await? else {
                return Ok(None);
            };
            let mut data = serde_json::to_value(&role).map_err(Error::internal)?;
            data["period"] = serde_json::json!(0);
            data["explicit_max_ttl"] = serde_json::json!(0);
            data["allowed_policies_glob"] = serde_json::json!([]);
            data["disallowed_policies_glob"] = serde_json::json!([]);
            data["allowed_entity_aliases"] = Value::Null;
            data.as_object_mut().map(|m| m.remove("token_bound_cidrs"));
            match data {
                Value::Object(map) => Ok(Some(Response::with_data(map))),
                _ => Err(Error::internal("role is not an object")),
            }
        }
        Operation::Create | Operation::Update => {
            let mut role = load_role(state, name).await?.unwrap_or_default();
            role.name = name.to_owned();
            let data = &req.data;
            if data.contains_key("allowed_policies") {
                role.allowed_policies = string_list(data.get("allowed_policies"))?;
            }
            if data.contains_key("disallowed_policies") {
                role.disallowed_policies = string_list(data.get("disallowed_policies"))?;
            }
            if data.contains_key("orphan") {
                role.orphan = bool_field(data, "orphan")?;
            }
            if data.contains_key("renewable") {
                role.renewable = bool_field(data, "renewable")?;
            }
            if data.contains_key("token_no_default_policy") {
                role.token_no_default_policy = bool_field(data, "token_no_default_policy")?;
            }
            if let Some(suffix) = req.get_str("path_suffix") {
                role.path_suffix = suffix.to_owned();
            }
            if let Some(period) =
                optional_duration(data, "token_period")?.or(optional_duration(data, "period")?)
            {
                role.token_period = period;
            }
            if let Some(max) = optional_duration(data, "token_explicit_max_ttl")?
                .or(optional_duration(data, "explicit_max_ttl")?)
            {
                role.token_explicit_max_ttl = max;
            }
            if data.contains_key("token_bound_cidrs") {
                role.token_bound_cidrs = string_list(data.get("token_bound_cidrs"))?;
            }
            if let Some(kind) = req.get_str("token_type") {
                if !matches!(kind, "service" | "default-service" | "default") {
                    return Err(Error::invalid(format!("unsupported token_type {kind:?}")));
                }
                role.token_type = kind.to_owned();
            }
            state
                .barrier()
                .put(&key, serde_json::to_vec(&role).map_err(Error::internal)?)
                .await?;
            Ok(None)
        }
        Operation::Delete => {
            state.barrier().delete(&key).await?;
            Ok(None)
        }
        _ => Err(Error::UnsupportedOperation),
    }
}
