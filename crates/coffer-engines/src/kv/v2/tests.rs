//! kv v2 behaviour, each case as OpenBao 2.7.2 answered it over curl.

use serde_json::{json, Value};

use super::*;
use crate::testing::{req, MemStorage};

struct Kv {
    kv: KvV2,
    s: MemStorage,
}

impl Kv {
    fn new() -> Self {
        Kv {
            kv: KvV2::new(),
            s: MemStorage::default(),
        }
    }

    async fn call(
        &self,
        op: Operation,
        path: &str,
        body: Value,
    ) -> Result<Option<Response>, Error> {
        self.kv.handle(req(op, path, body), &self.s).await
    }

    async fn ok(&self, op: Operation, path: &str, body: Value) -> Option<Response> {
        self.call(op, path, body).await.unwrap()
    }

    /// The response data of a call that must answer with data.
    async fn data(&self, op: Operation, path: &str, body: Value) -> Value {
        Value::Object(self.ok(op, path, body).await.unwrap().data.unwrap())
    }

    async fn invalid(&self, op: Operation, path: &str, body: Value) -> String {
        match self.call(op, path, body).await {
            Err(Error::InvalidRequest(msg)) => msg,
            other => panic!("expected 400, got {other:?}"),
        }
    }

    async fn put(&self, path: &str, data: Value) -> Value {
        self.data(
            Operation::Update,
            &format!("data/{path}"),
            json!({ "data": data }),
        )
        .await
    }
}

fn is_rfc3339_nanos(v: &Value) -> bool {
    let s = v.as_str().unwrap();
    s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

#[tokio::test]
async fn write_returns_version_metadata_and_read_returns_data_and_metadata() {
    let kv = Kv::new();
    let w = kv.put("foo", json!({"a": 1, "b": {"c": "x"}})).await;
    assert_eq!(w["version"], json!(1));
    assert_eq!(w["deletion_time"], json!(""));
    assert_eq!(w["destroyed"], json!(false));
    assert_eq!(w["custom_metadata"], Value::Null);
    assert!(is_rfc3339_nanos(&w["created_time"]));
    assert_eq!(w.as_object().unwrap().len(), 5);

    let r = kv.data(Operation::Read, "data/foo", json!({})).await;
    assert_eq!(r["data"], json!({"a": 1, "b": {"c": "x"}}));
    assert_eq!(r["metadata"], w);

    kv.put("foo", json!({"a": 2})).await;
    let latest = kv.data(Operation::Read, "data/foo", json!({})).await;
    assert_eq!(latest["data"], json!({"a": 2}));
    assert_eq!(latest["metadata"]["version"], json!(2));
    let v1 = kv
        .data(Operation::Read, "data/foo", json!({"version": "1"}))
        .await;
    assert_eq!(v1["data"], json!({"a": 1, "b": {"c": "x"}}));
    // version 0 or negative means latest.
    let v0 = kv
        .data(Operation::Read, "data/foo", json!({"version": -1}))
        .await;
    assert_eq!(v0["metadata"]["version"], json!(2));
    // A version that never existed, and a secret that never existed: 404 with no body.
    assert!(kv
        .ok(Operation::Read, "data/foo", json!({"version": 9}))
        .await
        .is_none());
    assert!(kv
        .ok(Operation::Read, "data/nope", json!({}))
        .await
        .is_none());
    let bad = kv
        .invalid(Operation::Read, "data/foo", json!({"version": "abc"}))
        .await;
    assert_eq!(
        bad,
        "Field validation failed: error converting input for field \"version\": '' cannot \
         parse value as 'int': strconv.ParseInt: invalid syntax"
    );
}

#[tokio::test]
async fn storage_holds_one_metadata_entry_and_one_entry_per_version() {
    let kv = Kv::new();
    kv.put("a/b", json!({"x": 1})).await;
    kv.put("a/b", json!({"x": 2})).await;
    assert_eq!(
        kv.s.keys(),
        vec!["metadata/a/b", "versions/a/b/1", "versions/a/b/2"]
    );
}

#[tokio::test]
async fn write_errors_match_openbao() {
    let kv = Kv::new();
    assert_eq!(
        kv.invalid(Operation::Update, "data/x", json!({})).await,
        "no data provided"
    );
    assert_eq!(
        kv.invalid(Operation::Update, "data/x", json!({"data": "str"}))
            .await,
        "error converting input for field \"data\": '' expected type 'map[string]interface {}', \
         got unconvertible type 'string'"
    );
    assert_eq!(
        kv.invalid(
            Operation::Update,
            "data/x",
            json!({"data": {"a": 1}, "options": "x"})
        )
        .await,
        "error converting input for field \"options\": '' expected type \
         'map[string]interface {}', got unconvertible type 'string'"
    );
    assert_eq!(
        kv.invalid(
            Operation::Update,
            "data/x",
            json!({"data": {"a": 1}, "options": {"cas": "x"}})
        )
        .await,
        "error parsing check-and-set parameter"
    );
    assert_eq!(
        kv.invalid(Operation::Update, "data/", json!({"data": {"a": 1}}))
            .await,
        "cannot write to a path ending in '/'"
    );
    // An explicit null is stored and reads back null, as OpenBao does.
    kv.ok(Operation::Update, "data/n", json!({"data": null}))
        .await;
    let r = kv.data(Operation::Read, "data/n", json!({})).await;
    assert_eq!(r["data"], Value::Null);
    // An empty object is a valid version.
    let w = kv.put("e", json!({})).await;
    assert_eq!(w["version"], json!(1));
}

#[tokio::test]
async fn check_and_set() {
    let kv = Kv::new();
    // cas 0: only if the key does not exist yet.
    kv.data(
        Operation::Update,
        "data/c",
        json!({"data": {"a": 1}, "options": {"cas": 0}}),
    )
    .await;
    assert_eq!(
        kv.invalid(
            Operation::Update,
            "data/c",
            json!({"data": {"a": 2}, "options": {"cas": 0}})
        )
        .await,
        "check-and-set parameter did not match the current version"
    );
    let w = kv
        .data(
            Operation::Update,
            "data/c",
            json!({"data": {"a": 2}, "options": {"cas": "1"}}),
        )
        .await;
    assert_eq!(w["version"], json!(2));

    // cas_required on the engine.
    kv.ok(Operation::Update, "config", json!({"cas_required": true}))
        .await;
    assert_eq!(
        kv.invalid(Operation::Update, "data/c", json!({"data": {"a": 3}}))
            .await,
        "check-and-set parameter required for this call"
    );
    kv.data(
        Operation::Update,
        "data/c",
        json!({"data": {"a": 3}, "options": {"cas": 2}}),
    )
    .await;
    // Turning it off on the key while the engine mandates it: a warning, nothing changes.
    let resp = kv
        .ok(
            Operation::Update,
            "metadata/c",
            json!({"cas_required": false}),
        )
        .await
        .unwrap();
    assert_eq!(
        resp.warnings,
        vec!["\"cas_required\" set to false, but is mandated by backend config. This value will be ignored."]
    );
    assert_eq!(
        kv.invalid(Operation::Update, "data/c", json!({"data": {"a": 4}}))
            .await,
        "check-and-set parameter required for this call"
    );

    // cas_required on the key alone.
    kv.ok(Operation::Update, "config", json!({"cas_required": false}))
        .await;
    kv.put("k", json!({"a": 1})).await;
    kv.ok(
        Operation::Update,
        "metadata/k",
        json!({"cas_required": true}),
    )
    .await;
    assert_eq!(
        kv.invalid(Operation::Update, "data/k", json!({"data": {"a": 2}}))
            .await,
        "check-and-set parameter required for this call"
    );
}

#[tokio::test]
async fn patch_merges_into_a_new_version() {
    let kv = Kv::new();
    // PATCH needs an existing secret: 404 without a body.
    let missing = kv
        .ok(Operation::Patch, "data/p", json!({"data": {"a": 1}}))
        .await
        .unwrap();
    assert_eq!(missing.http_status, Some(404));
    assert!(missing.data.is_none());

    kv.put("p", json!({"a": 1, "b": {"c": 1, "d": 2}, "e": [1, 2]}))
        .await;
    let w = kv
        .data(
            Operation::Patch,
            "data/p",
            json!({"data": {"a": null, "b": {"c": 5}, "f": "new"}}),
        )
        .await;
    assert_eq!(w["version"], json!(2));
    let r = kv.data(Operation::Read, "data/p", json!({})).await;
    assert_eq!(
        r["data"],
        json!({"b": {"c": 5, "d": 2}, "e": [1, 2], "f": "new"})
    );

    assert_eq!(
        kv.invalid(Operation::Patch, "data/p", json!({})).await,
        "no data provided"
    );
    assert_eq!(
        kv.invalid(Operation::Patch, "data/p", json!({"data": "str"}))
            .await,
        "Field validation failed: error converting input for field \"data\": '' expected type \
         'map[string]interface {}', got unconvertible type 'string'"
    );
    assert_eq!(
        kv.invalid(
            Operation::Patch,
            "data/p",
            json!({"data": {"x": 1}, "options": {"cas": 1}})
        )
        .await,
        "check-and-set parameter did not match the current version"
    );
    kv.data(
        Operation::Patch,
        "data/p",
        json!({"data": {"x": 1}, "options": {"cas": 2}}),
    )
    .await;

    // A soft-deleted latest version: 404 with the version metadata, flat.
    kv.ok(Operation::Delete, "data/p", json!({})).await;
    let deleted = kv
        .ok(Operation::Patch, "data/p", json!({"data": {"x": 2}}))
        .await
        .unwrap();
    assert_eq!(deleted.http_status, Some(404));
    let data = deleted.data.unwrap();
    assert_eq!(data["version"], json!(3));
    assert!(is_rfc3339_nanos(&data["deletion_time"]));
}

#[tokio::test]
async fn soft_delete_undelete_and_destroy() {
    let kv = Kv::new();
    kv.put("foo", json!({"a": 1})).await;
    kv.put("foo", json!({"a": 2})).await;

    // DELETE data/ soft-deletes the latest: 404 with metadata and null data.
    assert!(kv
        .ok(Operation::Delete, "data/foo", json!({}))
        .await
        .is_none());
    let resp = kv.ok(Operation::Read, "data/foo", json!({})).await.unwrap();
    assert_eq!(resp.http_status, Some(404));
    let data = Value::Object(resp.data.unwrap());
    assert_eq!(data["data"], Value::Null);
    assert_eq!(data["metadata"]["version"], json!(2));
    assert!(is_rfc3339_nanos(&data["metadata"]["deletion_time"]));
    assert_eq!(data["metadata"]["destroyed"], json!(false));
    // The data itself is kept for undelete.
    assert!(kv.s.keys().contains(&"versions/foo/2".to_owned()));

    kv.ok(Operation::Update, "undelete/foo", json!({"versions": [2]}))
        .await;
    let r = kv.data(Operation::Read, "data/foo", json!({})).await;
    assert_eq!(r["data"], json!({"a": 2}));
    assert_eq!(r["metadata"]["deletion_time"], json!(""));

    // delete/ with versions; "1,2" as a comma string works too.
    kv.ok(Operation::Update, "delete/foo", json!({"versions": "1,2"}))
        .await;
    let m = kv.data(Operation::Read, "metadata/foo", json!({})).await;
    assert_ne!(m["versions"]["1"]["deletion_time"], json!(""));
    assert_ne!(m["versions"]["2"]["deletion_time"], json!(""));
    kv.ok(
        Operation::Update,
        "undelete/foo",
        json!({"versions": [1, 2, 99]}),
    )
    .await;

    // destroy/ removes the data for good; undelete cannot bring it back.
    kv.ok(Operation::Update, "destroy/foo", json!({"versions": [1]}))
        .await;
    assert!(!kv.s.keys().contains(&"versions/foo/1".to_owned()));
    let resp = kv
        .ok(Operation::Read, "data/foo", json!({"version": 1}))
        .await
        .unwrap();
    assert_eq!(resp.http_status, Some(404));
    assert_eq!(
        resp.data.as_ref().unwrap()["metadata"]["destroyed"],
        json!(true)
    );
    kv.ok(Operation::Update, "undelete/foo", json!({"versions": [1]}))
        .await;
    let m = kv.data(Operation::Read, "metadata/foo", json!({})).await;
    assert_eq!(m["versions"]["1"]["destroyed"], json!(true));
    // Deleting a destroyed latest version is a no-op.
    kv.ok(Operation::Update, "destroy/foo", json!({"versions": [2]}))
        .await;
    assert!(kv
        .ok(Operation::Delete, "data/foo", json!({}))
        .await
        .is_none());

    // Errors and missing secrets.
    assert_eq!(
        kv.invalid(Operation::Update, "delete/foo", json!({})).await,
        "No version number provided"
    );
    assert_eq!(
        kv.invalid(Operation::Update, "undelete/foo", json!({}))
            .await,
        "No version number provided"
    );
    assert_eq!(
        kv.invalid(Operation::Update, "destroy/foo", json!({}))
            .await,
        "no version number provided"
    );
    assert!(kv
        .invalid(Operation::Update, "delete/foo", json!({"versions": "abc"}))
        .await
        .starts_with("Field validation failed: error converting input for field \"versions\""));
    for path in ["delete/nope", "undelete/nope", "destroy/nope"] {
        assert!(kv
            .ok(Operation::Update, path, json!({"versions": [1]}))
            .await
            .is_none());
    }
    assert!(kv
        .ok(Operation::Delete, "data/nope", json!({}))
        .await
        .is_none());
}

#[tokio::test]
async fn max_versions_prunes_the_oldest() {
    let kv = Kv::new();
    kv.ok(Operation::Update, "metadata/mv", json!({"max_versions": 2}))
        .await;
    for i in 1..=3 {
        kv.put("mv", json!({ "i": i })).await;
    }
    let m = kv.data(Operation::Read, "metadata/mv", json!({})).await;
    assert_eq!(m["current_version"], json!(3));
    assert_eq!(m["oldest_version"], json!(2));
    assert_eq!(
        m["versions"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["2", "3"]
    );
    assert!(kv
        .ok(Operation::Read, "data/mv", json!({"version": 1}))
        .await
        .is_none());
    assert!(!kv.s.keys().contains(&"versions/mv/1".to_owned()));

    // The larger of the engine's and the key's limit applies (OpenBao 2.7.2).
    kv.ok(Operation::Update, "config", json!({"max_versions": 5}))
        .await;
    kv.ok(
        Operation::Update,
        "metadata/big",
        json!({"max_versions": 2}),
    )
    .await;
    for i in 1..=3 {
        kv.put("big", json!({ "i": i })).await;
    }
    let m = kv.data(Operation::Read, "metadata/big", json!({})).await;
    assert_eq!(m["oldest_version"], json!(0));
    assert_eq!(m["versions"].as_object().unwrap().len(), 3);

    // Default: 10 versions.
    kv.ok(Operation::Update, "config", json!({"max_versions": 0}))
        .await;
    for i in 1..=11 {
        kv.put("ten", json!({ "i": i })).await;
    }
    let m = kv.data(Operation::Read, "metadata/ten", json!({})).await;
    assert_eq!(m["versions"].as_object().unwrap().len(), 10);
    assert_eq!(m["oldest_version"], json!(2));
}

#[tokio::test]
async fn metadata_read_write_and_metadata_cas() {
    let kv = Kv::new();
    kv.put("foo", json!({"a": 1})).await;
    let m = kv.data(Operation::Read, "metadata/foo", json!({})).await;
    let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        vec![
            "cas_required",
            "created_time",
            "current_metadata_version",
            "current_version",
            "custom_metadata",
            "delete_version_after",
            "max_versions",
            "metadata_cas_required",
            "oldest_version",
            "updated_time",
            "versions"
        ]
    );
    assert_eq!(m["current_metadata_version"], json!(0));
    assert_eq!(m["delete_version_after"], json!("0s"));
    assert_eq!(m["created_time"], m["versions"]["1"]["created_time"]);
    assert_eq!(m["updated_time"], m["created_time"]);

    // An empty write changes nothing and creates nothing.
    assert!(kv
        .ok(Operation::Update, "metadata/newm", json!({}))
        .await
        .is_none());
    assert!(kv
        .ok(Operation::Read, "metadata/newm", json!({}))
        .await
        .is_none());

    // A metadata write creates metadata without versions.
    kv.ok(
        Operation::Update,
        "metadata/mc",
        json!({"custom_metadata": {"a": "b", "n": 1, "t": true}, "delete_version_after": 3700}),
    )
    .await;
    let m = kv.data(Operation::Read, "metadata/mc", json!({})).await;
    assert_eq!(m["current_version"], json!(0));
    assert_eq!(m["versions"], json!({}));
    assert_eq!(m["current_metadata_version"], json!(1));
    assert_eq!(m["custom_metadata"], json!({"a": "b", "n": "1", "t": "1"}));
    assert_eq!(m["delete_version_after"], json!("1h1m40s"));

    kv.ok(
        Operation::Update,
        "metadata/mc",
        json!({"metadata_cas_required": true}),
    )
    .await;
    assert_eq!(
        kv.invalid(Operation::Update, "metadata/mc", json!({"max_versions": 4}))
            .await,
        "metadata check-and-set parameter required for this call"
    );
    assert_eq!(
        kv.invalid(
            Operation::Update,
            "metadata/mc",
            json!({"max_versions": 4, "metadata_cas": 1})
        )
        .await,
        "metadata check-and-set parameter does not match the current version"
    );
    kv.ok(
        Operation::Update,
        "metadata/mc",
        json!({"max_versions": 4, "metadata_cas": 2}),
    )
    .await;
    let m = kv.data(Operation::Read, "metadata/mc", json!({})).await;
    assert_eq!(m["current_metadata_version"], json!(3));
    assert_eq!(m["max_versions"], json!(4));
    // Data writes do not move the metadata version, but do move updated_time.
    let w = kv.put("mc", json!({"x": 1})).await;
    assert_eq!(w["custom_metadata"], json!({"a": "b", "n": "1", "t": "1"}));
    let m = kv.data(Operation::Read, "metadata/mc", json!({})).await;
    assert_eq!(m["current_metadata_version"], json!(3));
    assert_eq!(m["updated_time"], w["created_time"]);
    // delete_version_after on the key schedules the deletion of new versions.
    assert_ne!(w["deletion_time"], json!(""));

    assert_eq!(
        kv.invalid(
            Operation::Update,
            "metadata/new",
            json!({"max_versions": 1, "metadata_cas": 3})
        )
        .await,
        "metadata_cas must be 0 when creating new metadata"
    );
    assert_eq!(
        kv.invalid(Operation::Update, "metadata/x", json!({"delete_version_after": "-5s"}))
            .await,
        "error converting input for field \"delete_version_after\": cannot provide negative value '-5'"
    );
    assert_eq!(
        kv.invalid(
            Operation::Update,
            "metadata/x",
            json!({"max_versions": "abc"})
        )
        .await,
        "error converting input for field \"max_versions\": '' cannot parse value as 'int': \
         strconv.ParseInt: invalid syntax"
    );
    assert_eq!(
        kv.invalid(
            Operation::Update,
            "metadata/x",
            json!({"custom_metadata": {"": "x", "k": ""}})
        )
        .await,
        "2 errors occurred:\n\t* custom_metadata validation failed: length of key \"\" is 0 but \
         must be 0 < len(key) <= 128\n\t* custom_metadata validation failed: length of value for \
         key \"k\" is 0 but must be 0 < len(value) <= 512\n\n"
    );
    assert_eq!(
        kv.invalid(
            Operation::Update,
            "metadata/x",
            json!({"custom_metadata": {"k": {"a": 1}}})
        )
        .await,
        "custom_metadata validation failed: '' expected type 'string', got unconvertible type \
         'map[string]interface {}'"
    );
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(
        kv.invalid(
            Operation::Update,
            "metadata/x",
            json!({ "custom_metadata": many })
        )
        .await,
        "1 error occurred:\n\t* custom_metadata validation failed: payload must contain at most \
         64 keys, provided 65\n\n"
    );
    assert_eq!(
        kv.invalid(
            Operation::Update,
            "metadata/x",
            json!({"custom_metadata": {"k\u{1}": "v"}})
        )
        .await,
        "1 error occurred:\n\t* custom_metadata validation failed: key \"k\\x01\" (k\u{1}) \
         contains unprintable characters\n\n"
    );
}

#[tokio::test]
async fn metadata_patch_changes_only_given_fields() {
    let kv = Kv::new();
    let missing = kv
        .ok(
            Operation::Patch,
            "metadata/none",
            json!({"max_versions": 3}),
        )
        .await
        .unwrap();
    assert_eq!(missing.http_status, Some(404));

    kv.ok(
        Operation::Update,
        "metadata/p",
        json!({"max_versions": 3, "custom_metadata": {"a": "1", "b": "2"}}),
    )
    .await;
    kv.ok(
        Operation::Patch,
        "metadata/p",
        json!({"custom_metadata": {"a": null, "c": "3"}, "cas_required": true}),
    )
    .await;
    let m = kv.data(Operation::Read, "metadata/p", json!({})).await;
    assert_eq!(m["custom_metadata"], json!({"b": "2", "c": "3"}));
    assert_eq!(m["cas_required"], json!(true));
    assert_eq!(m["max_versions"], json!(3));
    assert_eq!(m["current_metadata_version"], json!(2));
    // Nothing patchable: no change.
    assert!(kv
        .ok(Operation::Patch, "metadata/p", json!({"x": 1}))
        .await
        .is_none());
    let m2 = kv.data(Operation::Read, "metadata/p", json!({})).await;
    assert_eq!(m2["current_metadata_version"], json!(2));
}

#[tokio::test]
async fn metadata_delete_removes_every_version_and_the_metadata() {
    let kv = Kv::new();
    kv.put("dir/x", json!({"a": 1})).await;
    kv.put("dir/x", json!({"a": 2})).await;
    kv.put("dir/y/z", json!({"a": 1})).await;
    assert!(kv
        .ok(Operation::Delete, "metadata/dir/x", json!({}))
        .await
        .is_none());
    assert!(kv
        .ok(Operation::Delete, "metadata/dir/x", json!({}))
        .await
        .is_none());
    assert!(kv
        .ok(Operation::Read, "metadata/dir/x", json!({}))
        .await
        .is_none());
    assert!(kv
        .ok(Operation::Read, "data/dir/x", json!({"version": 1}))
        .await
        .is_none());
    assert_eq!(kv.s.keys(), vec!["metadata/dir/y/z", "versions/dir/y/z/1"]);
}

#[tokio::test]
async fn list_and_detailed_list() {
    let kv = Kv::new();
    kv.put("dir/x", json!({"a": 1})).await;
    kv.put("dir/y/z", json!({"a": 1})).await;
    kv.put("top", json!({"a": 1})).await;
    for path in ["metadata/dir", "metadata/dir/"] {
        let l = kv.data(Operation::List, path, json!({})).await;
        assert_eq!(l, json!({"keys": ["x", "y/"]}));
    }
    for root in ["metadata/", "metadata"] {
        let listed = kv.data(Operation::List, root, json!({})).await;
        assert_eq!(listed["keys"], json!(["dir/", "top"]));
    }
    let page = kv
        .data(
            Operation::List,
            "metadata/",
            json!({"after": "dir/", "limit": 1}),
        )
        .await;
    assert_eq!(page["keys"], json!(["top"]));
    // An empty listing is a 404.
    assert!(kv
        .ok(Operation::List, "metadata/nope", json!({}))
        .await
        .is_none());

    let d = kv
        .data(Operation::List, "detailed-metadata/dir/", json!({}))
        .await;
    assert_eq!(d["keys"], json!(["x", "y/"]));
    assert_eq!(d["key_info"]["y/"], json!({}));
    assert_eq!(d["key_info"]["x"]["current_version"], json!(1));

    // LIST on data/ is not served there.
    assert!(matches!(
        kv.call(Operation::List, "data/", json!({})).await,
        Err(Error::UnsupportedOperation)
    ));
}

#[tokio::test]
async fn subkeys_strip_values_to_a_depth() {
    let kv = Kv::new();
    kv.put(
        "sk",
        json!({"a": 1, "b": {"c": {"d": 1}, "e": {}}, "f": [1, {"g": 1}]}),
    )
    .await;
    let all = kv.data(Operation::Read, "subkeys/sk", json!({})).await;
    assert_eq!(
        all["subkeys"],
        json!({"a": null, "b": {"c": {"d": null}, "e": null}, "f": null})
    );
    assert_eq!(all["metadata"]["version"], json!(1));
    let one = kv
        .data(Operation::Read, "subkeys/sk", json!({"depth": 1}))
        .await;
    assert_eq!(one["subkeys"], json!({"a": null, "b": null, "f": null}));
    let two = kv
        .data(Operation::Read, "subkeys/sk", json!({"depth": "2"}))
        .await;
    assert_eq!(
        two["subkeys"],
        json!({"a": null, "b": {"c": null, "e": null}, "f": null})
    );
    assert!(kv
        .ok(Operation::Read, "subkeys/sk", json!({"version": 5}))
        .await
        .is_none());
    assert!(kv
        .ok(Operation::Read, "subkeys/nope", json!({}))
        .await
        .is_none());
    kv.ok(Operation::Delete, "data/sk", json!({})).await;
    let deleted = kv
        .ok(Operation::Read, "subkeys/sk", json!({}))
        .await
        .unwrap();
    assert_eq!(deleted.http_status, Some(404));
    assert_eq!(deleted.data.unwrap()["subkeys"], Value::Null);
    assert!(matches!(
        kv.call(Operation::Update, "subkeys/sk", json!({})).await,
        Err(Error::UnsupportedOperation)
    ));
}

#[tokio::test]
async fn config_read_write() {
    let kv = Kv::new();
    let c = kv.data(Operation::Read, "config", json!({})).await;
    assert_eq!(
        c,
        json!({"cas_required": false, "delete_version_after": "0s", "max_versions": 0,
               "metadata_cas_required": false})
    );
    kv.ok(
        Operation::Update,
        "config",
        json!({"cas_required": "true", "max_versions": "3", "delete_version_after": "1h30m"}),
    )
    .await;
    let c = kv.data(Operation::Read, "config", json!({})).await;
    assert_eq!(c["cas_required"], json!(true));
    assert_eq!(c["max_versions"], json!(3));
    assert_eq!(c["delete_version_after"], json!("1h30m0s"));
    kv.ok(
        Operation::Update,
        "config",
        json!({"delete_version_after": -10}),
    )
    .await;
    let c = kv.data(Operation::Read, "config", json!({})).await;
    assert_eq!(c["delete_version_after"], json!("-1s"));
    kv.ok(Operation::Update, "config", json!({"max_versions": -1}))
        .await;
    let c = kv.data(Operation::Read, "config", json!({})).await;
    assert_eq!(c["max_versions"], json!(4_294_967_295u32));
    assert_eq!(
        kv.invalid(Operation::Update, "config", json!({"cas_required": "yes"}))
            .await,
        "Field validation failed: error converting input for field \"cas_required\": '' cannot \
         parse value as 'bool': strconv.ParseBool: invalid syntax"
    );
    assert_eq!(
        kv.invalid(
            Operation::Update,
            "config",
            json!({"delete_version_after": "abc"})
        )
        .await,
        "Field validation failed: error converting input for field \"delete_version_after\": \
         time: invalid duration \"abc\""
    );
}

#[tokio::test]
async fn delete_version_after_schedules_deletion() {
    let kv = Kv::new();
    kv.ok(
        Operation::Update,
        "config",
        json!({"delete_version_after": "1h30m"}),
    )
    .await;
    let w = kv.put("d", json!({"a": 1})).await;
    let created =
        chrono::DateTime::parse_from_rfc3339(w["created_time"].as_str().unwrap()).unwrap();
    let deleted =
        chrono::DateTime::parse_from_rfc3339(w["deletion_time"].as_str().unwrap()).unwrap();
    assert_eq!((deleted - created).num_seconds(), 5400);
    // A future deletion time still reads.
    let r = kv.data(Operation::Read, "data/d", json!({})).await;
    assert_eq!(r["data"], json!({"a": 1}));

    // The smaller non-zero of engine and key wins.
    kv.ok(
        Operation::Update,
        "metadata/d",
        json!({"delete_version_after": "10s"}),
    )
    .await;
    let w = kv.put("d", json!({"a": 2})).await;
    let created =
        chrono::DateTime::parse_from_rfc3339(w["created_time"].as_str().unwrap()).unwrap();
    let deleted =
        chrono::DateTime::parse_from_rfc3339(w["deletion_time"].as_str().unwrap()).unwrap();
    assert_eq!((deleted - created).num_seconds(), 10);

    // Disabled on the engine: no deletion time at all.
    kv.ok(
        Operation::Update,
        "config",
        json!({"delete_version_after": -1}),
    )
    .await;
    let w = kv.put("d", json!({"a": 3})).await;
    assert_eq!(w["deletion_time"], json!(""));

    // A version whose deletion time has passed reads as deleted.
    let mut meta = load_metadata(&kv.s, "d").await.unwrap().unwrap();
    meta.versions.get_mut(&3).unwrap().deletion_time = Some(crate::time::now_nanos() - 1);
    kv.s.put("metadata/d", serde_json::to_vec(&meta).unwrap())
        .await
        .unwrap();
    let resp = kv.ok(Operation::Read, "data/d", json!({})).await.unwrap();
    assert_eq!(resp.http_status, Some(404));
}

#[tokio::test]
async fn v1_style_paths_answer_404_with_a_warning() {
    let kv = Kv::new();
    let cases = [
        (Operation::Read, "foo", "get"),
        (Operation::Update, "foo", "put"),
        (Operation::List, "", "list"),
        (Operation::Delete, "foo", "delete"),
        (Operation::Patch, "foo/bar", "patch"),
        (Operation::Read, "subkeys", "get"),
        (Operation::Read, "config/", "get"),
    ];
    for (op, path, verb) in cases {
        let resp = kv.ok(op, path, json!({})).await.unwrap();
        assert_eq!(resp.http_status, Some(404), "{path}");
        assert!(resp.data.is_none());
        assert_eq!(
            resp.warnings,
            vec![format!(
                "Invalid path for a versioned K/V secrets engine. See the API docs for the \
                 appropriate API endpoints to use. If using the OpenBao CLI, use 'bao kv {verb}' \
                 for this operation."
            )]
        );
    }
    for path in ["data", "metadata", "delete", "undelete", "destroy"] {
        let resp = kv.ok(Operation::Read, path, json!({})).await.unwrap();
        assert_eq!(resp.http_status, Some(404));
        assert_eq!(
            resp.warnings,
            vec!["Non-listing operations on the root of a K/V v2 mount are not supported."]
        );
    }
    // delete/ and destroy/ match their pattern, so a read there is 405.
    assert!(matches!(
        kv.call(Operation::Read, "delete/", json!({})).await,
        Err(Error::UnsupportedOperation)
    ));
    assert!(kv.s.keys().is_empty());
}
