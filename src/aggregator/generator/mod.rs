//! The Proof Generator: turns every unverified sequence into its final
//! proof.
//!
//! * [`ProofGenerator`] (one per daemon) executes new batches into
//!   witnesses and gives every sequence that can be proven a
//!   [`SequenceSupervisor`], found through the [`Registry`].
//! * A [`SequenceSupervisor`] plans its sequence's proof tree
//!   ([`plan`], [`pipeline::plan_sequence`](super::pipeline::plan_sequence))
//!   and runs one child per task: [`BatchProof`] actors in parallel, then
//!   [`Aggregation`] actors as adjacent pairs complete, then the [`Final`]
//!   actor. A child that fails is restarted with backoff. The supervisor
//!   stops when the sequence is verified on chain (by anyone) or skipped.
//! * A child hands its task to the dispatcher, receives the accepted proof
//!   through the [`ProofRouter`] (the dispatcher's sink), stores it and
//!   reports to its supervisor.
//!
//! The database stays the only durable truth: a restart rebuilds every
//! supervisor and child from it. The actors are thin shells; what they
//! decide is in plain structs ([`supervisor::Children`]) and functions.

pub mod plan;
pub mod proof;
pub mod router;
pub mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::dispatcher::DispatcherHandle;
use super::pipeline::{self, RollupCtx};
use crate::db::lease::Fence;
use crate::db::{self, Db};

pub use proof::{Aggregation, BatchProof, Final};
pub use router::ProofRouter;
pub use supervisor::SequenceSupervisor;

/// A sequence: its rollup and first batch.
pub type SeqKey = (String, u64);

/// The live supervisors, shared by the generator (which starts them), the
/// router (which hands them proofs) and the supervisors (which leave it when
/// they stop).
pub type Registry = Arc<dashmap::DashMap<SeqKey, Addr<SequenceSupervisor>>>;

/// What every actor of the generator needs.
#[derive(Clone)]
pub struct GeneratorCtx {
    pub db: Db,
    pub dispatcher: DispatcherHandle,
    pub registry: Registry,
    /// The failover term; `None` when this process is the database's only user.
    pub fence: Option<Arc<Fence>>,
}

/// New sequences or stored proofs: look for work now.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Wake;

/// Executes batches and starts supervisors; woken by the watcher, by stored
/// proofs and by a timer (the safety net for a lost wake-up).
pub struct ProofGenerator {
    gcx: GeneratorCtx,
    rollups: Vec<Arc<RollupCtx>>,
    every: Duration,
    running: bool,
    again: bool,
    last_replan: std::time::Instant,
}

impl ProofGenerator {
    pub fn new(gcx: GeneratorCtx, rollups: Vec<RollupCtx>, every: Duration) -> Self {
        ProofGenerator {
            gcx,
            rollups: rollups.into_iter().map(Arc::new).collect(),
            every,
            running: false,
            again: false,
            last_replan: std::time::Instant::now(),
        }
    }

    /// Starts supervisors for the sequences that have none. With `replan`,
    /// the others plan again too: supervisors replan on their children's
    /// reports, so this only catches what changed behind their backs (a
    /// final proof the manager reset because its artifact went missing).
    fn supervise(&self, ctx: &Arc<RollupCtx>, sequences: Vec<u64>, replan: bool) {
        for init_batch in sequences {
            let key: SeqKey = (ctx.name.clone(), init_batch);
            if let Some(addr) = self.gcx.registry.get(&key).map(|a| a.clone()) {
                if addr.connected() {
                    if replan {
                        addr.do_send(supervisor::Replan);
                    }
                    continue;
                }
            }
            let addr = SequenceSupervisor::new(self.gcx.clone(), ctx.clone(), init_batch).start();
            self.gcx.registry.insert(key, addr);
        }
    }
}

impl Actor for ProofGenerator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        crate::metrics::actor_started("generator");
        ctx.notify(Wake);
        ctx.run_interval(self.every, |_, ctx| ctx.notify(Wake));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        crate::metrics::actor_stopped("generator");
    }
}

impl Handler<Wake> for ProofGenerator {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Self::Context) {
        if self.running {
            self.again = true;
            return;
        }
        if !db::lease::may_act(self.gcx.fence.as_deref()) {
            return;
        }
        self.running = true;
        let db = self.gcx.db.clone();
        let rollups = self.rollups.clone();
        let registry = self.gcx.registry.clone();
        let pass = async move {
            let mut found = Vec::new();
            for r in rollups {
                let c = r.clone();
                let known: std::collections::BTreeSet<u64> =
                    registry.iter().filter(|e| e.key().0 == r.name).map(|e| e.key().1).collect();
                let result = db
                    .run(move |conn| {
                        pipeline::execute(conn, &c, db::now_ms())?;
                        pipeline::sequences_to_prove(conn, &c, &known)
                    })
                    .await;
                match result {
                    Ok(seqs) => found.push((r, seqs)),
                    Err(e) => tracing::error!(rollup = %r.name, error = %format!("{e:#}"), "executing batches failed"),
                }
            }
            found
        };
        ctx.spawn(pass.into_actor(self).map(|found, act, ctx| {
            let replan = act.last_replan.elapsed() >= act.every;
            if replan {
                act.last_replan = std::time::Instant::now();
            }
            for (r, seqs) in found {
                act.supervise(&r, seqs, replan);
            }
            act.running = false;
            if std::mem::take(&mut act.again) {
                ctx.notify(Wake);
            }
        }));
    }
}
