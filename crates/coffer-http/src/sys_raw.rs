//! The seal endpoints, which answer without the envelope and work while sealed, as OpenBao's
//! `http/sys_seal.go`, `sys_init.go` and `sys_health.go` do.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use coffer_core::seal::{SealConfig, SealStatus};
use coffer_sdk::Error;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::error::{plain, ApiError};
use crate::logical::{parse_body, token_of};
use crate::AppState;

const VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn seal_status(State(app): State<Arc<AppState>>) -> Response {
    match app.core.seal_status().await {
        Ok(status) => Json(status_json(&app, &status)).into_response(),
        Err(e) => ApiError::new(e, "").into_response(),
    }
}

pub async fn health(
    State(app): State<Arc<AppState>>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let status = match app.core.seal_status().await {
        Ok(s) => s,
        Err(e) => return ApiError::new(e, "").into_response(),
    };
    let code = |name: &str, default: u16| {
        query
            .get(name)
            .and_then(|v| v.parse::<u16>().ok())
            .unwrap_or(default)
    };
    let (code, standby) = if !status.initialized {
        (code("uninitcode", 501), true)
    } else if status.sealed {
        (code("sealedcode", 503), true)
    } else {
        (code("activecode", 200), false)
    };
    let status_code = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    if method == Method::HEAD {
        return status_code.into_response();
    }
    let mut body = json!({
        "initialized": status.initialized,
        "sealed": status.sealed,
        "standby": standby,
        "replication_performance_mode": if standby { "unknown" } else { "disabled" },
        "replication_dr_mode": if standby { "unknown" } else { "disabled" },
        "server_time_utc": chrono_now(),
        "version": VERSION,
    });
    if !status.sealed {
        body["cluster_name"] = json!("coffer-cluster");
    }
    // Beyond OpenBao: the state of every audit device, so that a failing one shows at once.
    let devices = app.core.audit().health();
    if !devices.is_empty() {
        body["audit_devices"] = json!(devices);
    }
    (status_code, Json(body)).into_response()
}

pub async fn init_status(State(app): State<Arc<AppState>>) -> Response {
    match app.core.seal_status().await {
        Ok(s) => Json(json!({ "initialized": s.initialized })).into_response(),
        Err(e) => ApiError::new(e, "").into_response(),
    }
}

pub async fn init(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    let data = match parse_body(&body) {
        Ok(d) => d,
        Err(e) => return ApiError::new(e, "").into_response(),
    };
    let number = |field: &str| data.get(field).and_then(Value::as_u64).unwrap_or(0);
    let (shares, threshold) = (number("secret_shares"), number("secret_threshold"));
    if shares > 255 || threshold > 255 {
        return plain(
            StatusCode::BAD_REQUEST,
            "invalid seal configuration: shares must be at most 255",
        );
    }
    let config = SealConfig {
        secret_shares: shares as u8,
        secret_threshold: threshold as u8,
    };
    match app.core.init(config).await {
        Ok(result) => {
            let b64 = base64::engine::general_purpose::STANDARD;
            let keys: Vec<String> = result
                .shares
                .iter()
                .map(|s| hex::encode(s.expose_secret()))
                .collect();
            let keys_base64: Vec<String> = result
                .shares
                .iter()
                .map(|s| b64.encode(s.expose_secret()))
                .collect();
            Json(json!({
                "keys": keys,
                "keys_base64": keys_base64,
                "root_token": result.root_token.expose_secret(),
            }))
            .into_response()
        }
        Err(e) => ApiError::new(e, "").into_response(),
    }
}

pub async fn unseal(State(app): State<Arc<AppState>>, method: Method, body: Bytes) -> Response {
    if method != Method::PUT && method != Method::POST {
        return ApiError::new(Error::UnsupportedOperation, "").into_response();
    }
    let data = match parse_body(&body) {
        Ok(d) => d,
        Err(e) => return ApiError::new(e, "").into_response(),
    };
    let result = if data.get("reset").and_then(Value::as_bool).unwrap_or(false) {
        app.core.unseal_reset();
        app.core.seal_status().await
    } else {
        let Some(key) = data.get("key").and_then(Value::as_str) else {
            return plain(
                StatusCode::BAD_REQUEST,
                "'key' must be specified in request body as JSON, or 'reset' set to true",
            );
        };
        let decoded = hex::decode(key)
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(key))
            .map_err(|_| Error::invalid("'key' must be a valid hex or base64 string"));
        match decoded {
            Ok(bytes) => app.core.unseal(&bytes).await,
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(status) => Json(status_json(&app, &status)).into_response(),
        Err(e) => ApiError::new(e, "").into_response(),
    }
}

pub async fn seal(
    State(app): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if method != Method::PUT && method != Method::POST {
        return ApiError::new(Error::UnsupportedOperation, "").into_response();
    }
    match app.core.seal(token_of(&headers)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => ApiError::new(e, "").into_response(),
    }
}

pub async fn leader() -> Response {
    Json(json!({ "ha_enabled": false })).into_response()
}

fn status_json(app: &AppState, status: &SealStatus) -> Value {
    let mut body = json!({
        "type": "shamir",
        "initialized": status.initialized,
        "sealed": status.sealed,
        "t": status.t,
        "n": status.n,
        "progress": status.progress,
        "nonce": status.nonce,
        "recovery_seal": false,
        "version": VERSION,
        "migration": false,
        "storage_type": app.config.storage_type,
    });
    if !status.sealed {
        body["cluster_name"] = json!("coffer-cluster");
    }
    body
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
