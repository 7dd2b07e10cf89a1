//! The transit secrets engine (encryption as a service), after openbao
//! `builtin/logical/transit` and `sdk/helper/keysutil`: named keys that never leave coffer
//! unless marked exportable, and the operations on them — encrypt, decrypt, rewrap, datakey,
//! hmac, sign, verify, hash, random, export, backup and restore, trimming old versions, soft
//! deletion, moving keys in and out wrapped (`import.rs`) and ECDH key agreement
//! (`derive.rs`). Paths, fields, answers and error texts are OpenBao 2.7.2's; ciphertexts
//! (`vault:v<N>:...`) and backups are byte-compatible with it, so keys and data move between
//! the two.
//!
//! Storage layout, relative to the mount, as OpenBao's: `policy/<name>` (the key and the
//! versions a client may use) and `archive/<name>` (every version). A change writes both in one
//! `Storage::apply`.
//!
//! The hot path: each mount caches its parsed keys (`Key`: the policy plus the AEAD or signing
//! key of each version, built once). A request on a cached key reads no storage; every write
//! to a key replaces its cache entry under the key's write lock, and `invalidate` drops it.
//!
//! `periodic` rotates keys whose `auto_rotate_period` has passed (`periodic.rs`).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use base64::alphabet;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use coffer_sdk::framework::{Path, Paths};
use coffer_sdk::{
    Backend, BackendConfig, BackendKind, Error, Factory, Operation, Request, Response, Storage,
    StorageOp,
};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, MutexGuard};

mod crypt;
mod derive;
mod import;
mod key;
mod keys;
mod misc;
mod periodic;
mod policy;
mod sign;

use key::Key;
use policy::{Archive, Policy};

/// Builds transit mounts; each mount has its own key cache.
pub fn transit_factory() -> Factory {
    Arc::new(|_config: &BackendConfig| {
        let backend: Arc<dyn Backend> = Arc::new(Transit::new());
        Ok(backend)
    })
}

/// The transit engine of one mount.
pub struct Transit {
    paths: Paths<Handler>,
    /// Parsed keys by name. Read-mostly: a read lock and an `Arc` clone per request.
    cache: RwLock<HashMap<String, Arc<Key>>>,
    /// Striped write locks (as openbao `locksutil`): one key's read-modify-write never
    /// interleaves with another on the same key, and a cache fill never races a write.
    locks: Box<[Mutex<()>]>,
    /// Nanoseconds since the epoch before which `periodic` skips the auto-rotation check
    /// (OpenBao's `checkAutoRotateAfter`).
    next_auto_rotate_check: std::sync::Mutex<i64>,
}

/// What a matched path does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    KeysList,
    Key,
    KeyConfig,
    Rotate,
    Trim,
    SoftDelete,
    SoftDeleteRestore,
    WrappingKey,
    Import,
    ImportVersion,
    ByokExport,
    ConfigKeys,
    DeriveKey,
    Encrypt,
    Decrypt,
    Rewrap,
    Datakey,
    Random,
    Hash,
    Hmac,
    Sign,
    Verify,
    Export,
    Backup,
    Restore,
}

impl Transit {
    /// A transit backend with an empty cache.
    pub fn new() -> Self {
        use Handler as H;
        let paths = Paths::new()
            .path(Path::new("keys").list(H::KeysList))
            .path(Path::new("keys/").list(H::KeysList))
            .path(Path::new("keys/{name}/config").write(H::KeyConfig))
            .path(Path::new("keys/{name}/rotate").write(H::Rotate))
            .path(Path::new("keys/{name}/trim").write(H::Trim))
            .path(Path::new("keys/{name}/soft-delete").delete(H::SoftDelete))
            .path(Path::new("keys/{name}/soft-delete-restore").write(H::SoftDeleteRestore))
            .path(Path::new("keys/{name}/import").write(H::Import))
            .path(Path::new("keys/{name}/import_version").write(H::ImportVersion))
            .path(Path::new("wrapping_key").read(H::WrappingKey))
            .path(Path::new("derive-key/{name}").write(H::DeriveKey))
            .path(
                Path::new("config/keys")
                    .read(H::ConfigKeys)
                    .write(H::ConfigKeys),
            )
            .path(
                Path::new("keys/{name}")
                    .read(H::Key)
                    .write(H::Key)
                    .delete(H::Key),
            )
            .path(Path::new("encrypt/{name}").write(H::Encrypt))
            .path(Path::new("decrypt/{name}").write(H::Decrypt))
            .path(Path::new("rewrap/{name}").write(H::Rewrap))
            .path(Path::new("datakey/{plaintext}/{name}").write(H::Datakey))
            .path(Path::new("random").write(H::Random))
            .path(Path::new("random/{a}").write(H::Random))
            .path(Path::new("random/{a}/{b}").write(H::Random))
            .path(Path::new("hash").write(H::Hash))
            .path(Path::new("hash/{urlalgorithm}").write(H::Hash))
            .path(Path::new("hmac/{name}").write(H::Hmac))
            .path(Path::new("hmac/{name}/{urlalgorithm}").write(H::Hmac))
            .path(Path::new("sign/{name}").write(H::Sign))
            .path(Path::new("sign/{name}/{urlalgorithm}").write(H::Sign))
            .path(Path::new("verify/{name}").write(H::Verify))
            .path(Path::new("verify/{name}/{urlalgorithm}").write(H::Verify))
            .path(Path::new("byok-export/{destination}/{source}").read(H::ByokExport))
            .path(Path::new("byok-export/{destination}/{source}/{version}").read(H::ByokExport))
            .path(Path::new("export/{type}/{name}").read(H::Export))
            .path(Path::new("export/{type}/{name}/{version}").read(H::Export))
            .path(Path::new("backup/{name}").read(H::Backup))
            .path(Path::new("restore").write(H::Restore))
            .path(Path::new("restore/{name}").write(H::Restore));
        Transit {
            paths,
            cache: RwLock::new(HashMap::new()),
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            next_auto_rotate_check: std::sync::Mutex::new(i64::MIN),
        }
    }

    async fn lock(&self, name: &str) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        name.hash(&mut hasher);
        let stripe = (hasher.finish() % self.locks.len() as u64) as usize;
        self.locks[stripe].lock().await
    }

    fn cached(&self, name: &str) -> Option<Arc<Key>> {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    fn set_cached(&self, name: &str, key: Option<Arc<Key>>) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        match key {
            Some(key) => {
                cache.insert(name.to_owned(), key);
            }
            None => {
                cache.remove(name);
            }
        }
    }

    /// The key `name`, from the cache or else from storage (then cached).
    async fn key(&self, storage: &dyn Storage, name: &str) -> Result<Option<Arc<Key>>, Error> {
        if let Some(key) = self.cached(name) {
            return Ok(Some(key));
        }
        let _guard = self.lock(name).await;
        if let Some(key) = self.cached(name) {
            return Ok(Some(key));
        }
        let Some(policy) = load_policy(storage, name).await? else {
            return Ok(None);
        };
        let key = Arc::new(build_key(policy).await?);
        self.set_cached(name, Some(key.clone()));
        Ok(Some(key))
    }

    /// Writes `policy` (archiving as OpenBao does) and replaces the cached key. The caller
    /// holds the key's lock.
    async fn persist(&self, storage: &dyn Storage, mut policy: Policy) -> Result<Arc<Key>, Error> {
        let name = policy.name.clone();
        let mut archive = load_archive(storage, &name).await?;
        policy.handle_archiving(&mut archive)?;
        let key = Arc::new(build_key(policy).await?);
        let ops = vec![
            StorageOp::Put(format!("{ARCHIVE_PREFIX}{name}"), encode(&archive)?),
            StorageOp::Put(format!("{POLICY_PREFIX}{name}"), encode(&key.policy)?),
        ];
        storage.apply(ops).await?;
        self.set_cached(&name, Some(key.clone()));
        Ok(key)
    }
}

impl Default for Transit {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Backend for Transit {
    fn kind(&self) -> BackendKind {
        BackendKind::Secrets
    }

    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        let op = req.operation;
        let route = self.paths.route(&req.path, op)?;
        let cap = |name: &str| route.captures.get(name).unwrap_or_default();
        let name = cap("name");
        // OpenBao's patterns only match a name of `GenericNameRegex`; any other is no path.
        let names = ["name", "destination", "source"].map(|c| route.captures.get(c));
        if names.iter().flatten().any(|n| !keys::is_generic_name(n)) {
            return Err(Error::UnsupportedPath(req.path.clone()));
        }
        match (route.handler, op) {
            (Handler::KeysList, _) => keys::list(storage).await,
            (Handler::Key, Operation::Read) => keys::read(self, &req, name, storage).await,
            (Handler::Key, Operation::Delete) => keys::delete(self, name, storage).await,
            (Handler::Key, _) => keys::create(self, &req, name, storage).await,
            (Handler::KeyConfig, _) => keys::config(self, &req, name, storage).await,
            (Handler::Rotate, _) => keys::rotate(self, name, storage).await,
            (Handler::Trim, _) => keys::trim(self, &req, name, storage).await,
            (Handler::SoftDelete, _) => keys::soft_delete(self, name, false, storage).await,
            (Handler::SoftDeleteRestore, _) => keys::soft_delete(self, name, true, storage).await,
            (Handler::WrappingKey, _) => import::read_wrapping_key(self, storage).await,
            (Handler::Import, _) => import::import(self, &req, name, storage).await,
            (Handler::ImportVersion, _) => import::import_version(self, &req, name, storage).await,
            (Handler::ConfigKeys, _) => keys::config_keys(&req, storage).await,
            (Handler::DeriveKey, _) => derive::derive_key(self, &req, name, storage).await,
            (Handler::ByokExport, _) => {
                import::byok_export(
                    self,
                    &req,
                    cap("destination"),
                    cap("source"),
                    route.captures.get("version"),
                    storage,
                )
                .await
            }
            (Handler::Export, _) => {
                keys::export(
                    self,
                    &req,
                    cap("type"),
                    name,
                    route.captures.get("version"),
                    storage,
                )
                .await
            }
            (Handler::Backup, _) => keys::backup(self, name, storage).await,
            (Handler::Restore, _) => keys::restore(self, &req, name, storage).await,
            (Handler::Encrypt, _) => crypt::encrypt(self, &req, name, storage).await,
            (Handler::Decrypt, _) => crypt::decrypt(self, &req, name, storage).await,
            (Handler::Rewrap, _) => crypt::rewrap(self, &req, name, storage).await,
            (Handler::Datakey, _) => {
                crypt::datakey(self, &req, cap("plaintext"), name, storage).await
            }
            (Handler::Random, _) => {
                misc::random(&req, route.captures.get("a"), route.captures.get("b"))
            }
            (Handler::Hash, _) => misc::hash(&req, cap("urlalgorithm")),
            (Handler::Hmac, _) => sign::hmac(self, &req, name, cap("urlalgorithm"), storage).await,
            (Handler::Sign, _) => sign::sign(self, &req, name, cap("urlalgorithm"), storage).await,
            (Handler::Verify, _) => {
                sign::verify(self, &req, name, cap("urlalgorithm"), storage).await
            }
        }
    }

    /// Rotates keys whose `auto_rotate_period` has passed (see `periodic.rs`).
    async fn periodic(&self, storage: &dyn Storage) -> Result<(), Error> {
        self.run_periodic(storage).await
    }

    async fn invalidate(&self, key: &str) {
        if let Some(name) = key
            .strip_prefix(POLICY_PREFIX)
            .or_else(|| key.strip_prefix(ARCHIVE_PREFIX))
        {
            self.set_cached(name, None);
        }
    }
}

/// Parses a policy and builds its key material off the async workers when it is costly (RSA).
async fn build_key(policy: Policy) -> Result<Key, Error> {
    if policy.key_type().is_ok_and(|t| t.is_rsa()) {
        return tokio::task::spawn_blocking(move || Key::new(policy))
            .await
            .map_err(Error::internal)?;
    }
    Key::new(policy)
}

async fn load_policy(storage: &dyn Storage, name: &str) -> Result<Option<Policy>, Error> {
    let Some(raw) = storage.get(&format!("{POLICY_PREFIX}{name}")).await? else {
        return Ok(None);
    };
    let raw = zeroize::Zeroizing::new(raw);
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| Error::internal(format_args!("failed to decode transit key: {e}")))
}

async fn load_archive(storage: &dyn Storage, name: &str) -> Result<Archive, Error> {
    let Some(raw) = storage.get(&format!("{ARCHIVE_PREFIX}{name}")).await? else {
        return Ok(Archive::default());
    };
    let raw = zeroize::Zeroizing::new(raw);
    serde_json::from_slice(&raw)
        .map_err(|e| Error::internal(format_args!("failed to decode transit archive: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(Error::internal)
}

/// Decodes standard base64 as Go's `base64.StdEncoding` does (padding required, stray bits in
/// the last symbol tolerated), with Go's error text.
pub(crate) fn decode_b64(input: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    B64.decode(input).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _) => at,
            base64::DecodeError::InvalidLastSymbol(at, _) => at,
            base64::DecodeError::InvalidLength(len) => len / 4 * 4,
            base64::DecodeError::InvalidPadding => input.len().saturating_sub(1),
        };
        format!("illegal base64 data at input byte {at}")
    })
}

/// A response carrying `data`, with `status` when some batch items failed.
fn respond(data: Map<String, Value>, status: Option<u16>) -> Option<Response> {
    let mut resp = Response::with_data(data);
    resp.http_status = status;
    Some(resp)
}

/// OpenBao's `batchRequestResponse`: a batch with a failed item answers 400 (or
/// `partial_failure_response_code` when some items succeeded).
fn batch_status(req: &Request, successes: bool, failures: bool) -> Result<Option<u16>, Error> {
    if !failures {
        return Ok(None);
    }
    if successes {
        if let Some(code) =
            coffer_sdk::framework::Fields::new(&req.data).int("partial_failure_response_code")?
        {
            if (1..=599).contains(&code) {
                return Ok(Some(code as u16));
            }
        }
    }
    Ok(Some(400))
}

const POLICY_PREFIX: &str = "policy/";
const ARCHIVE_PREFIX: &str = "archive/";
const LOCK_STRIPES: usize = 64;
/// Go's `base64.StdEncoding` accepts non-zero bits in the last symbol; so do we.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

#[cfg(test)]
mod tests;
