//! Splitting the unseal key into shares and combining them back, over GF(256) with `blahaj`.
//!
//! A share is `x | y` (1 + 32 bytes), as `blahaj` serialises it; OpenBao's shares carry the same
//! 33 bytes with `x` last. With a single share there is nothing to split: the share is the key
//! itself, as OpenBao does for `secret_shares = 1` (what `server -dev` prints).

use blahaj::{Share, Sharks};
use secrecy::{ExposeSecret, SecretBox};
use zeroize::Zeroizing;

use super::Error;
use crate::barrier::Key;

/// `shares` shares of `key`, any `threshold` of which recover it.
pub(crate) fn split(key: &Key, shares: u8, threshold: u8) -> Vec<SecretBox<Vec<u8>>> {
    if shares == 1 {
        return vec![SecretBox::new(Box::new(key.expose().to_vec()))];
    }
    Sharks(threshold)
        .dealer(key.expose())
        .take(shares as usize)
        .map(|share| SecretBox::new(Box::new(Vec::from(&share))))
        .collect()
}

/// The key the collected `parts` recover. Wrong parts recover a wrong key, which only the
/// root key's decryption can tell; malformed or too few distinct parts are refused here.
pub(crate) fn combine(parts: &[SecretBox<Vec<u8>>], threshold: u8) -> Result<Key, Error> {
    if threshold == 1 {
        let part = parts.first().ok_or(Error::InvalidKey(NOT_ENOUGH))?;
        return Key::from_bytes(part.expose_secret()).map_err(|_| Error::InvalidKey(BAD_LENGTH));
    }
    let shares = parts
        .iter()
        .map(|p| Share::try_from(p.expose_secret().as_slice()))
        .collect::<Result<Vec<Share>, _>>()
        .map_err(|_| Error::InvalidKey(BAD_LENGTH))?;
    // blahaj counts distinct x coordinates, so two parts with the same x do not count twice.
    let secret = Zeroizing::new(
        Sharks(threshold)
            .recover(&shares)
            .map_err(|_| Error::InvalidKey(NOT_ENOUGH))?,
    );
    Key::from_bytes(&secret).map_err(|_| Error::InvalidKey(BAD_LENGTH))
}

const NOT_ENOUGH: &str = "invalid key: not enough distinct unseal key shares";
const BAD_LENGTH: &str = "invalid key: unseal key shares are not of the same, valid length";

#[cfg(test)]
mod tests {
    use subtle::ConstantTimeEq;

    use super::*;

    fn same(a: &Key, b: &Key) -> bool {
        a.ct_eq(b).into()
    }

    #[test]
    fn any_threshold_shares_recover_the_key() {
        let key = Key::generate();
        let parts = split(&key, 5, 3);
        assert_eq!(parts.len(), 5);
        assert!(parts.iter().all(|p| p.expose_secret().len() == 33));
        for (a, b, c) in [(0, 1, 2), (4, 2, 0), (1, 3, 4), (3, 0, 2)] {
            let picked: Vec<_> = [a, b, c]
                .iter()
                .map(|&i| SecretBox::new(Box::new(parts[i].expose_secret().clone())))
                .collect();
            assert!(same(&combine(&picked, 3).unwrap(), &key));
        }
    }

    #[test]
    fn fewer_than_threshold_shares_are_refused() {
        let parts = split(&Key::generate(), 5, 3);
        assert!(matches!(combine(&parts[..2], 3), Err(Error::InvalidKey(_))));
    }

    #[test]
    fn a_single_share_is_the_key_itself() {
        let key = Key::generate();
        let parts = split(&key, 1, 1);
        assert_eq!(parts[0].expose_secret().as_slice(), key.expose());
        assert!(same(&combine(&parts, 1).unwrap(), &key));
    }

    #[test]
    fn a_tampered_share_recovers_another_key() {
        let key = Key::generate();
        let mut parts = split(&key, 3, 2);
        parts[1] = SecretBox::new(Box::new({
            let mut p = parts[1].expose_secret().clone();
            p[5] ^= 1;
            p
        }));
        assert!(!same(&combine(&parts[..2], 2).unwrap(), &key));
    }

    #[test]
    fn shares_of_different_lengths_are_refused() {
        let mut parts = split(&Key::generate(), 3, 2);
        parts[0] = SecretBox::new(Box::new(vec![1u8; 20]));
        assert!(matches!(combine(&parts[..2], 2), Err(Error::InvalidKey(_))));
    }
}
