//! The physical store: opaque bytes under `/`-separated keys. Everything above this crate sees
//! only the `Store` trait; which backend runs is decided once, at start-up.
//!
//! Values arriving here are already encrypted by the barrier; this crate never sees plaintext
//! and must never log values.
//!
//! Backends: [`InMem`] (dev mode, tests), [`Sqlite`] (the embedded default: WAL, fsync before
//! ack, concurrent writes grouped into one commit). [`Cache`] is a bounded read cache in front
//! of any of them. [`conformance`] is the suite every backend's tests run.

pub mod cache;
pub mod conformance;
pub mod error;
pub mod inmem;
mod keys;
pub mod sqlite;
pub mod store;

pub use cache::Cache;
pub use error::Error;
pub use inmem::InMem;
pub use sqlite::Sqlite;
pub use store::{Op, Store};
