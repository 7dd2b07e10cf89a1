//! The server configuration: Vault-style HCL, checked strictly so that a typo is an error that
//! names the key, not a silently ignored setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use hcl::{Block, Body, Expression, Structure};

/// Where data is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    Sqlite { path: PathBuf },
    InMem,
}

impl StorageConfig {
    pub fn name(&self) -> &'static str {
        match self {
            StorageConfig::Sqlite { .. } => "sqlite",
            StorageConfig::InMem => "inmem",
        }
    }
}

/// A `listener "tcp"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Bytes; OpenBao's place for the limit, overriding the top-level key.
    pub max_request_size: Option<usize>,
}

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub storage: StorageConfig,
    pub listener: ListenerConfig,
    pub api_addr: Option<String>,
    pub disable_mlock: bool,
    pub ui: bool,
    /// Seconds.
    pub default_lease_ttl: u64,
    /// Seconds.
    pub max_lease_ttl: u64,
    /// Bytes.
    pub max_request_size: usize,
    /// `audit "TYPE" "NAME" { description = "..." options { ... } }` blocks, in file order.
    pub audit: Vec<coffer_core::audit::AuditDeviceConfig>,
    /// OpenBao's opt-in to creating and removing audit devices through `sys/audit/<path>`.
    pub unsafe_allow_api_audit_creation: bool,
    /// Where API-created `file` devices may write; without it none can be created.
    pub audit_api_directory: Option<PathBuf>,
}

const DEFAULT_TTL: u64 = 768 * 3600;
const DEFAULT_MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Parses config text.
    pub fn parse(text: &str) -> Result<Config> {
        let body: Body = hcl::from_str(text).map_err(|e| anyhow!("{e}"))?;
        let mut storage = None;
        let mut listener = None;
        let mut config = Config {
            storage: StorageConfig::InMem,
            listener: ListenerConfig {
                address: "127.0.0.1:8200".parse().expect("valid literal address"),
                tls: None,
                max_request_size: None,
            },
            api_addr: None,
            disable_mlock: false,
            ui: false,
            default_lease_ttl: DEFAULT_TTL,
            max_lease_ttl: DEFAULT_TTL,
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            audit: Vec::new(),
            unsafe_allow_api_audit_creation: false,
            audit_api_directory: None,
        };
        for structure in body.into_inner() {
            match structure {
                Structure::Attribute(attr) => {
                    let key = attr.key.as_str();
                    let value = &attr.expr;
                    match key {
                        "api_addr" => config.api_addr = Some(string(key, value)?),
                        "cluster_addr" | "cluster_name" | "log_level" | "pid_file" => {
                            string(key, value)?;
                        }
                        "disable_mlock" => config.disable_mlock = boolean(key, value)?,
                        "ui" => config.ui = boolean(key, value)?,
                        "default_lease_ttl" => config.default_lease_ttl = duration(key, value)?,
                        "max_lease_ttl" => config.max_lease_ttl = duration(key, value)?,
                        "max_request_size" => {
                            config.max_request_size = usize::try_from(integer(key, value)?)
                                .map_err(|_| anyhow!("max_request_size is too large"))?
                        }
                        "unsafe_allow_api_audit_creation" => {
                            config.unsafe_allow_api_audit_creation = boolean(key, value)?
                        }
                        "audit_api_directory" => {
                            config.audit_api_directory = Some(PathBuf::from(string(key, value)?))
                        }
                        other => bail!("unknown key {other:?}"),
                    }
                }
                Structure::Block(block) => match block.identifier.as_str() {
                    "storage" => {
                        if storage.is_some() {
                            bail!("only one storage block is allowed");
                        }
                        storage = Some(parse_storage(&block)?);
                    }
                    "listener" => {
                        if listener.is_some() {
                            bail!("only one listener block is supported");
                        }
                        listener = Some(parse_listener(&block)?);
                    }
                    "audit" => {
                        let device = parse_audit(&block)?;
                        if config.audit.iter().any(|d| d.path == device.path) {
                            bail!("audit device {:?} is declared twice", device.path);
                        }
                        config.audit.push(device);
                    }
                    other => bail!("unknown block {other:?}"),
                },
            }
        }
        config.storage = storage.ok_or_else(|| anyhow!("a storage block is required"))?;
        config.listener = listener.ok_or_else(|| anyhow!("a listener block is required"))?;
        if let Some(size) = config.listener.max_request_size {
            config.max_request_size = size;
        }
        if config.max_lease_ttl > 0 && config.default_lease_ttl > config.max_lease_ttl {
            bail!("default_lease_ttl must not exceed max_lease_ttl");
        }
        Ok(config)
    }
}

fn parse_storage(block: &Block) -> Result<StorageConfig> {
    let kind = single_label(block, "storage")?;
    let attrs = attributes(block, "storage")?;
    match kind.as_str() {
        "sqlite" => {
            let mut path = None;
            for (key, value) in attrs {
                match key.as_str() {
                    "path" => path = Some(PathBuf::from(string(&key, &value)?)),
                    other => bail!("unknown key {other:?} in storage \"sqlite\""),
                }
            }
            Ok(StorageConfig::Sqlite {
                path: path.ok_or_else(|| anyhow!("storage \"sqlite\" needs a path"))?,
            })
        }
        "inmem" => {
            if let Some((key, _)) = attrs.first() {
                bail!("unknown key {key:?} in storage \"inmem\"");
            }
            Ok(StorageConfig::InMem)
        }
        other => bail!("unknown storage type {other:?} (supported: sqlite, inmem)"),
    }
}

fn parse_listener(block: &Block) -> Result<ListenerConfig> {
    let kind = single_label(block, "listener")?;
    if kind != "tcp" {
        bail!("unknown listener type {kind:?} (supported: tcp)");
    }
    let mut address = "127.0.0.1:8200".to_owned();
    let (mut cert, mut key, mut disable) = (None, None, false);
    let mut max_request_size = None;
    for (name, value) in attributes(block, "listener")? {
        match name.as_str() {
            "max_request_size" => {
                max_request_size = Some(
                    usize::try_from(integer(&name, &value)?)
                        .map_err(|_| anyhow!("max_request_size is too large"))?,
                )
            }
            "address" => address = string(&name, &value)?,
            "tls_cert_file" => cert = Some(PathBuf::from(string(&name, &value)?)),
            "tls_key_file" => key = Some(PathBuf::from(string(&name, &value)?)),
            "tls_disable" => disable = boolean(&name, &value)?,
            other => bail!("unknown key {other:?} in listener \"tcp\""),
        }
    }
    let address = address
        .parse()
        .map_err(|_| anyhow!("listener address {address:?} is not host:port"))?;
    let tls = if disable {
        None
    } else {
        match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            _ => bail!("listener \"tcp\": tls_cert_file and tls_key_file are required unless tls_disable = true"),
        }
    };
    Ok(ListenerConfig {
        address,
        tls,
        max_request_size,
    })
}

/// `audit "file" "NAME" { description = "..." options { file_path = "..." } }`, OpenBao 2.7's
/// declarative audit devices. Option values may be strings, numbers or booleans.
fn parse_audit(block: &Block) -> Result<coffer_core::audit::AuditDeviceConfig> {
    let (device_type, name) = match block.labels.as_slice() {
        [t, n] => (t.as_str().to_owned(), n.as_str().to_owned()),
        _ => bail!("audit block needs a type and a name, e.g. audit \"file\" \"NAME\" {{ }}"),
    };
    let mut description = String::new();
    let mut options = std::collections::BTreeMap::new();
    for structure in block.body.iter() {
        match structure {
            Structure::Attribute(a) => match a.key.as_str() {
                "description" => description = string("description", &a.expr)?,
                // Accepted as OpenBao does; devices are never replicated here.
                "local" => {
                    boolean("local", &a.expr)?;
                }
                other => bail!("unknown key {other:?} in audit {device_type:?} {name:?}"),
            },
            Structure::Block(b) if b.identifier.as_str() == "options" => {
                for (key, value) in attributes(b, "options")? {
                    let text = match &value {
                        Expression::String(s) => s.clone(),
                        Expression::Bool(b) => b.to_string(),
                        Expression::Number(n) => n.to_string(),
                        _ => bail!("audit option {key} must be a string, number or boolean"),
                    };
                    options.insert(key, text);
                }
            }
            Structure::Block(b) => bail!(
                "unexpected block {:?} in audit {device_type:?} {name:?}",
                b.identifier.as_str()
            ),
        }
    }
    let device = coffer_core::audit::AuditDeviceConfig {
        device_type,
        path: format!("{}/", name.trim_matches('/')),
        description,
        options,
    };
    coffer_core::audit::validate(&device)
        .map_err(|e| anyhow!("audit {:?} {name:?}: {e}", device.device_type))?;
    Ok(device)
}

fn single_label(block: &Block, what: &str) -> Result<String> {
    match block.labels.as_slice() {
        [label] => Ok(label.as_str().to_owned()),
        _ => bail!("{what} block needs exactly one label, e.g. {what} \"...\" {{ }}"),
    }
}

fn attributes(block: &Block, what: &str) -> Result<Vec<(String, Expression)>> {
    block
        .body
        .iter()
        .map(|s| match s {
            Structure::Attribute(a) => Ok((a.key.as_str().to_owned(), a.expr.clone())),
            Structure::Block(b) => bail!("unexpected block {:?} in {what}", b.identifier.as_str()),
        })
        .collect()
}

fn string(key: &str, value: &Expression) -> Result<String> {
    match value {
        Expression::String(s) => Ok(s.clone()),
        _ => bail!("{key} must be a string"),
    }
}

fn boolean(key: &str, value: &Expression) -> Result<bool> {
    match value {
        Expression::Bool(b) => Ok(*b),
        Expression::String(s) if matches!(s.as_str(), "true" | "1") => Ok(true),
        Expression::String(s) if matches!(s.as_str(), "false" | "0") => Ok(false),
        Expression::Number(n) if n.as_u64() == Some(1) => Ok(true),
        Expression::Number(n) if n.as_u64() == Some(0) => Ok(false),
        _ => bail!("{key} must be a boolean"),
    }
}

fn integer(key: &str, value: &Expression) -> Result<u64> {
    match value {
        Expression::Number(n) => n
            .as_u64()
            .ok_or_else(|| anyhow!("{key} must be a non-negative integer")),
        Expression::String(s) => s
            .parse()
            .map_err(|_| anyhow!("{key} must be a non-negative integer")),
        _ => bail!("{key} must be a non-negative integer"),
    }
}

fn duration(key: &str, value: &Expression) -> Result<u64> {
    match value {
        Expression::Number(n) => n
            .as_u64()
            .ok_or_else(|| anyhow!("{key} must be a duration")),
        Expression::String(s) => {
            coffer_sdk::duration::parse_str(s).map_err(|_| anyhow!("{key}: invalid duration {s:?}"))
        }
        _ => bail!("{key} must be a duration such as \"768h\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let config = Config::parse(
            r#"
            storage "sqlite" { path = "/var/lib/coffer" }
            listener "tcp" {
              address = "0.0.0.0:8200"
              tls_cert_file = "/etc/coffer/cert.pem"
              tls_key_file = "/etc/coffer/key.pem"
            }
            api_addr = "https://coffer.example:8200"
            disable_mlock = true
            default_lease_ttl = "1h"
            max_lease_ttl = "24h"
            max_request_size = 1048576
            "#,
        )
        .unwrap();
        assert_eq!(
            config.storage,
            StorageConfig::Sqlite {
                path: "/var/lib/coffer".into()
            }
        );
        assert_eq!(config.listener.address.port(), 8200);
        assert!(config.listener.tls.is_some());
        assert_eq!(
            (config.default_lease_ttl, config.max_lease_ttl),
            (3600, 86400)
        );
        assert_eq!(config.max_request_size, 1 << 20);
    }

    #[test]
    fn parses_audit_devices() {
        let config = Config::parse(
            r#"
            storage "inmem" {}
            listener "tcp" { tls_disable = true }
            unsafe_allow_api_audit_creation = true
            audit_api_directory = "/var/log/coffer"
            audit "file" "main" {
              description = "the audit log"
              options {
                file_path = "/var/log/coffer/audit.log"
                mode = "0640"
                fsync = "always"
                log_raw = false
              }
            }
            audit "socket" "siem" {
              options {
                address = "127.0.0.1:9090"
                socket_type = "udp"
              }
            }
            "#,
        )
        .unwrap();
        assert_eq!(config.audit.len(), 2);
        let main = &config.audit[0];
        assert_eq!(
            (main.device_type.as_str(), main.path.as_str()),
            ("file", "main/")
        );
        assert_eq!(main.description, "the audit log");
        assert_eq!(main.options["fsync"], "always");
        assert_eq!(main.options["log_raw"], "false");
        assert_eq!(config.audit[1].options["socket_type"], "udp");
        assert!(config.unsafe_allow_api_audit_creation);
        assert_eq!(
            config.audit_api_directory.as_deref(),
            Some(Path::new("/var/log/coffer"))
        );
    }

    #[test]
    fn rejects_bad_audit_blocks() {
        let err = |device: &str, options: &str| {
            let text = format!(
                "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  tls_disable = true\n}}\n\
                 audit {device} {{\n  options {{\n{options}\n  }}\n}}\n"
            );
            format!("{:#}", Config::parse(&text).unwrap_err())
        };
        let path = "file_path = \"/tmp/a.log\"";
        assert!(err("\"file\"", path).contains("a type and a name"));
        assert!(err("\"tape\" \"t\"", path).contains("unknown audit device type"));
        assert!(err("\"file\" \"f\"", &format!("{path}\nfsync = \"x\"")).contains("fsync"));
        assert!(err("\"file\" \"f\"", &format!("{path}\nprefix = \"p\""))
            .contains("unknown option \"prefix\""));
        let twice = format!(
            "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  tls_disable = true\n}}\n\
             audit \"file\" \"f\" {{\n  options {{\n{path}\n  }}\n}}\n\
             audit \"file\" \"f\" {{\n  options {{\n{path}\n  }}\n}}\n"
        );
        assert!(format!("{:#}", Config::parse(&twice).unwrap_err()).contains("declared twice"));
    }

    #[test]
    fn names_the_problem() {
        let err = |text: &str| format!("{:#}", Config::parse(text).unwrap_err());
        let base = "storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = true }\n";
        assert!(err(&format!("{base}bogus = 1")).contains("unknown key \"bogus\""));
        assert!(err(&format!("{base}disable_mlock = \"maybe\""))
            .contains("disable_mlock must be a boolean"));
        assert!(
            err("storage \"file\" {}\nlistener \"tcp\" { tls_disable = true }")
                .contains("unknown storage type \"file\"")
        );
        assert!(err("storage \"inmem\" {}").contains("listener block is required"));
        assert!(
            err("listener \"tcp\" { tls_disable = true }").contains("storage block is required")
        );
        assert!(err("storage \"inmem\" {}\nlistener \"tcp\" {}").contains("tls_cert_file"));
        assert!(
            err("storage \"sqlite\" { pth = \"x\" }\nlistener \"tcp\" { tls_disable = true }")
                .contains("unknown key \"pth\"")
        );
        assert!(err(&format!("{base}max_lease_ttl = \"forever\"")).contains("invalid duration"));
    }
}
