//! The prover worker (`zkpow prover`): a client of the aggregator's prover
//! protocol. Each slot registers, claims tasks in a loop, runs them (batch
//! proofs through the [`ProvingPool`], aggregation by merging bundles),
//! heartbeats while it works and submits the result.
//!
//! Failure policy: connection errors and 5xx answers are transient; the
//! worker retries with exponential backoff and jitter and never exits on
//! them. An aggregator that forgot the prover (it restarted) answers
//! `unknown_prover`, and the worker registers again under the same name,
//! which returns its old id and lease if the aggregator still has them. Only
//! a rejected token (401) stops the worker: that is a misconfiguration, not
//! an outage.
//!
//! Shutdown: an idle slot stops at once (handing back a task it might have
//! been granted in the claim it abandoned); a busy slot finishes its proof if
//! it completes within the grace period and submits it, otherwise it
//! releases the task so another prover picks it up without an attempt
//! counted against it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rand::RngExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

use super::{ProverBackend, ProvingPool};
use crate::token::BearerToken;
use crate::wire::error::ErrorBody;
use crate::wire::prover::{
    ClaimRequest, ClaimResponse, FailRequest, FailResponse, HeartbeatResponse, RegisterRequest, RegisterResponse,
    ReleaseResponse, SubmitResponse, TaskRef,
};
use crate::wire::task::{ProofBundle, ProofPayload, TaskInput};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Base URL of the aggregator's HTTP server, e.g. `http://10.0.0.2:8080`.
    pub aggregator_url: String,
    pub token: BearerToken,
    /// Prover name; slot `i` registers as `name-i` when there are several.
    /// Must be unique among the aggregator's provers.
    pub name: String,
    /// Tasks worked on at once (one registration each). Match the proving
    /// pool's worker count.
    pub slots: usize,
    /// How long a shutdown waits for a running proof before releasing it.
    pub shutdown_grace: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Timeout of one request (a claim adds the aggregator's poll window).
    pub request_timeout: Duration,
}

impl WorkerConfig {
    pub fn new(aggregator_url: impl Into<String>, token: BearerToken, name: impl Into<String>) -> Self {
        WorkerConfig {
            aggregator_url: aggregator_url.into(),
            token,
            name: name.into(),
            slots: 1,
            shutdown_grace: Duration::from_secs(30),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A default prover name: the host name, or "prover".
pub fn default_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "prover".to_string())
}

/// Runs the worker until `shutdown` turns true. Returns an error only for a
/// misconfiguration the worker cannot recover from (a rejected token, an
/// unusable URL); transient failures are retried forever.
pub async fn run_worker(cfg: WorkerConfig, pool: ProvingPool, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let client = Client::new(&cfg)?;
    let slots = cfg.slots.max(1);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..slots {
        let name = if slots == 1 { cfg.name.clone() } else { format!("{}-{i}", cfg.name) };
        let slot = Slot {
            cfg: cfg.clone(),
            client: client.clone(),
            pool: pool.clone(),
            name,
            session: None,
            shutdown: shutdown.clone(),
            backoff: Backoff::new(cfg.backoff_min, cfg.backoff_max),
        };
        set.spawn(slot.run());
    }
    let mut result = Ok(());
    while let Some(joined) = set.join_next().await {
        let r = joined.context("prover slot panicked").and_then(|r| r);
        if let Err(e) = r {
            // One misconfigured slot means all are: stop the others too.
            set.abort_all();
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    result
}

/// Resolves when shutdown is requested. A dropped sender means nobody can
/// ask any more, so it never resolves then.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Exponential backoff with jitter: each wait is uniform in [d/2, d], and d
/// doubles up to the maximum, so many workers retrying after an aggregator
/// restart do not arrive in lockstep.
#[derive(Debug, Clone)]
struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        Backoff { min, max: max.max(min), current: min }
    }

    fn next_delay(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        let ms = d.as_millis().min(u128::from(u64::MAX)) as u64;
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms.max(1)))
    }

    fn reset(&mut self) {
        self.current = self.min;
    }
}

#[derive(Debug, thiserror::Error)]
enum ClientError {
    #[error("cannot reach the aggregator: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("aggregator answered {status} {code}: {message}")]
    Api { status: u16, code: String, message: String, retry_after: Option<Duration> },
}

impl ClientError {
    fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            ClientError::Transport(_) => None,
        }
    }

    /// Worth retrying the same request after a pause.
    fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Api { status, .. } => *status >= 500 || *status == 429,
        }
    }

    fn is_unauthorized(&self) -> bool {
        matches!(self, ClientError::Api { status: 401, .. })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Api { retry_after, .. } => *retry_after,
            ClientError::Transport(_) => None,
        }
    }
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    token: BearerToken,
    timeout: Duration,
}

impl Client {
    fn new(cfg: &WorkerConfig) -> anyhow::Result<Self> {
        let base = cfg.aggregator_url.trim_end_matches('/').to_string();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "aggregator URL must start with http:// or https://, got {base:?}"
        );
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("zkpow-prover/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Client { http, base, token: cfg.token.clone(), timeout: cfg.request_timeout })
    }

    /// POSTs JSON; `Ok(None)` for 204.
    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<Option<R>, ClientError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, self.token.header_value())
            .timeout(timeout)
            .json(body)
            .send()
            .await?;
        let status = resp.status();
        if status == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        if status.is_success() {
            return Ok(Some(resp.json().await?));
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // A proxy in between may answer in its own format.
        let text = resp.text().await.unwrap_or_default();
        let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => (b.error.code, b.error.message),
            Err(_) => ("http_error".to_string(), text.chars().take(200).collect()),
        };
        Err(ClientError::Api { status: status.as_u16(), code, message, retry_after })
    }

    async fn post_some<B: Serialize, R: DeserializeOwned>(&self, path: &str, body: &B) -> Result<R, ClientError> {
        self.post(path, body, self.timeout).await?.ok_or_else(|| ClientError::Api {
            status: 204,
            code: "no_content".into(),
            message: format!("{path} answered without a body"),
            retry_after: None,
        })
    }
}

/// What the slot got from its registration.
#[derive(Debug, Clone)]
struct Session {
    prover_id: String,
    heartbeat: Duration,
    poll: Duration,
}

/// How the work on one task ended, for the slot loop.
enum Flow {
    Continue,
    Stop,
}

struct Slot {
    cfg: WorkerConfig,
    client: Client,
    pool: ProvingPool,
    name: String,
    session: Option<Session>,
    shutdown: watch::Receiver<bool>,
    backoff: Backoff,
}

impl Slot {
    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Sleeps, or returns early (`true`) when shutdown is requested.
    async fn pause(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => self.stopping(),
            _ = stopped(&mut self.shutdown) => true,
        }
    }

    /// Pauses after a transient error; `true` if shutdown came meanwhile.
    async fn back_off(&mut self, what: &str, err: &ClientError) -> bool {
        let d = err.retry_after().unwrap_or_else(|| self.backoff.next_delay());
        tracing::warn!(slot = %self.name, error = %err, retry_in_ms = d.as_millis() as u64, "{what} failed; retrying");
        self.pause(d).await
    }

    async fn register(&mut self) -> Result<Session, ClientError> {
        let backend: &Arc<dyn ProverBackend> = self.pool.backend();
        let req = RegisterRequest {
            name: self.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            shapes: backend.shapes(),
            threads: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
        };
        let r: RegisterResponse = self.client.post_some("/v1/prover/register", &req).await?;
        tracing::info!(
            slot = %self.name, prover = %r.prover_id, backend = backend.name(), lease_ms = r.lease_ms,
            heartbeat_ms = r.heartbeat_ms, "registered with the aggregator"
        );
        Ok(Session {
            prover_id: r.prover_id,
            heartbeat: Duration::from_millis(r.heartbeat_ms.max(100)),
            poll: Duration::from_millis(r.poll_ms),
        })
    }

    /// The current session, registering first if there is none. `None` when
    /// shutdown was requested while retrying.
    async fn session(&mut self) -> anyhow::Result<Option<Session>> {
        loop {
            if let Some(s) = &self.session {
                return Ok(Some(s.clone()));
            }
            if self.stopping() {
                return Ok(None);
            }
            match self.register().await {
                Ok(s) => {
                    self.backoff.reset();
                    self.session = Some(s);
                }
                Err(e) if e.is_unauthorized() => anyhow::bail!("the aggregator rejected the prover token: {e}"),
                Err(e) => {
                    if self.back_off("registering", &e).await {
                        return Ok(None);
                    }
                }
            }
        }
    }

    async fn run(mut self) -> anyhow::Result<()> {
        loop {
            let Some(s) = self.session().await? else { return Ok(()) };
            let req = ClaimRequest { prover_id: s.prover_id.clone(), wait_ms: None };
            let timeout = s.poll + self.cfg.request_timeout;
            let claimed = tokio::select! {
                r = self.client.post::<_, ClaimResponse>("/v1/prover/claim", &req, timeout) => r,
                _ = stopped(&mut self.shutdown) => {
                    self.hand_back_abandoned_claim(&s).await;
                    return Ok(());
                }
            };
            match claimed {
                Ok(None) => self.backoff.reset(),
                Ok(Some(task)) => {
                    self.backoff.reset();
                    if let Flow::Stop = self.work(task).await? {
                        return Ok(());
                    }
                }
                Err(e) if e.code() == Some("unknown_prover") => {
                    tracing::info!(slot = %self.name, "the aggregator forgot this prover; registering again");
                    self.session = None;
                }
                Err(e) if e.is_unauthorized() => anyhow::bail!("the aggregator rejected the prover token: {e}"),
                Err(e) if e.code() == Some("quarantined") => {
                    let d = e.retry_after().unwrap_or(self.cfg.backoff_max);
                    tracing::error!(slot = %self.name, error = %e, retry_in_s = d.as_secs(), "quarantined for invalid proofs");
                    if self.pause(d).await {
                        return Ok(());
                    }
                }
                Err(e) => {
                    if self.back_off("claiming", &e).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// After abandoning a claim on shutdown, the aggregator may have leased
    /// a task whose answer never arrived. A non-waiting claim returns it (a
    /// prover always gets its own lease back first), and it is released.
    async fn hand_back_abandoned_claim(&self, s: &Session) {
        let req = ClaimRequest { prover_id: s.prover_id.clone(), wait_ms: Some(0) };
        let quick = Duration::from_secs(5);
        if let Ok(Some(task)) = self.client.post::<_, ClaimResponse>("/v1/prover/claim", &req, quick).await {
            self.release(s, &task.task_id).await;
        }
    }

    async fn release(&self, s: &Session, task_id: &str) {
        let req = TaskRef { prover_id: s.prover_id.clone(), task_id: task_id.to_string() };
        match self.client.post_some::<_, ReleaseResponse>("/v1/prover/release", &req).await {
            Ok(_) => tracing::info!(slot = %self.name, task = task_id, "task released"),
            // The lease runs out on its own; it just costs an attempt.
            Err(e) => tracing::warn!(slot = %self.name, task = task_id, error = %e, "releasing the task failed"),
        }
    }

    async fn work(&mut self, task: ClaimResponse) -> anyhow::Result<Flow> {
        let Some(s) = self.session.clone() else { return Ok(Flow::Continue) };
        let task_id = task.task_id.clone();
        tracing::info!(
            slot = %self.name, task = %task_id, kind = task.input.kind().as_str(), attempts = task.attempts,
            "working on task"
        );
        let started = std::time::Instant::now();
        let mut job = Box::pin(execute(self.pool.clone(), task));
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + s.heartbeat, s.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop_after = false;
        let result = loop {
            tokio::select! {
                r = &mut job => break r,
                _ = heartbeat.tick() => {
                    if !self.heartbeat(&s, &task_id).await {
                        tracing::info!(slot = %self.name, task = %task_id, "task already done elsewhere; dropping it");
                        return Ok(Flow::Continue);
                    }
                }
                _ = stopped(&mut self.shutdown), if !stop_after => {
                    stop_after = true;
                    tracing::info!(slot = %self.name, task = %task_id, grace_s = self.cfg.shutdown_grace.as_secs(), "shutting down; waiting for the running proof");
                    match tokio::time::timeout(self.cfg.shutdown_grace, &mut job).await {
                        Ok(r) => break r,
                        Err(_) => {
                            tracing::info!(slot = %self.name, task = %task_id, "proof did not finish within the grace period");
                            self.release(&s, &task_id).await;
                            return Ok(Flow::Stop);
                        }
                    }
                }
            }
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(payload) => {
                tracing::info!(slot = %self.name, task = %task_id, elapsed_ms, "task computed");
                self.submit(&task_id, payload).await?;
            }
            Err(reason) => {
                tracing::error!(slot = %self.name, task = %task_id, elapsed_ms, reason = %reason, "task failed");
                self.fail(&s, &task_id, &reason).await;
            }
        }
        Ok(if stop_after || self.stopping() { Flow::Stop } else { Flow::Continue })
    }

    /// Extends the lease. `false` when the task is already done, so working
    /// on is pointless. Any other refusal (lease lost to expiry, aggregator
    /// unreachable) keeps the work going: a late proof is still accepted.
    async fn heartbeat(&self, s: &Session, task_id: &str) -> bool {
        let req = TaskRef { prover_id: s.prover_id.clone(), task_id: task_id.to_string() };
        // No longer than one interval: a hanging heartbeat must not hold up
        // the next one, nor the submission of a finished proof.
        let timeout = s.heartbeat.clamp(Duration::from_secs(1), self.cfg.request_timeout.max(Duration::from_secs(1)));
        match self.client.post::<_, HeartbeatResponse>("/v1/prover/heartbeat", &req, timeout).await {
            Ok(r) => {
                let expires_at_ms = r.map(|r| r.lease_expires_at_ms);
                tracing::debug!(slot = %self.name, task = task_id, expires_at_ms, "lease extended");
                true
            }
            Err(e) if e.code() == Some("already_done") => false,
            Err(e) => {
                tracing::warn!(slot = %self.name, task = task_id, error = %e, "heartbeat refused; finishing the task anyway");
                true
            }
        }
    }

    /// Submits until the aggregator has a definite answer: retried through
    /// outages and aggregator restarts (re-registering when it forgot us),
    /// given up only on a verdict about the proof itself.
    async fn submit(&mut self, task_id: &str, payload: ProofPayload) -> anyhow::Result<()> {
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let Some(s) = self.session.clone() else {
                // The aggregator forgot this prover (it restarted): register
                // again under the same name, then submit again.
                match self.register().await {
                    Ok(s) => self.session = Some(s),
                    Err(e) if e.is_unauthorized() => anyhow::bail!("the aggregator rejected the prover token: {e}"),
                    Err(e) => {
                        if self.retry_or_give_up("registering to submit", &e, &mut deadline).await {
                            return Ok(());
                        }
                    }
                }
                continue;
            };
            let req = SubmitBody { prover_id: &s.prover_id, task_id, proof: &payload };
            match self.client.post_some::<_, SubmitResponse>("/v1/prover/submit", &req).await {
                Ok(_) => {
                    self.backoff.reset();
                    tracing::info!(slot = %self.name, task = task_id, "proof accepted");
                    return Ok(());
                }
                Err(e) if e.code() == Some("unknown_prover") => self.session = None,
                Err(e) if e.is_unauthorized() => anyhow::bail!("the aggregator rejected the prover token: {e}"),
                Err(e) if e.is_transient() => {
                    if self.retry_or_give_up("submitting", &e, &mut deadline).await {
                        return Ok(());
                    }
                }
                Err(e) if e.code() == Some("already_done") => {
                    tracing::info!(slot = %self.name, task = task_id, "another prover finished the task first");
                    return Ok(());
                }
                Err(e) => {
                    tracing::error!(slot = %self.name, task = task_id, error = %e, "proof refused");
                    return Ok(());
                }
            }
        }
    }

    /// Backs off after a transient error. While shutting down, retries only
    /// within the grace period. `true` means give up.
    async fn retry_or_give_up(
        &mut self,
        what: &str,
        err: &ClientError,
        deadline: &mut Option<tokio::time::Instant>,
    ) -> bool {
        if self.stopping() {
            let d = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.cfg.shutdown_grace);
            if tokio::time::Instant::now() >= d {
                tracing::warn!(slot = %self.name, error = %err, "{what} failed; shutting down without it");
                return true;
            }
            let pause = self.backoff.next_delay().min(d.saturating_duration_since(tokio::time::Instant::now()));
            tracing::warn!(slot = %self.name, error = %err, "{what} failed; retrying before shutdown");
            tokio::time::sleep(pause).await;
            return false;
        }
        // A shutdown arriving during the pause switches to the grace rule.
        self.back_off(what, err).await;
        false
    }

    async fn fail(&mut self, s: &Session, task_id: &str, reason: &str) {
        let req =
            FailRequest { prover_id: s.prover_id.clone(), task_id: task_id.to_string(), reason: reason.to_string() };
        for _ in 0..3 {
            match self.client.post_some::<_, FailResponse>("/v1/prover/fail", &req).await {
                Ok(r) => {
                    tracing::info!(slot = %self.name, task = task_id, requeued = r.requeued, attempts = r.attempts, "failure reported");
                    return;
                }
                Err(e) if e.is_transient() => {
                    if self.back_off("reporting a failure", &e).await {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(slot = %self.name, task = task_id, error = %e, "failure report refused");
                    return;
                }
            }
        }
        // The lease will expire and the task be requeued all the same.
    }
}

/// The body of `/v1/prover/submit` ([`crate::wire::prover::SubmitRequest`]
/// on the wire) with the result borrowed: serialized straight from the
/// payload on each attempt instead of through a `serde_json::Value` that
/// is built, cloned and serialized again (a measurable share of a
/// dispatcher round trip, docs/BENCHMARKS.md).
#[derive(Serialize)]
struct SubmitBody<'a> {
    prover_id: &'a str,
    task_id: &'a str,
    proof: &'a ProofPayload,
}

/// Computes a task's result. Batch proofs run on the proving pool; with the
/// non-recursive Groth16 pipeline, aggregate and final tasks only check and
/// merge already-verified bundles.
async fn execute(pool: ProvingPool, task: ClaimResponse) -> Result<ProofPayload, String> {
    match task.input {
        TaskInput::Batch(req) => pool.prove(*req).await.map(ProofPayload::Batch).map_err(|e| e.to_string()),
        TaskInput::Aggregate { left, right } => {
            ProofBundle::merge(&left, &right).map(ProofPayload::Bundle).map_err(|e| e.to_string())
        }
        TaskInput::Final { bundle } => bundle
            .check_covers(task.first_batch, task.last_batch)
            .map(|()| ProofPayload::Bundle(bundle))
            .map_err(|e| e.to_string()),
    }
}

/// `zkpow prover`: loads the configured shapes' parameters, then serves the
/// configured aggregator until `shutdown` turns true.
pub async fn run_from_config(cfg: crate::config::Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let machine = super::sizing::Machine::current();
    let max_constraints =
        super::sizing::max_constraints(&cfg.keys.shapes).context("counting the shapes' constraints")?;
    let sizing = super::sizing::auto(machine, max_constraints, cfg.prover.workers, cfg.prover.threads);
    // Before any proof (or key loading) touches the pool: it cannot be
    // resized once built.
    super::sizing::init_thread_pool(sizing.threads).context("sizing the proving thread pool (prover.threads)")?;
    tracing::info!(
        workers = sizing.workers, threads = sizing.threads, cores = machine.cores,
        configured_workers = ?cfg.prover.workers, configured_threads = ?cfg.prover.threads,
        "proofs at once and proving threads"
    );
    let mut keys = Vec::new();
    for shape in &cfg.keys.shapes {
        let dir = cfg.keys.dir.clone();
        let shape = *shape;
        let k = tokio::task::spawn_blocking(move || crate::circuit::keys::Keys::load(&dir, shape))
            .await?
            .with_context(|| format!("loading parameters for shape {shape} (run `zkpow setup --shape {shape}`)"))?;
        keys.push(k);
    }
    let backend = std::sync::Arc::new(crate::prover::Groth16Backend::new(keys));
    let pool = ProvingPool::new(backend, sizing.workers).context("starting the proving threads")?;
    let token =
        BearerToken::from_file_or_env(cfg.prover.token_file.as_deref(), cfg.prover.token_env.as_deref(), "prover")?;
    let mut wc = WorkerConfig::new(
        cfg.prover.aggregator_url.clone(),
        token,
        cfg.prover.name.clone().unwrap_or_else(default_name),
    );
    wc.slots = sizing.workers;
    run_worker(wc, pool, shutdown).await
}

#[cfg(test)]
mod tests {
    use std::net::{SocketAddr, TcpListener};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix::{Actor, Addr};
    use actix_web::{App, HttpServer};

    use super::*;
    use crate::aggregator::dispatcher::{DispatcherConfig, Enqueue, GetTask};
    use crate::aggregator::testing::{AcceptAllVerifierForProtocolTests, MemorySinkForTests};
    use crate::aggregator::{Dispatcher, DispatcherHandle, QueueConfig, TaskStatus};
    use crate::api::ProverApi;
    use crate::circuit::public::PublicInputs;
    use crate::circuit::Shape;
    use crate::prover::ProverError;
    use crate::wire::proof::{ProofOutput, ProofRequest, ShapeKey};
    use crate::wire::task::test_support::{aggregate, batch, final_, VK};

    const TOKEN: &str = "worker-test-token-0123456789";

    /// Returns a made-up proof carrying the request's public inputs after
    /// `delay`. The worker loop is under test here, not proving.
    struct InstantBackendForWorkerTests {
        delay: Duration,
        proofs: AtomicUsize,
    }

    impl ProverBackend for InstantBackendForWorkerTests {
        fn name(&self) -> &'static str {
            "instant-fake"
        }
        fn shapes(&self) -> Vec<ShapeKey> {
            vec![ShapeKey { shape: Shape::TEST, vk_hash: VK.into() }]
        }
        fn prove(&self, req: &ProofRequest) -> Result<ProofOutput, ProverError> {
            std::thread::sleep(self.delay);
            self.proofs.fetch_add(1, Ordering::SeqCst);
            Ok(ProofOutput { proof: vec![0xAB; 512], public: req.public_inputs() })
        }
        fn verify(&self, _: Shape, _: &[u8], _: &PublicInputs) -> Result<(), ProverError> {
            Ok(())
        }
    }

    fn pool(delay: Duration) -> ProvingPool {
        ProvingPool::new(Arc::new(InstantBackendForWorkerTests { delay, proofs: AtomicUsize::new(0) }), 2).unwrap()
    }

    struct Aggregator {
        dispatcher: Addr<Dispatcher>,
        sink: MemorySinkForTests,
        server: actix_web::dev::ServerHandle,
        addr: SocketAddr,
    }

    fn dispatcher_cfg(lease_ms: u64) -> DispatcherConfig {
        DispatcherConfig {
            queue: QueueConfig { lease_ms, max_attempts: 3, ..Default::default() },
            poll_ms: 300,
            tick_ms: 50,
            ..Default::default()
        }
    }

    /// The real protocol app on a real socket (`port` 0: any free port).
    fn serve(port: u16, cfg: DispatcherConfig) -> Aggregator {
        let sink = MemorySinkForTests::default();
        let handle = DispatcherHandle::start(Dispatcher::new(
            cfg,
            Arc::new(AcceptAllVerifierForProtocolTests),
            sink.clone().start().recipient(),
        ));
        let dispatcher = handle.addr().clone();
        let api = ProverApi::new(handle, BearerToken::new(TOKEN).unwrap());
        let server = HttpServer::new(move || {
            let api = api.clone();
            App::new().configure(move |c| api.configure(c))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", port))
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Aggregator { dispatcher, sink, server: handle, addr }
    }

    fn worker_cfg(addr: SocketAddr) -> WorkerConfig {
        let mut cfg = WorkerConfig::new(format!("http://{addr}"), BearerToken::new(TOKEN).unwrap(), "test-prover");
        cfg.backoff_min = Duration::from_millis(20);
        cfg.backoff_max = Duration::from_millis(200);
        cfg.request_timeout = Duration::from_secs(5);
        cfg
    }

    fn start_worker(
        cfg: WorkerConfig,
        pool: ProvingPool,
    ) -> (watch::Sender<bool>, tokio::task::JoinHandle<anyhow::Result<()>>) {
        let (tx, rx) = watch::channel(false);
        (tx, tokio::spawn(run_worker(cfg, pool, rx)))
    }

    async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + timeout;
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn task_status(d: &Addr<Dispatcher>, id: &str) -> (TaskStatus, u32) {
        let t = d.send(GetTask(id.into())).await.unwrap().unwrap();
        (t.status, t.attempts)
    }

    async fn stop(tx: watch::Sender<bool>, worker: tokio::task::JoinHandle<anyhow::Result<()>>) {
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), worker).await.expect("worker stops").unwrap().unwrap();
    }

    #[actix_rt::test]
    async fn proves_aggregates_and_submits_every_kind() {
        let agg = serve(0, dispatcher_cfg(10_000));
        for n in 1..=3 {
            agg.dispatcher.send(Enqueue(batch("r", 1, n))).await.unwrap().unwrap();
        }
        agg.dispatcher.send(Enqueue(aggregate("r", 5, 5, 6, 8))).await.unwrap().unwrap();
        agg.dispatcher.send(Enqueue(final_("r", 9, 9, 10))).await.unwrap().unwrap();
        let mut cfg = worker_cfg(agg.addr);
        cfg.slots = 2;
        let (tx, worker) = start_worker(cfg, pool(Duration::from_millis(10)));
        let sink = agg.sink.clone();
        wait_until("all five results", Duration::from_secs(10), || sink.task_ids().len() == 5).await;
        stop(tx, worker).await;

        let accepted = agg.sink.accepted.lock().unwrap().clone();
        for a in &accepted {
            match (&a.payload, &a.task.input) {
                (ProofPayload::Batch(p), TaskInput::Batch(req)) => assert_eq!(p.public, req.public_inputs()),
                (ProofPayload::Bundle(b), _) => b.check_covers(a.task.first_batch, a.task.last_batch).unwrap(),
                other => panic!("unexpected result {other:?}"),
            }
        }
        // Two slots registered under distinct names.
        let snap = agg.dispatcher.send(crate::aggregator::dispatcher::GetSnapshot).await.unwrap();
        let names: Vec<&str> = snap.provers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["test-prover-0", "test-prover-1"]);
        agg.server.stop(false).await;
    }

    #[actix_rt::test]
    async fn waits_for_an_aggregator_that_is_not_up_yet() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let (tx, worker) = start_worker(worker_cfg(addr), pool(Duration::ZERO));
        // Several connection failures, retried with backoff, not fatal.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!worker.is_finished());
        let agg = serve(port, dispatcher_cfg(10_000));
        agg.dispatcher.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let sink = agg.sink.clone();
        wait_until("the proof", Duration::from_secs(10), || sink.task_ids().len() == 1).await;
        stop(tx, worker).await;
        agg.server.stop(false).await;
    }

    #[actix_rt::test]
    async fn registers_again_with_a_restarted_aggregator() {
        let first = serve(0, dispatcher_cfg(10_000));
        let port = first.addr.port();
        let (tx, worker) = start_worker(worker_cfg(first.addr), pool(Duration::ZERO));
        first.dispatcher.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let sink = first.sink.clone();
        wait_until("the first proof", Duration::from_secs(10), || sink.task_ids().len() == 1).await;

        // A new aggregator process: same address, no memory of the prover.
        first.server.stop(true).await;
        let second = serve(port, dispatcher_cfg(10_000));
        second.dispatcher.send(Enqueue(batch("r", 1, 2))).await.unwrap().unwrap();
        let sink = second.sink.clone();
        wait_until("the proof from the new aggregator", Duration::from_secs(10), || sink.task_ids().len() == 1).await;
        stop(tx, worker).await;
        second.server.stop(false).await;
    }

    #[actix_rt::test]
    async fn heartbeats_keep_a_long_proof_leased() {
        // Leases of 300 ms, a proof of 1 s: only heartbeats keep it.
        let agg = serve(0, dispatcher_cfg(300));
        agg.dispatcher.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let (tx, worker) = start_worker(worker_cfg(agg.addr), pool(Duration::from_secs(1)));
        let sink = agg.sink.clone();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // Sampled while the proof runs: an expired lease would count an attempt.
        while sink.task_ids().is_empty() {
            assert!(std::time::Instant::now() < deadline, "timed out waiting for the proof");
            if let Some(t) = agg.dispatcher.send(GetTask("r/batch/1-1".into())).await.unwrap() {
                assert_eq!(t.attempts, 0, "the lease never expired");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let done = agg.dispatcher.send(GetTask("r/batch/1-1".into())).await.unwrap();
        assert!(done.is_none(), "done tasks leave the dispatcher");
        stop(tx, worker).await;
        agg.server.stop(false).await;
    }

    async fn wait_leased(d: &Addr<Dispatcher>, id: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !matches!(task_status(d, id).await.0, TaskStatus::Leased { .. }) {
            assert!(std::time::Instant::now() < deadline, "task never leased");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[actix_rt::test]
    async fn shutdown_releases_a_proof_that_outlasts_the_grace() {
        let agg = serve(0, dispatcher_cfg(10_000));
        agg.dispatcher.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let mut cfg = worker_cfg(agg.addr);
        cfg.shutdown_grace = Duration::from_millis(100);
        let (tx, worker) = start_worker(cfg, pool(Duration::from_secs(3)));
        wait_leased(&agg.dispatcher, "r/batch/1-1").await;
        let started = std::time::Instant::now();
        stop(tx, worker).await;
        assert!(started.elapsed() < Duration::from_secs(2), "did not wait for the proof");
        assert_eq!(
            task_status(&agg.dispatcher, "r/batch/1-1").await,
            (TaskStatus::Queued, 0),
            "released, no attempt counted"
        );
        assert!(agg.sink.task_ids().is_empty());
        agg.server.stop(false).await;
    }

    #[actix_rt::test]
    async fn shutdown_finishes_a_proof_within_the_grace() {
        let agg = serve(0, dispatcher_cfg(10_000));
        agg.dispatcher.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        agg.dispatcher.send(Enqueue(batch("r", 1, 2))).await.unwrap().unwrap();
        let mut cfg = worker_cfg(agg.addr);
        cfg.shutdown_grace = Duration::from_secs(5);
        let (tx, worker) = start_worker(cfg, pool(Duration::from_millis(500)));
        wait_leased(&agg.dispatcher, "r/batch/1-1").await;
        stop(tx, worker).await;
        assert_eq!(agg.sink.task_ids(), vec!["r/batch/1-1"], "finished and submitted, nothing new claimed");
        assert_eq!(task_status(&agg.dispatcher, "r/batch/2-2").await, (TaskStatus::Queued, 0));
        agg.server.stop(false).await;
    }

    #[actix_rt::test]
    async fn an_abandoned_claim_does_not_strand_a_task() {
        let mut dcfg = dispatcher_cfg(10_000);
        dcfg.poll_ms = 3_000;
        let agg = serve(0, dcfg);
        let (tx, worker) = start_worker(worker_cfg(agg.addr), pool(Duration::ZERO));
        // Let the worker register and start a long-polling claim, then stop it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop(tx, worker).await;
        agg.dispatcher.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(task_status(&agg.dispatcher, "r/batch/1-1").await, (TaskStatus::Queued, 0));
        agg.server.stop(false).await;
    }

    #[actix_rt::test]
    async fn idle_worker_stops_at_once_and_a_wrong_token_is_fatal() {
        let agg = serve(0, dispatcher_cfg(10_000));
        let (tx, worker) = start_worker(worker_cfg(agg.addr), pool(Duration::ZERO));
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop(tx, worker).await;

        let mut cfg = worker_cfg(agg.addr);
        cfg.token = BearerToken::new("not-the-right-token-0000").unwrap();
        let (_tx, worker) = start_worker(cfg, pool(Duration::ZERO));
        let err = tokio::time::timeout(Duration::from_secs(5), worker).await.unwrap().unwrap().unwrap_err();
        assert!(err.to_string().contains("token"), "{err}");
        assert!(!err.to_string().contains("not-the-right-token"), "the token is never printed: {err}");
        agg.server.stop(false).await;
    }
}
