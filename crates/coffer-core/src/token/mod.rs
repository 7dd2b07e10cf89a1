//! The token store: tokens kept only as salted hashes, an accessor index, a parent index so
//! that revoking a token revokes its children, and a cache of live entries for the hot path.
//!
//! TTLs are recorded on the entry and checked on every lookup; a token with a TTL is also due
//! in the expiration manager at its expiry, so that it is revoked then even if nobody uses it.
//! Revoking a token tells the expiration manager, which revokes the leases the token created.

mod backend;
mod entry;

pub use backend::{auth_of, handle, string_list};
pub use entry::TokenEntry;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use coffer_sdk::{Error, RequestAuth};
use hmac::{Hmac, Mac};
use rand::distributions::{Alphanumeric, DistString};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

use crate::barrier::Barrier;
use crate::expiration::ExpirationManager;

const SALT_PATH: &str = "core/token-salt";
const ID_PREFIX: &str = "sys/token/id/";
const ACCESSOR_PREFIX: &str = "sys/token/accessor/";
const PARENT_PREFIX: &str = "sys/token/parent/";
/// Entries kept in memory; beyond this the cache starts over (tokens are re-read on demand).
const CACHE_CAPACITY: usize = 100_000;

/// A looked-up, live token: its entry and the facts a request carries.
pub struct LiveToken {
    pub entry: Arc<TokenEntry>,
    pub auth: Arc<RequestAuth>,
}

/// What a new token should be.
#[derive(Default)]
pub struct TokenParams {
    /// Only for root tokens asked for by id (dev mode, `id` on create by root).
    pub id: Option<SecretString>,
    pub parent: Option<String>,
    pub policies: Vec<String>,
    pub path: String,
    pub display_name: String,
    pub meta: Option<std::collections::BTreeMap<String, String>>,
    pub ttl: u64,
    pub explicit_max_ttl: u64,
    pub num_uses: u64,
    pub renewable: bool,
    pub period: u64,
    pub entity_id: String,
    pub bound_cidrs: Vec<String>,
    pub wrapping: bool,
}

/// Salted-hash token storage on the barrier.
pub struct TokenStore {
    barrier: Arc<Barrier>,
    salt: SecretBox<[u8; 32]>,
    cache: RwLock<HashMap<String, Arc<LiveToken>>>,
    /// Serialises use counting so that two requests cannot spend the same last use.
    uses_lock: tokio::sync::Mutex<()>,
    /// Told of every revoked token, in the same storage batch, to revoke its leases.
    expiration: Arc<ExpirationManager>,
}

impl TokenStore {
    /// Loads the salt, creating it on first use.
    pub async fn load(
        barrier: Arc<Barrier>,
        expiration: Arc<ExpirationManager>,
    ) -> Result<Self, Error> {
        let salt = match barrier.get(SALT_PATH).await? {
            Some(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| Error::internal("token salt has the wrong length"))?,
            None => {
                let salt: [u8; 32] = rand::random();
                barrier.put(SALT_PATH, salt.to_vec()).await?;
                salt
            }
        };
        Ok(TokenStore {
            barrier,
            salt: SecretBox::new(Box::new(salt)),
            cache: RwLock::new(HashMap::new()),
            uses_lock: tokio::sync::Mutex::new(()),
            expiration,
        })
    }

    /// The keyed hash under which a token (or accessor) is stored; never reversible.
    pub fn hash(&self, token: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.salt.expose_secret())
            .expect("HMAC accepts any key length");
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Mints a token; returns the token itself (shown once) and its entry.
    pub async fn create(&self, params: TokenParams) -> Result<(SecretString, TokenEntry), Error> {
        let id = params
            .id
            .unwrap_or_else(|| SecretString::from(format!("s.{}", random_id())));
        let now = Utc::now();
        let mut ttl = params.ttl;
        if params.explicit_max_ttl > 0 && (ttl == 0 || ttl > params.explicit_max_ttl) {
            ttl = params.explicit_max_ttl;
        }
        if params.period > 0 {
            ttl = params.period;
        }
        let entry = TokenEntry {
            hash: self.hash(id.expose_secret()),
            accessor: random_id(),
            parent: params.parent,
            policies: params.policies,
            path: params.path,
            meta: params.meta,
            display_name: params.display_name,
            num_uses: params.num_uses,
            creation_time: now,
            ttl,
            explicit_max_ttl: params.explicit_max_ttl,
            expire_time: (ttl > 0).then(|| now + chrono::Duration::seconds(ttl as i64)),
            renewable: params.renewable && ttl > 0,
            period: params.period,
            entity_id: params.entity_id,
            bound_cidrs: params.bound_cidrs,
            wrapping: params.wrapping,
        };
        let mut ops = vec![
            coffer_storage::Op::Put(
                format!("{ID_PREFIX}{}", entry.hash),
                serde_json::to_vec(&entry).map_err(Error::internal)?,
            ),
            coffer_storage::Op::Put(
                format!("{ACCESSOR_PREFIX}{}", self.hash(&entry.accessor)),
                entry.hash.clone().into_bytes(),
            ),
        ];
        if let Some(parent) = &entry.parent {
            ops.push(coffer_storage::Op::Put(
                format!("{PARENT_PREFIX}{parent}/{}", entry.hash),
                Vec::new(),
            ));
        }
        if let Some(expire) = entry.expire_time {
            ops.push(self.expiration.token_due(&entry.hash, expire));
        }
        self.barrier.apply(ops).await?;
        if let Some(expire) = entry.expire_time {
            self.expiration.schedule(expire);
        }
        Ok((id, entry))
    }

    /// The live entry of a token, or `None` if it is unknown, revoked or expired.
    pub async fn lookup(&self, token: &str) -> Result<Option<Arc<LiveToken>>, Error> {
        let hash = self.hash(token);
        self.lookup_hash(&hash).await
    }

    /// As `lookup`, by the token's hash.
    pub async fn lookup_hash(&self, hash: &str) -> Result<Option<Arc<LiveToken>>, Error> {
        let cached = self
            .cache
            .read()
            .expect("token cache lock")
            .get(hash)
            .cloned();
        let live = match cached {
            Some(live) => live,
            None => {
                let Some(bytes) = self.barrier.get(&format!("{ID_PREFIX}{hash}")).await? else {
                    return Ok(None);
                };
                let entry: TokenEntry = serde_json::from_slice(&bytes).map_err(Error::internal)?;
                let live = Arc::new(LiveToken {
                    auth: Arc::new(entry.request_auth()),
                    entry: Arc::new(entry),
                });
                let mut cache = self.cache.write().expect("token cache lock");
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
                cache.insert(hash.to_owned(), live.clone());
                live
            }
        };
        if live.entry.is_expired(Utc::now()) {
            self.revoke_tree(hash).await?;
            return Ok(None);
        }
        Ok(Some(live))
    }

    /// The token hash an accessor belongs to.
    pub async fn hash_by_accessor(&self, accessor: &str) -> Result<Option<String>, Error> {
        let key = format!("{ACCESSOR_PREFIX}{}", self.hash(accessor));
        Ok(self
            .barrier
            .get(&key)
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Revokes a token and, recursively, every token it created. Returns the hashes revoked
    /// (so core can destroy their cubbyholes).
    pub async fn revoke_tree(&self, hash: &str) -> Result<Vec<String>, Error> {
        let mut revoked = Vec::new();
        let mut pending = vec![hash.to_owned()];
        while let Some(current) = pending.pop() {
            let children_prefix = format!("{PARENT_PREFIX}{current}/");
            for child in self.barrier.list(&children_prefix).await? {
                pending.push(child.trim_end_matches('/').to_owned());
            }
            self.revoke_one(&current).await?;
            revoked.push(current);
        }
        Ok(revoked)
    }

    /// Revokes only this token; its children become orphans.
    pub async fn revoke_orphan(&self, hash: &str) -> Result<(), Error> {
        let children_prefix = format!("{PARENT_PREFIX}{hash}/");
        for child in self.barrier.list(&children_prefix).await? {
            let child = child.trim_end_matches('/');
            if let Some(bytes) = self.barrier.get(&format!("{ID_PREFIX}{child}")).await? {
                let mut entry: TokenEntry =
                    serde_json::from_slice(&bytes).map_err(Error::internal)?;
                entry.parent = None;
                self.barrier
                    .put(
                        &format!("{ID_PREFIX}{child}"),
                        serde_json::to_vec(&entry).map_err(Error::internal)?,
                    )
                    .await?;
                self.evict(child);
            }
        }
        self.revoke_one(hash).await
    }

    /// Revokes a token (with its children) if its stored expiry is at or before `now`: the
    /// revoker's check when the token falls due, which a renewal may have moved since. Returns
    /// the hashes revoked (so core can destroy their cubbyholes).
    pub(crate) async fn revoke_if_expired(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, Error> {
        let Some(bytes) = self.barrier.get(&format!("{ID_PREFIX}{hash}")).await? else {
            return Ok(Vec::new());
        };
        let entry: TokenEntry = serde_json::from_slice(&bytes).map_err(Error::internal)?;
        if !entry.is_expired(now) {
            return Ok(Vec::new());
        }
        self.revoke_tree(hash).await
    }

    /// Extends a token's TTL by `increment` seconds (or its period), capped by its max TTL.
    pub async fn renew(
        &self,
        hash: &str,
        increment: u64,
        max_ttl: u64,
    ) -> Result<TokenEntry, Error> {
        let key = format!("{ID_PREFIX}{hash}");
        let bytes = self
            .barrier
            .get(&key)
            .await?
            .ok_or_else(|| Error::invalid("token not found"))?;
        let mut entry: TokenEntry = serde_json::from_slice(&bytes).map_err(Error::internal)?;
        if !entry.renewable {
            return Err(Error::invalid("lease is not renewable"));
        }
        let now = Utc::now();
        let mut ttl = if entry.period > 0 {
            entry.period
        } else if increment > 0 {
            increment
        } else {
            entry.ttl
        };
        let cap = if entry.explicit_max_ttl > 0 {
            entry.explicit_max_ttl
        } else {
            max_ttl
        };
        if cap > 0 && entry.period == 0 {
            let used = (now - entry.creation_time).num_seconds().max(0) as u64;
            ttl = ttl.min(cap.saturating_sub(used));
        }
        let old_expire = entry.expire_time;
        let expire = now + chrono::Duration::seconds(ttl as i64);
        entry.expire_time = Some(expire);
        entry.ttl = ttl;
        // The due-index entry moves with the expiry, in the same batch.
        let mut ops = Vec::with_capacity(3);
        ops.extend(old_expire.map(|old| self.expiration.token_not_due(hash, old)));
        ops.push(self.expiration.token_due(hash, expire));
        ops.push(coffer_storage::Op::Put(
            key,
            serde_json::to_vec(&entry).map_err(Error::internal)?,
        ));
        self.barrier.apply(ops).await?;
        self.evict(hash);
        self.expiration.schedule(expire);
        Ok(entry)
    }

    /// Spends one use of a limited-use token: `false` if none is left. The use that exhausts
    /// the token is allowed and revokes it, as OpenBao does.
    pub async fn spend_use(&self, hash: &str) -> Result<bool, Error> {
        let _serial = self.uses_lock.lock().await;
        let key = format!("{ID_PREFIX}{hash}");
        let Some(bytes) = self.barrier.get(&key).await? else {
            return Ok(false);
        };
        let mut entry: TokenEntry = serde_json::from_slice(&bytes).map_err(Error::internal)?;
        if entry.num_uses == 0 {
            return Ok(true);
        }
        entry.num_uses -= 1;
        if entry.num_uses == 0 {
            self.revoke_tree(hash).await?;
        } else {
            self.barrier
                .put(&key, serde_json::to_vec(&entry).map_err(Error::internal)?)
                .await?;
            self.evict(hash);
        }
        Ok(true)
    }

    /// `auth/token/tidy`: revokes expired tokens (with their children) and removes index
    /// entries that point at tokens which no longer exist. Returns how many entries went.
    pub async fn tidy(&self) -> Result<usize, Error> {
        let now = Utc::now();
        let mut removed = 0;
        for hash in self.barrier.list(ID_PREFIX).await? {
            let Some(bytes) = self.barrier.get(&format!("{ID_PREFIX}{hash}")).await? else {
                continue;
            };
            let entry: TokenEntry = serde_json::from_slice(&bytes).map_err(Error::internal)?;
            if entry.is_expired(now) {
                removed += self.revoke_tree(&hash).await?.len();
            }
        }
        for accessor in self.barrier.list(ACCESSOR_PREFIX).await? {
            let key = format!("{ACCESSOR_PREFIX}{accessor}");
            let Some(target) = self.barrier.get(&key).await? else {
                continue;
            };
            let target = String::from_utf8_lossy(&target).into_owned();
            if self
                .barrier
                .get(&format!("{ID_PREFIX}{target}"))
                .await?
                .is_none()
            {
                self.barrier.delete(&key).await?;
                removed += 1;
            }
        }
        for parent in self.barrier.list(PARENT_PREFIX).await? {
            let dir = format!("{PARENT_PREFIX}{parent}");
            for child in self.barrier.list(&dir).await? {
                if self
                    .barrier
                    .get(&format!("{ID_PREFIX}{child}"))
                    .await?
                    .is_none()
                {
                    self.barrier.delete(&format!("{dir}{child}")).await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Forgets every cached entry (on seal).
    pub fn clear_cache(&self) {
        self.cache.write().expect("token cache lock").clear();
    }

    async fn revoke_one(&self, hash: &str) -> Result<(), Error> {
        let key = format!("{ID_PREFIX}{hash}");
        let Some(bytes) = self.barrier.get(&key).await? else {
            self.evict(hash);
            return Ok(());
        };
        let entry: TokenEntry = serde_json::from_slice(&bytes).map_err(Error::internal)?;
        let mut ops = vec![
            coffer_storage::Op::Delete(key),
            coffer_storage::Op::Delete(format!("{ACCESSOR_PREFIX}{}", self.hash(&entry.accessor))),
        ];
        if let Some(parent) = &entry.parent {
            ops.push(coffer_storage::Op::Delete(format!(
                "{PARENT_PREFIX}{parent}/{hash}"
            )));
        }
        if let Some(expire) = entry.expire_time {
            ops.push(self.expiration.token_not_due(hash, expire));
        }
        ops.push(self.expiration.token_revoked(hash));
        self.barrier.apply(ops).await?;
        self.evict(hash);
        self.expiration.wake();
        Ok(())
    }

    fn evict(&self, hash: &str) {
        self.cache.write().expect("token cache lock").remove(hash);
    }
}

/// 24 random base62 characters, as OpenBao's token ids and accessors.
fn random_id() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 24)
}

/// Seconds left until `expire`, or 0 without expiry.
pub fn remaining(expire: Option<DateTime<Utc>>, now: DateTime<Utc>) -> u64 {
    expire.map_or(0, |e| (e - now).num_seconds().max(0) as u64)
}
