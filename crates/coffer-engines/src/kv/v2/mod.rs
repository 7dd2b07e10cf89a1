//! kv v2: versioned secrets, after openbao `builtin/logical/kv` (`path_data.go`,
//! `path_metadata.go`, `path_delete.go`, `path_destroy.go`, `path_subkeys.go`,
//! `path_config.go`). Paths, fields, status codes and error texts are OpenBao 2.7.2's.
//!
//! Storage layout, relative to the mount: `config` (the engine settings), `metadata/<key>`
//! (one entry per secret: its settings and every version's times), `versions/<key>/<n>` (one
//! entry per version: the data object as JSON). A write changes the version entry, the
//! metadata entry and any pruned versions in one `Storage::apply`. Metadata keys keep the
//! secret's path, so LIST is a `Storage::list` of `metadata/<path>/`.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use async_trait::async_trait;
use coffer_sdk::framework::{Path, Paths};
use coffer_sdk::{Backend, BackendKind, Error, Operation, Request, Response, Storage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, MutexGuard};

use crate::passthrough;
use crate::time::rfc3339_nanos;

mod data;
mod metadata;

/// The versioned kv engine.
pub struct KvV2 {
    paths: Paths<Handler>,
    /// Striped write locks, as openbao `locksutil`: one key's read-modify-write of its metadata
    /// never interleaves with another on the same key. Reads take no lock: every change is one
    /// atomic `apply`, so a reader sees the metadata and the versions it names together.
    locks: Box<[Mutex<()>]>,
}

/// What a matched path does; the backend dispatches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    Config,
    Data,
    Metadata,
    DetailedMetadata,
    Destroy,
    Subkeys,
    Delete,
    Undelete,
    Invalid,
}

impl KvV2 {
    /// A kv v2 backend; its only state is the lock stripes.
    pub fn new() -> Self {
        let paths = Paths::new()
            .path(
                Path::new("config")
                    .read(Handler::Config)
                    .write(Handler::Config),
            )
            .path(
                Path::new("data/{path:*}")
                    .read(Handler::Data)
                    .write(Handler::Data)
                    .patch(Handler::Data)
                    .delete(Handler::Data),
            )
            .path(
                Path::new("metadata/{path:*}")
                    .read(Handler::Metadata)
                    .write(Handler::Metadata)
                    .patch(Handler::Metadata)
                    .delete(Handler::Metadata)
                    .list(Handler::Metadata),
            )
            .path(Path::new("detailed-metadata/{path:*}").list(Handler::DetailedMetadata))
            .path(Path::new("destroy/{path:*}").write(Handler::Destroy))
            .path(Path::new("subkeys/{path:*}").read(Handler::Subkeys))
            .path(Path::new("delete/{path:*}").write(Handler::Delete))
            .path(Path::new("undelete/{path:*}").write(Handler::Undelete))
            // Last, so that every valid path is tried first (openbao `pathInvalid`).
            .path(Path::new("{path:*}").all(Handler::Invalid));
        KvV2 {
            paths,
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    async fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let stripe = (hasher.finish() % self.locks.len() as u64) as usize;
        self.locks[stripe].lock().await
    }
}

impl Default for KvV2 {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Backend for KvV2 {
    fn kind(&self) -> BackendKind {
        BackendKind::Secrets
    }

    async fn exists(&self, req: &Request, storage: &dyn Storage) -> Result<Option<bool>, Error> {
        // As OpenBao: a write to `data/` creates when the secret has no metadata yet.
        match req.path.strip_prefix("data/") {
            Some(key) if !key.is_empty() => Ok(Some(load_metadata(storage, key).await?.is_some())),
            _ => Ok(None),
        }
    }

    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        let op = req.operation;
        if matches!(op, Operation::Create | Operation::Update) {
            passthrough::check_writable(&req.path)?;
        }
        // LIST of the mount's root (`bao kv list secret` asks for `metadata`, no slash).
        let route = match (op, req.path.as_str()) {
            (Operation::List, "metadata") => self.paths.route("metadata/", op)?,
            (Operation::List, "detailed-metadata") => self.paths.route("detailed-metadata/", op)?,
            _ => self.paths.route(&req.path, op)?,
        };
        let key = route.captures.get("path").unwrap_or_default();
        match (route.handler, op) {
            (Handler::Config, Operation::Read) => metadata::read_config(storage).await,
            (Handler::Config, _) => metadata::write_config(&req, storage).await,
            (Handler::Data, Operation::Read) => data::read(&req, key, storage).await,
            (Handler::Data, Operation::Patch) => data::patch(self, &req, key, storage).await,
            (Handler::Data, Operation::Delete) => data::delete_latest(self, key, storage).await,
            (Handler::Data, _) => data::write(self, &req, key, storage).await,
            (Handler::Metadata, Operation::Read) => metadata::read(key, storage).await,
            (Handler::Metadata, Operation::List) => metadata::list(&req, key, false, storage).await,
            (Handler::Metadata, Operation::Patch) => {
                metadata::patch(self, &req, key, storage).await
            }
            (Handler::Metadata, Operation::Delete) => metadata::delete(self, key, storage).await,
            (Handler::Metadata, _) => metadata::write(self, &req, key, storage).await,
            (Handler::DetailedMetadata, _) => metadata::list(&req, key, true, storage).await,
            (Handler::Destroy, _) => data::destroy(self, &req, key, storage).await,
            (Handler::Subkeys, _) => data::subkeys(&req, key, storage).await,
            (Handler::Delete, _) => data::delete_versions(self, &req, key, storage).await,
            (Handler::Undelete, _) => data::undelete(self, &req, key, storage).await,
            (Handler::Invalid, _) => Ok(Some(invalid_path(&req.path, op))),
        }
    }
}

/// What OpenBao answers for a path no kv v2 pattern serves: 404 with only a warning.
fn invalid_path(path: &str, op: Operation) -> Response {
    let warning = match path {
        "metadata" | "data" | "delete" | "undelete" | "destroy" => {
            "Non-listing operations on the root of a K/V v2 mount are not supported.".to_owned()
        }
        _ => {
            let verb = match op {
                Operation::Create | Operation::Update => "put",
                Operation::Patch => "patch",
                Operation::Read => "get",
                Operation::List => "list",
                Operation::Delete => "delete",
            };
            format!(
                "Invalid path for a versioned K/V secrets engine. See the API docs for the \
                 appropriate API endpoints to use. If using the OpenBao CLI, use 'bao kv {verb}' \
                 for this operation."
            )
        }
    };
    let mut resp = Response::default().warn(warning);
    resp.http_status = Some(404);
    resp
}

/// The engine-wide settings (`config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Config {
    max_versions: u32,
    cas_required: bool,
    metadata_cas_required: bool,
    /// Seconds; 0 is unset and -1 disables delete_version_after on every key.
    delete_version_after: i64,
}

impl Config {
    fn delete_version_after_disabled(&self) -> bool {
        self.delete_version_after < 0
    }
}

/// One secret's metadata: its settings and every kept version's times.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct KeyMetadata {
    versions: BTreeMap<u64, VersionMetadata>,
    current_version: u64,
    oldest_version: u64,
    current_metadata_version: u64,
    max_versions: u32,
    cas_required: bool,
    metadata_cas_required: bool,
    /// Seconds; 0 is unset.
    delete_version_after: i64,
    custom_metadata: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    created_time: Option<i64>,
    updated_time: Option<i64>,
}

/// The times of one version.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(default)]
struct VersionMetadata {
    created_time: i64,
    deletion_time: Option<i64>,
    destroyed: bool,
}

impl VersionMetadata {
    /// Soft-deleted: its deletion time has passed (a future one is a scheduled deletion).
    fn is_deleted(&self, now: i64) -> bool {
        self.deletion_time.is_some_and(|t| t < now)
    }
}

impl KeyMetadata {
    /// Adds the next version and slides the window of kept versions, as openbao
    /// `KeyMetadata.AddVersion`: the limit is the larger of the key's and the engine's
    /// max_versions, or 10. Returns the numbers of the versions dropped.
    fn add_version(&mut self, vm: VersionMetadata, config_max: u32) -> Vec<u64> {
        self.current_version += 1;
        self.versions.insert(self.current_version, vm);
        self.updated_time = Some(vm.created_time);
        if self.created_time.is_none() {
            self.created_time = Some(vm.created_time);
        }
        let max = match self.max_versions.max(config_max) {
            0 => DEFAULT_MAX_VERSIONS,
            n => n,
        };
        if self.current_version - self.oldest_version < u64::from(max) {
            return Vec::new();
        }
        let last_dropped = self.current_version - u64::from(max);
        let dropped: Vec<u64> = self
            .versions
            .range(..=last_dropped)
            .map(|(n, _)| *n)
            .collect();
        for n in &dropped {
            self.versions.remove(n);
        }
        self.oldest_version = last_dropped + 1;
        dropped
    }

    fn custom_metadata_json(&self) -> Value {
        // OpenBao stores an empty map as none, so it reads back as null.
        if self.custom_metadata.is_empty() {
            return Value::Null;
        }
        Value::Object(
            self.custom_metadata
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }
}

/// The storage key of a secret's metadata.
fn metadata_key(key: &str) -> String {
    let mut out = String::with_capacity(METADATA_PREFIX.len() + key.len());
    out.push_str(METADATA_PREFIX);
    out.push_str(key);
    out
}

/// The storage key of one version's data.
fn version_key(key: &str, version: u64) -> String {
    format!("versions/{key}/{version}")
}

async fn load_metadata(storage: &dyn Storage, key: &str) -> Result<Option<KeyMetadata>, Error> {
    match storage.get(&metadata_key(key)).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| Error::internal(format_args!("failed to decode key metadata: {e}"))),
    }
}

async fn load_config(storage: &dyn Storage) -> Result<Config, Error> {
    match storage.get(CONFIG_KEY).await? {
        None => Ok(Config::default()),
        Some(raw) => serde_json::from_slice(&raw)
            .map_err(|e| Error::internal(format_args!("failed to decode kv config: {e}"))),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(Error::internal)
}

/// `{version, created_time, deletion_time, destroyed, custom_metadata}`: what a write returns
/// and what a read nests under `metadata`.
fn version_metadata_json(
    version: u64,
    vm: &VersionMetadata,
    meta: &KeyMetadata,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(
        "created_time".to_owned(),
        Value::String(rfc3339_nanos(vm.created_time)),
    );
    out.insert("custom_metadata".to_owned(), meta.custom_metadata_json());
    out.insert(
        "deletion_time".to_owned(),
        Value::String(vm.deletion_time.map(rfc3339_nanos).unwrap_or_default()),
    );
    out.insert("destroyed".to_owned(), Value::Bool(vm.destroyed));
    out.insert("version".to_owned(), Value::from(version));
    out
}

/// When a version written at `created` is deleted: after the smaller non-zero of the engine's
/// and the key's delete_version_after (openbao `deletionTime`), unless both are unset.
fn deletion_time(created: i64, config: &Config, meta: &KeyMetadata) -> Option<i64> {
    if config.delete_version_after_disabled() {
        return None;
    }
    let (mount, key) = (config.delete_version_after, meta.delete_version_after);
    let secs = match (mount, key) {
        (0, 0) => return None,
        (0, k) => k,
        (m, 0) => m,
        (m, k) => m.min(k),
    };
    Some(created.saturating_add(secs.saturating_mul(1_000_000_000)))
}

/// A response with `http_status` 404, carrying `data` if any (OpenBao's
/// `RespondWithStatusCode(resp, req, 404)`).
fn not_found(data: Option<Map<String, Value>>) -> Option<Response> {
    Some(Response {
        data,
        http_status: Some(404),
        ..Response::default()
    })
}

/// OpenBao's default when neither the key nor the engine sets max_versions.
const DEFAULT_MAX_VERSIONS: u32 = 10;
const CONFIG_KEY: &str = "config";
const METADATA_PREFIX: &str = "metadata/";
const LOCK_STRIPES: usize = 256;

#[cfg(test)]
mod tests;
