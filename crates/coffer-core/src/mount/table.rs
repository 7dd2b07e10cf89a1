//! Mount table entries. Each mount is its own storage entry (`core/mounts/<uuid>` or
//! `core/auth/<uuid>`), so the table never caps out as Vault's single-entry table does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Which table a mount belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    Secrets,
    Auth,
}

impl Table {
    /// Where this table's entries are stored.
    pub fn storage_prefix(self) -> &'static str {
        match self {
            Table::Secrets => "core/mounts/",
            Table::Auth => "core/auth/",
        }
    }

    /// The barrier prefix under which a mount of this table keeps its data.
    fn data_prefix(self) -> &'static str {
        match self {
            Table::Secrets => "logical/",
            Table::Auth => "auth/",
        }
    }

    /// The prefix of request paths routed into this table.
    pub fn route_prefix(self) -> &'static str {
        match self {
            Table::Secrets => "",
            Table::Auth => "auth/",
        }
    }
}

/// The tunable settings of a mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MountConfig {
    /// Seconds; 0 means the system default.
    pub default_lease_ttl: u64,
    /// Seconds; 0 means the system default.
    pub max_lease_ttl: u64,
    #[serde(default)]
    pub force_no_cache: bool,
}

/// One entry of the mount table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountEntry {
    pub table: Table,
    /// The path relative to its table, ending in `/` (e.g. `secret/`, or `userpass/` for
    /// `auth/userpass/`).
    pub path: String,
    #[serde(rename = "type")]
    pub mount_type: String,
    pub description: String,
    pub uuid: String,
    pub accessor: String,
    pub config: MountConfig,
    pub options: BTreeMap<String, String>,
    pub local: bool,
    pub seal_wrap: bool,
}

impl MountEntry {
    /// The full request-path prefix, e.g. `secret/` or `auth/token/`.
    pub fn route_path(&self) -> String {
        format!("{}{}", self.table.route_prefix(), self.path)
    }

    /// Where this entry itself is stored.
    pub fn storage_key(&self) -> String {
        format!("{}{}", self.table.storage_prefix(), self.uuid)
    }

    /// The barrier prefix of this mount's data.
    pub fn data_prefix(&self) -> String {
        format!("{}{}/", self.table.data_prefix(), self.uuid)
    }

    /// The entry as `sys/mounts` and `sys/auth` show it (OpenBao's fields).
    pub fn to_json(&self) -> Value {
        let mut config = Map::new();
        config.insert(
            "default_lease_ttl".into(),
            json!(self.config.default_lease_ttl),
        );
        config.insert("max_lease_ttl".into(), json!(self.config.max_lease_ttl));
        config.insert("force_no_cache".into(), json!(self.config.force_no_cache));
        if self.mount_type == "token" {
            config.insert("token_type".into(), json!("default-service"));
        }
        let mut out = json!({
            "accessor": self.accessor,
            "config": config,
            "description": self.description,
            "external_entropy_access": false,
            "local": self.local,
            // OpenBao shows a kv mount's options as a map even when empty.
            "options": if self.options.is_empty() && self.mount_type != "kv" {
                Value::Null
            } else {
                json!(self.options)
            },
            "plugin_version": "",
            "running_plugin_version": format!("v{}+builtin.coffer", env!("CARGO_PKG_VERSION")),
            "running_sha256": "",
            "seal_wrap": self.seal_wrap,
            "type": self.mount_type,
            "uuid": self.uuid,
        });
        if self.mount_type == "kv" {
            out["deprecation_status"] = json!("supported");
        }
        out
    }
}
