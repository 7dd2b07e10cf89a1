//! `metadata/`, `detailed-metadata/` and `config`: a secret's settings and history, and the
//! engine's (openbao `path_metadata.go`, `path_config.go`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use coffer_sdk::framework::{weak_string, Fields};
use coffer_sdk::{Error, Request, Response, Storage, StorageOp};
use serde_json::{Map, Value};

use super::{
    encode, load_config, load_metadata, metadata_key, not_found, version_key, KeyMetadata, KvV2,
    CONFIG_KEY, METADATA_PREFIX,
};
use crate::passthrough;
use crate::time::{go_duration, now_nanos, rfc3339_nanos};

/// GET `metadata/<path>`.
pub(super) async fn read(key: &str, storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let Some(meta) = load_metadata(storage, key).await? else {
        return Ok(None);
    };
    Ok(Some(Response::with_data(metadata_json(&meta))))
}

/// LIST `metadata/<path>` (keys) or `detailed-metadata/<path>` (keys and each key's metadata),
/// with `after` and `limit` for paging.
pub(super) async fn list(
    req: &Request,
    key: &str,
    detailed: bool,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data).upfront(true);
    let after = fields.string("after")?.unwrap_or_default();
    let limit = fields.int("limit")?.unwrap_or(0);
    let mut prefix = metadata_key(key);
    if !key.is_empty() && !key.ends_with('/') {
        prefix.push('/');
    }
    let mut keys = storage.list(&prefix).await?;
    if !after.is_empty() {
        keys.retain(|k| k.as_str() > after.as_str());
    }
    if limit > 0 {
        keys.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    if !detailed {
        return Ok(passthrough::list_response(keys));
    }
    if keys.is_empty() {
        return Ok(None);
    }
    let mut key_info = Map::new();
    for child in &keys {
        let path = format!("{}{child}", &prefix[METADATA_PREFIX.len()..]);
        let info = if child.ends_with('/') {
            Map::new()
        } else {
            match load_metadata(storage, &path).await? {
                Some(meta) => metadata_json(&meta),
                None => Map::new(),
            }
        };
        key_info.insert(child.clone(), Value::Object(info));
    }
    let mut data = Map::new();
    data.insert("key_info".to_owned(), Value::Object(key_info));
    data.insert(
        "keys".to_owned(),
        Value::Array(keys.into_iter().map(Value::String).collect()),
    );
    Ok(Some(Response::with_data(data)))
}

/// POST `metadata/<path>`: sets max_versions, cas_required, metadata_cas_required,
/// delete_version_after and custom_metadata, creating the metadata if needed; `metadata_cas`
/// is the check-and-set on the metadata's own version.
pub(super) async fn write(
    kv: &KvV2,
    req: &Request,
    key: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    if key.is_empty() {
        return Err(Error::invalid("missing path"));
    }
    let fields = Fields::new(&req.data);
    let max_versions = fields.int("max_versions")?;
    let cas_required = fields.bool("cas_required")?;
    let metadata_cas_required = fields.bool("metadata_cas_required")?;
    let metadata_cas = fields.int("metadata_cas")?;
    let delete_version_after = fields.duration_secs("delete_version_after", false)?;
    let custom_metadata = fields.map("custom_metadata")?;
    let custom_present = fields.raw("custom_metadata").is_some();
    // Nothing to set: OpenBao answers 204 and writes nothing.
    if max_versions.is_none()
        && cas_required.is_none()
        && metadata_cas_required.is_none()
        && delete_version_after.is_none()
        && !custom_present
    {
        return Ok(None);
    }
    let config = load_config(storage).await?;
    let custom = match custom_metadata {
        Some(map) => Some(parse_custom_metadata(map, false)?),
        None if custom_present => Some(BTreeMap::new()),
        None => None,
    };
    if let Some(custom) = &custom {
        validate_custom_metadata(custom)?;
    }
    let mut warnings = Vec::new();
    if cas_required == Some(false) && config.cas_required {
        warnings.push(CAS_WARNING);
    }
    if metadata_cas_required == Some(false) && config.metadata_cas_required {
        warnings.push(METADATA_CAS_WARNING);
    }

    let _guard = kv.lock(key).await;
    let existing = load_metadata(storage, key).await?;
    let must_cas =
        existing.as_ref().is_some_and(|m| m.metadata_cas_required) || config.metadata_cas_required;
    if must_cas && metadata_cas.is_none() {
        return Err(Error::invalid(
            "metadata check-and-set parameter required for this call",
        ));
    }
    let now = now_nanos();
    let mut meta = match existing {
        None => {
            if metadata_cas.is_some_and(|c| c != 0) {
                return Err(Error::invalid(
                    "metadata_cas must be 0 when creating new metadata",
                ));
            }
            KeyMetadata {
                created_time: Some(now),
                updated_time: Some(now),
                current_metadata_version: 1,
                ..KeyMetadata::default()
            }
        }
        Some(mut meta) => {
            if metadata_cas.is_some_and(|c| c as u64 != meta.current_metadata_version) {
                return Err(Error::invalid(
                    "metadata check-and-set parameter does not match the current version",
                ));
            }
            meta.current_metadata_version += 1;
            meta.updated_time = Some(now);
            meta
        }
    };
    if let Some(n) = max_versions {
        // OpenBao stores a uint32: -1 reads back as 4294967295.
        meta.max_versions = n as u32;
    }
    if let Some(b) = cas_required {
        meta.cas_required = b;
    }
    if let Some(b) = metadata_cas_required {
        meta.metadata_cas_required = b;
    }
    if let Some(secs) = delete_version_after {
        meta.delete_version_after = secs;
    }
    if let Some(custom) = custom {
        meta.custom_metadata = custom;
    }
    storage
        .apply(vec![StorageOp::Put(metadata_key(key), encode(&meta)?)])
        .await?;
    Ok(with_warnings(warnings))
}

/// PATCH `metadata/<path>`: changes only the fields given; in custom_metadata a null removes a
/// key (JSON merge patch). The metadata must exist.
pub(super) async fn patch(
    kv: &KvV2,
    req: &Request,
    key: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data).upfront(true);
    let max_versions = fields.int("max_versions")?;
    let cas_required = fields.bool("cas_required")?;
    let metadata_cas_required = fields.bool("metadata_cas_required")?;
    let metadata_cas = fields.int("metadata_cas")?;
    let delete_version_after = fields.duration_secs("delete_version_after", false)?;
    let custom_raw = fields.raw("custom_metadata");
    let custom_patch = fields.map("custom_metadata")?;
    if max_versions.is_none()
        && cas_required.is_none()
        && metadata_cas_required.is_none()
        && delete_version_after.is_none()
        && custom_raw.is_none()
    {
        return Ok(None);
    }
    if key.is_empty() {
        return Err(Error::invalid("missing path"));
    }
    if let Some(patch) = custom_patch {
        validate_custom_metadata(&parse_custom_metadata(patch, true)?)?;
    }
    let config = load_config(storage).await?;

    let _guard = kv.lock(key).await;
    let Some(mut meta) = load_metadata(storage, key).await? else {
        return Ok(not_found(None));
    };
    if (meta.metadata_cas_required || config.metadata_cas_required) && metadata_cas.is_none() {
        return Err(Error::invalid(
            "metadata check-and-set parameter required for this call",
        ));
    }
    if metadata_cas.is_some_and(|c| c as u64 != meta.current_metadata_version) {
        return Err(Error::invalid(
            "metadata check-and-set parameter does not match the current version",
        ));
    }
    let mut warnings = Vec::new();
    if cas_required == Some(false) && config.cas_required {
        warnings.push(CAS_WARNING);
    }
    if metadata_cas_required == Some(false) && config.metadata_cas_required {
        warnings.push(METADATA_CAS_WARNING);
    }
    if let Some(n) = max_versions {
        meta.max_versions = n as u32;
    }
    if let Some(b) = cas_required {
        meta.cas_required = b;
    }
    if let Some(b) = metadata_cas_required {
        meta.metadata_cas_required = b;
    }
    if let Some(secs) = delete_version_after {
        meta.delete_version_after = secs;
    }
    match custom_patch {
        Some(patch) => {
            for (k, v) in patch {
                if v.is_null() {
                    meta.custom_metadata.remove(k);
                } else {
                    let s = weak_string(v)
                        .map_err(|e| Error::invalid(format!("{CUSTOM_METADATA_PREFIX}: {e}")))?;
                    meta.custom_metadata.insert(k.clone(), s);
                }
            }
        }
        // `"custom_metadata": null` removes the whole map, as a merge patch does.
        None if custom_raw.is_some() => meta.custom_metadata.clear(),
        None => {}
    }
    meta.current_metadata_version += 1;
    meta.updated_time = Some(now_nanos());
    storage
        .apply(vec![StorageOp::Put(metadata_key(key), encode(&meta)?)])
        .await?;
    Ok(with_warnings(warnings))
}

/// DELETE `metadata/<path>`: every version's data and the metadata, at once.
pub(super) async fn delete(
    kv: &KvV2,
    key: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let _guard = kv.lock(key).await;
    let Some(meta) = load_metadata(storage, key).await? else {
        return Ok(None);
    };
    let mut ops: Vec<StorageOp> = meta
        .versions
        .keys()
        .map(|n| StorageOp::Delete(version_key(key, *n)))
        .collect();
    ops.push(StorageOp::Delete(metadata_key(key)));
    storage.apply(ops).await?;
    Ok(None)
}

/// GET `config`.
pub(super) async fn read_config(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let config = load_config(storage).await?;
    let mut data = Map::new();
    data.insert("cas_required".to_owned(), Value::Bool(config.cas_required));
    data.insert(
        "delete_version_after".to_owned(),
        Value::String(go_duration(config.delete_version_after)),
    );
    data.insert("max_versions".to_owned(), Value::from(config.max_versions));
    data.insert(
        "metadata_cas_required".to_owned(),
        Value::Bool(config.metadata_cas_required),
    );
    Ok(Some(Response::with_data(data)))
}

/// POST `config`: a negative delete_version_after disables it on every key, zero clears it.
pub(super) async fn write_config(
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data).upfront(true);
    let max_versions = fields.int("max_versions")?;
    let cas_required = fields.bool("cas_required")?;
    let metadata_cas_required = fields.bool("metadata_cas_required")?;
    let delete_version_after = fields.duration_secs("delete_version_after", true)?;
    if max_versions.is_none()
        && cas_required.is_none()
        && metadata_cas_required.is_none()
        && delete_version_after.is_none()
    {
        return Ok(None);
    }
    let mut config = load_config(storage).await?;
    if let Some(n) = max_versions {
        config.max_versions = n as u32;
    }
    if let Some(b) = cas_required {
        config.cas_required = b;
    }
    if let Some(b) = metadata_cas_required {
        config.metadata_cas_required = b;
    }
    if let Some(secs) = delete_version_after {
        config.delete_version_after = secs.max(-1);
    }
    storage
        .apply(vec![StorageOp::Put(
            CONFIG_KEY.to_owned(),
            encode(&config)?,
        )])
        .await?;
    Ok(None)
}

/// The fields of a metadata read, as OpenBao names and prints them.
fn metadata_json(meta: &KeyMetadata) -> Map<String, Value> {
    let time = |t: Option<i64>| Value::String(t.map(rfc3339_nanos).unwrap_or_default());
    let versions: Map<String, Value> = meta
        .versions
        .iter()
        .map(|(n, vm)| {
            let mut v = Map::new();
            v.insert("created_time".to_owned(), time(Some(vm.created_time)));
            v.insert("deletion_time".to_owned(), time(vm.deletion_time));
            v.insert("destroyed".to_owned(), Value::Bool(vm.destroyed));
            (n.to_string(), Value::Object(v))
        })
        .collect();
    let mut out = Map::new();
    out.insert("cas_required".to_owned(), Value::Bool(meta.cas_required));
    out.insert("created_time".to_owned(), time(meta.created_time));
    out.insert(
        "current_metadata_version".to_owned(),
        Value::from(meta.current_metadata_version),
    );
    out.insert(
        "current_version".to_owned(),
        Value::from(meta.current_version),
    );
    out.insert("custom_metadata".to_owned(), meta.custom_metadata_json());
    out.insert(
        "delete_version_after".to_owned(),
        Value::String(go_duration(meta.delete_version_after)),
    );
    out.insert("max_versions".to_owned(), Value::from(meta.max_versions));
    out.insert(
        "metadata_cas_required".to_owned(),
        Value::Bool(meta.metadata_cas_required),
    );
    out.insert(
        "oldest_version".to_owned(),
        Value::from(meta.oldest_version),
    );
    out.insert("updated_time".to_owned(), time(meta.updated_time));
    out.insert("versions".to_owned(), Value::Object(versions));
    out
}

/// custom_metadata values as strings (Go's weak decoding); `skip_nulls` for a patch, where a
/// null means "remove".
fn parse_custom_metadata(
    raw: &Map<String, Value>,
    skip_nulls: bool,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        if skip_nulls && v.is_null() {
            continue;
        }
        let s =
            weak_string(v).map_err(|e| Error::invalid(format!("{CUSTOM_METADATA_PREFIX}: {e}")))?;
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// OpenBao's limits on custom_metadata, every violation reported in its multierror format.
fn validate_custom_metadata(custom: &BTreeMap<String, String>) -> Result<(), Error> {
    let mut errors = Vec::new();
    if custom.len() > MAX_CUSTOM_KEYS {
        errors.push(format!(
            "{CUSTOM_METADATA_PREFIX}: payload must contain at most {MAX_CUSTOM_KEYS} keys, \
             provided {}",
            custom.len()
        ));
    } else {
        for (k, v) in custom {
            if k.is_empty() || k.len() > MAX_CUSTOM_KEY_LEN {
                errors.push(format!(
                    "{CUSTOM_METADATA_PREFIX}: length of key {} is {} but must be 0 < len(key) \
                     <= {MAX_CUSTOM_KEY_LEN}",
                    go_quote(k),
                    k.len()
                ));
            }
            if v.is_empty() || v.len() > MAX_CUSTOM_VALUE_LEN {
                errors.push(format!(
                    "{CUSTOM_METADATA_PREFIX}: length of value for key {} is {} but must be 0 < \
                     len(value) <= {MAX_CUSTOM_VALUE_LEN}",
                    go_quote(k),
                    v.len()
                ));
            }
            if !printable(k) {
                errors.push(format!(
                    "{CUSTOM_METADATA_PREFIX}: key {} ({k}) contains unprintable characters",
                    go_quote(k)
                ));
            }
            if !printable(v) {
                errors.push(format!(
                    "{CUSTOM_METADATA_PREFIX}: value for key {} contains unprintable characters",
                    go_quote(k)
                ));
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    // hashicorp/go-multierror's format.
    let mut msg = if errors.len() == 1 {
        "1 error occurred:\n".to_owned()
    } else {
        format!("{} errors occurred:\n", errors.len())
    };
    for e in &errors {
        let _ = writeln!(msg, "\t* {e}");
    }
    msg.push('\n');
    Err(Error::invalid(msg))
}

fn printable(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// Go's `%q` of a string: double-quoted, control characters escaped.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn with_warnings(warnings: Vec<&str>) -> Option<Response> {
    if warnings.is_empty() {
        return None;
    }
    Some(Response {
        warnings: warnings.into_iter().map(str::to_owned).collect(),
        ..Response::default()
    })
}

const CUSTOM_METADATA_PREFIX: &str = "custom_metadata validation failed";
const MAX_CUSTOM_KEYS: usize = 64;
const MAX_CUSTOM_KEY_LEN: usize = 128;
const MAX_CUSTOM_VALUE_LEN: usize = 512;
const CAS_WARNING: &str =
    "\"cas_required\" set to false, but is mandated by backend config. This value will be ignored.";
const METADATA_CAS_WARNING: &str = "\"metadata_cas_required\" set to false, but is mandated by \
                                    backend config. This value will be ignored.";
