//! The request pipeline in process: tokens, policies, wrapping and the seal, through
//! `Core::handle` on an in-memory store with the real kv and cubbyhole engines.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use coffer_core::{Core, CoreConfig};
use coffer_sdk::{
    Alias, Auth, Backend, BackendKind, Error, Operation, Request, Response, SpecialPaths, Storage,
};
use coffer_storage::InMem;
use serde_json::{json, Value};

/// An auth method for tests: `login/<name>` logs anyone in as `<name>` with no policies.
struct TrustingAuth;

#[async_trait]
impl Backend for TrustingAuth {
    fn kind(&self) -> BackendKind {
        BackendKind::Auth
    }

    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths {
            unauthenticated: vec!["login/*".into()],
            root: Vec::new(),
        }
    }

    async fn periodic(&self, storage: &dyn Storage) -> Result<(), Error> {
        let runs = storage.get("periodic-runs").await?.map_or(0, |b| b[0]);
        storage.put("periodic-runs", vec![runs + 1]).await
    }

    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        if req.path == "runs" {
            let runs = storage.get("periodic-runs").await?.map_or(0, |b| b[0]);
            return Ok(Some(Response::with_data(
                [("runs".to_owned(), json!(runs))].into_iter().collect(),
            )));
        }
        let name = req
            .path
            .strip_prefix("login/")
            .ok_or(Error::UnsupportedOperation)?;
        Ok(Some(Response {
            auth: Some(Auth {
                display_name: name.to_owned(),
                renewable: true,
                alias: Some(Alias {
                    name: name.to_owned(),
                    metadata: Default::default(),
                }),
                ..Auth::default()
            }),
            ..Response::default()
        }))
    }
}

async fn dev_core() -> (Arc<Core>, String) {
    let trusting: coffer_sdk::Factory =
        Arc::new(|_: &coffer_sdk::BackendConfig| Ok(Arc::new(TrustingAuth) as Arc<dyn Backend>));
    let factories = HashMap::from([
        ("kv".to_owned(), coffer_engines::kv_factory()),
        ("cubbyhole".to_owned(), coffer_engines::cubbyhole_factory()),
        ("trusting".to_owned(), trusting),
    ]);
    let core = Core::new(Arc::new(InMem::new()), CoreConfig::default(), factories);
    core.dev_init(Some("root".into())).await.unwrap();
    (core, "root".to_owned())
}

fn req(op: Operation, path: &str, body: Value) -> Request {
    let Value::Object(map) = body else {
        panic!("body must be an object")
    };
    Request::new(op, path).with_data(map)
}

async fn call(
    core: &Core,
    token: &str,
    op: Operation,
    path: &str,
    body: Value,
) -> Result<Option<Response>, Error> {
    core.handle(req(op, path, body), Some(token)).await
}

async fn create_token(core: &Core, parent: &str, body: Value) -> String {
    let resp = call(core, parent, Operation::Update, "auth/token/create", body)
        .await
        .unwrap()
        .unwrap();
    resp.auth.unwrap().client_token
}

#[tokio::test]
async fn revoking_a_parent_revokes_its_children() {
    let (core, root) = dev_core().await;
    let parent = create_token(&core, &root, json!({"policies": ["root"]})).await;
    let child = create_token(&core, &parent, json!({})).await;
    let grandchild = create_token(&core, &child, json!({})).await;
    call(
        &core,
        &root,
        Operation::Update,
        "auth/token/revoke",
        json!({"token": parent}),
    )
    .await
    .unwrap();
    for token in [&parent, &child, &grandchild] {
        let denied = call(
            &core,
            token,
            Operation::Read,
            "auth/token/lookup-self",
            json!({}),
        )
        .await;
        assert!(matches!(
            denied,
            Err(Error::PermissionDenied | Error::Forbidden(_))
        ));
    }
}

#[tokio::test]
async fn policies_limit_a_token_to_its_paths() {
    let (core, root) = dev_core().await;
    call(
        &core,
        &root,
        Operation::Update,
        "secret/data/app/db",
        json!({"data": {"pw": "x"}}),
    )
    .await
    .unwrap();
    call(
        &core,
        &root,
        Operation::Update,
        "secret/data/other",
        json!({"data": {"pw": "y"}}),
    )
    .await
    .unwrap();
    let policy = r#"
        path "secret/data/app/*" { capabilities = ["read"] }
        path "auth/token/create" { capabilities = ["update"] }
    "#;
    call(
        &core,
        &root,
        Operation::Update,
        "sys/policy/app",
        json!({"policy": policy}),
    )
    .await
    .unwrap();
    let token = create_token(&core, &root, json!({"policies": ["app"]})).await;

    let read = call(
        &core,
        &token,
        Operation::Read,
        "secret/data/app/db",
        json!({}),
    )
    .await;
    assert_eq!(read.unwrap().unwrap().data.unwrap()["data"]["pw"], "x");
    for (op, path) in [
        (Operation::Read, "secret/data/other"),
        (Operation::Update, "secret/data/app/db"),
        (Operation::List, "secret/metadata/"),
        (Operation::Read, "sys/mounts"),
        (Operation::Update, "sys/rotate"),
    ] {
        let denied = call(&core, &token, op, path, json!({"data": {"pw": "z"}})).await;
        assert!(
            matches!(denied, Err(Error::PermissionDenied | Error::Forbidden(_))),
            "{op:?} {path}"
        );
    }
    // A child cannot get a policy its parent lacks.
    let escalate = call(
        &core,
        &token,
        Operation::Update,
        "auth/token/create",
        json!({"policies": ["root"]}),
    )
    .await;
    assert!(matches!(escalate, Err(Error::InvalidRequest(_))));
    let unchanged = call(
        &core,
        &root,
        Operation::Read,
        "secret/data/app/db",
        json!({}),
    )
    .await;
    assert_eq!(unchanged.unwrap().unwrap().data.unwrap()["data"]["pw"], "x");
}

#[tokio::test]
async fn a_limited_use_token_is_exhausted() {
    let (core, root) = dev_core().await;
    let token = create_token(&core, &root, json!({"num_uses": 2})).await;
    for _ in 0..2 {
        call(
            &core,
            &token,
            Operation::Read,
            "auth/token/lookup-self",
            json!({}),
        )
        .await
        .unwrap();
    }
    let third = call(
        &core,
        &token,
        Operation::Read,
        "auth/token/lookup-self",
        json!({}),
    )
    .await;
    assert!(matches!(
        third,
        Err(Error::PermissionDenied | Error::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_cidr_bound_token_is_refused_elsewhere() {
    let (core, root) = dev_core().await;
    let token = create_token(&core, &root, json!({"bound_cidrs": ["10.1.0.0/16"]})).await;
    let mut inside = req(Operation::Read, "auth/token/lookup-self", json!({}));
    inside.remote_addr = Some("10.1.2.3".into());
    assert!(core.handle(inside, Some(&token)).await.is_ok());
    let mut outside = req(Operation::Read, "auth/token/lookup-self", json!({}));
    outside.remote_addr = Some("192.0.2.7".into());
    assert!(matches!(
        core.handle(outside, Some(&token)).await,
        Err(Error::PermissionDenied)
    ));
}

#[tokio::test]
async fn a_wrapped_secret_unwraps_once() {
    let (core, root) = dev_core().await;
    call(
        &core,
        &root,
        Operation::Update,
        "secret/data/w",
        json!({"data": {"k": "v"}}),
    )
    .await
    .unwrap();
    let mut read = req(Operation::Read, "secret/data/w", json!({}));
    read.wrap_ttl = Some(60);
    let wrapped = core.handle(read, Some(&root)).await.unwrap().unwrap();
    assert!(wrapped.data.is_none(), "a wrapped response carries no data");
    let info = wrapped.wrap_info.unwrap();
    assert_eq!(
        (info.ttl, info.creation_path.as_str()),
        (60, "secret/data/w")
    );

    // The wrapping token cannot be used as an ordinary token.
    let misuse = call(
        &core,
        &info.token,
        Operation::Read,
        "secret/data/w",
        json!({}),
    )
    .await;
    assert!(matches!(
        misuse,
        Err(Error::PermissionDenied | Error::Forbidden(_))
    ));

    let unwrapped = call(
        &core,
        &info.token,
        Operation::Update,
        "sys/wrapping/unwrap",
        json!({}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(unwrapped.data.unwrap()["data"]["k"], "v");
    let again = call(
        &core,
        &root,
        Operation::Update,
        "sys/wrapping/unwrap",
        json!({"token": info.token}),
    )
    .await;
    assert!(matches!(again, Err(Error::InvalidRequest(m)) if m.contains("not valid")));
}

#[tokio::test]
async fn sealed_core_refuses_everything_and_unseals_with_its_key() {
    let factories = HashMap::from([
        ("kv".to_owned(), coffer_engines::kv_factory()),
        ("cubbyhole".to_owned(), coffer_engines::cubbyhole_factory()),
    ]);
    let core = Core::new(Arc::new(InMem::new()), CoreConfig::default(), factories);
    let init = core
        .init(coffer_core::seal::SealConfig {
            secret_shares: 3,
            secret_threshold: 2,
        })
        .await
        .unwrap();
    let root = secrecy::ExposeSecret::expose_secret(&init.root_token).to_owned();
    assert!(matches!(
        call(&core, &root, Operation::Read, "sys/mounts", json!({})).await,
        Err(Error::Sealed)
    ));
    for share in init.shares.iter().rev().take(2) {
        core.unseal(secrecy::ExposeSecret::expose_secret(share))
            .await
            .unwrap();
    }
    assert!(call(&core, &root, Operation::Read, "sys/mounts", json!({}))
        .await
        .is_ok());
    core.seal(Some(&root)).await.unwrap();
    assert!(matches!(
        call(&core, &root, Operation::Read, "sys/mounts", json!({})).await,
        Err(Error::Sealed)
    ));
}

#[tokio::test]
async fn group_policies_apply_to_member_entities_from_their_next_request() {
    let (core, root) = dev_core().await;
    call(
        &core,
        &root,
        Operation::Update,
        "sys/auth/trust",
        json!({"type": "trusting"}),
    )
    .await
    .unwrap();
    call(
        &core,
        &root,
        Operation::Update,
        "secret/data/team/x",
        json!({"data": {"v": 1}}),
    )
    .await
    .unwrap();
    let policy = r#"path "secret/data/team/*" { capabilities = ["read"] }"#;
    call(
        &core,
        &root,
        Operation::Update,
        "sys/policy/team",
        json!({"policy": policy}),
    )
    .await
    .unwrap();

    let login = core
        .handle(
            Request::new(Operation::Update, "auth/trust/login/alice"),
            None,
        )
        .await
        .unwrap()
        .unwrap()
        .auth
        .unwrap();
    assert!(!login.entity_id.is_empty(), "a login maps to an entity");
    assert_eq!(login.policies, vec!["default"]);
    let token = login.client_token;
    let denied = call(
        &core,
        &token,
        Operation::Read,
        "secret/data/team/x",
        json!({}),
    )
    .await;
    assert!(matches!(
        denied,
        Err(Error::PermissionDenied | Error::Forbidden(_))
    ));

    // The same alias logs in as the same entity.
    let again = core
        .handle(
            Request::new(Operation::Update, "auth/trust/login/alice"),
            None,
        )
        .await
        .unwrap()
        .unwrap()
        .auth
        .unwrap();
    assert_eq!(again.entity_id, login.entity_id);

    let group = call(
        &core,
        &root,
        Operation::Update,
        "identity/group",
        json!({"name": "team", "policies": ["team"], "member_entity_ids": [login.entity_id]}),
    )
    .await
    .unwrap()
    .unwrap();
    let group_id = group.data.unwrap()["id"].as_str().unwrap().to_owned();
    let allowed = call(
        &core,
        &token,
        Operation::Read,
        "secret/data/team/x",
        json!({}),
    )
    .await;
    assert!(
        allowed.unwrap().is_some(),
        "the group's policy applies at once"
    );

    call(
        &core,
        &root,
        Operation::Delete,
        &format!("identity/group/id/{group_id}"),
        json!({}),
    )
    .await
    .unwrap();
    let denied = call(
        &core,
        &token,
        Operation::Read,
        "secret/data/team/x",
        json!({}),
    )
    .await;
    assert!(matches!(
        denied,
        Err(Error::PermissionDenied | Error::Forbidden(_))
    ));

    let entity = call(
        &core,
        &root,
        Operation::Read,
        &format!("identity/entity/id/{}", login.entity_id),
        json!({}),
    )
    .await
    .unwrap()
    .unwrap()
    .data
    .unwrap();
    assert_eq!(entity["aliases"][0]["name"], "alice");
}

#[tokio::test]
async fn expired_tokens_are_refused_and_tidied_away() {
    let (core, root) = dev_core().await;
    let short = create_token(&core, &root, json!({"ttl": "1s"})).await;
    let child = create_token(&core, &short, json!({"ttl": "1h"})).await;
    // Expiry is a matter of time passing: wait it out (bounded, 1.2 s).
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    for token in [&short, &child] {
        let refused = call(
            &core,
            token,
            Operation::Read,
            "auth/token/lookup-self",
            json!({}),
        )
        .await;
        assert!(matches!(
            refused,
            Err(Error::PermissionDenied | Error::Forbidden(_))
        ));
    }
    let tidy = call(
        &core,
        &root,
        Operation::Update,
        "auth/token/tidy",
        json!({}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(tidy.http_status, Some(202));
}

#[tokio::test]
async fn sudo_paths_refuse_tokens_without_sudo() {
    let (core, root) = dev_core().await;
    let policy = r#"
        path "sys/*" { capabilities = ["create", "read", "update", "delete", "list"] }
        path "auth/token/*" { capabilities = ["create", "read", "update", "delete", "list"] }
    "#;
    call(
        &core,
        &root,
        Operation::Update,
        "sys/policy/admin-no-sudo",
        json!({"policy": policy}),
    )
    .await
    .unwrap();
    let token = create_token(&core, &root, json!({"policies": ["admin-no-sudo"]})).await;
    for path in ["sys/rotate", "sys/auth/userpass", "sys/audit/file"] {
        let refused = call(
            &core,
            &token,
            Operation::Update,
            path,
            json!({"type": "userpass"}),
        )
        .await;
        assert!(
            matches!(refused, Err(Error::Forbidden(_))),
            "{path}: {refused:?}"
        );
    }
    let tidy = call(
        &core,
        &token,
        Operation::Update,
        "auth/token/tidy",
        json!({}),
    )
    .await;
    assert!(matches!(tidy, Err(Error::Forbidden(_))));
    assert!(matches!(
        core.seal(Some(&token)).await,
        Err(Error::PermissionDenied)
    ));
    assert!(!core.is_sealed(), "the vault stays unsealed");
    // Without a sys policy grant, policies cannot be written at all.
    let default_only = create_token(&core, &root, json!({"policies": ["default"]})).await;
    let write = call(
        &core,
        &default_only,
        Operation::Update,
        "sys/policy/evil",
        json!({"policy": policy}),
    )
    .await;
    assert!(matches!(write, Err(Error::Forbidden(_))));
    let unchanged = call(&core, &root, Operation::Read, "sys/policy/evil", json!({})).await;
    assert!(matches!(unchanged, Err(Error::NotFound)));
}

#[tokio::test]
async fn periodic_work_runs_on_every_mount_with_its_own_storage() {
    let (core, root) = dev_core().await;
    call(
        &core,
        &root,
        Operation::Update,
        "sys/auth/trust",
        json!({"type": "trusting"}),
    )
    .await
    .unwrap();
    core.run_periodic().await;
    core.run_periodic().await;
    let runs = call(&core, &root, Operation::Read, "auth/trust/runs", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(runs.data.unwrap()["runs"], 2);
}

#[tokio::test]
async fn create_and_update_capabilities_follow_whether_the_secret_exists() {
    let (core, root) = dev_core().await;
    call(
        &core,
        &root,
        Operation::Update,
        "secret/data/existing",
        json!({"data": {"v": 1}}),
    )
    .await
    .unwrap();
    for (name, caps) in [("creator", r#"["create"]"#), ("updater", r#"["update"]"#)] {
        let policy = format!(r#"path "secret/data/*" {{ capabilities = {caps} }}"#);
        call(
            &core,
            &root,
            Operation::Update,
            &format!("sys/policy/{name}"),
            json!({"policy": policy}),
        )
        .await
        .unwrap();
    }
    let creator = create_token(&core, &root, json!({"policies": ["creator"]})).await;
    let updater = create_token(&core, &root, json!({"policies": ["updater"]})).await;
    let write = |token: String, path: &'static str| {
        let core = core.clone();
        async move {
            call(
                &core,
                &token,
                Operation::Update,
                path,
                json!({"data": {"v": 2}}),
            )
            .await
        }
    };
    assert!(write(creator.clone(), "secret/data/new-by-creator")
        .await
        .is_ok());
    assert!(matches!(
        write(creator, "secret/data/existing").await,
        Err(Error::Forbidden(_))
    ));
    assert!(write(updater.clone(), "secret/data/existing").await.is_ok());
    assert!(matches!(
        write(updater, "secret/data/new-by-updater").await,
        Err(Error::Forbidden(_))
    ));
    let missing = call(
        &core,
        &root,
        Operation::Read,
        "secret/data/new-by-updater",
        json!({}),
    )
    .await;
    assert!(
        matches!(missing, Ok(None)),
        "the refused create wrote nothing"
    );
}
