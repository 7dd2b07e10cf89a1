//! Private keys of a PKI mount: generation (rsa, ec P-256/P-384/P-521, ed25519), import from the
//! PEM forms OpenBao accepts (PKCS#8, PKCS#1, SEC1), export in the forms OpenBao returns
//! (`RSA PRIVATE KEY`, `EC PRIVATE KEY`, PKCS#8 for ed25519 or when `private_key_format=pkcs8`),
//! and the signature checks x509-parser cannot do (P-521).
//!
//! Key material lives in `Zeroizing` buffers and is never printed: `Debug` shows the type only.
//! Signing goes through rcgen's `KeyPair` on aws-lc-rs; EC and ed25519 keys are generated with
//! aws-lc-rs directly (one key generation, no re-parse), RSA keys with the `rsa` crate.
//!
//! P-224 is refused: neither rcgen nor aws-lc-rs (nor ring) can sign with it, so a P-224 CA or
//! leaf key could be stored but never used.

use std::fmt;

use base64::Engine as _;
use coffer_sdk::Error;
use rcgen::{KeyPair, PublicKeyData, SignatureAlgorithm, SigningKey};
use sha1::{Digest, Sha1};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::spki::AlgorithmIdentifierOwned;
use zeroize::{Zeroize, Zeroizing};

/// The key algorithms OpenBao's PKI engine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    Rsa,
    Ec,
    Ed25519,
}

impl KeyType {
    /// Parses a `key_type` field (`any` is handled by roles, not here).
    pub(crate) fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "rsa" => Ok(KeyType::Rsa),
            "ec" => Ok(KeyType::Ec),
            "ed25519" => Ok(KeyType::Ed25519),
            other => Err(Error::invalid(format!("unknown key type: {other}"))),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ec => "ec",
            KeyType::Ed25519 => "ed25519",
        }
    }

    /// The bit length to use for `bits` (0 picks OpenBao's default), or OpenBao's error.
    pub(crate) fn normalize_bits(self, bits: i64) -> Result<u32, Error> {
        match (self, bits) {
            (KeyType::Rsa, 0) => Ok(2048),
            (KeyType::Rsa, 2048 | 3072 | 4096 | 8192) => Ok(bits as u32),
            (KeyType::Rsa, _) => Err(Error::invalid(format!(
                "unsupported bit length for RSA key: {bits}"
            ))),
            (KeyType::Ec, 0) => Ok(256),
            (KeyType::Ec, 256 | 384 | 521) => Ok(bits as u32),
            (KeyType::Ec, 224) => Err(Error::invalid(
                "unsupported bit length for EC key: 224 (P-224 keys are not supported: the \
                 certificate library coffer signs with has no P-224 signature algorithm)",
            )),
            (KeyType::Ec, _) => Err(Error::invalid(format!(
                "unsupported bit length for EC key: {bits}"
            ))),
            (KeyType::Ed25519, _) => Ok(0),
        }
    }
}

/// A private key held as PKCS#8 DER, wiped on drop.
pub(crate) struct PrivateKey {
    kind: KeyType,
    bits: u32,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kind", &self.kind)
            .field("bits", &self.bits)
            .field("pkcs8", &"[REDACTED]")
            .finish()
    }
}

impl PrivateKey {
    /// A fresh key. RSA generation is slow: callers run it off the async workers.
    pub(crate) fn generate(kind: KeyType, bits: u32) -> Result<Self, Error> {
        Ok(Self::generate_with_public(kind, bits)?.0)
    }

    /// A fresh key and its public half, from one key generation: the key is never parsed
    /// back nor loaded for signing, since a leaf's key only needs certifying (the issue hot
    /// path; rcgen's `KeyPair::generate_for` would re-parse and re-check the key).
    pub(crate) fn generate_with_public(
        kind: KeyType,
        bits: u32,
    ) -> Result<(Self, PublicKey), Error> {
        let alg = algorithm_for(kind, bits)?;
        let (pkcs8, public) = match kind {
            KeyType::Rsa => {
                use rsa::pkcs1::EncodeRsaPublicKey;
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits as usize)
                    .map_err(Error::internal)?;
                let doc = key.to_pkcs8_der().map_err(Error::internal)?;
                // rcgen's public key bytes of an RSA key: the PKCS#1 RSAPublicKey.
                let public = key
                    .to_public_key()
                    .to_pkcs1_der()
                    .map_err(Error::internal)?;
                (doc.as_bytes().to_vec(), public.as_bytes().to_vec())
            }
            KeyType::Ec => {
                use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
                use aws_lc_rs::signature::{self, KeyPair as _};
                let (signing, curve) = match bits {
                    384 => (&signature::ECDSA_P384_SHA384_ASN1_SIGNING, P384),
                    521 => (&signature::ECDSA_P521_SHA512_ASN1_SIGNING, P521),
                    _ => (&signature::ECDSA_P256_SHA256_ASN1_SIGNING, P256),
                };
                let pair = signature::EcdsaKeyPair::generate(signing).map_err(Error::internal)?;
                // The key pair already holds its public point in affine form: PKCS#8 is framed
                // here from the scalar and that point, since aws-lc's own marshalling would
                // convert the point to affine coordinates once more.
                let public = pair.public_key().as_ref().to_vec();
                let scalar: EcPrivateKeyBin<'_> =
                    pair.private_key().as_be_bytes().map_err(Error::internal)?;
                (ec_pkcs8(curve, scalar.as_ref(), &public)?, public)
            }
            KeyType::Ed25519 => {
                use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
                let pair = Ed25519KeyPair::generate().map_err(Error::internal)?;
                let doc = pair.to_pkcs8().map_err(Error::internal)?;
                (doc.as_ref().to_vec(), pair.public_key().as_ref().to_vec())
            }
        };
        let key = PrivateKey {
            kind,
            bits,
            pkcs8: Zeroizing::new(pkcs8),
        };
        Ok((key, PublicKey { der: public, alg }))
    }

    /// A key whose type and size are already known (a stored entry).
    pub(crate) fn from_parts(kind: KeyType, bits: u32, pkcs8: Zeroizing<Vec<u8>>) -> Self {
        PrivateKey { kind, bits, pkcs8 }
    }

    /// A key from PKCS#8 DER (of any supported algorithm).
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Self, Error> {
        let pair = KeyPair::try_from(der)
            .map_err(|_| Error::invalid("unable to parse private key: unsupported key"))?;
        let alg = pair.algorithm();
        let (kind, bits) = if alg == &rcgen::PKCS_ED25519 {
            (KeyType::Ed25519, 0)
        } else if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            (KeyType::Ec, 256)
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            (KeyType::Ec, 384)
        } else if alg == &rcgen::PKCS_ECDSA_P521_SHA512 {
            (KeyType::Ec, 521)
        } else {
            use rsa::pkcs8::DecodePrivateKey;
            use rsa::traits::PublicKeyParts;
            let key = rsa::RsaPrivateKey::from_pkcs8_der(der)
                .map_err(|_| Error::invalid("unable to parse private key: unsupported key"))?;
            (KeyType::Rsa, (key.size() * 8) as u32)
        };
        Ok(PrivateKey {
            kind,
            bits,
            pkcs8: Zeroizing::new(der.to_vec()),
        })
    }

    /// A key from one PEM block of a bundle: `PRIVATE KEY`, `RSA PRIVATE KEY` or
    /// `EC PRIVATE KEY`; `None` when the block is not a private key.
    pub(crate) fn from_pem_block(label: &str, der: &[u8]) -> Option<Result<Self, Error>> {
        let bad = || Error::invalid("unable to parse private key in bundle");
        Some(match label {
            "PRIVATE KEY" => Self::from_pkcs8(der),
            "RSA PRIVATE KEY" => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                use rsa::pkcs8::EncodePrivateKey;
                rsa::RsaPrivateKey::from_pkcs1_der(der)
                    .map_err(|_| bad())
                    .and_then(|k| k.to_pkcs8_der().map_err(Error::internal))
                    .and_then(|doc| Self::from_pkcs8(doc.as_bytes()))
            }
            "EC PRIVATE KEY" => {
                use p256::pkcs8::EncodePrivateKey;
                let doc = if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
                    k.to_pkcs8_der().map_err(Error::internal)
                } else if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
                    k.to_pkcs8_der().map_err(Error::internal)
                } else if let Ok(k) = p521::SecretKey::from_sec1_der(der) {
                    k.to_pkcs8_der().map_err(Error::internal)
                } else {
                    Err(Error::invalid(
                        "unable to parse private key in bundle: unsupported EC curve",
                    ))
                };
                doc.and_then(|doc| Self::from_pkcs8(doc.as_bytes()))
            }
            _ => return None,
        })
    }

    /// A key from a PEM string holding exactly one private key.
    #[cfg(test)]
    pub(crate) fn from_pem(pem: &str) -> Result<Self, Error> {
        for block in super::pem::blocks(pem)? {
            if let Some(key) = Self::from_pem_block(&block.label, &block.der) {
                return key;
            }
        }
        Err(Error::invalid("no private key found in PEM"))
    }

    pub(crate) fn kind(&self) -> KeyType {
        self.kind
    }

    pub(crate) fn bits(&self) -> u32 {
        self.bits
    }

    /// The PKCS#8 DER, for storage.
    pub(crate) fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// A signer for this key.
    pub(crate) fn signer(&self) -> Result<LoadedKey, Error> {
        let pair = match self.kind {
            KeyType::Rsa => KeyPair::from_pkcs8_der_and_sign_algo(
                &self.pkcs8[..].into(),
                &rcgen::PKCS_RSA_SHA256,
            ),
            _ => KeyPair::try_from(&self.pkcs8[..]),
        }
        .map_err(|_| Error::internal("stored private key does not load"))?;
        Ok(LoadedKey(pair))
    }

    /// The DER OpenBao returns: PKCS#1 for RSA, SEC1 for EC, PKCS#8 for ed25519, or PKCS#8
    /// for every type with `private_key_format=pkcs8`. The PEM label comes with it.
    pub(crate) fn export_der(
        &self,
        pkcs8: bool,
    ) -> Result<(Zeroizing<Vec<u8>>, &'static str), Error> {
        if pkcs8 || self.kind == KeyType::Ed25519 {
            return Ok((self.pkcs8.clone(), "PRIVATE KEY"));
        }
        match self.kind {
            KeyType::Rsa => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                use rsa::pkcs8::DecodePrivateKey;
                let key =
                    rsa::RsaPrivateKey::from_pkcs8_der(&self.pkcs8).map_err(Error::internal)?;
                let doc = key.to_pkcs1_der().map_err(Error::internal)?;
                Ok((Zeroizing::new(doc.as_bytes().to_vec()), "RSA PRIVATE KEY"))
            }
            _ => {
                // SEC1 is the ECPrivateKey inside the PKCS#8, plus the curve parameters that
                // PKCS#8 keeps outside it: re-framed, with no curve arithmetic.
                use sec1::der::Encode;
                let info = p256::pkcs8::PrivateKeyInfo::try_from(&self.pkcs8[..])
                    .map_err(Error::internal)?;
                let curve = info.algorithm.parameters_oid().map_err(Error::internal)?;
                let mut key =
                    sec1::EcPrivateKey::try_from(info.private_key).map_err(Error::internal)?;
                key.parameters = Some(sec1::EcParameters::NamedCurve(curve));
                let der = Zeroizing::new(key.to_der().map_err(Error::internal)?);
                Ok((der, "EC PRIVATE KEY"))
            }
        }
    }

    /// The key as OpenBao's response field `private_key`: PEM, or base64 DER for
    /// `format=der`.
    pub(crate) fn export(&self, format: &str, pkcs8: bool) -> Result<Zeroizing<String>, Error> {
        let (der, label) = self.export_der(pkcs8)?;
        Ok(if format == "der" {
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&der[..]))
        } else {
            super::pem::encode(label, &der)
        })
    }
}

/// rcgen's signer, wiped on drop as far as rcgen allows (its serialized DER copy).
pub(crate) struct LoadedKey(KeyPair);

impl LoadedKey {
    /// The SubjectPublicKeyInfo DER.
    #[cfg(test)]
    pub(crate) fn spki(&self) -> Vec<u8> {
        self.0.subject_public_key_info()
    }

    /// The AlgorithmIdentifier of this key's signatures, as certificates and CRLs name it
    /// (the hash is the one rcgen signs with: SHA-256, SHA-384 for P-384, SHA-512 for P-521).
    pub(crate) fn signature_algorithm(&self) -> Result<AlgorithmIdentifierOwned, Error> {
        let alg = self.0.algorithm();
        let (oid, null_params) = if alg == &rcgen::PKCS_RSA_SHA256 {
            ("1.2.840.113549.1.1.11", true)
        } else if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            ("1.2.840.10045.4.3.2", false)
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            ("1.2.840.10045.4.3.3", false)
        } else if alg == &rcgen::PKCS_ECDSA_P521_SHA512 {
            ("1.2.840.10045.4.3.4", false)
        } else if alg == &rcgen::PKCS_ED25519 {
            ("1.3.101.112", false)
        } else {
            return Err(Error::internal(
                "issuer key has an unknown signature algorithm",
            ));
        };
        Ok(AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(oid),
            // RSA's PKCS#1 identifiers carry an explicit NULL; ECDSA's and EdDSA's carry none
            // (RFC 4055 section 5, RFC 5758 section 3.2, RFC 8410 section 3).
            parameters: null_params.then_some(x509_cert::der::asn1::Any::null()),
        })
    }
}

/// The public half of a fresh key: what a certificate for it needs.
pub(crate) struct PublicKey {
    /// The subjectPublicKey bits (an EC point, an ed25519 key or a PKCS#1 RSAPublicKey).
    der: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl PublicKeyData for PublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.der
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

impl Drop for LoadedKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PublicKeyData for LoadedKey {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.0.algorithm()
    }
}

impl SigningKey for LoadedKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(msg)
    }
}

/// Whether `signature` over `data` verifies with `public_key`: x509-parser's check, plus the
/// ECDSA combinations its table lacks (P-521 with any SHA-2, SHA-512 on P-256 and P-384), which
/// Go's x509 accepts and a P-521 CA or CSR uses.
pub(crate) fn signature_verifies(
    public_key: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
    algorithm: &x509_parser::x509::AlgorithmIdentifier<'_>,
    signature: &x509_parser::asn1_rs::BitString<'_>,
    data: &[u8],
) -> bool {
    use aws_lc_rs::signature as sig;
    use x509_parser::error::X509Error;
    match x509_parser::verify::verify_signature(public_key, algorithm, signature, data) {
        Ok(()) => return true,
        Err(X509Error::SignatureUnsupportedAlgorithm) => {}
        Err(_) => return false,
    }
    let curve = public_key
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| oid.to_id_string());
    let hash = algorithm.algorithm.to_id_string();
    let verification: &'static sig::EcdsaVerificationAlgorithm =
        match (curve.as_deref(), hash.as_str()) {
            (Some(P521), ECDSA_SHA256) => &sig::ECDSA_P521_SHA256_ASN1,
            (Some(P521), ECDSA_SHA384) => &sig::ECDSA_P521_SHA384_ASN1,
            (Some(P521), ECDSA_SHA512) => &sig::ECDSA_P521_SHA512_ASN1,
            (Some(P256), ECDSA_SHA512) => &sig::ECDSA_P256_SHA512_ASN1,
            (Some(P384), ECDSA_SHA512) => &sig::ECDSA_P384_SHA512_ASN1,
            _ => return false,
        };
    sig::UnparsedPublicKey::new(verification, &public_key.subject_public_key.data)
        .verify(data, &signature.data)
        .is_ok()
}

/// An EC private key as PKCS#8 (RFC 5958) wrapping an RFC 5915 `ECPrivateKey` with its public
/// point, the curve named in the algorithm identifier: DER framing only.
fn ec_pkcs8(curve: &str, scalar: &[u8], public: &[u8]) -> Result<Vec<u8>, Error> {
    use p256::pkcs8::der::asn1::{AnyRef, ObjectIdentifier};
    use p256::pkcs8::der::Encode;
    use p256::pkcs8::{AlgorithmIdentifierRef, PrivateKeyInfo};
    let curve = ObjectIdentifier::new(curve).map_err(Error::internal)?;
    let inner = Zeroizing::new(
        sec1::EcPrivateKey {
            private_key: scalar,
            parameters: None,
            public_key: Some(public),
        }
        .to_der()
        .map_err(Error::internal)?,
    );
    let info = PrivateKeyInfo {
        algorithm: AlgorithmIdentifierRef {
            oid: ObjectIdentifier::new_unwrap("1.2.840.10045.2.1"),
            parameters: Some(AnyRef::from(&curve)),
        },
        private_key: &inner,
        public_key: None,
    };
    info.to_der().map_err(Error::internal)
}

/// The key size of an EC public key from its named curve (x509-parser's count of point
/// bytes says 528 for P-521).
pub(crate) fn ec_curve_bits(curve_oid: &str) -> Option<u32> {
    match curve_oid {
        P224 => Some(224),
        P256 => Some(256),
        P384 => Some(384),
        P521 => Some(521),
        _ => None,
    }
}

/// The subject key identifier OpenBao writes: SHA-1 of the public key bits (RFC 5280 method 1).
pub(crate) fn key_identifier(public_key_bits: &[u8]) -> Vec<u8> {
    Sha1::digest(public_key_bits).to_vec()
}

/// The signature algorithm rcgen signs with for an ec or ed25519 key.
fn algorithm_for(kind: KeyType, bits: u32) -> Result<&'static SignatureAlgorithm, Error> {
    match (kind, bits) {
        (KeyType::Ed25519, _) => Ok(&rcgen::PKCS_ED25519),
        (KeyType::Ec, 384) => Ok(&rcgen::PKCS_ECDSA_P384_SHA384),
        (KeyType::Ec, 521) => Ok(&rcgen::PKCS_ECDSA_P521_SHA512),
        (KeyType::Ec, _) => Ok(&rcgen::PKCS_ECDSA_P256_SHA256),
        (KeyType::Rsa, _) => Ok(&rcgen::PKCS_RSA_SHA256),
    }
}

const P224: &str = "1.3.132.0.33";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";
const P521: &str = "1.3.132.0.35";
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_default_and_reject_like_openbao() {
        assert_eq!(KeyType::Rsa.normalize_bits(0).unwrap(), 2048);
        assert_eq!(KeyType::Ec.normalize_bits(0).unwrap(), 256);
        assert_eq!(KeyType::Ec.normalize_bits(384).unwrap(), 384);
        assert_eq!(KeyType::Ed25519.normalize_bits(0).unwrap(), 0);
        assert_eq!(
            KeyType::Ec.normalize_bits(255).unwrap_err().to_string(),
            "unsupported bit length for EC key: 255"
        );
        assert!(KeyType::Rsa.normalize_bits(1024).is_err());
        assert!(KeyType::parse("dsa").is_err());
    }

    #[test]
    fn ec_key_exports_as_sec1_and_reimports() {
        let key = PrivateKey::generate(KeyType::Ec, 256).unwrap();
        let pem = key.export("pem", false).unwrap();
        assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
        let back = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(back.kind(), KeyType::Ec);
        assert_eq!(back.bits(), 256);
        assert_eq!(back.signer().unwrap().spki(), key.signer().unwrap().spki());
        let pkcs8 = key.export("pem", true).unwrap();
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(!format!("{key:?}").contains(&pem[40..60]));
    }

    #[test]
    fn generated_keys_load_back_with_the_public_half_they_return() {
        for (kind, bits) in [
            (KeyType::Ec, 256),
            (KeyType::Ec, 384),
            (KeyType::Ec, 521),
            (KeyType::Ed25519, 0),
            (KeyType::Rsa, 2048),
        ] {
            let (key, public) = PrivateKey::generate_with_public(kind, bits).unwrap();
            let loaded = key.signer().unwrap();
            assert_eq!(loaded.der_bytes(), public.der_bytes(), "{kind:?} {bits}");
            assert_eq!(loaded.algorithm(), public.algorithm(), "{kind:?} {bits}");
            let parsed = PrivateKey::from_pkcs8(key.pkcs8_der()).unwrap();
            assert_eq!((parsed.kind(), parsed.bits()), (kind, bits));
        }
    }

    #[test]
    fn ed25519_p384_and_p521_round_trip() {
        for (kind, bits) in [
            (KeyType::Ed25519, 0),
            (KeyType::Ec, 384),
            (KeyType::Ec, 521),
        ] {
            let key = PrivateKey::generate(kind, bits).unwrap();
            let back = PrivateKey::from_pem(&key.export("pem", false).unwrap()).unwrap();
            assert_eq!((back.kind(), back.bits()), (kind, bits));
            let sig = back.signer().unwrap().sign(b"x").unwrap();
            assert!(!sig.is_empty());
        }
    }
}
