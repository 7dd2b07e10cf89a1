//! Bring your own key: `wrapping_key`, `keys/<name>/import` and `keys/<name>/import_version`,
//! and the way out, `byok-export/<destination>/<source>` (openbao `path_wrapping_key.go`,
//! `path_import.go`, `path_byok.go`; `keysutil/policy.go` `ImportPublicOrPrivate`,
//! `KeyVersionCanBeUpdated`, `ImportPrivateKeyForVersion`, `parseFromKey`, `WrapKey`;
//! `keysutil/util.go` for the two odd PKCS#8 forms it also reads).
//!
//! The wire format is OpenBao's and Vault's (PKCS#11 `CKM_RSA_AES_KEY_WRAP`): base64 of
//! `RSA-OAEP(wrapping key, hash_function, ephemeral AES-256 key)` — 512 bytes, the wrapping
//! key being RSA-4096 — followed by `AES-KWP(ephemeral key, target key)` (RFC 5649). The target
//! is the raw key of a symmetric or hmac key, PKCS#8 DER for an asymmetric one. Asymmetric keys
//! may also arrive as a PEM public key only (verify or encrypt only) and get their private part
//! later through `import_version`.
//!
//! The wrapping key is a transit key of the mount named `import/wrapping-key` (so `keys/` lists
//! `import/`, as OpenBao's does), created on first use and never rotated. `byok-export` wraps
//! an exportable key the same way for an RSA key of the mount, typically another server's
//! wrapping key imported as a public key, so keys move between servers without ever being in
//! the clear outside them.
//!
//! OpenBao answers most refusals here with a 500 although the client is at fault; coffer keeps
//! OpenBao's texts and answers 400.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage};
use rand::rngs::OsRng;
use rsa::pkcs8::der::asn1::ObjectIdentifier;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, PrivateKeyInfo};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::key::Key;
use super::keys::{export_key, get_or_create, pem_encode, validate_name};
use super::policy::{
    random_bytes, BigDec, Bytes, GoRsaPublicKey, KeyEntry, KeyType, Policy, HMAC_MAX_KEY_SIZE,
    HMAC_MIN_KEY_SIZE, SOFT_DELETED,
};
use super::{decode_b64, load_policy, Transit};
use crate::time::{now_nanos, rfc3339_nanos};

/// GET `wrapping_key`: the PEM public key to wrap imported keys with.
pub(super) async fn read_wrapping_key(
    transit: &Transit,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let key = wrapping_key(transit, storage).await?;
    let private = key
        .rsa_private_key(key.policy.latest_version)
        .ok_or_else(|| Error::internal("wrapping key has no rsa key"))?;
    let der = private
        .to_public_key()
        .to_public_key_der()
        .map_err(|_| Error::internal("error marshaling RSA public key"))?;
    let mut data = Map::new();
    data.insert(
        "public_key".to_owned(),
        Value::String(pem_encode("PUBLIC KEY", der.as_bytes())),
    );
    Ok(Some(Response::with_data(data)))
}

/// POST `keys/<name>/import`: a new key from wrapped key material or a public key.
pub(super) async fn import(
    transit: &Transit,
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data).upfront(true);
    let type_name = fields
        .string("type")?
        .unwrap_or_else(|| "aes256-gcm96".to_owned());
    let source = Source::from_fields(&fields)?;
    let derived = fields.bool("derived")?.unwrap_or(false);
    let exportable = fields.bool("exportable")?.unwrap_or(false);
    let allow_plaintext_backup = fields.bool("allow_plaintext_backup")?.unwrap_or(false);
    let allow_rotation = fields.bool("allow_rotation")?.unwrap_or(false);
    let auto_rotate = fields
        .duration_secs("auto_rotate_period", false)?
        .unwrap_or(0);
    // OpenBao refuses the field whatever its value.
    if fields.raw("convergent_encryption").is_some() {
        return Err(Error::invalid(
            "import cannot be used on keys with convergent encryption enabled",
        ));
    }
    if auto_rotate > 0 && !allow_rotation {
        return Err(Error::invalid(
            "allow_rotation must be set to true if auto-rotation is enabled",
        ));
    }
    let key_type = KeyType::from_name(&type_name.to_lowercase())
        .ok_or_else(|| Error::invalid(format!("unknown key type: {type_name}")))?;
    validate_name(name)?;
    if transit.key(storage, name).await?.is_some() {
        return Err(Error::invalid(EXISTING_KEY));
    }
    let material = source.material(transit, storage, key_type).await?;

    let _guard = transit.lock(name).await;
    if load_policy(storage, name).await?.is_some() {
        return Err(Error::invalid(EXISTING_KEY));
    }
    let mut policy = Policy {
        name: name.to_owned(),
        key_type: key_type.code(),
        derived,
        exportable,
        allow_plaintext_backup,
        auto_rotate_period: auto_rotate.saturating_mul(1_000_000_000),
        allow_imported_key_rotation: allow_rotation,
        imported: true,
        ..Policy::default()
    };
    let is_private = source.is_private();
    let policy = tokio::task::spawn_blocking(move || {
        import_public_or_private(&mut policy, &material, is_private).map(|()| policy)
    })
    .await
    .map_err(Error::internal)?
    .map_err(|e| Error::invalid(format!("error importing key: {e}")))?;
    transit.persist(storage, policy).await?;
    Ok(None)
}

/// POST `keys/<name>/import_version`: a new version of an imported key, or (with `version`)
/// the private part of a version imported as a public key.
pub(super) async fn import_version(
    transit: &Transit,
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data).upfront(true);
    let source = Source::from_fields(&fields)?;
    let version = fields.int("version")?;
    let not_found = || {
        Error::invalid(format!(
            "no key found with name {name}; to import a new key, use the import/ endpoint"
        ))
    };
    let check = |p: &Policy| -> Result<KeyType, Error> {
        if !p.imported {
            return Err(Error::invalid(
                "the import_version endpoint can only be used with an imported key",
            ));
        }
        if p.convergent_encryption {
            return Err(Error::invalid(
                "import_version cannot be used on keys with convergent encryption enabled",
            ));
        }
        p.key_type()
    };
    // Checked before unwrapping (OpenBao's order); unwrapping takes the wrapping key's lock,
    // so it happens before this key's lock is taken, and the checks run again under it.
    let key_type = match transit.key(storage, name).await? {
        Some(key) => check(&key.policy)?,
        None => return Err(not_found()),
    };
    let material = source.material(transit, storage, key_type).await?;

    let _guard = transit.lock(name).await;
    let Some(mut policy) = load_policy(storage, name).await? else {
        return Err(not_found());
    };
    check(&policy)?;
    let is_private = source.is_private();
    let policy = tokio::task::spawn_blocking(move || {
        match version {
            Some(v) => key_version_can_be_updated(&policy, v, is_private)
                .and_then(|()| import_private_for_version(&mut policy, v, &material)),
            None => import_public_or_private(&mut policy, &material, is_private),
        }
        .map(|()| policy)
    })
    .await
    .map_err(Error::internal)?
    .map_err(Error::invalid)?;
    transit.persist(storage, policy).await?;
    Ok(None)
}

/// GET `byok-export/<destination>/<source>[/<version>]`: the versions of the exportable key
/// `source` wrapped for the RSA key `destination` in the import format, with `hash` for OAEP.
pub(super) async fn byok_export(
    transit: &Transit,
    req: &Request,
    destination: &str,
    source: &str,
    version: Option<&str>,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let hash = Fields::new(&req.data)
        .upfront(true)
        .string("hash")?
        .unwrap_or_else(|| "SHA256".to_owned());
    let Some(dst) = transit.key(storage, destination).await? else {
        return Err(Error::invalid("no such destination key to export to"));
    };
    if dst.policy.soft_deleted {
        return Err(Error::invalid(format!(
            "for destination key: {SOFT_DELETED}"
        )));
    }
    let Some(src) = transit.key(storage, source).await? else {
        return Err(Error::invalid("no such source key for export"));
    };
    let p = &src.policy;
    if !p.exportable {
        return Err(Error::invalid("key is not exportable"));
    }
    if p.soft_deleted {
        return Err(Error::invalid(format!("for source key: {SOFT_DELETED}")));
    }
    let versions: Vec<(String, KeyEntry)> = p
        .export_entries(version)?
        .into_iter()
        .map(|(v, entry)| (v.to_owned(), entry.clone()))
        .collect();
    let hash = OaepHash::from_name(&hash)?;
    // OpenBao's `Policy.WrapKey` on the destination's latest version.
    if !dst.kind.signing_supported() {
        return Err(Error::invalid(format!(
            "key wrapping (requring message signing) is not supported for key type {}",
            dst.kind.name()
        )));
    }
    let public = dst
        .rsa_public_key(dst.policy.latest_version)
        .ok_or_else(|| Error::invalid("unsupported key type in use; must be a rsa key"))?;
    let kind = src.kind;
    let (name, type_name) = (p.name.clone(), kind.name());
    let wrapped = tokio::task::spawn_blocking(move || {
        versions
            .into_iter()
            .map(|(v, entry)| {
                let target = export_target(kind, &entry)?;
                let wrapped = wrap_target(&public, &target, hash).map_err(|e| {
                    Error::invalid(format!("failed to wrap target key for import: {e}"))
                })?;
                Ok((v, Value::String(wrapped)))
            })
            .collect::<Result<Map<String, Value>, Error>>()
    })
    .await
    .map_err(Error::internal)??;
    let mut data = Map::new();
    data.insert("name".to_owned(), Value::String(name));
    data.insert("type".to_owned(), Value::String(type_name.to_owned()));
    data.insert("keys".to_owned(), Value::Object(wrapped));
    Ok(Some(Response::with_data(data)))
}

/// Where the key material comes from: `ciphertext` (wrapped, private) wins over `public_key`.
enum Source {
    Wrapped { ciphertext: String, hash: OaepHash },
    PublicKey(String),
}

impl Source {
    fn from_fields(fields: &Fields<'_>) -> Result<Self, Error> {
        let hash = fields
            .string("hash_function")?
            .unwrap_or_else(|| "SHA256".to_owned());
        let public_key = fields.string("public_key")?.unwrap_or_default();
        Ok(match fields.string("ciphertext")? {
            Some(ciphertext) => Source::Wrapped {
                ciphertext,
                hash: OaepHash::from_name(&hash)?,
            },
            None => Source::PublicKey(public_key),
        })
    }

    fn is_private(&self) -> bool {
        matches!(self, Source::Wrapped { .. })
    }

    /// The key bytes: unwrapped with the mount's wrapping key, or the PEM text as given.
    async fn material(
        &self,
        transit: &Transit,
        storage: &dyn Storage,
        key_type: KeyType,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        match self {
            Source::Wrapped { ciphertext, hash } => {
                let blob = decode_b64(ciphertext).map_err(Error::invalid)?;
                if blob.len() <= WRAPPED_EPHEMERAL_KEY_LEN {
                    return Err(Error::invalid("provided ciphertext is too short"));
                }
                let wrapping = wrapping_key(transit, storage).await?;
                let hash = *hash;
                tokio::task::spawn_blocking(move || {
                    let private = wrapping
                        .rsa_private_key(wrapping.policy.latest_version)
                        .ok_or_else(|| Error::internal("wrapping key has no rsa key"))?;
                    unwrap_target(private, &blob, hash).map_err(Error::invalid)
                })
                .await
                .map_err(Error::internal)?
            }
            Source::PublicKey(pem) => {
                if !import_public_key_supported(key_type) {
                    return Err(Error::invalid(
                        "provided type does not support public_key import",
                    ));
                }
                Ok(Zeroizing::new(pem.as_bytes().to_vec()))
            }
        }
    }
}

/// The hash OAEP uses for the ephemeral key (`hash_function`; MGF1 uses the same, as Go's
/// `rsa.DecryptOAEP`).
#[derive(Debug, Clone, Copy)]
enum OaepHash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl OaepHash {
    fn from_name(name: &str) -> Result<Self, Error> {
        Ok(match name.to_uppercase().as_str() {
            "SHA1" => OaepHash::Sha1,
            "SHA224" => OaepHash::Sha224,
            "SHA256" => OaepHash::Sha256,
            "SHA384" => OaepHash::Sha384,
            "SHA512" => OaepHash::Sha512,
            _ => return Err(Error::invalid(format!("unknown hash function: {name}"))),
        })
    }

    fn padding(self) -> Oaep {
        match self {
            OaepHash::Sha1 => Oaep::new::<sha1::Sha1>(),
            OaepHash::Sha224 => Oaep::new::<sha2::Sha224>(),
            OaepHash::Sha256 => Oaep::new::<sha2::Sha256>(),
            OaepHash::Sha384 => Oaep::new::<sha2::Sha384>(),
            OaepHash::Sha512 => Oaep::new::<sha2::Sha512>(),
        }
    }
}

/// The mount's RSA-4096 wrapping key, created on first use (OpenBao's `getWrappingKey`).
async fn wrapping_key(transit: &Transit, storage: &dyn Storage) -> Result<Arc<Key>, Error> {
    let policy = Policy {
        name: WRAPPING_KEY_NAME.to_owned(),
        key_type: KeyType::Rsa4096.code(),
        ..Policy::default()
    };
    get_or_create(transit, storage, policy).await
}

/// Splits the blob, RSA-OAEP-decrypts the ephemeral AES-256 key and AES-KWP-unwraps the target
/// with it; errors are OpenBao's (Go's and tink's) texts.
fn unwrap_target(
    wrapping: &RsaPrivateKey,
    blob: &[u8],
    hash: OaepHash,
) -> Result<Zeroizing<Vec<u8>>, String> {
    use aes_kw::KeyInit;
    let (wrapped_ephemeral, wrapped_target) = blob.split_at(WRAPPED_EPHEMERAL_KEY_LEN);
    let ephemeral = Zeroizing::new(
        wrapping
            .decrypt_blinded(&mut OsRng, hash.padding(), wrapped_ephemeral)
            .map_err(|_| "crypto/rsa: decryption error".to_owned())?,
    );
    if ephemeral.len() != 32 {
        return Err("expected ephemeral AES key to be 256-bit".to_owned());
    }
    // tink's KWP limits: a target of 16 to 8192 bytes.
    if wrapped_target.len() < 24 {
        return Err("kwp: wrapped key size too small".to_owned());
    }
    if wrapped_target.len() > 8200 {
        return Err("kwp: wrapped key size too large".to_owned());
    }
    if !wrapped_target.len().is_multiple_of(8) {
        return Err("kwp: wrapped key size must be a multiple of 8 bytes".to_owned());
    }
    let kwp = aes_kw::KwpAes256::new_from_slice(&ephemeral)
        .map_err(|_| "kwp: invalid AES key size".to_owned())?;
    let mut out = Zeroizing::new(vec![0u8; wrapped_target.len() - 8]);
    let len = kwp
        .unwrap_key(wrapped_target, &mut out)
        .map_err(|_| "kwp: unwrap failed integrity check".to_owned())?
        .len();
    out.truncate(len);
    Ok(out)
}

/// The import format of `target` for `public`: RSA-OAEP of a fresh AES-256 key, then AES-KWP
/// of the target under it, in base64 (OpenBao's `wrapTargetPKCS8ForImport`).
fn wrap_target(public: &RsaPublicKey, target: &[u8], hash: OaepHash) -> Result<String, String> {
    use aes_kw::KeyInit;
    if target.len() < 16 {
        return Err("failed to wrap target key with KWP: kwp: key size to wrap too small".into());
    }
    if target.len() > 8192 {
        return Err("failed to wrap target key with KWP: kwp: key size to wrap too large".into());
    }
    let ephemeral = random_bytes(32);
    let mut out = public
        .encrypt(&mut OsRng, hash.padding(), ephemeral.as_slice())
        .map_err(|e| format!("failed to encrypt ephemeral wrapping key with public key: {e}"))?;
    let kwp = aes_kw::KwpAes256::new_from_slice(ephemeral.as_slice())
        .map_err(|_| "failed to generate new KWP from AES key".to_owned())?;
    let mut buf = vec![0u8; target.len().div_ceil(8) * 8 + 8];
    out.extend_from_slice(
        kwp.wrap_key(target, &mut buf)
            .map_err(|e| format!("failed to wrap target key with KWP: {e}"))?,
    );
    Ok(STANDARD.encode(out))
}

/// What `byok-export` wraps for one version: the raw key of a symmetric or hmac key, PKCS#8
/// DER of an asymmetric one (OpenBao's `getBYOKExportKey` and `KeyEntry.WrapKey`).
fn export_target(kind: KeyType, entry: &KeyEntry) -> Result<Zeroizing<Vec<u8>>, Error> {
    if kind.is_symmetric() || kind == KeyType::Hmac {
        return entry
            .key
            .as_ref()
            .map(|k| Zeroizing::new(k.as_slice().to_vec()))
            .ok_or_else(|| Error::invalid("key version has no key material"));
    }
    let der = Zeroizing::new(export_key(kind, entry, "signing-key", "der")?);
    if der.is_empty() {
        return Err(Error::invalid(
            "failed to wrap target key for import: key version has no private part",
        ));
    }
    decode_b64(&der)
        .map(Zeroizing::new)
        .map_err(|_| Error::internal("pkcs8 encoding"))
}

/// OpenBao's `ImportPublicOrPrivate`: adds a version holding `key`, unless the latest version
/// lacks its private part and `key` is it (then that version is completed).
pub(super) fn import_public_or_private(
    p: &mut Policy,
    key: &[u8],
    is_private: bool,
) -> Result<(), String> {
    if p.soft_deleted {
        return Err(SOFT_DELETED.to_owned());
    }
    let kind = p.key_type().map_err(|e| e.to_string())?;
    if p.latest_version > 0 && is_private {
        let latest = p.latest_version;
        if p.keys
            .get(&latest.to_string())
            .is_some_and(private_key_missing)
        {
            let mut attempt = p.clone();
            if import_private_for_version(&mut attempt, latest, key).is_ok() {
                *p = attempt;
                return Ok(());
            }
        }
    }
    let now = now_nanos();
    let mut entry = KeyEntry {
        time: rfc3339_nanos(now),
        creation_time: now / 1_000_000_000,
        ..KeyEntry::default()
    };
    if kind != KeyType::Hmac {
        entry.hmac_key = Some(random_bytes(32));
    }
    if kind == KeyType::Ed25519 && p.derived && !is_private {
        return Err(
            "unable to import only public key for derived Ed25519 key: imported key \
                    should not be an Ed25519 key pair but is instead an HKDF key"
                .to_owned(),
        );
    }
    let size_ok = match kind {
        KeyType::Aes128Gcm96 => key.len() == 16,
        KeyType::Aes256Gcm96 | KeyType::ChaCha20Poly1305 | KeyType::XChaCha20Poly1305 => {
            key.len() == 32
        }
        KeyType::Hmac => (HMAC_MIN_KEY_SIZE..=HMAC_MAX_KEY_SIZE).contains(&key.len()),
        _ => true,
    };
    if !size_ok {
        return Err(format!(
            "invalid key size {} bytes for key type {}",
            key.len(),
            kind.name()
        ));
    }
    if kind.is_symmetric() || kind == KeyType::Hmac {
        entry.key = Some(Bytes::new(key.to_vec()));
        if kind == KeyType::Hmac {
            p.key_size = key.len() as i64;
            entry.hmac_key = entry.key.clone();
        }
    } else {
        let parsed = if is_private {
            parse_private(key)?
        } else {
            parse_public_pem(key)?
        };
        fill_entry(&mut entry, kind, &parsed)?;
    }
    p.latest_version += 1;
    p.keys.insert(p.latest_version.to_string(), entry);
    if p.min_decryption_version == 0 {
        p.min_decryption_version = 1;
    }
    Ok(())
}

/// OpenBao's `KeyVersionCanBeUpdated`: only a public-only version may get a private part.
fn key_version_can_be_updated(p: &Policy, version: i64, is_private: bool) -> Result<(), String> {
    let entry = p
        .keys
        .get(&version.to_string())
        .ok_or_else(|| "no such key version".to_owned())?;
    let kind = p.key_type().map_err(|e| e.to_string())?;
    if !import_public_key_supported(kind) {
        return Err("provided type does not support importing key versions".to_owned());
    }
    let missing = private_key_missing(entry);
    if missing && !is_private {
        return Err(
            "cannot add a public key to a key version that already has a public key set".to_owned(),
        );
    }
    if !missing {
        return Err("private key imported, key version cannot be updated".to_owned());
    }
    Ok(())
}

/// OpenBao's `ImportPrivateKeyForVersion`: the PKCS#8 private key of a version imported as a
/// public key; it must match that public key.
fn import_private_for_version(p: &mut Policy, version: i64, key: &[u8]) -> Result<(), String> {
    if p.soft_deleted {
        return Err(SOFT_DELETED.to_owned());
    }
    let kind = p.key_type().map_err(|e| e.to_string())?;
    let mut entry = p
        .keys
        .get(&version.to_string())
        .cloned()
        .ok_or_else(|| "no such key version".to_owned())?;
    let parsed = parse_private(key)?;
    let mismatch = || "cannot import key, key pair does not match".to_owned();
    match &parsed {
        Asymmetric::Ec(ec) => {
            let stored = first_pem_block(entry.public_key.as_bytes()).ok_or_else(|| {
                "failed to parse key entry public key: invalid PEM blob".to_owned()
            })?;
            if stored.as_slice() != ec.spki_der.as_slice() {
                return Err(mismatch());
            }
        }
        Asymmetric::Rsa(rsa) => {
            let stored = entry.rsa_public_key.as_ref().ok_or_else(mismatch)?;
            let same = stored.n.to_biguint().is_ok_and(|n| &n == rsa.public.n())
                && small_uint(rsa.public.e()) == Some(stored.e);
            if !same {
                return Err(mismatch());
            }
        }
        Asymmetric::Ed25519(ed) => {
            let stored = decode_b64(&entry.public_key)
                .map_err(|e| format!("failed to parse key entry public key: {e}"))?;
            if stored.as_slice() != ed.public.as_bytes() {
                return Err(mismatch());
            }
        }
        Asymmetric::Unusable { .. } => {}
    }
    fill_entry(&mut entry, kind, &parsed)?;
    p.keys.insert(version.to_string(), entry);
    // The archive already holds this version without its private part: have the next
    // persist copy it (and the versions after it) again. OpenBao leaves the archived copy
    // public-only, so the private part would be lost once the version is archived away.
    p.archive_version = p.archive_version.min(version - 1);
    Ok(())
}

/// An asymmetric key as parsed from PKCS#8 or PKIX.
pub(super) enum Asymmetric {
    Rsa(RsaKey),
    Ec(EcKey),
    Ed25519(Ed25519Key),
    /// A key coffer has no use for; the text is what Go's `%T` prints for it, and `curve` is
    /// set for an ECDSA key on another curve.
    Unusable {
        go_type: &'static str,
        curve: Option<&'static str>,
    },
}

pub(super) struct RsaKey {
    private: Option<Box<RsaPrivateKey>>,
    public: RsaPublicKey,
}

pub(super) struct EcKey {
    pub(super) kind: KeyType,
    /// The scalar, big-endian; `None` for a public key.
    d: Option<Zeroizing<Vec<u8>>>,
    pub(super) x: Vec<u8>,
    pub(super) y: Vec<u8>,
    /// The PKIX public key as Go's `MarshalPKIXPublicKey` writes it (uncompressed point).
    spki_der: Vec<u8>,
}

pub(super) struct Ed25519Key {
    private: Option<Box<ed25519_dalek::SigningKey>>,
    public: ed25519_dalek::VerifyingKey,
}

impl Asymmetric {
    /// Go's `%T` of the parsed key.
    fn go_type(&self) -> &'static str {
        match self {
            Asymmetric::Rsa(k) if k.private.is_some() => "*rsa.PrivateKey",
            Asymmetric::Rsa(_) => "*rsa.PublicKey",
            Asymmetric::Ec(k) if k.d.is_some() => "*ecdsa.PrivateKey",
            Asymmetric::Ec(_) => "*ecdsa.PublicKey",
            Asymmetric::Ed25519(k) if k.private.is_some() => "ed25519.PrivateKey",
            Asymmetric::Ed25519(_) => "ed25519.PublicKey",
            Asymmetric::Unusable { go_type, .. } => go_type,
        }
    }
}

/// OpenBao's `parseFromKey`: checks the parsed key against the policy's type and writes it into
/// `entry` as OpenBao stores it.
fn fill_entry(entry: &mut KeyEntry, kind: KeyType, parsed: &Asymmetric) -> Result<(), String> {
    let wrong_type = || {
        format!(
            "invalid key type: expected {}, got {}",
            kind.name(),
            parsed.go_type()
        )
    };
    match parsed {
        Asymmetric::Ec(ec) => {
            if !kind.is_ecdsa() {
                return Err(wrong_type());
            }
            if ec.kind != kind {
                return Err(format!(
                    "invalid curve: expected {}, got {}",
                    curve_name(kind),
                    curve_name(ec.kind)
                ));
            }
            if let Some(d) = &ec.d {
                entry.ec_d = Some(BigDec::from_be_bytes(d));
            }
            entry.ec_x = Some(BigDec::from_be_bytes(&ec.x));
            entry.ec_y = Some(BigDec::from_be_bytes(&ec.y));
            entry.public_key = pem_encode("PUBLIC KEY", &ec.spki_der);
        }
        Asymmetric::Unusable {
            curve: Some(curve), ..
        } if kind.is_ecdsa() => {
            return Err(format!(
                "invalid curve: expected {}, got {curve}",
                curve_name(kind)
            ));
        }
        Asymmetric::Unusable { .. } => return Err(wrong_type()),
        Asymmetric::Ed25519(ed) => {
            if kind != KeyType::Ed25519 {
                return Err(wrong_type());
            }
            if let Some(private) = &ed.private {
                entry.key = Some(Bytes::new(private.to_keypair_bytes().to_vec()));
            }
            entry.public_key = STANDARD.encode(ed.public.as_bytes());
        }
        Asymmetric::Rsa(rsa) => {
            if !kind.is_rsa() {
                return Err(wrong_type());
            }
            let expected = match kind {
                KeyType::Rsa2048 => 256,
                KeyType::Rsa3072 => 384,
                _ => 512,
            };
            if rsa.public.size() != expected {
                return Err(format!(
                    "invalid key size: expected {expected} bytes, got {} bytes",
                    rsa.public.size()
                ));
            }
            if let Some(private) = &rsa.private {
                entry.rsa_key =
                    Some(super::policy::go_rsa_private(private).map_err(|e| e.to_string())?);
            }
            entry.rsa_public_key = Some(GoRsaPublicKey {
                n: BigDec::from_biguint(rsa.public.n()),
                e: small_uint(rsa.public.e())
                    .ok_or_else(|| "rsa public exponent is too large".to_owned())?,
            });
        }
    }
    Ok(())
}

/// A PKCS#8 private key as Go's `x509.ParsePKCS8PrivateKey` reads it, plus OpenBao's two
/// fallbacks: RSA keys under the RSASSA-PSS OID, and Ed25519 seeds in an `ECPrivateKey` under
/// the id-ecPublicKey OID with an Ed25519 curve OID (NSS's form).
fn parse_private(der: &[u8]) -> Result<Asymmetric, String> {
    let fail = |detail: &str| format!("error parsing asymmetric key: {detail}");
    let info = match PrivateKeyInfo::try_from(der) {
        Ok(info) => info,
        Err(e) => {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            let hint = if sec1::EcPrivateKey::try_from(der).is_ok() {
                "x509: failed to parse private key (use ParseECPrivateKey instead for this key \
                 format)"
                    .to_owned()
            } else if RsaPrivateKey::from_pkcs1_der(der).is_ok() {
                "x509: failed to parse private key (use ParsePKCS1PrivateKey instead for this \
                 key format)"
                    .to_owned()
            } else {
                format!("asn1: structure error: {e}")
            };
            return Err(fail(&hint));
        }
    };
    let oid = info.algorithm.oid;
    if oid == OID_RSA {
        let key = RsaPrivateKey::from_pkcs8_der(der).map_err(|e| {
            fail(&format!(
                "x509: failed to parse RSA private key embedded in PKCS#8: {e}"
            ))
        })?;
        return rsa_private(key).map_err(|e| fail(&e));
    }
    if oid == OID_RSA_PSS {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        let key = RsaPrivateKey::from_pkcs1_der(info.private_key).map_err(|e| {
            format!(
                "error parsing asymmetric key:\n - assuming contents are an RSA/PSS private \
                 key: keysutil: failed to parse inner RSA PSS private key: {e}\n - original \
                 error: x509: PKCS#8 wrapping contained private key with unknown algorithm: \
                 {oid}"
            )
        })?;
        return rsa_private(key).map_err(|e| fail(&e));
    }
    if oid == OID_ED25519 {
        let key = ed25519_dalek::SigningKey::from_pkcs8_der(der)
            .map_err(|e| fail(&format!("x509: invalid Ed25519 private key: {e}")))?;
        return Ok(Asymmetric::Ed25519(Ed25519Key {
            public: key.verifying_key(),
            private: Some(Box::new(key)),
        }));
    }
    if oid == OID_X25519 {
        return Ok(Asymmetric::Unusable {
            go_type: "*ecdh.PrivateKey",
            curve: None,
        });
    }
    if oid != OID_EC_PUBLIC_KEY {
        return Err(fail(&format!(
            "x509: PKCS#8 wrapping contained private key with unknown algorithm: {oid}"
        )));
    }
    let curve = info.algorithm.parameters_oid().ok();
    let ec_error = |e: &dyn std::fmt::Display| {
        fail(&format!(
            "x509: failed to parse EC private key embedded in PKCS#8: {e}"
        ))
    };
    macro_rules! ec_private {
        ($curve:ident, $kind:expr) => {{
            use $curve::elliptic_curve::sec1::ToEncodedPoint;
            let secret = $curve::SecretKey::from_pkcs8_der(der).map_err(|e| ec_error(&e))?;
            let public = secret.public_key();
            let point = public.to_encoded_point(false);
            Ok(Asymmetric::Ec(EcKey {
                kind: $kind,
                d: Some(Zeroizing::new(secret.to_bytes().to_vec())),
                x: point.x().map(|x| x.to_vec()).unwrap_or_default(),
                y: point.y().map(|y| y.to_vec()).unwrap_or_default(),
                spki_der: public
                    .to_public_key_der()
                    .map_err(|e| ec_error(&e))?
                    .into_vec(),
            }))
        }};
    }
    match curve {
        Some(c) if c == OID_P256 => ec_private!(p256, KeyType::EcdsaP256),
        Some(c) if c == OID_P384 => ec_private!(p384, KeyType::EcdsaP384),
        Some(c) if c == OID_P521 => ec_private!(p521, KeyType::EcdsaP521),
        Some(c) if c == OID_P224 => Ok(Asymmetric::Unusable {
            go_type: "*ecdsa.PrivateKey",
            curve: Some("P-224"),
        }),
        _ => nss_ed25519(curve, info.private_key).map_err(|ed_error| {
            format!(
                "error parsing asymmetric key:\n - assuming contents are an ed25519 private \
                 key: {ed_error}\n - original error: x509: failed to parse EC private key \
                 embedded in PKCS#8: x509: unknown elliptic curve"
            )
        }),
    }
}

/// OpenBao's `ParsePKCS8Ed25519PrivateKey` for a PKCS#8 with the id-ecPublicKey OID: an
/// RFC 8032 seed in an `ECPrivateKey` whose curve parameter is an Ed25519 OID.
fn nss_ed25519(curve: Option<ObjectIdentifier>, inner: &[u8]) -> Result<Asymmetric, String> {
    if !curve.is_some_and(|c| c == OID_NSS_ED25519 || c == OID_X25519) {
        return Err(
            "keysutil: failed to parse private key (invalid, non-ed25519 curve parameter OID)"
                .to_owned(),
        );
    }
    let ec = sec1::EcPrivateKey::try_from(inner).map_err(|e| {
        format!(
            "keysutil: failed to parse private key (inner Ed25519 ECPrivateKey format was \
             incorrect): {e}"
        )
    })?;
    let seed: [u8; 32] = ec.private_key.try_into().map_err(|_| {
        format!(
            "keysutil: failed to parse private key as ed25519 private key: got {} bytes but \
             expected 32 byte RFC 8032 seed",
            ec.private_key.len()
        )
    })?;
    let seed = Zeroizing::new(seed);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    Ok(Asymmetric::Ed25519(Ed25519Key {
        public: key.verifying_key(),
        private: Some(Box::new(key)),
    }))
}

/// A PEM public key as Go's `pem.Decode` and `x509.ParsePKIXPublicKey` read it.
pub(super) fn parse_public_pem(text: &[u8]) -> Result<Asymmetric, String> {
    let der = first_pem_block(text)
        .ok_or_else(|| "error parsing public key: not in PEM format".to_owned())?;
    let fail = |detail: &dyn std::fmt::Display| format!("error parsing public key: {detail}");
    let info = rsa::pkcs8::spki::SubjectPublicKeyInfoRef::try_from(der.as_slice())
        .map_err(|e| fail(&format_args!("asn1: structure error: {e}")))?;
    let oid = info.algorithm.oid;
    macro_rules! ec_public {
        ($curve:ident, $kind:expr) => {{
            use $curve::elliptic_curve::sec1::ToEncodedPoint;
            let public = $curve::PublicKey::from_public_key_der(&der)
                .map_err(|_| fail(&"x509: invalid elliptic curve public key"))?;
            let point = public.to_encoded_point(false);
            Ok(Asymmetric::Ec(EcKey {
                kind: $kind,
                d: None,
                x: point.x().map(|x| x.to_vec()).unwrap_or_default(),
                y: point.y().map(|y| y.to_vec()).unwrap_or_default(),
                spki_der: public.to_public_key_der().map_err(|e| fail(&e))?.into_vec(),
            }))
        }};
    }
    if oid == OID_RSA {
        let public = RsaPublicKey::from_public_key_der(&der)
            .map_err(|e| fail(&format_args!("x509: invalid RSA public key: {e}")))?;
        return Ok(Asymmetric::Rsa(RsaKey {
            private: None,
            public,
        }));
    }
    if oid == OID_ED25519 {
        let public = ed25519_dalek::VerifyingKey::from_public_key_der(&der)
            .map_err(|_| fail(&"x509: invalid Ed25519 public key"))?;
        return Ok(Asymmetric::Ed25519(Ed25519Key {
            private: None,
            public,
        }));
    }
    if oid == OID_X25519 {
        return Ok(Asymmetric::Unusable {
            go_type: "*ecdh.PublicKey",
            curve: None,
        });
    }
    if oid == OID_DSA {
        return Ok(Asymmetric::Unusable {
            go_type: "*dsa.PublicKey",
            curve: None,
        });
    }
    if oid != OID_EC_PUBLIC_KEY {
        return Err(fail(&"x509: unknown public key algorithm"));
    }
    match info.algorithm.parameters_oid().ok() {
        Some(c) if c == OID_P256 => ec_public!(p256, KeyType::EcdsaP256),
        Some(c) if c == OID_P384 => ec_public!(p384, KeyType::EcdsaP384),
        Some(c) if c == OID_P521 => ec_public!(p521, KeyType::EcdsaP521),
        Some(c) if c == OID_P224 => Ok(Asymmetric::Unusable {
            go_type: "*ecdsa.PublicKey",
            curve: Some("P-224"),
        }),
        _ => Err(fail(&"x509: unsupported elliptic curve")),
    }
}

fn rsa_private(key: RsaPrivateKey) -> Result<Asymmetric, String> {
    key.validate()
        .map_err(|e| format!("x509: invalid RSA private key: {e}"))?;
    Ok(Asymmetric::Rsa(RsaKey {
        public: key.to_public_key(),
        private: Some(Box::new(key)),
    }))
}

/// The bytes of the first PEM block in `text`, whatever its label, skipping text before it
/// and RFC 1421 headers in it (Go's `pem.Decode`).
fn first_pem_block(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let text = std::str::from_utf8(text).ok()?;
    let begin = text.find("-----BEGIN ")?;
    let rest = &text[begin + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = &rest[..label_end];
    let body_and_end = rest[label_end + 5..].strip_prefix(['\r', '\n'].as_slice())?;
    let end_marker = format!("-----END {label}-----");
    let body = &body_and_end[..body_and_end.find(&end_marker)?];
    let mut b64 = Zeroizing::new(String::new());
    for line in body.lines() {
        if line.contains(':') {
            continue;
        }
        b64.extend(line.chars().filter(|c| !c.is_whitespace()));
    }
    decode_b64(&b64).ok().map(Zeroizing::new)
}

/// `n` as a `u64`, if it fits (Go keeps an RSA exponent in an `int`).
fn small_uint(n: &rsa::BigUint) -> Option<u64> {
    let bytes = n.to_bytes_be();
    (bytes.len() <= 8).then(|| bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// OpenBao's `KeyEntry.IsPrivateKeyMissing`.
fn private_key_missing(entry: &KeyEntry) -> bool {
    entry.rsa_key.is_none()
        && entry.ec_d.is_none()
        && entry.key.as_ref().is_none_or(|k| k.as_slice().is_empty())
}

/// OpenBao's `ImportPublicKeySupported`.
fn import_public_key_supported(kind: KeyType) -> bool {
    kind.is_rsa() || kind.is_ecdsa() || kind == KeyType::Ed25519
}

/// Go's name of an ECDSA key type's curve.
fn curve_name(kind: KeyType) -> &'static str {
    match kind {
        KeyType::EcdsaP384 => "P-384",
        KeyType::EcdsaP521 => "P-521",
        _ => "P-256",
    }
}

const WRAPPING_KEY_NAME: &str = "import/wrapping-key";
/// The RSA-OAEP block at the head of a wrapped key: one RSA-4096 ciphertext.
const WRAPPED_EPHEMERAL_KEY_LEN: usize = 512;
const EXISTING_KEY: &str = "the import path cannot be used with an existing key; use \
                            import-version to rotate an existing imported key";
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
const OID_P224: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.33");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
/// NSS's Ed25519 OID (draft-josefsson-pkix-newcurves).
const OID_NSS_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11591.15.1");
