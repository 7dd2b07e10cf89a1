//! A named key as OpenBao stores it: the JSON of openbao `sdk/helper/keysutil/policy.go`
//! (`Policy`, `KeyEntry`, `archivedKeys`, `KeyData`), field for field, so that a backup taken
//! by OpenBao restores here and one taken here restores in OpenBao.
//!
//! Go writes `[]byte` as standard base64 (or `null`), `*big.Int` as a bare decimal JSON number
//! (hundreds of digits for RSA: kept exact through `serde_json`'s raw values), `time.Time` as
//! RFC 3339 with nanoseconds and `time.Duration` as nanoseconds. This module owns only the
//! format and the key generation; using a key is `key.rs`.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use coffer_sdk::Error;
use rand::rngs::OsRng;
use rand::RngCore;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::BigUint;
use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::time::{now_nanos, rfc3339_nanos};

/// The key types, numbered as OpenBao's `KeyType` constants (the number is what is stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    Aes256Gcm96,
    EcdsaP256,
    Ed25519,
    Rsa2048,
    Rsa4096,
    ChaCha20Poly1305,
    EcdsaP384,
    EcdsaP521,
    Aes128Gcm96,
    Rsa3072,
    Hmac,
    XChaCha20Poly1305,
}

impl KeyType {
    pub(crate) fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => KeyType::Aes256Gcm96,
            1 => KeyType::EcdsaP256,
            2 => KeyType::Ed25519,
            3 => KeyType::Rsa2048,
            4 => KeyType::Rsa4096,
            5 => KeyType::ChaCha20Poly1305,
            6 => KeyType::EcdsaP384,
            7 => KeyType::EcdsaP521,
            8 => KeyType::Aes128Gcm96,
            9 => KeyType::Rsa3072,
            10 => KeyType::Hmac,
            11 => KeyType::XChaCha20Poly1305,
            _ => return None,
        })
    }

    pub(crate) fn code(self) -> i64 {
        match self {
            KeyType::Aes256Gcm96 => 0,
            KeyType::EcdsaP256 => 1,
            KeyType::Ed25519 => 2,
            KeyType::Rsa2048 => 3,
            KeyType::Rsa4096 => 4,
            KeyType::ChaCha20Poly1305 => 5,
            KeyType::EcdsaP384 => 6,
            KeyType::EcdsaP521 => 7,
            KeyType::Aes128Gcm96 => 8,
            KeyType::Rsa3072 => 9,
            KeyType::Hmac => 10,
            KeyType::XChaCha20Poly1305 => 11,
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "aes128-gcm96" => KeyType::Aes128Gcm96,
            "aes256-gcm96" => KeyType::Aes256Gcm96,
            "chacha20-poly1305" => KeyType::ChaCha20Poly1305,
            "xchacha20-poly1305" => KeyType::XChaCha20Poly1305,
            "ecdsa-p256" => KeyType::EcdsaP256,
            "ecdsa-p384" => KeyType::EcdsaP384,
            "ecdsa-p521" => KeyType::EcdsaP521,
            "ed25519" => KeyType::Ed25519,
            "rsa-2048" => KeyType::Rsa2048,
            "rsa-3072" => KeyType::Rsa3072,
            "rsa-4096" => KeyType::Rsa4096,
            "hmac" => KeyType::Hmac,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyType::Aes128Gcm96 => "aes128-gcm96",
            KeyType::Aes256Gcm96 => "aes256-gcm96",
            KeyType::ChaCha20Poly1305 => "chacha20-poly1305",
            KeyType::XChaCha20Poly1305 => "xchacha20-poly1305",
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::EcdsaP521 => "ecdsa-p521",
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::Hmac => "hmac",
        }
    }

    pub(crate) fn is_symmetric(self) -> bool {
        matches!(
            self,
            KeyType::Aes128Gcm96
                | KeyType::Aes256Gcm96
                | KeyType::ChaCha20Poly1305
                | KeyType::XChaCha20Poly1305
        )
    }

    pub(crate) fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    pub(crate) fn is_ecdsa(self) -> bool {
        matches!(
            self,
            KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521
        )
    }

    pub(crate) fn encryption_supported(self) -> bool {
        self.is_symmetric() || self.is_rsa()
    }

    pub(crate) fn signing_supported(self) -> bool {
        self.is_ecdsa() || self.is_rsa() || self == KeyType::Ed25519
    }

    /// ECDSA and RSA sign a digest of the input; Ed25519 signs the input itself.
    pub(crate) fn hash_signature_input(self) -> bool {
        self.is_ecdsa() || self.is_rsa()
    }

    pub(crate) fn derivation_supported(self) -> bool {
        self.is_symmetric() || self == KeyType::Ed25519
    }

    /// Bytes of the symmetric key (and of a derived one).
    pub(crate) fn key_len(self) -> usize {
        if self == KeyType::Aes128Gcm96 {
            16
        } else {
            32
        }
    }
}

/// One key as stored at `policy/<name>` (OpenBao's `Policy`).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Policy {
    pub name: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub key_size: i64,
    pub keys: BTreeMap<String, KeyEntry>,
    pub derived: bool,
    pub kdf: i64,
    pub convergent_encryption: bool,
    pub exportable: bool,
    pub min_decryption_version: i64,
    pub min_encryption_version: i64,
    pub latest_version: i64,
    pub archive_version: i64,
    pub archive_min_version: i64,
    pub min_available_version: i64,
    pub deletion_allowed: bool,
    pub convergent_version: i64,
    #[serde(rename = "type")]
    pub key_type: i64,
    pub backup_info: Option<Info>,
    pub restore_info: Option<Info>,
    pub allow_plaintext_backup: bool,
    pub version_template: String,
    pub storage_prefix: String,
    /// Nanoseconds (Go's `time.Duration`).
    pub auto_rotate_period: i64,
    #[serde(rename = "Imported")]
    pub imported: bool,
    #[serde(rename = "AllowImportedKeyRotation")]
    pub allow_imported_key_rotation: bool,
    pub soft_deleted: bool,
}

impl fmt::Debug for Policy {
    /// Key material is never printed: only the name, type and versions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("type", &self.key_type)
            .field("latest_version", &self.latest_version)
            .finish_non_exhaustive()
    }
}

/// When a backup or restore happened, and the latest version then.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Info {
    pub time: String,
    pub version: i64,
}

/// One version of a key (OpenBao's `KeyEntry`).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct KeyEntry {
    /// The symmetric key, the HMAC key of an hmac key, or Go's 64-byte Ed25519 private key.
    pub key: Option<Bytes>,
    pub hmac_key: Option<Bytes>,
    /// RFC 3339; empty is Go's zero time, written as Go writes it (OpenBao cannot parse "").
    #[serde(serialize_with = "go_time")]
    pub time: String,
    pub ec_x: Option<BigDec>,
    pub ec_y: Option<BigDec>,
    pub ec_d: Option<BigDec>,
    pub rsa_key: Option<GoRsaPrivateKey>,
    pub rsa_public_key: Option<GoRsaPublicKey>,
    /// PEM for ECDSA, base64 for Ed25519, empty otherwise.
    pub public_key: String,
    pub convergent_version: i64,
    /// Seconds since the epoch (deprecated by OpenBao, still filled).
    pub creation_time: i64,
    pub certificate_chain: Option<Vec<Bytes>>,
}

/// The archive at `archive/<name>`: every version from `min_available_version` on, indexed by
/// `version - min_available_version` (slot 0 is an empty entry while that is 0).
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct Archive {
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
}

/// What `backup/<name>` encodes (OpenBao's `KeyData`).
#[derive(Serialize, Deserialize)]
pub(crate) struct KeyData {
    pub policy: Policy,
    pub archived_keys: Option<Archive>,
}

/// Go's `rsa.PrivateKey` as `encoding/json` writes it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct GoRsaPrivateKey {
    #[serde(rename = "N")]
    pub n: BigDec,
    #[serde(rename = "E")]
    pub e: u64,
    #[serde(rename = "D")]
    pub d: BigDec,
    #[serde(rename = "Primes")]
    pub primes: Vec<BigDec>,
    #[serde(rename = "Precomputed", default)]
    pub precomputed: GoPrecomputed,
}

/// Go's `rsa.PrecomputedValues` (its exported fields).
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct GoPrecomputed {
    #[serde(rename = "Dp")]
    pub dp: Option<BigDec>,
    #[serde(rename = "Dq")]
    pub dq: Option<BigDec>,
    #[serde(rename = "Qinv")]
    pub qinv: Option<BigDec>,
    #[serde(rename = "CRTValues", default)]
    pub crt_values: Vec<serde_json::Value>,
}

/// Go's `rsa.PublicKey`.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct GoRsaPublicKey {
    #[serde(rename = "N")]
    pub n: BigDec,
    #[serde(rename = "E")]
    pub e: u64,
}

/// Bytes that Go writes as standard base64; wiped on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Bytes(pub Zeroizing<Vec<u8>>);

impl Bytes {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Bytes(Zeroizing::new(bytes))
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Bytes {
    /// Key bytes are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Zeroizing::new(STANDARD.encode(self.0.as_slice())))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        STANDARD
            .decode(text.as_bytes())
            .map(Bytes::new)
            .map_err(|_| serde::de::Error::custom("invalid base64 in key entry"))
    }
}

/// A non-negative integer kept as the decimal text Go writes for a `*big.Int`; wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BigDec(Zeroizing<String>);

impl BigDec {
    pub(crate) fn from_biguint(n: &BigUint) -> Self {
        BigDec(Zeroizing::new(n.to_str_radix(10)))
    }

    pub(crate) fn from_be_bytes(bytes: &[u8]) -> Self {
        Self::from_biguint(&BigUint::from_bytes_be(bytes))
    }

    pub(crate) fn to_biguint(&self) -> Result<BigUint, Error> {
        BigUint::parse_bytes(self.0.as_bytes(), 10)
            .ok_or_else(|| Error::invalid("invalid integer in key entry"))
    }

    /// Big-endian bytes left-padded to `len` (a curve's field size).
    pub(crate) fn to_be_bytes(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
        let raw = Zeroizing::new(self.to_biguint()?.to_bytes_be());
        if raw.len() > len {
            return Err(Error::invalid("integer in key entry is too large"));
        }
        let mut out = Zeroizing::new(vec![0u8; len]);
        out[len - raw.len()..].copy_from_slice(&raw);
        Ok(out)
    }
}

impl Serialize for BigDec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for BigDec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Box::deserialize(d)?;
        let text: Box<str> = raw.into();
        let text = Zeroizing::new(String::from(text));
        // Go writes a bare number; accept a quoted one too.
        let digits = text.trim().trim_matches('"');
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom("invalid integer in key entry"));
        }
        Ok(BigDec(Zeroizing::new(digits.to_owned())))
    }
}

impl Policy {
    pub(crate) fn key_type(&self) -> Result<KeyType, Error> {
        KeyType::from_code(self.key_type)
            .ok_or_else(|| Error::invalid(format!("unsupported key type {}", self.key_type)))
    }

    /// The entry of `version`, or OpenBao's "no such key version".
    pub(crate) fn entry(&self, version: i64) -> Result<&KeyEntry, Error> {
        self.keys
            .get(&version.to_string())
            .ok_or_else(|| Error::invalid("no such key version"))
    }

    /// The versions an export covers (`export/` and `byok-export/`, as OpenBao's
    /// `path_export.go` and `path_byok.go` read the optional version): every stored one without
    /// a version, else the one named `latest`, `v<N>` or `<N>`, refused below
    /// `min_decryption_version` or when it is not stored.
    pub(crate) fn export_entries(
        &self,
        version: Option<&str>,
    ) -> Result<Vec<(&str, &KeyEntry)>, Error> {
        let Some(v) = version.filter(|v| !v.is_empty()) else {
            return Ok(self.keys.iter().map(|(v, e)| (v.as_str(), e)).collect());
        };
        let number = if v == "latest" {
            self.latest_version
        } else {
            v.trim_start_matches('v')
                .parse::<i64>()
                .map_err(|_| Error::invalid("invalid key version"))?
        };
        if number < self.min_decryption_version {
            return Err(Error::invalid(
                "version for export is below minimum decryption version",
            ));
        }
        let (v, entry) = self
            .keys
            .get_key_value(&number.to_string())
            .ok_or_else(|| Error::invalid("version does not exist or cannot be found"))?;
        Ok(vec![(v.as_str(), entry)])
    }

    /// The two halves of the version template around `{{version}}` (`vault:v` and `:`).
    pub(crate) fn template_parts(&self) -> Result<(&str, &str), Error> {
        let template = if self.version_template.is_empty() {
            DEFAULT_VERSION_TEMPLATE
        } else {
            self.version_template.as_str()
        };
        let mut parts = template.split("{{version}}");
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) => Ok((a, b)),
            _ => Err(Error::internal("error parsing version template")),
        }
    }

    /// A new key version in memory, as OpenBao's `RotateInMemory`.
    pub(crate) fn rotate_in_memory(&mut self) -> Result<(), Error> {
        if self.soft_deleted {
            return Err(Error::invalid(SOFT_DELETED));
        }
        let key_type = self.key_type()?;
        let mut entry = generate_entry(key_type, self.key_size)?;
        if self.convergent_encryption
            && (self.convergent_version == -1 || self.convergent_version > 1)
        {
            entry.convergent_version = CURRENT_CONVERGENT_VERSION;
        }
        self.latest_version += 1;
        self.keys.insert(self.latest_version.to_string(), entry);
        if self.min_decryption_version == 0 {
            self.min_decryption_version = 1;
        }
        Ok(())
    }

    /// Brings `keys` and the archive in line with `min_decryption_version` before a write, as
    /// OpenBao's `handleArchiving`: the archive keeps every version from
    /// `min_available_version`; `keys` only those a client may still use.
    pub(crate) fn handle_archiving(&mut self, archive: &mut Archive) -> Result<(), Error> {
        let has_min = self
            .keys
            .contains_key(&self.min_decryption_version.to_string());
        if self.min_decryption_version < 1 || self.latest_version < 1 {
            return Err(Error::internal("key versions are out of range"));
        }
        if self.min_decryption_version > self.latest_version {
            return Err(Error::invalid(format!(
                "minimum decryption version of {} is greater than the latest version {}",
                self.min_decryption_version, self.latest_version
            )));
        }
        if !has_min {
            if self.archive_version != self.latest_version {
                return Err(Error::internal(
                    "need to move keys from archive but archive version not up-to-date",
                ));
            }
            for v in self.min_decryption_version..=self.latest_version {
                let index = usize::try_from(v - self.min_available_version)
                    .map_err(|_| Error::internal("archive index out of range"))?;
                let entry = archive
                    .keys
                    .get(index)
                    .cloned()
                    .ok_or_else(|| Error::internal("archived key version missing"))?;
                self.keys.insert(v.to_string(), entry);
            }
            return Ok(());
        }
        let needed = usize::try_from(self.latest_version - self.min_available_version + 1)
            .map_err(|_| Error::internal("archive size out of range"))?;
        if archive.keys.len() < needed {
            archive.keys.resize_with(needed, KeyEntry::default);
        }
        for v in self.archive_version + 1..=self.latest_version {
            let index = usize::try_from(v - self.min_available_version)
                .map_err(|_| Error::internal("archive index out of range"))?;
            if let Some(entry) = self.keys.get(&v.to_string()) {
                archive.keys[index] = entry.clone();
            }
            self.archive_version = v;
        }
        // `keys/<name>/trim` raised `min_available_version`: the versions below it leave the
        // archive for good (OpenBao's "Trim the keys if required").
        if self.archive_min_version < self.min_available_version {
            let trimmed = usize::try_from(self.min_available_version - self.archive_min_version)
                .map_err(|_| Error::internal("archive index out of range"))?
                .min(archive.keys.len());
            archive.keys.drain(..trimmed);
            self.archive_min_version = self.min_available_version;
        }
        let first = self.latest_version - self.keys.len() as i64 + 1;
        for v in first..self.min_decryption_version {
            self.keys.remove(&v.to_string());
        }
        Ok(())
    }
}

/// A fresh key version of `key_type` (`key_size` bytes for hmac keys).
pub(crate) fn generate_entry(key_type: KeyType, key_size: i64) -> Result<KeyEntry, Error> {
    let now = now_nanos();
    let mut entry = KeyEntry {
        time: rfc3339_nanos(now),
        creation_time: now / 1_000_000_000,
        hmac_key: Some(random_bytes(32)),
        ..KeyEntry::default()
    };
    match key_type {
        KeyType::Aes128Gcm96
        | KeyType::Aes256Gcm96
        | KeyType::ChaCha20Poly1305
        | KeyType::XChaCha20Poly1305 => {
            entry.key = Some(random_bytes(key_type.key_len()));
        }
        KeyType::Hmac => {
            let size = usize::try_from(key_size).unwrap_or(0);
            if !(HMAC_MIN_KEY_SIZE..=HMAC_MAX_KEY_SIZE).contains(&size) {
                return Err(Error::invalid(format!(
                    "invalid key size for HMAC key, must be between {HMAC_MIN_KEY_SIZE} and \
                     {HMAC_MAX_KEY_SIZE} bytes"
                )));
            }
            let key = random_bytes(size);
            // OpenBao keeps HMACKey equal to Key for hmac keys.
            entry.hmac_key = Some(key.clone());
            entry.key = Some(key);
        }
        KeyType::Ed25519 => {
            let signing = ed25519_dalek::SigningKey::generate(&mut OsRng);
            entry.key = Some(Bytes::new(signing.to_keypair_bytes().to_vec()));
            entry.public_key = STANDARD.encode(signing.verifying_key().as_bytes());
        }
        KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521 => {
            let (x, y, d, pem) = generate_ec(key_type)?;
            entry.ec_x = Some(BigDec::from_be_bytes(&x));
            entry.ec_y = Some(BigDec::from_be_bytes(&y));
            entry.ec_d = Some(BigDec::from_be_bytes(&d));
            entry.public_key = pem;
        }
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            let bits = match key_type {
                KeyType::Rsa2048 => 2048,
                KeyType::Rsa3072 => 3072,
                _ => 4096,
            };
            let key = rsa::RsaPrivateKey::new(&mut OsRng, bits)
                .map_err(|e| Error::internal(format_args!("rsa key generation: {e}")))?;
            entry.rsa_key = Some(go_rsa_private(&key)?);
        }
    }
    Ok(entry)
}

/// Go's JSON form of an RSA private key, with its CRT values.
pub(crate) fn go_rsa_private(key: &rsa::RsaPrivateKey) -> Result<GoRsaPrivateKey, Error> {
    let mut key = key.clone();
    key.precompute()
        .map_err(|e| Error::internal(format_args!("rsa precompute: {e}")))?;
    let primes = key.primes();
    let qinv = key
        .qinv()
        .and_then(|q| q.to_biguint())
        .ok_or_else(|| Error::internal("rsa key without CRT coefficient"))?;
    Ok(GoRsaPrivateKey {
        n: BigDec::from_biguint(key.n()),
        e: key
            .e()
            .to_bytes_be()
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        d: BigDec::from_biguint(key.d()),
        primes: primes.iter().map(BigDec::from_biguint).collect(),
        precomputed: GoPrecomputed {
            dp: key.dp().map(BigDec::from_biguint),
            dq: key.dq().map(BigDec::from_biguint),
            qinv: Some(BigDec::from_biguint(&qinv)),
            crt_values: Vec::new(),
        },
    })
}

/// x, y, d (big-endian) and the PEM public key of an ECDSA key.
type EcParts = (Vec<u8>, Vec<u8>, Zeroizing<Vec<u8>>, String);

/// A new ECDSA key: x, y and d big-endian, and the PKIX public key in PEM as Go writes it.
fn generate_ec(key_type: KeyType) -> Result<EcParts, Error> {
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    macro_rules! gen {
        ($curve:ident) => {{
            let secret = $curve::SecretKey::random(&mut OsRng);
            let point = secret.public_key().to_encoded_point(false);
            let x = point.x().map(|x| x.to_vec()).unwrap_or_default();
            let y = point.y().map(|y| y.to_vec()).unwrap_or_default();
            let d = Zeroizing::new(secret.to_bytes().to_vec());
            let pem = secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| Error::internal(format_args!("public key pem: {e}")))?;
            (x, y, d, pem)
        }};
    }
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    Ok(match key_type {
        KeyType::EcdsaP256 => gen!(p256),
        KeyType::EcdsaP384 => gen!(p384),
        _ => gen!(p521),
    })
}

pub(crate) fn random_bytes(len: usize) -> Bytes {
    let mut out = vec![0u8; len];
    OsRng.fill_bytes(&mut out);
    Bytes::new(out)
}

fn go_time<S: Serializer>(time: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if time.is_empty() { GO_ZERO_TIME } else { time })
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// OpenBao's `ErrSoftDeleted`.
pub(crate) const SOFT_DELETED: &str = "refusing to use soft-deleted key";
/// OpenBao's `ErrTooOld`.
pub(crate) const TOO_OLD: &str =
    "ciphertext or signature version is disallowed by policy (too old)";
/// Go's `time.Time{}` in RFC 3339.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";
pub(crate) const DEFAULT_VERSION_TEMPLATE: &str = "vault:v{{version}}:";
pub(crate) const CURRENT_CONVERGENT_VERSION: i64 = 3;
pub(crate) const KDF_HMAC_SHA256_COUNTER: i64 = 0;
pub(crate) const KDF_HKDF_SHA256: i64 = 1;
pub(crate) const HMAC_MIN_KEY_SIZE: usize = 32;
pub(crate) const HMAC_MAX_KEY_SIZE: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_integers_round_trip_exactly_through_json() {
        let n = "21659785325229316847498135623344816660992343770929908575922767295227562397082634989980132346299983149595345129393841428920699592448349669136018177349874150351";
        let json = format!(r#"{{"N":{n},"E":65537}}"#);
        let key: GoRsaPublicKey = serde_json::from_str(&json).unwrap();
        assert_eq!(key.n.to_biguint().unwrap().to_str_radix(10), n);
        assert_eq!(serde_json::to_string(&key).unwrap(), json);
    }

    #[test]
    fn big_integer_rejects_non_digits() {
        assert!(serde_json::from_str::<GoRsaPublicKey>(r#"{"N":-5,"E":3}"#).is_err());
        assert!(serde_json::from_str::<GoRsaPublicKey>(r#"{"N":1.5,"E":3}"#).is_err());
    }

    #[test]
    fn archiving_keeps_every_version_and_trims_keys_below_min_decryption() {
        let mut policy = Policy {
            key_type: KeyType::Aes256Gcm96.code(),
            convergent_version: -1,
            ..Policy::default()
        };
        let mut archive = Archive::default();
        for _ in 0..3 {
            policy.rotate_in_memory().unwrap();
            policy.handle_archiving(&mut archive).unwrap();
        }
        assert_eq!(archive.keys.len(), 4, "slot 0 plus three versions");
        assert!(archive.keys[0].key.is_none());
        assert_eq!(policy.archive_version, 3);
        policy.min_decryption_version = 3;
        policy.handle_archiving(&mut archive).unwrap();
        assert_eq!(policy.keys.keys().collect::<Vec<_>>(), vec!["3"]);
        policy.min_decryption_version = 1;
        policy.handle_archiving(&mut archive).unwrap();
        assert_eq!(policy.keys.len(), 3);
        assert_eq!(
            policy.keys["1"].key.as_ref().unwrap().as_slice(),
            archive.keys[1].key.as_ref().unwrap().as_slice()
        );
    }

    #[test]
    fn trimming_drops_archived_versions_below_min_available() {
        let mut policy = Policy {
            key_type: KeyType::Aes256Gcm96.code(),
            ..Policy::default()
        };
        let mut archive = Archive::default();
        for _ in 0..5 {
            policy.rotate_in_memory().unwrap();
            policy.handle_archiving(&mut archive).unwrap();
        }
        let v3 = policy.keys["3"].key.clone();
        policy.min_decryption_version = 3;
        policy.min_encryption_version = 4;
        policy.min_available_version = 3;
        policy.handle_archiving(&mut archive).unwrap();
        assert_eq!(archive.keys.len(), 3, "versions 3, 4 and 5 remain");
        assert_eq!(archive.keys[0].key, v3, "slot 0 is now version 3");
        assert_eq!(policy.archive_min_version, 3);
        assert_eq!(policy.keys.keys().collect::<Vec<_>>(), vec!["3", "4", "5"]);
        // Versions moved back from the archive are indexed from the new minimum.
        policy.min_decryption_version = 4;
        policy.handle_archiving(&mut archive).unwrap();
        policy.min_decryption_version = 3;
        policy.handle_archiving(&mut archive).unwrap();
        assert_eq!(policy.keys["3"].key, v3);
        // A later rotation appends after the trimmed archive.
        policy.rotate_in_memory().unwrap();
        policy.handle_archiving(&mut archive).unwrap();
        assert_eq!(archive.keys.len(), 4);
        assert_eq!(archive.keys[3].key, policy.keys["6"].key);
    }

    #[test]
    fn generated_entries_have_the_openbao_shape() {
        let entry = generate_entry(KeyType::Ed25519, 0).unwrap();
        assert_eq!(entry.key.as_ref().unwrap().as_slice().len(), 64);
        assert_eq!(STANDARD.decode(&entry.public_key).unwrap().len(), 32);
        let entry = generate_entry(KeyType::EcdsaP256, 0).unwrap();
        assert!(entry.public_key.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(entry.ec_d.is_some());
        assert!(generate_entry(KeyType::Hmac, 0).is_err());
        let entry = generate_entry(KeyType::Hmac, 40).unwrap();
        assert_eq!(entry.key, entry.hmac_key);
    }
}
