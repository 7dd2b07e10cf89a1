//! `roles/<name>` and `roles` LIST, after openbao `path_roles.go`: CA roles (`key_type=ca`, for
//! `sign/<role>`) and OTP roles (`key_type=otp`, for `creds/<role>`); `dynamic` gets OpenBao's
//! own refusal. Deleting a role also takes it off `config/zeroaddress`.

use std::collections::BTreeMap;

use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage, StorageOp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{cidr, zeroaddress};

/// A role as stored under `roles/<name>`: one shape for both key types, as OpenBao's
/// `sshRole`; an OTP role sets only `key_type`, `default_user`, `allowed_users`, `cidr_list`,
/// `exclude_cidr_list` and `port`. Durations are whole seconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Role {
    pub(crate) key_type: String,
    pub(crate) default_user: String,
    pub(crate) default_user_template: bool,
    pub(crate) allowed_users: String,
    pub(crate) allowed_users_template: bool,
    pub(crate) allowed_domains: String,
    pub(crate) allowed_domains_template: bool,
    pub(crate) ttl: i64,
    pub(crate) max_ttl: i64,
    pub(crate) default_critical_options: BTreeMap<String, String>,
    pub(crate) default_extensions: BTreeMap<String, String>,
    pub(crate) default_extensions_template: bool,
    pub(crate) allowed_critical_options: String,
    pub(crate) allowed_extensions: String,
    pub(crate) allow_user_certificates: bool,
    pub(crate) allow_host_certificates: bool,
    pub(crate) allow_bare_domains: bool,
    pub(crate) allow_subdomains: bool,
    pub(crate) allow_user_key_ids: bool,
    pub(crate) allow_empty_principals: bool,
    pub(crate) allow_commas_in_identity_templates: bool,
    pub(crate) allow_wildcards_in_identity_templates: bool,
    pub(crate) key_id_format: String,
    pub(crate) allowed_user_key_lengths: BTreeMap<String, Vec<i64>>,
    pub(crate) algorithm_signer: String,
    pub(crate) not_before_duration: i64,
    pub(crate) issuer_ref: String,
    pub(crate) cidr_list: String,
    pub(crate) exclude_cidr_list: String,
    pub(crate) port: i64,
}

impl Role {
    pub(crate) fn is_otp(&self) -> bool {
        self.key_type == KEY_TYPE_OTP
    }

    /// The role as OpenBao's read answers it (`parseRole`): an OTP role shows its six fields.
    fn to_data(&self) -> Map<String, Value> {
        let mut d = Map::new();
        if self.is_otp() {
            d.insert("allowed_users".into(), json!(self.allowed_users));
            d.insert("cidr_list".into(), json!(self.cidr_list));
            d.insert("default_user".into(), json!(self.default_user));
            d.insert("exclude_cidr_list".into(), json!(self.exclude_cidr_list));
            d.insert("key_type".into(), json!(self.key_type));
            d.insert("port".into(), json!(self.port));
            return d;
        }
        d.insert("algorithm_signer".into(), json!(self.algorithm_signer));
        d.insert("allow_bare_domains".into(), json!(self.allow_bare_domains));
        d.insert(
            "allow_commas_in_identity_templates".into(),
            json!(self.allow_commas_in_identity_templates),
        );
        d.insert(
            "allow_empty_principals".into(),
            json!(self.allow_empty_principals),
        );
        d.insert(
            "allow_host_certificates".into(),
            json!(self.allow_host_certificates),
        );
        d.insert("allow_subdomains".into(), json!(self.allow_subdomains));
        d.insert(
            "allow_user_certificates".into(),
            json!(self.allow_user_certificates),
        );
        d.insert("allow_user_key_ids".into(), json!(self.allow_user_key_ids));
        d.insert(
            "allow_wildcards_in_identity_templates".into(),
            json!(self.allow_wildcards_in_identity_templates),
        );
        d.insert(
            "allowed_critical_options".into(),
            json!(self.allowed_critical_options),
        );
        d.insert("allowed_domains".into(), json!(self.allowed_domains));
        d.insert(
            "allowed_domains_template".into(),
            json!(self.allowed_domains_template),
        );
        d.insert("allowed_extensions".into(), json!(self.allowed_extensions));
        d.insert(
            "allowed_user_key_lengths".into(),
            json!(self.allowed_user_key_lengths),
        );
        d.insert("allowed_users".into(), json!(self.allowed_users));
        d.insert(
            "allowed_users_template".into(),
            json!(self.allowed_users_template),
        );
        d.insert(
            "default_critical_options".into(),
            json!(self.default_critical_options),
        );
        d.insert("default_extensions".into(), json!(self.default_extensions));
        d.insert(
            "default_extensions_template".into(),
            json!(self.default_extensions_template),
        );
        d.insert("default_user".into(), json!(self.default_user));
        d.insert(
            "default_user_template".into(),
            json!(self.default_user_template),
        );
        d.insert("issuer_ref".into(), json!(self.issuer_ref));
        d.insert("key_id_format".into(), json!(self.key_id_format));
        d.insert("key_type".into(), json!(self.key_type));
        d.insert("max_ttl".into(), json!(self.max_ttl));
        d.insert(
            "not_before_duration".into(),
            json!(self.not_before_duration),
        );
        d.insert("ttl".into(), json!(self.ttl));
        d
    }
}

/// Creates or replaces a role, validating as OpenBao's `pathRoleWrite` and `createCARole`.
pub(crate) async fn write(
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let f = Fields::new(&req.data).upfront(true);
    // Every field converts before the handler runs, as OpenBao's framework does.
    let string = |n: &str| f.string(n).map(Option::unwrap_or_default);
    let boolean = |n: &str| f.bool(n).map(|b| b.unwrap_or(false));
    let key_type = string("key_type")?;
    let default_user = string("default_user")?;
    let allowed_users = string("allowed_users")?;
    let ttl = f.duration_secs("ttl", false)?.unwrap_or(0);
    let max_ttl = f.duration_secs("max_ttl", false)?.unwrap_or(0);
    let not_before = f.duration_secs("not_before_duration", false)?.unwrap_or(30);
    let default_critical_options = string_map(f.map("default_critical_options")?);
    let default_extensions = string_map(f.map("default_extensions")?);
    let key_lengths = f.map("allowed_user_key_lengths")?;
    let algorithm_signer = f.string("algorithm_signer")?;
    let mut role = Role {
        default_user_template: boolean("default_user_template")?,
        allowed_users_template: boolean("allowed_users_template")?,
        allowed_domains: string("allowed_domains")?,
        allowed_domains_template: boolean("allowed_domains_template")?,
        allowed_critical_options: string("allowed_critical_options")?,
        allowed_extensions: string("allowed_extensions")?,
        default_extensions_template: boolean("default_extensions_template")?,
        allow_user_certificates: boolean("allow_user_certificates")?,
        allow_host_certificates: boolean("allow_host_certificates")?,
        allow_bare_domains: boolean("allow_bare_domains")?,
        allow_subdomains: boolean("allow_subdomains")?,
        allow_user_key_ids: boolean("allow_user_key_ids")?,
        allow_empty_principals: boolean("allow_empty_principals")?,
        allow_commas_in_identity_templates: boolean("allow_commas_in_identity_templates")?,
        allow_wildcards_in_identity_templates: boolean("allow_wildcards_in_identity_templates")?,
        key_id_format: string("key_id_format")?,
        issuer_ref: string("issuer_ref")?,
        ..Role::default()
    };
    let cidr_list = string("cidr_list")?;
    let exclude_cidr_list = string("exclude_cidr_list")?;
    let port = f.int("port")?.unwrap_or(0);

    // OpenBao checks the CIDR lists of every key type before the key type itself, and answers
    // a bad block with a 500; it is the client's error: 400, with OpenBao's text.
    if !cidr_list.is_empty() {
        cidr::validate_list(&cidr_list)
            .map_err(|e| Error::invalid(format!("failed to validate cidr_list: {e}")))?;
    }
    if !exclude_cidr_list.is_empty() {
        cidr::validate_list(&exclude_cidr_list).map_err(|e| {
            Error::invalid(format!("failed to validate exclude_cidr_list entry: {e}"))
        })?;
    }
    if key_type.is_empty() {
        return Err(Error::invalid("missing key type"));
    }
    match key_type.to_lowercase().as_str() {
        "ca" => {}
        KEY_TYPE_OTP => {
            if default_user.is_empty() {
                return Err(Error::invalid("missing default user"));
            }
            let role = Role {
                key_type: KEY_TYPE_OTP.into(),
                default_user,
                allowed_users,
                cidr_list,
                exclude_cidr_list,
                port: otp_port(port)?,
                ..Role::default()
            };
            return store(storage, name, &role).await;
        }
        "dynamic" => {
            return Err(Error::invalid(
                "dynamic key type roles are no longer supported",
            ))
        }
        _ => return Err(Error::invalid("invalid key type")),
    }
    role.key_type = "ca".into();
    role.algorithm_signer = match algorithm_signer.as_deref() {
        None | Some("") | Some("default") => "default".into(),
        Some(s @ ("ssh-rsa" | "rsa-sha2-256" | "rsa-sha2-512")) => s.into(),
        // OpenBao answers 500 with this text; a bad field is the client's error: 400.
        Some(other) => {
            return Err(Error::invalid(format!(
                "unknown algorithm signer {other:?}"
            )))
        }
    };
    if !role.allow_user_certificates && !role.allow_host_certificates {
        return Err(Error::invalid(
            "Either 'allow_user_certificates' or 'allow_host_certificates' must be set to 'true'",
        ));
    }
    role.allowed_user_key_lengths = match key_lengths {
        None => BTreeMap::new(),
        Some(map) => map
            .iter()
            .map(|(k, v)| int_slice(v).map(|ints| (k.clone(), ints)))
            .collect::<Result<_, _>>()
            .map_err(|e| {
                Error::invalid(format!("error processing allowed_user_key_lengths: {e}"))
            })?,
    };
    if ttl != 0 && max_ttl != 0 && ttl > max_ttl {
        return Err(Error::invalid(
            "\"ttl\" value must be less than \"max_ttl\" when both are specified",
        ));
    }
    role.default_user = default_user;
    role.allowed_users = allowed_users;
    role.ttl = ttl;
    role.max_ttl = max_ttl;
    role.not_before_duration = not_before;
    role.default_critical_options = default_critical_options;
    role.default_extensions = default_extensions;
    if role.issuer_ref.is_empty() {
        role.issuer_ref = "default".into();
    }
    store(storage, name, &role).await
}

pub(crate) async fn read(name: &str, storage: &dyn Storage) -> Result<Option<Response>, Error> {
    Ok(load(storage, name)
        .await?
        .map(|role| Response::with_data(role.to_data())))
}

/// Deletes the role and, in the same batch, takes it off `config/zeroaddress`, as OpenBao's
/// `pathRoleDelete` does.
pub(crate) async fn delete(name: &str, storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let mut ops = vec![StorageOp::Delete(format!("{ROLE_PREFIX}{name}"))];
    ops.extend(zeroaddress::remove_role(storage, name).await?);
    storage.apply(ops).await?;
    Ok(None)
}

/// `keys` and `key_info` (each role's `key_type`, and a CA role's `issuer_ref`), with
/// `after`/`limit`.
pub(crate) async fn list(req: &Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let f = Fields::new(&req.data).upfront(true);
    let after = f.string("after")?.unwrap_or_default();
    let limit = f.int("limit")?.unwrap_or(0);
    let mut keys: Vec<String> = storage
        .list(ROLE_PREFIX)
        .await?
        .into_iter()
        .filter(|k| !k.ends_with('/') && (after.is_empty() || k.as_str() > after.as_str()))
        .collect();
    if limit > 0 {
        keys.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    if keys.is_empty() {
        return Ok(None);
    }
    let mut info = Map::new();
    for key in &keys {
        match load(storage, key).await? {
            Some(role) if role.is_otp() => {
                info.insert(key.clone(), json!({"key_type": role.key_type}));
            }
            Some(role) => {
                info.insert(
                    key.clone(),
                    json!({"key_type": role.key_type, "issuer_ref": role.issuer_ref}),
                );
            }
            None => {}
        }
    }
    let mut data = Map::new();
    data.insert("keys".into(), json!(keys));
    data.insert("key_info".into(), Value::Object(info));
    Ok(Some(Response::with_data(data)))
}

pub(crate) async fn load(storage: &dyn Storage, name: &str) -> Result<Option<Role>, Error> {
    let Some(bytes) = storage.get(&format!("{ROLE_PREFIX}{name}")).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(Error::internal)
}

async fn store(storage: &dyn Storage, name: &str, role: &Role) -> Result<Option<Response>, Error> {
    let bytes = serde_json::to_vec(role).map_err(Error::internal)?;
    storage.put(&format!("{ROLE_PREFIX}{name}"), bytes).await?;
    Ok(None)
}

/// An OTP role's `port`: 0 (or absent) means 22, as in OpenBao. OpenBao stores any integer,
/// even one no sshd can listen on, and hands it to every client of the role; coffer refuses it.
fn otp_port(port: i64) -> Result<i64, Error> {
    match port {
        0 => Ok(22),
        1..=65535 => Ok(port),
        _ => Err(Error::invalid(format!(
            "port must be between 1 and 65535, got {port}"
        ))),
    }
}

/// OpenBao's `convertMapToStringValue`: every value printed with Go's `%v`.
pub(crate) fn string_map(map: Option<&Map<String, Value>>) -> BTreeMap<String, String> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), go_value(v))).collect())
        .unwrap_or_default()
}

/// Go's `fmt.Sprintf("%v", v)` of a decoded JSON value.
pub(crate) fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => n.as_f64().map(|f| f.to_string()).unwrap_or_default(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_value).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => format!(
            "map[{}]",
            map.iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// `parseutil.SafeParseIntSlice`: a number, a comma-separated string or a list of either.
fn int_slice(v: &Value) -> Result<Vec<i64>, String> {
    let one = |v: &Value| -> Result<i64, String> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| format!("could not parse {n} as an int")),
            Value::String(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("strconv.ParseInt: parsing {s:?}: invalid syntax")),
            other => Err(format!("could not parse value from input: {other}")),
        }
    };
    match v {
        Value::Array(items) => items.iter().map(one).collect(),
        Value::String(s) => s
            .split(',')
            .map(|p| one(&Value::String(p.to_owned())))
            .collect(),
        other => one(other).map(|i| vec![i]),
    }
}

pub(crate) const ROLE_PREFIX: &str = "roles/";
const KEY_TYPE_OTP: &str = "otp";
