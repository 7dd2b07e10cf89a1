//! The SSH secrets engine in CA mode, after openbao `builtin/logical/ssh`: a CA key pair
//! (`config/ca`, generated or imported), its public key served without a token
//! (`public_key`, for sshd's `TrustedUserCAKeys`), roles of `key_type=ca`, and `sign/<role>`
//! that turns a user's or host's public key into an OpenSSH certificate. Paths, fields,
//! answers and error texts are OpenBao 2.7.2's.
//!
//! Not served: OpenBao's deprecated OTP mode (`creds`, `verify`, `lookup`, OTP roles),
//! `issue/<role>`, and the multi-issuer paths (`issuers`, `issuer/<ref>`): every signature
//! uses the default issuer, i.e. the last `config/ca` written.
//!
//! Storage, relative to the mount: `issuer/<id>` (a CA key pair), `config/default_issuer`,
//! `roles/<name>`.

use std::sync::Arc;

use async_trait::async_trait;
use coffer_sdk::framework::{Path, Paths};
use coffer_sdk::{
    Backend, BackendConfig, BackendKind, Error, Factory, Operation, Request, Response,
    SpecialPaths, Storage,
};

mod ca;
mod keys;
mod roles;
mod sign;

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    ConfigCa,
    PublicKey,
    Roles,
    Role,
    Sign,
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
            .path(Path::new("sign/{role}").write(Handler::Sign));
        Ssh { paths }
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

    /// `public_key` is read without a token, as OpenBao's `PathsSpecial.Unauthenticated`.
    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths {
            unauthenticated: vec!["public_key".to_owned()],
            root: Vec::new(),
        }
    }

    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        let op = req.operation;
        let route = self.paths.route(&req.path, op)?;
        let role = route.captures.get("role").unwrap_or_default();
        if matches!(route.handler, Handler::Role | Handler::Sign) && !valid_name(role) {
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
        }
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
