//! The request pipeline and the lifecycle of the vault: init, unseal, seal, and the state that
//! exists only while unsealed (router, token store, policy store).
//!
//! Every request passes, in order: sealed? -> token -> ACL -> (audit: a later step) -> router ->
//! backend. Nothing here knows about HTTP.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use coffer_sdk::{BackendConfig, Error, Factory, Operation, Request, Response};
use coffer_storage::Store;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use tracing::info;

use crate::audit::{AuditBroker, AuditRecord};
use crate::barrier::Barrier;
use crate::expiration::{self, ExpirationManager, MountTtls};
use crate::identity::{self, IdentityStore};
use crate::mount::{MountConfig, MountEntry, Route, RouteTable, Table, Target};
use crate::policy::PolicyStore;
use crate::seal::{Seal, SealConfig, SealStatus};
use crate::sys;
use crate::token::{self, LiveToken, TokenParams, TokenStore};
use crate::view::BarrierView;

/// Settings of the core taken from the server configuration.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Seconds; the TTL of tokens and leases that ask for none.
    pub default_lease_ttl: u64,
    /// Seconds; the cap on any TTL.
    pub max_lease_ttl: u64,
    /// The audit devices declared in the configuration.
    pub audit: Vec<crate::audit::AuditDeviceConfig>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        // OpenBao's defaults: 768h for both.
        CoreConfig {
            default_lease_ttl: 768 * 3600,
            max_lease_ttl: 768 * 3600,
            audit: Vec::new(),
        }
    }
}

/// What `sys/init` returns: the unseal key shares and the initial root token.
pub struct InitResult {
    pub shares: Vec<SecretBox<Vec<u8>>>,
    pub root_token: SecretString,
}

/// State that exists only while the barrier is unsealed.
pub struct Unsealed {
    pub router: ArcSwap<RouteTable>,
    pub tokens: TokenStore,
    pub policies: PolicyStore,
    pub identity: IdentityStore,
    pub(crate) expiration: Arc<ExpirationManager>,
    barrier: Arc<Barrier>,
    /// Serialises unwraps, so that a wrapping token is exchanged once.
    pub(crate) wrapping_lock: tokio::sync::Mutex<()>,
}

impl Unsealed {
    pub fn barrier(&self) -> &Barrier {
        &self.barrier
    }

    /// Deletes the cubbyholes of revoked tokens (also for the revoker, which has no `Core`).
    pub(crate) async fn destroy_cubbyholes(&self, hashes: &[String]) -> Result<(), Error> {
        let router = self.router.load();
        let Some(route) = router.iter().find(|r| r.entry.mount_type == "cubbyhole") else {
            return Ok(());
        };
        for hash in hashes {
            route.view.delete_prefix(&format!("{hash}/")).await?;
        }
        Ok(())
    }
}

/// The vault core.
pub struct Core {
    config: CoreConfig,
    barrier: Arc<Barrier>,
    seal: Seal,
    factories: HashMap<String, Factory>,
    audit: AuditBroker,
    metrics: crate::metrics::Metrics,
    state: ArcSwapOption<Unsealed>,
    /// Serialises unseal, seal and mount-table changes.
    lifecycle: tokio::sync::Mutex<()>,
}

/// Types whose mounts are made by the core itself and cannot be enabled again.
const SINGLETON_TYPES: [&str; 4] = ["system", "token", "cubbyhole", "identity"];
/// Secrets-table paths no mount may take.
const RESERVED_PATHS: [&str; 5] = ["sys/", "auth/", "cubbyhole/", "identity/", "audit/"];

impl Core {
    /// A sealed core over `store`; `factories` maps a mount type to its backend builder.
    pub fn new(
        store: Arc<dyn Store>,
        config: CoreConfig,
        factories: HashMap<String, Factory>,
    ) -> Arc<Core> {
        let barrier = Arc::new(Barrier::new(store.clone()));
        let audit = AuditBroker::new(config.audit.clone());
        Arc::new(Core {
            config,
            seal: Seal::new(store, barrier.clone()),
            barrier,
            factories,
            audit,
            metrics: crate::metrics::Metrics::default(),
            state: ArcSwapOption::empty(),
            lifecycle: tokio::sync::Mutex::new(()),
        })
    }

    pub fn default_lease_ttl(&self) -> u64 {
        self.config.default_lease_ttl
    }

    pub fn max_lease_ttl(&self) -> u64 {
        self.config.max_lease_ttl
    }

    pub fn barrier(&self) -> &Barrier {
        &self.barrier
    }

    pub fn is_sealed(&self) -> bool {
        self.state.load().is_none()
    }

    pub async fn seal_status(&self) -> Result<SealStatus, Error> {
        Ok(self.seal.status().await?)
    }

    /// `sys/init`: splits a new unseal key, creates the keyring and the root token. The vault
    /// is left sealed, as OpenBao leaves it.
    pub async fn init(&self, config: SealConfig) -> Result<InitResult, Error> {
        self.init_with_root(config, None).await
    }

    /// Dev mode: init with one share, unseal, and mount `secret/` as kv v2, as `bao server -dev`.
    pub async fn dev_init(&self, root_token_id: Option<String>) -> Result<InitResult, Error> {
        let result = self
            .init_with_root(
                SealConfig {
                    secret_shares: 1,
                    secret_threshold: 1,
                },
                root_token_id.map(SecretString::from),
            )
            .await?;
        self.unseal(result.shares[0].expose_secret()).await?;
        let options = BTreeMap::from([("version".to_owned(), "2".to_owned())]);
        self.enable_mount(
            Table::Secrets,
            "secret/",
            "kv",
            "key/value secret storage",
            MountConfig::default(),
            options,
        )
        .await?;
        Ok(result)
    }

    /// Submits one unseal key share; when the threshold is reached the vault unseals.
    pub async fn unseal(&self, share: &[u8]) -> Result<SealStatus, Error> {
        let _guard = self.lifecycle.lock().await;
        if !self.is_sealed() {
            return Ok(self.seal.status().await?);
        }
        let status = self.seal.submit_share(share).await?;
        if !status.sealed {
            if let Err(e) = self.post_unseal().await {
                self.barrier.seal();
                return Err(e);
            }
            info!("vault unsealed");
        }
        Ok(status)
    }

    /// Forgets the unseal progress.
    pub fn unseal_reset(&self) {
        self.seal.reset_progress();
    }

    /// Seals the vault: every key and cache is dropped. Needs a root token (sudo), as
    /// `sys/seal` does in OpenBao; sealing a sealed vault succeeds.
    pub async fn seal(&self, token: Option<&str>) -> Result<(), Error> {
        let _guard = self.lifecycle.lock().await;
        let Some(state) = self.state.load_full() else {
            return Ok(());
        };
        let live = match token {
            Some(t) => state.tokens.lookup(t).await?,
            None => None,
        };
        let live = live.ok_or(Error::PermissionDenied)?;
        let acl = state.policies.acl(&live.entry.policies).await?;
        if !acl.allows(Operation::Update, "sys/seal", true) {
            return Err(Error::PermissionDenied);
        }
        state.tokens.clear_cache();
        self.state.store(None);
        self.audit.stop();
        self.seal.seal();
        info!("vault sealed");
        Ok(())
    }

    /// Runs one logical request through the pipeline. `req.path` is the full API path (no
    /// `/v1/`), `token` the caller's token if any. `Ok(None)` means an empty answer: 204 for a
    /// write, 404 for a read.
    pub async fn handle(
        &self,
        req: Request,
        token: Option<&str>,
    ) -> Result<Option<Response>, Error> {
        let result = self.run(req, token).await;
        self.metrics.record(&result);
        result
    }

    /// Runs every mount's scheduled work once (`Backend::periodic`); the server calls this
    /// about once a minute. A failing mount is logged and does not stop the others.
    pub async fn run_periodic(&self) {
        let Some(state) = self.state.load_full() else {
            return;
        };
        let router = state.router.load_full();
        for route in router.iter() {
            if let Target::Backend(backend) = &route.target {
                if let Err(e) = backend.periodic(route.view.as_ref()).await {
                    tracing::warn!(mount = %route.path, error = %e, "periodic work failed");
                }
            }
        }
    }

    /// The pipeline counters, rendered for `sys/metrics`.
    pub fn metrics_text(&self) -> String {
        self.metrics.render(self.is_sealed(), &self.audit.health())
    }

    async fn run(&self, mut req: Request, token: Option<&str>) -> Result<Option<Response>, Error> {
        let state = self.state.load_full().ok_or(Error::Sealed)?;
        let router = state.router.load();
        let (route, rel) = router
            .find(&req.path)
            .ok_or_else(|| Error::UnsupportedPath(req.path.clone()))?;
        let route = route.clone();
        let rel = rel.to_owned();

        let live = match token {
            Some(t) if !t.is_empty() => state.tokens.lookup(t).await?,
            _ => None,
        };
        let authorized = self
            .authorize(&state, &req, &route, &rel, live.as_deref())
            .await;

        // Fail closed: with audit devices enabled, a request that none recorded is not run.
        let trail = if self.audit.enabled() {
            let record = AuditRecord {
                request: &req,
                route: &route,
                client_token: token,
                token: live.as_deref(),
            };
            Some(
                self.audit
                    .log_request(&record, authorized.as_ref().err())
                    .await?,
            )
        } else {
            None
        };
        authorized?;

        req.auth = live.as_ref().map(|l| l.auth.clone());
        req.mount_point.clone_from(&route.path);
        req.mount_type.clone_from(&route.entry.mount_type);
        req.mount_options = route.options.clone();
        let or_system = |v: u64, system: u64| if v == 0 { system } else { v };
        req.default_lease_ttl = or_system(
            route.entry.config.default_lease_ttl,
            self.config.default_lease_ttl,
        );
        req.max_lease_ttl = or_system(route.entry.config.max_lease_ttl, self.config.max_lease_ttl);
        if req.wrap_ttl.is_none() && req.path == "sys/wrapping/wrap" {
            req.wrap_ttl = Some(crate::wrapping::DEFAULT_WRAP_TTL);
        }
        let wrap = req
            .wrap_ttl
            .map(|ttl| (ttl, format!("{}{rel}", route.path)));
        req.path = rel;
        let mut result = self.dispatch(&state, &route, req, live, token).await;
        if let (Some((ttl, creation_path)), Ok(Some(resp))) = (wrap, &mut result) {
            if resp.data.is_some() || resp.auth.is_some() {
                let inner = std::mem::take(resp);
                *resp = crate::wrapping::wrap(&state, inner, ttl, &creation_path).await?;
            }
        }

        if let Some(trail) = &trail {
            self.audit
                .log_response(trail, &route, result.as_ref())
                .await?;
        }
        result
    }

    /// The token and ACL checks of the pipeline; spends a use of a limited-use token.
    async fn authorize(
        &self,
        state: &Unsealed,
        req: &Request,
        route: &Route,
        rel: &str,
        live: Option<&LiveToken>,
    ) -> Result<(), Error> {
        if let Some(live) = live {
            if !live.entry.allows_address(req.remote_addr.as_deref()) {
                return Err(Error::PermissionDenied);
            }
        }
        if live.is_some_and(|l| l.entry.wrapping) {
            // A wrapping token can only unwrap, look up or rewrap itself.
            return match req.path.as_str() {
                "sys/wrapping/unwrap" | "sys/wrapping/lookup" | "sys/wrapping/rewrap" => Ok(()),
                _ => Err(Error::PermissionDenied),
            };
        }
        if live.is_none()
            && matches!(
                req.path.as_str(),
                "sys/wrapping/unwrap" | "sys/wrapping/lookup"
            )
        {
            // A used or expired wrapping token, as OpenBao words it.
            return Err(Error::invalid(
                "wrapping token is not valid or does not exist",
            ));
        }
        if !route.is_unauthenticated(rel) {
            let live = live.ok_or(Error::PermissionDenied)?;
            if !is_any_token_path(&req.path) {
                let acl = self.acl_of(state, &live.entry).await?;
                let sudo = route.is_root_path(rel);
                let allowed = |op| acl.allows_request(op, &req.path, sudo, &req.data, req.wrap_ttl);
                let permitted = match req.operation {
                    // A write is a create or an update depending on whether its target exists,
                    // asked of the backend only when the policy grants just one of the two.
                    Operation::Create | Operation::Update => {
                        let (update, create) =
                            (allowed(Operation::Update), allowed(Operation::Create));
                        if update == create {
                            update
                        } else {
                            match existence(route, rel, req).await? {
                                Some(false) => create,
                                Some(true) | None => update,
                            }
                        }
                    }
                    op => allowed(op),
                };
                if !permitted {
                    return Err(Error::acl_denied());
                }
            }
        }
        // A limited-use token spends one use per request; the last use revokes it.
        if let Some(live) = live.filter(|l| l.entry.num_uses > 0) {
            if !state.tokens.spend_use(&live.entry.hash).await? {
                return Err(Error::PermissionDenied);
            }
        }
        Ok(())
    }

    /// The ACL of a token: its own policies plus those of its entity and the entity's groups.
    async fn acl_of(
        &self,
        state: &Unsealed,
        entry: &token::TokenEntry,
    ) -> Result<Arc<crate::policy::Acl>, Error> {
        if entry.entity_id.is_empty() {
            return state.policies.acl(&entry.policies).await;
        }
        let grant = state.identity.grant(&entry.entity_id).await?;
        if grant.disabled {
            return Err(Error::PermissionDenied);
        }
        if grant.policies.is_empty() {
            return state.policies.acl(&entry.policies).await;
        }
        let mut all = entry.policies.clone();
        all.extend(grant.policies.iter().cloned());
        all.sort();
        all.dedup();
        state.policies.acl(&all).await
    }

    /// Hands an authorised request to whoever serves its mount.
    async fn dispatch(
        &self,
        state: &Unsealed,
        route: &Route,
        req: Request,
        live: Option<Arc<LiveToken>>,
        token: Option<&str>,
    ) -> Result<Option<Response>, Error> {
        match &route.target {
            Target::System => sys::handle(self, state, req, token).await,
            Target::Identity => identity::handle(state, req).await,
            Target::Token => {
                let live = live.ok_or(Error::PermissionDenied)?;
                token::handle(self, state, req, &live, token.unwrap_or_default()).await
            }
            Target::Backend(backend) => {
                let login_path = (route.entry.table == Table::Auth)
                    .then(|| format!("{}{}", route.path, req.path));
                // What registering a lease needs from the request, which the backend consumes;
                // the issuer itself is made only if the response carries a lease.
                let lease_source = expiration::Issuer::may_issue(route).then(|| {
                    let ttls = MountTtls {
                        default: req.default_lease_ttl,
                        max: req.max_lease_ttl,
                    };
                    (req.path.clone(), ttls)
                });
                let mut resp = backend.handle(req, route.view.as_ref()).await?;
                // A response of an auth method that carries `auth` is a login: mint its token.
                if let (Some(path), Some(resp)) = (login_path, resp.as_mut()) {
                    if let Some(auth) = resp.auth.as_mut() {
                        self.mint_login_token(state, &route.entry, path, auth)
                            .await?;
                    }
                }
                // A secret with a lease: the expiration manager takes it over.
                if let (Some((rel, ttls)), Some(resp)) = (lease_source, resp.as_mut()) {
                    if resp.lease.is_some() {
                        let issuer = expiration::Issuer::of(route, &rel, ttls, live.as_deref());
                        state
                            .expiration
                            .register(issuer, backend.as_ref(), route.view.as_ref(), resp)
                            .await?;
                    }
                }
                Ok(resp)
            }
        }
    }

    /// Mints the token of a successful login from what the auth method decided, within the
    /// mount's and the system's TTL limits, and fills in `client_token` and `accessor`.
    async fn mint_login_token(
        &self,
        state: &Unsealed,
        mount: &MountEntry,
        path: String,
        auth: &mut coffer_sdk::Auth,
    ) -> Result<(), Error> {
        let mut policies = std::mem::take(&mut auth.policies);
        if !auth.no_default_policy && !policies.iter().any(|p| p == "root") {
            policies.push("default".into());
        }
        policies.sort();
        policies.dedup();
        let or_system = |v: u64, system: u64| if v == 0 { system } else { v };
        let max_ttl = or_system(mount.config.max_lease_ttl, self.config.max_lease_ttl);
        let mut ttl = or_system(
            auth.lease_duration,
            or_system(
                mount.config.default_lease_ttl,
                self.config.default_lease_ttl,
            ),
        );
        ttl = ttl.min(max_ttl);
        let mount_name = mount.path.trim_end_matches('/');
        let display_name = if auth.display_name.is_empty() {
            mount_name.to_owned()
        } else {
            format!("{mount_name}-{}", auth.display_name)
        };
        let entity_id = match &auth.alias {
            Some(alias) => {
                state
                    .identity
                    .entity_for_login(&mount.accessor, &mount.mount_type, alias)
                    .await?
            }
            None => String::new(),
        };
        let (token, entry) = state
            .tokens
            .create(TokenParams {
                policies,
                path,
                display_name,
                entity_id,
                meta: auth.metadata.clone(),
                ttl,
                explicit_max_ttl: auth.explicit_max_ttl,
                num_uses: auth.num_uses,
                renewable: auth.renewable,
                period: auth.period,
                bound_cidrs: std::mem::take(&mut auth.bound_cidrs),
                ..TokenParams::default()
            })
            .await?;
        let minted = token::auth_of(&entry, token.expose_secret());
        auth.client_token = minted.client_token;
        auth.accessor = minted.accessor;
        auth.policies = minted.policies;
        auth.token_policies = minted.token_policies;
        auth.lease_duration = minted.lease_duration;
        auth.renewable = minted.renewable;
        auth.entity_id = minted.entity_id;
        auth.orphan = true;
        auth.token_type = "service".into();
        Ok(())
    }

    /// Mounts a backend of `mount_type` at `path` of `table` and persists the entry.
    pub async fn enable_mount(
        &self,
        table: Table,
        path: &str,
        mount_type: &str,
        description: &str,
        config: MountConfig,
        mut options: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let _guard = self.lifecycle.lock().await;
        let state = self.state.load_full().ok_or(Error::Sealed)?;
        let path = normalize_mount_path(path)?;
        let mut mount_type = mount_type.to_owned();
        if mount_type == "kv-v2" {
            mount_type = "kv".into();
            options.insert("version".into(), "2".into());
        }
        if table == Table::Secrets && RESERVED_PATHS.iter().any(|r| path.starts_with(r)) {
            return Err(Error::invalid(format!(
                "cannot mount '{path}' of type '{mount_type}'"
            )));
        }
        if SINGLETON_TYPES.contains(&mount_type.as_str()) {
            return Err(Error::invalid(format!(
                "mount type of \"{mount_type}\" is not mountable"
            )));
        }
        let route_path = format!("{}{}", table.route_prefix(), path);
        let router = state.router.load();
        if let Some(existing) = router.conflict(&route_path) {
            return Err(Error::invalid(format!(
                "path is already in use at {}",
                existing
                    .strip_prefix(table.route_prefix())
                    .unwrap_or(existing)
            )));
        }
        let entry = MountEntry {
            table,
            path,
            accessor: format!(
                "{}{}_{}",
                if table == Table::Auth { "auth_" } else { "" },
                mount_type,
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            mount_type,
            description: description.to_owned(),
            uuid: uuid::Uuid::new_v4().to_string(),
            config,
            options,
            local: false,
            seal_wrap: false,
        };
        let route = self.route_for(Arc::new(entry.clone()))?;
        self.barrier
            .put(
                &entry.storage_key(),
                serde_json::to_vec(&entry).map_err(Error::internal)?,
            )
            .await?;
        let mut table_copy = RouteTable::clone(&router);
        table_copy.insert(route);
        state.router.store(Arc::new(table_copy));
        info!(path = %route_path, mount_type = %entry.mount_type, "mount enabled");
        Ok(())
    }

    /// Unmounts `path` of `table` and deletes its data. Unmounting a missing path succeeds, as
    /// in OpenBao.
    pub async fn disable_mount(&self, table: Table, path: &str) -> Result<(), Error> {
        let _guard = self.lifecycle.lock().await;
        let state = self.state.load_full().ok_or(Error::Sealed)?;
        let path = normalize_mount_path(path)?;
        let route_path = format!("{}{}", table.route_prefix(), path);
        let router = state.router.load();
        let Some(route) = router.get(&route_path).cloned() else {
            return Ok(());
        };
        if SINGLETON_TYPES.contains(&route.entry.mount_type.as_str()) {
            return Err(Error::invalid(format!(
                "cannot unmount \"{}\"",
                route.entry.path
            )));
        }
        // As OpenBao: the mount's leases are revoked first, and a failure keeps it mounted.
        state
            .expiration
            .revoke_prefix(
                &expiration::Routes::of(self, &state),
                &route_path,
                false,
                true,
            )
            .await?;
        let mut table_copy = RouteTable::clone(&router);
        table_copy.remove(&route_path);
        state.router.store(Arc::new(table_copy));
        self.barrier.delete(&route.entry.storage_key()).await?;
        route.view.delete_prefix("").await?;
        info!(path = %route_path, "mount disabled");
        Ok(())
    }

    /// Changes a mount's tunable settings and persists them.
    pub async fn tune_mount(
        &self,
        route_path: &str,
        tune: impl FnOnce(&mut MountEntry) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let _guard = self.lifecycle.lock().await;
        let state = self.state.load_full().ok_or(Error::Sealed)?;
        let router = state.router.load();
        let route = router
            .get(route_path)
            .cloned()
            .ok_or_else(|| Error::invalid(format!("no mount at {route_path}")))?;
        let mut entry = MountEntry::clone(&route.entry);
        tune(&mut entry)?;
        self.barrier
            .put(
                &entry.storage_key(),
                serde_json::to_vec(&entry).map_err(Error::internal)?,
            )
            .await?;
        let mut table_copy = RouteTable::clone(&router);
        table_copy.insert(Route {
            entry: Arc::new(entry.clone()),
            path: route.path.clone(),
            target: route.target.clone(),
            view: route.view.clone(),
            options: Arc::new(entry.options.clone()),
            special: route.special.clone(),
        });
        state.router.store(Arc::new(table_copy));
        Ok(())
    }

    /// Revokes a token and its descendants, and destroys their cubbyholes.
    pub async fn revoke_token_tree(&self, state: &Unsealed, hash: &str) -> Result<(), Error> {
        let revoked = state.tokens.revoke_tree(hash).await?;
        self.destroy_cubbyholes(state, &revoked).await
    }

    /// Deletes the cubbyholes of revoked tokens.
    pub async fn destroy_cubbyholes(
        &self,
        state: &Unsealed,
        hashes: &[String],
    ) -> Result<(), Error> {
        state.destroy_cubbyholes(hashes).await
    }

    async fn init_with_root(
        &self,
        config: SealConfig,
        root_id: Option<SecretString>,
    ) -> Result<InitResult, Error> {
        let _guard = self.lifecycle.lock().await;
        let output = self.seal.initialize(config).await?;
        // Unseal internally to create the root token, then seal again, as OpenBao does.
        let threshold = config.secret_threshold as usize;
        for share in output.shares.iter().take(threshold) {
            self.seal.submit_share(share.expose_secret()).await?;
        }
        let result = async {
            self.post_unseal().await?;
            let state = self.state.load_full().ok_or(Error::Sealed)?;
            let (root_token, _) = state
                .tokens
                .create(TokenParams {
                    id: root_id,
                    policies: vec!["root".into()],
                    path: "auth/token/root".into(),
                    display_name: "root".into(),
                    ..TokenParams::default()
                })
                .await?;
            Ok::<_, Error>(root_token)
        }
        .await;
        self.state.store(None);
        self.seal.seal();
        Ok(InitResult {
            shares: output.shares,
            root_token: result?,
        })
    }

    /// Builds the unsealed state: token and policy stores, and the mount table (creating the
    /// built-in mounts on first unseal).
    async fn post_unseal(&self) -> Result<(), Error> {
        let leases = Arc::new(ExpirationManager::new(self.barrier.clone()));
        let tokens = TokenStore::load(self.barrier.clone(), leases.clone()).await?;
        let policies = PolicyStore::load(self.barrier.clone()).await?;
        let mut entries = Vec::new();
        for table in [Table::Secrets, Table::Auth] {
            for key in self.barrier.list(table.storage_prefix()).await? {
                let bytes = self
                    .barrier
                    .get(&format!("{}{key}", table.storage_prefix()))
                    .await?
                    .ok_or_else(|| Error::internal("mount entry vanished during load"))?;
                let entry: MountEntry = serde_json::from_slice(&bytes).map_err(Error::internal)?;
                entries.push(entry);
            }
        }
        // First unseal, or a store from a build with fewer built-in mounts.
        let missing: Vec<MountEntry> = builtin_mounts()
            .into_iter()
            .filter(|b| !entries.iter().any(|e| e.mount_type == b.mount_type))
            .collect();
        if !missing.is_empty() {
            for entry in &missing {
                self.barrier
                    .put(
                        &entry.storage_key(),
                        serde_json::to_vec(entry).map_err(Error::internal)?,
                    )
                    .await?;
            }
        }
        let mut table = RouteTable::default();
        for entry in entries {
            table.insert(self.route_for(Arc::new(entry))?);
        }
        self.audit.start(&self.barrier).await?;
        let state = Arc::new(Unsealed {
            router: ArcSwap::from_pointee(table),
            tokens,
            policies,
            identity: IdentityStore::new(self.barrier.clone()),
            expiration: leases,
            barrier: self.barrier.clone(),
            wrapping_lock: tokio::sync::Mutex::new(()),
        });
        expiration::start(
            &state,
            MountTtls {
                default: self.config.default_lease_ttl,
                max: self.config.max_lease_ttl,
            },
        );
        self.state.store(Some(state));
        Ok(())
    }

    fn route_for(&self, entry: Arc<MountEntry>) -> Result<Route, Error> {
        let (target, special) = match entry.mount_type.as_str() {
            "system" => (Target::System, sys::special_paths()),
            "token" => (Target::Token, Default::default()),
            "identity" => (Target::Identity, Default::default()),
            other => {
                let factory = self.factories.get(other).ok_or_else(|| {
                    Error::invalid(format!("plugin not found in the catalog: {other}"))
                })?;
                let backend = factory(&BackendConfig {
                    mount_type: other.to_owned(),
                    options: entry.options.clone(),
                })?;
                let special = backend.special_paths();
                (Target::Backend(backend), special)
            }
        };
        Ok(Route {
            path: entry.route_path(),
            view: Arc::new(BarrierView::new(self.barrier.clone(), entry.data_prefix())),
            options: Arc::new(entry.options.clone()),
            target,
            special,
            entry,
        })
    }

    /// The audit broker: device health, `sys/audit*`, and reopening files on SIGHUP.
    pub fn audit(&self) -> &AuditBroker {
        &self.audit
    }
}

/// Whether a write's target exists, as the mount's backend tells (`None`: no distinction).
async fn existence(route: &Route, rel: &str, req: &Request) -> Result<Option<bool>, Error> {
    match &route.target {
        Target::Backend(backend) => {
            let mut probe = Request::new(req.operation, rel);
            probe.mount_point.clone_from(&route.path);
            backend.exists(&probe, route.view.as_ref()).await
        }
        _ => Ok(None),
    }
}

/// Paths any valid token may use without an ACL grant: the bao CLI asks them before every kv
/// command to learn a mount's type and version.
fn is_any_token_path(path: &str) -> bool {
    path.starts_with("sys/internal/ui/mounts")
}

/// `secret` and `/secret/` both mean `secret/`.
fn normalize_mount_path(path: &str) -> Result<String, Error> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Err(Error::invalid("missing mount path"));
    }
    if trimmed
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(Error::invalid(format!("invalid mount path {path:?}")));
    }
    Ok(format!("{trimmed}/"))
}

/// The mounts every vault has from its first unseal, as OpenBao: sys, cubbyhole, token.
fn builtin_mounts() -> Vec<MountEntry> {
    let entry = |table, path: &str, mount_type: &str, description: &str, local| MountEntry {
        table,
        path: path.into(),
        mount_type: mount_type.into(),
        description: description.into(),
        uuid: uuid::Uuid::new_v4().to_string(),
        accessor: format!(
            "{}_{}",
            if mount_type == "token" {
                "auth_token"
            } else {
                mount_type
            },
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
        config: MountConfig::default(),
        options: BTreeMap::new(),
        local,
        seal_wrap: mount_type == "system",
    };
    vec![
        entry(
            Table::Secrets,
            "sys/",
            "system",
            "system endpoints used for control, policy and debugging",
            false,
        ),
        entry(
            Table::Secrets,
            "cubbyhole/",
            "cubbyhole",
            "per-token private secret storage",
            true,
        ),
        entry(
            Table::Secrets,
            "identity/",
            "identity",
            "identity store",
            false,
        ),
        entry(
            Table::Auth,
            "token/",
            "token",
            "token based credentials",
            false,
        ),
    ]
}
