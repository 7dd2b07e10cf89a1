//! Every `/v1/...` path that is not a seal endpoint: checked, turned into a logical request,
//! run through the core, and answered in OpenBao's envelope.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Request as HttpRequest, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_sdk::{Error, Operation, Request};
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::error::{plain, status_of, ApiError};
use crate::path::{self, PathCheck};
use crate::{envelope, AppState};

/// The fallback handler for logical paths.
pub async fn handle(State(app): State<Arc<AppState>>, req: HttpRequest) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = req.method().clone();
    let span = tracing::debug_span!("request", id = %request_id, method = %method, path = tracing::field::Empty, status = tracing::field::Empty);
    let started = Instant::now();
    let response = async {
        let response = serve(&app, req, &request_id).await;
        let span = tracing::Span::current();
        span.record("status", response.status().as_u16());
        tracing::debug!(latency_us = started.elapsed().as_micros() as u64, "served");
        response
    }
    .instrument(span)
    .await;
    response
}

async fn serve(app: &AppState, req: HttpRequest, request_id: &str) -> Response {
    let (parts, body) = req.into_parts();
    let Some(rel) = parts.uri.path().strip_prefix("/v1/") else {
        return plain(StatusCode::NOT_FOUND, "404 page not found");
    };
    if rel.len() > path::MAX_PATH_LEN {
        return plain(StatusCode::URI_TOO_LONG, "request path is too long");
    }
    let logical_path = match path::check(rel) {
        PathCheck::Serve(p) => p,
        PathCheck::Redirect(clean) => {
            let mut location = format!("/v1/{clean}");
            if let Some(q) = parts.uri.query() {
                location.push('?');
                location.push_str(q);
            }
            return (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response();
        }
        PathCheck::Invalid(msg) => return plain(StatusCode::BAD_REQUEST, msg),
    };
    tracing::Span::current().record("path", logical_path.as_str());

    let query = parse_query(parts.uri.query());
    let list_query = query
        .get("list")
        .and_then(Value::as_str)
        .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"));
    let operation = match parts.method.as_str() {
        "GET" if list_query => Operation::List,
        "GET" => Operation::Read,
        "POST" | "PUT" => Operation::Update,
        "PATCH" => Operation::Patch,
        "DELETE" => Operation::Delete,
        "LIST" => Operation::List,
        _ => return ApiError::new(Error::UnsupportedOperation, request_id).into_response(),
    };

    // As OpenBao: a PATCH body is a JSON merge patch and must say so.
    if operation == Operation::Patch {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with("application/merge-patch+json") {
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("PATCH requires Content-Type of application/merge-patch+json, provided {content_type}"),
            );
        }
    }

    let bytes = match axum::body::to_bytes(body, app.config.max_request_size).await {
        Ok(b) => b,
        Err(_) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "http: request body too large",
            );
        }
    };
    let mut data = match operation {
        Operation::Update | Operation::Patch | Operation::Delete => match parse_body(&bytes) {
            Ok(d) => d,
            Err(e) => return ApiError::new(e, request_id).into_response(),
        },
        _ => Map::new(),
    };
    // As OpenBao: query parameters are fields of reads, lists and deletes.
    if matches!(
        operation,
        Operation::Read | Operation::List | Operation::Delete
    ) {
        for (k, v) in query {
            if k != "list" {
                data.entry(k).or_insert(v);
            }
        }
    }

    let wrap_ttl = match parts.headers.get("x-vault-wrap-ttl").map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => match coffer_sdk::duration::parse_str(v) {
            Ok(ttl) if ttl > 0 => Some(ttl),
            _ => return plain(StatusCode::BAD_REQUEST, "invalid wrap TTL"),
        },
        Some(Err(_)) => return plain(StatusCode::BAD_REQUEST, "invalid wrap TTL"),
    };
    let mut logical = Request::new(operation, logical_path);
    logical.wrap_ttl = wrap_ttl;
    logical.remote_addr = parts
        .extensions
        .get::<crate::serve::RemoteAddr>()
        .map(|a| a.0.ip().to_string());
    logical.id = request_id.to_owned();
    logical.data = data;
    // An unwrapped response is the original one, not a sys answer; OpenBao copies no lease
    // answer to the top level either.
    let sys_path = logical.path.starts_with("sys/")
        && !logical.path.starts_with("sys/wrapping/")
        && !logical.path.starts_with("sys/leases");
    let is_read = matches!(operation, Operation::Read | Operation::List);
    match app.core.handle(logical, token_of(&parts.headers)).await {
        Ok(Some(resp)) => {
            let status = resp
                .http_status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            if envelope::is_empty(&resp) {
                // Nothing to say: 204, or the bare status a backend asked for (OpenBao's
                // kv-v2 PATCH of a missing secret is a 404 with an empty body).
                return if status == StatusCode::OK {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    (status, [NO_STORE, JSON]).into_response()
                };
            }
            if let Some(raw) = raw_body(&resp) {
                return raw;
            }
            let body = envelope::to_json(request_id, &resp, sys_path);
            (status, [NO_STORE, JSON], body).into_response()
        }
        Ok(None) if is_read => ApiError::new(Error::NotFound, request_id).into_response(),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            if status_of(&e) == StatusCode::INTERNAL_SERVER_ERROR {
                tracing::warn!(request_id, "request failed");
            }
            ApiError::new(e, request_id).into_response()
        }
    }
}

const NO_STORE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-store");
const JSON: (header::HeaderName, &str) = (header::CONTENT_TYPE, "application/json");

/// A response a backend asked to send as a bare body (`Response::raw`), as OpenBao serves
/// PEM, DER and public keys.
fn raw_body(resp: &coffer_sdk::Response) -> Option<Response> {
    use base64::Engine;
    let data = resp.data.as_ref()?;
    let body = data.get("http_raw_body")?.as_str()?;
    let body = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let content_type = data
        .get("http_content_type")
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream")
        .to_owned();
    let status = data
        .get("http_status_code")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok())
        .unwrap_or(StatusCode::OK);
    Some((status, [(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// The caller's token: `X-Vault-Token`, else `Authorization: Bearer`.
pub fn token_of(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Parses a JSON object body; an empty body is an empty object. serde_json refuses nesting
/// deeper than 128 levels, which bounds the JSON depth.
pub fn parse_body(bytes: &Bytes) -> Result<Map<String, Value>, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(Error::invalid(
            "failed to decode JSON input: the body must be a JSON object",
        )),
        Err(e) => Err(Error::invalid(format!("failed to decode JSON input: {e}"))),
    }
}

fn parse_query(query: Option<&str>) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(query) = query else { return out };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            let s = s.replace('+', " ");
            percent_decode_lossy(&s)
        };
        out.insert(decode(k), Value::String(decode(v)));
    }
    out
}

fn percent_decode_lossy(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
