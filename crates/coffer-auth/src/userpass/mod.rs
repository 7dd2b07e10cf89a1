//! The userpass auth method, after openbao `builtin/credential/userpass` (`path_users.go`,
//! `path_user_password.go`, `path_user_policies.go`, `path_login.go`): users with argon2id
//! password hashes and `token_*` settings, and `login/<name>`.
//!
//! Storage layout, relative to the mount: `user/<name>` (one JSON entry per user). Names are
//! lowercased, as OpenBao does. Failed logins are counted per name and lock it (`lockout.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use coffer_sdk::framework::{Fields, Path, Paths};
use coffer_sdk::{
    Alias, Backend, BackendConfig, BackendKind, Error, Factory, Operation, Request, Response,
    SpecialPaths, Storage,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::fields::cidrs_allow;
use crate::lockout::{Lockout, LockoutConfig};
use crate::token_params::{TokenParams, USERPASS_ALIASES};

mod hash;

use hash::{Hasher, Password};

/// Builds userpass mounts.
pub fn userpass_factory() -> Factory {
    Arc::new(|_config: &BackendConfig| {
        let backend: Arc<dyn Backend> = Arc::new(Userpass::new());
        Ok(backend)
    })
}

/// The userpass auth method of one mount.
pub struct Userpass {
    paths: Paths<Handler>,
    hasher: Hasher,
    lockout: Lockout,
    clock: Clock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    List,
    User,
    Password,
    Policies,
    Login,
}

/// One user as stored. Not `Debug`: it holds a password hash.
#[derive(Clone, Serialize, Deserialize)]
struct UserEntry {
    password_hash: String,
    #[serde(flatten)]
    token: TokenParams,
}

impl Userpass {
    /// A userpass backend hashing with OWASP's argon2id parameters.
    pub fn new() -> Self {
        Self::with_parts(Hasher::new(), Clock::default())
    }

    fn with_parts(hasher: Hasher, clock: Clock) -> Self {
        let paths = Paths::new()
            .path(Path::new("users").list(Handler::List))
            .path(Path::new("users/").list(Handler::List))
            .path(Path::new("users/{name}/password").write(Handler::Password))
            .path(Path::new("users/{name}/policies").write(Handler::Policies))
            .path(
                Path::new("users/{name}")
                    .read(Handler::User)
                    .write(Handler::User)
                    .delete(Handler::User),
            )
            .path(Path::new("login/{name}").write(Handler::Login));
        Userpass {
            paths,
            hasher,
            lockout: Lockout::default(),
            clock,
        }
    }

    async fn read_user(
        &self,
        name: &str,
        storage: &dyn Storage,
    ) -> Result<Option<Response>, Error> {
        let Some(user) = load(storage, name).await? else {
            return Ok(None);
        };
        let mut data = Map::new();
        user.token.write_json(&mut data, USERPASS_ALIASES);
        Ok(Some(Response::with_data(data)))
    }

    async fn write_user(
        &self,
        name: &str,
        mut req: Request,
        storage: &dyn Storage,
    ) -> Result<Option<Response>, Error> {
        let existing = load(storage, name).await?;
        let password = take_password(&mut req)?;
        let password_hash = Fields::new(&req.data).string("password_hash")?;
        let creating = existing.is_none();
        let mut user = existing.unwrap_or_else(|| UserEntry {
            password_hash: String::new(),
            token: TokenParams::new(),
        });
        user.token.update(&req.data, USERPASS_ALIASES)?;
        match (password, password_hash) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "only one of password or password_hash can be provided",
                ))
            }
            (Some(pw), None) => user.password_hash = self.hasher.hash(pw).await?,
            (None, Some(phc)) => user.password_hash = checked_hash(&phc)?,
            (None, None) if creating => {
                return Err(Error::invalid(
                    "must provide either password or password_hash",
                ))
            }
            (None, None) => {}
        }
        save(storage, name, &user).await?;
        Ok(None)
    }

    async fn update_password(
        &self,
        name: &str,
        mut req: Request,
        storage: &dyn Storage,
    ) -> Result<Option<Response>, Error> {
        let password = take_password(&mut req)?;
        let password_hash = Fields::new(&req.data).string("password_hash")?;
        let Some(mut user) = load(storage, name).await? else {
            return Err(Error::invalid("username does not exist"));
        };
        user.password_hash = match (password, password_hash) {
            (Some(pw), None) => self.hasher.hash(pw).await?,
            (None, Some(phc)) => checked_hash(&phc)?,
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "only one of password or password_hash can be provided",
                ))
            }
            (None, None) => {
                return Err(Error::invalid(
                    "must provide either password or password_hash",
                ))
            }
        };
        save(storage, name, &user).await?;
        Ok(None)
    }

    async fn update_policies(
        &self,
        name: &str,
        req: &Request,
        storage: &dyn Storage,
    ) -> Result<Option<Response>, Error> {
        let Some(mut user) = load(storage, name).await? else {
            return Err(Error::invalid("username does not exist"));
        };
        let mut only_policies = Map::new();
        for key in ["token_policies", "policies"] {
            if let Some(v) = req.data.get(key) {
                only_policies.insert(key.to_owned(), v.clone());
            }
        }
        user.token.update(&only_policies, &USERPASS_ALIASES[..1])?;
        save(storage, name, &user).await?;
        Ok(None)
    }

    /// `login/<name>`: the same 400 for a missing user and a wrong password, the same time for
    /// both; 403 once the name is locked, whatever the password.
    async fn login(
        &self,
        name: &str,
        mut req: Request,
        storage: &dyn Storage,
    ) -> Result<Option<Response>, Error> {
        let Some(password) = take_password(&mut req)? else {
            return Err(Error::invalid("missing password"));
        };
        let config = LockoutConfig::from_options(&req.mount_options);
        if self.lockout.is_locked(name, &config, self.clock.now_secs()) {
            return Err(Error::PermissionDenied);
        }
        let user = load(storage, name).await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        if !self.hasher.verify(password, stored).await? {
            if self
                .lockout
                .record_failure(name, &config, self.clock.now_secs())
            {
                tracing::warn!(mount = %req.mount_point, "userpass: a user is locked out after repeated failed logins");
                return Err(Error::PermissionDenied);
            }
            return Err(Error::invalid("invalid username or password"));
        }
        self.lockout.record_success(name);
        let Some(user) = user else {
            return Err(Error::invalid("invalid username or password"));
        };
        if !cidrs_allow(&user.token.token_bound_cidrs, req.remote_addr.as_deref()) {
            // OpenBao: "login request originated from invalid CIDR", a permission error.
            return Err(Error::PermissionDenied);
        }
        let mut auth = user.token.auth();
        let metadata = BTreeMap::from([("username".to_owned(), name.to_owned())]);
        auth.metadata = Some(metadata);
        auth.display_name = name.to_owned();
        auth.alias = Some(Alias {
            name: name.to_owned(),
            metadata: BTreeMap::new(),
        });
        Ok(Some(Response {
            auth: Some(auth),
            ..Response::default()
        }))
    }
}

impl Default for Userpass {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Backend for Userpass {
    fn kind(&self) -> BackendKind {
        BackendKind::Auth
    }

    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths {
            unauthenticated: vec!["login".to_owned(), "login/*".to_owned()],
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
            (Handler::List, _) => list_users(storage).await,
            (Handler::User, Operation::Read) => self.read_user(&name, storage).await,
            (Handler::User, Operation::Delete) => {
                storage.delete(&user_key(&name)).await?;
                Ok(None)
            }
            (Handler::User, _) => self.write_user(&name, req, storage).await,
            (Handler::Password, _) => self.update_password(&name, req, storage).await,
            (Handler::Policies, _) => self.update_policies(&name, &req, storage).await,
            (Handler::Login, _) => self.login(&name, req, storage).await,
        }
    }
}

/// Takes the `password` field out of the body so no copy outlives the request unwiped.
fn take_password(req: &mut Request) -> Result<Option<Password>, Error> {
    match req.data.remove("password") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(Zeroizing::new(s))),
        Some(other) => {
            let printed = coffer_sdk::framework::weak_string(&other).map_err(|_| {
                Error::invalid("error converting input for field \"password\": expected a string")
            })?;
            Ok(Some(Zeroizing::new(printed)))
        }
    }
}

fn checked_hash(phc: &str) -> Result<String, Error> {
    if hash::is_argon2id(phc) {
        Ok(phc.to_owned())
    } else {
        Err(Error::invalid(
            "password_hash must be an argon2id hash in PHC string format",
        ))
    }
}

async fn list_users(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let keys = storage.list(USER_PREFIX).await?;
    if keys.is_empty() {
        return Ok(None);
    }
    Ok(Some(Response::with_data(
        json!({ "keys": keys })
            .as_object()
            .cloned()
            .unwrap_or_default(),
    )))
}

fn user_key(name: &str) -> String {
    format!("{USER_PREFIX}{name}")
}

async fn load(storage: &dyn Storage, name: &str) -> Result<Option<UserEntry>, Error> {
    match storage.get(&user_key(name)).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::internal(format!("userpass: corrupt user entry: {e}"))),
        None => Ok(None),
    }
}

async fn save(storage: &dyn Storage, name: &str, user: &UserEntry) -> Result<(), Error> {
    let bytes = serde_json::to_vec(user).map_err(Error::internal)?;
    storage.put(&user_key(name), bytes).await
}

const USER_PREFIX: &str = "user/";

#[cfg(test)]
mod tests;
