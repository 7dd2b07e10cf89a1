//! `config/zeroaddress`, after openbao `path_config_zeroaddress.go`: the roles that may issue
//! OTPs for any IP address, whatever their CIDR lists say. Stored as `{"roles": [...]}` under
//! `config/zeroaddress`, in the order written (duplicates kept, as OpenBao keeps them).

use coffer_sdk::framework::weak_string;
use coffer_sdk::{Error, Request, Response, Storage, StorageOp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::roles;

/// `GET config/zeroaddress`: the roles, or 404 when never written.
pub(crate) async fn read(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    Ok(load(storage).await?.map(|entry| {
        let mut data = Map::new();
        data.insert("roles".into(), json!(entry.roles));
        Response::with_data(data)
    }))
}

/// `POST config/zeroaddress`: replaces the list; every role named must exist.
pub(crate) async fn write(req: &Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let names = comma_string_slice(req.data.get("roles")).map_err(|detail| {
        Error::invalid(format!(
            "Field validation failed: error converting input for field \"roles\": {detail}"
        ))
    })?;
    if names.is_empty() {
        return Err(Error::invalid("Missing roles"));
    }
    for name in &names {
        if roles::load(storage, name).await?.is_none() {
            return Err(Error::invalid(format!("Role {name:?} does not exist")));
        }
    }
    let bytes = serde_json::to_vec(&ZeroAddress { roles: names }).map_err(Error::internal)?;
    storage.put(ZERO_ADDRESS, bytes).await?;
    Ok(None)
}

/// `DELETE config/zeroaddress`.
pub(crate) async fn delete(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    storage.delete(ZERO_ADDRESS).await?;
    Ok(None)
}

/// The roles allowed any IP address (none when never written).
pub(crate) async fn roles(storage: &dyn Storage) -> Result<Vec<String>, Error> {
    Ok(load(storage).await?.map(|e| e.roles).unwrap_or_default())
}

/// The write that takes a deleted role off the list, if it is on it. OpenBao's
/// `strutil.StrListDelete` removes only the first occurrence, so a role listed twice stays
/// listed after its deletion, and a later role of the same name silently inherits the
/// any-address privilege; coffer removes every occurrence.
pub(crate) async fn remove_role(
    storage: &dyn Storage,
    name: &str,
) -> Result<Option<StorageOp>, Error> {
    let Some(mut entry) = load(storage).await? else {
        return Ok(None);
    };
    let before = entry.roles.len();
    entry.roles.retain(|r| r != name);
    if entry.roles.len() == before {
        return Ok(None);
    }
    let bytes = serde_json::to_vec(&entry).map_err(Error::internal)?;
    Ok(Some(StorageOp::Put(ZERO_ADDRESS.into(), bytes)))
}

#[derive(Serialize, Deserialize)]
struct ZeroAddress {
    roles: Vec<String>,
}

async fn load(storage: &dyn Storage) -> Result<Option<ZeroAddress>, Error> {
    let Some(bytes) = storage.get(ZERO_ADDRESS).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(Error::internal)
}

/// OpenBao's `TypeCommaStringSlice` (go-secure-stdlib `ParseCommaStringSlice`): a string is
/// split on commas, anything else weakly decoded as a list of strings (a scalar is a list of
/// one); every item is trimmed, empty items kept. Errors carry mapstructure's wording.
fn comma_string_slice(value: Option<&Value>) -> Result<Vec<String>, String> {
    let items: Vec<String> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if s.is_empty() => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            let mut errors = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Array(_) | Value::Object(_) => errors.push(unconvertible(i, item)),
                    scalar => out.push(weak_string(scalar)?),
                }
            }
            if !errors.is_empty() {
                return Err(decoding_errors(&errors));
            }
            out
        }
        Some(object @ Value::Object(_)) => {
            return Err(decoding_errors(&[unconvertible(0, object)]))
        }
        Some(scalar) => vec![weak_string(scalar)?],
    };
    Ok(items.iter().map(|s| s.trim().to_owned()).collect())
}

fn unconvertible(index: usize, value: &Value) -> String {
    let go_type = match value {
        Value::Array(_) => "[]interface {}",
        _ => "map[string]interface {}",
    };
    format!(
        "'[{index}]' expected type 'string', got unconvertible type '{go_type}', value: '{}'",
        roles::go_value(value)
    )
}

fn decoding_errors(errors: &[String]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    format!(
        "{} error(s) decoding:\n\n{}",
        errors.len(),
        lines.join("\n")
    )
}

const ZERO_ADDRESS: &str = "config/zeroaddress";
