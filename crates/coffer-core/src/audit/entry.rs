//! One audit entry in OpenBao's JSON format (`type` request/response, `time`, `auth`, `request`,
//! `response`, `error`), with every token and every string of request and response data
//! replaced by `hmac-sha256:<hex>` under the device's key.
//!
//! Copies the shape of OpenBao `audit/format_json.go` and `audit/hashstructure.go`: numbers and
//! booleans stay readable, strings (also inside arrays and nested objects) are hashed; paths,
//! policies, display names and metadata are not. Nothing here writes anything.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher as _};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use coffer_sdk::{Error, Response};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;

use super::AuditRecord;
use crate::mount::Route;

/// The prefix OpenBao puts in front of every hashed value.
pub const HMAC_PREFIX: &str = "hmac-sha256:";

/// Tokens whose hashes are remembered at most (the map is emptied when it is full).
const TOKEN_CACHE_CAPACITY: usize = 4096;

/// HMAC-SHA256 under one device's key. The keyed state is prepared once; each hash clones it.
pub struct Hasher {
    key: SecretBox<Vec<u8>>,
    prepared: Hmac<Sha256>,
    tokens: TokenCache,
}

/// The hashes of recently seen tokens: a token's hash under a device key never changes, and
/// every request logs its token four times (two entries, `auth` and `request`).
///
/// Keyed by the token's accessor; the presented token is only kept as a SipHash under a random
/// per-process key (never in plaintext), checked so that another spelling of a token that
/// resolves to the same accessor is hashed afresh.
struct TokenCache {
    check: std::collections::hash_map::RandomState,
    /// Read by every request, written when a token is first seen: a read-write lock.
    map: RwLock<HashMap<String, CachedToken>>,
}

struct CachedToken {
    /// SipHash of the presented token (0 and `None` when there was none).
    check: u64,
    token: Option<Arc<str>>,
    accessor: Arc<str>,
}

/// The hashes of one request's token and accessor.
pub(crate) struct TokenHashes {
    pub token: Option<Arc<str>>,
    pub accessor: Arc<str>,
}

impl Hasher {
    pub fn new(key: SecretBox<Vec<u8>>) -> Hasher {
        let prepared = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret())
            .expect("HMAC accepts any key length");
        Hasher {
            key,
            prepared,
            tokens: TokenCache {
                check: std::collections::hash_map::RandomState::new(),
                map: RwLock::new(HashMap::new()),
            },
        }
    }

    /// The hashes of a presented token and its accessor, from the cache when this token was
    /// seen before.
    pub(crate) fn token_hashes(&self, token: Option<&str>, accessor: &str) -> TokenHashes {
        let check = token.map_or(0, |t| {
            let mut h = self.tokens.check.build_hasher();
            h.write(t.as_bytes());
            h.finish()
        });
        {
            let map = self
                .tokens
                .map
                .read()
                .expect("audit token cache lock is not poisoned");
            if let Some(c) = map.get(accessor) {
                if c.check == check && c.token.is_some() == token.is_some() {
                    return TokenHashes {
                        token: c.token.clone(),
                        accessor: c.accessor.clone(),
                    };
                }
            }
        }
        let hashes = TokenHashes {
            token: token.map(|t| Arc::from(self.hash(t))),
            accessor: Arc::from(self.hash(accessor)),
        };
        let mut map = self
            .tokens
            .map
            .write()
            .expect("audit token cache lock is not poisoned");
        if map.len() >= TOKEN_CACHE_CAPACITY && !map.contains_key(accessor) {
            map.clear();
        }
        map.insert(
            accessor.to_owned(),
            CachedToken {
                check,
                token: hashes.token.clone(),
                accessor: hashes.accessor.clone(),
            },
        );
        hashes
    }

    /// `hmac-sha256:<hex>` of `value`, as `sys/audit-hash` and the entries show it.
    pub fn hash(&self, value: &str) -> String {
        self.hash_text(value).as_str().to_owned()
    }

    /// The same, without allocating (entries hash every string they hold).
    fn hash_text(&self, value: &str) -> HashText {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.prepared.clone();
        mac.update(value.as_bytes());
        let mut text = [0; HASH_TEXT_LEN];
        text[..HMAC_PREFIX.len()].copy_from_slice(HMAC_PREFIX.as_bytes());
        let hex = &mut text[HMAC_PREFIX.len()..];
        for (i, b) in mac.finalize().into_bytes().iter().enumerate() {
            hex[2 * i] = DIGITS[usize::from(b >> 4)];
            hex[2 * i + 1] = DIGITS[usize::from(b & 15)];
        }
        HashText(text)
    }

    /// A key derived from this one for `purpose` (the chain key): exporting it reveals nothing
    /// that would let its holder test guesses against the hashed values.
    pub fn derive(&self, purpose: &str) -> SecretBox<Vec<u8>> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose_secret())
            .expect("HMAC accepts any key length");
        mac.update(purpose.as_bytes());
        SecretBox::new(Box::new(mac.finalize().into_bytes().to_vec()))
    }

    /// Replaces every string inside `value` by its hash, in place.
    pub fn hash_value(&self, value: &mut Value) {
        match value {
            Value::String(s) => *s = self.hash(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.hash_value(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.hash_value(v)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

const HASH_TEXT_LEN: usize = HMAC_PREFIX.len() + 64;

/// `hmac-sha256:<hex>`, kept on the stack.
struct HashText([u8; HASH_TEXT_LEN]);

impl HashText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a prefix and hex digits are ASCII")
    }
}

/// Lowercase hex of `bytes`, appended to `out` (the `hex` crate's iterator is slow on the hot
/// path).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

/// A JSON object serialized with every string hashed (unless `raw`), without copying it.
#[derive(Clone, Copy)]
struct HashedMap<'a> {
    map: &'a Map<String, Value>,
    hasher: &'a Hasher,
    raw: bool,
}

#[derive(Clone, Copy)]
struct Hashed<'a> {
    value: &'a Value,
    hasher: &'a Hasher,
    raw: bool,
}

impl Serialize for HashedMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut out = s.serialize_map(Some(self.map.len()))?;
        for (k, v) in self.map {
            out.serialize_entry(
                k,
                &Hashed {
                    value: v,
                    hasher: self.hasher,
                    raw: self.raw,
                },
            )?;
        }
        out.end()
    }
}

impl Serialize for Hashed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self.value {
            Value::String(v) if !self.raw => s.serialize_str(self.hasher.hash_text(v).as_str()),
            Value::Array(items) => {
                let mut out = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Hashed {
                        value: item,
                        ..*self
                    })?;
                }
                out.end()
            }
            Value::Object(map) => HashedMap {
                map,
                hasher: self.hasher,
                raw: self.raw,
            }
            .serialize(s),
            other => other.serialize(s),
        }
    }
}

/// How a device formats its entries (`log_raw`, `hmac_accessor`).
#[derive(Debug, Clone, Copy)]
pub struct FormatOptions {
    pub log_raw: bool,
    pub hmac_accessor: bool,
}

/// Serialises what a request's two entries share, `"auth":{...},"request":{...}`, for one
/// device, appended to `out`: formatted once, when the request is recorded, and reused for its
/// response entry (the request itself has moved on to its backend by then).
pub fn format_context(
    record: &AuditRecord<'_>,
    hasher: &Hasher,
    opts: FormatOptions,
    out: &mut Vec<u8>,
) {
    let raw_accessor = opts.log_raw || !opts.hmac_accessor;
    let secret = |v| hashed_or_raw(v, opts.log_raw, hasher);
    let accessor = |v| hashed_or_raw(v, raw_accessor, hasher);
    let hash_data = |map| HashedMap {
        map,
        hasher,
        raw: opts.log_raw,
    };

    let req = record.request;
    let route = record.route;
    let now = Utc::now();
    // The token and its accessor appear twice in the context, and a client sends the same token
    // many times: hashed once, from the device's cache.
    let cached = match record.token {
        Some(live) if !opts.log_raw => {
            Some(hasher.token_hashes(record.client_token, &live.entry.accessor))
        }
        _ => None,
    };
    let token_text = |t| match &cached {
        Some(c) => match &c.token {
            Some(h) => Str::Shared(h.clone()),
            None => secret(t),
        },
        None => secret(t),
    };
    let accessor_text = |a| match &cached {
        Some(c) if !raw_accessor => Str::Shared(c.accessor.clone()),
        _ => accessor(a),
    };
    let auth = match record.token {
        Some(live) => {
            let e = &live.entry;
            AuthEntry {
                client_token: record.client_token.map(token_text),
                accessor: Some(accessor_text(&e.accessor)),
                display_name: Some(&e.display_name),
                policies: Some(&e.policies),
                token_policies: Some(&e.policies),
                metadata: e.meta.as_ref().filter(|m| !m.is_empty()),
                entity_id: (!e.entity_id.is_empty()).then_some(e.entity_id.as_str()),
                token_type: "service",
                token_ttl: Some(crate::token::remaining(e.expire_time, now)),
                token_issue_time: Some(Timestamp(e.creation_time, SecondsFormat::Secs)),
            }
        }
        None => AuthEntry {
            token_type: "default",
            ..AuthEntry::default()
        },
    };
    let request = RequestEntry {
        id: &req.id,
        operation: req.operation.as_str(),
        mount_point: &route.path,
        mount_type: &route.entry.mount_type,
        mount_accessor: &route.entry.accessor,
        mount_class: mount_class(route),
        client_token: record.client_token.filter(|t| !t.is_empty()).map(|t| {
            if record.token.is_some() {
                token_text(t)
            } else {
                secret(t)
            }
        }),
        client_token_accessor: record.token.map(|l| accessor_text(&l.entry.accessor)),
        namespace: Namespace { id: "root" },
        path: &req.path,
        data: (!req.data.is_empty()).then(|| hash_data(&req.data)),
        remote_address: req.remote_addr.as_deref(),
    };
    out.extend_from_slice(b"\"auth\":");
    serde_json::to_writer(&mut *out, &auth).expect("an audit entry's auth serializes");
    out.extend_from_slice(b",\"request\":");
    serde_json::to_writer(&mut *out, &request).expect("an audit entry's request serializes");
}

/// Serialises the entry of a request before it runs (`denied`: why it will not), appended to
/// `out` (a buffer the caller reuses); `context` comes from [`format_context`].
pub fn format_request(context: &[u8], denied: Option<&Error>, out: &mut Vec<u8>) {
    open_entry("request", context, out);
    if let Some(e) = denied {
        out.extend_from_slice(b",\"error\":");
        serde_json::to_writer(&mut *out, &e.to_string()).expect("a string serializes");
    }
    out.push(b'}');
}

/// Serialises the entry of a request's outcome, appended to `out`.
pub fn format_response(
    context: &[u8],
    route: &Route,
    outcome: Result<&Option<Response>, &Error>,
    hasher: &Hasher,
    opts: FormatOptions,
    out: &mut Vec<u8>,
) {
    let raw_accessor = opts.log_raw || !opts.hmac_accessor;
    let secret = |v| hashed_or_raw(v, opts.log_raw, hasher);
    let accessor = |v| hashed_or_raw(v, raw_accessor, hasher);
    let mut response = ResponseEntry {
        mount_point: &route.path,
        mount_type: &route.entry.mount_type,
        mount_accessor: &route.entry.accessor,
        mount_class: mount_class(route),
        ..ResponseEntry::default()
    };
    let error = match outcome {
        Ok(Some(resp)) => {
            response.data = resp.data.as_ref().map(|map| HashedMap {
                map,
                hasher,
                raw: opts.log_raw,
            });
            response.auth = resp.auth.as_ref().map(|a| ResponseAuth {
                client_token: (!a.client_token.is_empty()).then(|| secret(&a.client_token)),
                accessor: (!a.accessor.is_empty()).then(|| accessor(&a.accessor)),
                policies: &a.policies,
                token_policies: &a.token_policies,
                metadata: a.metadata.as_ref().filter(|m| !m.is_empty()),
                entity_id: (!a.entity_id.is_empty()).then_some(a.entity_id.as_str()),
                token_type: &a.token_type,
                lease_duration: a.lease_duration,
            });
            response.secret = resp.lease.as_ref().map(|l| LeaseEntry {
                lease_id: &l.lease_id,
            });
            response.warnings = (!resp.warnings.is_empty()).then_some(&resp.warnings[..]);
            None
        }
        Ok(None) => None,
        // OpenBao's multierror wording in response entries.
        Err(e) => Some(format!("1 error occurred:\n\t* {e}\n\n")),
    };
    open_entry("response", context, out);
    out.extend_from_slice(b",\"response\":");
    serde_json::to_writer(&mut *out, &response).expect("an audit entry's response serializes");
    if let Some(e) = error {
        out.extend_from_slice(b",\"error\":");
        serde_json::to_writer(&mut *out, &e).expect("a string serializes");
    }
    out.push(b'}');
}

/// `{"time":"...","type":"<kind>",` and the shared context: an entry without its closing brace.
fn open_entry(kind: &str, context: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"time\":");
    serde_json::to_writer(&mut *out, &Timestamp(Utc::now(), SecondsFormat::Nanos))
        .expect("a time serializes");
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(context);
}

fn mount_class(route: &Route) -> &'static str {
    match route.entry.table {
        crate::mount::Table::Auth => "auth",
        crate::mount::Table::Secrets => "secret",
    }
}

/// `v` itself when raw, else its hash.
fn hashed_or_raw<'a>(v: &'a str, raw: bool, hasher: &Hasher) -> Str<'a> {
    if raw {
        Str::Borrowed(v)
    } else {
        Str::Hash(hasher.hash_text(v))
    }
}

/// An RFC 3339 UTC time (`Z`), written straight into the entry: `to_rfc3339_opts` would
/// allocate a string for each of the two times of every entry, and `write!` formatting of
/// seven numbers showed in profiles.
#[derive(Clone, Copy)]
struct Timestamp(DateTime<Utc>, SecondsFormat);

impl Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS[.nnnnnnnnn]Z` into `out`; the length written.
    fn encode(&self, out: &mut [u8; 30]) -> usize {
        fn digits(out: &mut [u8], mut n: u32) {
            for d in out.iter_mut().rev() {
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
        let Timestamp(t, precision) = *self;
        // Years past 9999 do not occur in entries; they would print modulo 10000.
        digits(&mut out[0..4], t.year().unsigned_abs());
        out[4] = b'-';
        digits(&mut out[5..7], t.month());
        out[7] = b'-';
        digits(&mut out[8..10], t.day());
        out[10] = b'T';
        digits(&mut out[11..13], t.hour());
        out[13] = b':';
        digits(&mut out[14..16], t.minute());
        out[16] = b':';
        digits(&mut out[17..19], t.second());
        let mut len = 19;
        if precision == SecondsFormat::Nanos {
            out[19] = b'.';
            // chrono marks a leap second by nanoseconds past 1e9: shown here as second 59.
            digits(&mut out[20..29], t.nanosecond() % 1_000_000_000);
            len = 29;
        }
        out[len] = b'Z';
        len + 1
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0; 30];
        let len = self.encode(&mut buf);
        s.serialize_str(std::str::from_utf8(&buf[..len]).expect("digits and separators are ASCII"))
    }
}

/// A string of an entry: borrowed from the request, a cached hash, or made for this entry.
enum Str<'a> {
    Borrowed(&'a str),
    Shared(Arc<str>),
    Hash(HashText),
}

impl Serialize for Str<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Str::Borrowed(v) => v,
            Str::Shared(v) => v,
            Str::Hash(v) => v.as_str(),
        })
    }
}

#[derive(Serialize, Default)]
struct AuthEntry<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accessor: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policies: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_policies: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_id: Option<&'a str>,
    token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_ttl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_issue_time: Option<Timestamp>,
}

#[derive(Serialize)]
struct Namespace {
    id: &'static str,
}

#[derive(Serialize)]
struct RequestEntry<'a> {
    id: &'a str,
    operation: &'static str,
    mount_point: &'a str,
    mount_type: &'a str,
    mount_accessor: &'a str,
    mount_class: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token_accessor: Option<Str<'a>>,
    namespace: Namespace,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<HashedMap<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_address: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct ResponseEntry<'a> {
    mount_point: &'a str,
    mount_type: &'a str,
    mount_accessor: &'a str,
    mount_class: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<ResponseAuth<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<LeaseEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<HashedMap<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a [String]>,
}

#[derive(Serialize)]
struct ResponseAuth<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accessor: Option<Str<'a>>,
    policies: &'a [String],
    token_policies: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_id: Option<&'a str>,
    token_type: &'a str,
    lease_duration: u64,
}

#[derive(Serialize)]
struct LeaseEntry<'a> {
    lease_id: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> Hasher {
        Hasher::new(SecretBox::new(Box::new(b"0123456789abcdef".to_vec())))
    }

    #[test]
    fn hash_matches_hmac_sha256_test_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let h = Hasher::new(SecretBox::new(Box::new(b"Jefe".to_vec())));
        assert_eq!(
            h.hash("what do ya want for nothing?"),
            "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hashes_every_string_but_not_numbers_or_booleans() {
        let h = hasher();
        let mut v = serde_json::json!({
            "a": "MARKER", "n": 5, "b": true, "list": ["x", 1], "nested": {"k": "y"}, "z": null
        });
        h.hash_value(&mut v);
        let text = v.to_string();
        assert!(!text.contains("MARKER"));
        assert_eq!(v["n"], 5);
        assert_eq!(v["b"], true);
        assert_eq!(v["list"][1], 1);
        assert_eq!(v["list"][0], h.hash("x"));
        assert_eq!(v["nested"]["k"], h.hash("y"));
        assert!(v["z"].is_null());
    }

    #[test]
    fn hashed_serialization_equals_hashing_a_copy() {
        let h = hasher();
        let v = serde_json::json!({"a": "x", "l": ["y", 2, {"z": "w"}], "n": null, "b": false});
        let Value::Object(map) = &v else {
            unreachable!()
        };
        let streamed = serde_json::to_value(HashedMap {
            map,
            hasher: &h,
            raw: false,
        })
        .unwrap();
        let mut copied = v.clone();
        h.hash_value(&mut copied);
        assert_eq!(streamed, copied);
        let raw = serde_json::to_value(HashedMap {
            map,
            hasher: &h,
            raw: true,
        })
        .unwrap();
        assert_eq!(raw, v);
    }

    #[test]
    fn cached_token_hashes_equal_fresh_ones_and_follow_the_presented_token() {
        let h = hasher();
        let first = h.token_hashes(Some("s.token"), "acc1");
        assert_eq!(&*first.token.unwrap(), h.hash("s.token"));
        assert_eq!(&*first.accessor, h.hash("acc1"));
        // Served from the cache: still the same values.
        let again = h.token_hashes(Some("s.token"), "acc1");
        assert_eq!(&*again.token.unwrap(), h.hash("s.token"));
        // Another token string presented for the same accessor is hashed afresh.
        let other = h.token_hashes(Some("hvs.token"), "acc1");
        assert_eq!(&*other.token.unwrap(), h.hash("hvs.token"));
        assert!(h.token_hashes(None, "acc1").token.is_none());
        // A full cache starts over instead of growing.
        for i in 0..TOKEN_CACHE_CAPACITY + 10 {
            let t = format!("t{i}");
            let got = h.token_hashes(Some(&t), &format!("a{i}"));
            assert_eq!(&*got.token.unwrap(), h.hash(&t));
        }
        assert!(h.tokens.map.read().unwrap().len() <= TOKEN_CACHE_CAPACITY);
    }

    #[test]
    fn derived_key_differs_from_the_key() {
        let h = hasher();
        let derived = h.derive("chain");
        assert_ne!(derived.expose_secret(), b"0123456789abcdef");
        assert_eq!(derived.expose_secret().len(), 32);
    }

    #[test]
    fn timestamps_match_rfc3339() {
        for t in [
            "2026-11-27T21:57:04.496908721Z",
            "2026-01-02T03:04:05Z",
            "1999-12-31T23:59:59.000000001Z",
        ] {
            let t: DateTime<Utc> = t.parse().unwrap();
            for precision in [SecondsFormat::Secs, SecondsFormat::Nanos] {
                let mut buf = [0; 30];
                let len = Timestamp(t, precision).encode(&mut buf);
                assert_eq!(
                    std::str::from_utf8(&buf[..len]).unwrap(),
                    t.to_rfc3339_opts(precision, true)
                );
            }
        }
    }
}
