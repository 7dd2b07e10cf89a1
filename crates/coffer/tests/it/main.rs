//! The integration tests of the coffer binary: one test binary (fast to link, one harness),
//! a module per area. Every test starts the real `coffer` on a free loopback port and speaks
//! to it as a client would; `server::TestServer` is the shared harness.

mod at_rest;
mod audit;
mod auth;
mod clients;
mod durability;
mod kv;
mod leases;
mod limits;
mod pki;
mod rotate;
mod scan;
mod seal;
mod server;
mod ssh;
mod tls;
mod tokens;
mod totp;
mod transit;
