//! `/healthz`: the process is up and serving HTTP. Unauthenticated, cheap,
//! and independent of the chain and the database (readiness is separate).

use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}
