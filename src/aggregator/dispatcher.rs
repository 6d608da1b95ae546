//! The `Dispatcher` actor: a thin shell that owns the [`TaskQueue`] and the
//! [`ProverRegistry`] and turns protocol messages into calls on them. The
//! rules live in those structs; this file adds only what needs a runtime:
//! the clock, the long-poll wait for work, the periodic lease expiry, and
//! handing proofs to the (blocking) verifier and to the persistence sink.
//!
//! Submission path: pre-checks on the actor (prover known, task known and not
//! done, payload decodes) → structural checks and [`ProofVerifier::verify`] on
//! a blocking thread → the [`ProofSink`] persists the proof → the actor marks
//! the task done. The sink runs before the task is marked done so a proof is
//! never reported accepted and then lost; the sink must therefore be
//! idempotent per task id (two valid proofs for one task may race to it).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::provers::{InvalidOutcome, ProverInfo, ProverRegistry, RegistryConfig, RegistryError};
use super::queue::{KindDepth, Lease, QueueConfig, QueueError, Requeued, TaskQueue};
use crate::metrics::{self, RejectReason, ReturnReason};
use crate::wire::proof::ShapeKey;
use crate::wire::task::{normalize_vk_hash, NewTask, ProofPayload, Task, TaskId, TaskKind, TaskStatus};

/// Checks a prover's result for a task. Called on a blocking thread, never
/// on the actor or an async executor thread, so it may take milliseconds.
///
/// An implementation must check both that the proof verifies and that it
/// proves *this* task: the public inputs must be those of the task's
/// request (domain, batch number, roots, data hash, miner), or a prover
/// could hand in a valid proof of something else. The dispatcher has already
/// checked the payload's kind and that it covers the task's batch range.
pub trait ProofVerifier: Send + Sync + 'static {
    fn verify(&self, task: &Task, payload: &ProofPayload) -> Result<(), String>;
}

/// A verified result, sent to the [`ProofSink`] before the task is marked
/// done. Persist it and reply `Ok`; an `Err` makes the submission fail with
/// 503 so the prover retries it.
#[derive(Debug, Clone)]
pub struct ProofAccepted {
    pub task: Task,
    pub payload: ProofPayload,
    pub prover_id: String,
}

impl Message for ProofAccepted {
    type Result = Result<(), String>;
}

/// Where verified proofs go (the proof manager, which persists them).
pub type ProofSink = Recipient<ProofAccepted>;

/// A task reached its attempt cap and needs attention.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct TaskFailed {
    pub task: Task,
}

/// Milliseconds since the Unix epoch; injected so tests can move time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatcherConfig {
    pub queue: QueueConfig,
    pub provers: RegistryConfig,
    /// Longest a claim waits for work before answering "nothing" (204).
    pub poll_ms: u64,
    /// How often expired leases are collected.
    pub tick_ms: u64,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            queue: QueueConfig::default(),
            provers: RegistryConfig::default(),
            poll_ms: 25_000,
            tick_ms: 1_000,
        }
    }
}

impl DispatcherConfig {
    /// The heartbeat interval provers are told to use: three heartbeats fit
    /// in a lease, so one lost request does not cost the lease.
    pub fn heartbeat_ms(&self) -> u64 {
        (self.queue.lease_ms / 3).max(1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error("unknown prover {0}; register again")]
    UnknownProver(String),
    #[error("prover is quarantined for invalid proofs until {until_ms} ms since the epoch")]
    Quarantined { until_ms: u64, retry_after_ms: u64 },
    #[error("unknown task {0}")]
    UnknownTask(TaskId),
    #[error("task {0} is leased to another prover")]
    NotHolder(TaskId),
    #[error("task {task} is not leased (it is {state})")]
    NotLeased { task: TaskId, state: &'static str },
    #[error("task {0} is already done")]
    AlreadyDone(TaskId),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("malformed proof: {0}")]
    MalformedProof(String),
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
}

impl From<QueueError> for DispatchError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::UnknownTask(t) => DispatchError::UnknownTask(t),
            QueueError::NotHolder { task } => DispatchError::NotHolder(task),
            QueueError::NotLeased { task, state: "done" } => DispatchError::AlreadyDone(task),
            QueueError::NotLeased { task, state } => DispatchError::NotLeased { task, state },
            e @ QueueError::InvalidTask { .. } => DispatchError::InvalidRequest(e.to_string()),
        }
    }
}

impl From<RegistryError> for DispatchError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::UnknownProver(p) => DispatchError::UnknownProver(p),
            e @ RegistryError::InvalidRegistration(_) => DispatchError::InvalidRequest(e.to_string()),
        }
    }
}

impl From<MailboxError> for DispatchError {
    fn from(e: MailboxError) -> Self {
        DispatchError::Unavailable(format!("dispatcher: {e}"))
    }
}

/// When a task entered the queue and when its leases started, for the
/// dispatch-latency and proving-duration metrics. Kept next to the queue
/// (which has no clock of its own) and dropped when the task is done.
#[derive(Debug, Default)]
struct TaskTimes {
    created_ms: u64,
    leased: bool,
    /// (prover, lease start) of the latest leases; a late proof from a
    /// former holder is still timed from its own lease.
    leases: Vec<(String, u64)>,
}

/// Lease starts remembered per task (releases do not count attempts, so
/// the list is capped rather than bounded by `max_attempts`).
const TIMED_LEASES: usize = 8;

/// Start it with [`DispatcherHandle::start`]: long-polling claims wait on
/// the handle, not on the actor.
pub struct Dispatcher {
    cfg: DispatcherConfig,
    queue: TaskQueue,
    registry: ProverRegistry,
    verifier: Arc<dyn ProofVerifier>,
    sink: ProofSink,
    failures: Option<Recipient<TaskFailed>>,
    /// Long-polling claims waiting for work, oldest first, at most one per
    /// prover. A task that becomes claimable wakes the first waiter that
    /// can prove it, not every waiter: waking a thousand idle provers for
    /// one task (each re-claiming through this actor) cost the one that got
    /// it about 6 ms of dispatch latency (docs/BENCHMARKS.md, "Dispatcher").
    waiters: VecDeque<Waiter>,
    /// Per prover: the claim that is current; older waiting claims give up.
    claim_generation: HashMap<String, u64>,
    times: HashMap<TaskId, TaskTimes>,
    clock: Clock,
    pause: Arc<super::pause::PauseSwitch>,
}

impl Dispatcher {
    pub fn new(cfg: DispatcherConfig, verifier: Arc<dyn ProofVerifier>, sink: ProofSink) -> Self {
        Dispatcher {
            queue: TaskQueue::new(cfg.queue.clone()),
            registry: ProverRegistry::new(cfg.provers.clone()),
            cfg,
            verifier,
            sink,
            failures: None,
            waiters: VecDeque::new(),
            claim_generation: HashMap::new(),
            times: HashMap::new(),
            clock: system_clock(),
            pause: Arc::default(),
        }
    }

    /// While `pause` is set, claims get no new work (leases in progress go on).
    pub fn with_pause(mut self, pause: Arc<super::pause::PauseSwitch>) -> Self {
        self.pause = pause;
        self
    }

    /// Also tell `recipient` about tasks that reach their attempt cap.
    pub fn with_failure_sink(mut self, recipient: Recipient<TaskFailed>) -> Self {
        self.failures = Some(recipient);
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> u64 {
        (self.clock)()
    }

    fn surface_failed(&self, task: Task) {
        let reason = match &task.status {
            TaskStatus::Failed { reason } => reason.as_str(),
            _ => "",
        };
        tracing::error!(task = %task.id, rollup = %task.rollup, attempts = task.attempts, reason, "task failed");
        metrics::task_failed(task.kind);
        if let Some(r) = &self.failures {
            r.do_send(TaskFailed { task });
        }
    }

    fn after_requeue(&mut self, id: &str, outcome: Requeued) {
        match outcome {
            Requeued::Queued { .. } => self.wake_for(id),
            Requeued::Failed(task) => self.surface_failed(*task),
        }
    }

    /// Task `id` became claimable: wakes the longest-waiting current claim
    /// of a prover that can take it (its shape and VK hash, not
    /// quarantined). Waiters whose claim is gone (timed out, client left)
    /// or superseded are dropped on the way.
    fn wake_for(&mut self, id: &str) {
        let Some(task) = self.queue.get(id).filter(|t| t.status == TaskStatus::Queued) else { return };
        let (shape, vk) = (task.shape, task.vk_hash.clone());
        let now = self.now();
        let mut i = 0;
        while let Some(w) = self.waiters.get(i) {
            let current = self.claim_generation.get(&w.prover_id) == Some(&w.generation);
            if !current || w.wake.is_closed() {
                self.waiters.remove(i);
                continue;
            }
            let can_take = self
                .registry
                .get(&w.prover_id)
                .is_some_and(|p| p.shapes.iter().any(|k| k.shape == shape && normalize_vk_hash(&k.vk_hash) == vk))
                && self.registry.quarantined_until(&w.prover_id, now).is_none();
            if !can_take {
                i += 1;
                continue;
            }
            if let Some(w) = self.waiters.remove(i) {
                if w.wake.send(()).is_ok() {
                    return;
                }
            }
        }
    }

    /// Wakes every waiting claim (after a resume, when anything may have
    /// become claimable).
    fn wake_all(&mut self) {
        for w in self.waiters.drain(..) {
            let _ = w.wake.send(());
        }
    }

    fn kind_of(&self, id: &str) -> Option<TaskKind> {
        self.queue.get(id).map(|t| t.kind)
    }

    /// Records a new (not resumed) lease: the dispatch latency of a task's
    /// first lease, and the start the proving duration is measured from.
    fn lease_started(&mut self, task: &Task, prover: &str, now: u64) {
        metrics::task_leased(task.kind);
        let times =
            self.times.entry(task.id.clone()).or_insert_with(|| TaskTimes { created_ms: now, ..Default::default() });
        if !times.leased {
            times.leased = true;
            metrics::dispatch_latency(task.kind, metrics::ms_to_secs(now.saturating_sub(times.created_ms)));
        }
        times.leases.retain(|(p, _)| p != prover);
        if times.leases.len() >= TIMED_LEASES {
            times.leases.remove(0);
        }
        times.leases.push((prover.to_string(), now));
    }

    /// Records an accepted proof: completion and the prover's proving time.
    fn proof_completed(&mut self, task: &Task, prover: &str, now: u64) {
        metrics::task_completed(task.kind);
        if let Some(times) = self.times.remove(&task.id) {
            if let Some((_, started)) = times.leases.iter().find(|(p, _)| p == prover) {
                metrics::proving_duration(task.kind, task.shape, metrics::ms_to_secs(now.saturating_sub(*started)));
            }
        }
    }

    /// Queue depth and prover gauges, refreshed on every tick.
    fn publish_gauges(&self, now: u64) {
        let depth = self.queue.depth();
        for d in &depth {
            metrics::queue_depth(d.kind, d.queued, d.leased, d.failed);
        }
        metrics::tasks_in_memory(self.queue.len());
        let working = depth.iter().map(|d| d.leased).sum();
        metrics::provers(self.registry.connected_count(now), working, self.registry.quarantined_count(now));
    }

    /// Touches the prover and refuses a quarantined one.
    fn active_prover(&mut self, prover_id: &str, now: u64) -> Result<Vec<ShapeKey>, DispatchError> {
        let shapes = self.registry.touch(prover_id, now)?.shapes.clone();
        if let Some(until_ms) = self.registry.quarantined_until(prover_id, now) {
            return Err(DispatchError::Quarantined { until_ms, retry_after_ms: until_ms.saturating_sub(now) });
        }
        Ok(shapes)
    }
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(Duration::from_millis(self.cfg.tick_ms.max(10)), |act, _| act.expire());
    }
}

impl Dispatcher {
    fn expire(&mut self) {
        let now = self.now();
        let report = self.queue.expire(now);
        for id in &report.requeued {
            tracing::warn!(task = %id, "lease expired; task requeued");
            if let Some(kind) = self.kind_of(id) {
                metrics::task_expired(kind);
            }
        }
        for id in &report.requeued {
            self.wake_for(id);
        }
        for task in report.failed {
            metrics::task_expired(task.kind);
            self.surface_failed(task);
        }
        for id in self.queue.retry_due(now) {
            tracing::info!(task = %id, "failed task gets another round of attempts");
            if let Some(kind) = self.kind_of(&id) {
                metrics::task_retried(kind);
            }
            self.wake_for(&id);
        }
        self.publish_gauges(now);
    }
}

/// `POST /v1/prover/register`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Registration, DispatchError>")]
pub struct Register {
    pub name: String,
    pub version: String,
    pub shapes: Vec<ShapeKey>,
    pub threads: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub prover_id: String,
    pub lease_ms: u64,
    pub heartbeat_ms: u64,
    pub poll_ms: u64,
}

impl Handler<Register> for Dispatcher {
    type Result = Result<Registration, DispatchError>;

    fn handle(&mut self, msg: Register, _: &mut Self::Context) -> Self::Result {
        let shapes: Vec<String> = msg.shapes.iter().map(|s| s.shape.to_string()).collect();
        let r = self.registry.register(&msg.name, &msg.version, msg.shapes, msg.threads, self.now())?;
        tracing::info!(
            prover = %r.prover_id, name = %msg.name, version = %msg.version, shapes = ?shapes,
            threads = msg.threads, renewed = r.renewed, "prover registered"
        );
        Ok(Registration {
            prover_id: r.prover_id,
            lease_ms: self.cfg.queue.lease_ms,
            heartbeat_ms: self.cfg.heartbeat_ms(),
            poll_ms: self.cfg.poll_ms,
        })
    }
}

/// One non-waiting claim: the prover's own lease, the best task it can
/// prove, or `None`. Long-polling is [`DispatcherHandle::claim`].
///
/// `generation: None` starts a new claim and supersedes every earlier claim
/// of the prover that is still waiting; the reply carries the prover's
/// current claim generation. A retry passes the generation it started with
/// and gets nothing once superseded. This matters because actix-web does not
/// cancel a handler when its client disconnects: without it, a long poll
/// abandoned by a worker that shut down could still lease a task to nobody.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<ClaimAttempt, DispatchError>")]
pub struct Claim {
    pub prover_id: String,
    pub generation: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimAttempt {
    pub generation: u64,
    pub lease: Option<Lease>,
    /// A newer claim of the same prover exists; stop waiting.
    pub superseded: bool,
}

impl Handler<Claim> for Dispatcher {
    type Result = Result<ClaimAttempt, DispatchError>;

    fn handle(&mut self, msg: Claim, _: &mut Self::Context) -> Self::Result {
        let now = self.now();
        let shapes = self.active_prover(&msg.prover_id, now)?;
        let current = self.claim_generation.entry(msg.prover_id.clone()).or_insert(0);
        let generation = match msg.generation {
            None => {
                *current += 1;
                *current
            }
            Some(g) if g != *current => {
                return Ok(ClaimAttempt { generation: *current, lease: None, superseded: true });
            }
            Some(g) => g,
        };
        if self.pause.is_paused() {
            return Ok(ClaimAttempt { generation, lease: None, superseded: false });
        }
        let lease = self.queue.lease(&msg.prover_id, &shapes, now);
        if let Some(l) = &lease {
            tracing::info!(
                task = %l.task.id, prover = %msg.prover_id, attempts = l.task.attempts, resumed = l.resumed,
                expires_at_ms = l.expires_at_ms, "task leased"
            );
            if !l.resumed {
                self.lease_started(&l.task, &msg.prover_id, now);
            }
        }
        Ok(ClaimAttempt { generation, lease, superseded: false })
    }
}

/// A long-polling claim's place in the dispatcher's queue of waiters.
struct Waiter {
    prover_id: String,
    /// The claim generation it waits for; a newer claim supersedes it.
    generation: u64,
    wake: oneshot::Sender<()>,
}

/// A [`Claim`] that, when it finds nothing, leaves a waiter behind and
/// returns what it fires on: the dispatcher wakes it when a task this
/// prover can take becomes claimable. Registering in the same actor step
/// as the failed look means no task can slip in between unnoticed.
#[derive(Message)]
#[rtype(result = "Result<(ClaimAttempt, Option<oneshot::Receiver<()>>), DispatchError>")]
struct ClaimOrWait(Claim);

impl Handler<ClaimOrWait> for Dispatcher {
    type Result = Result<(ClaimAttempt, Option<oneshot::Receiver<()>>), DispatchError>;

    fn handle(&mut self, msg: ClaimOrWait, ctx: &mut Self::Context) -> Self::Result {
        let prover_id = msg.0.prover_id.clone();
        let attempt = <Self as Handler<Claim>>::handle(self, msg.0, ctx)?;
        if attempt.lease.is_some() || attempt.superseded {
            return Ok((attempt, None));
        }
        let (tx, rx) = oneshot::channel();
        // One waiter per prover: the newest claim supersedes the others.
        self.waiters.retain(|w| w.prover_id != prover_id);
        self.waiters.push_back(Waiter { prover_id, generation: attempt.generation, wake: tx });
        Ok((attempt, Some(rx)))
    }
}

/// Wakes every waiting claim.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
struct WakeAll;

impl Handler<WakeAll> for Dispatcher {
    type Result = ();

    fn handle(&mut self, _: WakeAll, _: &mut Self::Context) {
        self.wake_all();
    }
}

/// A started [`Dispatcher`]: its address and the claims' poll window. The
/// wait of a long-polling claim runs in the caller's task, not on the
/// actor, so a claim whose HTTP client went away stops waiting with it and
/// cannot lease a task to nobody.
#[derive(Clone)]
pub struct DispatcherHandle {
    addr: Addr<Dispatcher>,
    poll_ms: u64,
}

impl DispatcherHandle {
    pub fn start(dispatcher: Dispatcher) -> Self {
        let poll_ms = dispatcher.cfg.poll_ms;
        DispatcherHandle { addr: dispatcher.start(), poll_ms }
    }

    pub fn addr(&self) -> &Addr<Dispatcher> {
        &self.addr
    }

    /// Wakes waiting claims (after a resume).
    pub fn wake(&self) {
        self.addr.do_send(WakeAll);
    }

    /// A task for the prover, or `None` after waiting up to `wait_ms`
    /// (default and cap: the configured poll window) for one to appear.
    pub async fn claim(&self, prover_id: &str, wait_ms: Option<u64>) -> Result<Option<Lease>, DispatchError> {
        let wait = Duration::from_millis(wait_ms.unwrap_or(self.poll_ms).min(self.poll_ms));
        let deadline = tokio::time::Instant::now() + wait;
        let mut generation = None;
        loop {
            let claim = Claim { prover_id: prover_id.to_string(), generation };
            if wait.is_zero() {
                return Ok(self.addr.send(claim).await??.lease);
            }
            let (attempt, woken) = self.addr.send(ClaimOrWait(claim)).await??;
            if attempt.lease.is_some() || attempt.superseded {
                return Ok(attempt.lease);
            }
            generation = Some(attempt.generation);
            let Some(woken) = woken else { return Ok(None) };
            match tokio::time::timeout_at(deadline, woken).await {
                // Something this prover can take became claimable: look again.
                Ok(Ok(())) => {}
                // Dropped unfired: a newer claim of the prover replaced this
                // one (or the dispatcher stopped).
                Ok(Err(_)) => return Ok(None),
                Err(_) => return Ok(None),
            }
        }
    }
}

/// `POST /v1/prover/heartbeat`: extends the lease; returns its new expiry.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<u64, DispatchError>")]
pub struct Heartbeat {
    pub prover_id: String,
    pub task_id: TaskId,
}

impl Handler<Heartbeat> for Dispatcher {
    type Result = Result<u64, DispatchError>;

    fn handle(&mut self, msg: Heartbeat, _: &mut Self::Context) -> Self::Result {
        let now = self.now();
        self.registry.touch(&msg.prover_id, now)?;
        Ok(self.queue.heartbeat(&msg.task_id, &msg.prover_id, now)?)
    }
}

/// `POST /v1/prover/submit`. `proof` is decoded by the task's kind.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), DispatchError>")]
pub struct Submit {
    pub prover_id: String,
    pub task_id: TaskId,
    pub proof: serde_json::Value,
}

/// The verifier's verdict, back on the actor.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), DispatchError>")]
struct Verdict {
    prover_id: String,
    task_id: TaskId,
    result: Result<(), String>,
}

/// The metrics reason of a submission refused before verification; `None`
/// for refusals that say nothing about the proof (the dispatcher is down).
fn rejection(e: &DispatchError) -> Option<RejectReason> {
    match e {
        DispatchError::UnknownProver(_) => Some(RejectReason::UnknownProver),
        DispatchError::UnknownTask(_) => Some(RejectReason::UnknownTask),
        DispatchError::AlreadyDone(_) => Some(RejectReason::AlreadyDone),
        DispatchError::MalformedProof(_) => Some(RejectReason::Malformed),
        DispatchError::InvalidProof(_) => Some(RejectReason::Invalid),
        _ => None,
    }
}

/// Checks every backend's result must pass: a batch proof is for the
/// task's batch, a bundle covers exactly the task's batches in order.
fn check_covers_task(task: &Task, payload: &ProofPayload) -> Result<(), String> {
    match payload {
        ProofPayload::Batch(p) if p.public.batch_num == task.first_batch => Ok(()),
        ProofPayload::Batch(p) => {
            Err(format!("proof is for batch {}, the task is batch {}", p.public.batch_num, task.first_batch))
        }
        ProofPayload::Bundle(b) => b.check_covers(task.first_batch, task.last_batch).map_err(|e| e.to_string()),
    }
}

impl Handler<Submit> for Dispatcher {
    type Result = ResponseFuture<Result<(), DispatchError>>;

    fn handle(&mut self, msg: Submit, ctx: &mut Self::Context) -> Self::Result {
        let now = self.now();
        let pre = (|| {
            self.registry.touch(&msg.prover_id, now)?;
            if self.queue.was_done(&msg.task_id) {
                return Err(DispatchError::AlreadyDone(msg.task_id.clone()));
            }
            let task = self.queue.get(&msg.task_id).ok_or_else(|| DispatchError::UnknownTask(msg.task_id.clone()))?;
            if task.status == TaskStatus::Done {
                return Err(DispatchError::AlreadyDone(task.id.clone()));
            }
            let payload =
                ProofPayload::decode(task.kind, msg.proof).map_err(|e| DispatchError::MalformedProof(e.to_string()))?;
            Ok((task.clone(), payload))
        })();
        if let Err(e) = &pre {
            if let Some(reason) = rejection(e) {
                metrics::proof_rejected(reason);
            }
        }
        let verifier = self.verifier.clone();
        let sink = self.sink.clone();
        let addr = ctx.address();
        let Submit { prover_id, task_id, .. } = msg;
        Box::pin(async move {
            let (task, payload) = pre?;
            let started = std::time::Instant::now();
            let (task, payload, result) = tokio::task::spawn_blocking(move || {
                let result = check_covers_task(&task, &payload)
                    .map_err(|e| (RejectReason::WrongTask, e))
                    .and_then(|()| verifier.verify(&task, &payload).map_err(|e| (RejectReason::Invalid, e)));
                (task, payload, result)
            })
            .await
            .map_err(|e| {
                tracing::error!(task = %task_id, error = %e, "proof verifier crashed");
                DispatchError::Unavailable("the proof verifier crashed".into())
            })?;
            tracing::debug!(task = %task_id, prover = %prover_id, ok = result.is_ok(), elapsed_ms = started.elapsed().as_millis() as u64, "proof checked");
            let result = result.map_err(|(reason, e)| {
                metrics::proof_rejected(reason);
                e
            });
            if result.is_ok() {
                sink.send(ProofAccepted { task, payload, prover_id: prover_id.clone() })
                    .await
                    .map_err(|e| DispatchError::Unavailable(format!("proof store: {e}")))?
                    .map_err(|e| {
                        tracing::error!(task = %task_id, error = %e, "storing a verified proof failed");
                        DispatchError::Unavailable(format!("proof store: {e}"))
                    })?;
            }
            addr.send(Verdict { prover_id, task_id, result }).await?
        })
    }
}

impl Handler<Verdict> for Dispatcher {
    type Result = Result<(), DispatchError>;

    fn handle(&mut self, msg: Verdict, _: &mut Self::Context) -> Self::Result {
        let now = self.now();
        let Verdict { prover_id, task_id, result } = msg;
        match result {
            Ok(()) => {
                // The prover may have been forgotten meanwhile; its proof
                // still counts.
                let _ = self.registry.record_valid(&prover_id);
                if let Some(task) = self.queue.complete(&task_id, &prover_id)? {
                    tracing::info!(task = %task_id, prover = %prover_id, "proof accepted");
                    self.proof_completed(&task, &prover_id, now);
                    Ok(())
                } else {
                    metrics::proof_rejected(RejectReason::AlreadyDone);
                    Err(DispatchError::AlreadyDone(task_id))
                }
            }
            Err(reason) => {
                tracing::warn!(task = %task_id, prover = %prover_id, reason = %reason, "invalid proof");
                let holds = self.queue.held_by(&prover_id).is_some_and(|t| t.id == task_id);
                if holds {
                    let outcome = self.queue.fail(&task_id, &prover_id, &format!("invalid proof: {reason}"))?;
                    self.after_requeue(&task_id, outcome);
                }
                if let Ok(InvalidOutcome::Quarantined { until_ms }) = self.registry.record_invalid(&prover_id, now) {
                    tracing::warn!(prover = %prover_id, until_ms, "prover quarantined for invalid proofs");
                    if let Some((other, kind)) = self.queue.held_by(&prover_id).map(|t| (t.id.clone(), t.kind)) {
                        if self.queue.release(&other, &prover_id).is_ok() {
                            metrics::task_returned(kind, ReturnReason::Released);
                            self.wake_for(&other);
                        }
                    }
                }
                Err(DispatchError::InvalidProof(reason))
            }
        }
    }
}

/// `POST /v1/prover/fail`: the holder could not prove the task.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<FailOutcome, DispatchError>")]
pub struct Fail {
    pub prover_id: String,
    pub task_id: TaskId,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailOutcome {
    /// `false`: the attempt cap was reached and the task is failed.
    pub requeued: bool,
    pub attempts: u32,
}

impl Handler<Fail> for Dispatcher {
    type Result = Result<FailOutcome, DispatchError>;

    fn handle(&mut self, msg: Fail, _: &mut Self::Context) -> Self::Result {
        self.registry.touch(&msg.prover_id, self.now())?;
        tracing::warn!(task = %msg.task_id, prover = %msg.prover_id, reason = %msg.reason, "prover failed a task");
        let outcome = self.queue.fail(&msg.task_id, &msg.prover_id, &msg.reason)?;
        if let Some(kind) = self.kind_of(&msg.task_id) {
            metrics::task_returned(kind, ReturnReason::Failed);
        }
        let reply = match &outcome {
            Requeued::Queued { attempts } => FailOutcome { requeued: true, attempts: *attempts },
            Requeued::Failed(t) => FailOutcome { requeued: false, attempts: t.attempts },
        };
        self.after_requeue(&msg.task_id, outcome);
        Ok(reply)
    }
}

/// `POST /v1/prover/release`: the holder hands the task back unfinished.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), DispatchError>")]
pub struct Release {
    pub prover_id: String,
    pub task_id: TaskId,
}

impl Handler<Release> for Dispatcher {
    type Result = Result<(), DispatchError>;

    fn handle(&mut self, msg: Release, _: &mut Self::Context) -> Self::Result {
        self.registry.touch(&msg.prover_id, self.now())?;
        self.queue.release(&msg.task_id, &msg.prover_id)?;
        tracing::info!(task = %msg.task_id, prover = %msg.prover_id, "task released");
        if let Some(kind) = self.kind_of(&msg.task_id) {
            metrics::task_returned(kind, ReturnReason::Released);
        }
        self.wake_for(&msg.task_id);
        Ok(())
    }
}

/// Adds a task; `Ok(false)` if it was already known.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<bool, QueueError>")]
pub struct Enqueue(pub NewTask);

impl Handler<Enqueue> for Dispatcher {
    type Result = Result<bool, QueueError>;

    fn handle(&mut self, msg: Enqueue, _: &mut Self::Context) -> Self::Result {
        let (id, kind) = (msg.0.id(), msg.0.input.kind());
        let added = self.queue.enqueue(msg.0)?;
        if added {
            metrics::task_created(kind);
            self.times.insert(id.clone(), TaskTimes { created_ms: self.now(), ..Default::default() });
            self.wake_for(&id);
        }
        Ok(added)
    }
}

/// Collects expired leases now instead of at the next tick.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Tick;

impl Handler<Tick> for Dispatcher {
    type Result = ();

    fn handle(&mut self, _: Tick, _: &mut Self::Context) {
        self.expire();
    }
}

/// Gives a failed task a fresh set of attempts.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), QueueError>")]
pub struct RetryFailed(pub TaskId);

impl Handler<RetryFailed> for Dispatcher {
    type Result = Result<(), QueueError>;

    fn handle(&mut self, msg: RetryFailed, _: &mut Self::Context) -> Self::Result {
        self.queue.retry_failed(&msg.0)?;
        self.wake_for(&msg.0);
        Ok(())
    }
}

/// Drops the tasks of a sequence that no longer needs them (verified by
/// anyone): queued ones are never leased, a holder is told "already done".
#[derive(Debug, Clone, Message)]
#[rtype(result = "usize")]
pub struct Cancel(pub Vec<TaskId>);

impl Handler<Cancel> for Dispatcher {
    type Result = usize;

    fn handle(&mut self, msg: Cancel, _: &mut Self::Context) -> usize {
        let mut n = 0;
        for id in &msg.0 {
            if self.queue.cancel(id) {
                self.times.remove(id);
                n += 1;
            }
        }
        if n > 0 {
            tracing::info!(tasks = n, "tasks of a settled sequence dropped");
        }
        n
    }
}

/// State for metrics and the control API.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Snapshot")]
pub struct GetSnapshot;

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub depth: Vec<KindDepth>,
    pub provers_connected: usize,
    pub provers_quarantined: usize,
    pub provers: Vec<ProverInfo>,
}

impl Handler<GetSnapshot> for Dispatcher {
    type Result = MessageResult<GetSnapshot>;

    fn handle(&mut self, _: GetSnapshot, _: &mut Self::Context) -> Self::Result {
        let now = self.now();
        let mut provers: Vec<ProverInfo> = self.registry.list().cloned().collect();
        provers.sort_by(|a, b| a.name.cmp(&b.name));
        MessageResult(Snapshot {
            depth: self.queue.depth(),
            provers_connected: self.registry.connected_count(now),
            provers_quarantined: self.registry.quarantined_count(now),
            provers,
        })
    }
}

/// Looks up one task (for the control API and tests).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<Task>")]
pub struct GetTask(pub TaskId);

impl Handler<GetTask> for Dispatcher {
    type Result = Option<Task>;

    fn handle(&mut self, msg: GetTask, _: &mut Self::Context) -> Option<Task> {
        self.queue.get(&msg.0).cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::super::testing::{
        AcceptAllVerifierForProtocolTests, MemorySinkForTests, RejectAllVerifierForProtocolTests,
    };
    use super::*;
    use crate::circuit::Shape;
    use crate::wire::task::test_support::{batch, output, VK};

    struct Harness {
        handle: DispatcherHandle,
        addr: Addr<Dispatcher>,
        sink: MemorySinkForTests,
        time: Arc<AtomicU64>,
    }

    fn start(verifier: Arc<dyn ProofVerifier>, cfg: DispatcherConfig) -> Harness {
        let time = Arc::new(AtomicU64::new(1_000));
        let t = time.clone();
        let sink = MemorySinkForTests::default();
        let recipient = sink.clone().start().recipient();
        let handle = DispatcherHandle::start(
            Dispatcher::new(cfg, verifier, recipient).with_clock(Arc::new(move || t.load(Ordering::SeqCst))),
        );
        Harness { addr: handle.addr().clone(), handle, sink, time }
    }

    fn cfg() -> DispatcherConfig {
        DispatcherConfig {
            queue: QueueConfig { lease_ms: 1_000, max_attempts: 2, ..Default::default() },
            provers: RegistryConfig { max_invalid: 2, ..Default::default() },
            poll_ms: 5_000,
            // Expiry is driven by explicit ticks in these tests.
            tick_ms: 3_600_000,
        }
    }

    async fn register(addr: &Addr<Dispatcher>, name: &str) -> String {
        let shapes = vec![ShapeKey { shape: Shape::TEST, vk_hash: VK.into() }];
        let msg = Register { name: name.into(), version: "test".into(), shapes, threads: 1 };
        addr.send(msg).await.unwrap().unwrap().prover_id
    }

    async fn claim(addr: &Addr<Dispatcher>, prover: &str, wait_ms: u64) -> Result<Option<Lease>, DispatchError> {
        assert_eq!(wait_ms, 0, "waiting claims go through the handle");
        addr.send(Claim { prover_id: prover.into(), generation: None }).await.unwrap().map(|a| a.lease)
    }

    async fn submit(addr: &Addr<Dispatcher>, prover: &str, task: &str, batch_num: u64) -> Result<(), DispatchError> {
        let proof = serde_json::to_value(output(batch_num)).unwrap();
        addr.send(Submit { prover_id: prover.into(), task_id: task.into(), proof }).await.unwrap()
    }

    #[actix_rt::test]
    async fn claim_long_polls_until_work_arrives() {
        let h = start(Arc::new(AcceptAllVerifierForProtocolTests), cfg());
        let p = register(&h.addr, "p").await;
        let started = std::time::Instant::now();
        assert_eq!(h.handle.claim(&p, Some(30)).await, Ok(None));
        assert!(started.elapsed() >= Duration::from_millis(30));

        let handle = h.handle.clone();
        let p2 = p.clone();
        let waiting = actix_rt::spawn(async move { handle.claim(&p2, None).await });
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        assert_eq!(h.addr.send(Enqueue(batch("r", 1, 1))).await.unwrap(), Ok(true));
        let lease = waiting.await.unwrap().unwrap().unwrap();
        assert_eq!(lease.task.id, "r/batch/1-1");
        assert!(started.elapsed() < Duration::from_secs(2), "the claim was woken, not timed out");
        assert_eq!(h.handle.claim("prv_nobody", None).await, Err(DispatchError::UnknownProver("prv_nobody".into())));
    }

    #[actix_rt::test]
    async fn a_new_task_wakes_a_waiter_that_can_take_it() {
        let h = start(Arc::new(AcceptAllVerifierForProtocolTests), cfg());
        let shapes = vec![ShapeKey { shape: Shape { k: 4, d: 8 }, vk_hash: VK.into() }];
        let msg = Register { name: "other-shape".into(), version: "test".into(), shapes, threads: 1 };
        let other = h.addr.send(msg).await.unwrap().unwrap().prover_id;
        let right = register(&h.addr, "right-shape").await;
        let (h1, h2) = (h.handle.clone(), h.handle.clone());
        // The prover that cannot take the task waits longest.
        let first = actix_rt::spawn(async move { h1.claim(&other, None).await });
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        let second = actix_rt::spawn(async move { h2.claim(&right, None).await });
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        h.addr.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let lease = second.await.unwrap().unwrap().expect("the prover with the shape gets the task");
        assert_eq!(lease.task.id, "r/batch/1-1");
        assert!(started.elapsed() < Duration::from_secs(2), "woken, not timed out");
        assert!(!first.is_finished(), "the other prover keeps waiting");
        first.abort();
    }

    #[actix_rt::test]
    async fn a_superseded_waiter_does_not_swallow_the_wake_up() {
        let h = start(Arc::new(AcceptAllVerifierForProtocolTests), cfg());
        let p = register(&h.addr, "p").await;
        let q = register(&h.addr, "q").await;
        let (h1, h2) = (h.handle.clone(), h.handle.clone());
        let p2 = p.clone();
        let ghost = actix_rt::spawn(async move { h1.claim(&p2, None).await });
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        // p claims again without waiting: the ghost's claim is superseded.
        assert_eq!(h.handle.claim(&p, Some(0)).await, Ok(None));
        let waiting = actix_rt::spawn(async move { h2.claim(&q, None).await });
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        h.addr.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let lease = waiting.await.unwrap().unwrap().expect("q is woken");
        assert_eq!(lease.task.id, "r/batch/1-1");
        assert!(started.elapsed() < Duration::from_secs(2), "woken, not timed out");
        ghost.abort();
    }

    #[actix_rt::test]
    async fn paused_dispatcher_leases_nothing_until_resumed() {
        let pause = Arc::new(super::super::pause::PauseSwitch::default());
        let sink = MemorySinkForTests::default();
        let handle = DispatcherHandle::start(
            Dispatcher::new(cfg(), Arc::new(AcceptAllVerifierForProtocolTests), sink.start().recipient())
                .with_pause(pause.clone()),
        );
        let p = register(handle.addr(), "p").await;
        assert_eq!(handle.addr().send(Enqueue(batch("r", 1, 1))).await.unwrap(), Ok(true));
        pause.set(true);
        assert_eq!(handle.claim(&p, Some(30)).await, Ok(None), "paused: the queued task stays queued");
        let h2 = handle.clone();
        let p2 = p.clone();
        let waiting = actix_rt::spawn(async move { h2.claim(&p2, None).await });
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        pause.set(false);
        handle.wake();
        let lease = waiting.await.unwrap().unwrap().expect("a resumed claim gets the task");
        assert_eq!(lease.task.id, "r/batch/1-1");
    }

    #[actix_rt::test]
    async fn abandoned_claim_leases_nothing() {
        let h = start(Arc::new(AcceptAllVerifierForProtocolTests), cfg());
        let p = register(&h.addr, "p").await;
        let handle = h.handle.clone();
        let waiting = actix_rt::spawn(async move { handle.claim(&p, None).await });
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        waiting.abort();
        h.addr.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        let task = h.addr.send(GetTask("r/batch/1-1".into())).await.unwrap().unwrap();
        assert_eq!(task.status, TaskStatus::Queued);
    }

    #[actix_rt::test]
    async fn a_newer_claim_supersedes_a_waiting_one() {
        let h = start(Arc::new(AcceptAllVerifierForProtocolTests), cfg());
        let p = register(&h.addr, "p").await;
        let handle = h.handle.clone();
        let p2 = p.clone();
        // A claim whose client went away: actix-web keeps polling it.
        let ghost = actix_rt::spawn(async move { handle.claim(&p2, None).await });
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        // The prover claims again (it restarted, or hands back on shutdown).
        assert_eq!(h.handle.claim(&p, Some(0)).await, Ok(None));
        h.addr.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        assert_eq!(ghost.await.unwrap(), Ok(None), "the superseded claim gives up");
        let task = h.addr.send(GetTask("r/batch/1-1".into())).await.unwrap().unwrap();
        assert_eq!(task.status, TaskStatus::Queued);
    }

    #[actix_rt::test]
    async fn valid_submit_is_stored_then_done() {
        let h = start(Arc::new(AcceptAllVerifierForProtocolTests), cfg());
        let p = register(&h.addr, "p").await;
        h.addr.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let lease = claim(&h.addr, &p, 0).await.unwrap().unwrap();
        // A proof for another batch is refused before the verifier is asked.
        assert!(matches!(submit(&h.addr, &p, &lease.task.id, 2).await, Err(DispatchError::InvalidProof(_))));
        // The wrong-batch proof cost the lease; claim again.
        let lease = claim(&h.addr, &p, 0).await.unwrap().unwrap();
        assert_eq!(submit(&h.addr, &p, &lease.task.id, 1).await, Ok(()));
        assert_eq!(h.sink.task_ids(), vec!["r/batch/1-1"]);
        assert!(h.addr.send(GetTask(lease.task.id.clone())).await.unwrap().is_none(), "done and dropped");
        assert_eq!(submit(&h.addr, &p, &lease.task.id, 1).await, Err(DispatchError::AlreadyDone(lease.task.id)));
        let bad = Submit { prover_id: p.clone(), task_id: "r/batch/1-1".into(), proof: serde_json::json!({"x": 1}) };
        assert_eq!(h.addr.send(bad).await.unwrap(), Err(DispatchError::AlreadyDone("r/batch/1-1".into())));
    }

    #[actix_rt::test]
    async fn malformed_proof_is_a_request_error() {
        let h = start(Arc::new(AcceptAllVerifierForProtocolTests), cfg());
        let p = register(&h.addr, "p").await;
        h.addr.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        claim(&h.addr, &p, 0).await.unwrap().unwrap();
        let bad = Submit { prover_id: p.clone(), task_id: "r/batch/1-1".into(), proof: serde_json::json!({"x": 1}) };
        assert!(matches!(h.addr.send(bad).await.unwrap(), Err(DispatchError::MalformedProof(_))));
        let snap = h.addr.send(GetSnapshot).await.unwrap();
        assert_eq!(snap.provers[0].invalid_proofs, 0, "a malformed request is not an invalid proof");
    }

    #[actix_rt::test]
    async fn invalid_proofs_requeue_and_quarantine() {
        let h = start(Arc::new(RejectAllVerifierForProtocolTests), cfg());
        let p = register(&h.addr, "p").await;
        h.addr.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let lease = claim(&h.addr, &p, 0).await.unwrap().unwrap();
        assert!(matches!(submit(&h.addr, &p, &lease.task.id, 1).await, Err(DispatchError::InvalidProof(_))));
        let task = h.addr.send(GetTask(lease.task.id.clone())).await.unwrap().unwrap();
        assert_eq!((task.status, task.attempts), (TaskStatus::Queued, 1));
        // A late invalid proof from a non-holder is counted, the task untouched.
        assert!(matches!(submit(&h.addr, &p, &lease.task.id, 1).await, Err(DispatchError::InvalidProof(_))));
        assert!(h.sink.task_ids().is_empty());
        let until = 1_000 + RegistryConfig::default().quarantine_ms;
        let retry_after_ms = until - 1_000;
        assert_eq!(claim(&h.addr, &p, 0).await, Err(DispatchError::Quarantined { until_ms: until, retry_after_ms }));
        // Others still get the task.
        let q = register(&h.addr, "q").await;
        assert!(claim(&h.addr, &q, 0).await.unwrap().is_some());
        h.time.store(until, Ordering::SeqCst);
        assert_eq!(claim(&h.addr, &p, 0).await, Ok(None), "quarantine over, nothing queued");
    }

    #[actix_rt::test]
    async fn storage_failure_keeps_the_task_open() {
        let h = start(Arc::new(AcceptAllVerifierForProtocolTests), cfg());
        let p = register(&h.addr, "p").await;
        h.addr.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let lease = claim(&h.addr, &p, 0).await.unwrap().unwrap();
        *h.sink.failing.lock().unwrap() = true;
        assert!(matches!(submit(&h.addr, &p, &lease.task.id, 1).await, Err(DispatchError::Unavailable(_))));
        let task = h.addr.send(GetTask(lease.task.id.clone())).await.unwrap().unwrap();
        assert!(matches!(task.status, TaskStatus::Leased { .. }));
        *h.sink.failing.lock().unwrap() = false;
        assert_eq!(submit(&h.addr, &p, &lease.task.id, 1).await, Ok(()));
    }

    #[derive(Default)]
    struct Failures(Arc<std::sync::Mutex<Vec<TaskId>>>);
    impl Actor for Failures {
        type Context = Context<Self>;
    }
    impl Handler<TaskFailed> for Failures {
        type Result = ();
        fn handle(&mut self, msg: TaskFailed, _: &mut Self::Context) {
            self.0.lock().unwrap().push(msg.task.id);
        }
    }

    #[actix_rt::test]
    async fn expired_leases_requeue_and_failures_surface() {
        let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let time = Arc::new(AtomicU64::new(0));
        let t = time.clone();
        let sink = MemorySinkForTests::default().start().recipient();
        let addr = Dispatcher::new(cfg(), Arc::new(AcceptAllVerifierForProtocolTests), sink)
            .with_clock(Arc::new(move || t.load(Ordering::SeqCst)))
            .with_failure_sink(Failures(failed.clone()).start().recipient())
            .start();
        let p = register(&addr, "p").await;
        addr.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        claim(&addr, &p, 0).await.unwrap().unwrap();
        time.store(1_000, Ordering::SeqCst);
        addr.send(Tick).await.unwrap();
        let task = addr.send(GetTask("r/batch/1-1".into())).await.unwrap().unwrap();
        assert_eq!((task.status, task.attempts), (TaskStatus::Queued, 1));
        claim(&addr, &p, 0).await.unwrap().unwrap();
        time.store(2_000, Ordering::SeqCst);
        addr.send(Tick).await.unwrap();
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(*failed.lock().unwrap(), vec!["r/batch/1-1".to_string()]);
        // A late valid proof still rescues it.
        assert_eq!(submit(&addr, &p, "r/batch/1-1", 1).await, Ok(()));
        addr.send(RetryFailed("r/batch/1-1".into())).await.unwrap().unwrap_err();
    }

    /// The registry is process-wide and other tests run in parallel, so
    /// this checks that each event counted at least once.
    #[actix_rt::test]
    async fn metrics_follow_a_task_through_the_dispatcher() {
        let m = crate::metrics::get();
        let shape = Shape::TEST.to_string();
        let count = |c: &prometheus::IntCounterVec, labels: &[&str]| c.with_label_values(labels).get();
        let before = (
            count(&m.tasks_created_total, &["batch"]),
            count(&m.tasks_leased_total, &["batch"]),
            count(&m.tasks_completed_total, &["batch"]),
            count(&m.proofs_rejected_total, &["malformed"]),
            count(&m.proofs_rejected_total, &["unknown_task"]),
            m.tasks_dispatch_latency_seconds.with_label_values(&["batch"]).get_sample_count(),
            m.tasks_proving_duration_seconds.with_label_values(&["batch", &shape]).get_sample_count(),
        );
        let h = start(Arc::new(AcceptAllVerifierForProtocolTests), cfg());
        let p = register(&h.addr, "p").await;
        h.addr.send(Enqueue(batch("metrics", 1, 1))).await.unwrap().unwrap();
        h.time.store(3_000, Ordering::SeqCst);
        let lease = claim(&h.addr, &p, 0).await.unwrap().unwrap();
        // Re-claiming the own lease is not a new lease.
        claim(&h.addr, &p, 0).await.unwrap().unwrap();
        let bad = Submit { prover_id: p.clone(), task_id: lease.task.id.clone(), proof: serde_json::json!({"x": 1}) };
        assert!(h.addr.send(bad).await.unwrap().is_err());
        let unknown =
            Submit { prover_id: p.clone(), task_id: "metrics/batch/9-9".into(), proof: serde_json::json!({}) };
        assert!(h.addr.send(unknown).await.unwrap().is_err());
        h.time.store(10_000, Ordering::SeqCst);
        assert_eq!(submit(&h.addr, &p, &lease.task.id, 1).await, Ok(()));
        h.addr.send(Tick).await.unwrap();

        assert!(count(&m.tasks_created_total, &["batch"]) > before.0);
        assert!(count(&m.tasks_leased_total, &["batch"]) > before.1);
        assert!(count(&m.tasks_completed_total, &["batch"]) > before.2);
        assert!(count(&m.proofs_rejected_total, &["malformed"]) > before.3);
        assert!(count(&m.proofs_rejected_total, &["unknown_task"]) > before.4);
        assert!(m.tasks_dispatch_latency_seconds.with_label_values(&["batch"]).get_sample_count() > before.5);
        assert!(m.tasks_proving_duration_seconds.with_label_values(&["batch", &shape]).get_sample_count() > before.6);
        assert!(h.addr.send(GetTask(lease.task.id.clone())).await.unwrap().is_none(), "done tasks leave memory");
    }

    #[actix_rt::test]
    async fn fail_and_release_from_the_holder() {
        let h = start(Arc::new(AcceptAllVerifierForProtocolTests), cfg());
        let p = register(&h.addr, "p").await;
        let q = register(&h.addr, "q").await;
        h.addr.send(Enqueue(batch("r", 1, 1))).await.unwrap().unwrap();
        let id = claim(&h.addr, &p, 0).await.unwrap().unwrap().task.id;
        let release = |prover: &str| Release { prover_id: prover.into(), task_id: id.clone() };
        assert_eq!(h.addr.send(release(&q)).await.unwrap(), Err(DispatchError::NotHolder(id.clone())));
        assert_eq!(h.addr.send(release(&p)).await.unwrap(), Ok(()));
        claim(&h.addr, &q, 0).await.unwrap().unwrap();
        let fail = Fail { prover_id: q.clone(), task_id: id.clone(), reason: "oom".into() };
        assert_eq!(h.addr.send(fail.clone()).await.unwrap(), Ok(FailOutcome { requeued: true, attempts: 1 }));
        claim(&h.addr, &q, 0).await.unwrap().unwrap();
        assert_eq!(h.addr.send(fail).await.unwrap(), Ok(FailOutcome { requeued: false, attempts: 2 }));
        let snap = h.addr.send(GetSnapshot).await.unwrap();
        assert_eq!(snap.depth[0].failed, 1);
        assert_eq!(snap.provers_connected, 2);
    }
}
