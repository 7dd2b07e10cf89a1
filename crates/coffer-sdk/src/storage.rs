//! The storage view a mount writes through: already scoped to the mount's own prefix and
//! encrypted by the barrier, so a backend sees plain keys and plaintext values and cannot
//! address another mount's data.

use async_trait::async_trait;

use crate::Error;

/// One change of an atomic batch.
#[derive(Clone)]
pub enum StorageOp {
    Put(String, Vec<u8>),
    Delete(String),
}

/// A mount-scoped, encrypted key/value view. Keys are `/`-separated paths relative to the mount.
#[async_trait]
pub trait Storage: Send + Sync {
    /// The value at `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// Stores `value` at `key`; durable once this returns.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), Error>;
    /// Removes `key`; removing a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<(), Error>;
    /// The immediate children of `prefix` (which ends in `/` or is empty), sorted; a child that
    /// has children of its own is listed once, with a trailing `/`, as Vault lists.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error>;
    /// Applies every change or none; durable once this returns.
    async fn apply(&self, ops: Vec<StorageOp>) -> Result<(), Error>;
}
