//! `sign/<role>`, after openbao `path_sign.go` and `path_issue_sign.go`: checks the request
//! against the role in OpenBao's order and with its error texts, then builds and signs an
//! OpenSSH certificate with `ssh-key`'s builder and the default CA.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Request, Response, Storage};
use rand::RngCore;
use serde_json::{json, Map};
use sha2::{Digest, Sha256};
use ssh_key::certificate::{Builder, CertType};
use ssh_key::public::KeyData;
use ssh_key::PublicKey;

use super::keys::{self, CaSigner, RsaSigner};
use super::roles::{self, Role};
use super::{ca, mount_ttls};

pub(crate) async fn sign(
    req: &Request,
    role_name: &str,
    storage: &dyn Storage,
) -> Result<Option<Response>, Error> {
    let f = Fields::new(&req.data).upfront(true);
    let public_key = f.string("public_key")?.unwrap_or_default();
    let valid_principals = f.string("valid_principals")?;
    let cert_type = f.string("cert_type")?.unwrap_or_else(|| "user".into());
    let key_id = f.string("key_id")?.unwrap_or_default();
    let ttl = f.duration_secs("ttl", false)?;
    let critical_options = f.map("critical_options")?;
    let extensions = f.map("extensions")?;

    let role = roles::load(storage, role_name)
        .await?
        .ok_or_else(|| Error::invalid(format!("Unknown role: {role_name}")))?;

    if public_key.is_empty() {
        return Err(Error::invalid("missing public_key"));
    }
    let user_key = keys::parse_public(&public_key)
        .map_err(|e| Error::invalid(format!("failed to parse public_key as SSH key: {e}")))?;
    check_key_requirements(&user_key, &role).map_err(|e| {
        Error::invalid(format!(
            "public_key failed to meet the key requirements: {e}"
        ))
    })?;

    let key_id = key_id_for(req, &role, role_name, &key_id, &user_key)?;
    let cert_type = match cert_type.as_str() {
        "user" if role.allow_user_certificates => CertType::User,
        "user" => return Err(Error::invalid("cert_type 'user' is not allowed by role")),
        "host" if role.allow_host_certificates => CertType::Host,
        "host" => return Err(Error::invalid("cert_type 'host' is not allowed by role")),
        _ => return Err(Error::invalid("cert_type must be either 'user' or 'host'")),
    };
    let principals = match cert_type {
        CertType::Host => {
            let allowed = render(req, &role.allowed_domains, role.allowed_domains_template)?;
            valid_principals_for(
                &role,
                valid_principals.as_deref(),
                "",
                &role.allowed_domains,
                &allowed,
                |allowed, p| {
                    allowed.iter().any(|a| {
                        (a == p && role.allow_bare_domains)
                            || (role.allow_subdomains && p.ends_with(&format!(".{a}")))
                    })
                },
            )?
        }
        CertType::User => {
            let default_user = if role.default_user_template {
                render(req, &role.default_user, true)?
            } else {
                role.default_user.clone()
            };
            let allowed = render(req, &role.allowed_users, role.allowed_users_template)?;
            valid_principals_for(
                &role,
                valid_principals.as_deref(),
                &default_user,
                &role.allowed_users,
                &allowed,
                |allowed, p| allowed.iter().any(|a| a == p),
            )?
        }
    };
    let ttl = ttl_for(ttl, &role, mount_ttls(req))?;
    let critical_options = critical_options_for(critical_options, &role)?;
    let (extensions, skipped_templates) = extensions_for(req, extensions, &role)?;

    let issuer = ca::default_issuer(storage).await?;
    let ca_key = issuer.private_key()?;
    let rsa_hash = match (role.algorithm_signer.as_str(), ca_key.public_key().key_data()) {
        ("rsa-sha2-512", KeyData::Rsa(_)) => RsaSigner::Sha512,
        ("ssh-rsa", KeyData::Rsa(_)) => {
            return Err(Error::invalid(
                "algorithm_signer ssh-rsa signs with SHA-1, which coffer does not do; use rsa-sha2-256 or rsa-sha2-512",
            ))
        }
        ("default" | "rsa-sha2-256", KeyData::Rsa(_)) => RsaSigner::Sha256,
        ("default", _) => RsaSigner::Sha256,
        (other, key) => {
            return Err(Error::invalid(format!(
                "failed to generate signed SSH key: sign error: algorithm_signer {other} cannot sign with a {} CA key",
                key.algorithm()
            )))
        }
    };

    let now = unix_now();
    let valid_after = now.saturating_sub(u64::try_from(role.not_before_duration).unwrap_or(0));
    let valid_before = now.saturating_add(ttl);
    let mut nonce = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let serial = rand::rngs::OsRng.next_u64();
    let cert_err =
        |e: ssh_key::Error| Error::invalid(format!("failed to generate signed SSH key: {e}"));
    let mut builder = Builder::new(
        nonce.to_vec(),
        user_key.key_data().clone(),
        valid_after,
        valid_before,
    )
    .map_err(cert_err)?;
    builder.serial(serial).map_err(cert_err)?;
    builder.cert_type(cert_type).map_err(cert_err)?;
    builder.key_id(key_id).map_err(cert_err)?;
    if principals.is_empty() {
        builder.all_principals_valid().map_err(cert_err)?;
    }
    for principal in principals {
        builder.valid_principal(principal).map_err(cert_err)?;
    }
    for (name, value) in critical_options {
        builder.critical_option(name, value).map_err(cert_err)?;
    }
    for (name, value) in extensions {
        builder.extension(name, value).map_err(cert_err)?;
    }
    let signer = CaSigner {
        key: &ca_key,
        rsa_hash,
    };
    let certificate = builder.sign(&signer).map_err(Error::internal)?;
    let mut signed_key = certificate.to_openssh().map_err(Error::internal)?;
    signed_key.push('\n');

    let mut data = Map::new();
    data.insert("serial_number".into(), json!(format!("{serial:x}")));
    data.insert("signed_key".into(), json!(signed_key));
    data.insert("issuer_id".into(), json!(issuer.id));
    let mut resp = Response::with_data(data);
    if skipped_templates {
        resp = resp.warn(
            "default_extension templating enabled with at least one extension requiring identity templating. However, this request lacked identity entity information, causing one or more extensions to be skipped from the generated certificate.",
        );
    }
    Ok(Some(resp))
}

/// OpenBao's `calculateKeyID`: the requested id if the role allows it, else `key_id_format`
/// (default `vault-{{token_display_name}}-{{public_key_hash}}`) filled in.
fn key_id_for(
    req: &Request,
    role: &Role,
    role_name: &str,
    requested: &str,
    key: &PublicKey,
) -> Result<String, Error> {
    if !requested.is_empty() {
        if !role.allow_user_key_ids {
            return Err(Error::invalid("setting key_id is not allowed by role"));
        }
        return Ok(requested.to_owned());
    }
    let display_name = req
        .auth
        .as_ref()
        .map(|a| a.display_name.as_str())
        .unwrap_or("");
    let format = if !role.key_id_format.is_empty() {
        role.key_id_format.as_str()
    } else if display_name.is_empty() {
        "vault-{{public_key_hash}}"
    } else {
        "vault-{{token_display_name}}-{{public_key_hash}}"
    };
    let wire = key.to_bytes().map_err(Error::internal)?;
    let hash = hex_lower(&Sha256::digest(&wire));
    Ok(format
        .replace("{{token_display_name}}", display_name)
        .replace("{{role_name}}", role_name)
        .replace("{{public_key_hash}}", &hash))
}

/// OpenBao's `calculateValidPrincipals`: requested (or default) principals, deduplicated and
/// sorted as `strutil.RemoveDuplicates`, each checked against the role's allowed list.
fn valid_principals_for(
    role: &Role,
    requested: Option<&str>,
    default: &str,
    allowed_raw: &str,
    allowed_rendered: &str,
    is_allowed: impl Fn(&[String], &str) -> bool,
) -> Result<Vec<String>, Error> {
    let parsed = dedup_sorted(requested.unwrap_or(default));
    let allowed = dedup_sorted(allowed_rendered);
    if parsed.is_empty() {
        if !role.allow_empty_principals && allowed_raw != "*" {
            return Err(Error::invalid(
                "refusing to issue unsafe, globally-valid certificate with no principals specified; set valid_principals or default_user",
            ));
        }
        return Ok(Vec::new());
    }
    if allowed.is_empty() {
        return Err(Error::invalid(
            "role is not configured to allow any principals",
        ));
    }
    if allowed_raw == "*" {
        return Ok(parsed);
    }
    for principal in &parsed {
        if !is_allowed(&allowed, principal) {
            return Err(Error::invalid(format!(
                "{principal} is not a valid value for valid_principals"
            )));
        }
    }
    Ok(parsed)
}

/// OpenBao's `calculateTTL`: the request's TTL (an error above the max) or the role's (capped),
/// 0 meaning the mount default; the role's max 0 meaning the mount max. `mount` is the
/// mount's (default, max) TTL.
fn ttl_for(requested: Option<i64>, role: &Role, mount: (i64, i64)) -> Result<u64, Error> {
    let (mount_default, mount_max) = mount;
    let specified = requested.is_some();
    let mut ttl = requested.unwrap_or(role.ttl);
    if ttl == 0 {
        ttl = mount_default;
    }
    let max_ttl = if role.max_ttl == 0 {
        mount_max
    } else {
        role.max_ttl
    };
    if ttl > max_ttl {
        if specified {
            return Err(Error::invalid(format!(
                "ttl is larger than maximum allowed {max_ttl}"
            )));
        }
        ttl = max_ttl;
    }
    Ok(u64::try_from(ttl).unwrap_or(0))
}

fn critical_options_for(
    requested: Option<&Map<String, serde_json::Value>>,
    role: &Role,
) -> Result<BTreeMap<String, String>, Error> {
    let requested = roles::string_map(requested);
    if requested.is_empty() {
        return Ok(role.default_critical_options.clone());
    }
    if !role.allowed_critical_options.is_empty() {
        let allowed: Vec<&str> = role.allowed_critical_options.split(',').collect();
        let refused: Vec<&str> = requested
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if !refused.is_empty() {
            return Err(Error::invalid(format!(
                "critical options not on allowed list: [{}]",
                refused.join(" ")
            )));
        }
    }
    Ok(requested)
}

/// OpenBao's `calculateExtensions`; the bool says a templated default was skipped for want of
/// an identity entity.
fn extensions_for(
    req: &Request,
    requested: Option<&Map<String, serde_json::Value>>,
    role: &Role,
) -> Result<(BTreeMap<String, String>, bool), Error> {
    let requested = roles::string_map(requested);
    if !requested.is_empty() {
        if role.allowed_extensions == "*" {
            return Ok((requested, false));
        }
        let allowed: Vec<&str> = role.allowed_extensions.split(',').collect();
        let refused: Vec<&str> = requested
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if !refused.is_empty() {
            return Err(Error::invalid(format!(
                "extensions [{}] are not on allowed list",
                refused.join(" ")
            )));
        }
        return Ok((requested, false));
    }
    if !role.default_extensions_template {
        return Ok((role.default_extensions.clone(), false));
    }
    let entity = entity_id(req);
    let mut out = BTreeMap::new();
    let mut skipped = false;
    for (name, value) in &role.default_extensions {
        if !has_template(value) {
            out.insert(name.clone(), value.clone());
        } else if entity.is_empty() {
            skipped = true;
        } else {
            out.insert(name.clone(), render_with_entity(value, entity)?);
        }
    }
    Ok((out, skipped))
}

/// Identity templating of a principal list, as OpenBao's `renderPrincipal`: nothing to do
/// without an entity or a `{{...}}`.
fn render(req: &Request, text: &str, enabled: bool) -> Result<String, Error> {
    let entity = entity_id(req);
    if !enabled || entity.is_empty() || !has_template(text) {
        return Ok(text.to_owned());
    }
    render_with_entity(text, entity)
}

/// The sdk gives a backend the caller's entity id and nothing else of the identity store, so
/// `{{identity.entity.id}}` is the one template coffer can fill; any other is refused with
/// OpenBao's wording rather than left unrendered.
fn render_with_entity(text: &str, entity: &str) -> Result<String, Error> {
    let rendered = text.replace("{{identity.entity.id}}", entity);
    if has_template(&rendered) {
        return Err(Error::invalid(format!(
            "template '{text}' could not be rendered -> only {{{{identity.entity.id}}}} is supported"
        )));
    }
    Ok(rendered)
}

fn entity_id(req: &Request) -> &str {
    req.auth
        .as_ref()
        .map(|a| a.entity_id.as_str())
        .unwrap_or("")
}

fn has_template(text: &str) -> bool {
    text.find("{{")
        .is_some_and(|start| text[start + 2..].find("}}").is_some_and(|len| len > 0))
}

/// OpenBao's `validateSignedKeyRequirements` against `allowed_user_key_lengths`.
fn check_key_requirements(key: &PublicKey, role: &Role) -> Result<(), String> {
    if role.allowed_user_key_lengths.is_empty() {
        return Ok(());
    }
    let (key_type, bits, names): (&str, usize, Vec<&str>) = match key.key_data() {
        KeyData::Rsa(rsa) => {
            let bits = rsa.n.as_positive_bytes().map(bit_len).unwrap_or(0);
            ("rsa", bits, vec!["rsa", "ssh-rsa"])
        }
        KeyData::Dsa(dsa) => {
            let bits = dsa.p.as_positive_bytes().map(bit_len).unwrap_or(0);
            ("dsa", bits, vec!["dsa", "ssh-dss"])
        }
        KeyData::Ecdsa(ec) => {
            let (bits, name) = match ec.curve() {
                ssh_key::EcdsaCurve::NistP256 => (256, "ecdsa-sha2-nistp256"),
                ssh_key::EcdsaCurve::NistP384 => (384, "ecdsa-sha2-nistp384"),
                ssh_key::EcdsaCurve::NistP521 => (521, "ecdsa-sha2-nistp521"),
            };
            ("ecdsa", bits, vec!["ecdsa", "ec", name])
        }
        KeyData::Ed25519(_) => ("ed25519", 0, vec!["ed25519", "ssh-ed25519"]),
        _ => return Err("public key type of  is not allowed".to_owned()),
    };
    let mut present = false;
    let mut pass = false;
    for name in names {
        let Some(allowed) = role.allowed_user_key_lengths.get(name) else {
            continue;
        };
        present = true;
        for value in allowed {
            if key_type == "ed25519" || usize::try_from(*value).ok() == Some(bits) {
                pass = true;
            }
        }
    }
    if !present {
        return Err(format!("key of type {key_type} is not allowed"));
    }
    if !pass {
        return Err(format!("key is of an invalid size: {bits}"));
    }
    Ok(())
}

fn bit_len(bytes: &[u8]) -> usize {
    match bytes.iter().position(|b| *b != 0) {
        Some(i) => (bytes.len() - i) * 8 - bytes[i].leading_zeros() as usize,
        None => 0,
    }
}

/// Splits on commas, trims, drops empties and duplicates, sorts (`strutil.RemoveDuplicates`).
fn dedup_sorted(list: &str) -> Vec<String> {
    let mut items: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    items.sort();
    items.dedup();
    items
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
