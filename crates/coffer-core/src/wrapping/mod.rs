//! Response wrapping: a response is stored under a single-use wrapping token and the client
//! gets only that token, which `sys/wrapping/unwrap` exchanges for the response exactly once.
//! This is how a secret reaches a new machine without passing through anyone else's hands.

use chrono::{DateTime, SecondsFormat, Utc};
use coffer_sdk::{Auth, Error, Lease, Response, WrapInfo};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::core::Unsealed;
use crate::token::TokenParams;

/// Where a wrapped response is kept, by the wrapping token's hash (encrypted by the barrier).
const PREFIX: &str = "sys/wrapping/response/";
/// The TTL of `sys/wrapping/wrap` when the client gave none, as the bao CLI defaults.
pub const DEFAULT_WRAP_TTL: u64 = 300;

/// A wrapped response as stored.
#[derive(Serialize, Deserialize)]
struct Stored {
    data: Option<Map<String, Value>>,
    auth: Option<Auth>,
    lease: Option<Lease>,
    warnings: Vec<String>,
    creation_path: String,
    creation_time: DateTime<Utc>,
    ttl: u64,
}

/// Wraps `resp`: stores it and returns a response holding only the wrapping token.
pub async fn wrap(
    state: &Unsealed,
    resp: Response,
    ttl: u64,
    creation_path: &str,
) -> Result<Response, Error> {
    let now = Utc::now();
    let wrapped_accessor = resp
        .auth
        .as_ref()
        .map(|a| a.accessor.clone())
        .unwrap_or_default();
    let (token, entry) = state
        .tokens
        .create(TokenParams {
            policies: vec!["response-wrapping".into()],
            path: creation_path.to_owned(),
            display_name: "response-wrapping".into(),
            ttl,
            wrapping: true,
            ..TokenParams::default()
        })
        .await?;
    let stored = Stored {
        data: resp.data,
        auth: resp.auth,
        lease: resp.lease,
        warnings: resp.warnings,
        creation_path: creation_path.to_owned(),
        creation_time: now,
        ttl,
    };
    state
        .barrier()
        .put(
            &format!("{PREFIX}{}", entry.hash),
            serde_json::to_vec(&stored).map_err(Error::internal)?,
        )
        .await?;
    Ok(Response {
        wrap_info: Some(WrapInfo {
            token: token.expose_secret().to_owned(),
            accessor: entry.accessor,
            ttl,
            creation_time: now.to_rfc3339_opts(SecondsFormat::Nanos, true),
            creation_path: creation_path.to_owned(),
            wrapped_accessor,
        }),
        ..Response::default()
    })
}

/// Exchanges a wrapping token for its response, once: the token and the stored response are
/// gone afterwards, so a second unwrap fails.
pub async fn unwrap(state: &Unsealed, token: &str) -> Result<Response, Error> {
    let _once = state.wrapping_lock.lock().await;
    let (hash, stored) = load(state, token).await?;
    state.barrier().delete(&format!("{PREFIX}{hash}")).await?;
    state.tokens.revoke_tree(&hash).await?;
    Ok(Response {
        data: stored.data,
        auth: stored.auth,
        lease: stored.lease,
        warnings: stored.warnings,
        ..Response::default()
    })
}

/// The facts of a wrapping token, without unwrapping it.
pub async fn lookup(state: &Unsealed, token: &str) -> Result<Response, Error> {
    let (_, stored) = load(state, token).await?;
    let data = json!({
        "creation_path": stored.creation_path,
        "creation_time": stored.creation_time.to_rfc3339_opts(SecondsFormat::Nanos, true),
        "creation_ttl": stored.ttl,
    });
    Ok(Response::with_data(match data {
        Value::Object(map) => map,
        _ => Map::new(),
    }))
}

/// Moves a wrapped response under a new wrapping token with the same TTL; the old one dies.
pub async fn rewrap(state: &Unsealed, token: &str) -> Result<Response, Error> {
    let (creation_path, ttl) = {
        let (_, stored) = load(state, token).await?;
        (stored.creation_path, stored.ttl)
    };
    let resp = unwrap(state, token).await?;
    wrap(state, resp, ttl, &creation_path).await
}

/// Deletes wrapped responses whose wrapping token has expired or been revoked unused; part of
/// `auth/token/tidy`. Returns how many went.
pub async fn tidy(state: &Unsealed) -> Result<usize, Error> {
    let mut removed = 0;
    for hash in state.barrier().list(PREFIX).await? {
        if state.tokens.lookup_hash(&hash).await?.is_none() {
            state.barrier().delete(&format!("{PREFIX}{hash}")).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

async fn load(state: &Unsealed, token: &str) -> Result<(String, Stored), Error> {
    let invalid = || Error::invalid("wrapping token is not valid or does not exist");
    let live = state.tokens.lookup(token).await?.ok_or_else(invalid)?;
    if !live.entry.wrapping {
        return Err(invalid());
    }
    let hash = live.entry.hash.clone();
    let bytes = state
        .barrier()
        .get(&format!("{PREFIX}{hash}"))
        .await?
        .ok_or_else(invalid)?;
    let stored: Stored = serde_json::from_slice(&bytes).map_err(Error::internal)?;
    Ok((hash, stored))
}
