//! The control API: readiness (`/readyz`), read endpoints for operators and
//! `zkpow status` (`/v1/status`, `/v1/sequences`, `/v1/sequences/{rollup}/{id}`,
//! `/v1/provers`), control calls (`POST /v1/pause`, `/v1/resume`,
//! `/v1/sequences/{rollup}/{id}/resend`) and the OpenAPI description
//! (`/v1/openapi.json`, kept in `src/api/openapi.json`).
//!
//! Control calls need the admin token; read calls need it too unless
//! `api.read_open` is set. Errors use the API's one JSON shape.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::AUTHORIZATION;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use alloy::providers::{DynProvider, Provider};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::aggregator::dispatcher::{DispatcherHandle, GetSnapshot, GetTask};
use crate::aggregator::ha::Role;
use crate::aggregator::pause::PauseSwitch;
use crate::db::{self, Db, SequenceState, SubmissionStatus};
use crate::token::BearerToken;
use crate::wire::task::{Task, TaskStatus};

/// The OpenAPI 3 description of every route this daemon serves.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What `/readyz` checks per chain.
#[derive(Clone)]
pub struct ChainProbe {
    pub name: String,
    pub chain_id: u64,
    pub confirmations: u64,
    pub provider: DynProvider,
}

#[derive(Clone)]
pub struct RollupInfo {
    pub name: String,
    pub chain: String,
}

#[derive(Clone)]
pub struct ControlApi {
    pub db: Db,
    pub dispatcher: DispatcherHandle,
    pub pause: Arc<PauseSwitch>,
    pub chains: Vec<ChainProbe>,
    pub rollups: Vec<RollupInfo>,
    /// `None`: control calls are refused (no admin token configured).
    pub admin: Option<BearerToken>,
    pub read_open: bool,
    pub max_lag_blocks: u64,
    /// Active (with the lease's epoch) or the database's only user.
    pub role: Role,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Control,
}

/// Read calls pass with `read_open`; everything else needs the admin token.
pub(crate) fn authorize(
    admin: Option<&BearerToken>,
    read_open: bool,
    req: &HttpRequest,
    access: Access,
) -> Result<(), ApiError> {
    if access == Access::Read && read_open {
        return Ok(());
    }
    let Some(token) = admin else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "no admin token is configured (api.admin_token_file or api.admin_token_env)",
        ));
    };
    if token.matches(req.headers().get(AUTHORIZATION)) {
        Ok(())
    } else {
        Err(ApiError::unauthorized())
    }
}

impl ControlApi {
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let query = web::QueryConfig::default()
            .error_handler(|err, _| ApiError::bad_request(format!("query string: {err}")).into());
        let path =
            web::PathConfig::default().error_handler(|err, _| ApiError::bad_request(format!("path: {err}")).into());
        cfg.app_data(web::Data::new(self.clone()))
            .app_data(query)
            .app_data(path)
            .route("/readyz", web::get().to(readyz))
            .route("/v1/openapi.json", web::get().to(openapi))
            .route("/v1/status", web::get().to(status))
            .route("/v1/provers", web::get().to(provers))
            .route("/v1/sequences", web::get().to(sequences))
            .route("/v1/sequences/{rollup}/{id}", web::get().to(sequence))
            .route("/v1/sequences/{rollup}/{id}/resend", web::post().to(resend))
            .route("/v1/pause", web::post().to(pause))
            .route("/v1/resume", web::post().to(resume));
    }

    fn authorize(&self, req: &HttpRequest, access: Access) -> Result<(), ApiError> {
        authorize(self.admin.as_ref(), self.read_open, req, access)
    }

    fn known_rollup(&self, name: &str) -> Result<(), ApiError> {
        if self.rollups.iter().any(|r| r.name == name) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!("no rollup named {name:?}")))
        }
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut db::AnyConnection) -> Result<T, db::DbError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.db
            .run(f)
            .await
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable", format!("{e:#}")))
    }
}

type Api = web::Data<ControlApi>;

#[derive(Serialize)]
struct Check {
    name: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    processed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lag: Option<u64>,
}

async fn readyz(api: Api) -> HttpResponse {
    let mut checks = Vec::new();
    let cursors = api
        .db(|c| {
            let mut out = Vec::new();
            for id in db::chain::all_chain_cursors(c)? {
                out.push(id);
            }
            Ok(out)
        })
        .await;
    checks.push(Check {
        name: "database".into(),
        ok: cursors.is_ok(),
        detail: cursors.as_ref().err().map(|e| e.message.clone()),
        head: None,
        processed: None,
        lag: None,
    });
    let cursors = cursors.unwrap_or_default();
    for ch in &api.chains {
        let head = tokio::time::timeout(Duration::from_secs(3), ch.provider.get_block_number()).await;
        let mut check = Check {
            name: format!("chain:{}", ch.name),
            ok: false,
            detail: None,
            head: None,
            processed: None,
            lag: None,
        };
        match head {
            Ok(Ok(head)) => {
                let processed = cursors.iter().find(|c| c.chain_id == ch.chain_id).map(|c| c.block_number);
                let confirmed = head.saturating_sub(ch.confirmations);
                let lag = processed.map(|p| confirmed.saturating_sub(p));
                check.head = Some(head);
                check.processed = processed;
                check.lag = lag;
                check.ok = lag.is_some_and(|l| l <= api.max_lag_blocks);
                if !check.ok {
                    check.detail = Some(match lag {
                        Some(l) => format!("the watcher is {l} blocks behind (limit {})", api.max_lag_blocks),
                        None => "the watcher has not processed a block yet".into(),
                    });
                }
            }
            Ok(Err(e)) => check.detail = Some(format!("RPC: {e}")),
            Err(_) => check.detail = Some("RPC: no answer within 3 s".into()),
        }
        checks.push(check);
    }
    let ready = checks.iter().all(|c| c.ok);
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "failover": api.role,
        "checks": checks,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(OPENAPI)
}

#[derive(Serialize)]
struct RollupStatus {
    name: String,
    chain: String,
    sequences: std::collections::BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct SubmissionView {
    rollup: String,
    init_batch: u64,
    final_batch: u64,
    status: SubmissionStatus,
    outcome: Option<String>,
    window_id: u32,
    commits: u32,
    reward_wei: String,
    penalty_wei: String,
    note: Option<String>,
    updated_at: db::Millis,
}

impl From<db::Submission> for SubmissionView {
    fn from(s: db::Submission) -> Self {
        SubmissionView {
            rollup: s.rollup,
            init_batch: s.init_batch,
            final_batch: s.final_batch,
            status: s.status,
            outcome: s.outcome,
            window_id: s.window_id,
            commits: s.commits,
            reward_wei: s.reward_wei.to_string(),
            penalty_wei: s.penalty_wei.to_string(),
            note: s.note,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Serialize)]
struct TxView {
    id: String,
    chain_id: u64,
    purpose: db::TxPurpose,
    nonce: u64,
    status: db::TxStatus,
    tx_hash: String,
    replacements: u32,
    gas_used: Option<u64>,
    mined_block: Option<u64>,
    error: Option<String>,
    created_at: db::Millis,
    updated_at: db::Millis,
}

impl From<db::ChainTx> for TxView {
    fn from(t: db::ChainTx) -> Self {
        TxView {
            id: t.id,
            chain_id: t.chain_id,
            purpose: t.purpose,
            nonce: t.nonce,
            status: t.status,
            tx_hash: format!("0x{}", hex::encode(t.tx_hash)),
            replacements: t.replacements,
            gas_used: t.gas_used,
            mined_block: t.mined_block,
            error: t.error,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

async fn status(api: Api, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    api.authorize(&req, Access::Read)?;
    let rollups = api.rollups.clone();
    let (per_rollup, submissions) = api
        .db(move |c| {
            let mut out = Vec::new();
            for r in &rollups {
                let counts = db::sequences::count_sequences_by_state(c, &r.name)?;
                let mut sequences: std::collections::BTreeMap<String, u64> =
                    SequenceState::ALL.iter().map(|s| (s.as_str().to_string(), 0)).collect();
                for (s, n) in counts {
                    sequences.insert(s.as_str().to_string(), n);
                }
                out.push(RollupStatus { name: r.name.clone(), chain: r.chain.clone(), sequences });
            }
            let names: Vec<String> = rollups.iter().map(|r| r.name.clone()).collect();
            Ok((out, db::outbox::list_submissions(c, &names, None)?))
        })
        .await?;
    let snapshot = api.dispatcher.addr().send(GetSnapshot).await?;
    let reward: u128 = submissions.iter().map(|s| s.reward_wei).sum();
    let penalty: u128 = submissions.iter().map(|s| s.penalty_wei).sum();
    let pending: Vec<SubmissionView> =
        submissions.into_iter().filter(|s| s.status == SubmissionStatus::Active).map(Into::into).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "failover": api.role,
        "paused": api.pause.is_paused(),
        "rollups": per_rollup,
        "queue": snapshot.depth,
        "provers": {
            "registered": snapshot.provers.len(),
            "connected": snapshot.provers_connected,
            "working": snapshot.depth.iter().map(|d| d.leased).sum::<usize>(),
            "quarantined": snapshot.provers_quarantined,
        },
        "sender": {
            "pending": pending,
            "reward_wei": reward.to_string(),
            "penalty_wei": penalty.to_string(),
        },
    })))
}

async fn provers(api: Api, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    api.authorize(&req, Access::Read)?;
    let snapshot = api.dispatcher.addr().send(GetSnapshot).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "provers": snapshot.provers })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SequencesQuery {
    rollup: Option<String>,
    state: Option<String>,
    #[serde(default)]
    offset: u64,
    limit: Option<u32>,
}

const MAX_PAGE: u32 = 500;

async fn sequences(api: Api, req: HttpRequest, q: web::Query<SequencesQuery>) -> Result<HttpResponse, ApiError> {
    api.authorize(&req, Access::Read)?;
    let q = q.into_inner();
    if let Some(r) = &q.rollup {
        api.known_rollup(r)?;
    }
    let state = q
        .state
        .as_deref()
        .map(|s| s.parse::<SequenceState>())
        .transpose()
        .map_err(|_| ApiError::bad_request(format!("state must be one of {:?}", SequenceState::ALL)))?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!("limit must be 1..={MAX_PAGE}")));
    }
    let (rollup, offset) = (q.rollup.clone(), q.offset);
    let page = api.db(move |c| db::sequences::page_sequences(c, rollup.as_deref(), state, offset, limit)).await?;
    let next = (page.len() as u32 == limit).then(|| offset + u64::from(limit));
    let items: Vec<serde_json::Value> = page.iter().map(sequence_json).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sequences": items, "next_offset": next })))
}

fn sequence_json(s: &db::Sequence) -> serde_json::Value {
    serde_json::json!({
        "rollup": s.rollup,
        "init_batch": s.init_batch,
        "final_batch": s.final_batch,
        "state": s.state,
        "l1_block": s.l1_block,
        "l1_tx_hash": format!("0x{}", hex::encode(s.l1_tx_hash)),
        "posted_at": s.posted_at,
        "verified_at": s.verified_at,
        "updated_at": s.updated_at,
        // Set once retention dropped its proofs and transaction bytes.
        "pruned_at": s.pruned_at,
    })
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| ApiError::bad_request(format!("sequence id {id:?} is not a batch number")))
}

/// Overwrites a task view's state with the dispatcher's: queued, leased (by
/// whom, until when), failed (why) or done.
fn live_task_state(view: &mut serde_json::Value, live: &Task) {
    view["attempts"] = live.attempts.into();
    match &live.status {
        TaskStatus::Queued => view["status"] = "queued".into(),
        TaskStatus::Leased { holder, expires_at_ms } => {
            view["status"] = "leased".into();
            view["lease_holder"] = holder.clone().into();
            view["lease_expires_at"] = (*expires_at_ms).into();
        }
        TaskStatus::Done => view["status"] = "done".into(),
        TaskStatus::Failed { reason } => {
            view["status"] = "failed".into();
            view["last_error"] = reason.clone().into();
        }
    }
}

async fn sequence(api: Api, req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    api.authorize(&req, Access::Read)?;
    let (rollup, id) = path.into_inner();
    api.known_rollup(&rollup)?;
    let init = parse_id(&id)?;
    let r = rollup.clone();
    let found = api
        .db(move |c| {
            let Some(seq) = db::sequences::get_sequence(c, &r, init)? else { return Ok(None) };
            let tasks = db::tasks::sequence_tasks(c, &r, init)?;
            let mut proofs = Vec::new();
            for t in &tasks {
                if let Some(p) = db::tasks::get_proof(c, &t.id)? {
                    proofs.push(serde_json::json!({ "task_id": t.id, "prover": p.prover, "created_at": p.created_at }));
                }
            }
            let submission = db::outbox::get_submission(c, &r, init)?;
            let txs = db::outbox::sequence_txs(c, &r, init)?;
            Ok(Some((seq, tasks, proofs, submission, txs)))
        })
        .await?;
    let Some((seq, tasks, proofs, submission, txs)) = found else {
        return Err(ApiError::not_found(format!("no sequence {rollup}/{init}")));
    };
    let mut timeline = vec![(seq.posted_at, "posted".to_string())];
    if let Some(first) = tasks.iter().map(|t| t.created_at).min() {
        timeline.push((first, "proving started".into()));
    }
    for t in &txs {
        timeline.push((t.created_at, format!("{} sent (window {})", t.purpose, t.window_id)));
        if !t.status.is_open() {
            timeline.push((t.updated_at, format!("{} {}", t.purpose, t.status)));
        }
    }
    if let Some(v) = seq.verified_at {
        timeline.push((v, "verified on chain".into()));
    }
    if let Some(p) = seq.pruned_at {
        timeline.push((p, "proofs and transaction bytes pruned".into()));
    }
    timeline.sort();
    let mut views = Vec::with_capacity(tasks.len());
    for t in &tasks {
        let mut v = serde_json::json!({
            "id": t.id, "kind": t.kind, "first_batch": t.first_batch, "last_batch": t.last_batch,
            "status": t.status, "attempts": t.attempts, "last_error": t.last_error,
            "created_at": t.created_at, "updated_at": t.updated_at,
        });
        // The database records a task and its proof; leases and failures
        // live in the dispatcher, which has the current state.
        if t.status != db::TaskStatus::Done {
            if let Some(live) = api.dispatcher.addr().send(GetTask(t.id.clone())).await? {
                live_task_state(&mut v, &live);
            }
        }
        views.push(v);
    }
    let tasks = views;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "sequence": sequence_json(&seq),
        "tasks": tasks,
        "proofs": proofs,
        "submission": submission.map(SubmissionView::from),
        "transactions": txs.into_iter().map(TxView::from).collect::<Vec<_>>(),
        "timeline": timeline.into_iter().map(|(at, event)| serde_json::json!({ "at": at, "event": event })).collect::<Vec<_>>(),
    })))
}

async fn resend(api: Api, req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    api.authorize(&req, Access::Control)?;
    let (rollup, id) = path.into_inner();
    api.known_rollup(&rollup)?;
    let init = parse_id(&id)?;
    let r = rollup.clone();
    let outcome = api
        .db(move |c| {
            db::transaction(c, |c| {
                let Some(seq) = db::sequences::get_sequence(c, &r, init)? else { return Ok(Err("unknown")) };
                if seq.state.is_settled() {
                    return Ok(Err("settled"));
                }
                let now = db::now_ms();
                if db::outbox::get_submission(c, &r, init)?.is_some() {
                    db::outbox::reopen_submission(c, &r, init, now)?;
                } else if matches!(seq.state, SequenceState::Proven | SequenceState::Committed) {
                    db::outbox::offer_submission(c, &r, init, seq.final_batch, now)?;
                } else {
                    return Ok(Err("unproven"));
                }
                Ok(Ok(db::outbox::get_submission(c, &r, init)?))
            })
        })
        .await?;
    match outcome {
        Ok(sub) => {
            tracing::info!(rollup = %rollup, init_batch = init, "resend requested");
            Ok(HttpResponse::Accepted().json(serde_json::json!({ "submission": sub.map(SubmissionView::from) })))
        }
        Err("unknown") => Err(ApiError::not_found(format!("no sequence {rollup}/{init}"))),
        Err("settled") => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_settled",
            format!("sequence {rollup}/{init} is verified or skipped; there is nothing to resend"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_proven",
            format!("sequence {rollup}/{init} has no final proof yet; it is sent as soon as it has"),
        )),
    }
}

async fn pause(api: Api, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    api.authorize(&req, Access::Control)?;
    api.pause.set(true);
    tracing::warn!("paused: no new leases, no new transactions");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "paused": true })))
}

async fn resume(api: Api, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    api.authorize(&req, Access::Control)?;
    api.pause.set(false);
    api.dispatcher.wake();
    tracing::info!("resumed");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "paused": false })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::task::test_support::batch;

    #[test]
    fn a_task_view_shows_the_dispatchers_state() {
        let mut queue = crate::aggregator::TaskQueue::new(Default::default());
        let new = batch("r", 1, 1);
        let id = new.id();
        queue.enqueue(new).unwrap();
        let mut live = queue.get(&id).cloned().unwrap();
        let mut v = serde_json::json!({ "status": "queued", "attempts": 0, "last_error": null });
        live.status = TaskStatus::Leased { holder: "p1".into(), expires_at_ms: 42 };
        live.attempts = 2;
        live_task_state(&mut v, &live);
        assert_eq!(
            (v["status"].as_str(), v["lease_holder"].as_str(), v["attempts"].as_u64()),
            (Some("leased"), Some("p1"), Some(2))
        );
        live.status = TaskStatus::Failed { reason: "prover p1 failed: out of memory".into() };
        live_task_state(&mut v, &live);
        assert_eq!(v["status"], "failed");
        assert_eq!(v["last_error"], "prover p1 failed: out of memory");
    }
}
