//! What a standby aggregator serves while another process of the same miner
//! holds the lease: `/healthz`, `/metrics`, `/readyz` (503, so that a load
//! balancer in front of both processes sends provers to the active one) and
//! `/v1/status` naming the role and the active holder. Every other route
//! answers 503 `standby` with `Retry-After`, which provers treat as "try
//! again shortly".

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::control::{authorize, Access};
use super::error::ApiError;
use crate::aggregator::ha::{Role, LEASE_NAME};
use crate::db::{self, Db};
use crate::token::BearerToken;

#[derive(Clone)]
pub struct StandbyApi {
    pub db: Db,
    pub holder: String,
    pub admin: Option<BearerToken>,
    pub read_open: bool,
}

impl StandbyApi {
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .route("/readyz", web::get().to(readyz))
            .route("/v1/status", web::get().to(status));
    }

    /// The lease's current holder and epoch, for people.
    async fn active(&self) -> serde_json::Value {
        match self.db.run(|c| db::lease::get(c, LEASE_NAME)).await {
            Ok(Some((row, now))) => serde_json::json!({
                "holder": row.holder,
                "epoch": row.epoch,
                "expires_in_ms": row.expires_at - now,
            }),
            Ok(None) => serde_json::Value::Null,
            Err(e) => serde_json::json!({ "error": format!("{e:#}") }),
        }
    }

    fn role(&self) -> Role {
        Role::Standby { holder: self.holder.clone() }
    }
}

type Api = web::Data<StandbyApi>;

async fn readyz(api: Api) -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(serde_json::json!({
        "status": "standby",
        "failover": api.role(),
        "active": api.active().await,
    }))
}

async fn status(api: Api, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    authorize(api.admin.as_ref(), api.read_open, &req, Access::Read)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "failover": api.role(),
        "active": api.active().await,
    })))
}

/// Default service of a standby: every other route.
pub async fn unavailable(req: HttpRequest) -> HttpResponse {
    let mut err = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "standby",
        format!(
            "{} {}: this aggregator is a standby; another process of this miner is active",
            req.method(),
            req.path()
        ),
    );
    err.retry_after_s = Some(1);
    err.error_response()
}
