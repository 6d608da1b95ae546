//! `HashCommitter`: consumes `finalProofMsgCache` (sequences with a final
//! proof and no commit of ours in the open window) and commits the proof
//! hash within T1, or opens the next window when the last one ended
//! without a valid proof. A sent commit hands the sequence to the monitor.
//!
//! The profitability guard lives here because a commit is the step that
//! binds us: the bond is locked and the reveal's gas must follow.

use std::sync::Arc;

use actix::prelude::*;
use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use anyhow::Context as _;

use super::{commit_pays, round_of, Look, Phase, Round, SenderCore, SenderRollup, Stage};
use crate::aggregator::pipeline::FinalArtifact;
use crate::chain::bindings::{Groth16BatchVerifier, ZkPowRollup};
use crate::chain::proof_hash;
use crate::db::TxPurpose;
use crate::metrics;

pub struct HashCommitter {
    core: Arc<SenderCore>,
}

impl HashCommitter {
    pub fn new(core: Arc<SenderCore>) -> Self {
        HashCommitter { core }
    }
}

impl Actor for HashCommitter {
    type Context = actix::Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        metrics::sender_actor_started(self.core.chain(), Stage::Commit.actor());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        metrics::sender_actor_stopped(self.core.chain(), Stage::Commit.actor());
    }
}

impl Handler<Round> for HashCommitter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Round, _: &mut Self::Context) -> Self::Result {
        round_of(&self.core, Stage::Commit)
    }
}

/// Sends `submitProofHash` for `window_id`; whether it was sent.
pub(super) async fn commit(core: &SenderCore, look: Look, window_id: u32) -> anyhow::Result<bool> {
    let attempt = look.attempts(TxPurpose::Commit, window_id);
    let Look { mut sub, rollup: r, view, artifact, .. } = look;
    let art = artifact.context("commit without a final artifact")?;
    if core.cfg.profit_guard && !commit_pays_now(core, &r, &art).await? {
        core.note(&mut sub, "commit skipped: gas would cost more than the reward").await?;
        return Ok(false);
    }
    let us = core.tm.address();
    let hash = proof_hash(&art.proof_bytes(), &us);
    let call = ZkPowRollup::submitProofHashCall {
        initNumBatch: art.init_batch,
        finalNewBatch: art.final_batch,
        proofHash: hash,
    };
    if !core.send(&sub, TxPurpose::Commit, window_id, attempt, r.address, call.abi_encode()).await? {
        return Ok(false);
    }
    if view.phase == Phase::Ended {
        metrics::window_reset(&sub.rollup);
    }
    if sub.window_id != 0 && sub.window_id < window_id {
        // We committed to an earlier window and did not get a valid proof in.
        metrics::window_missed(&sub.rollup);
    }
    core.update_submission(&sub, move |s| {
        s.window_id = window_id;
        s.proof_hash = Some(hash.0);
        s.commits += 1;
        s.note = None;
    })
    .await?;
    Ok(true)
}

/// The profitability guard: commit gas (simulated) plus an upper bound of
/// the reveal's, at the current fee, against the sequence's reward.
async fn commit_pays_now(core: &SenderCore, r: &SenderRollup, art: &FinalArtifact) -> anyhow::Result<bool> {
    let provider = core.tm.provider().clone();
    let contract = ZkPowRollup::new(r.address, provider.clone());
    let reward = contract.verification(art.init_batch).call().await.context("verification")?.reward;
    let verifier = Groth16BatchVerifier::new(contract.verifier().call().await.context("verifier")?, provider.clone());
    let n = art.final_batch - art.init_batch + 1;
    let verify_gas: u64 = verifier.verifyGas(U256::from(n)).call().await.context("verifyGas")?.to();
    // Calldata and bookkeeping of a reveal on top of the pairing check.
    let reveal_gas = verify_gas + 100_000 + 600 * 16 * n;
    let commit_gas = 80_000;
    let fee = provider.estimate_eip1559_fees().await.context("fee estimate")?.max_fee_per_gas;
    let pays = commit_pays(commit_gas, reveal_gas, fee, reward);
    if !pays {
        tracing::info!(rollup = %r.ctx.name, init_batch = art.init_batch, reward = %reward, fee, "commit would not pay");
    }
    Ok(pays)
}
