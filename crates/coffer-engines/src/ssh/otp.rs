//! OTP mode, after openbao `path_creds_create.go`, `path_verify.go`, `path_lookup.go` and
//! `secret_otp.go`: `creds/<role>` hands out a one-time password for a user on a host whose IP
//! the role's CIDR lists allow; `verify` (no token needed: the SSH helper on the host calls
//! it) spends it once and names the user, IP and role; `lookup` lists the roles that cover an IP.
//!
//! An OTP is never stored. Its HMAC-SHA256 under a random per-mount key (`salt`) is split: the
//! first half names the storage entry (`otp/<hex>`, and storage paths are not encrypted), the
//! whole tag sits inside the encrypted entry and is compared in constant time. OpenBao keeps
//! `SHA-256(salt || otp)` under its own per-mount salt; a keyed MAC is the sounder form.
//!
//! An OTP comes with a lease for the mount's default lease TTL, not renewable, as OpenBao's
//! `secret_otp_type`; revoking the lease (on request, or by the expiration manager when it
//! runs out) deletes the OTP. The lease's internal data holds only the entry's selector:
//! OpenBao keeps the OTP itself there, a usable credential in the lease store. Each entry
//! also carries its own expiry, so an OTP dies on time even if its lease's revocation fails:
//! `verify` refuses (and deletes) an expired one, and `periodic` deletes the expired ones,
//! found through an index by hour of expiry (`otp-expiry/<hour>/<selector>`) so a tidy never
//! reads entries that are still live.

use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Lease, Request, Response, Storage, StorageOp};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use super::roles::{self, Role, ROLE_PREFIX};
use super::{cidr, mount_ttls, zeroaddress};

/// `POST creds/<role>`: an OTP for `username` (default: the role's `default_user`) at `ip`,
/// checked as OpenBao's `pathCredsCreateWrite`, in its order and words.
pub(crate) async fn creds(
    req: &Request,
    role_name: &str,
    storage: &dyn Storage,
    lock: &Mutex<()>,
    now: i64,
) -> Result<Option<Response>, Error> {
    let f = Fields::new(&req.data).upfront(true);
    let username = f.string("username")?.unwrap_or_default();
    let ip_raw = f.string("ip")?.unwrap_or_default();
    if ip_raw.is_empty() {
        return Err(Error::invalid("Missing ip"));
    }
    let role = roles::load(storage, role_name)
        .await?
        .ok_or_else(|| Error::invalid(format!("Role {role_name:?} not found")))?;

    let username = if username.is_empty() {
        if role.default_user.is_empty() {
            return Err(Error::invalid(
                "No default username registered. Use 'username' option",
            ));
        }
        role.default_user.clone()
    } else {
        username
    };
    if !role.allowed_users.is_empty() {
        if !user_allowed(&username, &role.allowed_users) && username != role.default_user {
            return Err(Error::invalid(
                "Username is not present is allowed users list",
            ));
        }
    } else if username != role.default_user {
        return Err(Error::invalid(
            "Username has to be either in allowed users list or has to be a default username",
        ));
    }

    let ip =
        cidr::parse_ip(&ip_raw).ok_or_else(|| Error::invalid(format!("Invalid IP {ip_raw:?}")))?;
    let zero_address = zeroaddress::roles(storage).await?;
    ip_allowed(ip, role_name, &role, &zero_address)
        .map_err(|e| Error::invalid(format!("Error validating IP: {e}")))?;
    // A CA role reaches this point only through config/zeroaddress; OpenBao answers it with a
    // 500 of these words, though the mistake is the caller's.
    if !role.is_otp() {
        return Err(Error::invalid("key type unknown"));
    }

    let (default_ttl, max_ttl) = mount_ttls(req);
    let ttl = default_ttl.min(max_ttl);
    let key = OtpKey::load_or_create(storage, lock).await?;
    let otp = new_otp();
    let tag = key.tag(&otp);
    let selector = selector(&tag);
    let entry = OtpEntry {
        username: username.clone(),
        ip: ip.to_string(),
        role_name: role_name.to_owned(),
        expires_at: now.saturating_add(ttl),
        hmac: hex(&tag),
    };
    let bytes = serde_json::to_vec(&entry).map_err(Error::internal)?;
    storage
        .apply(vec![
            StorageOp::Put(entry_path(&selector), bytes),
            StorageOp::Put(expiry_path(entry.expires_at, &selector), Vec::new()),
        ])
        .await?;

    let mut data = Map::new();
    data.insert("ip".into(), json!(entry.ip));
    data.insert("key".into(), Value::String(otp.to_string()));
    data.insert("key_type".into(), json!(role.key_type));
    data.insert("port".into(), json!(role.port));
    data.insert("username".into(), json!(username));
    let mut resp = Response::with_data(data);
    let mut internal_data = Map::new();
    internal_data.insert(SELECTOR_FIELD.into(), Value::String(selector));
    resp.lease = Some(Lease {
        lease_id: String::new(),
        ttl: u64::try_from(ttl).unwrap_or(0),
        renewable: false,
        internal_data,
        ..Lease::default()
    });
    Ok(Some(resp))
}

/// `POST verify` (unauthenticated): spends an OTP. Unknown, spent and expired OTPs all get
/// OpenBao's `OTP not found`. `verify-echo-request` answers `verify-echo-response`, the
/// connectivity check of OpenBao's SSH helper.
pub(crate) async fn verify(
    req: &Request,
    storage: &dyn Storage,
    lock: &Mutex<()>,
    now: i64,
) -> Result<Option<Response>, Error> {
    let f = Fields::new(&req.data).upfront(true);
    let otp = Zeroizing::new(f.string("otp")?.unwrap_or_default());
    if otp.as_str() == VERIFY_ECHO_REQUEST {
        let mut data = Map::new();
        data.insert("message".into(), json!(VERIFY_ECHO_RESPONSE));
        return Ok(Some(Response::with_data(data)));
    }
    let not_found = || Error::invalid("OTP not found");
    // No key yet means no OTP was ever issued on this mount.
    let Some(key) = OtpKey::load(storage).await? else {
        return Err(not_found());
    };
    let tag = key.tag(&otp);
    let selector = selector(&tag);

    // The storage has no compare-and-delete: reading the entry and deleting it must be one
    // step, or two concurrent verifies of one OTP would both succeed. A tokio mutex, since
    // the step awaits storage; only the active node serves writes, so one process suffices.
    let entry = {
        let _spend = lock.lock().await;
        let Some(bytes) = storage.get(&entry_path(&selector)).await? else {
            return Err(not_found());
        };
        let entry: OtpEntry = serde_json::from_slice(&bytes).map_err(Error::internal)?;
        if !bool::from(entry.hmac.as_bytes().ct_eq(hex(&tag).as_bytes())) {
            return Err(not_found());
        }
        storage
            .apply(vec![
                StorageOp::Delete(entry_path(&selector)),
                StorageOp::Delete(expiry_path(entry.expires_at, &selector)),
            ])
            .await?;
        entry
    };
    if entry.expires_at <= now {
        return Err(not_found());
    }
    let mut data = Map::new();
    data.insert("ip".into(), json!(entry.ip));
    data.insert("role_name".into(), json!(entry.role_name));
    data.insert("username".into(), json!(entry.username));
    Ok(Some(Response::with_data(data)))
}

/// Revokes an OTP's lease: deletes the OTP its internal data names, and its expiry index
/// entry, so a later `verify` finds nothing. An OTP already spent, expired or tidied away
/// needs nothing. A lease without a selector is refused in OpenBao's words for one without
/// its OTP.
pub(crate) async fn revoke(
    lease: &Lease,
    storage: &dyn Storage,
    lock: &Mutex<()>,
) -> Result<(), Error> {
    let selector = lease
        .internal_data
        .get(SELECTOR_FIELD)
        .and_then(Value::as_str)
        // It becomes part of a storage path: only a selector as `creds` writes one.
        .filter(|s| is_selector(s))
        .ok_or_else(|| Error::invalid("secret is missing internal data"))?;
    // Under the spend lock, so a verify running now either spent the OTP first or finds it
    // gone.
    let _spend = lock.lock().await;
    let Some(bytes) = storage.get(&entry_path(selector)).await? else {
        return Ok(());
    };
    let entry: OtpEntry = serde_json::from_slice(&bytes).map_err(Error::internal)?;
    storage
        .apply(vec![
            StorageOp::Delete(entry_path(selector)),
            StorageOp::Delete(expiry_path(entry.expires_at, selector)),
        ])
        .await
}

/// `POST lookup`: the roles whose `cidr_list` holds `ip` (OpenBao ignores `exclude_cidr_list`
/// here), in name order, then every zero-address role; `null` when none.
pub(crate) async fn lookup(
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let f = Fields::new(&req.data).upfront(true);
    let ip_raw = f.string("ip")?.unwrap_or_default();
    if ip_raw.is_empty() {
        return Err(Error::invalid("Missing ip"));
    }
    // OpenBao prints the failed parse here, always `Invalid IP "<nil>"`; coffer names the input.
    let ip =
        cidr::parse_ip(&ip_raw).ok_or_else(|| Error::invalid(format!("Invalid IP {ip_raw:?}")))?;
    let mut matching = Vec::new();
    for name in storage.list(ROLE_PREFIX).await? {
        if name.ends_with('/') {
            continue;
        }
        if let Some(role) = roles::load(storage, &name).await? {
            if cidr::list_contains(&role.cidr_list, ip) == Ok(true) {
                matching.push(name);
            }
        }
    }
    matching.extend(zeroaddress::roles(storage).await?);
    let mut data = Map::new();
    let roles = if matching.is_empty() {
        Value::Null
    } else {
        json!(matching)
    };
    data.insert("roles".into(), roles);
    Ok(Some(Response::with_data(data)))
}

/// Deletes the OTPs that expired in an hour that is over by `now`: the expiry index names
/// them, so live entries are never read.
pub(crate) async fn tidy(storage: &dyn Storage, now: i64) -> Result<(), Error> {
    for bucket in storage.list(EXPIRY_PREFIX).await? {
        let Some(hour) = bucket.strip_suffix('/').and_then(|h| h.parse::<i64>().ok()) else {
            continue;
        };
        if (hour + 1).saturating_mul(3600) > now {
            continue;
        }
        let selectors = storage.list(&format!("{EXPIRY_PREFIX}{bucket}")).await?;
        for chunk in selectors.chunks(TIDY_BATCH) {
            let ops = chunk
                .iter()
                .flat_map(|sel| {
                    [
                        StorageOp::Delete(format!("{OTP_PREFIX}{sel}")),
                        StorageOp::Delete(format!("{EXPIRY_PREFIX}{bucket}{sel}")),
                    ]
                })
                .collect();
            storage.apply(ops).await?;
        }
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An issued OTP as stored under `otp/<selector>`; it holds no secret (the HMAC is of a
/// random value), so nothing here needs wiping.
#[derive(Serialize, Deserialize)]
struct OtpEntry {
    username: String,
    ip: String,
    role_name: String,
    /// Unix seconds.
    expires_at: i64,
    /// Hex of the OTP's full HMAC-SHA256 tag.
    hmac: String,
}

/// The mount's OTP MAC key, wiped on drop.
struct OtpKey(Zeroizing<Vec<u8>>);

impl OtpKey {
    async fn load(storage: &dyn Storage) -> Result<Option<OtpKey>, Error> {
        let Some(bytes) = storage.get(SALT).await? else {
            return Ok(None);
        };
        let bytes = Zeroizing::new(bytes);
        if bytes.len() != KEY_LEN {
            return Err(Error::internal("the SSH OTP key has the wrong length"));
        }
        Ok(Some(OtpKey(bytes)))
    }

    /// The key, made on first use; under `lock`, so two first requests cannot each make one
    /// and leave OTPs keyed with the loser's.
    async fn load_or_create(storage: &dyn Storage, lock: &Mutex<()>) -> Result<OtpKey, Error> {
        if let Some(key) = Self::load(storage).await? {
            return Ok(key);
        }
        let _create = lock.lock().await;
        if let Some(key) = Self::load(storage).await? {
            return Ok(key);
        }
        let mut bytes = Zeroizing::new(vec![0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        storage.put(SALT, bytes.to_vec()).await?;
        Ok(OtpKey(bytes))
    }

    fn tag(&self, otp: &str) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC-SHA256 takes a key of any length");
        mac.update(otp.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// OpenBao's OTP: 16 random bytes in UUID form (go-uuid's `GenerateUUID`), here as a v4
/// UUID (122 random bits) from the OS generator.
fn new_otp() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 16]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    Zeroizing::new(
        uuid::Builder::from_random_bytes(*bytes)
            .into_uuid()
            .to_string(),
    )
}

/// OpenBao's `validateIP`: a zero-address role takes any IP; otherwise the IP must be in
/// `cidr_list` and not in `exclude_cidr_list`.
fn ip_allowed(
    ip: std::net::IpAddr,
    role_name: &str,
    role: &Role,
    zero_address: &[String],
) -> Result<(), String> {
    if zero_address.iter().any(|r| r == role_name) {
        return Ok(());
    }
    if !cidr::list_contains(&role.cidr_list, ip)? {
        return Err("IP does not belong to role".to_owned());
    }
    if !role.exclude_cidr_list.is_empty() && cidr::list_contains(&role.exclude_cidr_list, ip)? {
        return Err("IP does not belong to role".to_owned());
    }
    Ok(())
}

/// OpenBao's `validateUsername`: `*` allows anyone, else the trimmed comma-separated names.
fn user_allowed(username: &str, allowed_users: &str) -> bool {
    allowed_users == "*" || allowed_users.split(',').any(|u| u.trim() == username)
}

/// The part of an OTP's tag that names its entry, in hex.
fn selector(tag: &[u8; 32]) -> String {
    hex(&tag[..SELECTOR_LEN])
}

fn is_selector(s: &str) -> bool {
    s.len() == 2 * SELECTOR_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn entry_path(selector: &str) -> String {
    format!("{OTP_PREFIX}{selector}")
}

fn expiry_path(expires_at: i64, selector: &str) -> String {
    format!(
        "{EXPIRY_PREFIX}{:012}/{selector}",
        expires_at.div_euclid(3600).max(0)
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// api.VerifyEchoRequest / api.VerifyEchoResponse of OpenBao's Go client.
const VERIFY_ECHO_REQUEST: &str = "verify-echo-request";
const VERIFY_ECHO_RESPONSE: &str = "verify-echo-response";
const SALT: &str = "salt";
const OTP_PREFIX: &str = "otp/";
const EXPIRY_PREFIX: &str = "otp-expiry/";
const KEY_LEN: usize = 32;
/// Bytes of the tag that name the storage entry: 128 bits, so two live OTPs never share one.
const SELECTOR_LEN: usize = 16;
const TIDY_BATCH: usize = 128;
/// The lease's internal data field that holds the OTP entry's selector.
const SELECTOR_FIELD: &str = "otp_selector";
