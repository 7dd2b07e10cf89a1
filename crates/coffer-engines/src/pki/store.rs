//! What a PKI mount keeps in its storage view, one entry per object, as OpenBao's layout:
//! `issuer/<id>` (certificate and settings), `key/<id>` (PKCS#8, base64), `config/issuers`
//! and `config/keys` (defaults), `config/crl`, `role/<name>`, `certs/<serial>` (DER of every
//! issued certificate), `revoked/<serial>`, `delta-wal/<serial>` (revoked since the last
//! complete CRL, while delta CRLs are on), and `crl/<issuer id>` (the last signed CRLs).
//!
//! It also owns the in-memory cache of loaded signers (parsed CA certificate, chain and loaded
//! key), dropped whenever an issuer, key or default changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use coffer_sdk::{Error, Storage};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::{Zeroize, Zeroizing};

use super::keys::{KeyType, LoadedKey, PrivateKey};

pub(crate) const ISSUER_PREFIX: &str = "issuer/";
pub(crate) const KEY_PREFIX: &str = "key/";
pub(crate) const CERT_PREFIX: &str = "certs/";
pub(crate) const REVOKED_PREFIX: &str = "revoked/";
pub(crate) const CRL_PREFIX: &str = "crl/";
const CONFIG_ISSUERS: &str = "config/issuers";
const CONFIG_KEYS: &str = "config/keys";

/// An issuer: a CA certificate, the key it signs with (if the mount holds it) and settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IssuerEntry {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: String,
    /// Empty when the mount holds no key for this certificate.
    #[serde(default)]
    pub(crate) key_id: String,
    /// PEM.
    pub(crate) certificate: String,
    #[serde(default = "default_leaf_behavior")]
    pub(crate) leaf_not_after_behavior: String,
    #[serde(default = "default_usage")]
    pub(crate) usage: String,
    /// Issuer references that replace the computed chain.
    #[serde(default)]
    pub(crate) manual_chain: Option<Vec<String>>,
}

/// A stored key. The private key is base64 PKCS#8, wiped when the entry drops.
#[derive(Serialize, Deserialize)]
pub(crate) struct KeyEntry {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) key_type: String,
    #[serde(default)]
    pub(crate) key_bits: u32,
    private_key: SecretText,
}

impl KeyEntry {
    /// An entry holding `key`.
    pub(crate) fn new(id: String, name: String, key: &PrivateKey) -> Self {
        KeyEntry {
            id,
            name,
            key_type: key.kind().as_str().to_owned(),
            key_bits: key.bits(),
            private_key: SecretText(
                base64::engine::general_purpose::STANDARD.encode(key.pkcs8_der()),
            ),
        }
    }

    /// The key itself.
    pub(crate) fn private_key(&self) -> Result<PrivateKey, Error> {
        let der = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(self.private_key.0.as_bytes())
                .map_err(|_| Error::internal("stored key is not base64"))?,
        );
        Ok(PrivateKey::from_parts(
            KeyType::parse(&self.key_type)?,
            self.key_bits,
            der,
        ))
    }
}

/// A string holding key material: wiped on drop, never printed.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct SecretText(String);

impl Drop for SecretText {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// `config/issuers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct IssuersConfig {
    #[serde(default)]
    pub(crate) default: String,
    #[serde(default)]
    pub(crate) default_follows_latest_issuer: bool,
}

/// `config/keys`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct KeysConfig {
    #[serde(default)]
    pub(crate) default: String,
}

/// A revocation record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RevokedEntry {
    pub(crate) serial_number: String,
    /// Unix seconds.
    pub(crate) revocation_time: i64,
    pub(crate) revocation_time_rfc3339: String,
    #[serde(default)]
    pub(crate) issuer_id: String,
    /// Unix seconds; tidy drops the record once it is past the safety buffer.
    #[serde(default)]
    pub(crate) not_after: i64,
}

/// The last CRLs signed for one issuer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct CrlEntry {
    /// The CRL Number the next CRL, complete or delta, takes.
    pub(crate) number: u64,
    /// The CRL Number of the complete CRL in `der`: the base of every delta CRL on top of it.
    #[serde(default)]
    pub(crate) last_complete: u64,
    /// base64 DER of the complete CRL.
    pub(crate) der: String,
    /// base64 DER of the latest delta CRL.
    #[serde(default)]
    pub(crate) delta_der: String,
    /// Unix seconds: the complete CRL's nextUpdate, which `auto_rebuild` watches.
    #[serde(default)]
    pub(crate) next_update: i64,
    /// The serials the delta CRL lists, sorted: a scheduled delta rebuild signs a new one only
    /// when the delta WAL differs.
    #[serde(default)]
    pub(crate) delta_serials: Vec<String>,
}

/// A CA ready to sign: its certificate, chain and loaded key.
pub(crate) struct Signer {
    pub(crate) cert_pem: String,
    /// PEMs: this issuer first, then its parents as far as the mount knows them.
    pub(crate) chain: Vec<String>,
    /// Unix seconds.
    pub(crate) not_after: i64,
    pub(crate) leaf_not_after_behavior: String,
    /// The DER of the certificate's subject: the issuer name of its CRLs.
    pub(crate) subject_der: Vec<u8>,
    /// The subject key identifier (or SHA-1 of the public key): its CRLs' authority key id.
    pub(crate) key_id: Vec<u8>,
    pub(crate) issuer: rcgen::Issuer<'static, LoadedKey>,
}

/// Signers by the reference they were asked for, with a generation counter so that a load
/// racing a change never re-inserts stale data.
#[derive(Default)]
pub(crate) struct SignerCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Arc<Signer>>>,
}

impl SignerCache {
    /// Forgets every signer: called after any change of issuers, keys or defaults.
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.lock().clear();
    }

    /// The signer for `reference` (`default`, an id or a name), loaded once.
    pub(crate) async fn get(
        &self,
        storage: &dyn Storage,
        reference: &str,
    ) -> Result<Arc<Signer>, Error> {
        if let Some(signer) = self.lock().get(reference) {
            return Ok(signer.clone());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let entry = resolve_issuer(storage, reference).await?;
        if entry.key_id.is_empty() {
            return Err(Error::invalid(format!(
                "unable to sign with issuer {}: no private key associated with this issuer",
                entry.id
            )));
        }
        let key: KeyEntry = get_json(storage, &format!("{KEY_PREFIX}{}", entry.key_id))
            .await?
            .ok_or_else(|| Error::internal("issuer's key is missing"))?;
        let all = list_issuers(storage).await?;
        let chain = chain_of(&entry, &all)?;
        let der = cert_der(&entry.certificate)?;
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|_| Error::internal("stored issuer certificate does not parse"))?;
        let not_after = cert.validity().not_after.timestamp();
        let key_id = subject_key_id(&cert).unwrap_or_else(|| {
            super::keys::key_identifier(&cert.public_key().subject_public_key.data)
        });
        let issuer =
            rcgen::Issuer::from_ca_cert_der(&der.as_slice().into(), key.private_key()?.signer()?)
                .map_err(|_| Error::internal("stored issuer certificate does not load"))?;
        let signer = Arc::new(Signer {
            cert_pem: entry.certificate.clone(),
            chain,
            not_after,
            leaf_not_after_behavior: entry.leaf_not_after_behavior.clone(),
            subject_der: cert.subject().as_raw().to_vec(),
            key_id,
            issuer,
        });
        let mut entries = self.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            entries.insert(reference.to_owned(), signer.clone());
        }
        Ok(signer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Signer>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads a JSON entry.
pub(crate) async fn get_json<T: DeserializeOwned>(
    storage: &dyn Storage,
    key: &str,
) -> Result<Option<T>, Error> {
    match storage.get(key).await? {
        None => Ok(None),
        Some(mut bytes) => {
            let value = serde_json::from_slice(&bytes).map_err(Error::internal);
            bytes.zeroize();
            value.map(Some)
        }
    }
}

/// Writes a JSON entry.
pub(crate) async fn put_json<T: Serialize>(
    storage: &dyn Storage,
    key: &str,
    value: &T,
) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value).map_err(Error::internal)?;
    storage.put(key, bytes).await
}

pub(crate) async fn issuers_config(storage: &dyn Storage) -> Result<IssuersConfig, Error> {
    Ok(get_json(storage, CONFIG_ISSUERS).await?.unwrap_or_default())
}

pub(crate) async fn put_issuers_config(
    storage: &dyn Storage,
    config: &IssuersConfig,
) -> Result<(), Error> {
    put_json(storage, CONFIG_ISSUERS, config).await
}

pub(crate) async fn keys_config(storage: &dyn Storage) -> Result<KeysConfig, Error> {
    Ok(get_json(storage, CONFIG_KEYS).await?.unwrap_or_default())
}

pub(crate) async fn put_keys_config(
    storage: &dyn Storage,
    config: &KeysConfig,
) -> Result<(), Error> {
    put_json(storage, CONFIG_KEYS, config).await
}

/// Every issuer of the mount, in id order.
pub(crate) async fn list_issuers(storage: &dyn Storage) -> Result<Vec<IssuerEntry>, Error> {
    let mut out = Vec::new();
    for id in storage.list(ISSUER_PREFIX).await? {
        if let Some(entry) = get_json(storage, &format!("{ISSUER_PREFIX}{id}")).await? {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Every key entry of the mount, in id order.
pub(crate) async fn list_keys(storage: &dyn Storage) -> Result<Vec<KeyEntry>, Error> {
    let mut out = Vec::new();
    for id in storage.list(KEY_PREFIX).await? {
        if let Some(entry) = get_json(storage, &format!("{KEY_PREFIX}{id}")).await? {
            out.push(entry);
        }
    }
    Ok(out)
}

/// The issuer `reference` names: `default`, an id, or a name (OpenBao's `resolveIssuerReference`).
pub(crate) async fn resolve_issuer(
    storage: &dyn Storage,
    reference: &str,
) -> Result<IssuerEntry, Error> {
    let id = if reference == "default" {
        let config = issuers_config(storage).await?;
        if config.default.is_empty() {
            return Err(Error::invalid("no default issuer currently configured"));
        }
        config.default
    } else {
        reference.to_owned()
    };
    if let Some(entry) = get_json(storage, &format!("{ISSUER_PREFIX}{id}")).await? {
        return Ok(entry);
    }
    list_issuers(storage)
        .await?
        .into_iter()
        .find(|entry| !entry.name.is_empty() && entry.name == reference)
        .ok_or_else(|| {
            Error::invalid(format!(
                "unable to find PKI issuer for reference: {reference}"
            ))
        })
}

/// The key `reference` names: `default`, an id, or a name.
pub(crate) async fn resolve_key(storage: &dyn Storage, reference: &str) -> Result<KeyEntry, Error> {
    let id = if reference == "default" {
        let config = keys_config(storage).await?;
        if config.default.is_empty() {
            return Err(Error::invalid("no default key currently configured"));
        }
        config.default
    } else {
        reference.to_owned()
    };
    if let Some(entry) = get_json(storage, &format!("{KEY_PREFIX}{id}")).await? {
        return Ok(entry);
    }
    list_keys(storage)
        .await?
        .into_iter()
        .find(|entry| !entry.name.is_empty() && entry.name == reference)
        .ok_or_else(|| Error::invalid(format!("unable to find PKI key for reference: {reference}")))
}

/// The DER of the first certificate in `pem`.
pub(crate) fn cert_der(pem: &str) -> Result<Vec<u8>, Error> {
    super::pem::blocks(pem)?
        .into_iter()
        .find(|b| b.label == "CERTIFICATE")
        .map(|b| b.der.to_vec())
        .ok_or_else(|| Error::internal("stored certificate is not PEM"))
}

/// The chain of `entry` as PEMs: the issuer itself, then each parent found among `all` by
/// subject/issuer name and key identifiers, stopping at a self-signed certificate. A manual
/// chain, when set, replaces the search.
pub(crate) fn chain_of(entry: &IssuerEntry, all: &[IssuerEntry]) -> Result<Vec<String>, Error> {
    if let Some(manual) = &entry.manual_chain {
        let mut out = Vec::new();
        for reference in manual {
            let found = all
                .iter()
                .find(|e| &e.id == reference || (!e.name.is_empty() && &e.name == reference));
            if let Some(found) = found {
                out.push(found.certificate.clone());
            }
        }
        return Ok(out);
    }
    let parsed: Vec<(&IssuerEntry, Vec<u8>)> = all
        .iter()
        .filter_map(|e| cert_der(&e.certificate).ok().map(|der| (e, der)))
        .collect();
    let names = |der: &[u8]| -> Option<Names> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        Some((
            cert.subject().as_raw().to_vec(),
            cert.issuer().as_raw().to_vec(),
            subject_key_id(&cert),
            authority_key_id(&cert),
        ))
    };
    let mut out = vec![entry.certificate.clone()];
    let mut current = cert_der(&entry.certificate)?;
    let mut seen = vec![entry.id.clone()];
    while out.len() < 16 {
        let Some((subject, issuer, _, akid)) = names(&current) else {
            break;
        };
        if subject == issuer {
            break;
        }
        let parent = parsed.iter().find(|(e, der)| {
            !seen.contains(&e.id)
                && names(der).is_some_and(|(s, _, skid, _)| {
                    s == issuer && (akid.is_none() || skid.is_none() || skid == akid)
                })
        });
        let Some((parent, der)) = parent else {
            break;
        };
        seen.push(parent.id.clone());
        out.push(parent.certificate.clone());
        current = der.clone();
    }
    Ok(out)
}

/// Subject, issuer, subject key id and authority key id of a certificate.
type Names = (Vec<u8>, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);

/// The subject key identifier extension's value.
pub(crate) fn subject_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })
}

fn authority_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(id) => {
                id.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
}

fn default_leaf_behavior() -> String {
    "err".to_owned()
}

fn default_usage() -> String {
    "crl-signing,issuing-certificates,ocsp-signing,read-only".to_owned()
}

/// A fresh id in OpenBao's UUID form.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
