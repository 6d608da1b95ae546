//! The proof sender of one base chain: three actors, each consuming its own
//! priority cache, that take proven sequences through the two-step
//! submission.
//!
//! ```text
//!  proof manager ─► finalProofMsgCache ─► HashCommitter  (commit in T1)
//!                   monitPHTxCache     ─► CommitMonitor  (inclusion, end of T1)
//!                   ProofHashCache     ─► ProofRevealer  (reveal in T2, claim, settle)
//! ```
//!
//! Every actor does the same thing with its cache's due sequences, lowest
//! first: read the sequence's window and our commit from the chain, ask the
//! one rule book ([`decide`]) for the next step, and either carry it out
//! (if it belongs to its stage) or hand the sequence to the stage it
//! belongs to ([`stage::route`]). So a sequence found in the wrong cache
//! after a restart, a reorg or a lost commit moves to the right one by the
//! same rules as the normal flow. Timers count blocks: a head clock shared
//! by the three re-arms them ([`stage::next_look`]).
//!
//! This module owns the caches ([`cache`]), the routing ([`stage`]), the
//! rule book ([`decide`]), the shared look-and-route step ([`SenderCore`])
//! and the three actor shells ([`committer`], [`monitor`], [`revealer`]).
//! Transactions go through the chain's [`TxManager`] outbox; nothing here
//! is needed after a restart (the proof manager rebuilds the caches).

pub mod cache;
pub mod committer;
pub mod decide;
pub mod monitor;
pub mod revealer;
pub mod stage;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use alloy::eips::BlockId;
use alloy::primitives::{Address, Bytes};
use alloy::providers::Provider;
use anyhow::Context as _;
use tokio::sync::watch;

pub use cache::{Caches, PriorityCache, SeqKey};
pub use committer::HashCommitter;
pub use decide::{commit_pays, decide, Action, ChainView, LocalView, OurCommit, Outcome, Phase};
pub use monitor::CommitMonitor;
pub use revealer::{reveal_call, ProofRevealer};
pub use stage::{next_look, route, Route, Stage};

use super::pause::PauseSwitch;
use super::pipeline::{self, FinalArtifact, RollupCtx};
use crate::chain::bindings::ZkPowRollup;
use crate::chain::proof_hash;
use crate::chain::txmanager::{TxError, TxManager, TxRequest};
use crate::config::SenderConfig;
use crate::db::{self, ChainTx, Db, Sequence, Submission, SubmissionStatus, TxPurpose};
use crate::metrics;

/// Longest wait between retries when the node or the database fails: short
/// enough to catch up soon after an outage, long enough not to hammer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A rollup the sender serves.
#[derive(Clone)]
pub struct SenderRollup {
    pub ctx: RollupCtx,
    pub address: Address,
}

/// What the sender of one chain shares between its actors and the proof
/// manager: the chain's transaction manager, the caches and the head clock.
pub struct SenderCore {
    pub db: Db,
    pub tm: Arc<TxManager>,
    pub rollups: Vec<SenderRollup>,
    pub cfg: SenderConfig,
    pub pause: Arc<PauseSwitch>,
    pub caches: Caches,
    /// The chain's head, published once per poll by the proof manager's
    /// clock for all three actors (their block timers).
    pub head: watch::Receiver<u64>,
}

/// One look at a sequence: everything [`decide`] needs, its answer, and
/// what carrying the answer out needs.
pub struct Look {
    pub sub: Submission,
    pub rollup: SenderRollup,
    pub view: ChainView,
    pub local: LocalView,
    pub action: Action,
    pub artifact: Option<FinalArtifact>,
    pub seq: Option<Sequence>,
    pub txs: Vec<ChainTx>,
}

impl Look {
    /// Transactions of `purpose` already sent for window `w`: the attempt
    /// number of the next one (transaction ids must be new per attempt).
    pub fn attempts(&self, purpose: TxPurpose, w: u32) -> usize {
        self.txs.iter().filter(|t| t.purpose == purpose && t.window_id == w).count()
    }

    pub fn key(&self) -> SeqKey {
        SeqKey::new(&self.sub.rollup, self.sub.init_batch)
    }
}

impl SenderCore {
    pub fn chain(&self) -> &str {
        self.tm.chain()
    }

    pub fn rollup(&self, name: &str) -> anyhow::Result<&SenderRollup> {
        self.rollups.iter().find(|r| r.ctx.name == name).with_context(|| format!("unknown rollup {name}"))
    }

    /// Reads the sequence's window and our commit, all at one block, and
    /// our committed hash's prefix.
    pub async fn read_view(&self, r: &SenderRollup, init_batch: u64) -> anyhow::Result<(ChainView, [u8; 16])> {
        let provider = self.tm.provider().clone();
        let head = provider.get_block_number().await.context("eth_blockNumber")?;
        let at = BlockId::number(head);
        let contract = ZkPowRollup::new(r.address, provider);
        let last_verified = contract.lastVerifiedBatch().block(at).call().await.context("lastVerifiedBatch")?;
        let seq = contract.sequence(init_batch).block(at).call().await.context("sequence")?;
        let ws = contract.windowStatus(init_batch).block(at).call().await.context("windowStatus")?;
        let ours = contract.commitOf(init_batch, self.tm.address()).block(at).call().await.context("commitOf")?;
        let view = ChainView {
            head,
            init_batch,
            last_verified,
            verified: seq.verified,
            phase: Phase::from_u8(ws.phase),
            window_id: ws.windowId,
            commit_end: ws.commitEnd,
            reveal_end: ws.revealEnd,
            t2: seq.windowT2,
            ours: OurCommit {
                window_id: ours.windowId,
                revealed: ours.revealed,
                valid: ours.valid,
                punished: ours.punished,
                rewarded: ours.rewarded,
                settled: ours.settled,
            },
        };
        Ok((view, ours.proofHashPrefix.0))
    }

    /// Reads the chain and the database for `key` and asks the rule book.
    /// None when there is no active submission for it (any more).
    pub async fn look(&self, key: &SeqKey) -> anyhow::Result<Option<Look>> {
        let (name, init) = (key.rollup.clone(), key.init_batch);
        let sub = self.db.run(move |c| db::outbox::get_submission(c, &name, init)).await?;
        let Some(sub) = sub.filter(|s| s.status == SubmissionStatus::Active) else { return Ok(None) };
        let r = self.rollup(&sub.rollup)?.clone();
        let (view, committed_prefix) = self.read_view(&r, sub.init_batch).await?;
        let (name, init) = (sub.rollup.clone(), sub.init_batch);
        let (artifact, seq, txs) = self
            .db
            .run(move |c| {
                Ok((
                    pipeline::final_artifact(c, &name, init)?,
                    db::sequences::get_sequence(c, &name, init)?,
                    db::outbox::sequence_txs(c, &name, init)?,
                ))
            })
            .await?;
        let us = self.tm.address();
        let commit_matches =
            artifact.as_ref().is_some_and(|a| proof_hash(&a.proof_bytes(), &us).0[..16] == committed_prefix[..]);
        let local = LocalView {
            artifact: artifact.is_some(),
            commit_matches,
            in_flight: txs.iter().find(|t| t.status.is_open()).map(|t| t.purpose),
        };
        let action = decide(&view, &local, &self.cfg);
        tracing::debug!(
            rollup = %sub.rollup, init_batch = sub.init_batch, ?action, phase = ?view.phase, head = view.head,
            "sender look"
        );
        Ok(Some(Look { sub, rollup: r, view, local, action, artifact, seq, txs }))
    }

    /// One round of `stage`'s actor over its due sequences, lowest first. A
    /// transient failure (node or database away) ends the round so the
    /// actor backs off; a refused transaction is logged and the round goes
    /// on with the next sequence.
    pub async fn round(&self, stage: Stage) -> anyhow::Result<()> {
        // A deposed or frozen-past-its-term process sends nothing; a paused
        // one sends nothing new (sent transactions are still followed by
        // the proof manager).
        if !self.tm.may_act() || self.pause.is_paused() {
            return Ok(());
        }
        let head = *self.head.borrow();
        for key in self.caches.get(stage).due(head) {
            if let Err(e) = self.visit(stage, &key).await {
                if e.downcast_ref::<TxError>().is_some_and(|t| !t.is_transient()) {
                    tracing::error!(chain = %self.chain(), sequence = %key, error = %format!("{e:#}"), "sender step failed");
                    continue;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn visit(&self, stage: Stage, key: &SeqKey) -> anyhow::Result<()> {
        let Some(look) = self.look(key).await? else {
            self.caches.drop_from(key, stage);
            return Ok(());
        };
        match route(&look.view, &look.local, &look.action) {
            Route::Done(outcome) => {
                self.finish(look, outcome).await?;
                self.caches.drop_from(key, stage);
            }
            Route::To(to) if to != stage => {
                tracing::debug!(sequence = %key, from = stage.actor(), to = to.actor(), action = ?look.action, "handed over");
                self.caches.hand_over(key, stage, to);
            }
            Route::To(_) => {
                let at = next_look(&look.view, &look.local, &look.action);
                let committed = matches!(look.action, Action::Commit { .. });
                let sent = self.act(look).await?;
                self.caches.get(stage).defer(key, at);
                if sent && committed {
                    // The committer's part is done once the commit is in the
                    // outbox; following it to inclusion is the monitor's.
                    self.caches.hand_over(key, Stage::Commit, Stage::Monitor);
                }
            }
        }
        Ok(())
    }

    /// Carries out a step that belongs to the stage at hand; whether a
    /// transaction was sent.
    async fn act(&self, mut look: Look) -> anyhow::Result<bool> {
        match look.action {
            Action::Wait(reason) => self.note(&mut look.sub, reason).await.map(|()| false),
            Action::Commit { window_id } => committer::commit(self, look, window_id).await,
            Action::Reveal => revealer::reveal(self, look).await,
            Action::Claim => revealer::claim(self, look).await,
            Action::Settle => revealer::settle(self, look).await,
            // Routed away before acting.
            Action::Done(_) => Ok(false),
        }
    }

    /// Closes the submission.
    pub async fn finish(&self, look: Look, outcome: Outcome) -> anyhow::Result<()> {
        let s = look.sub;
        if outcome == Outcome::Missed {
            metrics::window_missed(&s.rollup);
        }
        self.update_submission(&s, move |s| {
            s.status = SubmissionStatus::Done;
            s.outcome = Some(outcome.as_str().to_string());
            s.note = None;
        })
        .await?;
        tracing::info!(rollup = %s.rollup, init_batch = s.init_batch, outcome = outcome.as_str(), "submission finished");
        Ok(())
    }

    /// Changes the sender's fields of a submission on the row as it is now,
    /// not on the copy a look read: the proof manager books rewards and
    /// penalties into the same row meanwhile, and those must not be lost.
    pub async fn update_submission(
        &self,
        s: &Submission,
        change: impl FnOnce(&mut Submission) + Send + 'static,
    ) -> anyhow::Result<()> {
        let (name, init) = (s.rollup.clone(), s.init_batch);
        self.db
            .run(move |c| {
                db::outbox::update_submission(c, &name, init, |s| {
                    change(s);
                    s.updated_at = db::now_ms();
                })
            })
            .await?;
        Ok(())
    }

    /// Sends one transaction; a revert found by the simulation is noted on
    /// the submission (the next look re-reads the chain and decides again).
    pub async fn send(
        &self,
        s: &Submission,
        purpose: TxPurpose,
        window_id: u32,
        attempt: usize,
        to: Address,
        calldata: Vec<u8>,
    ) -> anyhow::Result<bool> {
        let req = TxRequest {
            id: format!("{}/{}/w{window_id}/{purpose}/{attempt}", s.rollup, s.init_batch),
            purpose,
            rollup: s.rollup.clone(),
            init_batch: s.init_batch,
            window_id,
            to,
            calldata: Bytes::from(calldata),
        };
        match self.tm.submit(req).await {
            Ok(tx) => {
                tracing::info!(
                    rollup = %s.rollup, init_batch = s.init_batch, window = window_id, %purpose,
                    tx = %format!("0x{}", hex::encode(tx.tx_hash)), nonce = tx.nonce, "transaction sent"
                );
                Ok(true)
            }
            Err(TxError::Revert(rev)) => {
                let note = format!("{purpose} not sent: {rev}");
                // Once per reason, not once per look.
                if s.note.as_deref() != Some(note.as_str()) {
                    tracing::warn!(
                        rollup = %s.rollup, init_batch = s.init_batch, %purpose, reason = %rev,
                        "not sent: the transaction would revert"
                    );
                }
                let mut s = s.clone();
                self.note(&mut s, &note).await?;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records why the submission waits (for the status API); written only
    /// when the reason changes.
    pub async fn note(&self, s: &mut Submission, reason: &str) -> anyhow::Result<()> {
        if s.note.as_deref() == Some(reason) {
            return Ok(());
        }
        tracing::debug!(rollup = %s.rollup, init_batch = s.init_batch, reason, "sender waits");
        s.note = Some(reason.to_string());
        let note = s.note.clone();
        self.update_submission(s, move |s| s.note = note).await
    }
}

/// Asks an actor for one round. Rounds of one actor never overlap: the
/// driver waits for each answer before it sends the next.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Round;

/// Sends `Round`s to a stage actor: at every new head, whenever its cache
/// gets a sequence, and at least once per `poll` (a resume after a pause).
/// A failed round backs off up to [`MAX_BACKOFF`]. Ends at shutdown, which
/// drops the last address and so stops the actor.
pub async fn drive<A>(
    addr: Addr<A>,
    core: Arc<SenderCore>,
    stage: Stage,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) where
    A: Actor<Context = actix::Context<A>> + Handler<Round>,
{
    let mut head = core.head.clone();
    let mut backoff = poll;
    loop {
        let failed = match addr.send(Round).await {
            Ok(Ok(())) => false,
            Ok(Err(e)) => {
                tracing::warn!(
                    chain = %core.chain(), actor = stage.actor(), error = %e,
                    retry_in_ms = backoff.as_millis() as u64, "sender round failed"
                );
                true
            }
            // The actor is gone: nothing left to drive.
            Err(_) => break,
        };
        if failed {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        backoff = poll;
        tokio::select! {
            _ = shutdown.changed() => break,
            changed = head.changed() => {
                // The clock is gone (shutting down): do not spin on it.
                if changed.is_err() {
                    tokio::time::sleep(poll).await;
                }
            }
            _ = core.caches.get(stage).pushed() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// The body of every stage actor's `Round` handler.
pub(crate) fn round_of(core: &Arc<SenderCore>, stage: Stage) -> ResponseFuture<Result<(), String>> {
    let core = core.clone();
    Box::pin(async move { core.round(stage).await.map_err(|e| format!("{e:#}")) })
}
