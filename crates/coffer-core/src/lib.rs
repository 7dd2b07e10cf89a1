//! The vault core: the barrier (encryption of everything stored), the seal (Shamir-split
//! unseal key), the mount table and router, the token and policy stores, the expiration
//! manager (leases), the system backend, and the request pipeline that ties them together.
//!
//! It knows nothing of HTTP; engines and auth methods reach it only through the sdk's
//! `Backend` and `Storage` traits.

pub mod audit;
pub mod barrier;
mod core;
pub mod expiration;
pub mod identity;
mod metrics;
pub mod mount;
pub mod policy;
pub mod seal;
mod sys;
pub mod token;
mod view;
mod wrapping;

pub use crate::core::{Core, CoreConfig, InitResult, Unsealed};
pub use crate::view::BarrierView;
