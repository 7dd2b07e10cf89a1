//! Revocation and the certificate store: `revoke`, the complete and delta CRLs of every issuer,
//! their fetch paths in DER and PEM, `crl/rotate` and `crl/rotate-delta`, the scheduled
//! rebuilds (`auto_rebuild`, `delta_rebuild_interval`), the `cert/<serial>` and `certs` reads,
//! the CA fetch paths, and `tidy`, after OpenBao's `crl_util.go`.
//!
//! Without `auto_rebuild` every revocation re-signs the complete CRL (and an empty delta CRL on
//! top of it). With `auto_rebuild` and `enable_delta`, a revocation only adds a delta WAL entry
//! (`delta-wal/<serial>`); the delta CRL, which lists exactly those certificates, is re-signed
//! by `crl/rotate-delta` or every `delta_rebuild_interval` when the WAL changed, and a new
//! complete CRL (signed when the last one nears its nextUpdate, or on `crl/rotate`) clears it.
//! Complete and delta CRLs share one CRL Number sequence per issuer (RFC 5280 5.2.4); a delta
//! carries the critical Delta CRL Indicator naming the complete CRL it extends.
//!
//! rcgen cannot write that extension, so CRLs are assembled from x509-cert's DER types and the
//! TBSCertList is signed with the issuer's loaded key.

use std::time::{Duration, Instant};

use base64::Engine as _;
use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage};
use rcgen::SigningKey as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::der::asn1::{BitString, GeneralizedTime, OctetString, Uint, UtcTime};
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::ext::pkix::crl::{BaseCrlNumber, CrlNumber};
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::store::{
    self, get_json, issuers_config, list_issuers, put_json, resolve_issuer, CrlEntry, IssuerEntry,
    RevokedEntry, Signer, CERT_PREFIX, CRL_PREFIX, REVOKED_PREFIX,
};
use super::{colon_hex, normalize_serial, serial_storage_key, Pki};

/// OpenBao's `config/crl` entry.
const CONFIG_CRL: &str = "config/crl";
/// One entry per certificate revoked since the last complete CRL, while delta CRLs are on.
const DELTA_WAL_PREFIX: &str = "delta-wal/";
/// tidy's default `safety_buffer`: 72h.
const DEFAULT_SAFETY_BUFFER: i64 = 72 * 3600;

/// `config/crl`, as OpenBao stores and answers it: durations stay the strings written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct CrlConfig {
    pub(crate) expiry: String,
    pub(crate) disable: bool,
    pub(crate) ocsp_disable: bool,
    pub(crate) ocsp_expiry: String,
    pub(crate) auto_rebuild: bool,
    pub(crate) auto_rebuild_grace_period: String,
    pub(crate) enable_delta: bool,
    pub(crate) delta_rebuild_interval: String,
    pub(crate) allow_expired_cert_revocation: bool,
}

impl Default for CrlConfig {
    /// OpenBao's `defaultCrlConfig`.
    fn default() -> Self {
        CrlConfig {
            expiry: "72h".to_owned(),
            disable: false,
            ocsp_disable: false,
            ocsp_expiry: "12h".to_owned(),
            auto_rebuild: false,
            auto_rebuild_grace_period: "12h".to_owned(),
            enable_delta: false,
            delta_rebuild_interval: "15m".to_owned(),
            allow_expired_cert_revocation: false,
        }
    }
}

impl CrlConfig {
    /// A stored duration in seconds; one that no longer parses counts as `default`, as
    /// OpenBao falls back to its default grace period.
    fn secs(value: &str, default: i64) -> i64 {
        parse_duration(value).unwrap_or(default)
    }

    fn expiry_secs(&self) -> i64 {
        Self::secs(&self.expiry, 72 * 3600)
    }
}

/// What CRL building keeps in memory: one builder at a time, so that a revocation racing a
/// rebuild neither reuses a CRL number nor escapes both CRLs, and when the scheduled check last
/// looked for new delta WAL entries (OpenBao's `lastDeltaRebuildCheck`).
#[derive(Default)]
pub(crate) struct CrlBuilder {
    lock: tokio::sync::Mutex<()>,
    last_delta_check: std::sync::Mutex<Option<Instant>>,
}

/// `config/crl` read.
pub(crate) async fn read_config(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    Response::from_serialize(&crl_config(storage).await?).map(Some)
}

/// `config/crl` write: only the fields present change; the combination is checked as OpenBao
/// checks it, and a change of `disable`, `enable_delta` or turning `auto_rebuild` off signs
/// fresh CRLs at once.
pub(crate) async fn write_config(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let old = crl_config(storage).await?;
    let mut config = old.clone();
    let duration = |name: &str| -> Result<Option<(String, i64)>, Error> {
        let Some(value) = fields.raw(name) else {
            return Ok(None);
        };
        let text = coffer_sdk::framework::weak_string(value).map_err(Error::invalid)?;
        let secs = parse_duration(&text).ok_or_else(|| {
            Error::invalid(format!(
                "given {name} could not be decoded: time: invalid duration {text:?}"
            ))
        })?;
        Ok(Some((text, secs)))
    };
    if let Some((text, _)) = duration("expiry")? {
        config.expiry = text;
    }
    if let Some(b) = fields.bool("disable")? {
        config.disable = b;
    }
    if let Some(b) = fields.bool("ocsp_disable")? {
        config.ocsp_disable = b;
    }
    if let Some((text, secs)) = duration("ocsp_expiry")? {
        if secs < 0 {
            return Err(Error::invalid(format!(
                "ocsp_expiry must be greater than or equal to 0 got: {}",
                super::go_duration(secs)
            )));
        }
        config.ocsp_expiry = text;
    }
    if let Some(b) = fields.bool("auto_rebuild")? {
        config.auto_rebuild = b;
    }
    if let Some((text, _)) = duration("auto_rebuild_grace_period")? {
        config.auto_rebuild_grace_period = text;
    }
    if let Some(b) = fields.bool("enable_delta")? {
        config.enable_delta = b;
    }
    if let Some((text, _)) = duration("delta_rebuild_interval")? {
        config.delta_rebuild_interval = text;
    }
    if let Some(b) = fields.bool("allow_expired_cert_revocation")? {
        config.allow_expired_cert_revocation = b;
    }
    let expiry = config.expiry_secs();
    if config.auto_rebuild
        && CrlConfig::secs(&config.auto_rebuild_grace_period, 12 * 3600) >= expiry
    {
        return Err(Error::invalid(format!(
            "CRL auto-rebuilding grace period ({}) must be strictly shorter than CRL expiry ({}) \
             value when auto-rebuilding of CRLs is enabled",
            config.auto_rebuild_grace_period, config.expiry
        )));
    }
    if config.enable_delta && CrlConfig::secs(&config.delta_rebuild_interval, 15 * 60) >= expiry {
        return Err(Error::invalid(format!(
            "CRL delta rebuild window ({}) must be strictly shorter than CRL expiry ({}) value \
             when delta CRLs are enabled",
            config.delta_rebuild_interval, config.expiry
        )));
    }
    if !config.auto_rebuild && config.enable_delta {
        return Err(Error::invalid(
            "Delta CRLs cannot be enabled when auto rebuilding is disabled as the complete CRL \
             is always regenerated!",
        ));
    }
    put_json(storage, CONFIG_CRL, &config).await?;
    let mut resp = Response::from_serialize(&config)?;
    if old.disable != config.disable
        || (old.auto_rebuild && !config.auto_rebuild)
        || old.enable_delta != config.enable_delta
    {
        let warnings = build_complete(pki, storage, &config, true).await?;
        resp.warnings.extend(numbered(warnings, "CRL rebuild"));
    }
    Ok(Some(resp))
}

/// `revoke`: by `serial_number` (or `certificate`).
pub(crate) async fn revoke(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let serial = match fields.string("serial_number")?.filter(|s| !s.is_empty()) {
        Some(serial) => normalize_serial(&serial),
        None => match fields.string("certificate")?.filter(|s| !s.is_empty()) {
            Some(pem) => {
                let der = store::cert_der(&pem)
                    .map_err(|_| Error::invalid("certificate could not be parsed"))?;
                let (_, cert) = X509Certificate::from_der(&der)
                    .map_err(|_| Error::invalid("certificate could not be parsed"))?;
                colon_hex(cert.raw_serial())
            }
            None => {
                return Err(Error::invalid(
                    "The serial number or certificate to revoke must be provided.",
                ))
            }
        },
    };
    let key = serial_storage_key(&serial);
    if let Some(existing) =
        get_json::<RevokedEntry>(storage, &format!("{REVOKED_PREFIX}{key}")).await?
    {
        return Ok(Some(revocation_response(&existing)));
    }
    let Some(der) = storage.get(&format!("{CERT_PREFIX}{key}")).await? else {
        return Err(Error::invalid(format!(
            "certificate with serial {serial} not found."
        )));
    };
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|_| Error::internal("stored certificate does not parse"))?;
    let issuers = list_issuers(storage).await?;
    if let Some(own) = issuers
        .iter()
        .find(|i| store::cert_der(&i.certificate).ok().as_deref() == Some(der.as_slice()))
    {
        return Err(Error::invalid(format!(
            "adding issuer (id: {}) to its own CRL is not allowed",
            own.id
        )));
    }
    let config = crl_config(storage).await?;
    let now = OffsetDateTime::now_utc();
    // OpenBao's two seconds of wiggle room, as leases have a one-second granularity.
    if cert.validity().not_after.timestamp() < now.unix_timestamp() + 2
        && !config.allow_expired_cert_revocation
    {
        return Ok(Some(Response::default().warn(format!(
            "certificate with serial {serial} already expired; refusing to add to CRL. Enable \
             'AllowExpiredCertRevocation' to allow revoking expired certificates."
        ))));
    }
    let issuer_id = issuer_of(&cert, &issuers).unwrap_or_default();
    let nanos = i64::try_from(now.unix_timestamp_nanos()).unwrap_or(i64::MAX);
    let entry = RevokedEntry {
        serial_number: serial.clone(),
        revocation_time: now.unix_timestamp(),
        revocation_time_rfc3339: crate::time::rfc3339_nanos(nanos),
        issuer_id,
        not_after: cert.validity().not_after.timestamp(),
    };
    let mut resp = revocation_response(&entry);
    if !config.auto_rebuild {
        put_json(storage, &format!("{REVOKED_PREFIX}{key}"), &entry).await?;
        let warnings = build_complete(pki, storage, &config, false).await?;
        resp.warnings.extend(numbered(warnings, "CRL rebuild"));
    } else {
        // Under the builder lock, so that a complete CRL being signed either lists this
        // certificate or leaves its WAL entry for the next delta CRL.
        let _building = pki.crl.lock.lock().await;
        let path = format!("{REVOKED_PREFIX}{key}");
        if config.enable_delta {
            storage
                .apply(vec![
                    coffer_sdk::StorageOp::Put(
                        path,
                        serde_json::to_vec(&entry).map_err(Error::internal)?,
                    ),
                    coffer_sdk::StorageOp::Put(format!("{DELTA_WAL_PREFIX}{key}"), b"{}".to_vec()),
                ])
                .await?;
        } else {
            put_json(storage, &path, &entry).await?;
        }
    }
    Ok(Some(resp))
}

/// Signs fresh complete CRLs (each with an empty delta CRL on top) for every issuer that holds
/// a key, after issuers change or tidy drops revocations; nothing while CRLs are disabled.
/// Returns warnings.
pub(crate) async fn rebuild(pki: &Pki, storage: &dyn Storage) -> Result<Vec<String>, Error> {
    let config = crl_config(storage).await?;
    build_complete(pki, storage, &config, false).await
}

/// `crl/rotate` and `crl/rotate-delta`.
pub(crate) async fn rotate(
    pki: &Pki,
    storage: &dyn Storage,
    delta: bool,
) -> Result<Option<Response>, Error> {
    let config = crl_config(storage).await?;
    let mut data = Map::new();
    data.insert("success".to_owned(), Value::Bool(true));
    let mut resp = Response::with_data(data);
    if delta {
        if config.enable_delta {
            build_delta(pki, storage, &config, true).await?;
        } else {
            resp = resp.warn(
                "requested rebuild of delta CRL when delta CRL is not enabled; this is a no-op",
            );
        }
    } else {
        let warnings = build_complete(pki, storage, &config, false).await?;
        resp.warnings.extend(numbered(warnings, "CRL rebuild"));
    }
    Ok(Some(resp))
}

/// The scheduled CRL work (OpenBao's periodic `checkForAutoRebuild` and
/// `rebuildDeltaCRLsIfForced`): with `auto_rebuild`, a complete CRL within
/// `auto_rebuild_grace_period` of its nextUpdate gets every CRL re-signed; with
/// `enable_delta`, once per `delta_rebuild_interval` the delta CRLs are re-signed if
/// revocations arrived since they were.
pub(crate) async fn periodic(pki: &Pki, storage: &dyn Storage) -> Result<(), Error> {
    let config = crl_config(storage).await?;
    if config.disable {
        return Ok(());
    }
    if config.auto_rebuild {
        let grace = CrlConfig::secs(&config.auto_rebuild_grace_period, 12 * 3600);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut due = false;
        for id in storage.list(CRL_PREFIX).await? {
            if let Some(entry) = get_json::<CrlEntry>(storage, &format!("{CRL_PREFIX}{id}")).await?
            {
                due |= needs_rebuild(&entry, grace, now);
            }
        }
        if due {
            build_complete(pki, storage, &config, false).await?;
            return Ok(());
        }
    }
    if config.enable_delta {
        let interval = CrlConfig::secs(&config.delta_rebuild_interval, 15 * 60);
        let interval = Duration::from_secs(u64::try_from(interval).unwrap_or(0));
        let now = Instant::now();
        {
            let mut last = pki
                .crl
                .last_delta_check
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|last| now.duration_since(last) < interval) {
                return Ok(());
            }
            *last = Some(now);
        }
        build_delta(pki, storage, &config, false).await?;
    }
    Ok(())
}

/// Whether a complete CRL is due for re-signing: within `grace` seconds of its nextUpdate, or
/// of unknown age (signed before coffer recorded it).
fn needs_rebuild(entry: &CrlEntry, grace: i64, now: i64) -> bool {
    entry.next_update == 0 || now >= entry.next_update - grace
}

async fn crl_config(storage: &dyn Storage) -> Result<CrlConfig, Error> {
    Ok(get_json(storage, CONFIG_CRL).await?.unwrap_or_default())
}

/// Signs a complete CRL and an empty delta CRL on top of it for every issuer that can sign
/// CRLs, then drops the delta WAL entries the complete CRLs now list (OpenBao's `buildCRLs`).
/// With `disable`, nothing is signed unless `force_new`, and then the CRLs are empty.
async fn build_complete(
    pki: &Pki,
    storage: &dyn Storage,
    config: &CrlConfig,
    force_new: bool,
) -> Result<Vec<String>, Error> {
    let _building = pki.crl.lock.lock().await;
    if config.disable && !force_new {
        // As OpenBao: the CRL signed when building was disabled stays as it is.
        return Ok(Vec::new());
    }
    let wal = storage.list(DELTA_WAL_PREFIX).await?;
    let revoked = if config.disable {
        Vec::new()
    } else {
        let keys = storage.list(REVOKED_PREFIX).await?;
        load_revoked(storage, &keys).await?
    };
    let issuers = list_issuers(storage).await?;
    let default = issuers_config(storage).await?.default;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let next_update = now + config.expiry_secs().max(0);
    let mut warnings = Vec::new();
    for issuer in issuers.iter().filter(|i| !i.key_id.is_empty()) {
        if !issuer.usage.split(',').any(|u| u == "crl-signing") {
            warnings.push(format!(
                "warning from local CRL rebuild: Issuer equivalency set with associated keys \
                 lacked an issuer with CRL Signing KeyUsage; refusing to rebuild CRL for this \
                 group of issuers: {}",
                issuer.id
            ));
            continue;
        }
        let signer = pki.signers.get(storage, &issuer.id).await?;
        let listed = on_crl_of(issuer, &issuers, &default, &revoked);
        let path = format!("{CRL_PREFIX}{}", issuer.id);
        let previous: CrlEntry = get_json(storage, &path).await?.unwrap_or_default();
        let number = previous.number.max(1);
        let complete = sign_crl(&signer, number, None, &listed, now, next_update)?;
        let delta = sign_crl(&signer, number + 1, Some(number), &[], now, next_update)?;
        let entry = CrlEntry {
            number: number + 2,
            last_complete: number,
            der: base64::engine::general_purpose::STANDARD.encode(complete),
            delta_der: base64::engine::general_purpose::STANDARD.encode(delta),
            next_update,
            delta_serials: Vec::new(),
        };
        put_json(storage, &path, &entry).await?;
    }
    if !wal.is_empty() {
        let ops = wal
            .into_iter()
            .map(|key| coffer_sdk::StorageOp::Delete(format!("{DELTA_WAL_PREFIX}{key}")))
            .collect();
        storage.apply(ops).await?;
    }
    Ok(warnings)
}

/// Signs a delta CRL listing the delta WAL's certificates for every issuer with a complete
/// CRL; unless `force`, only for issuers whose part of the WAL changed since their last delta.
async fn build_delta(
    pki: &Pki,
    storage: &dyn Storage,
    config: &CrlConfig,
    force: bool,
) -> Result<(), Error> {
    let _building = pki.crl.lock.lock().await;
    if config.disable {
        return Ok(());
    }
    let wal = storage.list(DELTA_WAL_PREFIX).await?;
    let revoked = load_revoked(storage, &wal).await?;
    let issuers = list_issuers(storage).await?;
    let default = issuers_config(storage).await?.default;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let next_update = now + config.expiry_secs().max(0);
    for issuer in issuers.iter().filter(|i| !i.key_id.is_empty()) {
        let path = format!("{CRL_PREFIX}{}", issuer.id);
        // An issuer without a complete CRL gets one (and its delta) from the next full build.
        let Some(mut entry) = get_json::<CrlEntry>(storage, &path).await? else {
            continue;
        };
        let listed = on_crl_of(issuer, &issuers, &default, &revoked);
        let mut serials: Vec<String> = listed.iter().map(|r| r.serial_number.clone()).collect();
        serials.sort();
        if !force && serials == entry.delta_serials {
            continue;
        }
        let signer = pki.signers.get(storage, &issuer.id).await?;
        let delta = sign_crl(
            &signer,
            entry.number,
            Some(entry.last_complete),
            &listed,
            now,
            next_update,
        )?;
        entry.number += 1;
        entry.delta_der = base64::engine::general_purpose::STANDARD.encode(delta);
        entry.delta_serials = serials;
        put_json(storage, &path, &entry).await?;
    }
    Ok(())
}

/// The revocation records under `keys` (storage keys of serials).
async fn load_revoked(storage: &dyn Storage, keys: &[String]) -> Result<Vec<RevokedEntry>, Error> {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(entry) =
            get_json::<RevokedEntry>(storage, &format!("{REVOKED_PREFIX}{key}")).await?
        {
            out.push(entry);
        }
    }
    Ok(out)
}

/// The revocations `issuer`'s CRL lists: its own, and, on the default issuer's, those no
/// issuer of the mount claims (OpenBao's unassigned certificates).
fn on_crl_of<'a>(
    issuer: &IssuerEntry,
    issuers: &[IssuerEntry],
    default: &str,
    revoked: &'a [RevokedEntry],
) -> Vec<&'a RevokedEntry> {
    let claimed = |id: &str| issuers.iter().any(|i| i.id == id && !i.key_id.is_empty());
    revoked
        .iter()
        .filter(|r| r.issuer_id == issuer.id || (issuer.id == default && !claimed(&r.issuer_id)))
        .collect()
}

/// A CRL signed by `signer`: number `number`, a delta CRL of complete CRL `base` when given,
/// listing `revoked`, with the issuer's key identifier as OpenBao's (Go's) CRLs carry it.
fn sign_crl(
    signer: &Signer,
    number: u64,
    base: Option<u64>,
    revoked: &[&RevokedEntry],
    this_update: i64,
    next_update: i64,
) -> Result<Vec<u8>, Error> {
    let der_error = |e: x509_cert::der::Error| Error::internal(format!("CRL encoding: {e}"));
    let algorithm = signer.issuer.key().signature_algorithm()?;
    let issuer = Name::from_der(&signer.subject_der).map_err(der_error)?;
    let mut entries = Vec::with_capacity(revoked.len());
    for r in revoked {
        entries.push(RevokedCert {
            serial_number: SerialNumber::new(&serial_bytes(&r.serial_number)?)
                .map_err(der_error)?,
            revocation_date: crl_time(r.revocation_time)?,
            crl_entry_extensions: None,
        });
    }
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(signer.key_id.clone()).map_err(der_error)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let mut extensions: Vec<Extension> = vec![
        aki.to_extension(&issuer, &[]).map_err(der_error)?,
        CrlNumber(Uint::new(&number.to_be_bytes()).map_err(der_error)?)
            .to_extension(&issuer, &[])
            .map_err(der_error)?,
    ];
    if let Some(base) = base {
        extensions.push(
            BaseCrlNumber(Uint::new(&base.to_be_bytes()).map_err(der_error)?)
                .to_extension(&issuer, &[])
                .map_err(der_error)?,
        );
    }
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: algorithm.clone(),
        issuer,
        this_update: crl_time(this_update)?,
        next_update: Some(crl_time(next_update)?),
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der().map_err(der_error)?;
    let signature = signer
        .issuer
        .key()
        .sign(&tbs_der)
        .map_err(Error::internal)?;
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature).map_err(der_error)?,
    };
    crl.to_der().map_err(der_error)
}

/// A CRL time as RFC 5280 5.1.2.4 wants it: UTCTime through 2049, GeneralizedTime after.
fn crl_time(unix: i64) -> Result<Time, Error> {
    let since_epoch = Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    let time = match UtcTime::from_unix_duration(since_epoch) {
        Ok(utc) => Time::UtcTime(utc),
        Err(_) => Time::GeneralTime(
            GeneralizedTime::from_unix_duration(since_epoch)
                .map_err(|_| Error::internal("CRL time out of range"))?,
        ),
    };
    Ok(time)
}

/// Warnings of a rebuild as OpenBao numbers them in a response.
fn numbered(warnings: Vec<String>, what: &str) -> impl Iterator<Item = String> + '_ {
    warnings
        .into_iter()
        .enumerate()
        .map(move |(i, w)| format!("Warning {} during {what}: {w}", i + 1))
}

/// A duration as OpenBao's `parseutil.ParseDurationSecond` reads a config string: seconds, or
/// Go's duration syntax, possibly negative.
fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, body) = match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let secs = i64::try_from(coffer_sdk::duration::parse_str(body).ok()?).ok()?;
    Some(if negative { -secs } else { secs })
}

/// `crl`, `crl/pem`, `crl/delta`, `crl/delta/pem` (raw bodies) and `cert/crl` (JSON).
pub(crate) async fn fetch_crl(
    storage: &dyn Storage,
    issuer_ref: &str,
    delta: bool,
    form: Form,
) -> Result<Option<Response>, Error> {
    let issuer = resolve_issuer(storage, issuer_ref).await?;
    let Some(entry) = get_json::<CrlEntry>(storage, &format!("{CRL_PREFIX}{}", issuer.id)).await?
    else {
        return Ok(None);
    };
    let der = base64::engine::general_purpose::STANDARD
        .decode(if delta { &entry.delta_der } else { &entry.der })
        .map_err(Error::internal)?;
    let pem = super::pem::encode("X509 CRL", &der).to_string();
    Ok(Some(match form {
        Form::Der => raw("application/pkix-crl", der),
        Form::Pem => raw("application/x-pem-file", format!("{pem}\n").into_bytes()),
        Form::Json => json_cert(pem, None),
    }))
}

/// How a fetch path answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Der,
    Pem,
    Json,
}

/// `ca`, `ca/pem` (raw) and `cert/ca` (JSON): the default issuer's certificate.
pub(crate) async fn fetch_ca(storage: &dyn Storage, form: Form) -> Result<Option<Response>, Error> {
    let issuer = match resolve_issuer(storage, "default").await {
        Ok(issuer) => issuer,
        Err(Error::InvalidRequest(_)) if form != Form::Json => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(match form {
        Form::Der => raw(
            "application/pkix-cert",
            store::cert_der(&issuer.certificate)?,
        ),
        Form::Pem => raw(
            "application/pem-certificate-chain",
            format!("{}\n", issuer.certificate).into_bytes(),
        ),
        Form::Json => json_cert(issuer.certificate.clone(), None),
    }))
}

/// `ca_chain` (raw) and `cert/ca_chain` (JSON): the default issuer's chain.
pub(crate) async fn fetch_chain(
    storage: &dyn Storage,
    json: bool,
) -> Result<Option<Response>, Error> {
    let issuer = match resolve_issuer(storage, "default").await {
        Ok(issuer) => issuer,
        Err(Error::InvalidRequest(_)) if !json => return Ok(None),
        Err(e) => return Err(e),
    };
    let chain = store::chain_of(&issuer, &list_issuers(storage).await?)?;
    let joined = format!("{}\n", chain.join("\n"));
    Ok(Some(if json {
        let mut resp = json_cert(issuer.certificate.clone(), None);
        if let Some(data) = resp.data.as_mut() {
            data.insert("ca_chain".to_owned(), joined.into());
        }
        resp
    } else {
        raw("application/pkix-cert", joined.into_bytes())
    }))
}

/// `cert/<serial>`: a stored certificate and its revocation state.
pub(crate) async fn read_cert(
    storage: &dyn Storage,
    serial: &str,
) -> Result<Option<Response>, Error> {
    match serial {
        "ca" => return fetch_ca(storage, Form::Json).await,
        "ca_chain" => return fetch_chain(storage, true).await,
        "crl" => return fetch_crl(storage, "default", false, Form::Json).await,
        "delta-crl" => return fetch_crl(storage, "default", true, Form::Json).await,
        _ => {}
    }
    let serial = normalize_serial(serial);
    let key = serial_storage_key(&serial);
    let Some(der) = storage.get(&format!("{CERT_PREFIX}{key}")).await? else {
        return Ok(None);
    };
    let revoked = get_json::<RevokedEntry>(storage, &format!("{REVOKED_PREFIX}{key}")).await?;
    Ok(Some(json_cert(super::pem::cert(&der), revoked.as_ref())))
}

/// `certs` LIST: serials with colons, as OpenBao lists them.
pub(crate) async fn list_certs(
    storage: &dyn Storage,
    prefix: &str,
) -> Result<Option<Response>, Error> {
    let keys: Vec<Value> = storage
        .list(prefix)
        .await?
        .into_iter()
        .filter(|k| !k.ends_with('/'))
        .map(|k| Value::from(k.replace('-', ":")))
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let mut data = Map::new();
    data.insert("keys".to_owned(), Value::Array(keys));
    Ok(Some(Response::with_data(data)))
}

/// `tidy`: drops stored and revoked certificates expired for longer than `safety_buffer`,
/// then re-signs the CRLs. Runs to completion before answering 202, as a tidy of a store
/// this size takes milliseconds.
pub(crate) async fn tidy(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let tidy_cert_store = fields.bool("tidy_cert_store")?.unwrap_or(false);
    let tidy_revoked = fields.bool("tidy_revoked_certs")?.unwrap_or(false);
    let safety_buffer = fields
        .duration_secs("safety_buffer", false)?
        .unwrap_or(DEFAULT_SAFETY_BUFFER);
    if safety_buffer < 1 {
        return Err(Error::invalid("safety_buffer must be greater than zero"));
    }
    let mut resp = Response {
        http_status: Some(202),
        ..Response::default()
    };
    if !tidy_cert_store && !tidy_revoked {
        return Ok(Some(resp.warn(
            "Manual tidy requested but no tidy operations were set. Enable at least one tidy \
             operation to be run (tidy_cert_store / tidy_revoked_certs / tidy_invalid_certs / \
             tidy_revoked_cert_issuer_associations / tidy_expired_issuers / \
             tidy_move_legacy_ca_bundle / tidy_acme).",
        )));
    }
    let started = crate::time::now_nanos();
    let cutoff = OffsetDateTime::now_utc().unix_timestamp() - safety_buffer;
    let (mut certs_deleted, mut revoked_deleted) = (0u64, 0u64);
    if tidy_cert_store {
        for key in storage.list(CERT_PREFIX).await? {
            let path = format!("{CERT_PREFIX}{key}");
            let Some(der) = storage.get(&path).await? else {
                continue;
            };
            let expired = X509Certificate::from_der(&der)
                .map(|(_, c)| c.validity().not_after.timestamp() < cutoff)
                .unwrap_or(true);
            if expired {
                storage.delete(&path).await?;
                certs_deleted += 1;
            }
        }
    }
    if tidy_revoked {
        for key in storage.list(REVOKED_PREFIX).await? {
            let path = format!("{REVOKED_PREFIX}{key}");
            let Some(entry) = get_json::<RevokedEntry>(storage, &path).await? else {
                continue;
            };
            if entry.not_after < cutoff {
                storage.delete(&path).await?;
                storage.delete(&format!("{CERT_PREFIX}{key}")).await?;
                revoked_deleted += 1;
            }
        }
    }
    rebuild(pki, storage).await?;
    let finished = crate::time::now_nanos();
    let status = json!({
        "safety_buffer": safety_buffer,
        "tidy_cert_store": tidy_cert_store,
        "tidy_revoked_certs": tidy_revoked,
        "state": "Finished",
        "error": null,
        "message": null,
        "time_started": crate::time::rfc3339_nanos(started),
        "time_finished": crate::time::rfc3339_nanos(finished),
        "cert_store_deleted_count": certs_deleted,
        "revoked_cert_deleted_count": revoked_deleted,
        "current_cert_store_count": storage.list(CERT_PREFIX).await?.len(),
        "current_revoked_cert_count": storage.list(REVOKED_PREFIX).await?.len(),
    });
    if let Value::Object(map) = status {
        *pki.tidy_status.lock().unwrap_or_else(|e| e.into_inner()) = Some(map);
    }
    resp = resp.warn(
        "Tidy operation successfully started. Any information from the operation will be \
         printed to OpenBao's server logs.",
    );
    Ok(Some(resp))
}

/// `tidy-status`.
pub(crate) fn tidy_status(pki: &Pki) -> Option<Response> {
    let status = pki
        .tidy_status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let data = status.unwrap_or_else(|| {
        let mut idle = Map::new();
        idle.insert("state".to_owned(), "Inactive".into());
        idle
    });
    Some(Response::with_data(data))
}

/// A bare-body response (OpenBao's `logical.HTTPRawBody`).
fn raw(content_type: &str, body: Vec<u8>) -> Response {
    Response::raw(content_type, &body)
}

fn json_cert(certificate: String, revoked: Option<&RevokedEntry>) -> Response {
    let mut data = Map::new();
    data.insert("certificate".to_owned(), certificate.into());
    match revoked {
        Some(r) => {
            data.insert("revocation_time".to_owned(), r.revocation_time.into());
            data.insert(
                "revocation_time_rfc3339".to_owned(),
                r.revocation_time_rfc3339.clone().into(),
            );
            data.insert("issuer_id".to_owned(), r.issuer_id.clone().into());
        }
        None => {
            data.insert("revocation_time".to_owned(), 0.into());
            data.insert("revocation_time_rfc3339".to_owned(), "".into());
        }
    }
    Response::with_data(data)
}

fn revocation_response(entry: &RevokedEntry) -> Response {
    let mut data = Map::new();
    data.insert("revocation_time".to_owned(), entry.revocation_time.into());
    data.insert(
        "revocation_time_rfc3339".to_owned(),
        entry.revocation_time_rfc3339.clone().into(),
    );
    data.insert("state".to_owned(), "revoked".into());
    Response::with_data(data)
}

/// The issuer (among the mount's) whose subject and key id match `cert`'s issuer.
fn issuer_of(cert: &X509Certificate<'_>, issuers: &[store::IssuerEntry]) -> Option<String> {
    issuers
        .iter()
        .find(|issuer| {
            let Ok(der) = store::cert_der(&issuer.certificate) else {
                return false;
            };
            let Ok((_, ca)) = X509Certificate::from_der(&der) else {
                return false;
            };
            ca.subject().as_raw() == cert.issuer().as_raw()
                && super::keys::signature_verifies(
                    ca.public_key(),
                    &cert.signature_algorithm,
                    &cert.signature_value,
                    cert.tbs_certificate.as_ref(),
                )
        })
        .map(|issuer| issuer.id.clone())
}

fn serial_bytes(serial: &str) -> Result<Vec<u8>, Error> {
    serial
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).map_err(|_| Error::internal("bad stored serial")))
        .collect()
}
