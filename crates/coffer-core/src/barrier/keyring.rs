//! The keyring: every key term the barrier has used, with its install time and how many
//! records it has encrypted, plus the root key that encrypts the keyring itself.
//!
//! A keyring is immutable once built except for its encryption counters; rotation builds a new
//! one that shares the old terms (their ciphers and counters), and the barrier swaps it in whole
//! (OpenBao `vault/keyring.go` keeps the same shape). It is stored at `core/keyring` as JSON,
//! encrypted under the root key with term 0, the term no barrier key ever has.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::aes_gcm::{self, Cipher};
use super::{Error, Key, KeyStatus, KEY_LEN};

/// Where the encrypted keyring lives in the store.
pub const KEYRING_PATH: &str = "core/keyring";

/// The term under which the root key encrypts the keyring record.
pub(crate) const ROOT_TERM: u32 = 0;

/// One key term.
pub(crate) struct Term {
    pub(crate) term: u32,
    key: Key,
    pub(crate) install_time: DateTime<Utc>,
    pub(crate) cipher: Cipher,
    /// Records encrypted under this term; bumped without a lock on every write.
    pub(crate) encryptions: AtomicU64,
}

impl Term {
    fn new(term: u32, key: Key, install_time: DateTime<Utc>, encryptions: u64) -> Term {
        Term {
            term,
            cipher: Cipher::new(&key),
            key,
            install_time,
            encryptions: AtomicU64::new(encryptions),
        }
    }

    #[cfg(test)]
    pub(crate) fn key_for_tests(&self) -> &[u8; KEY_LEN] {
        self.key.expose()
    }

    pub(crate) fn status(&self) -> KeyStatus {
        KeyStatus {
            term: self.term,
            install_time: self.install_time,
            encryptions: self.encryptions.load(Ordering::Relaxed),
        }
    }
}

/// All terms, the active one, and the root key.
pub(crate) struct Keyring {
    root_key: Key,
    root_cipher: Cipher,
    terms: BTreeMap<u32, Arc<Term>>,
    active: Arc<Term>,
}

impl Keyring {
    /// A new keyring holding term 1 with a fresh key.
    pub(crate) fn new(root_key: Key) -> Keyring {
        let first = Arc::new(Term::new(1, Key::generate(), Utc::now(), 0));
        Keyring::from_parts(root_key, BTreeMap::from([(1, first.clone())]), first)
    }

    /// The keyring that follows this one: the same terms plus a new active term.
    pub(crate) fn rotated(&self) -> Keyring {
        let next = self.active.term + 1;
        let term = Arc::new(Term::new(next, Key::generate(), Utc::now(), 0));
        let mut terms = self.terms.clone();
        terms.insert(next, term.clone());
        Keyring::from_parts(self.root_key.clone(), terms, term)
    }

    pub(crate) fn active(&self) -> &Term {
        &self.active
    }

    pub(crate) fn term(&self, term: u32) -> Option<&Term> {
        self.terms.get(&term).map(|t| &**t)
    }

    /// Decrypts a barrier record with the term it names.
    pub(crate) fn decrypt(&self, path: &str, record: Vec<u8>) -> Result<Vec<u8>, Error> {
        let term = aes_gcm::record_term(path, &record)?;
        match self.term(term) {
            Some(t) => t.cipher.decrypt(path, record),
            None => Err(Error::UnknownTerm {
                path: path.to_owned(),
                term,
            }),
        }
    }

    /// The keyring as the record stored at `core/keyring`, encrypted under the root key.
    pub(crate) fn to_record(&self) -> Result<Vec<u8>, Error> {
        let encoded: Vec<Zeroizing<String>> = self
            .terms
            .values()
            .map(|t| Zeroizing::new(STANDARD.encode(t.key.expose())))
            .collect();
        let stored = StoredKeyringRef {
            active_term: self.active.term,
            terms: self
                .terms
                .values()
                .zip(&encoded)
                .map(|(t, key)| StoredTermRef {
                    term: t.term,
                    key: key.as_str(),
                    install_time: t.install_time,
                    encryptions: t.encryptions.load(Ordering::Relaxed),
                })
                .collect(),
        };
        // Sized up front so serde_json never reallocates and leaves a copy of the keys in
        // freed memory; the buffer is wiped once encrypted.
        let mut json = Zeroizing::new(Vec::with_capacity(64 + self.terms.len() * 192));
        serde_json::to_writer(&mut *json, &stored).map_err(|_| Error::Corrupt {
            path: KEYRING_PATH.to_owned(),
            reason: "keyring could not be encoded",
        })?;
        self.root_cipher.encrypt(ROOT_TERM, KEYRING_PATH, &json)
    }

    /// The keyring read back from its record with the root key.
    pub(crate) fn from_record(root_key: Key, record: Vec<u8>) -> Result<Keyring, Error> {
        let corrupt = |reason| Error::Corrupt {
            path: KEYRING_PATH.to_owned(),
            reason,
        };
        if aes_gcm::record_term(KEYRING_PATH, &record)? != ROOT_TERM {
            return Err(corrupt("keyring record is not under the root key"));
        }
        let json = Zeroizing::new(Cipher::new(&root_key).decrypt(KEYRING_PATH, record)?);
        // serde_json's own messages may quote the input, so they are replaced by a fixed reason.
        let stored: StoredKeyring =
            serde_json::from_slice(&json).map_err(|_| corrupt("keyring is not valid JSON"))?;
        let mut terms = BTreeMap::new();
        for t in &stored.terms {
            let mut raw = Zeroizing::new([0u8; KEY_LEN + 3]);
            let n = STANDARD
                .decode_slice(t.key.as_bytes(), &mut *raw)
                .map_err(|_| corrupt("keyring key is not base64"))?;
            let key = Key::from_bytes(&raw[..n]).map_err(|_| corrupt("keyring key length"))?;
            let term = Term::new(t.term, key, t.install_time, t.encryptions);
            if t.term == ROOT_TERM || terms.insert(t.term, Arc::new(term)).is_some() {
                return Err(corrupt("keyring term repeated or zero"));
            }
        }
        let active = terms
            .get(&stored.active_term)
            .cloned()
            .ok_or_else(|| corrupt("keyring has no active term"))?;
        Ok(Keyring::from_parts(root_key, terms, active))
    }

    fn from_parts(root_key: Key, terms: BTreeMap<u32, Arc<Term>>, active: Arc<Term>) -> Keyring {
        Keyring {
            root_cipher: Cipher::new(&root_key),
            root_key,
            terms,
            active,
        }
    }
}

#[derive(Serialize)]
struct StoredKeyringRef<'a> {
    active_term: u32,
    terms: Vec<StoredTermRef<'a>>,
}

#[derive(Serialize)]
struct StoredTermRef<'a> {
    term: u32,
    key: &'a str,
    install_time: DateTime<Utc>,
    encryptions: u64,
}

#[derive(Deserialize)]
struct StoredKeyring {
    active_term: u32,
    terms: Vec<StoredTerm>,
}

/// A term as read from JSON; its base64 key string is wiped on drop.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct StoredTerm {
    term: u32,
    key: String,
    #[zeroize(skip)]
    install_time: DateTime<Utc>,
    encryptions: u64,
}

#[cfg(test)]
mod tests {
    use subtle::ConstantTimeEq;

    use super::*;

    #[test]
    fn record_round_trips_every_term_and_count() {
        let root = Key::generate();
        let ring = Keyring::new(root.clone()).rotated().rotated();
        ring.term(1)
            .unwrap()
            .encryptions
            .store(41, Ordering::Relaxed);
        let back = Keyring::from_record(root, ring.to_record().unwrap()).unwrap();
        assert_eq!(back.active().term, 3);
        for n in 1..=3 {
            let (a, b) = (ring.term(n).unwrap(), back.term(n).unwrap());
            assert!(bool::from(a.key.ct_eq(&b.key)));
            assert_eq!(a.install_time, b.install_time);
        }
        assert_eq!(back.term(1).unwrap().status().encryptions, 41);
    }

    #[test]
    fn a_wrong_root_key_cannot_read_the_keyring() {
        let ring = Keyring::new(Key::generate());
        let record = ring.to_record().unwrap();
        assert!(matches!(
            Keyring::from_record(Key::generate(), record),
            Err(Error::Decrypt { .. })
        ));
    }

    #[test]
    fn rotation_shares_old_terms_and_adds_a_fresh_key() {
        let ring = Keyring::new(Key::generate());
        let next = ring.rotated();
        assert_eq!(next.active().term, 2);
        assert!(std::ptr::eq(ring.term(1).unwrap(), next.term(1).unwrap()));
        assert!(!bool::from(
            next.term(1).unwrap().key.ct_eq(&next.term(2).unwrap().key)
        ));
    }
}
