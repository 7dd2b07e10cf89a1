//! The totp engine end to end: the real binary in dev mode, hvac as the client, and every code
//! checked against Python's `pyotp` (an independent RFC 6238 implementation).
//!
//! Starts its own dev server so that it needs nothing from the shared harness. Needs python3
//! with hvac and pyotp.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A dev server on a free loopback port, killed on drop.
struct DevServer {
    child: Child,
    addr: String,
}

impl DevServer {
    fn start() -> DevServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args([
                "server",
                "--dev",
                "--dev-root-token-id",
                "root",
                "--dev-listen-address",
                &listen,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("coffer starts");
        let server = DevServer {
            child,
            addr: format!("http://{listen}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&listen).is_err() {
            assert!(Instant::now() < deadline, "coffer did not listen in time");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SCRIPT: &str = r#"
import base64, hashlib, os, time
import hvac, pyotp

c = hvac.Client(url=os.environ["COFFER_ADDR"], token=os.environ["COFFER_TOKEN"])
c.sys.enable_secrets_engine("totp", path="totp")

def refused(fn, text):
    try:
        fn()
    except hvac.exceptions.InvalidRequest as e:
        assert text in str(e), (text, str(e))
        return
    raise SystemExit("expected a 400 with: " + text)

# Generated: the URL parses with pyotp and its codes are coffer's codes.
gen = c.write("totp/keys/gen", generate=True, issuer="Coffer Co", account_name="ann@example.com",
              algorithm="SHA256", digits=8, period=30)["data"]
png = base64.b64decode(gen["barcode"])
assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:8]
assert gen["url"].startswith("otpauth://totp/Coffer%20Co:ann@example.com?algorithm=SHA256&digits=8&issuer=Coffer%20Co&period=30&secret="), gen["url"]
totp = pyotp.parse_uri(gen["url"])
assert totp.digits == 8 and totp.issuer == "Coffer Co" and totp.name == "ann@example.com"
got = c.read("totp/code/gen")["data"]
assert got["code"] == totp.at(got["generated"]), (got, totp.at(got["generated"]))
assert got["period"] == "30s"
key = c.read("totp/keys/gen")["data"]
assert key == {"issuer": "Coffer Co", "account_name": "ann@example.com", "period": 30,
               "algorithm": "SHA256", "digits": 8}, key

# Imported from a secret: pyotp's code validates once, and the replay is refused.
secret = pyotp.random_base32()
assert c.write("totp/keys/imp", key=secret, skew=1) is None or True
t = pyotp.TOTP(secret)
now = int(time.time())
code = t.at(now)
assert c.write("totp/code/imp", code=code)["data"]["valid"] is True
refused(lambda: c.write("totp/code/imp", code=code), "code already used; wait until the next time period")

# Skew 1 accepts the previous period's code; skew 0 refuses it (unless the period turned).
prev = t.at(now - 30)
if prev != code:
    assert c.write("totp/code/imp", code=prev)["data"]["valid"] is True
c.write("totp/keys/strict", key=secret, skew=0)
prev2 = t.at(int(time.time()) - 30)
v = c.write("totp/code/strict", code=prev2)["data"]["valid"]
assert v is False or int(time.time()) // 30 != now // 30, v
wrong = "%06d" % ((int(t.at(int(time.time()))) + 1) % 1000000)
assert c.write("totp/code/strict", code=wrong)["data"]["valid"] is False

# Imported from a URL with SHA512 and 8 digits.
uri = pyotp.TOTP(secret, digits=8, digest=hashlib.sha512, interval=60, issuer="Z", name="bob").provisioning_uri()
c.write("totp/keys/url", url=uri)
k = c.read("totp/keys/url")["data"]
assert (k["algorithm"], k["digits"], k["period"], k["issuer"], k["account_name"]) == ("SHA512", 8, 60, "Z", "bob"), k
got = c.read("totp/code/url")["data"]
assert got["code"] == pyotp.TOTP(secret, digits=8, digest=hashlib.sha512, interval=60).at(got["generated"])

# OpenBao's validation errors.
refused(lambda: c.write("totp/keys/e", generate=True, issuer="x", account_name="y", digits=7), "the digits value can only be 6 or 8")
refused(lambda: c.write("totp/keys/e", generate=True, issuer="x", account_name="y", skew=2), "the skew value must be 0 or 1")
refused(lambda: c.write("totp/keys/e", generate=True, issuer="x"), "the account_name value is required for generated keys")
refused(lambda: c.write("totp/keys/e", key="!!!!"), "invalid key value: illegal base32 data at input byte 0")
refused(lambda: c.write("totp/code/imp", code="123"), "invalid number of digits for the code")
refused(lambda: c.read("totp/code/nope"), "unknown key: nope")

# hvac.Client.list sends ?list=True, which coffer-http does not read as a list yet: LIST.
assert sorted(c.adapter.list("/v1/totp/keys")["data"]["keys"]) == ["gen", "imp", "strict", "url"]
c.delete("totp/keys/gen")
assert c.read("totp/keys/gen") is None
print("totp ok")
"#;

#[test]
fn totp_codes_match_pyotp_and_validate_once() {
    let server = DevServer::start();
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .env("COFFER_ADDR", &server.addr)
        .env("COFFER_TOKEN", "root")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("totp ok"),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
