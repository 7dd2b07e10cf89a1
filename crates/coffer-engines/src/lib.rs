//! Secrets engines, each one `Backend` behind a `Factory`: kv (v1 passthrough and v2 versioned)
//! and cubbyhole. They see only `coffer-sdk`: a request relative to the mount and the mount's
//! encrypted storage view; never the barrier, the token store or HTTP.

pub mod cubbyhole;
pub mod kv;
mod passthrough;
pub mod pki;
pub mod ssh;
mod time;
pub mod totp;
pub mod transit;

#[cfg(test)]
mod testing;

pub use cubbyhole::{cubbyhole_factory, cubbyhole_prefix};
pub use kv::kv_factory;
pub use pki::pki_factory;
pub use ssh::ssh_factory;
pub use totp::totp_factory;
pub use transit::transit_factory;
