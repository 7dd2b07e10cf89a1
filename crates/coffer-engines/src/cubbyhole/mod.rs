//! The cubbyhole engine: a private key/value space per token (openbao
//! `vault/logical_cubbyhole.go`). Every key is stored under `<token_hash>/`, so no token can
//! name another's entries, and the core wipes the whole prefix when the token is revoked.

use std::sync::Arc;

use async_trait::async_trait;
use coffer_sdk::framework::{Path, Paths};
use coffer_sdk::{
    Backend, BackendConfig, BackendKind, Error, Factory, Operation, Request, Response, Storage,
};

use crate::passthrough;

/// Builds cubbyhole mounts.
pub fn cubbyhole_factory() -> Factory {
    Arc::new(|_config: &BackendConfig| {
        let backend: Arc<dyn Backend> = Arc::new(Cubbyhole::new());
        Ok(backend)
    })
}

/// The storage prefix (relative to the cubbyhole mount) that holds everything of the token
/// whose hash is `token_hash`; the core deletes it when the token is revoked.
pub fn cubbyhole_prefix(token_hash: &str) -> String {
    format!("{token_hash}/")
}

/// The per-token private store.
pub struct Cubbyhole {
    paths: Paths<()>,
}

impl Cubbyhole {
    /// A cubbyhole backend; it keeps no state of its own.
    pub fn new() -> Self {
        Cubbyhole {
            paths: Paths::new().path(Path::new("{path:*}").read(()).write(()).delete(()).list(())),
        }
    }
}

impl Default for Cubbyhole {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Backend for Cubbyhole {
    fn kind(&self) -> BackendKind {
        BackendKind::Secrets
    }

    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        // Without a token there is no cubbyhole to address.
        let token_hash = match req.auth.as_deref() {
            Some(auth) if !auth.token_hash.is_empty() => auth.token_hash.as_str(),
            _ => return Err(Error::PermissionDenied),
        };
        let route = self.paths.route(&req.path, req.operation)?;
        let path = route.captures.get("path").unwrap_or_default();
        let mut key = cubbyhole_prefix(token_hash);
        key.push_str(path);
        match req.operation {
            Operation::Read => {
                // OpenBao answers 500 "missing path" here; it is the client's mistake: 400.
                if path.is_empty() {
                    return Err(Error::invalid("missing path"));
                }
                Ok(passthrough::read(storage, &key)
                    .await?
                    .map(Response::with_data))
            }
            Operation::Create | Operation::Update => {
                passthrough::check_writable(&req.path)?;
                if path.is_empty() {
                    return Err(Error::invalid("missing path"));
                }
                // OpenBao answers an empty body with 500 "missing data fields"; coffer: 400.
                passthrough::write(storage, &key, &req.data).await?;
                Ok(None)
            }
            Operation::Delete => {
                if !path.is_empty() {
                    storage.delete(&key).await?;
                }
                Ok(None)
            }
            Operation::List => {
                if path.is_empty() || path.ends_with('/') {
                    Ok(passthrough::list_response(storage.list(&key).await?))
                } else {
                    key.push('/');
                    Ok(passthrough::list_response(storage.list(&key).await?))
                }
            }
            Operation::Patch => Err(Error::UnsupportedOperation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{req, req_as, MemStorage};
    use serde_json::{json, Value};

    const ALICE: &str = "hash-alice";
    const BOB: &str = "hash-bob";

    async fn call(
        c: &Cubbyhole,
        s: &MemStorage,
        op: Operation,
        path: &str,
        body: Value,
        who: &str,
    ) -> Result<Option<Response>, Error> {
        c.handle(req_as(op, path, body, who), s).await
    }

    #[tokio::test]
    async fn each_token_sees_only_its_own_entries() {
        let c = Cubbyhole::new();
        let s = MemStorage::default();
        call(&c, &s, Operation::Update, "a/b", json!({"x": 1}), ALICE)
            .await
            .unwrap();
        call(&c, &s, Operation::Update, "a/b", json!({"x": 2}), BOB)
            .await
            .unwrap();
        let alice = call(&c, &s, Operation::Read, "a/b", json!({}), ALICE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(alice.data.unwrap()["x"], json!(1));
        let bob = call(&c, &s, Operation::Read, "a/b", json!({}), BOB)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bob.data.unwrap()["x"], json!(2));

        call(
            &c,
            &s,
            Operation::Update,
            "only-alice",
            json!({"y": 1}),
            ALICE,
        )
        .await
        .unwrap();
        assert!(call(&c, &s, Operation::Read, "only-alice", json!({}), BOB)
            .await
            .unwrap()
            .is_none());
        let bob_root = call(&c, &s, Operation::List, "", json!({}), BOB)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bob_root.data.unwrap()["keys"], json!(["a/"]));
        let alice_root = call(&c, &s, Operation::List, "", json!({}), ALICE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            alice_root.data.unwrap()["keys"],
            json!(["a/", "only-alice"])
        );

        // Bob deleting his entry leaves Alice's alone.
        call(&c, &s, Operation::Delete, "a/b", json!({}), BOB)
            .await
            .unwrap();
        assert!(call(&c, &s, Operation::Read, "a/b", json!({}), BOB)
            .await
            .unwrap()
            .is_none());
        assert!(call(&c, &s, Operation::Read, "a/b", json!({}), ALICE)
            .await
            .unwrap()
            .is_some());

        // Everything of a token lives under its prefix, which the core wipes on revocation.
        assert!(s
            .keys()
            .iter()
            .all(|k| k.starts_with(&cubbyhole_prefix(ALICE))));
    }

    #[tokio::test]
    async fn requests_without_a_token_are_denied() {
        let c = Cubbyhole::new();
        let s = MemStorage::default();
        let err = c
            .handle(req(Operation::Read, "a", json!({})), &s)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied));
        let err = call(&c, &s, Operation::Update, "a", json!({"x": 1}), "")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied));
    }

    #[tokio::test]
    async fn openbao_errors_for_bad_requests() {
        let c = Cubbyhole::new();
        let s = MemStorage::default();
        let missing = call(&c, &s, Operation::Update, "a/d", json!({}), ALICE)
            .await
            .unwrap_err();
        assert!(matches!(missing, Error::InvalidRequest(m) if m == "missing data fields"));
        let slash = call(&c, &s, Operation::Update, "a/", json!({"x": 1}), ALICE)
            .await
            .unwrap_err();
        assert!(
            matches!(slash, Error::InvalidRequest(m) if m == "cannot write to a path ending in '/'")
        );
        let root = call(&c, &s, Operation::Read, "", json!({}), ALICE)
            .await
            .unwrap_err();
        assert!(matches!(root, Error::InvalidRequest(m) if m == "missing path"));
        let patch = call(&c, &s, Operation::Patch, "a", json!({"x": 1}), ALICE)
            .await
            .unwrap_err();
        assert!(matches!(patch, Error::UnsupportedOperation));
        assert!(call(&c, &s, Operation::List, "nope", json!({}), ALICE)
            .await
            .unwrap()
            .is_none());
        assert!(call(&c, &s, Operation::Delete, "", json!({}), ALICE)
            .await
            .unwrap()
            .is_none());
    }

    #[test]
    fn prefix_is_the_hash_and_a_slash() {
        assert_eq!(cubbyhole_prefix("abc"), "abc/");
    }
}
