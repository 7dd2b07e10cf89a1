//! The CAs of a mount: root generation, intermediate CSRs and `set-signed`, PEM bundle import
//! (`config/ca`, `issuers/import/*`), and the issuer and key objects with their defaults
//! (`issuers`, `issuer/<ref>`, `keys`, `key/<ref>`, `config/issuers`, `config/keys`), after
//! OpenBao's `path_root.go`, `path_intermediate.go`, `path_fetch_issuers.go` and
//! `path_fetch_keys.go`.

use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage};
use rcgen::{IsCa, PublicKeyData};
use serde_json::{json, Map, Value};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::issue::{ca_spec, issued, output_format, store_cert};
use super::keys::{key_identifier, KeyType, PrivateKey};
use super::store::{
    self, get_json, issuers_config, keys_config, list_issuers, list_keys, put_issuers_config,
    put_json, put_keys_config, resolve_issuer, resolve_key, IssuerEntry, IssuersConfig, KeyEntry,
    ISSUER_PREFIX, KEY_PREFIX,
};
use super::MountTtls;
use super::{colon_hex, crl, Pki};

const AIA_WARNING: &str = "This mount hasn't configured any authority information access (AIA) \
fields; this may make it harder for systems to find missing certificates in the chain or to \
validate revocation status of certificates. Consider updating /config/urls or the newly \
generated issuer with this information.";

/// `root/generate/<type>` and `issuers/generate/root/<type>`.
pub(crate) async fn generate_root(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
    kind: &str,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let issuer_name = checked_name(&fields, "issuer_name", "issuer")?;
    let key_name = checked_name(&fields, "key_name", "key")?;
    let existing_issuers = list_issuers(storage).await?;
    if !issuer_name.is_empty() && existing_issuers.iter().any(|i| i.name == issuer_name) {
        return Err(Error::invalid("issuer name already in use"));
    }
    let (key, key_entry_id, exported) = obtain_key(storage, &fields, kind, &key_name).await?;
    let mut warnings = Vec::new();
    let spec = ca_spec(&fields, MountTtls::of(req), &mut warnings)?;
    let signer = key.signer()?;
    let params = spec.params(&signer)?;
    let cert = params.self_signed(&signer).map_err(Error::internal)?;
    let cert = issued(cert.der().to_vec(), &params);

    let key_id = match key_entry_id {
        Some(id) => id,
        None => save_new_key(storage, &key, key_name.clone()).await?,
    };
    let issuer = IssuerEntry {
        id: store::new_id(),
        name: issuer_name,
        key_id: key_id.clone(),
        certificate: cert.pem.clone(),
        leaf_not_after_behavior: "err".to_owned(),
        usage: "crl-signing,issuing-certificates,ocsp-signing,read-only".to_owned(),
        manual_chain: None,
    };
    save_issuer(storage, &issuer).await?;
    store_cert(storage, &cert).await?;
    pki.signers.clear();
    crl::rebuild(pki, storage).await?;

    let format = output_format(&fields)?;
    let mut data = Map::new();
    let cert_value = super::issue::encode_cert(&cert.der, &cert.pem, &format);
    data.insert("certificate".to_owned(), cert_value.clone());
    data.insert("issuing_ca".to_owned(), cert_value);
    data.insert("expiration".to_owned(), cert.not_after.into());
    data.insert("serial_number".to_owned(), cert.serial.clone().into());
    data.insert("issuer_id".to_owned(), issuer.id.clone().into());
    data.insert("issuer_name".to_owned(), issuer.name.clone().into());
    data.insert("key_id".to_owned(), key_id.into());
    data.insert("key_name".to_owned(), key_name.into());
    if exported {
        insert_private_key(&mut data, &fields, &key, &format)?;
    }
    warnings.push(AIA_WARNING.to_owned());
    let mut resp = Response::with_data(data);
    resp.warnings = warnings;
    Ok(Some(resp))
}

/// `intermediate/generate/<type>` and `issuers/generate/intermediate/<type>`: a key and a CSR.
pub(crate) async fn generate_intermediate(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
    kind: &str,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let key_name = checked_name(&fields, "key_name", "key")?;
    let (key, key_entry_id, exported) = obtain_key(storage, &fields, kind, &key_name).await?;
    let mut warnings = Vec::new();
    let mut spec = ca_spec(&fields, MountTtls::of(req), &mut warnings)?;
    // A CSR asks for a name and key; the signer decides the CA constraints, unless asked.
    spec.is_ca = fields
        .bool("add_basic_constraints")?
        .unwrap_or(false)
        .then_some(IsCa::Ca(rcgen::BasicConstraints::Unconstrained));
    spec.key_usages.clear();
    let signer = key.signer()?;
    let mut params = spec.params(&signer)?;
    params.serial_number = None;
    params.use_authority_key_identifier_extension = false;
    let csr = params.serialize_request(&signer).map_err(Error::internal)?;
    let key_id = match key_entry_id {
        Some(id) => id,
        None => save_new_key(storage, &key, key_name.clone()).await?,
    };
    pki.signers.clear();
    let format = output_format(&fields)?;
    let mut data = Map::new();
    let csr_value: Value = if format == "der" {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(csr.der())
            .into()
    } else {
        csr.pem()
            .map_err(Error::internal)?
            .trim_end()
            .to_owned()
            .into()
    };
    data.insert("csr".to_owned(), csr_value);
    data.insert("key_id".to_owned(), key_id.into());
    if exported {
        insert_private_key(&mut data, &fields, &key, &format)?;
    }
    warnings.push(format!(
        "{AIA_WARNING} Since this certificate is an intermediate, it might be useful to \
         regenerate this certificate after fixing this problem for the root mount."
    ));
    let mut resp = Response::with_data(data);
    resp.warnings = warnings;
    Ok(Some(resp))
}

/// `intermediate/set-signed`: the signed certificate (and optionally its chain) becomes an
/// issuer tied to the key that made the CSR.
pub(crate) async fn set_signed(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let pem = fields.string("certificate")?.unwrap_or_default();
    if pem.trim().is_empty() {
        return Err(Error::invalid(
            "no certificate provided in the \"certificate\" parameter",
        ));
    }
    import_pem(pki, storage, &pem, false).await
}

/// `config/ca`, `issuers/import/bundle` and `issuers/import/cert`.
pub(crate) async fn import_bundle(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let pem = fields.string("pem_bundle")?.unwrap_or_default();
    if pem.trim().is_empty() {
        return Err(Error::invalid("'pem_bundle' parameter was empty"));
    }
    import_pem(pki, storage, &pem, true).await
}

/// `issuers` LIST.
pub(crate) async fn list_issuers_handler(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let issuers = list_issuers(storage).await?;
    if issuers.is_empty() {
        return Ok(None);
    }
    let default = issuers_config(storage).await?.default;
    let mut keys = Vec::new();
    let mut info = Map::new();
    for issuer in &issuers {
        let serial = store::cert_der(&issuer.certificate)
            .ok()
            .and_then(|der| {
                X509Certificate::from_der(&der)
                    .ok()
                    .map(|(_, c)| colon_hex(c.raw_serial()))
            })
            .unwrap_or_default();
        keys.push(Value::from(issuer.id.clone()));
        info.insert(
            issuer.id.clone(),
            json!({
                "is_default": issuer.id == default,
                "issuer_name": issuer.name,
                "key_id": issuer.key_id,
                "serial_number": serial,
            }),
        );
    }
    let mut data = Map::new();
    data.insert("keys".to_owned(), Value::Array(keys));
    data.insert("key_info".to_owned(), Value::Object(info));
    Ok(Some(Response::with_data(data)))
}

/// `issuer/<ref>` read.
pub(crate) async fn read_issuer(
    storage: &dyn Storage,
    reference: &str,
) -> Result<Option<Response>, Error> {
    let issuer = resolve_issuer(storage, reference).await?;
    Ok(Some(Response::with_data(
        issuer_data(storage, &issuer).await?,
    )))
}

/// `issuer/<ref>/json` (and `cert/ca`-style short forms): certificate and chain only.
pub(crate) async fn read_issuer_json(
    storage: &dyn Storage,
    reference: &str,
) -> Result<Option<Response>, Error> {
    let issuer = resolve_issuer(storage, reference).await?;
    let chain = store::chain_of(&issuer, &list_issuers(storage).await?)?;
    let mut data = Map::new();
    data.insert("certificate".to_owned(), issuer.certificate.clone().into());
    data.insert("ca_chain".to_owned(), Value::from(chain));
    data.insert("issuer_id".to_owned(), issuer.id.clone().into());
    data.insert("issuer_name".to_owned(), issuer.name.clone().into());
    Ok(Some(Response::with_data(data)))
}

/// `issuer/<ref>` update and patch: only the fields present change.
pub(crate) async fn update_issuer(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
    reference: &str,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let mut issuer = resolve_issuer(storage, reference).await?;
    if fields.raw("issuer_name").is_some() {
        let name = checked_name(&fields, "issuer_name", "issuer")?;
        if !name.is_empty()
            && name != issuer.name
            && list_issuers(storage).await?.iter().any(|i| i.name == name)
        {
            return Err(Error::invalid("issuer name already in use"));
        }
        issuer.name = name;
    }
    if let Some(behavior) = fields.string("leaf_not_after_behavior")? {
        if !matches!(behavior.as_str(), "err" | "truncate" | "permit") {
            return Err(Error::invalid(
                "Unknown value for field `leaf_not_after_behavior`. Possible values are `err`, \
                 `truncate`, and `permit`.",
            ));
        }
        issuer.leaf_not_after_behavior = behavior;
    }
    if fields.raw("usage").is_some() {
        let usages = super::roles::comma_strings(&fields, "usage")?;
        for usage in &usages {
            if !matches!(
                usage.as_str(),
                "read-only" | "issuing-certificates" | "crl-signing" | "ocsp-signing"
            ) {
                return Err(Error::invalid(format!("unknown usage: {usage}")));
            }
        }
        issuer.usage = usages.join(",");
    }
    if fields.raw("manual_chain").is_some() {
        let chain = super::roles::comma_strings(&fields, "manual_chain")?;
        issuer.manual_chain = if chain.is_empty() || chain == ["self"] {
            None
        } else {
            let mut ids = Vec::new();
            for reference in &chain {
                let id = if reference == "self" {
                    issuer.id.clone()
                } else {
                    resolve_issuer(storage, reference).await?.id
                };
                ids.push(id);
            }
            Some(ids)
        };
    }
    save_issuer(storage, &issuer).await?;
    pki.signers.clear();
    Ok(Some(Response::with_data(
        issuer_data(storage, &issuer).await?,
    )))
}

/// `issuer/<ref>` delete: the certificate goes, the key stays (as OpenBao).
pub(crate) async fn delete_issuer(
    pki: &Pki,
    storage: &dyn Storage,
    reference: &str,
) -> Result<Option<Response>, Error> {
    let issuer = match resolve_issuer(storage, reference).await {
        Ok(issuer) => issuer,
        // Deleting what is not there succeeds, as OpenBao answers 204.
        Err(Error::InvalidRequest(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    storage
        .delete(&format!("{ISSUER_PREFIX}{}", issuer.id))
        .await?;
    storage
        .delete(&format!("{}{}", store::CRL_PREFIX, issuer.id))
        .await?;
    let mut config = issuers_config(storage).await?;
    let mut resp = None;
    if config.default == issuer.id {
        config.default.clear();
        put_issuers_config(storage, &config).await?;
        resp =
            Some(Response::default().warn(
                "Deleted issuer was the default issuer; a new default issuer has not been set",
            ));
    }
    pki.signers.clear();
    Ok(resp)
}

/// `keys` LIST.
pub(crate) async fn list_keys_handler(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let keys = list_keys(storage).await?;
    if keys.is_empty() {
        return Ok(None);
    }
    let default = keys_config(storage).await?.default;
    let mut info = Map::new();
    for key in &keys {
        info.insert(
            key.id.clone(),
            json!({"is_default": key.id == default, "key_name": key.name}),
        );
    }
    let mut data = Map::new();
    data.insert(
        "keys".to_owned(),
        keys.iter().map(|k| Value::from(k.id.clone())).collect(),
    );
    data.insert("key_info".to_owned(), Value::Object(info));
    Ok(Some(Response::with_data(data)))
}

/// `key/<ref>` read: never the private key.
pub(crate) async fn read_key(
    storage: &dyn Storage,
    reference: &str,
) -> Result<Option<Response>, Error> {
    let key = resolve_key(storage, reference).await?;
    Ok(Some(Response::with_data(key_data(&key)?)))
}

/// `key/<ref>` update: the name.
pub(crate) async fn update_key(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
    reference: &str,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let mut key = resolve_key(storage, reference).await?;
    let name = checked_name(&fields, "key_name", "key")?;
    if !name.is_empty()
        && name != key.name
        && list_keys(storage).await?.iter().any(|k| k.name == name)
    {
        return Err(Error::invalid("key name already in use"));
    }
    key.name = name;
    put_json(storage, &format!("{KEY_PREFIX}{}", key.id), &key).await?;
    pki.signers.clear();
    Ok(Some(Response::with_data(key_data(&key)?)))
}

/// `key/<ref>` delete: refused while an issuer uses the key.
pub(crate) async fn delete_key(
    pki: &Pki,
    storage: &dyn Storage,
    reference: &str,
) -> Result<Option<Response>, Error> {
    let key = match resolve_key(storage, reference).await {
        Ok(key) => key,
        Err(Error::InvalidRequest(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if let Some(user) = list_issuers(storage)
        .await?
        .into_iter()
        .find(|i| i.key_id == key.id)
    {
        return Err(Error::invalid(format!(
            "Failed to Delete Key.  Key in Use by Issuer: {}",
            user.id
        )));
    }
    storage.delete(&format!("{KEY_PREFIX}{}", key.id)).await?;
    let mut config = keys_config(storage).await?;
    if config.default == key.id {
        config.default.clear();
        put_keys_config(storage, &config).await?;
    }
    pki.signers.clear();
    Ok(None)
}

/// `config/issuers` read.
pub(crate) async fn read_issuers_config(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let config = issuers_config(storage).await?;
    Response::from_serialize(&config).map(Some)
}

/// `config/issuers` write: `default` is any reference, stored as an id.
pub(crate) async fn write_issuers_config(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let mut config = issuers_config(storage).await?;
    if let Some(reference) = fields.string("default")?.filter(|s| !s.is_empty()) {
        let issuer = resolve_issuer(storage, &reference)
            .await
            .map_err(|e| Error::invalid(format!("Error resolving issuer reference: {e}")))?;
        config.default = issuer.id;
    }
    if let Some(follow) = fields.bool("default_follows_latest_issuer")? {
        config.default_follows_latest_issuer = follow;
    }
    put_issuers_config(storage, &config).await?;
    pki.signers.clear();
    crl::rebuild(pki, storage).await?;
    Response::from_serialize(&config).map(Some)
}

/// `config/keys` read.
pub(crate) async fn read_keys_config(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    Response::from_serialize(&keys_config(storage).await?).map(Some)
}

/// `config/keys` write.
pub(crate) async fn write_keys_config(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let mut config = keys_config(storage).await?;
    if let Some(reference) = fields.string("default")?.filter(|s| !s.is_empty()) {
        let key = resolve_key(storage, &reference)
            .await
            .map_err(|e| Error::invalid(format!("Error resolving issuer reference: {e}")))?;
        config.default = key.id.clone();
    }
    put_keys_config(storage, &config).await?;
    pki.signers.clear();
    Response::from_serialize(&config).map(Some)
}

/// Imports every key and certificate of a PEM text; certificates become issuers, tied to a
/// key of the mount when one matches their public key.
async fn import_pem(
    pki: &Pki,
    storage: &dyn Storage,
    pem: &str,
    allow_keys: bool,
) -> Result<Option<Response>, Error> {
    let blocks = super::pem::blocks(pem)?;
    let mut new_keys = Vec::new();
    let mut certs = Vec::new();
    for block in &blocks {
        if block.label == "CERTIFICATE" {
            X509Certificate::from_der(&block.der)
                .map_err(|_| Error::invalid("unable to parse certificate in bundle"))?;
            certs.push(block.der.to_vec());
        } else if let Some(key) = PrivateKey::from_pem_block(&block.label, &block.der) {
            if !allow_keys {
                return Err(Error::invalid(
                    "private keys are not allowed in the \"certificate\" parameter",
                ));
            }
            new_keys.push(key?);
        }
    }
    if certs.is_empty() && new_keys.is_empty() {
        return Err(Error::invalid("no data found in PEM bundle"));
    }

    // Keys: known ones (same public key) are reused, the others stored.
    let mut known: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in list_keys(storage).await? {
        known.push((
            entry.id.clone(),
            entry.private_key()?.signer()?.der_bytes().to_vec(),
        ));
    }
    let (mut imported_keys, mut existing_keys) = (Vec::new(), Vec::new());
    for key in &new_keys {
        let public = key.signer()?.der_bytes().to_vec();
        if let Some((id, _)) = known.iter().find(|(_, p)| *p == public) {
            existing_keys.push(Value::from(id.clone()));
        } else {
            let id = save_new_key(storage, key, String::new()).await?;
            imported_keys.push(Value::from(id.clone()));
            known.push((id, public));
        }
    }

    let issuers = list_issuers(storage).await?;
    let (mut imported_issuers, mut existing_issuers) = (Vec::new(), Vec::new());
    let mut mapping = Map::new();
    for der in &certs {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|_| Error::invalid("unable to parse certificate in bundle"))?;
        let public = cert.public_key().subject_public_key.data.to_vec();
        let key_id = known
            .iter()
            .find(|(_, p)| *p == public)
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        let existing = issuers
            .iter()
            .find(|i| store::cert_der(&i.certificate).ok().as_deref() == Some(der.as_slice()));
        let id = match existing {
            Some(found) => {
                existing_issuers.push(Value::from(found.id.clone()));
                if found.key_id.is_empty() && !key_id.is_empty() {
                    let mut updated = found.clone();
                    updated.key_id = key_id.clone();
                    save_issuer(storage, &updated).await?;
                }
                found.id.clone()
            }
            None => {
                let entry = IssuerEntry {
                    id: store::new_id(),
                    name: String::new(),
                    key_id: key_id.clone(),
                    certificate: super::pem::cert(der),
                    leaf_not_after_behavior: "err".to_owned(),
                    usage: "crl-signing,issuing-certificates,ocsp-signing,read-only".to_owned(),
                    manual_chain: None,
                };
                save_issuer(storage, &entry).await?;
                imported_issuers.push(Value::from(entry.id.clone()));
                entry.id
            }
        };
        mapping.insert(id, key_id.into());
    }
    pki.signers.clear();
    crl::rebuild(pki, storage).await?;
    let or_null = |v: Vec<Value>| {
        if v.is_empty() {
            Value::Null
        } else {
            Value::Array(v)
        }
    };
    let mut data = Map::new();
    data.insert("imported_issuers".to_owned(), or_null(imported_issuers));
    data.insert("imported_keys".to_owned(), or_null(imported_keys));
    data.insert("existing_issuers".to_owned(), or_null(existing_issuers));
    data.insert("existing_keys".to_owned(), or_null(existing_keys));
    data.insert("mapping".to_owned(), Value::Object(mapping));
    Ok(Some(Response::with_data(data).warn(AIA_WARNING)))
}

/// The key a generation request uses: a new one (`internal`, `exported`) or a stored one
/// (`existing` with `key_ref`). Returns the key, its entry id when it is already stored, and
/// whether the response carries it.
async fn obtain_key(
    storage: &dyn Storage,
    fields: &Fields<'_>,
    kind: &str,
    key_name: &str,
) -> Result<(PrivateKey, Option<String>, bool), Error> {
    match kind {
        "internal" | "exported" => {
            if !key_name.is_empty() && list_keys(storage).await?.iter().any(|k| k.name == key_name)
            {
                return Err(Error::invalid("key name already in use"));
            }
            let key_type = KeyType::parse(
                &fields
                    .string("key_type")?
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "rsa".to_owned()),
            )?;
            let bits = key_type.normalize_bits(fields.int("key_bits")?.unwrap_or(0))?;
            let key = if key_type == KeyType::Rsa {
                tokio::task::spawn_blocking(move || PrivateKey::generate(key_type, bits))
                    .await
                    .map_err(Error::internal)??
            } else {
                PrivateKey::generate(key_type, bits)?
            };
            Ok((key, None, kind == "exported"))
        }
        "existing" => {
            let reference = fields
                .string("key_ref")?
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "default".to_owned());
            let entry = resolve_key(storage, &reference).await?;
            Ok((entry.private_key()?, Some(entry.id.clone()), false))
        }
        "kms" => Err(Error::invalid(
            "must specify \"external_key_ref\" on \"kms\"-typed generation requests",
        )),
        _ => Err(Error::UnsupportedPath(format!("generate/{kind}"))),
    }
}

async fn save_new_key(
    storage: &dyn Storage,
    key: &PrivateKey,
    name: String,
) -> Result<String, Error> {
    let id = store::new_id();
    put_json(
        storage,
        &format!("{KEY_PREFIX}{id}"),
        &KeyEntry::new(id.clone(), name, key),
    )
    .await?;
    let mut config = keys_config(storage).await?;
    if config.default.is_empty() {
        config.default = id.clone();
        put_keys_config(storage, &config).await?;
    }
    Ok(id)
}

/// Stores an issuer; the first issuer that can sign becomes the default.
async fn save_issuer(storage: &dyn Storage, issuer: &IssuerEntry) -> Result<(), Error> {
    put_json(storage, &format!("{ISSUER_PREFIX}{}", issuer.id), issuer).await?;
    let mut config: IssuersConfig = issuers_config(storage).await?;
    let default_missing = config.default.is_empty()
        || get_json::<IssuerEntry>(storage, &format!("{ISSUER_PREFIX}{}", config.default))
            .await?
            .is_none();
    if (default_missing || config.default_follows_latest_issuer) && !issuer.key_id.is_empty() {
        config.default = issuer.id.clone();
        put_issuers_config(storage, &config).await?;
    }
    Ok(())
}

async fn issuer_data(
    storage: &dyn Storage,
    issuer: &IssuerEntry,
) -> Result<Map<String, Value>, Error> {
    let chain = store::chain_of(issuer, &list_issuers(storage).await?)?;
    let algorithm = if issuer.key_id.is_empty() {
        String::new()
    } else {
        match get_json::<KeyEntry>(storage, &format!("{KEY_PREFIX}{}", issuer.key_id)).await? {
            Some(key) => match (key.key_type.as_str(), key.key_bits) {
                ("ec", 384) => "ECDSAWithSHA384",
                ("ec", 521) => "ECDSAWithSHA512",
                ("ec", _) => "ECDSAWithSHA256",
                ("ed25519", _) => "PureEd25519",
                _ => "SHA256WithRSA",
            }
            .to_owned(),
            None => String::new(),
        }
    };
    let data = json!({
        "ca_chain": chain,
        "certificate": issuer.certificate,
        "crl_distribution_points": [],
        "delta_crl_distribution_points": [],
        "issuer_id": issuer.id,
        "issuer_name": issuer.name,
        "issuing_certificates": [],
        "key_id": issuer.key_id,
        "leaf_not_after_behavior": issuer.leaf_not_after_behavior,
        "manual_chain": issuer.manual_chain,
        "ocsp_servers": [],
        "revocation_signature_algorithm": algorithm,
        "revoked": false,
        "usage": issuer.usage,
    });
    match data {
        Value::Object(map) => Ok(map),
        _ => Err(Error::internal("issuer data is not an object")),
    }
}

fn key_data(key: &KeyEntry) -> Result<Map<String, Value>, Error> {
    let private = key.private_key()?;
    let signer = private.signer()?;
    let mut data = Map::new();
    data.insert("key_id".to_owned(), key.id.clone().into());
    data.insert("key_name".to_owned(), key.name.clone().into());
    data.insert("key_type".to_owned(), key.key_type.clone().into());
    data.insert(
        "subject_key_id".to_owned(),
        colon_hex(&key_identifier(signer.der_bytes())).into(),
    );
    Ok(data)
}

fn insert_private_key(
    data: &mut Map<String, Value>,
    fields: &Fields<'_>,
    key: &PrivateKey,
    format: &str,
) -> Result<(), Error> {
    let pkcs8 = fields.string("private_key_format")?.as_deref() == Some("pkcs8");
    let exported = key.export(format, pkcs8)?;
    data.insert("private_key".to_owned(), exported.as_str().into());
    data.insert("private_key_type".to_owned(), key.kind().as_str().into());
    Ok(())
}

/// An `issuer_name` or `key_name` field, checked as OpenBao checks it.
fn checked_name(fields: &Fields<'_>, field: &str, what: &str) -> Result<String, Error> {
    let name = fields.string(field)?.unwrap_or_default();
    if name == "default" {
        return Err(Error::invalid(format!(
            "reserved keyword 'default' can not be used as {what} name"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::invalid(format!(
            "{what} name contained invalid characters"
        )));
    }
    Ok(name)
}
