//! End-to-end tests of the pki backend over in-memory storage: every certificate and CRL is
//! parsed back with x509-parser and its signature checked against the issuer's key.

use super::*;
use crate::testing::{req, MemStorage};
use serde_json::json;
use x509_parser::prelude::{FromDer, X509Certificate};

async fn call(
    pki: &Pki,
    s: &MemStorage,
    op: Operation,
    path: &str,
    body: Value,
) -> Result<Option<Response>, Error> {
    pki.handle(req(op, path, body), s).await
}

async fn data(
    pki: &Pki,
    s: &MemStorage,
    op: Operation,
    path: &str,
    body: Value,
) -> Map<String, Value> {
    call(pki, s, op, path, body)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .and_then(|r| r.data)
        .unwrap_or_else(|| panic!("{path}: no data"))
}

fn der_of(pem: &Value) -> Vec<u8> {
    store::cert_der(pem.as_str().unwrap()).unwrap()
}

/// Checks that `child` is signed by `parent`'s key and names it as issuer.
fn assert_signed_by(child: &[u8], parent: &[u8]) {
    let (_, child) = X509Certificate::from_der(child).unwrap();
    let (_, parent) = X509Certificate::from_der(parent).unwrap();
    assert_eq!(child.issuer().as_raw(), parent.subject().as_raw());
    child
        .verify_signature(Some(parent.public_key()))
        .expect("signature verifies");
}

async fn root_and_role(pki: &Pki, s: &MemStorage) -> Map<String, Value> {
    let root = data(
        pki,
        s,
        Operation::Update,
        "root/generate/internal",
        json!({"common_name": "example.com", "key_type": "ec", "ttl": "8760h", "issuer_name": "root-1"}),
    )
    .await;
    data(
        pki,
        s,
        Operation::Update,
        "roles/web",
        json!({"allowed_domains": "example.com", "allow_subdomains": true,
               "key_type": "ec", "key_bits": 256, "max_ttl": "72h"}),
    )
    .await;
    root
}

#[tokio::test]
async fn issued_certificate_chains_to_the_root_and_revocation_reaches_the_crl() {
    let pki = Pki::new();
    let s = MemStorage::default();
    let root = root_and_role(&pki, &s).await;
    assert!(root.get("private_key").is_none(), "internal never exports");
    assert_eq!(root["issuer_name"], json!("root-1"));
    let root_der = der_of(&root["certificate"]);
    assert_signed_by(&root_der, &root_der);

    let leaf = data(
        &pki,
        &s,
        Operation::Update,
        "issue/web",
        json!({"common_name": "a.example.com", "alt_names": "b.example.com", "ttl": "1h",
               "ip_sans": "127.0.0.1"}),
    )
    .await;
    assert_eq!(leaf["private_key_type"], json!("ec"));
    assert!(leaf["private_key"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert_eq!(leaf["issuing_ca"], root["certificate"]);
    assert_eq!(leaf["ca_chain"], json!([root["certificate"]]));
    let serial = leaf["serial_number"].as_str().unwrap().to_owned();
    assert_eq!(serial.split(':').count(), 20);
    let leaf_der = der_of(&leaf["certificate"]);
    assert_signed_by(&leaf_der, &root_der);
    let (_, cert) = X509Certificate::from_der(&leaf_der).unwrap();
    let ttl = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert_eq!(ttl, 3600 + 30, "ttl plus the not_before backdating");
    let sans = cert.subject_alternative_name().unwrap().unwrap().value;
    assert_eq!(sans.general_names.len(), 3);

    // Listed, readable, then revoked and on the CRL.
    let certs = data(&pki, &s, Operation::List, "certs", json!({})).await;
    assert!(certs["keys"].as_array().unwrap().contains(&json!(serial)));
    let read = data(
        &pki,
        &s,
        Operation::Read,
        &format!("cert/{serial}"),
        json!({}),
    )
    .await;
    assert_eq!(read["certificate"], leaf["certificate"]);
    assert_eq!(read["revocation_time"], json!(0));
    let revoked = data(
        &pki,
        &s,
        Operation::Update,
        "revoke",
        json!({"serial_number": serial}),
    )
    .await;
    assert_eq!(revoked["state"], json!("revoked"));
    let crl_pem = data(&pki, &s, Operation::Read, "cert/crl", json!({})).await;
    let crl_block = &pem::blocks(crl_pem["certificate"].as_str().unwrap()).unwrap()[0];
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&crl_block.der).unwrap();
    let (_, root_cert) = X509Certificate::from_der(&root_der).unwrap();
    crl.verify_signature(root_cert.public_key()).unwrap();
    let listed: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| colon_hex(r.raw_serial()))
        .collect();
    assert_eq!(listed, vec![serial.clone()]);
    let read = data(
        &pki,
        &s,
        Operation::Read,
        &format!("cert/{serial}"),
        json!({}),
    )
    .await;
    assert!(read["revocation_time"].as_i64().unwrap() > 0);

    // The raw DER CRL is the same CRL.
    let raw = data(&pki, &s, Operation::Read, "crl", json!({})).await;
    assert_eq!(raw["http_content_type"], json!("application/pkix-crl"));
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD
        .decode(raw["http_raw_body"].as_str().unwrap())
        .unwrap();
    assert_eq!(body, crl_block.der.to_vec());
}

/// A request as core sends it to a mount tuned to `default` and `max` seconds.
fn tuned(op: Operation, path: &str, body: Value, default: u64, max: u64) -> Request {
    let mut r = req(op, path, body);
    r.default_lease_ttl = default;
    r.max_lease_ttl = max;
    r
}

fn lifetime(resp: &Response) -> i64 {
    let data = resp.data.as_ref().unwrap();
    let der = der_of(&data["certificate"]);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()
}

#[tokio::test]
async fn certificates_without_ttls_use_the_mounts_tuned_ttls() {
    let pki = Pki::new();
    let s = MemStorage::default();
    const H: u64 = 3600;
    let root = pki
        .handle(
            tuned(
                Operation::Update,
                "root/generate/internal",
                json!({"common_name": "example.com", "key_type": "ec"}),
                10 * H,
                12 * H,
            ),
            &s,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lifetime(&root), 10 * 3600 + 30, "the mount default");
    data(
        &pki,
        &s,
        Operation::Update,
        "roles/open",
        json!({"allowed_domains": "example.com", "allow_subdomains": true,
               "key_type": "ec", "key_bits": 256}),
    )
    .await;
    let issue = |body: Value| {
        pki.handle(
            tuned(Operation::Update, "issue/open", body, 2 * H, 3 * H),
            &s,
        )
    };

    let leaf = issue(json!({"common_name": "a.example.com"}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lifetime(&leaf), 2 * 3600 + 30, "the mount default");
    let capped = issue(json!({"common_name": "a.example.com", "ttl": "5h"}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lifetime(&capped), 3 * 3600 + 30, "capped at the mount max");
    assert_eq!(
        capped.warnings,
        ["TTL \"5h0m0s\" is longer than permitted maxTTL \"3h0m0s\", so maxTTL is being used"]
    );
}

#[tokio::test]
async fn roles_refuse_names_and_ttls_outside_them() {
    let pki = Pki::new();
    let s = MemStorage::default();
    root_and_role(&pki, &s).await;
    let err = call(
        &pki,
        &s,
        Operation::Update,
        "issue/web",
        json!({"common_name": "a.other.com"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "common name a.other.com not allowed by this role"
    );
    let err = call(
        &pki,
        &s,
        Operation::Update,
        "issue/nope",
        json!({"common_name": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "unknown role: nope");
    let err = call(&pki, &s, Operation::Update, "issue/web", json!({}))
        .await
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("the common_name field is required"));
    let resp = call(
        &pki,
        &s,
        Operation::Update,
        "issue/web",
        json!({"common_name": "a.example.com", "ttl": "100h"}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        resp.warnings,
        vec![
            "TTL \"100h0m0s\" is longer than permitted maxTTL \"72h0m0s\", so maxTTL is being used"
        ]
    );
    let exp = resp.data.unwrap()["expiration"].as_i64().unwrap();
    let now = OffsetDateTimeNow::now();
    assert!((exp - now - 72 * 3600).abs() < 5);
    let err = call(
        &pki,
        &s,
        Operation::Update,
        "revoke",
        json!({"serial_number": "aa:bb"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "certificate with serial aa:bb not found.");
}

#[tokio::test]
async fn intermediate_csr_signed_by_another_mount_issues_a_verifiable_chain() {
    let root_pki = Pki::new();
    let root_s = MemStorage::default();
    let root = root_and_role(&root_pki, &root_s).await;
    let int_pki = Pki::new();
    let int_s = MemStorage::default();
    let csr = data(
        &int_pki,
        &int_s,
        Operation::Update,
        "intermediate/generate/exported",
        json!({"common_name": "Int CA", "key_type": "ed25519"}),
    )
    .await;
    assert!(csr["csr"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    assert_eq!(csr["private_key_type"], json!("ed25519"));
    let signed = data(
        &root_pki,
        &root_s,
        Operation::Update,
        "root/sign-intermediate",
        json!({"csr": csr["csr"], "common_name": "Int CA", "ttl": "100h"}),
    )
    .await;
    let int_der = der_of(&signed["certificate"]);
    assert_signed_by(&int_der, &der_of(&root["certificate"]));
    let (_, int_cert) = X509Certificate::from_der(&int_der).unwrap();
    assert!(int_cert.is_ca());
    assert_eq!(signed["ca_chain"][0], signed["certificate"]);

    let bundle = format!(
        "{}\n{}",
        signed["certificate"].as_str().unwrap(),
        root["certificate"].as_str().unwrap()
    );
    let set = data(
        &int_pki,
        &int_s,
        Operation::Update,
        "intermediate/set-signed",
        json!({"certificate": bundle}),
    )
    .await;
    assert_eq!(set["imported_issuers"].as_array().unwrap().len(), 2);
    let int_id = set["imported_issuers"][0].as_str().unwrap();
    assert_eq!(set["mapping"][int_id], csr["key_id"]);
    let config = data(
        &int_pki,
        &int_s,
        Operation::Read,
        "config/issuers",
        json!({}),
    )
    .await;
    assert_eq!(config["default"], json!(int_id));

    data(
        &int_pki,
        &int_s,
        Operation::Update,
        "roles/any",
        json!({"allow_any_name": true, "key_type": "ec"}),
    )
    .await;
    let leaf = data(
        &int_pki,
        &int_s,
        Operation::Update,
        "issue/any",
        json!({"common_name": "svc.internal", "ttl": "1h"}),
    )
    .await;
    assert_signed_by(&der_of(&leaf["certificate"]), &int_der);
    assert_eq!(
        leaf["ca_chain"],
        json!([signed["certificate"], root["certificate"]])
    );

    // A CSR made elsewhere is signed by `sign/<role>` with the role's checks.
    let key = keys::PrivateKey::generate(keys::KeyType::Ec, 256).unwrap();
    let signer = key.signer().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["csr.internal".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "csr.internal");
    let req_pem = params.serialize_request(&signer).unwrap().pem().unwrap();
    let signed_leaf = data(
        &int_pki,
        &int_s,
        Operation::Update,
        "sign/any",
        json!({"csr": req_pem, "ttl": "1h"}),
    )
    .await;
    let leaf_der = der_of(&signed_leaf["certificate"]);
    let (_, leaf_cert) = X509Certificate::from_der(&leaf_der).unwrap();
    assert_eq!(leaf_cert.public_key().raw, signer.spki().as_slice());
    assert!(signed_leaf.get("private_key").is_none());
    let err = call(
        &int_pki,
        &int_s,
        Operation::Update,
        "sign/any",
        json!({"csr": "garbage"}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)));
}

#[tokio::test]
async fn bundles_import_once_and_issuers_and_keys_are_managed_by_reference() {
    let pki = Pki::new();
    let s = MemStorage::default();
    let exported = data(
        &pki,
        &s,
        Operation::Update,
        "root/generate/exported",
        json!({"common_name": "exported.test", "key_type": "ec", "key_name": "k1"}),
    )
    .await;
    let bundle = format!(
        "{}\n{}\n",
        exported["certificate"].as_str().unwrap(),
        exported["private_key"].as_str().unwrap()
    );
    let other = Pki::new();
    let s2 = MemStorage::default();
    let first = data(
        &other,
        &s2,
        Operation::Update,
        "config/ca",
        json!({"pem_bundle": bundle}),
    )
    .await;
    assert_eq!(first["imported_keys"].as_array().unwrap().len(), 1);
    let again = data(
        &other,
        &s2,
        Operation::Update,
        "issuers/import/bundle",
        json!({"pem_bundle": bundle}),
    )
    .await;
    assert_eq!(again["imported_issuers"], Value::Null);
    assert_eq!(again["existing_issuers"], first["imported_issuers"]);
    data(
        &other,
        &s2,
        Operation::Update,
        "roles/r",
        json!({"allow_any_name": true, "key_type": "ed25519"}),
    )
    .await;
    let leaf = data(
        &other,
        &s2,
        Operation::Update,
        "issue/r",
        json!({"common_name": "x.test"}),
    )
    .await;
    assert_signed_by(
        &der_of(&leaf["certificate"]),
        &der_of(&exported["certificate"]),
    );

    // Two issuers in one mount; names, defaults and deletion by reference.
    data(
        &pki,
        &s,
        Operation::Update,
        "root/generate/internal",
        json!({"common_name": "second", "key_type": "ec", "issuer_name": "second"}),
    )
    .await;
    let list = data(&pki, &s, Operation::List, "issuers", json!({})).await;
    assert_eq!(list["keys"].as_array().unwrap().len(), 2);
    let default_id = exported["issuer_id"].as_str().unwrap();
    assert_eq!(list["key_info"][default_id]["is_default"], json!(true));
    let err = call(
        &pki,
        &s,
        Operation::Update,
        "issuer/second",
        json!({"issuer_name": "default"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "reserved keyword 'default' can not be used as issuer name"
    );
    let renamed = data(
        &pki,
        &s,
        Operation::Update,
        "issuer/second",
        json!({"issuer_name": "two", "leaf_not_after_behavior": "truncate"}),
    )
    .await;
    assert_eq!(renamed["leaf_not_after_behavior"], json!("truncate"));
    data(
        &pki,
        &s,
        Operation::Update,
        "config/issuers",
        json!({"default": "two"}),
    )
    .await;
    let ca = data(&pki, &s, Operation::Read, "cert/ca", json!({})).await;
    assert_eq!(ca["certificate"], renamed["certificate"]);
    let key = data(&pki, &s, Operation::Read, "key/k1", json!({})).await;
    assert_eq!(key["key_type"], json!("ec"));
    assert!(key.get("private_key").is_none());
    let err = call(&pki, &s, Operation::Delete, "key/k1", json!({}))
        .await
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("Failed to Delete Key.  Key in Use by Issuer: "));
    let keys = data(&pki, &s, Operation::List, "keys", json!({})).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    call(&pki, &s, Operation::Delete, "issuer/two", json!({}))
        .await
        .unwrap();
    assert!(call(&pki, &s, Operation::Read, "issuer/two", json!({}))
        .await
        .is_err());
}

#[tokio::test]
async fn no_store_skips_the_cert_store_and_tidy_drops_expired_entries() {
    let pki = Pki::new();
    let s = MemStorage::default();
    root_and_role(&pki, &s).await;
    data(
        &pki,
        &s,
        Operation::Update,
        "roles/ephemeral",
        json!({"allow_any_name": true, "key_type": "ec", "no_store": true}),
    )
    .await;
    let leaf = data(
        &pki,
        &s,
        Operation::Update,
        "issue/ephemeral",
        json!({"common_name": "e.test"}),
    )
    .await;
    let serial = leaf["serial_number"].as_str().unwrap();
    assert!(call(
        &pki,
        &s,
        Operation::Read,
        &format!("cert/{serial}"),
        json!({})
    )
    .await
    .unwrap()
    .is_none());

    let kept = data(
        &pki,
        &s,
        Operation::Update,
        "issue/web",
        json!({"common_name": "k.example.com", "ttl": "1h"}),
    )
    .await;
    let resp = call(
        &pki,
        &s,
        Operation::Update,
        "tidy",
        json!({"tidy_cert_store": true, "safety_buffer": "1s"}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.http_status, Some(202));
    let kept_serial = kept["serial_number"].as_str().unwrap();
    assert!(call(
        &pki,
        &s,
        Operation::Read,
        &format!("cert/{kept_serial}"),
        json!({})
    )
    .await
    .unwrap()
    .is_some());
    // An expired certificate (written with a past notAfter) is removed.
    let key = keys::PrivateKey::generate(keys::KeyType::Ec, 256).unwrap();
    let signer = key.signer().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["old.test".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x11, 0x22]));
    let old = params.self_signed(&signer).unwrap();
    s.put("certs/11-22", old.der().to_vec()).await.unwrap();
    call(
        &pki,
        &s,
        Operation::Update,
        "tidy",
        json!({"tidy_cert_store": true}),
    )
    .await
    .unwrap();
    assert!(s.get("certs/11-22").await.unwrap().is_none());
    let status = data(&pki, &s, Operation::Read, "tidy-status", json!({})).await;
    assert_eq!(status["state"], json!("Finished"));
    assert_eq!(status["cert_store_deleted_count"], json!(1));
}

#[tokio::test]
async fn stored_keys_hold_no_plaintext_pem_and_debug_hides_them() {
    let pki = Pki::new();
    let s = MemStorage::default();
    let root = data(
        &pki,
        &s,
        Operation::Update,
        "root/generate/exported",
        json!({"common_name": "x", "key_type": "ec"}),
    )
    .await;
    let pem = root["private_key"].as_str().unwrap();
    let key = keys::PrivateKey::from_pem(pem).unwrap();
    assert!(!format!("{key:?}").contains("BEGIN"));
    let err = call(&pki, &s, Operation::Update, "root/generate/kms", json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "must specify \"external_key_ref\" on \"kms\"-typed generation requests"
    );
}

struct OffsetDateTimeNow;

impl OffsetDateTimeNow {
    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}
