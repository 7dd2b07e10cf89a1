//! The integration tests of the coffer binary: one test binary (fast to link, one harness),
//! a module per area. Every test starts the real `coffer` (`server::TestServer`) on a free
//! loopback port and speaks HTTP to it, as a client would.

mod audit;
mod clients;
mod durability;
mod kv;
mod limits;
mod pki;
mod rotate;
mod seal;
mod server;
mod tls;
mod tokens;
