//! Plain key/value storage of JSON objects, shared by kv v1 and cubbyhole (openbao
//! `builtin/logical/kv/passthrough.go`, `vault/logical_cubbyhole.go`): one storage entry per
//! secret, its body stored as given.

use coffer_sdk::{Error, Response, Storage, StorageOp};
use serde_json::{Map, Value};

/// The object stored at `key`, or `None`.
pub(crate) async fn read(
    storage: &dyn Storage,
    key: &str,
) -> Result<Option<Map<String, Value>>, Error> {
    let Some(raw) = storage.get(key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| Error::internal(format_args!("json decoding failed at a stored entry: {e}")))
}

/// Stores `data` at `key`; an empty body is refused as OpenBao refuses it.
pub(crate) async fn write(
    storage: &dyn Storage,
    key: &str,
    data: &Map<String, Value>,
) -> Result<(), Error> {
    if data.is_empty() {
        return Err(Error::invalid("missing data fields"));
    }
    let bytes = serde_json::to_vec(data).map_err(Error::internal)?;
    storage
        .apply(vec![StorageOp::Put(key.to_owned(), bytes)])
        .await
}

/// The children of `prefix` (a directory path without its trailing `/`, or empty for the
/// root) as `{"keys": [...]}`; `None` when there are none, which the core answers with 404 as
/// OpenBao answers an empty list.
pub(crate) async fn list(storage: &dyn Storage, prefix: &str) -> Result<Option<Response>, Error> {
    let keys = if prefix.is_empty() || prefix.ends_with('/') {
        storage.list(prefix).await?
    } else {
        storage.list(&format!("{prefix}/")).await?
    };
    Ok(list_response(keys))
}

/// `{"keys": [...]}`, or `None` for an empty list.
pub(crate) fn list_response(keys: Vec<String>) -> Option<Response> {
    if keys.is_empty() {
        return None;
    }
    let mut data = Map::new();
    data.insert(
        "keys".to_owned(),
        Value::Array(keys.into_iter().map(Value::String).collect()),
    );
    Some(Response::with_data(data))
}

/// OpenBao refuses writes to a path ending in `/` before any backend sees them; the engines
/// check it too so they are safe whatever the core does.
pub(crate) fn check_writable(path: &str) -> Result<(), Error> {
    if path.ends_with('/') {
        return Err(Error::invalid("cannot write to a path ending in '/'"));
    }
    Ok(())
}
