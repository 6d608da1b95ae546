//! The aggregator's check of every result a prover returns, before it is
//! accepted: batch proofs are verified with the shape's Groth16 verifying
//! key and must prove exactly the task's public inputs; bundles must be
//! exactly the merge of their (already verified) inputs.

use super::dispatcher::ProofVerifier;
use crate::prover::Groth16Verifier;
use crate::wire::task::{ProofBundle, ProofPayload, Task, TaskInput};

pub struct Groth16TaskVerifier {
    inner: Groth16Verifier,
}

impl Groth16TaskVerifier {
    pub fn new(inner: Groth16Verifier) -> Self {
        Groth16TaskVerifier { inner }
    }
}

impl ProofVerifier for Groth16TaskVerifier {
    fn verify(&self, task: &Task, payload: &ProofPayload) -> Result<(), String> {
        match (&task.input, payload) {
            (TaskInput::Batch(req), ProofPayload::Batch(out)) => {
                // A valid proof of other inputs (another miner, another
                // batch) is worthless to us: compare before the pairing.
                if out.public != req.public_inputs() {
                    return Err("the proof's public inputs are not the task's".into());
                }
                self.inner.verify(task.shape, &out.proof, &out.public).map_err(|e| format!("{e:#}"))
            }
            (TaskInput::Aggregate { left, right }, ProofPayload::Bundle(b)) => {
                let expected = ProofBundle::merge(left, right).map_err(|e| e.to_string())?;
                if *b != expected {
                    return Err("the bundle is not the merge of the task's inputs".into());
                }
                Ok(())
            }
            (TaskInput::Final { bundle }, ProofPayload::Bundle(b)) => {
                if b != bundle {
                    return Err("the final bundle differs from the task's input".into());
                }
                Ok(())
            }
            _ => Err("the payload kind does not match the task".into()),
        }
    }
}
