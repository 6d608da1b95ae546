//! The sequence pipeline over the database, shared by the generator, the
//! manager and the chain watcher: store what the watcher found, execute
//! batches natively into witnesses, plan a sequence's proof tree into
//! dispatcher tasks, store accepted proofs, read final artifacts, and mark
//! what the contract verified.
//!
//! Everything is a plain function of the database state, so a restart
//! resumes by calling the same functions: planning recreates exactly the
//! tasks whose inputs exist and whose results do not (task ids are
//! deterministic and enqueueing is idempotent).

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use super::dispatcher::ProofAccepted;
use super::generator::plan::{self, Range};
use crate::chain::watcher::PostedSequence;
use crate::circuit::encoding::PROOF_BYTES;
use crate::circuit::executor::apply_batch;
use crate::circuit::{Account, Fr, Shape, StateTree};
use crate::db::{self, AnyConnection, DbError, SequenceState};
use crate::wire::proof::{ProofOutput, ProofRequest};
use crate::wire::task::{NewTask, ProofBundle, ProofPayload, TaskInput, TaskKind};

/// What the pipeline needs to know about one rollup.
#[derive(Clone, Debug)]
pub struct RollupCtx {
    pub name: String,
    pub shape: Shape,
    /// 0x-prefixed keccak of the shape's verifying key.
    pub vk_hash: String,
    pub domain: Fr,
    /// This miner's address: a public input of every proof.
    pub miner: [u8; 20],
    pub genesis: Vec<(u64, Account)>,
    /// Sequences ending before it are never proven.
    pub start_batch: u64,
}

/// Stores sequences found by the watcher; returns how many were new.
pub fn ingest(
    conn: &mut AnyConnection,
    ctx: &RollupCtx,
    seqs: &[PostedSequence],
    now: db::Millis,
) -> Result<usize, DbError> {
    let mut new = 0;
    for s in seqs {
        crate::metrics::rollup_last_sequenced_batch(&ctx.name, s.final_batch);
        let seq = db::NewSequence {
            rollup: ctx.name.clone(),
            init_batch: s.init_batch,
            final_batch: s.final_batch,
            l1_block: s.l1_block,
            l1_block_hash: s.l1_block_hash.0,
            l1_tx_hash: s.tx_hash.0,
            posted_at: now,
        };
        let batches: Vec<db::NewBatch> = s
            .batches
            .iter()
            .enumerate()
            .map(|(i, data)| db::NewBatch {
                batch_num: s.init_batch + i as u64,
                data: data.clone(),
                data_hash: Sha256::digest(data).into(),
            })
            .collect();
        if db::sequences::insert_sequence(conn, &seq, &batches, now)? == db::Inserted::New {
            new += 1;
            if s.final_batch < ctx.start_batch {
                db::sequences::update_sequence_state(conn, &ctx.name, s.init_batch, SequenceState::Skipped, now)?;
            }
        }
    }
    Ok(new)
}

/// Executes every stored batch after the last executed one, in order, and
/// stores each witness; returns how many batches ran. The state snapshot is
/// saved so a restart does not replay from genesis.
pub fn execute(conn: &mut AnyConnection, ctx: &RollupCtx, now: db::Millis) -> Result<usize, DbError> {
    let (mut state, mut last) = match db::state::load_rollup_state(conn, &ctx.name)? {
        Some(s) => (StateTree::with_accounts(ctx.shape.d, s.accounts), s.last_executed_batch),
        None => (StateTree::with_accounts(ctx.shape.d, ctx.genesis.clone()), 0),
    };
    let mut ran = 0;
    while let Some(batch) = db::sequences::get_batch(conn, &ctx.name, last + 1)? {
        // The contract only accepts batches of the shape's length, so an
        // error here means the configuration names the wrong shape.
        let (witness, _) = apply_batch(&mut state, ctx.shape, &batch.data)
            .map_err(|e| DbError::Invalid(format!("rollup {}: batch {}: {e}", ctx.name, batch.batch_num)))?;
        db::sequences::set_batch_witness(conn, &ctx.name, batch.batch_num, &witness)?;
        last = batch.batch_num;
        ran += 1;
    }
    if ran > 0 {
        let snapshot = db::RollupState {
            rollup: ctx.name.clone(),
            last_executed_batch: last,
            root: crate::circuit::public::fr_to_be(&state.root()),
            accounts: state.accounts().collect(),
            updated_at: now,
        };
        db::state::save_rollup_state(conn, &snapshot, 3)?;
    }
    Ok(ran)
}

fn bundle_of(proof: &db::Proof) -> ProofBundle {
    ProofBundle {
        proofs: proof
            .payload
            .chunks(PROOF_BYTES)
            .zip(&proof.public_inputs)
            .map(|(p, public)| ProofOutput { proof: p.to_vec(), public: *public })
            .collect(),
    }
}

/// Unverified sequences of `ctx` whose proofs can be planned now: not
/// skipped or failed, every batch executed into a witness. The generator
/// gives each one a supervisor. Sequences in `known` (supervised already)
/// are returned without reading their batches again.
pub fn sequences_to_prove(
    conn: &mut AnyConnection,
    ctx: &RollupCtx,
    known: &BTreeSet<u64>,
) -> Result<Vec<u64>, DbError> {
    let mut out = Vec::new();
    for seq in db::sequences::unverified_sequences(conn, &ctx.name)? {
        if seq.state == SequenceState::Skipped || seq.state == SequenceState::Failed {
            continue;
        }
        if known.contains(&seq.init_batch) {
            out.push(seq.init_batch);
            continue;
        }
        if db::sequences::sequence_batches(conn, &ctx.name, seq.init_batch)?.iter().all(|b| b.witness.is_some()) {
            out.push(seq.init_batch);
        }
    }
    Ok(out)
}

/// What a sequence's supervisor should do next.
#[derive(Debug)]
pub enum SequencePlan {
    /// Verified on chain (by anyone), skipped or failed: nothing more to prove.
    Settled,
    /// The tasks to run that are not running: tasks newly ready in the
    /// proof tree, plus created ones without a result (after a restart, or
    /// a final proof reset because its artifact went missing).
    Tasks(Vec<NewTask>),
}

/// Plans one sequence. Tasks in `running` are left out, so their inputs
/// (a witness is the largest thing the pipeline loads) are not read again.
/// New tasks are recorded in the database before they are returned.
pub fn plan_sequence(
    conn: &mut AnyConnection,
    ctx: &RollupCtx,
    init_batch: u64,
    running: &BTreeSet<String>,
    now: db::Millis,
) -> Result<SequencePlan, DbError> {
    let Some(seq) = db::sequences::get_sequence(conn, &ctx.name, init_batch)? else { return Ok(SequencePlan::Settled) };
    if seq.state.is_settled() || seq.state == SequenceState::Failed {
        return Ok(SequencePlan::Settled);
    }
    let root: Range = (seq.init_batch, seq.final_batch);
    let tasks = db::tasks::sequence_tasks(conn, &ctx.name, seq.init_batch)?;
    let mut created = BTreeSet::new();
    let mut done = BTreeMap::new();
    let mut final_done = false;
    let mut pending = Vec::new();
    for t in &tasks {
        let kind = t.kind;
        let range = (t.first_batch, t.last_batch);
        created.insert((kind, range));
        match (t.status, kind) {
            (db::TaskStatus::Done, TaskKind::Final) => final_done = true,
            (db::TaskStatus::Done, _) => {
                done.insert(range, t.id.clone());
            }
            (db::TaskStatus::Failed, _) => {}
            _ => pending.push((kind, range)),
        }
    }
    let done_ranges: BTreeSet<Range> = done.keys().copied().collect();
    let ready = plan::ready(root, &done_ranges, final_done, &created);
    let mut batches = None;
    let mut out = Vec::new();
    let mut new_db = Vec::new();
    for (kind, range) in ready.iter().chain(pending.iter()) {
        if running.contains(&db::task_id(&ctx.name, *kind, range.0, range.1)) {
            continue;
        }
        let input = match kind {
            TaskKind::Batch => {
                let batches = match &mut batches {
                    Some(b) => b,
                    None => batches.insert(db::sequences::sequence_batches(conn, &ctx.name, seq.init_batch)?),
                };
                let b = batches
                    .get((range.0 - seq.init_batch) as usize)
                    .ok_or_else(|| DbError::Invalid(format!("batch {} of the sequence is missing", range.0)))?;
                let witness = b.witness.clone().ok_or_else(|| DbError::Invalid("witness vanished".into()))?;
                TaskInput::Batch(Box::new(ProofRequest {
                    witness,
                    domain: ctx.domain,
                    batch_num: range.0,
                    miner: ctx.miner,
                }))
            }
            TaskKind::Aggregate => {
                let (l, r) = plan::children(*range).ok_or_else(|| DbError::Invalid("aggregate of one batch".into()))?;
                let left = load_bundle(conn, done.get(&l))?;
                let right = load_bundle(conn, done.get(&r))?;
                TaskInput::Aggregate { left, right }
            }
            TaskKind::Final => TaskInput::Final { bundle: load_bundle(conn, done.get(&root))? },
        };
        if !created.contains(&(*kind, *range)) {
            new_db.push(db::NewTask {
                rollup: ctx.name.clone(),
                kind: *kind,
                first_batch: range.0,
                last_batch: range.1,
                init_batch: seq.init_batch,
            });
        }
        out.push(NewTask {
            rollup: ctx.name.clone(),
            seq_height: seq.init_batch,
            first_batch: range.0,
            last_batch: range.1,
            shape: ctx.shape,
            vk_hash: ctx.vk_hash.clone(),
            input,
        });
    }
    if !new_db.is_empty() {
        db::tasks::create_tasks(conn, &new_db, now)?;
        if seq.state == SequenceState::Posted {
            db::sequences::update_sequence_state(conn, &ctx.name, seq.init_batch, SequenceState::Proving, now)?;
        }
    }
    Ok(SequencePlan::Tasks(out))
}

fn load_bundle(conn: &mut AnyConnection, task_id: Option<&String>) -> Result<ProofBundle, DbError> {
    let id = task_id.ok_or_else(|| DbError::Invalid("input of a ready task has no result".into()))?;
    let proof = db::tasks::get_proof(conn, id)?.ok_or_else(|| DbError::NotFound(format!("proof of task {id}")))?;
    Ok(bundle_of(&proof))
}

/// Persists an accepted result (idempotent: a second valid result for the
/// same task is a no-op). A final result marks its sequence proven.
pub fn store_proof(conn: &mut AnyConnection, accepted: &ProofAccepted, now: db::Millis) -> Result<(), DbError> {
    let (payload, public_inputs) = match &accepted.payload {
        ProofPayload::Batch(out) => (out.proof.clone(), vec![out.public]),
        ProofPayload::Bundle(b) => {
            (b.proofs.iter().flat_map(|p| p.proof.clone()).collect(), b.proofs.iter().map(|p| p.public).collect())
        }
    };
    let proof = db::NewProof { payload, public_inputs, prover: Some(accepted.prover_id.clone()) };
    let task = &accepted.task;
    db::transaction(conn, |conn| {
        db::tasks::complete_task(conn, &task.id, &proof, now)?;
        if task.kind == TaskKind::Final {
            let seq = db::sequences::get_sequence(conn, &task.rollup, task.seq_height)?;
            if let Some(s) = &seq {
                let secs = (now - s.posted_at).max(0) as f64 / 1000.0;
                crate::metrics::sequence_stage(&task.rollup, crate::metrics::SequenceStage::Proving, secs);
            }
            if seq.is_some_and(|s| !s.state.is_settled() && s.state != SequenceState::Committed) {
                db::sequences::update_sequence_state(conn, &task.rollup, task.seq_height, SequenceState::Proven, now)?;
            }
        }
        Ok(())
    })
}

/// The contract payload of a proven sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalArtifact {
    pub init_batch: u64,
    pub final_batch: u64,
    pub bundle: ProofBundle,
}

impl FinalArtifact {
    /// `proof` argument of `verifyBatches`: the batch proofs concatenated.
    pub fn proof_bytes(&self) -> Vec<u8> {
        self.bundle.proofs.iter().flat_map(|p| p.proof.clone()).collect()
    }

    /// `roots` argument: the roots after every batch but the last.
    pub fn intermediate_roots(&self) -> Vec<Fr> {
        let n = self.bundle.proofs.len();
        self.bundle.proofs[..n.saturating_sub(1)].iter().map(|p| p.public.new_root).collect()
    }

    pub fn new_state_root(&self) -> Option<Fr> {
        self.bundle.proofs.last().map(|p| p.public.new_root)
    }

    /// The verifier contract's `inputs`: 7 words per batch.
    pub fn inputs(&self) -> Vec<[u8; 32]> {
        self.bundle.proofs.iter().flat_map(|p| p.public.to_be_words()).collect()
    }
}

pub fn final_artifact(
    conn: &mut AnyConnection,
    rollup: &str,
    init_batch: u64,
) -> Result<Option<FinalArtifact>, DbError> {
    let Some(seq) = db::sequences::get_sequence(conn, rollup, init_batch)? else { return Ok(None) };
    let id = db::task_id(rollup, db::TaskKind::Final, seq.init_batch, seq.final_batch);
    Ok(db::tasks::get_proof(conn, &id)?.map(|p| FinalArtifact {
        init_batch: seq.init_batch,
        final_batch: seq.final_batch,
        bundle: bundle_of(&p),
    }))
}

/// How far back [`mark_verified`] sweeps verified sequences for witnesses.
const WITNESS_SWEEP_MS: db::Millis = 3_600_000;

/// Marks sequences the contract has verified (by anyone) so no more work
/// goes into them; returns how many changed.
pub fn mark_verified(
    conn: &mut AnyConnection,
    rollup: &str,
    last_verified: u64,
    now: db::Millis,
) -> Result<usize, DbError> {
    let mut n = 0;
    for s in db::sequences::unverified_sequences(conn, rollup)? {
        if s.final_batch <= last_verified {
            db::sequences::update_sequence_state(conn, rollup, s.init_batch, SequenceState::Verified, now)?;
            // Nothing proves a verified sequence again, and witnesses are
            // the largest rows by far: keeping them grows the database with
            // every batch for the daemon's whole life.
            db::sequences::clear_witnesses(conn, rollup, s.init_batch)?;
            crate::metrics::sequence_verified(rollup, (now - s.posted_at).max(0) as f64 / 1000.0);
            n += 1;
        }
    }
    db::sequences::clear_verified_witnesses(conn, rollup, now - WITNESS_SWEEP_MS)?;
    Ok(n)
}
