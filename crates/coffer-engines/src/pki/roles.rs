//! Roles (`roles/<name>`): the policy a certificate request is checked against, with OpenBao's
//! field names and defaults (`path_roles.go`). A role is one storage entry, `role/<name>`, and
//! reads back exactly the fields OpenBao returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Response, Storage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::keys::KeyType;
use super::store::{get_json, put_json};

pub(crate) const ROLE_PREFIX: &str = "role/";

/// A role as stored and as read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Role {
    pub(crate) allow_any_name: bool,
    pub(crate) allow_bare_domains: bool,
    pub(crate) allow_glob_domains: bool,
    pub(crate) allow_ip_sans: bool,
    pub(crate) allow_localhost: bool,
    pub(crate) allow_subdomains: bool,
    pub(crate) allow_wildcard_certificates: bool,
    pub(crate) allowed_domains: Vec<String>,
    pub(crate) allowed_other_sans: Vec<String>,
    pub(crate) allowed_serial_numbers: Vec<String>,
    pub(crate) allowed_uri_sans: Vec<String>,
    pub(crate) allowed_user_ids: Vec<String>,
    pub(crate) basic_constraints_valid_for_non_ca: bool,
    pub(crate) client_flag: bool,
    pub(crate) code_signing_flag: bool,
    pub(crate) email_protection_flag: bool,
    pub(crate) server_flag: bool,
    pub(crate) enforce_hostnames: bool,
    pub(crate) ext_key_usage: Vec<String>,
    pub(crate) ext_key_usage_oids: Vec<String>,
    pub(crate) generate_lease: bool,
    pub(crate) issuer_ref: String,
    pub(crate) key_bits: i64,
    pub(crate) key_type: String,
    pub(crate) key_usage: Vec<String>,
    /// Seconds.
    pub(crate) max_ttl: i64,
    /// Seconds.
    pub(crate) ttl: i64,
    pub(crate) no_store: bool,
    /// Seconds subtracted from "now" for `notBefore`.
    pub(crate) not_before_duration: i64,
    pub(crate) require_cn: bool,
    pub(crate) use_csr_common_name: bool,
    pub(crate) use_csr_sans: bool,
    pub(crate) signature_bits: i64,
    pub(crate) use_pss: bool,
    pub(crate) country: Vec<String>,
    pub(crate) locality: Vec<String>,
    pub(crate) organization: Vec<String>,
    pub(crate) ou: Vec<String>,
    pub(crate) postal_code: Vec<String>,
    pub(crate) province: Vec<String>,
    pub(crate) street_address: Vec<String>,
    pub(crate) policy_identifiers: Vec<String>,
    pub(crate) cn_validations: Vec<String>,
    pub(crate) not_after: String,
}

impl Role {
    /// A role from a write request: every field absent takes OpenBao's default.
    pub(crate) fn from_fields(fields: &Fields<'_>) -> Result<Role, Error> {
        let flag = |name: &str, default: bool| -> Result<bool, Error> {
            Ok(fields.bool(name)?.unwrap_or(default))
        };
        let list = |name: &str| comma_strings(fields, name);
        let key_type = fields
            .string("key_type")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "rsa".to_owned());
        let key_bits = fields.int("key_bits")?.unwrap_or(0);
        let key_bits = if key_type == "any" {
            key_bits
        } else {
            i64::from(KeyType::parse(&key_type)?.normalize_bits(key_bits)?)
        };
        let ttl = fields.duration_secs("ttl", false)?.unwrap_or(0);
        let max_ttl = fields.duration_secs("max_ttl", false)?.unwrap_or(0);
        if max_ttl > 0 && ttl > max_ttl {
            return Err(Error::invalid(
                r#""ttl" value must be less than "max_ttl" value"#,
            ));
        }
        let key_usage = match fields.raw("key_usage") {
            None => vec![
                "DigitalSignature".to_owned(),
                "KeyAgreement".to_owned(),
                "KeyEncipherment".to_owned(),
            ],
            Some(_) => list("key_usage")?,
        };
        for usage in &key_usage {
            key_usage_from_name(usage)
                .ok_or_else(|| Error::invalid(format!("unrecognized key usage {usage}")))?;
        }
        let ext_key_usage = list("ext_key_usage")?;
        for usage in &ext_key_usage {
            ext_key_usage_from_name(usage).ok_or_else(|| {
                Error::invalid(format!("unrecognized extended key usage {usage}"))
            })?;
        }
        let ext_key_usage_oids = list("ext_key_usage_oids")?;
        for oid in &ext_key_usage_oids {
            parse_oid(oid).ok_or_else(|| {
                Error::invalid(format!("{oid} is not a valid extended key usage OID"))
            })?;
        }
        let cn_validations = match fields.raw("cn_validations") {
            None => vec!["email".to_owned(), "hostname".to_owned()],
            Some(_) => list("cn_validations")?,
        };
        Ok(Role {
            allow_any_name: flag("allow_any_name", false)?,
            allow_bare_domains: flag("allow_bare_domains", false)?,
            allow_glob_domains: flag("allow_glob_domains", false)?,
            allow_ip_sans: flag("allow_ip_sans", true)?,
            allow_localhost: flag("allow_localhost", true)?,
            allow_subdomains: flag("allow_subdomains", false)?,
            allow_wildcard_certificates: flag("allow_wildcard_certificates", true)?,
            allowed_domains: list("allowed_domains")?,
            allowed_other_sans: list("allowed_other_sans")?,
            allowed_serial_numbers: list("allowed_serial_numbers")?,
            allowed_uri_sans: list("allowed_uri_sans")?,
            allowed_user_ids: list("allowed_user_ids")?,
            basic_constraints_valid_for_non_ca: flag("basic_constraints_valid_for_non_ca", false)?,
            client_flag: flag("client_flag", true)?,
            code_signing_flag: flag("code_signing_flag", false)?,
            email_protection_flag: flag("email_protection_flag", false)?,
            server_flag: flag("server_flag", true)?,
            enforce_hostnames: flag("enforce_hostnames", true)?,
            ext_key_usage,
            ext_key_usage_oids,
            generate_lease: flag("generate_lease", false)?,
            issuer_ref: fields
                .string("issuer_ref")?
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
            key_bits,
            key_type,
            key_usage,
            max_ttl,
            ttl,
            no_store: flag("no_store", false)?,
            not_before_duration: fields
                .duration_secs("not_before_duration", false)?
                .unwrap_or(30),
            require_cn: flag("require_cn", true)?,
            use_csr_common_name: flag("use_csr_common_name", true)?,
            use_csr_sans: flag("use_csr_sans", true)?,
            signature_bits: fields.int("signature_bits")?.unwrap_or(0),
            use_pss: flag("use_pss", false)?,
            country: list("country")?,
            locality: list("locality")?,
            organization: list("organization")?,
            ou: list("ou")?,
            postal_code: list("postal_code")?,
            province: list("province")?,
            street_address: list("street_address")?,
            policy_identifiers: list("policy_identifiers")?,
            cn_validations,
            not_after: fields.string("not_after")?.unwrap_or_default(),
        })
    }

    /// The role as OpenBao reads it back (with the fields coffer stores but does not act on
    /// shown with their fixed values).
    pub(crate) fn to_response(&self) -> Result<Response, Error> {
        let mut resp = Response::from_serialize(self)?;
        if let Some(data) = resp.data.as_mut() {
            for (k, v) in [
                ("allow_token_displayname", Value::Bool(false)),
                ("allow_globs_in_identity_templates", Value::Bool(false)),
                ("allowed_domains_template", Value::Bool(false)),
                ("allowed_uri_sans_template", Value::Bool(false)),
                ("allowed_ip_sans_cidr", Value::Array(Vec::new())),
                ("not_after_bound", Value::from("permit")),
                ("not_before", Value::from("")),
                ("not_before_bound", Value::from("permit")),
            ] {
                data.insert(k.to_owned(), v);
            }
        }
        Ok(resp)
    }
}

/// Parsed roles by name, so that `issue` and `sign` neither read nor decode storage for their
/// role. Dropped whole on any role write or delete (here, or on another node through
/// `invalidate`); a generation counter keeps a load that raced a change from caching stale data.
#[derive(Default)]
pub(crate) struct RoleCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Arc<Role>>>,
}

impl RoleCache {
    /// The role `name`, loaded once; a missing role is not remembered.
    pub(crate) async fn get(
        &self,
        storage: &dyn Storage,
        name: &str,
    ) -> Result<Option<Arc<Role>>, Error> {
        if let Some(role) = self.lock().get(name) {
            return Ok(Some(role.clone()));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let Some(role) = get_role(storage, name).await? else {
            return Ok(None);
        };
        let role = Arc::new(role);
        let mut entries = self.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            entries.insert(name.to_owned(), role.clone());
        }
        Ok(Some(role))
    }

    /// Forgets every role: called after any role changes.
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Role>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads a role.
pub(crate) async fn get_role(storage: &dyn Storage, name: &str) -> Result<Option<Role>, Error> {
    get_json(storage, &format!("{ROLE_PREFIX}{name}")).await
}

/// Stores a role.
pub(crate) async fn put_role(storage: &dyn Storage, name: &str, role: &Role) -> Result<(), Error> {
    put_json(storage, &format!("{ROLE_PREFIX}{name}"), role).await
}

/// The key usages rcgen knows, by OpenBao's names (case-insensitive, as OpenBao accepts them).
pub(crate) fn key_usage_from_name(name: &str) -> Option<rcgen::KeyUsagePurpose> {
    use rcgen::KeyUsagePurpose as K;
    Some(match name.to_ascii_lowercase().as_str() {
        "digitalsignature" => K::DigitalSignature,
        "contentcommitment" | "nonrepudiation" => K::ContentCommitment,
        "keyencipherment" => K::KeyEncipherment,
        "dataencipherment" => K::DataEncipherment,
        "keyagreement" => K::KeyAgreement,
        "certsign" => K::KeyCertSign,
        "crlsign" => K::CrlSign,
        "encipheronly" => K::EncipherOnly,
        "decipheronly" => K::DecipherOnly,
        _ => return None,
    })
}

/// The extended key usages by OpenBao's names.
pub(crate) fn ext_key_usage_from_name(name: &str) -> Option<rcgen::ExtendedKeyUsagePurpose> {
    use rcgen::ExtendedKeyUsagePurpose as E;
    Some(match name.to_ascii_lowercase().as_str() {
        "any" => E::Any,
        "serverauth" => E::ServerAuth,
        "clientauth" => E::ClientAuth,
        "codesigning" => E::CodeSigning,
        "emailprotection" => E::EmailProtection,
        "timestamping" => E::TimeStamping,
        "ocspsigning" => E::OcspSigning,
        _ => return None,
    })
}

/// A dotted OID (`1.3.6.1.5.5.7.3.1`) as its arcs.
pub(crate) fn parse_oid(oid: &str) -> Option<Vec<u64>> {
    let arcs: Option<Vec<u64>> = oid.split('.').map(|a| a.parse().ok()).collect();
    arcs.filter(|a| a.len() >= 2)
}

/// OpenBao's `TypeCommaStringSlice`: an array of strings or one comma-separated string;
/// absent reads as empty; empty items are dropped.
pub(crate) fn comma_strings(fields: &Fields<'_>, name: &str) -> Result<Vec<String>, Error> {
    let items = match fields.raw(name) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_owned()).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| coffer_sdk::framework::weak_string(v).map(|s| s.trim().to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|detail| {
                Error::invalid(format!(
                    "error converting input for field {name:?}: {detail}"
                ))
            })?,
        Some(other) => vec![coffer_sdk::framework::weak_string(other).map_err(|detail| {
            Error::invalid(format!(
                "error converting input for field {name:?}: {detail}"
            ))
        })?],
    };
    Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
}

/// Role names allowed in paths (the framework gives one segment; OpenBao's `\w(([\w-.]+)?\w)?`).
pub(crate) fn check_role_name(name: &str) -> Result<(), Error> {
    let ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok && !name.starts_with(['-', '.']) && !name.ends_with(['-', '.']) {
        Ok(())
    } else {
        Err(Error::UnsupportedPath(format!("roles/{name}")))
    }
}

/// The list response for `roles`.
pub(crate) fn list_response(keys: Vec<String>) -> Option<Response> {
    if keys.is_empty() {
        return None;
    }
    let mut data = Map::new();
    data.insert("keys".to_owned(), Value::from(keys));
    Some(Response::with_data(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_match_openbao() {
        let body = json!({"allowed_domains": "example.com, example.org", "key_type": "ec"});
        let role = Role::from_fields(&Fields::new(body.as_object().unwrap())).unwrap();
        assert_eq!(role.allowed_domains, vec!["example.com", "example.org"]);
        assert_eq!(role.key_bits, 256);
        assert!(role.allow_localhost && role.allow_ip_sans && role.server_flag);
        assert!(!role.allow_subdomains && !role.no_store && !role.generate_lease);
        assert_eq!(
            role.key_usage,
            vec!["DigitalSignature", "KeyAgreement", "KeyEncipherment"]
        );
        let data = role.to_response().unwrap().data.unwrap();
        assert_eq!(data["issuer_ref"], json!("default"));
        assert_eq!(data["not_before_duration"], json!(30));
        assert_eq!(data["ttl"], json!(0));
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = |body: Value| Role::from_fields(&Fields::new(body.as_object().unwrap()));
        assert_eq!(
            bad(json!({"key_type": "ec", "key_bits": 255}))
                .unwrap_err()
                .to_string(),
            "unsupported bit length for EC key: 255"
        );
        assert!(bad(json!({"ttl": "2h", "max_ttl": "1h"})).is_err());
        assert!(bad(json!({"key_usage": ["Nope"]})).is_err());
        assert!(bad(json!({"ext_key_usage_oids": ["x.y"]})).is_err());
        assert!(check_role_name("web-1").is_ok());
        assert!(check_role_name("-web").is_err());
    }
}
