//! One audit entry in OpenBao's JSON format (`type` request/response, `time`, `auth`, `request`,
//! `response`, `error`), with every token and every string of request and response data
//! replaced by `hmac-sha256:<hex>` under the device's key.
//!
//! Copies the shape of OpenBao `audit/format_json.go` and `audit/hashstructure.go`: numbers and
//! booleans stay readable, strings (also inside arrays and nested objects) are hashed; paths,
//! policies, display names and metadata are not. Nothing here writes anything.

use std::collections::BTreeMap;

use chrono::{SecondsFormat, Utc};
use coffer_sdk::{Error, Response};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;

use super::AuditRecord;

/// The prefix OpenBao puts in front of every hashed value.
pub const HMAC_PREFIX: &str = "hmac-sha256:";

/// HMAC-SHA256 under one device's key. The keyed state is prepared once; each hash clones it.
pub struct Hasher {
    key: SecretBox<Vec<u8>>,
    prepared: Hmac<Sha256>,
}

impl Hasher {
    pub fn new(key: SecretBox<Vec<u8>>) -> Hasher {
        let prepared = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret())
            .expect("HMAC accepts any key length");
        Hasher { key, prepared }
    }

    /// `hmac-sha256:<hex>` of `value`, as `sys/audit-hash` and the entries show it.
    pub fn hash(&self, value: &str) -> String {
        let mut mac = self.prepared.clone();
        mac.update(value.as_bytes());
        let mut out = String::with_capacity(HMAC_PREFIX.len() + 64);
        out.push_str(HMAC_PREFIX);
        push_hex(&mut out, &mac.finalize().into_bytes());
        out
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
            Value::String(v) if !self.raw => s.serialize_str(&self.hasher.hash(v)),
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

/// What is logged: the request before it runs, or its outcome.
pub enum Stage<'a> {
    Request {
        denied: Option<&'a Error>,
    },
    Response {
        outcome: Result<&'a Option<Response>, &'a Error>,
    },
}

/// Serialises one entry for one device (without the chain, which its writer adds).
pub fn format(
    record: &AuditRecord<'_>,
    stage: &Stage<'_>,
    hasher: &Hasher,
    opts: FormatOptions,
) -> Vec<u8> {
    let secret = |v: &str| {
        if opts.log_raw {
            v.to_owned()
        } else {
            hasher.hash(v)
        }
    };
    let accessor = |v: &str| {
        if opts.log_raw || !opts.hmac_accessor {
            v.to_owned()
        } else {
            hasher.hash(v)
        }
    };
    let hash_data = |map| HashedMap {
        map,
        hasher,
        raw: opts.log_raw,
    };

    let req = record.request;
    let route = record.route;
    let now = Utc::now();
    let auth = match record.token {
        Some(live) => {
            let e = &live.entry;
            AuthEntry {
                client_token: record.client_token.map(secret),
                accessor: Some(accessor(&e.accessor)),
                display_name: Some(e.display_name.clone()),
                policies: Some(e.policies.clone()),
                token_policies: Some(e.policies.clone()),
                metadata: e.meta.clone().filter(|m| !m.is_empty()),
                entity_id: (!e.entity_id.is_empty()).then(|| e.entity_id.clone()),
                token_type: "service",
                token_ttl: Some(crate::token::remaining(e.expire_time, now)),
                token_issue_time: Some(e.creation_time.to_rfc3339_opts(SecondsFormat::Secs, true)),
            }
        }
        None => AuthEntry {
            token_type: "default",
            ..AuthEntry::default()
        },
    };
    let mount_class = match route.entry.table {
        crate::mount::Table::Auth => "auth",
        crate::mount::Table::Secrets => "secret",
    };
    let request = RequestEntry {
        id: &req.id,
        operation: req.operation.as_str(),
        mount_point: &route.path,
        mount_type: &route.entry.mount_type,
        mount_accessor: &route.entry.accessor,
        mount_class,
        client_token: record.client_token.filter(|t| !t.is_empty()).map(secret),
        client_token_accessor: record.token.map(|l| accessor(&l.entry.accessor)),
        namespace: Namespace { id: "root" },
        path: &req.path,
        data: (!req.data.is_empty()).then(|| hash_data(&req.data)),
        remote_address: req.remote_addr.as_deref(),
    };
    let (kind, response, error) = match stage {
        Stage::Request { denied } => ("request", None, denied.map(|e| e.to_string())),
        Stage::Response { outcome } => {
            let mut out = ResponseEntry {
                mount_point: &route.path,
                mount_type: &route.entry.mount_type,
                mount_accessor: &route.entry.accessor,
                mount_class,
                ..ResponseEntry::default()
            };
            let error = match outcome {
                Ok(Some(resp)) => {
                    out.data = resp.data.as_ref().map(hash_data);
                    out.auth = resp.auth.as_ref().map(|a| ResponseAuth {
                        client_token: (!a.client_token.is_empty()).then(|| secret(&a.client_token)),
                        accessor: (!a.accessor.is_empty()).then(|| accessor(&a.accessor)),
                        policies: a.policies.clone(),
                        token_policies: a.token_policies.clone(),
                        metadata: a.metadata.clone().filter(|m| !m.is_empty()),
                        entity_id: (!a.entity_id.is_empty()).then(|| a.entity_id.clone()),
                        token_type: a.token_type.clone(),
                        lease_duration: a.lease_duration,
                    });
                    out.secret = resp.lease.as_ref().map(|l| LeaseEntry {
                        lease_id: l.lease_id.clone(),
                    });
                    out.warnings = (!resp.warnings.is_empty()).then(|| resp.warnings.clone());
                    None
                }
                Ok(None) => None,
                // OpenBao's multierror wording in response entries.
                Err(e) => Some(format!("1 error occurred:\n\t* {e}\n\n")),
            };
            ("response", Some(out), error)
        }
    };
    let entry = Entry {
        time: now.to_rfc3339_opts(SecondsFormat::Nanos, true),
        kind,
        auth,
        request,
        response,
        error,
    };
    serde_json::to_vec(&entry).expect("an audit entry of strings, numbers and maps serializes")
}

#[derive(Serialize)]
struct Entry<'a> {
    time: String,
    #[serde(rename = "type")]
    kind: &'static str,
    auth: AuthEntry,
    request: RequestEntry<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<ResponseEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize, Default)]
struct AuthEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accessor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policies: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_policies: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_id: Option<String>,
    token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_ttl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_issue_time: Option<String>,
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
    client_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token_accessor: Option<String>,
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
    auth: Option<ResponseAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<LeaseEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<HashedMap<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}

#[derive(Serialize)]
struct ResponseAuth {
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accessor: Option<String>,
    policies: Vec<String>,
    token_policies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_id: Option<String>,
    token_type: String,
    lease_duration: u64,
}

#[derive(Serialize)]
struct LeaseEntry {
    lease_id: String,
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
    fn derived_key_differs_from_the_key() {
        let h = hasher();
        let derived = h.derive("chain");
        assert_ne!(derived.expose_secret(), b"0123456789abcdef");
        assert_eq!(derived.expose_secret().len(), 32);
    }
}
