//! `role/<name>/secret-id` and its lookup and destroy paths, by secret ID or by accessor
//! (openbao `path_role.go`). Secret IDs are stored under their MAC only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage, StorageOp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::role::RoleEntry;
use super::{accessor_key, encode, load, role_key, role_missing, secret_id_key, AppRole};
use crate::clock::rfc3339;
use crate::fields::{cidrs_subset, string_list, validate_cidrs};

/// One secret ID's settings, stored at the MAC of the ID.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SecretIdEntry {
    pub(super) secret_id_accessor: String,
    /// Logins left; 0 = unlimited.
    pub(super) secret_id_num_uses: i64,
    pub(super) secret_id_ttl: i64,
    pub(super) creation_time: DateTime<Utc>,
    pub(super) expiration_time: Option<DateTime<Utc>>,
    pub(super) last_updated_time: DateTime<Utc>,
    pub(super) metadata: BTreeMap<String, String>,
    pub(super) cidr_list: Vec<String>,
    pub(super) token_bound_cidrs: Vec<String>,
}

impl SecretIdEntry {
    pub(super) fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expiration_time.is_some_and(|t| now >= t)
    }

    fn to_json(&self) -> Map<String, Value> {
        json!({
            "cidr_list": self.cidr_list,
            "creation_time": rfc3339(Some(self.creation_time)),
            "expiration_time": rfc3339(self.expiration_time),
            "last_updated_time": rfc3339(Some(self.last_updated_time)),
            "metadata": self.metadata,
            "secret_id_accessor": self.secret_id_accessor,
            "secret_id_num_uses": self.secret_id_num_uses,
            "secret_id_ttl": self.secret_id_ttl,
            "token_bound_cidrs": self.token_bound_cidrs,
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }
}

/// `accessor/<role>/<accessor>`: the MAC of the secret ID an accessor names.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccessorEntry {
    secret_id_mac: String,
}

/// POST `role/<name>/secret-id` (a random ID) or `custom-secret-id` (`custom` given).
pub(super) async fn generate(
    approle: &AppRole,
    name: &str,
    req: &Request,
    custom: Option<String>,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let Some(role) = load::<RoleEntry>(storage, &role_key(name)).await? else {
        return Err(role_missing(name));
    };
    if !role.bind_secret_id {
        return Err(Error::invalid(
            "bind_secret_id is not set on the role: secret IDs cannot be issued for it",
        ));
    }
    let fields = Fields::new(&req.data);
    let metadata = match fields.upfront(true).string("metadata")? {
        None => BTreeMap::new(),
        Some(s) if s.is_empty() => BTreeMap::new(),
        Some(s) => serde_json::from_str::<BTreeMap<String, String>>(&s).map_err(|_| {
            Error::invalid(
                "failed to parse metadata: failed to parse the input: invalid <key,value> format",
            )
        })?,
    };
    let cidr_list = string_list(&req.data, "cidr_list")?.unwrap_or_default();
    validate_cidrs(&cidr_list, "CIDR blocks").map_err(|_| cidr_error(&cidr_list))?;
    if !cidrs_subset(&role.secret_id_bound_cidrs, &cidr_list) {
        return Err(Error::invalid(format!(
            "failed to verify subset relationship between CIDR blocks on the role {:?} and \
             CIDR blocks on the secret ID {:?}",
            role.secret_id_bound_cidrs, cidr_list
        )));
    }
    let token_bound_cidrs = string_list(&req.data, "token_bound_cidrs")?.unwrap_or_default();
    validate_cidrs(&token_bound_cidrs, "CIDR blocks")
        .map_err(|_| cidr_error(&token_bound_cidrs))?;
    if !cidrs_subset(&role.token.token_bound_cidrs, &token_bound_cidrs) {
        return Err(Error::invalid(format!(
            "failed to verify subset relationship between the token bound CIDR blocks on the \
             role {:?} and the token bound CIDR blocks on the secret ID {:?}",
            role.token.token_bound_cidrs, token_bound_cidrs
        )));
    }
    let num_uses = match fields.int("num_uses")? {
        Some(n) if n < 0 => return Err(Error::invalid("num_uses cannot be negative")),
        Some(n) => n,
        None => role.secret_id_num_uses,
    };
    if role.secret_id_num_uses > 0 && (num_uses == 0 || num_uses > role.secret_id_num_uses) {
        return Err(Error::invalid(
            "num_uses cannot be higher than the role's secret_id_num_uses",
        ));
    }
    let ttl = fields
        .duration_secs("ttl", false)?
        .unwrap_or(role.secret_id_ttl);
    if role.secret_id_ttl > 0 && (ttl == 0 || ttl > role.secret_id_ttl) {
        return Err(Error::invalid(
            "ttl cannot be longer than the role's secret_id_ttl",
        ));
    }

    let secret_id = custom.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let salt = approle.salt(storage).await?;
    let mac = salt.mac(&secret_id);
    let key = secret_id_key(name, &mac);
    let _guard = approle.lock_secret(&mac).await;
    if storage.get(&key).await?.is_some() {
        return Err(Error::invalid(
            "failed to store secret_id: SecretID is already registered",
        ));
    }
    let now = approle.clock.now();
    let entry = SecretIdEntry {
        secret_id_accessor: uuid::Uuid::new_v4().to_string(),
        secret_id_num_uses: num_uses,
        secret_id_ttl: ttl,
        creation_time: now,
        expiration_time: (ttl > 0).then(|| now + chrono::Duration::seconds(ttl)),
        last_updated_time: now,
        metadata,
        cidr_list,
        token_bound_cidrs,
    };
    storage
        .apply(vec![
            StorageOp::Put(key, encode(&entry)?),
            StorageOp::Put(
                accessor_key(name, &entry.secret_id_accessor),
                encode(&AccessorEntry { secret_id_mac: mac })?,
            ),
        ])
        .await?;
    let data = json!({
        "secret_id": secret_id,
        "secret_id_accessor": entry.secret_id_accessor,
        "secret_id_num_uses": entry.secret_id_num_uses,
        "secret_id_ttl": entry.secret_id_ttl,
    });
    Ok(Some(Response::with_data(
        data.as_object().cloned().unwrap_or_default(),
    )))
}

/// POST `role/<name>/custom-secret-id`.
pub(super) async fn custom(
    approle: &AppRole,
    name: &str,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let secret_id = Fields::new(&req.data)
        .string("secret_id")?
        .unwrap_or_default();
    if secret_id.is_empty() {
        return Err(Error::invalid("missing secret_id"));
    }
    generate(approle, name, req, Some(secret_id), storage).await
}

/// LIST `role/<name>/secret-id`: the accessors of the role's secret IDs.
pub(super) async fn list(name: &str, storage: &dyn Storage) -> Result<Option<Response>, Error> {
    if storage.get(&role_key(name)).await?.is_none() {
        return Err(role_missing(name));
    }
    let keys = storage.list(&format!("accessor/{name}/")).await?;
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

/// POST `role/<name>/secret-id/lookup`: the settings of a secret ID, 204 if unknown.
pub(super) async fn lookup(
    approle: &AppRole,
    name: &str,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let secret_id = required(req, "secret_id")?;
    if storage.get(&role_key(name)).await?.is_none() {
        return Err(role_missing(name));
    }
    let mac = approle.salt(storage).await?.mac(&secret_id);
    let Some(entry) = load::<SecretIdEntry>(storage, &secret_id_key(name, &mac)).await? else {
        return Ok(None);
    };
    Ok(Some(Response::with_data(entry.to_json())))
}

/// POST or DELETE `role/<name>/secret-id/destroy`: 204 whether or not it existed.
pub(super) async fn destroy(
    approle: &AppRole,
    name: &str,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let secret_id = required(req, "secret_id")?;
    if storage.get(&role_key(name)).await?.is_none() {
        return Err(role_missing(name));
    }
    let mac = approle.salt(storage).await?.mac(&secret_id);
    let key = secret_id_key(name, &mac);
    let _guard = approle.lock_secret(&mac).await;
    if let Some(entry) = load::<SecretIdEntry>(storage, &key).await? {
        storage
            .apply(vec![
                StorageOp::Delete(key),
                StorageOp::Delete(accessor_key(name, &entry.secret_id_accessor)),
            ])
            .await?;
    }
    Ok(None)
}

/// POST `role/<name>/secret-id-accessor/lookup`.
pub(super) async fn accessor_lookup(
    name: &str,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let accessor = required(req, "secret_id_accessor")?;
    if storage.get(&role_key(name)).await?.is_none() {
        return Err(role_missing(name));
    }
    let found = match load::<AccessorEntry>(storage, &accessor_key(name, &accessor)).await? {
        Some(a) => load::<SecretIdEntry>(storage, &secret_id_key(name, &a.secret_id_mac)).await?,
        None => None,
    };
    match found {
        Some(entry) => Ok(Some(Response::with_data(entry.to_json()))),
        // OpenBao answers 404 with the reason in `data.error`.
        None => {
            let mut resp = Response::with_data(
                json!({ "error": accessor_missing(&accessor) })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            );
            resp.http_status = Some(404);
            Ok(Some(resp))
        }
    }
}

/// POST or DELETE `role/<name>/secret-id-accessor/destroy`.
pub(super) async fn accessor_destroy(
    name: &str,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let accessor = required(req, "secret_id_accessor")?;
    if storage.get(&role_key(name)).await?.is_none() {
        return Err(role_missing(name));
    }
    let key = accessor_key(name, &accessor);
    let Some(entry) = load::<AccessorEntry>(storage, &key).await? else {
        return Err(Error::invalid(accessor_missing(&accessor)));
    };
    storage
        .apply(vec![
            StorageOp::Delete(secret_id_key(name, &entry.secret_id_mac)),
            StorageOp::Delete(key),
        ])
        .await?;
    Ok(None)
}

fn required(req: &Request, field: &str) -> Result<String, Error> {
    match Fields::new(&req.data).string(field)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(Error::invalid(format!("missing {field}"))),
    }
}

fn accessor_missing(accessor: &str) -> String {
    format!("failed to find accessor entry for secret_id_accessor: {accessor:?}")
}

fn cidr_error(list: &[String]) -> Error {
    let bad = list
        .iter()
        .find(|c| validate_cidrs(std::slice::from_ref(*c), "").is_err())
        .cloned()
        .unwrap_or_default();
    Error::invalid(format!(
        "failed to validate CIDR blocks: invalid CIDR address: {bad}"
    ))
}
