//! Transit through HTTP with hvac as the client, and interoperability with a real OpenBao:
//! keys backed up in `bao server -dev` restore in coffer and decrypt OpenBao's ciphertexts
//! (and verify its signatures); keys backed up in coffer restore in OpenBao and decrypt
//! coffer's. Needs `python3` with `hvac` and `bao` on PATH (CI installs both).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts `program args...` listening on `port` and waits until `sys/health` answers.
fn start(program: &str, args: &[String], port: u16) -> Server {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let server = Server {
        child,
        addr: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = reqwest::blocking::Client::new();
    loop {
        let up = TcpStream::connect(("127.0.0.1", port)).is_ok()
            && client
                .get(format!("{}/v1/sys/health", server.addr))
                .send()
                .is_ok_and(|r| r.status().as_u16() == 200);
        if up {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "{program} did not come up on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn coffer() -> Server {
    let port = free_port();
    start(
        env!("CARGO_BIN_EXE_coffer"),
        &[
            "server".into(),
            "--dev".into(),
            "--dev-root-token-id".into(),
            "root".into(),
            "--dev-listen-address".into(),
            format!("127.0.0.1:{port}"),
        ],
        port,
    )
}

fn openbao() -> Server {
    // `bao server -dev` also listens on the next port (its cluster address): both must be free.
    let port = loop {
        let port = free_port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            break port;
        }
    };
    start(
        "bao",
        &[
            "server".into(),
            "-dev".into(),
            "-dev-root-token-id=root".into(),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ],
        port,
    )
}

#[test]
fn transit_through_hvac_and_keys_move_between_openbao_and_coffer() {
    let ours = coffer();
    let theirs = openbao();
    let out = Command::new("python3")
        .arg("-c")
        .arg(HVAC_SCRIPT)
        .env("COFFER_ADDR", &ours.addr)
        .env("COFFER_TOKEN", "root")
        .env("BAO_ADDR", &theirs.addr)
        .env("BAO_TOKEN", "root")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "hvac script failed:\n{stdout}\n{stderr}"
    );
}

#[test]
fn imported_keys_interoperate_with_openbao_and_outside_tools() {
    let ours = coffer();
    let theirs = openbao();
    let out = Command::new("python3")
        .arg("-c")
        .arg(BYOK_SCRIPT)
        .env("COFFER_ADDR", &ours.addr)
        .env("BAO_ADDR", &theirs.addr)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "byok script failed:\n{stdout}\n{stderr}"
    );
}

/// The client side: every transit call through hvac's `secrets.transit`.
const HVAC_SCRIPT: &str = r#"import base64, os, sys
import hvac
from hvac.exceptions import InvalidRequest

def b64(b): return base64.b64encode(b).decode()

coffer = hvac.Client(url=os.environ["COFFER_ADDR"], token=os.environ["COFFER_TOKEN"])
bao = hvac.Client(url=os.environ["BAO_ADDR"], token=os.environ["BAO_TOKEN"])
for c in (coffer, bao):
    if "transit/" not in c.sys.list_mounted_secrets_engines()["data"]:
        c.sys.enable_secrets_engine("transit", path="transit")
t = coffer.secrets.transit
pt = b64(b"attack at dawn")
# Names on the OpenBao side are unique per run: the bao server may outlive one test.
run = base64.b32encode(os.urandom(5)).decode().lower()

# Keys, encrypt/decrypt, rotation, rewrap, config.
t.create_key(name="app")
key = t.read_key(name="app")["data"]
assert key["type"] == "aes256-gcm96" and key["latest_version"] == 1, key
ct = t.encrypt_data(name="app", plaintext=pt)["data"]["ciphertext"]
assert ct.startswith("vault:v1:"), ct
assert t.decrypt_data(name="app", ciphertext=ct)["data"]["plaintext"] == pt
t.rotate_key(name="app")
rewrapped = t.rewrap_data(name="app", ciphertext=ct)["data"]["ciphertext"]
assert rewrapped.startswith("vault:v2:"), rewrapped
t.update_key_configuration(name="app", min_decryption_version=2, deletion_allowed=True)
try:
    t.decrypt_data(name="app", ciphertext=ct)
    raise AssertionError("v1 ciphertext decrypted below min_decryption_version")
except InvalidRequest as e:
    assert "too old" in str(e), e
assert t.decrypt_data(name="app", ciphertext=rewrapped)["data"]["plaintext"] == pt
assert "app" in t.list_keys()["data"]["keys"]

# Bad input is a 400 (hvac raises InvalidRequest), never a 500.
raw = bytearray(base64.b64decode(rewrapped[len("vault:v2:"):]))
raw[-1] ^= 1
for bad in ["vault:v2:" + b64(bytes(raw)), "vault:v2:%%%", "vault:v99:AAAA", "garbage"]:
    try:
        t.decrypt_data(name="app", ciphertext=bad)
        raise AssertionError("bad ciphertext accepted: " + bad)
    except InvalidRequest:
        pass

# Batches.
batch = t.encrypt_data(name="app", batch_input=[{"plaintext": pt, "reference": "r1"}, {"plaintext": pt}])["data"]["batch_results"]
assert batch[0]["reference"] == "r1" and batch[1]["ciphertext"].startswith("vault:v2:"), batch
dec = t.decrypt_data(name="app", batch_input=[{"ciphertext": b["ciphertext"]} for b in batch])["data"]["batch_results"]
assert [d["plaintext"] for d in dec] == [pt, pt], dec

# Derived + convergent: same plaintext and context, same ciphertext.
t.create_key(name="conv", derived=True, convergent_encryption=True)
ctx = b64(b"user-42")
a = t.encrypt_data(name="conv", plaintext=pt, context=ctx)["data"]["ciphertext"]
b = t.encrypt_data(name="conv", plaintext=pt, context=ctx)["data"]["ciphertext"]
assert a == b
assert t.decrypt_data(name="conv", ciphertext=a, context=ctx)["data"]["plaintext"] == pt

# Data keys, random, hash, hmac.
dk = t.generate_data_key(name="app", key_type="plaintext")["data"]
assert t.decrypt_data(name="app", ciphertext=dk["ciphertext"])["data"]["plaintext"] == dk["plaintext"]
assert len(base64.b64decode(t.generate_random_bytes(n_bytes=24)["data"]["random_bytes"])) == 24
assert t.hash_data(hash_input=b64(b"abc"), algorithm="sha2-256")["data"]["sum"] == \
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
mac = t.generate_hmac(name="app", hash_input=pt)["data"]["hmac"]
assert t.verify_signed_data(name="app", hash_input=pt, hmac=mac)["data"]["valid"] is True

# Signatures.
for kt in ["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048"]:
    name = "sig-" + kt
    t.create_key(name=name, key_type=kt)
    sig = t.sign_data(name=name, hash_input=pt)["data"]["signature"]
    assert t.verify_signed_data(name=name, hash_input=pt, signature=sig)["data"]["valid"] is True, kt
    assert t.verify_signed_data(name=name, hash_input=b64(b"other"), signature=sig)["data"]["valid"] is False, kt
sig = t.sign_data(name="sig-rsa-2048", hash_input=pt, hash_algorithm="sha2-512", signature_algorithm="pkcs1v15")["data"]["signature"]
assert t.verify_signed_data(name="sig-rsa-2048", hash_input=pt, hash_algorithm="sha2-512",
                            signature_algorithm="pkcs1v15", signature=sig)["data"]["valid"] is True
# hvac knows no public-key export type: the raw adapter asks for it.
pub = coffer.adapter.get("/v1/transit/export/public-key/sig-ecdsa-p256")["data"]["keys"]["1"]
assert pub.startswith("-----BEGIN PUBLIC KEY-----"), pub
t.delete_key(name="app")

# Interop: a key backed up in OpenBao restores in coffer and decrypts OpenBao's ciphertexts,
# and the reverse. Signatures verify across too.
for kt in ["aes256-gcm96", "chacha20-poly1305", "ecdsa-p256", "ed25519"]:
    name = "x-" + kt + "-" + run
    bao.secrets.transit.create_key(name=name, key_type=kt, exportable=True, allow_plaintext_backup=True)
    backup = bao.secrets.transit.backup_key(name=name)["data"]["backup"]
    t.restore_key(backup=backup, name=name)
    if kt in ("aes256-gcm96", "chacha20-poly1305"):
        theirs = bao.secrets.transit.encrypt_data(name=name, plaintext=pt)["data"]["ciphertext"]
        assert t.decrypt_data(name=name, ciphertext=theirs)["data"]["plaintext"] == pt, kt
        ours = t.encrypt_data(name=name, plaintext=pt)["data"]["ciphertext"]
        assert bao.secrets.transit.decrypt_data(name=name, ciphertext=ours)["data"]["plaintext"] == pt, kt
    else:
        theirs = bao.secrets.transit.sign_data(name=name, hash_input=pt)["data"]["signature"]
        assert t.verify_signed_data(name=name, hash_input=pt, signature=theirs)["data"]["valid"] is True, kt
        ours = t.sign_data(name=name, hash_input=pt)["data"]["signature"]
        assert bao.secrets.transit.verify_signed_data(name=name, hash_input=pt, signature=ours)["data"]["valid"] is True, kt

# The reverse: created in coffer, backed up in coffer, restored in OpenBao.
t.create_key(name="from-coffer-" + run, exportable=True, allow_plaintext_backup=True)
t.rotate_key(name="from-coffer-" + run)
ours = t.encrypt_data(name="from-coffer-" + run, plaintext=pt)["data"]["ciphertext"]
old = t.encrypt_data(name="from-coffer-" + run, plaintext=pt, key_version=1)["data"]["ciphertext"]
backup = t.backup_key(name="from-coffer-" + run)["data"]["backup"]
bao.secrets.transit.restore_key(backup=backup, name="from-coffer-" + run)
for c in (ours, old):
    assert bao.secrets.transit.decrypt_data(name="from-coffer-" + run, ciphertext=c)["data"]["plaintext"] == pt
theirs = bao.secrets.transit.encrypt_data(name="from-coffer-" + run, plaintext=pt)["data"]["ciphertext"]
assert t.decrypt_data(name="from-coffer-" + run, ciphertext=theirs)["data"]["plaintext"] == pt
t.create_key(name="rsa-from-coffer-" + run, key_type="rsa-2048", exportable=True, allow_plaintext_backup=True)
ours = t.encrypt_data(name="rsa-from-coffer-" + run, plaintext=pt)["data"]["ciphertext"]
bao.secrets.transit.restore_key(backup=t.backup_key(name="rsa-from-coffer-" + run)["data"]["backup"], name="rsa-from-coffer-" + run)
assert bao.secrets.transit.decrypt_data(name="rsa-from-coffer-" + run, ciphertext=ours)["data"]["plaintext"] == pt
print("ok")
"#;

/// BYOK: keys made by Python's `cryptography` are wrapped for each server's `wrapping_key` as
/// OpenBao documents it (RSA-OAEP of an ephemeral AES-256 key, then AES-KWP of the key) and
/// imported into both coffer and OpenBao; then each server's output is checked by the other
/// and by `cryptography`, and outside output by coffer. `byok-export` moves keys from each
/// server to the other; `derive-key` agrees on a key by ECDH with OpenBao and with
/// `cryptography`. Trim and soft-delete answer as OpenBao's do.
const BYOK_SCRIPT: &str = r#"import base64, hmac as pyhmac, hashlib, json, os
import hvac
from hvac.exceptions import InvalidRequest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

def b64(b): return base64.b64encode(b).decode()
def unb64(s): return base64.b64decode(s)

coffer = hvac.Client(url=os.environ["COFFER_ADDR"], token="root")
bao = hvac.Client(url=os.environ["BAO_ADDR"], token="root")
for c in (coffer, bao):
    c.sys.enable_secrets_engine("transit", path="transit")

def wrapping_key(c):
    pem = c.adapter.get("/v1/transit/wrapping_key")["data"]["public_key"]
    return serialization.load_pem_public_key(pem.encode())

def wrap(c, target, h=hashes.SHA256()):
    eph = os.urandom(32)
    head = wrapping_key(c).encrypt(eph, padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None))
    assert len(head) == 512
    return b64(head + aes_key_wrap_with_padding(eph, target))

def imp(c, name, target, **fields):
    r = c.adapter.post("/v1/transit/keys/%s/import" % name, json=dict(ciphertext=wrap(c, target), **fields))
    assert getattr(r, "status_code", 204) == 204, r

def pkcs8(k): return k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
def spki_pem(k): return k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

# The wrapping key: RSA-4096, created once and kept.
wk = wrapping_key(coffer)
assert isinstance(wk, rsa.RSAPublicKey) and wk.key_size == 4096
assert wrapping_key(coffer).public_numbers() == wk.public_numbers()
assert coffer.secrets.transit.list_keys()["data"]["keys"] == ["import/"]
pt = b"attack at dawn"

# AES-256: the same key imported in both; ciphertexts cross both ways and from outside.
aes = AESGCM.generate_key(bit_length=256)
for c in (coffer, bao):
    imp(c, "aes", aes)
key = coffer.secrets.transit.read_key(name="aes")["data"]
assert key["imported_key"] is True and key["imported_key_allow_rotation"] is False, key
theirs = bao.secrets.transit.encrypt_data(name="aes", plaintext=b64(pt))["data"]["ciphertext"]
assert unb64(coffer.secrets.transit.decrypt_data(name="aes", ciphertext=theirs)["data"]["plaintext"]) == pt
ours = coffer.secrets.transit.encrypt_data(name="aes", plaintext=b64(pt))["data"]["ciphertext"]
assert unb64(bao.secrets.transit.decrypt_data(name="aes", ciphertext=ours)["data"]["plaintext"]) == pt
nonce = os.urandom(12)
outside = "vault:v1:" + b64(nonce + AESGCM(aes).encrypt(nonce, b"made outside", None))
assert unb64(coffer.secrets.transit.decrypt_data(name="aes", ciphertext=outside)["data"]["plaintext"]) == b"made outside"
raw = unb64(ours[len("vault:v1:"):])
assert AESGCM(aes).decrypt(raw[:12], raw[12:], None) == pt
try:
    coffer.secrets.transit.rotate_key(name="aes")
    raise AssertionError("an imported key rotated without allow_rotation")
except InvalidRequest as e:
    assert "does not allow rotation" in str(e), e
# A second version, wrapped with SHA-1 OAEP.
aes2 = AESGCM.generate_key(bit_length=256)
coffer.adapter.post("/v1/transit/keys/aes/import_version", json={"ciphertext": wrap(coffer, aes2, hashes.SHA1()), "hash_function": "SHA1"})
v2 = coffer.secrets.transit.encrypt_data(name="aes", plaintext=b64(pt))["data"]["ciphertext"]
raw = unb64(v2[len("vault:v2:"):])
assert v2.startswith("vault:v2:") and AESGCM(aes2).decrypt(raw[:12], raw[12:], None) == pt

# Ed25519: signatures are deterministic, so both servers and cryptography agree exactly.
ed = ed25519.Ed25519PrivateKey.generate()
for c in (coffer, bao):
    imp(c, "ed", pkcs8(ed), type="ed25519")
sig = coffer.secrets.transit.sign_data(name="ed", hash_input=b64(pt))["data"]["signature"]
assert sig == bao.secrets.transit.sign_data(name="ed", hash_input=b64(pt))["data"]["signature"]
ed.public_key().verify(unb64(sig[len("vault:v1:"):]), pt)
outside = "vault:v1:" + b64(ed.sign(b"signed outside"))
assert coffer.secrets.transit.verify_signed_data(name="ed", hash_input=b64(b"signed outside"), signature=outside)["data"]["valid"] is True

# A public key only: verifies, cannot sign, until import_version brings the private part.
coffer.adapter.post("/v1/transit/keys/edpub/import", json={"type": "ed25519", "public_key": spki_pem(ed)})
assert coffer.secrets.transit.verify_signed_data(name="edpub", hash_input=b64(b"signed outside"), signature=outside)["data"]["valid"] is True
try:
    coffer.secrets.transit.sign_data(name="edpub", hash_input=b64(pt))
    raise AssertionError("a public-only key signed")
except InvalidRequest as e:
    assert "does not contain a private part" in str(e), e
coffer.adapter.post("/v1/transit/keys/edpub/import_version", json={"ciphertext": wrap(coffer, pkcs8(ed)), "version": 1})
assert coffer.secrets.transit.sign_data(name="edpub", hash_input=b64(pt))["data"]["signature"] == sig

# ECDSA P-256 both ways with cryptography; OpenBao verifies coffer's signatures.
ek = ec.generate_private_key(ec.SECP256R1())
for c in (coffer, bao):
    imp(c, "ec", pkcs8(ek), type="ecdsa-p256")
sig = coffer.secrets.transit.sign_data(name="ec", hash_input=b64(pt))["data"]["signature"]
ek.public_key().verify(unb64(sig[len("vault:v1:"):]), pt, ec.ECDSA(hashes.SHA256()))
assert bao.secrets.transit.verify_signed_data(name="ec", hash_input=b64(pt), signature=sig)["data"]["valid"] is True
outside = "vault:v1:" + b64(ek.sign(b"ec outside", ec.ECDSA(hashes.SHA256())))
assert coffer.secrets.transit.verify_signed_data(name="ec", hash_input=b64(b"ec outside"), signature=outside)["data"]["valid"] is True
assert coffer.secrets.transit.read_key(name="ec")["data"]["keys"]["1"]["public_key"] == \
    bao.secrets.transit.read_key(name="ec")["data"]["keys"]["1"]["public_key"]

# RSA-2048: OpenBao's and cryptography's OAEP ciphertexts decrypt in coffer.
rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
for c in (coffer, bao):
    imp(c, "rsa", pkcs8(rk), type="rsa-2048")
theirs = bao.secrets.transit.encrypt_data(name="rsa", plaintext=b64(pt))["data"]["ciphertext"]
assert unb64(coffer.secrets.transit.decrypt_data(name="rsa", ciphertext=theirs)["data"]["plaintext"]) == pt
oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
outside = "vault:v1:" + b64(rk.public_key().encrypt(b"rsa outside", oaep))
assert unb64(coffer.secrets.transit.decrypt_data(name="rsa", ciphertext=outside)["data"]["plaintext"]) == b"rsa outside"
ours = coffer.secrets.transit.encrypt_data(name="rsa", plaintext=b64(pt))["data"]["ciphertext"]
assert rk.decrypt(unb64(ours[len("vault:v1:"):]), oaep) == pt

# HMAC keys give the same MAC everywhere.
mk = os.urandom(48)
for c in (coffer, bao):
    imp(c, "mac", mk, type="hmac")
mac = coffer.secrets.transit.generate_hmac(name="mac", hash_input=b64(pt))["data"]["hmac"]
assert mac == bao.secrets.transit.generate_hmac(name="mac", hash_input=b64(pt))["data"]["hmac"]
assert mac == "vault:v1:" + b64(pyhmac.new(mk, pt, hashlib.sha256).digest())

# Refusals are 400 with OpenBao's texts (OpenBao itself answers 500 to most).
for name, body, text in [
    ("aes", {"ciphertext": wrap(coffer, aes)}, "cannot be used with an existing key"),
    ("new", {"ciphertext": "AAAA"}, "provided ciphertext is too short"),
    ("new", {"ciphertext": wrap(coffer, aes), "type": "ed25519"}, "error parsing asymmetric key"),
]:
    try:
        coffer.adapter.post("/v1/transit/keys/%s/import" % name, json=body)
        raise AssertionError("accepted: %s" % body)
    except InvalidRequest as e:
        assert text in str(e), e

# byok-export both ways: each server wraps its exportable keys for the other's wrapping key
# (imported as an RSA public key), the other imports them and uses them on the first's output.
for src, dst, tag in [(coffer, bao, "c2b"), (bao, coffer, "b2c")]:
    peer = dst.adapter.get("/v1/transit/wrapping_key")["data"]["public_key"]
    src.adapter.post("/v1/transit/keys/peer-%s/import" % tag, json={"type": "rsa-4096", "public_key": peer})
    for kt in ["aes256-gcm96", "ed25519", "ecdsa-p384", "rsa-2048"]:
        name = "%s-%s" % (tag, kt)
        src.secrets.transit.create_key(name=name, key_type=kt, exportable=True)
        wrapped = src.adapter.get("/v1/transit/byok-export/peer-%s/%s/latest" % (tag, name))["data"]["keys"]["1"]
        dst.adapter.post("/v1/transit/keys/%s/import" % name, json={"ciphertext": wrapped, "type": kt})
        if kt in ("aes256-gcm96", "rsa-2048"):
            ct = src.secrets.transit.encrypt_data(name=name, plaintext=b64(pt))["data"]["ciphertext"]
            assert unb64(dst.secrets.transit.decrypt_data(name=name, ciphertext=ct)["data"]["plaintext"]) == pt, name
        else:
            sig = src.secrets.transit.sign_data(name=name, hash_input=b64(pt))["data"]["signature"]
            assert dst.secrets.transit.verify_signed_data(name=name, hash_input=b64(pt), signature=sig)["data"]["valid"] is True, name

# derive-key: ECDH between a coffer key and an OpenBao key gives both the same AES key, and
# an outside party derives it too (HKDF-SHA256 of the shared secret, no salt, no info).
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
public = {}
for side, c in (("coffer", coffer), ("bao", bao)):
    c.secrets.transit.create_key(name="agree", key_type="ecdsa-p256")
    public[side] = c.secrets.transit.read_key(name="agree")["data"]["keys"]["1"]["public_key"]
coffer.adapter.post("/v1/transit/derive-key/shared", json={"base_key_name": "agree", "peer_public_key": public["bao"]})
bao.adapter.post("/v1/transit/derive-key/shared", json={"base_key_name": "agree", "peer_public_key": public["coffer"]})
ct = coffer.secrets.transit.encrypt_data(name="shared", plaintext=b64(pt))["data"]["ciphertext"]
assert unb64(bao.secrets.transit.decrypt_data(name="shared", ciphertext=ct)["data"]["plaintext"]) == pt
mine = ec.generate_private_key(ec.SECP256R1())
coffer.adapter.post("/v1/transit/derive-key/outside", json={"base_key_name": "agree", "peer_public_key": spki_pem(mine)})
shared = mine.exchange(ec.ECDH(), serialization.load_pem_public_key(public["coffer"].encode()))
agreed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=None).derive(shared)
raw = unb64(coffer.secrets.transit.encrypt_data(name="outside", plaintext=b64(pt))["data"]["ciphertext"][len("vault:v1:"):])
assert AESGCM(agreed).decrypt(raw[:12], raw[12:], None) == pt

# Trim and soft-delete answer as OpenBao's.
def strip(d):
    d = dict(d["data"])
    d["keys"] = sorted(d["keys"])
    return d
for c in (coffer, bao):
    c.secrets.transit.create_key(name="t")
    for _ in range(3):
        c.secrets.transit.rotate_key(name="t")
    c.secrets.transit.update_key_configuration(name="t", min_decryption_version=3, min_encryption_version=4)
answers = [strip(c.secrets.transit.trim_key(name="t", min_version=3)) for c in (coffer, bao)]
assert answers[0] == answers[1], answers
assert answers[0]["min_available_version"] == 3 and answers[0]["keys"] == ["3", "4"], answers
for c in (coffer, bao):
    try:
        c.secrets.transit.trim_key(name="t", min_version=4)
        raise AssertionError("trimmed past min_decryption_version")
    except InvalidRequest as e:
        assert "cannot be greater than minimum decryption version" in str(e), e
answers = [c.adapter.delete("/v1/transit/keys/t/soft-delete")["data"]["soft_deleted"] for c in (coffer, bao)]
assert answers == [True, True], answers
for c in (coffer, bao):
    try:
        c.secrets.transit.encrypt_data(name="t", plaintext=b64(pt))
        raise AssertionError("a soft-deleted key encrypted")
    except InvalidRequest as e:
        assert "soft-deleted" in str(e), e
    c.adapter.post("/v1/transit/keys/t/soft-delete-restore")
    c.secrets.transit.encrypt_data(name="t", plaintext=b64(pt))
print("ok")
"#;
