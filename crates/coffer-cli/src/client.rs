//! The HTTP client: blocking reqwest over rustls, the `X-Vault-Token` header, the Vault response
//! envelope (`Secret`) and errors worded as OpenBao's Go client words them
//! (`Error making API request.` ... `Code: 403. Errors:`), including its 404 rules: a read or
//! list that finds nothing is `None`, but a 404 carrying data or warnings (a soft-deleted kv-v2
//! version) is a secret.
//!
//! Copies OpenBao `api/logical.go`, `api/response.go` and `api/secret.go`. The token never
//! appears in an error, a log line or `Debug` output.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::output::SortedMap;

/// A Vault token. Its `Debug` is redacted; read it with [`Token::expose`].
pub struct Token(SecretString);

impl Token {
    /// Wraps a token value.
    pub fn new(value: impl Into<String>) -> Token {
        Token(SecretString::from(value.into()))
    }

    /// The token value, for the one place that needs it (a header, a file, bao-style output).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl Clone for Token {
    fn clone(&self) -> Token {
        Token::new(self.expose().to_owned())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([REDACTED])")
    }
}

/// How to reach the server: resolved address, TLS settings and token.
pub(crate) struct ClientConfig {
    pub address: String,
    pub ca_cert: Option<String>,
    pub tls_skip_verify: bool,
    pub token: Option<Token>,
    /// `X-Vault-Wrap-TTL` for every request (`-wrap-ttl`), as Go's duration text.
    pub wrap_ttl: Option<String>,
}

/// What can go wrong talking to the server.
pub(crate) enum Error {
    /// The server answered with an error status.
    Response(ResponseError),
    /// No answer: connection, TLS or timeout trouble, or a body that is not what the API sends.
    Other(String),
}

/// An error status, printed as OpenBao's `api.ResponseError`.
pub(crate) struct ResponseError {
    pub method: String,
    pub url: String,
    pub status: u16,
    pub raw: bool,
    pub errors: Vec<String>,
    /// A 404 that still carried data or warnings (bao prints them after the error).
    pub secret: Option<Box<Secret>>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Other(s) => f.write_str(s),
            Error::Response(r) => {
                let kind = if r.raw { "Raw Message" } else { "Errors" };
                write!(
                    f,
                    "Error making API request.\n\nURL: {} {}\nCode: {}. {}:\n\n",
                    r.method, r.url, r.status, kind
                )?;
                if r.raw && r.errors.len() == 1 {
                    f.write_str(&r.errors[0])
                } else {
                    for e in &r.errors {
                        write!(f, "* {e}")?;
                    }
                    Ok(())
                }
            }
        }
    }
}

impl Error {
    /// The secret a failed write or delete still returned (its warnings), if any.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Error::Response(r) => r.secret.as_deref(),
            Error::Other(_) => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Response(r) => Some(r.status),
            Error::Other(_) => None,
        }
    }
}

/// The response envelope as the Go client decodes and re-encodes it (`api.Secret`): field order
/// and null-versus-absent rules are what `bao ... -format=json` prints.
#[derive(Serialize, Deserialize, Default, Clone)]
pub(crate) struct Secret {
    #[serde(default, deserialize_with = "null_default")]
    pub request_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub lease_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub lease_duration: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub renewable: bool,
    #[serde(default, serialize_with = "ser_sorted_opt")]
    pub data: Option<Map<String, Value>>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<SecretAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap_info: Option<WrapInfo>,
}

/// `api.SecretAuth`. Holds a token, so it has no `Debug`.
#[derive(Serialize, Deserialize, Default, Clone)]
pub(crate) struct SecretAuth {
    #[serde(default, deserialize_with = "null_default")]
    pub client_token: String,
    #[serde(default, deserialize_with = "null_default")]
    pub accessor: String,
    #[serde(default)]
    pub policies: Option<Vec<String>>,
    #[serde(default)]
    pub token_policies: Option<Vec<String>>,
    #[serde(default)]
    pub identity_policies: Option<Vec<String>>,
    #[serde(default, serialize_with = "ser_sorted_opt")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "null_default")]
    pub orphan: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub entity_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub lease_duration: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub renewable: bool,
    #[serde(default)]
    pub mfa_requirement: Option<Value>,
}

/// `api.SecretWrapInfo`. Holds a token, so it has no `Debug`.
#[derive(Serialize, Deserialize, Default, Clone)]
pub(crate) struct WrapInfo {
    #[serde(default, deserialize_with = "null_default")]
    pub token: String,
    #[serde(default, deserialize_with = "null_default")]
    pub accessor: String,
    #[serde(default, deserialize_with = "null_default")]
    pub ttl: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub creation_time: String,
    #[serde(default, deserialize_with = "null_default")]
    pub creation_path: String,
    #[serde(default, deserialize_with = "null_default")]
    pub wrapped_accessor: String,
}

impl Secret {
    fn is_zero(&self) -> bool {
        self.request_id.is_empty()
            && self.lease_id.is_empty()
            && self.lease_duration == 0
            && !self.renewable
            && self.data.is_none()
            && self.warnings.is_none()
            && self.auth.is_none()
            && self.wrap_info.is_none()
    }

    /// Whether a 404 body still counts as an answer (`len(Warnings) > 0 || len(Data) > 0`).
    fn has_content(&self) -> bool {
        self.warnings.as_ref().is_some_and(|w| !w.is_empty())
            || self.data.as_ref().is_some_and(|d| !d.is_empty())
    }
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn ser_sorted_opt<S: serde::Serializer>(
    v: &Option<Map<String, Value>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(m) => SortedMap(m).serialize(s),
        None => s.serialize_none(),
    }
}

/// `api.ParseSecret`: `None` for an empty body; a body that is not an envelope (sys/seal-status)
/// becomes the secret's data; a body holding only `errors` is `None`.
pub(crate) fn parse_secret(body: &str) -> Result<Option<Secret>, String> {
    if body.trim().is_empty() {
        return Ok(None);
    }
    let mut secret: Secret = serde_json::from_str(body).map_err(|e| e.to_string())?;
    if secret.is_zero() {
        let raw: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
        let Value::Object(mut raw) = raw else {
            return Ok(Some(secret));
        };
        if let Some(errs) = raw.get("errors") {
            if raw.len() == 1 {
                return Ok(None);
            }
            let errs: Vec<String> =
                serde_json::from_value(errs.clone()).map_err(|e| e.to_string())?;
            return Err(errs.join(" "));
        }
        if !raw.is_empty() {
            secret.data = Some(std::mem::take(&mut raw));
        }
    }
    Ok(Some(secret))
}

/// A raw answer: status and body.
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
    method: String,
    url: String,
}

impl Reply {
    /// `Response.Error()`: an error for any status outside 200-399.
    fn error(&self) -> Option<Error> {
        if (200..400).contains(&self.status) {
            return None;
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            #[serde(default)]
            errors: Option<Vec<String>>,
        }
        let (raw, errors) = match serde_json::from_str::<ErrorBody>(&self.body) {
            Ok(b) => (false, b.errors.unwrap_or_default()),
            Err(_) => (true, vec![self.body.clone()]),
        };
        Some(Error::Response(ResponseError {
            method: self.method.clone(),
            url: self.url.clone(),
            status: self.status,
            raw,
            errors,
            secret: None,
        }))
    }
}

/// A blocking client for one server.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::blocking::Client,
    address: String,
    token: Option<Token>,
    wrap_ttl: Option<String>,
}

impl Client {
    /// Builds a client; fails on an unreadable CA certificate.
    pub fn new(config: &ClientConfig) -> Result<Client, String> {
        let mut builder = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(60));
        if let Some(path) = &config.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| format!("Error loading CA certificate {path}: {e}"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("Error loading CA certificate {path}: {e}"))?;
            if certs.is_empty() {
                return Err(format!(
                    "Error loading CA certificate {path}: no certificate found"
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if config.tls_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| format!("Error creating client: {e}"))?;
        Ok(Client {
            http,
            address: config.address.trim_end_matches('/').to_owned(),
            token: config.token.clone(),
            wrap_ttl: config.wrap_ttl.clone().filter(|w| !w.is_empty()),
        })
    }

    /// The token requests carry, if any.
    pub fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    /// The same client with response wrapping off: bao's internal requests (the kv pre-flight,
    /// login's unwrap) never ask for a wrapped answer.
    pub fn without_wrapping(&self) -> Client {
        Client {
            wrap_ttl: None,
            ..self.clone()
        }
    }

    /// Replaces the token later requests carry.
    pub fn set_token(&mut self, token: Option<Token>) {
        self.token = token;
    }

    /// Sends one request to `/v1/<path>` and returns whatever status came back.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        content_type: Option<&str>,
    ) -> Result<Reply, Error> {
        let url_text = format!("{}/v1/{}", self.address, path.trim_start_matches('/'));
        let mut url = reqwest::Url::parse(&url_text)
            .map_err(|e| Error::Other(format!("parse {url_text:?}: {e}")))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Error::Other(e.to_string()))?;
        let mut req = self.http.request(m, url.clone());
        req = req.header("X-Vault-Request", "true");
        if let Some(t) = &self.token {
            req = req.header("X-Vault-Token", t.expose());
        }
        if let Some(w) = &self.wrap_ttl {
            req = req.header("X-Vault-Wrap-TTL", w);
        }
        if let Some(b) = body {
            let bytes = serde_json::to_vec(b).map_err(|e| Error::Other(e.to_string()))?;
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    content_type.unwrap_or("application/json"),
                )
                .body(bytes);
        }
        let resp = req.send().map_err(|e| {
            Error::Other(format!(
                "{} {:?}: {}",
                go_method(method),
                url.as_str(),
                error_chain(&e)
            ))
        })?;
        let status = resp.status().as_u16();
        let final_url = resp.url().to_string();
        let body = resp
            .text()
            .map_err(|e| Error::Other(format!("error reading response from {final_url}: {e}")))?;
        Ok(Reply {
            status,
            body,
            method: method.to_owned(),
            url: final_url,
        })
    }

    /// A request whose error statuses are errors; the body as it came.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Reply, Error> {
        let reply = self.send(method, path, query, body, None)?;
        match reply.error() {
            Some(e) => Err(e),
            None => Ok(reply),
        }
    }

    /// A reply whose error status becomes the error.
    pub fn checked(&self, reply: Reply) -> Result<Reply, Error> {
        match reply.error() {
            Some(e) => Err(e),
            None => Ok(reply),
        }
    }

    /// A sys endpoint answering plain JSON (seal-status, init, unseal, leader): the parsed body.
    pub fn sys_json(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Error> {
        let reply = self.raw(method, path, &[], body)?;
        if reply.body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&reply.body).map_err(|e| Error::Other(e.to_string()))
    }

    /// A request whose every error status is an error, its body parsed as a secret (the Go
    /// client's `auth/token/*` and `sys/*` helpers).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Secret>, Error> {
        let reply = self.raw(method, path, &[], body)?;
        parse_secret(&reply.body).map_err(Error::Other)
    }

    /// `Logical().Read` (`GET`), with query parameters.
    pub fn read(&self, path: &str, query: &[(&str, String)]) -> Result<Option<Secret>, Error> {
        self.logical("GET", path, query, None, None, true)
    }

    /// `Logical().List` (`GET ?list=true`).
    pub fn list(&self, path: &str) -> Result<Option<Secret>, Error> {
        self.logical(
            "GET",
            path,
            &[("list", "true".to_owned())],
            None,
            None,
            true,
        )
    }

    /// `Logical().Write` (`PUT` with a JSON body).
    pub fn write(&self, path: &str, body: &Value) -> Result<Option<Secret>, Error> {
        self.logical("PUT", path, &[], Some(body), None, false)
    }

    /// `Logical().JSONMergePatch`.
    pub fn merge_patch(&self, path: &str, body: &Value) -> Result<Option<Secret>, Error> {
        self.logical(
            "PATCH",
            path,
            &[],
            Some(body),
            Some("application/merge-patch+json"),
            false,
        )
    }

    /// `Logical().Delete`, with query parameters.
    pub fn delete(&self, path: &str, query: &[(&str, String)]) -> Result<Option<Secret>, Error> {
        self.logical("DELETE", path, query, None, None, false)
    }

    /// The Go client's logical request: a 404 with data or warnings is still a secret (for
    /// reads); a 404 with neither is "nothing there" for reads and lists and an error otherwise.
    fn logical(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        content_type: Option<&str>,
        not_found_is_none: bool,
    ) -> Result<Option<Secret>, Error> {
        let reply = self.send(method, path, query, body, content_type)?;
        if reply.status == 404 {
            let secret = parse_secret(&reply.body).map_err(Error::Other)?;
            if not_found_is_none {
                return Ok(secret.filter(Secret::has_content));
            }
            if let (Some(Error::Response(mut r)), Some(s)) = (reply.error(), secret) {
                if s.has_content() {
                    r.secret = Some(Box::new(s));
                }
                return Err(Error::Response(r));
            }
        }
        if let Some(e) = reply.error() {
            return Err(e);
        }
        parse_secret(&reply.body).map_err(Error::Other)
    }
}

/// Go prints `Get`, `Put`... in transport errors (`Get "http://...": dial tcp ...`).
fn go_method(method: &str) -> String {
    let lower = method.to_ascii_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_redacted() {
        let t = Token::new("s.verysecret");
        assert_eq!(format!("{t:?}"), "Token([REDACTED])");
        assert_eq!(t.clone().expose(), "s.verysecret");
    }

    #[test]
    fn non_envelope_body_becomes_data() {
        let s = parse_secret(r#"{"sealed":false,"t":1}"#).unwrap().unwrap();
        assert_eq!(s.data.unwrap()["t"], 1);
        assert!(parse_secret(r#"{"errors":[]}"#).unwrap().is_none());
        assert!(parse_secret("").unwrap().is_none());
        assert_eq!(
            parse_secret(r#"{"errors":["a","b"],"x":1}"#).err().unwrap(),
            "a b"
        );
    }

    #[test]
    fn envelope_reencodes_in_go_field_order() {
        let body = r#"{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{"b":1,"a":2},"wrap_info":null,"warnings":null,"auth":null}"#;
        let s = parse_secret(body).unwrap().unwrap();
        assert_eq!(
            crate::output::go_json(&s),
            "{\n  \"request_id\": \"r\",\n  \"lease_id\": \"\",\n  \"lease_duration\": 0,\n  \"renewable\": false,\n  \"data\": {\n    \"a\": 2,\n    \"b\": 1\n  },\n  \"warnings\": null\n}"
        );
    }

    #[test]
    fn response_error_reads_like_the_go_client() {
        let reply = Reply {
            status: 403,
            body: r#"{"errors":["permission denied"]}"#.into(),
            method: "GET".into(),
            url: "http://127.0.0.1:8200/v1/secret/data/foo".into(),
        };
        assert_eq!(
            reply.error().unwrap().to_string(),
            "Error making API request.\n\nURL: GET http://127.0.0.1:8200/v1/secret/data/foo\nCode: 403. Errors:\n\n* permission denied"
        );
        let raw = Reply {
            status: 502,
            body: "bad gateway".into(),
            ..reply
        };
        assert!(raw
            .error()
            .unwrap()
            .to_string()
            .ends_with("Code: 502. Raw Message:\n\nbad gateway"));
    }
}
