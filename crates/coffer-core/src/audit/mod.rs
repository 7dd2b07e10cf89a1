//! The audit broker: every request and response, recorded by every audit device declared in the
//! configuration before the request runs (fail closed), with secrets and tokens HMAC'd.
//!
//! - `entry.rs`: OpenBao's JSON entry format and the hashing of strings and tokens;
//! - `chain.rs`: the tamper-evident chain each device's entries carry, and its verification;
//! - `device.rs`: the file, socket and syslog targets, each behind a writer thread that writes
//!   ordered batches and acknowledges them once written;
//! - `sys.rs`: `sys/audit`, `sys/audit-hash` and `sys/audit-chain`.
//!
//! Each device has its own HMAC key, created in the barrier at its first start
//! (`core/audit/<path>hmac-key`); its chain key is derived from it. Devices come from the
//! configuration; creating them through the API is refused unless the server opted in
//! ([`AuditBroker::allow_api_creation`]), as OpenBao 2.7 refuses it.

pub mod chain;
mod device;
pub mod entry;
pub mod sys;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use coffer_sdk::{Error, Request, Response};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};

use crate::barrier::Barrier;
use crate::mount::Route;
use crate::token::LiveToken;

pub use chain::Head;
pub use device::DeviceHealth;
use device::Writer;
use entry::{FormatOptions, Hasher};

/// An `audit "TYPE" "NAME" { ... }` block of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDeviceConfig {
    /// `file`, `socket` or `syslog`.
    pub device_type: String,
    /// The device's path (its name), e.g. `file/`.
    pub path: String,
    pub description: String,
    pub options: std::collections::BTreeMap<String, String>,
}

/// What the pipeline knows of one request when it audits it.
pub struct AuditRecord<'a> {
    /// The request as the client sent it: full path, before routing.
    pub request: &'a Request,
    /// The mount it was routed to.
    pub route: &'a Route,
    /// The token the client presented (HMAC'd before it is written anywhere).
    pub client_token: Option<&'a str>,
    /// The token's entry, when the token was valid.
    pub token: Option<&'a LiveToken>,
}

/// What `sys/audit-chain/<path>` exports: the key and head to verify a device's log offline.
#[derive(Serialize, Deserialize)]
pub struct ChainExport {
    pub device: String,
    /// Hex of the chain key (derived from the device's HMAC key; it cannot test guesses
    /// against hashed values).
    pub chain_key: String,
    /// Where the chain stood when it was exported.
    pub head: Head,
}

/// What a request's two entries share, per device, kept from its request entry for its
/// response entry: the request is not cloned to be audited, and its data is hashed once.
pub struct AuditTrail {
    devices: Arc<Vec<Arc<Device>>>,
    /// `"auth":{...},"request":{...}` for each device, in order.
    contexts: Vec<Vec<u8>>,
}

/// Room for a typical context (token, accessor, policies, request without large data).
const CONTEXT_CAPACITY: usize = 1024;

/// Runs `f` on this thread's entry buffer, cleared (entries are formatted and submitted with
/// no await in between, so the buffer is never held across a suspension).
fn with_entry_buf<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    ENTRY_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        let out = f(&mut buf);
        if buf.capacity() > MAX_KEPT_BUF {
            *buf = Vec::with_capacity(INITIAL_BUF);
        }
        out
    })
}

/// Fans audit entries out to the configured devices.
pub struct AuditBroker {
    configs: Vec<AuditDeviceConfig>,
    devices: ArcSwap<Vec<Arc<Device>>>,
    api: Mutex<ApiPolicy>,
    /// Serialises start, stop and API changes of the device list.
    changes: tokio::sync::Mutex<()>,
}

/// Whether and where devices may be created through `sys/audit/<path>`.
#[derive(Debug, Clone, Default)]
struct ApiPolicy {
    allowed: bool,
    directory: Option<PathBuf>,
}

struct Device {
    config: AuditDeviceConfig,
    from_api: bool,
    hasher: Hasher,
    chain_key: SecretBox<Vec<u8>>,
    format: FormatOptions,
    timeout: Duration,
    writer: Writer,
}

thread_local! {
    /// The entry being formatted on this thread (reused: entries are formatted and sealed
    /// without an await in between).
    static ENTRY_BUF: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(Vec::with_capacity(INITIAL_BUF));
}

/// The entry buffer's starting size, and the size past which a large entry's buffer is freed.
const INITIAL_BUF: usize = 4096;
const MAX_KEPT_BUF: usize = 256 * 1024;

/// Where API-created devices are kept.
const API_TABLE_PATH: &str = "core/audit-api-devices";

impl AuditBroker {
    /// A broker for the configured devices; they open at unseal, when their keys are readable.
    pub fn new(configs: Vec<AuditDeviceConfig>) -> Self {
        let configs = configs
            .into_iter()
            .map(|mut c| {
                c.path = normalize_path(&c.path);
                c
            })
            .collect();
        AuditBroker {
            configs,
            devices: ArcSwap::from_pointee(Vec::new()),
            api: Mutex::new(ApiPolicy::default()),
            changes: tokio::sync::Mutex::new(()),
        }
    }

    /// Lets `sys/audit/<path>` create and remove devices (OpenBao's
    /// `unsafe_allow_api_audit_creation`); a `file` device's path must then lie inside
    /// `directory`, and without a directory no file device can be created through the API.
    pub fn allow_api_creation(&self, directory: Option<PathBuf>) {
        *self.api.lock().expect("audit policy lock is not poisoned") = ApiPolicy {
            allowed: true,
            directory,
        };
    }

    /// Whether any device is configured (then every request is audited, and refused if no
    /// device records it).
    pub fn enabled(&self) -> bool {
        !self.configs.is_empty() || !self.devices.load().is_empty()
    }

    /// Opens the devices after unseal: the configured ones, then those created through the API.
    pub async fn start(&self, barrier: &Barrier) -> Result<(), Error> {
        let _guard = self.changes.lock().await;
        self.stop_devices();
        let mut list = Vec::new();
        for config in &self.configs {
            list.push(Arc::new(open_device(barrier, config.clone(), false).await?));
        }
        for config in load_api_table(barrier).await? {
            if list.iter().any(|d| d.config.path == config.path) {
                continue;
            }
            list.push(Arc::new(open_device(barrier, config, true).await?));
        }
        if !list.is_empty() {
            tracing::info!(devices = list.len(), "audit devices started");
        }
        self.devices.store(Arc::new(list));
        Ok(())
    }

    /// Closes the devices at seal (each writer flushes and syncs what it holds).
    pub fn stop(&self) {
        self.stop_devices();
    }

    /// Records a request before it runs; `denied` is the authorisation error, if any. The
    /// trail it returns records the request's outcome with [`AuditBroker::log_response`].
    pub async fn log_request(
        &self,
        record: &AuditRecord<'_>,
        denied: Option<&Error>,
    ) -> Result<AuditTrail, Error> {
        let devices = self.devices.load_full();
        let started = tokio::time::Instant::now();
        let mut contexts = Vec::with_capacity(devices.len());
        let mut recorded = 0;
        for d in devices.iter() {
            let mut context = Vec::with_capacity(CONTEXT_CAPACITY);
            entry::format_context(record, &d.hasher, d.format, &mut context);
            let submitted = with_entry_buf(|buf| {
                entry::format_request(&context, denied, buf);
                d.writer.submit(buf)
            });
            if d.writer.wait(submitted, started + d.timeout).await {
                recorded += 1;
            }
            contexts.push(context);
        }
        if recorded == 0 {
            // Fail closed, as OpenBao: no device recorded it, so it does not run.
            return Err(Error::internal("no audit device could record the request"));
        }
        Ok(AuditTrail { devices, contexts })
    }

    /// Records the outcome of a request, on the devices that recorded the request.
    pub async fn log_response(
        &self,
        trail: &AuditTrail,
        route: &Route,
        outcome: Result<&Option<Response>, &Error>,
    ) -> Result<(), Error> {
        let started = tokio::time::Instant::now();
        let mut recorded = 0;
        for (d, context) in trail.devices.iter().zip(&trail.contexts) {
            let submitted = with_entry_buf(|buf| {
                entry::format_response(context, route, outcome, &d.hasher, d.format, buf);
                d.writer.submit(buf)
            });
            if d.writer.wait(submitted, started + d.timeout).await {
                recorded += 1;
            }
        }
        if recorded == 0 {
            return Err(Error::internal("no audit device could record the response"));
        }
        Ok(())
    }

    /// Reopens every device's file (and reconnects sockets): SIGHUP, after logrotate moved the
    /// file away. The chain continues in the new file. Returns each device's outcome.
    pub async fn reopen(&self) -> Vec<(String, Result<(), String>)> {
        let devices = self.devices.load_full();
        let mut out = Vec::new();
        for d in devices.iter() {
            out.push((d.config.path.clone(), d.writer.reopen(d.timeout).await));
        }
        out
    }

    /// The state of every device, for `sys/health` and metrics.
    pub fn health(&self) -> Vec<DeviceHealth> {
        self.devices
            .load()
            .iter()
            .map(|d| d.writer.state.health(&d.config.path, &d.config.device_type))
            .collect()
    }

    /// The devices as `sys/audit` lists them.
    pub fn list(&self) -> Vec<AuditDeviceConfig> {
        self.devices
            .load()
            .iter()
            .map(|d| d.config.clone())
            .collect()
    }

    /// `hmac-sha256:<hex>` of `input` under the key of the device at `path`.
    pub fn hash(&self, path: &str, input: &str) -> Result<String, Error> {
        let path = normalize_path(path);
        let devices = self.devices.load();
        let device = devices
            .iter()
            .find(|d| d.config.path == path)
            .ok_or_else(|| Error::invalid(format!("unknown audit backend {path:?}")))?;
        Ok(device.hasher.hash(input))
    }

    /// The chain key and head of the device at `path`, to verify its log.
    pub fn export_chain(&self, path: &str) -> Result<ChainExport, Error> {
        let path = normalize_path(path);
        let devices = self.devices.load();
        let device = devices
            .iter()
            .find(|d| d.config.path == path)
            .ok_or_else(|| Error::invalid(format!("unknown audit backend {path:?}")))?;
        Ok(ChainExport {
            device: path,
            chain_key: hex::encode(device.chain_key.expose_secret()),
            head: device.writer.state.head(),
        })
    }

    /// Creates a device through the API, if the server allows it.
    pub async fn enable_device(
        &self,
        barrier: &Barrier,
        mut config: AuditDeviceConfig,
    ) -> Result<(), Error> {
        let policy = self
            .api
            .lock()
            .expect("audit policy lock is not poisoned")
            .clone();
        if !policy.allowed {
            return Err(Error::invalid(
                "cannot enable audit device via API; use declarative, config-based audit device management instead",
            ));
        }
        config.path = normalize_path(&config.path);
        validate(&config).map_err(Error::InvalidRequest)?;
        confine(&config, policy.directory.as_deref())?;
        let _guard = self.changes.lock().await;
        let current = self.devices.load_full();
        if current.iter().any(|d| d.config.path == config.path) {
            return Err(Error::invalid(format!(
                "path already in use: {:?}",
                config.path
            )));
        }
        let mut table = load_api_table(barrier).await?;
        table.push(config.clone());
        let device = open_device(barrier, config.clone(), true).await?;
        save_api_table(barrier, &table).await?;
        let mut list = Vec::clone(&current);
        list.push(Arc::new(device));
        self.devices.store(Arc::new(list));
        tracing::info!(path = %config.path, device_type = %config.device_type, "audit device enabled");
        Ok(())
    }

    /// Removes a device created through the API; configured devices cannot be removed, and
    /// removing a missing one succeeds (as OpenBao).
    pub async fn disable_device(&self, barrier: &Barrier, path: &str) -> Result<(), Error> {
        let path = normalize_path(path);
        if self.configs.iter().any(|c| c.path == path) {
            return Err(Error::invalid(
                "cannot disable configuration-managed audit device",
            ));
        }
        let allowed = self
            .api
            .lock()
            .expect("audit policy lock is not poisoned")
            .allowed;
        let _guard = self.changes.lock().await;
        let current = self.devices.load_full();
        let Some(device) = current.iter().find(|d| d.config.path == path) else {
            return Ok(());
        };
        if !allowed || !device.from_api {
            return Err(Error::invalid(
                "cannot disable audit device via API; use declarative, config-based audit device management instead",
            ));
        }
        let mut table = load_api_table(barrier).await?;
        table.retain(|c| c.path != path);
        save_api_table(barrier, &table).await?;
        device.writer.stop();
        let list: Vec<_> = current
            .iter()
            .filter(|d| d.config.path != path)
            .cloned()
            .collect();
        self.devices.store(Arc::new(list));
        tracing::info!(path = %path, "audit device disabled");
        Ok(())
    }

    fn stop_devices(&self) {
        let old = self.devices.swap(Arc::new(Vec::new()));
        for d in old.iter() {
            d.writer.stop();
        }
    }
}

/// Checks a device's type and options, as the config loader and `sys/audit` must before
/// anything starts; the error names the bad option.
pub fn validate(config: &AuditDeviceConfig) -> Result<(), String> {
    let specific: &[&str] = match config.device_type.as_str() {
        "file" => &["file_path", "path", "mode", "fsync"],
        "socket" => &["address", "socket_type"],
        "syslog" => &["facility", "tag"],
        other => {
            return Err(format!(
                "unknown audit device type {other:?} (supported: file, socket, syslog)"
            ))
        }
    };
    for key in config.options.keys() {
        if !COMMON_OPTIONS.contains(&key.as_str()) && !specific.contains(&key.as_str()) {
            return Err(format!(
                "unknown option {key:?} for a {} audit device",
                config.device_type
            ));
        }
    }
    device::target(&config.device_type, &config.options)?;
    format_options(&config.options)?;
    write_timeout(&config.options)?;
    if let Some(f) = config.options.get("format") {
        if f != "json" {
            return Err(format!("format {f:?} is not supported (only json)"));
        }
    }
    if normalize_path(&config.path) == "/" {
        return Err("an audit device needs a name".into());
    }
    Ok(())
}

/// Options every device type takes.
const COMMON_OPTIONS: [&str; 4] = ["log_raw", "hmac_accessor", "format", "write_timeout"];

async fn open_device(
    barrier: &Barrier,
    config: AuditDeviceConfig,
    from_api: bool,
) -> Result<Device, Error> {
    validate(&config).map_err(|e| Error::internal(format!("audit device {}: {e}", config.path)))?;
    let target = device::target(&config.device_type, &config.options).map_err(Error::internal)?;
    let format = format_options(&config.options).map_err(Error::internal)?;
    let timeout = write_timeout(&config.options).map_err(Error::internal)?;
    let key_path = format!("core/audit/{}hmac-key", config.path);
    let key = match barrier.get(&key_path).await? {
        Some(key) => key,
        None => {
            let key: [u8; 32] = rand::random();
            barrier.put(&key_path, key.to_vec()).await?;
            key.to_vec()
        }
    };
    let hasher = Hasher::new(SecretBox::new(Box::new(key)));
    let chain_key = hasher.derive(chain::CHAIN_KEY_PURPOSE);
    let writer = Writer::spawn(&config.path, target, &chain_key);
    Ok(Device {
        config,
        from_api,
        hasher,
        chain_key,
        format,
        timeout,
        writer,
    })
}

fn format_options(options: &BTreeMap<String, String>) -> Result<FormatOptions, String> {
    Ok(FormatOptions {
        log_raw: bool_option(options, "log_raw", false)?,
        hmac_accessor: bool_option(options, "hmac_accessor", true)?,
    })
}

/// Go's `strconv.ParseBool`, as OpenBao reads these options.
fn bool_option(
    options: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, String> {
    match options.get(key).map(String::as_str) {
        None => Ok(default),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(other) => Err(format!("{key} must be a boolean, not {other:?}")),
    }
}

fn write_timeout(options: &BTreeMap<String, String>) -> Result<Duration, String> {
    let Some(text) = options.get("write_timeout") else {
        return Ok(device::DEFAULT_WRITE_TIMEOUT);
    };
    let bad = || format!("write_timeout {text:?} is not a duration such as \"2s\" or \"500ms\"");
    let timeout = match text.strip_suffix("ms") {
        Some(ms) => Duration::from_millis(ms.parse().map_err(|_| bad())?),
        None => Duration::from_secs(coffer_sdk::duration::parse_str(text).map_err(|_| bad())?),
    };
    if timeout.is_zero() {
        return Err("write_timeout must be positive".into());
    }
    Ok(timeout)
}

/// `file` is `file/`, as OpenBao names devices.
fn normalize_path(path: &str) -> String {
    format!("{}/", path.trim_matches('/'))
}

/// An API-created file device must write inside the configured directory (OpenBao 2.7's reason
/// for refusing API creation: a privileged user could otherwise write files anywhere).
fn confine(config: &AuditDeviceConfig, directory: Option<&Path>) -> Result<(), Error> {
    if config.device_type != "file" {
        return Ok(());
    }
    let path = config
        .options
        .get("file_path")
        .or_else(|| config.options.get("path"))
        .map(String::as_str)
        .unwrap_or_default();
    if path == "stdout" {
        return Ok(());
    }
    let Some(dir) = directory else {
        return Err(Error::invalid(
            "file audit devices cannot be created via API: no audit_api_directory is configured",
        ));
    };
    let candidate = Path::new(path);
    let escapes = candidate
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir));
    if escapes || !candidate.is_absolute() || !candidate.starts_with(dir) || candidate == dir {
        return Err(Error::invalid(format!(
            "file_path must be a file inside {}",
            dir.display()
        )));
    }
    // A symlink inside the directory must not lead out of it.
    if let (Ok(real_dir), Some(parent)) = (dir.canonicalize(), candidate.parent()) {
        let real_parent = parent
            .canonicalize()
            .map_err(|_| Error::invalid("file_path's directory does not exist"))?;
        if !real_parent.starts_with(&real_dir) {
            return Err(Error::invalid(format!(
                "file_path must be a file inside {}",
                dir.display()
            )));
        }
        if std::fs::symlink_metadata(candidate).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::invalid("file_path must not be a symbolic link"));
        }
    }
    Ok(())
}

async fn load_api_table(barrier: &Barrier) -> Result<Vec<AuditDeviceConfig>, Error> {
    match barrier.get(API_TABLE_PATH).await? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(Error::internal),
        None => Ok(Vec::new()),
    }
}

async fn save_api_table(barrier: &Barrier, table: &[AuditDeviceConfig]) -> Result<(), Error> {
    barrier
        .put(
            API_TABLE_PATH,
            serde_json::to_vec(table).map_err(Error::internal)?,
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use coffer_sdk::Operation;
    use serde_json::{json, Value};

    use super::*;
    use crate::{Core, CoreConfig};

    /// A marker used as the root token: it must never appear in an audit file.
    const ROOT: &str = "s.MARKERTOKEN0123456789";

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            let dir = std::env::temp_dir().join(format!("coffer-audit-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn file_device(name: &str, path: &Path) -> AuditDeviceConfig {
        AuditDeviceConfig {
            device_type: "file".into(),
            path: name.into(),
            description: String::new(),
            options: BTreeMap::from([
                ("file_path".into(), path.display().to_string()),
                ("write_timeout".into(), "500ms".into()),
            ]),
        }
    }

    async fn core_with(devices: Vec<AuditDeviceConfig>) -> Arc<Core> {
        let factories = HashMap::from([
            ("kv".to_owned(), coffer_engines::kv_factory()),
            ("cubbyhole".to_owned(), coffer_engines::cubbyhole_factory()),
        ]);
        let config = CoreConfig {
            audit: devices,
            ..CoreConfig::default()
        };
        let core = Core::new(Arc::new(coffer_storage::InMem::new()), config, factories);
        core.dev_init(Some(ROOT.into())).await.unwrap();
        core
    }

    async fn put(core: &Core, path: &str, body: Value) -> Result<Option<Response>, Error> {
        let Value::Object(map) = body else {
            panic!("body must be an object")
        };
        let mut req = Request::new(Operation::Update, path).with_data(map);
        req.id = uuid::Uuid::new_v4().to_string();
        core.handle(req, Some(ROOT)).await
    }

    fn verify_files(core: &Core, device: &str, files: &[&Path]) -> chain::Verdict {
        let export = core.audit().export_chain(device).unwrap();
        let key = SecretBox::new(Box::new(hex::decode(&export.chain_key).unwrap()));
        let texts: Vec<String> = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        let segments: Vec<chain::Segment<'_>> = texts
            .iter()
            .zip(&names)
            .map(|(text, name)| chain::Segment { name, text })
            .collect();
        chain::verify(&key, &segments, Some(&export.head))
    }

    #[tokio::test]
    async fn secrets_and_tokens_are_hashed_and_the_chain_verifies() {
        let dir = TempDir::new();
        let log = dir.0.join("audit.log");
        let core = core_with(vec![file_device("file", &log)]).await;
        put(
            &core,
            "secret/data/app",
            json!({"data": {"password": "MARKER-SECRET-1"}}),
        )
        .await
        .unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!text.contains("MARKER-SECRET-1"));
        assert!(!text.contains(ROOT), "the root token must be hashed");
        let entries: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let write = entries
            .iter()
            .find(|e| e["type"] == "request" && e["request"]["path"] == "secret/data/app")
            .expect("the write was audited");
        let hashed = core.audit().hash("file", "MARKER-SECRET-1").unwrap();
        assert_eq!(write["request"]["data"]["data"]["password"], hashed);
        assert_eq!(write["request"]["mount_type"], "kv");
        assert_eq!(write["auth"]["policies"], json!(["root"]));
        assert!(write["request"]["client_token"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:"));
        // The response entry repeats the request entry's auth and request (data included).
        let response = entries
            .iter()
            .find(|e| e["type"] == "response" && e["request"]["path"] == "secret/data/app")
            .expect("the write's outcome was audited");
        assert_eq!(response["auth"], write["auth"]);
        assert_eq!(response["request"], write["request"]);
        assert_eq!(response["response"]["mount_type"], "kv");
        assert!(matches!(
            verify_files(&core, "file", &[&log]),
            chain::Verdict::Ok { .. }
        ));
    }

    #[tokio::test]
    async fn log_raw_keeps_values_readable() {
        let dir = TempDir::new();
        let log = dir.0.join("raw.log");
        let mut device = file_device("raw", &log);
        device.options.insert("log_raw".into(), "true".into());
        let core = core_with(vec![device]).await;
        put(
            &core,
            "secret/data/app",
            json!({"data": {"k": "PLAIN-VALUE"}}),
        )
        .await
        .unwrap();
        assert!(std::fs::read_to_string(&log)
            .unwrap()
            .contains("PLAIN-VALUE"));
    }

    #[tokio::test]
    async fn an_unwritable_only_device_refuses_requests_and_a_second_keeps_them_flowing() {
        let dir = TempDir::new();
        let broken_dir = dir.0.join("gone");
        std::fs::create_dir_all(&broken_dir).unwrap();
        let core = core_with(vec![file_device("one", &broken_dir.join("a.log"))]).await;
        std::fs::remove_dir_all(&broken_dir).unwrap();
        // Devices look at their file a few times a second, not on every write.
        tokio::time::sleep(device::FILE_CHECK_INTERVAL).await;
        let refused = put(&core, "secret/data/x", json!({"data": {"k": "v"}})).await;
        assert!(matches!(refused, Err(Error::Internal(_))));
        let health = core.audit().health();
        assert_eq!(health[0].status, "failing");
        assert!(health[0].failing_since.is_some());
        assert!(health[0].dropped >= 1);

        // The refused write did not run.
        std::fs::create_dir_all(&broken_dir).unwrap();
        let mut read = Request::new(Operation::Read, "secret/data/x");
        read.id = "r".into();
        assert!(core.handle(read, Some(ROOT)).await.unwrap().is_none());
        assert_eq!(core.audit().health()[0].status, "healthy");

        let two = TempDir::new();
        let bad = two.0.join("bad");
        std::fs::create_dir_all(&bad).unwrap();
        let core = core_with(vec![
            file_device("bad", &bad.join("a.log")),
            file_device("good", &two.0.join("good.log")),
        ])
        .await;
        std::fs::remove_dir_all(&bad).unwrap();
        tokio::time::sleep(device::FILE_CHECK_INTERVAL).await;
        put(&core, "secret/data/x", json!({"data": {"k": "v"}}))
            .await
            .expect("a healthy second device records the request");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_read_only_file_fails_the_device() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new();
        let log = dir.0.join("audit.log");
        let core = core_with(vec![file_device("file", &log)]).await;
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o400)).unwrap();
        tokio::time::sleep(device::FILE_CHECK_INTERVAL).await;
        assert!(put(&core, "secret/data/x", json!({"data": {"k": "v"}}))
            .await
            .is_err());
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
        put(&core, "secret/data/x", json!({"data": {"k": "v"}}))
            .await
            .unwrap();
        // The refused entries were not written, so the chain has no gap.
        assert!(matches!(
            verify_files(&core, "file", &[&log]),
            chain::Verdict::Ok { .. }
        ));
    }

    #[tokio::test]
    async fn rotation_and_restart_continue_the_chain() {
        let dir = TempDir::new();
        let log = dir.0.join("audit.log");
        let rotated = dir.0.join("audit.log.1");
        let core = core_with(vec![file_device("file", &log)]).await;
        put(&core, "secret/data/a", json!({"data": {"k": "1"}}))
            .await
            .unwrap();
        std::fs::rename(&log, &rotated).unwrap();
        let reopened = core.audit().reopen().await;
        assert!(reopened.iter().all(|(_, r)| r.is_ok()));
        put(&core, "secret/data/b", json!({"data": {"k": "2"}}))
            .await
            .unwrap();
        assert!(matches!(
            verify_files(&core, "file", &[&rotated, &log]),
            chain::Verdict::Ok { first_seq: 1, .. }
        ));

        // A seal and unseal restarts the device: it resumes from the file's last entry.
        let key = core.audit().export_chain("file").unwrap().chain_key;
        core.audit().stop();
        core.audit().start(core.barrier()).await.unwrap();
        assert_eq!(core.audit().export_chain("file").unwrap().chain_key, key);
        put(&core, "secret/data/c", json!({"data": {"k": "3"}}))
            .await
            .unwrap();
        match verify_files(&core, "file", &[&rotated, &log]) {
            chain::Verdict::Ok { entries, .. } => assert!(entries >= 6),
            broken => panic!("{broken}"),
        }
        // Without the first file the chain is still whole from where the second begins.
        assert!(matches!(
            verify_files(&core, "file", &[&log]),
            chain::Verdict::Ok { first_seq, .. } if first_seq > 1
        ));
    }

    #[tokio::test]
    async fn api_creation_is_refused_unless_allowed_and_confined() {
        let dir = TempDir::new();
        let core = core_with(vec![file_device("file", &dir.0.join("a.log"))]).await;
        let body = |path: &Path| json!({"type": "file", "options": {"file_path": path.display().to_string()}});
        let refused = put(&core, "sys/audit/api", body(&dir.0.join("b.log"))).await;
        assert!(
            matches!(refused, Err(Error::InvalidRequest(m)) if m.starts_with("cannot enable audit device via API"))
        );
        let refused = core.audit().disable_device(core.barrier(), "file").await;
        assert!(
            matches!(refused, Err(Error::InvalidRequest(m)) if m == "cannot disable configuration-managed audit device")
        );

        let allowed = dir.0.join("api");
        std::fs::create_dir_all(&allowed).unwrap();
        core.audit().allow_api_creation(Some(allowed.clone()));
        let outside = put(&core, "sys/audit/api", body(&dir.0.join("b.log"))).await;
        assert!(matches!(outside, Err(Error::InvalidRequest(m)) if m.contains("inside")));
        let sneaky = put(&core, "sys/audit/api", body(&allowed.join("../b.log"))).await;
        assert!(sneaky.is_err());
        put(&core, "sys/audit/api", body(&allowed.join("b.log")))
            .await
            .unwrap();
        let mut list = Request::new(Operation::Read, "sys/audit");
        list.id = "l".into();
        let listed = core.handle(list, Some(ROOT)).await.unwrap().unwrap();
        let data = listed.data.unwrap();
        assert!(data.contains_key("api/") && data.contains_key("file/"));
        assert!(allowed.join("b.log").exists());
        let mut delete = Request::new(Operation::Delete, "sys/audit/api");
        delete.id = "d".into();
        core.handle(delete, Some(ROOT)).await.unwrap();
        assert_eq!(core.audit().list().len(), 1);
    }

    #[test]
    fn options_are_checked() {
        let mut c = file_device("f", Path::new("/tmp/x.log"));
        assert!(validate(&c).is_ok());
        c.options.insert("fsync".into(), "sometimes".into());
        assert!(validate(&c).unwrap_err().contains("fsync"));
        c.options.remove("fsync");
        c.options.insert("prefix".into(), "x".into());
        assert!(validate(&c)
            .unwrap_err()
            .contains("unknown option \"prefix\""));
        let socket = AuditDeviceConfig {
            device_type: "socket".into(),
            path: "s".into(),
            description: String::new(),
            options: BTreeMap::from([
                ("socket_type".into(), "sctp".into()),
                ("address".into(), "x:1".into()),
            ]),
        };
        assert!(validate(&socket).unwrap_err().contains("socket_type"));
        let syslog = AuditDeviceConfig {
            device_type: "syslog".into(),
            path: "l".into(),
            description: String::new(),
            options: BTreeMap::from([("facility".into(), "local0".into())]),
        };
        assert!(validate(&syslog).is_ok());
    }
}
