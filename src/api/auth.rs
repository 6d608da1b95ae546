//! The middleware that guards a scope with a [`BearerToken`].

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::ResponseError;

use super::error::ApiError;
use crate::token::BearerToken;

/// Middleware body for `actix_web::middleware::from_fn`: answers 401 in the
/// API's error shape unless the request carries `token`.
pub async fn require_token<B: MessageBody + 'static>(
    token: BearerToken,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if token.matches(req.headers().get(AUTHORIZATION)) {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    tracing::debug!(path = %req.path(), "request without a valid bearer token");
    let resp = ApiError::unauthorized().error_response();
    Ok(req.into_response(resp).map_into_right_body())
}
