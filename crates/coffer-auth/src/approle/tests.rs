use super::*;
use crate::testing::{login, req, MemStorage};
use serde_json::{json, Value};

fn backend() -> (AppRole, Clock) {
    let clock = Clock::manual(1_800_000_000);
    (AppRole::with_clock(clock.clone()), clock)
}

async fn ok(
    a: &AppRole,
    s: &MemStorage,
    op: Operation,
    path: &str,
    body: Value,
) -> Option<Response> {
    a.handle(req(op, path, body), s).await.unwrap()
}

async fn data(a: &AppRole, s: &MemStorage, op: Operation, path: &str, body: Value) -> Value {
    Value::Object(ok(a, s, op, path, body).await.unwrap().data.unwrap())
}

async fn role_id(a: &AppRole, s: &MemStorage, name: &str) -> String {
    data(
        a,
        s,
        Operation::Read,
        &format!("role/{name}/role-id"),
        json!({}),
    )
    .await["role_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn new_secret(a: &AppRole, s: &MemStorage, name: &str, body: Value) -> String {
    data(
        a,
        s,
        Operation::Update,
        &format!("role/{name}/secret-id"),
        body,
    )
    .await["secret_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn try_login(
    a: &AppRole,
    s: &MemStorage,
    rid: &str,
    sid: &str,
    addr: &str,
) -> Result<Option<Response>, Error> {
    a.handle(
        login("login", json!({"role_id": rid, "secret_id": sid}), addr),
        s,
    )
    .await
}

fn is_invalid(r: &Result<Option<Response>, Error>) -> bool {
    matches!(r, Err(Error::InvalidRequest(m)) if m == "invalid role or secret ID")
}

#[tokio::test]
async fn role_crud_matches_openbao_fields() {
    let (a, _) = backend();
    let s = MemStorage::default();
    ok(
        &a,
        &s,
        Operation::Update,
        "role/Web",
        json!({"token_policies": "p1", "secret_id_ttl": "10m", "secret_id_num_uses": 3}),
    )
    .await;
    let r = data(&a, &s, Operation::Read, "role/web", json!({})).await;
    assert_eq!(
        r,
        json!({"bind_secret_id": true, "local_secret_ids": false, "secret_id_bound_cidrs": null,
               "secret_id_num_uses": 3, "secret_id_ttl": 600, "token_bound_cidrs": [],
               "token_explicit_max_ttl": 0, "token_max_ttl": 0, "token_no_default_policy": false,
               "token_num_uses": 0, "token_period": 0, "token_policies": ["p1"],
               "token_strictly_bind_ip": false, "token_ttl": 0, "token_type": "default"})
    );
    assert_eq!(
        data(&a, &s, Operation::List, "role", json!({})).await["keys"],
        json!(["web"])
    );
    let rid = role_id(&a, &s, "web").await;
    assert_eq!(rid.len(), 36);
    let err = a
        .handle(
            req(
                Operation::Update,
                "role/open",
                json!({"bind_secret_id": false}),
            ),
            &s,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "at least one constraint should be enabled on the role"
    );
    // A custom role ID; another role may not take it.
    ok(
        &a,
        &s,
        Operation::Update,
        "role/web/role-id",
        json!({"role_id": "my-role"}),
    )
    .await;
    assert_eq!(role_id(&a, &s, "web").await, "my-role");
    let err = a
        .handle(
            req(
                Operation::Update,
                "role/other",
                json!({"role_id": "my-role"}),
            ),
            &s,
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "role_id already in use");
    // Role IDs are kept only as MACs in the index.
    assert!(!String::from_utf8_lossy(&s.keys().join(",").into_bytes()).contains("my-role"));

    new_secret(&a, &s, "web", json!({})).await;
    ok(&a, &s, Operation::Delete, "role/web", json!({})).await;
    assert!(ok(&a, &s, Operation::Read, "role/web", json!({}))
        .await
        .is_none());
    let keys = s.keys();
    assert!(
        keys.iter().all(|k| k == "salt"),
        "delete leaves nothing behind: {keys:?}"
    );
}

#[tokio::test]
async fn login_with_secret_id_returns_auth() {
    let (a, _) = backend();
    let s = MemStorage::default();
    ok(
        &a,
        &s,
        Operation::Update,
        "role/web",
        json!({"token_policies": "p1", "token_ttl": "1h"}),
    )
    .await;
    let rid = role_id(&a, &s, "web").await;
    let sid = new_secret(&a, &s, "web", json!({"metadata": "{\"env\":\"prod\"}"})).await;
    let resp = try_login(&a, &s, &rid, &sid, "127.0.0.1")
        .await
        .unwrap()
        .unwrap();
    let auth = resp.auth.unwrap();
    assert_eq!(auth.policies, ["p1"]);
    assert_eq!(auth.lease_duration, 3600);
    let meta = auth.metadata.unwrap();
    assert_eq!(meta["role_name"], "web");
    assert_eq!(meta["env"], "prod");
    assert_eq!(auth.alias.unwrap().name, rid);
    // Unlimited secret IDs log in again.
    assert!(try_login(&a, &s, &rid, &sid, "127.0.0.1").await.is_ok());
    assert!(is_invalid(
        &try_login(&a, &s, &rid, "wrong", "127.0.0.1").await
    ));
    assert!(is_invalid(
        &try_login(&a, &s, "bad-role", &sid, "127.0.0.1").await
    ));
    let missing = a
        .handle(login("login", json!({"role_id": rid}), "127.0.0.1"), &s)
        .await
        .unwrap_err();
    assert_eq!(missing.to_string(), "missing secret_id");
    // The secret ID is stored only as a MAC.
    assert!(!String::from_utf8_lossy(&s.dump()).contains(&sid));
}

#[tokio::test]
async fn hot_path_is_one_read_and_a_write_only_for_limited_uses() {
    let (a, _) = backend();
    let s = MemStorage::default();
    ok(&a, &s, Operation::Update, "role/web", json!({})).await;
    let rid = role_id(&a, &s, "web").await;
    let sid = new_secret(&a, &s, "web", json!({})).await;
    let limited = new_secret(&a, &s, "web", json!({"num_uses": 5})).await;
    try_login(&a, &s, &rid, &sid, "127.0.0.1").await.unwrap();
    s.take_counts();
    try_login(&a, &s, &rid, &sid, "127.0.0.1").await.unwrap();
    assert_eq!(s.take_counts(), (1, 0));
    try_login(&a, &s, &rid, &limited, "127.0.0.1")
        .await
        .unwrap();
    let (reads, writes) = s.take_counts();
    assert_eq!(writes, 1);
    assert!(reads <= 2, "{reads} reads");
    // A role change is seen by the next login (the cache is dropped).
    ok(
        &a,
        &s,
        Operation::Update,
        "role/web",
        json!({"token_policies": "changed"}),
    )
    .await;
    let auth = try_login(&a, &s, &rid, &sid, "127.0.0.1")
        .await
        .unwrap()
        .unwrap()
        .auth
        .unwrap();
    assert_eq!(auth.policies, ["changed"]);
}

#[tokio::test]
async fn num_uses_are_spent_durably_and_the_last_use_deletes_it() {
    let (a, _) = backend();
    let s = MemStorage::default();
    ok(&a, &s, Operation::Update, "role/web", json!({})).await;
    let rid = role_id(&a, &s, "web").await;
    let sid = new_secret(&a, &s, "web", json!({"num_uses": 2})).await;
    assert!(try_login(&a, &s, &rid, &sid, "127.0.0.1").await.is_ok());
    let left = data(
        &a,
        &s,
        Operation::Update,
        "role/web/secret-id/lookup",
        json!({"secret_id": sid}),
    )
    .await;
    assert_eq!(left["secret_id_num_uses"], json!(1));
    assert!(try_login(&a, &s, &rid, &sid, "127.0.0.1").await.is_ok());
    assert!(is_invalid(
        &try_login(&a, &s, &rid, &sid, "127.0.0.1").await
    ));
    assert!(ok(
        &a,
        &s,
        Operation::Update,
        "role/web/secret-id/lookup",
        json!({"secret_id": sid})
    )
    .await
    .is_none());
    assert!(ok(&a, &s, Operation::List, "role/web/secret-id", json!({}))
        .await
        .is_none());
}

#[tokio::test]
async fn expired_secret_ids_are_refused() {
    let (a, clock) = backend();
    let s = MemStorage::default();
    ok(
        &a,
        &s,
        Operation::Update,
        "role/web",
        json!({"secret_id_ttl": "10m"}),
    )
    .await;
    let rid = role_id(&a, &s, "web").await;
    let sid = new_secret(&a, &s, "web", json!({"ttl": "5m"})).await;
    let err = a
        .handle(
            req(
                Operation::Update,
                "role/web/secret-id",
                json!({"ttl": "50m"}),
            ),
            &s,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ttl cannot be longer than the role's secret_id_ttl"
    );
    let looked = data(
        &a,
        &s,
        Operation::Update,
        "role/web/secret-id/lookup",
        json!({"secret_id": sid}),
    )
    .await;
    assert_eq!(looked["secret_id_ttl"], json!(300));
    assert_eq!(looked["creation_time"], json!("2027-01-15T08:00:00Z"));
    assert_eq!(looked["expiration_time"], json!("2027-01-15T08:05:00Z"));
    clock.advance(299);
    assert!(try_login(&a, &s, &rid, &sid, "127.0.0.1").await.is_ok());
    clock.advance(1);
    assert!(is_invalid(
        &try_login(&a, &s, &rid, &sid, "127.0.0.1").await
    ));
}

#[tokio::test]
async fn cidr_bindings_refuse_other_addresses() {
    let (a, _) = backend();
    let s = MemStorage::default();
    ok(
        &a,
        &s,
        Operation::Update,
        "role/web",
        json!({"secret_id_bound_cidrs": "10.0.0.0/8"}),
    )
    .await;
    let rid = role_id(&a, &s, "web").await;
    let sid = new_secret(
        &a,
        &s,
        "web",
        json!({"cidr_list": "10.1.0.0/16", "token_bound_cidrs": "10.1.2.0/24"}),
    )
    .await;
    let err = try_login(&a, &s, &rid, &sid, "127.0.0.1")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "source address \"127.0.0.1\" unauthorized by CIDR restrictions on the role"
    );
    let err = try_login(&a, &s, &rid, &sid, "10.2.0.1").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "source address \"10.2.0.1\" unauthorized by CIDR restrictions on the secret ID"
    );
    let auth = try_login(&a, &s, &rid, &sid, "10.1.0.9")
        .await
        .unwrap()
        .unwrap()
        .auth
        .unwrap();
    assert_eq!(auth.bound_cidrs, ["10.1.2.0/24"]);
    let err = a
        .handle(
            req(
                Operation::Update,
                "role/web/secret-id",
                json!({"cidr_list": "127.0.0.1/32"}),
            ),
            &s,
        )
        .await
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("failed to verify subset relationship"));
    let err = a
        .handle(
            req(
                Operation::Update,
                "role/web/secret-id",
                json!({"cidr_list": "notcidr"}),
            ),
            &s,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to validate CIDR blocks: invalid CIDR address: notcidr"
    );
}

#[tokio::test]
async fn destroy_by_secret_id_and_by_accessor() {
    let (a, _) = backend();
    let s = MemStorage::default();
    ok(&a, &s, Operation::Update, "role/web", json!({})).await;
    let rid = role_id(&a, &s, "web").await;
    let one = new_secret(&a, &s, "web", json!({})).await;
    let two = data(
        &a,
        &s,
        Operation::Update,
        "role/web/custom-secret-id",
        json!({"secret_id": "custom-two"}),
    )
    .await;
    assert_eq!(two["secret_id"], json!("custom-two"));
    let err = a
        .handle(
            req(
                Operation::Update,
                "role/web/custom-secret-id",
                json!({"secret_id": "custom-two"}),
            ),
            &s,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to store secret_id: SecretID is already registered"
    );
    let keys = data(&a, &s, Operation::List, "role/web/secret-id", json!({})).await["keys"].clone();
    assert_eq!(keys.as_array().unwrap().len(), 2);

    ok(
        &a,
        &s,
        Operation::Update,
        "role/web/secret-id/destroy",
        json!({"secret_id": one}),
    )
    .await;
    assert!(is_invalid(
        &try_login(&a, &s, &rid, &one, "127.0.0.1").await
    ));
    // Destroying again is fine.
    ok(
        &a,
        &s,
        Operation::Update,
        "role/web/secret-id/destroy",
        json!({"secret_id": one}),
    )
    .await;

    let accessor = two["secret_id_accessor"].as_str().unwrap();
    let looked = data(
        &a,
        &s,
        Operation::Update,
        "role/web/secret-id-accessor/lookup",
        json!({"secret_id_accessor": accessor}),
    )
    .await;
    assert_eq!(looked["secret_id_accessor"], json!(accessor));
    assert!(try_login(&a, &s, &rid, "custom-two", "127.0.0.1")
        .await
        .is_ok());
    ok(
        &a,
        &s,
        Operation::Update,
        "role/web/secret-id-accessor/destroy",
        json!({"secret_id_accessor": accessor}),
    )
    .await;
    assert!(is_invalid(
        &try_login(&a, &s, &rid, "custom-two", "127.0.0.1").await
    ));
    let gone = ok(
        &a,
        &s,
        Operation::Update,
        "role/web/secret-id-accessor/lookup",
        json!({"secret_id_accessor": accessor}),
    )
    .await
    .unwrap();
    assert_eq!(gone.http_status, Some(404));
    let err = a
        .handle(
            req(
                Operation::Update,
                "role/web/secret-id-accessor/destroy",
                json!({"secret_id_accessor": accessor}),
            ),
            &s,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("failed to find accessor entry"));
}

#[tokio::test]
async fn role_without_secret_id_binding_logs_in_by_cidr() {
    let (a, _) = backend();
    let s = MemStorage::default();
    ok(
        &a,
        &s,
        Operation::Update,
        "role/svc",
        json!({"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.1/32"}),
    )
    .await;
    let rid = role_id(&a, &s, "svc").await;
    let resp = a
        .handle(login("login", json!({"role_id": rid}), "127.0.0.1"), &s)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.auth.unwrap().metadata.unwrap()["role_name"], "svc");
    assert!(a
        .handle(login("login", json!({"role_id": rid}), "10.0.0.1"), &s)
        .await
        .is_err());
}

#[tokio::test]
async fn repeated_bad_secret_ids_lock_the_role_id() {
    let (a, clock) = backend();
    let s = MemStorage::default();
    ok(&a, &s, Operation::Update, "role/web", json!({})).await;
    let rid = role_id(&a, &s, "web").await;
    let sid = new_secret(&a, &s, "web", json!({})).await;
    for _ in 0..4 {
        assert!(is_invalid(
            &try_login(&a, &s, &rid, "guess", "127.0.0.1").await
        ));
    }
    assert!(matches!(
        try_login(&a, &s, &rid, "guess", "127.0.0.1").await,
        Err(Error::PermissionDenied)
    ));
    assert!(matches!(
        try_login(&a, &s, &rid, &sid, "127.0.0.1").await,
        Err(Error::PermissionDenied)
    ));
    clock.advance(15 * 60);
    assert!(try_login(&a, &s, &rid, &sid, "127.0.0.1").await.is_ok());
}
