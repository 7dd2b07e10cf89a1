//! Test helpers: an in-memory `Storage` and request builders.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use coffer_sdk::{Error, Operation, Request, RequestAuth, Storage, StorageOp};
use serde_json::{Map, Value};

/// A mount's storage view in memory, counting reads and writes so tests can check the cost of
/// a hot path.
#[derive(Default)]
pub(crate) struct MemStorage {
    pub(crate) entries: Mutex<BTreeMap<String, Vec<u8>>>,
    pub(crate) reads: std::sync::atomic::AtomicUsize,
    pub(crate) writes: std::sync::atomic::AtomicUsize,
}

impl MemStorage {
    pub(crate) fn keys(&self) -> Vec<String> {
        self.entries.lock().unwrap().keys().cloned().collect()
    }

    /// (reads, writes) since the last call.
    pub(crate) fn take_counts(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.reads.swap(0, SeqCst), self.writes.swap(0, SeqCst))
    }

    /// Every stored value, concatenated, to grep for secrets that must not be stored.
    pub(crate) fn dump(&self) -> Vec<u8> {
        let entries = self.entries.lock().unwrap();
        let mut out = Vec::new();
        for (k, v) in entries.iter() {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(v);
        }
        out
    }
}

#[async_trait]
impl Storage for MemStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self.entries.lock().unwrap().get(key).cloned())
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.entries.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.entries.lock().unwrap().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let entries = self.entries.lock().unwrap();
        let mut out: Vec<String> = Vec::new();
        for key in entries.keys() {
            let Some(rest) = key.strip_prefix(prefix) else {
                continue;
            };
            let child = match rest.find('/') {
                Some(i) => &rest[..=i],
                None => rest,
            };
            if out.last().map(String::as_str) != Some(child) {
                out.push(child.to_owned());
            }
        }
        Ok(out)
    }

    async fn apply(&self, ops: Vec<StorageOp>) -> Result<(), Error> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut entries = self.entries.lock().unwrap();
        for op in ops {
            match op {
                StorageOp::Put(key, value) => {
                    entries.insert(key, value);
                }
                StorageOp::Delete(key) => {
                    entries.remove(&key);
                }
            }
        }
        Ok(())
    }
}

/// A request with a JSON body, as the root token would send it.
pub(crate) fn req(op: Operation, path: &str, body: Value) -> Request {
    let data: Map<String, Value> = match body {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => panic!("body must be an object, got {other}"),
    };
    let mut request = Request::new(op, path).with_data(data);
    request.mount_point = "auth/test/".to_owned();
    request.auth = Some(Arc::new(RequestAuth {
        policies: vec!["root".to_owned()],
        ..RequestAuth::default()
    }));
    request
}

/// An unauthenticated login request from `addr`.
pub(crate) fn login(path: &str, body: Value, addr: &str) -> Request {
    let mut request = req(Operation::Update, path, body);
    request.auth = None;
    request.remote_addr = Some(addr.to_owned());
    request
}
