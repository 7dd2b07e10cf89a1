//! `pki/issue/<role>` with an ec-p256 role over in-memory storage: key generation, the
//! certificate signature and the cert-store write, without HTTP. The per-issue cost the
//! engine adds to a request, one at a time and 32 at once on two workers (as 32 connections
//! on this two-core machine: nothing in the issue path holds a lock across work, so the
//! per-issue time there is bounded by CPU, not by waiting)
//! (`cargo bench -p coffer-engines --bench pki_issue`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use coffer_engines::pki::Pki;
use coffer_sdk::{Backend, Error, Operation, Request, Storage, StorageOp};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};

#[derive(Default)]
struct MemStorage(Mutex<BTreeMap<String, Vec<u8>>>);

#[async_trait]
impl Storage for MemStorage {
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
    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let map = self.0.lock().unwrap();
        let mut out: Vec<String> = map
            .keys()
            .filter_map(|k| k.strip_prefix(prefix))
            .map(|rest| match rest.find('/') {
                Some(i) => rest[..=i].to_owned(),
                None => rest.to_owned(),
            })
            .collect();
        out.dedup();
        Ok(out)
    }
    async fn apply(&self, ops: Vec<StorageOp>) -> Result<(), Error> {
        for op in ops {
            match op {
                StorageOp::Put(k, v) => self.put(&k, v).await?,
                StorageOp::Delete(k) => self.delete(&k).await?,
            }
        }
        Ok(())
    }
}

fn request(op: Operation, path: &str, body: Value) -> Request {
    let Value::Object(map) = body else {
        unreachable!("bodies are objects")
    };
    Request::new(op, path).with_data(map)
}

fn bench_issue(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let pki = Arc::new(Pki::new());
    let storage = Arc::new(MemStorage::default());
    rt.block_on(async {
        for (path, body) in [
            (
                "root/generate/internal",
                json!({"common_name": "bench.test", "key_type": "ec", "ttl": "720h"}),
            ),
            (
                "roles/web",
                json!({"allowed_domains": "bench.test", "allow_subdomains": true,
                       "key_type": "ec", "key_bits": 256}),
            ),
            (
                "roles/web-nostore",
                json!({"allowed_domains": "bench.test", "allow_subdomains": true,
                       "key_type": "ec", "key_bits": 256, "no_store": true}),
            ),
        ] {
            pki.handle(request(Operation::Update, path, body), storage.as_ref())
                .await
                .expect("setup succeeds");
        }
    });
    let mut group = c.benchmark_group("pki");
    for role in ["web", "web-nostore"] {
        group.bench_function(format!("issue ec-p256 ({role})"), |b| {
            b.to_async(&rt).iter(|| async {
                pki.handle(
                    request(
                        Operation::Update,
                        &format!("issue/{role}"),
                        json!({"common_name": "a.bench.test", "ttl": "1h"}),
                    ),
                    storage.as_ref(),
                )
                .await
                .expect("issue succeeds")
            })
        });
    }
    const CONCURRENT: u64 = 32;
    group.throughput(Throughput::Elements(CONCURRENT));
    group.bench_function("issue ec-p256 (web), 32 concurrent", |b| {
        b.to_async(&rt).iter(|| async {
            let tasks: Vec<_> = (0..CONCURRENT)
                .map(|_| {
                    let (pki, storage) = (pki.clone(), storage.clone());
                    tokio::spawn(async move {
                        pki.handle(
                            request(
                                Operation::Update,
                                "issue/web",
                                json!({"common_name": "a.bench.test", "ttl": "1h"}),
                            ),
                            storage.as_ref(),
                        )
                        .await
                        .expect("issue succeeds")
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("the task completes");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_issue);
criterion_main!(benches);
