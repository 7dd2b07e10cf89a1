//! `role/<name>`: which tokens a role accepts and what a login under it gets (the plugin's
//! `path_role.go`).

use std::collections::BTreeMap;

use coffer_sdk::framework::{weak_string, Fields};
use coffer_sdk::{Error, Request, Response, Storage};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{load, object};
use crate::fields::string_list;
use crate::token_params::{TokenParams, JWT_ALIASES};

/// One role as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RoleEntry {
    pub(super) role_type: String,
    pub(super) bound_audiences: Vec<String>,
    pub(super) bound_subject: String,
    /// Claim (name or JSON pointer) to the accepted values: a string or a list of strings.
    pub(super) bound_claims: Map<String, Value>,
    /// `string` (exact) or `glob` (`*` matches any run of characters).
    pub(super) bound_claims_type: String,
    pub(super) user_claim: String,
    pub(super) groups_claim: String,
    /// Claim to metadata key.
    pub(super) claim_mappings: BTreeMap<String, String>,
    /// Seconds; 0 takes the default (60 for clock skew, 150 for exp and nbf), -1 none.
    pub(super) clock_skew_leeway: i64,
    pub(super) expiration_leeway: i64,
    pub(super) not_before_leeway: i64,
    pub(super) allowed_redirect_uris: Vec<String>,
    pub(super) oidc_scopes: Vec<String>,
    #[serde(flatten)]
    pub(super) token: TokenParams,
}

impl Default for RoleEntry {
    fn default() -> Self {
        RoleEntry {
            role_type: "oidc".to_owned(),
            bound_audiences: Vec::new(),
            bound_subject: String::new(),
            bound_claims: Map::new(),
            bound_claims_type: "string".to_owned(),
            user_claim: String::new(),
            groups_claim: String::new(),
            claim_mappings: BTreeMap::new(),
            clock_skew_leeway: 0,
            expiration_leeway: 0,
            not_before_leeway: 0,
            allowed_redirect_uris: Vec::new(),
            oidc_scopes: Vec::new(),
            token: TokenParams::new(),
        }
    }
}

pub(super) fn key(name: &str) -> String {
    format!("role/{name}")
}

/// LIST `role`.
pub(super) async fn list(storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let keys = storage.list("role/").await?;
    if keys.is_empty() {
        return Ok(None);
    }
    Ok(Some(Response::with_data(object(json!({ "keys": keys })))))
}

/// GET `role/<name>`, with every field OpenBao shows.
pub(super) async fn read(name: &str, storage: &dyn Storage) -> Result<Option<Response>, Error> {
    let Some(r) = load::<RoleEntry>(storage, &key(name)).await? else {
        return Ok(None);
    };
    let null_if_empty = |v: Value| match &v {
        Value::Array(a) if a.is_empty() => Value::Null,
        Value::Object(o) if o.is_empty() => Value::Null,
        _ => v,
    };
    let mut data = object(json!({
        "allowed_redirect_uris": null_if_empty(json!(r.allowed_redirect_uris)),
        "bound_audiences": r.bound_audiences,
        "bound_claims": null_if_empty(Value::Object(r.bound_claims.clone())),
        "bound_claims_type": r.bound_claims_type,
        "bound_subject": r.bound_subject,
        "callback_mode": "client",
        "claim_mappings": null_if_empty(json!(r.claim_mappings)),
        "clock_skew_leeway": r.clock_skew_leeway,
        "expiration_leeway": r.expiration_leeway,
        "groups_claim": r.groups_claim,
        "max_age": 0,
        "not_before_leeway": r.not_before_leeway,
        "oauth2_metadata": null,
        "oidc_disable_confirmation": false,
        "oidc_scopes": null_if_empty(json!(r.oidc_scopes)),
        "role_type": r.role_type,
        "token_policies_template_claims": false,
        "user_claim": r.user_claim,
        "user_claim_json_pointer": false,
        "verbose_oidc_logging": false,
    }));
    r.token.write_json(&mut data, JWT_ALIASES);
    Ok(Some(Response::with_data(data)))
}

/// POST `role/<name>`: creates or updates a role, checked as the plugin checks it.
pub(super) async fn write(
    name: &str,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let f = Fields::new(&req.data);
    let mut r = load::<RoleEntry>(storage, &key(name))
        .await?
        .unwrap_or_default();
    if let Some(t) = f.string("role_type")? {
        if t != "jwt" && t != "oidc" {
            return Err(Error::invalid(format!("invalid 'role_type': {t}")));
        }
        r.role_type = t;
    }
    if let Some(list) = string_list(&req.data, "bound_audiences")? {
        r.bound_audiences = list;
    }
    if let Some(s) = f.string("bound_subject")? {
        r.bound_subject = s;
    }
    if let Some(m) = f.map("bound_claims")? {
        for (claim, expected) in m {
            let valid = match expected {
                Value::String(_) => true,
                Value::Array(items) => items.iter().all(Value::is_string),
                _ => false,
            };
            if !valid {
                return Err(Error::invalid(format!(
                    "bound claim is not a string or list: {claim:?}"
                )));
            }
        }
        r.bound_claims = m.clone();
    }
    if let Some(t) = f.string("bound_claims_type")? {
        if t != "string" && t != "glob" {
            return Err(Error::invalid(format!("invalid 'bound_claims_type': {t}")));
        }
        r.bound_claims_type = t;
    }
    if let Some(s) = f.string("user_claim")? {
        r.user_claim = s;
    }
    if let Some(s) = f.string("groups_claim")? {
        r.groups_claim = s;
    }
    if let Some(m) = f.map("claim_mappings")? {
        let mut mappings = BTreeMap::new();
        for (claim, target) in m {
            let target = weak_string(target).map_err(|detail| {
                Error::invalid(format!(
                    "error converting input for field \"claim_mappings\": {detail}"
                ))
            })?;
            if target == "role" {
                return Err(Error::invalid(
                    "metadata key \"role\" is reserved and may not be a mapping destination",
                ));
            }
            if mappings.values().any(|t| *t == target) {
                return Err(Error::invalid(format!(
                    "multiple keys are mapped to metadata key {target:?}"
                )));
            }
            mappings.insert(claim.clone(), target);
        }
        r.claim_mappings = mappings;
    }
    for (field, slot) in [
        ("clock_skew_leeway", &mut r.clock_skew_leeway),
        ("expiration_leeway", &mut r.expiration_leeway),
        ("not_before_leeway", &mut r.not_before_leeway),
    ] {
        if let Some(secs) = f.duration_secs(field, true)? {
            *slot = secs;
        }
    }
    if let Some(list) = string_list(&req.data, "allowed_redirect_uris")? {
        r.allowed_redirect_uris = list;
    }
    if let Some(list) = string_list(&req.data, "oidc_scopes")? {
        r.oidc_scopes = list;
    }
    r.token.update(&req.data, JWT_ALIASES)?;

    if r.role_type == "oidc" && r.allowed_redirect_uris.is_empty() {
        return Err(Error::invalid(
            "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.",
        ));
    }
    if r.user_claim.is_empty() {
        return Err(Error::invalid("a user claim must be defined on the role"));
    }
    if r.role_type == "jwt"
        && r.bound_audiences.is_empty()
        && r.bound_subject.is_empty()
        && r.bound_claims.is_empty()
        && r.token.token_bound_cidrs.is_empty()
    {
        return Err(Error::invalid(
            "must have at least one bound constraint when creating/updating a role",
        ));
    }
    let bytes = serde_json::to_vec(&r).map_err(Error::internal)?;
    storage.put(&key(name), bytes).await?;
    Ok(None)
}
