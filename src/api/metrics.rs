//! `GET /metrics`: the process-wide registry ([`crate::metrics`]) in the
//! Prometheus text format. Unauthenticated like `/healthz`: it tells nothing
//! secret, but it does describe the node's work and earnings, so the
//! listening port should only be reachable by the operator's Prometheus.

use actix_web::{web, HttpResponse};

use crate::metrics;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(scrape));
}

async fn scrape() -> HttpResponse {
    match metrics::render() {
        Ok(text) => HttpResponse::Ok().content_type(metrics::CONTENT_TYPE).body(text),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            HttpResponse::InternalServerError().content_type("text/plain; charset=utf-8").body("metrics unavailable\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{test, App};

    use super::*;

    #[actix_web::test]
    async fn serves_the_text_format() {
        let app = test::init_service(App::new().configure(configure)).await;
        let resp = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
        assert!(resp.status().is_success());
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
        assert_eq!(ct.as_deref(), Some("text/plain; version=0.0.4"));
        let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        assert!(body.contains("# TYPE zkpow_build_info gauge"));
        assert!(body.contains("# HELP zkpow_provers_connected "));
    }
}
