//! The per-request ACL check for a token holding ten policies: the cost the pipeline adds to
//! every request (compare with `barrier` get, the floor of a KV read).

use coffer_core::policy::{Acl, Rules};
use coffer_sdk::Operation;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};
use std::hint::black_box;

fn ten_policies() -> Vec<Rules> {
    (0..10)
        .map(|i| {
            Rules::parse(&format!(
                r#"
                path "secret/data/team{i}/*" {{ capabilities = ["create", "read", "update"] }}
                path "secret/metadata/team{i}/*" {{ capabilities = ["list"] }}
                path "secret/data/team{i}/+/config" {{ capabilities = ["read"] }}
                path "transit/encrypt/key{i}" {{ capabilities = ["update"] }}
                path "sys/policy/team{i}" {{ capabilities = ["read"] }}
                "#
            ))
            .expect("valid policy")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rules = ten_policies();
    let acl = Acl::compile(&rules);
    let empty = Map::new();
    let Value::Object(body) = json!({"data": {"password": "x"}}) else {
        unreachable!()
    };
    c.bench_function("acl/read_glob_match", |b| {
        b.iter(|| {
            acl.allows_request(
                Operation::Read,
                black_box("secret/data/team7/app/db"),
                false,
                &empty,
                None,
            )
        })
    });
    c.bench_function("acl/write_with_body", |b| {
        b.iter(|| {
            acl.allows_request(
                Operation::Update,
                black_box("secret/data/team3/db"),
                false,
                &body,
                None,
            )
        })
    });
    c.bench_function("acl/denied_miss", |b| {
        b.iter(|| {
            acl.allows_request(
                Operation::Read,
                black_box("secret/data/other/db"),
                false,
                &empty,
                None,
            )
        })
    });
    c.bench_function("acl/compile_ten_policies", |b| {
        b.iter(|| Acl::compile(black_box(&rules)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
