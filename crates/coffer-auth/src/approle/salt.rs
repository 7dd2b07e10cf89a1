//! The mount's salt: a random 256-bit HMAC-SHA256 key kept in the mount's storage, under which
//! role IDs, secret IDs and accessors are stored as MACs, never in the clear (as openbao's
//! `sdk/helper/salt` `SaltID`). A stolen storage entry does not give a login back.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// An HMAC key. Not `Debug`: it is key material, wiped on drop.
pub(crate) struct Salt {
    key: Zeroizing<Vec<u8>>,
}

impl Salt {
    /// A fresh random salt.
    pub(crate) fn generate() -> Self {
        let mut key = Zeroizing::new(vec![0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut key);
        Salt { key }
    }

    /// A salt read back from storage.
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Self {
        Salt {
            key: Zeroizing::new(bytes),
        }
    }

    /// The bytes to store.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        self.key.to_vec()
    }

    /// `hmac-sha256:` + the hex MAC of `data`.
    pub(crate) fn mac(&self, data: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .expect("HMAC-SHA256 accepts keys of any length");
        mac.update(data.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `stored` is the MAC of `data`, compared in constant time.
    pub(crate) fn verify(&self, data: &str, stored: &str) -> bool {
        self.mac(data).as_bytes().ct_eq(stored.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_keyed_and_verify() {
        let a = Salt::generate();
        let b = Salt::from_bytes(a.to_bytes());
        let c = Salt::generate();
        assert_eq!(a.mac("x"), b.mac("x"));
        assert_ne!(a.mac("x"), c.mac("x"));
        assert_eq!(a.mac("x").len(), 64);
        assert!(a.verify("x", &b.mac("x")));
        assert!(!a.verify("y", &b.mac("x")));
    }
}
