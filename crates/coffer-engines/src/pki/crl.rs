//! Revocation and the certificate store: `revoke`, the CRLs of every issuer (rebuilt on each
//! revocation, as OpenBao does without `auto_rebuild`), their fetch paths in DER and PEM, the
//! `cert/<serial>` and `certs` reads, the CA fetch paths, and `tidy`.

use base64::Engine as _;
use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage};
use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::store::{
    self, get_json, list_issuers, put_json, resolve_issuer, CrlEntry, RevokedEntry, CERT_PREFIX,
    CRL_PREFIX, REVOKED_PREFIX,
};
use super::{colon_hex, normalize_serial, serial_storage_key, Pki};

/// How long a CRL is valid: OpenBao's default `expiry` of 72h.
const CRL_LIFETIME: i64 = 72 * 3600;
/// tidy's default `safety_buffer`: 72h.
const DEFAULT_SAFETY_BUFFER: i64 = 72 * 3600;

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
    let issuer_id = issuer_of(&cert, &issuers).unwrap_or_default();
    let now = OffsetDateTime::now_utc();
    let nanos = i64::try_from(now.unix_timestamp_nanos()).unwrap_or(i64::MAX);
    let entry = RevokedEntry {
        serial_number: serial.clone(),
        revocation_time: now.unix_timestamp(),
        revocation_time_rfc3339: crate::time::rfc3339_nanos(nanos),
        issuer_id,
        not_after: cert.validity().not_after.timestamp(),
    };
    put_json(storage, &format!("{REVOKED_PREFIX}{key}"), &entry).await?;
    rebuild(pki, storage).await?;
    Ok(Some(revocation_response(&entry)))
}

/// Signs fresh CRLs (full and delta) for every issuer that holds a key.
pub(crate) async fn rebuild(pki: &Pki, storage: &dyn Storage) -> Result<(), Error> {
    let mut revoked = Vec::new();
    for key in storage.list(REVOKED_PREFIX).await? {
        if let Some(entry) =
            get_json::<RevokedEntry>(storage, &format!("{REVOKED_PREFIX}{key}")).await?
        {
            revoked.push(entry);
        }
    }
    for issuer in list_issuers(storage).await? {
        if issuer.key_id.is_empty() {
            continue;
        }
        let signer = pki.signers.get(storage, &issuer.id).await?;
        let der = store::cert_der(&issuer.certificate)?;
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|_| Error::internal("stored issuer certificate does not parse"))?;
        let key_id = store::subject_key_id(&cert).unwrap_or_else(|| {
            super::keys::key_identifier(&cert.public_key().subject_public_key.data)
        });
        let previous: CrlEntry = get_json(storage, &format!("{CRL_PREFIX}{}", issuer.id))
            .await?
            .unwrap_or_default();
        let number = previous.number + 1;
        let now = OffsetDateTime::now_utc();
        let mut entries = Vec::new();
        for r in revoked.iter().filter(|r| r.issuer_id == issuer.id) {
            let bytes = serial_bytes(&r.serial_number)?;
            entries.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&bytes),
                revocation_time: OffsetDateTime::from_unix_timestamp(r.revocation_time)
                    .map_err(Error::internal)?,
                reason_code: None,
                invalidity_date: None,
            });
        }
        let sign = |crl_number: u64| -> Result<String, Error> {
            let params = CertificateRevocationListParams {
                this_update: now,
                next_update: now + time::Duration::seconds(CRL_LIFETIME),
                crl_number: SerialNumber::from(crl_number),
                issuing_distribution_point: None,
                revoked_certs: entries.clone(),
                key_identifier_method: KeyIdMethod::PreSpecified(key_id.clone()),
            };
            let crl = params.signed_by(&signer.issuer).map_err(Error::internal)?;
            Ok(base64::engine::general_purpose::STANDARD.encode(crl.der()))
        };
        // rcgen cannot write the delta CRL indicator; the "delta" CRL therefore lists every
        // revocation, so a client reading it as a complete CRL is never misled.
        let entry = CrlEntry {
            number: number + 1,
            der: sign(number)?,
            delta_der: sign(number + 1)?,
        };
        put_json(storage, &format!("{CRL_PREFIX}{}", issuer.id), &entry).await?;
    }
    Ok(())
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

/// `crl/rotate` and `crl/rotate-delta`.
pub(crate) async fn rotate(
    pki: &Pki,
    storage: &dyn Storage,
    delta: bool,
) -> Result<Option<Response>, Error> {
    rebuild(pki, storage).await?;
    let mut data = Map::new();
    data.insert("success".to_owned(), Value::Bool(true));
    let mut resp = Response::with_data(data);
    if delta {
        resp = resp
            .warn("requested rebuild of delta CRL when delta CRL is not enabled; this is a no-op");
    }
    Ok(Some(resp))
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
                && cert.verify_signature(Some(ca.public_key())).is_ok()
        })
        .map(|issuer| issuer.id.clone())
}

fn serial_bytes(serial: &str) -> Result<Vec<u8>, Error> {
    serial
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).map_err(|_| Error::internal("bad stored serial")))
        .collect()
}
