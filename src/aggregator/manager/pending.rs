//! Filling the sender's caches: `submit_pending_proofs` once at start, and
//! `try_fetch_proof_to_send` on every poll.

use crate::aggregator::sender::{route, Route, SenderCore, SeqKey, Stage};
use crate::db::{self, SequenceState, SubmissionStatus};

/// submitPendingProof: every submission still active in the database (a
/// commit, reveal or claim a previous run left unfinished) goes into the
/// cache of the stage that owns it now, judged from the chain and the
/// outbox by the rule book. Transactions a crash left unsent or unfollowed
/// are the follower's: its first `TxManager::monitor` re-broadcasts them.
pub async fn submit_pending_proofs(core: &SenderCore) -> anyhow::Result<usize> {
    let names: Vec<String> = core.rollups.iter().map(|r| r.ctx.name.clone()).collect();
    let active = core.db.run(move |c| db::outbox::list_submissions(c, &names, Some(SubmissionStatus::Active))).await?;
    let n = active.len();
    for s in active {
        place(core, SeqKey::new(&s.rollup, s.init_batch)).await?;
    }
    if n > 0 {
        let [(_, commit), (_, monitor), (_, reveal)] = core.caches.depths();
        tracing::info!(chain = %core.chain(), submissions = n, commit, monitor, reveal, "unfinished submissions resumed");
    }
    Ok(n)
}

/// Puts `key` into the cache of the stage the rule book says owns it, or
/// closes it if it is done. When the chain cannot be read, the committer
/// gets it: its first look routes it like any other.
pub async fn place(core: &SenderCore, key: SeqKey) -> anyhow::Result<()> {
    if core.caches.stage_of(&key).is_some() {
        return Ok(());
    }
    match core.look(&key).await {
        Ok(Some(look)) => match route(&look.view, &look.local, &look.action) {
            Route::Done(outcome) => core.finish(look, outcome).await?,
            Route::To(stage) => {
                core.caches.admit(key, stage);
            }
        },
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(sequence = %key, error = %format!("{e:#}"), "cannot read the sequence now; the committer will");
            core.caches.admit(key, Stage::Commit);
        }
    }
    Ok(())
}

/// tryFetchProofToSend: every sequence with a final proof that is not
/// verified yet (proven, or committed by a previous run) gets a submission
/// and goes into `finalProofMsgCache`, lowest first.
pub async fn try_fetch_proof_to_send(core: &SenderCore) -> anyhow::Result<usize> {
    let mut total = 0;
    for r in &core.rollups {
        let name = r.ctx.name.clone();
        let offered = core
            .db
            .run(move |c| {
                let mut fresh = Vec::new();
                for s in db::sequences::list_sequences(c, &name, &[SequenceState::Proven, SequenceState::Committed])? {
                    if db::outbox::offer_submission(c, &name, s.init_batch, s.final_batch, db::now_ms())? {
                        fresh.push(s.init_batch);
                    }
                }
                Ok(fresh)
            })
            .await?;
        for init in &offered {
            core.caches.admit(SeqKey::new(&r.ctx.name, *init), Stage::Commit);
        }
        if !offered.is_empty() {
            tracing::info!(rollup = %r.ctx.name, sequences = offered.len(), "final proofs handed to the sender");
        }
        total += offered.len();
    }
    Ok(total)
}
