//! A minimal in-memory `Store` for the barrier's and the seal's unit tests, with raw access to
//! the stored bytes so tests can tamper with records and grep for leaked secrets.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use coffer_storage::{Error, Op, Store};

#[derive(Default)]
pub(crate) struct TestStore {
    data: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl TestStore {
    pub(crate) fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.data.lock().unwrap().get(key).cloned()
    }

    pub(crate) fn set_raw(&self, key: &str, value: Vec<u8>) {
        self.data.lock().unwrap().insert(key.to_owned(), value);
    }

    /// Every key and value, concatenated.
    pub(crate) fn all_bytes(&self) -> Vec<u8> {
        let data = self.data.lock().unwrap();
        let mut out = Vec::new();
        for (k, v) in data.iter() {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(v);
        }
        out
    }
}

#[async_trait]
impl Store for TestStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.raw(key))
    }

    async fn apply(&self, ops: Vec<Op>) -> Result<(), Error> {
        let mut data = self.data.lock().unwrap();
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    data.insert(k, v);
                }
                Op::Delete(k) => {
                    data.remove(&k);
                }
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let data = self.data.lock().unwrap();
        let mut out: Vec<String> = Vec::new();
        for k in data.keys().filter(|k| k.starts_with(prefix)) {
            let rest = &k[prefix.len()..];
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
}
