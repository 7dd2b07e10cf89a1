//! The pki secrets engine (mount type `pki`): root and intermediate CAs, several issuers and
//! keys per mount, roles, `issue`/`sign`, revocation with CRLs, and tidy, with OpenBao 2.7's
//! paths, fields and answers (`builtin/logical/pki`).
//!
//! Certificates and CSRs are built and signed by rcgen on aws-lc-rs, CRLs (complete and delta)
//! assembled with x509-cert; CSRs and imported bundles are parsed with x509-parser. Every
//! object is one storage entry (see `store.rs`); the only state in memory is caches of loaded
//! signers and parsed roles, the CRL builder's lock, and the last tidy's status.
//! Private keys are wiped on drop and never appear in errors, logs or `Debug`.
//!
//! Not here: ACME, OCSP, `config/urls`, EST/CMPv2, managed keys, and P-224 keys (no maintained
//! Rust signer for certificates has P-224). A role with `generate_lease` gives each certificate
//! a lease (internal data: its serial); revoking the lease revokes the certificate.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use coffer_sdk::framework::{Path, Paths};
use coffer_sdk::{
    Backend, BackendConfig, BackendKind, Error, Factory, Lease, Operation, Request, Response,
    SpecialPaths, Storage,
};
use serde_json::{Map, Value};

mod ca;
mod crl;
mod issue;
mod keys;
mod pem;
mod roles;
mod store;

use crl::Form;

/// OpenBao's system default and max lease TTL: 768h, used when a request does not carry the
/// mount's own.
const SYSTEM_TTL: i64 = 768 * 3600;

/// The mount's effective default and max lease TTL in seconds (OpenBao's
/// `System().DefaultLeaseTTL()` and `MaxLeaseTTL()`): a certificate's TTL when neither request
/// nor role sets one, and its cap when the role sets none. Core fills them in every request;
/// 0 means not set (a request built without core), and then the system's 768h applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MountTtls {
    pub(crate) default: i64,
    pub(crate) max: i64,
}

impl MountTtls {
    pub(crate) fn of(req: &Request) -> Self {
        let or_system = |secs: u64| match i64::try_from(secs) {
            Ok(0) => SYSTEM_TTL,
            Ok(secs) => secs,
            // Beyond any real tuning; halved so adding it to now cannot overflow.
            Err(_) => i64::MAX / 2,
        };
        MountTtls {
            default: or_system(req.default_lease_ttl),
            max: or_system(req.max_lease_ttl),
        }
    }
}

/// Builds pki mounts.
pub fn pki_factory() -> Factory {
    Arc::new(|_config: &BackendConfig| {
        let backend: Arc<dyn Backend> = Arc::new(Pki::new());
        Ok(backend)
    })
}

/// One pki mount.
pub struct Pki {
    paths: Paths<H>,
    signers: store::SignerCache,
    roles: roles::RoleCache,
    crl: crl::CrlBuilder,
    tidy_status: Mutex<Option<Map<String, Value>>>,
}

/// The handlers of the path table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum H {
    GenerateRoot,
    GenerateIntermediate,
    SetSigned,
    SignIntermediate,
    ImportBundle,
    Issuers,
    Issuer,
    IssuerJson,
    IssuerIssue,
    IssuerSign,
    IssuerSignIntermediate,
    IssuerCrl,
    Keys,
    Key,
    ConfigIssuers,
    ConfigKeys,
    ConfigCrl,
    Roles,
    Role,
    Issue,
    Sign,
    Revoke,
    Crl,
    CrlPem,
    DeltaCrl,
    DeltaCrlPem,
    CrlRotate,
    DeltaCrlRotate,
    Cert,
    Certs,
    RevokedCerts,
    Ca,
    CaPem,
    CaChain,
    Tidy,
    TidyStatus,
}

impl Pki {
    /// A pki backend with OpenBao's path table.
    pub fn new() -> Self {
        let paths = Paths::new()
            .path(Path::new("root/generate/{exported}").write(H::GenerateRoot))
            .path(Path::new("issuers/generate/root/{exported}").write(H::GenerateRoot))
            .path(Path::new("root/sign-intermediate").write(H::SignIntermediate))
            .path(Path::new("intermediate/generate/{exported}").write(H::GenerateIntermediate))
            .path(
                Path::new("issuers/generate/intermediate/{exported}")
                    .write(H::GenerateIntermediate),
            )
            .path(Path::new("intermediate/set-signed").write(H::SetSigned))
            .path(Path::new("config/ca").write(H::ImportBundle))
            .path(Path::new("issuers/import/bundle").write(H::ImportBundle))
            .path(Path::new("issuers/import/cert").write(H::ImportBundle))
            .path(Path::new("issuers").list(H::Issuers))
            .path(Path::new("issuers/").list(H::Issuers))
            .path(Path::new("issuer/{ref}/json").read(H::IssuerJson))
            .path(Path::new("issuer/{ref}/issue/{role}").write(H::IssuerIssue))
            .path(Path::new("issuer/{ref}/sign/{role}").write(H::IssuerSign))
            .path(Path::new("issuer/{ref}/sign-intermediate").write(H::IssuerSignIntermediate))
            .path(Path::new("issuer/{ref}/crl{form:*}").read(H::IssuerCrl))
            .path(
                Path::new("issuer/{ref}")
                    .read(H::Issuer)
                    .write(H::Issuer)
                    .patch(H::Issuer)
                    .delete(H::Issuer),
            )
            .path(Path::new("keys").list(H::Keys))
            .path(Path::new("keys/").list(H::Keys))
            .path(
                Path::new("key/{ref}")
                    .read(H::Key)
                    .write(H::Key)
                    .delete(H::Key),
            )
            .path(
                Path::new("config/issuers")
                    .read(H::ConfigIssuers)
                    .write(H::ConfigIssuers),
            )
            .path(
                Path::new("config/keys")
                    .read(H::ConfigKeys)
                    .write(H::ConfigKeys),
            )
            .path(
                Path::new("config/crl")
                    .read(H::ConfigCrl)
                    .write(H::ConfigCrl),
            )
            .path(Path::new("roles").list(H::Roles))
            .path(Path::new("roles/").list(H::Roles))
            .path(
                Path::new("roles/{name}")
                    .read(H::Role)
                    .write(H::Role)
                    .delete(H::Role),
            )
            .path(Path::new("issue/{role}").write(H::Issue))
            .path(Path::new("sign/{role}").write(H::Sign))
            .path(Path::new("revoke").write(H::Revoke))
            .path(Path::new("crl").read(H::Crl))
            .path(Path::new("crl/pem").read(H::CrlPem))
            .path(Path::new("crl/delta").read(H::DeltaCrl))
            .path(Path::new("crl/delta/pem").read(H::DeltaCrlPem))
            .path(Path::new("crl/rotate").read(H::CrlRotate))
            .path(Path::new("crl/rotate-delta").read(H::DeltaCrlRotate))
            .path(Path::new("cert/{serial}").read(H::Cert))
            .path(Path::new("certs").list(H::Certs))
            .path(Path::new("certs/").list(H::Certs))
            .path(Path::new("certs/revoked").list(H::RevokedCerts))
            .path(Path::new("certs/revoked/").list(H::RevokedCerts))
            .path(Path::new("ca").read(H::Ca))
            .path(Path::new("ca/pem").read(H::CaPem))
            .path(Path::new("ca_chain").read(H::CaChain))
            .path(Path::new("tidy").write(H::Tidy))
            .path(Path::new("tidy-status").read(H::TidyStatus));
        Pki {
            paths,
            signers: store::SignerCache::default(),
            roles: roles::RoleCache::default(),
            crl: crl::CrlBuilder::default(),
            tidy_status: Mutex::new(None),
        }
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Backend for Pki {
    fn kind(&self) -> BackendKind {
        BackendKind::Secrets
    }

    /// OpenBao serves CA certificates and CRLs without a token.
    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths {
            unauthenticated: [
                "cert/*",
                "ca/pem",
                "ca_chain",
                "ca",
                "crl/delta",
                "crl/delta/pem",
                "crl/pem",
                "crl",
                "issuer/*",
                "issuers/",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            root: Vec::new(),
        }
    }

    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        let route = self.paths.route(&req.path, req.operation)?;
        let cap = |name: &str| route.captures.get(name).unwrap_or_default();
        let op = req.operation;
        match route.handler {
            H::GenerateRoot => ca::generate_root(self, &req, storage, cap("exported")).await,
            H::GenerateIntermediate => {
                ca::generate_intermediate(self, &req, storage, cap("exported")).await
            }
            H::SetSigned => ca::set_signed(self, &req, storage).await,
            H::SignIntermediate => issue::sign_intermediate(self, &req, storage, None).await,
            H::ImportBundle => ca::import_bundle(self, &req, storage).await,
            H::Issuers => ca::list_issuers_handler(storage).await,
            H::Issuer => match op {
                Operation::Read => ca::read_issuer(storage, cap("ref")).await,
                Operation::Delete => ca::delete_issuer(self, storage, cap("ref")).await,
                _ => ca::update_issuer(self, &req, storage, cap("ref")).await,
            },
            H::IssuerJson => ca::read_issuer_json(storage, cap("ref")).await,
            H::IssuerIssue => {
                issue::issue(self, &req, storage, cap("role"), Some(cap("ref"))).await
            }
            H::IssuerSign => issue::sign(self, &req, storage, cap("role"), Some(cap("ref"))).await,
            H::IssuerSignIntermediate => {
                issue::sign_intermediate(self, &req, storage, Some(cap("ref"))).await
            }
            H::IssuerCrl => {
                let (delta, form) = match cap("form") {
                    "" | "/json" => (false, Form::Json),
                    "/der" => (false, Form::Der),
                    "/pem" => (false, Form::Pem),
                    "/delta" | "/delta/json" => (true, Form::Json),
                    "/delta/der" => (true, Form::Der),
                    "/delta/pem" => (true, Form::Pem),
                    _ => return Err(Error::UnsupportedPath(req.path.clone())),
                };
                crl::fetch_crl(storage, cap("ref"), delta, form).await
            }
            H::Keys => ca::list_keys_handler(storage).await,
            H::Key => match op {
                Operation::Read => ca::read_key(storage, cap("ref")).await,
                Operation::Delete => ca::delete_key(self, storage, cap("ref")).await,
                _ => ca::update_key(self, &req, storage, cap("ref")).await,
            },
            H::ConfigIssuers => match op {
                Operation::Read => ca::read_issuers_config(storage).await,
                _ => ca::write_issuers_config(self, &req, storage).await,
            },
            H::ConfigKeys => match op {
                Operation::Read => ca::read_keys_config(storage).await,
                _ => ca::write_keys_config(self, &req, storage).await,
            },
            H::ConfigCrl => match op {
                Operation::Read => crl::read_config(storage).await,
                _ => crl::write_config(self, &req, storage).await,
            },
            H::Roles => {
                let names = storage.list(roles::ROLE_PREFIX).await?;
                Ok(roles::list_response(names))
            }
            H::Role => self.role(&req, storage, cap("name")).await,
            H::Issue => issue::issue(self, &req, storage, cap("role"), None).await,
            H::Sign => issue::sign(self, &req, storage, cap("role"), None).await,
            H::Revoke => crl::revoke(self, &req, storage).await,
            H::Crl => crl::fetch_crl(storage, "default", false, Form::Der).await,
            H::CrlPem => crl::fetch_crl(storage, "default", false, Form::Pem).await,
            H::DeltaCrl => crl::fetch_crl(storage, "default", true, Form::Der).await,
            H::DeltaCrlPem => crl::fetch_crl(storage, "default", true, Form::Pem).await,
            H::CrlRotate => crl::rotate(self, storage, false).await,
            H::DeltaCrlRotate => crl::rotate(self, storage, true).await,
            H::Cert => crl::read_cert(storage, cap("serial")).await,
            H::Certs => crl::list_certs(storage, store::CERT_PREFIX).await,
            H::RevokedCerts => crl::list_certs(storage, store::REVOKED_PREFIX).await,
            H::Ca => crl::fetch_ca(storage, Form::Der).await,
            H::CaPem => crl::fetch_ca(storage, Form::Pem).await,
            H::CaChain => crl::fetch_chain(storage, false).await,
            H::Tidy => crl::tidy(self, &req, storage).await,
            H::TidyStatus => Ok(crl::tidy_status(self)),
        }
    }

    async fn invalidate(&self, key: &str) {
        if key.starts_with(store::ISSUER_PREFIX)
            || key.starts_with(store::KEY_PREFIX)
            || key.starts_with("config/")
        {
            self.signers.clear();
        }
        if key.starts_with(roles::ROLE_PREFIX) {
            self.roles.clear();
        }
    }

    /// Scheduled CRL rebuilds: `auto_rebuild` and `delta_rebuild_interval` of `config/crl`.
    async fn periodic(&self, storage: &dyn Storage) -> Result<(), Error> {
        crl::periodic(self, storage).await
    }

    /// The lease of a certificate from a `generate_lease` role: revoking it revokes the serial,
    /// as OpenBao's `secretCredsRevoke`. A certificate no longer stored (tidied, or from a
    /// `no_store` role) needs nothing more, and a CA certificate is never revoked this way.
    async fn revoke(&self, lease: &Lease, storage: &dyn Storage) -> Result<(), Error> {
        let serial = lease
            .internal_data
            .get("serial_number")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("could not find serial in internal secret data"))?;
        let stored = format!("{}{}", store::CERT_PREFIX, serial_storage_key(serial));
        let Some(der) = storage.get(&stored).await? else {
            return Ok(());
        };
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|_| Error::internal("stored certificate does not parse"))?;
        if cert.is_ca() {
            return Ok(());
        }
        let mut req = Request::new(Operation::Update, "revoke");
        req.data
            .insert("serial_number".to_owned(), Value::from(serial));
        crl::revoke(self, &req, storage).await.map(|_| ())
    }
}

impl Pki {
    async fn role(
        &self,
        req: &Request,
        storage: &dyn Storage,
        name: &str,
    ) -> Result<Option<Response>, Error> {
        roles::check_role_name(name)?;
        match req.operation {
            Operation::Read => match roles::get_role(storage, name).await? {
                Some(role) => role.to_response().map(Some),
                None => Ok(None),
            },
            Operation::Delete => {
                storage
                    .delete(&format!("{}{name}", roles::ROLE_PREFIX))
                    .await?;
                self.roles.clear();
                Ok(None)
            }
            _ => {
                let role =
                    roles::Role::from_fields(&coffer_sdk::framework::Fields::new(&req.data))?;
                roles::put_role(storage, name, &role).await?;
                self.roles.clear();
                let resp = role.to_response()?;
                Ok(Some(if role.generate_lease {
                    // OpenBao's warning: every certificate then costs a lease in core.
                    resp.warn("it is encouraged to disable generate_lease and rely on PKI's native capabilities when possible; this option can cause instance-wide issues with large numbers of issued certificates")
                } else {
                    resp
                }))
            }
        }
    }
}

/// Bytes as OpenBao prints serials and key ids: lowercase hex pairs joined by colons.
fn colon_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// A serial as a client may write it (colons or dashes, any case) in OpenBao's colon form.
fn normalize_serial(serial: &str) -> String {
    serial.trim().to_ascii_lowercase().replace('-', ":")
}

/// The storage key of a serial: dashes instead of colons, as OpenBao stores them.
fn serial_storage_key(serial: &str) -> String {
    normalize_serial(serial).replace(':', "-")
}

/// Go's `time.Duration` printing for warnings (`768h0m0s`).
fn go_duration(secs: i64) -> String {
    crate::time::go_duration(secs)
}

#[cfg(test)]
mod tests;
