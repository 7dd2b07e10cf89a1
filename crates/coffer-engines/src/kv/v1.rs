//! kv v1: arbitrary JSON objects at any path, one storage entry each, as openbao's passthrough
//! backend (`builtin/logical/kv/passthrough.go`).

use async_trait::async_trait;
use coffer_sdk::framework::{Path, Paths};
use coffer_sdk::{Backend, BackendKind, Error, Lease, Operation, Request, Response, Storage};

use crate::passthrough;

/// The unversioned kv engine.
pub struct KvV1 {
    paths: Paths<()>,
}

impl KvV1 {
    /// A kv v1 backend; it keeps no state of its own.
    pub fn new() -> Self {
        KvV1 {
            paths: Paths::new().path(Path::new("{path:*}").read(()).write(()).delete(()).list(())),
        }
    }
}

impl Default for KvV1 {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Backend for KvV1 {
    fn kind(&self) -> BackendKind {
        BackendKind::Secrets
    }

    async fn exists(&self, req: &Request, storage: &dyn Storage) -> Result<Option<bool>, Error> {
        if req.path.is_empty() || req.path.ends_with('/') {
            return Ok(None);
        }
        Ok(Some(storage.get(&req.path).await?.is_some()))
    }

    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        let route = self.paths.route(&req.path, req.operation)?;
        let key = route.captures.get("path").unwrap_or_default();
        match req.operation {
            Operation::Read => {
                let Some(data) = passthrough::read(storage, key).await? else {
                    return Ok(None);
                };
                // OpenBao reports a `ttl` (or `lease`) field of the secret, else the mount's
                // default TTL, as the response's lease duration: a hint to re-read, not a lease
                // to revoke.
                let ttl = data
                    .get("ttl")
                    .or_else(|| data.get("lease"))
                    .and_then(|v| coffer_sdk::duration::parse_seconds(v).ok())
                    .unwrap_or(req.default_lease_ttl);
                let mut resp = Response::with_data(data);
                resp.lease = (ttl > 0).then(|| Lease {
                    lease_id: String::new(),
                    ttl,
                    renewable: false,
                    ..Lease::default()
                });
                Ok(Some(resp))
            }
            Operation::Create | Operation::Update => {
                passthrough::check_writable(&req.path)?;
                if key.is_empty() {
                    return Err(Error::invalid("missing path"));
                }
                passthrough::write(storage, key, &req.data).await?;
                Ok(None)
            }
            Operation::Delete => {
                storage.delete(key).await?;
                Ok(None)
            }
            Operation::List => passthrough::list(storage, key).await,
            Operation::Patch => Err(Error::UnsupportedOperation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{req, MemStorage};
    use serde_json::json;

    #[tokio::test]
    async fn write_read_list_delete_round_trip() {
        let kv = KvV1::new();
        let s = MemStorage::default();
        let w = kv
            .handle(
                req(
                    Operation::Update,
                    "a/b",
                    json!({"x": 1, "y": {"z": [1, 2]}}),
                ),
                &s,
            )
            .await
            .unwrap();
        assert!(w.is_none());
        kv.handle(req(Operation::Create, "a/c", json!({"x": 2})), &s)
            .await
            .unwrap();
        let r = kv
            .handle(req(Operation::Read, "a/b", json!({})), &s)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            Value::Object(r.data.unwrap()),
            json!({"x": 1, "y": {"z": [1, 2]}})
        );
        assert!(r.lease.is_none());
        let l = kv
            .handle(req(Operation::List, "a", json!({})), &s)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(l.data.unwrap()["keys"], json!(["b", "c"]));
        let root = kv
            .handle(req(Operation::List, "", json!({})), &s)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(root.data.unwrap()["keys"], json!(["a/"]));
        kv.handle(req(Operation::Delete, "a/b", json!({})), &s)
            .await
            .unwrap();
        // Deleting again succeeds, as OpenBao answers 204 twice.
        kv.handle(req(Operation::Delete, "a/b", json!({})), &s)
            .await
            .unwrap();
        assert!(kv
            .handle(req(Operation::Read, "a/b", json!({})), &s)
            .await
            .unwrap()
            .is_none());
        assert!(kv
            .handle(req(Operation::List, "nope", json!({})), &s)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn ttl_field_becomes_the_lease_duration() {
        let kv = KvV1::new();
        let s = MemStorage::default();
        kv.handle(
            req(Operation::Update, "c", json!({"x": 1, "ttl": "1h"})),
            &s,
        )
        .await
        .unwrap();
        let r = kv
            .handle(req(Operation::Read, "c", json!({})), &s)
            .await
            .unwrap()
            .unwrap();
        let lease = r.lease.unwrap();
        assert_eq!(lease.ttl, 3600);
        assert!(lease.lease_id.is_empty());
        assert_eq!(r.data.unwrap()["ttl"], json!("1h"));
    }

    #[tokio::test]
    async fn refuses_empty_bodies_trailing_slashes_and_patch() {
        let kv = KvV1::new();
        let s = MemStorage::default();
        let err = kv
            .handle(req(Operation::Update, "a/d", json!({})), &s)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(m) if m == "missing data fields"));
        let err = kv
            .handle(req(Operation::Update, "a/", json!({"x": 1})), &s)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidRequest(m) if m == "cannot write to a path ending in '/'")
        );
        let err = kv
            .handle(req(Operation::Patch, "a", json!({"x": 1})), &s)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnsupportedOperation));
        assert!(s.keys().is_empty());
    }

    use serde_json::Value;
}
