//! `keys/`, `keys/<name>`, `keys/<name>/config`, `keys/<name>/rotate`, `keys/<name>/trim`,
//! `keys/<name>/soft-delete[-restore]`, `config/keys`, `export/`, `backup/` and `restore`:
//! managing named keys (openbao `path_keys.go`, `path_keys_config.go`, `path_rotate.go`,
//! `path_trim.go`, `path_config_keys.go`, `path_export.go`, `path_backup.go`,
//! `path_restore.go`, `keysutil/lock_manager.go`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage, StorageOp};
use serde_json::{json, Map, Value};

use super::key::Key;
use super::policy::{
    Info, KeyData, KeyEntry, KeyType, Policy, KDF_HKDF_SHA256, KDF_HMAC_SHA256_COUNTER,
    SOFT_DELETED,
};
use super::{decode_b64, load_archive, load_policy, Transit, ARCHIVE_PREFIX, POLICY_PREFIX};
use crate::time::{now_nanos, rfc3339_nanos};

/// LIST `keys`: no keys is a 404, as any OpenBao list.
pub(super) async fn list(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    Ok(crate::passthrough::list_response(
        storage.list(POLICY_PREFIX).await?,
    ))
}

/// POST `keys/<name>`: creates the key, or returns the existing one as it is.
pub(super) async fn create(
    transit: &Transit,
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let derived = fields.bool("derived")?.unwrap_or(false);
    let convergent = fields.bool("convergent_encryption")?.unwrap_or(false);
    let type_name = fields
        .string("type")?
        .unwrap_or_else(|| "aes256-gcm96".to_owned());
    let key_size = fields.int("key_size")?.unwrap_or(0);
    let exportable = fields.bool("exportable")?.unwrap_or(false);
    let allow_plaintext_backup = fields.bool("allow_plaintext_backup")?.unwrap_or(false);
    let auto_rotate = fields
        .duration_secs("auto_rotate_period", false)?
        .unwrap_or(0);
    if auto_rotate != 0 && auto_rotate < 3600 {
        return Err(Error::invalid(
            "auto rotate period must be 0 to disable or at least an hour",
        ));
    }
    if !derived && convergent {
        return Err(Error::invalid(
            "convergent encryption requires derivation to be enabled",
        ));
    }
    let key_type = KeyType::from_name(&type_name)
        .ok_or_else(|| Error::invalid(format!("unknown key type {type_name}")))?;
    if key_size != 0 {
        if key_type != KeyType::Hmac {
            return Err(Error::invalid(format!(
                "key_size is not valid for algorithm {}",
                key_type.name()
            )));
        }
        if !(32..=512).contains(&key_size) {
            return Err(Error::invalid(format!("invalid key_size {key_size}")));
        }
    }
    // OpenBao's source warns "key <name> already existed" here, but 2.7.2 answers an existing
    // key without any warning; coffer does as the running server does.
    let key = upsert(
        transit,
        storage,
        NewKey {
            name,
            key_type,
            derived,
            convergent,
            exportable,
            allow_plaintext_backup,
            auto_rotate_secs: auto_rotate,
            key_size,
        },
    )
    .await?;
    Ok(Some(format_key(&key, None)?))
}

/// The settings of a key to create.
pub(super) struct NewKey<'a> {
    pub name: &'a str,
    pub key_type: KeyType,
    pub derived: bool,
    pub convergent: bool,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    pub auto_rotate_secs: i64,
    pub key_size: i64,
}

/// The key `name`, created with `new` if it does not exist (OpenBao's upsert in
/// `GetPolicy`).
pub(super) async fn upsert(
    transit: &Transit,
    storage: &dyn Storage,
    new: NewKey<'_>,
) -> Result<std::sync::Arc<Key>, Error> {
    if let Some(key) = transit.key(storage, new.name).await? {
        return Ok(key);
    }
    validate_name(new.name)?;
    let t = new.key_type;
    if t.is_symmetric() {
        if new.convergent && !new.derived {
            return Err(Error::invalid(
                "convergent encryption requires derivation to be enabled",
            ));
        }
    } else if t == KeyType::Ed25519 {
        if new.convergent {
            return Err(Error::invalid(format!(
                "convergent encryption not supported for keys of type {}",
                t.name()
            )));
        }
    } else if new.derived || new.convergent {
        return Err(Error::invalid(format!(
            "key derivation and convergent encryption not supported for keys of type {}",
            t.name()
        )));
    }
    let mut policy = Policy {
        name: new.name.to_owned(),
        key_type: t.code(),
        derived: new.derived,
        exportable: new.exportable,
        allow_plaintext_backup: new.allow_plaintext_backup,
        auto_rotate_period: new.auto_rotate_secs.saturating_mul(1_000_000_000),
        key_size: new.key_size,
        ..Policy::default()
    };
    if new.derived {
        policy.kdf = KDF_HKDF_SHA256;
        if new.convergent {
            policy.convergent_encryption = true;
            policy.convergent_version = -1;
        }
    }
    get_or_create(transit, storage, policy).await
}

/// The key named `new.name`, or else `new` with a first version, stored. The name is not
/// checked: the mount's own wrapping key has a `/` in it.
pub(super) async fn get_or_create(
    transit: &Transit,
    storage: &dyn Storage,
    new: Policy,
) -> Result<std::sync::Arc<Key>, Error> {
    if let Some(key) = transit.key(storage, &new.name).await? {
        return Ok(key);
    }
    let name = new.name.clone();
    let _guard = transit.lock(&name).await;
    if let Some(policy) = load_policy(storage, &name).await? {
        // Created by another request meanwhile.
        let key = std::sync::Arc::new(super::build_key(policy).await?);
        transit.set_cached(&name, Some(key.clone()));
        return Ok(key);
    }
    let policy = rotate_blocking(new).await?;
    transit.persist(storage, policy).await
}

/// GET `keys/<name>`.
pub(super) async fn read(
    transit: &Transit,
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let context = Fields::new(&req.data).upfront(true).string("context")?;
    let Some(key) = transit.key(storage, name).await? else {
        return Ok(None);
    };
    let context = match context.filter(|c| !c.is_empty()) {
        Some(c) => {
            Some(decode_b64(&c).map_err(|_| Error::invalid("failed to base64-decode context"))?)
        }
        None => None,
    };
    Ok(Some(format_key(&key, context.as_deref())?))
}

/// DELETE `keys/<name>`: only when `deletion_allowed`.
pub(super) async fn delete(
    transit: &Transit,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let _guard = transit.lock(name).await;
    let Some(policy) = load_policy(storage, name).await? else {
        return Err(Error::invalid(format!(
            "error deleting policy {name}: could not delete key; not found"
        )));
    };
    if !policy.deletion_allowed {
        return Err(Error::invalid(format!(
            "error deleting policy {name}: deletion is not allowed for this key"
        )));
    }
    storage
        .apply(vec![
            StorageOp::Delete(format!("{POLICY_PREFIX}{name}")),
            StorageOp::Delete(format!("{ARCHIVE_PREFIX}{name}")),
        ])
        .await?;
    transit.set_cached(name, None);
    Ok(None)
}

/// POST `keys/<name>/config`.
pub(super) async fn config(
    transit: &Transit,
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let min_dec = fields.int("min_decryption_version")?;
    let min_enc = fields.int("min_encryption_version")?;
    let deletion_allowed = fields.bool("deletion_allowed")?;
    let exportable = fields.bool("exportable")?;
    let allow_plaintext_backup = fields.bool("allow_plaintext_backup")?;
    let auto_rotate = fields.duration_secs("auto_rotate_period", false)?;

    let _guard = transit.lock(name).await;
    let Some(mut p) = load_policy(storage, name).await? else {
        return Err(Error::invalid(format!(
            "no existing key named {name} could be found"
        )));
    };
    let mut warning = None;
    let mut changed = false;
    if let Some(mut v) = min_dec {
        if v < 0 {
            return Err(Error::invalid("min decryption version cannot be negative"));
        }
        if v == 0 {
            v = 1;
            warning = Some(
                "since Vault 0.3 (prior to the OpenBao fork), transit key numbering starts at 1; \
                 forcing minimum to 1",
            );
        }
        if v != p.min_decryption_version {
            if v > p.latest_version {
                return Err(Error::invalid(format!(
                    "cannot set min decryption version of {v}, latest key version is {}",
                    p.latest_version
                )));
            }
            p.min_decryption_version = v;
            changed = true;
        }
    }
    if let Some(v) = min_enc {
        if v < 0 {
            return Err(Error::invalid("min encryption version cannot be negative"));
        }
        if v != p.min_encryption_version {
            if v > p.latest_version {
                return Err(Error::invalid(format!(
                    "cannot set min encryption version of {v}, latest key version is {}",
                    p.latest_version
                )));
            }
            p.min_encryption_version = v;
            changed = true;
        }
    }
    if p.min_encryption_version > 0 && p.min_encryption_version < p.min_decryption_version {
        return Err(Error::invalid(format!(
            "cannot set min encryption/decryption values; min encryption version of {} must be \
             greater than or equal to min decryption version of {}",
            p.min_encryption_version, p.min_decryption_version
        )));
    }
    if let Some(v) = deletion_allowed {
        if v != p.deletion_allowed {
            p.deletion_allowed = v;
            changed = true;
        }
    }
    // exportable and allow_plaintext_backup can be turned on, never off.
    if exportable == Some(true) && !p.exportable {
        p.exportable = true;
        changed = true;
    }
    if allow_plaintext_backup == Some(true) && !p.allow_plaintext_backup {
        p.allow_plaintext_backup = true;
        changed = true;
    }
    if let Some(secs) = auto_rotate {
        if secs != 0 && secs < 3600 {
            return Err(Error::invalid(
                "auto rotate period must be 0 to disable or at least an hour",
            ));
        }
        let nanos = secs.saturating_mul(1_000_000_000);
        if nanos != p.auto_rotate_period {
            p.auto_rotate_period = nanos;
            changed = true;
        }
    }
    let key = if changed {
        if p.min_available_version > p.min_encryption_version {
            return Err(Error::invalid(
                "min encryption version should not be less than min available version",
            ));
        }
        if p.min_available_version > p.min_decryption_version {
            return Err(Error::invalid(
                "min decryption version should not be less then min available version",
            ));
        }
        transit.persist(storage, p).await?
    } else {
        match transit.cached(name) {
            Some(key) => key,
            None => std::sync::Arc::new(super::build_key(p).await?),
        }
    };
    let mut resp = format_key(&key, None)?;
    if let Some(w) = warning {
        resp = resp.warn(w);
    }
    Ok(Some(resp))
}

/// POST `keys/<name>/rotate`.
pub(super) async fn rotate(
    transit: &Transit,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let _guard = transit.lock(name).await;
    let Some(mut policy) = load_policy(storage, name).await? else {
        return Err(Error::invalid("key not found"));
    };
    if policy.imported && !policy.allow_imported_key_rotation {
        return Err(Error::invalid(format!(
            "imported key {name} does not allow rotation within Vault"
        )));
    }
    policy.imported = false;
    let policy = rotate_blocking(policy).await?;
    let key = transit.persist(storage, policy).await?;
    Ok(Some(format_key(&key, None)?))
}

/// POST `keys/<name>/trim`: raises `min_available_version`, deleting every version below it
/// from storage for good. It may not pass `min_decryption_version` nor
/// `min_encryption_version`, and needs both set (OpenBao's `pathTrimUpdate`, checks in its
/// order and with its texts, "minmum" included).
pub(super) async fn trim(
    transit: &Transit,
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let requested = Fields::new(&req.data)
        .upfront(true)
        .int("min_available_version")?;
    let _guard = transit.lock(name).await;
    let Some(mut p) = load_policy(storage, name).await? else {
        return Err(Error::invalid("invalid key name"));
    };
    let Some(v) = requested else {
        return Err(Error::invalid("missing min_available_version"));
    };
    let refusal = if v < p.min_available_version {
        Some("minimum available version cannot be decremented")
    } else if p.min_encryption_version == 0 {
        Some(
            "minimum available version cannot be set when minimum encryption version is not \
             set",
        )
    } else if p.min_decryption_version == 0 {
        Some(
            "minimum available version cannot be set when minimum decryption version is not \
             set",
        )
    } else if v > p.min_encryption_version {
        Some("minimum available version cannot be greater than minmum encryption version")
    } else if v > p.min_decryption_version {
        Some("minimum available version cannot be greater than minimum decryption version")
    } else if v < 0 {
        Some("minimum available version cannot be negative")
    } else if v == 0 {
        Some("minimum available version should be positive")
    } else {
        None
    };
    if let Some(refusal) = refusal {
        return Err(Error::invalid(refusal));
    }
    p.min_available_version = v;
    let key = transit.persist(storage, p).await?;
    Ok(Some(format_key(&key, None)?))
}

/// DELETE `keys/<name>/soft-delete` (`restore` false) and POST
/// `keys/<name>/soft-delete-restore` (`restore` true): marks the key unusable for every
/// operation, or usable again, keeping its versions and settings. Nothing happens to a key
/// that does not exist (OpenBao answers 204 then); a key already in the asked state gets
/// OpenBao's warning.
pub(super) async fn soft_delete(
    transit: &Transit,
    name: &str,
    restore: bool,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let _guard = transit.lock(name).await;
    let Some(mut p) = load_policy(storage, name).await? else {
        return Ok(None);
    };
    let unchanged = p.soft_deleted != restore;
    p.soft_deleted = !restore;
    let key = transit.persist(storage, p).await?;
    let mut resp = format_key(&key, None)?;
    if unchanged {
        resp = resp.warn(if restore {
            "key was already restored"
        } else {
            "key was already marked as soft deleted"
        });
    }
    Ok(Some(resp))
}

/// GET and POST `config/keys`: the mount's settings for all keys; `disable_upsert` stops
/// `encrypt/` from creating missing keys. A write without the field sets it to false, as
/// OpenBao's does.
pub(super) async fn config_keys(
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let mut config = load_keys_config(storage).await?;
    if req.operation != coffer_sdk::Operation::Read {
        let disable_upsert = Fields::new(&req.data)
            .upfront(true)
            .bool("disable_upsert")?
            .unwrap_or(false);
        if disable_upsert != config.disable_upsert {
            config.disable_upsert = disable_upsert;
            storage
                .put(KEYS_CONFIG_PATH, super::encode(&config)?)
                .await?;
        }
    }
    let mut data = Map::new();
    data.insert("disable_upsert".to_owned(), json!(config.disable_upsert));
    Ok(Some(Response::with_data(data)))
}

/// Whether `config/keys` forbids `encrypt/` to create keys.
pub(super) async fn upsert_disabled(storage: &dyn Storage) -> Result<bool, Error> {
    Ok(load_keys_config(storage).await?.disable_upsert)
}

/// What `config/keys` stores (OpenBao's `keysConfig`).
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct KeysConfig {
    #[serde(default)]
    disable_upsert: bool,
}

async fn load_keys_config(storage: &dyn Storage) -> Result<KeysConfig, Error> {
    match storage.get(KEYS_CONFIG_PATH).await? {
        None => Ok(KeysConfig::default()),
        Some(raw) => serde_json::from_slice(&raw)
            .map_err(|e| Error::internal(format_args!("failed to decode keys configuration: {e}"))),
    }
}

const KEYS_CONFIG_PATH: &str = "config/keys";

/// Adds a version; RSA generation runs off the async workers.
pub(super) async fn rotate_blocking(mut policy: Policy) -> Result<Policy, Error> {
    tokio::task::spawn_blocking(move || policy.rotate_in_memory().map(|()| policy))
        .await
        .map_err(Error::internal)?
}

/// GET `export/<type>/<name>[/<version>]`.
pub(super) async fn export(
    transit: &Transit,
    req: &Request,
    export_type: &str,
    name: &str,
    version: Option<&str>,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    if !matches!(
        export_type,
        "encryption-key" | "signing-key" | "hmac-key" | "public-key" | "certificate-chain"
    ) {
        return Err(Error::invalid(format!(
            "invalid export type: {export_type}"
        )));
    }
    let format = Fields::new(&req.data)
        .upfront(true)
        .string("format")?
        .unwrap_or_default();
    if !matches!(format.as_str(), "" | "raw" | "der" | "pem") {
        return Err(Error::invalid(format!("invalid format: {format}")));
    }
    let Some(key) = transit.key(storage, name).await? else {
        return Ok(None);
    };
    let p = &key.policy;
    if !p.exportable && export_type != "public-key" && export_type != "certificate-chain" {
        return Err(Error::invalid("private key material is not exportable"));
    }
    if p.soft_deleted {
        return Err(Error::invalid(SOFT_DELETED));
    }
    let kind = key.kind;
    match export_type {
        "encryption-key" if !kind.encryption_supported() => {
            return Err(Error::invalid("encryption not supported for the key"))
        }
        "signing-key" if !kind.signing_supported() => {
            return Err(Error::invalid("signing not supported for the key"))
        }
        "certificate-chain" if !kind.signing_supported() => {
            return Err(Error::invalid(
                "certificate chain not supported for keys that do not support signing",
            ))
        }
        _ => {}
    }
    let mut out = Map::new();
    for (v, entry) in p.export_entries(version)? {
        out.insert(
            v.to_owned(),
            Value::String(export_key(kind, entry, export_type, &format)?),
        );
    }
    let mut data = Map::new();
    data.insert("keys".to_owned(), Value::Object(out));
    data.insert("name".to_owned(), Value::String(p.name.clone()));
    data.insert("type".to_owned(), Value::String(kind.name().to_owned()));
    Ok(Some(Response::with_data(data)))
}

/// GET `backup/<name>`: base64 of OpenBao's `KeyData` JSON (the policy and its archive).
pub(super) async fn backup(
    transit: &Transit,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let _guard = transit.lock(name).await;
    let Some(mut policy) = load_policy(storage, name).await? else {
        return Err(Error::invalid(format!("key {name:?} not found")));
    };
    if policy.soft_deleted {
        return Err(Error::invalid(SOFT_DELETED));
    }
    if !policy.exportable {
        return Err(Error::invalid("exporting is disallowed on the policy"));
    }
    if !policy.allow_plaintext_backup {
        return Err(Error::invalid(
            "plaintext backup is disallowed on the policy",
        ));
    }
    policy.backup_info = Some(Info {
        time: rfc3339_nanos(now_nanos()),
        version: policy.latest_version,
    });
    let key = transit.persist(storage, policy).await?;
    let archive = load_archive(storage, name).await?;
    let data = KeyData {
        policy: key.policy.clone(),
        archived_keys: Some(archive),
    };
    let json = zeroize::Zeroizing::new(serde_json::to_vec(&data).map_err(Error::internal)?);
    let mut out = Map::new();
    out.insert("backup".to_owned(), Value::String(STANDARD.encode(&json)));
    Ok(Some(Response::with_data(out)))
}

/// POST `restore[/<name>]`: a backup from coffer or OpenBao, optionally renamed; `force`
/// overwrites an existing key.
pub(super) async fn restore(
    transit: &Transit,
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let backup = fields.string("backup")?.unwrap_or_default();
    let force = fields.bool("force")?.unwrap_or(false);
    if backup.is_empty() {
        return Err(Error::invalid("'backup' must be supplied"));
    }
    if name.contains('/') {
        return Err(Error::invalid("key names cannot be paths"));
    }
    let raw = zeroize::Zeroizing::new(
        decode_b64(&backup).map_err(|e| Error::invalid(format!("invalid backup: {e}")))?,
    );
    let mut data: KeyData = serde_json::from_slice(&raw)
        .map_err(|_| Error::invalid("invalid backup: not a transit key backup"))?;
    if !name.is_empty() {
        data.policy.name = name.to_owned();
    }
    let name = data.policy.name.clone();
    validate_name(&name)?;
    if data.policy.latest_version < 1 {
        return Err(Error::invalid("invalid backup: the key has no versions"));
    }
    let _guard = transit.lock(&name).await;
    if !force && load_policy(storage, &name).await?.is_some() {
        return Err(Error::invalid(format!("key {name:?} already exists")));
    }
    data.policy.restore_info = Some(Info {
        time: rfc3339_nanos(now_nanos()),
        version: data.policy.latest_version,
    });
    let mut policy = data.policy;
    let mut archive = data.archived_keys.unwrap_or_default();
    policy
        .handle_archiving(&mut archive)
        .map_err(|e| Error::invalid(format!("invalid backup: {e}")))?;
    // Refuse material that does not parse before anything is stored.
    let key = std::sync::Arc::new(
        super::build_key(policy)
            .await
            .map_err(|e| Error::invalid(format!("invalid backup: {e}")))?,
    );
    storage
        .apply(vec![
            StorageOp::Put(format!("{ARCHIVE_PREFIX}{name}"), super::encode(&archive)?),
            StorageOp::Put(
                format!("{POLICY_PREFIX}{name}"),
                super::encode(&key.policy)?,
            ),
        ])
        .await?;
    transit.set_cached(&name, Some(key));
    Ok(None)
}

/// What a key read returns (OpenBao's `formatKeyPolicy`).
pub(super) fn format_key(key: &Key, context: Option<&[u8]>) -> Result<Response, Error> {
    let p = &key.policy;
    let kind = key.kind;
    let mut d = Map::new();
    d.insert("name".into(), json!(p.name));
    d.insert("type".into(), json!(kind.name()));
    d.insert("derived".into(), json!(p.derived));
    d.insert("deletion_allowed".into(), json!(p.deletion_allowed));
    d.insert(
        "min_available_version".into(),
        json!(p.min_available_version),
    );
    d.insert(
        "min_decryption_version".into(),
        json!(p.min_decryption_version),
    );
    d.insert(
        "min_encryption_version".into(),
        json!(p.min_encryption_version),
    );
    d.insert("latest_version".into(), json!(p.latest_version));
    d.insert("exportable".into(), json!(p.exportable));
    d.insert(
        "allow_plaintext_backup".into(),
        json!(p.allow_plaintext_backup),
    );
    d.insert(
        "supports_encryption".into(),
        json!(kind.encryption_supported()),
    );
    d.insert(
        "supports_decryption".into(),
        json!(kind.encryption_supported()),
    );
    d.insert("supports_signing".into(), json!(kind.signing_supported()));
    d.insert(
        "supports_derivation".into(),
        json!(kind.derivation_supported()),
    );
    d.insert(
        "auto_rotate_period".into(),
        json!(p.auto_rotate_period / 1_000_000_000),
    );
    d.insert("imported_key".into(), json!(p.imported));
    d.insert("soft_deleted".into(), json!(p.soft_deleted));
    if p.key_size != 0 {
        d.insert("key_size".into(), json!(p.key_size));
    }
    if p.imported {
        d.insert(
            "imported_key_allow_rotation".into(),
            json!(p.allow_imported_key_rotation),
        );
    }
    if let Some(info) = &p.backup_info {
        d.insert(
            "backup_info".into(),
            json!({"time": info.time, "version": info.version}),
        );
    }
    if let Some(info) = &p.restore_info {
        d.insert(
            "restore_info".into(),
            json!({"time": info.time, "version": info.version}),
        );
    }
    if p.derived {
        match p.kdf {
            KDF_HMAC_SHA256_COUNTER => {
                d.insert("kdf".into(), json!("hmac-sha256-counter"));
                d.insert("kdf_mode".into(), json!("hmac-sha256-counter"));
            }
            KDF_HKDF_SHA256 => {
                d.insert("kdf".into(), json!("hkdf_sha256"));
            }
            _ => {}
        }
        d.insert(
            "convergent_encryption".into(),
            json!(p.convergent_encryption),
        );
        if p.convergent_encryption {
            d.insert(
                "convergent_encryption_version".into(),
                json!(p.convergent_version),
            );
        }
    }
    if kind.is_symmetric() {
        let keys: Map<String, Value> = p
            .keys
            .iter()
            .map(|(v, e)| (v.clone(), json!(e.creation_time)))
            .collect();
        d.insert("keys".into(), Value::Object(keys));
    } else if kind.signing_supported() {
        let mut keys = Map::new();
        for (v, e) in &p.keys {
            let curve_name = match kind {
                KeyType::EcdsaP256 => "P-256",
                KeyType::EcdsaP384 => "P-384",
                KeyType::EcdsaP521 => "P-521",
                other => other.name(),
            };
            let public_key = if kind == KeyType::Ed25519 && p.derived {
                match context {
                    Some(ctx) => key.derived_public_key(v.parse().unwrap_or(0), ctx)?,
                    None => String::new(),
                }
            } else if kind.is_rsa() {
                export_key(kind, e, "public-key", "pem").map(|pem| {
                    if pem.ends_with('\n') {
                        pem
                    } else {
                        pem + "\n"
                    }
                })?
            } else {
                e.public_key.clone()
            };
            let time = if e.time.is_empty() || e.time.starts_with("0001-") {
                rfc3339_nanos(e.creation_time.saturating_mul(1_000_000_000))
            } else {
                e.time.clone()
            };
            keys.insert(
                v.clone(),
                json!({
                    "certificate_chain": "",
                    "creation_time": time,
                    "name": curve_name,
                    "public_key": public_key,
                }),
            );
        }
        d.insert("keys".into(), Value::Object(keys));
    }
    Ok(Response::with_data(d))
}

/// One version's key in the requested export type and format (OpenBao's `getExportKey`).
pub(super) fn export_key(
    kind: KeyType,
    entry: &KeyEntry,
    export_type: &str,
    format: &str,
) -> Result<String, Error> {
    use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::LineEnding;
    let bytes = |b: &Option<super::policy::Bytes>| {
        b.as_ref()
            .map(|b| STANDARD.encode(b.as_slice()))
            .unwrap_or_default()
    };
    let raw_only = |what: &str| {
        if format == "der" || format == "pem" {
            Err(Error::invalid(format!(
                "unknown format for {what} key; supported values are `` or `raw`"
            )))
        } else {
            Ok(())
        }
    };
    let pem_or_der = |der: &[u8], label: &str, trim: bool| -> Result<String, Error> {
        if format == "der" {
            return Ok(STANDARD.encode(der));
        }
        let pem = pem_encode(label, der);
        Ok(if trim { pem.trim_end().to_owned() } else { pem })
    };
    match export_type {
        "hmac-key" => {
            raw_only("HMAC")?;
            Ok(if kind == KeyType::Hmac {
                bytes(&entry.key)
            } else {
                bytes(&entry.hmac_key)
            })
        }
        "encryption-key" | "signing-key"
            if kind.is_symmetric() && export_type == "encryption-key" =>
        {
            raw_only("HMAC")?;
            Ok(bytes(&entry.key))
        }
        "encryption-key" | "signing-key" if kind.is_rsa() => {
            if format == "raw" {
                return Err(Error::invalid(
                    "unknown key format for rsa key; supported values are ``, `der`, or `pem`",
                ));
            }
            let Some(go) = &entry.rsa_key else {
                return Ok(String::new());
            };
            let key = rsa_private(go)?;
            if format.is_empty() {
                let der = key
                    .to_pkcs1_der()
                    .map_err(|_| Error::internal("pkcs1 encoding"))?;
                pem_or_der(der.as_bytes(), "RSA PRIVATE KEY", false)
            } else {
                let der = rsa::pkcs8::EncodePrivateKey::to_pkcs8_der(&key)
                    .map_err(|_| Error::internal("pkcs8 encoding"))?;
                pem_or_der(der.as_bytes(), "PRIVATE KEY", false)
            }
        }
        "signing-key" if kind.is_ecdsa() => {
            if format == "raw" {
                return Err(Error::invalid(
                    "unknown key format for ec key; supported values are ``, `der`, or `pem`",
                ));
            }
            let Some(d) = &entry.ec_d else {
                return Ok(String::new());
            };
            let sec1_or_pkcs8 = |der: Result<(Vec<u8>, &str), Error>| {
                let (der, label) = der?;
                let der = zeroize::Zeroizing::new(der);
                pem_or_der(&der, label, true)
            };
            macro_rules! ec_private {
                ($curve:ident, $len:expr) => {{
                    let secret = $curve::SecretKey::from_slice(&d.to_be_bytes($len)?)
                        .map_err(|_| Error::invalid("invalid ecdsa key in key entry"))?;
                    if format.is_empty() {
                        secret
                            .to_sec1_der()
                            .map(|der| (der.to_vec(), "EC PRIVATE KEY"))
                            .map_err(|_| Error::internal("sec1 encoding"))
                    } else {
                        $curve::pkcs8::EncodePrivateKey::to_pkcs8_der(&secret)
                            .map(|der| (der.as_bytes().to_vec(), "PRIVATE KEY"))
                            .map_err(|_| Error::internal("pkcs8 encoding"))
                    }
                }};
            }
            sec1_or_pkcs8(match kind {
                KeyType::EcdsaP256 => ec_private!(p256, 32),
                KeyType::EcdsaP384 => ec_private!(p384, 48),
                _ => ec_private!(p521, 66),
            })
        }
        "signing-key" if kind == KeyType::Ed25519 => {
            let Some(key) = &entry.key else {
                return Ok(String::new());
            };
            if format.is_empty() || format == "raw" {
                return Ok(STANDARD.encode(key.as_slice()));
            }
            let seed: [u8; 32] = key.as_slice()[..32]
                .try_into()
                .map_err(|_| Error::invalid("ed25519 key has the wrong length"))?;
            let der = ed25519_dalek::SigningKey::from_bytes(&seed)
                .to_pkcs8_der()
                .map_err(|_| Error::internal("pkcs8 encoding"))?;
            pem_or_der(der.as_bytes(), "PRIVATE KEY", true)
        }
        "public-key" if kind.is_ecdsa() => {
            if format == "raw" {
                return Err(Error::invalid(
                    "unknown key format for ec key; supported values are ``, `der`, or `pem`",
                ));
            }
            let der = pem_decode(&entry.public_key)
                .ok_or_else(|| Error::invalid("invalid public key in key entry"))?;
            pem_or_der(&der, "PUBLIC KEY", true)
        }
        "public-key" if kind == KeyType::Ed25519 => {
            let public = entry.public_key.trim().to_owned();
            if format.is_empty() || format == "raw" {
                return Ok(public);
            }
            let raw: [u8; 32] = decode_b64(&public)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| Error::invalid("invalid public key in key entry"))?;
            let der = ed25519_dalek::VerifyingKey::from_bytes(&raw)
                .map_err(|_| Error::invalid("invalid public key in key entry"))?
                .to_public_key_der()
                .map_err(|_| Error::internal("spki encoding"))?;
            pem_or_der(der.as_bytes(), "PUBLIC KEY", true)
        }
        "public-key" if kind.is_rsa() => {
            if format == "raw" {
                return Err(Error::invalid(
                    "unknown key format for rsa key; supported values are ``, `der`, or `pem`",
                ));
            }
            let public = match (&entry.rsa_key, &entry.rsa_public_key) {
                (Some(go), _) => rsa_private(go)?.to_public_key(),
                (None, Some(go)) => {
                    rsa::RsaPublicKey::new(go.n.to_biguint()?, rsa::BigUint::from(go.e))
                        .map_err(|_| Error::invalid("invalid rsa public key in key entry"))?
                }
                _ => {
                    return Err(Error::invalid(
                        "requested to encode an RSA public key with no RSA key present",
                    ))
                }
            };
            let der = rsa::pkcs8::EncodePublicKey::to_public_key_der(&public)
                .map_err(|_| Error::internal("spki encoding"))?;
            let _ = LineEnding::LF;
            pem_or_der(der.as_bytes(), "PUBLIC KEY", false)
        }
        "certificate-chain" => Err(Error::invalid(
            "selected key version does not have a certificate chain imported",
        )),
        _ => Err(Error::invalid(format!(
            "unknown key type {} for export type {export_type}",
            kind.name()
        ))),
    }
}

fn rsa_private(go: &super::policy::GoRsaPrivateKey) -> Result<rsa::RsaPrivateKey, Error> {
    let primes = go
        .primes
        .iter()
        .map(super::policy::BigDec::to_biguint)
        .collect::<Result<Vec<_>, _>>()?;
    rsa::RsaPrivateKey::from_components(
        go.n.to_biguint()?,
        rsa::BigUint::from(go.e),
        go.d.to_biguint()?,
        primes,
    )
    .map_err(|_| Error::invalid("invalid rsa key in key entry"))
}

/// PEM as Go's `pem.EncodeToMemory`: 64-column base64, a trailing newline.
pub(super) fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub(super) fn pem_decode(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    decode_b64(body.trim()).ok()
}

/// Key names are one path segment (OpenBao's `GenericNameRegex`).
pub(super) fn validate_name(name: &str) -> Result<(), Error> {
    if is_generic_name(name) {
        Ok(())
    } else {
        Err(Error::invalid(format!("invalid key name {name:?}")))
    }
}

/// OpenBao's `GenericNameRegex`, `\w(([\w-.]+)?\w)?`: word characters, dashes and dots,
/// starting and ending with a word character.
pub(super) fn is_generic_name(name: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            word(first) && word(last) && bytes.iter().all(|&b| word(b) || b == b'-' || b == b'.')
        }
        _ => false,
    }
}
