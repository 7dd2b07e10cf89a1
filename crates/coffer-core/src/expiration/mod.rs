//! The expiration manager: the leases of secrets that mounts issue (OpenBao's
//! `vault/expiration.go`). Core registers a lease when a backend answers with one; the manager
//! renews it through the mount, revokes it on request, by prefix, with the token that created
//! it, or when it expires.
//!
//! Leases live in the barrier, one entry per lease, indexed by due time and by token (see
//! `index.rs`); nothing is loaded into memory at unseal. A revoker task sleeps until the
//! earliest due lease (or a wake-up), takes up a bounded batch, revokes it a bounded number at a
//! time, and reschedules failures with exponential backoff. A lease whose revocation fails
//! `max_attempts` times, or fails in a way retrying cannot fix, is marked irrevocable: kept,
//! shown by lookup and `sys/leases?type=irrevocable`, never retried on its own.
//!
//! Tokens stay with the token store, but a token with a TTL also has a due-index entry at its
//! expiry, written in the batch that stores it (created or renewed): the revoker then revokes
//! it through the token store, with its children, their cubbyholes and their leases, as
//! OpenBao's expiration manager revokes an expired auth lease, so that a token nobody uses
//! again does not keep its leases alive.

mod entry;
mod index;
pub(crate) mod sys;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use coffer_sdk::{Backend, Error, Lease, Response, Storage};
use coffer_storage::Op;
use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Map;
use tokio::sync::{watch, Mutex, Notify};
use tokio::task::JoinSet;

use crate::barrier::Barrier;
use crate::core::{Core, Unsealed};
use crate::mount::{MountEntry, Route, RouteTable, Target};
use crate::token::{LiveToken, TokenStore};
pub(crate) use entry::MountTtls;
use entry::{after, calculate_ttl, LeaseEntry};
use index::Due;

/// How the revoker paces itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Failed attempts after which a lease is marked irrevocable (OpenBao: 6).
    pub(crate) max_attempts: u32,
    /// The first retry waits about twice this, each next one twice longer, with ±50% jitter
    /// (OpenBao: 10s).
    pub(crate) retry_base: Duration,
    /// Due leases taken up per pass: the bound of the revocation queue.
    pub(crate) batch: usize,
    /// Revocations running at once.
    pub(crate) concurrency: usize,
    /// The longest the revoker sleeps without a deadline or a wake-up.
    pub(crate) idle: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_attempts: 6,
            retry_base: Duration::from_secs(10),
            batch: 256,
            concurrency: 16,
            idle: Duration::from_secs(60),
        }
    }
}

/// The leases of one unsealed vault.
pub struct ExpirationManager {
    barrier: Arc<Barrier>,
    settings: Settings,
    /// Serialise work on one lease (renew, revoke, the revoker); a lease maps to a shard.
    locks: Box<[Mutex<()>]>,
    wake: Arc<Notify>,
    /// Dropped with the manager on seal: the revoker task sees the channel close and stops.
    stop: watch::Sender<()>,
    /// Unix second the revoker sleeps towards (`i64::MAX` while a pass runs), so that a lease
    /// due earlier wakes it.
    next_due: AtomicI64,
}

/// What registering the lease of a response needs, taken from the request before the backend
/// consumes it.
pub(crate) struct Issuer {
    path: String,
    token_hash: String,
    mount: Arc<MountEntry>,
    ttls: MountTtls,
}

impl Issuer {
    /// Whether responses of this mount may carry leases to register: not kv, whose leases are
    /// TTL hints (OpenBao's non-leased passthrough).
    pub(crate) fn may_issue(route: &Route) -> bool {
        !matches!(route.entry.mount_type.as_str(), "kv" | "generic")
    }

    /// The issuer of a lease of the request at `rel` (relative to the route), made only once
    /// a response carries a lease.
    pub(crate) fn of(
        route: &Route,
        rel: &str,
        ttls: MountTtls,
        token: Option<&LiveToken>,
    ) -> Issuer {
        Issuer {
            path: format!("{}{rel}", route.path),
            token_hash: token.map(|t| t.entry.hash.clone()).unwrap_or_default(),
            mount: route.entry.clone(),
            ttls,
        }
    }
}

/// The mount that issued a lease, found again to renew or revoke it.
pub(crate) struct LeaseMount {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) ttls: MountTtls,
}

/// Finds the mount of a lease (the router in production, a fake in tests).
pub(crate) trait Mounts: Send + Sync {
    fn mount_of(&self, lease: &LeaseEntry) -> Result<LeaseMount, Error>;
}

/// The mounts of a route table snapshot.
pub(crate) struct Routes {
    table: Arc<RouteTable>,
    system: MountTtls,
}

impl Routes {
    pub(crate) fn of(core: &Core, state: &Unsealed) -> Routes {
        Routes {
            table: state.router.load_full(),
            system: MountTtls {
                default: core.default_lease_ttl(),
                max: core.max_lease_ttl(),
            },
        }
    }
}

impl Mounts for Routes {
    /// The mount serving the lease's path if it is still the one that issued it, else the
    /// issuing mount wherever it was moved; a mount mounted later at the same path never gets
    /// another mount's lease.
    fn mount_of(&self, lease: &LeaseEntry) -> Result<LeaseMount, Error> {
        let by_path = self
            .table
            .find(&lease.path)
            .map(|(route, _)| route)
            .filter(|route| route.entry.uuid == lease.mount_uuid);
        let route = by_path
            .or_else(|| self.table.iter().find(|r| r.entry.uuid == lease.mount_uuid))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "failed to revoke entry: the mount that issued lease {:?} is gone",
                    lease.lease_id
                ))
            })?;
        let Target::Backend(backend) = &route.target else {
            return Err(Error::invalid("lease does not correspond to a secret"));
        };
        let or_system = |v: u64, system: u64| if v == 0 { system } else { v };
        Ok(LeaseMount {
            backend: backend.clone(),
            storage: route.view.clone(),
            ttls: MountTtls {
                default: or_system(route.entry.config.default_lease_ttl, self.system.default),
                max: or_system(route.entry.config.max_lease_ttl, self.system.max),
            },
        })
    }
}

/// Revokes expired tokens for the revoker (the token store in production, reached through the
/// unsealed state; a bare token store in tests).
#[async_trait::async_trait]
pub(crate) trait Tokens: Send + Sync {
    /// Revokes a token whose stored expiry is at or before `now`, as revoking it by hand
    /// would: its children, their cubbyholes, their leases. Nothing if it is gone or was
    /// renewed past `now`.
    async fn revoke_expired(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), Error>;
}

/// The token store of the unsealed vault, held weakly so that the revoker never keeps a sealed
/// vault's state alive.
struct LiveTokens(Weak<Unsealed>);

#[async_trait::async_trait]
impl Tokens for LiveTokens {
    async fn revoke_expired(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let state = self.0.upgrade().ok_or(Error::Sealed)?;
        let revoked = state.tokens.revoke_if_expired(token_hash, now).await?;
        state.destroy_cubbyholes(&revoked).await
    }
}

/// An irrevocable lease as `sys/leases?type=irrevocable` lists it.
#[derive(Serialize, Deserialize)]
pub(crate) struct IrrevocableRecord {
    pub(crate) lease_id: String,
    pub(crate) mount_accessor: String,
    pub(crate) error: String,
    pub(crate) expire_time: DateTime<Utc>,
}

/// Starts the revoker of an unsealed vault. It holds the state only while a pass runs and
/// stops when the state is dropped on seal.
pub(crate) fn start(state: &Arc<Unsealed>, system: MountTtls) {
    let weak: Weak<Unsealed> = Arc::downgrade(state);
    let wake = state.expiration.wake.clone();
    let mut stop = state.expiration.stop.subscribe();
    let tokens: Arc<dyn Tokens> = Arc::new(LiveTokens(weak.clone()));
    tokio::spawn(async move {
        loop {
            let pause = {
                let Some(state) = weak.upgrade() else { break };
                let manager = state.expiration.clone();
                let mounts: Arc<dyn Mounts> = Arc::new(Routes {
                    table: state.router.load_full(),
                    system,
                });
                drop(state);
                manager.pass(mounts, tokens.clone()).await
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = wake.notified() => {}
                _ = stop.changed() => break,
            }
        }
    });
}

impl ExpirationManager {
    pub(crate) fn new(barrier: Arc<Barrier>) -> Self {
        Self::with_settings(barrier, Settings::default())
    }

    pub(crate) fn with_settings(barrier: Arc<Barrier>, settings: Settings) -> Self {
        ExpirationManager {
            barrier,
            settings,
            locks: (0..LOCK_SHARDS).map(|_| Mutex::new(())).collect(),
            wake: Arc::new(Notify::new()),
            stop: watch::Sender::new(()),
            next_due: AtomicI64::new(i64::MAX),
        }
    }

    /// Registers the lease of a backend's response, if it carries a new one: assigns its id
    /// (`<request path>/<random>`), caps its TTL by the mount's max (with OpenBao's warning),
    /// and stores it with its indexes. If it cannot be stored, the secret is revoked at once:
    /// nothing would ever revoke it later.
    pub(crate) async fn register(
        &self,
        issuer: Issuer,
        backend: &dyn Backend,
        storage: &dyn Storage,
        resp: &mut Response,
    ) -> Result<(), Error> {
        let Some(lease) = resp.lease.as_mut().filter(|l| l.lease_id.is_empty()) else {
            return Ok(());
        };
        match self.store_new(&issuer, lease).await {
            Ok(warning) => {
                // The internal data stays with the lease; nothing downstream may see it.
                lease.internal_data = Map::new();
                resp.warnings.extend(warning);
                Ok(())
            }
            Err(e) => {
                if let Err(revoke) = backend.revoke(lease, storage).await {
                    tracing::error!(path = %issuer.path, error = %revoke,
                        "a secret whose lease could not be registered could not be revoked either");
                }
                Err(e)
            }
        }
    }

    /// A lease by id.
    pub(crate) async fn lookup(&self, lease_id: &str) -> Result<Option<LeaseEntry>, Error> {
        if !index::valid_lease_id(lease_id) {
            return Ok(None);
        }
        match self.barrier.get(&index::id_key(lease_id)).await? {
            Some(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).map_err(Error::internal)?,
            )),
            None => Ok(None),
        }
    }

    /// The lease ids and subdirectories directly under `prefix` (empty or ending in `/`).
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        if !index::valid_prefix(prefix) {
            return Ok(Vec::new());
        }
        Ok(self.barrier.list(&index::id_key(prefix)).await?)
    }

    /// Renews a lease through its mount by `increment` seconds (0: the mount decides), as
    /// OpenBao's `ExpirationManager.Renew`. `Ok(None)` when the mount renewed nothing.
    pub(crate) async fn renew(
        &self,
        mounts: &dyn Mounts,
        lease_id: &str,
        increment: u64,
    ) -> Result<Option<Response>, Error> {
        let _lease = self.lock(lease_id).await;
        let mut entry = self
            .lookup(lease_id)
            .await?
            .ok_or_else(|| Error::invalid("lease not found"))?;
        let now = Utc::now();
        entry.check_renewable(now)?;
        let mount = mounts.mount_of(&entry)?;
        let resp = mount
            .backend
            .renew(&entry.to_lease(increment), mount.storage.as_ref())
            .await?;
        let Some(renewed) = resp.lease else {
            return Ok(None);
        };
        let (ttl, warning) = calculate_ttl(
            now,
            entry.issue_time,
            increment,
            renewed.ttl,
            renewed.max_ttl,
            mount.ttls,
        )?;
        let old_due = index::due_key(entry.due, lease_id);
        entry.expire_time = after(now, ttl);
        entry.due = entry.expire_time;
        entry.last_renewal = Some(now);
        entry.renewable = renewed.renewable;
        entry.max_ttl = renewed.max_ttl;
        entry.attempts = 0;
        if !renewed.internal_data.is_empty() {
            entry.internal_data = renewed.internal_data;
        }
        self.store_moving_due(lease_id, &entry, old_due).await?;
        self.schedule(entry.due);
        let mut warnings = resp.warnings;
        warnings.extend(warning);
        Ok(Some(Response {
            data: resp.data,
            lease: Some(Lease {
                lease_id: lease_id.to_owned(),
                ttl,
                renewable: entry.renewable,
                ..Lease::default()
            }),
            warnings,
            ..Response::default()
        }))
    }

    /// Revokes a lease now: the mount revokes the secret, then the lease is deleted. With
    /// `force`, a failure of the mount is logged and the lease deleted anyway (OpenBao's
    /// `revoke-force`). Revoking an unknown lease succeeds.
    pub(crate) async fn revoke(
        &self,
        mounts: &dyn Mounts,
        lease_id: &str,
        force: bool,
    ) -> Result<(), Error> {
        let _lease = self.lock(lease_id).await;
        let Some(entry) = self.lookup(lease_id).await? else {
            return Ok(());
        };
        if let Err(e) = revoke_at_mount(mounts, &entry).await {
            if !force {
                return Err(e);
            }
            tracing::warn!(lease_id, error = %e,
                "revocation by the mount failed, but in force mode so ignoring");
        }
        self.delete(&entry).await
    }

    /// Makes a lease due now, for the revoker to take up (OpenBao's `LazyRevoke`). Whether it
    /// exists. An irrevocable lease stays as it is.
    pub(crate) async fn revoke_lazily(&self, lease_id: &str) -> Result<bool, Error> {
        let _lease = self.lock(lease_id).await;
        let Some(mut entry) = self.lookup(lease_id).await? else {
            return Ok(false);
        };
        if entry.is_irrevocable() {
            return Ok(true);
        }
        let now = Utc::now();
        let old_due = index::due_key(entry.due, lease_id);
        entry.expire_time = entry.expire_time.min(now);
        // On the whole second, so that the pass this wakes takes it up at once (the due index
        // rounds a fraction up to the next second).
        entry.due = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        self.store_moving_due(lease_id, &entry, old_due).await?;
        self.wake.notify_one();
        Ok(true)
    }

    /// Revokes every lease under `prefix`, a path segment boundary (`pki/issue` covers
    /// `pki/issue/web/...`, not `pki/issue-other/...`), or the one lease named by it; now
    /// (`sync`) or through the revoker. As OpenBao, the first failure stops a synchronous run.
    pub(crate) async fn revoke_prefix(
        &self,
        mounts: &dyn Mounts,
        prefix: &str,
        force: bool,
        sync: bool,
    ) -> Result<(), Error> {
        let mut prefix = prefix.to_owned();
        if !prefix.ends_with('/') {
            if self.lookup(&prefix).await?.is_some() {
                return self.revoke_one_of_many(mounts, &prefix, force, sync).await;
            }
            prefix.push('/');
        }
        if !index::valid_prefix(&prefix) {
            return Ok(());
        }
        // Directory by directory: memory holds one directory listing, not every lease.
        let mut pending = vec![prefix];
        while let Some(dir) = pending.pop() {
            for child in self.barrier.list(&index::id_key(&dir)).await? {
                let path = format!("{dir}{child}");
                if child.ends_with('/') {
                    pending.push(path);
                } else {
                    self.revoke_one_of_many(mounts, &path, force, sync).await?;
                }
            }
        }
        Ok(())
    }

    /// The storage op that records a token's revocation; the token store adds it to the batch
    /// that deletes the token, so that the token's leases are revoked even after a crash.
    pub(crate) fn token_revoked(&self, token_hash: &str) -> Op {
        Op::Put(format!("{}{token_hash}", index::REVOKED_TOKENS), Vec::new())
    }

    /// Wakes the revoker (a token was revoked).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// The storage op that makes a token due at its expiry; the token store adds it to the
    /// batch that stores the token (created, or renewed to a new expiry), then calls
    /// `schedule`.
    pub(crate) fn token_due(&self, token_hash: &str, expire_time: DateTime<Utc>) -> Op {
        Op::Put(
            index::token_due_key(expire_time, token_hash),
            token_hash.as_bytes().to_vec(),
        )
    }

    /// The storage op that withdraws `token_due`, in the batch that revokes the token or moves
    /// its expiry.
    pub(crate) fn token_not_due(&self, token_hash: &str, expire_time: DateTime<Utc>) -> Op {
        Op::Delete(index::token_due_key(expire_time, token_hash))
    }

    /// `sys/leases/tidy`: revokes (forcibly, as OpenBao) leases whose token no longer exists,
    /// and removes index entries that point at no lease. Returns how many leases went.
    pub(crate) async fn tidy(
        &self,
        mounts: &dyn Mounts,
        tokens: &TokenStore,
    ) -> Result<usize, Error> {
        let mut live: HashMap<String, bool> = HashMap::new();
        let mut revoked = 0;
        let mut pending = vec![String::new()];
        while let Some(dir) = pending.pop() {
            for child in self.barrier.list(&index::id_key(&dir)).await? {
                let lease_id = format!("{dir}{child}");
                if child.ends_with('/') {
                    pending.push(lease_id);
                    continue;
                }
                let Some(entry) = self.lookup(&lease_id).await? else {
                    continue;
                };
                let token_lives = match live.get(&entry.token_hash) {
                    Some(known) => *known,
                    None => {
                        let alive = !entry.token_hash.is_empty()
                            && tokens.lookup_hash(&entry.token_hash).await?.is_some();
                        if live.len() >= TIDY_TOKEN_CACHE {
                            live.clear();
                        }
                        live.insert(entry.token_hash.clone(), alive);
                        alive
                    }
                };
                if !token_lives {
                    self.revoke(mounts, &lease_id, true).await?;
                    revoked += 1;
                }
            }
        }
        self.tidy_index(index::DUE).await?;
        self.tidy_index(index::BY_TOKEN).await?;
        self.tidy_index(index::IRREVOCABLE).await?;
        Ok(revoked)
    }

    /// Every irrevocable lease.
    pub(crate) async fn irrevocable(&self) -> Result<Vec<IrrevocableRecord>, Error> {
        let mut out = Vec::new();
        for key in self.barrier.list(index::IRREVOCABLE).await? {
            if let Some(bytes) = self
                .barrier
                .get(&format!("{}{key}", index::IRREVOCABLE))
                .await?
            {
                out.push(serde_json::from_slice(&bytes).map_err(Error::internal)?);
            }
        }
        Ok(out)
    }

    /// One pass of the revoker, then how long to sleep before the next.
    async fn pass(self: &Arc<Self>, mounts: Arc<dyn Mounts>, tokens: Arc<dyn Tokens>) -> Duration {
        self.next_due.store(i64::MAX, Ordering::SeqCst);
        let now = Utc::now();
        match self.run_due(mounts, tokens, now).await {
            Ok(Pass { more: true, .. }) => Duration::ZERO,
            Ok(Pass { failed: 0, .. }) => match index::next_due(&self.barrier).await {
                Ok(Some(next)) => {
                    self.next_due.store(next, Ordering::SeqCst);
                    let wait = (next - Utc::now().timestamp()).max(0).unsigned_abs();
                    // The due index counts whole seconds: a little past the second boundary.
                    (Duration::from_secs(wait) + Duration::from_millis(20)).min(self.settings.idle)
                }
                Ok(None) | Err(Error::Sealed) => self.settings.idle,
                Err(e) => {
                    tracing::warn!(error = %e, "lease revoker could not read its index");
                    ERROR_PAUSE
                }
            },
            Ok(Pass { failed, .. }) => {
                tracing::warn!(failed, "lease revoker could not process some leases");
                ERROR_PAUSE
            }
            Err(Error::Sealed) => self.settings.idle,
            Err(e) => {
                tracing::warn!(error = %e, "lease revoker pass failed");
                ERROR_PAUSE
            }
        }
    }

    /// Makes the leases of revoked tokens due, then revokes up to one batch of due leases and
    /// expired tokens, `concurrency` at a time, as of `now`.
    pub(crate) async fn run_due(
        self: &Arc<Self>,
        mounts: Arc<dyn Mounts>,
        tokens: Arc<dyn Tokens>,
        now: DateTime<Utc>,
    ) -> Result<Pass, Error> {
        self.expire_revoked_tokens().await?;
        let due = index::due(&self.barrier, now.timestamp(), self.settings.batch).await?;
        let mut pass = Pass {
            more: due.len() >= self.settings.batch,
            failed: 0,
        };
        let mut tasks = JoinSet::new();
        for (key, due) in due {
            while tasks.len() >= self.settings.concurrency {
                pass.note(tasks.join_next().await)?;
            }
            let manager = self.clone();
            match due {
                Due::Lease(lease_id) => {
                    let mounts = mounts.clone();
                    tasks.spawn(async move {
                        manager.expire(mounts.as_ref(), &key, &lease_id, now).await
                    });
                }
                Due::Token(hash) => {
                    let tokens = tokens.clone();
                    tasks.spawn(async move {
                        manager
                            .expire_token(tokens.as_ref(), &key, &hash, now)
                            .await
                    });
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            pass.note(Some(done))?;
        }
        if pass.failed > 0 {
            pass.more = false;
        }
        Ok(pass)
    }

    /// Takes up one due lease: revoked and deleted, or rescheduled with backoff, or marked
    /// irrevocable when out of attempts or when retrying cannot help.
    async fn expire(
        &self,
        mounts: &dyn Mounts,
        index_key: &str,
        lease_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let _lease = self.lock(lease_id).await;
        let entry = self.lookup(lease_id).await?;
        let Some(mut entry) = entry.filter(|e| {
            !e.is_irrevocable() && e.due <= now && index::due_key(e.due, lease_id) == index_key
        }) else {
            // Revoked, renewed or rescheduled meanwhile: this index entry is stale.
            self.barrier.delete(index_key).await?;
            return Ok(());
        };
        let error = match revoke_at_mount(mounts, &entry).await {
            Ok(()) => return self.delete(&entry).await,
            Err(Error::Sealed) => return Err(Error::Sealed),
            Err(e) => e,
        };
        entry.attempts += 1;
        let unrecoverable = matches!(
            error,
            Error::InvalidRequest(_) | Error::UnsupportedOperation | Error::UnsupportedPath(_)
        );
        if entry.attempts >= self.settings.max_attempts || unrecoverable {
            let mut reason = error.to_string();
            if !unrecoverable {
                reason = format!("out of retries: {reason}");
            }
            tracing::warn!(lease_id, attempts = entry.attempts, error = %error,
                "lease revocation failed for good; marking the lease irrevocable");
            entry.revoke_error = Some(truncate(reason, MAX_REVOKE_ERROR));
            let record = IrrevocableRecord {
                lease_id: lease_id.to_owned(),
                mount_accessor: entry.mount_accessor.clone(),
                error: entry.revoke_error.clone().unwrap_or_default(),
                expire_time: entry.expire_time,
            };
            return Ok(self
                .barrier
                .apply(vec![
                    put_json(index::id_key(lease_id), &entry)?,
                    Op::Delete(index_key.to_owned()),
                    put_json(index::irrevocable_key(lease_id), &record)?,
                ])
                .await?);
        }
        let backoff = self.backoff(entry.attempts);
        entry.due = chrono::Duration::from_std(backoff)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        tracing::warn!(lease_id, attempts = entry.attempts, error = %error,
            next_attempt_secs = backoff.as_secs(), "lease revocation failed; will retry");
        self.store_moving_due(lease_id, &entry, index_key.to_owned())
            .await
    }

    /// Takes up one due token: revoked if its stored expiry is past. Its index entry goes either
    /// way: the revocation deletes it, and a renewal has written another at the new expiry.
    async fn expire_token(
        &self,
        tokens: &dyn Tokens,
        index_key: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        tokens.revoke_expired(token_hash, now).await?;
        Ok(self.barrier.delete(index_key).await?)
    }

    /// Makes the leases of tokens revoked since the last pass due now, then forgets the
    /// tokens.
    async fn expire_revoked_tokens(&self) -> Result<(), Error> {
        for token_hash in self.barrier.list(index::REVOKED_TOKENS).await? {
            let dir = format!("{}{token_hash}/", index::BY_TOKEN);
            for key in self.barrier.list(&dir).await? {
                if let Some(lease_id) = self.barrier.get(&format!("{dir}{key}")).await? {
                    self.revoke_lazily(&String::from_utf8_lossy(&lease_id))
                        .await?;
                }
            }
            self.barrier
                .delete(&format!("{}{token_hash}", index::REVOKED_TOKENS))
                .await?;
        }
        Ok(())
    }

    async fn store_new(&self, issuer: &Issuer, lease: &mut Lease) -> Result<Option<String>, Error> {
        if issuer.token_hash.is_empty() {
            return Err(Error::internal(
                "cannot register a lease with an empty client token",
            ));
        }
        let now = Utc::now();
        let (ttl, warning) = calculate_ttl(now, now, 0, lease.ttl, lease.max_ttl, issuer.ttls)?;
        let lease_id = format!(
            "{}/{}",
            issuer.path.trim_end_matches('/'),
            Alphanumeric.sample_string(&mut rand::rngs::OsRng, 24)
        );
        let expire_time = after(now, ttl);
        let entry = LeaseEntry {
            lease_id: lease_id.clone(),
            path: issuer.path.clone(),
            mount_uuid: issuer.mount.uuid.clone(),
            mount_accessor: issuer.mount.accessor.clone(),
            token_hash: issuer.token_hash.clone(),
            internal_data: lease.internal_data.clone(),
            renewable: lease.renewable,
            max_ttl: lease.max_ttl,
            issue_time: now,
            expire_time,
            last_renewal: None,
            due: expire_time,
            attempts: 0,
            revoke_error: None,
        };
        self.barrier
            .apply(vec![
                put_json(index::id_key(&lease_id), &entry)?,
                Op::Put(
                    index::due_key(entry.due, &lease_id),
                    lease_id.as_bytes().to_vec(),
                ),
                Op::Put(
                    index::token_key(&entry.token_hash, &lease_id),
                    lease_id.as_bytes().to_vec(),
                ),
            ])
            .await?;
        self.schedule(entry.due);
        lease.lease_id = lease_id;
        lease.ttl = ttl;
        Ok(warning)
    }

    async fn revoke_one_of_many(
        &self,
        mounts: &dyn Mounts,
        lease_id: &str,
        force: bool,
        sync: bool,
    ) -> Result<(), Error> {
        if !sync {
            return self.revoke_lazily(lease_id).await.map(|_| ());
        }
        self.revoke(mounts, lease_id, force)
            .await
            .map_err(|e| match e {
                Error::InvalidRequest(m) => {
                    Error::InvalidRequest(format!("failed to revoke {lease_id:?}: {m}"))
                }
                other => other,
            })
    }

    /// Stores a lease whose `due` changed and moves its due index entry from `old_due`, in one
    /// batch, so that the lease is never left with no due entry or with two.
    async fn store_moving_due(
        &self,
        lease_id: &str,
        entry: &LeaseEntry,
        old_due: String,
    ) -> Result<(), Error> {
        Ok(self
            .barrier
            .apply(vec![
                put_json(index::id_key(lease_id), entry)?,
                Op::Delete(old_due),
                Op::Put(
                    index::due_key(entry.due, lease_id),
                    lease_id.as_bytes().to_vec(),
                ),
            ])
            .await?)
    }

    /// Deletes a lease and every index entry of it, in one batch.
    async fn delete(&self, entry: &LeaseEntry) -> Result<(), Error> {
        let id = &entry.lease_id;
        let mut ops = vec![
            Op::Delete(index::id_key(id)),
            Op::Delete(index::due_key(entry.due, id)),
            Op::Delete(index::irrevocable_key(id)),
        ];
        if !entry.token_hash.is_empty() {
            ops.push(Op::Delete(index::token_key(&entry.token_hash, id)));
        }
        Ok(self.barrier.apply(ops).await?)
    }

    /// Deletes the entries of an index (`sys/expire/due/`, `token/`, `irrevocable/`) whose
    /// lease no longer exists. Tokens' due entries are left to the revoker.
    async fn tidy_index(&self, root: &str) -> Result<(), Error> {
        let mut pending = vec![root.to_owned()];
        while let Some(dir) = pending.pop() {
            for child in self.barrier.list(&dir).await? {
                let key = format!("{dir}{child}");
                if child.ends_with('/') {
                    pending.push(key);
                    continue;
                }
                let Some(value) = self.barrier.get(&key).await? else {
                    continue;
                };
                if root == index::DUE && matches!(Due::of(&key, &value), Due::Token(_)) {
                    // A token's entry: gone with the token, or taken up when due.
                    continue;
                }
                let lease_id = if root == index::IRREVOCABLE {
                    serde_json::from_slice::<IrrevocableRecord>(&value)
                        .map(|r| r.lease_id)
                        .unwrap_or_default()
                } else {
                    String::from_utf8_lossy(&value).into_owned()
                };
                if self.lookup(&lease_id).await?.is_none() {
                    self.barrier.delete(&key).await?;
                }
            }
        }
        Ok(())
    }

    /// Wakes the revoker if a lease or token falls due before the time it sleeps towards.
    pub(crate) fn schedule(&self, due: DateTime<Utc>) {
        if due.timestamp() < self.next_due.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// OpenBao's `revokeExponentialBackoff`: `2^attempt * base`, ±50% at random.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .settings
            .retry_base
            .saturating_mul(1u32 << attempt.min(16));
        exp.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
    }

    async fn lock(&self, lease_id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        lease_id.hash(&mut hasher);
        let shard = usize::try_from(hasher.finish() % self.locks.len() as u64).unwrap_or(0);
        self.locks[shard].lock().await
    }
}

/// What one pass of the revoker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    /// A full batch was taken: more may be due.
    pub(crate) more: bool,
    /// Leases whose processing failed on storage (not on the mount: those are rescheduled).
    pub(crate) failed: usize,
}

impl Pass {
    fn note(
        &mut self,
        done: Option<Result<Result<(), Error>, tokio::task::JoinError>>,
    ) -> Result<(), Error> {
        match done {
            Some(Ok(Err(Error::Sealed))) => return Err(Error::Sealed),
            Some(Ok(Err(e))) => {
                tracing::warn!(error = %e, "lease revocation could not be recorded");
                self.failed += 1;
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "lease revocation task failed");
                self.failed += 1;
            }
            Some(Ok(Ok(()))) | None => {}
        }
        Ok(())
    }
}

/// Asks the issuing mount to revoke the secret.
async fn revoke_at_mount(mounts: &dyn Mounts, entry: &LeaseEntry) -> Result<(), Error> {
    let mount = mounts.mount_of(entry)?;
    mount
        .backend
        .revoke(&entry.to_lease(0), mount.storage.as_ref())
        .await
}

fn put_json(key: String, value: &impl Serialize) -> Result<Op, Error> {
    Ok(Op::Put(
        key,
        serde_json::to_vec(value).map_err(Error::internal)?,
    ))
}

/// At most `max` bytes, cut at a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Lock shards: enough that unrelated leases rarely wait on each other.
const LOCK_SHARDS: usize = 256;
/// How long the revoker waits after a pass failed on storage.
const ERROR_PAUSE: Duration = Duration::from_secs(5);
/// OpenBao keeps at most 240 characters of a revocation error.
const MAX_REVOKE_ERROR: usize = 240;
/// Token lookups remembered by one tidy run before the memo starts over.
const TIDY_TOKEN_CACHE: usize = 10_000;
