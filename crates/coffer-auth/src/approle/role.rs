//! `role/<name>` and `role/<name>/role-id`: the settings of a role and its role ID (openbao
//! `path_role.go`).

use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage, StorageOp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{accessor_key, encode, load, role_id_key, role_key, role_missing, AppRole};
use crate::fields::{string_list, validate_cidrs};
use crate::token_params::{TokenParams, APPROLE_ALIASES};

/// One role as stored. Not `Debug`: it holds the role ID, half of a credential.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct RoleEntry {
    pub(super) name: String,
    pub(super) role_id: String,
    pub(super) bind_secret_id: bool,
    pub(super) secret_id_bound_cidrs: Vec<String>,
    pub(super) secret_id_num_uses: i64,
    /// Seconds; 0 = secret IDs do not expire.
    pub(super) secret_id_ttl: i64,
    pub(super) local_secret_ids: bool,
    #[serde(flatten)]
    pub(super) token: TokenParams,
}

/// LIST `role`.
pub(super) async fn list(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let keys = storage.list("role/").await?;
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

/// GET `role/<name>`.
pub(super) async fn read(name: &str, storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let Some(role) = load::<RoleEntry>(storage, &role_key(name)).await? else {
        return Ok(None);
    };
    let mut data = Map::new();
    data.insert("bind_secret_id".into(), json!(role.bind_secret_id));
    data.insert("local_secret_ids".into(), json!(role.local_secret_ids));
    // OpenBao shows an unset list as null here.
    let cidrs = if role.secret_id_bound_cidrs.is_empty() {
        Value::Null
    } else {
        json!(role.secret_id_bound_cidrs)
    };
    data.insert("secret_id_bound_cidrs".into(), cidrs);
    data.insert("secret_id_num_uses".into(), json!(role.secret_id_num_uses));
    data.insert("secret_id_ttl".into(), json!(role.secret_id_ttl));
    role.token.write_json(&mut data, APPROLE_ALIASES);
    Ok(Some(Response::with_data(data)))
}

/// POST `role/<name>`: creates or updates a role; a new role gets a random role ID unless one
/// is given.
pub(super) async fn write(
    approle: &AppRole,
    name: &str,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let existing = load::<RoleEntry>(storage, &role_key(name)).await?;
    let creating = existing.is_none();
    let mut role = existing.unwrap_or_else(|| RoleEntry {
        name: name.to_owned(),
        role_id: String::new(),
        bind_secret_id: true,
        secret_id_bound_cidrs: Vec::new(),
        secret_id_num_uses: 0,
        secret_id_ttl: 0,
        local_secret_ids: false,
        token: TokenParams::new(),
    });
    if let Some(b) = fields.bool("bind_secret_id")? {
        role.bind_secret_id = b;
    }
    let cidrs = match string_list(&req.data, "secret_id_bound_cidrs")? {
        Some(list) => Some(list),
        None => string_list(&req.data, "bound_cidr_list")?,
    };
    if let Some(list) = cidrs {
        validate_cidrs(&list, "CIDR blocks")?;
        role.secret_id_bound_cidrs = list;
    }
    if let Some(n) = fields.int("secret_id_num_uses")? {
        if n < 0 {
            return Err(Error::invalid("secret_id_num_uses cannot be negative"));
        }
        role.secret_id_num_uses = n;
    }
    if let Some(ttl) = fields.duration_secs("secret_id_ttl", false)? {
        role.secret_id_ttl = ttl;
    }
    if let Some(local) = fields.bool("local_secret_ids")? {
        if !creating && local != role.local_secret_ids {
            return Err(Error::invalid(
                "local_secret_ids can only be modified during role creation",
            ));
        }
        role.local_secret_ids = local;
    }
    role.token.update(&req.data, APPROLE_ALIASES)?;
    if !role.bind_secret_id
        && role.secret_id_bound_cidrs.is_empty()
        && role.token.token_bound_cidrs.is_empty()
    {
        return Err(Error::invalid(
            "at least one constraint should be enabled on the role",
        ));
    }
    let new_role_id = match fields.string("role_id")? {
        Some(id) if !id.is_empty() => Some(id),
        _ if creating => Some(uuid::Uuid::new_v4().to_string()),
        _ => None,
    };
    let mut ops = Vec::new();
    if let Some(id) = new_role_id.filter(|id| *id != role.role_id) {
        ops.extend(replace_role_id(approle, &mut role, id, storage).await?);
    }
    ops.push(StorageOp::Put(role_key(name), encode(&role)?));
    storage.apply(ops).await?;
    approle.forget_roles();
    Ok(None)
}

/// DELETE `role/<name>`: the role, its role ID and every secret ID issued against it.
pub(super) async fn delete(
    approle: &AppRole,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let Some(role) = load::<RoleEntry>(storage, &role_key(name)).await? else {
        return Ok(None);
    };
    let salt = approle.salt(storage).await?;
    let mut ops = vec![
        StorageOp::Delete(role_key(name)),
        StorageOp::Delete(role_id_key(&salt.mac(&role.role_id))),
    ];
    for mac in storage.list(&format!("secret_id/{name}/")).await? {
        ops.push(StorageOp::Delete(super::secret_id_key(name, &mac)));
    }
    for accessor in storage.list(&format!("accessor/{name}/")).await? {
        ops.push(StorageOp::Delete(accessor_key(name, &accessor)));
    }
    storage.apply(ops).await?;
    approle.forget_roles();
    Ok(None)
}

/// GET `role/<name>/role-id`.
pub(super) async fn read_role_id(
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let Some(role) = load::<RoleEntry>(storage, &role_key(name)).await? else {
        return Ok(None);
    };
    Ok(Some(Response::with_data(
        json!({ "role_id": role.role_id })
            .as_object()
            .cloned()
            .unwrap_or_default(),
    )))
}

/// POST `role/<name>/role-id`: sets a role ID of the caller's choosing.
pub(super) async fn write_role_id(
    approle: &AppRole,
    name: &str,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let Some(mut role) = load::<RoleEntry>(storage, &role_key(name)).await? else {
        return Err(role_missing(name));
    };
    let id = Fields::new(&req.data)
        .string("role_id")?
        .unwrap_or_default();
    if id.is_empty() {
        return Err(Error::invalid("missing role_id"));
    }
    if id == role.role_id {
        return Ok(None);
    }
    let mut ops = replace_role_id(approle, &mut role, id, storage).await?;
    ops.push(StorageOp::Put(role_key(name), encode(&role)?));
    storage.apply(ops).await?;
    approle.forget_roles();
    Ok(None)
}

/// GET `role/<name>/local-secret-ids`.
pub(super) async fn read_local_secret_ids(
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let Some(role) = load::<RoleEntry>(storage, &role_key(name)).await? else {
        return Ok(None);
    };
    Ok(Some(Response::with_data(
        json!({ "local_secret_ids": role.local_secret_ids })
            .as_object()
            .cloned()
            .unwrap_or_default(),
    )))
}

/// The index changes that move `role` to role ID `id`; refuses an ID another role holds.
async fn replace_role_id(
    approle: &AppRole,
    role: &mut RoleEntry,
    id: String,
    storage: &dyn Storage,
) -> Result<Vec<StorageOp>, Error> {
    let salt = approle.salt(storage).await?;
    let new_key = role_id_key(&salt.mac(&id));
    if let Some(owner) = load::<RoleIdIndex>(storage, &new_key).await? {
        if owner.name != role.name {
            return Err(Error::invalid("role_id already in use"));
        }
    }
    let mut ops = Vec::new();
    if !role.role_id.is_empty() {
        ops.push(StorageOp::Delete(role_id_key(&salt.mac(&role.role_id))));
    }
    ops.push(StorageOp::Put(
        new_key,
        encode(&RoleIdIndex {
            name: role.name.clone(),
        })?,
    ));
    role.role_id = id;
    Ok(ops)
}

/// `role_id/<mac>`: which role holds a role ID.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RoleIdIndex {
    pub(super) name: String,
}
