//! The `token_*` fields every auth method's roles and users carry, after openbao
//! `sdk/helper/tokenutil`: parsed from a request, shown on read, and turned into the `Auth` of
//! a login. Deprecated spellings (`policies`, `ttl`, `period`...) are accepted when their
//! `token_` form is absent and shown back on read for as long as they were the last one set.

use std::collections::BTreeSet;

use coffer_sdk::framework::Fields;
use coffer_sdk::{Auth, Error};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::fields::{policies, string_list};

/// The token a login of a user or role gets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub(crate) struct TokenParams {
    pub(crate) token_policies: Vec<String>,
    /// Seconds; 0 = the mount's default.
    pub(crate) token_ttl: i64,
    pub(crate) token_max_ttl: i64,
    pub(crate) token_period: i64,
    pub(crate) token_explicit_max_ttl: i64,
    pub(crate) token_num_uses: i64,
    pub(crate) token_bound_cidrs: Vec<String>,
    pub(crate) token_no_default_policy: bool,
    pub(crate) token_type: String,
    /// Deprecated field names last used to set a value, echoed on read (`policies`, `ttl`).
    pub(crate) deprecated: BTreeSet<String>,
}

/// A deprecated field and the `token_` field it stands for.
pub(crate) type Alias = (&'static str, &'static str);

/// userpass's deprecated spellings.
pub(crate) const USERPASS_ALIASES: &[Alias] = &[
    ("policies", "token_policies"),
    ("ttl", "token_ttl"),
    ("max_ttl", "token_max_ttl"),
    ("bound_cidrs", "token_bound_cidrs"),
];

/// approle's deprecated spellings.
pub(crate) const APPROLE_ALIASES: &[Alias] =
    &[("policies", "token_policies"), ("period", "token_period")];

/// jwt's deprecated spellings.
pub(crate) const JWT_ALIASES: &[Alias] = &[
    ("policies", "token_policies"),
    ("ttl", "token_ttl"),
    ("max_ttl", "token_max_ttl"),
    ("period", "token_period"),
    ("num_uses", "token_num_uses"),
    ("bound_cidrs", "token_bound_cidrs"),
];

const TOKEN_TYPES: [&str; 5] = [
    "default",
    "service",
    "batch",
    "default-service",
    "default-batch",
];

impl TokenParams {
    /// Fresh parameters as OpenBao creates them: `token_type` "default", everything else unset.
    pub(crate) fn new() -> Self {
        TokenParams {
            token_type: "default".to_owned(),
            ..TokenParams::default()
        }
    }

    /// Applies the `token_*` fields (and the deprecated `aliases`) present in `data`, then
    /// checks the combination as tokenutil's `ParseTokenFields` does.
    pub(crate) fn update(
        &mut self,
        data: &Map<String, Value>,
        aliases: &[Alias],
    ) -> Result<(), Error> {
        let mut data = data.clone();
        for (old, new) in aliases {
            if data.contains_key(*new) {
                self.deprecated.remove(*old);
            } else if let Some(value) = data.get(*old).cloned() {
                data.insert((*new).to_owned(), value);
                self.deprecated.insert((*old).to_owned());
            }
        }
        let fields = Fields::new(&data);
        if let Some(list) = string_list(&data, "token_policies")? {
            self.token_policies = policies(list);
        }
        if let Some(list) = string_list(&data, "token_bound_cidrs")? {
            for item in &list {
                if crate::fields::validate_cidrs(std::slice::from_ref(item), "").is_err() {
                    return Err(Error::invalid(format!(
                        "error parsing address {item:?}: Unable to convert {item:?} to an IPv4 \
                         or IPv6 address, or a UNIX Socket"
                    )));
                }
            }
            self.token_bound_cidrs = list;
        }
        for (name, slot) in [
            ("token_ttl", &mut self.token_ttl),
            ("token_max_ttl", &mut self.token_max_ttl),
            ("token_period", &mut self.token_period),
            ("token_explicit_max_ttl", &mut self.token_explicit_max_ttl),
        ] {
            if let Some(secs) = fields.duration_secs(name, false)? {
                *slot = secs;
            }
        }
        if let Some(n) = fields.int("token_num_uses")? {
            if n < 0 {
                return Err(Error::invalid("'token_num_uses' cannot be negative"));
            }
            self.token_num_uses = n;
        }
        if let Some(b) = fields.bool("token_no_default_policy")? {
            self.token_no_default_policy = b;
        }
        if let Some(t) = fields.string("token_type")? {
            let t = if t.is_empty() {
                "default".to_owned()
            } else {
                t
            };
            if !TOKEN_TYPES.contains(&t.as_str()) {
                return Err(Error::invalid(format!("invalid 'token_type' value {t:?}")));
            }
            self.token_type = t;
        }
        if self.token_type.is_empty() {
            self.token_type = "default".to_owned();
        }
        if self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
            return Err(Error::invalid(
                "'token_ttl' cannot be greater than 'token_max_ttl'",
            ));
        }
        if self.token_period > 0 && matches!(self.token_type.as_str(), "batch" | "default-batch") {
            return Err(Error::invalid(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic \
                 tokens",
            ));
        }
        Ok(())
    }

    /// The fields a read shows, deprecated spellings included while in use.
    pub(crate) fn write_json(&self, out: &mut Map<String, Value>, aliases: &[Alias]) {
        out.insert("token_bound_cidrs".into(), json!(self.token_bound_cidrs));
        out.insert(
            "token_explicit_max_ttl".into(),
            json!(self.token_explicit_max_ttl),
        );
        out.insert("token_max_ttl".into(), json!(self.token_max_ttl));
        out.insert(
            "token_no_default_policy".into(),
            json!(self.token_no_default_policy),
        );
        out.insert("token_num_uses".into(), json!(self.token_num_uses));
        out.insert("token_period".into(), json!(self.token_period));
        out.insert("token_policies".into(), json!(self.token_policies));
        out.insert("token_strictly_bind_ip".into(), json!(false));
        out.insert("token_ttl".into(), json!(self.token_ttl));
        out.insert("token_type".into(), json!(self.token_type));
        for (old, new) in aliases {
            if self.deprecated.contains(*old) {
                if let Some(value) = out.get(*new).cloned() {
                    out.insert((*old).to_owned(), value);
                }
            }
        }
    }

    /// The `Auth` of a login under these parameters. `Auth` has no max TTL: a `token_max_ttl`
    /// caps the first TTL here and, as the token may not outlive it, becomes the explicit
    /// max TTL when that is unset or longer.
    pub(crate) fn auth(&self) -> Auth {
        let secs = |v: i64| u64::try_from(v).unwrap_or(0);
        let max_ttl = secs(self.token_max_ttl);
        let mut ttl = secs(self.token_ttl);
        let mut explicit_max_ttl = secs(self.token_explicit_max_ttl);
        if max_ttl > 0 {
            ttl = if ttl == 0 { max_ttl } else { ttl.min(max_ttl) };
            explicit_max_ttl = if explicit_max_ttl == 0 {
                max_ttl
            } else {
                explicit_max_ttl.min(max_ttl)
            };
        }
        Auth {
            policies: self.token_policies.clone(),
            token_policies: self.token_policies.clone(),
            lease_duration: ttl,
            renewable: true,
            num_uses: secs(self.token_num_uses),
            period: secs(self.token_period),
            explicit_max_ttl,
            bound_cidrs: self.token_bound_cidrs.clone(),
            no_default_policy: self.token_no_default_policy,
            ..Auth::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn deprecated_fields_fill_token_fields_and_are_echoed() {
        let mut p = TokenParams::new();
        p.update(
            &map(json!({"policies": "B,a", "ttl": "1h"})),
            USERPASS_ALIASES,
        )
        .unwrap();
        assert_eq!(p.token_policies, ["a", "b"]);
        assert_eq!(p.token_ttl, 3600);
        let mut out = Map::new();
        p.write_json(&mut out, USERPASS_ALIASES);
        assert_eq!(out["policies"], json!(["a", "b"]));
        assert_eq!(out["ttl"], json!(3600));
        p.update(&map(json!({"token_policies": "c"})), USERPASS_ALIASES)
            .unwrap();
        let mut out = Map::new();
        p.write_json(&mut out, USERPASS_ALIASES);
        assert!(!out.contains_key("policies"));
        assert_eq!(out["token_policies"], json!(["c"]));
    }

    #[test]
    fn invalid_combinations_are_refused_with_openbao_texts() {
        let mut p = TokenParams::new();
        let err = p
            .update(&map(json!({"token_ttl": "2h", "token_max_ttl": "1h"})), &[])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "'token_ttl' cannot be greater than 'token_max_ttl'"
        );
        let mut p = TokenParams::new();
        assert_eq!(
            p.update(&map(json!({"token_type": "weird"})), &[])
                .unwrap_err()
                .to_string(),
            "invalid 'token_type' value \"weird\""
        );
        assert!(p.update(&map(json!({"token_num_uses": -1})), &[]).is_err());
        assert!(p
            .update(&map(json!({"token_bound_cidrs": "bad"})), &[])
            .is_err());
    }

    #[test]
    fn auth_carries_the_limits() {
        let mut p = TokenParams::new();
        p.update(
            &map(
                json!({"token_policies": "a", "token_ttl": 60, "token_max_ttl": 30,
                        "token_num_uses": 2, "token_bound_cidrs": "10.0.0.0/8"}),
            ),
            &[],
        )
        .unwrap_err();
        p.update(
            &map(
                json!({"token_policies": "a", "token_ttl": 60, "token_max_ttl": 90,
                        "token_num_uses": 2, "token_bound_cidrs": "10.0.0.0/8"}),
            ),
            &[],
        )
        .unwrap();
        let auth = p.auth();
        assert_eq!(auth.policies, ["a"]);
        assert_eq!(auth.lease_duration, 60);
        assert_eq!(auth.explicit_max_ttl, 90);
        assert_eq!(auth.num_uses, 2);
        assert_eq!(auth.bound_cidrs, ["10.0.0.0/8"]);
        assert!(auth.renewable);
    }
}
