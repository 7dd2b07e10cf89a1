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
    let port = free_port();
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
