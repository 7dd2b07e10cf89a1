//! Leases end to end against the real binary, with pki's `generate_lease` as the leased secret:
//! lookup, renew refused, revoke (the certificate lands in the CRL, checked by `openssl crl`),
//! revoke-prefix, the leases of a revoked token, expiry, and leases outliving a restart.
//!
//! Needs the openssl CLI.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::server::{Resp, TestServer};

/// A pki mount with a root CA and a `web` role whose certificates are leased.
fn leasing_pki(server: &TestServer) {
    let r = server.post("sys/mounts/pki", json!({"type": "pki"}));
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.post("sys/mounts/pki/tune", json!({"max_lease_ttl": "8760h"}));
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.post(
        "pki/root/generate/internal",
        json!({"common_name": "example.com", "key_type": "ec", "ttl": "8760h"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let r = server.post(
        "pki/roles/web",
        json!({"allowed_domains": "example.com", "allow_subdomains": true, "key_type": "ec",
               "generate_lease": true, "max_ttl": "72h"}),
    );
    assert!(r.status == 200 || r.status == 204, "{r:?}");
}

/// Issues a certificate as `token`; returns (lease id, serial).
fn issue(server: &TestServer, token: &str, cn: &str, ttl: &str) -> (String, String) {
    let r = server.call_as(
        token,
        "POST",
        "pki/issue/web",
        Some(json!({"common_name": cn, "ttl": ttl})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let lease_id = r.body["lease_id"].as_str().expect("a lease id").to_owned();
    assert!(lease_id.starts_with("pki/issue/web/"), "{lease_id}");
    assert_eq!(r.body["renewable"], false);
    let serial = r.body["data"]["serial_number"].as_str().unwrap().to_owned();
    (lease_id, serial)
}

fn lookup(server: &TestServer, lease_id: &str) -> Resp {
    server.put("sys/leases/lookup", json!({ "lease_id": lease_id }))
}

fn is_gone(r: &Resp) -> bool {
    r.status == 400 && r.body == json!({"errors": ["invalid lease"]})
}

/// Whether the serial's certificate is revoked, by `pki/cert` and by `openssl crl` on the PEM
/// CRL.
fn revoked_in_crl(server: &TestServer, serial: &str) -> bool {
    let cert = server.get(&format!("pki/cert/{serial}"));
    assert_eq!(cert.status, 200, "{cert:?}");
    let by_api = cert.body["data"]["revocation_time"].as_i64().unwrap_or(0) != 0;
    let crl = server.get("pki/crl/pem");
    assert_eq!(crl.status, 200, "{crl:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crl.pem");
    std::fs::write(&path, &crl.text).unwrap();
    let out = Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(&path)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_uppercase();
    let hex = serial.replace(':', "").to_uppercase();
    let by_crl = text.contains(&format!("SERIAL NUMBER: {hex}"));
    assert_eq!(by_api, by_crl, "pki/cert and the CRL disagree on {serial}");
    by_crl
}

/// Polls `check` every 100 ms until it holds; the revoker works in the background. The 30 s
/// bound is far beyond the second or two it needs.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("never happened: {what}");
}

#[test]
fn a_certificates_lease_is_looked_up_and_revoking_it_revokes_the_certificate() {
    let server = TestServer::dev();
    leasing_pki(&server);
    let (lease_id, serial) = issue(&server, &server.token, "a.example.com", "1h");

    let r = lookup(&server, &lease_id);
    assert_eq!(r.status, 200, "{r:?}");
    let data = &r.body["data"];
    assert_eq!(data["id"], lease_id.as_str());
    assert_eq!(data["path"], "pki/issue/web");
    assert_eq!(data["renewable"], false);
    assert_eq!(data["last_renewal"], Value::Null);
    assert!(data["issue_time"].is_string() && data["expire_time"].is_string());
    let ttl = data["ttl"].as_u64().unwrap();
    assert!((3500..=3600).contains(&ttl), "{ttl}");
    // As OpenBao: lease answers are not copied to the top level.
    assert!(r.body.get("id").is_none(), "{}", r.text);

    let listed = server.list("sys/leases/lookup/pki/issue/web/");
    assert_eq!(listed.status, 200, "{listed:?}");
    let random = lease_id.rsplit('/').next().unwrap();
    assert_eq!(listed.body["data"]["keys"], json!([random]));

    let renew = server.put("sys/leases/renew", json!({ "lease_id": lease_id }));
    assert_eq!(renew.status, 400, "{renew:?}");
    assert_eq!(renew.body, json!({"errors": ["lease is not renewable"]}));

    assert!(!revoked_in_crl(&server, &serial));
    let r = server.put("sys/leases/revoke", json!({ "lease_id": lease_id }));
    assert_eq!(r.status, 204, "{r:?}");
    assert!(revoked_in_crl(&server, &serial));
    assert!(is_gone(&lookup(&server, &lease_id)));
    let r = server.put("sys/leases/lookup", json!({}));
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"errors": ["lease_id must be specified"]}));
}

#[test]
fn leases_outlive_a_restart_and_expire_or_are_revoked_by_prefix_after_it() {
    let mut server = TestServer::unsealed();
    leasing_pki(&server);
    let (long, long_serial) = issue(&server, &server.token, "long.example.com", "1h");
    let (short, _) = issue(&server, &server.token, "short.example.com", "3s");
    server.restart();
    server.unseal();

    let r = lookup(&server, &long);
    assert_eq!(
        r.status, 200,
        "the lease did not survive the restart: {r:?}"
    );
    // The short lease expires (during or after the restart) and the revoker takes it up.
    eventually("the 3s lease is revoked at expiry", || {
        is_gone(&lookup(&server, &short))
    });
    assert_eq!(lookup(&server, &long).status, 200);

    // A prefix on a path-segment boundary: `pki/issue/we` covers nothing.
    let r = server.put("sys/leases/revoke-prefix/pki/issue/we", json!({}));
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(lookup(&server, &long).status, 200);
    let r = server.put("sys/leases/revoke-prefix/pki/issue/web", json!({}));
    assert_eq!(r.status, 204, "{r:?}");
    assert!(is_gone(&lookup(&server, &long)));
    assert!(revoked_in_crl(&server, &long_serial));
    let empty = server.list("sys/leases/lookup/pki/issue/web/");
    assert_eq!(empty.status, 404, "{empty:?}");
}

#[test]
fn revoking_a_token_revokes_the_certificates_it_leased() {
    let server = TestServer::dev();
    leasing_pki(&server);
    let created = server.post("auth/token/create", json!({"policies": ["root"]}));
    assert_eq!(created.status, 200, "{created:?}");
    let token = created.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (theirs, their_serial) = issue(&server, &token, "theirs.example.com", "1h");
    let (mine, _) = issue(&server, &server.token, "mine.example.com", "1h");

    let r = server.post("auth/token/revoke", json!({ "token": token }));
    assert_eq!(r.status, 204, "{r:?}");
    eventually("the revoked token's lease is revoked", || {
        is_gone(&lookup(&server, &theirs))
    });
    assert!(revoked_in_crl(&server, &their_serial));
    assert_eq!(lookup(&server, &mine).status, 200);
}
