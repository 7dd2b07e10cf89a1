//! `login`: verifies a JWT's signature, then its claims against the role, in the plugin's
//! order and with its messages (`path_login.go`, `claims.go`).

use std::collections::BTreeMap;
use std::time::Instant;

use coffer_sdk::framework::Fields;
use coffer_sdk::{Alias, Error, Request, Response, Storage};
use jsonwebtoken::{decode, decode_header, Validation};
use serde_json::{Map, Value};

use super::keys::{self, family_of, Fetched, Key};
use super::role::{self, RoleEntry};
use super::{load, Config, Jwt};
use crate::fields::cidrs_allow;

/// The plugin's default leeways, in seconds.
const DEFAULT_CLOCK_SKEW: i64 = 60;
const DEFAULT_EXP_NBF_LEEWAY: i64 = 150;

pub(super) async fn login(
    jwt: &Jwt,
    req: &Request,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let f = Fields::new(&req.data);
    let token = f.string("jwt")?.unwrap_or_default();
    let config = jwt
        .load_config(storage)
        .await?
        .ok_or_else(|| Error::invalid("could not load configuration"))?;
    let role_name = match f.string("role")?.filter(|r| !r.is_empty()) {
        Some(r) => r.to_lowercase(),
        None if !config.default_role.is_empty() => config.default_role.clone(),
        None => return Err(Error::invalid("missing role")),
    };
    let role = load::<RoleEntry>(storage, &role::key(&role_name))
        .await?
        .ok_or_else(|| Error::invalid(format!("role {role_name:?} could not be found")))?;
    if role.role_type == "oidc" {
        return Err(Error::invalid("role with oidc role_type is not allowed"));
    }
    if token.is_empty() {
        return Err(Error::invalid("missing token"));
    }
    if !cidrs_allow(&role.token.token_bound_cidrs, req.remote_addr.as_deref()) {
        return Err(Error::PermissionDenied);
    }
    let (claims, discovered_issuer) = verify_signature(jwt, &config, &token).await?;
    let now = jwt.clock.now_secs();
    validate_claims(&config, discovered_issuer.as_deref(), &role, &claims, now)?;

    let user = user_name(&claims, &role.user_claim)?;
    check_bound_claims(&role, &claims)?;
    let mapped = map_claims(&role, &claims)?;
    if !role.groups_claim.is_empty() && claim(&claims, &role.groups_claim).is_none() {
        return Err(Error::invalid(format!(
            "{:?} claim not found in token",
            role.groups_claim
        )));
    }

    let mut auth = role.token.auth();
    let mut metadata = mapped.clone();
    metadata.insert("role".to_owned(), role_name);
    auth.metadata = Some(metadata);
    auth.display_name = user.clone();
    auth.alias = Some(Alias {
        name: user,
        metadata: mapped,
    });
    Ok(Some(Response {
        auth: Some(auth),
        ..Response::default()
    }))
}

/// The claims of a token whose signature one of the configured keys verifies, and the issuer
/// a discovery document named.
async fn verify_signature(
    jwt: &Jwt,
    config: &Config,
    token: &str,
) -> Result<(Map<String, Value>, Option<String>), Error> {
    let header = decode_header(token).map_err(|_| {
        Error::invalid("error validating token: error verifying token signature: malformed token")
    })?;
    let Some(family) = family_of(header.alg) else {
        return Err(unsupported_alg(header.alg));
    };
    if !config.jwt_supported_algs.is_empty()
        && !config
            .jwt_supported_algs
            .iter()
            .any(|a| keys::parse_alg(a) == Some(header.alg))
    {
        return Err(unsupported_alg(header.alg));
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let attempt = |keys: &[Key]| {
        keys.iter()
            .filter(|k| k.family == family)
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .find_map(|k| decode::<Map<String, Value>>(token, &k.key, &validation).ok())
            .map(|data| data.claims)
    };

    if !config.jwt_validation_pubkeys.is_empty() {
        let keys = config
            .jwt_validation_pubkeys
            .iter()
            .map(|pem| keys::parse_pem(pem))
            .collect::<Result<Vec<_>, _>>()?;
        return attempt(&keys).map(|c| (c, None)).ok_or_else(no_key);
    }

    let (fetched, fresh) = fetched_keys(jwt, config, false).await?;
    if let Some(claims) = attempt(&fetched.keys) {
        return Ok((claims, fetched.issuer));
    }
    // The issuer may have rotated its keys: fetch again, at most every few seconds.
    if !fresh && fetched.may_refetch() {
        let (fetched, _) = fetched_keys(jwt, config, true).await?;
        if let Some(claims) = attempt(&fetched.keys) {
            return Ok((claims, fetched.issuer));
        }
    }
    Err(no_key())
}

/// The cached keys of the config's URL, fetched if missing, stale or `force`d; the bool says
/// whether they were fetched just now.
async fn fetched_keys(jwt: &Jwt, config: &Config, force: bool) -> Result<(Fetched, bool), Error> {
    let url = if config.jwks_url.is_empty() {
        &config.oidc_discovery_url
    } else {
        &config.jwks_url
    };
    if !force {
        let cached = jwt
            .fetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some((cached_url, fetched)) = cached {
            if cached_url == *url && fetched.is_fresh() {
                return Ok((fetched, false));
            }
        }
    }
    let fetched = if config.jwks_url.is_empty() {
        let client = keys::client(&config.oidc_discovery_ca_pem)?;
        let (keys, issuer) = keys::fetch_discovery(&client, url).await?;
        Fetched {
            keys,
            issuer: Some(issuer),
            at: Instant::now(),
        }
    } else {
        let client = keys::client(&config.jwks_ca_pem)?;
        Fetched {
            keys: keys::fetch_jwks(&client, url).await?,
            issuer: None,
            at: Instant::now(),
        }
    };
    *jwt.fetched.lock().unwrap_or_else(|e| e.into_inner()) = Some((url.clone(), fetched.clone()));
    Ok((fetched, true))
}

/// Issuer, audience, times and subject, as the plugin's validator checks them.
fn validate_claims(
    config: &Config,
    discovered_issuer: Option<&str>,
    role: &RoleEntry,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<(), Error> {
    let expected_issuer = if config.bound_issuer.is_empty() {
        discovered_issuer.unwrap_or_default()
    } else {
        &config.bound_issuer
    };
    if !expected_issuer.is_empty()
        && claims.get("iss").and_then(Value::as_str) != Some(expected_issuer)
    {
        return Err(token_error("invalid issuer (iss) claim"));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !role.bound_audiences.is_empty()
        && !audiences
            .iter()
            .any(|a| role.bound_audiences.iter().any(|b| b == a))
    {
        return Err(token_error(
            "invalid audience (aud) claim: audience claim does not match any expected audience",
        ));
    }
    let time = |name: &str| claims.get(name).and_then(Value::as_f64).map(|t| t as i64);
    let (exp, nbf, iat) = (time("exp"), time("nbf"), time("iat"));
    if exp.is_none() && nbf.is_none() && iat.is_none() {
        return Err(token_error(
            "no issued at (iat), not before (nbf), or expiration time (exp) claims in token",
        ));
    }
    let leeway = |v: i64, default: i64| match v {
        0 => default,
        v if v < 0 => 0,
        v => v,
    };
    let skew = leeway(role.clock_skew_leeway, DEFAULT_CLOCK_SKEW);
    if let Some(exp) = exp {
        if now > exp + skew + leeway(role.expiration_leeway, DEFAULT_EXP_NBF_LEEWAY) {
            return Err(token_error(
                "invalid expiration time (exp) claim: token is expired",
            ));
        }
    }
    if let Some(nbf) = nbf {
        if now + skew + leeway(role.not_before_leeway, DEFAULT_EXP_NBF_LEEWAY) < nbf {
            return Err(token_error(
                "invalid not before (nbf) claim: token not yet valid",
            ));
        }
    }
    if let Some(iat) = iat {
        if now + skew < iat {
            return Err(token_error(
                "invalid issued at (iat) claim: token issued in the future",
            ));
        }
    }
    if !role.bound_subject.is_empty()
        && claims.get("sub").and_then(Value::as_str) != Some(role.bound_subject.as_str())
    {
        return Err(token_error("invalid subject (sub) claim"));
    }
    if role.bound_audiences.is_empty() && !audiences.is_empty() {
        return Err(Error::invalid(
            "audience claim found in JWT but no audiences bound to the role",
        ));
    }
    Ok(())
}

/// The value of the role's `user_claim`: the alias name.
fn user_name(claims: &Map<String, Value>, user_claim: &str) -> Result<String, Error> {
    match claim(claims, user_claim) {
        None | Some(Value::Null) => Err(Error::invalid(format!(
            "claim {user_claim:?} not found in token"
        ))),
        Some(v) => scalar(v).ok_or_else(|| {
            Error::invalid(format!(
                "claim {user_claim:?} could not be converted to string"
            ))
        }),
    }
}

/// Every bound claim must be present and match one of its values.
fn check_bound_claims(role: &RoleEntry, claims: &Map<String, Value>) -> Result<(), Error> {
    for (name, expected) in &role.bound_claims {
        let Some(actual) = claim(claims, name) else {
            return Err(Error::invalid(format!(
                "error validating claims: claim {name:?} is missing"
            )));
        };
        let actual: Vec<String> = match actual {
            Value::Array(items) => items.iter().filter_map(scalar).collect(),
            other => scalar(other).into_iter().collect(),
        };
        let expected: Vec<&str> = match expected {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let glob = role.bound_claims_type == "glob";
        let matched = actual.iter().any(|a| {
            expected
                .iter()
                .any(|e| if glob { glob_match(e, a) } else { e == a })
        });
        if !matched {
            return Err(Error::invalid(format!(
                "error validating claims: claim {name:?} does not match any associated bound \
                 claim values"
            )));
        }
    }
    Ok(())
}

/// The `claim_mappings` values present in the token, by metadata key.
fn map_claims(
    role: &RoleEntry,
    claims: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (name, target) in &role.claim_mappings {
        let Some(value) = claim(claims, name) else {
            continue;
        };
        let value = scalar(value)
            .ok_or_else(|| Error::invalid(format!("error converting claim '{name}' to string")))?;
        out.insert(target.clone(), value);
    }
    Ok(out)
}

/// A claim by name, or by JSON pointer when it starts with `/`.
fn claim<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    if let Some(pointer) = name.strip_prefix('/') {
        let mut current: Option<&Value> = None;
        for (i, part) in pointer.split('/').enumerate() {
            let part = part.replace("~1", "/").replace("~0", "~");
            current = if i == 0 {
                claims.get(&part)
            } else {
                match current? {
                    Value::Object(m) => m.get(&part),
                    Value::Array(a) => part.parse::<usize>().ok().and_then(|n| a.get(n)),
                    _ => None,
                }
            };
        }
        current
    } else {
        claims.get(name)
    }
}

/// A string, number or bool as text; other values have none.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `*` matches any run of characters, as go-glob (which the plugin uses) does.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

fn token_error(detail: &str) -> Error {
    Error::invalid(format!("error validating token: {detail}"))
}

fn no_key() -> Error {
    token_error(
        "error verifying token signature: no known key successfully validated the token signature",
    )
}

fn unsupported_alg(alg: jsonwebtoken::Algorithm) -> Error {
    token_error(&format!(
        "error verifying token signature: unsupported signing algorithm {alg:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_go_glob() {
        assert!(glob_match("team-*", "team-a"));
        assert!(glob_match("*@example.com", "x@example.com"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("team-*", "other"));
        assert!(!glob_match("a*b", "ab-"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("exact", "exact"));
    }

    #[test]
    fn claims_by_name_or_pointer() {
        let claims = serde_json::json!({"a": {"b/c": [1, "x"]}, "top": "t"});
        let claims = claims.as_object().unwrap();
        assert_eq!(claim(claims, "top"), Some(&Value::from("t")));
        assert_eq!(claim(claims, "/a/b~1c/1"), Some(&Value::from("x")));
        assert_eq!(claim(claims, "/a/missing"), None);
    }
}
