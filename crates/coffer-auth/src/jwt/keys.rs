//! The keys a JWT signature is checked against: PEM public keys from the config, or a JWKS
//! fetched from `jwks_url` (or from the `jwks_uri` of an OIDC discovery document) and cached.
//!
//! Only asymmetric algorithms are accepted (RS*, PS*, ES256/ES384, EdDSA), and a key is only
//! tried with an algorithm of its own family, so an RSA public key can never be used as an
//! HMAC secret (the classic algorithm-confusion forgery).

use std::time::{Duration, Instant};

use coffer_sdk::Error;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// A fetched key set is used for this long before it is fetched again.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the set, but not more often than this.
const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// A key server that does not answer in this time fails the login.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The family of a key or algorithm: a key verifies only its own family's algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Rsa,
    Ec,
    Ed,
}

/// One verification key.
#[derive(Clone)]
pub(super) struct Key {
    pub(super) kid: Option<String>,
    pub(super) family: Family,
    pub(super) key: DecodingKey,
}

/// Keys fetched from a URL, and when.
#[derive(Clone)]
pub(super) struct Fetched {
    pub(super) keys: Vec<Key>,
    /// The issuer the discovery document names, which tokens must carry.
    pub(super) issuer: Option<String>,
    pub(super) at: Instant,
}

impl Fetched {
    pub(super) fn is_fresh(&self) -> bool {
        self.at.elapsed() < CACHE_FOR
    }

    pub(super) fn may_refetch(&self) -> bool {
        self.at.elapsed() >= REFETCH_AFTER
    }
}

/// The family of a signing algorithm, `None` for the symmetric ones this method refuses.
pub(super) fn family_of(alg: Algorithm) -> Option<Family> {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Some(Family::Rsa),
        Algorithm::ES256 | Algorithm::ES384 => Some(Family::Ec),
        Algorithm::EdDSA => Some(Family::Ed),
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => None,
    }
}

/// The algorithm named `name`, if it is one this method accepts.
pub(super) fn parse_alg(name: &str) -> Option<Algorithm> {
    let alg: Algorithm = name.parse().ok()?;
    family_of(alg).map(|_| alg)
}

/// A PEM public key (SPKI, or PKCS#1 for RSA).
pub(super) fn parse_pem(pem: &str) -> Result<Key, Error> {
    let bytes = pem.trim().as_bytes();
    let parsed = DecodingKey::from_rsa_pem(bytes)
        .map(|k| (Family::Rsa, k))
        .or_else(|_| DecodingKey::from_ec_pem(bytes).map(|k| (Family::Ec, k)))
        .or_else(|_| DecodingKey::from_ed_pem(bytes).map(|k| (Family::Ed, k)));
    match parsed {
        Ok((family, key)) => Ok(Key {
            kid: None,
            family,
            key,
        }),
        Err(_) => Err(Error::invalid(
            "error parsing public key: data does not contain any valid RSA, ECDSA or ED25519 \
             public keys",
        )),
    }
}

/// The keys of a JWKS document; keys of unsupported types (e.g. `oct`) are skipped.
pub(super) fn parse_jwks(body: &[u8]) -> Result<Vec<Key>, Error> {
    let set: JwkSet = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("error parsing JWKS: {e}")))?;
    Ok(set.keys.iter().filter_map(jwk_key).collect())
}

fn jwk_key(jwk: &Jwk) -> Option<Key> {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    let family = match &jwk.algorithm {
        P::RSA(_) => Family::Rsa,
        P::EllipticCurve(_) => Family::Ec,
        P::OctetKeyPair(_) => Family::Ed,
        P::OctetKey(_) => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        family,
        key,
    })
}

/// Fetches the JWKS at `url`.
pub(super) async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<Vec<Key>, Error> {
    let body = get(client, url).await?;
    parse_jwks(&body)
}

/// Fetches the discovery document under `issuer_url`, then its JWKS; returns the keys and
/// the issuer the document names.
pub(super) async fn fetch_discovery(
    client: &reqwest::Client,
    issuer_url: &str,
) -> Result<(Vec<Key>, String), Error> {
    #[derive(Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer_url.trim_end_matches('/')
    );
    let body = get(client, &url).await?;
    let doc: Discovery = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid(format!("error parsing the OIDC discovery document: {e}")))?;
    let keys = fetch_jwks(client, &doc.jwks_uri).await?;
    Ok((keys, doc.issuer))
}

/// An HTTP client trusting the system roots, or only `ca_pem` when given.
pub(super) fn client(ca_pem: &str) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(3));
    if !ca_pem.trim().is_empty() {
        let cert = reqwest::Certificate::from_pem(ca_pem.as_bytes())
            .map_err(|e| Error::invalid(format!("could not parse the CA PEM: {e}")))?;
        builder = builder
            .tls_built_in_root_certs(false)
            .add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| Error::internal(format!("jwt: HTTP client: {e}")))
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, Error> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("error fetching keys from {url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(Error::Unavailable(format!(
            "error fetching keys from {url}: status {}",
            resp.status()
        )));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| Error::Unavailable(format!("error fetching keys from {url}: {e}")))?;
    Ok(body.to_vec())
}
