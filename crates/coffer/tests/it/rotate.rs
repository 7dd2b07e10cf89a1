//! Barrier key rotation: `sys/rotate` installs a new term, data written under every term
//! stays readable, and all of it survives a restart.

use serde_json::json;

use crate::server::TestServer;

#[test]
fn rotate_bumps_the_term_keeps_old_data_and_survives_restart() {
    let mut server = TestServer::unsealed();
    let before = server.get("sys/key-status");
    assert_eq!(before.status, 200, "{before:?}");
    assert_eq!(before.body["data"]["term"], 1, "{before:?}");
    assert_eq!(before.body["term"], 1);
    let installed = before.body["data"]["install_time"]
        .as_str()
        .unwrap()
        .to_owned();
    server.write_secret("term1", json!({"v": "written under term 1"}));

    let r = server.put("sys/rotate", json!({}));
    assert_eq!(r.status, 204, "{r:?}");
    let after = server.get("sys/key-status");
    assert_eq!(after.body["data"]["term"], 2, "{after:?}");
    assert_ne!(after.body["data"]["install_time"], installed.as_str());
    // New writes are counted against the new term.
    assert_eq!(after.body["data"]["encryptions"], 0, "{after:?}");
    assert_eq!(
        server.read_secret("term1"),
        json!({"v": "written under term 1"})
    );
    server.write_secret("term2", json!({"v": "written under term 2"}));
    let counted = server.get("sys/key-status");
    assert!(
        counted.body["data"]["encryptions"].as_u64().unwrap() >= 1,
        "{counted:?}"
    );

    let r = server.post("sys/rotate", json!({}));
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(server.get("sys/key-status").body["data"]["term"], 3);
    server.write_secret("term3", json!({"v": "written under term 3"}));

    // Only a privileged token may rotate.
    let plain = server.post("auth/token/create", json!({"policies": ["default"]}));
    let plain = plain.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = server.call_as(&plain, "PUT", "sys/rotate", None);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(server.get("sys/key-status").body["data"]["term"], 3);

    server.kill9();
    server.restart();
    server.unseal();
    assert_eq!(server.get("sys/key-status").body["data"]["term"], 3);
    for (path, value) in [
        ("term1", "written under term 1"),
        ("term2", "written under term 2"),
        ("term3", "written under term 3"),
    ] {
        assert_eq!(server.read_secret(path), json!({ "v": value }), "{path}");
    }
    // Writes after the restart use the latest term and read back.
    server.write_secret("after", json!({"v": "after restart"}));
    assert_eq!(server.read_secret("after"), json!({"v": "after restart"}));
}

#[test]
fn encryption_counts_survive_a_clean_restart() {
    let mut server = TestServer::unsealed();
    for i in 0..20 {
        server.write_secret(&format!("count-{i}"), json!({"v": i}));
    }
    let before = server.get("sys/key-status").body["data"]["encryptions"]
        .as_u64()
        .unwrap();
    assert!(before >= 20, "every write is an encryption: {before}");
    server.stop();
    server.restart();
    server.unseal();
    let after = server.get("sys/key-status").body["data"]["encryptions"]
        .as_u64()
        .unwrap();
    assert!(
        after >= before,
        "the count was saved at shutdown: {after} < {before}"
    );
}
