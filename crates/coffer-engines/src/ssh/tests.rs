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
    assert_eq!(
        b.special_paths().unauthenticated,
        vec!["public_key".to_owned()]
    );
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
    let d = data(
        call_as(
            &b,
            &s,
            "sign/r1",
            json!({"public_key": user_pub(&user)}),
            "token",
        )
        .await
        .unwrap(),
    );
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
