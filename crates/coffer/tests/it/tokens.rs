//! Tokens and policies end to end: create, lookup, revoke (with the children), revoke-self,
//! both token headers, and ACL policies deciding what a token may read.

use serde_json::{json, Value};

use crate::server::{denied_body, send, TestServer};

#[test]
fn create_lookup_and_lookup_self() {
    let server = TestServer::unsealed();
    let created = server.post(
        "auth/token/create",
        json!({"ttl": "1h", "policies": ["default", "extra"], "display_name": "ci",
               "meta": {"team": "ops"}}),
    );
    assert_eq!(created.status, 200, "{created:?}");
    let auth = &created.body["auth"];
    let token = auth["client_token"]
        .as_str()
        .expect("client_token")
        .to_owned();
    assert!(token.starts_with("s."), "{token}");
    assert_eq!(auth["policies"], json!(["default", "extra"]));
    assert_eq!(auth["token_policies"], json!(["default", "extra"]));
    assert_eq!(auth["metadata"], json!({"team": "ops"}));
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["renewable"], true);
    assert_eq!(auth["orphan"], false);
    assert_eq!(auth["token_type"], "service");
    assert_eq!(created.body["data"], Value::Null);
    let accessor = auth["accessor"].as_str().unwrap().to_owned();

    let looked = server.post("auth/token/lookup", json!({"token": token}));
    assert_eq!(looked.status, 200, "{looked:?}");
    let data = &looked.body["data"];
    assert_eq!(data["id"], token.as_str());
    assert_eq!(data["accessor"], accessor.as_str());
    assert_eq!(data["policies"], json!(["default", "extra"]));
    assert_eq!(data["display_name"], "token-ci");
    assert_eq!(data["meta"], json!({"team": "ops"}));
    assert_eq!(data["creation_ttl"], 3600);
    let ttl = data["ttl"].as_u64().expect("ttl");
    assert!((3500..=3600).contains(&ttl), "ttl {ttl}");
    assert_eq!(data["path"], "auth/token/create");
    assert_eq!(data["orphan"], false);
    assert_eq!(data["type"], "service");

    let me = server.call_as(&token, "GET", "auth/token/lookup-self", None);
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["data"]["id"], token.as_str());
    assert_eq!(me.body["data"]["accessor"], accessor.as_str());

    let by_accessor = server.post("auth/token/lookup-accessor", json!({"accessor": accessor}));
    assert_eq!(by_accessor.status, 200, "{by_accessor:?}");
    assert_eq!(
        by_accessor.body["data"]["id"], "",
        "lookup by accessor hides the id"
    );
    assert_eq!(by_accessor.body["data"]["display_name"], "token-ci");

    // An unknown token is refused on every path, as OpenBao.
    let r = server.call_as(
        "s.nonexistenttoken0000000",
        "GET",
        "auth/token/lookup-self",
        None,
    );
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.body, json!({"errors": ["permission denied"]}));
}

#[test]
fn revoking_a_parent_revokes_its_children_and_revoke_self_works() {
    let server = TestServer::unsealed();
    put_policy(
        &server,
        "creator",
        r#"path "auth/token/create" { capabilities = ["update"] }"#,
    );
    let parent = create_token(&server, &server.token, json!({"policies": ["creator"]}));
    let child = create_token(&server, &parent, json!({"policies": ["creator"]}));
    let grandchild = create_token(&server, &child, json!({"policies": ["default"]}));
    let sibling = create_token(&server, &server.token, json!({"policies": ["default"]}));
    for t in [&parent, &child, &grandchild, &sibling] {
        assert_eq!(lookup_self(&server, t), 200);
    }

    let r = server.post("auth/token/revoke", json!({"token": parent}));
    assert_eq!(r.status, 204, "{r:?}");
    for t in [&parent, &child, &grandchild] {
        let r = server.call_as(t, "GET", "auth/token/lookup-self", None);
        assert_eq!(r.status, 403, "a revoked token still works: {r:?}");
        assert_eq!(r.body, json!({"errors": ["permission denied"]}));
    }
    assert_eq!(
        lookup_self(&server, &sibling),
        200,
        "an unrelated token was revoked"
    );
    // Looking a revoked token up fails (its exact status: lookup_of_a_revoked_token_is_403).
    let gone = server.post("auth/token/lookup", json!({"token": child}));
    assert!(gone.status == 403 || gone.status == 400, "{gone:?}");
    assert_eq!(gone.body, json!({"errors": ["bad token"]}));

    // revoke-self: the token kills itself, with its children.
    let own = create_token(&server, &server.token, json!({"policies": ["creator"]}));
    let own_child = create_token(&server, &own, json!({"policies": ["default"]}));
    let r = server.call_as(&own, "POST", "auth/token/revoke-self", None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(lookup_self(&server, &own), 403);
    assert_eq!(lookup_self(&server, &own_child), 403);

    // An orphan outlives its creator.
    let maker = create_token(&server, &server.token, json!({"policies": ["creator"]}));
    let orphan = server.post("auth/token/create-orphan", json!({"policies": ["default"]}));
    assert_eq!(orphan.status, 200, "{orphan:?}");
    assert_eq!(orphan.body["auth"]["orphan"], true);
    let orphan = orphan.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    server.post("auth/token/revoke", json!({"token": maker}));
    assert_eq!(lookup_self(&server, &orphan), 200);
}

#[test]
fn bearer_authorization_works_like_x_vault_token() {
    let server = TestServer::unsealed();
    server.write_secret("bearer", json!({"v": "ok"}));
    let r = send(
        server
            .req_as("", "GET", "secret/data/bearer")
            .header("Authorization", format!("Bearer {}", server.token)),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"]["data"], json!({"v": "ok"}));
    let r = send(
        server
            .req_as("", "GET", "secret/data/bearer")
            .header("Authorization", "Bearer s.notatoken0000000000000"),
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = server.call_as("", "GET", "secret/data/bearer", None);
    assert_eq!(r.status, 403, "no token at all: {r:?}");
}

#[test]
fn default_policy_is_refused_and_a_path_policy_grants_only_its_paths() {
    let server = TestServer::unsealed();
    server.write_secret("x", json!({"v": "top"}));
    server.write_secret("app/one", json!({"v": "app"}));
    server.write_secret("other/one", json!({"v": "other"}));

    let plain = create_token(&server, &server.token, json!({"policies": ["default"]}));
    for (method, path) in [("GET", "secret/data/x"), ("GET", "sys/mounts")] {
        let r = server.call_as(&plain, method, path, None);
        assert_eq!(r.status, 403, "{method} {path}: {r:?}");
        assert_denied(&r.body);
    }
    // The default policy does allow looking at oneself.
    assert_eq!(lookup_self(&server, &plain), 200);

    put_policy(
        &server,
        "app-read",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    );
    let read = server.get("sys/policy/app-read");
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["data"]["name"], "app-read");
    assert!(read.body["data"]["rules"]
        .as_str()
        .unwrap()
        .contains("secret/data/app/*"));
    let listed = server.list("sys/policy");
    assert_eq!(listed.status, 200, "{listed:?}");
    let keys = listed.body["data"]["keys"].as_array().unwrap();
    for name in ["app-read", "default", "root"] {
        assert!(keys.contains(&json!(name)), "{name} not in {keys:?}");
    }

    let reader = create_token(&server, &server.token, json!({"policies": ["app-read"]}));
    let r = server.call_as(&reader, "GET", "secret/data/app/one", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"]["data"], json!({"v": "app"}));
    for (method, path, body) in [
        ("GET", "secret/data/other/one", None),
        ("GET", "secret/data/x", None),
        (
            "PUT",
            "secret/data/app/one",
            Some(json!({"data": {"v": "w"}})),
        ),
        ("DELETE", "secret/data/app/one", None),
        ("GET", "secret/metadata/app/one", None),
        ("GET", "sys/mounts", None),
    ] {
        let r = server.call_as(&reader, method, path, body);
        assert_eq!(r.status, 403, "{method} {path}: {r:?}");
        assert_denied(&r.body);
    }
    // The refused write changed nothing.
    assert_eq!(server.read_secret("app/one"), json!({"v": "app"}));

    // Deleting the policy takes the access away from tokens that name it.
    let r = server.delete("sys/policy/app-read");
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.call_as(&reader, "GET", "secret/data/app/one", None);
    assert_eq!(r.status, 403, "{r:?}");
}

/// OpenBao wraps an ACL denial in its multierror text; coffer answers a bare message.
#[test]
fn acl_denial_body_is_openbaos_exactly() {
    let server = TestServer::unsealed();
    let plain = create_token(&server, &server.token, json!({"policies": ["default"]}));
    let r = server.call_as(&plain, "GET", "secret/data/x", None);
    assert_eq!(r.status, 403);
    assert_eq!(r.body, denied_body());
    let r = server.call_as(&plain, "GET", "sys/mounts", None);
    assert_eq!(r.body, denied_body());
}

/// OpenBao answers a lookup of a revoked token with 403 "bad token"; coffer with 400.
#[test]
fn lookup_of_a_revoked_token_is_403() {
    let server = TestServer::unsealed();
    let token = create_token(&server, &server.token, json!({"policies": ["default"]}));
    let r = server.post("auth/token/revoke", json!({ "token": token }));
    assert_eq!(r.status, 204, "{r:?}");
    let gone = server.post("auth/token/lookup", json!({ "token": token }));
    assert_eq!(gone.status, 403, "{gone:?}");
    assert_eq!(gone.body, json!({"errors": ["bad token"]}));
}

fn assert_denied(body: &Value) {
    let message = body["errors"][0].as_str().unwrap_or_default();
    assert!(message.contains("permission denied"), "{body}");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
}

fn put_policy(server: &TestServer, name: &str, rules: &str) {
    let r = server.put(&format!("sys/policy/{name}"), json!({ "policy": rules }));
    assert_eq!(r.status, 204, "policy {name}: {r:?}");
}

fn create_token(server: &TestServer, as_token: &str, body: Value) -> String {
    let r = server.call_as(as_token, "POST", "auth/token/create", Some(body));
    assert_eq!(r.status, 200, "token create: {r:?}");
    r.body["auth"]["client_token"].as_str().unwrap().to_owned()
}

fn lookup_self(server: &TestServer, token: &str) -> u16 {
    server
        .call_as(token, "GET", "auth/token/lookup-self", None)
        .status
}

/// A raw request with `token`, so that the path reaches the server exactly as written.
fn raw_as(server: &TestServer, token: &str, method: &str, target: &str) -> u16 {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[test]
fn path_tricks_do_not_escape_a_policy() {
    let server = TestServer::unsealed();
    server.write_secret("app/one", json!({"v": "app"}));
    server.write_secret("other", json!({"v": "other"}));
    put_policy(
        &server,
        "app-only",
        r#"path "secret/data/app/*" { capabilities = ["read", "update"] }"#,
    );
    let token = create_token(&server, &server.token, json!({"policies": ["app-only"]}));
    assert_eq!(
        raw_as(&server, &token, "GET", "/v1/secret/data/app/one"),
        200
    );
    for target in [
        "/v1/secret/data/app/../other",
        "/v1/secret/data/app/%2e%2e/other",
        "/v1/secret/data/app/%2E%2E/other",
        "/v1/secret/data/app/..%2fother",
        "/v1/secret/data/other.",
        "/v1/SECRET/data/other",
        "/v1/SYS/mounts",
        "/v1/sys/MOUNTS",
        "/v1/secret/data/app%2f..%2fother",
    ] {
        for method in ["GET", "POST", "DELETE"] {
            let status = raw_as(&server, &token, method, target);
            assert!(
                (400..500).contains(&status) || status == 307,
                "{method} {target} must be refused or redirected, got {status}"
            );
        }
    }
    // A redirect only names the clean path, where the policy applies again.
    assert_eq!(
        raw_as(&server, &token, "GET", "/v1/secret//data/other"),
        307
    );
    assert_eq!(raw_as(&server, &token, "GET", "/v1/secret/data/other"), 403);
    assert_eq!(server.read_secret("other"), json!({"v": "other"}));
    assert_eq!(server.read_secret("app/one"), json!({"v": "app"}));
}
