//! `derive-key/<name>`: a new symmetric key agreed by ECDH between an ECDSA key of the mount
//! and a peer's public key (openbao `path_derive_key.go`, `keysutil/policy.go`
//! `DeriveKeyECDH`). The shared secret (the x-coordinate) goes through HKDF-SHA256 without salt
//! or info to the derived type's size, and is stored as OpenBao's `ImportPolicy` does: a new
//! imported key, or a new version of the key already named so. Two parties that each derive
//! with the other's public key hold the same key.

use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::import::{import_public_or_private, parse_public_pem, Asymmetric};
use super::policy::{KeyType, Policy, SOFT_DELETED};
use super::{load_policy, Transit};

/// POST `derive-key/<name>`.
pub(super) async fn derive_key(
    transit: &Transit,
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data).upfront(true);
    let algorithm = fields
        .string("key_derivation_algorithm")?
        .unwrap_or_else(|| "ecdh".to_owned());
    if algorithm != "ecdh" {
        return Err(Error::invalid(format!(
            "key derivation algorithm {algorithm} not supported"
        )));
    }
    let peer = fields.string("peer_public_key")?.unwrap_or_default();
    if peer.is_empty() {
        return Err(Error::invalid("peer public key not provided"));
    }
    let base_name = fields.string("base_key_name")?.unwrap_or_default();
    let base_version = fields.int("base_key_version")?.unwrap_or(0);
    let type_name = fields
        .string("derived_key_type")?
        .unwrap_or_else(|| "aes256-gcm96".to_owned());
    let derived_type = KeyType::from_name(&type_name.to_lowercase())
        .filter(|t| t.is_symmetric())
        .ok_or_else(|| Error::invalid(format!("unknown key type {type_name}")))?;
    let Some(base) = transit.key(storage, &base_name).await? else {
        return Err(Error::invalid("specified base key not found"));
    };
    if !base.kind.is_ecdsa() {
        return Err(Error::invalid(format!(
            "base key type {} does not support key agreement",
            base.kind.name()
        )));
    }
    // OpenBao derives from a soft-deleted base key; its documentation says such a key serves
    // no operation, so coffer refuses.
    if base.policy.soft_deleted {
        return Err(Error::invalid(SOFT_DELETED));
    }
    let shared = ecdh(&base.policy, base.kind, base_version, &peer)?;
    let mut derived = Zeroizing::new(vec![0u8; derived_type.key_len()]);
    Hkdf::<Sha256>::new(None, &shared)
        .expand(&[], &mut derived)
        .map_err(|_| Error::internal("hkdf expand"))?;

    let _guard = transit.lock(name).await;
    let mut policy = load_policy(storage, name).await?.unwrap_or_else(|| Policy {
        name: name.to_owned(),
        key_type: derived_type.code(),
        imported: true,
        ..Policy::default()
    });
    import_public_or_private(&mut policy, &derived, false)
        .map_err(|e| Error::invalid(format!("error importing key: {e}")))?;
    transit.persist(storage, policy).await?;
    Ok(None)
}

/// The ECDH shared secret of the base key's `version` (0 = latest) and the peer's PEM public
/// key, with OpenBao's checks and texts.
fn ecdh(p: &Policy, kind: KeyType, version: i64, peer: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let version = match version {
        0 => p.latest_version,
        v if v < 0 => {
            return Err(Error::invalid(
                "requested version of the base key is negative",
            ))
        }
        v if v > p.latest_version => {
            return Err(Error::invalid(
                "requested version of the base key is higher than the latest key version",
            ))
        }
        v if v < p.min_available_version => {
            return Err(Error::invalid(
                "requested version of the base key is less than the minimum available key \
                 version",
            ))
        }
        v => v,
    };
    let entry = p.entry(version)?;
    let parsed = parse_public_pem(peer.as_bytes()).map_err(|e| {
        let detail = e.trim_start_matches("error parsing public key: ");
        Error::invalid(format!(
            "failed to parse supplied peer public key PEM: {detail} "
        ))
    })?;
    let peer = match parsed {
        Asymmetric::Ec(ec) if ec.kind == kind => ec,
        Asymmetric::Ec(_) | Asymmetric::Unusable { curve: Some(_), .. } => {
            return Err(Error::invalid(format!(
                "base private key type {} does not match peer public key curve",
                kind.name()
            )))
        }
        _ => {
            return Err(Error::invalid(
                "supplied peer public key is not an ECDSA key",
            ))
        }
    };
    let d = entry.ec_d.as_ref().ok_or_else(|| {
        Error::invalid("requested version of the base key does not contain a private part")
    })?;
    let mut point = Vec::with_capacity(1 + peer.x.len() + peer.y.len());
    point.push(0x04);
    point.extend_from_slice(&peer.x);
    point.extend_from_slice(&peer.y);
    macro_rules! agree {
        ($curve:ident, $len:expr) => {{
            let secret = $curve::SecretKey::from_slice(&d.to_be_bytes($len)?)
                .map_err(|_| Error::invalid("invalid ecdsa key in key entry"))?;
            let public = $curve::PublicKey::from_sec1_bytes(&point)
                .map_err(|_| Error::invalid("supplied peer public key is not an ECDSA key"))?;
            let shared =
                $curve::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
            Zeroizing::new(shared.raw_secret_bytes().to_vec())
        }};
    }
    Ok(match kind {
        KeyType::EcdsaP256 => agree!(p256, 32),
        KeyType::EcdsaP384 => agree!(p384, 48),
        _ => agree!(p521, 66),
    })
}
