//! One behaviour suite that every `Store` must pass (the idea of tikv's `engine_traits_tests`):
//! each backend's tests call [`run_all`] on a fresh, empty store, so the backends cannot drift
//! apart. It panics on the first divergence, naming the check.
//!
//! Test support only: it writes and deletes keys freely, so never point it at real data.

use std::sync::Arc;

use crate::{Op, Store};

/// Runs every check against `store`, which must start empty. Needs a tokio runtime (the
/// concurrency check spawns tasks); a multi-threaded one exercises real parallelism.
pub async fn run_all(store: Arc<dyn Store>) {
    let s = store.as_ref();
    assert!(
        list(s, "").await.is_empty(),
        "conformance needs an empty store"
    );
    get_missing(s).await;
    put_then_get(s).await;
    overwrite(s).await;
    delete(s).await;
    delete_missing(s).await;
    apply_batch_is_visible_whole(s).await;
    apply_last_op_on_a_key_wins(s).await;
    empty_apply_succeeds(s).await;
    list_semantics(s).await;
    list_similar_prefixes(s).await;
    list_top_level(s).await;
    binary_values(s).await;
    empty_value(s).await;
    large_value(s).await;
    unicode_keys(s).await;
    concurrent_writers(store.clone()).await;
    concurrent_batches_stay_atomic(store.clone()).await;
}

async fn get_missing(s: &dyn Store) {
    assert_eq!(
        s.get("cf/missing").await.unwrap(),
        None,
        "get of a missing key"
    );
}

async fn put_then_get(s: &dyn Store) {
    s.put("cf/put/k", b"v1".to_vec()).await.unwrap();
    assert_eq!(
        get(s, "cf/put/k").await,
        Some(b"v1".to_vec()),
        "get after put"
    );
    cleanup(s, "cf/").await;
}

async fn overwrite(s: &dyn Store) {
    s.put("cf/ow", b"one".to_vec()).await.unwrap();
    s.put("cf/ow", b"two, longer".to_vec()).await.unwrap();
    assert_eq!(
        get(s, "cf/ow").await,
        Some(b"two, longer".to_vec()),
        "overwrite"
    );
    s.put("cf/ow", b"3".to_vec()).await.unwrap();
    assert_eq!(
        get(s, "cf/ow").await,
        Some(b"3".to_vec()),
        "overwrite shorter"
    );
    cleanup(s, "cf/").await;
}

async fn delete(s: &dyn Store) {
    s.put("cf/del", b"x".to_vec()).await.unwrap();
    s.put("cf/keep", b"y".to_vec()).await.unwrap();
    s.delete("cf/del").await.unwrap();
    assert_eq!(get(s, "cf/del").await, None, "get after delete");
    assert_eq!(
        get(s, "cf/keep").await,
        Some(b"y".to_vec()),
        "delete touched a neighbour"
    );
    assert_eq!(list(s, "cf/").await, vec!["keep"], "list after delete");
    cleanup(s, "cf/").await;
}

async fn delete_missing(s: &dyn Store) {
    s.delete("cf/never-written").await.unwrap();
    s.apply(vec![Op::Delete("cf/a".into()), Op::Delete("cf/b/c".into())])
        .await
        .unwrap();
    assert!(
        list(s, "").await.is_empty(),
        "deleting missing keys created something"
    );
}

async fn apply_batch_is_visible_whole(s: &dyn Store) {
    s.put("cf/batch/old1", b"o1".to_vec()).await.unwrap();
    s.put("cf/batch/old2", b"o2".to_vec()).await.unwrap();
    s.apply(vec![
        Op::Put("cf/batch/new1".into(), b"n1".to_vec()),
        Op::Delete("cf/batch/old1".into()),
        Op::Put("cf/batch/old2".into(), b"o2'".to_vec()),
        Op::Put("cf/batch/sub/new2".into(), b"n2".to_vec()),
    ])
    .await
    .unwrap();
    assert_eq!(
        get(s, "cf/batch/new1").await,
        Some(b"n1".to_vec()),
        "batch put"
    );
    assert_eq!(get(s, "cf/batch/old1").await, None, "batch delete");
    assert_eq!(
        get(s, "cf/batch/old2").await,
        Some(b"o2'".to_vec()),
        "batch overwrite"
    );
    assert_eq!(
        get(s, "cf/batch/sub/new2").await,
        Some(b"n2".to_vec()),
        "batch deep put"
    );
    assert_eq!(
        list(s, "cf/batch/").await,
        vec!["new1", "old2", "sub/"],
        "list after batch"
    );
    cleanup(s, "cf/").await;
}

async fn apply_last_op_on_a_key_wins(s: &dyn Store) {
    s.apply(vec![
        Op::Put("cf/twice".into(), b"first".to_vec()),
        Op::Put("cf/twice".into(), b"second".to_vec()),
        Op::Put("cf/gone".into(), b"x".to_vec()),
        Op::Delete("cf/gone".into()),
        Op::Delete("cf/back".into()),
        Op::Put("cf/back".into(), b"back".to_vec()),
    ])
    .await
    .unwrap();
    assert_eq!(
        get(s, "cf/twice").await,
        Some(b"second".to_vec()),
        "put, put"
    );
    assert_eq!(get(s, "cf/gone").await, None, "put, delete");
    assert_eq!(
        get(s, "cf/back").await,
        Some(b"back".to_vec()),
        "delete, put"
    );
    cleanup(s, "cf/").await;
}

async fn empty_apply_succeeds(s: &dyn Store) {
    s.apply(Vec::new()).await.unwrap();
}

async fn list_semantics(s: &dyn Store) {
    for k in [
        "cf/l/b",
        "cf/l/a",
        "cf/l/dir/x",
        "cf/l/dir/y/z",
        "cf/l/dir2/deep/deeper/k",
        "cf/l/c",
        "cf/lx",
        "cf/l-sibling/q",
    ] {
        s.put(k, vec![1]).await.unwrap();
    }
    assert_eq!(
        list(s, "cf/l/").await,
        vec!["a", "b", "c", "dir/", "dir2/"],
        "immediate children, directories once with a trailing slash, sorted"
    );
    assert_eq!(
        list(s, "cf/l/dir/").await,
        vec!["x", "y/"],
        "nested listing"
    );
    assert_eq!(
        list(s, "cf/l/dir2/deep/").await,
        vec!["deeper/"],
        "deep listing"
    );
    assert_eq!(
        list(s, "cf/").await,
        vec!["l-sibling/", "l/", "lx"],
        "parent listing"
    );
    assert!(
        list(s, "cf/nothing/").await.is_empty(),
        "missing prefix lists nothing"
    );
    assert!(
        list(s, "cf/l/a/").await.is_empty(),
        "a leaf is not a directory"
    );
    cleanup(s, "cf/").await;
}

async fn list_similar_prefixes(s: &dyn Store) {
    for k in [
        "sp/a/b", "sp/a/bc", "sp/ab", "sp/a/b/c", "sp/a0", "sp/a.", "sp/a/b0",
    ] {
        s.put(k, vec![2]).await.unwrap();
    }
    assert_eq!(
        list(s, "sp/a/").await,
        vec!["b", "b/", "b0", "bc"],
        "a/b vs a/bc"
    );
    assert_eq!(
        list(s, "sp/a/b/").await,
        vec!["c"],
        "a/b/ holds only its own subtree"
    );
    assert_eq!(
        list(s, "sp/").await,
        vec!["a.", "a/", "a0", "ab"],
        "a/ vs ab"
    );
    cleanup(s, "sp/").await;
}

async fn list_top_level(s: &dyn Store) {
    for k in ["top", "t/x", "t/y/z", "u"] {
        s.put(k, vec![3]).await.unwrap();
    }
    assert_eq!(
        list(s, "").await,
        vec!["t/", "top", "u"],
        "empty prefix lists top level"
    );
    for k in ["top", "t/x", "t/y/z", "u"] {
        s.delete(k).await.unwrap();
    }
    assert!(list(s, "").await.is_empty(), "cleanup of top level");
}

async fn binary_values(s: &dyn Store) {
    let every_byte: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    s.put("cf/bin", every_byte.clone()).await.unwrap();
    assert_eq!(
        get(s, "cf/bin").await,
        Some(every_byte),
        "every byte value round-trips"
    );
    s.put("cf/nul", vec![0, 0, 0]).await.unwrap();
    assert_eq!(
        get(s, "cf/nul").await,
        Some(vec![0, 0, 0]),
        "NUL bytes round-trip"
    );
    cleanup(s, "cf/").await;
}

async fn empty_value(s: &dyn Store) {
    s.put("cf/empty", Vec::new()).await.unwrap();
    assert_eq!(
        get(s, "cf/empty").await,
        Some(Vec::new()),
        "an empty value is not a missing one"
    );
    assert_eq!(
        list(s, "cf/").await,
        vec!["empty"],
        "an empty value is listed"
    );
    cleanup(s, "cf/").await;
}

async fn large_value(s: &dyn Store) {
    let big: Vec<u8> = (0..(1usize << 20))
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    s.put("cf/big", big.clone()).await.unwrap();
    assert_eq!(
        get(s, "cf/big").await.as_deref(),
        Some(&big[..]),
        "1 MiB value"
    );
    cleanup(s, "cf/").await;
}

async fn unicode_keys(s: &dyn Store) {
    for k in ["cf/u/é", "cf/u/z", "cf/u/日本/x", "cf/u/\u{10FFFF}"] {
        s.put(k, k.as_bytes().to_vec()).await.unwrap();
    }
    assert_eq!(
        get(s, "cf/u/é").await,
        Some("cf/u/é".as_bytes().to_vec()),
        "unicode key"
    );
    assert_eq!(
        list(s, "cf/u/").await,
        vec!["z", "é", "日本/", "\u{10FFFF}"],
        "unicode keys list in byte order"
    );
    cleanup(s, "cf/").await;
}

async fn concurrent_writers(store: Arc<dyn Store>) {
    const TASKS: usize = 32;
    const PER_TASK: usize = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..PER_TASK {
                let key = format!("cw/{t:02}/{i}");
                store.put(&key, key.as_bytes().to_vec()).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a writer task panicked");
    }
    let s = store.as_ref();
    let dirs = list(s, "cw/").await;
    assert_eq!(dirs.len(), TASKS, "every writer's directory is listed");
    for t in 0..TASKS {
        let names = list(s, &format!("cw/{t:02}/")).await;
        assert_eq!(names.len(), PER_TASK, "every write of writer {t} is listed");
        for i in 0..PER_TASK {
            let key = format!("cw/{t:02}/{i}");
            assert_eq!(
                get(s, &key).await,
                Some(key.as_bytes().to_vec()),
                "concurrent write"
            );
        }
    }
    cleanup(s, "cw/").await;
}

async fn concurrent_batches_stay_atomic(store: Arc<dyn Store>) {
    // Each batch writes the same generation to both keys; a reader must never see the two
    // keys from different batches once all writers are done, and each key must hold a
    // generation someone wrote.
    const TASKS: u8 = 16;
    let mut tasks = tokio::task::JoinSet::new();
    for g in 0..TASKS {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .apply(vec![
                    Op::Put("ab/x".into(), vec![g]),
                    Op::Put("ab/y".into(), vec![g]),
                ])
                .await
                .unwrap();
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a batch task panicked");
    }
    let s = store.as_ref();
    let x = get(s, "ab/x").await.expect("ab/x written");
    let y = get(s, "ab/y").await.expect("ab/y written");
    assert_eq!(x, y, "the last batch applied wins on both keys");
    assert!(x[0] < TASKS);
    cleanup(s, "ab/").await;
}

async fn get(s: &dyn Store, key: &str) -> Option<Vec<u8>> {
    s.get(key).await.unwrap()
}

async fn list(s: &dyn Store, prefix: &str) -> Vec<String> {
    s.list(prefix).await.unwrap()
}

/// Deletes everything under `prefix` (which ends in `/`) in one batch, and checks it is gone.
async fn cleanup(s: &dyn Store, prefix: &str) {
    let mut ops = Vec::new();
    let mut dirs = vec![prefix.to_owned()];
    while let Some(dir) = dirs.pop() {
        for name in list(s, &dir).await {
            let full = format!("{dir}{name}");
            if name.ends_with('/') {
                dirs.push(full);
            } else {
                ops.push(Op::Delete(full));
            }
        }
    }
    s.apply(ops).await.unwrap();
    assert!(list(s, prefix).await.is_empty(), "cleanup of {prefix}");
}
