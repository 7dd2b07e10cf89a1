//! `config/ca` and `public_key`, after openbao `path_config_ca.go`, `path_issuers.go` and
//! `storage.go`. OpenBao 2.7 keeps every CA it was given as an issuer and points a default at
//! the latest `config/ca` write; coffer stores them the same way, one entry per issuer
//! (`issuer/<id>`) plus the default pointer (`config/default_issuer`), so `DELETE config/ca`
//! reports how many it purged, as OpenBao does.

use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage, StorageOp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use ssh_key::PrivateKey;
use zeroize::{Zeroize, Zeroizing};

use super::keys;

/// One CA key pair as stored. The private half is OpenSSH PEM, wiped on drop.
#[derive(Serialize, Deserialize)]
pub(crate) struct Issuer {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) public_key: String,
    private_key: String,
}

impl Issuer {
    /// The private key, parsed.
    pub(crate) fn private_key(&self) -> Result<PrivateKey, Error> {
        PrivateKey::from_openssh(&self.private_key).map_err(Error::internal)
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.private_key.zeroize();
    }
}

#[derive(Serialize, Deserialize, Default)]
struct DefaultIssuer {
    default: String,
}

/// `POST config/ca`: generate a key pair (the default) or import `private_key` + `public_key`.
pub(crate) async fn write(req: &Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let f = Fields::new(&req.data).upfront(true);
    let public_key = f.string("public_key")?.unwrap_or_default();
    let private_key = Zeroizing::new(f.string("private_key")?.unwrap_or_default());
    let generate_raw = f.bool("generate_signing_key")?;
    let key_type = f.string("key_type")?.unwrap_or_else(|| "ssh-rsa".into());
    let key_bits = f.int("key_bits")?.unwrap_or(0);
    f.string("issuer_name")?;

    // OpenBao's handleKeyGeneration, case by case.
    let generate = match generate_raw {
        Some(true) => {
            if !public_key.is_empty() || !private_key.is_empty() {
                return Err(Error::invalid(
                    "public_key and private_key must not be set when generate_signing_key is set to true",
                ));
            }
            true
        }
        _ if !public_key.is_empty() && !private_key.is_empty() => false,
        None if public_key.is_empty() && private_key.is_empty() => true,
        Some(false) if public_key.is_empty() && private_key.is_empty() => {
            return Err(Error::invalid("missing public_key"));
        }
        _ => {
            return Err(Error::invalid(
                "only one of public_key and private_key set; both must be set to use, or both must be blank to auto-generate",
            ))
        }
    };

    let (public_key, private) = if generate {
        // RSA generation takes seconds: off the async workers.
        let generated = tokio::task::spawn_blocking(move || keys::generate(&key_type, key_bits))
            .await
            .map_err(Error::internal)??;
        (generated.public_key, generated.private_key)
    } else {
        let parsed_public = keys::parse_public(&public_key).map_err(|e| {
            Error::invalid(format!("could not parse public_key provided value: {e}"))
        })?;
        let private = keys::parse_private(&private_key).map_err(|e| {
            Error::invalid(format!("could not parse private_key provided value: {e}"))
        })?;
        // OpenBao stores a mismatched pair and then signs certificates nobody can verify;
        // coffer refuses it.
        if private.public_key().key_data() != parsed_public.key_data() {
            return Err(Error::invalid("public_key does not match private_key"));
        }
        // The same key already imported: OpenBao answers the existing issuer with a warning.
        for issuer in list_issuers(storage).await? {
            let known = keys::parse_public(&issuer.public_key).map_err(Error::internal)?;
            if known.key_data() == parsed_public.key_data() {
                let resp = Response::with_data(issuer_data(&issuer)).warn(
                    "An issuer with the provided public key already exists, returning the existing issuer",
                );
                return Ok(Some(resp));
            }
        }
        (public_key, private)
    };

    let issuer = Issuer {
        id: uuid::Uuid::new_v4().to_string(),
        name: String::new(),
        public_key,
        private_key: keys::to_openssh(&private)?.to_string(),
    };
    let bytes = Zeroizing::new(serde_json::to_vec(&issuer).map_err(Error::internal)?);
    let pointer = serde_json::to_vec(&DefaultIssuer {
        default: issuer.id.clone(),
    })
    .map_err(Error::internal)?;
    storage
        .apply(vec![
            StorageOp::Put(format!("{ISSUER_PREFIX}{}", issuer.id), bytes.to_vec()),
            StorageOp::Put(DEFAULT_ISSUER.into(), pointer),
        ])
        .await?;
    Ok(Some(Response::with_data(issuer_data(&issuer))))
}

/// `GET config/ca`: the default issuer's id, name and public key.
pub(crate) async fn read(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let issuer = default_issuer(storage).await?;
    Ok(Some(Response::with_data(issuer_data(&issuer))))
}

/// `DELETE config/ca`: every issuer goes, with OpenBao's warning when there were any.
pub(crate) async fn delete(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let ids = storage.list(ISSUER_PREFIX).await?;
    if ids.is_empty() {
        storage.delete(DEFAULT_ISSUER).await?;
        return Ok(None);
    }
    let mut ops: Vec<StorageOp> = ids
        .iter()
        .map(|id| StorageOp::Delete(format!("{ISSUER_PREFIX}{id}")))
        .collect();
    ops.push(StorageOp::Delete(DEFAULT_ISSUER.into()));
    storage.apply(ops).await?;
    let mut resp = Response::default();
    resp.warnings.push(format!(
        "Deleted {} issuers, including default issuer if configured.",
        ids.len()
    ));
    Ok(Some(resp))
}

/// `GET public_key` (unauthenticated): the default CA's public key as `text/plain`, in the
/// raw-response fields OpenBao's HTTP layer serves as the body.
pub(crate) async fn public_key(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let issuer = default_issuer(storage).await?;
    Ok(Some(Response::raw(
        "text/plain",
        issuer.public_key.as_bytes(),
    )))
}

/// The default issuer, or OpenBao's 400 when none is configured.
pub(crate) async fn default_issuer(storage: &dyn Storage) -> Result<Issuer, Error> {
    let no_default = || Error::invalid("no default issuer currently configured");
    let pointer: DefaultIssuer = match storage.get(DEFAULT_ISSUER).await? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(Error::internal)?,
        None => return Err(no_default()),
    };
    if pointer.default.is_empty() {
        return Err(no_default());
    }
    load_issuer(storage, &pointer.default)
        .await?
        .ok_or_else(|| {
            Error::invalid(format!(
                "ssh issuer id '{}' does not exist",
                pointer.default
            ))
        })
}

fn issuer_data(issuer: &Issuer) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("issuer_id".into(), json!(issuer.id));
    data.insert("issuer_name".into(), json!(issuer.name));
    data.insert("public_key".into(), json!(issuer.public_key));
    data
}

async fn load_issuer(storage: &dyn Storage, id: &str) -> Result<Option<Issuer>, Error> {
    let Some(bytes) = storage.get(&format!("{ISSUER_PREFIX}{id}")).await? else {
        return Ok(None);
    };
    let bytes = Zeroizing::new(bytes);
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::internal(format!("decoding SSH issuer: {:?}", e.classify())))
}

async fn list_issuers(storage: &dyn Storage) -> Result<Vec<Issuer>, Error> {
    let mut out = Vec::new();
    for id in storage.list(ISSUER_PREFIX).await? {
        if let Some(issuer) = load_issuer(storage, &id).await? {
            out.push(issuer);
        }
    }
    Ok(out)
}

const ISSUER_PREFIX: &str = "issuer/";
const DEFAULT_ISSUER: &str = "config/default_issuer";
