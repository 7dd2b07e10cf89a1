//! The jwt auth method (mount types `jwt` and `oidc`), after openbao's
//! `vault-plugin-auth-jwt` (`path_config.go`, `path_role.go`, `path_login.go`): a login
//! presents a JWT for a role; its signature is checked against the configured keys, its
//! claims against the role's bounds, and the role's `token_*` settings make the token.
//!
//! Storage layout, relative to the mount: `config` and `role/<name>` (names lowercased).
//! Keys from `jwks_url` or OIDC discovery are cached in memory (`keys.rs`).
//!
//! The OIDC browser flow (`oidc/auth_url`, `oidc/callback`, `oidc_client_id`/secret, the
//! redirect and the code exchange) is not served: roles of type `oidc` can be stored, but only
//! `role_type = "jwt"` roles log in.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use coffer_sdk::framework::{Fields, Path, Paths};
use coffer_sdk::{
    Backend, BackendConfig, BackendKind, Error, Factory, Operation, Request, Response,
    SpecialPaths, Storage,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::clock::Clock;
use crate::fields::string_list;

mod keys;
mod login;
mod role;

/// Builds jwt and oidc mounts.
pub fn jwt_factory() -> Factory {
    Arc::new(|_config: &BackendConfig| {
        let backend: Arc<dyn Backend> = Arc::new(Jwt::new());
        Ok(backend)
    })
}

/// The jwt auth method of one mount.
pub struct Jwt {
    paths: Paths<Handler>,
    clock: Clock,
    /// Keys fetched from `jwks_url` or discovery, for the URL they came from.
    fetched: Mutex<Option<(String, keys::Fetched)>>,
    /// The config as last read or written; dropped on `invalidate`.
    config: Mutex<Option<Arc<Config>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    Config,
    ListRoles,
    Role,
    Login,
}

/// The mount's `config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Config {
    jwt_validation_pubkeys: Vec<String>,
    jwks_url: String,
    jwks_ca_pem: String,
    oidc_discovery_url: String,
    oidc_discovery_ca_pem: String,
    oidc_client_id: String,
    bound_issuer: String,
    jwt_supported_algs: Vec<String>,
    default_role: String,
}

impl Jwt {
    /// A jwt backend on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Clock::default())
    }

    fn with_clock(clock: Clock) -> Self {
        let paths = Paths::new()
            .path(
                Path::new("config")
                    .read(Handler::Config)
                    .write(Handler::Config),
            )
            .path(Path::new("role").list(Handler::ListRoles))
            .path(Path::new("role/").list(Handler::ListRoles))
            .path(
                Path::new("role/{name}")
                    .read(Handler::Role)
                    .write(Handler::Role)
                    .delete(Handler::Role),
            )
            .path(Path::new("login").write(Handler::Login));
        Jwt {
            paths,
            clock,
            fetched: Mutex::new(None),
            config: Mutex::new(None),
        }
    }

    async fn load_config(&self, storage: &dyn Storage) -> Result<Option<Arc<Config>>, Error> {
        if let Some(c) = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(Some(c));
        }
        let Some(config) = load::<Config>(storage, CONFIG_KEY).await? else {
            return Ok(None);
        };
        let config = Arc::new(config);
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = Some(config.clone());
        Ok(Some(config))
    }

    async fn read_config(&self, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        let Some(c) = self.load_config(storage).await? else {
            return Ok(None);
        };
        let data = json!({
            "bound_issuer": c.bound_issuer,
            "default_role": c.default_role,
            "jwks_ca_pem": c.jwks_ca_pem,
            "jwks_url": c.jwks_url,
            "jwt_supported_algs": c.jwt_supported_algs,
            "jwt_validation_pubkeys": c.jwt_validation_pubkeys,
            "namespace_in_state": true,
            "oidc_client_id": c.oidc_client_id,
            "oidc_discovery_ca_pem": c.oidc_discovery_ca_pem,
            "oidc_discovery_url": c.oidc_discovery_url,
            "oidc_response_mode": "",
            "oidc_response_types": [],
            "override_allowed_server_names": [],
            "provider_config": {},
            "status": "valid",
        });
        Ok(Some(Response::with_data(
            data.as_object().cloned().unwrap_or_default(),
        )))
    }

    /// POST `config`: replaces the config; keys are parsed, and a JWKS or discovery URL
    /// fetched once, before anything is stored.
    async fn write_config(
        &self,
        req: &Request,
        storage: &dyn Storage,
    ) -> Result<Option<Response>, Error> {
        let f = Fields::new(&req.data);
        let s = |name: &str| f.string(name).map(Option::unwrap_or_default);
        let config = Config {
            jwt_validation_pubkeys: string_list(&req.data, "jwt_validation_pubkeys")?
                .unwrap_or_default(),
            jwks_url: s("jwks_url")?,
            jwks_ca_pem: s("jwks_ca_pem")?,
            oidc_discovery_url: s("oidc_discovery_url")?,
            oidc_discovery_ca_pem: s("oidc_discovery_ca_pem")?,
            oidc_client_id: s("oidc_client_id")?,
            bound_issuer: s("bound_issuer")?,
            jwt_supported_algs: string_list(&req.data, "jwt_supported_algs")?.unwrap_or_default(),
            default_role: s("default_role")?.to_lowercase(),
        };
        let sources = [
            !config.jwt_validation_pubkeys.is_empty(),
            !config.jwks_url.is_empty(),
            !config.oidc_discovery_url.is_empty(),
        ];
        if sources.iter().filter(|set| **set).count() != 1 {
            return Err(Error::invalid(
                "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs', \
                 'oidc_discovery_url', or 'provider_config' must be set",
            ));
        }
        for pem in &config.jwt_validation_pubkeys {
            keys::parse_pem(pem)?;
        }
        for alg in &config.jwt_supported_algs {
            if keys::parse_alg(alg).is_none() {
                return Err(Error::invalid(format!(
                    "invalid jwt_supported_algs: unsupported signing algorithm {alg:?}"
                )));
            }
        }
        // Check the URL answers with keys now, as OpenBao does, rather than at the first login.
        let fetched = if !config.jwks_url.is_empty() {
            let client = keys::client(&config.jwks_ca_pem)?;
            let keys = keys::fetch_jwks(&client, &config.jwks_url)
                .await
                .map_err(|_| Error::invalid("error checking jwks URL"))?;
            Some((config.jwks_url.clone(), keys, None))
        } else if !config.oidc_discovery_url.is_empty() {
            let client = keys::client(&config.oidc_discovery_ca_pem)?;
            let (keys, issuer) = keys::fetch_discovery(&client, &config.oidc_discovery_url)
                .await
                .map_err(|_| Error::invalid("error checking oidc discovery URL"))?;
            Some((config.oidc_discovery_url.clone(), keys, Some(issuer)))
        } else {
            None
        };
        let bytes = serde_json::to_vec(&config).map_err(Error::internal)?;
        storage.put(CONFIG_KEY, bytes).await?;
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(config));
        *self.fetched.lock().unwrap_or_else(|e| e.into_inner()) =
            fetched.map(|(url, keys, issuer)| {
                (
                    url,
                    keys::Fetched {
                        keys,
                        issuer,
                        at: std::time::Instant::now(),
                    },
                )
            });
        Ok(None)
    }
}

impl Default for Jwt {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Backend for Jwt {
    fn kind(&self) -> BackendKind {
        BackendKind::Auth
    }

    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths {
            unauthenticated: vec!["login".to_owned()],
            root: Vec::new(),
        }
    }

    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        let route = self.paths.route(&req.path, req.operation)?;
        let name = route
            .captures
            .get("name")
            .unwrap_or_default()
            .to_lowercase();
        match (route.handler, req.operation) {
            (Handler::Config, Operation::Read) => self.read_config(storage).await,
            (Handler::Config, _) => self.write_config(&req, storage).await,
            (Handler::ListRoles, _) => role::list(storage).await,
            (Handler::Role, Operation::Read) => role::read(&name, storage).await,
            (Handler::Role, Operation::Delete) => {
                storage.delete(&role::key(&name)).await?;
                Ok(None)
            }
            (Handler::Role, _) => role::write(&name, &req, storage).await,
            (Handler::Login, _) => login::login(self, &req, storage).await,
        }
    }

    async fn invalidate(&self, key: &str) {
        if key == CONFIG_KEY {
            *self.config.lock().unwrap_or_else(|e| e.into_inner()) = None;
            *self.fetched.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

async fn load<T: DeserializeOwned>(storage: &dyn Storage, key: &str) -> Result<Option<T>, Error> {
    match storage.get(key).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::internal(format!("jwt: corrupt entry: {e}"))),
        None => Ok(None),
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

const CONFIG_KEY: &str = "config";

#[cfg(test)]
mod tests;
