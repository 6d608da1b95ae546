//! The transaction manager of one base chain: a persistent outbox of the
//! miner's transactions.
//!
//! It owns the miner's nonce sequence on the chain. A transaction is first
//! simulated (a call that would revert is not sent; the decoded reason goes
//! back to the caller), then signed, then written to the database, and only
//! then broadcast. [`TxManager::monitor`] follows every open transaction to
//! its receipt and confirmations, re-broadcasts what the node forgot (after a
//! restart or a reorg), and re-signs the same nonce with higher fees when a
//! transaction waits too long, up to a configured cap. Because the signed
//! bytes are stored before they leave the process, a crash at any point is
//! followed by a re-broadcast of the same transaction, never a second one,
//! and the nonce sequence has no gaps.

use alloy::consensus::TxEnvelope;
use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::transports::{RpcError, TransportErrorKind};

use super::bindings::MinerDeposit::MinerDepositErrors;
use super::bindings::ZkPowRollup::ZkPowRollupErrors;
use crate::config::SenderConfig;
use crate::db::lease::Fence;
use crate::db::{self, AnyConnection, ChainTx, Db, DbError, TxPurpose, TxStatus};
use crate::metrics;

/// Why the contract would reject a call: the cases the sender branches on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevertKind {
    AlreadyVerified,
    UnknownSequence,
    /// Below the minimum deposit, or the free deposit cannot cover the bond.
    InsufficientDeposit,
    CommitPhaseOver,
    AlreadyCommitted,
    NotCommitter,
    AlreadyRevealed,
    RevealTooEarly,
    /// The previous sequence is not verified: the reveal phase has not started.
    PredecessorNotVerified,
    RevealPhaseOver,
    WindowNotEnded,
    /// Nothing to settle: the commit was settled, or has a valid proof.
    NotSettleable,
    AlreadyRewarded,
    NoValidProof,
    /// Anything else (the node's message or the decoded error).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revert {
    pub kind: RevertKind,
    pub detail: String,
}

impl std::fmt::Display for Revert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// The call would revert; nothing was sent.
    #[error("the transaction would revert ({0})")]
    Revert(Revert),
    /// The node is unreachable or overloaded: try again later.
    #[error("RPC unavailable: {0}")]
    Transient(String),
    /// The node refused for a reason retrying will not fix (no funds, bad
    /// key, ...): an operator has to look.
    #[error("{0}")]
    Fatal(String),
    #[error("database: {0}")]
    Db(#[from] DbError),
}

impl TxError {
    pub fn is_transient(&self) -> bool {
        match self {
            TxError::Transient(_) => true,
            TxError::Db(e) => e.is_transient(),
            _ => false,
        }
    }

    /// This process lost the aggregator lease: it must send nothing more.
    pub fn is_fenced(&self) -> bool {
        matches!(self, TxError::Db(DbError::Fenced(_)))
    }
}

/// Maps a contract error to the sender's cases.
pub fn classify_contract_error(e: &ZkPowRollupErrors) -> RevertKind {
    use ZkPowRollupErrors as E;
    match e {
        E::SequenceAlreadyVerified(_) => RevertKind::AlreadyVerified,
        E::UnknownSequence(_) => RevertKind::UnknownSequence,
        E::CommitPhaseOver(_) => RevertKind::CommitPhaseOver,
        E::AlreadyCommitted(_) => RevertKind::AlreadyCommitted,
        E::NotCommitter(_) => RevertKind::NotCommitter,
        E::AlreadyRevealed(_) => RevertKind::AlreadyRevealed,
        E::RevealTooEarly(_) => RevertKind::RevealTooEarly,
        E::PredecessorNotVerified(_) => RevertKind::PredecessorNotVerified,
        E::RevealPhaseOver(_) => RevertKind::RevealPhaseOver,
        E::NotSettleable(_) => RevertKind::NotSettleable,
        E::WindowNotEnded(_) => RevertKind::WindowNotEnded,
        E::AlreadyRewarded(_) => RevertKind::AlreadyRewarded,
        E::NoValidProof(_) => RevertKind::NoValidProof,
        _ => RevertKind::Other,
    }
}

/// Sorts an RPC failure into revert (with the decoded reason), transient
/// and fatal.
pub fn classify_rpc_error(e: RpcError<TransportErrorKind>) -> TxError {
    match &e {
        RpcError::ErrorResp(payload) => {
            if let Some(decoded) = payload.as_decoded_interface_error::<ZkPowRollupErrors>() {
                return TxError::Revert(Revert {
                    kind: classify_contract_error(&decoded),
                    detail: format!("{decoded:?}"),
                });
            }
            // The deposit contract's errors bubble up through the rollup's
            // call to lock a commit's bond.
            if let Some(decoded) = payload.as_decoded_interface_error::<MinerDepositErrors>() {
                let kind = match decoded {
                    MinerDepositErrors::InsufficientDeposit(_) | MinerDepositErrors::InsufficientFreeDeposit(_) => {
                        RevertKind::InsufficientDeposit
                    }
                    _ => RevertKind::Other,
                };
                return TxError::Revert(Revert { kind, detail: format!("{decoded:?}") });
            }
            let msg = payload.message.to_lowercase();
            if payload.as_revert_data().is_some() || msg.contains("revert") {
                return TxError::Revert(Revert { kind: RevertKind::Other, detail: payload.message.to_string() });
            }
            // Node-side conditions that pass by themselves.
            if ["timeout", "header not found", "too many requests", "rate limit", "busy", "try again"]
                .iter()
                .any(|m| msg.contains(m))
            {
                return TxError::Transient(payload.message.to_string());
            }
            TxError::Fatal(format!("the node refused: {} (code {})", payload.message, payload.code))
        }
        RpcError::Transport(kind) if kind.is_retry_err() || matches!(kind, TransportErrorKind::Custom(_)) => {
            TxError::Transient(format!("{e}"))
        }
        RpcError::Transport(_) | RpcError::NullResp => TxError::Transient(format!("{e}")),
        _ => TxError::Fatal(format!("{e}")),
    }
}

/// What the caller wants sent. `id` names the transaction for good: asking
/// again with the same id returns the stored transaction instead of sending
/// another (which is how a restarted sender avoids double sends).
#[derive(Debug, Clone)]
pub struct TxRequest {
    pub id: String,
    pub purpose: TxPurpose,
    pub rollup: String,
    pub init_batch: u64,
    pub window_id: u32,
    pub to: Address,
    pub calldata: Bytes,
}

/// A transaction reached a receipt, or lost it in a reorg.
#[derive(Debug, Clone)]
pub struct TxEvent {
    pub tx: ChainTx,
    /// Present when the transaction is confirmed or reverted.
    pub receipt: Option<TransactionReceipt>,
}

pub struct TxManager {
    db: Db,
    provider: DynProvider,
    wallet: EthereumWallet,
    from: Address,
    chain_id: u64,
    chain: String,
    confirmations: u64,
    cfg: SenderConfig,
    /// Serializes nonce assignment and the outbox writes that go with it.
    lock: tokio::sync::Mutex<()>,
    /// The aggregator lease's term when several processes share the
    /// database: every outbox write and broadcast needs it (None: this
    /// process is the database's only user).
    fence: Option<std::sync::Arc<Fence>>,
}

const GWEI: u128 = 1_000_000_000;

impl TxManager {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        provider: DynProvider,
        signer: alloy::signers::local::PrivateKeySigner,
        chain_id: u64,
        chain: String,
        confirmations: u64,
        cfg: SenderConfig,
    ) -> Self {
        let from = signer.address();
        TxManager {
            db,
            provider,
            wallet: EthereumWallet::from(signer),
            from,
            chain_id,
            chain,
            confirmations,
            cfg,
            lock: tokio::sync::Mutex::new(()),
            fence: None,
        }
    }

    /// Writes and broadcasts only while `fence`'s term lasts.
    pub fn with_fence(mut self, fence: Option<std::sync::Arc<Fence>>) -> Self {
        self.fence = fence;
        self
    }

    /// Whether this process may act on the chain now: always without a
    /// fence, else while its term lasts by the local clock.
    pub fn may_act(&self) -> bool {
        db::lease::may_act(self.fence.as_deref())
    }

    /// Runs an outbox write in a transaction that first checks the fence, so
    /// a deposed process can neither take a nonce nor re-sign one.
    async fn write(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> Result<(), DbError> + Send + 'static,
    ) -> Result<(), TxError> {
        let fence = self.fence.clone();
        self.db
            .run(move |c| {
                db::transaction(c, |c| {
                    if let Some(fence) = &fence {
                        db::lease::check_fence(c, fence)?;
                    }
                    f(c)
                })
            })
            .await?;
        Ok(())
    }

    pub fn address(&self) -> Address {
        self.from
    }

    pub fn chain(&self) -> &str {
        &self.chain
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// Classifies an RPC failure and counts it (reverts are answers, not failures).
    fn rpc(&self, method: &'static str) -> impl Fn(RpcError<TransportErrorKind>) -> TxError + '_ {
        move |e| {
            let err = classify_rpc_error(e);
            let kind = match &err {
                TxError::Revert(_) => return err,
                e if e.is_transient() => metrics::RpcErrorKind::Transient,
                _ => metrics::RpcErrorKind::Fatal,
            };
            metrics::rpc_error(&self.chain, method, kind);
            err
        }
    }

    fn fee_cap(&self) -> u128 {
        u128::from(self.cfg.max_fee_per_gas_gwei) * GWEI
    }

    /// Simulates the call from the miner's account: the gas it needs, or why
    /// it would revert.
    pub async fn simulate(&self, to: Address, calldata: &Bytes) -> Result<u64, TxError> {
        let call = TransactionRequest::default().with_from(self.from).with_to(to).with_input(calldata.clone());
        self.provider.estimate_gas(call).await.map_err(self.rpc("eth_estimateGas"))
    }

    /// Simulates, signs, records and broadcasts `req` (see [`TxRequest`] for
    /// the idempotence). A broadcast that fails transiently leaves the
    /// transaction recorded; [`TxManager::monitor`] re-broadcasts it.
    pub async fn submit(&self, req: TxRequest) -> Result<ChainTx, TxError> {
        let (tx, fresh) = self.prepare_inner(req).await?;
        if fresh {
            match self.broadcast(&tx.raw_tx).await {
                Ok(()) => metrics::tx_sent(&self.chain, tx.purpose),
                // The row stays: whoever holds the lease now delivers it.
                Err(e) if e.is_fenced() => return Err(e),
                Err(e) if e.is_transient() => {
                    // Recorded, so it counts as sent: the monitor delivers it.
                    metrics::tx_sent(&self.chain, tx.purpose);
                    tracing::warn!(chain = %self.chain, tx = %tx.id, error = %e, "broadcast failed; will retry");
                }
                Err(e) => {
                    // The node refused it outright, so the nonce is unused:
                    // forget the transaction rather than leave a gap.
                    self.forget(&tx).await?;
                    return Err(e);
                }
            }
        }
        Ok(tx)
    }

    /// Simulates, signs and records `req` without broadcasting it; returns
    /// the stored transaction if `req.id` is known already.
    pub async fn prepare(&self, req: TxRequest) -> Result<ChainTx, TxError> {
        Ok(self.prepare_inner(req).await?.0)
    }

    async fn prepare_inner(&self, req: TxRequest) -> Result<(ChainTx, bool), TxError> {
        let _guard = self.lock.lock().await;
        let id = req.id.clone();
        if let Some(existing) = self.db.run(move |c| db::outbox::get_tx(c, &id)).await? {
            return Ok((existing, false));
        }
        let gas = self.simulate(req.to, &req.calldata).await?;
        let gas_limit = gas.saturating_mul(100 + self.cfg.gas_limit_margin_percent) / 100;
        let fees = self.provider.estimate_eip1559_fees().await.map_err(self.rpc("eth_feeHistory"))?;
        let cap = self.fee_cap();
        if fees.max_fee_per_gas > cap {
            tracing::warn!(
                chain = %self.chain,
                estimate_gwei = fees.max_fee_per_gas / GWEI,
                cap_gwei = self.cfg.max_fee_per_gas_gwei,
                "fee estimate above sender.max_fee_per_gas_gwei; sending at the cap"
            );
        }
        let max_fee = fees.max_fee_per_gas.min(cap);
        let priority = fees.max_priority_fee_per_gas.min(max_fee);
        let head = self.provider.get_block_number().await.map_err(self.rpc("eth_blockNumber"))?;
        let chain_nonce = self
            .provider
            .get_transaction_count(self.from)
            .pending()
            .await
            .map_err(self.rpc("eth_getTransactionCount"))?;
        let (chain_id, sender) = (self.chain_id, self.from.0 .0);
        let recorded = self.db.run(move |c| db::outbox::next_recorded_nonce(c, chain_id, &sender)).await?;
        let nonce = chain_nonce.max(recorded.unwrap_or(0));
        let (raw, hash) = self.sign(req.to, &req.calldata, nonce, gas_limit, max_fee, priority).await?;
        let now = db::now_ms();
        let tx = ChainTx {
            id: req.id,
            chain_id: self.chain_id,
            sender: self.from.0 .0,
            nonce,
            purpose: req.purpose,
            rollup: req.rollup,
            init_batch: req.init_batch,
            window_id: req.window_id,
            to: req.to.0 .0,
            calldata: req.calldata.to_vec(),
            gas_limit,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: priority,
            raw_tx: raw,
            tx_hash: hash.0,
            hashes: vec![hash.0],
            status: TxStatus::Pending,
            sent_block: head,
            replacements: 0,
            mined_block: None,
            mined_hash: None,
            gas_used: None,
            effective_gas_price: None,
            error: None,
            created_at: now,
            updated_at: now,
        };
        let stored = tx.clone();
        self.write(move |c| db::outbox::insert_tx(c, &stored)).await?;
        tracing::info!(
            chain = %self.chain, tx = %tx.id, nonce, hash = %hash, gas_limit,
            max_fee_gwei = max_fee as f64 / GWEI as f64, "transaction signed and recorded"
        );
        Ok((tx, true))
    }

    async fn sign(
        &self,
        to: Address,
        calldata: &Bytes,
        nonce: u64,
        gas_limit: u64,
        max_fee: u128,
        priority: u128,
    ) -> Result<(Vec<u8>, B256), TxError> {
        let req = TransactionRequest::default()
            .with_from(self.from)
            .with_to(to)
            .with_input(calldata.clone())
            .with_nonce(nonce)
            .with_chain_id(self.chain_id)
            .with_gas_limit(gas_limit)
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(priority);
        let envelope: TxEnvelope =
            req.build(&self.wallet).await.map_err(|e| TxError::Fatal(format!("signing a transaction: {e}")))?;
        Ok((envelope.encoded_2718(), *envelope.tx_hash()))
    }

    async fn broadcast(&self, raw: &[u8]) -> Result<(), TxError> {
        if let Some(fence) = self.fence.as_ref().filter(|f| !f.is_live()) {
            return Err(TxError::Db(DbError::Fenced(format!(
                "aggregator lease epoch {} lapsed; not broadcasting",
                fence.epoch
            ))));
        }
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let msg = e.to_string().to_lowercase();
                // The node has it already, or it was mined: both are what we
                // wanted.
                if msg.contains("already known") || msg.contains("already imported") || msg.contains("nonce too low") {
                    Ok(())
                } else {
                    Err(self.rpc("eth_sendRawTransaction")(e))
                }
            }
        }
    }

    async fn forget(&self, tx: &ChainTx) -> Result<(), TxError> {
        let id = tx.id.clone();
        self.write(move |c| db::outbox::delete_tx(c, &id)).await?;
        Ok(())
    }

    /// One pass over the open transactions: receipts, confirmations, reorged
    /// receipts, re-broadcasts and fee bumps. Returns what changed.
    pub async fn monitor(&self) -> Result<Vec<TxEvent>, TxError> {
        let _guard = self.lock.lock().await;
        let (chain_id, sender) = (self.chain_id, self.from.0 .0);
        let open = self.db.run(move |c| db::outbox::open_txs(c, chain_id, &sender)).await?;
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let head = self.provider.get_block_number().await.map_err(self.rpc("eth_blockNumber"))?;
        let mut events = Vec::new();
        for mut tx in open {
            let mut receipt = None;
            for h in tx.hashes.iter().rev() {
                if let Some(r) = self
                    .provider
                    .get_transaction_receipt(B256::from(*h))
                    .await
                    .map_err(self.rpc("eth_getTransactionReceipt"))?
                {
                    receipt = Some(r);
                    break;
                }
            }
            let before = tx.status;
            match receipt {
                Some(r) => {
                    let mined = r.block_number.unwrap_or(head);
                    let depth = head.saturating_sub(mined) + 1;
                    tx.mined_block = Some(mined);
                    tx.mined_hash = Some(r.transaction_hash.0);
                    tx.gas_used = Some(r.gas_used);
                    tx.effective_gas_price = Some(r.effective_gas_price);
                    tx.status = if depth < self.confirmations.max(1) {
                        TxStatus::Mined
                    } else if r.status() {
                        TxStatus::Confirmed
                    } else {
                        TxStatus::Reverted
                    };
                    if tx.status != before {
                        tx.updated_at = db::now_ms();
                        let stored = tx.clone();
                        self.write(move |c| db::outbox::save_tx(c, &stored)).await?;
                        let final_state = !tx.status.is_open();
                        match tx.status {
                            TxStatus::Confirmed => metrics::tx_confirmed(&self.chain, tx.purpose, r.gas_used),
                            TxStatus::Reverted => metrics::tx_reverted(&self.chain, tx.purpose, r.gas_used),
                            _ => {}
                        }
                        tracing::info!(
                            chain = %self.chain, tx = %tx.id, status = %tx.status, block = mined,
                            gas_used = r.gas_used, "transaction {}", if final_state { "settled" } else { "mined" }
                        );
                        events.push(TxEvent { tx: tx.clone(), receipt: final_state.then_some(r) });
                    }
                }
                None if before == TxStatus::Mined => {
                    // The block with our receipt was reorged away: the
                    // transaction is back in (or out of) the mempool.
                    tracing::warn!(chain = %self.chain, tx = %tx.id, "receipt lost in a reorg; re-broadcasting");
                    tx.status = TxStatus::Pending;
                    tx.mined_block = None;
                    tx.mined_hash = None;
                    tx.sent_block = head;
                    tx.updated_at = db::now_ms();
                    let stored = tx.clone();
                    self.write(move |c| db::outbox::save_tx(c, &stored)).await?;
                    self.rebroadcast(&tx).await;
                    events.push(TxEvent { tx, receipt: None });
                }
                None => {
                    let used = self
                        .provider
                        .get_transaction_count(self.from)
                        .await
                        .map_err(self.rpc("eth_getTransactionCount"))?;
                    if used > tx.nonce {
                        if head >= tx.sent_block + self.cfg.bump_after_blocks {
                            // Our nonce was taken by a transaction we did not
                            // send (the key is used elsewhere): this one can
                            // never be mined.
                            tracing::error!(
                                chain = %self.chain, tx = %tx.id, nonce = tx.nonce,
                                "nonce used by a transaction this daemon did not send; is the key shared?"
                            );
                            tx.status = TxStatus::Reverted;
                            tx.error = Some("nonce used by another transaction".into());
                            metrics::tx_reverted(&self.chain, tx.purpose, 0);
                            tx.updated_at = db::now_ms();
                            let stored = tx.clone();
                            self.write(move |c| db::outbox::save_tx(c, &stored)).await?;
                            events.push(TxEvent { tx, receipt: None });
                        }
                        continue;
                    }
                    if head >= tx.sent_block + self.cfg.bump_after_blocks {
                        self.bump(&mut tx, head).await?;
                    } else if self
                        .provider
                        .get_transaction_by_hash(B256::from(tx.tx_hash))
                        .await
                        .map_err(self.rpc("eth_getTransactionByHash"))?
                        .is_none()
                    {
                        // Not known to the node: we crashed before the
                        // broadcast, or the node restarted and lost its pool.
                        self.rebroadcast(&tx).await;
                    }
                }
            }
        }
        Ok(events)
    }

    async fn rebroadcast(&self, tx: &ChainTx) {
        match self.broadcast(&tx.raw_tx).await {
            Ok(()) => tracing::info!(chain = %self.chain, tx = %tx.id, nonce = tx.nonce, "transaction re-broadcast"),
            Err(e) => tracing::warn!(chain = %self.chain, tx = %tx.id, error = %e, "re-broadcast failed"),
        }
    }

    /// Re-signs a waiting transaction's nonce with fees raised by
    /// `bump_percent` (both of them, as nodes require for a replacement),
    /// unless it is at the cap already; then it is only re-broadcast.
    async fn bump(&self, tx: &mut ChainTx, head: u64) -> Result<(), TxError> {
        let cap = self.fee_cap();
        let pct = u128::from(100 + self.cfg.bump_percent);
        let mut max_fee = (tx.max_fee_per_gas * pct).div_ceil(100).min(cap);
        let mut priority = (tx.max_priority_fee_per_gas * pct).div_ceil(100);
        // Follow the market if it moved further than one bump.
        if let Ok(est) = self.provider.estimate_eip1559_fees().await {
            max_fee = max_fee.max(est.max_fee_per_gas.min(cap));
            priority = priority.max(est.max_priority_fee_per_gas);
        }
        priority = priority.min(max_fee);
        // A replacement must raise both fees by 10%; at the cap it cannot.
        let min_fee = (tx.max_fee_per_gas * 110).div_ceil(100);
        let min_priority = (tx.max_priority_fee_per_gas * 110).div_ceil(100);
        if max_fee < min_fee || priority < min_priority {
            tracing::warn!(
                chain = %self.chain, tx = %tx.id, cap_gwei = self.cfg.max_fee_per_gas_gwei,
                "transaction waits at the fee cap; re-broadcasting unchanged"
            );
            tx.sent_block = head;
            tx.updated_at = db::now_ms();
            let stored = tx.clone();
            self.write(move |c| db::outbox::save_tx(c, &stored)).await?;
            self.rebroadcast(tx).await;
            return Ok(());
        }
        let to = Address::from(tx.to);
        let calldata = Bytes::from(tx.calldata.clone());
        let (raw, hash) = self.sign(to, &calldata, tx.nonce, tx.gas_limit, max_fee, priority).await?;
        tx.raw_tx = raw;
        tx.tx_hash = hash.0;
        tx.hashes.push(hash.0);
        tx.max_fee_per_gas = max_fee;
        tx.max_priority_fee_per_gas = priority;
        tx.replacements += 1;
        metrics::tx_replaced(&self.chain, tx.purpose);
        tx.sent_block = head;
        tx.updated_at = db::now_ms();
        let stored = tx.clone();
        self.write(move |c| db::outbox::save_tx(c, &stored)).await?;
        tracing::info!(
            chain = %self.chain, tx = %tx.id, nonce = tx.nonce, hash = %hash,
            max_fee_gwei = max_fee as f64 / GWEI as f64, replacements = tx.replacements, "fee bumped"
        );
        self.rebroadcast(tx).await;
        Ok(())
    }
}
