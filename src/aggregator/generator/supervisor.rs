//! The supervisor of one sequence: plans its proof tree, runs one child
//! actor per task, restarts a failed child with backoff, and stops with
//! its children once the sequence is verified (by anyone) or skipped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::proof::{AggregationStage, BatchStage, FinalStage, ProofActor, Shutdown, Stage};
use super::{GeneratorCtx, SeqKey};
use crate::aggregator::dispatcher::{Cancel, ProofAccepted};
use crate::aggregator::pipeline::{self, RollupCtx, SequencePlan};
use crate::db;
use crate::wire::task::{NewTask, TaskId, TaskKind};

/// First wait before a failed child (or a failed plan) is tried again.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait: a database or dispatcher outage is retried at least this often.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// `FIRST_BACKOFF` doubling with every failure in a row, up to `MAX_BACKOFF`.
pub fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(MAX_BACKOFF)
}

/// The supervisor's bookkeeping of its children, without actors: which
/// tasks run, which wait out a restart backoff, how often each failed.
#[derive(Debug)]
pub struct Children<H> {
    live: BTreeMap<TaskId, (TaskKind, H)>,
    failures: HashMap<TaskId, u32>,
    cooling: HashMap<TaskId, Instant>,
}

impl<H> Default for Children<H> {
    fn default() -> Self {
        Children { live: BTreeMap::new(), failures: HashMap::new(), cooling: HashMap::new() }
    }
}

impl<H> Children<H> {
    pub fn add(&mut self, id: TaskId, kind: TaskKind, handle: H) {
        self.cooling.remove(&id);
        self.live.insert(id, (kind, handle));
    }

    pub fn get(&self, id: &str) -> Option<&H> {
        self.live.get(id).map(|(_, h)| h)
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Tasks the plan must leave out at `now`: running ones, and failed ones
    /// whose restart backoff has not run out.
    pub fn excluded(&mut self, now: Instant) -> BTreeSet<TaskId> {
        self.cooling.retain(|_, until| *until > now);
        self.live.keys().chain(self.cooling.keys()).cloned().collect()
    }

    /// The child finished its task.
    pub fn done(&mut self, id: &str) -> Option<H> {
        self.failures.remove(id);
        self.cooling.remove(id);
        self.live.remove(id).map(|(_, h)| h)
    }

    /// The child failed: it is gone, and its task waits out the returned
    /// backoff before a new child takes it.
    pub fn failed(&mut self, id: &str, now: Instant) -> (Option<TaskKind>, Duration) {
        let kind = self.live.remove(id).map(|(k, _)| k);
        let n = self.failures.entry(id.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        let wait = backoff(*n);
        self.cooling.insert(id.to_string(), now + wait);
        (kind, wait)
    }

    pub fn drain(&mut self) -> Vec<(TaskId, H)> {
        self.cooling.clear();
        std::mem::take(&mut self.live).into_iter().map(|(id, (_, h))| (id, h)).collect()
    }
}

/// A child's handles: proofs go in, and it can be told to stop.
#[derive(Clone)]
pub struct ChildHandle {
    proofs: Recipient<ProofAccepted>,
    shutdown: Recipient<Shutdown>,
}

/// Plan again: a child finished, or something changed in the database.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Replan;

/// A child stored its task's proof.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ChildDone {
    pub task: TaskId,
}

/// A child could not do its job (the dispatcher refused or was unreachable).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ChildFailed {
    pub task: TaskId,
    pub error: String,
}

pub struct SequenceSupervisor {
    gcx: GeneratorCtx,
    rollup: Arc<RollupCtx>,
    init_batch: u64,
    children: Children<ChildHandle>,
    planning: bool,
    again: bool,
    plan_failures: u32,
}

impl SequenceSupervisor {
    pub fn new(gcx: GeneratorCtx, rollup: Arc<RollupCtx>, init_batch: u64) -> Self {
        SequenceSupervisor {
            gcx,
            rollup,
            init_batch,
            children: Children::default(),
            planning: false,
            again: false,
            plan_failures: 0,
        }
    }

    fn key(&self) -> SeqKey {
        (self.rollup.name.clone(), self.init_batch)
    }

    fn spawn_child(&mut self, task: NewTask, me: Addr<Self>) {
        fn start<S: Stage>(task: NewTask, gcx: &GeneratorCtx, me: Addr<SequenceSupervisor>) -> ChildHandle {
            let addr = ProofActor::<S>::new(task, gcx.clone(), me).start();
            ChildHandle { proofs: addr.clone().recipient(), shutdown: addr.recipient() }
        }
        let (id, kind) = (task.id(), task.input.kind());
        let handle = match kind {
            TaskKind::Batch => start::<BatchStage>(task, &self.gcx, me),
            TaskKind::Aggregate => start::<AggregationStage>(task, &self.gcx, me),
            TaskKind::Final => start::<FinalStage>(task, &self.gcx, me),
        };
        self.children.add(id, kind, handle);
    }

    fn planned(&mut self, plan: Result<SequencePlan, db::DbError>, ctx: &mut Context<Self>) {
        self.planning = false;
        match plan {
            Ok(SequencePlan::Settled) => {
                tracing::debug!(rollup = %self.rollup.name, init_batch = self.init_batch, "sequence settled; supervisor stops");
                ctx.stop();
                return;
            }
            Ok(SequencePlan::Tasks(tasks)) => {
                self.plan_failures = 0;
                for task in tasks {
                    self.spawn_child(task, ctx.address());
                }
            }
            Err(e) => {
                self.plan_failures = self.plan_failures.saturating_add(1);
                let wait = backoff(self.plan_failures);
                crate::metrics::generator_restart("supervisor");
                tracing::warn!(
                    rollup = %self.rollup.name, init_batch = self.init_batch, error = %format!("{e:#}"),
                    retry_in_ms = wait.as_millis() as u64, "planning the sequence failed"
                );
                ctx.notify_later(Replan, wait);
            }
        }
        if std::mem::take(&mut self.again) {
            ctx.notify(Replan);
        }
    }
}

impl Actor for SequenceSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        crate::metrics::actor_started("supervisor");
        ctx.notify(Replan);
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        crate::metrics::actor_stopped("supervisor");
        let children = self.children.drain();
        let ids: Vec<TaskId> = children.iter().map(|(id, _)| id.clone()).collect();
        for (_, child) in children {
            child.shutdown.do_send(Shutdown);
        }
        // Nobody needs these proofs any more; provers should not spend
        // minutes on them, nor the queue hold their inputs.
        if !ids.is_empty() {
            self.gcx.dispatcher.addr().do_send(Cancel(ids));
        }
        let me = ctx.address();
        self.gcx.registry.remove_if(&self.key(), |_, addr| *addr == me);
    }
}

impl Handler<Replan> for SequenceSupervisor {
    type Result = ();

    fn handle(&mut self, _: Replan, ctx: &mut Self::Context) {
        if self.planning {
            self.again = true;
            return;
        }
        if !db::lease::may_act(self.gcx.fence.as_deref()) {
            return;
        }
        self.planning = true;
        let running = self.children.excluded(Instant::now());
        let (db, rollup, init) = (self.gcx.db.clone(), self.rollup.clone(), self.init_batch);
        let plan = async move {
            db.run(move |conn| pipeline::plan_sequence(conn, &rollup, init, &running, db::now_ms())).await
        };
        ctx.spawn(plan.into_actor(self).map(|plan, act, ctx| act.planned(plan, ctx)));
    }
}

impl Handler<ChildDone> for SequenceSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildDone, ctx: &mut Self::Context) {
        self.children.done(&msg.task);
        // The next level of the tree may be ready.
        ctx.notify(Replan);
    }
}

impl Handler<ChildFailed> for SequenceSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildFailed, ctx: &mut Self::Context) {
        let (kind, wait) = self.children.failed(&msg.task, Instant::now());
        let label = kind.map(super::proof::label).unwrap_or("unknown");
        crate::metrics::generator_restart(label);
        tracing::warn!(
            task = %msg.task, error = %msg.error, retry_in_ms = wait.as_millis() as u64,
            "proof actor failed; restarting it after a backoff"
        );
        ctx.notify_later(Replan, wait);
    }
}

/// An accepted proof from the router: the child that owns the task stores
/// it. Without one (the child failed a moment ago, or planning has not
/// started it yet) the supervisor stores it itself, so nothing a prover
/// delivered is lost.
impl Handler<ProofAccepted> for SequenceSupervisor {
    type Result = ResponseActFuture<Self, Result<(), String>>;

    fn handle(&mut self, msg: ProofAccepted, _: &mut Self::Context) -> Self::Result {
        if let Some(child) = self.children.get(&msg.task.id) {
            let proofs = child.proofs.clone();
            let db = self.gcx.db.clone();
            return Box::pin(
                async move {
                    match proofs.send(msg.clone()).await {
                        Ok(result) => result,
                        // The child stopped in between: store it here.
                        Err(_) => super::router::store(&db, msg).await,
                    }
                }
                .into_actor(self),
            );
        }
        let db = self.gcx.db.clone();
        Box::pin(async move { super::router::store(&db, msg).await }.into_actor(self).map(|result, _, ctx| {
            if result.is_ok() {
                ctx.notify(Replan);
            }
            result
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_thirty() {
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn children_exclude_running_and_cooling_tasks() {
        let mut c: Children<&str> = Children::default();
        let t0 = Instant::now();
        c.add("r/batch/1-1".into(), TaskKind::Batch, "h1");
        c.add("r/batch/2-2".into(), TaskKind::Batch, "h2");
        assert_eq!(c.excluded(t0).len(), 2);

        let (kind, wait) = c.failed("r/batch/1-1", t0);
        assert_eq!((kind, wait), (Some(TaskKind::Batch), Duration::from_secs(1)));
        assert!(c.get("r/batch/1-1").is_none(), "a failed child is gone");
        assert!(c.excluded(t0).contains("r/batch/1-1"), "and not restarted before its backoff");
        assert!(!c.excluded(t0 + wait).contains("r/batch/1-1"), "but after it");

        // Failing again right after the restart doubles the wait.
        c.add("r/batch/1-1".into(), TaskKind::Batch, "h1b");
        assert_eq!(c.failed("r/batch/1-1", t0 + wait).1, Duration::from_secs(2));
        c.add("r/batch/1-1".into(), TaskKind::Batch, "h1c");
        // Success forgets the failures.
        assert_eq!(c.done("r/batch/1-1"), Some("h1c"));
        c.add("r/batch/1-1".into(), TaskKind::Batch, "h1d");
        assert_eq!(c.failed("r/batch/1-1", t0).1, Duration::from_secs(1));

        assert_eq!(c.drain().len(), 1);
        assert!(c.is_empty() && c.excluded(t0).is_empty());
    }
}
