//! `Cache`: a bounded read cache of (already encrypted) values in front of any `Store`.
//!
//! Reads go through: a miss asks the inner store and remembers the answer, a missing key
//! included (a negative entry). Writes go to the inner store first and, once it has applied
//! them, into the cache (write-through), so a read after `apply` returns never sees an older
//! value. `list` is not cached.
//!
//! The map is split into shards, each behind a `std::sync::RwLock` held for a hash lookup and
//! never across an `.await`; a hit takes one shard's read lock. Eviction is CLOCK (second
//! chance) per shard, bounded by entry count.
//!
//! Staleness is ruled out by two rules:
//! - A miss remembers the shard's epoch before asking the inner store and fills the cache only
//!   if no write or invalidation touched the shard meanwhile (it may have read an older value).
//! - A write marks its keys pending before the inner apply and, after it, stores its values
//!   only if no other write to the same key overlapped it (whose order against this one the
//!   cache cannot know); otherwise it drops the entries. The inner apply and this follow-up run
//!   in their own task, so a caller that gives up waiting cannot leave the cache behind the store.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use crate::{Error, Op, Store};

/// A read cache over `S` (any `Store`, `dyn Store` included). Needs a tokio runtime: `apply`
/// runs the inner write in a task of its own.
pub struct Cache<S: ?Sized = dyn Store> {
    inner: Arc<S>,
    state: Arc<State>,
}

impl<S: Store + ?Sized> Cache<S> {
    /// A cache of at most `capacity` entries (values and known-missing keys) over `inner`.
    /// A capacity of 0 caches nothing.
    pub fn new(inner: Arc<S>, capacity: usize) -> Cache<S> {
        let shards = SHARDS.min(capacity.max(1));
        let per_shard = capacity.div_ceil(shards);
        Cache {
            inner,
            state: Arc::new(State {
                shards: (0..shards).map(|_| RwLock::new(Shard::default())).collect(),
                hasher: RandomState::new(),
                per_shard,
            }),
        }
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// Forgets `key`: the next read asks the inner store. For a change the cache did not see
    /// (another node wrote the shared store).
    pub fn invalidate(&self, key: &str) {
        let mut shard = self.state.shard(key).write_lock();
        shard.remove(key);
        shard.epoch += 1;
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        for shard in self.state.shards.iter() {
            let mut shard = shard.write_lock();
            shard.map.clear();
            shard.slots.clear();
            shard.hand = 0;
            shard.epoch += 1;
        }
    }

    /// How many entries are cached, known-missing keys included.
    pub fn len(&self) -> usize {
        self.state
            .shards
            .iter()
            .map(|s| s.read_lock().slots.len())
            .sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<S: ?Sized> fmt::Debug for Cache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("shards", &self.state.shards.len())
            .field("per_shard", &self.state.per_shard)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<S: Store + ?Sized> Store for Cache<S> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        if self.state.per_shard == 0 {
            return self.inner.get(key).await;
        }
        let shard = self.state.shard(key);
        let epoch = {
            let s = shard.read_lock();
            if let Some(&i) = s.map.get(key) {
                let slot = &s.slots[i];
                slot.referenced.store(true, Ordering::Relaxed);
                return Ok(slot.value.clone());
            }
            s.epoch
        };
        let value = self.inner.get(key).await?;
        if cacheable(value.as_deref()) {
            let mut s = shard.write_lock();
            if s.epoch == epoch {
                s.insert(key, value.clone(), self.state.per_shard);
            }
        }
        Ok(value)
    }

    async fn apply(&self, ops: Vec<Op>) -> Result<(), Error> {
        if self.state.per_shard == 0 || ops.is_empty() {
            return self.inner.apply(ops).await;
        }
        // The last op on each key decides what the key holds afterwards.
        let mut finals: HashMap<String, Option<Vec<u8>>> = HashMap::new();
        for op in &ops {
            match op {
                Op::Put(k, v) => finals.insert(k.clone(), Some(v.clone())),
                Op::Delete(k) => finals.insert(k.clone(), None),
            };
        }
        for key in finals.keys() {
            self.state.begin_write(key);
        }
        let inner = self.inner.clone();
        let state = self.state.clone();
        let task = tokio::spawn(async move {
            let result = inner.apply(ops).await;
            for (key, value) in finals {
                state.end_write(&key, result.is_ok(), value);
            }
            result
        });
        match task.await {
            Ok(result) => result,
            Err(_) => Err(Error::Unavailable("cached write task failed".into())),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        self.inner.list(prefix).await
    }
}

struct State {
    shards: Box<[RwLock<Shard>]>,
    hasher: RandomState,
    per_shard: usize,
}

impl State {
    fn shard(&self, key: &str) -> &RwLock<Shard> {
        let h = self.hasher.hash_one(key);
        &self.shards[(h % self.shards.len() as u64) as usize]
    }

    fn begin_write(&self, key: &str) {
        let mut s = self.shard(key).write_lock();
        s.remove(key);
        s.epoch += 1;
        let p = s.pending.entry(key.to_owned()).or_default();
        p.writers += 1;
        if p.writers > 1 {
            p.overlapped = true;
        }
    }

    fn end_write(&self, key: &str, applied: bool, value: Option<Vec<u8>>) {
        let mut s = self.shard(key).write_lock();
        s.epoch += 1;
        let alone = match s.pending.get_mut(key) {
            Some(p) => {
                p.writers -= 1;
                let alone = !p.overlapped;
                if p.writers == 0 {
                    s.pending.remove(key);
                }
                alone
            }
            None => false,
        };
        // A failed apply may still have reached the store (a commit whose acknowledgement was
        // lost), so its keys are dropped, never filled.
        if applied && alone && cacheable(value.as_deref()) {
            s.insert(key, value, self.per_shard);
        } else {
            s.remove(key);
        }
    }
}

#[derive(Default)]
struct Shard {
    map: HashMap<String, usize>,
    slots: Vec<Slot>,
    hand: usize,
    /// Bumped by every write and invalidation in this shard; a miss fills only if unchanged.
    epoch: u64,
    pending: HashMap<String, Pending>,
}

impl Shard {
    fn insert(&mut self, key: &str, value: Option<Vec<u8>>, cap: usize) {
        if let Some(&i) = self.map.get(key) {
            self.slots[i].value = value;
            return;
        }
        let slot = Slot {
            key: key.to_owned(),
            value,
            referenced: AtomicBool::new(false),
        };
        if self.slots.len() < cap {
            self.map.insert(key.to_owned(), self.slots.len());
            self.slots.push(slot);
            return;
        }
        // CLOCK: sweep, giving each recently read entry a second chance, evict the first
        // entry not read since the hand last passed it.
        loop {
            let i = self.hand % self.slots.len();
            self.hand = i + 1;
            if self.slots[i].referenced.swap(false, Ordering::Relaxed) {
                continue;
            }
            let old = std::mem::replace(&mut self.slots[i], slot);
            self.map.remove(&old.key);
            self.map.insert(key.to_owned(), i);
            return;
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(i) = self.map.remove(key) {
            self.slots.swap_remove(i);
            if let Some(moved) = self.slots.get(i) {
                if let Some(idx) = self.map.get_mut(&moved.key) {
                    *idx = i;
                }
            }
        }
    }
}

struct Slot {
    key: String,
    /// `None`: the inner store holds nothing at this key.
    value: Option<Vec<u8>>,
    referenced: AtomicBool,
}

#[derive(Default)]
struct Pending {
    writers: u32,
    /// Two writes to the key were in flight at once: none of them may fill the cache.
    overlapped: bool,
}

trait LockExt<T> {
    fn read_lock(&self) -> RwLockReadGuard<'_, T>;
    fn write_lock(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T> LockExt<T> for RwLock<T> {
    // Critical sections here do map operations only; a panic inside one (allocation failure)
    // leaves at worst an entry missing, never a wrong value, so a poisoned lock stays usable.
    fn read_lock(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write_lock(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn cacheable(value: Option<&[u8]>) -> bool {
    value.is_none_or(|v| v.len() <= MAX_CACHED_VALUE)
}

/// Shards of the map: enough that two cores rarely meet on one lock.
const SHARDS: usize = 16;
/// Larger values pass through uncached, so the entry bound also bounds memory (to about
/// capacity x 64 KiB at worst; barrier records of secrets are far smaller).
const MAX_CACHED_VALUE: usize = 64 << 10;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InMem, Sqlite};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cache_over_inmem_passes_conformance() {
        let cache = Cache::new(Arc::new(InMem::new()), 1000);
        crate::conformance::run_all(Arc::new(cache)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cache_over_sqlite_passes_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Arc::new(Sqlite::open(dir.path()).unwrap()), 1000);
        crate::conformance::run_all(Arc::new(cache)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tiny_cache_passes_conformance() {
        // Constant eviction exercises the CLOCK sweep and slot bookkeeping.
        let cache = Cache::new(Arc::new(InMem::new()), 3);
        crate::conformance::run_all(Arc::new(cache)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn zero_capacity_cache_passes_conformance() {
        let cache = Cache::new(Arc::new(InMem::new()), 0);
        crate::conformance::run_all(Arc::new(cache)).await;
        let cache = Cache::new(Arc::new(InMem::new()), 0);
        cache.put("k", vec![1]).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap(), Some(vec![1]));
        assert!(cache.is_empty());
    }
}
