//! The TOTP secrets engine, after openbao `builtin/logical/totp`: named keys that coffer
//! generates (answering the `otpauth://` URL and a PNG QR code once) or imports from a URL or a
//! base32 secret; `code/<name>` reads the current code or validates one, with the key's skew.
//! A code validates once only: every code submitted for a key is remembered, valid or not,
//! for `(2 + skew) × period` and refused again in that time, as OpenBao's used-code cache does.
//!
//! Storage, relative to the mount: `key/<name>`, one JSON entry per key in OpenBao's layout.
//! The used-code memory is this mount's, in memory, as OpenBao's (a restart forgets it).
//! Paths, fields, answers and error texts are OpenBao 2.7.2's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use coffer_sdk::framework::{Fields, Path, Paths};
use coffer_sdk::{
    Backend, BackendConfig, BackendKind, Error, Factory, Operation, Request, Response, Storage,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use zeroize::{Zeroize, Zeroizing};

mod otp;

use otp::Algorithm;

/// Builds TOTP mounts; each mount remembers its own used codes.
pub fn totp_factory() -> Factory {
    Arc::new(|_config: &BackendConfig| {
        let backend: Arc<dyn Backend> = Arc::new(Totp::new());
        Ok(backend)
    })
}

/// The TOTP engine of one mount.
pub struct Totp {
    paths: Paths<Handler>,
    /// `<name>_<code>` → when it may be submitted again.
    used_codes: Mutex<HashMap<String, Instant>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    List,
    Key,
    Code,
}

impl Totp {
    /// A TOTP backend that has seen no codes yet.
    pub fn new() -> Self {
        let paths = Paths::new()
            .path(Path::new("keys").list(Handler::List))
            .path(Path::new("keys/").list(Handler::List))
            .path(Path::new("keys/{name}").all(Handler::Key))
            .path(Path::new("code/{name}").all(Handler::Code));
        Totp {
            paths,
            used_codes: Mutex::new(HashMap::new()),
        }
    }

    /// Records `used` until `ttl` from now; false if it is already recorded and not expired.
    fn mark_used(&self, used: String, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut codes = self.used_codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|_, until| *until > now);
        if codes.contains_key(&used) {
            return false;
        }
        codes.insert(used, now + ttl);
        true
    }

    fn is_used(&self, used: &str) -> bool {
        let now = Instant::now();
        let codes = self.used_codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.get(used).is_some_and(|until| *until > now)
    }
}

impl Default for Totp {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Backend for Totp {
    fn kind(&self) -> BackendKind {
        BackendKind::Secrets
    }

    async fn handle(&self, req: Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
        let op = req.operation;
        let route = self.paths.route(&req.path, op)?;
        let name = route.captures.get("name").unwrap_or_default();
        if route.handler != Handler::List && !valid_name(name) {
            return Err(Error::UnsupportedPath(req.path.clone()));
        }
        match (route.handler, op) {
            (Handler::List, _) => list_keys(&req, storage).await,
            (Handler::Key, Operation::Read) => read_key(name, storage).await,
            (Handler::Key, Operation::Create | Operation::Update) => {
                create_key(&req, name, storage).await
            }
            (Handler::Key, Operation::Delete) => {
                storage.delete(&storage_key(name)).await?;
                Ok(None)
            }
            // OpenBao's `keys/<name>` has no LIST: the framework answers "unsupported path".
            (Handler::Key, Operation::List) => Err(Error::UnsupportedPath(req.path.clone())),
            (Handler::Code, Operation::Read) => read_code(name, storage).await,
            (Handler::Code, Operation::Create | Operation::Update) => {
                self.validate_code(&req, name, storage).await
            }
            (Handler::Code, Operation::List) => Err(Error::UnsupportedPath(req.path.clone())),
            _ => Err(Error::UnsupportedOperation),
        }
    }
}

/// One key as stored (OpenBao's `keyEntry`). The secret is base32 text, wiped on drop.
#[derive(Serialize, Deserialize)]
struct KeyEntry {
    key: String,
    issuer: String,
    account_name: String,
    period: u64,
    algorithm: Algorithm,
    digits: u32,
    skew: u64,
}

impl Drop for KeyEntry {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

async fn list_keys(req: &Request, storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data).upfront(true);
    let after = fields.string("after")?.unwrap_or_default();
    let limit = fields.int("limit")?.unwrap_or(0);
    let mut keys: Vec<String> = storage
        .list(KEY_PREFIX)
        .await?
        .into_iter()
        .filter(|k| after.is_empty() || k.as_str() > after.as_str())
        .collect();
    if limit > 0 {
        keys.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    if keys.is_empty() {
        return Ok(None);
    }
    let mut data = Map::new();
    data.insert("keys".into(), json!(keys));
    Ok(Some(Response::with_data(data)))
}

async fn read_key(name: &str, storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let Some(key) = load(storage, name).await? else {
        return Ok(None);
    };
    // The secret is never returned, as OpenBao's read.
    let mut data = Map::new();
    data.insert("issuer".into(), json!(key.issuer));
    data.insert("account_name".into(), json!(key.account_name));
    data.insert("period".into(), json!(key.period));
    data.insert("algorithm".into(), json!(key.algorithm.as_str()));
    data.insert("digits".into(), json!(key.digits));
    Ok(Some(Response::with_data(data)))
}

async fn create_key(
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    // OpenBao's framework converts every field before the handler runs.
    let fields = Fields::new(&req.data).upfront(true);
    let generate = fields.bool("generate")?.unwrap_or(false);
    let exported = fields.bool("exported")?.unwrap_or(true);
    let mut key_string = Zeroizing::new(fields.string("key")?.unwrap_or_default());
    let mut issuer = fields.string("issuer")?.unwrap_or_default();
    let mut account_name = fields.string("account_name")?.unwrap_or_default();
    let mut period = fields.duration_secs("period", false)?.unwrap_or(30);
    let mut algorithm = fields.string("algorithm")?.unwrap_or_else(|| "SHA1".into());
    let mut digits = fields.int("digits")?.unwrap_or(6);
    let skew = fields.int("skew")?.unwrap_or(1);
    let qr_size = fields.int("qr_size")?.unwrap_or(200);
    let key_size = fields.int("key_size")?.unwrap_or(20);
    let input_url = Zeroizing::new(fields.string("url")?.unwrap_or_default());

    if generate {
        if !key_string.is_empty() {
            return Err(Error::invalid(
                "a key should not be passed if generate is true",
            ));
        }
        if !input_url.is_empty() {
            return Err(Error::invalid(
                "a url should not be passed if generate is true",
            ));
        }
    }

    if !input_url.is_empty() {
        let parsed = otp::parse_url(&input_url)
            .ok_or_else(|| Error::invalid("an error occurred while parsing url string"))?;
        if let Some(url_issuer) = parsed.issuer {
            issuer = url_issuer;
        }
        account_name = parsed.account;
        key_string = parsed.secret;
        if let Some(p) = parsed.period {
            period = go_atoi(&p).ok_or_else(|| {
                Error::invalid("an error occurred while parsing period value in url")
            })?;
        }
        if let Some(d) = parsed.digits {
            digits = go_atoi(&d).ok_or_else(|| {
                Error::invalid("an error occurred while parsing digits value in url")
            })?;
        }
        if let Some(a) = parsed.algorithm {
            algorithm = a;
        }
    }

    let digits: u32 = match digits {
        6 => 6,
        8 => 8,
        _ => return Err(Error::invalid("the digits value can only be 6 or 8")),
    };
    let algorithm = Algorithm::parse(&algorithm)
        .ok_or_else(|| Error::invalid("the algorithm value is not valid"))?;
    if period <= 0 {
        return Err(Error::invalid("the period value must be greater than zero"));
    }
    if skew != 0 && skew != 1 {
        return Err(Error::invalid("the skew value must be 0 or 1"));
    }
    if qr_size < 0 {
        return Err(Error::invalid(
            "the qr_size value must be greater than or equal to zero",
        ));
    }
    if key_size <= 0 {
        return Err(Error::invalid(
            "the key_size value must be greater than zero",
        ));
    }
    let period = period as u64;

    let mut response = None;
    if generate {
        if account_name.is_empty() {
            return Err(Error::invalid(
                "the account_name value is required for generated keys",
            ));
        }
        if issuer.is_empty() {
            return Err(Error::invalid(
                "the issuer value is required for generated keys",
            ));
        }
        let size = usize::try_from(key_size).unwrap_or(usize::MAX);
        if size > MAX_KEY_SIZE {
            return Err(Error::invalid(format!(
                "the key_size value must be at most {MAX_KEY_SIZE}"
            )));
        }
        let mut secret = Zeroizing::new(vec![0u8; size]);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        key_string = otp::encode_secret(&secret);
        if exported {
            let url = otp::otpauth_url(
                &issuer,
                &account_name,
                &key_string,
                period,
                digits,
                algorithm,
            );
            let mut data = Map::new();
            if qr_size != 0 {
                let size = u32::try_from(qr_size).unwrap_or(u32::MAX);
                if size > MAX_QR_SIZE {
                    return Err(Error::invalid(format!(
                        "the qr_size value must be at most {MAX_QR_SIZE}"
                    )));
                }
                // Rendering is CPU work: keep it off the async workers.
                let text = url.clone();
                let png = tokio::task::spawn_blocking(move || otp::qr_png(&text, size))
                    .await
                    .map_err(Error::internal)?
                    .map_err(Error::invalid)?;
                let barcode = base64::engine::general_purpose::STANDARD.encode(png);
                data.insert("barcode".into(), json!(barcode));
            }
            data.insert("url".into(), Value::String(url.to_string()));
            response = Some(Response::with_data(data));
        }
    } else {
        if key_string.is_empty() {
            return Err(Error::invalid("the key value is required"));
        }
        let rem = key_string.len() % 8;
        if rem != 0 {
            key_string.push_str(&"=".repeat(8 - rem));
        }
        otp::decode_secret(&key_string)
            .map_err(|e| Error::invalid(format!("invalid key value: {e}")))?;
    }

    let entry = KeyEntry {
        key: key_string.to_string(),
        issuer,
        account_name,
        period,
        algorithm,
        digits,
        skew: skew as u64,
    };
    let bytes = Zeroizing::new(serde_json::to_vec(&entry).map_err(Error::internal)?);
    storage.put(&storage_key(name), bytes.to_vec()).await?;
    Ok(response)
}

async fn read_code(name: &str, storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let key = load(storage, name)
        .await?
        .ok_or_else(|| Error::invalid(format!("unknown key: {name}")))?;
    let secret = otp::decode_secret(&key.key).map_err(Error::internal)?;
    let now = unix_now();
    let code = otp::code_at(&secret, now, key.period, key.digits, key.algorithm);
    let step_start = now / key.period * key.period;
    let mut data = Map::new();
    data.insert("code".into(), json!(code));
    data.insert("generated".into(), json!(now));
    data.insert("expire_time".into(), json!(step_start + key.period));
    data.insert(
        "period".into(),
        json!(crate::time::go_duration(
            i64::try_from(key.period).unwrap_or(i64::MAX)
        )),
    );
    Ok(Some(Response::with_data(data)))
}

impl Totp {
    async fn validate_code(
        &self,
        req: &Request,
        name: &str,
        storage: &dyn Storage,
    ) -> Result<Option<Response>, Error> {
        let fields = Fields::new(&req.data).upfront(true);
        let code = fields.string("code")?.unwrap_or_default();
        let key = load(storage, name)
            .await?
            .ok_or_else(|| Error::invalid(format!("unknown key: {name}")))?;
        if code.is_empty() {
            return Err(Error::invalid("the code value is required"));
        }
        if code.trim() != code || code.len() != key.digits as usize {
            return Err(Error::invalid("invalid number of digits for the code"));
        }
        let used = format!("{name}_{code}");
        if self.is_used(&used) {
            return Err(Error::invalid(ALREADY_USED));
        }
        let secret = otp::decode_secret(&key.key).map_err(Error::internal)?;
        let valid = otp::validate(
            &code,
            &secret,
            unix_now(),
            key.period,
            key.skew,
            key.digits,
            key.algorithm,
        );
        // As OpenBao: the code is remembered whether it was valid or not, for the whole window
        // in which it could be valid (skew periods either side plus the current one).
        let ttl = Duration::from_secs(key.period.saturating_mul(2 + key.skew));
        if !self.mark_used(used, ttl) {
            // Another request submitted the same code between the check and now.
            return Err(Error::invalid(ALREADY_USED));
        }
        let mut data = Map::new();
        data.insert("valid".into(), json!(valid));
        Ok(Some(Response::with_data(data)))
    }
}

async fn load(storage: &dyn Storage, name: &str) -> Result<Option<KeyEntry>, Error> {
    let Some(bytes) = storage.get(&storage_key(name)).await? else {
        return Ok(None);
    };
    let bytes = Zeroizing::new(bytes);
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::internal(format!("decoding TOTP key entry: {}", e.classify() as u8)))
}

fn storage_key(name: &str) -> String {
    format!("{KEY_PREFIX}{name}")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Go's `strconv.Atoi`: an optional sign and decimal digits, nothing else.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// OpenBao's `GenericNameWithAtRegex`: `\w(([\w-.@]+)?\w)?`.
fn valid_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = name.chars();
    match (chars.next(), name.chars().last()) {
        (Some(first), Some(last)) if word(first) && word(last) => name
            .chars()
            .all(|c| word(c) || c == '-' || c == '.' || c == '@'),
        _ => false,
    }
}

const KEY_PREFIX: &str = "key/";
const ALREADY_USED: &str = "code already used; wait until the next time period";
/// Bounds OpenBao lacks, so one request cannot make the server allocate without limit.
const MAX_KEY_SIZE: usize = 4096;
const MAX_QR_SIZE: u32 = 4096;

#[cfg(test)]
mod tests;
