//! The one place a failure becomes an HTTP status and a Vault-shaped `{"errors": [...]}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use coffer_sdk::Error;
use serde_json::json;

/// An error on its way to the client, with the request id for the log.
pub struct ApiError {
    pub error: Error,
    pub request_id: String,
}

impl ApiError {
    pub fn new(error: Error, request_id: &str) -> Self {
        ApiError {
            error,
            request_id: request_id.to_owned(),
        }
    }
}

/// The status of each error kind, as OpenBao answers.
pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        Error::PermissionDenied | Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound | Error::UnsupportedPath(_) => StatusCode::NOT_FOUND,
        Error::UnsupportedOperation => StatusCode::METHOD_NOT_ALLOWED,
        Error::Sealed | Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.error);
        let errors = match &self.error {
            // OpenBao answers a missing secret with an empty list, and wraps a wrong method in
            // its multierror text.
            Error::NotFound => vec![],
            Error::UnsupportedOperation => {
                vec!["1 error occurred:\n\t* unsupported operation\n\n".to_owned()]
            }
            Error::Internal(detail) => {
                tracing::error!(request_id = %self.request_id, detail = %detail, "internal error");
                vec!["internal error".to_owned()]
            }
            other => vec![other.to_string()],
        };
        (status, Json(json!({ "errors": errors }))).into_response()
    }
}

/// A plain error response outside a logical request (limits, path checks).
pub fn plain(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "errors": [message] }))).into_response()
}
