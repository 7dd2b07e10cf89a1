//! The barrier's record format and its AEAD.
//!
//! A record is `term (u32, big-endian) | version (1 byte) | nonce (12 random bytes) |
//! ciphertext | tag (16 bytes)`, encrypted with AES-256-GCM under the key of `term`, with the
//! storage path as associated data, so a record copied to another path does not decrypt
//! (OpenBao `vault/barrier_aes_gcm.go` writes the same layout as its "version 2").
//!
//! This module knows one key at a time; which key a record needs is the keyring's business.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use rand::RngCore;
use zeroize::Zeroize;

use super::{Error, Key};

/// The only record version coffer writes: AES-256-GCM, random nonce, path bound as AAD.
pub(crate) const VERSION: u8 = 2;
/// The bytes a record adds to its plaintext.
pub(crate) const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// An AES-256-GCM cipher for one key, built once (the key schedule and GHASH key are computed
/// here, not per request). The `aes` and `polyval` `zeroize` features wipe both on drop.
pub(crate) struct Cipher(Aes256Gcm);

impl Cipher {
    pub(crate) fn new(key: &Key) -> Cipher {
        Cipher(Aes256Gcm::new(key.expose().into()))
    }

    /// Encrypts `plaintext` into a record of `term`, bound to `path`.
    pub(crate) fn encrypt(
        &self,
        term: u32,
        path: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let mut record = Vec::with_capacity(plaintext.len() + OVERHEAD);
        record.extend_from_slice(&term.to_be_bytes());
        record.push(VERSION);
        let mut nonce = [0u8; NONCE_LEN];
        // A CSPRNG nonce per record; the key is rotated long before the 2^32 random-nonce
        // bound is near (max_operations, as OpenBao).
        rand::thread_rng().fill_bytes(&mut nonce);
        record.extend_from_slice(&nonce);
        record.extend_from_slice(plaintext);
        let tag = self
            .0
            .encrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                path.as_bytes(),
                &mut record[HEADER_LEN..],
            )
            .map_err(|_| {
                // Only reachable for plaintexts beyond AES-GCM's 64 GiB limit.
                record.zeroize();
                Error::Corrupt {
                    path: path.to_owned(),
                    reason: "value too large to encrypt",
                }
            })?;
        record.extend_from_slice(&tag);
        Ok(record)
    }

    /// Decrypts a record read at `path`, in place: the returned buffer is the record's own
    /// allocation, so no second copy of the plaintext is made. The caller has checked the term.
    pub(crate) fn decrypt(&self, path: &str, mut record: Vec<u8>) -> Result<Vec<u8>, Error> {
        check_header(path, &record)?;
        let tag_at = record.len() - TAG_LEN;
        let (head, tag) = record.split_at_mut(tag_at);
        let (header, body) = head.split_at_mut(HEADER_LEN);
        let nonce = Nonce::from_slice(&header[TERM_LEN + 1..]);
        let tag = Tag::clone_from_slice(tag);
        if self
            .0
            .decrypt_in_place_detached(nonce, path.as_bytes(), body, &tag)
            .is_err()
        {
            record.zeroize();
            return Err(Error::Decrypt {
                path: path.to_owned(),
            });
        }
        record.truncate(tag_at);
        record.drain(..HEADER_LEN);
        Ok(record)
    }
}

/// The term a record was written under, after checking its length and version.
pub(crate) fn record_term(path: &str, record: &[u8]) -> Result<u32, Error> {
    check_header(path, record)?;
    let mut term = [0u8; TERM_LEN];
    term.copy_from_slice(&record[..TERM_LEN]);
    Ok(u32::from_be_bytes(term))
}

fn check_header(path: &str, record: &[u8]) -> Result<(), Error> {
    if record.len() < OVERHEAD {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            reason: "record too short",
        });
    }
    if record[TERM_LEN] != VERSION {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            reason: "unknown record version",
        });
    }
    Ok(())
}

const TERM_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = TERM_LEN + 1 + NONCE_LEN;

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> Cipher {
        Cipher::new(&Key::generate())
    }

    #[test]
    fn round_trip_keeps_the_plaintext_and_the_term() {
        let c = cipher();
        let record = c.encrypt(7, "secret/a", b"hello").unwrap();
        assert_eq!(record.len(), 5 + OVERHEAD);
        assert_eq!(record_term("secret/a", &record).unwrap(), 7);
        assert_eq!(record[4], VERSION);
        assert_eq!(c.decrypt("secret/a", record).unwrap(), b"hello");
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let c = cipher();
        let record = c.encrypt(1, "p", b"").unwrap();
        assert_eq!(c.decrypt("p", record).unwrap(), b"");
    }

    #[test]
    fn two_encryptions_use_different_nonces() {
        let c = cipher();
        let a = c.encrypt(1, "p", b"same").unwrap();
        let b = c.encrypt(1, "p", b"same").unwrap();
        assert_ne!(a[5..17], b[5..17]);
        assert_ne!(a, b);
    }

    #[test]
    fn another_path_does_not_decrypt() {
        let c = cipher();
        let record = c.encrypt(1, "secret/a", b"v").unwrap();
        assert!(matches!(
            c.decrypt("secret/b", record),
            Err(Error::Decrypt { .. })
        ));
    }

    #[test]
    fn another_key_does_not_decrypt() {
        let record = cipher().encrypt(1, "p", b"v").unwrap();
        assert!(matches!(
            cipher().decrypt("p", record),
            Err(Error::Decrypt { .. })
        ));
    }

    #[test]
    fn flipping_any_byte_of_nonce_ciphertext_or_tag_fails() {
        let c = cipher();
        let record = c.encrypt(1, "p", b"some value").unwrap();
        for i in 5..record.len() {
            let mut bad = record.clone();
            bad[i] ^= 0x01;
            assert!(
                matches!(c.decrypt("p", bad), Err(Error::Decrypt { .. })),
                "byte {i} flipped still decrypted"
            );
        }
    }

    #[test]
    fn short_records_and_unknown_versions_are_corrupt() {
        let c = cipher();
        assert!(matches!(
            c.decrypt("p", vec![0; OVERHEAD - 1]),
            Err(Error::Corrupt { .. })
        ));
        let mut record = c.encrypt(1, "p", b"v").unwrap();
        record[4] = 1;
        assert!(matches!(
            record_term("p", &record),
            Err(Error::Corrupt { .. })
        ));
    }
}
