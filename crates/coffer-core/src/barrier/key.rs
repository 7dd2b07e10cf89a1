//! `Key`: 32 bytes of AES-256 key material. Zeroized on drop, never printed; reading the bytes
//! takes an explicit `expose()` that reviewers can grep for.

use std::fmt;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use subtle::{Choice, ConstantTimeEq};

use super::Error;

/// The length of every key the barrier and the seal use (AES-256).
pub const KEY_LEN: usize = 32;

/// 32 bytes of key material: a barrier term key, the root key or the unseal key.
pub struct Key(SecretBox<[u8; KEY_LEN]>);

impl Key {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Key {
        Key(SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| {
            rand::rngs::OsRng.fill_bytes(k)
        }))
    }

    /// A key from exactly 32 bytes; any other length is refused.
    pub fn from_bytes(b: &[u8]) -> Result<Key, Error> {
        if b.len() != KEY_LEN {
            return Err(Error::InvalidKeyLength);
        }
        Ok(Key(SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| {
            k.copy_from_slice(b)
        })))
    }

    /// The raw key bytes. Every call site is a place a secret is read.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        self.0.expose_secret()
    }
}

impl Clone for Key {
    fn clone(&self) -> Self {
        Key(SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| {
            k.copy_from_slice(self.expose())
        }))
    }
}

impl ConstantTimeEq for Key {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.expose().ct_eq(other.expose())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_differ_and_have_32_bytes() {
        let a = Key::generate();
        let b = Key::generate();
        assert_eq!(a.expose().len(), KEY_LEN);
        assert!(!bool::from(a.ct_eq(&b)));
        assert!(bool::from(a.ct_eq(&a.clone())));
    }

    #[test]
    fn from_bytes_accepts_only_32_bytes() {
        assert!(matches!(
            Key::from_bytes(&[1u8; 31]),
            Err(Error::InvalidKeyLength)
        ));
        assert!(matches!(
            Key::from_bytes(&[1u8; 33]),
            Err(Error::InvalidKeyLength)
        ));
        let k = Key::from_bytes(&[7u8; 32]).unwrap();
        assert_eq!(k.expose(), &[7u8; 32]);
    }

    #[test]
    fn debug_never_shows_the_bytes() {
        let k = Key::from_bytes(&[0xAB; 32]).unwrap();
        let shown = format!("{k:?}");
        assert_eq!(shown, "Key([REDACTED])");
        assert!(!shown.to_lowercase().contains("ab, "));
        assert!(!shown.contains("171"));
    }
}
