//! Failures of the seal, in OpenBao's words where a client sees them. No message holds a share
//! or a key.

use crate::barrier;

/// What went wrong in the seal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `sys/init` on an initialized vault.
    #[error("Vault is already initialized")]
    AlreadyInitialized,
    /// Unseal before `sys/init`.
    #[error("Vault is not initialized")]
    NotInitialized,
    /// A share count or threshold OpenBao refuses.
    #[error("invalid seal configuration: {0}")]
    InvalidConfig(&'static str),
    /// A share that is not one, or shares that do not combine into the unseal key.
    #[error("{0}")]
    InvalidKey(&'static str),
    /// The stored seal configuration or root key is not what the seal wrote.
    #[error("the seal's record at {path:?} is corrupt")]
    Corrupt { path: &'static str },
    /// The barrier failed.
    #[error(transparent)]
    Barrier(#[from] barrier::Error),
    /// The physical store failed.
    #[error(transparent)]
    Storage(#[from] coffer_storage::Error),
}

/// The client's errors (bad configuration, bad share, wrong state) are 400 with OpenBao's text;
/// a failing store is unavailable; the rest is internal.
impl From<Error> for coffer_sdk::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::AlreadyInitialized
            | Error::NotInitialized
            | Error::InvalidConfig(_)
            | Error::InvalidKey(_) => coffer_sdk::Error::InvalidRequest(e.to_string()),
            Error::Barrier(b) => b.into(),
            Error::Storage(s) => barrier::Error::Storage(s).into(),
            Error::Corrupt { .. } => coffer_sdk::Error::internal(e),
        }
    }
}
