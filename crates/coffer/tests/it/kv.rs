//! KV v1 and v2 through the HTTP API, and the mount table (`sys/mounts`): every request a
//! client makes, checked against what OpenBao 2.7.2 answers.

use serde_json::{json, Value};

use crate::server::TestServer;

#[test]
fn kv2_versions_cas_patch_delete_undelete_destroy() {
    let server = TestServer::unsealed();
    let w1 = server.write_secret("app/db", json!({"user": "alice", "password": "p1"}));
    assert_eq!(w1.body["data"]["version"], 1);
    assert_eq!(w1.body["data"]["destroyed"], false);
    assert_eq!(w1.body["data"]["deletion_time"], "");
    let w2 = server.put(
        "secret/data/app/db",
        json!({"data": {"user": "alice", "password": "p2"}, "options": {"cas": 1}}),
    );
    assert_eq!(w2.status, 200, "{w2:?}");
    assert_eq!(w2.body["data"]["version"], 2);

    // A stale cas is refused and writes nothing.
    let stale = server.put(
        "secret/data/app/db",
        json!({"data": {"user": "mallory"}, "options": {"cas": 1}}),
    );
    assert_eq!(stale.status, 400, "{stale:?}");
    assert_eq!(
        stale.body,
        json!({"errors": ["check-and-set parameter did not match the current version"]})
    );
    // cas 0: only when the key does not exist yet.
    let exists = server.put(
        "secret/data/app/db",
        json!({"data": {"x": "y"}, "options": {"cas": 0}}),
    );
    assert_eq!(exists.status, 400, "{exists:?}");
    let created = server.put(
        "secret/data/app/new",
        json!({"data": {"x": "y"}, "options": {"cas": 0}}),
    );
    assert_eq!(created.status, 200, "{created:?}");

    let latest = server.get("secret/data/app/db");
    assert_eq!(latest.status, 200);
    assert_eq!(
        latest.body["data"]["data"],
        json!({"user": "alice", "password": "p2"})
    );
    assert_eq!(latest.body["data"]["metadata"]["version"], 2);
    let v1 = server.get("secret/data/app/db?version=1");
    assert_eq!(v1.body["data"]["data"]["password"], "p1");
    assert_eq!(v1.body["data"]["metadata"]["version"], 1);

    // PATCH is a JSON merge patch: null removes a key, others are added or replaced.
    let patch = server
        .req("PATCH", "secret/data/app/db")
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"data": {"password": null, "port": "5432"}}"#);
    let patched = crate::server::send(patch);
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(patched.body["data"]["version"], 3);
    assert_eq!(
        server.read_secret("app/db"),
        json!({"user": "alice", "port": "5432"})
    );
    // Any other content type is 415, as OpenBao.
    let wrong = crate::server::send(
        server
            .req("PATCH", "secret/data/app/db")
            .header("Content-Type", "application/json")
            .body(r#"{"data": {"port": "1"}}"#),
    );
    assert_eq!(wrong.status, 415, "{wrong:?}");
    // Patching what does not exist is 404.
    let missing = crate::server::send(
        server
            .req("PATCH", "secret/data/app/none")
            .header("Content-Type", "application/merge-patch+json")
            .body(r#"{"data": {"a": "b"}}"#),
    );
    assert_eq!(missing.status, 404, "{missing:?}");

    // Soft delete of the latest version: 404 that still carries the metadata.
    let del = server.delete("secret/data/app/db");
    assert_eq!(del.status, 204, "{del:?}");
    let gone = server.get("secret/data/app/db");
    assert_eq!(gone.status, 404, "{gone:?}");
    assert_eq!(gone.body["data"]["data"], Value::Null);
    assert_eq!(gone.body["data"]["metadata"]["version"], 3);
    assert_ne!(gone.body["data"]["metadata"]["deletion_time"], "");
    assert_eq!(gone.body["data"]["metadata"]["destroyed"], false);
    // Older versions are untouched.
    assert_eq!(
        server.get("secret/data/app/db?version=2").body["data"]["data"]["password"],
        "p2"
    );

    let undelete = server.post("secret/undelete/app/db", json!({"versions": [3]}));
    assert_eq!(undelete.status, 204, "{undelete:?}");
    assert_eq!(server.read_secret("app/db")["port"], "5432");

    let destroy = server.put("secret/destroy/app/db", json!({"versions": [1]}));
    assert_eq!(destroy.status, 204, "{destroy:?}");
    let destroyed = server.get("secret/data/app/db?version=1");
    assert_eq!(destroyed.status, 404, "{destroyed:?}");
    assert_eq!(destroyed.body["data"]["metadata"]["destroyed"], true);
    assert_eq!(destroyed.body["data"]["data"], Value::Null);
    // Undelete cannot bring a destroyed version back.
    server.post("secret/undelete/app/db", json!({"versions": [1]}));
    assert_eq!(server.get("secret/data/app/db?version=1").status, 404);

    // A missing secret: 404 with an empty error list.
    let none = server.get("secret/data/app/never");
    assert_eq!(none.status, 404);
    assert_eq!(none.body, json!({"errors": []}));
    // A v1-style path on a v2 mount: 404 with only a warning.
    let v1_style = server.get("secret/app/db");
    assert_eq!(v1_style.status, 404, "{v1_style:?}");
    assert_eq!(v1_style.body["data"], Value::Null);
    assert!(
        v1_style.body["warnings"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("Invalid path for a versioned K/V secrets engine."),
        "{v1_style:?}"
    );
}

#[test]
fn kv2_metadata_and_listing() {
    let server = TestServer::unsealed();
    server.write_secret("team/a", json!({"k": "1"}));
    server.write_secret("team/a", json!({"k": "2"}));
    server.write_secret("team/b", json!({"k": "3"}));
    server.write_secret("team/sub/c", json!({"k": "4"}));
    server.write_secret("other", json!({"k": "5"}));

    let meta = server.get("secret/metadata/team/a");
    assert_eq!(meta.status, 200, "{meta:?}");
    let data = &meta.body["data"];
    assert_eq!(data["current_version"], 2);
    assert_eq!(data["oldest_version"], 0);
    assert_eq!(data["max_versions"], 0);
    assert_eq!(data["cas_required"], false);
    assert_eq!(data["delete_version_after"], "0s");
    let versions = data["versions"].as_object().expect("versions");
    assert_eq!(versions.keys().collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(versions["1"]["destroyed"], false);

    // Metadata writes: max_versions and custom metadata.
    let r = server.post(
        "secret/metadata/team/a",
        json!({"max_versions": 5, "custom_metadata": {"owner": "ops"}}),
    );
    assert_eq!(r.status, 204, "{r:?}");
    let meta = server.get("secret/metadata/team/a").body;
    assert_eq!(meta["data"]["max_versions"], 5);
    assert_eq!(meta["data"]["custom_metadata"], json!({"owner": "ops"}));

    // LIST and ?list=true answer the same, folders with a trailing slash, sorted.
    let want = json!({"keys": ["a", "b", "sub/"]});
    let listed = server.list("secret/metadata/team");
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(listed.body["data"], want);
    let listed = server.get("secret/metadata/team/?list=true");
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(listed.body["data"], want);
    let root = server.list("secret/metadata/");
    assert_eq!(root.body["data"], json!({"keys": ["other", "team/"]}));
    let empty = server.list("secret/metadata/nothing");
    assert_eq!(empty.status, 404, "{empty:?}");
    assert_eq!(empty.body, json!({"errors": []}));

    // Deleting the metadata removes every version.
    let r = server.delete("secret/metadata/team/b");
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(server.get("secret/data/team/b").status, 404);
    assert_eq!(server.get("secret/metadata/team/b").status, 404);
    assert_eq!(
        server.list("secret/metadata/team").body["data"],
        json!({"keys": ["a", "sub/"]})
    );
}

#[test]
fn kv1_mount_reads_writes_lists_and_deletes() {
    let server = TestServer::unsealed();
    let r = server.post(
        "sys/mounts/kv1",
        json!({"type": "kv", "description": "plain kv"}),
    );
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.put("kv1/app/cfg", json!({"user": "bob", "n": 1}));
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.get("kv1/app/cfg");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"], json!({"user": "bob", "n": 1}));
    // Overwrite replaces the whole value.
    server.put("kv1/app/cfg", json!({"user": "carol"}));
    assert_eq!(
        server.get("kv1/app/cfg").body["data"],
        json!({"user": "carol"})
    );
    server.put("kv1/app/other", json!({"a": "b"}));
    let listed = server.list("kv1/app");
    assert_eq!(listed.body["data"], json!({"keys": ["cfg", "other"]}));
    assert_eq!(
        server.get("kv1/app?list=true").body["data"],
        json!({"keys": ["cfg", "other"]})
    );
    let r = server.delete("kv1/app/cfg");
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.get("kv1/app/cfg");
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.body, json!({"errors": []}));
}

/// OpenBao details a kv v1 mount shows that coffer does not (see the report of the tests):
/// a read carries the mount's TTL as `lease_duration`, and a mount made without options shows
/// `options: {}`.
#[test]
fn kv1_read_reports_the_mount_ttl_and_empty_options_as_openbao() {
    let server = TestServer::unsealed();
    server.post("sys/mounts/kv1", json!({"type": "kv"}));
    server.put("kv1/x", json!({"a": "b"}));
    let r = server.get("kv1/x");
    assert_eq!(r.body["lease_duration"], 2764800, "{r:?}");
    let mounts = server.get("sys/mounts").body;
    assert_eq!(mounts["data"]["kv1/"]["options"], json!({}));
}

#[test]
fn mounts_enable_list_tune_and_disable() {
    let server = TestServer::unsealed();
    let r = server.post(
        "sys/mounts/team-kv",
        json!({"type": "kv", "description": "team secrets", "options": {"version": "2"}}),
    );
    assert_eq!(r.status, 204, "{r:?}");
    let again = server.post("sys/mounts/team-kv", json!({"type": "kv"}));
    assert_eq!(again.status, 400, "{again:?}");
    assert_eq!(
        again.body,
        json!({"errors": ["path is already in use at team-kv/"]})
    );
    let bad = server.post("sys/mounts/nope", json!({"type": "nonesuch"}));
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(
        bad.body,
        json!({"errors": ["plugin not found in the catalog: nonesuch"]})
    );

    let mounts = server.get("sys/mounts");
    assert_eq!(mounts.status, 200, "{mounts:?}");
    let body = &mounts.body;
    // The envelope, with the table both at the top level and under data, as OpenBao.
    for field in [
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
    ] {
        assert!(
            body.get(field).is_some(),
            "sys/mounts lacks {field}: {body}"
        );
    }
    let table = body["data"].as_object().expect("data is the mount table");
    for path in ["sys/", "cubbyhole/", "identity/", "secret/", "team-kv/"] {
        assert!(table.contains_key(path), "{path} missing: {body}");
        assert_eq!(
            body[path], table[path],
            "top-level {path} differs from data"
        );
    }
    let entry = &table["team-kv/"];
    assert_eq!(entry["type"], "kv");
    assert_eq!(entry["description"], "team secrets");
    assert_eq!(entry["options"], json!({"version": "2"}));
    assert_eq!(entry["local"], false);
    assert_eq!(entry["seal_wrap"], false);
    assert_eq!(entry["external_entropy_access"], false);
    assert!(
        entry["accessor"].as_str().unwrap().starts_with("kv_"),
        "{entry}"
    );
    assert_eq!(entry["uuid"].as_str().unwrap().len(), 36, "{entry}");
    assert_eq!(
        entry["config"],
        json!({"default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0})
    );
    assert_eq!(table["sys/"]["type"], "system");
    assert_eq!(table["cubbyhole/"]["type"], "cubbyhole");
    assert_eq!(table["cubbyhole/"]["local"], true);
    assert_eq!(table["identity/"]["type"], "identity");

    // Tune: durations as strings, read back in seconds.
    let r = server.post(
        "sys/mounts/team-kv/tune",
        json!({"default_lease_ttl": "1h", "max_lease_ttl": "2h", "description": "tuned"}),
    );
    assert_eq!(r.status, 204, "{r:?}");
    let tune = server.get("sys/mounts/team-kv/tune");
    assert_eq!(tune.status, 200, "{tune:?}");
    for (field, want) in [
        ("default_lease_ttl", json!(3600)),
        ("max_lease_ttl", json!(7200)),
        ("description", json!("tuned")),
        ("force_no_cache", json!(false)),
    ] {
        assert_eq!(
            tune.body["data"][field], want,
            "tune {field}: {}",
            tune.body
        );
        assert_eq!(tune.body[field], want, "top-level tune {field}");
    }
    let one = server.get("sys/mounts/team-kv");
    assert_eq!(one.status, 200, "{one:?}");
    assert_eq!(one.body["data"]["config"]["default_lease_ttl"], 3600);
    assert_eq!(one.body["data"]["description"], "tuned");
    // The mount works, then disabling removes it and its data.
    server.put("team-kv/data/x", json!({"data": {"a": "b"}}));
    assert_eq!(server.get("team-kv/data/x").status, 200);
    let r = server.delete("sys/mounts/team-kv");
    assert_eq!(r.status, 204, "{r:?}");
    let after = server.get("team-kv/data/x");
    assert_eq!(after.status, 404, "{after:?}");
    assert_eq!(
        after.body,
        json!({"errors": ["no handler for route \"team-kv/data/x\". route entry not found."]})
    );
    assert!(server.get("sys/mounts").body["data"]
        .get("team-kv/")
        .is_none());
    // Mounted again, it starts empty.
    server.mount_kv2("team-kv");
    assert_eq!(server.get("team-kv/data/x").status, 404);
}
