//! The proof-task model the dispatcher hands to provers: what a task is,
//! what a prover needs to run it ([`TaskInput`]) and what it sends back
//! ([`ProofPayload`]), plus the proof bundles that aggregation merges.
//!
//! Groth16 has no recursion here, so "aggregating" two adjacent bundles means
//! concatenating already verified batch proofs after checking that they
//! continue each other (consecutive batch numbers, `new_root` of the left =
//! `old_root` of the right). The task kinds stay general so a recursive
//! backend can later return a single proof instead.

use serde::{Deserialize, Serialize};

use super::proof::{ProofOutput, ProofRequest};
use crate::circuit::Shape;

/// A task's stable identity, `"{rollup}/{kind}/{first}-{last}"`. Deterministic
/// so that re-enqueueing the same work (after a restart, or by a supervisor
/// that replays its plan) is recognised as the same task.
pub type TaskId = String;

super::text_enum! {
    /// The step of a sequence's proof tree a task computes; the database
    /// stores it with each task row.
    TaskKind {
        /// One batch proven from its witness.
        Batch => "batch",
        /// Two adjacent bundles merged.
        Aggregate => "aggregate",
        /// The contract payload for a whole sequence.
        Final => "final",
    }
}

impl TaskKind {
    /// Critical-path rank within one sequence, lower runs first: a Final
    /// unblocks the on-chain submission, an Aggregate unblocks the Final.
    pub(crate) fn critical_rank(self) -> u8 {
        match self {
            TaskKind::Final => 0,
            TaskKind::Aggregate => 1,
            TaskKind::Batch => 2,
        }
    }
}

/// Where a task is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum TaskStatus {
    Queued,
    Leased { holder: String, expires_at_ms: u64 },
    Done,
    Failed { reason: String },
}

/// An ordered run of batch proofs covering consecutive batches: the result
/// of an Aggregate or Final task. On the wire: `{"proofs": [ProofOutput, ...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofBundle {
    pub proofs: Vec<ProofOutput>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("a proof bundle must hold at least one proof")]
    Empty,
    #[error("batch {next} does not follow batch {prev}")]
    NotConsecutive { prev: u64, next: u64 },
    #[error("the old root of batch {batch} is not the new root of the batch before it")]
    RootMismatch { batch: u64 },
    #[error("the bundle covers batches {got_first}-{got_last}, the task wants {want_first}-{want_last}")]
    WrongRange { got_first: u64, got_last: u64, want_first: u64, want_last: u64 },
}

impl ProofBundle {
    pub fn single(proof: ProofOutput) -> Self {
        ProofBundle { proofs: vec![proof] }
    }

    pub fn first_batch(&self) -> Option<u64> {
        self.proofs.first().map(|p| p.public.batch_num)
    }

    pub fn last_batch(&self) -> Option<u64> {
        self.proofs.last().map(|p| p.public.batch_num)
    }

    /// Checks that the proofs continue each other: consecutive batch numbers
    /// and chained state roots. It says nothing about the proofs' validity.
    pub fn check_contiguous(&self) -> Result<(), BundleError> {
        if self.proofs.is_empty() {
            return Err(BundleError::Empty);
        }
        for pair in self.proofs.windows(2) {
            let (prev, next) = (&pair[0].public, &pair[1].public);
            if prev.batch_num.checked_add(1) != Some(next.batch_num) {
                return Err(BundleError::NotConsecutive { prev: prev.batch_num, next: next.batch_num });
            }
            if prev.new_root != next.old_root {
                return Err(BundleError::RootMismatch { batch: next.batch_num });
            }
        }
        Ok(())
    }

    /// Checks contiguity and that the bundle covers exactly `first..=last`.
    pub fn check_covers(&self, first: u64, last: u64) -> Result<(), BundleError> {
        self.check_contiguous()?;
        let (got_first, got_last) = (self.first_batch().unwrap_or(0), self.last_batch().unwrap_or(0));
        if (got_first, got_last) != (first, last) {
            return Err(BundleError::WrongRange { got_first, got_last, want_first: first, want_last: last });
        }
        Ok(())
    }

    /// The non-recursive aggregation step: `left ‖ right` after checking that
    /// `right` continues `left`.
    pub fn merge(left: &ProofBundle, right: &ProofBundle) -> Result<ProofBundle, BundleError> {
        let mut proofs = Vec::with_capacity(left.proofs.len() + right.proofs.len());
        proofs.extend_from_slice(&left.proofs);
        proofs.extend_from_slice(&right.proofs);
        let merged = ProofBundle { proofs };
        merged.check_contiguous()?;
        Ok(merged)
    }
}

/// What a prover needs to run a task. On the wire it is two fields of the
/// claim response: `"kind"` and `"request"` (a [`ProofRequest`] for a batch,
/// `{"left", "right"}` bundles for an aggregate, `{"bundle"}` for a final).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "request", rename_all = "lowercase")]
pub enum TaskInput {
    Batch(Box<ProofRequest>),
    Aggregate { left: ProofBundle, right: ProofBundle },
    Final { bundle: ProofBundle },
}

impl TaskInput {
    pub fn kind(&self) -> TaskKind {
        match self {
            TaskInput::Batch(_) => TaskKind::Batch,
            TaskInput::Aggregate { .. } => TaskKind::Aggregate,
            TaskInput::Final { .. } => TaskKind::Final,
        }
    }
}

/// What a prover returns: one [`ProofOutput`] for a batch task, a
/// [`ProofBundle`] for aggregate and final tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProofPayload {
    Batch(ProofOutput),
    Bundle(ProofBundle),
}

impl ProofPayload {
    /// Decodes a submitted `proof` field by the task's kind, so a malformed
    /// submission gets the error of the type it should have been.
    pub fn decode(kind: TaskKind, value: serde_json::Value) -> Result<ProofPayload, serde_json::Error> {
        match kind {
            TaskKind::Batch => serde_json::from_value(value).map(ProofPayload::Batch),
            TaskKind::Aggregate | TaskKind::Final => serde_json::from_value(value).map(ProofPayload::Bundle),
        }
    }
}

/// Work to enqueue. The task's kind comes from its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTask {
    pub rollup: String,
    /// First batch number of the sequence this task belongs to.
    pub seq_height: u64,
    pub first_batch: u64,
    pub last_batch: u64,
    pub shape: Shape,
    /// VK hash a prover must have announced for `shape` to get this task.
    pub vk_hash: String,
    pub input: TaskInput,
}

impl NewTask {
    pub fn id(&self) -> TaskId {
        task_id(&self.rollup, self.input.kind(), self.first_batch, self.last_batch)
    }
}

/// A task's id: the deterministic primary key of its database row too, so
/// re-creating the same task after a restart hits the same row instead of
/// duplicating work.
pub fn task_id(rollup: &str, kind: TaskKind, first_batch: u64, last_batch: u64) -> TaskId {
    format!("{rollup}/{kind}/{first_batch}-{last_batch}")
}

/// A task as the queue keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub id: TaskId,
    pub rollup: String,
    pub kind: TaskKind,
    pub seq_height: u64,
    pub first_batch: u64,
    pub last_batch: u64,
    pub shape: Shape,
    /// Lower-case, 0x-prefixed.
    pub vk_hash: String,
    pub input: TaskInput,
    /// Leases that ended without a result (expired or failed by the prover).
    pub attempts: u32,
    pub status: TaskStatus,
}

/// VK hashes are compared case-insensitively; keep one spelling.
pub(crate) fn normalize_vk_hash(h: &str) -> String {
    let h = h.trim().to_ascii_lowercase();
    if h.starts_with("0x") {
        h
    } else {
        format!("0x{h}")
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::circuit::public::PublicInputs;
    use crate::circuit::{BatchWitness, Fr};

    /// A structurally valid request whose witness is not meant to be proven:
    /// the queue and protocol tests never run the circuit.
    pub fn request(shape: Shape, batch_num: u64) -> ProofRequest {
        ProofRequest {
            witness: BatchWitness {
                shape,
                batch: vec![0; shape.batch_bytes()],
                old_root: Fr::from(batch_num),
                new_root: Fr::from(batch_num + 1),
                transfers: Vec::new(),
            },
            domain: Fr::from(7u64),
            batch_num,
            miner: [0x11; 20],
        }
    }

    /// A proof whose public inputs chain like a real sequence's: the root
    /// after batch n is n + 1.
    pub fn output(batch_num: u64) -> ProofOutput {
        ProofOutput {
            proof: vec![0xAB; 512],
            public: PublicInputs {
                domain: Fr::from(7u64),
                batch_num,
                old_root: Fr::from(batch_num),
                new_root: Fr::from(batch_num + 1),
                data_hash_hi: Fr::from(0u64),
                data_hash_lo: Fr::from(0u64),
                miner: Fr::from(0x11u64),
            },
        }
    }

    pub fn bundle(first: u64, last: u64) -> ProofBundle {
        ProofBundle { proofs: (first..=last).map(output).collect() }
    }

    pub const VK: &str = "0x00000000000000000000000000000000000000000000000000000000feedface";

    pub fn batch(rollup: &str, seq_height: u64, n: u64) -> NewTask {
        NewTask {
            rollup: rollup.into(),
            seq_height,
            first_batch: n,
            last_batch: n,
            shape: Shape::TEST,
            vk_hash: VK.into(),
            input: TaskInput::Batch(Box::new(request(Shape::TEST, n))),
        }
    }

    pub fn aggregate(rollup: &str, seq_height: u64, first: u64, mid: u64, last: u64) -> NewTask {
        NewTask {
            rollup: rollup.into(),
            seq_height,
            first_batch: first,
            last_batch: last,
            shape: Shape::TEST,
            vk_hash: VK.into(),
            input: TaskInput::Aggregate { left: bundle(first, mid), right: bundle(mid + 1, last) },
        }
    }

    pub fn final_(rollup: &str, seq_height: u64, first: u64, last: u64) -> NewTask {
        NewTask {
            rollup: rollup.into(),
            seq_height,
            first_batch: first,
            last_batch: last,
            shape: Shape::TEST,
            vk_hash: VK.into(),
            input: TaskInput::Final { bundle: bundle(first, last) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn ids_are_deterministic() {
        assert_eq!(batch("r", 1, 3).id(), "r/batch/3-3");
        assert_eq!(aggregate("r", 1, 1, 2, 4).id(), "r/aggregate/1-4");
        assert_eq!(final_("r", 1, 1, 4).id(), "r/final/1-4");
    }

    #[test]
    fn bundles_merge_only_when_contiguous() {
        let merged = ProofBundle::merge(&bundle(1, 2), &bundle(3, 4)).unwrap();
        assert_eq!((merged.first_batch(), merged.last_batch()), (Some(1), Some(4)));
        merged.check_covers(1, 4).unwrap();
        assert_eq!(
            merged.check_covers(1, 5),
            Err(BundleError::WrongRange { got_first: 1, got_last: 4, want_first: 1, want_last: 5 })
        );
        assert_eq!(
            ProofBundle::merge(&bundle(1, 2), &bundle(4, 5)),
            Err(BundleError::NotConsecutive { prev: 2, next: 4 })
        );
        let mut broken = bundle(3, 4);
        broken.proofs[0].public.old_root = crate::circuit::Fr::from(99u64);
        assert_eq!(ProofBundle::merge(&bundle(1, 2), &broken), Err(BundleError::RootMismatch { batch: 3 }));
        assert_eq!(ProofBundle { proofs: vec![] }.check_contiguous(), Err(BundleError::Empty));
    }

    #[test]
    fn input_wire_form_is_kind_plus_request() {
        let input = TaskInput::Final { bundle: bundle(1, 1) };
        let v = serde_json::to_value(&input).unwrap();
        assert_eq!(v["kind"], "final");
        assert!(v["request"]["bundle"]["proofs"].is_array());
        assert_eq!(serde_json::from_value::<TaskInput>(v).unwrap(), input);
        let input = batch("r", 1, 1).input;
        let v = serde_json::to_value(&input).unwrap();
        assert_eq!(v["kind"], "batch");
        assert_eq!(v["request"]["batch_num"], 1);
        assert_eq!(serde_json::from_value::<TaskInput>(v).unwrap(), input);
    }

    #[test]
    fn payload_decodes_by_kind() {
        let single = serde_json::to_value(output(5)).unwrap();
        assert_eq!(ProofPayload::decode(TaskKind::Batch, single.clone()).unwrap(), ProofPayload::Batch(output(5)));
        assert!(ProofPayload::decode(TaskKind::Final, single).is_err());
        let b = serde_json::to_value(bundle(1, 2)).unwrap();
        assert_eq!(ProofPayload::decode(TaskKind::Aggregate, b).unwrap(), ProofPayload::Bundle(bundle(1, 2)));
    }

    #[test]
    fn vk_hashes_normalize() {
        assert_eq!(normalize_vk_hash("0xABcd"), "0xabcd");
        assert_eq!(normalize_vk_hash("ABcd"), "0xabcd");
    }
}
