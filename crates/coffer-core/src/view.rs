//! A mount's storage view: the barrier seen through one prefix, so a backend reads and writes
//! plain relative keys and can never address another mount's data.

use std::sync::Arc;

use async_trait::async_trait;
use coffer_sdk::{Error, Storage, StorageOp};
use coffer_storage::Op;

use crate::barrier::Barrier;

/// The barrier under one prefix (e.g. `logical/<mount uuid>/`).
pub struct BarrierView {
    barrier: Arc<Barrier>,
    prefix: String,
}

impl BarrierView {
    pub fn new(barrier: Arc<Barrier>, prefix: impl Into<String>) -> Self {
        BarrierView {
            barrier,
            prefix: prefix.into(),
        }
    }

    /// The prefix this view covers, ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Deletes every key under `sub` (relative to the view), e.g. when a mount is disabled or a
    /// token's cubbyhole is destroyed.
    pub async fn delete_prefix(&self, sub: &str) -> Result<(), Error> {
        let mut pending = vec![sub.to_owned()];
        while let Some(dir) = pending.pop() {
            let mut ops = Vec::new();
            for child in self.list(&dir).await? {
                let key = format!("{dir}{child}");
                if child.ends_with('/') {
                    pending.push(key);
                } else {
                    ops.push(StorageOp::Delete(key));
                }
            }
            if !ops.is_empty() {
                self.apply(ops).await?;
            }
        }
        Ok(())
    }

    fn key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.prefix.len() + key.len());
        full.push_str(&self.prefix);
        full.push_str(key);
        full
    }
}

#[async_trait]
impl Storage for BarrierView {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.barrier.get(&self.key(key)).await?)
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        Ok(self.barrier.put(&self.key(key), value).await?)
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        Ok(self.barrier.delete(&self.key(key)).await?)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        Ok(self.barrier.list(&self.key(prefix)).await?)
    }

    async fn apply(&self, ops: Vec<StorageOp>) -> Result<(), Error> {
        let ops = ops
            .into_iter()
            .map(|op| match op {
                StorageOp::Put(k, v) => Op::Put(self.key(&k), v),
                StorageOp::Delete(k) => Op::Delete(self.key(&k)),
            })
            .collect();
        Ok(self.barrier.apply(ops).await?)
    }
}
