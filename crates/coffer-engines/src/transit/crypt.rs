//! `encrypt/`, `decrypt/`, `rewrap/` and `datakey/` (openbao `path_encrypt.go`,
//! `path_decrypt.go`, `path_rewrap.go`, `path_datakey.go`), single or `batch_input`, with
//! OpenBao's per-item results: `{ciphertext, key_version, reference}` or `{error, reference}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage};
use serde_json::{Map, Value};

use super::key::Key;
use super::keys::{upsert, upsert_disabled, NewKey};
use super::policy::{random_bytes, KeyType};
use super::{batch_status, decode_b64, respond, Transit};

/// One item of a batch (or the single request), as OpenBao's `BatchRequestItem`.
#[derive(Default)]
struct Item {
    plaintext: Option<String>,
    ciphertext: Option<String>,
    context: String,
    key_version: i64,
    associated_data: String,
    reference: String,
    decoded_context: Vec<u8>,
}

/// POST `encrypt/<name>`; a missing key is created (aes256-gcm96 unless `type`, derived when
/// a context is given), as OpenBao's upsert, unless `config/keys` disables that.
pub(super) async fn encrypt(
    transit: &Transit,
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let batch = req.data.get("batch_input").filter(|v| !v.is_null());
    let mut items = match batch {
        Some(raw) => parse_batch(raw, true, false)?,
        None => {
            let Some(plaintext) = fields.string("plaintext")? else {
                return Err(Error::invalid("missing plaintext to encrypt"));
            };
            vec![Item {
                plaintext: Some(plaintext),
                context: fields.string("context")?.unwrap_or_default(),
                key_version: fields.int("key_version")?.unwrap_or(0),
                associated_data: fields.string("associated_data")?.unwrap_or_default(),
                ..Item::default()
            }]
        }
    };
    let mut errors: Vec<Option<String>> = vec![None; items.len()];
    let context_set = !items[0].context.is_empty();
    let mut plaintexts: Vec<Option<zeroize::Zeroizing<Vec<u8>>>> = Vec::with_capacity(items.len());
    for (i, item) in items.iter_mut().enumerate() {
        check_context(item, context_set)?;
        match decode_b64(item.plaintext.as_deref().unwrap_or_default()) {
            Ok(p) => plaintexts.push(Some(zeroize::Zeroizing::new(p))),
            Err(e) => {
                errors[i] = Some(e);
                plaintexts.push(None);
                continue;
            }
        }
        decode_context(item, &mut errors[i]);
    }

    let key = match transit.cached(name) {
        Some(key) => key,
        None => {
            let convergent = fields.bool("convergent_encryption")?.unwrap_or(false);
            if convergent && !context_set {
                return Err(Error::invalid(
                    "convergent encryption requires derivation to be enabled, so context is \
                     required",
                ));
            }
            let upsert_disabled = upsert_disabled(storage).await?;
            let type_name = fields
                .string("type")?
                .unwrap_or_else(|| "aes256-gcm96".to_owned());
            let key_type = match KeyType::from_name(&type_name) {
                Some(t) if t.is_symmetric() => t,
                Some(_) => {
                    return Err(Error::invalid(format!(
                        "key type {type_name} not supported for this operation"
                    )))
                }
                None => return Err(Error::invalid(format!("unknown key type {type_name}"))),
            };
            if upsert_disabled {
                transit
                    .key(storage, name)
                    .await?
                    .ok_or_else(|| Error::invalid("encryption key not found"))?
            } else {
                upsert(
                    transit,
                    storage,
                    NewKey {
                        name,
                        key_type,
                        derived: context_set,
                        convergent,
                        exportable: false,
                        allow_plaintext_backup: false,
                        auto_rotate_secs: 0,
                        key_size: 0,
                    },
                )
                .await?
            }
        }
    };

    let mut results = Vec::with_capacity(items.len());
    let (mut successes, mut failures) = (false, false);
    for (i, item) in items.iter().enumerate() {
        let outcome = match (&errors[i], &plaintexts[i]) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(plain)) => seal_item(&key, item, plain, i),
            (None, None) => Err("missing plaintext to encrypt".to_owned()),
        };
        match outcome {
            Ok((ciphertext, version)) => {
                successes = true;
                results.push(encrypt_result(
                    Some((ciphertext, version)),
                    None,
                    &item.reference,
                ));
            }
            Err(e) => {
                failures = true;
                results.push(encrypt_result(None, Some(e), &item.reference));
            }
        }
    }
    finish_encrypt(req, batch.is_some(), results, successes, failures)
}

fn seal_item(key: &Key, item: &Item, plain: &[u8], index: usize) -> Result<(String, i64), String> {
    let aad = associated_data(key, item, index)?;
    key.encrypt(item.key_version, &item.decoded_context, plain, &aad)
        .map_err(|e| e.to_string())
}

/// POST `decrypt/<name>`.
pub(super) async fn decrypt(
    transit: &Transit,
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let batch = req.data.get("batch_input").filter(|v| !v.is_null());
    let mut items = match batch {
        Some(raw) => parse_batch(raw, false, true)?,
        None => {
            let ciphertext = fields.string("ciphertext")?.unwrap_or_default();
            if ciphertext.is_empty() {
                return Err(Error::invalid("missing ciphertext to decrypt"));
            }
            vec![Item {
                ciphertext: Some(ciphertext),
                context: fields.string("context")?.unwrap_or_default(),
                associated_data: fields.string("associated_data")?.unwrap_or_default(),
                ..Item::default()
            }]
        }
    };
    let mut errors: Vec<Option<String>> = vec![None; items.len()];
    let context_set = !items[0].context.is_empty();
    for (i, item) in items.iter_mut().enumerate() {
        check_context(item, context_set)?;
        if item.ciphertext.as_deref().unwrap_or_default().is_empty() {
            errors[i] = Some("missing ciphertext to decrypt".to_owned());
            continue;
        }
        decode_context(item, &mut errors[i]);
    }
    let Some(key) = transit.key(storage, name).await? else {
        return Err(Error::invalid("encryption key not found"));
    };
    let mut results = Vec::with_capacity(items.len());
    let (mut successes, mut failures) = (false, false);
    for (i, item) in items.iter().enumerate() {
        let outcome = match &errors[i] {
            Some(e) => Err(e.clone()),
            None => associated_data(&key, item, i).and_then(|aad| {
                key.decrypt(
                    item.ciphertext.as_deref().unwrap_or_default(),
                    &item.decoded_context,
                    &aad,
                )
                .map_err(|e| e.to_string())
            }),
        };
        let mut obj = Map::new();
        match outcome {
            Ok((plain, _)) => {
                successes = true;
                obj.insert("plaintext".into(), Value::String(STANDARD.encode(&plain)));
            }
            Err(e) => {
                failures = true;
                obj.insert("plaintext".into(), Value::String(String::new()));
                obj.insert("error".into(), Value::String(e));
            }
        }
        obj.insert("reference".into(), Value::String(item.reference.clone()));
        results.push(Value::Object(obj));
    }
    if batch.is_none() {
        let mut first = match results.pop() {
            Some(Value::Object(obj)) => obj,
            _ => return Err(Error::internal("no decrypt result")),
        };
        if let Some(Value::String(e)) = first.remove("error") {
            return Err(Error::InvalidRequest(e));
        }
        let mut data = Map::new();
        data.insert(
            "plaintext".into(),
            first.remove("plaintext").unwrap_or_default(),
        );
        return Ok(Some(Response::with_data(data)));
    }
    let mut data = Map::new();
    data.insert("batch_results".into(), Value::Array(results));
    Ok(respond(data, batch_status(req, successes, failures)?))
}

/// POST `rewrap/<name>`: decrypts and encrypts again with the latest (or `key_version`).
pub(super) async fn rewrap(
    transit: &Transit,
    req: &Request,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let batch = req.data.get("batch_input").filter(|v| !v.is_null());
    let mut items = match batch {
        Some(raw) => parse_batch(raw, false, false)?,
        None => {
            let ciphertext = fields.string("ciphertext")?.unwrap_or_default();
            if ciphertext.is_empty() {
                return Err(Error::invalid("missing ciphertext to decrypt"));
            }
            vec![Item {
                ciphertext: Some(ciphertext),
                context: fields.string("context")?.unwrap_or_default(),
                key_version: fields.int("key_version")?.unwrap_or(0),
                ..Item::default()
            }]
        }
    };
    let mut errors: Vec<Option<String>> = vec![None; items.len()];
    let context_set = !items[0].context.is_empty();
    for (i, item) in items.iter_mut().enumerate() {
        check_context(item, context_set)?;
        if item.ciphertext.as_deref().unwrap_or_default().is_empty() {
            errors[i] = Some("missing ciphertext to decrypt".to_owned());
            continue;
        }
        decode_context(item, &mut errors[i]);
    }
    let Some(key) = transit.key(storage, name).await? else {
        return Err(Error::invalid("encryption key not found"));
    };
    let mut results = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let outcome = match &errors[i] {
            Some(e) => Err(e.clone()),
            None => key
                .decrypt(
                    item.ciphertext.as_deref().unwrap_or_default(),
                    &item.decoded_context,
                    &[],
                )
                .and_then(|(plain, _)| {
                    key.encrypt(item.key_version, &item.decoded_context, &plain, &[])
                })
                .map_err(|e| e.to_string()),
        };
        results.push(match outcome {
            Ok(ok) => encrypt_result(Some(ok), None, &item.reference),
            Err(e) => encrypt_result(None, Some(e), &item.reference),
        });
    }
    // OpenBao answers a rewrap batch 200 whatever its items say.
    finish_encrypt(req, batch.is_some(), results, true, false)
}

/// POST `datakey/plaintext|wrapped/<name>`: a fresh random key encrypted under the named one.
pub(super) async fn datakey(
    transit: &Transit,
    req: &Request,
    kind: &str,
    name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let version = fields.int("key_version")?.unwrap_or(0);
    let with_plaintext = match kind {
        "plaintext" => true,
        "wrapped" => false,
        _ => {
            return Err(Error::invalid(
                "Invalid path, must be 'plaintext' or 'wrapped'",
            ))
        }
    };
    let context = match fields.string("context")?.filter(|c| !c.is_empty()) {
        Some(c) => decode_b64(&c).map_err(|_| Error::invalid("failed to base64-decode context"))?,
        None => Vec::new(),
    };
    let Some(key) = transit.key(storage, name).await? else {
        return Err(Error::invalid("encryption key not found"));
    };
    let len = match fields.int("bits")?.unwrap_or(256) {
        512 => 64,
        256 => 32,
        128 => 16,
        _ => return Err(Error::invalid("invalid bit length")),
    };
    let aad = match fields.string("associated_data")?.filter(|a| !a.is_empty()) {
        Some(a) => {
            if !key.kind.is_symmetric() {
                return Err(Error::invalid(format!(
                    "'associated_data' provided for non-AEAD cipher suite {}",
                    key.kind.name()
                )));
            }
            decode_b64(&a).map_err(Error::InvalidRequest)?
        }
        None => Vec::new(),
    };
    let new_key = random_bytes(len);
    let (ciphertext, version) = key.encrypt(version, &context, new_key.as_slice(), &aad)?;
    let mut data = Map::new();
    data.insert("ciphertext".into(), Value::String(ciphertext));
    data.insert("key_version".into(), Value::from(version));
    if with_plaintext {
        data.insert(
            "plaintext".into(),
            Value::String(STANDARD.encode(new_key.as_slice())),
        );
    }
    Ok(Some(Response::with_data(data)))
}

fn encrypt_result(ok: Option<(String, i64)>, err: Option<String>, reference: &str) -> Value {
    let mut obj = Map::new();
    if let Some((ciphertext, version)) = ok {
        obj.insert("ciphertext".into(), Value::String(ciphertext));
        obj.insert("key_version".into(), Value::from(version));
    }
    if let Some(e) = err {
        obj.insert("error".into(), Value::String(e));
    }
    obj.insert("reference".into(), Value::String(reference.to_owned()));
    Value::Object(obj)
}

fn finish_encrypt(
    req: &Request,
    is_batch: bool,
    mut results: Vec<Value>,
    successes: bool,
    failures: bool,
) -> Result<Option<Response>, Error> {
    if !is_batch {
        let mut first = match results.pop() {
            Some(Value::Object(obj)) => obj,
            _ => return Err(Error::internal("no encrypt result")),
        };
        if let Some(Value::String(e)) = first.remove("error") {
            return Err(Error::InvalidRequest(e));
        }
        first.remove("reference");
        return Ok(Some(Response::with_data(first)));
    }
    let mut data = Map::new();
    data.insert("batch_results".into(), Value::Array(results));
    Ok(respond(data, batch_status(req, successes, failures)?))
}

fn associated_data(key: &Key, item: &Item, index: usize) -> Result<Vec<u8>, String> {
    if item.associated_data.is_empty() {
        return Ok(Vec::new());
    }
    if !key.kind.is_symmetric() {
        return Err(format!(
            "'[{index}].associated_data' provided for non-AEAD cipher suite {}",
            key.kind.name()
        ));
    }
    decode_b64(&item.associated_data)
}

fn check_context(item: &Item, context_set: bool) -> Result<(), Error> {
    if item.context.is_empty() == context_set {
        return Err(Error::invalid(
            "context should be set either in all the request blocks or in none",
        ));
    }
    Ok(())
}

fn decode_context(item: &mut Item, error: &mut Option<String>) {
    if error.is_some() || item.context.is_empty() {
        return;
    }
    match decode_b64(&item.context) {
        Ok(c) => item.decoded_context = c,
        Err(e) => *error = Some(e),
    }
}

/// OpenBao's `decodeBatchRequestItems`: every item an object of string fields (`key_version`
/// an integer); a malformed batch is refused whole.
fn parse_batch(
    raw: &Value,
    require_plaintext: bool,
    require_ciphertext: bool,
) -> Result<Vec<Item>, Error> {
    let Value::Array(list) = raw else {
        return Err(Error::invalid(
            "failed to parse batch input: source data must be an array or slice",
        ));
    };
    if list.is_empty() {
        return Err(Error::invalid("missing batch input to process"));
    }
    let mut problems = Vec::new();
    let mut items = Vec::with_capacity(list.len());
    for (i, value) in list.iter().enumerate() {
        let Value::Object(obj) = value else {
            return Err(Error::invalid(format!(
                "failed to parse batch input: [{i}] expected a map"
            )));
        };
        let mut item = Item::default();
        let mut string = |field: &str, required: Option<&str>| -> Option<String> {
            match obj.get(field) {
                None if required.is_some() => {
                    problems.push(format!("'[{i}].{field}' {}", required.unwrap_or_default()));
                    None
                }
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    problems.push(format!("'[{i}].{field}' expected type 'string'"));
                    None
                }
            }
        };
        item.context = string("context", None).unwrap_or_default();
        item.ciphertext = string(
            "ciphertext",
            require_ciphertext.then_some("missing ciphertext to decrypt"),
        );
        item.plaintext = string(
            "plaintext",
            require_plaintext.then_some("missing plaintext to encrypt"),
        );
        item.associated_data = string("associated_data", None).unwrap_or_default();
        item.reference = string("reference", None).unwrap_or_default();
        match obj.get("key_version") {
            None | Some(Value::Null) => {}
            Some(v) => match coffer_sdk::framework::weak_int(v) {
                Ok(n) => item.key_version = n,
                Err(_) => problems.push(format!("'[{i}].key_version' expected type 'int'")),
            },
        }
        items.push(item);
    }
    if !problems.is_empty() {
        return Err(Error::invalid(format!(
            "failed to parse batch input: {}",
            problems.join("\n")
        )));
    }
    Ok(items)
}
