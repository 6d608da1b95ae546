//! The one error shape every HTTP endpoint answers with:
//! `{"error": {"code": "snake_case_code", "message": "human text"}}` and a
//! 4xx/5xx status. Clients branch on `code`; `message` is for people.

use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::aggregator::DispatchError;
use crate::wire::error::{ErrorBody, ErrorDetail};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Sent as `Retry-After` (seconds) when the client should wait.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after_s: None }
    }

    pub fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// For `JsonConfig::error_handler`: body problems in the same shape.
    pub fn from_json(err: &JsonPayloadError) -> Self {
        match err {
            JsonPayloadError::OverflowKnownLength { .. }
            | JsonPayloadError::Overflow { .. }
            | JsonPayloadError::Payload(PayloadError::Overflow) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", err.to_string())
            }
            JsonPayloadError::ContentType => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ),
            JsonPayloadError::Deserialize(e) => ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()),
            other => ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", other.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        if let Some(s) = self.retry_after_s {
            resp.insert_header((header::RETRY_AFTER, s.to_string()));
        }
        resp.json(ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message.clone() } })
    }
}

impl From<DispatchError> for ApiError {
    fn from(e: DispatchError) -> Self {
        let message = e.to_string();
        let (status, code) = match &e {
            DispatchError::UnknownProver(_) => (StatusCode::NOT_FOUND, "unknown_prover"),
            DispatchError::Quarantined { .. } => (StatusCode::FORBIDDEN, "quarantined"),
            DispatchError::UnknownTask(_) => (StatusCode::NOT_FOUND, "unknown_task"),
            DispatchError::NotHolder(_) => (StatusCode::CONFLICT, "not_holder"),
            DispatchError::NotLeased { .. } => (StatusCode::CONFLICT, "not_leased"),
            DispatchError::AlreadyDone(_) => (StatusCode::CONFLICT, "already_done"),
            DispatchError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            DispatchError::MalformedProof(_) => (StatusCode::BAD_REQUEST, "malformed_proof"),
            DispatchError::InvalidProof(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_proof"),
            DispatchError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        let mut err = ApiError::new(status, code, message);
        match e {
            DispatchError::Quarantined { retry_after_ms, .. } => {
                err.retry_after_s = Some(retry_after_ms.div_ceil(1000).max(1));
            }
            DispatchError::Unavailable(_) => err.retry_after_s = Some(1),
            _ => {}
        }
        err
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("dispatcher: {e}"))
    }
}

/// Default service: unknown routes answer in the error shape too.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::not_found(format!("no route for {} {}", req.method(), req.path())).error_response()
}
