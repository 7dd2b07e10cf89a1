//! Test helpers: an in-memory `Storage` (a BTreeMap behind a Mutex) and request builders.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use coffer_sdk::{Error, Operation, Request, RequestAuth, Storage, StorageOp};
use serde_json::{Map, Value};

/// A mount's storage view kept in memory; `apply` takes the lock once, so it is atomic.
#[derive(Default)]
pub(crate) struct MemStorage {
    pub(crate) entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemStorage {
    pub(crate) fn keys(&self) -> Vec<String> {
        self.entries.lock().unwrap().keys().cloned().collect()
    }
}

#[async_trait]
impl Storage for MemStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.entries.lock().unwrap().get(key).cloned())
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        self.entries.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
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
        out.dedup();
        Ok(out)
    }

    async fn apply(&self, ops: Vec<StorageOp>) -> Result<(), Error> {
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

/// A request with a JSON body.
pub(crate) fn req(op: Operation, path: &str, body: Value) -> Request {
    let data: Map<String, Value> = match body {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => panic!("body must be an object, got {other}"),
    };
    let mut request = Request::new(op, path).with_data(data);
    request.mount_point = "secret/".to_owned();
    request
}

/// A request made with a token whose hash is `token_hash`.
pub(crate) fn req_as(op: Operation, path: &str, body: Value, token_hash: &str) -> Request {
    let mut request = req(op, path, body);
    request.auth = Some(Arc::new(RequestAuth {
        token_hash: token_hash.to_owned(),
        ..RequestAuth::default()
    }));
    request
}
