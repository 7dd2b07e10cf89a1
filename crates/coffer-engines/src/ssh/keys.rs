//! The CA's key material: generating a key pair of the types OpenBao's `config/ca` accepts,
//! reading an imported private key in the formats Go's `ssh.ParsePrivateKey` reads (OpenSSH,
//! PKCS#1, SEC1, PKCS#8 PEM), parsing public keys as OpenBao's `parsePublicSSHKey`, and signing
//! a certificate with the role's `algorithm_signer`. All of it through `ssh-key` and the
//! RustCrypto crates below it.
//!
//! Private keys are `ssh_key::PrivateKey` (zeroized on drop) and leave this module only as the
//! OpenSSH PEM written to storage, itself in a `Zeroizing` string.

use base64::Engine as _;
use rand::rngs::OsRng;
use rsa::signature::{SignatureEncoding, Signer};
use ssh_key::private::{EcdsaKeypair, Ed25519Keypair, KeypairData, RsaKeypair};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, LineEnding, PrivateKey, PublicKey, Signature};
use zeroize::Zeroizing;

use coffer_sdk::Error;

/// A freshly generated CA key pair: the public half in authorized_keys form (with OpenBao's
/// trailing newline) and the private half.
pub(crate) struct Generated {
    pub(crate) public_key: String,
    pub(crate) private_key: PrivateKey,
}

/// Generates a key pair as OpenBao's `generateSSHKeyPair`: `ssh-rsa`/`rsa` (default 4096 bits,
/// at least 2048), `ecdsa-sha2-nistp256|384|521` or `ec` with `key_bits` 256/384/521, and
/// `ssh-ed25519`/`ed25519`.
pub(crate) fn generate(key_type: &str, key_bits: i64) -> Result<Generated, Error> {
    let mut rng = OsRng;
    let keypair = match key_type {
        "ssh-rsa" | "rsa" => {
            let bits = if key_bits == 0 { 4096 } else { key_bits };
            if bits < 2048 {
                return Err(Error::invalid(format!(
                    "refusing to generate weak {key_type} key: {bits} bits < 2048 bits"
                )));
            }
            if bits > 8192 {
                return Err(Error::invalid(format!(
                    "refusing to generate {key_type} key of {bits} bits: at most 8192"
                )));
            }
            let rsa = RsaKeypair::random(&mut rng, bits as usize).map_err(Error::internal)?;
            KeypairData::from(rsa)
        }
        "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" | "ec" => {
            let curve = match (key_type, key_bits) {
                ("ecdsa-sha2-nistp256", _) | ("ec", 0 | 256) => EcdsaCurve::NistP256,
                ("ecdsa-sha2-nistp384", _) | ("ec", 384) => EcdsaCurve::NistP384,
                ("ecdsa-sha2-nistp521", _) | ("ec", 521) => EcdsaCurve::NistP521,
                _ => {
                    return Err(Error::invalid(format!(
                        "unknown ECDSA key pair algorithm and bits: {key_type} / {key_bits}"
                    )))
                }
            };
            KeypairData::from(EcdsaKeypair::random(&mut rng, curve).map_err(Error::internal)?)
        }
        "ssh-ed25519" | "ed25519" => KeypairData::from(Ed25519Keypair::random(&mut rng)),
        other => {
            return Err(Error::invalid(format!(
                "unknown ssh key pair algorithm: {other}"
            )))
        }
    };
    let private_key = PrivateKey::new(keypair, "").map_err(Error::internal)?;
    let public_key = authorized_key(private_key.public_key())?;
    Ok(Generated {
        public_key,
        private_key,
    })
}

/// `type base64\n`, as Go's `ssh.MarshalAuthorizedKey`.
pub(crate) fn authorized_key(key: &PublicKey) -> Result<String, Error> {
    let mut bare = key.clone();
    bare.set_comment("");
    let mut text = bare.to_openssh().map_err(Error::internal)?;
    text.push('\n');
    Ok(text)
}

/// Parses a public key as OpenBao's `parsePublicSSHKey`: the second space-separated field if
/// there are several (`type base64 comment`), else the whole string, as base64 of the wire
/// form. Errors carry Go's wording.
pub(crate) fn parse_public(input: &str) -> Result<PublicKey, String> {
    let parts: Vec<&str> = input.split(' ').collect();
    let b64 = if parts.len() > 1 { parts[1] } else { input };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim_end_matches(['\n', '\r']))
        .map_err(|e| match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol(at, _) => {
                format!("illegal base64 data at input byte {at}")
            }
            // Go reports where the incomplete final quantum starts.
            base64::DecodeError::InvalidLength(len) => {
                format!("illegal base64 data at input byte {}", len - len % 4)
            }
            base64::DecodeError::InvalidPadding => "illegal base64 data at input byte 0".to_owned(),
        })?;
    PublicKey::from_bytes(&bytes).map_err(|e| match e {
        // Malformed wire data is nearly always truncated data: Go's wording for that.
        ssh_key::Error::Encoding(_) | ssh_key::Error::FormatEncoding => {
            "ssh: short read".to_owned()
        }
        ssh_key::Error::AlgorithmUnknown => "ssh: unknown key algorithm".to_owned(),
        other => format!("ssh: {other}"),
    })
}

/// Reads a private key in any PEM form Go's `ssh.ParsePrivateKey` accepts, unencrypted.
pub(crate) fn parse_private(pem: &str) -> Result<PrivateKey, String> {
    let pem = pem.trim();
    if pem.contains("BEGIN OPENSSH PRIVATE KEY") {
        let key = PrivateKey::from_openssh(pem).map_err(|e| format!("ssh: {e}"))?;
        if key.is_encrypted() {
            return Err("ssh: this private key is passphrase protected".to_owned());
        }
        return Ok(key);
    }
    let keypair = if pem.contains("BEGIN RSA PRIVATE KEY") {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        let rsa = rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| format!("x509: {e}"))?;
        KeypairData::from(RsaKeypair::try_from(&rsa).map_err(|e| format!("ssh: {e}"))?)
    } else if pem.contains("BEGIN EC PRIVATE KEY") {
        ec_from_sec1(pem)?
    } else if pem.contains("BEGIN PRIVATE KEY") {
        from_pkcs8(pem)?
    } else {
        return Err("ssh: no key found".to_owned());
    };
    PrivateKey::new(keypair, "").map_err(|e| format!("ssh: {e}"))
}

/// The OpenSSH PEM of a key, for storage.
pub(crate) fn to_openssh(key: &PrivateKey) -> Result<Zeroizing<String>, Error> {
    key.to_openssh(LineEnding::LF).map_err(Error::internal)
}

/// How an RSA CA signs (OpenBao's `algorithm_signer`); other key types have one way each.
/// `ssh-rsa` (SHA-1) is refused before signing: ssh-key cannot carry it, OpenSSH rejects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RsaSigner {
    Sha256,
    Sha512,
}

/// Signs the to-be-signed bytes of a certificate with the CA key; RSA keys use `rsa_hash`.
pub(crate) struct CaSigner<'k> {
    pub(crate) key: &'k PrivateKey,
    pub(crate) rsa_hash: RsaSigner,
}

impl Signer<Signature> for CaSigner<'_> {
    fn try_sign(&self, message: &[u8]) -> Result<Signature, rsa::signature::Error> {
        let KeypairData::Rsa(keypair) = self.key.key_data() else {
            return self.key.try_sign(message);
        };
        let private = rsa_private_key(keypair).map_err(|_| rsa::signature::Error::new())?;
        let (hash, data) = match self.rsa_hash {
            RsaSigner::Sha256 => (
                HashAlg::Sha256,
                rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(private)
                    .try_sign(message)?
                    .to_vec(),
            ),
            RsaSigner::Sha512 => (
                HashAlg::Sha512,
                rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(private)
                    .try_sign(message)?
                    .to_vec(),
            ),
        };
        Signature::new(Algorithm::Rsa { hash: Some(hash) }, data).map_err(Into::into)
    }
}

impl From<&CaSigner<'_>> for KeyData {
    fn from(signer: &CaSigner<'_>) -> KeyData {
        signer.key.public_key().key_data().clone()
    }
}

/// The `rsa` crate's key from an ssh-key RSA key pair. ssh-key 0.6.7's own conversion passes
/// `p` twice instead of `p` and `q` and so fails for every key: this one builds it from the
/// components.
fn rsa_private_key(keypair: &RsaKeypair) -> Result<rsa::RsaPrivateKey, rsa::Error> {
    let int =
        |m: &ssh_key::Mpint| rsa::BigUint::from_bytes_be(m.as_positive_bytes().unwrap_or_default());
    let mut key = rsa::RsaPrivateKey::from_components(
        int(&keypair.public.n),
        int(&keypair.public.e),
        int(&keypair.private.d),
        vec![int(&keypair.private.p), int(&keypair.private.q)],
    )?;
    key.precompute()?;
    Ok(key)
}

fn ec_from_sec1(pem: &str) -> Result<KeypairData, String> {
    if let Ok(secret) = p256::SecretKey::from_sec1_pem(pem) {
        return Ok(ec_keypair_p256(secret));
    }
    if let Ok(secret) = p384::SecretKey::from_sec1_pem(pem) {
        return Ok(ec_keypair_p384(secret));
    }
    if let Ok(secret) = p521::SecretKey::from_sec1_pem(pem) {
        return Ok(ec_keypair_p521(secret));
    }
    Err("x509: failed to parse EC private key".to_owned())
}

fn from_pkcs8(pem: &str) -> Result<KeypairData, String> {
    use p256::pkcs8::DecodePrivateKey;
    if let Ok(rsa) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
        return RsaKeypair::try_from(&rsa)
            .map(KeypairData::from)
            .map_err(|e| format!("ssh: {e}"));
    }
    if let Ok(secret) = p256::SecretKey::from_pkcs8_pem(pem) {
        return Ok(ec_keypair_p256(secret));
    }
    if let Ok(secret) = p384::SecretKey::from_pkcs8_pem(pem) {
        return Ok(ec_keypair_p384(secret));
    }
    if let Ok(secret) = p521::SecretKey::from_pkcs8_pem(pem) {
        return Ok(ec_keypair_p521(secret));
    }
    if let Ok(signing) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        return Ok(KeypairData::from(Ed25519Keypair::from(&signing)));
    }
    Err("x509: failed to parse private key".to_owned())
}

fn ec_keypair_p256(secret: p256::SecretKey) -> KeypairData {
    KeypairData::from(EcdsaKeypair::NistP256 {
        public: secret.public_key().into(),
        private: secret.into(),
    })
}

fn ec_keypair_p384(secret: p384::SecretKey) -> KeypairData {
    KeypairData::from(EcdsaKeypair::NistP384 {
        public: secret.public_key().into(),
        private: secret.into(),
    })
}

fn ec_keypair_p521(secret: p521::SecretKey) -> KeypairData {
    KeypairData::from(EcdsaKeypair::NistP521 {
        public: secret.public_key().into(),
        private: secret.into(),
    })
}
