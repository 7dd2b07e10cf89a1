//! Unit tests of the SSH engine through `Backend::handle`: answers and error texts as OpenBao
//! 2.7.2's, certificates verified with ssh-key and, where installed, `ssh-keygen -L`.

use std::process::Command;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use ssh_key::certificate::CertType;
use ssh_key::{Certificate, HashAlg, PrivateKey};

use super::*;
use crate::testing::{req, MemStorage};

async fn call(
    b: &Ssh,
    s: &MemStorage,
    op: Operation,
    path: &str,
    body: Value,
) -> Result<Option<Response>, Error> {
    b.handle(req(op, path, body), s).await
}

async fn call_as(
    b: &Ssh,
    s: &MemStorage,
    path: &str,
    body: Value,
    display: &str,
) -> Result<Option<Response>, Error> {
    let mut r = req(Operation::Update, path, body);
    r.auth = Some(Arc::new(coffer_sdk::RequestAuth {
        display_name: display.to_owned(),
        ..Default::default()
    }));
    b.handle(r, s).await
}

fn data(resp: Option<Response>) -> Map<String, Value> {
    resp.expect("a response").data.expect("data")
}

fn invalid(result: Result<Option<Response>, Error>) -> String {
    match result {
        Err(Error::InvalidRequest(msg)) => msg,
        other => panic!("expected a 400, got {other:?}"),
    }
}

fn user_key() -> PrivateKey {
    PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519).unwrap()
}

fn user_pub(key: &PrivateKey) -> String {
    key.public_key().to_openssh().unwrap()
}

/// Parses `signed_key` and checks its signature and validity against the CA's public key.
fn verify(signed: &str, ca_public: &str) -> Certificate {
    let cert = Certificate::from_openssh(signed.trim()).unwrap();
    let ca = ssh_key::PublicKey::from_openssh(ca_public.trim()).unwrap();
    cert.validate(&[ca.fingerprint(HashAlg::Sha256)]).unwrap();
    cert
}

async fn setup(b: &Ssh, s: &MemStorage, key_type: &str) -> String {
    let d = data(
        call(
            b,
            s,
            Operation::Update,
            "config/ca",
            json!({"key_type": key_type}),
        )
        .await
        .unwrap(),
    );
    d["public_key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn no_ca_answers_openbao_error_everywhere() {
    let b = Ssh::new();
    let s = MemStorage::default();
    let msg = "no default issuer currently configured";
    assert_eq!(
        invalid(call(&b, &s, Operation::Read, "config/ca", json!({})).await),
        msg
    );
    assert_eq!(
        invalid(call(&b, &s, Operation::Read, "public_key", json!({})).await),
        msg
    );
    assert!(call(&b, &s, Operation::Delete, "config/ca", json!({}))
        .await
        .unwrap()
        .is_none());
    // OpenBao's unauthenticated paths, but `issuer/+/public_key` (no multi-issuer paths).
    assert_eq!(b.special_paths().unauthenticated, ["public_key", "verify"]);
}

#[tokio::test]
async fn config_ca_generates_reads_serves_and_purges() {
    let b = Ssh::new();
    let s = MemStorage::default();
    let d = data(
        call(
            &b,
            &s,
            Operation::Update,
            "config/ca",
            json!({"key_type": "ssh-ed25519"}),
        )
        .await
        .unwrap(),
    );
    let public = d["public_key"].as_str().unwrap().to_owned();
    assert!(public.starts_with("ssh-ed25519 AAAA") && public.ends_with('\n'));
    assert_eq!(d["issuer_name"], json!(""));
    let id = d["issuer_id"].as_str().unwrap().to_owned();
    let r = data(
        call(&b, &s, Operation::Read, "config/ca", json!({}))
            .await
            .unwrap(),
    );
    assert_eq!(r["public_key"], json!(public));
    assert_eq!(r["issuer_id"], json!(id));
    let raw = data(
        call(&b, &s, Operation::Read, "public_key", json!({}))
            .await
            .unwrap(),
    );
    assert_eq!(raw["http_content_type"], json!("text/plain"));
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD
        .decode(raw["http_raw_body"].as_str().unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(body).unwrap(), public);
    // A second write makes a new default, as OpenBao 2.7 does; delete reports both.
    let second = setup(&b, &s, "ecdsa-sha2-nistp256").await;
    assert!(second.starts_with("ecdsa-sha2-nistp256 "));
    let del = call(&b, &s, Operation::Delete, "config/ca", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        del.warnings,
        vec!["Deleted 2 issuers, including default issuer if configured.".to_owned()]
    );
    assert!(s.keys().is_empty());
}

#[tokio::test]
async fn config_ca_errors_match_openbao() {
    let b = Ssh::new();
    let s = MemStorage::default();
    let cases = [
        (json!({"public_key": "x"}), "only one of public_key and private_key set; both must be set to use, or both must be blank to auto-generate"),
        (json!({"public_key": "x", "private_key": "y"}), "could not parse public_key provided value: illegal base64 data at input byte 0"),
        (json!({"generate_signing_key": false}), "missing public_key"),
        (json!({"generate_signing_key": true, "public_key": "x"}), "public_key and private_key must not be set when generate_signing_key is set to true"),
        (json!({"key_type": "foo"}), "unknown ssh key pair algorithm: foo"),
        (json!({"key_type": "rsa", "key_bits": 1024}), "refusing to generate weak rsa key: 1024 bits < 2048 bits"),
        (json!({"key_type": "ec", "key_bits": 333}), "unknown ECDSA key pair algorithm and bits: ec / 333"),
    ];
    for (body, expected) in cases {
        assert_eq!(
            invalid(call(&b, &s, Operation::Update, "config/ca", body.clone()).await),
            expected,
            "{body}"
        );
    }
    assert!(s.keys().is_empty());
}

#[tokio::test]
async fn imported_openssh_and_pem_keys_sign_verifiable_certificates() {
    let b = Ssh::new();
    let s = MemStorage::default();
    // OpenSSH format (ssh-keygen's default).
    let ca = PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
    let pem = ca.to_openssh(ssh_key::LineEnding::LF).unwrap();
    let public = ca.public_key().to_openssh().unwrap();
    let d = data(
        call(
            &b,
            &s,
            Operation::Update,
            "config/ca",
            json!({"private_key": *pem, "public_key": public}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        d["public_key"],
        json!(public),
        "the public key is kept as given"
    );
    // The same key again: the existing issuer, with OpenBao's warning.
    let again = call(
        &b,
        &s,
        Operation::Update,
        "config/ca",
        json!({"private_key": *pem, "public_key": public}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(again.data.unwrap()["issuer_id"], d["issuer_id"]);
    assert_eq!(again.warnings.len(), 1);
    // A mismatched pair is refused.
    let other = user_key();
    assert_eq!(
        invalid(
            call(
                &b,
                &s,
                Operation::Update,
                "config/ca",
                json!({"private_key": *pem, "public_key": user_pub(&other)})
            )
            .await
        ),
        "public_key does not match private_key"
    );
    // SEC1 PEM ("EC PRIVATE KEY"), as OpenBao itself generates for ec keys.
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::LineEnding;
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let sec1 = secret.to_sec1_pem(LineEnding::LF).unwrap();
    let point = secret.public_key().to_encoded_point(false);
    let ec_public = ssh_key::PublicKey::from(ssh_key::public::KeyData::Ecdsa(
        ssh_key::public::EcdsaPublicKey::from_sec1_bytes(point.as_bytes()).unwrap(),
    ))
    .to_openssh()
    .unwrap();
    call(
        &b,
        &s,
        Operation::Update,
        "config/ca",
        json!({"private_key": *sec1, "public_key": ec_public}),
    )
    .await
    .unwrap();
    call(
        &b,
        &s,
        Operation::Update,
        "roles/r",
        json!({"key_type": "ca", "allow_user_certificates": true, "allowed_users": "*"}),
    )
    .await
    .unwrap();
    let user = user_key();
    let d = data(
        call(
            &b,
            &s,
            Operation::Update,
            "sign/r",
            json!({"public_key": user_pub(&user), "valid_principals": "alice"}),
        )
        .await
        .unwrap(),
    );
    verify(d["signed_key"].as_str().unwrap(), &ec_public);
}

#[tokio::test]
async fn role_round_trip_and_errors() {
    let b = Ssh::new();
    let s = MemStorage::default();
    let body = json!({
        "key_type": "CA", "allow_user_certificates": true, "allowed_users": "alice,bob",
        "default_user": "alice", "ttl": "1h", "max_ttl": "2h",
        "default_extensions": {"permit-pty": "", "n": 1},
        "key_id_format": "{{role_name}}-{{token_display_name}}-{{public_key_hash}}"
    });
    assert!(call(&b, &s, Operation::Update, "roles/r1", body)
        .await
        .unwrap()
        .is_none());
    let r = data(
        call(&b, &s, Operation::Read, "roles/r1", json!({}))
            .await
            .unwrap(),
    );
    // Exactly the fields and values OpenBao 2.7.2 answered for the same write.
    let expected = json!({"algorithm_signer":"default","allow_bare_domains":false,"allow_commas_in_identity_templates":false,"allow_empty_principals":false,"allow_host_certificates":false,"allow_subdomains":false,"allow_user_certificates":true,"allow_user_key_ids":false,"allow_wildcards_in_identity_templates":false,"allowed_critical_options":"","allowed_domains":"","allowed_domains_template":false,"allowed_extensions":"","allowed_user_key_lengths":{},"allowed_users":"alice,bob","allowed_users_template":false,"default_critical_options":{},"default_extensions":{"n":"1","permit-pty":""},"default_extensions_template":false,"default_user":"alice","default_user_template":false,"issuer_ref":"default","key_id_format":"{{role_name}}-{{token_display_name}}-{{public_key_hash}}","key_type":"ca","max_ttl":7200,"not_before_duration":30,"ttl":3600});
    assert_eq!(Value::Object(r), expected);
    let l = data(
        call(&b, &s, Operation::List, "roles", json!({}))
            .await
            .unwrap(),
    );
    assert_eq!(
        Value::Object(l),
        json!({"keys": ["r1"], "key_info": {"r1": {"issuer_ref": "default", "key_type": "ca"}}})
    );

    let cases = [
        (json!({}), "missing key type"),
        (json!({"key_type": "ca"}), "Either 'allow_user_certificates' or 'allow_host_certificates' must be set to 'true'"),
        (json!({"key_type": "foo"}), "invalid key type"),
        (json!({"key_type": "dynamic"}), "dynamic key type roles are no longer supported"),
        (json!({"key_type": "ca", "allow_user_certificates": true, "algorithm_signer": "x"}), "unknown algorithm signer \"x\""),
        (json!({"key_type": "ca", "allow_user_certificates": true, "ttl": "2h", "max_ttl": "1h"}), "\"ttl\" value must be less than \"max_ttl\" when both are specified"),
        (json!({"key_type": "ca", "allow_user_certificates": true, "ttl": "x"}), "Field validation failed: error converting input for field \"ttl\": time: invalid duration \"x\""),
        (json!({"key_type": "ca", "allow_user_certificates": "x"}), "Field validation failed: error converting input for field \"allow_user_certificates\": '' cannot parse value as 'bool': strconv.ParseBool: invalid syntax"),
        (json!({"key_type": "ca", "allow_user_certificates": true, "default_extensions": "x"}), "Field validation failed: error converting input for field \"default_extensions\": '' expected type 'map[string]interface {}', got unconvertible type 'string'"),
    ];
    for (body, expected) in cases {
        assert_eq!(
            invalid(call(&b, &s, Operation::Update, "roles/a", body.clone()).await),
            expected,
            "{body}"
        );
    }
    assert!(call(&b, &s, Operation::Delete, "roles/r1", json!({}))
        .await
        .unwrap()
        .is_none());
    assert!(call(&b, &s, Operation::Read, "roles/r1", json!({}))
        .await
        .unwrap()
        .is_none());
    assert!(call(&b, &s, Operation::List, "roles/", json!({}))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn user_certificate_carries_what_the_role_says() {
    let b = Ssh::new();
    let s = MemStorage::default();
    let ca_public = setup(&b, &s, "ssh-ed25519").await;
    call(
        &b,
        &s,
        Operation::Update,
        "roles/r1",
        json!({
            "key_type": "ca", "allow_user_certificates": true, "allowed_users": "alice,bob",
            "default_user": "alice", "ttl": "1h", "max_ttl": "2h",
            "default_extensions": {"permit-pty": "", "n": 1},
            "key_id_format": "{{role_name}}-{{token_display_name}}-{{public_key_hash}}"
        }),
    )
    .await
    .unwrap();
    let user = user_key();
    let resp = call_as(
        &b,
        &s,
        "sign/r1",
        json!({"public_key": user_pub(&user)}),
        "token",
    )
    .await
    .unwrap();
    // As OpenBao: a signed certificate comes with no lease, so nothing revokes it.
    assert!(resp.as_ref().is_some_and(|r| r.lease.is_none()));
    let d = data(resp);
    let serial = d["serial_number"].as_str().unwrap();
    assert!(d["issuer_id"].is_string());
    let cert = verify(d["signed_key"].as_str().unwrap(), &ca_public);
    assert_eq!(format!("{:x}", cert.serial()), serial);
    assert_eq!(cert.cert_type(), CertType::User);
    assert_eq!(cert.valid_principals(), ["alice".to_owned()]);
    let hash: String = sha2::Sha256::digest(user.public_key().to_bytes().unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(cert.key_id(), format!("r1-token-{hash}"));
    assert_eq!(cert.valid_before() - cert.valid_after(), 3600 + 30);
    let ext: Vec<(&String, &String)> = cert.extensions().iter().collect();
    assert_eq!(
        ext,
        vec![
            (&"n".to_owned(), &"1".to_owned()),
            (&"permit-pty".to_owned(), &String::new())
        ]
    );
    assert_eq!(cert.public_key(), user.public_key().key_data());

    if let Some(listing) = ssh_keygen_l(d["signed_key"].as_str().unwrap()) {
        assert!(
            listing.contains("ssh-ed25519-cert-v01@openssh.com user certificate"),
            "{listing}"
        );
        assert!(
            listing.contains(&format!("Key ID: \"r1-token-{hash}\"")),
            "{listing}"
        );
        assert!(
            listing.contains(&format!("Serial: {}", cert.serial())),
            "{listing}"
        );
        assert!(listing.contains("permit-pty"), "{listing}");
    }
}

use sha2::Digest;

#[tokio::test]
async fn sign_errors_match_openbao() {
    let b = Ssh::new();
    let s = MemStorage::default();
    setup(&b, &s, "ssh-ed25519").await;
    call(
        &b,
        &s,
        Operation::Update,
        "roles/r1",
        json!({
            "key_type": "ca", "allow_user_certificates": true, "allowed_users": "alice,bob",
            "default_user": "alice", "ttl": "1h", "max_ttl": "2h"
        }),
    )
    .await
    .unwrap();
    call(
        &b,
        &s,
        Operation::Update,
        "roles/r2",
        json!({"key_type": "ca", "allow_user_certificates": true}),
    )
    .await
    .unwrap();
    call(&b, &s, Operation::Update, "roles/h", json!({
        "key_type": "ca", "allow_host_certificates": true, "allowed_domains": "example.com", "allow_subdomains": true
    }))
    .await
    .unwrap();
    let pk = user_pub(&user_key());
    let cases = [
        ("sign/nope", json!({"public_key": pk}), "Unknown role: nope".to_owned()),
        ("sign/r1", json!({}), "missing public_key".to_owned()),
        ("sign/r1", json!({"public_key": "ssh-ed25519 AAAA"}), "failed to parse public_key as SSH key: ssh: short read".to_owned()),
        ("sign/r1", json!({"public_key": "garbage!"}), "failed to parse public_key as SSH key: illegal base64 data at input byte 7".to_owned()),
        ("sign/r1", json!({"public_key": pk, "valid_principals": "carol"}), "carol is not a valid value for valid_principals".to_owned()),
        ("sign/r1", json!({"public_key": pk, "cert_type": "host"}), "cert_type 'host' is not allowed by role".to_owned()),
        ("sign/r1", json!({"public_key": pk, "cert_type": "x"}), "cert_type must be either 'user' or 'host'".to_owned()),
        ("sign/r1", json!({"public_key": pk, "key_id": "x"}), "setting key_id is not allowed by role".to_owned()),
        ("sign/r1", json!({"public_key": pk, "ttl": "3h"}), "ttl is larger than maximum allowed 7200".to_owned()),
        ("sign/r1", json!({"public_key": pk, "extensions": {"permit-X11-forwarding": ""}}), "extensions [permit-X11-forwarding] are not on allowed list".to_owned()),
        ("sign/r2", json!({"public_key": pk}), "refusing to issue unsafe, globally-valid certificate with no principals specified; set valid_principals or default_user".to_owned()),
        ("sign/r2", json!({"public_key": pk, "valid_principals": "a"}), "role is not configured to allow any principals".to_owned()),
        ("sign/h", json!({"public_key": pk, "cert_type": "host", "valid_principals": "example.com"}), "example.com is not a valid value for valid_principals".to_owned()),
    ];
    for (path, body, expected) in cases {
        assert_eq!(
            invalid(call(&b, &s, Operation::Update, path, body.clone()).await),
            expected,
            "{path} {body}"
        );
    }
}

#[tokio::test]
async fn host_certificates_allow_subdomains_and_sort_principals() {
    let b = Ssh::new();
    let s = MemStorage::default();
    let ca_public = setup(&b, &s, "ecdsa-sha2-nistp384").await;
    call(
        &b,
        &s,
        Operation::Update,
        "roles/h",
        json!({
            "key_type": "ca", "allow_host_certificates": true, "allowed_domains": "example.com",
            "allow_subdomains": true, "allow_bare_domains": true,
            "allowed_critical_options": "force-command", "allow_user_key_ids": true
        }),
    )
    .await
    .unwrap();
    let d = data(
        call(
            &b,
            &s,
            Operation::Update,
            "sign/h",
            json!({
                "public_key": user_pub(&user_key()), "cert_type": "host",
                "valid_principals": "b.example.com, example.com,a.example.com,b.example.com",
                "key_id": "my-host", "ttl": 60,
                "critical_options": {"force-command": "true"}
            }),
        )
        .await
        .unwrap(),
    );
    let cert = verify(d["signed_key"].as_str().unwrap(), &ca_public);
    assert_eq!(cert.cert_type(), CertType::Host);
    assert_eq!(
        cert.valid_principals(),
        ["a.example.com", "b.example.com", "example.com"]
    );
    assert_eq!(cert.key_id(), "my-host");
    assert_eq!(cert.valid_before() - cert.valid_after(), 90);
    assert_eq!(
        cert.critical_options()
            .get("force-command")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        invalid(
            call(&b, &s, Operation::Update, "sign/h", json!({
                "public_key": user_pub(&user_key()), "cert_type": "host", "valid_principals": "a.example.com",
                "critical_options": {"source-address": "1.2.3.4"}
            }))
            .await
        ),
        "critical options not on allowed list: [source-address]"
    );
}

#[tokio::test]
async fn rsa_ca_signs_with_sha256_by_default_and_sha512_when_asked() {
    let b = Ssh::new();
    let s = MemStorage::default();
    let ca_public = data(
        call(
            &b,
            &s,
            Operation::Update,
            "config/ca",
            json!({"key_type": "rsa", "key_bits": 2048}),
        )
        .await
        .unwrap(),
    )["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ca_public.starts_with("ssh-rsa "));
    for (signer, expected) in [
        ("default", HashAlg::Sha256),
        ("rsa-sha2-256", HashAlg::Sha256),
        ("rsa-sha2-512", HashAlg::Sha512),
    ] {
        call(&b, &s, Operation::Update, "roles/r", json!({
            "key_type": "ca", "allow_user_certificates": true, "allowed_users": "*", "algorithm_signer": signer
        }))
        .await
        .unwrap();
        let d = data(
            call(
                &b,
                &s,
                Operation::Update,
                "sign/r",
                json!({"public_key": user_pub(&user_key()), "valid_principals": "x"}),
            )
            .await
            .unwrap(),
        );
        let cert = verify(d["signed_key"].as_str().unwrap(), &ca_public);
        assert_eq!(
            cert.signature().algorithm(),
            ssh_key::Algorithm::Rsa {
                hash: Some(expected)
            },
            "{signer}"
        );
    }
}

#[tokio::test]
async fn allowed_user_key_lengths_are_enforced() {
    let b = Ssh::new();
    let s = MemStorage::default();
    setup(&b, &s, "ssh-ed25519").await;
    call(
        &b,
        &s,
        Operation::Update,
        "roles/r",
        json!({
            "key_type": "ca", "allow_user_certificates": true, "allowed_users": "*",
            "allowed_user_key_lengths": {"rsa": [2048, 4096]}
        }),
    )
    .await
    .unwrap();
    let r = data(
        call(&b, &s, Operation::Read, "roles/r", json!({}))
            .await
            .unwrap(),
    );
    assert_eq!(r["allowed_user_key_lengths"], json!({"rsa": [2048, 4096]}));
    assert_eq!(
        invalid(
            call(
                &b,
                &s,
                Operation::Update,
                "sign/r",
                json!({"public_key": user_pub(&user_key()), "valid_principals": "x"})
            )
            .await
        ),
        "public_key failed to meet the key requirements: key of type ed25519 is not allowed"
    );
}

#[tokio::test]
async fn role_without_ttls_uses_the_mounts_tuned_ttls() {
    let b = Ssh::new();
    let s = MemStorage::default();
    let ca_public = setup(&b, &s, "ssh-ed25519").await;
    call(
        &b,
        &s,
        Operation::Update,
        "roles/r1",
        json!({"key_type": "ca", "allow_user_certificates": true, "allowed_users": "*"}),
    )
    .await
    .unwrap();
    let user = user_pub(&user_key());
    let sign = |body: Value, tuned: bool| {
        let mut r = req(Operation::Update, "sign/r1", body);
        if tuned {
            r.default_lease_ttl = 2 * 3600;
            r.max_lease_ttl = 3 * 3600;
        }
        b.handle(r, &s)
    };
    let lifetime = |resp: Option<Response>| {
        let d = data(resp);
        let cert = verify(d["signed_key"].as_str().unwrap(), &ca_public);
        cert.valid_before() - cert.valid_after()
    };

    // The mount's tuned default applies to a role without a ttl.
    let resp = sign(
        json!({"public_key": user, "valid_principals": "alice"}),
        true,
    )
    .await;
    assert_eq!(lifetime(resp.unwrap()), 2 * 3600 + 30);
    // Its tuned max caps a requested ttl, with OpenBao's error.
    let resp = sign(
        json!({"public_key": user, "valid_principals": "alice", "ttl": "4h"}),
        true,
    );
    assert_eq!(
        invalid(resp.await),
        "ttl is larger than maximum allowed 10800"
    );
    // A request without the mount's TTLs (0) falls back to the system's 768h.
    let resp = sign(
        json!({"public_key": user, "valid_principals": "alice"}),
        false,
    )
    .await;
    assert_eq!(lifetime(resp.unwrap()), 768 * 3600 + 30);
}

#[test]
fn names_follow_generic_name_with_at_regex() {
    assert!(valid_name("web-role.1@x"));
    assert!(!valid_name("-web"));
    assert!(!valid_name(""));
}

// --- OTP mode ---

fn ip(text: &str) -> std::net::IpAddr {
    cidr::parse_ip(text).expect("a valid address")
}

#[test]
fn cidr_parse_accepts_what_go_accepts() {
    for ok in [
        "10.0.0.0/8",
        "10.0.0.1/24",
        "0.0.0.0/0",
        "10.0.0.0/08",
        "::/0",
        "2001:DB8::/32",
        "::ffff:10.0.0.0/104",
    ] {
        assert!(cidr::Cidr::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "bad",
        "10.0.0.0",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "10.0.0.0/-1",
        "10.0.0.0/8 ",
        " 10.0.0.0/8",
        "010.0.0.0/8",
        "fe80::1%eth0/64",
    ] {
        assert_eq!(
            cidr::Cidr::parse(bad),
            Err(format!("invalid CIDR address: {bad}")),
            "{bad}"
        );
    }
}

#[test]
fn contains_masks_by_prefix_and_keeps_families_apart() {
    let net = cidr::Cidr::parse("10.0.0.1/24").unwrap();
    assert!(net.contains(ip("10.0.0.255")));
    assert!(!net.contains(ip("10.0.1.0")));
    assert!(cidr::Cidr::parse("0.0.0.0/0")
        .unwrap()
        .contains(ip("1.2.3.4")));
    assert!(cidr::Cidr::parse("10.0.0.7/32")
        .unwrap()
        .contains(ip("10.0.0.7")));
    assert!(!cidr::Cidr::parse("10.0.0.7/32")
        .unwrap()
        .contains(ip("10.0.0.6")));
    // An IPv4 address is not in an IPv6 block, even ::/0, as in Go.
    assert!(!cidr::Cidr::parse("::/0").unwrap().contains(ip("1.2.3.4")));
    assert!(cidr::Cidr::parse("::/0")
        .unwrap()
        .contains(ip("2001:db8::1")));
    assert!(cidr::Cidr::parse("2001:db8::/32")
        .unwrap()
        .contains(ip("2001:DB8:0:0::1")));
    // Mapped addresses and blocks are IPv4.
    assert!(net.contains(ip("::ffff:10.0.0.5")));
    let mapped = cidr::Cidr::parse("::ffff:10.0.0.0/104").unwrap();
    assert!(mapped.contains(ip("10.200.0.1")));
    assert!(!mapped.contains(ip("11.0.0.1")));
}

#[test]
fn parse_ip_echoes_goes_string_form() {
    assert_eq!(ip("::ffff:1.2.3.4").to_string(), "1.2.3.4");
    assert_eq!(ip("::1.2.3.4").to_string(), "::102:304");
    assert_eq!(ip("2001:DB8:0:0::1").to_string(), "2001:db8::1");
    for bad in [
        "nope",
        "192.168.001.5",
        " 10.0.0.5",
        "fe80::1%eth0",
        "1234",
        "",
    ] {
        assert!(cidr::parse_ip(bad).is_none(), "{bad}");
    }
}

#[test]
fn lists_validate_as_cidrutil_and_match_trimmed() {
    assert!(cidr::validate_list("10.0.0.1/24, 10.1.0.0/16").is_ok());
    assert!(cidr::validate_list("10.0.0.0/8,").is_ok());
    assert_eq!(
        cidr::validate_list(" , "),
        Err("missing CIDR blocks that needs validation".into())
    );
    assert_eq!(
        cidr::validate_list("10.0.0.0/8,bad"),
        Err("invalid CIDR address: bad".into())
    );
    assert_eq!(
        cidr::list_contains("", ip("10.0.0.1")),
        Err("IP does not belong to role".into())
    );
    assert_eq!(
        cidr::list_contains("10.0.0.1/24, 10.1.0.0/16", ip("10.1.2.3")),
        Ok(true)
    );
    assert_eq!(
        cidr::list_contains("10.0.0.0/24", ip("10.1.2.3")),
        Ok(false)
    );
    assert_eq!(
        cidr::list_contains("10.0.0.0/24,nope", ip("10.1.2.3")),
        Err("invalid CIDR entry \"nope\"".into())
    );
}

async fn otp_role(b: &Ssh, s: &dyn Storage, name: &str, body: Value) {
    let mut body = body;
    body["key_type"] = json!("otp");
    let r = b.handle(req(Operation::Update, &format!("roles/{name}"), body), s);
    assert!(r.await.unwrap().is_none());
}

/// `creds/<role>` at a fixed time, with the mount's default TTL `ttl`.
async fn creds_at(
    b: &Ssh,
    s: &dyn Storage,
    role: &str,
    body: Value,
    ttl: u64,
    now: i64,
) -> Result<Option<Response>, Error> {
    let mut r = req(Operation::Update, &format!("creds/{role}"), body);
    r.default_lease_ttl = ttl;
    r.max_lease_ttl = ttl;
    otp::creds(&r, role, s, &b.otp_lock, now).await
}

async fn verify_at(
    b: &Ssh,
    s: &dyn Storage,
    otp: &str,
    now: i64,
) -> Result<Option<Response>, Error> {
    let r = req(Operation::Update, "verify", json!({ "otp": otp }));
    otp::verify(&r, s, &b.otp_lock, now).await
}

fn key_of(resp: Option<Response>) -> String {
    data(resp)["key"].as_str().expect("a key").to_owned()
}

#[tokio::test]
async fn otp_role_reads_back_as_openbao_and_lists_without_issuer() {
    let b = Ssh::new();
    let s = MemStorage::default();
    let body = json!({"key_type": "OTP", "default_user": "ubuntu",
        "cidr_list": "10.0.0.0/24,192.168.1.0/24", "exclude_cidr_list": "10.0.0.128/25",
        // CA-only fields are accepted and dropped, as OpenBao does.
        "ttl": "1h", "allow_user_certificates": true});
    assert!(call(&b, &s, Operation::Update, "roles/otp1", body)
        .await
        .unwrap()
        .is_none());
    let r = data(
        call(&b, &s, Operation::Read, "roles/otp1", json!({}))
            .await
            .unwrap(),
    );
    // Exactly OpenBao 2.7.2's answer to the same write.
    assert_eq!(
        Value::Object(r),
        json!({"allowed_users": "", "cidr_list": "10.0.0.0/24,192.168.1.0/24",
               "default_user": "ubuntu", "exclude_cidr_list": "10.0.0.128/25",
               "key_type": "otp", "port": 22})
    );
    otp_role(
        &b,
        &s,
        "otp2",
        json!({"default_user": "root", "port": "2222"}),
    )
    .await;
    assert_eq!(
        data(
            call(&b, &s, Operation::Read, "roles/otp2", json!({}))
                .await
                .unwrap()
        )["port"],
        json!(2222)
    );
    call(
        &b,
        &s,
        Operation::Update,
        "roles/ca1",
        json!({"key_type": "ca", "allow_user_certificates": true}),
    )
    .await
    .unwrap();
    let l = data(
        call(&b, &s, Operation::List, "roles", json!({}))
            .await
            .unwrap(),
    );
    assert_eq!(
        l["key_info"],
        json!({"ca1": {"issuer_ref": "default", "key_type": "ca"},
               "otp1": {"key_type": "otp"}, "otp2": {"key_type": "otp"}})
    );
}

#[tokio::test]
async fn otp_role_errors_match_openbao() {
    let b = Ssh::new();
    let s = MemStorage::default();
    let cases = [
        (json!({"key_type": "otp"}), "missing default user".to_owned()),
        // OpenBao answers a bad block with a 500 of the same words; coffer with a 400.
        (json!({"key_type": "otp", "default_user": "a", "cidr_list": "bad"}),
            "failed to validate cidr_list: invalid CIDR address: bad".into()),
        (json!({"key_type": "otp", "default_user": "a", "cidr_list": "10.0.0.0/33"}),
            "failed to validate cidr_list: invalid CIDR address: 10.0.0.0/33".into()),
        (json!({"key_type": "otp", "default_user": "a", "exclude_cidr_list": "10.0.0.1"}),
            "failed to validate exclude_cidr_list entry: invalid CIDR address: 10.0.0.1".into()),
        (json!({"key_type": "otp", "default_user": "a", "cidr_list": " , "}),
            "failed to validate cidr_list: missing CIDR blocks that needs validation".into()),
        // The lists are checked before the key type, for every key type.
        (json!({"key_type": "ca", "allow_user_certificates": true, "cidr_list": "bad"}),
            "failed to validate cidr_list: invalid CIDR address: bad".into()),
        (json!({"cidr_list": "bad"}), "failed to validate cidr_list: invalid CIDR address: bad".into()),
        (json!({"key_type": "otp", "default_user": "a", "port": "abc"}),
            "Field validation failed: error converting input for field \"port\": '' cannot parse value as 'int': strconv.ParseInt: invalid syntax".into()),
        // OpenBao stores any port; coffer refuses one no sshd can listen on.
        (json!({"key_type": "otp", "default_user": "a", "port": -5}),
            "port must be between 1 and 65535, got -5".into()),
        (json!({"key_type": "otp", "default_user": "a", "port": 65536}),
            "port must be between 1 and 65535, got 65536".into()),
    ];
    for (body, expected) in cases {
        assert_eq!(
            invalid(call(&b, &s, Operation::Update, "roles/r", body.clone()).await),
            expected,
            "{body}"
        );
    }
    assert!(s.keys().is_empty(), "a refused write stored {:?}", s.keys());
}

#[tokio::test]
async fn creds_then_verify_once_then_otp_not_found() {
    let b = Ssh::new();
    let s = MemStorage::default();
    otp_role(
        &b,
        &s,
        "web",
        json!({"default_user": "ubuntu",
        "cidr_list": "10.0.0.0/24", "port": 2222}),
    )
    .await;
    let mut r = req(Operation::Update, "creds/web", json!({"ip": "10.0.0.5"}));
    r.default_lease_ttl = 600;
    r.max_lease_ttl = 3600;
    let resp = b.handle(r, &s).await.unwrap().unwrap();
    let lease = resp.lease.clone().expect("an OTP comes with a lease");
    assert_eq!((lease.ttl, lease.renewable), (600, false));
    let d = data(Some(resp));
    let otp = d["key"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&otp).is_ok(), "{otp}");
    assert_eq!(
        Value::Object(d),
        json!({"ip": "10.0.0.5", "key": otp, "key_type": "otp", "port": 2222, "username": "ubuntu"})
    );

    // Only a MAC of the OTP is stored: neither a key nor a value holds it.
    for (key, value) in s.entries.lock().unwrap().iter() {
        assert!(!key.contains(&otp), "{key}");
        assert!(
            !value.windows(otp.len()).any(|w| w == otp.as_bytes()),
            "{key} holds the OTP"
        );
    }

    let v = data(
        call(&b, &s, Operation::Update, "verify", json!({"otp": otp}))
            .await
            .unwrap(),
    );
    assert_eq!(
        Value::Object(v),
        json!({"ip": "10.0.0.5", "role_name": "web", "username": "ubuntu"})
    );
    assert_eq!(
        invalid(call(&b, &s, Operation::Update, "verify", json!({"otp": otp})).await),
        "OTP not found"
    );
    assert!(
        s.keys().iter().all(|k| !k.starts_with("otp")),
        "a spent OTP left {:?}",
        s.keys()
    );
    // Another OTP, never issued, and nothing at all are unknown alike.
    for body in [
        json!({"otp": uuid::Uuid::new_v4().to_string()}),
        json!({}),
        json!({"otp": 123}),
    ] {
        assert_eq!(
            invalid(call(&b, &s, Operation::Update, "verify", body).await),
            "OTP not found"
        );
    }
    assert_eq!(
        invalid(call(&b, &s, Operation::Update, "verify", json!({"otp": ["a"]})).await),
        "Field validation failed: error converting input for field \"otp\": '' expected type 'string', got unconvertible type '[]interface {}'"
    );
    // The SSH helper's connectivity check.
    let echo = data(
        call(
            &b,
            &s,
            Operation::Update,
            "verify",
            json!({"otp": "verify-echo-request"}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        Value::Object(echo),
        json!({"message": "verify-echo-response"})
    );
}

#[tokio::test]
async fn verify_on_a_fresh_mount_refuses_and_makes_no_key() {
    let b = Ssh::new();
    let s = MemStorage::default();
    assert_eq!(
        invalid(call(&b, &s, Operation::Update, "verify", json!({"otp": "x"})).await),
        "OTP not found"
    );
    assert!(s.keys().is_empty(), "{:?}", s.keys());
}

#[tokio::test]
async fn an_otp_expires_with_the_mounts_default_ttl() {
    let b = Ssh::new();
    let s = MemStorage::default();
    otp_role(
        &b,
        &s,
        "web",
        json!({"default_user": "u", "cidr_list": "10.0.0.0/8"}),
    )
    .await;
    let now = 1_000_000;
    let otp = key_of(
        creds_at(&b, &s, "web", json!({"ip": "10.1.1.1"}), 600, now)
            .await
            .unwrap(),
    );
    assert_eq!(
        invalid(verify_at(&b, &s, &otp, now + 600).await),
        "OTP not found"
    );
    // The expired OTP is gone, not merely refused.
    assert!(
        s.keys().iter().all(|k| !k.starts_with("otp")),
        "{:?}",
        s.keys()
    );

    let otp = key_of(
        creds_at(&b, &s, "web", json!({"ip": "10.1.1.1"}), 600, now)
            .await
            .unwrap(),
    );
    assert!(verify_at(&b, &s, &otp, now + 599).await.is_ok());
}

#[tokio::test]
async fn tidy_deletes_otps_of_past_hours_only() {
    let b = Ssh::new();
    let s = MemStorage::default();
    otp_role(
        &b,
        &s,
        "web",
        json!({"default_user": "u", "cidr_list": "10.0.0.0/8"}),
    )
    .await;
    // Expires at 1_000_600, in hour 277 (which ends at 1_000_800).
    let early = key_of(
        creds_at(&b, &s, "web", json!({"ip": "10.1.1.1"}), 600, 1_000_000)
            .await
            .unwrap(),
    );
    let late = key_of(
        creds_at(&b, &s, "web", json!({"ip": "10.1.1.2"}), 600, 2_000_000)
            .await
            .unwrap(),
    );
    let otp_keys = |s: &MemStorage| {
        s.keys()
            .into_iter()
            .filter(|k| k.starts_with("otp"))
            .count()
    };
    assert_eq!(otp_keys(&s), 4, "an entry and an index entry each");

    otp::tidy(&s, 1_000_799).await.unwrap();
    assert_eq!(otp_keys(&s), 4, "hour 277 is not over yet");
    otp::tidy(&s, 1_000_800).await.unwrap();
    assert_eq!(otp_keys(&s), 2, "{:?}", s.keys());
    assert_eq!(
        invalid(verify_at(&b, &s, &early, 1_000_000).await),
        "OTP not found"
    );
    let v = data(verify_at(&b, &s, &late, 2_000_000).await.unwrap());
    assert_eq!(v["ip"], "10.1.1.2");
    assert_eq!(otp_keys(&s), 0);
}

/// An OTP from `creds/web` through `Backend::handle`, and its lease.
async fn issue(b: &Ssh, s: &MemStorage, ip: &str) -> (String, Lease) {
    let resp = call(b, s, Operation::Update, "creds/web", json!({ "ip": ip }))
        .await
        .unwrap()
        .expect("a response");
    let lease = resp.lease.clone().expect("an OTP comes with a lease");
    (key_of(Some(resp)), lease)
}

#[tokio::test]
async fn revoking_an_otps_lease_deletes_that_otp_only() {
    let b = Ssh::new();
    let s = MemStorage::default();
    otp_role(
        &b,
        &s,
        "web",
        json!({"default_user": "u", "cidr_list": "10.0.0.0/8"}),
    )
    .await;
    let (otp, lease) = issue(&b, &s, "10.0.0.1").await;
    let (other, _) = issue(&b, &s, "10.0.0.2").await;

    // The lease names the entry, and holds nothing that would verify.
    let fields: Vec<&String> = lease.internal_data.keys().collect();
    assert_eq!(fields, ["otp_selector"]);
    let selector = lease.internal_data["otp_selector"].as_str().unwrap();
    assert!(
        s.keys().contains(&format!("otp/{selector}")),
        "{:?}",
        s.keys()
    );
    assert!(
        !serde_json::to_string(&lease.internal_data)
            .unwrap()
            .contains(&otp),
        "the lease holds the OTP"
    );

    let backend: &dyn Backend = &b;
    backend.revoke(&lease, &s).await.unwrap();
    assert!(
        s.keys().iter().all(|k| !k.ends_with(selector)),
        "the revoked OTP left {:?}",
        s.keys()
    );
    assert_eq!(
        invalid(call(&b, &s, Operation::Update, "verify", json!({"otp": otp})).await),
        "OTP not found"
    );
    // Revoking it again, as a retried revocation would, finds nothing to do.
    backend.revoke(&lease, &s).await.unwrap();

    let v = data(
        call(&b, &s, Operation::Update, "verify", json!({"otp": other}))
            .await
            .unwrap(),
    );
    assert_eq!(v["ip"], "10.0.0.2");
}

#[tokio::test]
async fn revoking_a_spent_otps_lease_succeeds_quietly() {
    let b = Ssh::new();
    let s = MemStorage::default();
    otp_role(
        &b,
        &s,
        "web",
        json!({"default_user": "u", "cidr_list": "10.0.0.0/8"}),
    )
    .await;
    let (otp, lease) = issue(&b, &s, "10.0.0.1").await;
    call(&b, &s, Operation::Update, "verify", json!({ "otp": otp }))
        .await
        .unwrap();
    b.revoke(&lease, &s).await.unwrap();
    assert!(
        s.keys().iter().all(|k| !k.starts_with("otp")),
        "{:?}",
        s.keys()
    );
}

#[tokio::test]
async fn a_lease_without_a_selector_revokes_nothing() {
    let b = Ssh::new();
    let s = MemStorage::default();
    otp_role(
        &b,
        &s,
        "web",
        json!({"default_user": "u", "cidr_list": "10.0.0.0/8"}),
    )
    .await;
    let (otp, _) = issue(&b, &s, "10.0.0.1").await;
    let before = s.keys();
    // Nothing, the OTP itself (OpenBao's internal data), and paths that are no selector.
    for internal in [
        json!({}),
        json!({ "otp": otp }),
        json!({"otp_selector": "../salt"}),
        json!({"otp_selector": 7}),
        json!({"otp_selector": "ABCDEF0123456789ABCDEF0123456789"}),
    ] {
        let lease = Lease {
            internal_data: internal.as_object().unwrap().clone(),
            ..Lease::default()
        };
        match b.revoke(&lease, &s).await {
            Err(Error::InvalidRequest(m)) => assert_eq!(m, "secret is missing internal data"),
            other => panic!("{internal}: {other:?}"),
        }
    }
    assert_eq!(s.keys(), before);
    assert!(
        call(&b, &s, Operation::Update, "verify", json!({ "otp": otp }))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn creds_errors_match_openbao() {
    let b = Ssh::new();
    let s = MemStorage::default();
    otp_role(
        &b,
        &s,
        "otp1",
        json!({"default_user": "ubuntu",
        "cidr_list": "10.0.0.0/24,192.168.1.0/24", "exclude_cidr_list": "10.0.0.128/25"}),
    )
    .await;
    otp_role(&b, &s, "nocidr", json!({"default_user": "root"})).await;
    let cases = [
        ("otp1", json!({}), "Missing ip"),
        ("nope", json!({"ip": "10.0.0.5"}), "Role \"nope\" not found"),
        ("otp1", json!({"ip": "10.0.0.5", "username": "bob"}),
            "Username has to be either in allowed users list or has to be a default username"),
        ("otp1", json!({"ip": "nope"}), "Invalid IP \"nope\""),
        ("otp1", json!({"ip": "192.168.001.5"}), "Invalid IP \"192.168.001.5\""),
        ("otp1", json!({"ip": " 10.0.0.5"}), "Invalid IP \" 10.0.0.5\""),
        ("otp1", json!({"ip": 1234}), "Invalid IP \"1234\""),
        // Outside every block, and inside the excluded one.
        ("otp1", json!({"ip": "10.9.0.1"}), "Error validating IP: IP does not belong to role"),
        ("otp1", json!({"ip": "10.0.0.200"}), "Error validating IP: IP does not belong to role"),
        ("otp1", json!({"ip": "2001:db8::1"}), "Error validating IP: IP does not belong to role"),
        ("nocidr", json!({"ip": "10.0.0.5"}), "Error validating IP: IP does not belong to role"),
        ("otp1", json!({"ip": "10.0.0.5", "username": ["x"]}),
            "Field validation failed: error converting input for field \"username\": '' expected type 'string', got unconvertible type '[]interface {}'"),
    ];
    for (role, body, expected) in cases {
        assert_eq!(
            invalid(
                call(
                    &b,
                    &s,
                    Operation::Update,
                    &format!("creds/{role}"),
                    body.clone()
                )
                .await
            ),
            expected,
            "{role} {body}"
        );
    }
    assert!(
        s.keys().iter().all(|k| !k.starts_with("otp")),
        "a refused request stored an OTP: {:?}",
        s.keys()
    );
    // creds is written, never read; a bad role name is no path at all.
    assert!(matches!(
        call(&b, &s, Operation::Read, "creds/otp1", json!({})).await,
        Err(Error::UnsupportedOperation)
    ));
    assert!(matches!(
        call(
            &b,
            &s,
            Operation::Update,
            "creds/-x",
            json!({"ip": "10.0.0.5"})
        )
        .await,
        Err(Error::UnsupportedPath(_))
    ));
    // An IPv4-mapped address is the IPv4 address, answered in that form.
    let d = data(
        call(
            &b,
            &s,
            Operation::Update,
            "creds/otp1",
            json!({"ip": "::ffff:10.0.0.5", "username": "ubuntu"}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(d["ip"], "10.0.0.5");
}

#[tokio::test]
async fn allowed_users_list_star_and_default() {
    let b = Ssh::new();
    let s = MemStorage::default();
    otp_role(
        &b,
        &s,
        "au",
        json!({"default_user": "ubuntu", "allowed_users": "alice, bob",
        "cidr_list": "0.0.0.0/0"}),
    )
    .await;
    otp_role(
        &b,
        &s,
        "any",
        json!({"default_user": "ubuntu", "allowed_users": "*",
        "cidr_list": "0.0.0.0/0,::/0"}),
    )
    .await;
    let user = |role: &'static str, body: Value| {
        let path = format!("creds/{role}");
        let (b, s) = (&b, &s);
        async move { call(b, s, Operation::Update, &path, body).await }
    };
    assert_eq!(
        data(
            user("au", json!({"ip": "1.2.3.4", "username": "bob"}))
                .await
                .unwrap()
        )["username"],
        "bob"
    );
    assert_eq!(
        data(
            user("au", json!({"ip": "1.2.3.4", "username": "ubuntu"}))
                .await
                .unwrap()
        )["username"],
        "ubuntu"
    );
    assert_eq!(
        data(
            user("au", json!({"ip": "1.2.3.4", "username": ""}))
                .await
                .unwrap()
        )["username"],
        "ubuntu"
    );
    assert_eq!(
        invalid(user("au", json!({"ip": "1.2.3.4", "username": "carol"})).await),
        "Username is not present is allowed users list"
    );
    let d = data(
        user("any", json!({"ip": "::1", "username": "anyone"}))
            .await
            .unwrap(),
    );
    assert_eq!(
        (d["username"].as_str(), d["ip"].as_str()),
        (Some("anyone"), Some("::1"))
    );
}

#[tokio::test]
async fn zero_address_roles_take_any_ip_and_leave_with_their_role() {
    let b = Ssh::new();
    let s = MemStorage::default();
    otp_role(&b, &s, "z1", json!({"default_user": "root"})).await;
    otp_role(&b, &s, "5", json!({"default_user": "root"})).await;
    otp_role(
        &b,
        &s,
        "web",
        json!({"default_user": "u", "cidr_list": "10.0.0.0/24"}),
    )
    .await;
    assert!(
        call(&b, &s, Operation::Read, "config/zeroaddress", json!({}))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        invalid(
            call(
                &b,
                &s,
                Operation::Update,
                "creds/z1",
                json!({"ip": "172.16.0.1"})
            )
            .await
        ),
        "Error validating IP: IP does not belong to role"
    );

    let cases = [
        (json!({}), "Missing roles".to_owned()),
        (json!({"roles": ""}), "Missing roles".into()),
        (json!({"roles": []}), "Missing roles".into()),
        (json!({"roles": null}), "Missing roles".into()),
        (json!({"roles": "z1,nope"}), "Role \"nope\" does not exist".into()),
        (json!({"roles": "z1,,z1"}), "Role \"\" does not exist".into()),
        (json!({"roles": true}), "Role \"1\" does not exist".into()),
        (json!({"roles": [{"a": 1}, [2, "x"]]}),
            "Field validation failed: error converting input for field \"roles\": 2 error(s) decoding:\n\n* '[0]' expected type 'string', got unconvertible type 'map[string]interface {}', value: 'map[a:1]'\n* '[1]' expected type 'string', got unconvertible type '[]interface {}', value: '[2 x]'".into()),
    ];
    for (body, expected) in cases {
        assert_eq!(
            invalid(
                call(
                    &b,
                    &s,
                    Operation::Update,
                    "config/zeroaddress",
                    body.clone()
                )
                .await
            ),
            expected,
            "{body}"
        );
    }
    // Items are trimmed, numbers read as names, duplicates kept: as OpenBao stores them.
    for (body, roles) in [
        (json!({"roles": "z1, 5"}), json!(["z1", "5"])),
        (json!({"roles": [5]}), json!(["5"])),
        (json!({"roles": [" z1 ", "z1"]}), json!(["z1", "z1"])),
    ] {
        assert!(call(&b, &s, Operation::Update, "config/zeroaddress", body)
            .await
            .unwrap()
            .is_none());
        let d = data(
            call(&b, &s, Operation::Read, "config/zeroaddress", json!({}))
                .await
                .unwrap(),
        );
        assert_eq!(d["roles"], roles);
    }

    let d = data(
        call(
            &b,
            &s,
            Operation::Update,
            "creds/z1",
            json!({"ip": "172.16.0.1"}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(d["ip"], "172.16.0.1");
    let d = data(
        call(
            &b,
            &s,
            Operation::Update,
            "lookup",
            json!({"ip": "10.0.0.1"}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(d["roles"], json!(["web", "z1", "z1"]));

    // Deleting the role takes every listing of it off (OpenBao leaves all but the first).
    call(&b, &s, Operation::Delete, "roles/z1", json!({}))
        .await
        .unwrap();
    let d = data(
        call(&b, &s, Operation::Read, "config/zeroaddress", json!({}))
            .await
            .unwrap(),
    );
    assert_eq!(d["roles"], json!([]));
    otp_role(&b, &s, "z1", json!({"default_user": "root"})).await;
    assert_eq!(
        invalid(
            call(
                &b,
                &s,
                Operation::Update,
                "creds/z1",
                json!({"ip": "172.16.0.1"})
            )
            .await
        ),
        "Error validating IP: IP does not belong to role",
        "a re-created role inherited the zero-address privilege"
    );

    assert!(
        call(&b, &s, Operation::Delete, "config/zeroaddress", json!({}))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        call(&b, &s, Operation::Read, "config/zeroaddress", json!({}))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_ca_role_never_issues_an_otp() {
    let b = Ssh::new();
    let s = MemStorage::default();
    call(
        &b,
        &s,
        Operation::Update,
        "roles/ca1",
        json!({"key_type": "ca", "allow_user_certificates": true, "default_user": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(
        invalid(
            call(
                &b,
                &s,
                Operation::Update,
                "creds/ca1",
                json!({"ip": "10.0.0.1"})
            )
            .await
        ),
        "Error validating IP: IP does not belong to role"
    );
    call(
        &b,
        &s,
        Operation::Update,
        "config/zeroaddress",
        json!({"roles": "ca1"}),
    )
    .await
    .unwrap();
    // OpenBao: a 500 with these words.
    assert_eq!(
        invalid(
            call(
                &b,
                &s,
                Operation::Update,
                "creds/ca1",
                json!({"ip": "10.0.0.1"})
            )
            .await
        ),
        "key type unknown"
    );
    assert!(
        s.keys().iter().all(|k| !k.starts_with("otp")),
        "{:?}",
        s.keys()
    );
}

#[tokio::test]
async fn an_otp_role_signs_nothing() {
    let b = Ssh::new();
    let s = MemStorage::default();
    setup(&b, &s, "ssh-ed25519").await;
    otp_role(
        &b,
        &s,
        "otp1",
        json!({"default_user": "u", "cidr_list": "10.0.0.0/8"}),
    )
    .await;
    let user = user_pub(&user_key());
    assert_eq!(
        invalid(
            call(
                &b,
                &s,
                Operation::Update,
                "sign/otp1",
                json!({"public_key": user})
            )
            .await
        ),
        "cert_type 'user' is not allowed by role"
    );
    assert_eq!(
        invalid(
            call(
                &b,
                &s,
                Operation::Update,
                "sign/otp1",
                json!({"public_key": user, "cert_type": "host"})
            )
            .await
        ),
        "cert_type 'host' is not allowed by role"
    );
}

#[tokio::test]
async fn lookup_lists_roles_by_cidr_list_then_zero_address() {
    let b = Ssh::new();
    let s = MemStorage::default();
    otp_role(
        &b,
        &s,
        "b",
        json!({"default_user": "u",
        "cidr_list": "10.0.0.0/24", "exclude_cidr_list": "10.0.0.128/25"}),
    )
    .await;
    otp_role(
        &b,
        &s,
        "a",
        json!({"default_user": "u", "cidr_list": "10.0.0.0/8, 2001:db8::/32"}),
    )
    .await;
    let lookup = |ip: Value| call(&b, &s, Operation::Update, "lookup", json!({ "ip": ip }));
    assert_eq!(
        data(lookup(json!("10.0.0.5")).await.unwrap())["roles"],
        json!(["a", "b"])
    );
    // OpenBao's lookup ignores exclude_cidr_list.
    assert_eq!(
        data(lookup(json!("10.0.0.200")).await.unwrap())["roles"],
        json!(["a", "b"])
    );
    assert_eq!(
        data(lookup(json!("2001:db8::7")).await.unwrap())["roles"],
        json!(["a"])
    );
    assert_eq!(
        data(lookup(json!("172.16.0.1")).await.unwrap())["roles"],
        Value::Null
    );
    assert_eq!(invalid(lookup(json!("bad")).await), "Invalid IP \"bad\"");
    assert_eq!(invalid(lookup(json!("")).await), "Missing ip");
    assert_eq!(
        invalid(lookup(json!(["a"])).await),
        "Field validation failed: error converting input for field \"ip\": '' expected type 'string', got unconvertible type '[]interface {}'"
    );
}

/// MemStorage that yields to the scheduler before every operation, so concurrent requests
/// interleave between their reads and writes as they would on a real store.
#[derive(Default)]
struct Yielding(MemStorage);

#[async_trait::async_trait]
impl Storage for Yielding {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        tokio::task::yield_now().await;
        self.0.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        tokio::task::yield_now().await;
        self.0.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), Error> {
        tokio::task::yield_now().await;
        self.0.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        tokio::task::yield_now().await;
        self.0.list(prefix).await
    }
    async fn apply(&self, ops: Vec<coffer_sdk::StorageOp>) -> Result<(), Error> {
        tokio::task::yield_now().await;
        self.0.apply(ops).await
    }
}

#[tokio::test]
async fn concurrent_verifies_of_one_otp_succeed_once() {
    let b = Arc::new(Ssh::new());
    let s = Arc::new(Yielding::default());
    otp_role(
        &b,
        s.as_ref(),
        "web",
        json!({"default_user": "u", "cidr_list": "10.0.0.0/8"}),
    )
    .await;
    let otp = key_of(
        b.handle(
            req(Operation::Update, "creds/web", json!({"ip": "10.0.0.1"})),
            s.as_ref(),
        )
        .await
        .unwrap(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (b, s, otp) = (b.clone(), s.clone(), otp.clone());
        tasks.spawn(async move {
            b.handle(
                req(Operation::Update, "verify", json!({ "otp": otp })),
                s.as_ref(),
            )
            .await
            .is_ok()
        });
    }
    let mut spent = 0;
    while let Some(ok) = tasks.join_next().await {
        spent += usize::from(ok.unwrap());
    }
    assert_eq!(spent, 1);
}

#[tokio::test]
async fn concurrent_first_creds_share_one_otp_key() {
    let b = Arc::new(Ssh::new());
    let s = Arc::new(Yielding::default());
    otp_role(
        &b,
        s.as_ref(),
        "web",
        json!({"default_user": "u", "cidr_list": "10.0.0.0/8"}),
    )
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (b, s) = (b.clone(), s.clone());
        tasks.spawn(async move {
            key_of(
                b.handle(
                    req(Operation::Update, "creds/web", json!({"ip": "10.0.0.1"})),
                    s.as_ref(),
                )
                .await
                .unwrap(),
            )
        });
    }
    let mut otps = Vec::new();
    while let Some(otp) = tasks.join_next().await {
        otps.push(otp.unwrap());
    }
    // Every OTP verifies: none was keyed with a key another request then overwrote.
    for otp in otps {
        let r = b.handle(
            req(Operation::Update, "verify", json!({ "otp": otp })),
            s.as_ref(),
        );
        assert!(r.await.is_ok());
    }
}

/// `ssh-keygen -L` of a certificate, or `None` when ssh-keygen is not installed.
fn ssh_keygen_l(signed_key: &str) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("coffer-ssh-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cert.pub");
    std::fs::write(&path, signed_key).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&path)
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.ok()?;
    assert!(
        out.status.success(),
        "ssh-keygen -L failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}
