//! Leases through the request pipeline: a test engine issues leased credentials and records
//! what it is asked to revoke and renew; `Core::handle` registers, renews and revokes them,
//! `sys/leases/*` answers as OpenBao, and the background revoker takes up expired leases and the
//! leases of revoked tokens.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use coffer_core::{Core, CoreConfig};
use coffer_sdk::{Backend, BackendKind, Error, Lease, Operation, Request, Response, Storage};
use coffer_storage::InMem;
use serde_json::{json, Map, Value};

/// `creds/<user>` issues a lease for `<user>` (`ttl`, `renewable` from the request);
/// `revoked` and `renewed` tell what the mount was asked; `fail` makes revocation fail.
struct Leasing;

#[async_trait]
impl Backend for Leasing {
    fn kind(&self) -> BackendKind {
        BackendKind::Secrets
    }

    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        if let Some(user) = req.path.strip_prefix("creds/") {
            let ttl = req.data.get("ttl").and_then(Value::as_u64).unwrap_or(0);
            let renewable = req.data.get("renewable") == Some(&json!(true));
            let mut internal = Map::new();
            internal.insert("user".into(), json!(user));
            return Ok(Some(Response {
                data: Some(object(json!({"username": user, "password": "pw"}))),
                lease: Some(Lease {
                    ttl,
                    renewable,
                    internal_data: internal,
                    ..Lease::default()
                }),
                ..Response::default()
            }));
        }
        match req.path.as_str() {
            "revoked" | "renewed" => {
                let users = storage.list(&format!("{}/", req.path)).await?;
                Ok(Some(Response::with_data(object(json!({ "users": users })))))
            }
            "fail" => {
                storage.put("fail", vec![1]).await?;
                Ok(None)
            }
            _ => Err(Error::UnsupportedPath(req.path)),
        }
    }

    async fn renew(&self, lease: &Lease, storage: &dyn Storage) -> Result<Response, Error> {
        storage
            .put(&format!("renewed/{}", user_of(lease)?), Vec::new())
            .await?;
        Ok(Response {
            lease: Some(Lease {
                ttl: 60,
                renewable: true,
                ..Lease::default()
            }),
            ..Response::default()
        })
    }

    async fn revoke(&self, lease: &Lease, storage: &dyn Storage) -> Result<(), Error> {
        if storage.get("fail").await?.is_some() {
            return Err(Error::Unavailable("upstream down".into()));
        }
        storage
            .put(&format!("revoked/{}", user_of(lease)?), Vec::new())
            .await
    }
}

fn user_of(lease: &Lease) -> Result<&str, Error> {
    lease
        .internal_data
        .get("user")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("no user in the lease"))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

async fn core_with_leasing() -> (Arc<Core>, String) {
    let leasing: coffer_sdk::Factory =
        Arc::new(|_: &coffer_sdk::BackendConfig| Ok(Arc::new(Leasing) as Arc<dyn Backend>));
    let factories = HashMap::from([
        ("kv".to_owned(), coffer_engines::kv_factory()),
        ("cubbyhole".to_owned(), coffer_engines::cubbyhole_factory()),
        ("leasing".to_owned(), leasing),
    ]);
    let core = Core::new(Arc::new(InMem::new()), CoreConfig::default(), factories);
    core.dev_init(Some("root".into())).await.unwrap();
    call(
        &core,
        "root",
        Operation::Update,
        "sys/mounts/db",
        json!({"type": "leasing"}),
    )
    .await
    .unwrap();
    (core, "root".to_owned())
}

async fn call(
    core: &Core,
    token: &str,
    op: Operation,
    path: &str,
    body: Value,
) -> Result<Option<Response>, Error> {
    core.handle(Request::new(op, path).with_data(object(body)), Some(token))
        .await
}

/// Issues credentials for `user`; returns the lease as the client sees it.
async fn issue(core: &Core, token: &str, user: &str, body: Value) -> Lease {
    call(
        core,
        token,
        Operation::Read,
        &format!("db/creds/{user}"),
        body,
    )
    .await
    .unwrap()
    .unwrap()
    .lease
    .unwrap()
}

async fn users(core: &Core, what: &str) -> Vec<String> {
    let resp = call(
        core,
        "root",
        Operation::Read,
        &format!("db/{what}"),
        json!({}),
    )
    .await
    .unwrap()
    .unwrap();
    serde_json::from_value(resp.data.unwrap()["users"].clone()).unwrap()
}

async fn lookup(core: &Core, token: &str, lease_id: &str) -> Result<Option<Response>, Error> {
    call(
        core,
        token,
        Operation::Update,
        "sys/leases/lookup",
        json!({ "lease_id": lease_id }),
    )
    .await
}

async fn create_token(core: &Core, policies: Value) -> String {
    call(
        core,
        "root",
        Operation::Update,
        "auth/token/create",
        json!({ "policies": policies }),
    )
    .await
    .unwrap()
    .unwrap()
    .auth
    .unwrap()
    .client_token
}

/// Polls `check` until it holds: the revoker works in the background. Bounded at 15 s, far
/// beyond the second or so it needs.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..150 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

fn invalid(result: Result<Option<Response>, Error>) -> String {
    match result {
        Err(Error::InvalidRequest(m)) => m,
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[tokio::test]
async fn a_leased_secret_is_registered_looked_up_and_revoked_through_its_mount() {
    let (core, root) = core_with_leasing().await;
    let lease = issue(&core, &root, "alice", json!({"ttl": 3600})).await;
    assert!(
        lease.lease_id.starts_with("db/creds/alice/"),
        "{}",
        lease.lease_id
    );
    assert_eq!((lease.ttl, lease.renewable), (3600, false));
    assert!(lease.internal_data.is_empty());

    let data = lookup(&core, &root, &lease.lease_id)
        .await
        .unwrap()
        .unwrap()
        .data
        .unwrap();
    assert_eq!(data["id"], json!(lease.lease_id));
    assert_eq!(data["path"], json!("db/creds/alice"));
    assert_eq!(data["renewable"], json!(false));
    assert_eq!(data["last_renewal"], Value::Null);
    assert!(data["issue_time"].as_str().unwrap().ends_with('Z'));
    assert!(data["expire_time"].as_str().unwrap().ends_with('Z'));
    assert!((3590..=3600).contains(&data["ttl"].as_u64().unwrap()));

    let listed = call(
        &core,
        &root,
        Operation::List,
        "sys/leases/lookup/db/creds/",
        json!({}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(listed.data.unwrap()["keys"], json!(["alice/"]));

    // Revoke by the id in the URL: 204, the mount revoked alice, the lease is gone.
    let revoked = call(
        &core,
        &root,
        Operation::Update,
        &format!("sys/leases/revoke/{}", lease.lease_id),
        json!({}),
    )
    .await
    .unwrap();
    assert!(revoked.is_none());
    assert_eq!(users(&core, "revoked").await, ["alice"]);
    assert_eq!(
        invalid(lookup(&core, &root, &lease.lease_id).await),
        "invalid lease"
    );
    // Revoking it again is a no-op, as OpenBao.
    call(
        &core,
        &root,
        Operation::Update,
        "sys/leases/revoke",
        json!({ "lease_id": lease.lease_id }),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn lease_requests_are_checked_as_openbao_checks_them() {
    let (core, root) = core_with_leasing().await;
    let no_id = call(
        &core,
        &root,
        Operation::Update,
        "sys/leases/lookup",
        json!({}),
    )
    .await;
    assert_eq!(invalid(no_id), "lease_id must be specified");
    let number = call(
        &core,
        &root,
        Operation::Update,
        "sys/leases/lookup",
        json!({"lease_id": 5}),
    )
    .await;
    assert_eq!(invalid(number), "invalid lease ID");
    let unknown = call(
        &core,
        &root,
        Operation::Update,
        "sys/leases/renew",
        json!({"lease_id": "db/creds/x/nope"}),
    )
    .await;
    assert_eq!(invalid(unknown), "lease not found");
    let slash = call(
        &core,
        &root,
        Operation::Update,
        "sys/leases/revoke-prefix/",
        json!({}),
    )
    .await;
    assert_eq!(invalid(slash), "cannot write to a path ending in '/'");
    let lease = issue(&core, &root, "bob", json!({"ttl": 60, "renewable": true})).await;
    let negative = call(
        &core,
        &root,
        Operation::Update,
        "sys/leases/renew",
        json!({"lease_id": lease.lease_id, "increment": -5}),
    )
    .await;
    assert_eq!(
        invalid(negative),
        "Field validation failed: error converting input for field \"increment\": cannot provide negative value '-5'"
    );
    let read = call(
        &core,
        &root,
        Operation::Read,
        "sys/leases/lookup",
        json!({}),
    )
    .await;
    assert!(matches!(read, Err(Error::UnsupportedOperation)));
    let empty = call(
        &core,
        &root,
        Operation::List,
        "sys/leases/lookup/nothing/",
        json!({}),
    )
    .await;
    assert!(matches!(empty, Ok(None)));
    let tidy = call(
        &core,
        &root,
        Operation::Update,
        "sys/leases/tidy",
        json!({}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(tidy.http_status, Some(202));
    assert_eq!(tidy.warnings.len(), 1);
    let count = call(
        &core,
        &root,
        Operation::Read,
        "sys/leases/count",
        json!({"type": "irrevocable"}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        count.data.unwrap(),
        object(json!({"counts": {}, "lease_count": 0}))
    );
}

#[tokio::test]
async fn renewal_extends_a_renewable_lease_and_refuses_a_fixed_one() {
    let (core, root) = core_with_leasing().await;
    let lease = issue(&core, &root, "carol", json!({"ttl": 30, "renewable": true})).await;
    let renewed = call(
        &core,
        &root,
        Operation::Update,
        &format!("sys/leases/renew/{}", lease.lease_id),
        json!({"increment": "10m"}),
    )
    .await
    .unwrap()
    .unwrap();
    let renewed_lease = renewed.lease.unwrap();
    assert_eq!(renewed_lease.lease_id, lease.lease_id);
    assert_eq!((renewed_lease.ttl, renewed_lease.renewable), (600, true));
    assert_eq!(users(&core, "renewed").await, ["carol"]);
    let data = lookup(&core, &root, &lease.lease_id)
        .await
        .unwrap()
        .unwrap()
        .data
        .unwrap();
    assert!(data["last_renewal"].is_string());
    assert!(data["ttl"].as_u64().unwrap() > 500);

    let fixed = issue(&core, &root, "dave", json!({"ttl": 30})).await;
    let refused = call(
        &core,
        &root,
        Operation::Update,
        "sys/leases/renew",
        json!({ "lease_id": fixed.lease_id }),
    )
    .await;
    assert_eq!(invalid(refused), "lease is not renewable");
}

#[tokio::test]
async fn the_default_policy_looks_up_and_renews_but_revoking_and_listing_need_more() {
    let (core, root) = core_with_leasing().await;
    let lease = issue(&core, &root, "erin", json!({"ttl": 60, "renewable": true})).await;
    let user = create_token(&core, json!(["default"])).await;
    assert!(lookup(&core, &user, &lease.lease_id)
        .await
        .unwrap()
        .is_some());
    call(
        &core,
        &user,
        Operation::Update,
        "sys/leases/renew",
        json!({ "lease_id": lease.lease_id }),
    )
    .await
    .unwrap();
    let revoke = call(
        &core,
        &user,
        Operation::Update,
        "sys/leases/revoke",
        json!({ "lease_id": lease.lease_id }),
    )
    .await;
    assert!(matches!(revoke, Err(Error::Forbidden(_))));

    // Everything under sys/leases, but no sudo: listing and revoking by prefix are refused.
    call(
        &core,
        &root,
        Operation::Update,
        "sys/policy/leases",
        json!({"policy": r#"path "sys/leases/*" { capabilities = ["create", "read", "update", "list"] }"#}),
    )
    .await
    .unwrap();
    let admin = create_token(&core, json!(["leases"])).await;
    for (op, path) in [
        (Operation::List, "sys/leases/lookup/db/"),
        (Operation::List, "sys/leases/lookup"),
        (Operation::Update, "sys/leases/revoke-prefix/db"),
        (Operation::Update, "sys/leases/revoke-force/db"),
    ] {
        let refused = call(&core, &admin, op, path, json!({})).await;
        assert!(
            matches!(refused, Err(Error::Forbidden(_))),
            "{path}: {refused:?}"
        );
    }
    assert!(lookup(&core, &root, &lease.lease_id)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn revoke_prefix_revokes_under_a_path_segment() {
    let (core, root) = core_with_leasing().await;
    let a = issue(&core, &root, "ann", json!({"ttl": 600})).await;
    let b = issue(&core, &root, "annex", json!({"ttl": 600})).await;
    call(
        &core,
        &root,
        Operation::Update,
        "sys/leases/revoke-prefix/db/creds/ann",
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(users(&core, "revoked").await, ["ann"]);
    assert_eq!(
        invalid(lookup(&core, &root, &a.lease_id).await),
        "invalid lease"
    );
    assert!(lookup(&core, &root, &b.lease_id).await.unwrap().is_some());

    // Handed to the revoker: 202 now, revoked shortly after.
    let lazy = call(
        &core,
        &root,
        Operation::Update,
        "sys/leases/revoke-prefix/db",
        json!({"sync": false}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(lazy.http_status, Some(202));
    eventually("annex revoked", || async {
        users(&core, "revoked").await.len() == 2
    })
    .await;
}

#[tokio::test]
async fn a_failing_mount_keeps_its_lease_until_revoke_force() {
    let (core, root) = core_with_leasing().await;
    let lease = issue(&core, &root, "frank", json!({"ttl": 600})).await;
    call(&core, &root, Operation::Update, "db/fail", json!({}))
        .await
        .unwrap();
    let refused = call(
        &core,
        &root,
        Operation::Update,
        "sys/leases/revoke",
        json!({ "lease_id": lease.lease_id }),
    )
    .await;
    assert!(matches!(refused, Err(Error::Unavailable(_))), "{refused:?}");
    assert!(lookup(&core, &root, &lease.lease_id)
        .await
        .unwrap()
        .is_some());
    // Unmounting revokes the mount's leases first, so it fails too.
    let unmount = call(&core, &root, Operation::Delete, "sys/mounts/db", json!({})).await;
    assert!(unmount.is_err());
    call(
        &core,
        &root,
        Operation::Update,
        "sys/leases/revoke-force/db/creds",
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(
        invalid(lookup(&core, &root, &lease.lease_id).await),
        "invalid lease"
    );
    call(&core, &root, Operation::Delete, "sys/mounts/db", json!({}))
        .await
        .unwrap();
}

#[tokio::test]
async fn disabling_a_mount_revokes_its_leases() {
    let (core, root) = core_with_leasing().await;
    let lease = issue(&core, &root, "gina", json!({"ttl": 600})).await;
    call(&core, &root, Operation::Delete, "sys/mounts/db", json!({}))
        .await
        .unwrap();
    assert_eq!(
        invalid(lookup(&core, &root, &lease.lease_id).await),
        "invalid lease"
    );
}

#[tokio::test]
async fn revoking_a_token_revokes_the_leases_it_created() {
    let (core, root) = core_with_leasing().await;
    let token = create_token(&core, json!(["root"])).await;
    let child = call(
        &core,
        &token,
        Operation::Update,
        "auth/token/create",
        json!({}),
    )
    .await
    .unwrap()
    .unwrap()
    .auth
    .unwrap()
    .client_token;
    let mine = issue(&core, &token, "hal", json!({"ttl": 3600})).await;
    let childs = issue(&core, &child, "ivy", json!({"ttl": 3600})).await;
    let roots = issue(&core, &root, "joe", json!({"ttl": 3600})).await;
    call(
        &core,
        &root,
        Operation::Update,
        "auth/token/revoke",
        json!({ "token": token }),
    )
    .await
    .unwrap();
    eventually("the token's and its child's leases revoked", || async {
        users(&core, "revoked").await == ["hal", "ivy"]
    })
    .await;
    for gone in [&mine, &childs] {
        assert_eq!(
            invalid(lookup(&core, &root, &gone.lease_id).await),
            "invalid lease"
        );
    }
    assert!(lookup(&core, &root, &roots.lease_id)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn an_expired_lease_is_revoked_without_being_asked() {
    let (core, root) = core_with_leasing().await;
    let lease = issue(&core, &root, "kim", json!({"ttl": 1})).await;
    assert_eq!(lease.ttl, 1);
    eventually("kim revoked at expiry", || async {
        users(&core, "revoked").await == ["kim"]
    })
    .await;
    assert_eq!(
        invalid(lookup(&core, &root, &lease.lease_id).await),
        "invalid lease"
    );
}

#[tokio::test]
async fn a_ttl_beyond_the_mounts_max_is_capped() {
    let (core, root) = core_with_leasing().await;
    call(
        &core,
        &root,
        Operation::Update,
        "sys/mounts/db/tune",
        json!({"max_lease_ttl": "1h"}),
    )
    .await
    .unwrap();
    let resp = call(
        &core,
        &root,
        Operation::Read,
        "db/creds/lou",
        json!({"ttl": 7200}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.lease.unwrap().ttl, 3600);
    assert_eq!(
        resp.warnings,
        [r#"TTL of "2h" exceeded the effective max_ttl of "1h"; TTL value is capped accordingly"#]
    );
}

#[tokio::test]
async fn kv_ttls_are_hints_not_leases() {
    let (core, root) = core_with_leasing().await;
    call(
        &core,
        &root,
        Operation::Update,
        "sys/mounts/kv1",
        json!({"type": "kv"}),
    )
    .await
    .unwrap();
    call(
        &core,
        &root,
        Operation::Update,
        "kv1/a",
        json!({"x": "1", "ttl": "1h"}),
    )
    .await
    .unwrap();
    let read = call(&core, &root, Operation::Read, "kv1/a", json!({}))
        .await
        .unwrap()
        .unwrap();
    let lease = read.lease.unwrap();
    assert_eq!((lease.lease_id.as_str(), lease.ttl), ("", 3600));
    let listed = call(
        &core,
        &root,
        Operation::List,
        "sys/leases/lookup/",
        json!({}),
    )
    .await;
    assert!(matches!(listed, Ok(None)), "{listed:?}");
}

#[tokio::test]
async fn a_wrapped_leased_secret_keeps_its_registered_lease() {
    let (core, root) = core_with_leasing().await;
    let mut req =
        Request::new(Operation::Read, "db/creds/max").with_data(object(json!({"ttl": 600})));
    req.wrap_ttl = Some(60);
    let wrapped = core.handle(req, Some(&root)).await.unwrap().unwrap();
    let token = wrapped.wrap_info.unwrap().token;
    let unwrapped = call(
        &core,
        &token,
        Operation::Update,
        "sys/wrapping/unwrap",
        json!({}),
    )
    .await
    .unwrap()
    .unwrap();
    let lease = unwrapped.lease.unwrap();
    assert!(lease.lease_id.starts_with("db/creds/max/"));
    assert!(lookup(&core, &root, &lease.lease_id)
        .await
        .unwrap()
        .is_some());
}

/// A token of `ttl` from `auth/token/create`: `(token, accessor)`.
async fn create_token_with_ttl(core: &Core, ttl: &str) -> (String, String) {
    let auth = call(
        core,
        "root",
        Operation::Update,
        "auth/token/create",
        json!({ "policies": ["root"], "ttl": ttl }),
    )
    .await
    .unwrap()
    .unwrap()
    .auth
    .unwrap();
    (auth.client_token, auth.accessor)
}

#[tokio::test]
async fn an_expired_token_nobody_uses_is_revoked_with_its_leases() {
    let (core, root) = core_with_leasing().await;
    let (token, accessor) = create_token_with_ttl(&core, "2s").await;
    let lease = issue(&core, &token, "lee", json!({"ttl": 3600})).await;
    // Nothing touches the token again: only the revoker can revoke its lease (the lease itself
    // has an hour left).
    eventually("the expired token's lease revoked", || async {
        users(&core, "revoked").await == ["lee"]
    })
    .await;
    assert_eq!(
        invalid(lookup(&core, &root, &lease.lease_id).await),
        "invalid lease"
    );
    let gone = call(
        &core,
        &root,
        Operation::Update,
        "auth/token/lookup-accessor",
        json!({ "accessor": accessor }),
    )
    .await;
    assert_eq!(invalid(gone), "invalid accessor");
}

#[tokio::test]
async fn a_renewed_token_outlives_its_original_expiry() {
    let (core, _) = core_with_leasing().await;
    let (kept, _) = create_token_with_ttl(&core, "2s").await;
    let (expiring, _) = create_token_with_ttl(&core, "3s").await;
    call(
        &core,
        &kept,
        Operation::Update,
        "auth/token/renew-self",
        json!({"increment": "1h"}),
    )
    .await
    .unwrap();
    issue(&core, &kept, "kai", json!({"ttl": 3600})).await;
    issue(&core, &expiring, "exa", json!({"ttl": 3600})).await;
    // The other token expires after the renewed one's original time: once its lease is
    // revoked, that time has passed too.
    eventually("the unrenewed token's lease revoked", || async {
        users(&core, "revoked").await == ["exa"]
    })
    .await;
    let me = call(
        &core,
        &kept,
        Operation::Read,
        "auth/token/lookup-self",
        json!({}),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(me.data.unwrap()["ttl"].as_u64().unwrap() > 3000);
}
