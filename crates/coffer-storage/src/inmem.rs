//! `InMem`: a `BTreeMap` behind a mutex, for dev mode and tests. Nothing is persisted.
//!
//! The lock is a `std::sync::Mutex` held only for map operations, never across an `.await`.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::keys::{self, Child};
use crate::{Error, Op, Store};

/// An in-memory store. Every `apply` is atomic: it runs under one lock acquisition.
#[derive(Default)]
pub struct InMem {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl InMem {
    /// An empty store.
    pub fn new() -> InMem {
        InMem::default()
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-updated: every mutation is
        // a single insert or remove. So a poisoned lock is still safe to use.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Store for InMem {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.lock().get(key).cloned())
    }

    async fn apply(&self, ops: Vec<Op>) -> Result<(), Error> {
        let mut map = self.lock();
        for op in ops {
            match op {
                Op::Put(key, value) => {
                    map.insert(key, value);
                }
                Op::Delete(key) => {
                    map.remove(&key);
                }
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let map = self.lock();
        let upper = keys::upper_bound(prefix);
        let mut out = Vec::new();
        let mut from = Bound::Included(prefix.to_owned());
        loop {
            let to = match &upper {
                Some(u) => Bound::Excluded(u.as_str()),
                None => Bound::Unbounded,
            };
            let range = map.range::<str, _>((from.as_ref().map(String::as_str), to));
            let mut next = None;
            for key in range.map(|(k, _)| k) {
                match keys::child(prefix, key) {
                    Some(Child::Leaf(name)) => out.push(name.to_owned()),
                    Some(Child::Dir(dir)) => {
                        out.push(dir.to_owned());
                        // Jump over the subtree instead of walking every descendant.
                        next = Some(keys::after_subtree(prefix, dir));
                        break;
                    }
                    None => {}
                }
            }
            match next {
                Some(n) => from = Bound::Included(n),
                None => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inmem_passes_conformance() {
        crate::conformance::run_all(Arc::new(InMem::new())).await;
    }

    #[tokio::test]
    async fn list_skips_large_subtrees() {
        let store = InMem::new();
        let mut ops = Vec::new();
        for i in 0..1000 {
            ops.push(Op::Put(format!("a/deep/{i}"), vec![]));
        }
        ops.push(Op::Put("a/leaf".into(), vec![]));
        store.apply(ops).await.unwrap();
        assert_eq!(store.list("a/").await.unwrap(), vec!["deep/", "leaf"]);
        assert_eq!(store.len(), 1001);
    }
}
