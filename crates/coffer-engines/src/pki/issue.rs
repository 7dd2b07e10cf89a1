//! Certificates signed by a mount's issuers: `issue/<role>` (key generated here),
//! `sign/<role>` (key from a CSR), `root/sign-intermediate`, and the builder shared with root
//! generation. Names are checked against the role as OpenBao's `cert_util.go` checks them.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use coffer_sdk::framework::Fields;
use coffer_sdk::{Error, Lease, Request, Response, Storage};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

use super::keys::{ec_curve_bits, key_identifier, signature_verifies, KeyType, PrivateKey};
use super::roles::{comma_strings, ext_key_usage_from_name, key_usage_from_name, parse_oid, Role};
use super::store::{Signer, CERT_PREFIX};
use super::{colon_hex, serial_storage_key, MountTtls, Pki};

/// What goes into a certificate, whatever signs it.
#[derive(Debug, Default)]
pub(crate) struct CertSpec {
    pub(crate) common_name: String,
    pub(crate) dns: Vec<String>,
    pub(crate) emails: Vec<String>,
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) uris: Vec<String>,
    pub(crate) organization: Vec<String>,
    pub(crate) ou: Vec<String>,
    pub(crate) country: Vec<String>,
    pub(crate) locality: Vec<String>,
    pub(crate) province: Vec<String>,
    pub(crate) street_address: Vec<String>,
    pub(crate) postal_code: Vec<String>,
    /// Unix seconds.
    pub(crate) not_before: i64,
    /// Unix seconds.
    pub(crate) not_after: i64,
    pub(crate) is_ca: Option<IsCa>,
    pub(crate) key_usages: Vec<KeyUsagePurpose>,
    pub(crate) ext_key_usages: Vec<ExtendedKeyUsagePurpose>,
}

/// A signed certificate.
pub(crate) struct Issued {
    pub(crate) der: Vec<u8>,
    pub(crate) pem: String,
    /// Colon-separated lowercase hex, as OpenBao prints serials.
    pub(crate) serial: String,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
}

impl CertSpec {
    /// The rcgen parameters, with a random 20-byte serial and a SHA-1 subject key id.
    pub(crate) fn params(
        &self,
        subject_key: &impl PublicKeyData,
    ) -> Result<CertificateParams, Error> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        for (ty, values) in [
            (DnType::CountryName, &self.country),
            (DnType::StateOrProvinceName, &self.province),
            (DnType::LocalityName, &self.locality),
            (DnType::CustomDnType(vec![2, 5, 4, 9]), &self.street_address),
            (DnType::CustomDnType(vec![2, 5, 4, 17]), &self.postal_code),
            (DnType::OrganizationName, &self.organization),
            (DnType::OrganizationalUnitName, &self.ou),
        ] {
            for value in values {
                dn.push(ty.clone(), value.as_str());
            }
        }
        if !self.common_name.is_empty() {
            dn.push(DnType::CommonName, self.common_name.as_str());
        }
        params.distinguished_name = dn;
        let ia5 = |s: &str| {
            rcgen::string::Ia5String::try_from(s)
                .map_err(|_| Error::invalid(format!("invalid name {s:?}: not ASCII")))
        };
        for name in &self.dns {
            params.subject_alt_names.push(SanType::DnsName(ia5(name)?));
        }
        for email in &self.emails {
            params
                .subject_alt_names
                .push(SanType::Rfc822Name(ia5(email)?));
        }
        for ip in &self.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        for uri in &self.uris {
            params.subject_alt_names.push(SanType::URI(ia5(uri)?));
        }
        params.not_before = to_time(self.not_before)?;
        params.not_after = to_time(self.not_after)?;
        params.serial_number = Some(random_serial());
        params.is_ca = self.is_ca.unwrap_or(IsCa::NoCa);
        params.key_usages = self.key_usages.clone();
        params.extended_key_usages = self.ext_key_usages.clone();
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method =
            KeyIdMethod::PreSpecified(key_identifier(subject_key.der_bytes()));
        Ok(params)
    }
}

/// Signs `params` for `subject_key` with `signer`.
pub(crate) fn sign_with(
    params: &CertificateParams,
    subject_key: &impl PublicKeyData,
    signer: &Signer,
) -> Result<Issued, Error> {
    let cert = params
        .signed_by(subject_key, &signer.issuer)
        .map_err(Error::internal)?;
    Ok(issued(cert.der().to_vec(), params))
}

/// The result of a signature, with the serial and validity read back from `params`.
pub(crate) fn issued(der: Vec<u8>, params: &CertificateParams) -> Issued {
    Issued {
        pem: super::pem::cert(&der),
        der,
        serial: params
            .serial_number
            .as_ref()
            .map(|s| colon_hex(s.as_ref()))
            .unwrap_or_default(),
        not_before: params.not_before.unix_timestamp(),
        not_after: params.not_after.unix_timestamp(),
    }
}

/// `issue/<role>` and `issuer/<ref>/issue/<role>`.
pub(crate) async fn issue(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
    role_name: &str,
    issuer_ref: Option<&str>,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let role = load_role(pki, storage, role_name).await?;
    let key_type = match role.key_type.as_str() {
        "any" => {
            return Err(Error::invalid(
                "role key type \"any\" not allowed for issuing certificates, only signing",
            ))
        }
        other => KeyType::parse(other)?,
    };
    let signer = pki
        .signers
        .get(storage, issuer_ref.unwrap_or(&role.issuer_ref))
        .await?;
    let mut warnings = Vec::new();
    let spec = leaf_spec(
        &fields,
        &role,
        &signer,
        None,
        MountTtls::of(req),
        &mut warnings,
    )?;
    let bits = key_type.normalize_bits(role.key_bits)?;
    let (key, subject) = if key_type == KeyType::Rsa {
        tokio::task::spawn_blocking(move || PrivateKey::generate_with_public(key_type, bits))
            .await
            .map_err(Error::internal)??
    } else {
        PrivateKey::generate_with_public(key_type, bits)?
    };
    let params = spec.params(&subject)?;
    let cert = sign_with(&params, &subject, &signer)?;
    if !role.no_store {
        store_cert(storage, &cert).await?;
    }
    let format = output_format(&fields)?;
    let pkcs8 = fields.string("private_key_format")?.as_deref() == Some("pkcs8");
    let private_key = key.export(&format, pkcs8)?;
    let mut data = cert_response(&cert, &signer, &format);
    data.insert("private_key_type".to_owned(), key_type.as_str().into());
    if format == "pem_bundle" {
        let bundle = format!(
            "{}\n{}",
            private_key.as_str(),
            data["certificate"].as_str().unwrap_or_default()
        );
        data.insert("certificate".to_owned(), bundle.into());
    }
    data.insert("private_key".to_owned(), private_key.as_str().into());
    Ok(Some(finish(data, warnings, &role, &cert)))
}

/// `sign/<role>` and `issuer/<ref>/sign/<role>`: a certificate for the key of a CSR.
pub(crate) async fn sign(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
    role_name: &str,
    issuer_ref: Option<&str>,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let role = load_role(pki, storage, role_name).await?;
    let csr_pem = fields.string("csr")?.unwrap_or_default();
    let csr = Csr::parse(&csr_pem)?;
    check_csr_key(&role, &csr)?;
    let signer = pki
        .signers
        .get(storage, issuer_ref.unwrap_or(&role.issuer_ref))
        .await?;
    let mut warnings = Vec::new();
    let spec = leaf_spec(
        &fields,
        &role,
        &signer,
        Some(&csr),
        MountTtls::of(req),
        &mut warnings,
    )?;
    let params = spec.params(&csr.public_key)?;
    let cert = sign_with(&params, &csr.public_key, &signer)?;
    if !role.no_store {
        store_cert(storage, &cert).await?;
    }
    let format = output_format(&fields)?;
    let data = cert_response(&cert, &signer, &format);
    Ok(Some(finish(data, warnings, &role, &cert)))
}

/// `root/sign-intermediate` and `issuer/<ref>/sign-intermediate`: a CA certificate for a CSR.
pub(crate) async fn sign_intermediate(
    pki: &Pki,
    req: &Request,
    storage: &dyn Storage,
    issuer_ref: Option<&str>,
) -> Result<Option<Response>, Error> {
    let fields = Fields::new(&req.data);
    let csr = Csr::parse(&fields.string("csr")?.unwrap_or_default())?;
    let issuer_ref = match issuer_ref {
        Some(r) => r.to_owned(),
        None => fields
            .string("issuer_ref")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_owned()),
    };
    let signer = pki.signers.get(storage, &issuer_ref).await?;
    let use_csr_values = fields.bool("use_csr_values")?.unwrap_or(false);
    let mut warnings = Vec::new();
    let mut spec = ca_spec(&fields, MountTtls::of(req), &mut warnings)?;
    if use_csr_values || spec.common_name.is_empty() {
        spec.common_name = csr.common_name.clone().unwrap_or_default();
        if use_csr_values {
            spec.dns.extend(csr.dns.iter().cloned());
        }
    }
    if spec.common_name.is_empty() {
        return Err(Error::invalid("the common_name field is required"));
    }
    cap_to_issuer(&mut spec, &signer)?;
    let params = spec.params(&csr.public_key)?;
    let cert = sign_with(&params, &csr.public_key, &signer)?;
    store_cert(storage, &cert).await?;
    let format = output_format(&fields)?;
    let mut data = cert_response(&cert, &signer, &format);
    // OpenBao puts the new CA certificate first in its ca_chain.
    let mut chain = vec![encode_cert(&cert.der, &cert.pem, &format)];
    if let Some(Value::Array(rest)) = data.remove("ca_chain") {
        chain.extend(rest);
    }
    data.insert("ca_chain".to_owned(), Value::Array(chain));
    let mut resp = Response::with_data(data);
    resp.warnings = warnings;
    Ok(Some(resp))
}

/// The CA spec of a root or intermediate from the request fields (common name, SANs,
/// subject, TTL capped at the mount's maximum, path length).
pub(crate) fn ca_spec(
    fields: &Fields<'_>,
    mount: MountTtls,
    warnings: &mut Vec<String>,
) -> Result<CertSpec, Error> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut spec = CertSpec {
        common_name: fields.string("common_name")?.unwrap_or_default(),
        ..CertSpec::default()
    };
    spec.dns = comma_strings(fields, "alt_names")?;
    if !spec.common_name.is_empty()
        && !fields.bool("exclude_cn_from_sans")?.unwrap_or(false)
        && !spec.dns.contains(&spec.common_name)
    {
        if spec.common_name.contains('@') {
            spec.emails.push(spec.common_name.clone());
        } else if spec.common_name.parse::<IpAddr>().is_err() {
            spec.dns.insert(0, spec.common_name.clone());
        }
    }
    spec.ips = parse_ips(&comma_strings(fields, "ip_sans")?)?;
    spec.uris = comma_strings(fields, "uri_sans")?;
    subject_from(fields, &mut spec)?;
    let ttl = fields.duration_secs("ttl", false)?.unwrap_or(0);
    let ttl = if ttl == 0 { mount.default } else { ttl };
    let ttl = if ttl > mount.max {
        warnings.push(format!(
            "TTL {:?} is longer than permitted maxTTL {:?}, so maxTTL is being used",
            super::go_duration(ttl),
            super::go_duration(mount.max)
        ));
        mount.max
    } else {
        ttl
    };
    let not_before_duration = fields
        .duration_secs("not_before_duration", false)?
        .unwrap_or(30);
    spec.not_before = now - not_before_duration;
    spec.not_after = now + ttl;
    let path_len = fields.int("max_path_length")?.unwrap_or(-1);
    spec.is_ca = Some(if path_len < 0 {
        IsCa::Ca(rcgen::BasicConstraints::Unconstrained)
    } else {
        IsCa::Ca(rcgen::BasicConstraints::Constrained(
            u8::try_from(path_len).unwrap_or(u8::MAX),
        ))
    });
    spec.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(spec)
}

/// Stores an issued certificate under its serial, as OpenBao's `certs/` store.
pub(crate) async fn store_cert(storage: &dyn Storage, cert: &Issued) -> Result<(), Error> {
    storage
        .put(
            &format!("{CERT_PREFIX}{}", serial_storage_key(&cert.serial)),
            cert.der.clone(),
        )
        .await
}

/// A parsed, signature-checked CSR.
pub(crate) struct Csr {
    pub(crate) public_key: rcgen::SubjectPublicKeyInfo,
    pub(crate) key_type: Option<KeyType>,
    pub(crate) key_bits: u32,
    pub(crate) common_name: Option<String>,
    pub(crate) dns: Vec<String>,
    pub(crate) emails: Vec<String>,
    pub(crate) ips: Vec<IpAddr>,
}

impl Csr {
    /// Parses a PEM CSR and checks its self-signature.
    pub(crate) fn parse(pem: &str) -> Result<Csr, Error> {
        if pem.trim().is_empty() {
            return Err(Error::invalid(
                "certificate request could not be parsed: empty",
            ));
        }
        let block = super::pem::blocks(pem)?
            .into_iter()
            .find(|b| b.label == "CERTIFICATE REQUEST" || b.label == "NEW CERTIFICATE REQUEST")
            .ok_or_else(|| Error::invalid("csr contains no data"))?;
        let (_, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&block.der)
                .map_err(|_| Error::invalid("certificate request could not be parsed"))?;
        let info = &csr.certification_request_info;
        let (key_type, key_bits) = spki_type(&info.subject_pki);
        if key_type == Some(KeyType::Ec) && key_bits == 224 {
            return Err(Error::invalid(
                "unsupported public key type in CSR: P-224 keys are not supported",
            ));
        }
        if !signature_verifies(
            &info.subject_pki,
            &csr.signature_algorithm,
            &csr.signature_value,
            info.raw,
        ) {
            return Err(Error::invalid("request signature invalid"));
        }
        let spki_raw = info.subject_pki.raw;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(spki_raw)
            .map_err(|_| Error::invalid("unsupported public key type in CSR"))?;
        let common_name = info
            .subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let mut out = Csr {
            public_key,
            key_type,
            key_bits,
            common_name,
            dns: Vec::new(),
            emails: Vec::new(),
            ips: Vec::new(),
        };
        if let Some(extensions) = csr.requested_extensions() {
            for ext in extensions {
                if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) = ext {
                    for name in &san.general_names {
                        use x509_parser::extensions::GeneralName as G;
                        match name {
                            G::DNSName(d) => out.dns.push((*d).to_owned()),
                            G::RFC822Name(e) => out.emails.push((*e).to_owned()),
                            G::IPAddress(b) => {
                                if let Some(ip) = ip_from_bytes(b) {
                                    out.ips.push(ip);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The key type and size of a public key.
pub(crate) fn spki_type(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> (Option<KeyType>, u32) {
    use x509_parser::public_key::PublicKey as P;
    match spki.parsed() {
        Ok(P::RSA(rsa)) => (Some(KeyType::Rsa), rsa.key_size() as u32),
        Ok(P::EC(_)) => {
            let curve = spki.algorithm.parameters.as_ref();
            let curve = curve
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            (
                Some(KeyType::Ec),
                curve.as_deref().and_then(ec_curve_bits).unwrap_or(0),
            )
        }
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => {
            (Some(KeyType::Ed25519), 0)
        }
        _ => (None, 0),
    }
}

async fn load_role(pki: &Pki, storage: &dyn Storage, name: &str) -> Result<Arc<Role>, Error> {
    pki.roles
        .get(storage, name)
        .await?
        .ok_or_else(|| Error::invalid(format!("unknown role: {name}")))
}

/// The leaf spec for `issue` and `sign`: names checked against the role, subject from the
/// role, TTL from the request, role and mount, and the CA's expiry policy applied.
fn leaf_spec(
    fields: &Fields<'_>,
    role: &Role,
    signer: &Signer,
    csr: Option<&Csr>,
    mount: MountTtls,
    warnings: &mut Vec<String>,
) -> Result<CertSpec, Error> {
    let mut common_name = fields.string("common_name")?.unwrap_or_default();
    if common_name.is_empty() && role.use_csr_common_name {
        if let Some(cn) = csr.and_then(|c| c.common_name.clone()) {
            common_name = cn;
        }
    }
    if common_name.is_empty() && role.require_cn {
        return Err(Error::invalid(
            "the common_name field is required, or must be provided in a CSR with \
             \"use_csr_common_name\" set to true, unless \"require_cn\" is set to false",
        ));
    }
    let mut alt_names = comma_strings(fields, "alt_names")?;
    let mut ips = parse_ips(&comma_strings(fields, "ip_sans")?)?;
    if let Some(csr) = csr.filter(|_| role.use_csr_sans) {
        alt_names.extend(csr.dns.iter().cloned());
        alt_names.extend(csr.emails.iter().cloned());
        ips.extend(csr.ips.iter().copied());
    }
    if !common_name.is_empty() {
        if let Some(bad) = first_disallowed(role, std::slice::from_ref(&common_name)) {
            return Err(Error::invalid(format!(
                "common name {bad} not allowed by this role"
            )));
        }
    }
    if let Some(bad) = first_disallowed(role, &alt_names) {
        return Err(Error::invalid(format!(
            "subject alternate name {bad} not allowed by this role"
        )));
    }
    if let Some(ip) = ips.first().filter(|_| !role.allow_ip_sans) {
        return Err(Error::invalid(format!(
            "IP Subject Alternative Names are not allowed in this role, but was provided {ip}"
        )));
    }
    let mut spec = CertSpec {
        common_name: common_name.clone(),
        ips,
        uris: comma_strings(fields, "uri_sans")?,
        organization: role.organization.clone(),
        ou: role.ou.clone(),
        country: role.country.clone(),
        locality: role.locality.clone(),
        province: role.province.clone(),
        street_address: role.street_address.clone(),
        postal_code: role.postal_code.clone(),
        ..CertSpec::default()
    };
    let exclude_cn = fields.bool("exclude_cn_from_sans")?.unwrap_or(false);
    if !common_name.is_empty() && !exclude_cn {
        alt_names.insert(0, common_name);
    }
    for name in alt_names {
        let list = if name.contains('@') {
            &mut spec.emails
        } else {
            &mut spec.dns
        };
        if !list.contains(&name) {
            list.push(name);
        }
    }

    let now = OffsetDateTime::now_utc().unix_timestamp();
    let requested = fields.duration_secs("ttl", false)?.unwrap_or(0);
    let mut ttl = if requested > 0 { requested } else { role.ttl };
    if ttl == 0 {
        ttl = mount.default;
    }
    let max_ttl = if role.max_ttl > 0 {
        role.max_ttl
    } else {
        mount.max
    };
    if ttl > max_ttl {
        if requested > 0 {
            warnings.push(format!(
                "TTL {:?} is longer than permitted maxTTL {:?}, so maxTTL is being used",
                super::go_duration(ttl),
                super::go_duration(max_ttl)
            ));
        }
        ttl = max_ttl;
    }
    spec.not_before = now - role.not_before_duration;
    spec.not_after = now + ttl;
    cap_to_issuer(&mut spec, signer)?;

    spec.is_ca = role
        .basic_constraints_valid_for_non_ca
        .then_some(IsCa::ExplicitNoCa);
    spec.key_usages = role
        .key_usage
        .iter()
        .filter_map(|u| key_usage_from_name(u))
        .collect();
    let mut ekus = Vec::new();
    for (on, eku) in [
        (role.server_flag, ExtendedKeyUsagePurpose::ServerAuth),
        (role.client_flag, ExtendedKeyUsagePurpose::ClientAuth),
        (role.code_signing_flag, ExtendedKeyUsagePurpose::CodeSigning),
        (
            role.email_protection_flag,
            ExtendedKeyUsagePurpose::EmailProtection,
        ),
    ] {
        if on {
            ekus.push(eku);
        }
    }
    for name in &role.ext_key_usage {
        if let Some(eku) = ext_key_usage_from_name(name) {
            if !ekus.contains(&eku) {
                ekus.push(eku);
            }
        }
    }
    for oid in &role.ext_key_usage_oids {
        if let Some(arcs) = parse_oid(oid) {
            ekus.push(ExtendedKeyUsagePurpose::Other(arcs));
        }
    }
    spec.ext_key_usages = ekus;
    Ok(spec)
}

/// Applies the issuer's `leaf_not_after_behavior` when `spec` would outlive the CA.
fn cap_to_issuer(spec: &mut CertSpec, signer: &Signer) -> Result<(), Error> {
    if spec.not_after <= signer.not_after {
        return Ok(());
    }
    match signer.leaf_not_after_behavior.as_str() {
        "truncate" => spec.not_after = signer.not_after,
        "permit" => {}
        _ => {
            return Err(Error::invalid(format!(
                "cannot satisfy request, as TTL would result in notAfter of {} that is beyond \
                 the expiration of the CA certificate at {}",
                go_time(spec.not_after),
                go_time(signer.not_after)
            )))
        }
    }
    Ok(())
}

/// The first name a role does not allow, as OpenBao's `validateNames`.
fn first_disallowed(role: &Role, names: &[String]) -> Option<String> {
    names.iter().find(|name| !name_allowed(role, name)).cloned()
}

fn name_allowed(role: &Role, name: &str) -> bool {
    // An email's domain part is checked as a host name.
    let (host, is_email) = match name.rsplit_once('@') {
        Some((_, domain)) => (domain, true),
        None => (name, false),
    };
    let lower = host.to_ascii_lowercase();
    let (wildcard, base) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    if wildcard && (!role.allow_wildcard_certificates || is_email) {
        return false;
    }
    if role.enforce_hostnames && !is_hostname(base) {
        return false;
    }
    if role.allow_any_name {
        return true;
    }
    if role.allow_localhost && !wildcard && (lower == "localhost" || lower == "localdomain") {
        return true;
    }
    role.allowed_domains.iter().any(|domain| {
        let domain = domain.to_ascii_lowercase();
        if role.allow_bare_domains && !wildcard && lower == domain {
            return true;
        }
        if role.allow_subdomains {
            let parent = domain.strip_prefix("*.").unwrap_or(&domain);
            if lower.ends_with(&format!(".{parent}")) {
                return true;
            }
        }
        role.allow_glob_domains && domain.contains('*') && glob_match(&domain, &lower)
    })
}

/// A host name of letters, digits and hyphens in labels of at most 63 characters.
fn is_hostname(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// `*` matches any run of characters (OpenBao uses ryanuber/go-glob).
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

fn check_csr_key(role: &Role, csr: &Csr) -> Result<(), Error> {
    if role.key_type == "any" {
        return Ok(());
    }
    let wanted = KeyType::parse(&role.key_type)?;
    match csr.key_type {
        Some(t) if t == wanted => {}
        _ => {
            return Err(Error::invalid(format!(
                "role requires keys of type {}",
                role.key_type
            )))
        }
    }
    if wanted != KeyType::Ed25519 && i64::from(csr.key_bits) < role.key_bits {
        return Err(Error::invalid(format!(
            "role requires a minimum of a {}-bit key, but CSR's key is {} bits",
            role.key_bits, csr.key_bits
        )));
    }
    Ok(())
}

fn subject_from(fields: &Fields<'_>, spec: &mut CertSpec) -> Result<(), Error> {
    spec.organization = comma_strings(fields, "organization")?;
    spec.ou = comma_strings(fields, "ou")?;
    spec.country = comma_strings(fields, "country")?;
    spec.locality = comma_strings(fields, "locality")?;
    spec.province = comma_strings(fields, "province")?;
    spec.street_address = comma_strings(fields, "street_address")?;
    spec.postal_code = comma_strings(fields, "postal_code")?;
    Ok(())
}

fn parse_ips(values: &[String]) -> Result<Vec<IpAddr>, Error> {
    values
        .iter()
        .map(|v| {
            v.parse::<IpAddr>()
                .map_err(|_| Error::invalid(format!("the value {v:?} is not a valid IP address")))
        })
        .collect()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// `format`: pem (default), der or pem_bundle.
pub(crate) fn output_format(fields: &Fields<'_>) -> Result<String, Error> {
    let format = fields
        .string("format")?
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "pem".to_owned());
    match format.as_str() {
        "pem" | "der" | "pem_bundle" => Ok(format),
        other => Err(Error::invalid(format!(
            "unknown format for the certificate: {other}"
        ))),
    }
}

/// A certificate in the response format (PEM, or base64 DER).
pub(crate) fn encode_cert(der: &[u8], pem: &str, format: &str) -> Value {
    if format == "der" {
        base64::engine::general_purpose::STANDARD.encode(der).into()
    } else {
        pem.into()
    }
}

/// `certificate`, `issuing_ca`, `ca_chain`, `serial_number`, `expiration`, `not_before`.
fn cert_response(cert: &Issued, signer: &Signer, format: &str) -> Map<String, Value> {
    let as_format = |pem: &str| -> Value {
        if format == "der" {
            super::store::cert_der(pem)
                .map(|der| base64::engine::general_purpose::STANDARD.encode(der).into())
                .unwrap_or(Value::Null)
        } else {
            pem.into()
        }
    };
    let mut data = Map::new();
    let certificate = if format == "pem_bundle" {
        format!("{}\n{}", cert.pem, signer.chain.join("\n")).into()
    } else {
        encode_cert(&cert.der, &cert.pem, format)
    };
    data.insert("certificate".to_owned(), certificate);
    data.insert("issuing_ca".to_owned(), as_format(&signer.cert_pem));
    data.insert(
        "ca_chain".to_owned(),
        Value::Array(signer.chain.iter().map(|p| as_format(p)).collect()),
    );
    data.insert("serial_number".to_owned(), cert.serial.clone().into());
    data.insert("expiration".to_owned(), cert.not_after.into());
    data.insert("not_before".to_owned(), cert.not_before.into());
    data
}

fn finish(data: Map<String, Value>, warnings: Vec<String>, role: &Role, cert: &Issued) -> Response {
    let mut resp = Response::with_data(data);
    resp.warnings = warnings;
    if role.generate_lease {
        // As OpenBao's `secretCerts`: the lease lives as long as the certificate, cannot be
        // renewed, and revoking it revokes the serial kept as its internal data.
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut internal_data = Map::new();
        internal_data.insert("serial_number".to_owned(), cert.serial.clone().into());
        resp.lease = Some(Lease {
            lease_id: String::new(),
            ttl: u64::try_from(cert.not_after - now).unwrap_or(0),
            renewable: false,
            internal_data,
            ..Lease::default()
        });
    }
    resp
}

/// A random positive 20-byte serial, as OpenBao's `certutil.GenerateSerialNumber`: the first
/// byte is in 1..=0x7f so that DER keeps all 20 bytes and the number stays positive.
fn random_serial() -> SerialNumber {
    use rand::RngCore;
    let mut bytes = [0u8; 20];
    // The thread's CSPRNG (ChaCha, seeded from the OS): no system call per certificate.
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes[0] &= 0x7f;
    if bytes[0] == 0 {
        bytes[0] = 1;
    }
    SerialNumber::from_slice(&bytes)
}

fn to_time(unix: i64) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|_| Error::invalid("validity out of range"))
}

/// Go's default `time.Time` printing, as OpenBao's error texts show it.
fn go_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{req, MemStorage};
    use coffer_sdk::{Backend, Operation};
    use serde_json::json;

    fn role(body: Value) -> Role {
        Role::from_fields(&Fields::new(body.as_object().unwrap())).unwrap()
    }

    #[test]
    fn names_follow_the_role() {
        let r = role(json!({"allowed_domains": ["example.com"], "allow_subdomains": true}));
        assert!(name_allowed(&r, "a.example.com"));
        assert!(name_allowed(&r, "a.b.example.com"));
        assert!(name_allowed(&r, "*.example.com"));
        assert!(!name_allowed(&r, "example.com"));
        assert!(!name_allowed(&r, "a.other.com"));
        assert!(!name_allowed(&r, "aexample.com"));
        assert!(name_allowed(&r, "localhost"));
        assert!(name_allowed(&r, "me@a.example.com"));
        let bare = role(
            json!({"allowed_domains": "example.com", "allow_bare_domains": true,
            "allow_localhost": false, "allow_wildcard_certificates": false}),
        );
        assert!(name_allowed(&bare, "example.com"));
        assert!(!name_allowed(&bare, "a.example.com"));
        assert!(!name_allowed(&bare, "localhost"));
        let any = role(json!({"allow_any_name": true}));
        assert!(name_allowed(&any, "anything.test"));
        assert!(!name_allowed(&any, "not a host"));
        let glob =
            role(json!({"allowed_domains": "web-*.example.com", "allow_glob_domains": true}));
        assert!(name_allowed(&glob, "web-1.example.com"));
        assert!(!name_allowed(&glob, "db-1.example.com"));
    }

    /// A root CA and two `generate_lease` roles (`web` stores its certificates, `nostore` not).
    async fn leasing_mount() -> (Pki, MemStorage) {
        let (pki, s) = (Pki::new(), MemStorage::default());
        let role = |no_store| {
            json!({"allowed_domains": "example.com", "allow_subdomains": true, "key_type": "ec",
                "generate_lease": true, "no_store": no_store})
        };
        for (path, body) in [
            (
                "root/generate/internal",
                json!({"common_name": "example.com", "key_type": "ec", "ttl": "8760h"}),
            ),
            ("roles/web", role(false)),
            ("roles/nostore", role(true)),
        ] {
            let resp = pki.handle(req(Operation::Update, path, body), &s).await;
            let warnings = resp.unwrap().map(|r| r.warnings).unwrap_or_default();
            // As OpenBao, a leasing role is written with a warning.
            assert_eq!(
                path.starts_with("roles/"),
                warnings.len() == 1,
                "{warnings:?}"
            );
        }
        (pki, s)
    }

    async fn issue_on(pki: &Pki, s: &MemStorage, role: &str) -> Response {
        let body = json!({"common_name": "a.example.com", "ttl": "1h"});
        pki.handle(req(Operation::Update, &format!("issue/{role}"), body), s)
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn revoking_a_certificates_lease_revokes_the_certificate_and_renewal_is_refused() {
        let (pki, s) = leasing_mount().await;
        let resp = issue_on(&pki, &s, "web").await;
        let serial = resp.data.as_ref().unwrap()["serial_number"].clone();
        let lease = resp.lease.unwrap();
        assert!(
            !lease.renewable && (3590..=3600).contains(&lease.ttl),
            "{lease:?}"
        );
        assert_eq!(lease.internal_data["serial_number"], serial);
        let renewed = pki.renew(&lease, &s).await;
        assert!(matches!(renewed, Err(Error::InvalidRequest(m)) if m == "lease is not renewable"));

        pki.revoke(&lease, &s).await.unwrap();
        let path = format!("cert/{}", serial.as_str().unwrap());
        let cert = pki
            .handle(req(Operation::Read, &path, json!({})), &s)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(cert.data.unwrap()["revocation_time"], json!(0));
        // The revoker may retry a revocation it could not record: a second one succeeds.
        pki.revoke(&lease, &s).await.unwrap();
    }

    #[tokio::test]
    async fn a_lease_whose_certificate_is_not_stored_needs_no_revocation() {
        let (pki, s) = leasing_mount().await;
        let lease = issue_on(&pki, &s, "nostore").await.lease.unwrap();
        pki.revoke(&lease, &s).await.unwrap();
        let no_serial = pki.revoke(&Lease::default(), &s).await;
        assert!(matches!(no_serial, Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn serials_are_twenty_positive_bytes() {
        for _ in 0..50 {
            let s = random_serial();
            assert_eq!(s.len(), 20);
            let bytes = s.to_bytes();
            assert!(bytes[0] >= 1 && bytes[0] <= 0x7f);
        }
    }
}
