//! Failures of a physical store.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store cannot be reached or refused the operation; retrying may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The stored data is not what the store itself wrote.
    #[error("storage corrupt: {0}")]
    Corrupt(String),
}
