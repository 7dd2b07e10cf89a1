//! End-to-end tests of the pki backend over in-memory storage.

use super::*;
use crate::testing::{req, MemStorage};
use serde_json::json;

async fn call(
    pki: &Pki,
    s: &MemStorage,
    op: Operation,
    path: &str,
    body: Value,
) -> Result<Option<Response>, Error> {
    pki.handle(req(op, path, body), s).await
}

#[tokio::test]
async fn root_role_issue_smoke() {
    let pki = Pki::new();
    let s = MemStorage::default();
    let root = call(
        &pki,
        &s,
        Operation::Update,
        "root/generate/internal",
        json!({"common_name": "example.com", "key_type": "ec"}),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(root.data.unwrap()["certificate"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
}
