use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::testing::{login, req, MemStorage};
use base64::Engine;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

const NOW: i64 = 1_800_000_000;

/// An Ed25519 key pair: the private PEM to sign with, the public PEM and raw public bytes.
struct Signer {
    private_pem: String,
    public_pem: String,
    public_raw: [u8; 32],
}

impl Signer {
    fn new() -> Self {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        Signer {
            private_pem: key.to_pkcs8_pem(Default::default()).unwrap().to_string(),
            public_pem: key
                .verifying_key()
                .to_public_key_pem(Default::default())
                .unwrap(),
            public_raw: key.verifying_key().to_bytes(),
        }
    }

    fn sign(&self, claims: Value, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = kid.map(str::to_owned);
        let key = EncodingKey::from_ed_pem(self.private_pem.as_bytes()).unwrap();
        encode(&header, &claims, &key).unwrap()
    }

    fn jwk(&self, kid: &str) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
               "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.public_raw)})
    }
}

fn backend() -> Jwt {
    Jwt::with_clock(Clock::manual(NOW))
}

async fn write(
    j: &Jwt,
    s: &MemStorage,
    path: &str,
    body: Value,
) -> Result<Option<Response>, Error> {
    j.handle(req(Operation::Update, path, body), s).await
}

async fn try_login(
    j: &Jwt,
    s: &MemStorage,
    role: &str,
    token: &str,
) -> Result<Option<Response>, Error> {
    j.handle(
        login("login", json!({"role": role, "jwt": token}), "127.0.0.1"),
        s,
    )
    .await
}

fn err_text(r: Result<Option<Response>, Error>) -> String {
    r.unwrap_err().to_string()
}

/// A configured mount with role `r1`: audience `aud1`, team a or b, email mapped to `mail`.
async fn setup(signer: &Signer) -> (Jwt, MemStorage) {
    let j = backend();
    let s = MemStorage::default();
    write(
        &j,
        &s,
        "config",
        json!({"jwt_validation_pubkeys": [signer.public_pem], "bound_issuer": "iss1"}),
    )
    .await
    .unwrap();
    write(
        &j,
        &s,
        "role/r1",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "aud1",
               "bound_claims": {"team": ["a", "b"]}, "claim_mappings": {"email": "mail"},
               "token_policies": "p", "token_ttl": "10m"}),
    )
    .await
    .unwrap();
    (j, s)
}

fn good_claims() -> Value {
    json!({"iss": "iss1", "sub": "u1", "aud": "aud1", "team": "a", "email": "u1@example.com",
           "exp": NOW + 60, "iat": NOW})
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

#[tokio::test]
async fn valid_token_logs_in_with_mapped_claims() {
    let signer = Signer::new();
    let (j, s) = setup(&signer).await;
    let resp = try_login(&j, &s, "r1", &signer.sign(good_claims(), None))
        .await
        .unwrap()
        .unwrap();
    let auth = resp.auth.unwrap();
    assert_eq!(auth.policies, ["p"]);
    assert_eq!(auth.lease_duration, 600);
    assert_eq!(auth.display_name, "u1");
    let meta = auth.metadata.unwrap();
    assert_eq!(meta["role"], "r1");
    assert_eq!(meta["mail"], "u1@example.com");
    let alias = auth.alias.unwrap();
    assert_eq!(alias.name, "u1");
    assert_eq!(alias.metadata["mail"], "u1@example.com");
    // Arrays of audiences and of claim values match when one element does.
    let claims = with(
        with(good_claims(), "aud", json!(["x", "aud1"])),
        "team",
        json!(["z", "b"]),
    );
    assert!(try_login(&j, &s, "r1", &signer.sign(claims, None))
        .await
        .is_ok());
}

#[tokio::test]
async fn bad_signature_is_refused() {
    let signer = Signer::new();
    let (j, s) = setup(&signer).await;
    let other = Signer::new();
    assert_eq!(
        err_text(try_login(&j, &s, "r1", &other.sign(good_claims(), None)).await),
        "error validating token: error verifying token signature: no known key successfully \
         validated the token signature"
    );
    // A tampered payload under a valid signature.
    let token = signer.sign(good_claims(), None);
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&with(good_claims(), "sub", json!("admin"))).unwrap());
    parts[1] = &forged;
    assert!(try_login(&j, &s, "r1", &parts.join(".")).await.is_err());
    assert!(try_login(&j, &s, "r1", "garbage").await.is_err());
}

#[tokio::test]
async fn hmac_token_keyed_with_the_public_key_is_refused() {
    let signer = Signer::new();
    let (j, s) = setup(&signer).await;
    let key = EncodingKey::from_secret(signer.public_pem.as_bytes());
    let token = encode(&Header::new(Algorithm::HS256), &good_claims(), &key).unwrap();
    let err = err_text(try_login(&j, &s, "r1", &token).await);
    assert!(err.contains("unsupported signing algorithm"), "{err}");
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway() {
    let signer = Signer::new();
    let (j, s) = setup(&signer).await;
    // Default leeway: 60s clock skew + 150s expiration leeway.
    let recent = with(good_claims(), "exp", json!(NOW - 200));
    assert!(try_login(&j, &s, "r1", &signer.sign(recent, None))
        .await
        .is_ok());
    let expired = with(good_claims(), "exp", json!(NOW - 211));
    assert_eq!(
        err_text(try_login(&j, &s, "r1", &signer.sign(expired, None)).await),
        "error validating token: invalid expiration time (exp) claim: token is expired"
    );
    let early = with(good_claims(), "nbf", json!(NOW + 600));
    assert_eq!(
        err_text(try_login(&j, &s, "r1", &signer.sign(early, None)).await),
        "error validating token: invalid not before (nbf) claim: token not yet valid"
    );
    let mut timeless = good_claims();
    timeless.as_object_mut().unwrap().remove("exp");
    timeless.as_object_mut().unwrap().remove("iat");
    assert!(
        err_text(try_login(&j, &s, "r1", &signer.sign(timeless, None)).await)
            .contains("no issued at (iat), not before (nbf), or expiration time (exp)")
    );
    // With the leeways switched off, one second late is too late.
    write(
        &j,
        &s,
        "role/r1",
        json!({"expiration_leeway": -1, "clock_skew_leeway": -1}),
    )
    .await
    .unwrap();
    let late = with(good_claims(), "exp", json!(NOW - 1));
    assert!(try_login(&j, &s, "r1", &signer.sign(late, None))
        .await
        .is_err());
}

#[tokio::test]
async fn wrong_audience_issuer_and_subject_are_refused() {
    let signer = Signer::new();
    let (j, s) = setup(&signer).await;
    let claims = with(good_claims(), "aud", json!("aud2"));
    assert_eq!(
        err_text(try_login(&j, &s, "r1", &signer.sign(claims, None)).await),
        "error validating token: invalid audience (aud) claim: audience claim does not match \
         any expected audience"
    );
    let claims = with(good_claims(), "iss", json!("iss2"));
    assert_eq!(
        err_text(try_login(&j, &s, "r1", &signer.sign(claims, None)).await),
        "error validating token: invalid issuer (iss) claim"
    );
    write(
        &j,
        &s,
        "role/r2",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "x"}),
    )
    .await
    .unwrap();
    let claims = json!({"iss": "iss1", "sub": "y", "exp": NOW + 60});
    assert_eq!(
        err_text(try_login(&j, &s, "r2", &signer.sign(claims, None)).await),
        "error validating token: invalid subject (sub) claim"
    );
    let claims = json!({"iss": "iss1", "sub": "x", "aud": "q", "exp": NOW + 60});
    assert_eq!(
        err_text(try_login(&j, &s, "r2", &signer.sign(claims, None)).await),
        "audience claim found in JWT but no audiences bound to the role"
    );
}

#[tokio::test]
async fn unmet_bound_claims_are_refused_and_globs_match() {
    let signer = Signer::new();
    let (j, s) = setup(&signer).await;
    let claims = with(good_claims(), "team", json!("c"));
    assert_eq!(
        err_text(try_login(&j, &s, "r1", &signer.sign(claims, None)).await),
        "error validating claims: claim \"team\" does not match any associated bound claim values"
    );
    let mut claims = good_claims();
    claims.as_object_mut().unwrap().remove("team");
    assert_eq!(
        err_text(try_login(&j, &s, "r1", &signer.sign(claims, None)).await),
        "error validating claims: claim \"team\" is missing"
    );
    let mut claims = good_claims();
    claims.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        err_text(try_login(&j, &s, "r1", &signer.sign(claims, None)).await),
        "claim \"sub\" not found in token"
    );
    write(
        &j,
        &s,
        "role/g",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "aud1",
               "bound_claims_type": "glob",
               "bound_claims": {"/org/email": "*@example.com"}}),
    )
    .await
    .unwrap();
    let claims = with(good_claims(), "org", json!({"email": "u1@example.com"}));
    assert!(try_login(&j, &s, "g", &signer.sign(claims, None))
        .await
        .is_ok());
    let claims = with(good_claims(), "org", json!({"email": "u1@evil.com"}));
    assert!(try_login(&j, &s, "g", &signer.sign(claims, None))
        .await
        .is_err());
}

#[tokio::test]
async fn config_and_role_are_validated_like_openbao() {
    let j = backend();
    let s = MemStorage::default();
    assert!(err_text(write(&j, &s, "config", json!({})).await).starts_with("exactly one of"));
    assert!(
        err_text(write(&j, &s, "config", json!({"jwt_validation_pubkeys": "abc"})).await)
            .starts_with("error parsing public key")
    );
    let signer = Signer::new();
    let err = err_text(
        write(
            &j,
            &s,
            "config",
            json!({"jwt_validation_pubkeys": [signer.public_pem], "jwt_supported_algs": "HS256"}),
        )
        .await,
    );
    assert_eq!(
        err,
        "invalid jwt_supported_algs: unsupported signing algorithm \"HS256\""
    );
    assert_eq!(
        err_text(write(&j, &s, "role/x", json!({"user_claim": "sub"})).await),
        "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified."
    );
    assert_eq!(
        err_text(write(&j, &s, "role/x", json!({"role_type": "jwt"})).await),
        "a user claim must be defined on the role"
    );
    assert_eq!(
        err_text(
            write(
                &j,
                &s,
                "role/x",
                json!({"role_type": "jwt", "user_claim": "sub"})
            )
            .await
        ),
        "must have at least one bound constraint when creating/updating a role"
    );
    assert_eq!(
        err_text(
            write(&j, &s, "role/x", json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "x", "claim_mappings": {"a": "role"}}))
                .await
        ),
        "metadata key \"role\" is reserved and may not be a mapping destination"
    );
    write(
        &j,
        &s,
        "role/x",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "x"}),
    )
    .await
    .unwrap();
    let r = j
        .handle(req(Operation::Read, "role/x", json!({})), &s)
        .await
        .unwrap()
        .unwrap()
        .data
        .unwrap();
    assert_eq!(r["role_type"], json!("jwt"));
    assert_eq!(r["bound_claims"], Value::Null);
    assert_eq!(r["bound_claims_type"], json!("string"));
    assert_eq!(r["token_type"], json!("default"));
}

/// A tiny HTTP server answering `routes` (path -> JSON body) on 127.0.0.1, counting requests.
fn serve(routes: Vec<(String, String)>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap_or_default();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let (status, body) = match routes.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => ("200 OK", body.clone()),
                None => ("404 Not Found", String::new()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, hits)
}

#[tokio::test]
async fn jwks_url_keys_are_fetched_once_and_cached() {
    let signer = Signer::new();
    let jwks = json!({"keys": [signer.jwk("k1")]}).to_string();
    let (base, hits) = serve(vec![("/jwks".to_owned(), jwks)]);
    let j = backend();
    let s = MemStorage::default();
    write(
        &j,
        &s,
        "config",
        json!({"jwks_url": format!("{base}/jwks")}),
    )
    .await
    .unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the URL is checked when configured"
    );
    write(
        &j,
        &s,
        "role/r",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "aud1"}),
    )
    .await
    .unwrap();
    let claims = json!({"sub": "u", "aud": "aud1", "exp": NOW + 60});
    for _ in 0..3 {
        assert!(
            try_login(&j, &s, "r", &signer.sign(claims.clone(), Some("k1")))
                .await
                .is_ok()
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "keys are cached");
    let other = Signer::new();
    assert!(try_login(&j, &s, "r", &other.sign(claims, Some("k1")))
        .await
        .is_err());
    assert_eq!(
        err_text(
            write(
                &j,
                &s,
                "config",
                json!({"jwks_url": format!("{base}/missing")})
            )
            .await
        ),
        "error checking jwks URL"
    );
}

#[tokio::test]
async fn oidc_discovery_supplies_keys_and_the_issuer() {
    let signer = Signer::new();
    let jwks = json!({"keys": [signer.jwk("k1")]}).to_string();
    // Two servers: one with the JWKS, one with the discovery document pointing at it.
    let (jwks_base, _) = serve(vec![("/keys".to_owned(), jwks)]);
    let issuer = "https://issuer.example.com";
    let doc = json!({"issuer": issuer, "jwks_uri": format!("{jwks_base}/keys")}).to_string();
    let (base, _) = serve(vec![("/.well-known/openid-configuration".to_owned(), doc)]);
    let j = backend();
    let s = MemStorage::default();
    write(&j, &s, "config", json!({"oidc_discovery_url": base}))
        .await
        .unwrap();
    write(
        &j,
        &s,
        "role/r",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "aud1"}),
    )
    .await
    .unwrap();
    let claims = json!({"iss": issuer, "sub": "u", "aud": "aud1", "exp": NOW + 60});
    assert!(try_login(&j, &s, "r", &signer.sign(claims, None))
        .await
        .is_ok());
    let claims = json!({"iss": "https://other", "sub": "u", "aud": "aud1", "exp": NOW + 60});
    assert_eq!(
        err_text(try_login(&j, &s, "r", &signer.sign(claims, None)).await),
        "error validating token: invalid issuer (iss) claim"
    );
}

#[tokio::test]
async fn es256_keys_verify_too() {
    use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let private_pem = secret.to_pkcs8_pem(Default::default()).unwrap().to_string();
    let public_pem = secret
        .public_key()
        .to_public_key_pem(Default::default())
        .unwrap();
    let j = backend();
    let s = MemStorage::default();
    write(
        &j,
        &s,
        "config",
        json!({"jwt_validation_pubkeys": public_pem, "jwt_supported_algs": "ES256"}),
    )
    .await
    .unwrap();
    write(
        &j,
        &s,
        "role/r",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "u"}),
    )
    .await
    .unwrap();
    let key = EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap();
    let token = encode(
        &Header::new(Algorithm::ES256),
        &json!({"sub": "u", "exp": NOW + 60}),
        &key,
    )
    .unwrap();
    assert!(try_login(&j, &s, "r", &token).await.is_ok());
    // An EdDSA token is refused: only ES256 is configured.
    let signer = Signer::new();
    assert!(try_login(
        &j,
        &s,
        "r",
        &signer.sign(json!({"sub": "u", "exp": NOW + 60}), None)
    )
    .await
    .is_err());
}
