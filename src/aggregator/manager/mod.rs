//! The proof manager and sender of one base chain: hands proven sequences
//! to the sender (lowest first), reads each one's window from the chain,
//! asks [`sender::decide`](super::sender::decide) for the next step and
//! carries it out through the chain's [`TxManager`].
//!
//! Everything it needs to resume is in the database (submissions, the
//! transaction outbox, final artifacts) or on chain (windows, commits), so
//! a restart simply continues: the first pass re-broadcasts what a crash
//! left unsent and picks every unfinished commit, reveal and claim up again.
//! Sequences whose window ended without a valid proof are committed again
//! in the next window (the resend path), and a final artifact that went
//! missing is proven again.

use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockId;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent};
use anyhow::Context as _;
use tokio::sync::watch;

use super::pause::PauseSwitch;
use super::pipeline::{self, FinalArtifact, RollupCtx};
use super::sender::{self, Action, ChainView, LocalView, OurCommit, Phase};
use crate::chain::bindings::ZkPowRollup;
use crate::chain::txmanager::{TxError, TxEvent, TxManager, TxRequest};
use crate::chain::{proof_hash, root_to_b256};
use crate::config::SenderConfig;
use crate::db::{self, BookedEvent, BookedKind, Db, SequenceState, Submission, SubmissionStatus, TxPurpose, TxStatus};
use crate::metrics::{self, SequenceStage};

/// Longest wait between retries when the node or the database fails: short
/// enough to catch up soon after an outage, long enough not to hammer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A rollup the sender serves.
#[derive(Clone)]
pub struct SenderRollup {
    pub ctx: RollupCtx,
    pub address: Address,
}

pub struct ChainSender {
    db: Db,
    tm: Arc<TxManager>,
    rollups: Vec<SenderRollup>,
    cfg: SenderConfig,
    pause: Arc<PauseSwitch>,
    scan: tokio::sync::Mutex<LogScan>,
}

/// Where the log scan stands, and other miners' commits that may need
/// settling. In memory only: after a restart the scan starts
/// [`LOG_LOOKBACK_BLOCKS`] back, and booking is idempotent.
#[derive(Default)]
struct LogScan {
    next_block: Option<u64>,
    candidates: std::collections::BTreeSet<(String, u64, Address)>,
}

/// How far back the first log scan after a start reads.
const LOG_LOOKBACK_BLOCKS: u64 = 20_000;
/// Most blocks per `eth_getLogs` call.
const MAX_LOG_RANGE: u64 = 5_000;
/// Settlement candidates read from the chain per pass.
const SETTLE_CHECKS_PER_PASS: usize = 16;
/// The contract's `SETTLER_SHARE_PERCENT`.
const SETTLER_SHARE_PERCENT: u128 = 10;
/// Upper bound of a `settleNoProof` transaction's gas.
const SETTLE_GAS: u64 = 90_000;

impl ChainSender {
    pub fn new(
        db: Db,
        tm: Arc<TxManager>,
        rollups: Vec<SenderRollup>,
        cfg: SenderConfig,
        pause: Arc<PauseSwitch>,
    ) -> Self {
        ChainSender { db, tm, rollups, cfg, pause, scan: Default::default() }
    }

    /// Runs passes every `poll` until shutdown; failures back off and retry.
    pub async fn run(self, poll: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = poll;
        loop {
            // A process whose lease term lapsed (deposed, or frozen past it)
            // does nothing until it is replaced by a standby.
            if !self.tm.may_act() {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep(poll) => continue,
                }
            }
            match self.pass().await {
                Ok(()) => backoff = poll,
                Err(e) => {
                    tracing::warn!(
                        chain = %self.tm.chain(), error = %format!("{e:#}"),
                        retry_in_ms = backoff.as_millis() as u64, "sender pass failed"
                    );
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    }

    /// One pass: follow sent transactions, take new final proofs, and move
    /// every active submission one step.
    pub async fn pass(&self) -> anyhow::Result<()> {
        for ev in self.tm.monitor().await? {
            self.on_tx_event(ev).await?;
        }
        if self.pause.is_paused() {
            return Ok(());
        }
        self.scan_logs().await?;
        self.settle_others().await?;
        self.fetch_proofs_to_send().await?;
        let names: Vec<String> = self.rollups.iter().map(|r| r.ctx.name.clone()).collect();
        let active = self.db.run(move |c| db::list_submissions(c, &names, Some(SubmissionStatus::Active))).await?;
        for s in active {
            if let Err(e) = self.step(s).await {
                if e.downcast_ref::<TxError>().is_some_and(|t| !t.is_transient()) {
                    tracing::error!(chain = %self.tm.chain(), error = %format!("{e:#}"), "sender step failed");
                } else {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// tryFetchProofToSend: every proven sequence gets a submission, lowest first.
    async fn fetch_proofs_to_send(&self) -> anyhow::Result<()> {
        for r in &self.rollups {
            let name = r.ctx.name.clone();
            let offered = self
                .db
                .run(move |c| {
                    let mut n = 0;
                    for s in db::list_sequences(c, &name, &[SequenceState::Proven, SequenceState::Committed])? {
                        if db::offer_submission(c, &name, s.init_batch, s.final_batch, db::now_ms())? {
                            n += 1;
                        }
                    }
                    Ok(n)
                })
                .await?;
            if offered > 0 {
                tracing::info!(rollup = %r.ctx.name, sequences = offered, "final proofs handed to the sender");
            }
        }
        Ok(())
    }

    fn rollup(&self, name: &str) -> anyhow::Result<&SenderRollup> {
        self.rollups.iter().find(|r| r.ctx.name == name).with_context(|| format!("unknown rollup {name}"))
    }

    /// Reads the sequence's window and our commit, all at one block.
    async fn read_view(&self, r: &SenderRollup, init_batch: u64) -> anyhow::Result<(ChainView, [u8; 16])> {
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

    async fn step(&self, mut s: Submission) -> anyhow::Result<()> {
        let r = self.rollup(&s.rollup)?.clone();
        let (view, committed_prefix) = self.read_view(&r, s.init_batch).await?;
        let (name, init) = (s.rollup.clone(), s.init_batch);
        let (artifact, seq, txs) = self
            .db
            .run(move |c| {
                Ok((
                    pipeline::final_artifact(c, &name, init)?,
                    db::get_sequence(c, &name, init)?,
                    db::sequence_txs(c, &name, init)?,
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
        let action = sender::decide(&view, &local, &self.cfg);
        tracing::debug!(rollup = %s.rollup, init_batch = s.init_batch, ?action, phase = ?view.phase, head = view.head, "sender step");
        let count = |p: TxPurpose, w: u32| txs.iter().filter(|t| t.purpose == p && t.window_id == w).count();
        match action {
            Action::Wait(reason) => {
                if !local.artifact
                    && seq.as_ref().is_some_and(|q| matches!(q.state, SequenceState::Proven | SequenceState::Committed))
                    && !(view.ours.window_id == view.window_id && view.phase == Phase::Commit)
                {
                    self.regenerate(&s).await?;
                    return Ok(());
                }
                self.note(&mut s, reason).await?;
            }
            Action::Done(outcome) => {
                if outcome == sender::Outcome::Missed {
                    metrics::window_missed(&s.rollup);
                }
                s.status = SubmissionStatus::Done;
                s.outcome = Some(outcome.as_str().to_string());
                s.note = None;
                s.updated_at = db::now_ms();
                let saved = s.clone();
                self.db.run(move |c| db::save_submission(c, &saved)).await?;
                tracing::info!(rollup = %s.rollup, init_batch = s.init_batch, outcome = outcome.as_str(), "submission finished");
            }
            Action::Commit { window_id } => {
                let art = artifact.context("commit without a final artifact")?;
                if self.cfg.profit_guard && !self.commit_pays(&r, &art).await? {
                    return self.note(&mut s, "commit skipped: gas would cost more than the reward").await;
                }
                let hash = proof_hash(&art.proof_bytes(), &us);
                let call = ZkPowRollup::submitProofHashCall {
                    initNumBatch: art.init_batch,
                    finalNewBatch: art.final_batch,
                    proofHash: hash,
                };
                let n = count(TxPurpose::Commit, window_id);
                let sent = self.send(&s, TxPurpose::Commit, window_id, n, r.address, call.abi_encode()).await?;
                if sent {
                    if view.phase == Phase::Ended {
                        metrics::window_reset(&s.rollup);
                    }
                    if s.window_id != 0 && s.window_id < window_id {
                        // We committed to an earlier window and did not get a valid proof in.
                        metrics::window_missed(&s.rollup);
                    }
                    s.window_id = window_id;
                    s.proof_hash = Some(hash.0);
                    s.commits += 1;
                    s.note = None;
                    s.updated_at = db::now_ms();
                    let saved = s.clone();
                    self.db.run(move |c| db::save_submission(c, &saved)).await?;
                }
            }
            Action::Reveal => {
                let art = artifact.context("reveal without a final artifact")?;
                let call = reveal_call(&art)?;
                let n = count(TxPurpose::Reveal, view.window_id);
                if self.send(&s, TxPurpose::Reveal, view.window_id, n, r.address, call.abi_encode()).await? {
                    let commit_confirmed = txs
                        .iter()
                        .filter(|t| t.purpose == TxPurpose::Commit && t.window_id == view.window_id)
                        .filter(|t| t.status == TxStatus::Confirmed)
                        .map(|t| t.updated_at)
                        .max();
                    if let Some(at) = commit_confirmed {
                        let secs = (db::now_ms() - at).max(0) as f64 / 1000.0;
                        metrics::sequence_stage(&s.rollup, SequenceStage::WaitingT1, secs);
                    }
                }
            }
            Action::Claim => {
                let call = ZkPowRollup::claimRewardCall { initNumBatch: s.init_batch };
                let n = count(TxPurpose::Claim, view.window_id);
                self.send(&s, TxPurpose::Claim, view.window_id, n, r.address, call.abi_encode()).await?;
            }
            Action::Settle => {
                let call = ZkPowRollup::settleNoProofCall { initNumBatch: s.init_batch, miner: us };
                let w = view.ours.window_id;
                let n = count(TxPurpose::Settle, w);
                self.send(&s, TxPurpose::Settle, w, n, r.address, call.abi_encode()).await?;
            }
        }
        Ok(())
    }

    /// Sends one transaction; a revert found by the simulation is noted on
    /// the submission (the next pass re-reads the chain and decides again).
    async fn send(
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
                // Once per reason, not once per pass.
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

    async fn note(&self, s: &mut Submission, reason: &str) -> anyhow::Result<()> {
        if s.note.as_deref() == Some(reason) {
            return Ok(());
        }
        tracing::debug!(rollup = %s.rollup, init_batch = s.init_batch, reason, "sender waits");
        s.note = Some(reason.to_string());
        s.updated_at = db::now_ms();
        let saved = s.clone();
        self.db.run(move |c| db::save_submission(c, &saved)).await?;
        Ok(())
    }

    /// The final artifact is gone (or proves for another miner key): prove
    /// the sequence's final step again.
    async fn regenerate(&self, s: &Submission) -> anyhow::Result<()> {
        let (name, init) = (s.rollup.clone(), s.init_batch);
        self.db.run(move |c| db::reset_final_task(c, &name, init, db::now_ms())).await?;
        tracing::warn!(rollup = %s.rollup, init_batch = s.init_batch, "final proof missing: proving it again");
        Ok(())
    }

    /// The profitability guard: commit gas (simulated) plus an upper bound of
    /// the reveal's, at the current fee, against the sequence's reward.
    async fn commit_pays(&self, r: &SenderRollup, art: &FinalArtifact) -> anyhow::Result<bool> {
        let provider = self.tm.provider().clone();
        let contract = ZkPowRollup::new(r.address, provider.clone());
        let reward = contract.verification(art.init_batch).call().await.context("verification")?.reward;
        let verifier = crate::chain::bindings::Groth16BatchVerifier::new(
            contract.verifier().call().await.context("verifier")?,
            provider.clone(),
        );
        let n = art.final_batch - art.init_batch + 1;
        let verify_gas: u64 = verifier.verifyGas(U256::from(n)).call().await.context("verifyGas")?.to();
        // Calldata and bookkeeping of a reveal on top of the pairing check.
        let reveal_gas = verify_gas + 100_000 + 600 * 16 * n;
        let commit_gas = 80_000;
        let fee = provider.estimate_eip1559_fees().await.context("fee estimate")?.max_fee_per_gas;
        let pays = sender::commit_pays(commit_gas, reveal_gas, fee, reward);
        if !pays {
            tracing::info!(rollup = %r.ctx.name, init_batch = art.init_batch, reward = %reward, fee, "commit would not pay");
        }
        Ok(pays)
    }

    /// A transaction settled (or lost its receipt): book rewards, penalties
    /// and settler shares from its logs and move the sequence along.
    async fn on_tx_event(&self, ev: TxEvent) -> anyhow::Result<()> {
        let tx = ev.tx;
        let us = self.tm.address();
        let mut reward = 0u128;
        let mut booked = Vec::new();
        if let Some(receipt) = &ev.receipt {
            for log in receipt.inner.logs() {
                if let Ok(e) = ZkPowRollup::Rewarded::decode_log(&log.inner) {
                    if e.miner == us {
                        reward += e.amount.saturating_to::<u128>();
                    }
                } else if let Some(b) = self.booked_event(&tx.rollup, log) {
                    booked.push(b);
                }
            }
        }
        if tx.status == TxStatus::Reverted {
            tracing::warn!(chain = %self.tm.chain(), tx = %tx.id, gas_used = ?tx.gas_used, "transaction reverted on chain");
        }
        if reward > 0 {
            tracing::info!(rollup = %tx.rollup, init_batch = tx.init_batch, reward_wei = %reward, "reward received");
            metrics::reward_wei(&tx.rollup, reward as f64);
        }
        self.book(booked).await?;
        if tx.status == TxStatus::Confirmed {
            match tx.purpose {
                TxPurpose::Commit => metrics::commit(&tx.rollup),
                TxPurpose::Reveal => {
                    metrics::reveal(&tx.rollup);
                    let secs = (tx.updated_at - tx.created_at).max(0) as f64 / 1000.0;
                    metrics::sequence_stage(&tx.rollup, SequenceStage::Revealing, secs);
                }
                TxPurpose::Claim | TxPurpose::Settle => {}
            }
        }
        let committed = tx.purpose == TxPurpose::Commit && tx.status == TxStatus::Confirmed;
        self.db
            .run(move |c| {
                db::transaction(c, |c| {
                    if reward > 0 {
                        if let Some(mut s) = db::get_submission(c, &tx.rollup, tx.init_batch)? {
                            s.reward_wei += reward;
                            s.updated_at = db::now_ms();
                            db::save_submission(c, &s)?;
                        }
                    }
                    if committed {
                        if let Some(q) = db::get_sequence(c, &tx.rollup, tx.init_batch)? {
                            if q.state == SequenceState::Proven {
                                db::update_sequence_state(
                                    c,
                                    &tx.rollup,
                                    tx.init_batch,
                                    SequenceState::Committed,
                                    db::now_ms(),
                                )?;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .await?;
        Ok(())
    }

    /// A rollup `Punished` log that costs or pays us: a penalty on our bond,
    /// or our settler share of another miner's penalty.
    fn booked_event(&self, rollup: &str, log: &alloy::rpc::types::Log) -> Option<BookedEvent> {
        let e = ZkPowRollup::Punished::decode_log(&log.inner).ok()?;
        let us = self.tm.address();
        let (kind, amount) = if e.miner == us {
            (BookedKind::Penalty, e.amount)
        } else if e.settler == us && !e.settlerShare.is_zero() {
            (BookedKind::SettlerShare, e.settlerShare)
        } else {
            return None;
        };
        Some(BookedEvent {
            chain_id: self.tm.chain_id(),
            tx_hash: log.transaction_hash?.0,
            log_index: log.log_index?,
            rollup: rollup.to_string(),
            init_batch: e.initNumBatch,
            kind,
            amount_wei: amount.saturating_to(),
            block: log.block_number?,
        })
    }

    /// Books logs once each (a log read again after a restart, or both from
    /// our receipt and from the log scan, counts once).
    async fn book(&self, events: Vec<BookedEvent>) -> anyhow::Result<()> {
        for ev in events {
            let saved = ev.clone();
            let new = self.db.run(move |c| db::book_event(c, &saved, db::now_ms())).await?;
            if !new {
                continue;
            }
            match ev.kind {
                BookedKind::Penalty => {
                    tracing::warn!(rollup = %ev.rollup, init_batch = ev.init_batch, penalty_wei = %ev.amount_wei, "penalty taken from our bond");
                    metrics::penalty_wei(&ev.rollup, ev.amount_wei as f64);
                }
                BookedKind::SettlerShare => {
                    tracing::info!(rollup = %ev.rollup, init_batch = ev.init_batch, share_wei = %ev.amount_wei, "settler share received");
                    metrics::reward_wei(&ev.rollup, ev.amount_wei as f64);
                }
            }
        }
        Ok(())
    }

    /// Reads the rollups' logs since the last scan: penalties imposed on us
    /// by anyone (a settlement by another miner sends us no receipt), and
    /// other miners' commits, which become settlement candidates.
    async fn scan_logs(&self) -> anyhow::Result<()> {
        let provider = self.tm.provider().clone();
        let head = provider.get_block_number().await.context("eth_blockNumber")?;
        let from = {
            let mut scan = self.scan.lock().await;
            let from = scan.next_block.unwrap_or_else(|| head.saturating_sub(LOG_LOOKBACK_BLOCKS));
            if from > head {
                return Ok(());
            }
            // At most this many blocks per call: nodes cap eth_getLogs ranges.
            let to = head.min(from + MAX_LOG_RANGE - 1);
            scan.next_block = Some(to + 1);
            (from, to)
        };
        let (from, to) = from;
        let us = self.tm.address();
        for r in &self.rollups {
            let penalties = Filter::new()
                .address(r.address)
                .event_signature(ZkPowRollup::Punished::SIGNATURE_HASH)
                .topic2(us.into_word())
                .from_block(from)
                .to_block(to);
            let logs = provider.get_logs(&penalties).await.context("eth_getLogs (Punished)")?;
            let booked: Vec<_> = logs.iter().filter_map(|l| self.booked_event(&r.ctx.name, l)).collect();
            self.book(booked).await?;
            if self.cfg.settle_others_min_ratio == 0 {
                continue;
            }
            let commits = Filter::new()
                .address(r.address)
                .event_signature(ZkPowRollup::ProofHashSubmitted::SIGNATURE_HASH)
                .from_block(from)
                .to_block(to);
            let logs = provider.get_logs(&commits).await.context("eth_getLogs (ProofHashSubmitted)")?;
            let mut scan = self.scan.lock().await;
            for l in logs {
                if let Ok(e) = ZkPowRollup::ProofHashSubmitted::decode_log(&l.inner) {
                    if e.miner != us {
                        scan.candidates.insert((r.ctx.name.clone(), e.initNumBatch, e.miner));
                    }
                }
            }
        }
        Ok(())
    }

    /// Settles other miners' commits whose window ended without their valid
    /// proof, when our share of the penalty pays for the gas
    /// `settle_others_min_ratio` times over. Keeping the network honest pays
    /// for itself; a candidate that turns out valid or settled is dropped.
    async fn settle_others(&self) -> anyhow::Result<()> {
        if self.cfg.settle_others_min_ratio == 0 {
            return Ok(());
        }
        let candidates: Vec<_> =
            self.scan.lock().await.candidates.iter().take(SETTLE_CHECKS_PER_PASS).cloned().collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let provider = self.tm.provider().clone();
        let head = provider.get_block_number().await.context("eth_blockNumber")?;
        let at = BlockId::number(head);
        let fee = provider.estimate_eip1559_fees().await.context("fee estimate")?.max_fee_per_gas;
        for key in candidates {
            let (rollup, init, miner) = &key;
            let r = self.rollup(rollup)?.clone();
            let contract = ZkPowRollup::new(r.address, provider.clone());
            let c = contract.commitOf(*init, *miner).block(at).call().await.context("commitOf")?;
            if c.windowId == 0 || c.settled || c.valid {
                self.scan.lock().await.candidates.remove(&key);
                continue;
            }
            let ws = contract.windowStatus(*init).block(at).call().await.context("windowStatus")?;
            let expired = c.windowId != ws.windowId || Phase::from_u8(ws.phase) == Phase::Ended;
            if !expired {
                continue;
            }
            let terms = contract.termsOfSequence(*init).block(at).call().await.context("termsOfSequence")?;
            let share = terms.penaltyNoProof.saturating_to::<u128>() * SETTLER_SHARE_PERCENT / 100;
            let cost = u128::from(SETTLE_GAS).saturating_mul(fee);
            if share < cost.saturating_mul(u128::from(self.cfg.settle_others_min_ratio)) {
                continue;
            }
            let req = TxRequest {
                id: format!("{rollup}/{init}/w{}/settle/{miner}", c.windowId),
                purpose: TxPurpose::Settle,
                rollup: rollup.clone(),
                init_batch: *init,
                window_id: c.windowId,
                to: r.address,
                calldata: Bytes::from(
                    ZkPowRollup::settleNoProofCall { initNumBatch: *init, miner: *miner }.abi_encode(),
                ),
            };
            match self.tm.submit(req).await {
                Ok(tx) => tracing::info!(
                    rollup = %rollup, init_batch = init, %miner, share_wei = %share,
                    tx = %format!("0x{}", hex::encode(tx.tx_hash)), "settling another miner's expired commit"
                ),
                Err(TxError::Revert(rev)) => {
                    tracing::debug!(rollup = %rollup, init_batch = init, %miner, reason = %rev, "settlement not sent");
                }
                Err(e) => return Err(e.into()),
            }
            self.scan.lock().await.candidates.remove(&key);
        }
        Ok(())
    }
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
