//! A stored token: everything about it except the token itself, which is kept only as a hash.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use coffer_sdk::RequestAuth;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenEntry {
    /// The salted hash of the token id: the storage key. Not the token.
    pub hash: String,
    pub accessor: String,
    /// The parent's hash; `None` for orphans.
    pub parent: Option<String>,
    pub policies: Vec<String>,
    pub path: String,
    pub meta: Option<BTreeMap<String, String>>,
    pub display_name: String,
    pub num_uses: u64,
    pub creation_time: DateTime<Utc>,
    /// The TTL the token was created (or last renewed) with, in seconds; 0 = no expiry.
    pub ttl: u64,
    pub explicit_max_ttl: u64,
    pub expire_time: Option<DateTime<Utc>>,
    pub renewable: bool,
    pub period: u64,
    pub entity_id: String,
    /// CIDRs the token may be used from; empty means anywhere.
    #[serde(default)]
    pub bound_cidrs: Vec<String>,
    /// A response-wrapping token: good only for `sys/wrapping/*`, once.
    #[serde(default)]
    pub wrapping: bool,
}

impl TokenEntry {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expire_time.is_some_and(|t| t <= now)
    }

    /// Whether a request from `remote` (an `ip` or `ip:port`) may use this token.
    pub fn allows_address(&self, remote: Option<&str>) -> bool {
        if self.bound_cidrs.is_empty() {
            return true;
        }
        let Some(ip) = remote.and_then(parse_ip) else {
            return false;
        };
        self.bound_cidrs.iter().any(|cidr| {
            cidr.parse::<ipnet::IpNet>()
                .map(|net| net.contains(&ip))
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(|one| one == ip))
                .unwrap_or(false)
        })
    }

    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// The facts of this token that a request carries.
    pub fn request_auth(&self) -> RequestAuth {
        RequestAuth {
            accessor: self.accessor.clone(),
            token_hash: self.hash.clone(),
            display_name: self.display_name.clone(),
            policies: self.policies.clone(),
            entity_id: self.entity_id.clone(),
            metadata: self.meta.clone().unwrap_or_default(),
        }
    }

    /// The `data` of a token lookup, as OpenBao shows it. `id` is the token when the caller
    /// presented it, empty for a lookup by accessor.
    pub fn lookup_data(&self, id: &str, now: DateTime<Utc>) -> Map<String, Value> {
        let data = json!({
            "accessor": self.accessor,
            "creation_time": self.creation_time.timestamp(),
            "creation_ttl": self.ttl,
            "display_name": self.display_name,
            "entity_id": self.entity_id,
            "expire_time": self.expire_time.map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true)),
            "explicit_max_ttl": self.explicit_max_ttl,
            "id": id,
            "issue_time": self.creation_time.to_rfc3339_opts(SecondsFormat::Nanos, true),
            "meta": self.meta,
            "num_uses": self.num_uses,
            "orphan": self.parent.is_none(),
            "path": self.path,
            "policies": self.policies,
            "renewable": self.renewable,
            "ttl": super::remaining(self.expire_time, now),
            "type": "service",
        });
        match data {
            Value::Object(map) => map,
            _ => unreachable!("json! of an object literal is an object"),
        }
    }
}

fn parse_ip(remote: &str) -> Option<std::net::IpAddr> {
    remote
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| remote.parse())
        .ok()
}
