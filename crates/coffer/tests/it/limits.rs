//! Bad input loses nothing: malformed, oversized and hostile requests get OpenBao's 4xx, the
//! server keeps answering, and a secret written before is intact after each.

use serde_json::json;

use crate::server::{send, send_raw, Options, Resp, TestServer};

/// Small, yet above the 20 000-level JSON below (which must reach the JSON parser).
const MAX_REQUEST_SIZE: usize = 64 * 1024;

fn limited_server() -> TestServer {
    let mut server = TestServer::start_with(Options {
        extra: format!("max_request_size = {MAX_REQUEST_SIZE}"),
        ..Options::default()
    });
    server.init(1, 1);
    server.unseal();
    server.mount_kv2("secret");
    server.write_secret("keep", json!({"v": "intact"}));
    server
}

/// The server still answers and the secret written first is unchanged.
fn assert_intact(server: &TestServer, after: &str) {
    let health = server.get("sys/health");
    assert_eq!(health.status, 200, "health after {after}: {health:?}");
    let r = server.get("secret/data/keep");
    assert_eq!(r.status, 200, "read after {after}: {r:?}");
    assert_eq!(
        r.body["data"]["data"],
        json!({"v": "intact"}),
        "after {after}"
    );
    assert_eq!(r.body["data"]["metadata"]["version"], 1, "after {after}");
}

fn raw(server: &TestServer, method: &str, path: &str, body: impl Into<String>) -> Resp {
    send(
        server
            .req(method, path)
            .header("Content-Type", "application/json")
            .body(body.into()),
    )
}

#[test]
fn bad_input_gets_4xx_and_loses_nothing() {
    let server = limited_server();

    // Malformed JSON.
    let r = raw(&server, "PUT", "secret/data/keep", r#"{"data": {"v": "#);
    assert_eq!(r.status, 400, "{r:?}");
    let message = r.body["errors"][0].as_str().unwrap_or_default();
    assert!(message.starts_with("failed to decode JSON input"), "{r:?}");
    assert_intact(&server, "malformed JSON");

    // JSON of the wrong shape.
    let r = raw(&server, "PUT", "secret/data/keep", "[1, 2, 3]");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body["errors"].is_array(), "{r:?}");
    assert_intact(&server, "a JSON array body");

    // A body over max_request_size.
    let big = json!({"data": {"v": "x".repeat(MAX_REQUEST_SIZE * 2)}}).to_string();
    let r = raw(&server, "PUT", "secret/data/keep", big);
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.body, json!({"errors": ["http: request body too large"]}));
    assert_intact(&server, "an oversized body");
    // Just under the limit is fine.
    let fits = json!({"data": {"v": "y".repeat(MAX_REQUEST_SIZE / 2)}}).to_string();
    let r = raw(&server, "PUT", "secret/data/fits", fits);
    assert_eq!(r.status, 200, "{r:?}");

    // Deeply nested JSON. OpenBao refuses about 10 000 levels ("exceeded max depth"); coffer
    // already refuses 128, serde_json's recursion limit.
    let depth = 20_000;
    let deep = format!(
        r#"{{"data": {{"v": {}{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let r = raw(&server, "PUT", "secret/data/keep", deep);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body["errors"].is_array(), "{r:?}");
    assert_intact(&server, "deeply nested JSON");

    // An overlong path.
    let long = format!("secret/data/{}", "a".repeat(20 * 1024));
    let r = server.get(&long);
    assert!((400..500).contains(&r.status), "20 KB path: {r:?}");
    assert_intact(&server, "a 20 KB path");

    // `..` in the path, sent as written (clients would resolve it first): encoded it is 400
    // in OpenBao too; plain, OpenBao redirects (307) to the cleaned path and coffer refuses it.
    for (method, target) in [
        ("GET", "/v1/secret/data/%2e%2e/keep"),
        ("PUT", "/v1/secret/data/a/%2E%2E/%2E%2E/keep"),
        ("GET", "/v1/secret/data/%2e%2e/%2e%2e/sys/mounts"),
    ] {
        let r = send_raw(&server, method, target, br#"{"data": {"v": "evil"}}"#);
        assert_eq!(r.status, 400, "{method} {target}: {r:?}");
        assert!(r.body["errors"].is_array(), "{r:?}");
    }
    for target in [
        "/v1/secret/data/../../sys/mounts",
        "/v1/secret/../secret/data/keep",
    ] {
        let r = send_raw(&server, "PUT", target, br#"{"data": {"v": "evil"}}"#);
        assert!(
            r.status == 400 || r.status == 307,
            "{target} must be refused or redirected, never served: {r:?}"
        );
    }
    assert_intact(&server, "`..` in the path");

    // An unknown path.
    let r = server.get("nonesuch/thing");
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(
        r.body,
        json!({"errors": ["no handler for route \"nonesuch/thing\". route entry not found."]})
    );
    assert_intact(&server, "an unknown path");

    // A method no path takes.
    for (method, path) in [("DELETE", "sys/health"), ("POST", "sys/seal-status")] {
        let r = server.call(method, path, None);
        assert_eq!(r.status, 405, "{method} {path}: {r:?}");
        // No API data leaks into the refusal (its exact body: wrong_method_body_is_openbaos).
        assert!(!r.text.contains("initialized"), "{method} {path}: {r:?}");
    }
    assert_intact(&server, "a wrong method");

    // Invalid UTF-8 in a JSON body (coffer refuses it; OpenBao stores replacement chars).
    let r = send(
        server
            .req("PUT", "secret/data/keep")
            .header("Content-Type", "application/json")
            .body(b"{\"data\": {\"v\": \"\xff\xfe\"}}".to_vec()),
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_intact(&server, "invalid UTF-8");
}

/// OpenBao answers a wrong method with `{"errors":[]}`; coffer with an empty body.
#[test]
fn wrong_method_body_is_openbaos() {
    let server = TestServer::dev();
    for (method, path) in [("DELETE", "sys/health"), ("POST", "sys/seal-status")] {
        let r = server.call(method, path, None);
        assert_eq!(r.status, 405, "{method} {path}: {r:?}");
        assert_eq!(r.body, json!({"errors": []}), "{method} {path}: {r:?}");
    }
}

/// OpenBao reads `max_request_size` in the listener block, and so does coffer.
#[test]
fn max_request_size_in_the_listener_block_is_honoured() {
    let mut server = TestServer::start_with(Options {
        listener_extra: format!("max_request_size = {MAX_REQUEST_SIZE}"),
        ..Options::default()
    });
    server.init(1, 1);
    server.unseal();
    server.mount_kv2("secret");
    let big = json!({"data": {"v": "x".repeat(MAX_REQUEST_SIZE * 2)}}).to_string();
    let r = raw(&server, "PUT", "secret/data/big", big);
    assert_eq!(r.status, 413, "{r:?}");
}
