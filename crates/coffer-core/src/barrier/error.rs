//! Failures of the barrier, in the barrier's own words. No message holds key material or a
//! plaintext value: only paths, term numbers and fixed reasons.

/// What went wrong in the barrier.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The keyring is not loaded: nothing can be read or written until unseal.
    #[error("Vault is sealed")]
    Sealed,
    /// Unseal was asked of a store that has no keyring.
    #[error("the barrier is not initialized")]
    NotInitialized,
    /// Initialize was asked of a store that already has a keyring.
    #[error("the barrier is already initialized")]
    AlreadyInitialized,
    /// Key material of the wrong length was offered.
    #[error("a key must be exactly 32 bytes")]
    InvalidKeyLength,
    /// The record's tag did not verify: wrong key, a record copied from another path, or tampering.
    #[error("the record at {path:?} failed to decrypt")]
    Decrypt { path: String },
    /// The record is not in the barrier's format.
    #[error("the record at {path:?} is corrupt: {reason}")]
    Corrupt { path: String, reason: &'static str },
    /// The record names a key term the keyring does not hold.
    #[error("the record at {path:?} uses key term {term}, which the keyring does not hold")]
    UnknownTerm { path: String, term: u32 },
    /// The physical store failed.
    #[error(transparent)]
    Storage(#[from] coffer_storage::Error),
}

/// The kind a client sees: sealed is 503 "Vault is sealed", an unreachable store is
/// "unavailable", and everything else is internal (the detail goes to the log, not the client).
impl From<Error> for coffer_sdk::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Sealed => coffer_sdk::Error::Sealed,
            Error::Storage(coffer_storage::Error::Unavailable(msg)) => {
                coffer_sdk::Error::Unavailable(format!("storage unavailable: {msg}"))
            }
            other => coffer_sdk::Error::internal(other),
        }
    }
}
