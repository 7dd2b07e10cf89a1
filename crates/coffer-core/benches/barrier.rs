//! The barrier's cost per request: get (read + decrypt) and put (encrypt + write) of a
//! 100-byte value over the in-memory store, beside the same operations on the bare store, so
//! the difference is what the barrier adds.

use std::sync::Arc;

use coffer_core::barrier::{Barrier, Key};
use coffer_storage::{InMem, Store};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn barrier(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds");
    let store = Arc::new(InMem::new());
    let barrier = Barrier::new(store.clone());
    let root = Key::generate();
    rt.block_on(async {
        barrier.initialize(&root).await.expect("initialize");
        barrier.unseal(&root).await.expect("unseal");
        barrier
            .put("bench/value", vec![0x5A; VALUE_LEN])
            .await
            .expect("put");
        store
            .put("raw/value", vec![0x5A; VALUE_LEN])
            .await
            .expect("raw put");
    });

    let mut group = c.benchmark_group("barrier_100B");
    group.throughput(Throughput::Elements(1));
    group.bench_function("get", |b| {
        b.to_async(&rt).iter(|| async {
            let v = barrier.get("bench/value").await.expect("get");
            assert_eq!(v.map(|v| v.len()), Some(VALUE_LEN));
        })
    });
    group.bench_function("put", |b| {
        b.to_async(&rt).iter(|| async {
            barrier
                .put("bench/value", vec![0x5A; VALUE_LEN])
                .await
                .expect("put")
        })
    });
    group.bench_function("store_get", |b| {
        b.to_async(&rt).iter(|| async {
            let v = store.get("raw/value").await.expect("get");
            assert_eq!(v.map(|v| v.len()), Some(VALUE_LEN));
        })
    });
    group.bench_function("store_put", |b| {
        b.to_async(&rt).iter(|| async {
            store
                .put("raw/value", vec![0x5A; VALUE_LEN])
                .await
                .expect("put")
        })
    });
    group.finish();
}

const VALUE_LEN: usize = 100;

criterion_group!(benches, barrier);
criterion_main!(benches);
