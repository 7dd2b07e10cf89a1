//! The pki engine end to end: the real binary in dev mode, hvac as the client, and every
//! certificate and CRL checked by independent X.509 code (Python's `cryptography` and
//! `openssl verify`/`openssl crl`).
//!
//! Needs python3 with hvac and cryptography, and the openssl CLI.

use std::process::Command;

use crate::server::TestServer;

/// Runs `script` with python3, the server's address and token in the environment; panics
/// with its output if it fails.
fn python(server: &TestServer, script: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("COFFER_ADDR", server.addr())
        .env("COFFER_TOKEN", &server.token)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Shared helpers of the Python side: an hvac client and openssl in a temp dir.
const PRELUDE: &str = r#"
import os, subprocess, tempfile
import hvac
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

c = hvac.Client(url=os.environ["COFFER_ADDR"], token=os.environ["COFFER_TOKEN"])
tmp = tempfile.mkdtemp()

def write(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    return path

def openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, text=True)
"#;

#[test]
fn pki_chain_revocation_and_intermediates_verify_with_openssl_and_cryptography() {
    let server = TestServer::dev();
    let script = format!(
        "{PRELUDE}{}",
        r#"
c.sys.enable_secrets_engine("pki", path="pki")
root = c.secrets.pki.generate_root("internal", "example.com",
    extra_params={"key_type": "ec", "ttl": "720h", "issuer_name": "root-1"}, mount_point="pki")["data"]
assert root["issuer_name"] == "root-1" and "private_key" not in root
ca = x509.load_pem_x509_certificate(root["certificate"].encode())
ca.verify_directly_issued_by(ca)
assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

c.secrets.pki.create_or_update_role("web", {"allowed_domains": "example.com",
    "allow_subdomains": True, "key_type": "ec", "key_bits": 256, "max_ttl": "72h"}, mount_point="pki")
role = c.secrets.pki.read_role("web", mount_point="pki")["data"]
assert role["allowed_domains"] == ["example.com"] and role["max_ttl"] == 259200, role

leaf = c.secrets.pki.generate_certificate("web", "a.example.com",
    extra_params={"ttl": "1h", "alt_names": "b.example.com"}, mount_point="pki")["data"]
cert = x509.load_pem_x509_certificate(leaf["certificate"].encode())
cert.verify_directly_issued_by(ca)
key = serialization.load_pem_private_key(leaf["private_key"].encode(), None)
assert key.public_key().public_numbers() == cert.public_key().public_numbers()
assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
assert sans.get_values_for_type(x509.DNSName) == ["a.example.com", "b.example.com"]
eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku and x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
assert (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() == 3630
assert format(cert.serial_number, "040x") == leaf["serial_number"].replace(":", "")
ca_pem, leaf_pem = write("ca.pem", root["certificate"]), write("leaf.pem", leaf["certificate"])
r = openssl("verify", "-CAfile", ca_pem, leaf_pem)
assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr

# Refused names never produce a certificate.
try:
    c.secrets.pki.generate_certificate("web", "a.other.com", mount_point="pki")
    raise SystemExit("a.other.com was issued")
except hvac.exceptions.InvalidRequest as e:
    assert "common name a.other.com not allowed by this role" in str(e)

# Listing and revocation: the CRL verifies and lists the serial; openssl refuses the leaf.
assert leaf["serial_number"] in c.secrets.pki.list_certificates(mount_point="pki")["data"]["keys"]
rev = c.secrets.pki.revoke_certificate(leaf["serial_number"], mount_point="pki")["data"]
assert rev["state"] == "revoked" and rev["revocation_time"] > 0
crl_pem = c.secrets.pki.read_certificate("crl", mount_point="pki")["data"]["certificate"]
crl = x509.load_pem_x509_crl(crl_pem.encode())
assert crl.is_signature_valid(ca.public_key())
assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
crl_path = write("crl.pem", crl_pem)
r = openssl("crl", "-in", crl_path, "-noout", "-CAfile", ca_pem)
assert r.returncode == 0 and "verify OK" in (r.stdout + r.stderr), r.stdout + r.stderr
r = openssl("verify", "-crl_check", "-CAfile", ca_pem, "-CRLfile", crl_path, leaf_pem)
assert r.returncode != 0 and "revoked" in (r.stdout + r.stderr), r.stdout + r.stderr

# The CA and CRLs are served bare and without a token, as OpenBao serves them.
import urllib.request
def fetch(path):
    with urllib.request.urlopen(os.environ["COFFER_ADDR"] + "/v1/pki/" + path) as r:
        return r.headers["Content-Type"], r.read()
ctype, body = fetch("ca/pem")
assert ctype == "application/pem-certificate-chain" and x509.load_pem_x509_certificate(body) == ca
ctype, body = fetch("ca")
assert ctype == "application/pkix-cert" and x509.load_der_x509_certificate(body) == ca
ctype, body = fetch("crl")
der_crl = x509.load_der_x509_crl(body)
assert ctype == "application/pkix-crl" and der_crl.is_signature_valid(ca.public_key())
assert der_crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
ctype, body = fetch("crl/delta/pem")
assert x509.load_pem_x509_crl(body).is_signature_valid(ca.public_key())

# An intermediate in a second mount, signed by the root, issues a chain openssl accepts.
c.sys.enable_secrets_engine("pki", path="pki_int")
gen = c.secrets.pki.generate_intermediate("exported", "Int CA",
    extra_params={"key_type": "ed25519"}, mount_point="pki_int")["data"]
assert gen["private_key_type"] == "ed25519"
csr = x509.load_pem_x509_csr(gen["csr"].encode())
assert csr.is_signature_valid
signed = c.secrets.pki.sign_intermediate(gen["csr"], "Int CA",
    extra_params={"ttl": "100h"}, mount_point="pki")["data"]
inter = x509.load_pem_x509_certificate(signed["certificate"].encode())
inter.verify_directly_issued_by(ca)
res = c.secrets.pki.set_signed_intermediate(signed["certificate"] + "\n" + root["certificate"],
    mount_point="pki_int")["data"]
assert res["mapping"][res["imported_issuers"][0]] == gen["key_id"], res
c.secrets.pki.create_or_update_role("svc", {"allow_any_name": True, "key_type": "ec"}, mount_point="pki_int")
leaf2 = c.secrets.pki.generate_certificate("svc", "svc.internal",
    extra_params={"ttl": "1h"}, mount_point="pki_int")["data"]
assert leaf2["ca_chain"] == [signed["certificate"], root["certificate"]]
int_pem, leaf2_pem = write("int.pem", signed["certificate"]), write("leaf2.pem", leaf2["certificate"])
r = openssl("verify", "-CAfile", ca_pem, "-untrusted", int_pem, leaf2_pem)
assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr

# sign/<role> with a CSR made by cryptography keeps that key.
k = ec.generate_private_key(ec.SECP256R1())
req = (x509.CertificateSigningRequestBuilder()
    .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "csr.internal")]))
    .sign(k, hashes.SHA256()))
req_pem = req.public_bytes(serialization.Encoding.PEM).decode()
signed_leaf = c.secrets.pki.sign_certificate("svc", req_pem, "csr.internal",
    extra_params={"ttl": "1h"}, mount_point="pki_int")["data"]
got = x509.load_pem_x509_certificate(signed_leaf["certificate"].encode())
got.verify_directly_issued_by(inter)
assert got.public_key().public_numbers() == k.public_key().public_numbers()
assert "private_key" not in signed_leaf
print("ok")
"#
    );
    assert_eq!(python(&server, &script).trim(), "ok");
}

#[test]
fn pki_imported_bundle_issues_and_tidy_keeps_live_certificates() {
    let server = TestServer::dev();
    let script = format!(
        "{PRELUDE}{}",
        r#"
import datetime
from cryptography.x509.oid import NameOID
k = ec.generate_private_key(ec.SECP384R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Imported CA")])
now = datetime.datetime.now(datetime.timezone.utc)
ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
    .public_key(k.public_key()).serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False), critical=True)
    .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False)
    .sign(k, hashes.SHA384()))
ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
key_pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption()).decode()
c.sys.enable_secrets_engine("pki", path="pki")
imported = c.adapter.post("/v1/pki/config/ca", json={"pem_bundle": ca_pem + key_pem})["data"]
assert len(imported["imported_issuers"]) == 1 and len(imported["imported_keys"]) == 1, imported
again = c.adapter.post("/v1/pki/issuers/import/bundle", json={"pem_bundle": ca_pem + key_pem})["data"]
assert again["imported_issuers"] is None and again["existing_issuers"] == imported["imported_issuers"]
issuers = c.adapter.list("/v1/pki/issuers")["data"]
iid = imported["imported_issuers"][0]
assert issuers["key_info"][iid]["is_default"] is True
c.adapter.post("/v1/pki/issuer/" + iid, json={"issuer_name": "imported"})
assert c.read("pki/issuer/imported")["data"]["revocation_signature_algorithm"] == "ECDSAWithSHA384"

c.secrets.pki.create_or_update_role("any", {"allow_any_name": True, "key_type": "ed25519"}, mount_point="pki")
leaf = c.secrets.pki.generate_certificate("any", "x.test", extra_params={"ttl": "2h"}, mount_point="pki")["data"]
cert = x509.load_pem_x509_certificate(leaf["certificate"].encode())
cert.verify_directly_issued_by(ca)
assert leaf["private_key_type"] == "ed25519"
r = openssl("verify", "-CAfile", write("ca.pem", ca_pem), write("leaf.pem", leaf["certificate"]))
assert r.returncode == 0, r.stdout + r.stderr

c.secrets.pki.tidy(extra_params={"tidy_cert_store": True, "tidy_revoked_certs": True,
    "safety_buffer": "1s"}, mount_point="pki")
status = c.read("pki/tidy-status")["data"]
assert status["state"] == "Finished" and status["cert_store_deleted_count"] == 0, status
assert c.secrets.pki.read_certificate(leaf["serial_number"], mount_point="pki")["data"]["certificate"]
print("ok")
"#
    );
    assert_eq!(python(&server, &script).trim(), "ok");
}

#[test]
fn pki_delta_crls_carry_the_indicator_and_only_new_revocations() {
    let server = TestServer::dev();
    let script = format!(
        "{PRELUDE}{}",
        r#"
import urllib.request
def fetch(path):
    with urllib.request.urlopen(os.environ["COFFER_ADDR"] + "/v1/pki/" + path) as r:
        return r.read()
def numbers(crl):
    n = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    try:
        ext = crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        return n, (ext.value.crl_number, ext.critical)
    except x509.ExtensionNotFound:
        return n, None

c.sys.enable_secrets_engine("pki", path="pki")
root = c.secrets.pki.generate_root("internal", "example.com",
    extra_params={"key_type": "ec", "ttl": "720h"}, mount_point="pki")["data"]
ca = x509.load_pem_x509_certificate(root["certificate"].encode())
cfg = c.read("pki/config/crl")["data"]
assert cfg == {"expiry": "72h", "disable": False, "ocsp_disable": False, "ocsp_expiry": "12h",
    "auto_rebuild": False, "auto_rebuild_grace_period": "12h", "enable_delta": False,
    "delta_rebuild_interval": "15m", "allow_expired_cert_revocation": False}, cfg
try:
    c.write("pki/config/crl", enable_delta=True)
    raise SystemExit("delta without auto_rebuild was accepted")
except hvac.exceptions.InvalidRequest as e:
    assert "Delta CRLs cannot be enabled when auto rebuilding is disabled" in str(e), e
c.write("pki/config/crl", auto_rebuild=True, enable_delta=True)
assert c.read("pki/config/crl")["data"]["enable_delta"] is True

c.secrets.pki.create_or_update_role("web", {"allow_any_name": True, "key_type": "ec"}, mount_point="pki")
leaves = [c.secrets.pki.generate_certificate("web", n, extra_params={"ttl": "1h"},
    mount_point="pki")["data"] for n in ("a.test", "b.test")]
serials = [x509.load_pem_x509_certificate(l["certificate"].encode()).serial_number for l in leaves]
c.secrets.pki.revoke_certificate(leaves[0]["serial_number"], mount_point="pki")
c.read("pki/crl/rotate-delta")

full = x509.load_der_x509_crl(fetch("crl"))
delta = x509.load_der_x509_crl(fetch("crl/delta"))
assert full.is_signature_valid(ca.public_key()) and delta.is_signature_valid(ca.public_key())
full_n, full_delta = numbers(full)
delta_n, (base, critical) = numbers(delta)
assert full_delta is None and base == full_n and critical and delta_n > full_n, (full_n, delta_n, base)
assert len(full) == 0, "the complete CRL waits for its next rebuild"
assert [r.serial_number for r in delta] == [serials[0]]
assert x509.load_pem_x509_crl(fetch("crl/delta/pem")) == delta

# openssl reads the same extension and accepts the signature.
delta_path = write("delta.pem", fetch("crl/delta/pem").decode())
r = openssl("crl", "-in", delta_path, "-noout", "-text", "-CAfile", write("ca.pem", root["certificate"]))
out = r.stdout + r.stderr
assert r.returncode == 0 and "verify OK" in out and "Delta CRL Indicator: critical" in out, out

# A complete CRL takes the revocation in; the delta on top of it is empty again.
c.read("pki/crl/rotate")
full2 = x509.load_der_x509_crl(fetch("crl"))
delta2 = x509.load_der_x509_crl(fetch("crl/delta"))
assert [r.serial_number for r in full2] == [serials[0]]
assert numbers(delta2)[1] == (numbers(full2)[0], True) and len(delta2) == 0
print("ok")
"#
    );
    assert_eq!(python(&server, &script).trim(), "ok");
}

#[test]
fn pki_p521_ca_issues_and_signs_certificates_openssl_accepts() {
    let server = TestServer::dev();
    let script = format!(
        "{PRELUDE}{}",
        r#"
c.sys.enable_secrets_engine("pki", path="pki")
root = c.secrets.pki.generate_root("internal", "P-521 Root",
    extra_params={"key_type": "ec", "key_bits": 521, "ttl": "720h"}, mount_point="pki")["data"]
ca = x509.load_pem_x509_certificate(root["certificate"].encode())
assert ca.public_key().curve.name == "secp521r1"
assert isinstance(ca.signature_hash_algorithm, hashes.SHA512)
ca.verify_directly_issued_by(ca)
assert c.read("pki/issuer/default")["data"]["revocation_signature_algorithm"] == "ECDSAWithSHA512"
ca_pem = write("ca.pem", root["certificate"])

c.secrets.pki.create_or_update_role("web", {"allow_any_name": True, "key_type": "ec",
    "key_bits": 521}, mount_point="pki")
leaf = c.secrets.pki.generate_certificate("web", "p521.test", extra_params={"ttl": "1h"},
    mount_point="pki")["data"]
cert = x509.load_pem_x509_certificate(leaf["certificate"].encode())
cert.verify_directly_issued_by(ca)
key = serialization.load_pem_private_key(leaf["private_key"].encode(), None)
assert key.curve.name == "secp521r1"
assert key.public_key().public_numbers() == cert.public_key().public_numbers()
r = openssl("verify", "-CAfile", ca_pem, write("leaf.pem", leaf["certificate"]))
assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr

# A P-521 CSR signed with SHA-512 is accepted and its key certified.
k = ec.generate_private_key(ec.SECP521R1())
req = (x509.CertificateSigningRequestBuilder()
    .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "csr.test")]))
    .sign(k, hashes.SHA512()))
signed = c.secrets.pki.sign_certificate("web", req.public_bytes(serialization.Encoding.PEM).decode(),
    "csr.test", extra_params={"ttl": "1h"}, mount_point="pki")["data"]
got = x509.load_pem_x509_certificate(signed["certificate"].encode())
got.verify_directly_issued_by(ca)
assert got.public_key().public_numbers() == k.public_key().public_numbers()

# Revocation reaches the P-521 CA's CRL.
c.secrets.pki.revoke_certificate(signed["serial_number"], mount_point="pki")
crl = x509.load_pem_x509_crl(c.secrets.pki.read_certificate("crl", mount_point="pki")["data"]["certificate"].encode())
assert crl.is_signature_valid(ca.public_key())
assert crl.get_revoked_certificate_by_serial_number(got.serial_number) is not None

# P-224 is refused with a clear 400, for roles and for CSRs.
try:
    c.secrets.pki.create_or_update_role("small", {"key_type": "ec", "key_bits": 224}, mount_point="pki")
    raise SystemExit("a P-224 role was accepted")
except hvac.exceptions.InvalidRequest as e:
    assert "P-224 keys are not supported" in str(e), e
k224 = ec.generate_private_key(ec.SECP224R1())
req224 = (x509.CertificateSigningRequestBuilder()
    .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "small.test")]))
    .sign(k224, hashes.SHA256()))
try:
    c.secrets.pki.sign_certificate("web", req224.public_bytes(serialization.Encoding.PEM).decode(),
        "small.test", mount_point="pki")
    raise SystemExit("a P-224 CSR was signed")
except hvac.exceptions.InvalidRequest as e:
    assert "P-224 keys are not supported" in str(e), e
print("ok")
"#
    );
    assert_eq!(python(&server, &script).trim(), "ok");
}
