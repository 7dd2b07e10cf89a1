//! Auth methods, each one `Backend` behind a `Factory`: userpass, approle and jwt/oidc. A login
//! answers a `Response` whose `auth` says who logged in and what the token may do; core mints
//! the token (adds `default`, caps the TTL, fills `client_token` and `accessor`).
//!
//! This crate sees only `coffer-sdk`: a request relative to the mount and the mount's encrypted
//! storage view. It never creates tokens, never reaches the barrier, the token store or HTTP.

pub mod approle;
pub mod jwt;
pub mod userpass;

mod clock;
mod fields;
mod lockout;
mod token_params;

#[cfg(test)]
mod testing;

pub use approle::approle_factory;
pub use jwt::jwt_factory;
pub use userpass::userpass_factory;
