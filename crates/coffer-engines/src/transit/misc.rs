//! `random[/<source>][/<bytes>]` and `hash[/<algorithm>]` (openbao `path_random.go`,
//! `sdk/helper/random`, `path_hash.go`): no key involved.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response};
use serde_json::{Map, Value};

use super::decode_b64;
use super::key::HashAlg;
use super::policy::random_bytes;

/// POST `random`: `bytes` (default 32, below 128 KiB) random bytes as base64 or hex. The
/// source (`platform`, `seal`, `all`) is accepted; coffer has one source, the OS.
pub(super) fn random(
    req: &Request,
    a: Option<&str>,
    b: Option<&str>,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data).upfront(true);
    let (source, count) = match (a, b) {
        (Some(src), Some(n)) => (Some(src), Some(n)),
        (Some(x), None) if matches!(x, "platform" | "seal" | "all") => (Some(x), None),
        (Some(n), None) => (None, Some(n)),
        _ => (None, None),
    };
    if let Some(src) = source {
        if !matches!(src, "platform" | "seal" | "all") {
            return Err(Error::invalid(format!(
                "unsupported entropy source {src:?}"
            )));
        }
    }
    let bytes = match count {
        Some(n) => n.parse::<i64>().map_err(|_| {
            Error::invalid(format!(
                "error parsing url-set byte count: strconv.Atoi: parsing {n:?}: invalid syntax"
            ))
        })?,
        None => fields.int("bytes")?.unwrap_or(32),
    };
    let format = fields
        .string("format")?
        .unwrap_or_else(|| "base64".to_owned());
    if bytes < 1 {
        return Err(Error::invalid("'bytes' cannot be less than 1"));
    }
    if bytes > MAX_RANDOM_BYTES {
        return Err(Error::invalid(format!(
            "'bytes' should be less than {MAX_RANDOM_BYTES}"
        )));
    }
    let out = random_bytes(bytes as usize);
    let encoded = match format.as_str() {
        "hex" => hex_encode(out.as_slice()),
        "base64" => STANDARD.encode(out.as_slice()),
        other => {
            return Err(Error::invalid(format!(
                "unsupported encoding format {other:?}; must be \"hex\" or \"base64\""
            )))
        }
    };
    let mut data = Map::new();
    data.insert("random_bytes".into(), Value::String(encoded));
    Ok(Some(Response::with_data(data)))
}

/// POST `hash[/<algorithm>]`: the digest of `input` (sha2/sha3 families), hex or base64.
pub(super) fn hash(req: &Request, url_algorithm: &str) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let Some(input) = fields.string("input")? else {
        return Err(Error::invalid("input missing"));
    };
    let format = fields.string("format")?.unwrap_or_else(|| "hex".to_owned());
    let algorithm = if url_algorithm.is_empty() {
        fields
            .string("algorithm")?
            .unwrap_or_else(|| "sha2-256".to_owned())
    } else {
        url_algorithm.to_owned()
    };
    let input = decode_b64(&input)
        .map_err(|e| Error::invalid(format!("unable to decode input as base64: {e}")))?;
    if format != "hex" && format != "base64" {
        return Err(Error::invalid(format!(
            "unsupported encoding format {format}; must be \"hex\" or \"base64\""
        )));
    }
    // sha1 and none are not hash algorithms of this path.
    let alg = HashAlg::from_name(&algorithm)
        .filter(|a| !matches!(a, HashAlg::None | HashAlg::Sha1))
        .ok_or_else(|| Error::invalid(format!("unsupported algorithm {algorithm}")))?;
    let sum = alg.digest(&input);
    let encoded = if format == "hex" {
        hex_encode(&sum)
    } else {
        STANDARD.encode(&sum)
    };
    let mut data = Map::new();
    data.insert("sum".into(), Value::String(encoded));
    Ok(Some(Response::with_data(data)))
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

const MAX_RANDOM_BYTES: i64 = 128 * 1024;
