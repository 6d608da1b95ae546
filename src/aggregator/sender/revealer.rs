//! `ProofRevealer`: consumes `ProofHashCache` (sequences in the reveal
//! phase of a window we committed to, or with a reward or a bond still to
//! collect). Reveals the committed proof within T2, claims the reward
//! after the window, and settles our own commit when the sequence was
//! verified without our valid proof (that frees the rest of the bond).

use std::sync::Arc;

use actix::prelude::*;
use alloy::primitives::Bytes;
use alloy::sol_types::SolCall;
use anyhow::Context as _;

use super::{round_of, Look, Round, SenderCore, Stage};
use crate::aggregator::pipeline::FinalArtifact;
use crate::chain::bindings::ZkPowRollup;
use crate::chain::root_to_b256;
use crate::db::{self, TxPurpose, TxStatus};
use crate::metrics::{self, SequenceStage};

pub struct ProofRevealer {
    core: Arc<SenderCore>,
}

impl ProofRevealer {
    pub fn new(core: Arc<SenderCore>) -> Self {
        ProofRevealer { core }
    }
}

impl Actor for ProofRevealer {
    type Context = actix::Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        metrics::sender_actor_started(self.core.chain(), Stage::Reveal.actor());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        metrics::sender_actor_stopped(self.core.chain(), Stage::Reveal.actor());
    }
}

impl Handler<Round> for ProofRevealer {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Round, _: &mut Self::Context) -> Self::Result {
        round_of(&self.core, Stage::Reveal)
    }
}

/// Sends `verifyBatches` with the committed proof.
pub(super) async fn reveal(core: &SenderCore, look: Look) -> anyhow::Result<bool> {
    let w = look.view.window_id;
    let art = look.artifact.as_ref().context("reveal without a final artifact")?;
    let call = reveal_call(art)?;
    let attempt = look.attempts(TxPurpose::Reveal, w);
    let sent = core.send(&look.sub, TxPurpose::Reveal, w, attempt, look.rollup.address, call.abi_encode()).await?;
    if sent {
        let commit_confirmed = look
            .txs
            .iter()
            .filter(|t| t.purpose == TxPurpose::Commit && t.window_id == w && t.status == TxStatus::Confirmed)
            .map(|t| t.updated_at)
            .max();
        if let Some(at) = commit_confirmed {
            let secs = (db::now_ms() - at).max(0) as f64 / 1000.0;
            metrics::sequence_stage(&look.sub.rollup, SequenceStage::WaitingT1, secs);
        }
    }
    Ok(sent)
}

pub(super) async fn claim(core: &SenderCore, look: Look) -> anyhow::Result<bool> {
    let call = ZkPowRollup::claimRewardCall { initNumBatch: look.sub.init_batch };
    let w = look.view.window_id;
    let attempt = look.attempts(TxPurpose::Claim, w);
    core.send(&look.sub, TxPurpose::Claim, w, attempt, look.rollup.address, call.abi_encode()).await
}

/// `settleNoProof` on our own commit, in the window it was made in.
pub(super) async fn settle(core: &SenderCore, look: Look) -> anyhow::Result<bool> {
    let call = ZkPowRollup::settleNoProofCall { initNumBatch: look.sub.init_batch, miner: core.tm.address() };
    let w = look.view.ours.window_id;
    let attempt = look.attempts(TxPurpose::Settle, w);
    core.send(&look.sub, TxPurpose::Settle, w, attempt, look.rollup.address, call.abi_encode()).await
}

/// `verifyBatches` for a final artifact.
pub fn reveal_call(art: &FinalArtifact) -> anyhow::Result<ZkPowRollup::verifyBatchesCall> {
    let root = art.new_state_root().context("empty final artifact")?;
    Ok(ZkPowRollup::verifyBatchesCall {
        initNumBatch: art.init_batch,
        finalNewBatch: art.final_batch,
        newStateRoot: root_to_b256(&root),
        roots: art.intermediate_roots().iter().map(root_to_b256).collect(),
        proof: Bytes::from(art.proof_bytes()),
    })
}
