//! The `Store` trait every physical backend implements.

use async_trait::async_trait;

use crate::Error;

/// One change of an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(String, Vec<u8>),
    Delete(String),
}

/// Opaque bytes under `/`-separated keys.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The value at `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;

    /// Applies every op or none. Durable (fsynced, for stores that persist) once this returns.
    async fn apply(&self, ops: Vec<Op>) -> Result<(), Error>;

    /// The immediate children of `prefix` (empty, or ending in `/`), sorted: a key directly
    /// under it by its remaining name, a deeper key once by its next segment with a trailing `/`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error>;

    /// Stores one value; durable once this returns.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        self.apply(vec![Op::Put(key.to_owned(), value)]).await
    }

    /// Removes one key; removing a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.apply(vec![Op::Delete(key.to_owned())]).await
    }
}
