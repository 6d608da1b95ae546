//! Request limits every server of the daemon applies before routing, so an
//! abusive request gets the same JSON error shape as any other.
//!
//! actix-http itself answers a bare `431` and closes the connection when a
//! request head outgrows its 128 KiB parse buffer; that happens before any
//! application code runs, so it cannot carry a body. [`MAX_URI_BYTES`] sits
//! far below that, so every URI long enough to be a mistake or an attack but
//! still parseable gets a `414` with the usual body.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::ResponseError;

use super::ApiError;

/// Longest request target (path and query) served. The longest real one,
/// `/v1/sequences?...` with every filter, is a few hundred bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Middleware (`.wrap(from_fn(uri_length))`): `414 uri_too_long` for a
/// request target over [`MAX_URI_BYTES`].
pub async fn uri_length<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len <= MAX_URI_BYTES {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    tracing::debug!(len, method = %req.method(), "request target too long");
    let err = ApiError::new(
        StatusCode::URI_TOO_LONG,
        "uri_too_long",
        format!("the request target is {len} bytes; at most {MAX_URI_BYTES} are accepted"),
    );
    Ok(req.into_response(err.error_response()).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App, HttpResponse};

    use super::*;

    #[actix_web::test]
    async fn long_targets_get_414_in_the_error_shape_and_short_ones_pass() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(uri_length))
                .route("/echo", web::get().to(|| async { HttpResponse::Ok().body("ok") }))
                .default_service(web::to(crate::api::not_found)),
        )
        .await;

        let at_limit = format!("/echo?q={}", "a".repeat(MAX_URI_BYTES - "/echo?q=".len()));
        let resp = test::call_service(&app, test::TestRequest::get().uri(&at_limit).to_request()).await;
        assert_eq!(resp.status(), StatusCode::OK);

        let over = format!("{at_limit}b");
        let resp = test::call_service(&app, test::TestRequest::get().uri(&over).to_request()).await;
        assert_eq!(resp.status(), StatusCode::URI_TOO_LONG);
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(body["error"]["code"], "uri_too_long", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(&MAX_URI_BYTES.to_string()), "{body}");

        // An unknown long path is refused for its length, not routed.
        let path = format!("/{}", "x".repeat(MAX_URI_BYTES));
        let resp = test::call_service(&app, test::TestRequest::get().uri(&path).to_request()).await;
        assert_eq!(resp.status(), StatusCode::URI_TOO_LONG);
    }
}
