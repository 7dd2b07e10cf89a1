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

/// A CRL as the mount serves it (DER), checked against the issuer: signature, and its CRL
/// Number and Delta CRL Indicator read back with x509-cert.
struct ServedCrl {
    number: u64,
    /// The base CRL Number of a delta CRL, and whether the extension is critical.
    delta_of: Option<(u64, bool)>,
    serials: Vec<String>,
}

async fn served_crl(pki: &Pki, s: &MemStorage, path: &str, issuer_der: &[u8]) -> ServedCrl {
    use base64::Engine as _;
    use x509_cert::der::Decode as _;
    let raw = data(pki, s, Operation::Read, path, json!({})).await;
    assert_eq!(raw["http_content_type"], json!("application/pkix-crl"));
    let der = base64::engine::general_purpose::STANDARD
        .decode(raw["http_raw_body"].as_str().unwrap())
        .unwrap();
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
    let (_, issuer) = X509Certificate::from_der(issuer_der).unwrap();
    assert_eq!(crl.issuer().as_raw(), issuer.subject().as_raw());
    assert!(
        keys::signature_verifies(
            issuer.public_key(),
            &crl.signature_algorithm,
            &crl.signature_value,
            crl.tbs_cert_list.as_ref(),
        ),
        "{path} is signed by its issuer"
    );
    let parsed = x509_cert::crl::CertificateList::from_der(&der).unwrap();
    let mut number = None;
    let mut delta_of = None;
    for ext in parsed.tbs_cert_list.crl_extensions.iter().flatten() {
        let value = ext.extn_value.as_bytes();
        match ext.extn_id.to_string().as_str() {
            "2.5.29.20" => {
                let n = x509_cert::ext::pkix::crl::CrlNumber::from_der(value).unwrap();
                number = Some(be_u64(n.0.as_bytes()));
            }
            "2.5.29.27" => {
                let n = x509_cert::ext::pkix::crl::BaseCrlNumber::from_der(value).unwrap();
                delta_of = Some((be_u64(n.0.as_bytes()), ext.critical));
            }
            _ => {}
        }
    }
    let mut serials: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| colon_hex(r.raw_serial()))
        .collect();
    serials.sort();
    ServedCrl {
        number: number.expect("every CRL has a CRL Number"),
        delta_of,
        serials,
    }
}

fn be_u64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b))
}

async fn issue_serial(pki: &Pki, s: &MemStorage, cn: &str) -> String {
    let leaf = data(
        pki,
        s,
        Operation::Update,
        "issue/web",
        json!({"common_name": cn, "ttl": "1h"}),
    )
    .await;
    leaf["serial_number"].as_str().unwrap().to_owned()
}

async fn revoke_serial(pki: &Pki, s: &MemStorage, serial: &str) -> Response {
    call(
        pki,
        s,
        Operation::Update,
        "revoke",
        json!({"serial_number": serial}),
    )
    .await
    .unwrap()
    .unwrap()
}

#[tokio::test]
async fn config_crl_has_openbaos_defaults_and_refuses_what_openbao_refuses() {
    let pki = Pki::new();
    let s = MemStorage::default();
    let read = data(&pki, &s, Operation::Read, "config/crl", json!({})).await;
    assert_eq!(
        Value::Object(read),
        json!({"expiry": "72h", "disable": false, "ocsp_disable": false, "ocsp_expiry": "12h",
               "auto_rebuild": false, "auto_rebuild_grace_period": "12h", "enable_delta": false,
               "delta_rebuild_interval": "15m", "allow_expired_cert_revocation": false})
    );
    for (body, message) in [
        (
            json!({"enable_delta": true}),
            "Delta CRLs cannot be enabled when auto rebuilding is disabled as the complete CRL \
             is always regenerated!",
        ),
        (
            json!({"expiry": "bogus"}),
            "given expiry could not be decoded: time: invalid duration \"bogus\"",
        ),
        (
            json!({"auto_rebuild": true, "auto_rebuild_grace_period": "80h"}),
            "CRL auto-rebuilding grace period (80h) must be strictly shorter than CRL expiry \
             (72h) value when auto-rebuilding of CRLs is enabled",
        ),
        (
            json!({"auto_rebuild": true, "enable_delta": true, "delta_rebuild_interval": "73h"}),
            "CRL delta rebuild window (73h) must be strictly shorter than CRL expiry (72h) value \
             when delta CRLs are enabled",
        ),
        (
            json!({"ocsp_expiry": "-1s"}),
            "ocsp_expiry must be greater than or equal to 0 got: -1s",
        ),
    ] {
        let err = call(&pki, &s, Operation::Update, "config/crl", body.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)), "{body}");
        assert_eq!(err.to_string(), message, "{body}");
    }
    // Nothing refused was stored; numbers are kept as the strings OpenBao keeps.
    let written = data(
        &pki,
        &s,
        Operation::Update,
        "config/crl",
        json!({"expiry": 7200, "auto_rebuild": "true", "enable_delta": true,
               "delta_rebuild_interval": "5m", "auto_rebuild_grace_period": "30m"}),
    )
    .await;
    let read = data(&pki, &s, Operation::Read, "config/crl", json!({})).await;
    assert_eq!(written, read);
    assert_eq!(read["expiry"], json!("7200"));
    assert_eq!(read["enable_delta"], json!(true));
    assert_eq!(read["delta_rebuild_interval"], json!("5m"));
}

#[tokio::test]
async fn delta_crl_lists_only_revocations_since_the_complete_crl() {
    let pki = Pki::new();
    let s = MemStorage::default();
    let root = root_and_role(&pki, &s).await;
    let root_der = der_of(&root["certificate"]);
    // Root generation signed complete CRL 1 and its (empty) delta 2.
    let complete = served_crl(&pki, &s, "crl", &root_der).await;
    let delta = served_crl(&pki, &s, "crl/delta", &root_der).await;
    assert_eq!((complete.number, complete.delta_of), (1, None));
    assert_eq!((delta.number, delta.delta_of), (2, Some((1, true))));

    // Turning delta CRLs on signs a fresh pair, as OpenBao does on that change.
    data(
        &pki,
        &s,
        Operation::Update,
        "config/crl",
        json!({"auto_rebuild": true, "enable_delta": true}),
    )
    .await;
    let complete = served_crl(&pki, &s, "crl", &root_der).await;
    assert_eq!(complete.number, 3);
    let (a, b, c) = (
        issue_serial(&pki, &s, "a.example.com").await,
        issue_serial(&pki, &s, "b.example.com").await,
        issue_serial(&pki, &s, "c.example.com").await,
    );

    // A revocation waits for the next delta CRL; the complete CRL does not change.
    let resp = revoke_serial(&pki, &s, &a).await;
    assert_eq!(resp.data.unwrap()["state"], json!("revoked"));
    assert_eq!(
        served_crl(&pki, &s, "crl", &root_der).await.serials,
        Vec::<String>::new()
    );
    let rotated = data(&pki, &s, Operation::Read, "crl/rotate-delta", json!({})).await;
    assert_eq!(rotated["success"], json!(true));
    let delta = served_crl(&pki, &s, "crl/delta", &root_der).await;
    assert_eq!(delta.delta_of, Some((3, true)));
    assert_eq!(
        delta.number, 5,
        "numbers continue the complete CRL's sequence"
    );
    assert_eq!(delta.serials, vec![a.clone()]);
    assert_eq!(served_crl(&pki, &s, "crl", &root_der).await.number, 3);

    // The scheduled rebuild signs a new delta CRL once the WAL changed, and only then.
    revoke_serial(&pki, &s, &b).await;
    pki.periodic(&s).await.unwrap();
    let delta = served_crl(&pki, &s, "crl/delta", &root_der).await;
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!((delta.number, delta.delta_of), (6, Some((3, true))));
    assert_eq!(delta.serials, both);
    // The same CRL in PEM and through the issuer's path.
    let pem_resp = data(&pki, &s, Operation::Read, "crl/delta/pem", json!({})).await;
    let text = pem_resp["http_raw_body"].as_str().unwrap();
    use base64::Engine as _;
    let text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap(),
    )
    .unwrap();
    assert!(text.starts_with("-----BEGIN X509 CRL-----"));
    let by_issuer = served_crl(&pki, &s, "issuer/root-1/crl/delta/der", &root_der).await;
    assert_eq!(by_issuer.number, 6);

    // A complete CRL takes them all in and empties the delta.
    data(&pki, &s, Operation::Read, "crl/rotate", json!({})).await;
    let complete = served_crl(&pki, &s, "crl", &root_der).await;
    assert_eq!(
        (complete.number, complete.serials.clone()),
        (7, both.clone())
    );
    let delta = served_crl(&pki, &s, "crl/delta", &root_der).await;
    assert_eq!((delta.number, delta.delta_of), (8, Some((7, true))));
    assert!(delta.serials.is_empty());
    assert!(s.keys().iter().all(|k| !k.starts_with("delta-wal/")));

    // Revoking an already revoked serial changes nothing; a new one goes to the next delta.
    revoke_serial(&pki, &s, &a).await;
    revoke_serial(&pki, &s, &c).await;
    data(&pki, &s, Operation::Read, "crl/rotate-delta", json!({})).await;
    let delta = served_crl(&pki, &s, "crl/delta", &root_der).await;
    assert_eq!((delta.delta_of, delta.serials), (Some((7, true)), vec![c]));
}

#[tokio::test]
async fn without_auto_rebuild_each_revocation_signs_a_complete_crl_and_an_empty_delta() {
    let pki = Pki::new();
    let s = MemStorage::default();
    let root = root_and_role(&pki, &s).await;
    let root_der = der_of(&root["certificate"]);
    let serial = issue_serial(&pki, &s, "a.example.com").await;
    revoke_serial(&pki, &s, &serial).await;
    let complete = served_crl(&pki, &s, "crl", &root_der).await;
    assert_eq!((complete.number, complete.serials), (3, vec![serial]));
    let delta = served_crl(&pki, &s, "crl/delta", &root_der).await;
    assert_eq!((delta.delta_of, delta.serials.len()), (Some((3, true)), 0));
    let resp = call(&pki, &s, Operation::Read, "crl/rotate-delta", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        resp.warnings,
        vec!["requested rebuild of delta CRL when delta CRL is not enabled; this is a no-op"]
    );
    assert_eq!(served_crl(&pki, &s, "crl/delta", &root_der).await.number, 4);
}

#[tokio::test]
async fn disabling_crls_signs_one_empty_crl_and_keeps_it() {
    let pki = Pki::new();
    let s = MemStorage::default();
    let root = root_and_role(&pki, &s).await;
    let root_der = der_of(&root["certificate"]);
    let first = issue_serial(&pki, &s, "a.example.com").await;
    revoke_serial(&pki, &s, &first).await;
    assert_eq!(
        served_crl(&pki, &s, "crl", &root_der).await.serials.len(),
        1
    );
    data(
        &pki,
        &s,
        Operation::Update,
        "config/crl",
        json!({"disable": true}),
    )
    .await;
    let empty = served_crl(&pki, &s, "crl", &root_der).await;
    assert!(empty.serials.is_empty());
    let second = issue_serial(&pki, &s, "b.example.com").await;
    revoke_serial(&pki, &s, &second).await;
    data(&pki, &s, Operation::Read, "crl/rotate", json!({})).await;
    assert_eq!(
        served_crl(&pki, &s, "crl", &root_der).await.number,
        empty.number
    );
    // Enabled again: both revocations are back on a fresh CRL.
    data(
        &pki,
        &s,
        Operation::Update,
        "config/crl",
        json!({"disable": false}),
    )
    .await;
    let mut both = vec![first, second];
    both.sort();
    assert_eq!(served_crl(&pki, &s, "crl", &root_der).await.serials, both);
}

#[tokio::test]
async fn auto_rebuild_resigns_a_crl_near_its_next_update_and_not_before() {
    let pki = Pki::new();
    let s = MemStorage::default();
    let root = root_and_role(&pki, &s).await;
    let root_der = der_of(&root["certificate"]);
    data(
        &pki,
        &s,
        Operation::Update,
        "config/crl",
        json!({"auto_rebuild": true, "expiry": "48h"}),
    )
    .await;
    let serial = issue_serial(&pki, &s, "a.example.com").await;
    revoke_serial(&pki, &s, &serial).await;
    pki.periodic(&s).await.unwrap();
    let before = served_crl(&pki, &s, "crl", &root_der).await;
    assert!(before.serials.is_empty(), "48h from expiry, no rebuild yet");
    // The stored CRL as it would look 37 hours later: inside the 12h grace period.
    let id = root["issuer_id"].as_str().unwrap();
    let mut entry: store::CrlEntry = store::get_json(&s, &format!("crl/{id}"))
        .await
        .unwrap()
        .unwrap();
    entry.next_update = OffsetDateTimeNow::now() + 11 * 3600;
    store::put_json(&s, &format!("crl/{id}"), &entry)
        .await
        .unwrap();
    pki.periodic(&s).await.unwrap();
    let after = served_crl(&pki, &s, "crl", &root_der).await;
    assert_eq!(after.serials, vec![serial]);
    assert!(after.number > before.number);
}

#[tokio::test]
async fn expired_certificates_are_not_revoked_unless_allowed() {
    let pki = Pki::new();
    let s = MemStorage::default();
    root_and_role(&pki, &s).await;
    let signer = pki.signers.get(&s, "default").await.unwrap();
    let key = keys::PrivateKey::generate(keys::KeyType::Ec, 256).unwrap();
    let subject = key.signer().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["old.example.com".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x33, 0x44]));
    let old = params.signed_by(&subject, &signer.issuer).unwrap();
    s.put("certs/33-44", old.der().to_vec()).await.unwrap();
    let resp = revoke_serial(&pki, &s, "33:44").await;
    assert!(resp.data.is_none());
    assert_eq!(
        resp.warnings,
        vec![
            "certificate with serial 33:44 already expired; refusing to add to CRL. Enable \
             'AllowExpiredCertRevocation' to allow revoking expired certificates."
        ]
    );
    assert!(s.get("revoked/33-44").await.unwrap().is_none());
    data(
        &pki,
        &s,
        Operation::Update,
        "config/crl",
        json!({"allow_expired_cert_revocation": true}),
    )
    .await;
    let resp = revoke_serial(&pki, &s, "33:44").await;
    assert_eq!(resp.data.unwrap()["state"], json!("revoked"));
}

#[tokio::test]
async fn p521_cas_issue_sign_and_revoke_and_p224_is_refused() {
    let pki = Pki::new();
    let s = MemStorage::default();
    let root = data(
        &pki,
        &s,
        Operation::Update,
        "root/generate/exported",
        json!({"common_name": "p521.test", "key_type": "ec", "key_bits": 521, "ttl": "100h"}),
    )
    .await;
    let root_der = der_of(&root["certificate"]);
    let (_, root_cert) = X509Certificate::from_der(&root_der).unwrap();
    assert_eq!(
        root_cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.4",
        "ecdsa-with-SHA512, as Go signs with P-521"
    );
    let verifies = |child: &[u8]| {
        let (_, child) = X509Certificate::from_der(child).unwrap();
        keys::signature_verifies(
            root_cert.public_key(),
            &child.signature_algorithm,
            &child.signature_value,
            child.tbs_certificate.as_ref(),
        )
    };
    assert!(verifies(&root_der));
    let exported = keys::PrivateKey::from_pem(root["private_key"].as_str().unwrap()).unwrap();
    assert_eq!((exported.kind(), exported.bits()), (keys::KeyType::Ec, 521));
    let issuer = data(&pki, &s, Operation::Read, "issuer/default", json!({})).await;
    assert_eq!(
        issuer["revocation_signature_algorithm"],
        json!("ECDSAWithSHA512")
    );

    for bits in [521, 256] {
        data(
            &pki,
            &s,
            Operation::Update,
            "roles/web",
            json!({"allow_any_name": true, "key_type": "ec", "key_bits": bits}),
        )
        .await;
        let leaf = data(
            &pki,
            &s,
            Operation::Update,
            "issue/web",
            json!({"common_name": format!("l{bits}.test"), "ttl": "1h"}),
        )
        .await;
        let leaf_der = der_of(&leaf["certificate"]);
        assert!(verifies(&leaf_der), "P-{bits} leaf");
        let key = keys::PrivateKey::from_pem(leaf["private_key"].as_str().unwrap()).unwrap();
        assert_eq!(key.bits(), bits);
        let (_, cert) = X509Certificate::from_der(&leaf_der).unwrap();
        let (ty, size) = issue::spki_type(cert.public_key());
        assert_eq!((ty, size), (Some(keys::KeyType::Ec), bits));
        assert_eq!(
            key.signer().unwrap().spki(),
            cert.public_key().raw.to_vec(),
            "the returned key is the certified one"
        );
    }

    // A P-521 CSR: its signature (ecdsa-with-SHA512) is checked, its key certified.
    let csr_key = keys::PrivateKey::generate(keys::KeyType::Ec, 521).unwrap();
    let csr_signer = csr_key.signer().unwrap();
    let csr = rcgen::CertificateParams::new(vec!["csr.test".to_owned()])
        .unwrap()
        .serialize_request(&csr_signer)
        .unwrap();
    let signed = data(
        &pki,
        &s,
        Operation::Update,
        "sign/web",
        json!({"csr": csr.pem().unwrap(), "common_name": "csr.test", "ttl": "1h"}),
    )
    .await;
    let signed_der = der_of(&signed["certificate"]);
    assert!(verifies(&signed_der));
    let (_, cert) = X509Certificate::from_der(&signed_der).unwrap();
    assert_eq!(cert.public_key().raw.to_vec(), csr_signer.spki());

    // Revocation finds the P-521 issuer, and the CRL is signed with its key.
    let serial = signed["serial_number"].as_str().unwrap().to_owned();
    revoke_serial(&pki, &s, &serial).await;
    let crl = served_crl(&pki, &s, "crl", &root_der).await;
    assert_eq!(crl.serials, vec![serial]);
    let id = root["issuer_id"].as_str().unwrap();
    let revoked: store::RevokedEntry =
        store::get_json(&s, &format!("revoked/{}", cert_key(&crl.serials[0])))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(revoked.issuer_id, id);

    // P-224: a clear 400 for roles and CAs.
    for (path, body) in [
        ("roles/small", json!({"key_type": "ec", "key_bits": 224})),
        (
            "root/generate/internal",
            json!({"common_name": "x", "key_type": "ec", "key_bits": 224}),
        ),
    ] {
        let err = call(&pki, &s, Operation::Update, path, body)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)));
        assert!(
            err.to_string().contains("P-224 keys are not supported"),
            "{err}"
        );
    }
}

fn cert_key(serial: &str) -> String {
    serial.replace(':', "-")
}

#[tokio::test]
async fn role_changes_reach_the_next_issue() {
    let pki = Pki::new();
    let s = MemStorage::default();
    root_and_role(&pki, &s).await;
    issue_serial(&pki, &s, "a.example.com").await;
    data(
        &pki,
        &s,
        Operation::Update,
        "roles/web",
        json!({"allowed_domains": "other.test", "allow_subdomains": true, "key_type": "ec"}),
    )
    .await;
    let err = call(
        &pki,
        &s,
        Operation::Update,
        "issue/web",
        json!({"common_name": "a.example.com"}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("not allowed by this role"),
        "{err}"
    );
    // Another node rewrote the role: invalidation drops the cached copy.
    let role = roles::Role::from_fields(&coffer_sdk::framework::Fields::new(
        json!({"allow_any_name": true, "key_type": "ec"})
            .as_object()
            .unwrap(),
    ))
    .unwrap();
    roles::put_role(&s, "web", &role).await.unwrap();
    pki.invalidate("role/web").await;
    issue_serial(&pki, &s, "anything.test").await;
    call(&pki, &s, Operation::Delete, "roles/web", json!({}))
        .await
        .unwrap();
    let err = call(
        &pki,
        &s,
        Operation::Update,
        "issue/web",
        json!({"common_name": "a.test"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "unknown role: web");
}

#[tokio::test]
async fn crls_of_rsa_ed25519_and_p384_issuers_verify() {
    for (key_type, bits) in [("rsa", 2048), ("ed25519", 0), ("ec", 384)] {
        let pki = Pki::new();
        let s = MemStorage::default();
        let root = data(
            &pki,
            &s,
            Operation::Update,
            "root/generate/internal",
            json!({"common_name": "root.test", "key_type": key_type, "key_bits": bits}),
        )
        .await;
        let root_der = der_of(&root["certificate"]);
        data(
            &pki,
            &s,
            Operation::Update,
            "roles/web",
            json!({"allow_any_name": true, "key_type": "ec"}),
        )
        .await;
        let serial = issue_serial(&pki, &s, "leaf.test").await;
        revoke_serial(&pki, &s, &serial).await;
        let complete = served_crl(&pki, &s, "crl", &root_der).await;
        assert_eq!(complete.serials, vec![serial], "{key_type}");
        let delta = served_crl(&pki, &s, "crl/delta", &root_der).await;
        assert_eq!(delta.delta_of, Some((complete.number, true)), "{key_type}");
    }
}

#[test]
fn serials_print_as_openbao_prints_them() {
    assert_eq!(colon_hex(&[0x00, 0xab, 0x7f, 0x10]), "00:ab:7f:10");
    assert_eq!(colon_hex(&[]), "");
}

#[tokio::test]
async fn a_p521_intermediate_from_a_p256_root_issues_leaves() {
    let root_pki = Pki::new();
    let root_s = MemStorage::default();
    let root = root_and_role(&root_pki, &root_s).await;
    let int_pki = Pki::new();
    let int_s = MemStorage::default();
    let csr = data(
        &int_pki,
        &int_s,
        Operation::Update,
        "intermediate/generate/internal",
        json!({"common_name": "Int CA", "key_type": "ec", "key_bits": 521}),
    )
    .await;
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
    let bundle = format!(
        "{}\n{}",
        signed["certificate"].as_str().unwrap(),
        root["certificate"].as_str().unwrap()
    );
    data(
        &int_pki,
        &int_s,
        Operation::Update,
        "intermediate/set-signed",
        json!({"certificate": bundle}),
    )
    .await;
    data(
        &int_pki,
        &int_s,
        Operation::Update,
        "roles/svc",
        json!({"allow_any_name": true, "key_type": "ec"}),
    )
    .await;
    let leaf = data(
        &int_pki,
        &int_s,
        Operation::Update,
        "issue/svc",
        json!({"common_name": "svc.test", "ttl": "1h"}),
    )
    .await;
    let leaf_der = der_of(&leaf["certificate"]);
    let (_, leaf_cert) = X509Certificate::from_der(&leaf_der).unwrap();
    let (_, int_cert) = X509Certificate::from_der(&int_der).unwrap();
    assert_eq!(leaf_cert.issuer().as_raw(), int_cert.subject().as_raw());
    assert!(keys::signature_verifies(
        int_cert.public_key(),
        &leaf_cert.signature_algorithm,
        &leaf_cert.signature_value,
        leaf_cert.tbs_certificate.as_ref(),
    ));
    assert_eq!(
        leaf["ca_chain"],
        json!([signed["certificate"], root["certificate"]])
    );
}
