//! The physical store: opaque bytes under `/`-separated keys. Everything above this crate sees
//! only the `Store` trait; which backend runs is decided once, at start-up.
//!
//! Values arriving here are already encrypted by the barrier; this crate never sees plaintext
//! and must never log values.

pub mod error;
pub mod store;

pub use error::Error;
pub use store::{Op, Store};
