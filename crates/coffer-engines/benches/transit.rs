//! The transit hot path through `Backend::handle`: encrypt of 32 bytes and of 4 KiB with
//! aes256-gcm96, decrypt of 32 bytes, and an ed25519 signature, on a cached key (what a
//! request costs the engine, without HTTP and the core pipeline around it).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use coffer_engines::transit::Transit;
use coffer_sdk::{Backend, Error, Operation, Request, Storage, StorageOp};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};

#[derive(Default)]
struct Mem(Mutex<BTreeMap<String, Vec<u8>>>);

#[async_trait]
impl Storage for Mem {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        self.0.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
    async fn list(&self, _prefix: &str) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }
    async fn apply(&self, ops: Vec<StorageOp>) -> Result<(), Error> {
        let mut map = self.0.lock().unwrap();
        for op in ops {
            match op {
                StorageOp::Put(k, v) => {
                    map.insert(k, v);
                }
                StorageOp::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }
}

fn request(path: &str, body: Value) -> Request {
    let Value::Object(data) = body else {
        unreachable!("bodies are objects")
    };
    Request::new(Operation::Update, path).with_data(data)
}

fn bench(c: &mut Criterion) {
    use base64::Engine;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let transit = Transit::new();
    let storage = Mem::default();
    let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
    rt.block_on(async {
        transit
            .handle(request("keys/aes", json!({})), &storage)
            .await
            .unwrap();
        transit
            .handle(request("keys/ed", json!({"type": "ed25519"})), &storage)
            .await
            .unwrap();
    });
    let small: Map<String, Value> = json!({"plaintext": b64(32)}).as_object().unwrap().clone();
    let large: Map<String, Value> = json!({"plaintext": b64(4096)}).as_object().unwrap().clone();
    let ct = rt.block_on(async {
        let resp = transit
            .handle(
                Request::new(Operation::Update, "encrypt/aes").with_data(small.clone()),
                &storage,
            )
            .await
            .unwrap()
            .unwrap();
        resp.data.unwrap()["ciphertext"].clone()
    });
    let dec: Map<String, Value> = json!({"ciphertext": ct}).as_object().unwrap().clone();
    let sign: Map<String, Value> = json!({"input": b64(32)}).as_object().unwrap().clone();
    for (name, path, body) in [
        ("transit/encrypt_aes256_32B", "encrypt/aes", &small),
        ("transit/encrypt_aes256_4KiB", "encrypt/aes", &large),
        ("transit/decrypt_aes256_32B", "decrypt/aes", &dec),
        ("transit/sign_ed25519_32B", "sign/ed", &sign),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(transit.handle(
                    Request::new(Operation::Update, path).with_data(body.clone()),
                    &storage,
                ))
                .unwrap()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
