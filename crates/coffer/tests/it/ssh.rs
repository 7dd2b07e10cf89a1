//! The ssh engine end to end: the real binary in dev mode, hvac as the client, certificates
//! listed by `ssh-keygen -L`, and — when Debian's openssh-server is installed and the test runs
//! as root, as in CI — a real `sshd` on a loopback port that trusts coffer's CA and lets the
//! signed certificate log in, and refuses the same key without it.
//!
//! The CA test starts its own dev server so that it needs nothing from the shared harness, and
//! needs python3 with hvac, and openssh-client; openssh-server for the login half. The OTP
//! tests speak reqwest through the shared `TestServer`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::TestServer;

/// A dev server on a free loopback port, killed on drop.
struct DevServer {
    child: Child,
    addr: String,
}

impl DevServer {
    fn start() -> DevServer {
        let listen = format!("127.0.0.1:{}", free_port());
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs `script` with python3, the server's address and token in the environment; panics
/// with its output if it fails.
fn python(server: &DevServer, script: &str, extra_env: &[(&str, String)]) -> String {
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(script)
        .env("COFFER_ADDR", &server.addr)
        .env("COFFER_TOKEN", "root");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Mounts ssh, generates a CA, checks the unauthenticated public key, makes a role and signs a
/// fresh user key; writes `ca.pub`, `user`, `user.pub` and `user-cert.pub` to `$WORK` and
/// checks the certificate with `ssh-keygen -L`.
const SIGN: &str = r#"
import json, os, subprocess, urllib.request, urllib.error
import hvac

work = os.environ["WORK"]
c = hvac.Client(url=os.environ["COFFER_ADDR"], token=os.environ["COFFER_TOKEN"])
c.sys.enable_secrets_engine("ssh", path="ssh")

# No CA yet: OpenBao's 400.
try:
    c.read("ssh/config/ca")
    raise SystemExit("reading config/ca without a CA succeeded")
except hvac.exceptions.InvalidRequest as e:
    assert "no default issuer currently configured" in str(e), e

ca = c.write("ssh/config/ca", key_type="ssh-ed25519")["data"]
assert ca["public_key"].startswith("ssh-ed25519 ") and ca["public_key"].endswith("\n"), ca
assert c.read("ssh/config/ca")["data"]["public_key"] == ca["public_key"]

# public_key needs no token (sshd hosts fetch it at provisioning).
req = urllib.request.Request(os.environ["COFFER_ADDR"] + "/v1/ssh/public_key")
with urllib.request.urlopen(req) as resp:
    body = resp.read().decode()
    assert resp.status == 200
try:
    served = json.loads(body)["data"]["http_raw_body"]
except (ValueError, KeyError, TypeError):
    served = body
assert served == ca["public_key"], (body, ca["public_key"])
with open(os.path.join(work, "ca.pub"), "w") as f:
    f.write(ca["public_key"])

c.write("ssh/roles/login", key_type="ca", allow_user_certificates=True,
        allowed_users="coffer-test,other", default_user="coffer-test", ttl="10m", max_ttl="1h",
        default_extensions={"permit-pty": ""}, key_id_format="{{role_name}}-{{public_key_hash}}")
role = c.read("ssh/roles/login")["data"]
assert role["ttl"] == 600 and role["max_ttl"] == 3600 and role["key_type"] == "ca", role
# hvac.Client.list sends ?list=True, which coffer-http does not read as a list yet: LIST.
assert c.adapter.list("/v1/ssh/roles")["data"]["keys"] == ["login"]

user = os.path.join(work, "user")
subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", user], check=True)
pub = open(user + ".pub").read()

# A principal outside the role is refused with OpenBao's text.
try:
    c.write("ssh/sign/login", public_key=pub, valid_principals="root")
    raise SystemExit("signing for root succeeded")
except hvac.exceptions.InvalidRequest as e:
    assert "root is not a valid value for valid_principals" in str(e), e

signed = c.write("ssh/sign/login", public_key=pub)["data"]
assert int(signed["serial_number"], 16) > 0
with open(user + "-cert.pub", "w") as f:
    f.write(signed["signed_key"])
listing = subprocess.run(["ssh-keygen", "-L", "-f", user + "-cert.pub"],
                         capture_output=True, text=True, check=True).stdout
assert "ssh-ed25519-cert-v01@openssh.com user certificate" in listing, listing
assert "coffer-test" in listing and "permit-pty" in listing, listing
assert "Key ID: \"login-" in listing, listing
assert "Serial: %d" % int(signed["serial_number"], 16) in listing, listing
fp = subprocess.run(["ssh-keygen", "-l", "-f", os.path.join(work, "ca.pub")],
                    capture_output=True, text=True, check=True).stdout.split()[1]
assert "Signing CA: ED25519 " + fp in listing, (listing, fp)
print("signed")
"#;

#[test]
fn ssh_ca_signs_a_user_key_that_ssh_keygen_lists_and_sshd_accepts() {
    let server = DevServer::start();
    let work = tempfile::tempdir().expect("a temp dir");
    let work_path = work.path().to_string_lossy().into_owned();
    let out = python(&server, SIGN, &[("WORK", work_path.clone())]);
    assert!(out.contains("signed"), "{out}");

    let sshd = std::path::Path::new("/usr/sbin/sshd");
    // sshd must run as root to switch to the user it logs in.
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !sshd.exists() || !is_root {
        eprintln!("skipping the sshd login: needs /usr/sbin/sshd (openssh-server) and root");
        return;
    }
    login_with_real_sshd(work.path());
}

/// Starts sshd on a free loopback port trusting only coffer's CA for user `root` with
/// principal `coffer-test`, logs in with the certificate, then without it.
fn login_with_real_sshd(dir: &std::path::Path) {
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let host_key = p("host");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f", &host_key])
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    std::fs::write(p("principals"), "coffer-test\n").unwrap();
    std::fs::create_dir_all("/run/sshd").expect("sshd's privilege separation directory");
    let port = free_port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {pid}\n\
         TrustedUserCAKeys {ca}\nAuthorizedPrincipalsFile {principals}\nAuthorizedKeysFile none\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
         PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n",
        pid = p("sshd.pid"),
        ca = p("ca.pub"),
        principals = p("principals"),
    );
    std::fs::write(p("sshd_config"), config).unwrap();
    let mut sshd = KillOnDrop(
        Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", &p("sshd_config")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not listen in time");
        assert!(sshd.0.try_wait().unwrap().is_none(), "sshd exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ssh = |cert: Option<&str>| {
        let mut cmd = Command::new("ssh");
        cmd.args([
            "-i",
            &p("user"),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "ConnectTimeout=10", "-p", &port.to_string()]);
        if let Some(cert) = cert {
            cmd.args(["-o", &format!("CertificateFile={cert}")]);
        }
        cmd.args(["root@127.0.0.1", "true"])
            .stdin(Stdio::null())
            .output()
            .expect("ssh runs")
    };
    let with = ssh(Some(&p("user-cert.pub")));
    assert!(
        with.status.success(),
        "login with coffer's certificate failed: {}",
        String::from_utf8_lossy(&with.stderr)
    );
    // Without the certificate the same key is unknown to sshd (no authorized_keys at all).
    std::fs::remove_file(p("user-cert.pub")).unwrap();
    let without = ssh(None);
    assert!(
        !without.status.success(),
        "login without a certificate succeeded"
    );
    let _ = sshd.0.kill();
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A dev server with `ssh/` mounted and an OTP role `web` for `ubuntu` on 10.0.0.0/24 but not
/// its upper half.
fn otp_server() -> TestServer {
    let server = TestServer::dev();
    let r = server.post("sys/mounts/ssh", json!({"type": "ssh"}));
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.post(
        "ssh/roles/web",
        json!({"key_type": "otp", "default_user": "ubuntu", "cidr_list": "10.0.0.0/24",
               "exclude_cidr_list": "10.0.0.128/25", "port": 2222}),
    );
    assert_eq!(r.status, 204, "{r:?}");
    server
}

fn errors(r: &crate::server::Resp) -> Value {
    r.body["errors"].clone()
}

#[test]
fn otp_creds_verify_once_without_a_token_then_refused() {
    let server = otp_server();
    let r = server.post("ssh/creds/web", json!({"ip": "10.0.0.5"}));
    assert_eq!(r.status, 200, "{r:?}");
    let otp = r.body["data"]["key"].as_str().expect("an OTP").to_owned();
    assert_eq!(
        r.body["data"],
        json!({"ip": "10.0.0.5", "key": otp, "key_type": "otp", "port": 2222, "username": "ubuntu"})
    );
    // The dev mount's default lease TTL (768h), not renewable: OpenBao's answer.
    assert_eq!(r.body["lease_duration"], json!(2_764_800));
    assert_eq!(r.body["renewable"], json!(false));

    // The SSH helper on the host has no token: verify needs none.
    let v = server.call_as("", "POST", "ssh/verify", Some(json!({ "otp": otp })));
    assert_eq!(v.status, 200, "{v:?}");
    assert_eq!(
        v.body["data"],
        json!({"ip": "10.0.0.5", "role_name": "web", "username": "ubuntu"})
    );
    let again = server.call_as("", "POST", "ssh/verify", Some(json!({ "otp": otp })));
    assert_eq!(again.status, 400, "{again:?}");
    assert_eq!(errors(&again), json!(["OTP not found"]));
    // Nor with the root token: a spent OTP is gone.
    let root = server.post("ssh/verify", json!({ "otp": otp }));
    assert_eq!(
        (root.status, errors(&root)),
        (400, json!(["OTP not found"]))
    );
    let unknown = server.call_as("", "POST", "ssh/verify", Some(json!({"otp": "nope"})));
    assert_eq!(
        (unknown.status, errors(&unknown)),
        (400, json!(["OTP not found"]))
    );
    let get = server.call_as("", "GET", "ssh/verify", None);
    assert_eq!(get.status, 405, "{get:?}");

    let log = String::from_utf8_lossy(&server.log()).into_owned();
    assert!(!log.contains(&otp), "the server log holds the OTP");
}

#[test]
fn otp_creds_refuse_an_ip_outside_the_roles_cidr_list() {
    let server = otp_server();
    for ip in ["10.0.0.200", "172.16.0.1", "2001:db8::1"] {
        let r = server.post("ssh/creds/web", json!({ "ip": ip }));
        assert_eq!(r.status, 400, "{ip}: {r:?}");
        assert_eq!(
            errors(&r),
            json!(["Error validating IP: IP does not belong to role"]),
            "{ip}"
        );
    }
    let r = server.post("ssh/creds/web", json!({"ip": "not-an-ip"}));
    assert_eq!(
        (r.status, errors(&r)),
        (400, json!(["Invalid IP \"not-an-ip\""]))
    );
    let r = server.post(
        "ssh/creds/web",
        json!({"ip": "10.0.0.5", "username": "root"}),
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        errors(&r),
        json!(["Username has to be either in allowed users list or has to be a default username"])
    );
    let r = server.post("ssh/creds/nope", json!({"ip": "10.0.0.5"}));
    assert_eq!(
        (r.status, errors(&r)),
        (400, json!(["Role \"nope\" not found"]))
    );
    let r = server.post(
        "ssh/roles/bad",
        json!({"key_type": "otp", "default_user": "a", "cidr_list": "10.0.0.0/33"}),
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        errors(&r),
        json!(["failed to validate cidr_list: invalid CIDR address: 10.0.0.0/33"])
    );

    // A zero-address role takes any IP.
    let r = server.post("ssh/config/zeroaddress", json!({"roles": "web"}));
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.get("ssh/config/zeroaddress");
    assert_eq!(r.body["data"], json!({"roles": ["web"]}));
    let r = server.post("ssh/creds/web", json!({"ip": "172.16.0.1"}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"]["ip"], json!("172.16.0.1"));
}

#[test]
fn otp_lookup_lists_the_roles_of_an_ip_and_needs_a_token() {
    let server = otp_server();
    let r = server.post(
        "ssh/roles/all",
        json!({"key_type": "otp", "default_user": "admin", "cidr_list": "0.0.0.0/0"}),
    );
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.post("ssh/lookup", json!({"ip": "10.0.0.5"}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"], json!({"roles": ["all", "web"]}));
    let r = server.post("ssh/lookup", json!({"ip": "192.168.0.1"}));
    assert_eq!(r.body["data"], json!({"roles": ["all"]}));
    let r = server.post("ssh/lookup", json!({"ip": "2001:db8::1"}));
    assert_eq!(r.body["data"], json!({"roles": null}));
    let r = server.post("ssh/lookup", json!({}));
    assert_eq!((r.status, errors(&r)), (400, json!(["Missing ip"])));
    let r = server.call_as("", "POST", "ssh/lookup", Some(json!({"ip": "10.0.0.5"})));
    assert_eq!(r.status, 403, "{r:?}");

    let list = server.list("ssh/roles");
    assert_eq!(
        list.body["data"]["key_info"],
        json!({"all": {"key_type": "otp"}, "web": {"key_type": "otp"}})
    );
}

#[test]
fn an_otp_issued_before_a_restart_verifies_after_it() {
    // sqlite-backed, so the mount's OTP key and the OTP survive the process.
    let mut server = TestServer::unsealed();
    let r = server.post("sys/mounts/ssh", json!({"type": "ssh"}));
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.post(
        "ssh/roles/web",
        json!({"key_type": "otp", "default_user": "ubuntu", "cidr_list": "10.0.0.0/8"}),
    );
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.post("ssh/creds/web", json!({"ip": "10.1.2.3"}));
    assert_eq!(r.status, 200, "{r:?}");
    let otp = r.body["data"]["key"].as_str().expect("an OTP").to_owned();

    server.restart();
    server.unseal();
    let v = server.call_as("", "POST", "ssh/verify", Some(json!({ "otp": otp })));
    assert_eq!(v.status, 200, "{v:?}");
    assert_eq!(v.body["data"]["ip"], json!("10.1.2.3"));
    let again = server.call_as("", "POST", "ssh/verify", Some(json!({ "otp": otp })));
    assert_eq!(
        (again.status, errors(&again)),
        (400, json!(["OTP not found"]))
    );
    let on_disk = std::fs::read_dir(server.data_dir())
        .expect("the data dir")
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .any(|bytes| bytes.windows(otp.len()).any(|w| w == otp.as_bytes()));
    assert!(!on_disk, "the OTP is on disk");
}

#[test]
fn revoking_an_otps_lease_makes_verify_refuse_it() {
    let server = otp_server();
    let r = server.post("ssh/creds/web", json!({"ip": "10.0.0.5"}));
    assert_eq!(r.status, 200, "{r:?}");
    let otp = r.body["data"]["key"].as_str().expect("an OTP").to_owned();
    let lease_id = r.body["lease_id"].as_str().expect("a lease").to_owned();
    assert!(lease_id.starts_with("ssh/creds/web/"), "{lease_id}");

    let look = server.put("sys/leases/lookup", json!({ "lease_id": lease_id }));
    assert_eq!(look.status, 200, "{look:?}");
    assert_eq!(look.body["data"]["id"], json!(lease_id));
    assert_eq!(look.body["data"]["path"], json!("ssh/creds/web"));
    assert_eq!(look.body["data"]["renewable"], json!(false));
    let ttl = look.body["data"]["ttl"].as_u64().expect("a ttl");
    assert!(0 < ttl && ttl <= 2_764_800, "{ttl}");

    // OpenBao 2.7.2's answer to renewing an OTP's lease.
    let renew = server.put("sys/leases/renew", json!({ "lease_id": lease_id }));
    assert_eq!(
        (renew.status, errors(&renew)),
        (400, json!(["lease is not renewable"]))
    );

    let revoke = server.put("sys/leases/revoke", json!({ "lease_id": lease_id }));
    assert_eq!(revoke.status, 204, "{revoke:?}");
    let v = server.call_as("", "POST", "ssh/verify", Some(json!({ "otp": otp })));
    assert_eq!((v.status, errors(&v)), (400, json!(["OTP not found"])));
    let look = server.put("sys/leases/lookup", json!({ "lease_id": lease_id }));
    assert_eq!(
        (look.status, errors(&look)),
        (400, json!(["invalid lease"]))
    );

    // A spent OTP's lease revokes quietly.
    let r = server.post("ssh/creds/web", json!({"ip": "10.0.0.6"}));
    let otp = r.body["data"]["key"].as_str().expect("an OTP").to_owned();
    let lease_id = r.body["lease_id"].as_str().expect("a lease").to_owned();
    let v = server.call_as("", "POST", "ssh/verify", Some(json!({ "otp": otp })));
    assert_eq!(v.status, 200, "{v:?}");
    let revoke = server.put("sys/leases/revoke", json!({ "lease_id": lease_id }));
    assert_eq!(revoke.status, 204, "{revoke:?}");
    let look = server.put("sys/leases/lookup", json!({ "lease_id": lease_id }));
    assert_eq!(look.status, 400, "{look:?}");

    let log = String::from_utf8_lossy(&server.log()).into_owned();
    assert!(!log.contains(&otp), "the server log holds the OTP");
}
