//! The HTTP front end: OpenBao's API over axum, with TLS by rustls. It turns HTTP requests into
//! logical requests for `Core`, and logical answers into OpenBao's JSON envelope; every limit
//! (body size, path length, JSON depth, header and request timeouts) is enforced here.
//!
//! Tokens and bodies are never logged: the per-request span holds the request id, method, path,
//! status and latency only.

mod envelope;
mod error;
mod logical;
mod path;
mod serve;
mod sys_raw;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};
use axum::Router;
use coffer_core::Core;

pub use serve::{load_tls, serve};

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body, in bytes (OpenBao's default: 32 MiB).
    pub max_request_size: usize,
    /// The store's name as `sys/seal-status` reports it.
    pub storage_type: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_request_size: 32 * 1024 * 1024,
            storage_type: "inmem".into(),
        }
    }
}

/// Shared by every handler.
pub(crate) struct AppState {
    pub core: Arc<Core>,
    pub config: HttpConfig,
}

/// The API as an axum router (served by `serve`, or called in-process by tests).
pub fn router(core: Arc<Core>, config: HttpConfig) -> Router {
    let limit = config.max_request_size;
    let state = Arc::new(AppState { core, config });
    Router::new()
        .route("/v1/sys/seal-status", get(sys_raw::seal_status))
        .route("/v1/sys/health", get(sys_raw::health).head(sys_raw::health))
        .route(
            "/v1/sys/init",
            get(sys_raw::init_status)
                .put(sys_raw::init)
                .post(sys_raw::init),
        )
        .route("/v1/sys/unseal", any(sys_raw::unseal))
        .route("/v1/sys/seal", any(sys_raw::seal))
        .route("/v1/sys/leader", get(sys_raw::leader))
        .fallback(logical::handle)
        // A wrong method on a seal endpoint: 405 with OpenBao's empty error list.
        .method_not_allowed_fallback(|| async {
            (
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(serde_json::json!({ "errors": [] })),
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
