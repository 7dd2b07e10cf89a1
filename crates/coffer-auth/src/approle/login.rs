//! `login`: a role ID and, if the role binds one, a secret ID (openbao `path_login.go`,
//! `validation.go`). Every failure to match answers the same "invalid role or secret ID".

use std::collections::BTreeMap;
use std::sync::Arc;

use coffer_sdk::framework::Fields;
use coffer_sdk::{Alias, Error, Request, Response, Storage, StorageOp};

use super::role::{RoleEntry, RoleIdIndex};
use super::secret_id::SecretIdEntry;
use super::{accessor_key, encode, load, role_id_key, role_key, secret_id_key, AppRole};
use crate::fields::cidrs_allow;
use crate::lockout::LockoutConfig;

pub(super) async fn login(
    approle: &AppRole,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let role_id = fields.string("role_id")?.unwrap_or_default();
    if role_id.is_empty() {
        return Err(Error::invalid("missing role_id"));
    }
    let salt = approle.salt(storage).await?;
    let role_mac = salt.mac(&role_id);
    // User lockout applies to approle with the role ID as the login name, as in OpenBao.
    let lockout = LockoutConfig::from_options(&req.mount_options);
    if approle
        .lockout
        .is_locked(&role_mac, &lockout, approle.clock.now_secs())
    {
        return Err(Error::PermissionDenied);
    }
    let result = check(approle, req, &role_mac, storage).await;
    match result {
        Err(Failure::BadCredentials) => {
            if approle
                .lockout
                .record_failure(&role_mac, &lockout, approle.clock.now_secs())
            {
                return Err(Error::PermissionDenied);
            }
            Err(invalid_credentials())
        }
        Err(Failure::Other(e)) => Err(e),
        Ok((role, secret)) => {
            approle.lockout.record_success(&role_mac);
            Ok(Some(response(&role, role_id, secret)))
        }
    }
}

enum Failure {
    /// Wrong role ID or secret ID: counted towards lockout.
    BadCredentials,
    Other(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

/// The role and the secret ID used, once every check passed and a use was spent.
async fn check(
    approle: &AppRole,
    req: &Request,
    role_mac: &str,
    storage: &dyn Storage,
) -> Result<(Arc<RoleEntry>, Option<SecretIdEntry>), Failure> {
    let role = role_by_mac(approle, role_mac, storage)
        .await?
        .ok_or(Failure::BadCredentials)?;
    let remote = req.remote_addr.as_deref();
    if !cidrs_allow(&role.secret_id_bound_cidrs, remote) {
        return Err(Failure::Other(Error::invalid(format!(
            "source address {:?} unauthorized by CIDR restrictions on the role",
            remote.unwrap_or_default()
        ))));
    }
    if !role.bind_secret_id {
        return Ok((role, None));
    }
    let secret_id = Fields::new(&req.data)
        .string("secret_id")
        .map_err(Failure::Other)?
        .unwrap_or_default();
    if secret_id.is_empty() {
        return Err(Failure::Other(Error::invalid("missing secret_id")));
    }
    let salt = approle.salt(storage).await?;
    let mac = salt.mac(&secret_id);
    let key = secret_id_key(&role.name, &mac);
    let entry = load::<SecretIdEntry>(storage, &key)
        .await?
        .ok_or(Failure::BadCredentials)?;
    // The storage key is the MAC; check it again in constant time before trusting the entry.
    if !salt.verify(&secret_id, &mac) {
        return Err(Failure::BadCredentials);
    }
    let now = approle.clock.now();
    if entry.is_expired(now) {
        let _guard = approle.lock_secret(&mac).await;
        storage
            .apply(vec![
                StorageOp::Delete(key),
                StorageOp::Delete(accessor_key(&role.name, &entry.secret_id_accessor)),
            ])
            .await?;
        return Err(Failure::BadCredentials);
    }
    if !cidrs_allow(&entry.cidr_list, remote) {
        return Err(Failure::Other(Error::invalid(format!(
            "source address {:?} unauthorized by CIDR restrictions on the secret ID",
            remote.unwrap_or_default()
        ))));
    }
    if entry.secret_id_num_uses == 0 {
        return Ok((role, Some(entry)));
    }
    // A limited-use secret ID: spend one use under its lock, re-reading so that two logins
    // racing for the last use cannot both win.
    let _guard = approle.lock_secret(&mac).await;
    let mut entry = load::<SecretIdEntry>(storage, &key)
        .await?
        .ok_or(Failure::BadCredentials)?;
    if entry.secret_id_num_uses == 1 {
        storage
            .apply(vec![
                StorageOp::Delete(key),
                StorageOp::Delete(accessor_key(&role.name, &entry.secret_id_accessor)),
            ])
            .await?;
    } else {
        entry.secret_id_num_uses -= 1;
        entry.last_updated_time = now;
        storage.put(&key, encode(&entry)?).await?;
    }
    Ok((role, Some(entry)))
}

/// The role holding the role ID whose MAC is `mac`, from the cache or storage.
async fn role_by_mac(
    approle: &AppRole,
    mac: &str,
    storage: &dyn Storage,
) -> Result<Option<Arc<RoleEntry>>, Error> {
    if let Some(role) = approle
        .roles
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(mac)
    {
        return Ok(Some(role.clone()));
    }
    let Some(index) = load::<RoleIdIndex>(storage, &role_id_key(mac)).await? else {
        return Ok(None);
    };
    let Some(role) = load::<RoleEntry>(storage, &role_key(&index.name)).await? else {
        return Ok(None);
    };
    let role = Arc::new(role);
    approle
        .roles
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(mac.to_owned(), role.clone());
    Ok(Some(role))
}

fn response(role: &RoleEntry, role_id: String, secret: Option<SecretIdEntry>) -> Response {
    let mut auth = role.token.auth();
    let mut metadata = BTreeMap::new();
    let mut alias_metadata = BTreeMap::new();
    if let Some(secret) = &secret {
        metadata.extend(secret.metadata.clone());
        alias_metadata.extend(secret.metadata.clone());
        if !secret.token_bound_cidrs.is_empty() {
            auth.bound_cidrs = secret.token_bound_cidrs.clone();
        }
    }
    metadata.insert("role_name".to_owned(), role.name.clone());
    alias_metadata.insert("role_name".to_owned(), role.name.clone());
    auth.metadata = Some(metadata);
    auth.alias = Some(Alias {
        name: role_id,
        metadata: alias_metadata,
    });
    Response {
        auth: Some(auth),
        ..Response::default()
    }
}

fn invalid_credentials() -> Error {
    Error::invalid("invalid role or secret ID")
}
