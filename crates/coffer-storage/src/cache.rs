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
    use std::sync::atomic::AtomicUsize;

    use tokio::sync::{Notify, Semaphore};

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
    async fn cache_over_dyn_store_passes_conformance() {
        let inner: Arc<dyn Store> = Arc::new(InMem::new());
        let cache: Cache = Cache::new(inner, 1000);
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

    #[tokio::test]
    async fn hits_and_negative_lookups_do_not_reach_the_store() {
        let inner = Arc::new(Gated::default());
        let cache = Cache::new(inner.clone(), 100);
        assert_eq!(cache.get("missing").await.unwrap(), None);
        assert_eq!(cache.get("missing").await.unwrap(), None);
        assert_eq!(
            inner.gets(),
            1,
            "a known-missing key is answered from the cache"
        );

        cache.put("k", b"v".to_vec()).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap(), Some(b"v".to_vec()));
        assert_eq!(
            inner.gets(),
            1,
            "a written value is answered from the cache"
        );

        cache.put("missing", b"now".to_vec()).await.unwrap();
        assert_eq!(cache.get("missing").await.unwrap(), Some(b"now".to_vec()));
        cache.delete("k").await.unwrap();
        assert_eq!(cache.get("k").await.unwrap(), None);
        assert_eq!(
            inner.gets(),
            1,
            "deletes are written through as negative entries"
        );
    }

    #[tokio::test]
    async fn invalidate_rereads_a_change_made_behind_the_cache() {
        let inner = Arc::new(InMem::new());
        let cache = Cache::new(inner.clone(), 100);
        cache.put("k", b"old".to_vec()).await.unwrap();
        inner.put("k", b"new".to_vec()).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap(), Some(b"old".to_vec()));
        cache.invalidate("k");
        assert_eq!(cache.get("k").await.unwrap(), Some(b"new".to_vec()));
        inner.put("k", b"newer".to_vec()).await.unwrap();
        cache.clear();
        assert_eq!(cache.get("k").await.unwrap(), Some(b"newer".to_vec()));
    }

    #[tokio::test]
    async fn size_stays_bounded() {
        let cache = Cache::new(Arc::new(InMem::new()), 64);
        for i in 0..1000 {
            cache.put(&format!("k{i}"), vec![1]).await.unwrap();
            cache.get(&format!("m{i}")).await.unwrap();
        }
        assert!(cache.len() <= 64, "{} entries", cache.len());
        assert!(
            cache.len() >= 32,
            "{} entries: the cache hardly caches",
            cache.len()
        );
        for i in 0..1000 {
            assert_eq!(cache.get(&format!("k{i}")).await.unwrap(), Some(vec![1]));
        }
    }

    #[tokio::test]
    async fn large_values_pass_through_uncached() {
        let inner = Arc::new(Gated::default());
        let cache = Cache::new(inner.clone(), 100);
        let big = vec![9u8; MAX_CACHED_VALUE + 1];
        cache.put("big", big.clone()).await.unwrap();
        assert_eq!(cache.get("big").await.unwrap(), Some(big.clone()));
        assert_eq!(cache.get("big").await.unwrap(), Some(big));
        assert_eq!(inner.gets(), 2);
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn a_failed_apply_leaves_no_entry() {
        let inner = Arc::new(Gated::default());
        let cache = Cache::new(inner.clone(), 100);
        cache.put("k", b"v1".to_vec()).await.unwrap();
        inner.fail_applies.store(true, Ordering::SeqCst);
        assert!(cache.put("k", b"v2".to_vec()).await.is_err());
        assert_eq!(cache.get("k").await.unwrap(), Some(b"v1".to_vec()));
        assert_eq!(inner.gets(), 1, "the failed write dropped the entry");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_miss_never_overwrites_a_newer_write() {
        // A reader fetches v1 from the store and stalls; a write of v2 completes; the reader
        // then must not put v1 into the cache.
        let inner = Arc::new(Gated::default());
        inner.gate_get("k");
        let cache = Arc::new(Cache::new(inner.clone(), 100));
        inner.plain.put("k", b"v1".to_vec()).await.unwrap();
        let reader = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get("k").await.unwrap() }
        });
        inner.reached.notified().await;
        cache.put("k", b"v2".to_vec()).await.unwrap();
        inner.release.add_permits(1);
        assert_eq!(reader.await.unwrap(), Some(b"v1".to_vec()));
        assert_eq!(cache.get("k").await.unwrap(), Some(b"v2".to_vec()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overlapping_writes_to_one_key_leave_no_stale_entry() {
        // Write A reaches the store first but finishes last: the cache cannot know which of
        // two overlapping writes the store kept, so neither may fill it.
        let inner = Arc::new(Gated::default());
        inner.gate_apply(b"A");
        let cache = Arc::new(Cache::new(inner.clone(), 100));
        let a = tokio::spawn({
            let cache = cache.clone();
            async move { cache.put("k", b"A".to_vec()).await.unwrap() }
        });
        inner.reached.notified().await;
        cache.put("k", b"B".to_vec()).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap(), Some(b"B".to_vec()));
        inner.release.add_permits(1);
        a.await.unwrap();
        assert_eq!(inner.plain.get("k").await.unwrap(), Some(b"B".to_vec()));
        assert_eq!(
            cache.get("k").await.unwrap(),
            Some(b"B".to_vec()),
            "stale entry"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_readers_and_writers_converge_on_the_store() {
        let inner = Arc::new(InMem::new());
        let cache = Arc::new(Cache::new(inner.clone(), 8));
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..8u8 {
            let cache = cache.clone();
            tasks.spawn(async move {
                for i in 0..300u32 {
                    let key = format!("k{}", (i * 7 + u32::from(t)) % 12);
                    match (i + u32::from(t)) % 4 {
                        0 => cache.put(&key, vec![t, i as u8]).await.unwrap(),
                        1 => cache.delete(&key).await.unwrap(),
                        _ => {
                            cache.get(&key).await.unwrap();
                        }
                    }
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        for k in 0..12 {
            let key = format!("k{k}");
            assert_eq!(
                cache.get(&key).await.unwrap(),
                inner.get(&key).await.unwrap(),
                "{key}"
            );
        }
    }

    /// An `InMem` that counts reads, can fail writes, and can stall one read (after reading)
    /// or one write (after applying) until released.
    struct Gated {
        plain: InMem,
        gets: AtomicUsize,
        fail_applies: AtomicBool,
        gated_get: std::sync::Mutex<Option<String>>,
        gated_apply: std::sync::Mutex<Option<Vec<u8>>>,
        reached: Notify,
        release: Semaphore,
    }

    impl Default for Gated {
        fn default() -> Gated {
            Gated {
                plain: InMem::new(),
                gets: AtomicUsize::new(0),
                fail_applies: AtomicBool::new(false),
                gated_get: Default::default(),
                gated_apply: Default::default(),
                reached: Notify::new(),
                release: Semaphore::new(0),
            }
        }
    }

    impl Gated {
        fn gets(&self) -> usize {
            self.gets.load(Ordering::SeqCst)
        }
        fn gate_get(&self, key: &str) {
            *self.gated_get.lock().unwrap() = Some(key.to_owned());
        }
        fn gate_apply(&self, value: &[u8]) {
            *self.gated_apply.lock().unwrap() = Some(value.to_vec());
        }
        async fn stall(&self) {
            self.reached.notify_one();
            self.release.acquire().await.unwrap().forget();
        }
    }

    #[async_trait]
    impl Store for Gated {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            let value = self.plain.get(key).await;
            let gated = self
                .gated_get
                .lock()
                .unwrap()
                .take_if(|k| k == key)
                .is_some();
            if gated {
                self.stall().await;
            }
            value
        }

        async fn apply(&self, ops: Vec<Op>) -> Result<(), Error> {
            if self.fail_applies.load(Ordering::SeqCst) {
                return Err(Error::Unavailable("injected".into()));
            }
            let gated = {
                let mut g = self.gated_apply.lock().unwrap();
                let hit = ops
                    .iter()
                    .any(|op| matches!(op, Op::Put(_, v) if Some(v) == g.as_ref()));
                hit && g.take().is_some()
            };
            self.plain.apply(ops).await?;
            if gated {
                self.stall().await;
            }
            Ok(())
        }

        async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
            self.plain.list(prefix).await
        }
    }
}
