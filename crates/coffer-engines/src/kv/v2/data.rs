//! `data/`, `subkeys/`, `delete/`, `undelete/` and `destroy/`: the versions of a secret
//! (openbao `path_data.go`, `path_subkeys.go`, `path_delete.go`, `path_destroy.go`).

use coffer_sdk::framework::{weak_int, Fields};
use coffer_sdk::{Error, Request, Response, Storage, StorageOp};
use serde_json::{Map, Value};

use super::{
    deletion_time, encode, load_config, load_metadata, metadata_key, not_found, version_key,
    version_metadata_json, Config, KeyMetadata, KvV2, VersionMetadata,
};
use crate::time::now_nanos;

/// GET `data/<path>`: the latest version, or `?version=n`. The hot path: one metadata get,
/// one version get, and the data parsed straight into the response.
pub(super) async fn read(
    req: &Request,
    key: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let version_param = Fields::new(&req.data).upfront(true).int("version")?;
    let Some(meta) = load_metadata(storage, key).await? else {
        return Ok(None);
    };
    let version = match version_param {
        Some(v) if v > 0 => v as u64,
        _ => meta.current_version,
    };
    let Some(vm) = meta.versions.get(&version) else {
        return Ok(None);
    };
    let mut data = Map::new();
    data.insert(
        "metadata".to_owned(),
        Value::Object(version_metadata_json(version, vm, &meta)),
    );
    // A deleted or destroyed version answers 404 with its metadata and null data.
    if vm.is_deleted(now_nanos()) || vm.destroyed {
        data.insert("data".to_owned(), Value::Null);
        return Ok(not_found(Some(data)));
    }
    let Some(raw) = storage.get(&version_key(key, version)).await? else {
        // Pruned or destroyed between the two gets: gone, as a missing version is.
        return Ok(None);
    };
    let secret: Value = serde_json::from_slice(&raw)
        .map_err(|e| Error::internal(format_args!("failed to decode version data: {e}")))?;
    data.insert("data".to_owned(), secret);
    Ok(Some(Response::with_data(data)))
}

/// POST/PUT `data/<path>`: a new version, with `options.cas` check-and-set.
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
    // OpenBao stores an explicit `"data": null` as a version whose data reads back null.
    let secret = match req.data.get("data") {
        None => return Err(Error::invalid("no data provided")),
        Some(Value::Null) => &Value::Null,
        Some(value @ Value::Object(_)) => value,
        Some(_) => {
            fields.map("data")?;
            return Err(Error::invalid("no data provided"));
        }
    };
    let options = fields.map("options")?;
    let bytes = encode(secret)?;
    let config = load_config(storage).await?;

    let _guard = kv.lock(key).await;
    let mut meta = load_metadata(storage, key).await?.unwrap_or_default();
    check_cas(options, &config, &meta)?;
    let resp = add_version(storage, key, &mut meta, &config, bytes).await?;
    Ok(Some(resp))
}

/// PATCH `data/<path>`: a JSON merge patch (RFC 7386) of the latest version into a new one;
/// the latest version must exist and be neither deleted nor destroyed.
pub(super) async fn patch(
    kv: &KvV2,
    req: &Request,
    key: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data).upfront(true);
    let Some(patch) = fields.map("data")? else {
        return Err(Error::invalid("no data provided"));
    };
    let options = fields.map("options")?;

    let _guard = kv.lock(key).await;
    let Some(mut meta) = load_metadata(storage, key).await? else {
        return Ok(not_found(None));
    };
    let config = load_config(storage).await?;
    check_cas(options, &config, &meta)?;
    let current = meta.current_version;
    let Some(vm) = meta.versions.get(&current).copied() else {
        return Ok(not_found(None));
    };
    if vm.is_deleted(now_nanos()) || vm.destroyed {
        // Unlike a read, the patch 404 carries the version metadata flat.
        return Ok(not_found(Some(version_metadata_json(current, &vm, &meta))));
    }
    let Some(raw) = storage.get(&version_key(key, current)).await? else {
        return Err(Error::internal("could not find version data"));
    };
    let mut doc: Value = serde_json::from_slice(&raw)
        .map_err(|e| Error::internal(format_args!("failed to decode version data: {e}")))?;
    if doc.is_null() {
        doc = Value::Object(Map::new());
    }
    json_patch::merge(&mut doc, &Value::Object(patch.clone()));
    let bytes = encode(&doc)?;
    let resp = add_version(storage, key, &mut meta, &config, bytes).await?;
    Ok(Some(resp))
}

/// DELETE `data/<path>`: soft-deletes the latest version.
pub(super) async fn delete_latest(
    kv: &KvV2,
    key: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let _guard = kv.lock(key).await;
    let Some(mut meta) = load_metadata(storage, key).await? else {
        return Ok(None);
    };
    let now = now_nanos();
    let current = meta.current_version;
    let Some(vm) = meta.versions.get_mut(&current) else {
        return Ok(None);
    };
    if vm.destroyed || vm.is_deleted(now) {
        return Ok(None);
    }
    vm.deletion_time = Some(now);
    save_metadata(storage, key, &meta, Vec::new()).await?;
    Ok(None)
}

/// POST `delete/<path>` `{"versions": [...]}`: soft-deletes those versions.
pub(super) async fn delete_versions(
    kv: &KvV2,
    req: &Request,
    key: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let versions = Fields::new(&req.data)
        .upfront(true)
        .comma_ints("versions")?;
    if versions.is_empty() {
        return Err(Error::invalid("No version number provided"));
    }
    let _guard = kv.lock(key).await;
    let Some(mut meta) = load_metadata(storage, key).await? else {
        return Ok(None);
    };
    let now = now_nanos();
    for n in versions {
        let Some(vm) = version_mut(&mut meta, n) else {
            continue;
        };
        if vm.destroyed || vm.is_deleted(now) {
            continue;
        }
        vm.deletion_time = Some(now);
    }
    save_metadata(storage, key, &meta, Vec::new()).await?;
    Ok(None)
}

/// POST `undelete/<path>` `{"versions": [...]}`: restores soft-deleted versions (a
/// delete_version_after in force schedules their deletion anew).
pub(super) async fn undelete(
    kv: &KvV2,
    req: &Request,
    key: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let versions = Fields::new(&req.data)
        .upfront(true)
        .comma_ints("versions")?;
    if versions.is_empty() {
        return Err(Error::invalid("No version number provided"));
    }
    let config = load_config(storage).await?;
    let _guard = kv.lock(key).await;
    let Some(mut meta) = load_metadata(storage, key).await? else {
        return Ok(None);
    };
    let rescheduled = deletion_time(now_nanos(), &config, &meta);
    for n in versions {
        let Some(vm) = version_mut(&mut meta, n) else {
            continue;
        };
        if vm.destroyed {
            continue;
        }
        vm.deletion_time = rescheduled;
    }
    save_metadata(storage, key, &meta, Vec::new()).await?;
    Ok(None)
}

/// POST `destroy/<path>` `{"versions": [...]}`: marks versions destroyed and removes their data.
pub(super) async fn destroy(
    kv: &KvV2,
    req: &Request,
    key: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let versions = Fields::new(&req.data)
        .upfront(true)
        .comma_ints("versions")?;
    if versions.is_empty() {
        return Err(Error::invalid("no version number provided"));
    }
    let _guard = kv.lock(key).await;
    let Some(mut meta) = load_metadata(storage, key).await? else {
        return Ok(None);
    };
    let mut removed = Vec::new();
    for n in versions {
        let Some(vm) = version_mut(&mut meta, n) else {
            continue;
        };
        vm.destroyed = true;
        removed.push(n as u64);
    }
    save_metadata(storage, key, &meta, removed).await?;
    Ok(None)
}

/// GET `subkeys/<path>`: the structure of a version with every leaf value replaced by null,
/// down to `depth` levels (0: no limit).
pub(super) async fn subkeys(
    req: &Request,
    key: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data).upfront(true);
    let depth = fields.int("depth")?.unwrap_or(0);
    let version_param = fields.int("version")?;
    let Some(meta) = load_metadata(storage, key).await? else {
        return Ok(None);
    };
    let version = match version_param {
        Some(v) if v > 0 => v as u64,
        _ => meta.current_version,
    };
    let Some(vm) = meta.versions.get(&version) else {
        return Ok(None);
    };
    let mut data = Map::new();
    data.insert(
        "metadata".to_owned(),
        Value::Object(version_metadata_json(version, vm, &meta)),
    );
    if vm.is_deleted(now_nanos()) || vm.destroyed {
        data.insert("subkeys".to_owned(), Value::Null);
        return Ok(not_found(Some(data)));
    }
    let Some(raw) = storage.get(&version_key(key, version)).await? else {
        return Err(Error::internal("could not find version data"));
    };
    let mut secret: Value = serde_json::from_slice(&raw)
        .map_err(|e| Error::internal(format_args!("failed to decode version data: {e}")))?;
    if let Value::Object(map) = &mut secret {
        remove_values(map, depth, 1);
    } else {
        secret = Value::Object(Map::new());
    }
    data.insert("subkeys".to_owned(), secret);
    Ok(Some(Response::with_data(data)))
}

/// Replaces every leaf (a non-object, an empty object, or anything below `max_depth`) with
/// null, in place, as openbao `removeValues`.
fn remove_values(map: &mut Map<String, Value>, max_depth: i64, depth: i64) {
    for value in map.values_mut() {
        match value {
            Value::Object(inner) if (max_depth <= 0 || depth < max_depth) && !inner.is_empty() => {
                remove_values(inner, max_depth, depth + 1);
            }
            other => *other = Value::Null,
        }
    }
}

/// The CAS rules of openbao `validateCheckAndSetOption`.
fn check_cas(
    options: Option<&Map<String, Value>>,
    config: &Config,
    meta: &KeyMetadata,
) -> Result<(), Error> {
    match options.and_then(|o| o.get("cas")) {
        Some(raw) => {
            let cas = weak_int(raw)
                .map_err(|_| Error::invalid("error parsing check-and-set parameter"))?;
            if cas as u64 != meta.current_version {
                return Err(Error::invalid(
                    "check-and-set parameter did not match the current version",
                ));
            }
            Ok(())
        }
        None if config.cas_required || meta.cas_required => Err(Error::invalid(
            "check-and-set parameter required for this call",
        )),
        None => Ok(()),
    }
}

/// Appends a version holding `bytes`, prunes past max_versions, and writes it all at once;
/// answers with the new version's metadata.
async fn add_version(
    storage: &dyn Storage,
    key: &str,
    meta: &mut KeyMetadata,
    config: &Config,
    bytes: Vec<u8>,
) -> Result<Response, Error> {
    let now = now_nanos();
    let vm = VersionMetadata {
        created_time: now,
        deletion_time: deletion_time(now, config, meta),
        destroyed: false,
    };
    let dropped = meta.add_version(vm, config.max_versions);
    let version = meta.current_version;
    let mut ops = Vec::with_capacity(2 + dropped.len());
    ops.push(StorageOp::Put(version_key(key, version), bytes));
    ops.push(StorageOp::Put(metadata_key(key), encode(meta)?));
    ops.extend(
        dropped
            .into_iter()
            .map(|n| StorageOp::Delete(version_key(key, n))),
    );
    storage.apply(ops).await?;
    Ok(Response::with_data(version_metadata_json(
        version, &vm, meta,
    )))
}

/// Writes the metadata and deletes the data of `removed` versions, atomically.
async fn save_metadata(
    storage: &dyn Storage,
    key: &str,
    meta: &KeyMetadata,
    removed: Vec<u64>,
) -> Result<(), Error> {
    let mut ops = Vec::with_capacity(1 + removed.len());
    ops.push(StorageOp::Put(metadata_key(key), encode(meta)?));
    ops.extend(
        removed
            .into_iter()
            .map(|n| StorageOp::Delete(version_key(key, n))),
    );
    storage.apply(ops).await
}

fn version_mut(meta: &mut KeyMetadata, n: i64) -> Option<&mut VersionMetadata> {
    u64::try_from(n)
        .ok()
        .and_then(|n| meta.versions.get_mut(&n))
}
