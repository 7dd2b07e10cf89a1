//! The SSH secrets engine, after openbao `builtin/logical/ssh`, in its two modes. CA mode: a CA
//! key pair (`config/ca`, generated or imported), its public key served without a token
//! (`public_key`, for sshd's `TrustedUserCAKeys`), roles of `key_type=ca`, and `sign/<role>`
//! that turns a user's or host's public key into an OpenSSH certificate. OTP mode: roles of
//! `key_type=otp`, `creds/<role>` that issues a one-time password for a user at an IP under a
//! lease (revoking the lease deletes it), `verify` (without a token) that spends it, `lookup`
//! of the roles covering an IP, and `config/zeroaddress` (roles allowed any IP). Paths,
//! fields, answers and error texts are OpenBao 2.7.2's.
//!
//! Not served: `issue/<role>` and the multi-issuer paths (`issuers`, `issuer/<ref>`): every
//! signature uses the default issuer, i.e. the last `config/ca` written.
//!
//! Storage, relative to the mount: `issuer/<id>` (a CA key pair), `config/default_issuer`,
//! `roles/<name>`, `config/zeroaddress`, `salt` (the OTP MAC key), `otp/<selector>` (an
//! issued OTP, by its MAC) and `otp-expiry/<hour>/<selector>` (the index tidy reads).

use std::sync::Arc;

use async_trait::async_trait;
use coffer_sdk::framework::{Path, Paths};
use coffer_sdk::{
    Backend, BackendConfig, BackendKind, Error, Factory, Lease, Operation, Request, Response,
    SpecialPaths, Storage,
};
use tokio::sync::Mutex;

mod ca;
mod cidr;
mod keys;
mod otp;
mod roles;
mod sign;
mod zeroaddress;

/// Builds SSH mounts.
pub fn ssh_factory() -> Factory {
    Arc::new(|_config: &BackendConfig| {
        let backend: Arc<dyn Backend> = Arc::new(Ssh::new());
        Ok(backend)
    })
}

/// The SSH engine of one mount; all its state is in the mount's storage.
pub struct Ssh {
    paths: Paths<Handler>,
    /// Makes spending or revoking an OTP (and making the OTP key) one step: see `otp::verify`.
    otp_lock: Mutex<()>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    ConfigCa,
    PublicKey,
    Roles,
    Role,
    Sign,
    Creds,
    Verify,
    Lookup,
    ZeroAddress,
}

impl Ssh {
    /// An SSH backend.
    pub fn new() -> Self {
        let paths = Paths::new()
            .path(
                Path::new("config/ca")
                    .read(Handler::ConfigCa)
                    .write(Handler::ConfigCa)
                    .delete(Handler::ConfigCa),
            )
            .path(Path::new("public_key").read(Handler::PublicKey))
            .path(Path::new("roles").list(Handler::Roles))
            .path(Path::new("roles/").list(Handler::Roles))
            .path(Path::new("roles/{role}").all(Handler::Role))
            .path(Path::new("sign/{role}").write(Handler::Sign))
            .path(Path::new("creds/{role}").write(Handler::Creds))
            .path(Path::new("verify").write(Handler::Verify))
            .path(Path::new("lookup").write(Handler::Lookup))
            .path(
                Path::new("config/zeroaddress")
                    .read(Handler::ZeroAddress)
                    .write(Handler::ZeroAddress)
                    .delete(Handler::ZeroAddress),
            );
        Ssh {
            paths,
            otp_lock: Mutex::new(()),
        }
    }
}

impl Default for Ssh {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Backend for Ssh {
    fn kind(&self) -> BackendKind {
        BackendKind::Secrets
    }

    /// `public_key` and `verify` are served without a token, as OpenBao's
    /// `PathsSpecial.Unauthenticated`: sshd hosts fetch the CA key, and the SSH helper on a
    /// host spends OTPs, with no token of their own.
    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths {
            unauthenticated: vec!["public_key".to_owned(), "verify".to_owned()],
            root: Vec::new(),
        }
    }

    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        let op = req.operation;
        let route = self.paths.route(&req.path, op)?;
        let role = route.captures.get("role").unwrap_or_default();
        if matches!(
            route.handler,
            Handler::Role | Handler::Sign | Handler::Creds
        ) && !valid_name(role)
        {
            return Err(Error::UnsupportedPath(req.path.clone()));
        }
        match (route.handler, op) {
            (Handler::ConfigCa, Operation::Read) => ca::read(storage).await,
            (Handler::ConfigCa, Operation::Delete) => ca::delete(storage).await,
            (Handler::ConfigCa, _) => ca::write(&req, storage).await,
            (Handler::PublicKey, _) => ca::public_key(storage).await,
            (Handler::Roles, _) => roles::list(&req, storage).await,
            (Handler::Role, Operation::Read) => roles::read(role, storage).await,
            (Handler::Role, Operation::Create | Operation::Update) => {
                roles::write(&req, role, storage).await
            }
            (Handler::Role, Operation::Delete) => roles::delete(role, storage).await,
            (Handler::Role, Operation::List) => Err(Error::UnsupportedPath(req.path.clone())),
            (Handler::Role, Operation::Patch) => Err(Error::UnsupportedOperation),
            (Handler::Sign, _) => sign::sign(&req, role, storage).await,
            (Handler::Creds, _) => {
                otp::creds(&req, role, storage, &self.otp_lock, otp::unix_now()).await
            }
            (Handler::Verify, _) => {
                otp::verify(&req, storage, &self.otp_lock, otp::unix_now()).await
            }
            (Handler::Lookup, _) => otp::lookup(&req, storage).await,
            (Handler::ZeroAddress, Operation::Read) => zeroaddress::read(storage).await,
            (Handler::ZeroAddress, Operation::Delete) => zeroaddress::delete(storage).await,
            (Handler::ZeroAddress, _) => zeroaddress::write(&req, storage).await,
        }
    }

    /// The only leases this engine issues are OTPs' (a signed certificate has none, as in
    /// OpenBao): revoking one deletes its OTP. Renewal keeps the default refusal, since an OTP
    /// lease is not renewable.
    async fn revoke(&self, lease: &Lease, storage: &dyn Storage) -> Result<(), Error> {
        otp::revoke(lease, storage, &self.otp_lock).await
    }

    /// Deletes OTPs whose TTL ran out unspent.
    async fn periodic(&self, storage: &dyn Storage) -> Result<(), Error> {
        otp::tidy(storage, otp::unix_now()).await
    }
}

/// OpenBao's `GenericNameWithAtRegex`: `\w(([\w-.@]+)?\w)?`.
fn valid_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match (name.chars().next(), name.chars().last()) {
        (Some(first), Some(last)) if word(first) && word(last) => name
            .chars()
            .all(|c| word(c) || c == '-' || c == '.' || c == '@'),
        _ => false,
    }
}

/// The mount's effective default and maximum lease TTL in seconds (OpenBao's
/// `System().DefaultLeaseTTL()` and `MaxLeaseTTL()`), used when a role sets none. Core fills
/// them in every request; 0 means not set (a request built without core), and then OpenBao's
/// system defaults apply.
fn mount_ttls(req: &Request) -> (i64, i64) {
    let or_system = |secs: u64| match i64::try_from(secs) {
        Ok(0) => SYSTEM_TTL,
        Ok(secs) => secs,
        // Beyond any real tuning; halved so adding it to now cannot overflow.
        Err(_) => i64::MAX / 2,
    };
    (
        or_system(req.default_lease_ttl),
        or_system(req.max_lease_ttl),
    )
}

/// OpenBao's system default and maximum lease TTL: 768h.
const SYSTEM_TTL: i64 = 768 * 3600;

#[cfg(test)]
mod tests;
