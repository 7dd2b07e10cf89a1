//! Nothing secret is kept or printed in plaintext: the sqlite files (db, -wal, -shm) and the
//! server's captured output never contain a written secret value, the root token or a
//! created token.

use serde_json::json;

use crate::server::{contains_bytes, TestServer};

const MARKER: &str = "MARKER-at-rest-5c1e9b7d-plaintext";

#[test]
fn no_secret_or_token_in_plaintext_in_the_data_dir_or_the_log() {
    let mut server = TestServer::unsealed();
    server.write_secret("marker", json!({"value": MARKER}));
    // A kv v1 mount and cubbyhole too: every engine writes through the barrier.
    let r = server.post("sys/mounts/kv1", json!({"type": "kv"}));
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.put("kv1/marker", json!({"value": MARKER}));
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.put("cubbyhole/marker", json!({"value": MARKER}));
    assert_eq!(r.status, 204, "{r:?}");
    let created = server.post("auth/token/create", json!({"policies": ["default"]}));
    assert_eq!(created.status, 200, "{created:?}");
    let token = created.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The values are really there (so the search below looks for something that exists).
    assert_eq!(server.read_secret("marker"), json!({"value": MARKER}));
    let root = server.token.clone();
    let needles = [
        ("the marker", MARKER),
        ("the root token", &root),
        ("the created token", &token),
    ];

    let check = |server: &TestServer, when: &str| {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(server.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            for (what, needle) in &needles {
                assert!(
                    !contains_bytes(&bytes, needle.as_bytes()),
                    "{what} found in plaintext in {} ({when})",
                    path.display()
                );
            }
            files.push(path);
        }
        assert!(
            files.iter().any(|p| p.to_string_lossy().ends_with(".db")),
            "no sqlite db in {files:?}"
        );
        let log = server.log();
        for (what, needle) in &needles {
            assert!(
                !contains_bytes(&log, needle.as_bytes()),
                "{what} found in the server log ({when})"
            );
        }
    };
    check(&server, "while running");
    // After a SIGKILL, whatever the WAL holds is on disk as it was.
    server.kill9();
    check(&server, "after SIGKILL");
    server.restart();
    server.unseal();
    assert_eq!(server.read_secret("marker"), json!({"value": MARKER}));
    server.stop();
    check(&server, "after an orderly stop");
}
