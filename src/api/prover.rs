//! The prover protocol's server: HTTP JSON under `/v1/prover/*`,
//! bearer-token auth, forwarded to the [`Dispatcher`] actor. The messages
//! are in [`crate::wire::prover`], shared with the worker client.

use actix::Addr;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};

use super::auth::require_token;
use super::error::ApiError;
use crate::aggregator::dispatcher::{Fail, Heartbeat, Register, Release, Submit};
use crate::aggregator::{Dispatcher, DispatcherHandle, Lease};
use crate::token::BearerToken;
use crate::wire::prover::{
    ClaimRequest, ClaimResponse, FailRequest, FailResponse, HeartbeatResponse, RegisterRequest, RegisterResponse,
    ReleaseResponse, SubmitRequest, SubmitResponse, TaskRef,
};

/// Default body limit. A final bundle of a thousand batch proofs is under
/// 2 MB of JSON; anything much bigger is not a protocol message.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 << 20;

/// Longest failure reason kept; the rest is cut.
const MAX_REASON_LEN: usize = 1024;

impl From<Lease> for ClaimResponse {
    fn from(l: Lease) -> Self {
        let t = l.task;
        ClaimResponse {
            task_id: t.id,
            rollup: t.rollup,
            seq_height: t.seq_height,
            first_batch: t.first_batch,
            last_batch: t.last_batch,
            shape: t.shape,
            vk_hash: t.vk_hash,
            attempts: t.attempts,
            lease_expires_at_ms: l.expires_at_ms,
            input: t.input,
        }
    }
}

/// The prover protocol's routes and what they need.
#[derive(Clone)]
pub struct ProverApi {
    pub dispatcher: DispatcherHandle,
    pub token: BearerToken,
    pub max_body_bytes: usize,
}

impl ProverApi {
    pub fn new(dispatcher: DispatcherHandle, token: BearerToken) -> Self {
        ProverApi { dispatcher, token, max_body_bytes: DEFAULT_MAX_BODY_BYTES }
    }

    /// Mounts `/v1/prover/*`: `App::new().configure(|c| api.configure(c))`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let token = self.token.clone();
        let json = web::JsonConfig::default()
            .limit(self.max_body_bytes)
            .error_handler(|err, _req| ApiError::from_json(&err).into());
        cfg.service(
            web::scope("/v1/prover")
                .wrap(from_fn(move |req, next| require_token(token.clone(), req, next)))
                .app_data(json)
                .app_data(web::Data::new(self.dispatcher.addr().clone()))
                .app_data(web::Data::new(self.dispatcher.clone()))
                .route("/register", web::post().to(register))
                .route("/claim", web::post().to(claim))
                .route("/heartbeat", web::post().to(heartbeat))
                .route("/submit", web::post().to(submit))
                .route("/fail", web::post().to(fail))
                .route("/release", web::post().to(release))
                .default_service(web::to(super::error::not_found)),
        );
    }
}

type Dispatch = web::Data<Addr<Dispatcher>>;

async fn register(d: Dispatch, body: web::Json<RegisterRequest>) -> Result<HttpResponse, ApiError> {
    let RegisterRequest { name, version, shapes, threads } = body.into_inner();
    let r = d.send(Register { name, version, shapes, threads }).await??;
    Ok(HttpResponse::Ok().json(RegisterResponse {
        prover_id: r.prover_id,
        lease_ms: r.lease_ms,
        heartbeat_ms: r.heartbeat_ms,
        poll_ms: r.poll_ms,
    }))
}

async fn claim(d: web::Data<DispatcherHandle>, body: web::Json<ClaimRequest>) -> Result<HttpResponse, ApiError> {
    let ClaimRequest { prover_id, wait_ms } = body.into_inner();
    match d.claim(&prover_id, wait_ms).await? {
        Some(lease) => Ok(HttpResponse::Ok().json(ClaimResponse::from(lease))),
        None => Ok(HttpResponse::NoContent().finish()),
    }
}

async fn heartbeat(d: Dispatch, body: web::Json<TaskRef>) -> Result<HttpResponse, ApiError> {
    let TaskRef { prover_id, task_id } = body.into_inner();
    let lease_expires_at_ms = d.send(Heartbeat { prover_id, task_id }).await??;
    Ok(HttpResponse::Ok().json(HeartbeatResponse { lease_expires_at_ms }))
}

async fn submit(d: Dispatch, body: web::Json<SubmitRequest>) -> Result<HttpResponse, ApiError> {
    let SubmitRequest { prover_id, task_id, proof } = body.into_inner();
    d.send(Submit { prover_id, task_id, proof }).await??;
    Ok(HttpResponse::Ok().json(SubmitResponse { accepted: true }))
}

async fn fail(d: Dispatch, body: web::Json<FailRequest>) -> Result<HttpResponse, ApiError> {
    let FailRequest { prover_id, task_id, mut reason } = body.into_inner();
    if reason.len() > MAX_REASON_LEN {
        let mut cut = MAX_REASON_LEN;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    let out = d.send(Fail { prover_id, task_id, reason }).await??;
    Ok(HttpResponse::Ok().json(FailResponse { requeued: out.requeued, attempts: out.attempts }))
}

async fn release(d: Dispatch, body: web::Json<TaskRef>) -> Result<HttpResponse, ApiError> {
    let TaskRef { prover_id, task_id } = body.into_inner();
    d.send(Release { prover_id, task_id }).await??;
    Ok(HttpResponse::Ok().json(ReleaseResponse { released: true }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix::Actor;
    use actix_web::http::{header, StatusCode};
    use actix_web::{test, App};
    use serde_json::{json, Value};

    use super::*;
    use crate::aggregator::dispatcher::{DispatcherConfig, Enqueue, GetTask, ProofVerifier};
    use crate::aggregator::testing::{
        AcceptAllVerifierForProtocolTests, MemorySinkForTests, RejectAllVerifierForProtocolTests,
    };
    use crate::aggregator::{QueueConfig, TaskStatus};
    use crate::wire::task::test_support::{aggregate, batch, bundle, output, VK};

    const TOKEN: &str = "test-token-0123456789";

    struct Ctx {
        dispatcher: Addr<Dispatcher>,
        sink: MemorySinkForTests,
        api: ProverApi,
    }

    fn ctx_with(verifier: Arc<dyn ProofVerifier>) -> Ctx {
        let sink = MemorySinkForTests::default();
        let cfg = DispatcherConfig {
            queue: QueueConfig { lease_ms: 10_000, max_attempts: 3, ..Default::default() },
            poll_ms: 200,
            ..Default::default()
        };
        let handle = DispatcherHandle::start(Dispatcher::new(cfg, verifier, sink.clone().start().recipient()));
        let mut api = ProverApi::new(handle.clone(), BearerToken::new(TOKEN).unwrap());
        api.max_body_bytes = 64 * 1024;
        Ctx { dispatcher: handle.addr().clone(), sink, api }
    }

    fn ctx() -> Ctx {
        ctx_with(Arc::new(AcceptAllVerifierForProtocolTests))
    }

    macro_rules! app {
        ($ctx:expr) => {{
            let api = $ctx.api.clone();
            test::init_service(
                App::new()
                    .configure(crate::api::health::configure)
                    .configure(move |c| api.configure(c))
                    .default_service(actix_web::web::to(crate::api::not_found)),
            )
            .await
        }};
    }

    fn post(path: &str, body: &Value) -> test::TestRequest {
        test::TestRequest::post()
            .uri(path)
            .insert_header((header::AUTHORIZATION, format!("Bearer {TOKEN}")))
            .set_json(body)
    }

    /// Sends a request; returns the status and the JSON body (`null` when
    /// empty). A macro because the test service's request type is not nameable.
    macro_rules! call {
        ($app:expr, $req:expr) => {{
            let resp = test::call_service($app, $req.to_request()).await;
            let status = resp.status();
            let body = test::read_body(resp).await;
            let v: Value =
                if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).expect("JSON body") };
            (status, v)
        }};
    }

    fn assert_error(v: &Value, code: &str) {
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }

    fn register_body(name: &str) -> Value {
        json!({"name": name, "version": "0.1.0", "shapes": [{"shape": "2,4", "vk_hash": VK}], "threads": 4})
    }

    macro_rules! register {
        ($app:expr, $name:expr) => {{
            let (s, v) = call!($app, post("/v1/prover/register", &register_body($name)));
            assert_eq!(s, StatusCode::OK, "{v}");
            v["prover_id"].as_str().unwrap().to_string()
        }};
    }

    #[actix_web::test]
    async fn healthz_needs_no_token() {
        let c = ctx();
        let app = app!(c);
        let (s, v) = call!(&app, test::TestRequest::get().uri("/healthz"));
        assert_eq!((s, v), (StatusCode::OK, json!({"status": "ok"})));
        let (s, v) = call!(&app, test::TestRequest::get().uri("/nope"));
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_error(&v, "not_found");
    }

    #[actix_web::test]
    async fn every_endpoint_requires_the_token() {
        let c = ctx();
        let app = app!(c);
        for path in ["register", "claim", "heartbeat", "submit", "fail", "release", "unknown"] {
            let uri = format!("/v1/prover/{path}");
            let (s, v) = call!(&app, test::TestRequest::post().uri(&uri).set_json(json!({})));
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{path} without token");
            assert_error(&v, "unauthorized");
            let wrong = test::TestRequest::post()
                .uri(&uri)
                .insert_header((header::AUTHORIZATION, "Bearer test-token-0123456780"))
                .set_json(register_body("p"));
            let (s, v) = call!(&app, wrong);
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{path} with a wrong token");
            assert_error(&v, "unauthorized");
        }
    }

    #[actix_web::test]
    async fn register_answers_lease_parameters_and_validates() {
        let c = ctx();
        let app = app!(c);
        let (s, v) = call!(&app, post("/v1/prover/register", &register_body("p")));
        assert_eq!(s, StatusCode::OK);
        assert!(v["prover_id"].as_str().unwrap().starts_with("prv_"));
        assert_eq!(
            (v["lease_ms"].as_u64(), v["heartbeat_ms"].as_u64(), v["poll_ms"].as_u64()),
            (Some(10_000), Some(3_333), Some(200))
        );
        // Same name, same id.
        let (_, again) = call!(&app, post("/v1/prover/register", &register_body("p")));
        assert_eq!(again["prover_id"], v["prover_id"]);

        let mut no_shapes = register_body("q");
        no_shapes["shapes"] = json!([]);
        let (s, v) = call!(&app, post("/v1/prover/register", &no_shapes));
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_error(&v, "invalid_request");

        let mut bad_shape = register_body("q");
        bad_shape["shapes"][0]["shape"] = json!("2");
        let (s, v) = call!(&app, post("/v1/prover/register", &bad_shape));
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_error(&v, "malformed_json");
        assert!(v["error"]["message"].as_str().unwrap().contains("K,D"), "{v}");
    }

    #[actix_web::test]
    async fn malformed_bodies_get_json_errors() {
        let c = ctx();
        let app = app!(c);
        let auth = (header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        let broken = test::TestRequest::post()
            .uri("/v1/prover/register")
            .insert_header(auth.clone())
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload("{\"name\": ");
        let (s, v) = call!(&app, broken);
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_error(&v, "malformed_json");

        let missing_field = post("/v1/prover/claim", &json!({"wait_ms": 0}));
        let (s, v) = call!(&app, missing_field);
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_error(&v, "malformed_json");

        let text = test::TestRequest::post()
            .uri("/v1/prover/claim")
            .insert_header(auth.clone())
            .insert_header((header::CONTENT_TYPE, "text/plain"))
            .set_payload("{}");
        let (s, v) = call!(&app, text);
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_error(&v, "unsupported_media_type");

        let huge = json!({"prover_id": "x".repeat(100 * 1024)});
        let (s, v) = call!(&app, post("/v1/prover/claim", &huge));
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        assert_error(&v, "payload_too_large");

        // A GET on a POST endpoint is an unknown route, in the same shape.
        let get = test::TestRequest::get().uri("/v1/prover/claim").insert_header(auth);
        let (s, v) = call!(&app, get);
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_error(&v, "not_found");
    }

    #[actix_web::test]
    async fn claim_returns_a_task_or_204() {
        let c = ctx();
        let app = app!(c);
        let (s, v) = call!(&app, post("/v1/prover/claim", &json!({"prover_id": "prv_unknown", "wait_ms": 0})));
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_error(&v, "unknown_prover");

        let p = register!(&app, "p");
        let started = std::time::Instant::now();
        let (s, v) = call!(&app, post("/v1/prover/claim", &json!({"prover_id": p})));
        assert_eq!((s, v), (StatusCode::NO_CONTENT, Value::Null));
        assert!(started.elapsed() >= std::time::Duration::from_millis(150), "waited for the poll window");

        c.dispatcher.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let (s, v) = call!(&app, post("/v1/prover/claim", &json!({"prover_id": p, "wait_ms": 0})));
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["task_id"], "r/batch/1-1");
        assert_eq!(v["kind"], "batch");
        assert_eq!(v["shape"], "2,4");
        assert_eq!(v["vk_hash"], VK);
        assert_eq!(
            (v["first_batch"].as_u64(), v["last_batch"].as_u64(), v["seq_height"].as_u64()),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(v["request"]["batch_num"], 1);
        assert!(v["request"]["witness"].is_object());
        assert!(v["lease_expires_at_ms"].as_u64().is_some());
        // The whole thing decodes into the wire type the worker uses.
        let parsed: ClaimResponse = serde_json::from_value(v).unwrap();
        assert_eq!(parsed.input, batch("r", 1, 1).input);
    }

    #[actix_web::test]
    async fn aggregate_claim_carries_both_bundles() {
        let c = ctx();
        let app = app!(c);
        let p = register!(&app, "p");
        c.dispatcher.send(Enqueue(aggregate("r", 1, 1, 2, 4))).await.unwrap().unwrap();
        let (s, v) = call!(&app, post("/v1/prover/claim", &json!({"prover_id": p, "wait_ms": 0})));
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["kind"], "aggregate");
        assert_eq!(v["request"]["left"]["proofs"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["request"]["right"]["proofs"].as_array().map(Vec::len), Some(2));
        let merged = serde_json::to_value(bundle(1, 4)).unwrap();
        let (s, v) = call!(
            &app,
            post("/v1/prover/submit", &json!({"prover_id": p, "task_id": "r/aggregate/1-4", "proof": merged}))
        );
        assert_eq!((s, v), (StatusCode::OK, json!({"accepted": true})));
    }

    #[actix_web::test]
    async fn heartbeat_extends_only_for_the_holder() {
        let c = ctx();
        let app = app!(c);
        let p = register!(&app, "p");
        let q = register!(&app, "q");
        c.dispatcher.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let (_, claimed) = call!(&app, post("/v1/prover/claim", &json!({"prover_id": p, "wait_ms": 0})));
        let (s, v) = call!(&app, post("/v1/prover/heartbeat", &json!({"prover_id": p, "task_id": "r/batch/1-1"})));
        assert_eq!(s, StatusCode::OK);
        assert!(v["lease_expires_at_ms"].as_u64().unwrap() >= claimed["lease_expires_at_ms"].as_u64().unwrap());

        let (s, v) = call!(&app, post("/v1/prover/heartbeat", &json!({"prover_id": q, "task_id": "r/batch/1-1"})));
        assert_eq!(s, StatusCode::CONFLICT);
        assert_error(&v, "not_holder");
        let (s, v) = call!(&app, post("/v1/prover/heartbeat", &json!({"prover_id": p, "task_id": "r/batch/2-2"})));
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_error(&v, "unknown_task");
        let (s, v) =
            call!(&app, post("/v1/prover/heartbeat", &json!({"prover_id": "prv_x", "task_id": "r/batch/1-1"})));
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_error(&v, "unknown_prover");
    }

    #[actix_web::test]
    async fn submit_happy_path_late_and_duplicate() {
        let c = ctx();
        let app = app!(c);
        let p = register!(&app, "p");
        let q = register!(&app, "q");
        c.dispatcher.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        call!(&app, post("/v1/prover/claim", &json!({"prover_id": p, "wait_ms": 0})));
        let proof = serde_json::to_value(output(1)).unwrap();

        let (s, v) = call!(
            &app,
            post("/v1/prover/submit", &json!({"prover_id": p, "task_id": "r/batch/1-1", "proof": {"proof": "0x00"}}))
        );
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_error(&v, "malformed_proof");
        let (s, v) =
            call!(&app, post("/v1/prover/submit", &json!({"prover_id": p, "task_id": "r/batch/7-7", "proof": proof})));
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_error(&v, "unknown_task");

        // A non-holder's valid proof is accepted: results are not tied to leases.
        let (s, v) =
            call!(&app, post("/v1/prover/submit", &json!({"prover_id": q, "task_id": "r/batch/1-1", "proof": proof})));
        assert_eq!((s, v), (StatusCode::OK, json!({"accepted": true})));
        assert_eq!(c.sink.task_ids(), vec!["r/batch/1-1"]);
        assert_eq!(c.sink.accepted.lock().unwrap()[0].prover_id, q);
        assert!(c.dispatcher.send(GetTask("r/batch/1-1".into())).await.unwrap().is_none(), "done and dropped");

        let (s, v) =
            call!(&app, post("/v1/prover/submit", &json!({"prover_id": p, "task_id": "r/batch/1-1", "proof": proof})));
        assert_eq!(s, StatusCode::CONFLICT);
        assert_error(&v, "already_done");
        assert_eq!(c.sink.task_ids().len(), 1);
    }

    #[actix_web::test]
    async fn invalid_proofs_are_422_and_quarantine() {
        let c = ctx_with(Arc::new(RejectAllVerifierForProtocolTests));
        let app = app!(c);
        let p = register!(&app, "p");
        c.dispatcher.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let proof = serde_json::to_value(output(1)).unwrap();
        for _ in 0..3 {
            let (s, v) = call!(&app, post("/v1/prover/claim", &json!({"prover_id": p, "wait_ms": 0})));
            assert_eq!(s, StatusCode::OK, "{v}");
            let (s, v) = call!(
                &app,
                post("/v1/prover/submit", &json!({"prover_id": p, "task_id": "r/batch/1-1", "proof": proof}))
            );
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
            assert_error(&v, "invalid_proof");
        }
        let req = post("/v1/prover/claim", &json!({"prover_id": p, "wait_ms": 0})).to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let retry: u64 = resp.headers().get(header::RETRY_AFTER).unwrap().to_str().unwrap().parse().unwrap();
        assert!((590..=600).contains(&retry), "{retry}");
        let v: Value = serde_json::from_slice(&test::read_body(resp).await).unwrap();
        assert_error(&v, "quarantined");
        assert!(c.sink.task_ids().is_empty());
    }

    #[actix_web::test]
    async fn fail_and_release_by_the_holder() {
        let c = ctx();
        let app = app!(c);
        let p = register!(&app, "p");
        let q = register!(&app, "q");
        c.dispatcher.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        call!(&app, post("/v1/prover/claim", &json!({"prover_id": p, "wait_ms": 0})));
        let task = json!({"prover_id": q, "task_id": "r/batch/1-1"});
        let (s, v) = call!(&app, post("/v1/prover/release", &task));
        assert_eq!(s, StatusCode::CONFLICT);
        assert_error(&v, "not_holder");
        let (s, v) =
            call!(&app, post("/v1/prover/fail", &json!({"prover_id": q, "task_id": "r/batch/1-1", "reason": "x"})));
        assert_eq!(s, StatusCode::CONFLICT);
        assert_error(&v, "not_holder");

        let (s, v) = call!(&app, post("/v1/prover/release", &json!({"prover_id": p, "task_id": "r/batch/1-1"})));
        assert_eq!((s, v), (StatusCode::OK, json!({"released": true})));
        let (s, v) = call!(&app, post("/v1/prover/release", &json!({"prover_id": p, "task_id": "r/batch/1-1"})));
        assert_eq!(s, StatusCode::CONFLICT);
        assert_error(&v, "not_leased");

        call!(&app, post("/v1/prover/claim", &json!({"prover_id": q, "wait_ms": 0})));
        let reason = "é".repeat(2000);
        let (s, v) =
            call!(&app, post("/v1/prover/fail", &json!({"prover_id": q, "task_id": "r/batch/1-1", "reason": reason})));
        assert_eq!((s, v), (StatusCode::OK, json!({"requeued": true, "attempts": 1})));
        let task = c.dispatcher.send(GetTask("r/batch/1-1".into())).await.unwrap().unwrap();
        assert_eq!(task.status, TaskStatus::Queued);
    }
}
