//! Data survives restarts: an orderly stop, a SIGKILL, and a SIGKILL in the middle of a
//! stream of concurrent writes (every acknowledged write must come back, byte for byte).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::server::{client_for, TestServer};

#[test]
fn secrets_survive_a_restart_and_unseal() {
    let mut server = TestServer::unsealed();
    server.write_secret("app/db", json!({"user": "alice", "password": "p1"}));
    server.write_secret("app/db", json!({"user": "alice", "password": "p2"}));

    server.stop();
    server.restart();
    // Back sealed: nothing is readable before the unseal.
    let r = server.get("secret/data/app/db");
    assert_eq!(r.status, 503, "{r:?}");
    server.unseal();

    assert_eq!(
        server.read_secret("app/db"),
        json!({"user": "alice", "password": "p2"})
    );
    let v1 = server.get("secret/data/app/db?version=1");
    assert_eq!(v1.status, 200);
    assert_eq!(v1.body["data"]["data"]["password"], "p1");
    let meta = server.get("secret/metadata/app/db");
    assert_eq!(meta.status, 200);
    assert_eq!(meta.body["data"]["current_version"], 2);
    // The mount table and the root token survived too.
    let mounts = server.get("sys/mounts");
    assert_eq!(mounts.body["data"]["secret/"]["options"]["version"], "2");
}

#[test]
fn secrets_survive_sigkill_and_restart() {
    let mut server = TestServer::unsealed();
    server.write_secret("k9/one", json!({"v": "before-kill"}));
    let token = server.post("auth/token/create", json!({"policies": ["default"]}));
    assert_eq!(token.status, 200, "{token:?}");
    let child = token.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();

    server.kill9();
    server.restart();
    server.unseal();

    assert_eq!(server.read_secret("k9/one"), json!({"v": "before-kill"}));
    let r = server.call_as(&child, "GET", "auth/token/lookup-self", None);
    assert_eq!(r.status, 200, "the token did not survive: {r:?}");
    assert_eq!(r.body["data"]["policies"], json!(["default"]));
}

#[test]
fn every_acknowledged_write_survives_sigkill_mid_stream() {
    const WRITERS: usize = 6;
    const MAX_PER_WRITER: usize = 400;
    const KILL_AFTER: usize = 300;

    let mut server = TestServer::unsealed();
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let (acked, ack_tx, stop) = (acked.clone(), ack_tx.clone(), stop.clone());
        let url = server.url("");
        let token = server.token.clone();
        handles.push(std::thread::spawn(move || {
            let http = client_for(None);
            for i in 0..MAX_PER_WRITER {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let key = format!("stream/w{w}/k{i}");
                let value = format!("value-{w}-{i}-{}", "x".repeat(i % 50));
                let sent = http
                    .put(format!("{url}secret/data/{key}"))
                    .header("X-Vault-Token", &token)
                    .json(&json!({"data": {"v": value}}))
                    .send();
                match sent {
                    Ok(resp) if resp.status().is_success() => {
                        acked.lock().unwrap().push((key, value));
                        let _ = ack_tx.send(());
                    }
                    // The server died under us: every later write would fail too.
                    _ => return,
                }
            }
        }));
    }
    drop(ack_tx);
    // Kill once enough writes are acknowledged, while the writers are still going.
    for n in 0..KILL_AFTER {
        ack_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("only {n} writes acknowledged: {e}"));
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= KILL_AFTER);
    // The kill landed mid-stream: the writers did not get to finish.
    assert!(
        acked.len() < WRITERS * MAX_PER_WRITER,
        "every write finished before the kill"
    );

    server.restart();
    server.unseal();
    for (key, value) in &acked {
        let data = server.read_secret(key);
        assert_eq!(data, json!({ "v": value }), "acknowledged write {key} lost");
    }
}
