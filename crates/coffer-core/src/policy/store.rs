//! Stored policies (`sys/policy/<name>` on the barrier) and the cache of compiled ACLs per
//! policy set. Any policy change bumps a generation, which invalidates every cached ACL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use coffer_sdk::Error;

use super::acl::{Acl, Rules};
use crate::barrier::Barrier;

const PREFIX: &str = "sys/policy/";

/// OpenBao's `default` policy, trimmed to the paths coffer serves.
const DEFAULT_POLICY: &str = r#"
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its resultant ACL from all policies
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to make requests to the Authorization Endpoint for OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow a token to look up lease properties and renew leases
path "sys/leases/lookup" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}
path "sys/renew" {
    capabilities = ["update"]
}
"#;

/// Policies on the barrier, with compiled ACLs cached per policy set.
pub struct PolicyStore {
    barrier: Arc<Barrier>,
    generation: AtomicU64,
    compiled: RwLock<HashMap<Vec<String>, Arc<Acl>>>,
}

impl PolicyStore {
    /// Opens the store, writing the `default` policy on first use.
    pub async fn load(barrier: Arc<Barrier>) -> Result<Self, Error> {
        let store = PolicyStore {
            barrier,
            generation: AtomicU64::new(1),
            compiled: RwLock::new(HashMap::new()),
        };
        if store.get("default").await?.is_none() {
            store.put("default", DEFAULT_POLICY.trim_start()).await?;
        }
        Ok(store)
    }

    /// Increases on every policy change; a cached ACL of an older generation is stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The policy text, or `None`.
    pub async fn get(&self, name: &str) -> Result<Option<String>, Error> {
        let name = normalize(name);
        if name == "root" {
            return Ok(Some(String::new()));
        }
        Ok(self
            .barrier
            .get(&format!("{PREFIX}{name}"))
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Validates and stores a policy.
    pub async fn put(&self, name: &str, text: &str) -> Result<(), Error> {
        let name = normalize(name);
        if name.is_empty() {
            return Err(Error::invalid("policy name must be provided"));
        }
        if name == "root" {
            return Err(Error::invalid("cannot update \"root\" policy"));
        }
        Rules::parse(text)?;
        self.barrier
            .put(&format!("{PREFIX}{name}"), text.as_bytes().to_vec())
            .await?;
        self.invalidate();
        Ok(())
    }

    /// Deletes a policy; `root` and `default` cannot be deleted.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        let name = normalize(name);
        if name == "root" || name == "default" {
            return Err(Error::invalid(format!("cannot delete \"{name}\" policy")));
        }
        self.barrier.delete(&format!("{PREFIX}{name}")).await?;
        self.invalidate();
        Ok(())
    }

    /// Every policy name, sorted, with `root` as OpenBao lists it.
    pub async fn list(&self) -> Result<Vec<String>, Error> {
        let mut names = self.barrier.list(PREFIX).await?;
        names.push("root".into());
        names.sort();
        Ok(names)
    }

    /// The compiled ACL of a policy set; compiled once per set and generation.
    pub async fn acl(&self, policies: &[String]) -> Result<Arc<Acl>, Error> {
        if policies.iter().any(|p| p == "root") {
            return Ok(Arc::new(Acl::root()));
        }
        if let Some(acl) = self.compiled.read().expect("acl cache lock").get(policies) {
            return Ok(acl.clone());
        }
        let generation = self.generation();
        let mut rules = Vec::with_capacity(policies.len());
        for name in policies {
            if let Some(text) = self.get(name).await? {
                rules.push(Rules::parse(&text)?);
            }
        }
        let acl = Arc::new(Acl::compile(&rules));
        if self.generation() == generation {
            self.compiled
                .write()
                .expect("acl cache lock")
                .insert(policies.to_vec(), acl.clone());
        }
        Ok(acl)
    }

    fn invalidate(&self) {
        let mut compiled = self.compiled.write().expect("acl cache lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        compiled.clear();
    }
}

/// Policy names are case-insensitive, as in OpenBao.
fn normalize(name: &str) -> String {
    name.trim().to_lowercase()
}
