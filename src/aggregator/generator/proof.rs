//! The children of a sequence supervisor, one per task of its proof tree:
//! [`BatchProof`], [`Aggregation`] and [`Final`]. Each hands its task to
//! the dispatcher, receives the accepted proof, stores it and reports to
//! its supervisor. The three differ in what they prove, which the task's
//! input already carries (planned by
//! [`plan_sequence`](crate::aggregator::pipeline::plan_sequence)), and in
//! what storing their result means (a final proof makes the sequence
//! proven, [`store_proof`](crate::aggregator::pipeline::store_proof)); the
//! shell is shared.

use std::marker::PhantomData;

use actix::prelude::*;

use super::supervisor::{ChildDone, ChildFailed, SequenceSupervisor};
use super::GeneratorCtx;
use crate::aggregator::dispatcher::{Enqueue, ProofAccepted};
use crate::wire::task::{NewTask, TaskId, TaskKind};

/// Which level of the proof tree a child proves; a type parameter so each
/// level is its own actor type, named in logs and metrics.
pub trait Stage: Unpin + 'static {
    const KIND: TaskKind;
}

/// Proves one batch.
pub enum BatchStage {}
/// Proves an adjacent pair of ranges.
pub enum AggregationStage {}
/// Proves the whole sequence.
pub enum FinalStage {}

impl Stage for BatchStage {
    const KIND: TaskKind = TaskKind::Batch;
}
impl Stage for AggregationStage {
    const KIND: TaskKind = TaskKind::Aggregate;
}
impl Stage for FinalStage {
    const KIND: TaskKind = TaskKind::Final;
}

pub type BatchProof = ProofActor<BatchStage>;
pub type Aggregation = ProofActor<AggregationStage>;
pub type Final = ProofActor<FinalStage>;

/// The metrics label of a child of `kind`.
pub fn label(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Batch => "batch_proof",
        TaskKind::Aggregate => "aggregation",
        TaskKind::Final => "final",
    }
}

/// Stop now (the sequence was settled).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// One task's life on the generator side, without the actor: the input
/// goes to the dispatcher once (the dispatcher then holds the only copy of
/// the witness), and the result is reported once.
#[derive(Debug)]
pub struct ProofJob {
    id: TaskId,
    task: Option<NewTask>,
    reported: bool,
}

impl ProofJob {
    pub fn new(task: NewTask) -> Self {
        ProofJob { id: task.id(), task: Some(task), reported: false }
    }

    pub fn id(&self) -> &TaskId {
        &self.id
    }

    /// The task to hand to the dispatcher; `None` after the first call.
    pub fn take_for_dispatch(&mut self) -> Option<NewTask> {
        self.task.take()
    }

    /// Whether the stored result still has to be reported (once only: two
    /// provers may deliver the same task).
    pub fn report_stored(&mut self) -> bool {
        !std::mem::replace(&mut self.reported, true)
    }
}

pub struct ProofActor<S: Stage> {
    job: ProofJob,
    gcx: GeneratorCtx,
    supervisor: Addr<SequenceSupervisor>,
    _stage: PhantomData<S>,
}

impl<S: Stage> ProofActor<S> {
    pub fn new(task: NewTask, gcx: GeneratorCtx, supervisor: Addr<SequenceSupervisor>) -> Self {
        debug_assert_eq!(task.input.kind(), S::KIND);
        ProofActor { job: ProofJob::new(task), gcx, supervisor, _stage: PhantomData }
    }
}

impl<S: Stage> Actor for ProofActor<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        crate::metrics::actor_started(label(S::KIND));
        let Some(task) = self.job.take_for_dispatch() else { return };
        let dispatcher = self.gcx.dispatcher.addr().clone();
        let enqueue = async move { dispatcher.send(Enqueue(task)).await };
        ctx.spawn(enqueue.into_actor(self).map(|sent, act, ctx| {
            let error = match sent {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => e.to_string(),
                Err(e) => format!("dispatcher unavailable: {e}"),
            };
            act.supervisor.do_send(ChildFailed { task: act.job.id().clone(), error });
            ctx.stop();
        }));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        crate::metrics::actor_stopped(label(S::KIND));
    }
}

/// The accepted proof, routed here by the supervisor. Stored before the
/// reply, so the dispatcher marks the task done only once it is durable; a
/// storage error goes back to the prover (503), which submits again.
impl<S: Stage> Handler<ProofAccepted> for ProofActor<S> {
    type Result = ResponseActFuture<Self, Result<(), String>>;

    fn handle(&mut self, msg: ProofAccepted, _: &mut Self::Context) -> Self::Result {
        let db = self.gcx.db.clone();
        Box::pin(async move { super::router::store(&db, msg).await }.into_actor(self).map(|stored, act, ctx| {
            if stored.is_ok() && act.job.report_stored() {
                act.supervisor.do_send(ChildDone { task: act.job.id().clone() });
                ctx.stop();
            }
            stored
        }))
    }
}

impl<S: Stage> Handler<Shutdown> for ProofActor<S> {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::task::test_support::batch;

    #[test]
    fn a_job_dispatches_once_and_reports_once() {
        let mut job = ProofJob::new(batch("r", 1, 1));
        assert_eq!(job.id(), "r/batch/1-1");
        assert!(job.take_for_dispatch().is_some());
        assert!(job.take_for_dispatch().is_none(), "the witness is handed over, not kept");
        assert!(job.report_stored());
        assert!(!job.report_stored(), "a second delivery is not reported again");
    }

    #[test]
    fn labels_name_the_three_children() {
        assert_eq!(label(BatchStage::KIND), "batch_proof");
        assert_eq!(label(AggregationStage::KIND), "aggregation");
        assert_eq!(label(FinalStage::KIND), "final");
    }
}
