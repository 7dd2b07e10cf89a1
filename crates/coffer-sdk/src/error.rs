//! The kinds of failure a client can be shown. Only `coffer-http` turns a kind into a status
//! code and a `{"errors": [...]}` body; everything below it decides by variant, never by text.

/// A failure of a logical request, in the words the client will read.
///
/// Messages never hold a secret, a token or key material: they are sent to clients and logged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or violates a rule of the path (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// The token is missing, unknown, expired, or lacks a capability (403).
    #[error("permission denied")]
    PermissionDenied,
    /// Refused with OpenBao's own words for the case (403): an ACL denial is
    /// `1 error occurred:\n\t* permission denied\n\n`, a token lookup of a dead token
    /// `bad token`.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing is stored at this path (404 with an empty error list, as OpenBao answers).
    #[error("not found")]
    NotFound,
    /// No mount or no path of the mount matches (404 with OpenBao's route message).
    #[error("no handler for route {0:?}. route entry not found.")]
    UnsupportedPath(String),
    /// The path exists but does not support this operation (405).
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// The barrier is sealed (503).
    #[error("Vault is sealed")]
    Sealed,
    /// The request body or a field of it is too large (413).
    #[error("{0}")]
    TooLarge(String),
    /// A store or upstream service could not answer in time (503); retrying may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure below; the client sees a generic message, the operator
    /// the detail in the log (500).
    #[error("internal error")]
    Internal(String),
}

impl Error {
    /// An `InvalidRequest` from anything printable.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidRequest(msg.into())
    }

    /// The 403 of a request a token's policies do not grant, in OpenBao's multierror wording.
    pub fn acl_denied() -> Self {
        Error::Forbidden("1 error occurred:\n\t* permission denied\n\n".into())
    }

    /// An `Internal` error whose detail is logged, never shown to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Error::Internal(detail.to_string())
    }
}
