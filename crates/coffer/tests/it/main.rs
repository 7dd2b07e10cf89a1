//! The integration tests of the coffer binary: one test binary (fast to link, one harness),
//! a module per area. Every test starts the real `coffer` on a free loopback port and speaks
//! to it as a client would; `server::TestServer` is the shared harness.

mod audit;
mod auth;
mod durability;
mod seal;
mod server;
mod ssh;
mod totp;
