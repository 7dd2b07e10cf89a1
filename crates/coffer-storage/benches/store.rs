//! Store benchmarks: `cargo bench -p coffer-storage --bench store`.
//!
//! get: a cache hit, a cache miss (read through to SQLite and fill), SQLite alone.
//! put: durable SQLite writes with 1 and 32 concurrent writers; with 32, the time reported is
//! per write, so the gap between the two is what group commit buys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_storage::{Cache, Sqlite, Store};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn get(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temp dir");
    let sqlite = Arc::new(Sqlite::open(dir.path()).expect("open sqlite"));
    let cache = Cache::new(sqlite.clone(), 10_000);
    let value = vec![7u8; 300]; // about one encrypted KV secret
    rt.block_on(async {
        let ops = (0..1000)
            .map(|i| coffer_storage::Op::Put(format!("secret/data/app{i}"), value.clone()))
            .collect();
        cache.apply(ops).await.expect("seed");
    });

    let mut g = c.benchmark_group("get");
    g.throughput(Throughput::Elements(1));
    g.bench_function("cache_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { cache.get("secret/data/app42").await.expect("get") })
    });
    g.bench_function("cache_miss", |b| {
        b.to_async(&rt).iter(|| async {
            cache.invalidate("secret/data/app42");
            cache.get("secret/data/app42").await.expect("get")
        })
    });
    g.bench_function("sqlite", |b| {
        b.to_async(&rt)
            .iter(|| async { sqlite.get("secret/data/app42").await.expect("get") })
    });
    g.bench_function("sqlite_missing", |b| {
        b.to_async(&rt)
            .iter(|| async { sqlite.get("secret/data/none").await.expect("get") })
    });
    g.finish();
}

fn put(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temp dir");
    let sqlite = Arc::new(Sqlite::open(dir.path()).expect("open sqlite"));
    let value = vec![7u8; 300];

    let mut g = c.benchmark_group("put");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    for writers in [1usize, 32] {
        let before = (sqlite.writes(), sqlite.commits());
        g.bench_with_input(
            BenchmarkId::new("sqlite", writers),
            &writers,
            |b, &writers| {
                b.to_async(&rt).iter_custom(|iters| {
                    let sqlite = sqlite.clone();
                    let value = value.clone();
                    async move {
                        let per_writer = iters.div_ceil(writers as u64);
                        let start = Instant::now();
                        let mut tasks = tokio::task::JoinSet::new();
                        for w in 0..writers {
                            let (sqlite, value) = (sqlite.clone(), value.clone());
                            tasks.spawn(async move {
                                for i in 0..per_writer {
                                    let key = format!("bench/{w}/{}", i % 1000);
                                    sqlite.put(&key, value.clone()).await.expect("put");
                                }
                            });
                        }
                        while let Some(r) = tasks.join_next().await {
                            r.expect("writer task");
                        }
                        // Report per requested iteration, scaled for the rounding up above.
                        start
                            .elapsed()
                            .mul_f64(iters as f64 / (per_writer * writers as u64) as f64)
                    }
                })
            },
        );
        let writes = sqlite.writes() - before.0;
        let commits = sqlite.commits() - before.1;
        eprintln!(
            "put/sqlite/{writers}: {writes} writes in {commits} commits ({:.1} writes per fsync)",
            writes as f64 / commits.max(1) as f64
        );
    }
    g.finish();
}

/// What the hand-off of a read to another thread costs, by the two ways `Sqlite` could do it:
/// tokio's blocking pool (what it uses) or a dedicated thread fed by a channel.
fn hop(c: &mut Criterion) {
    let rt = runtime();
    let (tx, rx) = std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<u64>>();
    let thread = std::thread::spawn(move || {
        while let Ok(ack) = rx.recv() {
            let _ = ack.send(1);
        }
    });
    let mut g = c.benchmark_group("hop");
    g.bench_function("spawn_blocking", |b| {
        b.to_async(&rt).iter(|| async {
            tokio::task::spawn_blocking(|| 1u64)
                .await
                .expect("blocking task")
        })
    });
    g.bench_function("dedicated_thread", |b| {
        b.to_async(&rt).iter(|| async {
            let (ack, done) = tokio::sync::oneshot::channel();
            tx.send(ack).expect("thread alive");
            done.await.expect("thread answers")
        })
    });
    g.finish();
    drop(tx);
    thread.join().expect("thread ends");
}

criterion_group!(benches, get, put, hop);
criterion_main!(benches);
