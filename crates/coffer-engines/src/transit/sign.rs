//! `sign/`, `verify/` and `hmac/` (openbao `path_sign_verify.go`, `path_hmac.go`), single or
//! `batch_input`. `verify/` checks a signature or, given `hmac`, an HMAC.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::key::{HashAlg, Marshaling, SignOptions};
use super::{decode_b64, respond, Transit};

/// POST `hmac/<name>[/<algorithm>]`.
pub(super) async fn hmac(
    transit: &Transit,
    req: &Request,
    name: &str,
    url_algorithm: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let mut version = fields.int("key_version")?.unwrap_or(0);
    let algorithm = if url_algorithm.is_empty() {
        fields
            .string("algorithm")?
            .unwrap_or_else(|| "sha2-256".to_owned())
    } else {
        url_algorithm.to_owned()
    };
    let Some(key) = transit.key(storage, name).await? else {
        return Err(Error::invalid("encryption key not found"));
    };
    let p = &key.policy;
    if version == 0 {
        version = p.latest_version;
    } else if version != p.latest_version
        && p.min_encryption_version > 0
        && version < p.min_encryption_version
    {
        return Err(Error::invalid(
            "cannot generate HMAC: version is too old (disallowed by policy)",
        ));
    }
    let mac_key = key.hmac_key(version)?;
    let alg = HashAlg::from_name(&algorithm)
        .filter(|a| *a != HashAlg::None)
        .ok_or_else(|| Error::invalid(format!("unsupported algorithm {algorithm:?}")))?;
    let batch = req.data.get("batch_input").filter(|v| !v.is_null());
    let items = match batch {
        Some(raw) => string_items(raw)?,
        None => {
            let Some(input) = fields.string("input")? else {
                return Err(Error::invalid("missing input for HMAC"));
            };
            vec![Map::from_iter([("input".to_owned(), Value::String(input))])]
        }
    };
    let mut results = Vec::with_capacity(items.len());
    let mut failures = false;
    for item in &items {
        let mut obj = Map::new();
        let outcome = match item.get("input").and_then(Value::as_str) {
            None => Err("missing input for HMAC".to_owned()),
            Some(raw) => decode_b64(raw)
                .map_err(|e| format!("unable to decode input as base64: {e}"))
                .and_then(|input| {
                    alg.hmac(mac_key, &input)
                        .ok_or_else(|| "HMAC key value could not be computed".to_owned())
                }),
        };
        match outcome {
            Ok(mac) => {
                obj.insert(
                    "hmac".into(),
                    Value::String(format!("vault:v{version}:{}", STANDARD.encode(mac))),
                );
            }
            Err(e) => {
                failures = true;
                obj.insert("error".into(), Value::String(e));
            }
        }
        obj.insert("reference".into(), reference(item));
        results.push(obj);
    }
    if batch.is_none() {
        let mut first = results.pop().unwrap_or_default();
        if let Some(Value::String(e)) = first.remove("error") {
            return Err(Error::InvalidRequest(e));
        }
        first.remove("reference");
        return Ok(Some(Response::with_data(first)));
    }
    let _ = failures;
    let mut data = Map::new();
    data.insert(
        "batch_results".into(),
        Value::Array(results.into_iter().map(Value::Object).collect()),
    );
    Ok(Some(Response::with_data(data)))
}

/// POST `sign/<name>[/<algorithm>]`.
pub(super) async fn sign(
    transit: &Transit,
    req: &Request,
    name: &str,
    url_algorithm: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let version = fields.int("key_version")?.unwrap_or(0);
    let (hash, marshaling, prehashed, sig_alg, salt) = sign_options(&fields, url_algorithm)?;
    let Some(key) = transit.key(storage, name).await? else {
        return Err(Error::invalid("signing key not found"));
    };
    if !key.kind.signing_supported() {
        return Err(Error::invalid(format!(
            "key type {} does not support signing",
            key.kind.name()
        )));
    }
    check_hash_none(hash, prehashed, &sig_alg)?;
    let opts = SignOptions {
        hash,
        marshaling,
        salt_length: salt,
        signature_algorithm: &sig_alg,
    };
    let batch = req.data.get("batch_input").filter(|v| !v.is_null());
    let items = match batch {
        Some(raw) => string_items(raw)?,
        None => vec![Map::from_iter([
            (
                "input".to_owned(),
                Value::String(fields.string("input")?.unwrap_or_default()),
            ),
            (
                "context".to_owned(),
                Value::String(fields.string("context")?.unwrap_or_default()),
            ),
        ])],
    };
    let mut results = Vec::with_capacity(items.len());
    for item in &items {
        let outcome = prepare_input(&key, item, hash, prehashed).and_then(|(input, context)| {
            key.sign(version, &context, &input, &opts)
                .map_err(|e| e.to_string())
        });
        let mut obj = Map::new();
        match outcome {
            Ok((signature, version, public)) => {
                obj.insert("signature".into(), Value::String(signature));
                obj.insert("key_version".into(), Value::from(version));
                if let Some(public) = public {
                    obj.insert("publickey".into(), Value::String(STANDARD.encode(public)));
                }
            }
            Err(e) => {
                obj.insert("key_version".into(), Value::from(0));
                obj.insert("error".into(), Value::String(e));
            }
        }
        obj.insert("reference".into(), reference(item));
        results.push(obj);
    }
    if batch.is_none() {
        let mut first = results.pop().unwrap_or_default();
        if let Some(Value::String(e)) = first.remove("error") {
            return Err(Error::InvalidRequest(e));
        }
        first.remove("reference");
        if let Some(public) = first.remove("publickey") {
            first.insert("public_key".into(), public);
        }
        return Ok(Some(Response::with_data(first)));
    }
    let mut data = Map::new();
    data.insert(
        "batch_results".into(),
        Value::Array(results.into_iter().map(Value::Object).collect()),
    );
    Ok(Some(Response::with_data(data)))
}

/// POST `verify/<name>[/<algorithm>]`: a `signature`, or an `hmac`.
pub(super) async fn verify(
    transit: &Transit,
    req: &Request,
    name: &str,
    url_algorithm: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let batch = req.data.get("batch_input").filter(|v| !v.is_null());
    let items = match batch {
        Some(raw) => string_items(raw)?,
        None => {
            let mut item = Map::new();
            item.insert(
                "input".into(),
                Value::String(fields.string("input")?.unwrap_or_default()),
            );
            if let Some(sig) = fields.string("signature")? {
                item.insert("signature".into(), Value::String(sig));
            }
            if let Some(mac) = fields.string("hmac")? {
                item.insert("hmac".into(), Value::String(mac));
            }
            item.insert(
                "context".into(),
                Value::String(fields.string("context")?.unwrap_or_default()),
            );
            vec![item]
        }
    };
    let (mut sig_found, mut hmac_found, mut missing) = (false, false, false);
    for item in &items {
        if item.contains_key("signature") {
            sig_found = true;
        } else if item.contains_key("hmac") {
            hmac_found = true;
        } else {
            missing = true;
        }
    }
    let single = batch.is_none();
    let refusal = match () {
        _ if single && sig_found && hmac_found => Some("provide one of 'signature' or 'hmac'"),
        _ if single && !sig_found && !hmac_found => {
            Some("neither a 'signature' nor an 'hmac' were given to verify")
        }
        _ if sig_found && hmac_found => {
            Some("elements of batch_input must all provide 'signature' or all provide 'hmac'")
        }
        _ if missing && sig_found => Some("some elements of batch_input are missing 'signature'"),
        _ if missing && hmac_found => Some("some elements of batch_input are missing 'hmac'"),
        _ if missing => Some("no batch_input elements have 'signature' or 'hmac'"),
        _ => None,
    };
    if let Some(text) = refusal {
        return Err(Error::invalid(text));
    }
    if hmac_found {
        return verify_hmac(
            transit,
            &fields,
            name,
            url_algorithm,
            items,
            single,
            storage,
        )
        .await;
    }
    let (hash, marshaling, prehashed, sig_alg, salt) = sign_options(&fields, url_algorithm)?;
    let Some(key) = transit.key(storage, name).await? else {
        return Err(Error::invalid("signature verification key not found"));
    };
    if !key.kind.signing_supported() {
        return Err(Error::invalid(format!(
            "key type {} does not support verification",
            key.kind.name()
        )));
    }
    check_hash_none(hash, prehashed, &sig_alg)?;
    let opts = SignOptions {
        hash,
        marshaling,
        salt_length: salt,
        signature_algorithm: &sig_alg,
    };
    let mut results = Vec::with_capacity(items.len());
    let mut failures = false;
    for item in &items {
        let sig = item
            .get("signature")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let outcome = prepare_input(&key, item, hash, prehashed).and_then(|(input, context)| {
            key.verify(sig, &context, &input, &opts)
                .map_err(|e| e.to_string())
        });
        let mut obj = Map::new();
        match outcome {
            Ok(valid) => {
                obj.insert("valid".into(), Value::Bool(valid));
            }
            Err(e) => {
                failures = true;
                obj.insert("valid".into(), Value::Bool(false));
                obj.insert("error".into(), Value::String(e));
            }
        }
        obj.insert("reference".into(), reference(item));
        results.push(obj);
    }
    let _ = failures;
    finish_verify(single, results)
}

async fn verify_hmac(
    transit: &Transit,
    fields: &Fields<'_>,
    name: &str,
    url_algorithm: &str,
    items: Vec<Map<String, Value>>,
    single: bool,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let algorithm = if url_algorithm.is_empty() {
        fields
            .string("hash_algorithm")?
            .filter(|a| !a.is_empty())
            .or(fields.string("algorithm")?.filter(|a| !a.is_empty()))
            .unwrap_or_else(|| "sha2-256".to_owned())
    } else {
        url_algorithm.to_owned()
    };
    let Some(key) = transit.key(storage, name).await? else {
        return Err(Error::invalid("encryption key not found"));
    };
    let alg = HashAlg::from_name(&algorithm)
        .filter(|a| *a != HashAlg::None)
        .ok_or_else(|| Error::invalid(format!("invalid hash algorithm {algorithm:?}")))?;
    let p = &key.policy;
    let mut results = Vec::with_capacity(items.len());
    for item in &items {
        let outcome = (|| -> Result<bool, String> {
            let raw = item
                .get("input")
                .and_then(Value::as_str)
                .ok_or_else(|| "missing input".to_owned())?;
            let input =
                decode_b64(raw).map_err(|e| format!("unable to decode input as base64: {e}"))?;
            let mac = item
                .get("hmac")
                .and_then(Value::as_str)
                .ok_or_else(|| "missing hmac".to_owned())?;
            let rest = mac
                .strip_prefix("vault:v")
                .ok_or_else(|| "invalid HMAC to verify: no prefix".to_owned())?;
            let (ver, body) = rest
                .split_once(':')
                .ok_or_else(|| "invalid HMAC: wrong number of fields".to_owned())?;
            let ver: i64 = ver
                .parse()
                .map_err(|_| "invalid HMAC: version number could not be decoded".to_owned())?;
            let expected = decode_b64(body)
                .map_err(|e| format!("unable to decode verification HMAC as base64: {e}"))?;
            if ver > p.latest_version {
                return Err("invalid HMAC: version is too new".to_owned());
            }
            if p.min_decryption_version > 0 && ver < p.min_decryption_version {
                return Err(
                    "cannot verify HMAC: version is too old (disallowed by policy)".to_owned(),
                );
            }
            let mac_key = key.hmac_key(ver).map_err(|e| e.to_string())?;
            let computed = alg
                .hmac(mac_key, &input)
                .ok_or_else(|| "HMAC key value could not be computed".to_owned())?;
            Ok(computed.len() == expected.len() && bool::from(computed.ct_eq(&expected)))
        })();
        let mut obj = Map::new();
        match outcome {
            Ok(valid) => {
                obj.insert("valid".into(), Value::Bool(valid));
            }
            Err(e) => {
                obj.insert("error".into(), Value::String(e));
            }
        }
        obj.insert("reference".into(), reference(item));
        results.push(obj);
    }
    finish_verify(single, results)
}

fn finish_verify(
    single: bool,
    mut results: Vec<Map<String, Value>>,
) -> Result<Option<Response>, Error> {
    if single {
        let mut first = results.pop().unwrap_or_default();
        if let Some(Value::String(e)) = first.remove("error") {
            return Err(Error::InvalidRequest(e));
        }
        let mut data = Map::new();
        data.insert(
            "valid".into(),
            first.remove("valid").unwrap_or(Value::Bool(false)),
        );
        return Ok(Some(Response::with_data(data)));
    }
    // OpenBao omits `valid` when false in hmac batches (omitempty) but keeps it for
    // signatures; a present `false` reads the same to every client.
    let mut data = Map::new();
    data.insert(
        "batch_results".into(),
        Value::Array(results.into_iter().map(Value::Object).collect()),
    );
    Ok(respond(data, None))
}

type Options = (HashAlg, Marshaling, bool, String, i64);

/// hash_algorithm (or the URL's, or `algorithm`), marshaling_algorithm, prehashed,
/// signature_algorithm and salt_length of a sign or verify request.
fn sign_options(fields: &Fields<'_>, url_algorithm: &str) -> Result<Options, Error> {
    let name = if url_algorithm.is_empty() {
        fields
            .string("hash_algorithm")?
            .filter(|a| !a.is_empty())
            .or(fields.string("algorithm")?.filter(|a| !a.is_empty()))
            .unwrap_or_else(|| "sha2-256".to_owned())
    } else {
        url_algorithm.to_owned()
    };
    let hash = HashAlg::from_name(&name)
        .ok_or_else(|| Error::invalid(format!("invalid hash algorithm {name:?}")))?;
    let marshaling_name = fields
        .string("marshaling_algorithm")?
        .unwrap_or_else(|| "asn1".to_owned());
    let marshaling = match marshaling_name.as_str() {
        "asn1" => Marshaling::Asn1,
        "jws" => Marshaling::Jws,
        other => return Err(Error::invalid(format!("invalid marshaling type {other:?}"))),
    };
    let prehashed = fields.bool("prehashed")?.unwrap_or(false);
    let sig_alg = fields.string("signature_algorithm")?.unwrap_or_default();
    let salt_raw = fields
        .string("salt_length")?
        .unwrap_or_else(|| "auto".to_owned());
    let salt = match salt_raw.to_lowercase().as_str() {
        "auto" => 0,
        "hash" => -1,
        other => {
            let n: i64 = other.parse().map_err(|_| {
                Error::invalid(format!(
                    "salt length neither 'auto', 'hash', nor an int: {salt_raw}"
                ))
            })?;
            if n < -1 {
                return Err(Error::invalid(format!("salt length is invalid: {n}")));
            }
            n
        }
    };
    Ok((hash, marshaling, prehashed, sig_alg, salt))
}

fn check_hash_none(hash: HashAlg, prehashed: bool, sig_alg: &str) -> Result<(), Error> {
    if hash == HashAlg::None && (!prehashed || sig_alg != "pkcs1v15") {
        return Err(Error::invalid(
            "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15",
        ));
    }
    Ok(())
}

/// The decoded input (hashed unless `prehashed`, for ECDSA and RSA) and context of an item.
fn prepare_input(
    key: &super::key::Key,
    item: &Map<String, Value>,
    hash: HashAlg,
    prehashed: bool,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let raw = item
        .get("input")
        .and_then(Value::as_str)
        .ok_or_else(|| "missing input".to_owned())?;
    let mut input =
        decode_b64(raw).map_err(|e| format!("unable to decode input as base64: {e}"))?;
    if key.kind.hash_signature_input() && !prehashed {
        input = hash.digest(&input);
    }
    let context = match item.get("context").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => {
            decode_b64(c).map_err(|_| "failed to base64-decode context".to_owned())?
        }
        _ => Vec::new(),
    };
    Ok((input, context))
}

/// Batch items of sign, verify and hmac: objects of strings (OpenBao decodes them into
/// `map[string]string`).
fn string_items(raw: &Value) -> Result<Vec<Map<String, Value>>, Error> {
    let Value::Array(list) = raw else {
        return Err(Error::invalid(
            "failed to parse batch input: source data must be an array or slice",
        ));
    };
    if list.is_empty() {
        return Err(Error::invalid("missing batch input to process"));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(obj) if obj.values().all(|v| v.is_string() || v.is_null()) => Ok(obj
                .iter()
                .filter(|(_, v)| v.is_string())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()),
            _ => Err(Error::invalid(format!(
                "failed to parse batch input: [{i}] expected a map of strings"
            ))),
        })
        .collect()
}

fn reference(item: &Map<String, Value>) -> Value {
    item.get("reference")
        .cloned()
        .unwrap_or(Value::String(String::new()))
}
