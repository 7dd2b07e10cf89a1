//! `sys/leases/*` with OpenBao 2.7's paths, fields, status codes and messages: `lookup` (PUT a
//! `lease_id`; LIST a prefix), `renew[/<id>]`, `revoke[/<id>]`, `revoke-prefix/<prefix>`,
//! `revoke-force/<prefix>`, `tidy`, `count` and the irrevocable list (`sys/leases`).
//! OpenBao 2.x no longer serves the legacy `sys/renew` and `sys/revoke`; neither does coffer.

use chrono::Utc;
use coffer_sdk::{duration, Error, Operation, Request, Response};
use serde_json::{json, Map, Value};

use super::Routes;
use crate::core::{Core, Unsealed};

/// Serves `sys/leases[/...]`; `req.path` is relative to `sys/`.
pub(crate) async fn handle(
    core: &Core,
    state: &Unsealed,
    req: &Request,
) -> Result<Option<Response>, Error> {
    let manager = &state.expiration;
    let op = req.operation;
    let write = matches!(op, Operation::Create | Operation::Update);
    let rest = req.path.strip_prefix("leases").unwrap_or_default();
    if write && rest.ends_with('/') {
        // OpenBao refuses any write to a path ending in a slash before routing it.
        return Err(Error::invalid("cannot write to a path ending in '/'"));
    }
    match rest {
        "" if op == Operation::Read => irrevocable_list(state, req).await,
        "/count" if op == Operation::Read => irrevocable_count(state, req).await,
        "/lookup" if write => {
            let lease_id = match req.data.get("lease_id") {
                None | Some(Value::Null) => "",
                Some(Value::String(id)) => id,
                Some(_) => return Err(Error::invalid("invalid lease ID")),
            };
            if lease_id.is_empty() {
                return Err(Error::invalid("lease_id must be specified"));
            }
            let entry = manager
                .lookup(lease_id)
                .await?
                .ok_or_else(|| Error::invalid("invalid lease"))?;
            Ok(Some(Response::with_data(entry.lookup_data(Utc::now()))))
        }
        "/lookup" if op == Operation::List => {
            // OpenBao's HTTP layer adds the trailing slash to every LIST, which makes this the
            // sudo path `leases/lookup/`; coffer routes it bare, so the check is made here.
            let policies = req
                .auth
                .as_ref()
                .map(|a| a.policies.clone())
                .unwrap_or_default();
            let acl = state.policies.acl(&policies).await?;
            if !acl.allows(Operation::List, "sys/leases/lookup/", true) {
                return Err(Error::acl_denied());
            }
            list(state, "").await
        }
        _ if rest.starts_with("/lookup/") => match op {
            Operation::List => list(state, &rest["/lookup/".len()..]).await,
            _ => Err(Error::UnsupportedOperation),
        },
        "/renew" | "/revoke" if write => {
            let lease_id = lease_id(req, "")?;
            lease_action(core, state, req, rest, &lease_id).await
        }
        _ if write && (rest.starts_with("/renew/") || rest.starts_with("/revoke/")) => {
            let (action, url_id) = rest[1..].split_once('/').unwrap_or_default();
            let lease_id = lease_id(req, url_id)?;
            lease_action(core, state, req, &format!("/{action}"), &lease_id).await
        }
        _ if write && rest.starts_with("/revoke-prefix/") => {
            let sync = bool_field(req, "sync", true)?;
            manager
                .revoke_prefix(
                    &Routes::of(core, state),
                    &rest["/revoke-prefix/".len()..],
                    false,
                    sync,
                )
                .await?;
            Ok((!sync).then(accepted))
        }
        _ if write && rest.starts_with("/revoke-force/") => {
            manager
                .revoke_prefix(
                    &Routes::of(core, state),
                    &rest["/revoke-force/".len()..],
                    true,
                    true,
                )
                .await?;
            Ok(None)
        }
        "/tidy" if write => {
            let revoked = manager
                .tidy(&Routes::of(core, state), &state.tokens)
                .await?;
            tracing::info!(revoked, "leases tidied");
            let mut resp = Response::default().warn(
                "Tidy operation successfully started. Any information from the operation will be printed to OpenBao's server logs.",
            );
            resp.http_status = Some(202);
            Ok(Some(resp))
        }
        "" | "/count" | "/lookup" | "/renew" | "/revoke" | "/tidy" => {
            Err(Error::UnsupportedOperation)
        }
        _ if ["/renew/", "/revoke/", "/revoke-prefix/", "/revoke-force/"]
            .iter()
            .any(|p| rest.starts_with(p)) =>
        {
            Err(Error::UnsupportedOperation)
        }
        _ => Err(Error::UnsupportedPath(format!("sys/{}", req.path))),
    }
}

/// `renew` or `revoke` of one lease.
async fn lease_action(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    action: &str,
    lease_id: &str,
) -> Result<Option<Response>, Error> {
    let manager = &state.expiration;
    if action == "/renew" {
        let increment = increment(req)?;
        return manager
            .renew(&Routes::of(core, state), lease_id, increment)
            .await;
    }
    let sync = bool_field(req, "sync", true)?;
    if sync {
        manager
            .revoke(&Routes::of(core, state), lease_id, false)
            .await?;
        return Ok(None);
    }
    // Handed to the revoker: 202, whether the lease exists or not, as OpenBao answers.
    manager.revoke_lazily(lease_id).await?;
    Ok(Some(accepted()))
}

/// The lease id of `renew` and `revoke`: the body's `lease_id`, else the one in the URL.
fn lease_id(req: &Request, url_id: &str) -> Result<String, Error> {
    let id = match req.data.get("lease_id") {
        None | Some(Value::Null) => url_id,
        Some(Value::String(id)) => id,
        Some(_) => return Err(Error::invalid("invalid lease ID")),
    };
    if id.is_empty() {
        return Err(Error::invalid("lease_id must be specified"));
    }
    Ok(id.to_owned())
}

/// `increment`: seconds or a Go duration, not negative, with OpenBao's field error wording.
fn increment(req: &Request) -> Result<u64, Error> {
    let field_error = |detail: String| {
        Error::invalid(format!(
            "Field validation failed: error converting input for field \"increment\": {detail}"
        ))
    };
    match req.data.get("increment") {
        None | Some(Value::Null) => Ok(0),
        Some(value) => {
            let negative = match value {
                Value::Number(n) => n.as_f64().is_some_and(|f| f < 0.0),
                Value::String(s) => s.trim().starts_with('-'),
                _ => false,
            };
            if negative {
                let shown = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                return Err(field_error(format!(
                    "cannot provide negative value '{shown}'"
                )));
            }
            duration::parse_seconds(value).map_err(|e| field_error(e.to_string()))
        }
    }
}

fn bool_field(req: &Request, field: &str, default: bool) -> Result<bool, Error> {
    match req.data.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(bad_bool(field)),
        },
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(bad_bool(field)),
        },
        Some(_) => Err(bad_bool(field)),
    }
}

/// OpenBao's (oddly quoted) message for a field that is not a boolean.
fn bad_bool(field: &str) -> Error {
    Error::invalid(format!(
        "Field validation failed: error converting input for field \"{field}\": '' cannot parse value as 'bool': strconv.ParseBool: invalid syntax"
    ))
}

/// 202 with no body: the work was handed to the revoker.
fn accepted() -> Response {
    Response {
        http_status: Some(202),
        ..Response::default()
    }
}

/// `LIST sys/leases/lookup/<prefix>`: lease ids and subdirectories under a prefix.
async fn list(state: &Unsealed, prefix: &str) -> Result<Option<Response>, Error> {
    let mut prefix = prefix.to_owned();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    let keys = state.expiration.list(&prefix).await?;
    if keys.is_empty() {
        return Ok(None);
    }
    Ok(Some(Response::with_data(
        [("keys".to_owned(), json!(keys))].into_iter().collect(),
    )))
}

/// `GET sys/leases?type=irrevocable[&limit=N|none]`.
async fn irrevocable_list(state: &Unsealed, req: &Request) -> Result<Option<Response>, Error> {
    if !asks_irrevocable(req) {
        return Ok(None);
    }
    let limit = match req.data.get("limit") {
        None | Some(Value::Null) => Some(MAX_IRREVOCABLE_LISTED),
        Some(Value::String(s)) if s.is_empty() => Some(MAX_IRREVOCABLE_LISTED),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("none") => None,
        Some(value) => {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            let n: i64 = text.parse().map_err(|_| {
                Error::invalid(format!(
                    "invalid 'limit' provided: strconv.Atoi: parsing {text:?}: invalid syntax"
                ))
            })?;
            if n < 1 {
                return Err(Error::invalid("limit must be 'none' or a positive integer"));
            }
            Some(usize::try_from(n).unwrap_or(usize::MAX))
        }
    };
    let mut records = state.expiration.irrevocable().await?;
    records.sort_by(|a, b| (a.expire_time, &a.lease_id).cmp(&(b.expire_time, &b.lease_id)));
    let mut warning = None;
    if let Some(limit) = limit.filter(|l| records.len() > *l) {
        records.truncate(limit);
        warning = Some(
            "Command halted because many irrevocable leases were found. To emit the entire list, re-run the command with force set true.",
        );
    }
    let leases: Vec<Value> = records
        .iter()
        .map(|r| json!({"lease_id": r.lease_id, "mount_id": r.mount_accessor, "error": r.error}))
        .collect();
    let mut resp = Response::with_data(
        [
            ("lease_count".to_owned(), json!(leases.len())),
            ("leases".to_owned(), Value::Array(leases)),
        ]
        .into_iter()
        .collect(),
    );
    resp.warnings.extend(warning.map(str::to_owned));
    Ok(Some(resp))
}

/// `GET sys/leases/count?type=irrevocable`: how many, in all and per mount accessor.
async fn irrevocable_count(state: &Unsealed, req: &Request) -> Result<Option<Response>, Error> {
    if !asks_irrevocable(req) {
        return Ok(None);
    }
    let records = state.expiration.irrevocable().await?;
    let mut counts = Map::new();
    for record in &records {
        let count = counts
            .entry(record.mount_accessor.clone())
            .or_insert(json!(0));
        *count = json!(count.as_u64().unwrap_or(0) + 1);
    }
    Ok(Some(Response::with_data(
        [
            ("counts".to_owned(), Value::Object(counts)),
            ("lease_count".to_owned(), json!(records.len())),
        ]
        .into_iter()
        .collect(),
    )))
}

/// Only irrevocable leases can be listed and counted; any other `type` finds nothing.
fn asks_irrevocable(req: &Request) -> bool {
    req.get_str("type")
        .is_some_and(|t| t.eq_ignore_ascii_case("irrevocable"))
}

/// OpenBao lists at most this many irrevocable leases unless `limit=none`.
const MAX_IRREVOCABLE_LISTED: usize = 10_000;
