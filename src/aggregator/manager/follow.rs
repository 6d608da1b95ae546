//! Following what the sender sent: each poll, the chain's transaction
//! manager reports receipts, confirmations and reorged receipts; this books
//! rewards, penalties and settler shares from them and from the rollups'
//! logs, marks sequences committed, wakes the stage that waits for the
//! receipt, and settles other miners' expired commits when that pays.
//!
//! This is the one place that calls `TxManager::monitor`, so every sent
//! transaction is followed (and re-broadcast after a crash) whatever stage
//! its sequence is in, paused or not.

use std::sync::Arc;

use alloy::eips::BlockId;
use alloy::primitives::{Address, Bytes};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent};
use anyhow::Context as _;

use crate::aggregator::sender::{Phase, SenderCore, SeqKey};
use crate::chain::bindings::ZkPowRollup;
use crate::chain::txmanager::{TxError, TxEvent, TxRequest};
use crate::db::outbox::{BookedEvent, BookedKind};
use crate::db::{self, SequenceState, TxPurpose, TxStatus};
use crate::metrics::{self, SequenceStage};

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

pub struct TxFollower {
    core: Arc<SenderCore>,
    scan: tokio::sync::Mutex<LogScan>,
}

impl TxFollower {
    pub fn new(core: Arc<SenderCore>) -> Self {
        TxFollower { core, scan: Default::default() }
    }

    /// Follows sent transactions to their receipts (always, even paused).
    pub async fn follow(&self) -> anyhow::Result<()> {
        for ev in self.core.tm.monitor().await? {
            let key = SeqKey::new(&ev.tx.rollup, ev.tx.init_batch);
            self.on_tx_event(ev).await?;
            // The receipt is what the sequence's stage waits for; it need
            // not wait for the next block to see it.
            self.core.caches.nudge(&key);
        }
        Ok(())
    }

    /// A transaction settled (or lost its receipt): book rewards, penalties
    /// and settler shares from its logs and move the sequence along.
    async fn on_tx_event(&self, ev: TxEvent) -> anyhow::Result<()> {
        let tx = ev.tx;
        let us = self.core.tm.address();
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
            tracing::warn!(chain = %self.core.tm.chain(), tx = %tx.id, gas_used = ?tx.gas_used, "transaction reverted on chain");
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
        self.core
            .db
            .run(move |c| {
                db::transaction(c, |c| {
                    if reward > 0 {
                        db::outbox::update_submission(c, &tx.rollup, tx.init_batch, |s| {
                            s.reward_wei += reward;
                            s.updated_at = db::now_ms();
                        })?;
                    }
                    if committed {
                        if let Some(q) = db::sequences::get_sequence(c, &tx.rollup, tx.init_batch)? {
                            if q.state == SequenceState::Proven {
                                db::sequences::update_sequence_state(
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
        let us = self.core.tm.address();
        let (kind, amount) = if e.miner == us {
            (BookedKind::Penalty, e.amount)
        } else if e.settler == us && !e.settlerShare.is_zero() {
            (BookedKind::SettlerShare, e.settlerShare)
        } else {
            return None;
        };
        Some(BookedEvent {
            chain_id: self.core.tm.chain_id(),
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
            let new = self.core.db.run(move |c| db::outbox::book_event(c, &saved, db::now_ms())).await?;
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
    pub async fn scan_logs(&self) -> anyhow::Result<()> {
        let provider = self.core.tm.provider().clone();
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
        let us = self.core.tm.address();
        for r in &self.core.rollups {
            let penalties = Filter::new()
                .address(r.address)
                .event_signature(ZkPowRollup::Punished::SIGNATURE_HASH)
                .topic2(us.into_word())
                .from_block(from)
                .to_block(to);
            let logs = provider.get_logs(&penalties).await.context("eth_getLogs (Punished)")?;
            let booked: Vec<_> = logs.iter().filter_map(|l| self.booked_event(&r.ctx.name, l)).collect();
            self.book(booked).await?;
            if self.core.cfg.settle_others_min_ratio == 0 {
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
    pub async fn settle_others(&self) -> anyhow::Result<()> {
        if self.core.cfg.settle_others_min_ratio == 0 {
            return Ok(());
        }
        let candidates: Vec<_> =
            self.scan.lock().await.candidates.iter().take(SETTLE_CHECKS_PER_PASS).cloned().collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let provider = self.core.tm.provider().clone();
        let head = provider.get_block_number().await.context("eth_blockNumber")?;
        let at = BlockId::number(head);
        let fee = provider.estimate_eip1559_fees().await.context("fee estimate")?.max_fee_per_gas;
        for key in candidates {
            let (rollup, init, miner) = &key;
            let r = self.core.rollup(rollup)?.clone();
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
            if share < cost.saturating_mul(u128::from(self.core.cfg.settle_others_min_ratio)) {
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
            match self.core.tm.submit(req).await {
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
