use super::*;
use crate::testing::{login, req, MemStorage};
use serde_json::json;

fn backend() -> (Userpass, Clock) {
    let clock = Clock::manual(1_000_000);
    (
        Userpass::with_parts(Hasher::with_params(64, 1, 1), clock.clone()),
        clock,
    )
}

async fn create(up: &Userpass, s: &MemStorage, name: &str, body: Value) {
    up.handle(req(Operation::Update, &format!("users/{name}"), body), s)
        .await
        .unwrap();
}

async fn try_login(
    up: &Userpass,
    s: &MemStorage,
    name: &str,
    pw: &str,
) -> Result<Option<Response>, Error> {
    up.handle(
        login(
            &format!("login/{name}"),
            json!({ "password": pw }),
            "127.0.0.1",
        ),
        s,
    )
    .await
}

fn is_bad_credentials(r: &Result<Option<Response>, Error>) -> bool {
    matches!(r, Err(Error::InvalidRequest(m)) if m == "invalid username or password")
}

#[tokio::test]
async fn user_crud_matches_openbao_fields() {
    let (up, _) = backend();
    let s = MemStorage::default();
    create(
        &up,
        &s,
        "Alice",
        json!({"password": "pw", "token_policies": "b,a", "token_ttl": "1h"}),
    )
    .await;
    let r = up
        .handle(req(Operation::Read, "users/alice", json!({})), &s)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Value::Object(r.data.unwrap()),
        json!({"token_bound_cidrs": [], "token_explicit_max_ttl": 0, "token_max_ttl": 0,
               "token_no_default_policy": false, "token_num_uses": 0, "token_period": 0,
               "token_policies": ["a", "b"], "token_strictly_bind_ip": false,
               "token_ttl": 3600, "token_type": "default"})
    );
    let l = up
        .handle(req(Operation::List, "users", json!({})), &s)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(l.data.unwrap()["keys"], json!(["alice"]));
    // The password is stored only as an argon2id hash.
    let dump = String::from_utf8_lossy(&s.dump()).to_string();
    assert!(dump.contains("$argon2id$"));
    assert!(!dump.contains("\"pw\""));

    up.handle(
        req(
            Operation::Update,
            "users/alice/policies",
            json!({"token_policies": "c"}),
        ),
        &s,
    )
    .await
    .unwrap();
    let r = up
        .handle(req(Operation::Read, "users/alice", json!({})), &s)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.data.unwrap()["token_policies"], json!(["c"]));

    let err = up
        .handle(req(Operation::Update, "users/carol", json!({})), &s)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "must provide either password or password_hash"
    );
    let err = up
        .handle(
            req(
                Operation::Update,
                "users/nobody/password",
                json!({"password": "x"}),
            ),
            &s,
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "username does not exist");

    up.handle(req(Operation::Delete, "users/alice", json!({})), &s)
        .await
        .unwrap();
    assert!(up
        .handle(req(Operation::Read, "users/alice", json!({})), &s)
        .await
        .unwrap()
        .is_none());
    assert!(up
        .handle(req(Operation::List, "users/", json!({})), &s)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn login_returns_auth_for_core_to_mint() {
    let (up, _) = backend();
    let s = MemStorage::default();
    create(
        &up,
        &s,
        "alice",
        json!({"password": "pw", "policies": "dev", "token_ttl": 600, "token_num_uses": 3}),
    )
    .await;
    let resp = try_login(&up, &s, "ALICE", "pw").await.unwrap().unwrap();
    let auth = resp.auth.unwrap();
    assert_eq!(auth.policies, ["dev"]);
    assert_eq!(auth.lease_duration, 600);
    assert_eq!(auth.num_uses, 3);
    assert!(auth.renewable);
    assert_eq!(auth.display_name, "alice");
    assert_eq!(auth.metadata.unwrap()["username"], "alice");
    assert_eq!(auth.alias.unwrap().name, "alice");
    assert!(auth.client_token.is_empty(), "core mints the token");
    assert!(up
        .special_paths()
        .unauthenticated
        .contains(&"login/*".to_owned()));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let (up, _) = backend();
    let s = MemStorage::default();
    create(&up, &s, "alice", json!({"password": "pw"})).await;
    assert!(is_bad_credentials(
        &try_login(&up, &s, "alice", "nope").await
    ));
    assert!(is_bad_credentials(&try_login(&up, &s, "ghost", "pw").await));
    let missing = up
        .handle(login("login/alice", json!({}), "127.0.0.1"), &s)
        .await
        .unwrap_err();
    assert_eq!(missing.to_string(), "missing password");
}

#[tokio::test]
async fn five_failures_lock_the_user_even_against_the_right_password() {
    let (up, clock) = backend();
    let s = MemStorage::default();
    create(&up, &s, "alice", json!({"password": "pw"})).await;
    create(&up, &s, "bob", json!({"password": "pw2"})).await;
    for _ in 0..4 {
        assert!(is_bad_credentials(
            &try_login(&up, &s, "alice", "guess").await
        ));
    }
    // The fifth failure locks, and says so as OpenBao does: 403.
    assert!(matches!(
        try_login(&up, &s, "alice", "guess").await,
        Err(Error::PermissionDenied)
    ));
    // While locked the right password gets the same answer as a wrong one.
    assert!(matches!(
        try_login(&up, &s, "alice", "pw").await,
        Err(Error::PermissionDenied)
    ));
    assert!(matches!(
        try_login(&up, &s, "alice", "guess").await,
        Err(Error::PermissionDenied)
    ));
    // Other users are unaffected.
    assert!(try_login(&up, &s, "bob", "pw2").await.unwrap().is_some());
    // After lockout_duration (15m by default) the user may log in again.
    clock.advance(14 * 60);
    assert!(try_login(&up, &s, "alice", "pw").await.is_err());
    clock.advance(60);
    assert!(try_login(&up, &s, "alice", "pw").await.unwrap().is_some());
}

#[tokio::test]
async fn lockout_settings_come_from_mount_options() {
    let (up, clock) = backend();
    let s = MemStorage::default();
    create(&up, &s, "alice", json!({"password": "pw"})).await;
    let options = Arc::new(BTreeMap::from([
        ("lockout_threshold".to_owned(), "2".to_owned()),
        ("lockout_duration".to_owned(), "30s".to_owned()),
    ]));
    let attempt = |pw: &str| {
        let mut r = login("login/alice", json!({ "password": pw }), "127.0.0.1");
        r.mount_options = options.clone();
        r
    };
    assert!(is_bad_credentials(&up.handle(attempt("x"), &s).await));
    assert!(matches!(
        up.handle(attempt("x"), &s).await,
        Err(Error::PermissionDenied)
    ));
    assert!(matches!(
        up.handle(attempt("pw"), &s).await,
        Err(Error::PermissionDenied)
    ));
    clock.advance(30);
    assert!(up.handle(attempt("pw"), &s).await.unwrap().is_some());
}

#[tokio::test]
async fn unknown_names_lock_too_so_lockout_reveals_nothing() {
    let (up, _) = backend();
    let s = MemStorage::default();
    for _ in 0..4 {
        assert!(is_bad_credentials(&try_login(&up, &s, "ghost", "x").await));
    }
    assert!(matches!(
        try_login(&up, &s, "ghost", "x").await,
        Err(Error::PermissionDenied)
    ));
}

#[tokio::test]
async fn bound_cidrs_refuse_logins_from_elsewhere() {
    let (up, _) = backend();
    let s = MemStorage::default();
    create(
        &up,
        &s,
        "alice",
        json!({"password": "pw", "token_bound_cidrs": "10.0.0.0/8"}),
    )
    .await;
    assert!(matches!(
        try_login(&up, &s, "alice", "pw").await,
        Err(Error::PermissionDenied)
    ));
    let ok = up
        .handle(
            login("login/alice", json!({"password": "pw"}), "10.1.2.3"),
            &s,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ok.auth.unwrap().bound_cidrs, ["10.0.0.0/8"]);
}

#[tokio::test]
async fn password_change_takes_effect_and_hash_import_is_checked() {
    let (up, _) = backend();
    let s = MemStorage::default();
    create(&up, &s, "alice", json!({"password": "old"})).await;
    up.handle(
        req(
            Operation::Update,
            "users/alice/password",
            json!({"password": "new"}),
        ),
        &s,
    )
    .await
    .unwrap();
    assert!(is_bad_credentials(
        &try_login(&up, &s, "alice", "old").await
    ));
    assert!(try_login(&up, &s, "alice", "new").await.unwrap().is_some());
    let err = up
        .handle(
            req(
                Operation::Update,
                "users/bob",
                json!({"password_hash": "$2a$10$xyz"}),
            ),
            &s,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("argon2id"));
    let phc = Hasher::with_params(64, 1, 1)
        .hash(Zeroizing::new("imported".to_owned()))
        .await
        .unwrap();
    create(&up, &s, "bob", json!({ "password_hash": phc })).await;
    assert!(try_login(&up, &s, "bob", "imported")
        .await
        .unwrap()
        .is_some());
}
