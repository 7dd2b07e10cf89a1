//! The approle auth method, after openbao `builtin/credential/approle` (`path_role.go`,
//! `path_login.go`, `validation.go`): roles with a role ID, secret IDs issued against them
//! (TTL, use count, CIDR binding, metadata), and `login` with the pair.
//!
//! Storage layout, relative to the mount:
//! - `salt`: the mount's HMAC key (`salt.rs`);
//! - `role/<name>`: one role (names lowercased, as OpenBao);
//! - `role_id/<mac(role_id)>`: the name of the role holding that role ID;
//! - `secret_id/<name>/<mac(secret_id)>`: one secret ID's settings (never the ID itself);
//! - `accessor/<name>/<accessor>`: the MAC of the secret ID an accessor names.
//!
//! A login costs one storage read (the secret ID) and, for a limited-use secret ID, one write:
//! roles are cached in memory by the MAC of their role ID and the cache is dropped on every
//! role change and on `invalidate`.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use coffer_sdk::framework::{Path, Paths};
use coffer_sdk::{
    Backend, BackendConfig, BackendKind, Error, Factory, Operation, Request, Response,
    SpecialPaths, Storage,
};
use serde::{de::DeserializeOwned, Serialize};

use crate::clock::Clock;
use crate::lockout::Lockout;

mod login;
mod role;
mod salt;
mod secret_id;

use role::RoleEntry;
use salt::Salt;

/// Builds approle mounts.
pub fn approle_factory() -> Factory {
    Arc::new(|_config: &BackendConfig| {
        let backend: Arc<dyn Backend> = Arc::new(AppRole::new());
        Ok(backend)
    })
}

/// The approle auth method of one mount.
pub struct AppRole {
    paths: Paths<Handler>,
    clock: Clock,
    /// The mount's salt once read or created; it never changes afterwards.
    salt: tokio::sync::OnceCell<Arc<Salt>>,
    /// Roles by the MAC of their role ID, `None` for a role ID known not to exist is not
    /// cached: a miss always reads storage.
    roles: Mutex<HashMap<String, Arc<RoleEntry>>>,
    lockout: Lockout,
    /// Striped locks serialising the use-count update of one secret ID.
    locks: Box<[tokio::sync::Mutex<()>]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    ListRoles,
    Role,
    RoleId,
    LocalSecretIds,
    SecretId,
    CustomSecretId,
    SecretIdLookup,
    SecretIdDestroy,
    AccessorLookup,
    AccessorDestroy,
    Login,
}

impl AppRole {
    /// An approle backend on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Clock::default())
    }

    fn with_clock(clock: Clock) -> Self {
        let paths = Paths::new()
            .path(Path::new("role").list(Handler::ListRoles))
            .path(Path::new("role/").list(Handler::ListRoles))
            .path(
                Path::new("role/{name}")
                    .read(Handler::Role)
                    .write(Handler::Role)
                    .delete(Handler::Role),
            )
            .path(
                Path::new("role/{name}/role-id")
                    .read(Handler::RoleId)
                    .write(Handler::RoleId),
            )
            .path(Path::new("role/{name}/local-secret-ids").read(Handler::LocalSecretIds))
            .path(
                Path::new("role/{name}/secret-id")
                    .write(Handler::SecretId)
                    .list(Handler::SecretId),
            )
            .path(Path::new("role/{name}/secret-id/").list(Handler::SecretId))
            .path(Path::new("role/{name}/custom-secret-id").write(Handler::CustomSecretId))
            .path(Path::new("role/{name}/secret-id/lookup").write(Handler::SecretIdLookup))
            .path(
                Path::new("role/{name}/secret-id/destroy")
                    .write(Handler::SecretIdDestroy)
                    .delete(Handler::SecretIdDestroy),
            )
            .path(Path::new("role/{name}/secret-id-accessor/lookup").write(Handler::AccessorLookup))
            .path(
                Path::new("role/{name}/secret-id-accessor/destroy")
                    .write(Handler::AccessorDestroy)
                    .delete(Handler::AccessorDestroy),
            )
            .path(Path::new("login").write(Handler::Login));
        AppRole {
            paths,
            clock,
            salt: tokio::sync::OnceCell::new(),
            roles: Mutex::new(HashMap::new()),
            lockout: Lockout::default(),
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The mount's salt, created and stored on first use.
    async fn salt(&self, storage: &dyn Storage) -> Result<&Salt, Error> {
        let salt = self
            .salt
            .get_or_try_init(|| async {
                if let Some(bytes) = storage.get(SALT_KEY).await? {
                    return Ok::<_, Error>(Arc::new(Salt::from_bytes(bytes)));
                }
                let salt = Salt::generate();
                storage.put(SALT_KEY, salt.to_bytes()).await?;
                Ok(Arc::new(salt))
            })
            .await?;
        Ok(salt)
    }

    fn forget_roles(&self) {
        self.roles.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    async fn lock_secret(&self, mac: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        mac.hash(&mut hasher);
        let stripe = (hasher.finish() % self.locks.len() as u64) as usize;
        self.locks[stripe].lock().await
    }
}

impl Default for AppRole {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Backend for AppRole {
    fn kind(&self) -> BackendKind {
        BackendKind::Auth
    }

    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths {
            unauthenticated: vec!["login".to_owned(), "login/*".to_owned()],
            root: Vec::new(),
        }
    }

    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        let route = self.paths.route(&req.path, req.operation)?;
        let name = route
            .captures
            .get("name")
            .unwrap_or_default()
            .to_lowercase();
        let op = req.operation;
        match (route.handler, op) {
            (Handler::ListRoles, _) => role::list(storage).await,
            (Handler::Role, Operation::Read) => role::read(&name, storage).await,
            (Handler::Role, Operation::Delete) => role::delete(self, &name, storage).await,
            (Handler::Role, _) => role::write(self, &name, &req, storage).await,
            (Handler::RoleId, Operation::Read) => role::read_role_id(&name, storage).await,
            (Handler::RoleId, _) => role::write_role_id(self, &name, &req, storage).await,
            (Handler::LocalSecretIds, _) => role::read_local_secret_ids(&name, storage).await,
            (Handler::SecretId, Operation::List) => secret_id::list(&name, storage).await,
            (Handler::SecretId, _) => secret_id::generate(self, &name, &req, None, storage).await,
            (Handler::CustomSecretId, _) => secret_id::custom(self, &name, &req, storage).await,
            (Handler::SecretIdLookup, _) => secret_id::lookup(self, &name, &req, storage).await,
            (Handler::SecretIdDestroy, _) => secret_id::destroy(self, &name, &req, storage).await,
            (Handler::AccessorLookup, _) => secret_id::accessor_lookup(&name, &req, storage).await,
            (Handler::AccessorDestroy, _) => {
                secret_id::accessor_destroy(&name, &req, storage).await
            }
            (Handler::Login, _) => login::login(self, &req, storage).await,
        }
    }

    async fn invalidate(&self, key: &str) {
        if key.starts_with("role") {
            self.forget_roles();
        }
    }
}

async fn load<T: DeserializeOwned>(storage: &dyn Storage, key: &str) -> Result<Option<T>, Error> {
    match storage.get(key).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::internal(format!("approle: corrupt entry: {e}"))),
        None => Ok(None),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(Error::internal)
}

fn role_key(name: &str) -> String {
    format!("role/{name}")
}

fn role_id_key(mac: &str) -> String {
    format!("role_id/{mac}")
}

fn secret_id_key(role: &str, mac: &str) -> String {
    format!("secret_id/{role}/{mac}")
}

fn accessor_key(role: &str, accessor: &str) -> String {
    format!("accessor/{role}/{accessor}")
}

fn role_missing(name: &str) -> Error {
    Error::invalid(format!("role {name:?} does not exist"))
}

const SALT_KEY: &str = "salt";
const LOCK_STRIPES: usize = 64;

#[cfg(test)]
mod tests;
