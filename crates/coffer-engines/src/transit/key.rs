//! A key ready to use: the stored `Policy` plus, per version, the cipher or signing key built
//! once from it (an AES-GCM key schedule, a parsed RSA key...). The backend caches one `Key`
//! per name, so encrypting with a cached key touches neither storage nor key parsing.
//!
//! The operations follow openbao `sdk/helper/keysutil/policy.go` byte for byte where a client
//! can see it: the `vault:v<N>:` prefix, `nonce | ciphertext | tag`, HKDF-SHA256 (or the
//! legacy HMAC-SHA256 counter-mode KDF) for derived keys, the convergent nonce
//! `HMAC-SHA256(derived hmac key, plaintext)[..nonce]`, RSA-OAEP with SHA-256, and the error
//! texts. Bad input is always `InvalidRequest`.

use std::fmt::Write as _;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use coffer_sdk::Error;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use rsa::{Oaep, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::policy::{
    BigDec, KeyEntry, KeyType, Policy, CURRENT_CONVERGENT_VERSION, KDF_HKDF_SHA256,
    KDF_HMAC_SHA256_COUNTER, SOFT_DELETED, TOO_OLD,
};

/// Signs a prehashed digest with an ECDSA key, in ASN.1 DER or JWS `r | s`.
macro_rules! ecdsa_sign {
    ($key:expr, $curve:ident, $input:expr, $marshaling:expr) => {{
        use $curve::ecdsa::signature::hazmat::PrehashSigner;
        let digest = pad_prehash($input, <$curve::FieldBytes>::default().len());
        let sig: $curve::ecdsa::Signature = $key
            .sign_prehash(&digest)
            .map_err(|_| Error::invalid("input is too short for this curve"))?;
        match $marshaling {
            Marshaling::Asn1 => sig.to_der().as_bytes().to_vec(),
            Marshaling::Jws => sig.to_bytes().to_vec(),
        }
    }};
}

/// Verifies a prehashed digest against an ECDSA public key (`$verifying`).
macro_rules! ecdsa_verify {
    ($verifying:expr, $curve:ident, $input:expr, $sig:expr, $marshaling:expr) => {{
        use $curve::ecdsa::signature::hazmat::PrehashVerifier;
        let verifying: &$curve::ecdsa::VerifyingKey = $verifying;
        let parsed = match $marshaling {
            Marshaling::Asn1 => Some(
                $curve::ecdsa::Signature::from_der($sig)
                    .map_err(|_| Error::invalid("supplied signature is invalid"))?,
            ),
            Marshaling::Jws => $curve::ecdsa::Signature::from_slice($sig).ok(),
        };
        match parsed {
            Some(sig) => {
                let digest = pad_prehash($input, <$curve::FieldBytes>::default().len());
                verifying.verify_prehash(&digest, &sig).is_ok()
            }
            None => false,
        }
    }};
}

/// Runs `$body` with `$d` bound to the digest type of `$alg` (not `None`).
macro_rules! with_digest {
    ($alg:expr, $d:ident => $body:expr, none => $none:expr) => {
        match $alg {
            HashAlg::None => $none,
            HashAlg::Sha1 => {
                type $d = sha1::Sha1;
                $body
            }
            HashAlg::Sha2_224 => {
                type $d = sha2::Sha224;
                $body
            }
            HashAlg::Sha2_256 => {
                type $d = sha2::Sha256;
                $body
            }
            HashAlg::Sha2_384 => {
                type $d = sha2::Sha384;
                $body
            }
            HashAlg::Sha2_512 => {
                type $d = sha2::Sha512;
                $body
            }
            HashAlg::Sha3_224 => {
                type $d = sha3::Sha3_224;
                $body
            }
            HashAlg::Sha3_256 => {
                type $d = sha3::Sha3_256;
                $body
            }
            HashAlg::Sha3_384 => {
                type $d = sha3::Sha3_384;
                $body
            }
            HashAlg::Sha3_512 => {
                type $d = sha3::Sha3_512;
                $body
            }
        }
    };
}

macro_rules! ec_key {
    ($entry:expr, $curve:ident, $len:expr) => {{
        let d = $entry
            .ec_d
            .as_ref()
            .ok_or_else(|| Error::invalid("ecdsa key version has no private part"))?
            .to_be_bytes($len)?;
        $curve::ecdsa::SigningKey::from_slice(&d)
            .map_err(|_| Error::invalid("invalid ecdsa key in key entry"))?
    }};
}

/// The verifying key of a public-only ECDSA version, from its affine coordinates.
macro_rules! ec_public_key {
    ($entry:expr, $curve:ident, $len:expr) => {{
        let coordinate = |c: &Option<BigDec>| {
            c.as_ref()
                .ok_or_else(|| Error::invalid("ecdsa key version has no public key"))?
                .to_be_bytes($len)
        };
        let (x, y) = (coordinate(&$entry.ec_x)?, coordinate(&$entry.ec_y)?);
        let point = $curve::EncodedPoint::from_affine_coordinates(
            x.as_slice().into(),
            y.as_slice().into(),
            false,
        );
        $curve::ecdsa::VerifyingKey::from_encoded_point(&point)
            .map_err(|_| Error::invalid("invalid ecdsa public key in key entry"))?
    }};
}

/// A stored key with its per-version ciphers and signing keys built.
pub(crate) struct Key {
    pub policy: Policy,
    pub kind: KeyType,
    /// Indexed by version; `None` for versions not in `policy.keys`.
    versions: Vec<Option<Material>>,
}

/// What one version needs at hand. Symmetric keys of a derived policy and hmac keys keep only
/// their bytes in the policy entry. The `*Public` variants are versions imported as a public
/// key only: they verify (or, for RSA, encrypt) until their private part is imported.
enum Material {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
    XChaCha(Box<XChaCha20Poly1305>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
    P256(Box<p256::ecdsa::SigningKey>),
    P384(Box<p384::ecdsa::SigningKey>),
    P521(Box<p521::ecdsa::SigningKey>),
    Ed25519Public(Box<ed25519_dalek::VerifyingKey>),
    P256Public(Box<p256::ecdsa::VerifyingKey>),
    P384Public(Box<p384::ecdsa::VerifyingKey>),
    P521Public(Box<p521::ecdsa::VerifyingKey>),
    Rsa(Box<RsaPrivateKey>),
    RsaPublic(Box<RsaPublicKey>),
    Raw,
}

/// A hash a client may name (OpenBao's `HashTypeMap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashAlg {
    None,
    Sha1,
    Sha2_224,
    Sha2_256,
    Sha2_384,
    Sha2_512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
}

/// How a signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marshaling {
    Asn1,
    Jws,
}

/// RSA-PSS salt length as OpenBao's `salt_length`: Go's `PSSSaltLengthAuto` (0) and
/// `PSSSaltLengthEqualsHash` (-1), or a length.
pub(crate) type SaltLength = i64;

/// The options of a sign or verify request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignOptions<'a> {
    pub hash: HashAlg,
    pub marshaling: Marshaling,
    pub salt_length: SaltLength,
    pub signature_algorithm: &'a str,
}

impl Key {
    /// Builds every usable version's material from `policy`.
    pub(crate) fn new(policy: Policy) -> Result<Self, Error> {
        let kind = policy.key_type()?;
        let latest = usize::try_from(policy.latest_version).unwrap_or(0);
        let mut versions: Vec<Option<Material>> = (0..=latest).map(|_| None).collect();
        for (name, entry) in &policy.keys {
            let Ok(version) = name.parse::<usize>() else {
                continue;
            };
            if version > latest {
                continue;
            }
            versions[version] = Some(build_material(kind, policy.derived, entry)?);
        }
        Ok(Key {
            policy,
            kind,
            versions,
        })
    }

    /// The version a request names: 0 is the latest.
    fn encryption_version(&self, requested: i64) -> Result<i64, Error> {
        let p = &self.policy;
        match requested {
            0 => Ok(p.latest_version),
            v if v < 0 => Err(Error::invalid(
                "requested version for encryption is negative",
            )),
            v if v > p.latest_version => Err(Error::invalid(
                "requested version for encryption is higher than the latest key version",
            )),
            v if v < p.min_encryption_version => Err(Error::invalid(
                "requested version for encryption is less than the minimum encryption key version",
            )),
            v => Ok(v),
        }
    }

    fn material(&self, version: i64) -> Result<&Material, Error> {
        usize::try_from(version)
            .ok()
            .and_then(|v| self.versions.get(v))
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::invalid("no such key version"))
    }

    fn check_usable(&self) -> Result<(), Error> {
        if self.policy.soft_deleted {
            return Err(Error::invalid(SOFT_DELETED));
        }
        Ok(())
    }

    /// The convergent scheme of `version` (0 when the key is not convergent).
    fn convergent_version(&self, version: i64) -> i64 {
        if !self.policy.convergent_encryption {
            return 0;
        }
        let mut cv = match self.policy.convergent_version {
            0 => 1,
            v => v,
        };
        if let Some(entry) = self.policy.keys.get(&version.to_string()) {
            if entry.convergent_version != 0 {
                cv = entry.convergent_version;
            }
        }
        cv
    }

    /// Encrypts `plaintext` with `version` (0 = latest) and returns `vault:v<N>:<base64>` and
    /// the version used.
    pub(crate) fn encrypt(
        &self,
        requested_version: i64,
        context: &[u8],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<(String, i64), Error> {
        self.check_usable()?;
        if !self.kind.encryption_supported() {
            return Err(Error::invalid(format!(
                "message encryption not supported for key type {}",
                self.kind.name()
            )));
        }
        let version = self.encryption_version(requested_version)?;
        let raw = if self.kind.is_rsa() {
            let public = match self.material(version)? {
                Material::Rsa(key) => key.to_public_key(),
                Material::RsaPublic(key) => (**key).clone(),
                _ => return Err(Error::internal("rsa key without rsa material")),
            };
            public
                .encrypt(&mut OsRng, Oaep::new::<Sha256>(), plaintext)
                .map_err(|_| Error::invalid("failed to RSA encrypt the plaintext"))?
        } else {
            self.seal(version, context, plaintext, aad)?
        };
        let mut out = self.version_prefix(version)?;
        out.reserve(raw.len().div_ceil(3) * 4);
        STANDARD.encode_string(&raw, &mut out);
        Ok((out, version))
    }

    /// `nonce | ciphertext | tag` of a symmetric key.
    fn seal(
        &self,
        version: i64,
        context: &[u8],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let nonce_len = if self.kind == KeyType::XChaCha20Poly1305 {
            24
        } else {
            12
        };
        let mut buf = Vec::with_capacity(nonce_len + plaintext.len() + 16);
        buf.resize(nonce_len, 0);
        if !self.policy.derived {
            OsRng.fill_bytes(&mut buf[..nonce_len]);
            buf.extend_from_slice(plaintext);
            seal_with(self.material(version)?, nonce_len, aad, &mut buf)?;
            return Ok(buf);
        }
        let convergent = self.convergent_version(version);
        if self.policy.convergent_encryption
            && convergent < CURRENT_CONVERGENT_VERSION
            && convergent > 0
        {
            return Err(Error::invalid(format!(
                "refusing to support decryption with old convergent encryption key: version \
                 {convergent}"
            )));
        }
        let enc_len = self.kind.key_len();
        let hmac_len = if convergent > 2 { 32 } else { 0 };
        let derived = self.derive(context, version, enc_len + hmac_len)?;
        if derived.len() < enc_len + hmac_len {
            return Err(Error::internal("could not derive key, length too small"));
        }
        if self.policy.convergent_encryption {
            // Convergent version 3: the nonce is an HMAC of the plaintext under the second
            // half of the derived key, so equal plaintexts under one context encrypt alike.
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&derived[enc_len..])
                .map_err(|_| Error::internal("invalid hmac key length"))?;
            mac.update(plaintext);
            let sum = mac.finalize().into_bytes();
            buf[..nonce_len].copy_from_slice(&sum[..nonce_len]);
        } else {
            OsRng.fill_bytes(&mut buf[..nonce_len]);
        }
        buf.extend_from_slice(plaintext);
        let cipher = symmetric_material(self.kind, &derived[..enc_len])?;
        seal_with(&cipher, nonce_len, aad, &mut buf)?;
        Ok(buf)
    }

    /// Decrypts a `vault:v<N>:` ciphertext; returns the plaintext and the version it named.
    pub(crate) fn decrypt(
        &self,
        ciphertext: &str,
        context: &[u8],
        aad: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, i64), Error> {
        self.check_usable()?;
        if !self.kind.encryption_supported() {
            return Err(Error::invalid(format!(
                "message decryption not supported for key type {}",
                self.kind.name()
            )));
        }
        let (version, body) = self.split_versioned(ciphertext, "ciphertext")?;
        let convergent = self.convergent_version(version);
        if self.policy.convergent_encryption
            && convergent < CURRENT_CONVERGENT_VERSION
            && convergent > 0
        {
            return Err(Error::invalid(format!(
                "refusing to support decryption with old convergent encryption key: version \
                 {convergent}"
            )));
        }
        let mut raw = Zeroizing::new(
            STANDARD
                .decode(body)
                .map_err(|_| Error::invalid("invalid ciphertext: could not decode base64"))?,
        );
        if self.kind.is_rsa() {
            let Material::Rsa(key) = self.material(version)? else {
                return Err(Error::invalid(
                    "cannot decrypt ciphertext, key version does not have a private counterpart",
                ));
            };
            let plain = key
                .decrypt(Oaep::new::<Sha256>(), &raw)
                .map_err(|_| Error::invalid("failed to RSA decrypt the ciphertext"))?;
            return Ok((Zeroizing::new(plain), version));
        }
        let nonce_len = if self.kind == KeyType::XChaCha20Poly1305 {
            24
        } else {
            12
        };
        if raw.len() < nonce_len {
            return Err(Error::invalid("invalid ciphertext length"));
        }
        let derived_cipher;
        let material = if self.policy.derived {
            let key = self.derive(context, version, self.kind.key_len())?;
            derived_cipher = symmetric_material(self.kind, &key)?;
            &derived_cipher
        } else {
            self.material(version)?
        };
        open_with(material, self.kind, nonce_len, aad, &mut raw)?;
        let plain = Zeroizing::new(raw[nonce_len..].to_vec());
        Ok((plain, version))
    }

    /// Splits `<prefix><version><sep><body>` and checks the version against the policy;
    /// `what` is `ciphertext` or `signature` for the error texts.
    fn split_versioned<'s>(&self, value: &'s str, what: &str) -> Result<(i64, &'s str), Error> {
        let (head, sep) = self.policy.template_parts()?;
        let rest = value
            .strip_prefix(head)
            .ok_or_else(|| Error::invalid(format!("invalid {what}: no prefix")))?;
        let (ver, body) = rest
            .split_once(sep)
            .filter(|_| !sep.is_empty())
            .ok_or_else(|| Error::invalid(format!("invalid {what}: wrong number of fields")))?;
        let mut version: i64 = ver.parse().map_err(|_| {
            Error::invalid(format!(
                "invalid {what}: version number could not be decoded"
            ))
        })?;
        if version == 0 && what == "ciphertext" {
            // Keys once started at version 0 (OpenBao's compatibility mode).
            version = 1;
        }
        if version > self.policy.latest_version {
            return Err(Error::invalid(format!(
                "invalid {what}: version is too new"
            )));
        }
        if self.policy.min_decryption_version > 0 && version < self.policy.min_decryption_version {
            return Err(Error::invalid(TOO_OLD));
        }
        Ok((version, body))
    }

    /// `vault:v<N>:` for `version`.
    pub(crate) fn version_prefix(&self, version: i64) -> Result<String, Error> {
        let (head, tail) = self.policy.template_parts()?;
        let mut out = String::with_capacity(head.len() + tail.len() + 4);
        out.push_str(head);
        let _ = write!(out, "{version}");
        out.push_str(tail);
        Ok(out)
    }

    /// The derived key of `version` for `context` (OpenBao's `DeriveKey`, salt empty).
    fn derive(
        &self,
        context: &[u8],
        version: i64,
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        if !self.kind.derivation_supported() {
            return Err(Error::invalid(format!(
                "derivation not supported for key type {}",
                self.kind.name()
            )));
        }
        if version <= 0 || version > self.policy.latest_version {
            return Err(Error::invalid("invalid key version"));
        }
        if context.is_empty() {
            return Err(Error::invalid(MISSING_CONTEXT));
        }
        let entry = self.policy.entry(version)?;
        let base = entry
            .key
            .as_ref()
            .ok_or_else(|| Error::internal("key version has no key bytes"))?;
        match self.policy.kdf {
            KDF_HMAC_SHA256_COUNTER => {
                // NIST SP 800-108 counter mode, HMAC-SHA256, 256 bits: one block of
                // HMAC(key, be32(0) | context | be32(256)).
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(base.as_slice())
                    .map_err(|_| Error::internal("invalid kdf key"))?;
                mac.update(&0u32.to_be_bytes());
                mac.update(context);
                mac.update(&256u32.to_be_bytes());
                Ok(Zeroizing::new(mac.finalize().into_bytes().to_vec()))
            }
            KDF_HKDF_SHA256 => {
                let hk = hkdf::Hkdf::<Sha256>::new(None, base.as_slice());
                if self.kind == KeyType::Ed25519 {
                    // Go feeds the HKDF stream to ed25519.GenerateKey: the first 32 bytes
                    // are the seed; the private key is seed | public.
                    let mut seed = Zeroizing::new([0u8; 32]);
                    hk.expand(context, &mut seed[..])
                        .map_err(|_| Error::internal("hkdf expand"))?;
                    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
                    return Ok(Zeroizing::new(signing.to_keypair_bytes().to_vec()));
                }
                let mut out = Zeroizing::new(vec![0u8; len]);
                hk.expand(context, &mut out)
                    .map_err(|_| Error::internal("hkdf expand"))?;
                Ok(out)
            }
            _ => Err(Error::internal("unsupported key derivation mode")),
        }
    }

    /// The HMAC key of `version` (OpenBao's `HMACKey`).
    pub(crate) fn hmac_key(&self, version: i64) -> Result<&[u8], Error> {
        self.check_usable()?;
        if version < 0 {
            return Err(Error::invalid(
                "key version does not exist (cannot be negative)",
            ));
        }
        if version > self.policy.latest_version {
            return Err(Error::invalid(format!(
                "key version does not exist; latest key version is {}",
                self.policy.latest_version
            )));
        }
        let entry = self.policy.entry(version)?;
        let key = if self.kind == KeyType::Hmac {
            entry.key.as_ref()
        } else {
            entry.hmac_key.as_ref()
        };
        key.map(|k| k.as_slice())
            .ok_or_else(|| Error::invalid("no HMAC key exists for that key version"))
    }

    /// Signs `input` (already hashed for ECDSA and RSA unless Ed25519). Returns the
    /// signature, the version and, for a derived Ed25519 key, the derived public key.
    pub(crate) fn sign(
        &self,
        requested_version: i64,
        context: &[u8],
        input: &[u8],
        opts: &SignOptions<'_>,
    ) -> Result<(String, i64, Option<Vec<u8>>), Error> {
        self.check_usable()?;
        if !self.kind.signing_supported() {
            return Err(Error::invalid(format!(
                "message signing not supported for key type {}",
                self.kind.name()
            )));
        }
        let p = &self.policy;
        let version = match requested_version {
            0 => p.latest_version,
            v if v < 0 => return Err(Error::invalid("requested version for signing is negative")),
            v if v > p.latest_version => {
                return Err(Error::invalid(
                    "requested version for signing is higher than the latest key version",
                ))
            }
            v if p.min_encryption_version > 0 && v < p.min_encryption_version => {
                return Err(Error::invalid(
                    "requested version for signing is less than the minimum encryption key \
                     version",
                ))
            }
            v => v,
        };
        let material = self.material(version)?;
        let mut public = None;
        let sig: Vec<u8> = match material {
            Material::P256(key) => ecdsa_sign!(key, p256, input, opts.marshaling),
            Material::P384(key) => ecdsa_sign!(key, p384, input, opts.marshaling),
            Material::P521(key) => ecdsa_sign!(key, p521, input, opts.marshaling),
            Material::Ed25519(key) => {
                use ed25519_dalek::Signer;
                key.sign(input).to_bytes().to_vec()
            }
            Material::Raw if self.kind == KeyType::Ed25519 => {
                use ed25519_dalek::Signer;
                let derived = self.derive(context, version, 32)?;
                // Only HKDF yields an Ed25519 key pair; the legacy counter KDF (imported
                // derived keys get it, as in OpenBao) yields 32 bytes, which OpenBao refuses
                // with Go's text.
                let bytes: [u8; 64] = derived[..].try_into().map_err(|_| {
                    Error::invalid(format!(
                        "ed25519: bad private key length: {}",
                        derived.len()
                    ))
                })?;
                let key = ed25519_dalek::SigningKey::from_keypair_bytes(&bytes)
                    .map_err(|_| Error::internal("derived ed25519 key is invalid"))?;
                public = Some(key.verifying_key().as_bytes().to_vec());
                key.sign(input).to_bytes().to_vec()
            }
            Material::Rsa(key) => rsa_sign(key, input, opts)?,
            Material::RsaPublic(_)
            | Material::Ed25519Public(_)
            | Material::P256Public(_)
            | Material::P384Public(_)
            | Material::P521Public(_) => {
                return Err(Error::invalid(
                    "requested version for signing does not contain a private part",
                ))
            }
            _ => return Err(Error::internal("signing key without signing material")),
        };
        let mut out = self.version_prefix(version)?;
        match opts.marshaling {
            Marshaling::Asn1 => STANDARD.encode_string(&sig, &mut out),
            Marshaling::Jws => URL_SAFE_NO_PAD.encode_string(&sig, &mut out),
        }
        Ok((out, version, public))
    }

    /// Verifies a `vault:v<N>:` signature over `input` (hashed as for `sign`).
    pub(crate) fn verify(
        &self,
        signature: &str,
        context: &[u8],
        input: &[u8],
        opts: &SignOptions<'_>,
    ) -> Result<bool, Error> {
        self.check_usable()?;
        if !self.kind.signing_supported() {
            return Err(Error::invalid(format!(
                "message verification not supported for key type {}",
                self.kind.name()
            )));
        }
        let (version, body) = self.split_versioned(signature, "signature")?;
        let sig = match opts.marshaling {
            Marshaling::Asn1 => STANDARD.decode(body),
            Marshaling::Jws => URL_SAFE_NO_PAD.decode(body),
        }
        .map_err(|_| Error::invalid("invalid base64 signature value"))?;
        let material = self.material(version)?;
        Ok(match material {
            Material::P256(key) => {
                ecdsa_verify!(key.verifying_key(), p256, input, &sig, opts.marshaling)
            }
            Material::P384(key) => {
                ecdsa_verify!(key.verifying_key(), p384, input, &sig, opts.marshaling)
            }
            Material::P521(key) => {
                ecdsa_verify!(
                    &p521::ecdsa::VerifyingKey::from(key.as_ref()),
                    p521,
                    input,
                    &sig,
                    opts.marshaling
                )
            }
            Material::P256Public(key) => ecdsa_verify!(key, p256, input, &sig, opts.marshaling),
            Material::P384Public(key) => ecdsa_verify!(key, p384, input, &sig, opts.marshaling),
            Material::P521Public(key) => ecdsa_verify!(key, p521, input, &sig, opts.marshaling),
            Material::Ed25519(key) => ed25519_verify(&key.verifying_key(), input, &sig),
            Material::Ed25519Public(key) => ed25519_verify(key, input, &sig),
            Material::Raw if self.kind == KeyType::Ed25519 => {
                let derived = self.derive(context, version, 32)?;
                // A 32-byte derived key (legacy counter KDF) has no public half: OpenBao
                // verifies against an all-zero key, which never matches.
                let Ok(bytes) = <[u8; 64]>::try_from(&derived[..]) else {
                    return Ok(false);
                };
                let key = ed25519_dalek::SigningKey::from_keypair_bytes(&bytes)
                    .map_err(|_| Error::internal("derived ed25519 key is invalid"))?;
                ed25519_verify(&key.verifying_key(), input, &sig)
            }
            Material::Rsa(key) => rsa_verify(&key.to_public_key(), input, &sig, opts)?,
            Material::RsaPublic(key) => rsa_verify(key, input, &sig, opts)?,
            _ => return Err(Error::internal("signing key without signing material")),
        })
    }

    /// The RSA private key of `version`, if it has one (the mount's BYOK wrapping key).
    pub(crate) fn rsa_private_key(&self, version: i64) -> Option<&RsaPrivateKey> {
        match self.material(version) {
            Ok(Material::Rsa(key)) => Some(key),
            _ => None,
        }
    }

    /// The RSA public key of `version`, from its private key or imported alone (the
    /// destination of `byok-export`).
    pub(crate) fn rsa_public_key(&self, version: i64) -> Option<RsaPublicKey> {
        match self.material(version) {
            Ok(Material::Rsa(key)) => Some(key.to_public_key()),
            Ok(Material::RsaPublic(key)) => Some((**key).clone()),
            _ => None,
        }
    }

    /// The Ed25519 public key of `version` derived for `context` (key reads with `context`).
    pub(crate) fn derived_public_key(&self, version: i64, context: &[u8]) -> Result<String, Error> {
        let derived = self.derive(context, version, 32)?;
        // Go's `PrivateKey.Public` copies bytes 32..64 into a zeroed key: a 32-byte derived
        // key (legacy counter KDF) reads as the all-zero public key there too.
        let mut public = [0u8; 32];
        if let Some(half) = derived.get(32..64) {
            public.copy_from_slice(half);
        }
        Ok(STANDARD.encode(public))
    }
}

impl HashAlg {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "none" => HashAlg::None,
            "sha1" => HashAlg::Sha1,
            "sha2-224" => HashAlg::Sha2_224,
            "sha2-256" => HashAlg::Sha2_256,
            "sha2-384" => HashAlg::Sha2_384,
            "sha2-512" => HashAlg::Sha2_512,
            "sha3-224" => HashAlg::Sha3_224,
            "sha3-256" => HashAlg::Sha3_256,
            "sha3-384" => HashAlg::Sha3_384,
            "sha3-512" => HashAlg::Sha3_512,
            _ => return None,
        })
    }

    /// The digest of `data`; `None` hashes nothing and returns the input.
    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        with_digest!(self, D => D::digest(data).to_vec(), none => data.to_vec())
    }

    /// HMAC of `data` under `key`; `None` is not an HMAC hash.
    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        with_digest!(self, D => {
            let mut mac = <Hmac<D> as Mac>::new_from_slice(key).ok()?;
            mac.update(data);
            Some(mac.finalize().into_bytes().to_vec())
        }, none => None)
    }

    fn output_len(self) -> usize {
        use sha2::Digest;
        with_digest!(self, D => <D as Digest>::output_size(), none => 0)
    }
}

fn rsa_sign(key: &RsaPrivateKey, input: &[u8], opts: &SignOptions<'_>) -> Result<Vec<u8>, Error> {
    use rsa::traits::PublicKeyParts;
    let bits = key.n().bits();
    let sig_alg = if opts.signature_algorithm.is_empty() {
        "pss"
    } else {
        opts.signature_algorithm
    };
    let result = match sig_alg {
        "pss" => {
            let h = opts.hash.output_len();
            let max = ((bits + 6) / 8).saturating_sub(2 + h) as i64;
            let salt = match opts.salt_length {
                0 => max,
                -1 => h as i64,
                n => n,
            };
            if opts.hash == HashAlg::None || !(-1..=max).contains(&opts.salt_length) {
                return Err(Error::invalid(format!(
                    "requested salt length {} is invalid",
                    opts.salt_length
                )));
            }
            let salt = usize::try_from(salt).unwrap_or(0);
            with_digest!(opts.hash, D => key.sign_with_rng(&mut OsRng, Pss::new_with_salt::<D>(salt), input),
                none => unreachable!("hash none was refused above"))
        }
        "pkcs1v15" => with_digest!(opts.hash, D => key.sign(Pkcs1v15Sign::new::<D>(), input),
            none => key.sign(Pkcs1v15Sign::new_unprefixed(), input)),
        other => {
            return Err(Error::invalid(format!(
                "unsupported rsa signature algorithm {other}"
            )))
        }
    };
    result.map_err(|_| Error::invalid("input does not fit the signature scheme"))
}

fn rsa_verify(
    key: &RsaPublicKey,
    input: &[u8],
    sig: &[u8],
    opts: &SignOptions<'_>,
) -> Result<bool, Error> {
    use rsa::traits::PublicKeyParts;
    let bits = key.n().bits();
    let sig_alg = if opts.signature_algorithm.is_empty() {
        "pss"
    } else {
        opts.signature_algorithm
    };
    Ok(match sig_alg {
        "pss" => {
            let h = opts.hash.output_len();
            let max = ((bits + 6) / 8).saturating_sub(2 + h) as i64;
            if opts.hash == HashAlg::None || !(-1..=max).contains(&opts.salt_length) {
                return Err(Error::invalid(format!(
                    "requested salt length {} is invalid",
                    opts.salt_length
                )));
            }
            // Go detects the salt length when verifying with "auto": signers use the
            // maximum (Go's auto) or the hash length, so try both.
            let candidates: &[i64] = match opts.salt_length {
                0 => &[max, h as i64],
                -1 => &[h as i64],
                n => &[n][..],
            };
            candidates.iter().any(|salt| {
                let salt = usize::try_from(*salt).unwrap_or(0);
                with_digest!(opts.hash, D => key.verify(Pss::new_with_salt::<D>(salt), input, sig).is_ok(),
                    none => false)
            })
        }
        "pkcs1v15" => {
            with_digest!(opts.hash, D => key.verify(Pkcs1v15Sign::new::<D>(), input, sig).is_ok(),
            none => key.verify(Pkcs1v15Sign::new_unprefixed(), input, sig).is_ok())
        }
        other => {
            return Err(Error::invalid(format!(
                "unsupported rsa signature algorithm {other}"
            )))
        }
    })
}

/// A digest shorter than RustCrypto's minimum (half the field) left-padded to the field size:
/// the same integer, which is what Go's ECDSA signs (a SHA-256 digest with P-521).
fn pad_prehash(digest: &[u8], field_len: usize) -> std::borrow::Cow<'_, [u8]> {
    if digest.len() >= field_len / 2 {
        return std::borrow::Cow::Borrowed(digest);
    }
    let mut out = vec![0u8; field_len];
    out[field_len - digest.len()..].copy_from_slice(digest);
    std::borrow::Cow::Owned(out)
}

fn ed25519_verify(key: &ed25519_dalek::VerifyingKey, input: &[u8], sig: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    key.verify_strict(input, &ed25519_dalek::Signature::from_bytes(&bytes))
        .is_ok()
}

/// Encrypts `buf[nonce_len..]` in place with the nonce in `buf[..nonce_len]`, appending the tag.
fn seal_with(
    material: &Material,
    nonce_len: usize,
    aad: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    let (nonce, body) = buf.split_at_mut(nonce_len);
    let tag = match material {
        Material::Aes128(c) => c.encrypt_in_place_detached(nonce[..].into(), aad, body),
        Material::Aes256(c) => c.encrypt_in_place_detached(nonce[..].into(), aad, body),
        Material::ChaCha(c) => c.encrypt_in_place_detached(nonce[..].into(), aad, body),
        Material::XChaCha(c) => c.encrypt_in_place_detached(nonce[..].into(), aad, body),
        _ => return Err(Error::internal("encryption key without a cipher")),
    }
    .map_err(|_| Error::invalid("plaintext is too long"))?;
    buf.extend_from_slice(&tag);
    Ok(())
}

/// Decrypts `nonce | ciphertext | tag` in place; on success `buf[nonce_len..]` is the
/// plaintext.
fn open_with(
    material: &Material,
    kind: KeyType,
    nonce_len: usize,
    aad: &[u8],
    buf: &mut Zeroizing<Vec<u8>>,
) -> Result<(), Error> {
    let failed = || {
        // Go's AEAD error texts, which OpenBao passes through.
        if kind.is_symmetric() && matches!(kind, KeyType::Aes128Gcm96 | KeyType::Aes256Gcm96) {
            Error::invalid("cipher: message authentication failed")
        } else {
            Error::invalid("chacha20poly1305: message authentication failed")
        }
    };
    if buf.len() < nonce_len + 16 {
        return Err(failed());
    }
    let split = buf.len() - 16;
    let (head, tag) = buf.split_at_mut(split);
    let (nonce, body) = head.split_at_mut(nonce_len);
    let tag = &tag[..];
    let result = match material {
        Material::Aes128(c) => c.decrypt_in_place_detached(nonce[..].into(), aad, body, tag.into()),
        Material::Aes256(c) => c.decrypt_in_place_detached(nonce[..].into(), aad, body, tag.into()),
        Material::ChaCha(c) => c.decrypt_in_place_detached(nonce[..].into(), aad, body, tag.into()),
        Material::XChaCha(c) => {
            c.decrypt_in_place_detached(nonce[..].into(), aad, body, tag.into())
        }
        _ => return Err(Error::internal("decryption key without a cipher")),
    };
    result.map_err(|_| failed())?;
    buf.truncate(split);
    Ok(())
}

fn symmetric_material(kind: KeyType, key: &[u8]) -> Result<Material, Error> {
    let bad = |_| Error::internal("symmetric key has the wrong length");
    Ok(match kind {
        KeyType::Aes128Gcm96 => {
            Material::Aes128(Box::new(Aes128Gcm::new_from_slice(key).map_err(bad)?))
        }
        KeyType::Aes256Gcm96 => {
            Material::Aes256(Box::new(Aes256Gcm::new_from_slice(key).map_err(bad)?))
        }
        KeyType::ChaCha20Poly1305 => Material::ChaCha(Box::new(
            ChaCha20Poly1305::new_from_slice(key).map_err(bad)?,
        )),
        KeyType::XChaCha20Poly1305 => Material::XChaCha(Box::new(
            XChaCha20Poly1305::new_from_slice(key).map_err(bad)?,
        )),
        _ => return Err(Error::internal("not a symmetric key type")),
    })
}

fn build_material(kind: KeyType, derived: bool, entry: &KeyEntry) -> Result<Material, Error> {
    let bytes = || {
        entry
            .key
            .as_ref()
            .map(|k| k.as_slice())
            .ok_or_else(|| Error::invalid("key version has no key material"))
    };
    Ok(match kind {
        _ if kind.is_symmetric() && derived => Material::Raw,
        _ if kind.is_symmetric() => symmetric_material(kind, bytes()?)?,
        KeyType::Hmac => Material::Raw,
        KeyType::Ed25519 if derived => Material::Raw,
        KeyType::Ed25519 if entry.key.is_none() => {
            let public: [u8; 32] = STANDARD
                .decode(entry.public_key.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| Error::invalid("key version has no key material"))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
                .map_err(|_| Error::invalid("invalid ed25519 public key in key entry"))?;
            Material::Ed25519Public(Box::new(key))
        }
        KeyType::Ed25519 => {
            let raw = bytes()?;
            let seed: [u8; 32] = raw
                .get(..32)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| Error::invalid("ed25519 key has the wrong length"))?;
            Material::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
        }
        KeyType::EcdsaP256 if entry.ec_d.is_none() => {
            Material::P256Public(Box::new(ec_public_key!(entry, p256, 32)))
        }
        KeyType::EcdsaP384 if entry.ec_d.is_none() => {
            Material::P384Public(Box::new(ec_public_key!(entry, p384, 48)))
        }
        KeyType::EcdsaP521 if entry.ec_d.is_none() => {
            Material::P521Public(Box::new(ec_public_key!(entry, p521, 66)))
        }
        KeyType::EcdsaP256 => Material::P256(Box::new(ec_key!(entry, p256, 32))),
        KeyType::EcdsaP384 => Material::P384(Box::new(ec_key!(entry, p384, 48))),
        KeyType::EcdsaP521 => Material::P521(Box::new(ec_key!(entry, p521, 66))),
        _ => {
            if let Some(go) = &entry.rsa_key {
                let primes = go
                    .primes
                    .iter()
                    .map(BigDec::to_biguint)
                    .collect::<Result<Vec<_>, _>>()?;
                let key = RsaPrivateKey::from_components(
                    go.n.to_biguint()?,
                    rsa::BigUint::from(go.e),
                    go.d.to_biguint()?,
                    primes,
                )
                .map_err(|_| Error::invalid("invalid rsa key in key entry"))?;
                Material::Rsa(Box::new(key))
            } else if let Some(go) = &entry.rsa_public_key {
                let key = RsaPublicKey::new(go.n.to_biguint()?, rsa::BigUint::from(go.e))
                    .map_err(|_| Error::invalid("invalid rsa public key in key entry"))?;
                Material::RsaPublic(Box::new(key))
            } else {
                return Err(Error::invalid("rsa key version has no key"));
            }
        }
    })
}

/// OpenBao's text for a derived key used without a context.
pub(crate) const MISSING_CONTEXT: &str = "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key";
