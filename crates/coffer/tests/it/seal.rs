//! Init, seal and unseal as OpenBao does them: a sealed server answers 503 on every path but
//! the seal ones, shares go in any order, a wrong share is refused and resets the progress.

use serde_json::{json, Value};

use crate::server::{sealed_body, TestServer};

/// Paths that need an unsealed server, with the methods a client would use on them.
const GUARDED: &[(&str, &str)] = &[
    ("GET", "secret/data/x"),
    ("PUT", "secret/data/x"),
    ("GET", "sys/mounts"),
    ("POST", "sys/mounts/other"),
    ("LIST", "sys/policy"),
    ("GET", "sys/key-status"),
    ("PUT", "sys/rotate"),
    ("POST", "auth/token/create"),
    ("GET", "auth/token/lookup-self"),
    ("GET", "cubbyhole/x"),
    ("GET", "no/such/mount"),
];

#[test]
fn an_uninitialized_server_reports_501_and_refuses_requests() {
    let server = TestServer::start();
    let health = server.get("sys/health");
    assert_eq!(health.status, 501, "{health:?}");
    assert_eq!(health.body["initialized"], false);
    assert_eq!(health.body["sealed"], true);
    let status = server.get("sys/seal-status");
    assert_eq!(status.status, 200);
    assert_eq!(status.body["initialized"], false);
    assert_eq!(status.body["t"], 0);
    let r = server.get("secret/data/x");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.body, sealed_body());
    let init = server.get("sys/init");
    assert_eq!(init.status, 200);
    assert_eq!(init.body, json!({"initialized": false}));
}

#[test]
fn sealed_server_answers_503_on_every_non_seal_path() {
    let mut server = TestServer::start();
    server.init(3, 2);
    for token in [server.token.clone(), String::new()] {
        for (method, path) in GUARDED {
            let body = (*method == "PUT" || *method == "POST").then(|| json!({"data": {}}));
            let r = server.call_as(&token, method, path, body);
            assert_eq!(r.status, 503, "{method} {path}: {r:?}");
            assert_eq!(r.body, sealed_body(), "{method} {path}");
        }
    }

    let health = server.get("sys/health");
    assert_eq!(health.status, 503, "{health:?}");
    assert_eq!(health.body["initialized"], true);
    assert_eq!(health.body["sealed"], true);
    assert_eq!(health.body["standby"], true);
    let health = server.get("sys/health?sealedcode=200");
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.body["sealed"], true);

    let status = server.get("sys/seal-status");
    assert_eq!(status.status, 200);
    for (field, want) in [
        ("type", json!("shamir")),
        ("initialized", json!(true)),
        ("sealed", json!(true)),
        ("t", json!(2)),
        ("n", json!(3)),
        ("progress", json!(0)),
        ("nonce", json!("")),
    ] {
        assert_eq!(
            status.body[field], want,
            "seal-status {field}: {}",
            status.body
        );
    }
    assert_eq!(server.get("sys/init").body, json!({"initialized": true}));
}

#[test]
fn unseal_takes_threshold_shares_in_any_order_and_seal_locks_again() {
    let mut server = TestServer::start();
    server.init(3, 2);
    let keys = server.keys.clone();

    // Last share first, then the first: unsealed.
    let r = server.put("sys/unseal", json!({"key": keys[2]}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_progress(&r.body, true, 1);
    assert_ne!(r.body["nonce"], "", "an unseal in progress has a nonce");
    let r = server.put("sys/unseal", json!({"key": keys[0]}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_progress(&r.body, false, 0);
    assert_eq!(server.get("sys/health").status, 200);
    let r = server.post(
        "sys/mounts/secret",
        json!({"type": "kv", "options": {"version": "2"}}),
    );
    assert_eq!(r.status, 204, "{r:?}");
    server.write_secret("sealed/x", json!({"v": "1"}));

    // Sealing needs a token.
    let r = server.call_as("", "PUT", "sys/seal", None);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(server.get("sys/seal-status").body["sealed"], false);
    let r = server.call("PUT", "sys/seal", None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(server.get("sys/seal-status").body["sealed"], true);
    assert_eq!(server.get("secret/data/sealed/x").status, 503);

    // Middle and last share this time.
    let r = server.put("sys/unseal", json!({"key": keys[1]}));
    assert_progress(&r.body, true, 1);
    let r = server.put("sys/unseal", json!({"key": keys[2]}));
    assert_progress(&r.body, false, 0);
    assert_eq!(server.read_secret("sealed/x"), json!({"v": "1"}));
}

#[test]
fn a_wrong_share_is_400_and_reset_clears_progress() {
    let mut server = TestServer::start();
    server.init(3, 2);
    let keys = server.keys.clone();

    // Not base64 or hex at all.
    let r = server.put("sys/unseal", json!({"key": "not a key!"}));
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.body,
        json!({"errors": ["'key' must be a valid hex or base64 string"]})
    );
    // Too short to be a share.
    let r = server.put("sys/unseal", json!({"key": "AAAA"}));
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.body,
        json!({"errors": ["invalid key: key is shorter than minimum 16 bytes"]})
    );
    assert_eq!(server.get("sys/seal-status").body["progress"], 0);

    // A well-formed share of another key: accepted as progress, refused at the threshold.
    let forged = forged_share(&keys[0]);
    let r = server.put("sys/unseal", json!({"key": keys[1]}));
    assert_progress(&r.body, true, 1);
    let r = server.put("sys/unseal", json!({"key": forged}));
    assert_eq!(r.status, 400, "{r:?}");
    let message = r.body["errors"][0].as_str().unwrap_or_default();
    assert!(
        message.starts_with("unable to retrieve stored keys: invalid key"),
        "{r:?}"
    );
    let status = server.get("sys/seal-status").body;
    assert_progress(&status, true, 0);

    // Reset drops a share in progress.
    let r = server.put("sys/unseal", json!({"key": keys[0]}));
    assert_progress(&r.body, true, 1);
    let r = server.put("sys/unseal", json!({"reset": true}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_progress(&r.body, true, 0);
    assert_eq!(r.body["nonce"], "");
    // The same share twice does not count twice.
    server.put("sys/unseal", json!({"key": keys[0]}));
    let r = server.put("sys/unseal", json!({"key": keys[0]}));
    assert_progress(&r.body, true, 1);

    let r = server.put("sys/unseal", json!({"key": keys[2]}));
    assert_progress(&r.body, false, 0);
}

#[test]
fn init_refuses_threshold_above_shares_and_a_second_init() {
    let mut server = TestServer::start();
    let r = server.put(
        "sys/init",
        json!({"secret_shares": 2, "secret_threshold": 3}),
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.body,
        json!({"errors": ["invalid seal configuration: threshold cannot be larger than shares"]})
    );
    assert_eq!(server.get("sys/init").body, json!({"initialized": false}));

    let body = server.init(3, 2);
    assert_eq!(body["keys"].as_array().unwrap().len(), 3);
    for key in body["keys"].as_array().unwrap() {
        let key = key.as_str().unwrap();
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()), "hex key {key}");
    }
    assert!(!server.token.is_empty());

    let r = server.put(
        "sys/init",
        json!({"secret_shares": 3, "secret_threshold": 2}),
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body, json!({"errors": ["Vault is already initialized"]}));
    // The first init's keys still unseal.
    server.unseal();
    let r = server.call("GET", "auth/token/lookup-self", None);
    assert_eq!(r.status, 200, "{r:?}");
}

fn assert_progress(body: &Value, sealed: bool, progress: u64) {
    assert_eq!(body["sealed"], json!(sealed), "{body}");
    assert_eq!(body["progress"], json!(progress), "{body}");
}

/// A share of the same length and x coordinate as `real` (its first and last bytes, where
/// either layout keeps it) with different y bytes: well-formed, combining to the wrong key.
fn forged_share(real: &str) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(real).expect("base64 share");
    let last = bytes.len() - 1;
    for b in &mut bytes[1..last] {
        *b ^= 0x5a;
    }
    engine.encode(bytes)
}
