//! The `Resend` actor (the seed's processResend): sweeps the unverified
//! sequences we hold submissions for, on a timer, and puts back into the
//! pipeline what fell out of it.
//!
//! * A submission that is active in the database but in none of the caches
//!   (an operator's resend reopened it, or it was dropped by a failure
//!   while being handed over) is placed into the cache of the stage that
//!   owns it now.
//! * A final artifact that went missing is proven again, unless we
//!   committed its hash in the window that is still taking commits (a
//!   regenerated Groth16 proof differs, and a reveal of anything but the
//!   committed proof costs the wrong-proof penalty).
//!
//! A window that ended without a valid proof needs no sweep: whichever
//! actor holds the sequence sees the ended window at its next look, and
//! the rule book answers with a commit to the next window, which hands the
//! sequence back to the committer.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::pending::place;
use crate::aggregator::pipeline;
use crate::aggregator::sender::{Action, Phase, SenderCore, SeqKey};
use crate::db::{self, SequenceState, SubmissionStatus};
use crate::metrics;

/// Sweeps per poll interval: a sweep reads the database for every active
/// submission, so it runs less often than the stages look.
pub const SWEEP_EVERY_POLLS: u32 = 5;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub replaced: usize,
    pub regenerated: usize,
}

pub struct Resend {
    core: Arc<SenderCore>,
}

impl Resend {
    pub fn new(core: Arc<SenderCore>) -> Self {
        Resend { core }
    }
}

impl Actor for Resend {
    type Context = actix::Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        metrics::sender_actor_started(self.core.chain(), "resend");
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        metrics::sender_actor_stopped(self.core.chain(), "resend");
    }
}

/// One sweep.
#[derive(Message)]
#[rtype(result = "Result<Swept, String>")]
pub struct Sweep;

impl Handler<Sweep> for Resend {
    type Result = ResponseFuture<Result<Swept, String>>;

    fn handle(&mut self, _: Sweep, _: &mut Self::Context) -> Self::Result {
        let core = self.core.clone();
        Box::pin(async move { sweep(&core).await.map_err(|e| format!("{e:#}")) })
    }
}

/// Whether the sweep should prove a sequence's final step again: it has no
/// final artifact although its sequence counts as proven, the rule book
/// waits (nothing to send without the proof), and we did not commit the
/// lost proof's hash in a window still taking commits.
pub fn needs_regeneration(
    state: Option<SequenceState>,
    artifact: bool,
    action: &Action,
    ours_in_commit_phase: bool,
) -> bool {
    !artifact
        && matches!(state, Some(SequenceState::Proven | SequenceState::Committed))
        && matches!(action, Action::Wait(_))
        && !ours_in_commit_phase
}

pub async fn sweep(core: &SenderCore) -> anyhow::Result<Swept> {
    let mut done = Swept::default();
    if !core.tm.may_act() || core.pause.is_paused() {
        return Ok(done);
    }
    let names: Vec<String> = core.rollups.iter().map(|r| r.ctx.name.clone()).collect();
    // Which active submissions lack their final artifact, read in one go
    // from the database; only those need the chain.
    let active = core
        .db
        .run(move |c| {
            let mut out = Vec::new();
            for s in db::outbox::list_submissions(c, &names, Some(SubmissionStatus::Active))? {
                let lost = pipeline::final_artifact(c, &s.rollup, s.init_batch)?.is_none();
                out.push((SeqKey::new(&s.rollup, s.init_batch), lost));
            }
            Ok(out)
        })
        .await?;
    for (key, lost) in active {
        if core.caches.stage_of(&key).is_none() {
            tracing::info!(sequence = %key, "resend: an active submission outside the caches goes back in");
            place(core, key.clone()).await?;
            done.replaced += 1;
        }
        if !lost {
            continue;
        }
        let Some(look) = core.look(&key).await? else { continue };
        let ours_in_commit_phase = look.view.ours.window_id == look.view.window_id && look.view.phase == Phase::Commit;
        if needs_regeneration(
            look.seq.as_ref().map(|q| q.state),
            look.local.artifact,
            &look.action,
            ours_in_commit_phase,
        ) {
            let (name, init) = (key.rollup.clone(), key.init_batch);
            core.db.run(move |c| db::tasks::reset_final_task(c, &name, init, db::now_ms())).await?;
            tracing::warn!(rollup = %key.rollup, init_batch = key.init_batch, "final proof missing: proving it again");
            done.regenerated += 1;
        }
    }
    Ok(done)
}

/// Sends a [`Sweep`] every `SWEEP_EVERY_POLLS` polls until shutdown.
pub async fn drive(addr: Addr<Resend>, poll: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(poll * SWEEP_EVERY_POLLS) => {}
        }
        match addr.send(Sweep).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "resend sweep failed"),
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_final_proof_is_proven_again_unless_its_hash_is_committed_in_t1() {
        let wait = Action::Wait("the final proof is not ready");
        assert!(needs_regeneration(Some(SequenceState::Proven), false, &wait, false));
        assert!(needs_regeneration(Some(SequenceState::Committed), false, &wait, false));
        // Our commit still takes part in the open window: the lost proof is
        // the only one we may reveal, so nothing new is proven.
        assert!(!needs_regeneration(Some(SequenceState::Committed), false, &wait, true));
        // Already proving again, or the artifact is at hand.
        assert!(!needs_regeneration(Some(SequenceState::Proving), false, &wait, false));
        assert!(!needs_regeneration(Some(SequenceState::Proven), true, &wait, false));
        // A claim or a settlement needs no proof.
        assert!(!needs_regeneration(Some(SequenceState::Committed), false, &Action::Claim, false));
        assert!(!needs_regeneration(None, false, &wait, false));
    }
}
