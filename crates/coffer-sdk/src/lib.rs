//! What every mount sees, and nothing more: the logical request and response, the `Backend`
//! trait that secrets engines and auth methods implement, the mount-scoped encrypted `Storage`
//! view they write through, and the error kinds a client can be shown.
//!
//! This crate must not know about HTTP, the barrier, the token store or any physical store:
//! engines and auth methods depend on it alone, so they cannot reach around the core.

pub mod backend;
pub mod duration;
pub mod error;
pub mod framework;
pub mod logical;
pub mod storage;

pub use backend::{Backend, BackendConfig, BackendKind, Factory, SpecialPaths};
pub use error::Error;
pub use logical::{Alias, Auth, Lease, Operation, Request, RequestAuth, Response, WrapInfo};
pub use storage::{Storage, StorageOp};
