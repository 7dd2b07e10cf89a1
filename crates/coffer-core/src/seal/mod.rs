//! The Shamir seal: the unseal key is split into shares at `sys/init`; at `sys/unseal` the
//! shares are collected until the threshold, combined, and used to decrypt the root key, which
//! unseals the barrier.
//!
//! Stored directly on the `Store`, not through the barrier (which is sealed while these are
//! needed): the seal configuration as plaintext JSON at `core/seal-config`, and the root key at
//! `core/root-key`, encrypted with the unseal key in the barrier's record format, the path as
//! AAD. The unseal key itself is never stored. Root tokens are core's business, not the seal's.

mod error;
mod shamir;

use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwapOption;
use base64::Engine;
use coffer_storage::{Op, Store};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::barrier::{Barrier, Cipher, Key, KEYRING_PATH, ROOT_TERM};
pub use error::Error;

/// Where the seal configuration is stored, in plaintext.
pub const SEAL_CONFIG_PATH: &str = "core/seal-config";
/// Where the root key is stored, encrypted with the unseal key.
pub const ROOT_KEY_PATH: &str = "core/root-key";

/// How many shares the unseal key is split into, and how many unseal it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealConfig {
    pub secret_shares: u8,
    pub secret_threshold: u8,
}

impl SealConfig {
    /// A configuration from a request's numbers, checked as OpenBao checks them (so a count
    /// above 255 gets OpenBao's message rather than a parse error).
    pub fn try_new(secret_shares: i64, secret_threshold: i64) -> Result<SealConfig, Error> {
        let (n, t) = (secret_shares, secret_threshold);
        if n < 1 {
            return Err(Error::InvalidConfig("shares must be at least one"));
        }
        if t < 1 {
            return Err(Error::InvalidConfig("threshold must be at least one"));
        }
        if n > 1 && t == 1 {
            return Err(Error::InvalidConfig(
                "threshold must be greater than one for multiple shares",
            ));
        }
        if n > 255 {
            return Err(Error::InvalidConfig("shares must be less than 256"));
        }
        if t > 255 {
            return Err(Error::InvalidConfig("threshold must be less than 256"));
        }
        if t > n {
            return Err(Error::InvalidConfig(
                "threshold cannot be larger than shares",
            ));
        }
        Ok(SealConfig {
            secret_shares: n as u8,
            secret_threshold: t as u8,
        })
    }

    /// Checks this configuration with OpenBao's rules and messages.
    pub fn validate(&self) -> Result<(), Error> {
        SealConfig::try_new(self.secret_shares.into(), self.secret_threshold.into()).map(|_| ())
    }
}

/// `sys/seal-status`, in OpenBao's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SealStatus {
    pub initialized: bool,
    pub sealed: bool,
    /// The threshold.
    pub t: u8,
    /// The number of shares.
    pub n: u8,
    /// Distinct shares submitted since the last reset.
    pub progress: u8,
    /// Identifies the current unseal attempt; empty when none is in progress.
    pub nonce: String,
}

/// What `initialize` hands back: the unseal key shares, shown to the operator once. Its Debug
/// output redacts every share.
#[derive(Debug)]
pub struct InitOutput {
    pub shares: Vec<SecretBox<Vec<u8>>>,
}

/// The Shamir seal of one barrier.
pub struct Seal {
    store: Arc<dyn Store>,
    barrier: Arc<Barrier>,
    /// Cached once read; it changes only at init.
    config: ArcSwapOption<SealConfig>,
    /// Serialises initializations (held across the store write).
    init: tokio::sync::Mutex<()>,
    /// Shares collected so far; never held across an await.
    progress: Mutex<Progress>,
}

impl Seal {
    pub fn new(store: Arc<dyn Store>, barrier: Arc<Barrier>) -> Seal {
        Seal {
            store,
            barrier,
            config: ArcSwapOption::empty(),
            init: tokio::sync::Mutex::new(()),
            progress: Mutex::new(Progress::default()),
        }
    }

    /// Initialized or not, sealed or not, and the unseal progress.
    pub async fn status(&self) -> Result<SealStatus, Error> {
        let Some(config) = self.config().await? else {
            return Ok(SealStatus {
                initialized: false,
                sealed: true,
                t: 0,
                n: 0,
                progress: 0,
                nonce: String::new(),
            });
        };
        Ok(self.status_with(&config, &self.progress()))
    }

    /// Generates the unseal key and the root key, stores the keyring (term 1), the encrypted
    /// root key and the configuration in one atomic batch, and returns the unseal key's shares.
    /// The barrier stays sealed.
    pub async fn initialize(&self, cfg: SealConfig) -> Result<InitOutput, Error> {
        cfg.validate()?;
        let _init = self.init.lock().await;
        if self.config().await?.is_some() || self.store.get(KEYRING_PATH).await?.is_some() {
            return Err(Error::AlreadyInitialized);
        }
        let unseal_key = Key::generate();
        let root_key = Key::generate();
        let keyring = Barrier::initial_keyring_record(&root_key)?;
        let root_record =
            Cipher::new(&unseal_key).encrypt(ROOT_TERM, ROOT_KEY_PATH, root_key.expose())?;
        let config = serde_json::to_vec(&cfg).map_err(|_| Error::Corrupt {
            path: SEAL_CONFIG_PATH,
        })?;
        self.store
            .apply(vec![
                Op::Put(KEYRING_PATH.to_owned(), keyring),
                Op::Put(ROOT_KEY_PATH.to_owned(), root_record),
                Op::Put(SEAL_CONFIG_PATH.to_owned(), config),
            ])
            .await?;
        self.config.store(Some(Arc::new(cfg)));
        self.reset_progress();
        tracing::info!(
            shares = cfg.secret_shares,
            threshold = cfg.secret_threshold,
            "seal initialized"
        );
        Ok(InitOutput {
            shares: shamir::split(&unseal_key, cfg.secret_shares, cfg.secret_threshold),
        })
    }

    /// Adds one unseal key share (raw bytes: the caller decodes hex or base64, see
    /// `decode_share`). A share already given is not counted twice. At the threshold the shares
    /// are combined and the barrier is unsealed; a combination that does not decrypt the root
    /// key is an error, and the progress starts over. On an unsealed vault it only reports.
    pub async fn submit_share(&self, share: &[u8]) -> Result<SealStatus, Error> {
        // OpenBao's bounds: a share is at least 16 bytes, at most a 32-byte key plus x.
        if share.len() < 16 {
            return Err(Error::InvalidKey(
                "invalid key: key is shorter than minimum 16 bytes",
            ));
        }
        if share.len() > 33 {
            return Err(Error::InvalidKey(
                "invalid key: key is longer than maximum 33 bytes",
            ));
        }
        let config = self.config().await?.ok_or(Error::NotInitialized)?;
        if !self.barrier.is_sealed() {
            return self.status().await;
        }
        let parts = {
            let mut progress = self.progress();
            let seen = progress
                .parts
                .iter()
                .any(|p| bool::from(p.expose_secret().as_slice().ct_eq(share)));
            if !seen {
                if progress.parts.is_empty() {
                    progress.nonce = uuid::Uuid::new_v4().to_string();
                }
                progress
                    .parts
                    .push(SecretBox::new(Box::new(share.to_vec())));
            }
            if progress.parts.len() < config.secret_threshold as usize {
                return Ok(self.status_with(&config, &progress));
            }
            // Whatever the combination gives, this attempt is over: a wrong share resets.
            progress.nonce.clear();
            std::mem::take(&mut progress.parts)
        };
        let unseal_key = shamir::combine(&parts, config.secret_threshold)?;
        drop(parts);
        let root_key = self.root_key(&unseal_key).await?;
        self.barrier.unseal(&root_key).await?;
        self.status().await
    }

    /// Forgets the shares collected so far (`sys/unseal` with `reset`).
    pub fn reset_progress(&self) {
        *self.progress() = Progress::default();
    }

    /// Seals the barrier and forgets any unseal progress.
    pub fn seal(&self) {
        self.barrier.seal();
        self.reset_progress();
    }

    /// The configuration, read once from the store and then cached.
    async fn config(&self) -> Result<Option<Arc<SealConfig>>, Error> {
        if let Some(config) = self.config.load_full() {
            return Ok(Some(config));
        }
        let Some(raw) = self.store.get(SEAL_CONFIG_PATH).await? else {
            return Ok(None);
        };
        let config: SealConfig = serde_json::from_slice(&raw).map_err(|_| Error::Corrupt {
            path: SEAL_CONFIG_PATH,
        })?;
        let config = Arc::new(config);
        self.config.store(Some(config.clone()));
        Ok(Some(config))
    }

    /// Decrypts the stored root key with a candidate unseal key.
    async fn root_key(&self, unseal_key: &Key) -> Result<Key, Error> {
        let record = self.store.get(ROOT_KEY_PATH).await?.ok_or(Error::Corrupt {
            path: ROOT_KEY_PATH,
        })?;
        let root = Zeroizing::new(
            Cipher::new(unseal_key)
                .decrypt(ROOT_KEY_PATH, record)
                .map_err(|_| Error::InvalidKey(WRONG_SHARES))?,
        );
        Key::from_bytes(&root).map_err(|_| Error::Corrupt {
            path: ROOT_KEY_PATH,
        })
    }

    fn status_with(&self, config: &SealConfig, progress: &Progress) -> SealStatus {
        let sealed = self.barrier.is_sealed();
        SealStatus {
            initialized: true,
            sealed,
            t: config.secret_threshold,
            n: config.secret_shares,
            progress: if sealed {
                progress.parts.len() as u8
            } else {
                0
            },
            nonce: if sealed {
                progress.nonce.clone()
            } else {
                String::new()
            },
        }
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        // A panic while holding this lock cannot leave the share list inconsistent.
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A share as a client sends it, hex or base64 (as `sys/unseal` accepts both), to raw bytes.
pub fn decode_share(input: &str) -> Result<SecretBox<Vec<u8>>, Error> {
    let input = input.trim();
    let bytes = hex::decode(input)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(input))
        .map_err(|_| Error::InvalidKey("'key' must be a valid hex or base64 string"))?;
    Ok(SecretBox::new(Box::new(bytes)))
}

#[derive(Default)]
struct Progress {
    parts: Vec<SecretBox<Vec<u8>>>,
    nonce: String,
}

/// OpenBao's answer when the shares combine into a key that does not decrypt the root key.
const WRONG_SHARES: &str =
    "unable to retrieve stored keys: invalid key: failed to decrypt keys from storage";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barrier::test_store::TestStore;

    fn seal() -> (Arc<TestStore>, Arc<Barrier>, Seal) {
        let store = Arc::new(TestStore::default());
        let barrier = Arc::new(Barrier::new(store.clone()));
        let seal = Seal::new(store.clone(), barrier.clone());
        (store, barrier, seal)
    }

    async fn initialized(n: u8, t: u8) -> (Arc<TestStore>, Arc<Barrier>, Seal, Vec<Vec<u8>>) {
        let (store, barrier, seal) = seal();
        let out = seal
            .initialize(SealConfig {
                secret_shares: n,
                secret_threshold: t,
            })
            .await
            .unwrap();
        let shares = out
            .shares
            .iter()
            .map(|s| s.expose_secret().clone())
            .collect();
        (store, barrier, seal, shares)
    }

    #[tokio::test]
    async fn an_uninitialized_seal_reports_so_and_refuses_shares() {
        let (_, _, seal) = seal();
        let status = seal.status().await.unwrap();
        assert!(!status.initialized && status.sealed);
        assert_eq!((status.t, status.n, status.progress), (0, 0, 0));
        assert!(matches!(
            seal.submit_share(&[1u8; 33]).await,
            Err(Error::NotInitialized)
        ));
    }

    #[tokio::test]
    async fn initialize_leaves_the_vault_sealed_and_reports_the_config() {
        let (store, barrier, seal, shares) = initialized(5, 3).await;
        assert_eq!(shares.len(), 5);
        assert!(barrier.is_sealed());
        let status = seal.status().await.unwrap();
        assert!(status.initialized && status.sealed);
        assert_eq!((status.t, status.n, status.progress), (3, 5, 0));
        assert_eq!(status.nonce, "");
        let stored: serde_json::Value =
            serde_json::from_slice(&store.raw(SEAL_CONFIG_PATH).unwrap()).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"secret_shares": 5, "secret_threshold": 3})
        );
        // A new Seal over the same store reads the stored configuration.
        let again = Seal::new(store.clone(), Arc::new(Barrier::new(store)));
        assert_eq!(again.status().await.unwrap().t, 3);
    }

    #[tokio::test]
    async fn threshold_shares_in_any_order_unseal() {
        let (_, barrier, seal, shares) = initialized(5, 3).await;
        for order in [[0, 1, 2], [4, 2, 0], [3, 1, 4], [2, 4, 3]] {
            let first = seal.submit_share(&shares[order[0]]).await.unwrap();
            assert_eq!(first.progress, 1);
            assert!(!first.nonce.is_empty());
            let second = seal.submit_share(&shares[order[1]]).await.unwrap();
            assert_eq!(second.progress, 2);
            assert_eq!(second.nonce, first.nonce);
            assert!(second.sealed && barrier.is_sealed());
            let done = seal.submit_share(&shares[order[2]]).await.unwrap();
            assert!(!done.sealed && !barrier.is_sealed());
            assert_eq!((done.progress, done.nonce.as_str()), (0, ""));
            barrier.put("check", b"ok".to_vec()).await.unwrap();
            assert_eq!(barrier.get("check").await.unwrap().unwrap(), b"ok");
            seal.seal();
            assert!(barrier.is_sealed());
        }
    }

    #[tokio::test]
    async fn data_written_before_a_seal_reads_back_after_unsealing_with_other_shares() {
        let (store, barrier, seal, shares) = initialized(3, 2).await;
        seal.submit_share(&shares[0]).await.unwrap();
        seal.submit_share(&shares[1]).await.unwrap();
        barrier.put("secret/x", b"kept".to_vec()).await.unwrap();
        seal.seal();
        // A fresh process: new barrier and seal over the same store.
        let barrier = Arc::new(Barrier::new(store.clone()));
        let seal = Seal::new(store, barrier.clone());
        seal.submit_share(&shares[2]).await.unwrap();
        seal.submit_share(&shares[0]).await.unwrap();
        assert_eq!(barrier.get("secret/x").await.unwrap().unwrap(), b"kept");
    }

    #[tokio::test]
    async fn fewer_than_threshold_shares_do_not_unseal() {
        let (_, barrier, seal, shares) = initialized(5, 3).await;
        seal.submit_share(&shares[0]).await.unwrap();
        let status = seal.submit_share(&shares[1]).await.unwrap();
        assert!(status.sealed && barrier.is_sealed());
        assert_eq!(status.progress, 2);
        assert!(matches!(
            barrier.get("x").await,
            Err(crate::barrier::Error::Sealed)
        ));
    }

    #[tokio::test]
    async fn a_repeated_share_is_not_counted_twice() {
        let (_, barrier, seal, shares) = initialized(5, 3).await;
        seal.submit_share(&shares[0]).await.unwrap();
        let status = seal.submit_share(&shares[0]).await.unwrap();
        assert_eq!(status.progress, 1);
        seal.submit_share(&shares[1]).await.unwrap();
        let status = seal.submit_share(&shares[0]).await.unwrap();
        assert_eq!(status.progress, 2);
        assert!(barrier.is_sealed());
    }

    #[tokio::test]
    async fn a_wrong_share_fails_and_resets_the_progress() {
        let (_, barrier, seal, shares) = initialized(5, 3).await;
        let mut wrong = shares[2].clone();
        wrong[10] ^= 0xFF;
        seal.submit_share(&shares[0]).await.unwrap();
        seal.submit_share(&shares[1]).await.unwrap();
        let err = seal.submit_share(&wrong).await.unwrap_err();
        assert!(matches!(err, Error::InvalidKey(WRONG_SHARES)));
        assert!(barrier.is_sealed());
        let status = seal.status().await.unwrap();
        assert_eq!((status.progress, status.nonce.as_str()), (0, ""));
        // The right shares still work afterwards.
        for s in &shares[2..] {
            seal.submit_share(s).await.unwrap();
        }
        assert!(!barrier.is_sealed());
    }

    #[tokio::test]
    async fn shares_of_another_initialization_do_not_unseal() {
        let (_, barrier, seal, _) = initialized(3, 2).await;
        let (_, _, _, foreign) = initialized(3, 2).await;
        seal.submit_share(&foreign[0]).await.unwrap();
        assert!(matches!(
            seal.submit_share(&foreign[1]).await,
            Err(Error::InvalidKey(_))
        ));
        assert!(barrier.is_sealed());
    }

    #[tokio::test]
    async fn a_single_share_is_a_32_byte_key_that_unseals() {
        let (_, barrier, seal, shares) = initialized(1, 1).await;
        assert_eq!(shares[0].len(), 32);
        let status = seal.submit_share(&shares[0]).await.unwrap();
        assert!(!status.sealed && !barrier.is_sealed());
        // Submitting to an unsealed vault only reports.
        assert!(!seal.submit_share(&shares[0]).await.unwrap().sealed);
    }

    #[tokio::test]
    async fn reset_progress_forgets_the_shares() {
        let (_, _, seal, shares) = initialized(5, 3).await;
        seal.submit_share(&shares[0]).await.unwrap();
        seal.submit_share(&shares[1]).await.unwrap();
        seal.reset_progress();
        assert_eq!(seal.status().await.unwrap().progress, 0);
        let status = seal.submit_share(&shares[2]).await.unwrap();
        assert_eq!(status.progress, 1);
        assert!(status.sealed);
    }

    #[tokio::test]
    async fn re_initialize_is_refused() {
        let (store, _, seal, _) = initialized(3, 2).await;
        let cfg = SealConfig {
            secret_shares: 1,
            secret_threshold: 1,
        };
        assert!(matches!(
            seal.initialize(cfg).await,
            Err(Error::AlreadyInitialized)
        ));
        // Also through a fresh Seal with no cached configuration.
        let fresh = Seal::new(store.clone(), Arc::new(Barrier::new(store)));
        let err = fresh.initialize(cfg).await.unwrap_err();
        assert_eq!(err.to_string(), "Vault is already initialized");
    }

    #[tokio::test]
    async fn share_lengths_outside_openbao_bounds_are_refused() {
        let (_, _, seal, _) = initialized(3, 2).await;
        let short = seal.submit_share(&[1u8; 15]).await.unwrap_err();
        assert_eq!(
            short.to_string(),
            "invalid key: key is shorter than minimum 16 bytes"
        );
        let long = seal.submit_share(&[1u8; 34]).await.unwrap_err();
        assert_eq!(
            long.to_string(),
            "invalid key: key is longer than maximum 33 bytes"
        );
        assert_eq!(seal.status().await.unwrap().progress, 0);
    }

    #[tokio::test]
    async fn invalid_configurations_get_openbao_messages() {
        let (_, _, seal) = seal();
        for (n, t, msg) in [
            (0, 0, "shares must be at least one"),
            (3, 0, "threshold must be at least one"),
            (
                3,
                1,
                "threshold must be greater than one for multiple shares",
            ),
            (300, 2, "shares must be less than 256"),
            (3, 5, "threshold cannot be larger than shares"),
        ] {
            let err = SealConfig::try_new(n, t).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid seal configuration: {msg}")
            );
            if let (Ok(n), Ok(t)) = (u8::try_from(n), u8::try_from(t)) {
                let cfg = SealConfig {
                    secret_shares: n,
                    secret_threshold: t,
                };
                assert!(matches!(
                    seal.initialize(cfg).await,
                    Err(Error::InvalidConfig(m)) if m == msg
                ));
            }
        }
        assert!(!seal.status().await.unwrap().initialized);
        assert_eq!(
            SealConfig::try_new(255, 255).unwrap(),
            SealConfig {
                secret_shares: 255,
                secret_threshold: 255
            }
        );
    }

    #[tokio::test]
    async fn no_key_share_or_value_appears_in_the_stored_bytes() {
        let (store, barrier, seal, shares) = initialized(3, 2).await;
        seal.submit_share(&shares[0]).await.unwrap();
        seal.submit_share(&shares[1]).await.unwrap();
        barrier
            .put("secret/v", b"VALUE-CANARY-abcdef".to_vec())
            .await
            .unwrap();
        let parts: Vec<_> = shares[..2]
            .iter()
            .map(|s| SecretBox::new(Box::new(s.clone())))
            .collect();
        let unseal_key = shamir::combine(&parts, 2).unwrap();
        let root_key = seal.root_key(&unseal_key).await.unwrap();
        let mut secrets = vec![
            b"VALUE-CANARY-abcdef".to_vec(),
            unseal_key.expose().to_vec(),
            root_key.expose().to_vec(),
            hex::encode(root_key.expose()).into_bytes(),
        ];
        secrets.extend(shares.iter().cloned());
        let dump = store.all_bytes();
        for s in &secrets {
            assert!(!dump.windows(s.len()).any(|w| w == &s[..]));
        }
    }

    #[tokio::test]
    async fn init_output_debug_redacts_the_shares() {
        let (_, _, seal) = seal();
        let out = seal
            .initialize(SealConfig {
                secret_shares: 3,
                secret_threshold: 2,
            })
            .await
            .unwrap();
        let shown = format!("{out:?}");
        assert!(shown.contains("REDACTED"));
        for share in &out.shares {
            assert!(!shown.contains(&hex::encode(share.expose_secret())));
            assert!(!shown.contains(&format!("{:?}", share.expose_secret())));
        }
    }

    #[test]
    fn shares_decode_from_hex_or_base64() {
        let raw = vec![0xDEu8, 0xAD, 0xBE, 0xEF, 0x01];
        let hex = decode_share("deadbeef01").unwrap();
        assert_eq!(hex.expose_secret(), &raw);
        let b64 = decode_share("3q2+7wE=").unwrap();
        assert_eq!(b64.expose_secret(), &raw);
        let err = decode_share("not a key!").unwrap_err();
        assert_eq!(
            err.to_string(),
            "'key' must be a valid hex or base64 string"
        );
    }

    #[test]
    fn client_errors_map_to_invalid_request() {
        let e: coffer_sdk::Error = Error::AlreadyInitialized.into();
        assert!(
            matches!(e, coffer_sdk::Error::InvalidRequest(m) if m == "Vault is already initialized")
        );
        let e: coffer_sdk::Error = Error::Barrier(crate::barrier::Error::Sealed).into();
        assert!(matches!(e, coffer_sdk::Error::Sealed));
    }
}
