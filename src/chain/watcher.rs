//! Follows a base chain's rollup contracts: finds `SequenceBatches` events
//! in confirmed blocks and reads each sequence's batch bytes from the
//! sequencing transaction's calldata (the contract keeps only hashes).
//!
//! The watcher is stateless: the caller owns the cursor (persisted, so a
//! restart resumes where it stopped) and applies the result. Only blocks at
//! least `confirmations` deep are read, so a reorg inside the confirmation
//! depth never reaches us; a deeper one shows up as the cursor's block hash
//! changing, and the caller rewinds.
//!
//! Metrics: the chain head (`zkpow_chain_head_block`) and every failed RPC
//! call (`zkpow_chain_rpc_errors_total`) are recorded here, under the chain
//! name given with [`Watcher::with_chain`].

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::rpc::types::{BlockNumberOrTag, Filter};
use alloy::sol_types::{SolCall, SolEvent};

use super::bindings::ZkPowRollup;
use crate::metrics::{self, RpcErrorKind};

/// How far back a detected reorg rewinds the cursor. Deeper reorgs than
/// this on a chain with confirmations configured are not a case we can
/// recover from automatically.
pub const REORG_REWIND_BLOCKS: u64 = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub block: u64,
    pub hash: B256,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedSequence {
    pub rollup: Address,
    pub init_batch: u64,
    pub final_batch: u64,
    pub batches: Vec<Vec<u8>>,
    pub l1_block: u64,
    pub l1_block_hash: B256,
    pub tx_hash: B256,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// Nothing new is confirmed yet.
    Idle,
    /// Sequences found in `(previous cursor, cursor]`, oldest first.
    Progress { sequences: Vec<PostedSequence>, cursor: Cursor },
    /// The cursor's block is no longer canonical: drop everything seen after
    /// `rewind_to` and continue from there.
    Reorg { rewind_to: u64 },
}

/// Errors a caller branches on: transient ones are retried with backoff,
/// the others need an operator.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("RPC error (transient): {0}")]
    Rpc(String),
    #[error("block {0} not found (the node is behind or pruned)")]
    MissingBlock(u64),
    #[error("transaction {0} of a SequenceBatches event not found")]
    MissingTx(B256),
    #[error("sequence {init}..{fin} in tx {tx}: {msg}")]
    Undecodable { init: u64, fin: u64, tx: B256, msg: String },
}

impl WatchError {
    pub fn is_transient(&self) -> bool {
        matches!(self, WatchError::Rpc(_) | WatchError::MissingBlock(_) | WatchError::MissingTx(_))
    }
}

fn rpc<E: std::fmt::Display>(e: E) -> WatchError {
    WatchError::Rpc(e.to_string())
}

pub struct Watcher<P> {
    provider: P,
    rollups: Vec<Address>,
    confirmations: u64,
    /// Largest block range per `eth_getLogs` call; providers cap it.
    max_range: u64,
    /// The chain's configured name, the `chain` label of its metrics.
    chain: String,
}

impl<P: Provider> Watcher<P> {
    pub fn new(provider: P, rollups: Vec<Address>, confirmations: u64) -> Self {
        Watcher { provider, rollups, confirmations, max_range: 2_000, chain: "unnamed".into() }
    }

    /// Names the chain in the watcher's metrics.
    pub fn with_chain(mut self, chain: &str) -> Self {
        self.chain = chain.to_string();
        self
    }

    /// Counts a failed call of `method` and turns it into a [`WatchError`].
    fn rpc_failed(&self, method: &str, e: alloy::transports::TransportError) -> WatchError {
        metrics::rpc_failed(&self.chain, method, &e);
        rpc(e)
    }

    pub fn with_max_range(mut self, max_range: u64) -> Self {
        self.max_range = max_range.max(1);
        self
    }

    /// The latest block and the latest confirmed block.
    pub async fn heads(&self) -> Result<(u64, Option<u64>), WatchError> {
        let head = self.provider.get_block_number().await.map_err(|e| self.rpc_failed("eth_blockNumber", e))?;
        metrics::chain_head(&self.chain, head);
        Ok((head, head.checked_sub(self.confirmations)))
    }

    async fn block_hash(&self, number: u64) -> Result<B256, WatchError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(|e| self.rpc_failed("eth_getBlockByNumber", e))?
            .ok_or(WatchError::MissingBlock(number))?;
        Ok(block.header.hash)
    }

    /// One step: from the block after `cursor` (or `start_block` when there
    /// is none) up to the confirmed head, at most `max_range` blocks.
    pub async fn poll(&self, cursor: Option<Cursor>, start_block: u64) -> Result<Poll, WatchError> {
        let (_, Some(safe)) = self.heads().await? else { return Ok(Poll::Idle) };
        let from = match cursor {
            Some(c) => {
                if self.block_hash(c.block).await? != c.hash {
                    let rewind_to = c.block.saturating_sub(REORG_REWIND_BLOCKS).max(start_block.saturating_sub(1));
                    tracing::warn!(
                        block = c.block,
                        rewind_to,
                        "cursor block is no longer canonical: chain reorganised"
                    );
                    return Ok(Poll::Reorg { rewind_to });
                }
                c.block + 1
            }
            None => start_block,
        };
        if from > safe {
            return Ok(Poll::Idle);
        }
        let to = safe.min(from + self.max_range - 1);
        let filter = Filter::new()
            .address(self.rollups.clone())
            .event_signature(ZkPowRollup::SequenceBatches::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        let logs = self.provider.get_logs(&filter).await.map_err(|e| self.rpc_failed("eth_getLogs", e))?;
        let mut sequences = Vec::with_capacity(logs.len());
        for log in logs {
            let event = ZkPowRollup::SequenceBatches::decode_log(&log.inner).map_err(|e| {
                metrics::rpc_error(&self.chain, "eth_getLogs", RpcErrorKind::Fatal);
                rpc(e)
            })?;
            let (init, fin) = (event.data.initNumBatch, event.data.finalNewBatch);
            let tx_hash = log.transaction_hash.ok_or_else(|| WatchError::Rpc("log without transaction hash".into()))?;
            let l1_block = log.block_number.ok_or_else(|| WatchError::Rpc("log without block number".into()))?;
            let l1_block_hash = log.block_hash.ok_or_else(|| WatchError::Rpc("log without block hash".into()))?;
            let tx = self
                .provider
                .get_transaction_by_hash(tx_hash)
                .await
                .map_err(|e| self.rpc_failed("eth_getTransactionByHash", e))?
                .ok_or(WatchError::MissingTx(tx_hash))?;
            let input = alloy::consensus::Transaction::input(&tx);
            let undecodable = |msg: String| WatchError::Undecodable { init, fin, tx: tx_hash, msg };
            // The sequencer calls the rollup directly; a sequencer behind a
            // multisig or proxy would need trace-based extraction.
            let call = ZkPowRollup::sequenceBatchesCall::abi_decode(input)
                .map_err(|e| undecodable(format!("calldata is not a direct sequenceBatches call: {e}")))?;
            if call.batches.len() as u64 != fin - init + 1 {
                return Err(undecodable(format!("calldata holds {} batches", call.batches.len())));
            }
            sequences.push(PostedSequence {
                rollup: log.inner.address,
                init_batch: init,
                final_batch: fin,
                batches: call.batches.into_iter().map(|b| b.to_vec()).collect(),
                l1_block,
                l1_block_hash,
                tx_hash,
            });
        }
        Ok(Poll::Progress { sequences, cursor: Cursor { block: to, hash: self.block_hash(to).await? } })
    }
}
