//! The one trait every mountable thing implements: secrets engines and auth methods alike.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{Error, Lease, Request, Response, Storage};

/// Whether a backend is mounted under `sys/mounts` or `sys/auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Secrets,
    Auth,
}

/// Paths of a backend that the pipeline treats specially. Patterns are relative to the mount and
/// may end in `*` to match a prefix.
#[derive(Debug, Clone, Default)]
pub struct SpecialPaths {
    /// Served without a token (e.g. `login`).
    pub unauthenticated: Vec<String>,
    /// Need a token with `sudo` on the path.
    pub root: Vec<String>,
}

/// Anything the router can mount: a secrets engine or an auth method.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    fn kind(&self) -> BackendKind;

    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths::default()
    }

    /// `req.path` is relative to the mount; `storage` is this mount's view, already encrypted.
    /// `Ok(None)` means nothing to return (204 for writes, 404 for reads).
    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error>;

    /// Whether the target of a write already exists: `Some(false)` makes the write a `create`,
    /// `Some(true)` an `update`, for the ACL check (OpenBao's `ExistenceCheck`). `None`: this
    /// path makes no such distinction and every write is an `update`. Only asked when a
    /// token's policy grants one of the two capabilities but not the other.
    async fn exists(&self, _req: &Request, _storage: &dyn Storage) -> Result<Option<bool>, Error> {
        Ok(None)
    }

    /// Renews a lease this mount issued.
    async fn renew(&self, _lease: &Lease, _storage: &dyn Storage) -> Result<Response, Error> {
        Err(Error::invalid("lease is not renewable"))
    }

    /// Revokes a lease this mount issued.
    async fn revoke(&self, _lease: &Lease, _storage: &dyn Storage) -> Result<(), Error> {
        Ok(())
    }

    /// Another node changed `key` of this mount: drop anything cached for it.
    async fn invalidate(&self, _key: &str) {}

    /// Called about once a minute while the vault is unsealed, for work on a schedule (key
    /// auto-rotation, tidying), as OpenBao's `PeriodicFunc`. Errors are logged by core.
    async fn periodic(&self, _storage: &dyn Storage) -> Result<(), Error> {
        Ok(())
    }
}

/// What a factory is told when a mount of its type is enabled or loaded.
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// The type, e.g. `kv`.
    pub mount_type: String,
    /// The mount's options, e.g. `version = "2"`.
    pub options: BTreeMap<String, String>,
}

/// Builds a backend of one type.
pub type Factory = Arc<dyn Fn(&BackendConfig) -> Result<Arc<dyn Backend>, Error> + Send + Sync>;
