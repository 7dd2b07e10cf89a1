//! The barrier: everything written through it is encrypted with AES-256-GCM under the newest
//! key term, bound to its storage path; everything read is decrypted with the term the record
//! names, so old records stay readable after a rotation.
//!
//! It owns the keyring (`keyring.rs`), the record format (`aes_gcm.rs`) and key material
//! (`key.rs`). It does not own the root key's protection (that is the seal's), nor decide which
//! paths a caller may touch (that is core's: mounts see only their own view).
//!
//! Hot path: `get` and `put` take no lock. The keyring sits in an `ArcSwapOption` and is
//! swapped whole on unseal, rotate and seal; per-term encryption counters are atomics.

mod aes_gcm;
mod error;
mod key;
mod keyring;
#[cfg(test)]
pub(crate) mod test_store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use coffer_storage::{Op, Store};

pub(crate) use aes_gcm::Cipher;
pub use error::Error;
pub use key::{Key, KEY_LEN};
use keyring::Keyring;
pub use keyring::KEYRING_PATH;
pub(crate) use keyring::ROOT_TERM;

/// The state of one key term, as `sys/key-status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub term: u32,
    pub install_time: DateTime<Utc>,
    pub encryptions: u64,
}

/// The encryption barrier over a physical store.
pub struct Barrier {
    store: Arc<dyn Store>,
    keyring: ArcSwapOption<Keyring>,
    /// Serialises keyring rewrites (rotate); held across the store write, never on get/put.
    rotation: tokio::sync::Mutex<()>,
    max_operations: AtomicU64,
}

impl Barrier {
    /// A sealed barrier over `store`.
    pub fn new(store: Arc<dyn Store>) -> Barrier {
        Barrier {
            store,
            keyring: ArcSwapOption::empty(),
            rotation: tokio::sync::Mutex::new(()),
            max_operations: AtomicU64::new(MAX_OPERATIONS),
        }
    }

    /// True until `unseal` loads the keyring, and again after `seal`.
    pub fn is_sealed(&self) -> bool {
        self.keyring.load().is_none()
    }

    /// Creates term 1 and stores the keyring, encrypted by `root_key`, at `core/keyring`.
    /// The barrier stays sealed. Refused if a keyring is already stored.
    pub async fn initialize(&self, root_key: &Key) -> Result<(), Error> {
        if self.store.get(KEYRING_PATH).await?.is_some() {
            return Err(Error::AlreadyInitialized);
        }
        let record = Self::initial_keyring_record(root_key)?;
        self.store.put(KEYRING_PATH, record).await?;
        Ok(())
    }

    /// Loads the keyring with `root_key`. Unsealing an unsealed barrier changes nothing.
    pub async fn unseal(&self, root_key: &Key) -> Result<(), Error> {
        if !self.is_sealed() {
            return Ok(());
        }
        let record = self
            .store
            .get(KEYRING_PATH)
            .await?
            .ok_or(Error::NotInitialized)?;
        let keyring = Keyring::from_record(root_key.clone(), record)?;
        // A concurrent unseal may have won; either keyring is the same stored one.
        self.keyring
            .compare_and_swap(&None::<Arc<Keyring>>, Some(Arc::new(keyring)));
        tracing::info!("barrier unsealed");
        Ok(())
    }

    /// Forgets the keyring. The keys are wiped once the last in-flight request drops its
    /// reference, which is within that request's synchronous encrypt or decrypt step.
    pub fn seal(&self) {
        if self.keyring.swap(None).is_some() {
            tracing::info!("barrier sealed");
        }
    }

    /// The plaintext at `path`, or `None`.
    pub async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        if self.is_sealed() {
            return Err(Error::Sealed);
        }
        let Some(record) = self.store.get(path).await? else {
            return Ok(None);
        };
        // Loaded after the await: no keyring reference is held while the store works.
        let guard = self.keyring.load();
        let keyring = guard.as_ref().ok_or(Error::Sealed)?;
        keyring.decrypt(path, record).map(Some)
    }

    /// Encrypts `plaintext` under the active term and stores it at `path`.
    pub async fn put(&self, path: &str, plaintext: Vec<u8>) -> Result<(), Error> {
        let (record, rotate) = self.encrypt(path, plaintext)?;
        self.store.put(path, record).await?;
        if rotate {
            self.rotate_at_limit().await;
        }
        Ok(())
    }

    /// Removes `path`; removing a missing path succeeds.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        if self.is_sealed() {
            return Err(Error::Sealed);
        }
        self.store.delete(path).await?;
        Ok(())
    }

    /// The immediate children of `prefix`, as the store lists them (names are not encrypted).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        if self.is_sealed() {
            return Err(Error::Sealed);
        }
        Ok(self.store.list(prefix).await?)
    }

    /// Applies plaintext ops atomically, each `Put` encrypted for its own path.
    pub async fn apply(&self, ops: Vec<Op>) -> Result<(), Error> {
        let mut rotate = false;
        let mut sealed_ops = Vec::with_capacity(ops.len());
        if self.is_sealed() {
            return Err(Error::Sealed);
        }
        for op in ops {
            sealed_ops.push(match op {
                Op::Put(path, plaintext) => {
                    let (record, at_limit) = self.encrypt(&path, plaintext)?;
                    rotate |= at_limit;
                    Op::Put(path, record)
                }
                delete @ Op::Delete(_) => delete,
            });
        }
        self.store.apply(sealed_ops).await?;
        if rotate {
            self.rotate_at_limit().await;
        }
        Ok(())
    }

    /// Installs a new key term and rewrites the keyring durably before any write uses it.
    pub async fn rotate(&self) -> Result<KeyStatus, Error> {
        let _rewrite = self.rotation.lock().await;
        let current = self.keyring.load_full().ok_or(Error::Sealed)?;
        let next = Arc::new(current.rotated());
        let record = next.to_record()?;
        self.store.put(KEYRING_PATH, record).await?;
        // Only replace the keyring we rotated: a seal that happened meanwhile must stand.
        let prev = self
            .keyring
            .compare_and_swap(&Some(current.clone()), Some(next.clone()));
        if !matches!(&*prev, Some(p) if Arc::ptr_eq(p, &current)) {
            return Err(Error::Sealed);
        }
        let status = next.active().status();
        tracing::info!(term = status.term, "barrier key rotated");
        Ok(status)
    }

    /// Rewrites the keyring with the current encryption counts, so they survive a restart
    /// (rotate also writes them). Core calls this periodically and before shutdown; without it
    /// the counts of a crashed process since its last rotation are lost, as in OpenBao between
    /// its periodic persists.
    pub async fn persist_encryptions(&self) -> Result<(), Error> {
        let _rewrite = self.rotation.lock().await;
        let current = self.keyring.load_full().ok_or(Error::Sealed)?;
        self.store.put(KEYRING_PATH, current.to_record()?).await?;
        Ok(())
    }

    /// The active term's status.
    pub fn key_status(&self) -> Result<KeyStatus, Error> {
        let guard = self.keyring.load();
        let keyring = guard.as_ref().ok_or(Error::Sealed)?;
        Ok(keyring.active().status())
    }

    /// The number of encryptions after which a term is rotated automatically
    /// (`sys/rotate/config` `max_operations`; OpenBao's default is 3,865,470,566).
    pub fn set_max_operations(&self, max: u64) {
        self.max_operations.store(max.max(1), Ordering::Relaxed);
    }

    /// The record a fresh keyring (term 1) is stored as, for the seal to write atomically with
    /// the rest of initialization.
    pub(crate) fn initial_keyring_record(root_key: &Key) -> Result<Vec<u8>, Error> {
        Keyring::new(root_key.clone()).to_record()
    }

    /// Encrypts under the active term; also says whether that term has reached its limit.
    fn encrypt(&self, path: &str, mut plaintext: Vec<u8>) -> Result<(Vec<u8>, bool), Error> {
        let guard = self.keyring.load();
        let Some(keyring) = guard.as_ref() else {
            zeroize::Zeroize::zeroize(&mut plaintext);
            return Err(Error::Sealed);
        };
        let term = keyring.active();
        let record = term.cipher.encrypt(term.term, path, &plaintext);
        zeroize::Zeroize::zeroize(&mut plaintext);
        let record = record?;
        let done = term.encryptions.fetch_add(1, Ordering::Relaxed) + 1;
        Ok((record, done >= self.max_operations.load(Ordering::Relaxed)))
    }

    /// Rotates once the active term has done `max_operations` encryptions. The write that
    /// crossed the limit already succeeded, so a failure here is logged and retried by the next.
    async fn rotate_at_limit(&self) {
        {
            let _rewrite = self.rotation.lock().await;
            let still_due = self.keyring.load().as_ref().is_some_and(|k| {
                k.active().encryptions.load(Ordering::Relaxed)
                    >= self.max_operations.load(Ordering::Relaxed)
            });
            if !still_due {
                return;
            }
        }
        if let Err(e) = self.rotate().await {
            tracing::warn!(error = %e, "automatic barrier key rotation failed");
        }
    }
}

/// OpenBao's default `max_operations`: about 2^32 * 0.9, keeping AES-GCM's random-nonce
/// collision probability under 2^-32 per key.
pub const MAX_OPERATIONS: u64 = 3_865_470_566;

#[cfg(test)]
mod tests {
    use super::test_store::TestStore;
    use super::*;

    fn barrier() -> (Arc<TestStore>, Barrier) {
        let store = Arc::new(TestStore::default());
        (store.clone(), Barrier::new(store))
    }

    async fn unsealed() -> (Arc<TestStore>, Barrier, Key) {
        let (store, b) = barrier();
        let root = Key::generate();
        b.initialize(&root).await.unwrap();
        b.unseal(&root).await.unwrap();
        (store, b, root)
    }

    #[tokio::test]
    async fn initialize_leaves_the_barrier_sealed_and_unseal_opens_it() {
        let (store, b) = barrier();
        let root = Key::generate();
        assert!(b.is_sealed());
        b.initialize(&root).await.unwrap();
        assert!(b.is_sealed());
        assert!(store.raw(KEYRING_PATH).is_some());
        b.unseal(&root).await.unwrap();
        assert!(!b.is_sealed());
        assert_eq!(b.key_status().unwrap().term, 1);
    }

    #[tokio::test]
    async fn initialize_twice_is_refused() {
        let (_, b) = barrier();
        b.initialize(&Key::generate()).await.unwrap();
        assert!(matches!(
            b.initialize(&Key::generate()).await,
            Err(Error::AlreadyInitialized)
        ));
    }

    #[tokio::test]
    async fn unseal_needs_the_right_root_key_and_a_keyring() {
        let (_, b) = barrier();
        assert!(matches!(
            b.unseal(&Key::generate()).await,
            Err(Error::NotInitialized)
        ));
        b.initialize(&Key::generate()).await.unwrap();
        assert!(matches!(
            b.unseal(&Key::generate()).await,
            Err(Error::Decrypt { .. })
        ));
        assert!(b.is_sealed());
    }

    #[tokio::test]
    async fn put_then_get_round_trips() {
        let (_, b, _) = unsealed().await;
        b.put("secret/a", b"value-a".to_vec()).await.unwrap();
        assert_eq!(b.get("secret/a").await.unwrap().unwrap(), b"value-a");
        assert_eq!(b.get("secret/missing").await.unwrap(), None);
        b.delete("secret/a").await.unwrap();
        assert_eq!(b.get("secret/a").await.unwrap(), None);
    }

    #[tokio::test]
    async fn values_survive_seal_and_unseal_with_the_same_root_key() {
        let (store, b, root) = unsealed().await;
        b.put("k", b"v".to_vec()).await.unwrap();
        b.rotate().await.unwrap();
        b.seal();
        let again = Barrier::new(store);
        again.unseal(&root).await.unwrap();
        assert_eq!(again.get("k").await.unwrap().unwrap(), b"v");
        assert_eq!(again.key_status().unwrap().term, 2);
    }

    #[tokio::test]
    async fn a_record_copied_to_another_path_does_not_decrypt() {
        let (store, b, _) = unsealed().await;
        b.put("secret/a", b"for a only".to_vec()).await.unwrap();
        store.set_raw("secret/b", store.raw("secret/a").unwrap());
        assert!(matches!(
            b.get("secret/b").await,
            Err(Error::Decrypt { path }) if path == "secret/b"
        ));
    }

    #[tokio::test]
    async fn tampering_with_any_byte_fails() {
        let (store, b, _) = unsealed().await;
        b.put("p", b"a value of some length".to_vec())
            .await
            .unwrap();
        let record = store.raw("p").unwrap();
        for i in 0..record.len() {
            let mut bad = record.clone();
            bad[i] ^= 0x80;
            store.set_raw("p", bad);
            assert!(
                b.get("p").await.is_err(),
                "byte {i} flipped still decrypted"
            );
        }
        let mut short = record.clone();
        short.pop();
        store.set_raw("p", short);
        assert!(b.get("p").await.is_err());
        store.set_raw("p", record);
        assert_eq!(
            b.get("p").await.unwrap().unwrap(),
            b"a value of some length"
        );
    }

    #[tokio::test]
    async fn rotate_keeps_old_records_readable_and_writes_with_the_new_term() {
        let (store, b, _) = unsealed().await;
        b.put("old", b"written in term 1".to_vec()).await.unwrap();
        assert_eq!(store.raw("old").unwrap()[..4], 1u32.to_be_bytes());
        let status = b.rotate().await.unwrap();
        assert_eq!(status.term, 2);
        assert_eq!(status.encryptions, 0);
        b.put("new", b"written in term 2".to_vec()).await.unwrap();
        assert_eq!(store.raw("new").unwrap()[..4], 2u32.to_be_bytes());
        assert_eq!(b.get("old").await.unwrap().unwrap(), b"written in term 1");
        assert_eq!(b.get("new").await.unwrap().unwrap(), b"written in term 2");
        assert_eq!(b.key_status().unwrap().encryptions, 1);
    }

    #[tokio::test]
    async fn persisted_encryption_counts_survive_a_restart() {
        let (store, b, root) = unsealed().await;
        for i in 0..5 {
            b.put(&format!("k{i}"), b"v".to_vec()).await.unwrap();
        }
        b.persist_encryptions().await.unwrap();
        b.put("k5", b"v".to_vec()).await.unwrap();
        let again = Barrier::new(store);
        again.unseal(&root).await.unwrap();
        assert_eq!(again.key_status().unwrap().encryptions, 5);
        b.seal();
        assert!(matches!(b.persist_encryptions().await, Err(Error::Sealed)));
    }

    #[tokio::test]
    async fn a_record_of_an_unknown_term_is_refused() {
        let (store, b, _) = unsealed().await;
        b.put("p", b"v".to_vec()).await.unwrap();
        let mut record = store.raw("p").unwrap();
        record[..4].copy_from_slice(&9u32.to_be_bytes());
        store.set_raw("p", record);
        assert!(matches!(
            b.get("p").await,
            Err(Error::UnknownTerm { term: 9, .. })
        ));
    }

    #[tokio::test]
    async fn encryptions_are_counted_and_the_limit_rotates_the_key() {
        let (_, b, _) = unsealed().await;
        b.set_max_operations(3);
        b.put("a", b"1".to_vec()).await.unwrap();
        b.put("b", b"2".to_vec()).await.unwrap();
        assert_eq!(b.key_status().unwrap().encryptions, 2);
        assert_eq!(b.key_status().unwrap().term, 1);
        b.apply(vec![Op::Put("c".into(), b"3".to_vec())])
            .await
            .unwrap();
        let status = b.key_status().unwrap();
        assert_eq!((status.term, status.encryptions), (2, 0));
        for k in ["a", "b", "c"] {
            assert!(b.get(k).await.unwrap().is_some());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_racing_rotations_all_stay_readable() {
        let (_, b, _) = unsealed().await;
        let b = Arc::new(b);
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let b = b.clone();
                tokio::spawn(async move {
                    for i in 0..200 {
                        let path = format!("w{w}/{i}");
                        b.put(&path, path.clone().into_bytes()).await.unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..10 {
            b.rotate().await.unwrap();
            tokio::task::yield_now().await;
        }
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(b.key_status().unwrap().term, 11);
        for w in 0..4 {
            for i in 0..200 {
                let path = format!("w{w}/{i}");
                assert_eq!(b.get(&path).await.unwrap().unwrap(), path.as_bytes());
            }
        }
    }

    #[tokio::test]
    async fn sealed_barrier_refuses_every_operation() {
        let (_, b, _) = unsealed().await;
        b.put("p", b"v".to_vec()).await.unwrap();
        b.seal();
        assert!(b.is_sealed());
        assert!(matches!(b.get("p").await, Err(Error::Sealed)));
        assert!(matches!(
            b.put("p", b"w".to_vec()).await,
            Err(Error::Sealed)
        ));
        assert!(matches!(b.delete("p").await, Err(Error::Sealed)));
        assert!(matches!(b.list("").await, Err(Error::Sealed)));
        assert!(matches!(b.apply(vec![]).await, Err(Error::Sealed)));
        assert!(matches!(b.rotate().await, Err(Error::Sealed)));
        assert!(matches!(b.key_status(), Err(Error::Sealed)));
        assert!(matches!(
            coffer_sdk::Error::from(Error::Sealed),
            coffer_sdk::Error::Sealed
        ));
    }

    #[tokio::test]
    async fn apply_encrypts_puts_and_passes_deletes() {
        let (store, b, _) = unsealed().await;
        b.put("gone", b"x".to_vec()).await.unwrap();
        b.apply(vec![
            Op::Put("dir/one".into(), b"1".to_vec()),
            Op::Put("dir/two".into(), b"2".to_vec()),
            Op::Delete("gone".into()),
        ])
        .await
        .unwrap();
        assert_eq!(b.get("dir/one").await.unwrap().unwrap(), b"1");
        assert_eq!(b.get("dir/two").await.unwrap().unwrap(), b"2");
        assert_eq!(b.get("gone").await.unwrap(), None);
        assert_ne!(store.raw("dir/one").unwrap(), b"1");
        assert_eq!(b.list("dir/").await.unwrap(), vec!["one", "two"]);
    }

    #[tokio::test]
    async fn neither_values_nor_keys_appear_in_the_stored_bytes() {
        let (store, b, root) = unsealed().await;
        let value = b"PLAINTEXT-CANARY-0123456789".to_vec();
        b.put("secret/canary", value.clone()).await.unwrap();
        b.rotate().await.unwrap();
        b.put("secret/canary2", value.clone()).await.unwrap();
        let ring = b.keyring.load_full().unwrap();
        let mut secrets: Vec<Vec<u8>> = vec![value, root.expose().to_vec()];
        for t in 1..=2 {
            let key = ring.term(t).unwrap().key_for_tests();
            secrets.push(key.to_vec());
            secrets.push(hex::encode(key).into_bytes());
            secrets.push(
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key)
                    .into_bytes(),
            );
        }
        let dump = store.all_bytes();
        for s in &secrets {
            assert!(
                !dump.windows(s.len()).any(|w| w == &s[..]),
                "a secret appears in the stored bytes"
            );
        }
        // The keys are in the keyring, so the dump would contain them if it were plaintext.
        assert!(dump.len() > 100);
    }

    #[tokio::test]
    async fn errors_never_print_key_material() {
        let (_, b, root) = unsealed().await;
        let err = b.unseal(&Key::generate()).await; // already unsealed: no-op
        assert!(err.is_ok());
        b.seal();
        let err = b.unseal(&Key::generate()).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains(&hex::encode(root.expose())));
        assert!(text.contains("core/keyring"));
    }
}
