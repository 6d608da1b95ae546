//! The typed records the query functions take and return, and the diesel row
//! structs they are converted from. Conversions happen here so the rest of
//! the crate never sees an `i64` batch number or an unchecked hash length.

use diesel::prelude::*;

use super::schema::*;
use super::DbError;
use crate::circuit::public::PublicInputs;
use crate::circuit::{Account, BatchWitness};

/// A block hash, transaction hash, data hash or state root. Roots are the
/// big-endian encoding of the field element (`circuit::public::fr_to_be`),
/// the same word the contract stores.
pub type Hash32 = [u8; 32];

/// Unix time in milliseconds, the unit of every timestamp column.
pub type Millis = i64;

/// The current time as stored in the database.
pub fn now_ms() -> Millis {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

pub use crate::wire::task::{task_id, TaskKind};
use crate::wire::text_enum;
pub use crate::wire::tx::TxPurpose;

text_enum! {
    /// Where a sequence is in its life, from the chain event to on-chain
    /// verification.
    SequenceState {
        /// Seen on chain; nothing started.
        Posted => "posted",
        /// Proof tasks exist.
        Proving => "proving",
        /// The final proof is ready.
        Proven => "proven",
        /// Our proof hash is committed on chain.
        Committed => "committed",
        /// The contract verified the sequence (by us or another miner).
        Verified => "verified",
        /// Not ours to prove (before `start_batch`, or verified by others
        /// before we got to it).
        Skipped => "skipped",
        /// Given up on; needs an operator.
        Failed => "failed",
    }
}

impl SequenceState {
    /// Whether the aggregator still has work on a sequence in this state.
    pub fn is_settled(self) -> bool {
        matches!(self, SequenceState::Verified | SequenceState::Skipped)
    }
}

text_enum! {
    TaskStatus {
        Queued => "queued",
        Leased => "leased",
        Done => "done",
        Failed => "failed",
    }
}

text_enum! {
    /// Where an outbox transaction is. `Mined` has a receipt with fewer than
    /// the chain's confirmations; a reorg can send it back to `Pending`.
    TxStatus {
        Pending => "pending",
        Mined => "mined",
        Confirmed => "confirmed",
        /// Confirmed with a failed receipt.
        Reverted => "reverted",
    }
}

impl TxStatus {
    /// No receipt deep enough yet: the nonce may still need attention.
    pub fn is_open(self) -> bool {
        matches!(self, TxStatus::Pending | TxStatus::Mined)
    }
}

text_enum! {
    SubmissionStatus {
        Active => "active",
        Done => "done",
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCursor {
    pub chain_id: u64,
    /// The last block the watcher fully processed.
    pub block_number: u64,
    pub block_hash: Hash32,
    pub updated_at: Millis,
}

/// A sequence as read from the chain event that posted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSequence {
    pub rollup: String,
    pub init_batch: u64,
    pub final_batch: u64,
    pub l1_block: u64,
    pub l1_block_hash: Hash32,
    pub l1_tx_hash: Hash32,
    /// Timestamp of the block that posted it.
    pub posted_at: Millis,
}

/// One posted batch of a [`NewSequence`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBatch {
    pub batch_num: u64,
    pub data: Vec<u8>,
    /// sha256 of `data`, as the contract stored it.
    pub data_hash: Hash32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequence {
    pub rollup: String,
    pub init_batch: u64,
    pub final_batch: u64,
    pub l1_block: u64,
    pub l1_block_hash: Hash32,
    pub l1_tx_hash: Hash32,
    pub posted_at: Millis,
    pub state: SequenceState,
    pub verified_at: Option<Millis>,
    pub updated_at: Millis,
    /// When its proofs and transaction bytes were dropped (settled sequences
    /// only, `retention.keep_settled_s` after settling).
    pub pruned_at: Option<Millis>,
}

impl Sequence {
    pub fn batch_count(&self) -> u64 {
        self.final_batch - self.init_batch + 1
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub rollup: String,
    pub batch_num: u64,
    /// First batch of the sequence this batch was posted in.
    pub init_batch: u64,
    pub data: Vec<u8>,
    pub data_hash: Hash32,
    /// Known once the executor has run the batch.
    pub old_root: Option<Hash32>,
    pub new_root: Option<Hash32>,
    /// Dropped once the sequence is verified; the roots stay.
    pub witness: Option<BatchWitness>,
}

/// What [`insert_sequence`](super::sequences::insert_sequence) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    New,
    /// The identical sequence was already stored (a re-delivered event).
    AlreadyPresent,
}

/// What a reorg rewind removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rewind {
    pub sequences: usize,
    pub batches: usize,
    pub tasks: usize,
    pub proofs: usize,
    pub snapshots: usize,
    /// Lowest batch number removed, if any was.
    pub first_removed_batch: Option<u64>,
}

/// An executor snapshot: the state after `last_executed_batch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollupState {
    pub rollup: String,
    pub last_executed_batch: u64,
    pub root: Hash32,
    /// The non-empty accounts (`StateTree::accounts`), enough to rebuild the
    /// tree.
    pub accounts: Vec<(u64, Account)>,
    pub updated_at: Millis,
}

/// A proof task to create; its id is derived by [`task_id`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTask {
    pub rollup: String,
    pub kind: TaskKind,
    pub first_batch: u64,
    pub last_batch: u64,
    /// The sequence the task belongs to.
    pub init_batch: u64,
}

impl NewTask {
    pub fn id(&self) -> String {
        task_id(&self.rollup, self.kind, self.first_batch, self.last_batch)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofTask {
    pub id: String,
    pub rollup: String,
    pub kind: TaskKind,
    pub first_batch: u64,
    pub last_batch: u64,
    pub init_batch: u64,
    pub status: TaskStatus,
    /// Leases handed out so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A verified proof to store with its task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProof {
    /// The proof bytes (a batch proof) or the concatenated bundle.
    pub payload: Vec<u8>,
    /// One entry per batch the payload proves, in batch order.
    pub public_inputs: Vec<PublicInputs>,
    /// The prover that produced it, if it came from one.
    pub prover: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    pub task_id: String,
    pub payload: Vec<u8>,
    pub public_inputs: Vec<PublicInputs>,
    pub prover: Option<String>,
    pub created_at: Millis,
}

/// What [`complete_task`](super::tasks::complete_task) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// The task is now done and the proof stored.
    Completed,
    /// The task was already done; the offered proof was not stored.
    AlreadyDone,
}

// ---- conversions between API values and column values ----

pub(crate) fn to_db(v: u64, what: &str) -> Result<i64, DbError> {
    i64::try_from(v).map_err(|_| DbError::Invalid(format!("{what} {v} does not fit a BIGINT")))
}

pub(crate) fn from_db(v: i64, what: &str) -> Result<u64, DbError> {
    u64::try_from(v).map_err(|_| DbError::Invalid(format!("stored {what} is negative: {v}")))
}

pub(crate) fn count_to_db(v: u32, what: &str) -> Result<i32, DbError> {
    i32::try_from(v).map_err(|_| DbError::Invalid(format!("{what} {v} does not fit an INTEGER")))
}

pub(crate) fn count_from_db(v: i32, what: &str) -> Result<u32, DbError> {
    u32::try_from(v).map_err(|_| DbError::Invalid(format!("stored {what} is negative: {v}")))
}

pub(crate) fn hash_from_db(v: Vec<u8>, what: &str) -> Result<Hash32, DbError> {
    let len = v.len();
    v.try_into().map_err(|_| DbError::Invalid(format!("stored {what} is {len} bytes, not 32")))
}

// ---- diesel rows ----

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = chain_cursors)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub(crate) struct ChainCursorRow {
    pub chain_id: i64,
    pub block_number: i64,
    pub block_hash: Vec<u8>,
    pub updated_at: i64,
}

impl TryFrom<ChainCursorRow> for ChainCursor {
    type Error = DbError;
    fn try_from(r: ChainCursorRow) -> Result<Self, DbError> {
        Ok(ChainCursor {
            chain_id: from_db(r.chain_id, "chain id")?,
            block_number: from_db(r.block_number, "block number")?,
            block_hash: hash_from_db(r.block_hash, "block hash")?,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sequences)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub(crate) struct SequenceRow {
    pub rollup: String,
    pub init_batch: i64,
    pub final_batch: i64,
    pub l1_block: i64,
    pub l1_block_hash: Vec<u8>,
    pub l1_tx_hash: Vec<u8>,
    pub posted_at: i64,
    pub state: String,
    pub verified_at: Option<i64>,
    pub updated_at: i64,
    pub pruned_at: Option<i64>,
}

impl TryFrom<SequenceRow> for Sequence {
    type Error = DbError;
    fn try_from(r: SequenceRow) -> Result<Self, DbError> {
        Ok(Sequence {
            rollup: r.rollup,
            init_batch: from_db(r.init_batch, "init batch")?,
            final_batch: from_db(r.final_batch, "final batch")?,
            l1_block: from_db(r.l1_block, "l1 block")?,
            l1_block_hash: hash_from_db(r.l1_block_hash, "l1 block hash")?,
            l1_tx_hash: hash_from_db(r.l1_tx_hash, "l1 tx hash")?,
            posted_at: r.posted_at,
            state: r.state.parse()?,
            verified_at: r.verified_at,
            updated_at: r.updated_at,
            pruned_at: r.pruned_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = batches)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub(crate) struct BatchRow {
    pub rollup: String,
    pub batch_num: i64,
    pub init_batch: i64,
    pub data: Vec<u8>,
    pub data_hash: Vec<u8>,
    pub old_root: Option<Vec<u8>>,
    pub new_root: Option<Vec<u8>>,
    pub witness: Option<String>,
}

impl TryFrom<BatchRow> for Batch {
    type Error = DbError;
    fn try_from(r: BatchRow) -> Result<Self, DbError> {
        Ok(Batch {
            rollup: r.rollup,
            batch_num: from_db(r.batch_num, "batch number")?,
            init_batch: from_db(r.init_batch, "init batch")?,
            data: r.data,
            data_hash: hash_from_db(r.data_hash, "data hash")?,
            old_root: r.old_root.map(|v| hash_from_db(v, "old root")).transpose()?,
            new_root: r.new_root.map(|v| hash_from_db(v, "new root")).transpose()?,
            witness: r.witness.map(|w| serde_json::from_str(&w)).transpose()?,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = rollup_states)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub(crate) struct RollupStateRow {
    pub rollup: String,
    pub last_executed_batch: i64,
    pub root: Vec<u8>,
    pub accounts: String,
    pub updated_at: i64,
}

impl TryFrom<RollupStateRow> for RollupState {
    type Error = DbError;
    fn try_from(r: RollupStateRow) -> Result<Self, DbError> {
        Ok(RollupState {
            rollup: r.rollup,
            last_executed_batch: from_db(r.last_executed_batch, "last executed batch")?,
            root: hash_from_db(r.root, "state root")?,
            accounts: serde_json::from_str(&r.accounts)?,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = proof_tasks)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub(crate) struct ProofTaskRow {
    pub id: String,
    pub rollup: String,
    pub kind: String,
    pub first_batch: i64,
    pub last_batch: i64,
    pub init_batch: i64,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<ProofTaskRow> for ProofTask {
    type Error = DbError;
    fn try_from(r: ProofTaskRow) -> Result<Self, DbError> {
        Ok(ProofTask {
            id: r.id,
            rollup: r.rollup,
            kind: r.kind.parse()?,
            first_batch: from_db(r.first_batch, "first batch")?,
            last_batch: from_db(r.last_batch, "last batch")?,
            init_batch: from_db(r.init_batch, "init batch")?,
            status: r.status.parse()?,
            attempts: count_from_db(r.attempts, "attempts")?,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = proofs)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub(crate) struct ProofRow {
    pub task_id: String,
    pub payload: Vec<u8>,
    pub public_inputs: String,
    pub prover: Option<String>,
    pub created_at: i64,
}

impl TryFrom<ProofRow> for Proof {
    type Error = DbError;
    fn try_from(r: ProofRow) -> Result<Self, DbError> {
        Ok(Proof {
            task_id: r.task_id,
            payload: r.payload,
            public_inputs: serde_json::from_str(&r.public_inputs)?,
            prover: r.prover,
            created_at: r.created_at,
        })
    }
}

/// Decodes a list of rows, failing on the first that does not decode.
pub(crate) fn convert_all<R, T>(rows: Vec<R>) -> Result<Vec<T>, DbError>
where
    T: TryFrom<R, Error = DbError>,
{
    rows.into_iter().map(T::try_from).collect()
}

// ---- the sender: submissions and the transaction outbox ----

/// A 20-byte account address as stored.
pub type Addr20 = [u8; 20];

/// A proven sequence the sender is working on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    pub rollup: String,
    pub init_batch: u64,
    pub final_batch: u64,
    pub status: SubmissionStatus,
    pub outcome: Option<String>,
    /// Window of our latest commit, 0 before the first.
    pub window_id: u32,
    pub proof_hash: Option<Hash32>,
    /// Commits sent over all windows.
    pub commits: u32,
    pub reward_wei: u128,
    pub penalty_wei: u128,
    pub note: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// One nonce of the outbox: the transaction as last signed and broadcast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTx {
    pub id: String,
    pub chain_id: u64,
    pub sender: Addr20,
    pub nonce: u64,
    pub purpose: TxPurpose,
    pub rollup: String,
    pub init_batch: u64,
    pub window_id: u32,
    pub to: Addr20,
    pub calldata: Vec<u8>,
    pub gas_limit: u64,
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
    pub raw_tx: Vec<u8>,
    pub tx_hash: Hash32,
    /// Every hash broadcast for this nonce, oldest first (fee bumps add one).
    pub hashes: Vec<Hash32>,
    pub status: TxStatus,
    /// Chain head when last (re)broadcast: the clock of the fee bump.
    pub sent_block: u64,
    pub replacements: u32,
    pub mined_block: Option<u64>,
    pub mined_hash: Option<Hash32>,
    pub gas_used: Option<u64>,
    pub effective_gas_price: Option<u128>,
    pub error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

pub(crate) fn wei_from_db(v: &str, what: &str) -> Result<u128, DbError> {
    v.parse().map_err(|_| DbError::Invalid(format!("stored {what} {v:?} is not a decimal amount")))
}

fn addr_from_db(v: Vec<u8>, what: &str) -> Result<Addr20, DbError> {
    let len = v.len();
    v.try_into().map_err(|_| DbError::Invalid(format!("stored {what} is {len} bytes, not 20")))
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = submissions)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub(crate) struct SubmissionRow {
    pub rollup: String,
    pub init_batch: i64,
    pub final_batch: i64,
    pub status: String,
    pub outcome: Option<String>,
    pub window_id: i64,
    pub proof_hash: Option<Vec<u8>>,
    pub commits: i32,
    pub reward_wei: String,
    pub penalty_wei: String,
    pub note: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<SubmissionRow> for Submission {
    type Error = DbError;
    fn try_from(r: SubmissionRow) -> Result<Self, DbError> {
        Ok(Submission {
            rollup: r.rollup,
            init_batch: from_db(r.init_batch, "init batch")?,
            final_batch: from_db(r.final_batch, "final batch")?,
            status: r.status.parse()?,
            outcome: r.outcome,
            window_id: u32::try_from(r.window_id)
                .map_err(|_| DbError::Invalid(format!("stored window id {} out of range", r.window_id)))?,
            proof_hash: r.proof_hash.map(|h| hash_from_db(h, "proof hash")).transpose()?,
            commits: count_from_db(r.commits, "commits")?,
            reward_wei: wei_from_db(&r.reward_wei, "reward")?,
            penalty_wei: wei_from_db(&r.penalty_wei, "penalty")?,
            note: r.note,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

impl TryFrom<&Submission> for SubmissionRow {
    type Error = DbError;
    fn try_from(s: &Submission) -> Result<Self, DbError> {
        Ok(SubmissionRow {
            rollup: s.rollup.clone(),
            init_batch: to_db(s.init_batch, "init batch")?,
            final_batch: to_db(s.final_batch, "final batch")?,
            status: s.status.as_str().to_string(),
            outcome: s.outcome.clone(),
            window_id: i64::from(s.window_id),
            proof_hash: s.proof_hash.map(|h| h.to_vec()),
            commits: count_to_db(s.commits, "commits")?,
            reward_wei: s.reward_wei.to_string(),
            penalty_wei: s.penalty_wei.to_string(),
            note: s.note.clone(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = chain_txs)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
#[diesel(treat_none_as_null = true)]
pub(crate) struct ChainTxRow {
    pub id: String,
    pub chain_id: i64,
    pub sender: Vec<u8>,
    pub nonce: i64,
    pub purpose: String,
    pub rollup: String,
    pub init_batch: i64,
    pub window_id: i64,
    pub to_addr: Vec<u8>,
    pub calldata: Vec<u8>,
    pub gas_limit: i64,
    pub max_fee_per_gas: String,
    pub max_priority_fee_per_gas: String,
    pub raw_tx: Vec<u8>,
    pub tx_hash: Vec<u8>,
    pub hashes: String,
    pub status: String,
    pub sent_block: i64,
    pub replacements: i32,
    pub mined_block: Option<i64>,
    pub mined_hash: Option<Vec<u8>>,
    pub gas_used: Option<i64>,
    pub effective_gas_price: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<ChainTxRow> for ChainTx {
    type Error = DbError;
    fn try_from(r: ChainTxRow) -> Result<Self, DbError> {
        let hashes: Vec<String> = serde_json::from_str(&r.hashes)
            .map_err(|e| DbError::Invalid(format!("stored hashes of transaction {}: {e}", r.id)))?;
        let hashes = hashes
            .iter()
            .map(|h| {
                hex::decode(h.trim_start_matches("0x"))
                    .map_err(|_| DbError::Invalid(format!("stored hash {h:?} is not hex")))
                    .and_then(|b| hash_from_db(b, "transaction hash"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ChainTx {
            chain_id: from_db(r.chain_id, "chain id")?,
            sender: addr_from_db(r.sender, "sender")?,
            nonce: from_db(r.nonce, "nonce")?,
            purpose: r.purpose.parse()?,
            rollup: r.rollup,
            init_batch: from_db(r.init_batch, "init batch")?,
            window_id: u32::try_from(r.window_id)
                .map_err(|_| DbError::Invalid(format!("stored window id {} out of range", r.window_id)))?,
            to: addr_from_db(r.to_addr, "recipient")?,
            calldata: r.calldata,
            gas_limit: from_db(r.gas_limit, "gas limit")?,
            max_fee_per_gas: wei_from_db(&r.max_fee_per_gas, "max fee")?,
            max_priority_fee_per_gas: wei_from_db(&r.max_priority_fee_per_gas, "priority fee")?,
            raw_tx: r.raw_tx,
            tx_hash: hash_from_db(r.tx_hash, "transaction hash")?,
            hashes,
            status: r.status.parse()?,
            sent_block: from_db(r.sent_block, "sent block")?,
            replacements: count_from_db(r.replacements, "replacements")?,
            mined_block: r.mined_block.map(|b| from_db(b, "mined block")).transpose()?,
            mined_hash: r.mined_hash.map(|h| hash_from_db(h, "mined hash")).transpose()?,
            gas_used: r.gas_used.map(|g| from_db(g, "gas used")).transpose()?,
            effective_gas_price: r.effective_gas_price.map(|p| wei_from_db(&p, "gas price")).transpose()?,
            error: r.error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            id: r.id,
        })
    }
}

impl TryFrom<&ChainTx> for ChainTxRow {
    type Error = DbError;
    fn try_from(t: &ChainTx) -> Result<Self, DbError> {
        let hashes: Vec<String> = t.hashes.iter().map(|h| format!("0x{}", hex::encode(h))).collect();
        Ok(ChainTxRow {
            id: t.id.clone(),
            chain_id: to_db(t.chain_id, "chain id")?,
            sender: t.sender.to_vec(),
            nonce: to_db(t.nonce, "nonce")?,
            purpose: t.purpose.as_str().to_string(),
            rollup: t.rollup.clone(),
            init_batch: to_db(t.init_batch, "init batch")?,
            window_id: i64::from(t.window_id),
            to_addr: t.to.to_vec(),
            calldata: t.calldata.clone(),
            gas_limit: to_db(t.gas_limit, "gas limit")?,
            max_fee_per_gas: t.max_fee_per_gas.to_string(),
            max_priority_fee_per_gas: t.max_priority_fee_per_gas.to_string(),
            raw_tx: t.raw_tx.clone(),
            tx_hash: t.tx_hash.to_vec(),
            hashes: serde_json::to_string(&hashes).map_err(|e| DbError::Invalid(e.to_string()))?,
            status: t.status.as_str().to_string(),
            sent_block: to_db(t.sent_block, "sent block")?,
            replacements: count_to_db(t.replacements, "replacements")?,
            mined_block: t.mined_block.map(|b| to_db(b, "mined block")).transpose()?,
            mined_hash: t.mined_hash.map(|h| h.to_vec()),
            gas_used: t.gas_used.map(|g| to_db(g, "gas used")).transpose()?,
            effective_gas_price: t.effective_gas_price.map(|p| p.to_string()),
            error: t.error.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_enums_round_trip_and_match_the_check_constraints() {
        for s in SequenceState::ALL {
            assert_eq!(s.as_str().parse::<SequenceState>().unwrap(), *s);
        }
        for k in TaskKind::ALL {
            assert_eq!(k.as_str().parse::<TaskKind>().unwrap(), *k);
        }
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), *s);
        }
        assert!("Posted".parse::<SequenceState>().is_err());
        // The CHECK constraints list the same words; a mismatch would only
        // surface as an insert failure at runtime.
        for dir in ["sqlite", "postgres"] {
            let sql = std::fs::read_to_string(format!(
                "{}/migrations/{dir}/2026-01-01-000000_init/up.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let words = SequenceState::ALL
                .iter()
                .map(|s| s.as_str())
                .chain(TaskKind::ALL.iter().map(|k| k.as_str()))
                .chain(TaskStatus::ALL.iter().map(|s| s.as_str()));
            for w in words {
                assert!(sql.contains(&format!("'{w}'")), "{dir} migration lacks '{w}'");
            }
        }
    }

    #[test]
    fn task_ids_are_deterministic_and_distinct_per_kind() {
        let t = NewTask { rollup: "r".into(), kind: TaskKind::Aggregate, first_batch: 3, last_batch: 6, init_batch: 3 };
        assert_eq!(t.id(), "r/aggregate/3-6");
        assert_eq!(t.id(), task_id("r", TaskKind::Aggregate, 3, 6));
        assert_ne!(t.id(), task_id("r", TaskKind::Final, 3, 6));
    }

    #[test]
    fn numbers_and_hashes_are_range_checked() {
        assert_eq!(to_db(7, "x").unwrap(), 7);
        assert!(matches!(to_db(u64::MAX, "x"), Err(DbError::Invalid(_))));
        assert!(matches!(from_db(-1, "x"), Err(DbError::Invalid(_))));
        assert!(matches!(count_from_db(-1, "x"), Err(DbError::Invalid(_))));
        assert_eq!(hash_from_db(vec![1; 32], "h").unwrap(), [1; 32]);
        assert!(matches!(hash_from_db(vec![1; 31], "h"), Err(DbError::Invalid(_))));
    }
}
